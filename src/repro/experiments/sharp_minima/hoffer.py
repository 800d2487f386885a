"""Hoffer et al. 2017 on F1: the weights' distance from initialisation against the number of updates; "more updates
alone" (Keskar's Adam, the large batch given as many updates as the small batch); and Hoffer et al.'s full recipe
(SGD with momentum, the large batch's learning rate scaled by sqrt(LB / SB), ghost batch norm, and their regime
adapted to as many updates as the small batch)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from repro.metrics.sharpness import sharpness
from repro.models.keskar import GhostBatchNorm1d
from repro.train.loop import Schedule, piecewise

from .common import Split, evaluation, init_grad_norm, load_split, loss_closures, train_run
from .config import Params, hoffer_sizes

# Hoffer et al.'s F1 regime (eladhoffer/bigBatch, models/mnist_f1.py): SGD, momentum 0.9, weight decay 1e-4, the
# learning rate 0.1 (at their batch of 128) divided by 10 at epochs 10, 20 and 30 of 50; here at the same fractions
# of the run's updates.
MOMENTUM = 0.9
WEIGHT_DECAY = 1e-4
DROPS = (0.2, 0.4, 0.6)


def hoffer_schedule(lr: float, steps: int) -> Schedule:
    """lr, divided by 10 at each fraction DROPS of `steps`, with weight decay WEIGHT_DECAY throughout."""
    bounds = [0] + [round(f * steps) for f in DROPS] + [steps]
    phases = zip(bounds[:-1], bounds[1:], strict=True)
    return piecewise([(b - a, lr * 0.1**k, WEIGHT_DECAY) for k, (a, b) in enumerate(phases)])


def measured(model: nn.Module, split: Split, measure_set, p: Params, g0: float) -> dict:
    """Accuracies, and Metric 2.1 (full space, large eps) on f with its first-order part, iterations and the
    gradient norm; ghost batches are a training device, so f is measured with plain batch statistics."""
    ghosts = [m for m in model.modules() if isinstance(m, GhostBatchNorm1d)]
    saved = [m.ghost_batch for m in ghosts]
    for m in ghosts:
        m.ghost_batch = 0
    theta, value_and_grad, _ = loss_closures(model, measure_set, split.stats, batch=p.bn_batch)
    s = sharpness(value_and_grad, theta, p.sharpness_eps, maxiter=p.sharpness_iters, value_and_grad=True)
    for m, g in zip(ghosts, saved, strict=True):
        m.ghost_batch = g
    return {**evaluation(model, split), "grad_norm": s.grad_norm, "grad_norm_init": g0,
            "full_large_eps": s.to_dict(), "first_order_large_eps": s.first_order}


def hoffer_experiment(p: Params, i: int, device: torch.device) -> dict:
    """Run i with Keskar's Adam: the small batch for `hoffer_epochs`; the large batch for as many updates as the
    small one ("train longer"), snapshotted after `hoffer_epochs` epochs (the plain large batch: the same
    trajectory, fewer updates). ||w - w0|| along both; each measured at its end."""
    sz = hoffer_sizes(p)
    split = load_split("mnist", sz["n_train"], sz["n_test"], p.seed, device)
    measure_set = split.train.subset(sz["sharpness_examples"])
    g0 = init_grad_norm("F1", p.seed + i, split, measure_set, p)
    snapshot: dict = {}
    sb_model, sb = train_run("F1", split, seed=p.seed + i, batch_size=sz["small"], steps=sz["small_steps"], lr=p.lr,
                             f1_width=p.f1_width)
    sb.update(measured(sb_model, split, measure_set, p, g0))
    long_model, long = train_run("F1", split, seed=p.seed + i, batch_size=sz["large"], steps=sz["long_steps"],
                                 lr=p.lr, f1_width=p.f1_width, snapshot_at=sz["large_steps"],
                                 on_snapshot=lambda m: snapshot.update(measured(m, split, measure_set, p, g0),
                                                                       steps=sz["large_steps"]))
    long.update(measured(long_model, split, measure_set, p, g0))
    plain = {"seed": p.seed + i, "batch_size": sz["large"], "epochs": p.hoffer_epochs, "optimizer": "adam",
             "lr": p.lr, **snapshot, "distance": [d for d in long["distance"] if d["step"] <= sz["large_steps"]]}
    runs = [{**sb, "regime": "small_batch"}, {**plain, "regime": "large_batch"},
            {**long, "regime": "large_batch_long"}]
    return {"metrics": {}, "data": {"runs": runs, "sizes": sz}}


def recipe_experiment(p: Params, i: int, device: torch.device) -> dict:
    """Run i of Hoffer et al.'s recipe, as their Table 1 builds it up: SGD with momentum and their regime for the
    small batch; the large batch with that regime unchanged (the same epochs); the large batch with the learning
    rate scaled by sqrt(LB / SB) and ghost batch norm (ghost batches of the small batch's size), the same epochs;
    and with the regime adapted as well, to the small batch's number of updates (the full recipe)."""
    sz = hoffer_sizes(p)
    split = load_split("mnist", sz["n_train"], sz["n_test"], p.seed, device)
    measure_set = split.train.subset(sz["sharpness_examples"])
    g0 = init_grad_norm("F1", p.seed + i, split, measure_set, p)
    scaled = p.hoffer_lr * math.sqrt(sz["large"] / sz["small"])
    runs = []
    for regime, batch, steps, lr, ghost in (("small_batch", sz["small"], sz["small_steps"], p.hoffer_lr, 0),
                                            ("large_batch", sz["large"], sz["large_steps"], p.hoffer_lr, 0),
                                            ("large_batch_lr_gbn", sz["large"], sz["large_steps"], scaled,
                                             sz["small"]),
                                            ("large_batch_recipe", sz["large"], sz["small_steps"], scaled,
                                             sz["small"])):
        model, row = train_run("F1", split, seed=p.seed + i, batch_size=batch, steps=steps, lr=lr,
                               optimizer="sgd", momentum=MOMENTUM, schedule=hoffer_schedule(lr, steps),
                               f1_width=p.f1_width, ghost_batch=ghost)
        runs.append({**row, **measured(model, split, measure_set, p, g0), "regime": regime, "ghost_batch": ghost})
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
