"""One point of the noise-scale chapter's grid: a BatchNorm network trained by plain SGD (momentum off) at one
(learning rate, batch size, weight decay, epochs), with the candidate predictors of its test accuracy.

- the SGD noise scale lr / batch_size (Smith & Le 2018; Goyal et al. 2017's linear scaling rule);
- the intrinsic learning rate lr * weight_decay (Li, Lyu, Arora 2020), and steps * lr * weight_decay, the run's
  length in units of the 1 / (lr * weight_decay) steps it takes to reach equilibrium;
- lr * lambda0 against the edge 2 (Lewkowycz et al. 2020), with lambda0 the top eigenvalue of the Hessian of the
  minibatch cross-entropy at initialisation, on minibatches of the run's own batch size, BatchNorm using the
  batch's statistics as in training (mean over `lambda0_batches` batches). Gradient descent on a quadratic of
  curvature lambda0 is unstable for lr > 2 / lambda0.

Each point is its own stored result (experiment `noise_scale_point`), so the chapter's grid and
`python -m repro sweep noise_scale.point` share them.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import torch
from torch import nn
from torch.nn import functional as F

from repro import params as P
from repro.data import VisionData, load_dataset
from repro.device import get_device, num_threads
from repro.metrics.hessian import functional, hessian_top_eigenvalue
from repro.models.bn import BNMLP, BNConvNet
from repro.models.preresnet import preresnet32
from repro.store import Result, Store
from repro.train.loop import channel_stats, constant, normalize, train

EXPERIMENT = "noise_scale_point"  # the store's name for a point (the sweep reads it too)
VERSION = 1
EDGE = 2.0  # lr * lambda0 above which gradient descent on the local quadratic is unstable
EVALUATIONS = 4  # evaluations of a run: at a quarter, half and three quarters of its steps, and at the end


@dataclasses.dataclass(frozen=True)
class Params(P.Params):
    seed: int = P.param(0, "seed of data subset, initialisation and batch order", ge=0)
    dataset: str = P.param("mnist", "training data", choices=("mnist", "cifar10"))
    model: str = P.param("bn_mlp", "network: BN MLP, BN convnet, or PreResNet-32",
                         choices=("bn_mlp", "bn_convnet", "preresnet32"))
    width: int = P.param(128, "hidden units (bn_mlp) or first-layer channels (bn_convnet)", ge=4)
    n_train: int = P.param(8192, "training examples (a fixed random subset)", ge=16)
    n_test: int = P.param(2000, "held-out test examples", ge=100)
    augment: bool = P.param(False, "random crop and flip (CIFAR-10 only)")
    lr: float = P.param(0.1, "learning rate (plain SGD, momentum off)", gt=0)
    batch_size: int = P.param(128, "minibatch size", ge=2)
    weight_decay: float = P.param(5e-4, "weight decay (L2 coupled, on every parameter)", ge=0, lt=1)
    epochs: int = P.param(4, "passes over the training set", ge=1)
    lambda0_batches: int = P.param(2, "minibatches the Hessian's top eigenvalue at init is averaged over", ge=1)
    lanczos_iters: int = P.param(15, "Lanczos iterations per top eigenvalue", ge=2)

    PRESETS = {
        "smoke": {"n_train": 1024, "n_test": 500, "width": 32, "epochs": 1, "lanczos_iters": 8,
                  "lambda0_batches": 1},
        "paper": {"dataset": "cifar10", "model": "preresnet32", "n_train": 50_000, "n_test": 10_000,
                  "augment": True, "epochs": 30, "lanczos_iters": 20},
    }

    def check(self) -> None:
        limit = 60_000 if self.dataset == "mnist" else 50_000
        if self.n_train > limit:
            raise P.ConfigError(f"n_train ({self.n_train}) exceeds the {self.dataset} training set ({limit}).")
        if self.n_test > 10_000:
            raise P.ConfigError(f"n_test ({self.n_test}) exceeds the 10,000 test examples.")
        if self.batch_size > self.n_train:
            raise P.ConfigError(f"batch_size ({self.batch_size}) is larger than n_train ({self.n_train}); lower it "
                                f"or use more training examples.")
        if self.augment and self.dataset != "cifar10":
            raise P.ConfigError("augment must be false for dataset mnist: crop and flip is for cifar10.")
        if self.model == "preresnet32" and self.dataset != "cifar10":
            raise P.ConfigError("model preresnet32 is a CIFAR-10 network; use dataset cifar10 with it.")

    @property
    def steps(self) -> int:
        return self.epochs * (self.n_train // self.batch_size)


def image_passes(p: Params) -> float:
    """A run's work in image passes through the network (forward and backward), for a campaign's time estimate:
    its training steps, its evaluations (forward only, about a third of a pass) on the test set and on as many
    training images, and lambda0's Lanczos iterations (a Hessian-vector product, about two passes, per iteration
    and batch)."""
    evaluation = EVALUATIONS * (p.n_test + min(p.n_train, p.n_test)) / 3
    return p.steps * p.batch_size + evaluation + 2 * p.lambda0_batches * p.lanczos_iters * p.batch_size


def build_model(p: Params, in_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The network, initialised from `seed` on the CPU (so the same on every device)."""
    torch.manual_seed(p.seed)
    c, h, w = in_shape
    if p.model == "bn_mlp":
        return BNMLP(c * h * w, num_classes, p.width)
    if p.model == "bn_convnet":
        return BNConvNet(c, num_classes, p.width)
    return preresnet32(num_classes, c)


def batch_stat_copy(model: nn.Module) -> nn.Module:
    """A copy whose BatchNorm layers always use the batch's statistics and keep no running ones, so that the
    minibatch loss is a pure function of the parameters (as in a training step)."""
    m = copy.deepcopy(model)
    for mod in m.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            mod.track_running_stats = False
            mod.running_mean = mod.running_var = mod.num_batches_tracked = None
    return m.train()


def minibatch_sharpness(model: nn.Module, data: VisionData, stats: tuple[torch.Tensor, torch.Tensor],
                        batch_size: int, batches: int, iters: int, seed: int) -> list[float]:
    """Top Hessian eigenvalue of the cross-entropy on each of the first `batches` minibatches of a seeded
    permutation of the training data, BatchNorm on the batch's statistics."""
    m = batch_stat_copy(model)
    theta, apply = functional(m)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed + 1)).to(data.y.device)
    out = []
    for b in range(min(batches, len(data) // batch_size)):
        idx = order[b * batch_size:(b + 1) * batch_size]
        xb, yb = normalize(data.x[idx], *stats), data.y[idx]
        out.append(hessian_top_eigenvalue(lambda th, xb=xb, yb=yb: F.cross_entropy(apply(th, xb), yb), theta,
                                          iters, seed=seed + b))
    return out


def run(p: Params, store: Store | None = None, force: bool | None = None) -> Result:
    store = store or Store()
    device = get_device()

    return store.run(EXPERIMENT, VERSION, p.to_dict(), lambda: compute(p, device), device=device, force=force)


def compute(p: Params, device: torch.device) -> dict:
    """One run and its measurements -> {"metrics", "data"}."""
    with num_threads(1 if device.type == "cpu" and p.model == "bn_mlp" else None):
        return _compute(p, device)


def _compute(p: Params, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(p.seed)
    full = load_dataset(p.dataset, "train", device)
    train_data = full.subset(p.n_train, g) if p.n_train < len(full) else full
    test = load_dataset(p.dataset, "test", device).subset(p.n_test)
    stats = channel_stats(train_data)
    model = build_model(p, tuple(train_data.x.shape[1:]), train_data.num_classes).to(device)
    per_batch = minibatch_sharpness(model, train_data, stats, p.batch_size, p.lambda0_batches, p.lanczos_iters,
                                    p.seed)
    lambda0 = sum(per_batch) / len(per_batch)
    hist = train(model, train_data, steps=p.steps, batch_size=p.batch_size, schedule=constant(p.lr, p.weight_decay),
                 seed=p.seed, momentum=0.0, test_data=test, train_eval_data=train_data.subset(min(p.n_train,
                                                                                                p.n_test)),
                 eval_every=max(1, p.steps // EVALUATIONS), augment=p.augment, stats=stats)
    final_loss = hist.train_loss[-1]
    metrics = {
        "test_acc": hist.test_acc[-1], "train_acc": hist.train_acc[-1], "train_loss": final_loss,
        "test_loss": hist.test_loss[-1], "diverged": not math.isfinite(final_loss) or not math.isfinite(
            hist.test_loss[-1]),
        "lambda0": lambda0, "noise_scale": p.lr / p.batch_size, "intrinsic_lr": p.lr * p.weight_decay,
        "lr_lambda0": p.lr * lambda0, "steps": p.steps, "equilibrium_times": p.steps * p.lr * p.weight_decay,
    }
    return {"metrics": metrics, "data": {"history": hist.to_dict(), "lambda0_batches": per_batch}}
