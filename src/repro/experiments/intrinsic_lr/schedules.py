"""The paper's Figure 5 (different histories, then the same lr and weight decay) and the decay schedules at equal
lambda_e (sections 3 and 3b of the page)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from repro.store import Result

from .measure import acc_at, drift, summary
from .net import NetSetup, reference_seeds, train_run
from .params import DECAY_SHAPES, Params
from .result import Acc, History, NetRun, Spread, Trace, Window, spreads


def net_schedules(p: Params, s: NetSetup) -> dict:
    """The paper's Figure 5: differing LR/WD schedules (and initial scales) for phase 1, then the same
    (lr, weight_decay) for phase 2, then lr / lr_drop without weight decay."""
    spe = s.steps_per_epoch
    n1, n2, n3 = p.phase1_epochs * spe, p.phase2_epochs * spe, p.final_epochs * spe
    lr, wd = p.lr, p.weight_decay
    half = n1 // 2
    tail = [(n2, lr, wd)] + ([(n3, lr / p.lr_drop, 0.0)] if n3 else [])
    schedules = {
        "reference (lr, wd) throughout": ([(n1, lr, wd)], 1.0),
        "lr x4, wd / 4 (same lambda_e)": ([(n1, 4 * lr, wd / 4)], 1.0),
        "lr / 4 then x4 lr, wd x 4": ([(half, lr / 4, wd), (n1 - half, lr, 4 * wd)], 1.0),
        "init x 4, wd / 10": ([(n1, lr, wd / 10)], 4.0),
    }
    runs = []
    for name, (phase1, scale) in schedules.items():
        r = train_run(p, s, phase1 + tail, init_scale=scale, label=name)
        end2 = n1 + n2
        summ = summary(r, n1 + n2 // 2, end2, lr, wd)
        runs.append({"name": name, "run": r, "phase2": summ, "acc_phase2": acc_at(r, n1 + n2 // 2, end2),
                     "train_acc_phase2": float(np.array(r["history"]["train_acc"])[
                         (np.array(r["history"]["step"]) > n1 + n2 // 2) & (np.array(r["history"]["step"]) <= end2)]
                         .mean()),
                     "acc_final": acc_at(r, end2, end2 + n3) if n3 else None,
                     "drift_phase2": drift(r, end2, 1 / p.intrinsic_lr)})
    # the seed spread: the reference history through the common phase, and the reference step decay, at more seeds
    dec_steps = p.decay_epochs * spe
    seed_runs = []
    for sd in reference_seeds(p):
        ps = p.replace(seed=sd)
        r = train_run(ps, s, [(n1 + n2, lr, wd)], label=f"reference, seed {sd}")
        dec = train_run(ps, s, [(dec_steps, lr, wd)], shape="step", label=f"step decay, seed {sd}")
        seed_runs.append({"seed": sd, "phase2": summary(r, n1 + n2 // 2, n1 + n2, lr, wd),
                          "acc_phase2": acc_at(r, n1 + n2 // 2, n1 + n2), "decay": _decay_end(dec, dec_steps)})
    return {"runs": runs, "phase_ends": [n1, n1 + n2, n1 + n2 + n3], "decay": decay_runs(p, s),
            "seed_runs": seed_runs}


def _decay_end(r: dict, steps: int) -> dict:
    """A decay run's end: final, best and train accuracy, and each layer's effective LR over the last tenth."""
    h, n = r["history"], r["norms"]
    last = np.array(n["step"]) > steps - max(1, steps // 10)
    return {"test_acc": float(h["test_acc"][-1]), "train_acc": float(h["train_acc"][-1]),
            "best_test_acc": float(max(h["test_acc"])),
            "effective_lr_end": {g: float(np.array(v)[last].mean()) for g, v in n["effective_lr"].items()}}


def decay_runs(p: Params, s: NetSetup) -> dict:
    """Reviewer 1, question 5 and reviewer 2, point 10: step decay, cosine decay and warmup + linear decay with the
    same peak lambda_e = lr * weight_decay and length, each at (lr, wd) and at (lr x k, wd / k) (the same
    lambda_e at every step). If lambda_e determined everything, the two splits of each shape would end alike."""
    steps = p.decay_epochs * s.steps_per_epoch
    runs = []
    for shape in DECAY_SHAPES:
        for k in (1.0, p.split_factor):
            lr, wd = p.lr * k, p.weight_decay / k
            r = train_run(p, s, [(steps, lr, wd)], shape=shape, label=f"{shape}, lr x {k:g}")
            h, n = r["history"], r["norms"]
            runs.append({"shape": shape, "split": k, "lr": lr, "weight_decay": wd, **_decay_end(r, steps),
                         "history": {k2: h[k2] for k2 in ("step", "test_acc", "train_acc")},
                         "norms": {"step": n["step"], "lr": n["lr"], "effective_lr": n["effective_lr"],
                                   "sq_norm": n["sq_norm"]}})
    return {"runs": runs, "steps": steps}


# ============================================================================================ typed view


@dataclasses.dataclass(frozen=True)
class ScheduleRun:
    """One history of Figure 5, measured at the end of the common phase and after the final phase."""

    name: str
    run: NetRun
    phase2: Window
    acc_phase2: Acc
    train_acc_phase2: float
    acc_final: Acc | None
    drift_phase2: dict[str, float]


@dataclasses.dataclass(frozen=True)
class DecayRun:
    """One decay schedule at one (lr, weight decay) split of the same peak lambda_e."""

    shape: str
    split: float
    lr: float
    weight_decay: float
    test_acc: float
    train_acc: float
    best_test_acc: float
    effective_lr_end: dict[str, float]
    run: NetRun


@dataclasses.dataclass(frozen=True)
class SchedulesResult:
    """Figure 5's histories and the decay-schedule pairs."""

    result: Result

    @property
    def data(self) -> dict[str, Any]:
        return self.result.data

    @property
    def runs(self) -> list[ScheduleRun]:
        return [ScheduleRun(r["name"], NetRun.of(r["run"]), Window.of(r["phase2"]), Acc.of(r["acc_phase2"]),
                            float(r["train_acc_phase2"]), Acc.of(r["acc_final"]), r["drift_phase2"])
                for r in self.data["runs"]]

    @property
    def phase_ends(self) -> list[int]:
        return list(self.data["phase_ends"])

    @property
    def test_acc_spread(self) -> float:
        """Largest minus smallest mean test accuracy over the second half of the common phase."""
        return float(np.ptp([r.acc_phase2.mean for r in self.runs]))

    @property
    def effective_lr_spread(self) -> float:
        """The largest factor between two histories' effective LRs at the end of the common phase (worst layer)."""
        runs = self.runs
        return max(math.exp(float(np.ptp(np.log([r.phase2.layers[i].effective_lr for r in runs]))))
                   for i in range(len(runs[0].phase2.layers)))

    @property
    def decay(self) -> list[DecayRun]:
        return [DecayRun(r["shape"], float(r["split"]), float(r["lr"]), float(r["weight_decay"]),
                         float(r["test_acc"]), float(r["train_acc"]), float(r["best_test_acc"]),
                         r["effective_lr_end"],
                         NetRun(History(np.asarray(r["history"]["step"]), np.asarray(r["history"]["test_acc"]),
                                        np.asarray(r["history"]["train_acc"])), Trace.of(r["norms"])))
                for r in self.data["decay"]["runs"]]

    @property
    def seeds(self) -> int:
        return 1 + len(self.data["seed_runs"])

    @property
    def acc_spread(self) -> Spread:
        """The reference history's test accuracy (common phase, second half) over seeds."""
        return Spread((self.data["runs"][0]["acc_phase2"]["mean"],
                       *(r["acc_phase2"]["mean"] for r in self.data["seed_runs"])))

    @property
    def log_elr_spread(self) -> dict[str, Spread]:
        """Per layer, the reference history's log effective LR at the end of the common phase over seeds."""
        return spreads([self.data["runs"][0]["phase2"], *(r["phase2"] for r in self.data["seed_runs"])],
                        "effective_lr")

    @property
    def decay_acc_spread(self) -> Spread:
        """The reference step decay's final test accuracy over seeds."""
        ref = self.decay_pair("step")[0]
        return Spread((ref.test_acc, *(r["decay"]["test_acc"] for r in self.data["seed_runs"])))

    @property
    def decay_log_elr_spread(self) -> dict[str, Spread]:
        ref = self.decay_pair("step")[0]
        ends = [ref.effective_lr_end, *(r["decay"]["effective_lr_end"] for r in self.data["seed_runs"])]
        return {g: Spread(tuple(math.log(e[g]) for e in ends)) for g in ref.effective_lr_end}

    def decay_pair(self, shape: str) -> tuple[DecayRun, DecayRun]:
        """The reference split and the lr x k, weight decay / k split of one schedule."""
        a, b = [r for r in self.decay if r.shape == shape]
        return a, b

    def decay_gap(self, shape: str) -> tuple[float, float]:
        """(final test accuracy of the split run minus the reference's, the largest factor between their final
        effective LRs over layers)."""
        a, b = self.decay_pair(shape)
        return b.test_acc - a.test_acc, max(math.exp(abs(math.log(b.effective_lr_end[g] / a.effective_lr_end[g])))
                                            for g in a.effective_lr_end)

