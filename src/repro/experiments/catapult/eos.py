"""The edge of stability (Cohen et al. 2021): full-batch gradient descent on a CIFAR-10 subset with Cohen et al.'s
fc-tanh network and the squared loss, the sharpness (the loss Hessian's top eigenvalue) tracked along training,
at several eta."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
import torch.nn.functional as F

from repro.data import load_dataset
from repro.metrics.hessian import functional, hessian_top_eigenvalue
from repro.store import Result

from .nets import accuracy
from .params import Params, resolve_device
from .phases import DIVERGED, thin

# Reached: the sharpness at least EOS_REACH * 2/eta (the summary's "reached_at"; the verdicts' thresholds are in
# verdicts.py).
EOS_REACH = 0.9


def eos_net(p: Params) -> torch.nn.Module:
    """Cohen et al.'s fc-tanh (two tanh hidden layers with biases, PyTorch's default initialisation), narrower
    at book scale; built on the CPU from the seed, so the weights are the same on every device."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(p.seed)
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3072, p.eos_width), torch.nn.Tanh(),
                                   torch.nn.Linear(p.eos_width, p.eos_width), torch.nn.Tanh(),
                                   torch.nn.Linear(p.eos_width, 10))


def eos_edges(p: Params, sharpness0: float) -> np.ndarray:
    """The runs' 2/eta, from eos_edge_min to eos_edge_max times the sharpness at initialisation: each run starts
    stable (sharpness below 2/eta), so reaching the edge needs progressive sharpening."""
    return np.linspace(p.eos_edge_min, p.eos_edge_max, p.eos_lrs) * sharpness0


def eos_run(p: Params, index: int, device: torch.device) -> dict:
    """Full-batch GD at eta = 2 / eos_edges[index] on eos_n_train CIFAR-10 images (per-channel standardised,
    one-hot targets, L = (1/2m) sum |f - y|^2 as Cohen et al.), with the sharpness every eos_every steps."""
    train = load_dataset("cifar10", "train", device).subset(p.eos_n_train, torch.Generator().manual_seed(p.seed))
    x = train.x.float() / 255
    x = (x - x.mean((0, 2, 3), keepdim=True)) / x.std((0, 2, 3), keepdim=True)
    t, m = F.one_hot(train.y, 10).float(), x.shape[0]
    theta, apply = functional(eos_net(p).to(device))

    def loss_fn(th):
        return 0.5 * (apply(th, x) - t).pow(2).sum() / m

    def sharpness(th):
        return hessian_top_eigenvalue(loss_fn, th, p.lanczos_iters, seed=p.seed)

    sharpness0 = sharpness(theta)
    edge = float(eos_edges(p, sharpness0)[index])
    lr = 2 / edge
    grad_and_loss = torch.func.grad_and_value(loss_fn)
    losses, measured, diverged = [], [], False
    for step in range(p.eos_steps + 1):
        if step % p.eos_every == 0 or step == p.eos_steps:
            measured.append((step, sharpness(theta)))
        if step == p.eos_steps:
            losses.append(float(loss_fn(theta)))
            break
        g, loss = grad_and_loss(theta)
        losses.append(float(loss))
        if not math.isfinite(losses[-1]) or losses[-1] > DIVERGED * losses[0]:
            diverged = True
            break
        theta = theta - lr * g
    steps, sharp = zip(*measured, strict=True)
    ratio = np.array(sharp) / edge
    reached = [s for s, r in zip(steps, ratio, strict=True) if r >= EOS_REACH]
    last = ratio[np.array(steps) >= p.eos_steps * (1 - 1 / 3)]
    summary = {"lr": lr, "edge": edge, "sharpness0": sharpness0, "diverged": diverged,
               "initial_loss": losses[0], "final_loss": losses[-1], "loss_drop": losses[-1] / losses[0],
               "max_sharpness_ratio": float(ratio.max()),
               "reached_at": float(reached[0]) if reached else math.nan,
               "reached_fraction": reached[0] / p.eos_steps if reached else math.nan,
               "median_ratio_last_third": float(np.median(last)) if len(last) else math.nan,
               "train_accuracy": accuracy(apply, theta, x, train.y)}
    return {"summary": summary, "sharpness_steps": list(steps), "sharpness": list(sharp),
            "loss_steps": thin(losses)[0], "loss": thin(losses)[1]}


def eos_unit(index: int, p: Params) -> dict:
    out = eos_run(p, index, resolve_device(p))
    return {"metrics": out["summary"], "data": out}


def eos_experiment(parts: dict[str, Result]) -> dict:
    keys = sorted(parts, key=int)
    return {"metrics": {k: parts[k].data["summary"] for k in keys}, "data": {k: parts[k].data for k in keys}}


@dataclasses.dataclass(frozen=True)
class EosRun:
    """One edge-of-stability run: its summary and its sharpness and loss curves."""

    lr: float
    edge: float  # 2 / eta
    sharpness0: float
    diverged: bool
    initial_loss: float
    final_loss: float
    loss_drop: float
    max_sharpness_ratio: float
    reached_at: float
    reached_fraction: float
    median_ratio_last_third: float
    train_accuracy: float
    sharpness_steps: list[int]
    sharpness: list[float]
    loss_steps: list[int]
    loss: list[float]

    @classmethod
    def from_stored(cls, data: dict) -> EosRun:
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**{n: data["summary"][n] if n in data["summary"] else data[n] for n in names})


@dataclasses.dataclass
class EosSection:
    """The stored edge-of-stability runs, read by the verdicts and figures."""

    result: Result

    @property
    def runs(self) -> list[EosRun]:
        return [EosRun.from_stored(self.result.data[k]) for k in sorted(self.result.data, key=int)]

    @property
    def steps(self) -> int:
        return int(self.result.config["eos_steps"])
