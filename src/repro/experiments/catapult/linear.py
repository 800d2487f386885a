"""Deep linear networks with the logistic loss (Huang et al.): degenerate, non-separable and separable data; where
the lazy regime ends, the curvature reached, and test accuracy on the non-separable data. Every learning rate of a
sweep trains at once, as one batch of weight stacks."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
import torch.nn.functional as F

from repro.device import num_threads
from repro.metrics.hessian import functional, hessian_top_eigenvalue, ntk_top_eigenvalue
from repro.models.ntk import NTKMLP
from repro.store import Result

from .params import Params, resolve_device
from .phases import DIVERGED, LOGISTIC_LR_CRIT, classify, first_above, lr_grid, max_rise, thin

DATA_KINDS = ("degenerate", "nonseparable", "separable")
KIND_LABEL = {"degenerate": "degenerate", "nonseparable": "non-separable", "separable": "separable"}
N_TEST = 5000  # fresh test points, labels from the clean teacher


def linear_data(kind: str, p: Params, n: int, seed: int, device: torch.device, noisy: bool = True):
    """Degenerate: every x is the same point sqrt(d) e_1, labels +1 and -1 in turn (non-separable, all in one
    direction). Otherwise x ~ N(0, I_d) and y = sign(<w*, x>), with a dl_label_noise fraction of the labels
    flipped for the non-separable data (and none for the test set)."""
    g = torch.Generator().manual_seed(seed)
    d = p.dl_dim
    if kind == "degenerate":
        x = torch.zeros(n, d)
        x[:, 0] = math.sqrt(d)
        y = torch.where(torch.arange(n) % 2 == 0, 1.0, -1.0)
        return x.to(device), y.to(device)
    w_star = torch.randn(d, generator=torch.Generator().manual_seed(p.seed))
    x = torch.randn(n, d, generator=g)
    y = torch.sign(x @ w_star)
    if kind == "nonseparable" and noisy:
        flip = torch.randperm(n, generator=g)[: round(p.dl_label_noise * n)]
        y[flip] = -y[flip]
    return x.to(device), y.to(device)


def linear_sweep(kind: str, p: Params, device: torch.device, grid: np.ndarray | None = None) -> dict:
    """One learning-rate sweep on one kind of data: eta * lambda0 on `grid` (default: sweep_size rates, a quarter
    from 4 to 7.6 on the lazy side, the rest geometric from 8.8 to dl_lr_max_factor), each for dl_steps."""
    x, y = linear_data(kind, p, p.dl_n_train, p.seed + 1, device)
    x_test, y_test = linear_data(kind, p, N_TEST, p.seed + 2, device, noisy=False)
    model = NTKMLP(p.dl_dim, p.dl_width, p.dl_depth - 1, 1, "linear", seed=p.seed).to(device)
    theta0, apply = functional(model)

    def loss_fn(th):
        return F.softplus(-y * apply(th, x)[:, 0]).mean()  # logistic loss log(1 + e^{-y f})

    def outputs(th):
        return apply(th, x)

    lambda0 = ntk_top_eigenvalue(outputs, theta0, p.lanczos_iters, seed=p.seed)
    hessian0 = hessian_top_eigenvalue(loss_fn, theta0, p.lanczos_iters, seed=p.seed)
    if grid is None:
        n_low = max(2, p.sweep_size // 4)
        grid = lr_grid(n_low, p.sweep_size - n_low, p.dl_lr_max_factor, LOGISTIC_LR_CRIT)
    # every learning rate at once: one weight stack per layer with a leading run axis (batched matmuls), and the
    # gradient of the summed losses, which for independent runs is each run's own gradient
    lrs = torch.as_tensor(grid / lambda0, dtype=theta0.dtype, device=theta0.device)
    layers = [*model.hidden, model.readout]
    weights = [layer.weight.detach().expand(len(grid), *layer.weight.shape).clone() for layer in layers]

    def batched_loss(ws: list[torch.Tensor]) -> torch.Tensor:
        h = x.expand(len(grid), *x.shape)
        for w, layer in zip(ws, layers, strict=True):
            h = torch.matmul(h, w.transpose(1, 2)) * layer.scale
        return F.softplus(-y * h[..., 0]).mean(1)

    losses = torch.empty(p.dl_steps + 1, len(grid), dtype=torch.float64)
    diverged = torch.zeros(len(grid), dtype=torch.bool, device=theta0.device)
    first = None
    for step in range(p.dl_steps + 1):
        ws = [w.requires_grad_(True) for w in weights]
        loss = batched_loss(ws)
        grads = torch.autograd.grad(loss.sum(), ws)
        loss = loss.detach()
        first = loss if first is None else first
        diverged |= ~torch.isfinite(loss) | (loss > DIVERGED * first)
        losses[step] = torch.where(diverged, torch.inf, loss).double().cpu()
        if step < p.dl_steps:  # a diverged run is frozen where it was, and recorded as diverged
            keep = diverged.view(-1, 1, 1)
            weights = [torch.where(keep, w.detach(), w.detach() - lrs.view(-1, 1, 1) * g)
                       for w, g in zip(ws, grads, strict=True)]
    thetas = torch.cat([w.detach().flatten(1) for w in weights], 1)  # same order as functional(model)
    runs = []
    for j, c in enumerate(grid):
        curve = losses[:, j].tolist()
        bad = bool(diverged[j])
        if bad:
            curve = curve[: curve.index(math.inf) + 1]
        row = {"lr_factor": float(c), "lr": float(lrs[j]), "diverged": bad,
               "outcome": classify(max_rise(curve), bad), "max_rise": max_rise(curve),
               "max_loss_ratio": max(curve[1:]) / curve[0], "final_loss": curve[-1],
               "loss_steps": thin(curve)[0], "loss": thin(curve)[1]}
        if not bad:
            theta = thetas[j]
            sharp = hessian_top_eigenvalue(loss_fn, theta, p.lanczos_iters, seed=p.seed)
            with torch.no_grad():  # degenerate data have no test set worth the name
                acc = (float((torch.sign(apply(theta, x_test)[:, 0]) == y_test).float().mean())
                       if kind != "degenerate" else math.nan)
            row.update(hessian_final=sharp, lr_hessian_final=float(lrs[j]) * sharp, test_accuracy=acc,
                       weight_norm=float(theta.norm()))
        runs.append(row)
    factors = [r["lr_factor"] for r in runs]
    finite = [r for r in runs if not r["diverged"]]
    catapult = [r for r in finite if r["outcome"] == "catapult"]
    lazy = [r for r in finite if r["outcome"] == "lazy"]
    # the lazy edge predicted from the minimum the smallest rate reached: eta * lambda_H(minimum) = 2
    smallest = runs[0] if not runs[0]["diverged"] else None
    summary = {"kind": kind, "lambda0": lambda0, "hessian0": hessian0,
               "lr_crit_from_minimum": 2 * lambda0 / smallest["hessian_final"] if smallest else math.nan,
               "lr_crit": first_above(factors, [r["outcome"] != "lazy" for r in runs]),
               "lr_max": first_above(factors, [r["diverged"] for r in runs]),
               "catapult_below_edge": (sum(r["lr_hessian_final"] < 2 for r in catapult) / len(catapult)
                                       if catapult else math.nan),
               "sharpness_lazy": float(np.median([r["hessian_final"] for r in lazy])) if lazy else math.nan,
               "sharpness_catapult": (float(np.median([r["hessian_final"] for r in catapult]))
                                      if catapult else math.nan),
               "test_accuracy_lazy": float(np.mean([r["test_accuracy"] for r in lazy])) if lazy else math.nan,
               "test_accuracy_catapult": (float(np.mean([r["test_accuracy"] for r in catapult]))
                                          if catapult else math.nan)}
    return {"summary": summary, "runs": runs}


def linear_unit(kind: str, p: Params) -> dict:
    """One data kind's deep-linear sweep, a unit of its own (one thread: tiny matrices)."""
    with num_threads(1):
        out = linear_sweep(kind, p, resolve_device(p))
    return {"metrics": out["summary"], "data": out}


def linear_experiment(parts: dict[str, Result]) -> dict:
    """The three data kinds' sweeps, merged from their units."""
    return {"metrics": {kind: parts[kind].data["summary"] for kind in DATA_KINDS},
            "data": {kind: parts[kind].data for kind in DATA_KINDS}}



@dataclasses.dataclass(frozen=True)
class LinearSweep:
    """One data kind's sweep: its summary and its runs (one row per eta * lambda0)."""

    kind: str
    lambda0: float
    hessian0: float
    lr_crit_from_minimum: float
    lr_crit: float
    lr_max: float
    catapult_below_edge: float
    sharpness_lazy: float
    sharpness_catapult: float
    test_accuracy_lazy: float
    test_accuracy_catapult: float
    runs: list[dict]

    @classmethod
    def from_stored(cls, data: dict) -> LinearSweep:
        names = [f.name for f in dataclasses.fields(cls) if f.name != "runs"]
        return cls(runs=data["runs"], **{n: data["summary"][n] for n in names})

    @property
    def final_loss_spread(self) -> float:
        """Largest over smallest final loss of the runs that did not diverge: 1 when every run reached the same
        minimum."""
        final = [r["final_loss"] for r in self.runs if not r["diverged"]]
        return max(final) / min(final) if final else math.nan


@dataclasses.dataclass
class LinearSection:
    """The stored deep-linear sweeps, read by the verdicts and figures."""

    result: Result

    @property
    def kinds(self) -> dict[str, LinearSweep]:
        return {k: LinearSweep.from_stored(self.result.data[k]) for k in DATA_KINDS}

    @property
    def steps(self) -> int:
        return int(self.result.config["dl_steps"])
