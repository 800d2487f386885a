"""The LR drop at equilibrium (section 2 of the page; reviewer 1's first, third and fourth questions)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from repro.metrics.norms import relaxation_steps
from repro.store import Result

from .measure import acc_at, drift, settle_step, summary
from .net import NetSetup, train_run
from .params import Params
from .result import Acc, NetRun, Window

# the angular update "just after" the drop: the first JUST_AFTER / lambda_e steps (the norm has hardly moved yet)
JUST_AFTER = 0.1


def net_drop(p: Params, s: NetSetup) -> dict:
    """Reviewer 1: the LR drop at equilibrium (angular update 10x down, then back up to sqrt(10) below), the drop
    before equilibrium (question 3) and a small vs a large first LR (question 4)."""
    spe = s.steps_per_epoch
    eq, after, early = p.equilibrium_epochs * spe, p.after_drop_epochs * spe, p.early_drop_epochs * spe
    lo = p.lr / p.lr_drop
    cmp_after = p.compare_after_drop_epochs * spe
    main = train_run(p, s, [(eq, p.lr, p.weight_decay), (after, lo, p.weight_decay)], label="drop at equilibrium")
    # question 3 compares the best test accuracy within cmp_after steps after each drop
    first = train_run(p, s, [(early, p.lr, p.weight_decay), (cmp_after, lo, p.weight_decay)], label="early drop")
    n = main["norms"]
    step = np.array(n["step"])
    every = step[0]
    res: dict = {"main": main, "early": first, "drop_step": eq, "early_drop_step": early}
    res["before"] = summary(main, eq // 2, eq, p.lr, p.weight_decay)
    res["after"] = summary(main, eq + after // 2, eq + after, lo, p.weight_decay)
    # immediate drop: the first JUST_AFTER / lambda_e steps after the drop (the norm has hardly moved yet) against
    # the last 0.5 / lambda_e steps before it (windows end exactly at the drop)
    i_drop = int(np.searchsorted(step, eq, side="right"))
    before_sel = (step > eq - 0.5 / p.intrinsic_lr) & (step <= eq)
    just = max(JUST_AFTER / p.intrinsic_lr, every)
    after_sel = (step > eq) & (step <= eq + just)
    res["just_after_steps"] = int(step[after_sel][-1] - eq)
    ratios = []
    for g, vals in n["angular"].items():
        v, g2 = np.array(vals), np.array(n["grad_sq"][g])
        before = float(np.sqrt((v[before_sel] ** 2).mean()))
        just = float(np.sqrt((v[after_sel] ** 2).mean()))
        final = next(r["angular"] for r in res["after"]["groups"] if r["group"] == g)
        settle = settle_step(np.array(n["sq_norm"][g])[i_drop:], p.equilibrium_tol, steps=step[i_drop:] - eq)
        # the angular update is lr G / |w|^2: at the drop lr falls lr_drop-fold and |w| stays, so any further fall
        # over the first windows is G's (the loss falls after the drop)
        ratios.append({"group": g, "before": before, "just_after": just, "final": final,
                       "ratio_immediate": before / just, "ratio_final": before / final,
                       "grad_ratio_immediate": float(np.sqrt(g2[before_sel].mean() / g2[after_sel].mean())),
                       "settle_steps_after": settle})
    res["ratios"] = ratios
    res["pred_settle_steps_after"] = relaxation_steps(p.intrinsic_lr / p.lr_drop, math.sqrt(p.lr_drop),
                                                      p.equilibrium_tol)
    # regime: still moving at the drop (over the last 1 / lambda_e) and at the end (over the last 1 / lambda_e')
    res["drift_before"] = drift(main, eq, 1 / p.intrinsic_lr)
    res["drift_after"] = drift(main, eq + after, p.lr_drop / p.intrinsic_lr)
    res["acc_main_after"] = acc_at(main, eq, eq + after)
    res["acc_main_cmp"] = acc_at(main, eq, eq + cmp_after)
    res["acc_early_after"] = acc_at(first, early, early + cmp_after)
    res["acc_main_before"] = acc_at(main, eq // 2, eq)
    # question 4: the first LR small or large (same weight decay), each dropped by lr_drop at the same step
    compare = []
    for lr1 in (p.lr_small_first, p.lr, p.lr_large_first):
        r = main if lr1 == p.lr else train_run(p, s, [(eq, lr1, p.weight_decay),
                                                       (cmp_after, lr1 / p.lr_drop, p.weight_decay)],
                                               label=f"first lr {lr1}")
        acc = acc_at(r, eq, eq + cmp_after)
        compare.append({"lr_first": lr1, "intrinsic_lr": lr1 * p.weight_decay, "best_after": acc["best"],
                        "best_after_step": acc["best_step"] - eq, "before": acc_at(r, eq // 2, eq)["mean"],
                        "history": r["history"] if r is not main else None})
    res["compare"] = compare
    return res


# ============================================================================================ typed view


@dataclasses.dataclass(frozen=True)
class LayerDrop:
    """One layer's angular update just before the drop, just after it and at the end of the run."""

    group: str
    before: float
    just_after: float
    final: float
    ratio_immediate: float
    ratio_final: float
    grad_ratio_immediate: float  # G just before over G just after: the part of the immediate fall that is G's
    settle_steps_after: float


@dataclasses.dataclass(frozen=True)
class FirstLR:
    """Reviewer 1, question 4: one first learning rate, dropped at the same step."""

    lr_first: float
    intrinsic_lr: float
    best_after: float
    best_after_step: int
    before: float


@dataclasses.dataclass(frozen=True)
class DropResult:
    """The LR drop at equilibrium, the drop before equilibrium and the first-LR comparison."""

    result: Result

    @property
    def data(self) -> dict[str, Any]:
        return self.result.data

    @property
    def main(self) -> NetRun:
        return NetRun.of(self.data["main"])

    @property
    def early(self) -> NetRun:
        return NetRun.of(self.data["early"])

    @property
    def drop_step(self) -> int:
        return int(self.data["drop_step"])

    @property
    def early_drop_step(self) -> int:
        return int(self.data["early_drop_step"])

    @property
    def just_after_steps(self) -> int:
        return int(self.data["just_after_steps"])

    @property
    def before(self) -> Window:
        return Window.of(self.data["before"])

    @property
    def after(self) -> Window:
        return Window.of(self.data["after"])

    @property
    def layers(self) -> list[LayerDrop]:
        return [LayerDrop(**r) for r in self.data["ratios"]]

    @property
    def ratio_immediate(self) -> float:
        """Median over layers of the angular update's fall at the drop."""
        return float(np.median([r.ratio_immediate for r in self.layers]))

    @property
    def drift_before(self) -> dict[str, float]:
        return self.data["drift_before"]

    @property
    def drift_after(self) -> dict[str, float]:
        return self.data["drift_after"]

    def acc(self, which: str) -> Acc:
        """Test accuracy: "main_before", "main_after", "main_cmp" (the comparison window) or "early_after"."""
        return Acc.of(self.data[f"acc_{which}"])

    @property
    def compare(self) -> list[FirstLR]:
        return [FirstLR(**{k: v for k, v in c.items() if k != "history"}) for c in self.data["compare"]]

    @property
    def final_train_acc(self) -> float:
        return float(self.main.history.train_acc[-1])

