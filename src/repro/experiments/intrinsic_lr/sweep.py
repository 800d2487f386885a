"""Steps to equilibrium against 1 / lambda_e in the network (reviewer 1, question 2).

Everything is measured in units of 1 / lambda_e: each run lasts `sweep_relaxation_times` / lambda_e steps, its
equilibrium level is the mean |w|^2 over the last SETTLE_WINDOW / lambda_e, and a layer has settled at the first
step where its |w|^2 comes within `equilibrium_tol` of that level before that final window. A run too short for
its layers to settle says so through the recursion's predicted settling time, stored beside the measured one."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from repro.metrics.norms import relaxation_steps
from repro.store import Result

from .measure import log_fit, settle_step, summary
from .net import NetSetup, train_run
from .params import Params
from .result import Fit, Trace, Window

# The final window that defines each run's equilibrium level, in units of 1 / lambda_e: long against the norm's
# fluctuations (|w|^4 relaxes at 4 lambda_e per step), short against the run.
SETTLE_WINDOW = 2.0


def net_sweep(p: Params, s: NetSetup) -> dict:
    """Reviewer 1, question 2: steps to equilibrium against 1 / lambda_e, with lr = wd = sqrt(lambda_e) (so the
    equilibrium norm, and the distance every run starts from, is about the same for every lambda_e)."""
    lams = np.geomspace(p.sweep_min_intrinsic_lr, p.sweep_max_intrinsic_lr, p.sweep_size)
    rows = []
    for le in lams:
        rate = float(math.sqrt(le))
        steps = int(p.sweep_relaxation_times / le)
        window = SETTLE_WINDOW / le
        r = train_run(p, s, [(steps, rate, rate)], label=f"lambda_e {le:.2g}")
        n = r["norms"]
        step = np.array(n["step"])
        settle, pred = {}, {}
        for g, v in n["sq_norm"].items():
            sq = np.array(v)
            settle[g] = settle_step(sq, p.equilibrium_tol, steps=step, final_steps=window)
            final = sq[step > steps - window].mean()
            # the recursion's time to come within tol from the first window's |w|^2 (about the initial norm)
            pred[g] = relaxation_steps(le, sq[0] / final, p.equilibrium_tol) + step[0]
        rows.append({"intrinsic_lr": float(le), "lr": rate, "weight_decay": rate, "steps": steps,
                     "window": window, "settle_steps": settle, "pred_settle_steps": pred,
                     # every layer must have settled: one that has not makes the run's time unknown (NaN)
                     "settle_steps_max": float(max(settle.values()))
                     if all(np.isfinite(v) for v in settle.values()) else math.nan,
                     "test_acc": float(r["history"]["test_acc"][-1]),
                     "equilibrium": summary(r, int(steps - window), steps, rate, rate),
                     "norms": {k: n[k] for k in ("step", "sq_norm", "angular", "grad_sq", "radial")}})
    fit = log_fit([1 / r["intrinsic_lr"] for r in rows], [r["settle_steps_max"] for r in rows])
    layer_fits = {g: log_fit([1 / r["intrinsic_lr"] for r in rows], [r["settle_steps"][g] for r in rows])
                  for g in rows[0]["settle_steps"]}
    return {"rows": rows, "fit": fit, "layer_fits": layer_fits, "settle_window": SETTLE_WINDOW}


# ============================================================================================ typed view


@dataclasses.dataclass(frozen=True)
class SweepRow:
    """One lambda_e of the network sweep, run at lr = weight decay = sqrt(lambda_e)."""

    intrinsic_lr: float
    lr: float
    weight_decay: float
    steps: int
    window: float  # the final window that defines the equilibrium level, in steps
    settle_steps: dict[str, float]
    pred_settle_steps: dict[str, float]  # the norm recursion's, from the measured start ratio
    settle_steps_max: float
    test_acc: float
    equilibrium: Window
    trace: Trace


@dataclasses.dataclass(frozen=True)
class SweepResult:
    result: Result

    @property
    def data(self) -> dict[str, Any]:
        return self.result.data

    @property
    def rows(self) -> list[SweepRow]:
        return [SweepRow(float(r["intrinsic_lr"]), float(r["lr"]), float(r["weight_decay"]), int(r["steps"]),
                         float(r["window"]), {g: float(v) for g, v in r["settle_steps"].items()},
                         {g: float(v) for g, v in r["pred_settle_steps"].items()}, float(r["settle_steps_max"]),
                         float(r["test_acc"]), Window.of(r["equilibrium"]), Trace.of(r["norms"]))
                for r in self.data["rows"]]

    @property
    def fit(self) -> Fit:
        return Fit.of(self.data["fit"])

    @property
    def layer_fits(self) -> dict[str, Fit]:
        return {g: Fit.of(f) for g, f in self.data["layer_fits"].items()}

    @property
    def settle_window(self) -> float:
        """The final window that defines each run's equilibrium level, in units of 1 / lambda_e."""
        return float(self.data["settle_window"])

