"""The edge of stability (Cohen et al. 2021): full-batch gradient descent on a CIFAR-10 subset with Cohen et al.'s
fc-tanh network and the squared loss, the sharpness (the loss Hessian's top eigenvalue) tracked along training.

Each main run's 2/eta is set well above the sharpness at initialisation (eos_edge_min to eos_edge_max times it), so
it starts stable and only progressive sharpening can bring it to the edge; a control with a smaller eta (2/eta =
eos_control times the initial sharpness) trains for the same physical time eta * t and shows where the sharpness
goes when no edge stops it. Every run measures the error of its Lanczos estimates against a converged float64
eigenvalue of the same network, at two points of the last third of training, where the edge makes the top of the
spectrum crowd and Lanczos converge slowest."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
import torch.nn.functional as F

from repro.data import load_dataset
from repro.metrics.hessian import functional, hessian_top_eigenvalue
from repro.store import Result

from .nets import MATVEC_IN_GRADIENTS, accuracy, gd_squared_loss
from .params import Params, resolve_device
from .phases import thin

# Reached: the sharpness at least EOS_REACH * 2/eta (the summary's "reached_at"; the verdicts' thresholds are in
# verdicts.py).
EOS_REACH = 0.9
# The reference for the Lanczos error: this many iterations in float64 (converged to ~1e-15 on this network; see the
# chapter), at the measurements nearest to these fractions of training.
REFERENCE_ITERS = 30
REFERENCE_AT = (0.75, 1.0)
CONTROL = "control"


def eos_net(p: Params) -> torch.nn.Sequential:
    """Cohen et al.'s fc-tanh (two tanh hidden layers with biases, PyTorch's default initialisation), narrower
    at book scale; built on the CPU from the seed, so the weights are the same on every device."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(p.seed)
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3072, p.eos_width), torch.nn.Tanh(),
                                   torch.nn.Linear(p.eos_width, p.eos_width), torch.nn.Tanh(),
                                   torch.nn.Linear(p.eos_width, 10))


def in_data_span(net: torch.nn.Sequential, x: torch.Tensor) -> tuple[torch.nn.Sequential, torch.Tensor]:
    """The same network in coordinates of the training images' span. The first layer only ever sees W1 x for x in
    that span, and gradient descent only moves W1 within it, so with an orthonormal basis Q of the span (QR of the
    m x 3072 images) the network W1 -> W1 Q on the inputs x Q has the same outputs, losses, gradient steps and
    nonzero Hessian eigenvalues: an exact change of coordinates, 3072 / m times fewer multiplications in the first
    layer. With m >= 3072 images the span is everything and nothing changes."""
    if x.shape[0] >= x.shape[1]:
        return net, x
    q, r = torch.linalg.qr(x.T)  # x.T = Q R, so x Q = R^T
    first = net[1]
    layer = torch.nn.Linear(q.shape[1], first.out_features)
    with torch.no_grad():
        layer.weight.copy_(first.weight @ q)
        layer.bias.copy_(first.bias)
    return torch.nn.Sequential(layer, *list(net)[2:]), r.T.contiguous()


def eos_edges(p: Params, sharpness0: float) -> np.ndarray:
    """The main runs' 2/eta, from eos_edge_min to eos_edge_max times the sharpness at initialisation."""
    return np.linspace(p.eos_edge_min, p.eos_edge_max, p.eos_lrs) * sharpness0


def run_flops(p: Params, factor: float) -> float:
    """The FLOPs of one run at 2/eta = factor x the initial sharpness: its gradient steps, its Lanczos products
    (MATVEC_IN_GRADIENTS gradients each; the float64 references count twice) on fc-tanh in the span coordinates."""
    inputs = min(p.eos_n_train, 3072)
    per_image = 6.0 * (inputs * p.eos_width + p.eos_width * p.eos_width + p.eos_width * 10) - 2.0 * inputs * p.eos_width
    steps = math.ceil(p.eos_time * factor / 2)
    products = p.lanczos_iters * (p.eos_measurements + 2) + 2 * len(REFERENCE_AT) * REFERENCE_ITERS
    return per_image * p.eos_n_train * (steps + MATVEC_IN_GRADIENTS * products)


def eos_run(p: Params, index: int | str, device: torch.device) -> dict:
    """Full-batch GD at eta = 2 / eos_edges[index] (or the control's eta) on eos_n_train CIFAR-10 images (per-channel
    standardised, one-hot targets, L = (1/2m) sum |f - y|^2 as Cohen et al.) for physical time eta * t * sharpness0
    = eos_time, with eos_measurements + 1 sharpness measurements evenly spaced in time (so at the same physical times
    in every run)."""
    train = load_dataset("cifar10", "train", device).subset(p.eos_n_train, torch.Generator().manual_seed(p.seed))
    x = train.x.float() / 255
    x = ((x - x.mean((0, 2, 3), keepdim=True)) / x.std((0, 2, 3), keepdim=True)).flatten(1)
    t, m = F.one_hot(train.y, 10).float(), x.shape[0]
    net, x = in_data_span(eos_net(p), x.cpu())
    x = x.to(device)
    theta, apply = functional(net.to(device))

    def loss_fn(th, xx=x, tt=t):
        return 0.5 * (apply(th, xx) - tt).pow(2).sum() / m

    def sharpness(th):
        return hessian_top_eigenvalue(loss_fn, th, p.lanczos_iters, seed=p.seed)

    def reference(th):  # the same sharpness, converged, in float64
        th64, x64, t64 = th.double(), x.double(), t.double()
        return hessian_top_eigenvalue(lambda w: loss_fn(w, x64, t64), th64, REFERENCE_ITERS, seed=p.seed)

    sharpness0 = sharpness(theta)
    factor = p.eos_control if index == CONTROL else float(eos_edges(p, 1.0)[int(index)])
    edge = factor * sharpness0
    lr = 2 / edge
    steps = math.ceil(p.eos_time * factor / 2)  # eta * steps * sharpness0 = eos_time
    at = sorted({round(k * steps / p.eos_measurements) for k in range(p.eos_measurements + 1)})
    check = {at[min(len(at) - 1, round(f * (len(at) - 1)))] for f in REFERENCE_AT}
    checks = []

    def measure(step: int, th: torch.Tensor) -> float:
        value = sharpness(th)
        if step in check:
            checks.append((step, value, reference(th)))
        return value

    run = gd_squared_loss(apply, theta, x, t, lr, steps, measure, tuple(at))
    theta, losses, measured, diverged = run["theta"], run["loss"], run["measured"], run["diverged"]
    done, sharp = zip(*measured, strict=True)
    ratio = np.array(sharp) / edge
    reached = [s for s, r in zip(done, ratio, strict=True) if r >= EOS_REACH]
    last = ratio[np.array(done) >= steps * (1 - 1 / 3)]
    summary = {"control": index == CONTROL, "lr": lr, "edge": edge, "edge_factor": factor, "steps": steps,
               "sharpness0": sharpness0, "diverged": diverged, "initial_ratio": sharpness0 / edge,
               "initial_loss": losses[0], "final_loss": losses[-1], "loss_drop": losses[-1] / losses[0],
               "max_sharpness_ratio": float(ratio.max()), "final_sharpness": float(sharp[-1]),
               "reached_at": float(reached[0]) if reached else math.nan,
               "reached_fraction": reached[0] / steps if reached else math.nan,
               "median_ratio_last_third": float(np.median(last)) if len(last) else math.nan,
               "lanczos_error": max((abs(ref - est) / ref for _, est, ref in checks), default=math.nan),
               "train_accuracy": accuracy(apply, theta, x, train.y)}
    return {"summary": summary, "sharpness_steps": list(done), "sharpness": list(sharp),
            "lanczos_checks": [list(c) for c in checks], "loss_steps": thin(losses)[0], "loss": thin(losses)[1]}


def eos_unit(index: int | str, p: Params) -> dict:
    out = eos_run(p, index, resolve_device(p))
    return {"metrics": out["summary"], "data": out}


def eos_experiment(parts: dict[str, Result]) -> dict:
    """The main runs in order of eta (largest first), then the control."""
    keys = sorted((k for k in parts if k != CONTROL), key=int) + [CONTROL]
    return {"metrics": {k: parts[k].data["summary"] for k in keys}, "data": {k: parts[k].data for k in keys}}


@dataclasses.dataclass(frozen=True)
class EosRun:
    """One edge-of-stability run: its summary and its sharpness and loss curves."""

    control: bool
    lr: float
    edge: float  # 2 / eta
    edge_factor: float  # 2 / eta in units of the sharpness at initialisation
    steps: int
    sharpness0: float
    diverged: bool
    initial_ratio: float  # sharpness at initialisation / (2 / eta)
    initial_loss: float
    final_loss: float
    loss_drop: float
    max_sharpness_ratio: float
    final_sharpness: float
    reached_at: float
    reached_fraction: float
    median_ratio_last_third: float
    lanczos_error: float  # |converged - estimate| / converged, the worst of the checks
    train_accuracy: float
    sharpness_steps: list[int]
    sharpness: list[float]
    loss_steps: list[int]
    loss: list[float]

    @classmethod
    def from_stored(cls, data: dict) -> EosRun:
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**{n: data["summary"][n] if n in data["summary"] else data[n] for n in names})

    def time(self, steps: list[int]) -> np.ndarray:
        """Physical time eta * t * sharpness0 of the given steps."""
        return np.asarray(steps, dtype=float) * self.lr * self.sharpness0


@dataclasses.dataclass
class EosSection:
    """The stored edge-of-stability runs, read by the verdicts and figures."""

    result: Result

    @property
    def runs(self) -> list[EosRun]:
        """The main runs, largest eta first."""
        return [EosRun.from_stored(d) for k, d in self.result.data.items() if k != CONTROL]

    @property
    def control(self) -> EosRun:
        return EosRun.from_stored(self.result.data[CONTROL])

    @property
    def lanczos_error(self) -> float:
        """The worst Lanczos error measured in any run."""
        return max(r.lanczos_error for r in [*self.runs, self.control])

    @property
    def n_train(self) -> int:
        return int(self.result.config["eos_n_train"])

    @property
    def width(self) -> int:
        return int(self.result.config["eos_width"])

    @property
    def lanczos_iters(self) -> int:
        return int(self.result.config["lanczos_iters"])
