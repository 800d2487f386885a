"""The paper's Figure 5 (different histories, then the same lr and weight decay) and the decay schedules at equal
lambda_e (sections 3 and 3b of the page)."""

from __future__ import annotations

import numpy as np

from .measure import acc_at, drift, summary
from .net import DECAY_SHAPES, NetSetup, train_run
from .params import Params


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
    return {"runs": runs, "phase_ends": [n1, n1 + n2, n1 + n2 + n3], "decay": decay_runs(p, s)}


def decay_runs(p: Params, s: NetSetup) -> dict:
    """Reviewer 1, question 5 and reviewer 2, point 10: step decay, cosine decay and warmup + linear decay with the
    same peak lambda_e = lr * weight_decay and length, each at (lr, wd) and at (lr x k, wd / k) (the same
    lambda_e at every step). If lambda_e determined everything, the two splits of each shape would end alike."""
    steps = p.decay_epochs * s.steps_per_epoch
    tail = max(1, steps // 10)  # "final": the last tenth of the run
    runs = []
    for shape in DECAY_SHAPES:
        for k in (1.0, p.split_factor):
            lr, wd = p.lr * k, p.weight_decay / k
            r = train_run(p, s, [(steps, lr, wd)], shape=shape, label=f"{shape}, lr x {k:g}")
            h = r["history"]
            n = r["norms"]
            last = np.array(n["step"]) > steps - tail
            runs.append({"shape": shape, "split": k, "lr": lr, "weight_decay": wd,
                         "test_acc": float(h["test_acc"][-1]), "train_acc": float(h["train_acc"][-1]),
                         "best_test_acc": float(max(h["test_acc"])),
                         "effective_lr_end": {g: float(np.array(v)[last].mean()) for g, v in n["effective_lr"].items()},
                         "history": {k2: h[k2] for k2 in ("step", "test_acc", "train_acc")},
                         "norms": {"step": n["step"], "lr": n["lr"], "effective_lr": n["effective_lr"],
                                   "sq_norm": n["sq_norm"]}})
    return {"runs": runs, "steps": steps}
