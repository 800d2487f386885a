"""Building blocks shared by the chapter's experiments: the data split, the networks, one training run with its
distance from initialisation, evaluation, the loss f on which sharpness is measured, and BN statistics.

How BatchNorm is treated. Training uses batch statistics. Every evaluation, the sharpness maximisation and the
Hessian use eval mode: BN's running statistics are frozen buffers (not parameters, so not perturbed) and dropout
is off, so f is a deterministic function of the parameters on a fixed set of training examples. Along the
interpolation line the parameters (BN's affine ones included) are interpolated and BN's running statistics are
re-estimated at every alpha on training examples (BN in train mode with a cumulative average, dropout off).
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from repro.data import VisionData, load_dataset
from repro.metrics.hessian import functional, hvp
from repro.models.keskar import F1
from repro.train.loop import channel_stats, constant, evaluate, normalize, train

from .config import NETWORKS, Params


@dataclasses.dataclass
class Split:
    train: VisionData
    test: VisionData
    stats: tuple[torch.Tensor, torch.Tensor]


def load_split(dataset: str, n_train: int, n_test: int, seed: int, device: torch.device) -> Split:
    """A fixed random subset of each split (the whole split when n equals its size)."""
    train_full = load_dataset(dataset, "train", device)
    test_full = load_dataset(dataset, "test", device)
    g = torch.Generator().manual_seed(10_000 + seed)
    tr = train_full if n_train == len(train_full) else train_full.subset(n_train, g)
    te = test_full if n_test == len(test_full) else test_full.subset(n_test, g)
    return Split(tr, te, channel_stats(tr))


def make_model(net: str, seed: int, device: torch.device, f1_width: int = 512) -> nn.Module:
    """The same seed gives the same initialisation (for SB and LB of one run)."""
    torch.manual_seed(seed)
    return (F1(width=f1_width) if net == "F1" else NETWORKS[net][1]()).to(device)


def log_steps(steps: int, points: int = 40) -> set[int]:
    """About `points` update counts spaced evenly in log between 1 and `steps` (both included)."""
    return {int(round(v)) for v in np.logspace(0, math.log10(max(steps, 1)), points)} | {steps}


class DistanceTracker:
    """||w_t - w_0|| over all parameters after t updates, at log-spaced t (Hoffer et al.'s Figure 2), and an
    optional callback at one chosen update count (a snapshot of a run on its way)."""

    def __init__(self, model: nn.Module, steps: int, at: int | None = None, on_at=None):
        self.w0 = nn.utils.parameters_to_vector(model.parameters()).detach().clone()
        self.when, self.at, self.on_at = log_steps(steps), at, on_at
        self.rows: list[dict] = []

    def __call__(self, info) -> None:
        t = info.step + 1
        if t in self.when:
            w = nn.utils.parameters_to_vector(info.model.parameters()).detach()
            self.rows.append({"step": t, "distance": float((w - self.w0).norm())})
        if self.on_at is not None and t == self.at:
            self.on_at(info.model)


def train_run(net: str, split: Split, *, seed: int, batch_size: int, epochs: int | None = None, lr: float,
              optimizer: str = "adam", f1_width: int = 512, steps: int | None = None, snapshot_at: int | None = None,
              on_snapshot=None) -> tuple[nn.Module, dict]:
    """`epochs` (or `steps`) updates of `batch_size`; the row records ||w - w0|| along the way."""
    model = make_model(net, seed, split.train.x.device, f1_width)
    steps = steps if steps is not None else epochs * (len(split.train) // batch_size)
    epochs = steps / (len(split.train) // batch_size)
    tracker = DistanceTracker(model, steps, snapshot_at, on_snapshot)
    start = time.perf_counter()
    train(model, split.train, steps=steps, batch_size=batch_size, schedule=constant(lr, 0.0), seed=seed,
          stats=split.stats, optimizer=optimizer, on_step=tracker)
    if split.train.x.is_cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return model, {"seed": seed, "batch_size": batch_size, "steps": steps, "epochs": epochs, "optimizer": optimizer,
                   "lr": lr, **evaluation(model, split), "train_seconds": seconds, "epoch_seconds": seconds / epochs,
                   "distance": tracker.rows}


def evaluation(model: nn.Module, split: Split) -> dict:
    train_loss, train_acc = evaluate(model, split.train, *split.stats)
    test_loss, test_acc = evaluate(model, split.test, *split.stats)
    return {"train_loss": train_loss, "train_acc": 100 * train_acc, "test_loss": test_loss, "test_acc": 100 * test_acc}


def loss_closures(model: nn.Module, data: VisionData, stats: tuple[torch.Tensor, torch.Tensor],
                  chunk: int = 1000):
    """f(theta) = mean cross-entropy on `data` with the model in eval mode, as (theta0, value_and_grad,
    hessian_matvec); chunked so that large measurement sets fit in memory."""
    model.eval()
    theta0, apply = functional(model)
    chunks = [(normalize(data.x[i:i + chunk], *stats), data.y[i:i + chunk]) for i in range(0, len(data), chunk)]
    n = len(data)

    def chunk_loss(x: torch.Tensor, y: torch.Tensor):
        return lambda th: F.cross_entropy(apply(th, x), y, reduction="sum") / n

    def value_and_grad(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        value, grad = torch.zeros((), device=theta.device), torch.zeros_like(theta)
        for x, y in chunks:
            th = theta.detach().requires_grad_(True)
            v = chunk_loss(x, y)(th)
            (g,) = torch.autograd.grad(v, th)
            value, grad = value + v.detach(), grad + g
        return value, grad

    def matvec(v: torch.Tensor) -> torch.Tensor:
        return sum(hvp(chunk_loss(x, y), theta0)(v) for x, y in chunks)

    return theta0, value_and_grad, matvec


def gradient_measures(value_and_grad, theta: torch.Tensor, p: Params) -> dict:
    """The full-batch gradient of f at theta, and Metric 2.1's first-order part: the linear term's maximum over
    the full-space box, sum_i |g_i| eps (|x_i| + 1), as Metric 2.1 would report it (100 x / (1 + f)). Away
    from a minimum this term alone can make the metric large."""
    value, grad = value_and_grad(theta)
    f = float(value)
    weight = theta.detach().abs() + 1
    linear = float((grad.abs() * weight).sum())
    return {"grad_norm": float(grad.norm()), "first_order_large_eps": 100 * p.sharpness_eps * linear / (1 + f),
            "first_order_small_eps": 100 * p.sharpness_eps_small * linear / (1 + f)}


def init_grad_norm(net: str, seed: int, split: Split, measure_set: VisionData, f1_width: int) -> float:
    """The same gradient norm at the initialisation of run `seed`, with BN's statistics estimated on the
    measured examples (a fresh network's running statistics are placeholders)."""
    model = make_model(net, seed, split.train.x.device, f1_width)
    recompute_bn(model, measure_set, split.stats, min(len(measure_set), 500))
    theta, value_and_grad, _ = loss_closures(model, measure_set, split.stats)
    return float(value_and_grad(theta)[1].norm())


@torch.no_grad()
def recompute_bn(model: nn.Module, data: VisionData, stats, batch_size: int) -> None:
    """Re-estimate BN running statistics on `data` (cumulative average over batches), dropout off."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    model.eval()
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    for i in range(0, len(data) - batch_size + 1, batch_size):
        model(normalize(data.x[i:i + batch_size], *stats))
    for m, mom in zip(bns, saved, strict=True):
        m.momentum = mom
    model.eval()


def mean_std(values: list[float]) -> tuple[float, float]:
    a = np.array(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0

