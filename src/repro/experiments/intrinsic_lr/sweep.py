"""Steps to equilibrium against 1 / lambda_e in the network (reviewer 1, question 2)."""

from __future__ import annotations

import math

import numpy as np

from .measure import log_fit, settle_step, summary
from .net import NetSetup, train_run
from .params import Params


def net_sweep(p: Params, s: NetSetup) -> dict:
    """Reviewer 1, question 2: steps to equilibrium against 1 / lambda_e, with lr = wd = sqrt(lambda_e)."""
    lams = np.geomspace(p.sweep_min_intrinsic_lr, p.sweep_max_intrinsic_lr, p.sweep_size)
    rows = []
    for le in lams:
        rate = float(math.sqrt(le))
        steps = int(p.sweep_relaxation_times / le)
        r = train_run(p, s, [(steps, rate, rate)], label=f"lambda_e {le:.2g}")
        n = r["norms"]
        step = np.array(n["step"])
        settle = {g: settle_step(np.array(v), p.equilibrium_tol, steps=step) for g, v in n["sq_norm"].items()}
        summ = summary(r, steps // 2, steps, rate, rate)
        # every layer must have settled: a layer that has not makes the run's time to equilibrium unknown (NaN)
        rows.append({"intrinsic_lr": float(le), "lr": rate, "weight_decay": rate, "steps": steps,
                     "settle_steps": settle, "settle_steps_max": float(max(settle.values()))
                     if all(np.isfinite(v) for v in settle.values()) else math.nan,
                     "test_acc": float(r["history"]["test_acc"][-1]),
                     "equilibrium": summ, "norms": {"step": n["step"], "sq_norm": n["sq_norm"],
                                                    "angular": n["angular"]}})
    fit = log_fit([1 / r["intrinsic_lr"] for r in rows], [r["settle_steps_max"] for r in rows])
    layer_fits = {g: log_fit([1 / r["intrinsic_lr"] for r in rows], [r["settle_steps"][g] for r in rows])
                  for g in rows[0]["settle_steps"]}
    return {"rows": rows, "fit": fit, "layer_fits": layer_fits}
