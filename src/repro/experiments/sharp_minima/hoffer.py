"""Hoffer et al. 2017 on F1: the weights' distance from initialisation against the number of updates, and "train
longer": the large batch given as many updates as the small batch."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from repro.metrics.sharpness import sharpness

from .common import evaluation, gradient_measures, init_grad_norm, load_split, loss_closures, train_run
from .config import Params, hoffer_sizes


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


