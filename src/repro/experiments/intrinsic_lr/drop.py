"""The LR drop at equilibrium (section 2 of the page; reviewer 1's first, third and fourth questions)."""

from __future__ import annotations

import math

import numpy as np

from repro.metrics.norms import relaxation_steps

from .measure import acc_at, drift, settle_step, summary
from .net import NetSetup, train_run
from .params import Params

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
        v = np.array(vals)
        before = float(np.sqrt((v[before_sel] ** 2).mean()))
        just = float(np.sqrt((v[after_sel] ** 2).mean()))
        final = next(r["angular"] for r in res["after"]["groups"] if r["group"] == g)
        settle = settle_step(np.array(n["sq_norm"][g])[i_drop:], p.equilibrium_tol, steps=step[i_drop:] - eq)
        ratios.append({"group": g, "before": before, "just_after": just, "final": final,
                       "ratio_immediate": before / just, "ratio_final": before / final,
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
