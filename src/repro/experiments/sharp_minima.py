"""Sharp minima (Keskar et al., ICLR 2017): small- vs large-batch Adam, Metric 2.1, and the 1-D interpolation.

Sub-experiments, each stored under the parameters it depends on:
- `sharp_minima_seed` (one per network F1, C1, C2, C3, C4 and seed): small batch (`batch_size`) and large batch
  (`large_batch_fraction` of the training set) Adam runs from the same initialisation; train and test accuracy;
  Metric 2.1 (full space and a random `subspace_dim`-dimensional subspace, at both eps); the top Hessian
  eigenvalue (Lanczos); for the first seed also the 1-D interpolation between its two minimisers and, for F1,
  the rescaling check (Dinh et al. 2017). `sharp_minima_net` merges a network's seeds.
- `sharp_minima_optimizers`: the same comparison on F1 with SGD and Adagrad (the course report's extension).
- `sharp_minima_remedy`: the large batch with its learning rate scaled up (Hoffer et al. 2017).
- `sharp_minima_hoffer` (one per seed): Hoffer et al.'s distance from initialisation against the number of updates,
  and "train longer": F1's large batch trained for as many updates as the small batch, on an MNIST subset.

Every trained network also records what its regime check needs: train accuracy, train loss, and the full-batch
gradient norm of f (the loss Metric 2.1 is measured on) at the measured point and at initialisation.

How BatchNorm is treated. Training uses batch statistics. Every evaluation, the sharpness maximisation and the
Hessian use eval mode: BN's running statistics are frozen buffers (not parameters, so not perturbed) and dropout
is off, so f is a deterministic function of the parameters on a fixed set of training examples. Along the
interpolation line the parameters (BN's affine ones included) are interpolated and BN's running statistics are
re-estimated at every alpha on training examples (BN in train mode with a cumulative average, dropout off).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from repro import params as P
from repro.data import VisionData, load_dataset
from repro.device import get_device
from repro.metrics.hessian import functional, hvp, lanczos
from repro.metrics.sharpness import random_subspace, sharpness
from repro.models.keskar import C1, C2, F1
from repro.regime import Regime, at_least, at_most
from repro.store import Result, Store
from repro.train.loop import channel_stats, constant, evaluate, normalize, train
from repro.units import Unit, Work, make_unit, run_unit

VERSION = 2  # 2: regime measurements, separate LB epochs, distance from initialisation

# Keskar et al. 2017, Table 2 (accuracy, %, mean +- std over 5 runs) and Table 3 (Metric 2.1, full space), as
# quoted by the course report (section 2.2.3) and recalled in refs/papers.md section 2b, where they
# are marked UNVERIFIED against the paper's PDF. References only, never our results.
PAPER_SOURCE = "Keskar et al. 2017, Tables 2-3, as quoted in the course report §2.2.3 (UNVERIFIED against the PDF)"
PAPER_ACCURACY = {  # net: (SB train, LB train, SB test, LB test), each (mean, std)
    "F1": ((99.66, 0.05), (99.92, 0.01), (98.03, 0.07), (97.81, 0.07)),
    "F2": ((99.99, 0.03), (98.35, 2.08), (64.02, 0.2), (59.45, 1.05)),
    "C1": ((99.89, 0.02), (99.66, 0.2), (80.04, 0.12), (77.26, 0.42)),
    "C2": ((99.99, 0.04), (99.99, 0.01), (89.24, 0.12), (87.26, 0.07)),
    "C3": ((99.56, 0.44), (99.88, 0.30), (49.58, 0.39), (46.45, 0.43)),
    "C4": ((99.10, 1.23), (99.57, 1.84), (63.08, 0.5), (57.81, 0.17)),
}
PAPER_SHARPNESS = {  # net: (SB eps 1e-3, LB eps 1e-3, SB eps 5e-4, LB eps 5e-4), each (mean, std)
    "F1": ((1.23, 0.83), (205.14, 69.52), (0.61, 0.27), (42.90, 17.14)),
    "F2": ((1.39, 0.02), (310.64, 38.46), (0.90, 0.05), (93.15, 6.81)),
    "C1": ((28.58, 3.13), (707.23, 43.04), (7.08, 0.88), (227.31, 23.23)),
    "C2": ((8.68, 1.32), (925.32, 38.29), (2.07, 0.86), (175.31, 18.28)),
    "C3": ((29.85, 5.98), (258.75, 8.96), (8.56, 0.99), (105.11, 13.22)),
    "C4": ((12.83, 3.84), (421.84, 36.97), (4.07, 0.87), (109.35, 16.57)),
}
# Course report (section 3.2): F1 test accuracy with other optimizers (one run each).
REPORT_OPTIMIZERS = {"adam": (98.03, 97.81), "sgd": (97.82, 96.97), "adagrad": (97.95, math.nan)}
REPORT_SOURCE = "course report, section 3.2"

# network -> (dataset, model constructor)
NETWORKS = {"F1": ("mnist", F1), "C1": ("cifar10", C1), "C2": ("cifar10", C2),
            "C3": ("cifar100", lambda: C1(num_classes=100)), "C4": ("cifar100", lambda: C2(num_classes=100))}


@dataclasses.dataclass(frozen=True)
class Params(P.Params):
    seed: int = P.param(0, "seed of the first run; run i uses seed + i (initialisation and batch order)", ge=0)
    seeds: int = P.param(2, "independent runs per batch size (the paper: 5)", ge=1)
    device: str = P.param("auto", "where the networks train: auto (CUDA if present), cpu or cuda",
                          choices=("auto", "cpu", "cuda"))
    networks: str = P.param("F1,C1", "comma-separated networks among F1, C1, C2 (CIFAR-10), C3, C4 (CIFAR-100)")
    lr: float = P.param(1e-3, "Adam learning rate, both batch sizes (Keras default, as the official script)", gt=0)
    batch_size: int = P.param(256, "small batch (SB) for F1 (the paper: 256)", ge=1)
    large_batch_fraction: float = P.param(0.1, "large batch (LB) as a fraction of the training set (paper: 0.1)",
                                          gt=0, le=1)
    epochs: int = P.param(8, "training epochs of F1's small batch", ge=1)
    large_batch_epochs: int = P.param(25, "training epochs of F1's large batch (it makes fewer updates per epoch)",
                                      ge=1)
    f1_width: int = P.param(512, "hidden width of F1's five layers (the paper: 512)", ge=4)
    n_train: int = P.param(12_000, "MNIST training images for F1 (a fixed random subset; full: 60000)", ge=16,
                           le=60_000)
    n_test: int = P.param(10_000, "MNIST test images", ge=16, le=10_000)
    cifar_train: int = P.param(1500, "CIFAR training images for C1-C4 (a fixed random subset; full: 50000)",
                               ge=16, le=50_000)
    cifar_test: int = P.param(1000, "CIFAR test images (full: 10000)", ge=16, le=10_000)
    cifar_batch_size: int = P.param(32, "small batch for C1-C4 (the paper: 256)", ge=1)
    cifar_epochs: int = P.param(20, "training epochs of C1-C4's small batch", ge=1)
    cifar_large_batch_epochs: int = P.param(30, "training epochs of C1-C4's large batch", ge=1)
    sharpness_eps: float = P.param(1e-3, "box size eps of Metric 2.1 (the paper: 1e-3 and 5e-4)", gt=0)
    sharpness_eps_small: float = P.param(5e-4, "the second, smaller box size eps", gt=0)
    sharpness_iters: int = P.param(10, "L-BFGS-B iterations of the maximisation (the paper: 10)", ge=1)
    subspace_dim: int = P.param(100, "dimension p of the random subspace A (the paper: 100)", ge=1)
    sharpness_examples: int = P.param(500, "fixed F1 training examples on which f is measured", ge=1)
    cifar_sharpness_examples: int = P.param(100, "fixed CIFAR training examples on which f is measured", ge=1)
    lanczos_iters: int = P.param(15, "Lanczos iterations for the top Hessian eigenvalue", ge=2)
    interp_points: int = P.param(25, "alphas in [-1, 2] of the 1-D interpolation (the paper: 25)", ge=2)
    interp_examples: int = P.param(3_000, "training examples for the train curve and BN statistics along it",
                                   ge=16)
    extension_seeds: int = P.param(0, "runs per batch size with SGD and with Adagrad on F1 (0: skip)", ge=0)
    lr_sgd: float = P.param(0.05, "SGD learning rate (no momentum) of the extension", gt=0)
    lr_adagrad: float = P.param(0.01, "Adagrad learning rate of the extension", gt=0)
    remedy_scaling: str = P.param("sqrt", "Hoffer et al.'s LB learning rate: lr * (LB / SB) ** 0.5, or linear",
                                  choices=("sqrt", "linear", "none"))
    dinh_alpha: float = P.param(10.0, "rescaling factor of the reparametrisation check (and its inverse)", gt=1)
    hoffer_train: int = P.param(3000, "MNIST training images of the train-longer runs (Hoffer et al.)", ge=16,
                                le=60_000)
    hoffer_batch_size: int = P.param(32, "small batch of the train-longer runs; their large batch is "
                                         "large_batch_fraction x hoffer_train", ge=1)
    hoffer_epochs: int = P.param(12, "epochs of the small batch and of the plain large batch; the long large batch "
                                    "makes as many updates as the small one", ge=1)

    PRESETS = {
        "smoke": {"networks": "F1", "f1_width": 32, "epochs": 1, "large_batch_epochs": 1, "n_train": 1500,
                  "n_test": 500, "batch_size": 30, "sharpness_iters": 3, "subspace_dim": 10, "sharpness_examples": 150,
                  "lanczos_iters": 5, "interp_points": 7, "interp_examples": 500, "hoffer_train": 1500,
                  "hoffer_batch_size": 30, "hoffer_epochs": 1},
        "paper": {"seeds": 5, "networks": "F1,C1,C2,C3,C4", "epochs": 20, "large_batch_epochs": 100, "n_train": 60_000,
                  "lanczos_iters": 20, "batch_size": 256, "cifar_train": 50_000, "cifar_test": 10_000,
                  "cifar_batch_size": 256, "cifar_epochs": 20, "cifar_large_batch_epochs": 100,
                  "sharpness_examples": 10_000, "cifar_sharpness_examples": 10_000, "interp_examples": 50_000,
                  "extension_seeds": 5, "hoffer_train": 60_000, "hoffer_batch_size": 256, "hoffer_epochs": 20},
    }

    def network_list(self) -> list[str]:
        return [n.strip().upper() for n in self.networks.split(",") if n.strip()]

    def check(self) -> None:
        nets = self.network_list()
        bad = [n for n in nets if n not in NETWORKS]
        if bad or not nets:
            raise P.ConfigError(f"networks must list some of {', '.join(NETWORKS)} (F2 needs TIMIT, which is "
                                f"not freely distributable); got {self.networks!r}.")
        if self.sharpness_eps_small >= self.sharpness_eps:
            raise P.ConfigError(f"sharpness_eps_small ({self.sharpness_eps_small}) must be smaller than "
                                f"sharpness_eps ({self.sharpness_eps}).")
        sizes = [("F1", "", self.n_train, self.batch_size, self.sharpness_examples)] if "F1" in nets else []
        if any(n != "F1" for n in nets):
            sizes.append(("C1-C4", "cifar_", self.cifar_train, self.cifar_batch_size, self.cifar_sharpness_examples))
        for net, prefix, n, small, examples in sizes:
            large = large_batch(n, self.large_batch_fraction)
            if small >= large:
                raise P.ConfigError(f"The small batch of {net} ({prefix}batch_size {small}) must be smaller than "
                                    f"its large batch ({large} = large_batch_fraction {self.large_batch_fraction} x "
                                    f"{n} training images); lower the batch size or train on more images.")
            if examples > n:
                raise P.ConfigError(f"The sharpness of {net} is measured on {examples} training examples "
                                    f"({prefix}sharpness_examples) but it trains on {n}; lower the sharpness "
                                    f"examples.")
        if large_batch(self.hoffer_train, self.large_batch_fraction) <= self.hoffer_batch_size:
            raise P.ConfigError(f"The small batch of the train-longer runs (hoffer_batch_size "
                                f"{self.hoffer_batch_size}) must be smaller than their large batch "
                                f"(large_batch_fraction x hoffer_train {self.hoffer_train})"
                                "; lower the batch size or train on more images.")
        if self.subspace_dim > 1000:
            raise P.ConfigError(f"subspace_dim ({self.subspace_dim}) above 1000 makes the n x p matrix A too "
                                f"large to keep; the paper uses 100.")

    def datasets(self) -> list[tuple[str, str]]:
        names = dict.fromkeys(NETWORKS[n][0] for n in self.network_list())
        return [(name, split) for name in names for split in ("train", "test")]


def large_batch(n: int, fraction: float) -> int:
    return max(1, round(fraction * n))


def net_sizes(p: Params, net: str) -> dict[str, int]:
    if net == "F1":
        n, test, small, epochs, examples = p.n_train, p.n_test, p.batch_size, p.epochs, p.sharpness_examples
        large_epochs = p.large_batch_epochs
    else:
        n, test, small, epochs = p.cifar_train, p.cifar_test, p.cifar_batch_size, p.cifar_epochs
        examples, large_epochs = p.cifar_sharpness_examples, p.cifar_large_batch_epochs
    return {"n_train": n, "n_test": test, "small": small, "large": large_batch(n, p.large_batch_fraction),
            "epochs": epochs, "large_epochs": large_epochs, "sharpness_examples": examples,
            "interp_examples": min(p.interp_examples, n)}


def hoffer_sizes(p: Params) -> dict[str, int]:
    n, small = p.hoffer_train, p.hoffer_batch_size
    large = large_batch(n, p.large_batch_fraction)
    small_steps = p.hoffer_epochs * (n // small)
    return {"n_train": n, "n_test": p.n_test, "small": small, "large": large, "small_steps": small_steps,
            "large_steps": p.hoffer_epochs * (n // large), "long_steps": small_steps,
            "sharpness_examples": min(p.sharpness_examples, n)}


# ---------------------------------------------------------------------------------------------- building blocks


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


def measure(model: nn.Module, data: VisionData, stats, p: Params, subspace: torch.Tensor | None) -> dict:
    """Metric 2.1 at both eps in the full space and in the subspace, the top Hessian eigenvalue, the gradient
    norm and the metric's first-order part."""
    theta, value_and_grad, matvec = loss_closures(model, data, stats)
    out = gradient_measures(value_and_grad, theta, p)
    for name, eps in (("large_eps", p.sharpness_eps), ("small_eps", p.sharpness_eps_small)):
        for space, a in (("full", None), ("subspace", subspace)):
            s = sharpness(value_and_grad, theta, eps, subspace=a, maxiter=p.sharpness_iters, value_and_grad=True)
            out[f"{space}_{name}"] = s.to_dict()
    start = time.perf_counter()
    ritz = lanczos(matvec, theta.numel(), p.lanczos_iters, device=theta.device, dtype=theta.dtype, seed=p.seed)
    out["hessian_top"] = float(ritz[0])
    out["hessian_seconds"] = time.perf_counter() - start
    out["base_loss"] = out["full_large_eps"]["base_loss"]
    return out


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


def interpolate(sb: nn.Module, lb: nn.Module, split: Split, alphas: np.ndarray, n_examples: int,
                batch_size: int) -> list[dict]:
    """theta(alpha) = alpha theta_LB + (1 - alpha) theta_SB over the parameters; BN statistics re-estimated at
    each alpha on the first n_examples training images; losses and accuracies in eval mode."""
    theta_sb = nn.utils.parameters_to_vector(sb.parameters()).detach()
    theta_lb = nn.utils.parameters_to_vector(lb.parameters()).detach()
    model = copy.deepcopy(sb)
    train_part = split.train.subset(n_examples)
    rows = []
    for a in alphas:
        nn.utils.vector_to_parameters(float(a) * theta_lb + (1 - float(a)) * theta_sb, model.parameters())
        recompute_bn(model, train_part, split.stats, batch_size)
        train_loss, train_acc = evaluate(model, train_part, *split.stats)
        test_loss, test_acc = evaluate(model, split.test, *split.stats)
        rows.append({"alpha": float(a), "train_loss": train_loss, "train_acc": 100 * train_acc,
                     "test_loss": test_loss, "test_acc": 100 * test_acc})
    return rows


@torch.no_grad()
def rescale_last_layer(model: nn.Module, alpha: float) -> nn.Module:
    """A copy computing the same function with different parameters (Dinh et al. 2017): the last BN's affine
    output scaled by alpha, the output layer's weights by 1 / alpha (ReLU is positively homogeneous)."""
    out = copy.deepcopy(model)
    bn = [m for m in out.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)][-1]
    last = [m for m in out.modules() if isinstance(m, nn.Linear)][-1]
    bn.weight.mul_(alpha), bn.bias.mul_(alpha)
    last.weight.div_(alpha)
    return out


def _mean_std(values: list[float]) -> tuple[float, float]:
    a = np.array(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


# ------------------------------------------------------------------------------------------------ experiments


def seed_experiment(p: Params, net: str, i: int, device: torch.device) -> dict:
    """Run i of a network: small and large batch from the same initialisation (seed + i), each with Metric 2.1
    and the top Hessian eigenvalue; run 0 also the 1-D interpolation between its two minimisers and, for F1,
    the rescaling check. Every run uses the same data subset and the same random subspace A (seed `seed`)."""
    sizes = net_sizes(p, net)
    split = load_split(NETWORKS[net][0], sizes["n_train"], sizes["n_test"], p.seed, device)
    measure_set = split.train.subset(sizes["sharpness_examples"])
    runs, models = [], {}
    subspace = None
    g0 = init_grad_norm(net, p.seed + i, split, measure_set, p.f1_width)
    for regime, bs, epochs in (("small_batch", sizes["small"], sizes["epochs"]),
                               ("large_batch", sizes["large"], sizes["large_epochs"])):
        model, row = train_run(net, split, seed=p.seed + i, batch_size=bs, epochs=epochs, lr=p.lr,
                               f1_width=p.f1_width)
        row["grad_norm_init"] = g0
        if subspace is None:
            subspace = random_subspace(sum(q.numel() for q in model.parameters()), p.subspace_dim, p.seed,
                                       device=device)
        row.update(regime=regime, **measure(model, measure_set, split.stats, p, subspace))
        runs.append(row)
        models[regime] = model
    out: dict = {"runs": runs}
    if i == 0:
        alphas = np.linspace(-1, 2, p.interp_points)
        out["interpolation"] = interpolate(models["small_batch"], models["large_batch"], split, alphas,
                                           sizes["interp_examples"], sizes["small"])
        out["n_params"] = sum(q.numel() for q in models["small_batch"].parameters())
        if net == "F1":
            out["rescaling"] = rescaling_check(models["small_batch"], split, measure_set, p, device)
    return {"metrics": {}, "data": out}


def net_experiment(p: Params, net: str, device: torch.device) -> dict:
    """A network's comparison computed in one go (run() stores each seed as a unit instead)."""
    return merge_seeds(p, net, [seed_experiment(p, net, i, device)["data"] for i in range(p.seeds)])


def merge_seeds(p: Params, net: str, seed_runs: list[dict]) -> dict:
    """A network's comparison from its runs' data (seed_experiment, in seed order)."""
    first = seed_runs[0]
    runs = [r for d in seed_runs for r in d["runs"]]
    out = {"runs": runs, "interpolation": first["interpolation"], "sizes": net_sizes(p, net),
           "n_params": first["n_params"]}
    if "rescaling" in first:
        out["rescaling"] = first["rescaling"]
    return {"metrics": summarize(runs), "data": out}


def rescaling_check(model: nn.Module, split: Split, measure_set: VisionData, p: Params,
                    device: torch.device) -> list[dict]:
    """The same function under three parametrisations: its accuracy, Metric 2.1 and top Hessian eigenvalue."""
    rows = []
    for alpha in (1 / p.dinh_alpha, 1.0, p.dinh_alpha):
        m = rescale_last_layer(model, alpha)
        test_loss, test_acc = evaluate(m, split.test, *split.stats)
        theta, value_and_grad, matvec = loss_closures(m, measure_set, split.stats)
        s = sharpness(value_and_grad, theta, p.sharpness_eps, maxiter=p.sharpness_iters, value_and_grad=True)
        top = lanczos(matvec, theta.numel(), p.lanczos_iters, device=device, dtype=theta.dtype, seed=p.seed)
        rows.append({"alpha": alpha, "test_loss": test_loss, "test_acc": 100 * test_acc,
                     "base_loss": s.base_loss, "sharpness": s.value, "hessian_top": float(top[0]),
                     "param_norm": float(theta.norm())})
    return rows


def summarize(runs: list[dict]) -> dict:
    """Mean and std over seeds of each regime's accuracies, sharpness values and Hessian eigenvalue."""
    out = {}
    keys = ["train_acc", "test_acc", "train_loss", "hessian_top", "grad_norm", "grad_norm_init",
            "first_order_large_eps", "first_order_small_eps",
            *(f"{s}_{e}" for s in ("full", "subspace") for e in ("large_eps", "small_eps"))]
    for regime in ("small_batch", "large_batch"):
        rows = [r for r in runs if r["regime"] == regime]
        for k in keys:
            vals = [r[k]["value"] if isinstance(r[k], dict) else r[k] for r in rows]
            out[f"{regime}_{k}"], out[f"{regime}_{k}_std"] = _mean_std(vals)
    # paired over seeds: LB / SB of the same seed
    sb = [r for r in runs if r["regime"] == "small_batch"]
    lb = [r for r in runs if r["regime"] == "large_batch"]
    out["test_gap"] = _mean_std([a["test_acc"] - b["test_acc"] for a, b in zip(sb, lb, strict=True)])
    out["grad_ratio_max"] = {reg: max(r["grad_norm"] / r["grad_norm_init"] for r in runs if r["regime"] == reg)
                             for reg in ("small_batch", "large_batch")}
    out["train_acc_min"] = {reg: min(r["train_acc"] for r in runs if r["regime"] == reg)
                            for reg in ("small_batch", "large_batch")}
    out["sharpness_ratio"] = float(np.exp(np.mean([np.log(max(b["full_large_eps"]["value"], 1e-12)
                                                         / max(a["full_large_eps"]["value"], 1e-12))
                                                  for a, b in zip(sb, lb, strict=True)])))
    out["hessian_ratio"] = float(np.exp(np.mean([np.log(max(b["hessian_top"], 1e-12) / max(a["hessian_top"], 1e-12))
                                                for a, b in zip(sb, lb, strict=True)])))
    out["sharpness_seconds"] = float(np.mean([r["full_large_eps"]["seconds"] for r in runs]))
    out["epoch_seconds_small_batch"] = float(np.mean([r["epoch_seconds"] for r in sb]))
    out["cost_in_epochs"] = out["sharpness_seconds"] / out["epoch_seconds_small_batch"]
    return out


def cheap_measures(model: nn.Module, measure_set: VisionData, split: Split, p: Params) -> dict:
    """Metric 2.1 in the random subspace (a full-space maximisation costs about a training epoch) and the top
    Hessian eigenvalue; the same A as the main runs (same seed, same dimensions)."""
    theta, value_and_grad, matvec = loss_closures(model, measure_set, split.stats)
    a = random_subspace(theta.numel(), p.subspace_dim, p.seed, device=theta.device)
    s = sharpness(value_and_grad, theta, p.sharpness_eps, subspace=a, maxiter=p.sharpness_iters,
                  value_and_grad=True)
    top = lanczos(matvec, theta.numel(), p.lanczos_iters, device=theta.device, dtype=theta.dtype, seed=p.seed)
    return {"subspace_sharpness": s.value, "hessian_top": float(top[0])}


def optimizers_experiment(p: Params, device: torch.device) -> dict:
    """F1 with SGD and Adagrad (and the Adam runs' settings otherwise), small vs large batch."""
    sizes = net_sizes(p, "F1")
    split = load_split("mnist", sizes["n_train"], sizes["n_test"], p.seed, device)
    measure_set = split.train.subset(sizes["sharpness_examples"])
    runs = []
    for opt, lr in (("sgd", p.lr_sgd), ("adagrad", p.lr_adagrad)):
        for i in range(p.extension_seeds):
            for regime, bs, epochs in (("small_batch", sizes["small"], sizes["epochs"]),
                                       ("large_batch", sizes["large"], sizes["large_epochs"])):
                model, row = train_run("F1", split, seed=p.seed + i, batch_size=bs, epochs=epochs, lr=lr,
                                       optimizer=opt, f1_width=p.f1_width)
                runs.append({**row, "regime": regime, "optimizer": opt, **cheap_measures(model, measure_set, split, p)})
    return {"metrics": {"runs": len(runs)}, "data": {"runs": runs}}


def remedy_lr(p: Params, small: int, large: int) -> float:
    factor = {"sqrt": math.sqrt(large / small), "linear": large / small, "none": 1.0}[p.remedy_scaling]
    return p.lr * factor


def remedy_experiment(p: Params, device: torch.device) -> dict:
    """F1's large batch with Hoffer et al.'s learning-rate scaling, same seeds and epochs as the Adam runs."""
    sizes = net_sizes(p, "F1")
    split = load_split("mnist", sizes["n_train"], sizes["n_test"], p.seed, device)
    measure_set = split.train.subset(sizes["sharpness_examples"])
    lr = remedy_lr(p, sizes["small"], sizes["large"])
    runs = []
    for i in range(p.seeds):
        model, row = train_run("F1", split, seed=p.seed + i, batch_size=sizes["large"], epochs=sizes["large_epochs"],
                               lr=lr, f1_width=p.f1_width)
        runs.append({**row, "regime": "large_batch_remedy", **cheap_measures(model, measure_set, split, p)})
    return {"metrics": {"lr": lr, "test_acc": _mean_std([r["test_acc"] for r in runs])}, "data": {"runs": runs}}


def hoffer_experiment(p: Params, i: int, device: torch.device) -> dict:
    """Run i of Hoffer et al.'s comparison on F1: the small batch for `hoffer_epochs`; the large batch for as
    many updates as the small one ("train longer"), snapshotted after `hoffer_epochs` epochs (the plain large
    batch: the same trajectory, fewer updates). ||w - w0|| along both; at the three points the accuracies, the
    gradient norm and Metric 2.1 (full space, large eps) with its first-order part."""
    sz = hoffer_sizes(p)
    split = load_split("mnist", sz["n_train"], sz["n_test"], p.seed, device)
    measure_set = split.train.subset(sz["sharpness_examples"])
    g0 = init_grad_norm("F1", p.seed + i, split, measure_set, p.f1_width)

    def measured(model: nn.Module) -> dict:
        theta, value_and_grad, _ = loss_closures(model, measure_set, split.stats)
        s = sharpness(value_and_grad, theta, p.sharpness_eps, maxiter=p.sharpness_iters, value_and_grad=True)
        out = {**evaluation(model, split), **gradient_measures(value_and_grad, theta, p), "grad_norm_init": g0,
               "full_large_eps": s.value}
        model.train()
        return out

    snapshot: dict = {}
    sb_model, sb = train_run("F1", split, seed=p.seed + i, batch_size=sz["small"], steps=sz["small_steps"], lr=p.lr,
                      f1_width=p.f1_width)
    sb.update(measured(sb_model))
    long_model, long = train_run("F1", split, seed=p.seed + i, batch_size=sz["large"], steps=sz["long_steps"],
                                 lr=p.lr, f1_width=p.f1_width, snapshot_at=sz["large_steps"],
                                 on_snapshot=lambda m: snapshot.update(measured(m), steps=sz["large_steps"]))
    long.update(measured(long_model))
    plain = {"seed": p.seed + i, "batch_size": sz["large"], "epochs": p.hoffer_epochs, **snapshot,
             "distance": [d for d in long["distance"] if d["step"] <= sz["large_steps"]]}
    runs = [{**sb, "regime": "small_batch"}, {**plain, "regime": "large_batch"},
            {**long, "regime": "large_batch_long"}]
    return {"metrics": {}, "data": {"runs": runs, "sizes": sz}}


def log_fit(rows: list[dict], from_step: int = 10) -> dict:
    """Least squares ||w_t - w0|| = a + b log t over t >= from_step: slope b, R^2; and the same for a power law
    log ||w_t - w0|| = c + k log t (exponent k), so the two descriptions can be compared."""
    t = np.array([r["step"] for r in rows if r["step"] >= from_step], dtype=float)
    d = np.array([r["distance"] for r in rows if r["step"] >= from_step], dtype=float)
    if len(t) < 3:
        return {"slope": math.nan, "r2": math.nan, "exponent": math.nan, "power_r2": math.nan, "points": len(t)}

    def fit(x, y):
        coef = np.polyfit(x, y, 1)
        resid = y - np.polyval(coef, x)
        return float(coef[0]), float(1 - resid.var() / y.var()) if y.var() > 0 else math.nan

    slope, r2 = fit(np.log(t), d)
    exponent, power_r2 = fit(np.log(t), np.log(d))
    return {"slope": slope, "r2": r2, "exponent": exponent, "power_r2": power_r2, "points": len(t)}


# What a minimiser needs, in measured terms. Keskar et al.'s minimisers reach 99.1-99.99% train accuracy
# (Table 2), so a network below 99% has not reached their regime. The gradient norm of f must have fallen by
# a factor 10 from initialisation: at a minimiser it would be 0, and a first-order term eps sum |g_i|(|x_i|+1)
# that has not shrunk an order of magnitude still dominates Metric 2.1 (see the chapter's first-order table).
MIN_TRAIN_ACC = 99.0
MAX_GRAD_RATIO = 0.1


def minimiser_conditions(label: str, train_acc: float, grad_ratio: float) -> list:
    return [at_least(f"{label} train accuracy (%, worst run)", train_acc, MIN_TRAIN_ACC),
            at_most(f"{label} gradient norm / at initialisation (worst run)", grad_ratio, MAX_GRAD_RATIO)]


def minimiser_regime(net: str, metrics: dict) -> Regime:
    """Keskar et al. compare minimisers: both the SB and the LB networks of every run must be one."""
    conds = []
    for reg, label in (("small_batch", "SB"), ("large_batch", "LB")):
        conds += minimiser_conditions(label, metrics["train_acc_min"][reg], metrics["grad_ratio_max"][reg])
    return Regime(net, "SB and LB minimisers: train accuracy near 100% and a small gradient", conds)


def hoffer_runs(data: dict, regime: str) -> list[dict]:
    return [r for d in data for r in d["runs"] if r["regime"] == regime]


def train_longer_regime(data: list[dict]) -> Regime:
    """Train longer compares the small batch with a large batch given as many updates, both trained."""
    conds = []
    for reg, label in (("small_batch", "SB"), ("large_batch_long", "LB, SB's updates")):
        runs = hoffer_runs(data, reg)
        conds += minimiser_conditions(label, min(r["train_acc"] for r in runs),
                                      max(r["grad_norm"] / r["grad_norm_init"] for r in runs))
    return Regime("F1, train longer", "SB and the long LB run trained to a minimiser", conds)


def distance_regime(data: list[dict]) -> Regime:
    """A logarithmic law is only tested over a range of update counts: at least two decades past t = 10."""
    steps = min(r["steps"] for r in hoffer_runs(data, "small_batch"))
    return Regime("F1, distance from initialisation", "updates spanning at least two decades past 10",
                  [at_least("SB updates (decades past 10)", math.log10(steps / 10), 2.0)])


NET_FIELDS = ("seed", "seeds", "lr", "large_batch_fraction", "sharpness_eps", "sharpness_eps_small",
              "sharpness_iters", "subspace_dim", "lanczos_iters", "interp_points", "interp_examples")
F1_FIELDS = ("f1_width", "batch_size", "epochs", "large_batch_epochs", "n_train", "n_test", "sharpness_examples",
             "dinh_alpha")
CIFAR_FIELDS = ("cifar_train", "cifar_test", "cifar_batch_size", "cifar_epochs", "cifar_large_batch_epochs",
                "cifar_sharpness_examples")
HOFFER_FIELDS = ("seed", "lr", "large_batch_fraction", "f1_width", "n_test", "sharpness_examples", "sharpness_eps",
                 "sharpness_eps_small", "sharpness_iters", "hoffer_train", "hoffer_batch_size", "hoffer_epochs")
EXTENSION_FIELDS = ("seed", "extension_seeds", "lr_sgd", "lr_adagrad", "sharpness_eps", "sharpness_iters",
                    "subspace_dim", "lanczos_iters", "large_batch_fraction",
                    *F1_FIELDS[:-1])
REMEDY_FIELDS = ("seed", "seeds", "lr", "large_batch_fraction", "remedy_scaling", "sharpness_eps",
                 "sharpness_iters", "subspace_dim", "lanczos_iters", *F1_FIELDS[:-1])


def _measure_images(p: Params, sizes: dict[str, int], runs: int) -> float:
    """Image passes of the measurements of `runs` trained networks: four Metric 2.1 maximisations (L-BFGS-B,
    about 1.5 evaluations per iteration) and Lanczos (an HVP is about two passes) on the sharpness examples."""
    return runs * sizes["sharpness_examples"] * (4 * 1.5 * p.sharpness_iters + 2 * p.lanczos_iters)


def units(p: Params) -> list[Unit]:
    """One unit per network and seed (both batch regimes with their measurements; the first seed also the
    interpolation), then the optimizers' extension and the remedy on F1."""
    device = get_device(p.device)
    cfg = p.to_dict()

    def unit(name: str, experiment: str, fields: tuple[str, ...], fn, model: str, images: float,
             **extra) -> Unit:
        return make_unit("sharp_minima", name, experiment, VERSION, {**{k: cfg[k] for k in fields}, **extra}, fn,
                         device, Work(model, images))

    found = []
    for net in p.network_list():
        sz = net_sizes(p, net)
        train_images = (sz["epochs"] * (sz["n_train"] // sz["small"] * sz["small"])
                        + sz["large_epochs"] * (sz["n_train"] // sz["large"] * sz["large"]))
        interp = p.interp_points * (2 * sz["interp_examples"] + sz["n_test"]) / 3
        fields = tuple(f for f in NET_FIELDS if f != "seeds") + (F1_FIELDS if net == "F1" else CIFAR_FIELDS)
        for i in range(p.seeds):  # a run does not depend on how many runs there are
            found.append(unit(f"net/{net}/seed{p.seed + i}", "sharp_minima_seed", fields,
                              lambda net=net, i=i: seed_experiment(p, net, i, device), BENCH_MODEL[net],
                              train_images + _measure_images(p, sz, 2) + (interp if i == 0 else 0), network=net,
                              run=i))
    if "F1" in p.network_list():
        sz = net_sizes(p, "F1")
        per_run = (sz["epochs"] + sz["large_epochs"]) * sz["n_train"] / 2
        if p.extension_seeds:
            found.append(unit("optimizers", "sharp_minima_optimizers", EXTENSION_FIELDS,
                              lambda: optimizers_experiment(p, device), "F1",
                              4 * p.extension_seeds * per_run + _measure_images(p, sz, 4 * p.extension_seeds) / 4))
        found.append(unit("remedy", "sharp_minima_remedy", REMEDY_FIELDS, lambda: remedy_experiment(p, device), "F1",
                          p.seeds * sz["large_epochs"] * sz["n_train"] + _measure_images(p, sz, p.seeds) / 4))
        hs = hoffer_sizes(p)
        for i in range(p.seeds):
            found.append(unit(f"hoffer/seed{p.seed + i}", "sharp_minima_hoffer", HOFFER_FIELDS,
                              lambda i=i: hoffer_experiment(p, i, device), "F1",
                              hs["small_steps"] * (hs["small"] + hs["large"])
                              + 3 * hs["sharpness_examples"] * 1.5 * p.sharpness_iters, run=i))
    return found


# the bench network whose measured throughput stands for each network (C3, C4: C1, C2 with 100 outputs)
BENCH_MODEL = {"F1": "F1", "C1": "C1", "C2": "C2", "C3": "C1", "C4": "C2"}


def run(p: Params, store: Store | None = None, force: bool | None = None) -> Result:
    """Every network's comparison (merged from its seed units), the optimizers' extension and the remedy, each
    stored on its own, gathered into one stored result."""
    store = store or Store()
    device = get_device(p.device)
    if store.trains:
        for net in p.network_list():  # missing data stops the run before any training
            load_dataset(NETWORKS[net][0], "test", "cpu")

    cfg = p.to_dict()
    found = units(p)

    def net_part(net: str) -> Result:  # a network's comparison, merged from its seed units
        mine = [u for u in found if u.name.startswith(f"net/{net}/")]
        config = {**{k: cfg[k] for k in NET_FIELDS + (F1_FIELDS if net == "F1" else CIFAR_FIELDS)}, "network": net}
        return store.run("sharp_minima_net", VERSION, config,
                         lambda: merge_seeds(p, net, [run_unit(store, u, force).data for u in mine]),
                         device=device, force=force)

    def compute() -> dict:
        parts = {net: net_part(net) for net in p.network_list()}
        parts |= {u.name: run_unit(store, u, force) for u in found if not u.name.startswith("net/")}
        return {"metrics": {k: v.metrics for k, v in parts.items()},
                "data": {"parts": {k: {"experiment": v.experiment, "key": v.key, "cached": v.cached,
                                       "provenance": v.provenance} for k, v in parts.items()},
                         **{k: v.data for k, v in parts.items()}}}

    return store.run("sharp_minima", VERSION, cfg, compute, device=device, force=force)
