"""The network runs' shared machinery: the data, the network (a BN MLP, a BN convnet or PreResNet-32, with
BatchNorm or LayerNorm), the decay schedules, and one training run with every scale-invariant layer tracked."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch

from repro.checkpoint import Checkpoint, checkpoint_dir
from repro.data import VisionData, load_dataset
from repro.metrics.norms import NormTracker
from repro.models.bn import BNMLP, BNConvNet
from repro.models.preresnet import preresnet32
from repro.store import config_key
from repro.train.loop import channel_stats, piecewise, train

from .params import DECAY_SHAPES, Params

# Part of the checkpoint key of one training run (a campaign resumes a stopped run from it): bump it when a run's
# computation changes.
RUN_VERSION = 2


@dataclasses.dataclass
class NetSetup:
    train: VisionData
    test: VisionData
    train_eval: VisionData
    stats: tuple[torch.Tensor, torch.Tensor]
    device: torch.device
    steps_per_epoch: int


def reference_seeds(p: Params) -> list[int]:
    """The extra seeds at which each comparison's reference run is repeated: the spread of its numbers over
    `seeds` seeds (`seed` and these; new initialization and batch order, the same data) is the uncertainty a
    difference between two of the comparison's runs must exceed to be called."""
    return list(range(p.seed + 1, p.seed + p.seeds))


def load_setup(p: Params, device: torch.device) -> NetSetup:
    g = torch.Generator().manual_seed(p.seed)
    full = load_dataset(p.dataset, "train", device)
    train_data = full.subset(p.n_train, g) if p.n_train < len(full) else full
    test = load_dataset(p.dataset, "test", device).subset(p.n_test)
    return NetSetup(train_data, test, train_data.subset(min(p.n_train, p.n_test)), channel_stats(train_data),
                    device, p.n_train // p.batch_size)


def build_model(p: Params, data: VisionData, norm: str = "batch") -> torch.nn.Module:
    """The chapter's network, initialised from `seed` on the CPU (so the same on every device); `norm` "layer"
    puts LayerNorm where the network has BatchNorm."""
    torch.manual_seed(p.seed)
    c, h, w = data.x.shape[1:]
    if p.model == "bn_mlp":
        return BNMLP(c * h * w, data.num_classes, p.width, bn_eps=p.bn_eps, norm=norm)
    if p.model == "bn_convnet":
        return BNConvNet(c, data.num_classes, p.width, bn_eps=p.bn_eps, norm=norm)
    return preresnet32(data.num_classes, c, bn_eps=p.bn_eps, norm=norm)


def decay_schedule(shape: str, steps: int, lr: float, weight_decay: float, lr_drop: float = 10.0,
                   warmup_fraction: float = 0.1) -> Callable[[int], tuple[float, float]]:
    """Peak learning rate `lr` over `steps`, constant weight decay: "step" divides lr by `lr_drop` at 1/2 and
    again at 3/4 of the run; "cosine" is lr (1 + cos(pi t / steps)) / 2; "warmup_linear" rises linearly over
    `warmup_fraction` of the run, then falls linearly to 0 at the end."""
    warm = max(1, int(warmup_fraction * steps))

    def schedule(t: int) -> tuple[float, float]:
        if shape == "step":
            return lr / lr_drop ** ((t >= steps // 2) + (t >= 3 * steps // 4)), weight_decay
        if shape == "cosine":
            return lr * 0.5 * (1 + math.cos(math.pi * min(t, steps) / steps)), weight_decay
        if shape == "warmup_linear":
            f = (t + 1) / warm if t < warm else max(steps - t, 0) / (steps - warm)
            return lr * f, weight_decay
        raise ValueError(f"shape must be one of {DECAY_SHAPES}, got {shape!r}.")
    return schedule


def train_run(p: Params, s: NetSetup, phases: list[tuple[int, float, float]], *, batch_size: int | None = None,
              momentum: float = 0.0, init_scale: float = 1.0, label: str = "", bn_eps: float | None = None,
              norm: str = "batch", shape: str | None = None) -> dict:
    """One network run through `phases` (steps, lr, weight_decay), with every scale-invariant group tracked.
    With `shape`, one phase whose lr is the peak of that `decay_schedule`."""
    model = build_model(p if bn_eps is None else p.replace(bn_eps=bn_eps), s.train, norm)
    if init_scale != 1.0:
        with torch.no_grad():
            for ps in model.scale_invariant_groups().values():
                for q in ps:
                    q.mul_(init_scale)
    model = model.to(s.device)
    steps = sum(ph[0] for ph in phases)
    tracker = NormTracker(model, every=max(1, min(20, steps // 400)))
    ckpt = done = None
    if checkpoint_dir() is not None:  # in a campaign: a run stopped at a window's end resumes in the next
        key = config_key("intrinsic_lr_run", RUN_VERSION, {"params": p.to_dict(), "phases": phases, "label": label,
                                                       "batch_size": batch_size, "momentum": momentum,
                                                       "init_scale": init_scale, "bn_eps": bn_eps,
                                                       **({"norm": norm} if norm != "batch" else {}),
                                                       **({"shape": shape} if shape else {})})
        ckpt, done = Checkpoint("runs", key, every=5), Checkpoint("runs", f"{key}-done")
        finished = done.load()
        if finished is not None:
            return finished
    if shape:
        (_, lr0, wd0), = phases
        schedule = decay_schedule(shape, steps, lr0, wd0, p.lr_drop, p.warmup_fraction)
    else:
        schedule = piecewise(phases)
    hist = train(model, s.train, steps=steps, batch_size=batch_size or p.batch_size, schedule=schedule,
                 seed=p.seed, momentum=momentum, test_data=s.test, train_eval_data=s.train_eval,
                 eval_every=p.eval_every_epochs * s.steps_per_epoch, on_step=tracker, augment=p.augment,
                 stats=s.stats, progress=label or None, checkpoint=ckpt)
    out = {"phases": phases, "momentum": momentum, "batch_size": batch_size or p.batch_size,
           "init_scale": init_scale, "norm": norm, "shape": shape, "history": hist.to_dict(),
           "norms": tracker.to_dict()}
    if done is not None:
        done.save(out)
    return out
