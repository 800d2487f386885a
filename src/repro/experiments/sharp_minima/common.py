"""Building blocks shared by the chapter's experiments: the data split, the networks, one training run with its
distance from initialisation, evaluation, the loss f on which sharpness is measured, and BN statistics.

How BatchNorm is treated. Training uses batch statistics. The loss f on which Metric 2.1, the gradient norm and the
Hessian are measured is the mean cross-entropy on a fixed sample of training examples with dropout off and BN as
Keskar et al.'s Keras networks had it (`BatchNormalization(mode=2)`): each batch of `bn_batch` examples
normalised by its own statistics, the running statistics unused (`f_mode`). BN's scale and shift are parameters
and are perturbed with the others. Accuracies and losses reported as such are PyTorch's eval mode (running
statistics). Along the interpolation line the parameters are interpolated and BN's running statistics are
re-estimated at every alpha on training examples (BN in train mode with a cumulative average, dropout off).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from repro.data import VisionData, load_dataset
from repro.metrics.hessian import functional, hvp
from repro.models.keskar import F1
from repro.train.loop import Schedule, channel_stats, constant, evaluate, normalize, train

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


def make_model(net: str, seed: int, device: torch.device, f1_width: int = 512, ghost_batch: int = 0) -> nn.Module:
    """The same seed gives the same initialisation (for SB and LB of one run, ghost batch norm or not)."""
    torch.manual_seed(seed)
    return (F1(width=f1_width, ghost_batch=ghost_batch) if net == "F1" else NETWORKS[net][1]()).to(device)


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
              on_snapshot=None, schedule: Schedule | None = None, momentum: float = 0.0,
              ghost_batch: int = 0) -> tuple[nn.Module, dict]:
    """`epochs` (or `steps`) updates of `batch_size` at the constant rate `lr` (or along `schedule`, step ->
    (lr, weight decay)); the row records ||w - w0|| along the way."""
    model = make_model(net, seed, split.train.x.device, f1_width, ghost_batch)
    steps = steps if steps is not None else epochs * (len(split.train) // batch_size)
    epochs = steps / (len(split.train) // batch_size)
    tracker = DistanceTracker(model, steps, snapshot_at, on_snapshot)
    start = time.perf_counter()
    train(model, split.train, steps=steps, batch_size=batch_size, schedule=schedule or constant(lr, 0.0), seed=seed,
          stats=split.stats, optimizer=optimizer, momentum=momentum, on_step=tracker)
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


BN_MODES = ("batch", "running")


@contextlib.contextmanager
def f_mode(model: nn.Module, bn: str) -> Iterator[None]:
    """The model as f sees it: dropout off, and BatchNorm either normalising each batch by its own statistics
    with the running statistics untouched (`bn="batch"`, Keras-1's `BatchNormalization(mode=2)` at test time, as
    in Keskar et al.'s networks) or by its frozen running statistics (`bn="running"`, PyTorch's eval mode). The
    model's modes are restored afterwards."""
    if bn not in BN_MODES:
        raise ValueError(f"bn must be one of {BN_MODES}, got {bn!r}.")
    was_training = model.training
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    model.eval()
    if bn == "batch":
        for m in bns:
            m.train()
            m.track_running_stats = False  # batch statistics, buffers neither used nor updated
    try:
        yield
    finally:
        for m in bns:
            m.track_running_stats = True
        model.train(was_training)


def loss_closures(model: nn.Module, data: VisionData, stats: tuple[torch.Tensor, torch.Tensor], bn: str = "batch",
                  batch: int = 5000):
    """f(theta) = mean cross-entropy on `data` as (theta0, value_and_grad, hessian_matvec), BN as `f_mode` says.
    The data go through in equal batches of at most `batch` examples; with batch statistics these batches are
    part of f's definition (each is normalised by its own statistics), with running statistics only of memory."""
    theta0, apply = functional(model)
    n = len(data)
    parts = torch.arange(n, device=data.x.device).tensor_split(-(-n // batch))
    chunks = [(normalize(data.x[i], *stats), data.y[i]) for i in parts]

    def chunk_loss(x: torch.Tensor, y: torch.Tensor):
        return lambda th: F.cross_entropy(apply(th, x), y, reduction="sum") / n

    def value_and_grad(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        value, grad = torch.zeros((), device=theta.device), torch.zeros_like(theta)
        with f_mode(model, bn):
            for x, y in chunks:
                th = theta.detach().requires_grad_(True)
                v = chunk_loss(x, y)(th)
                (g,) = torch.autograd.grad(v, th)
                value, grad = value + v.detach(), grad + g
        return value, grad

    def matvec(v: torch.Tensor) -> torch.Tensor:
        with f_mode(model, bn):
            return sum(hvp(chunk_loss(x, y), theta0)(v) for x, y in chunks)

    return theta0, value_and_grad, matvec


def init_grad_norm(net: str, seed: int, split: Split, measure_set: VisionData, p: Params) -> float:
    """The gradient norm of f at the initialisation of run `seed` (batch statistics need no estimate)."""
    model = make_model(net, seed, split.train.x.device, p.f1_width)
    theta, value_and_grad, _ = loss_closures(model, measure_set, split.stats, batch=p.bn_batch)
    return float(value_and_grad(theta)[1].norm())


@torch.no_grad()
def recompute_bn(model: nn.Module, data: VisionData, stats, batch_size: int) -> None:
    """Re-estimate BN running statistics on `data` (cumulative average over nearly equal batches of at most
    `batch_size` examples, covering all of `data`), dropout off."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    model.eval()
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    for idx in torch.arange(len(data), device=data.x.device).tensor_split(-(-len(data) // batch_size)):
        model(normalize(data.x[idx], *stats))
    for m, mom in zip(bns, saved, strict=True):
        m.momentum = mom
    model.eval()


def mean_std(values: list[float]) -> tuple[float, float]:
    a = np.array(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0

