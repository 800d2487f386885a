"""The capstone's analysis: from the grid's runs to what each candidate quantity is judged by. Pure functions of
the runs' stored metrics; the chapter's merge stores their result.

- Every statistic that ranks or compares runs is computed on the runs that learned (`learned`): a diverged run,
  or one still near chance, says nothing about which quantity predicts generalization.
- The collapse score asks how well a quantity alone predicts a run's test accuracy; Spearman's rho, shown beside
  it for the noise scale and the intrinsic LR, asks for a monotone trend.
- eta * lambda0 is judged as the window it predicts (Lewkowycz et al.: runs above the edge 2 that do not diverge
  generalise better than runs below it), not as a trend.
- The seed-to-seed spread is measured from runs that differ only in their seed; differences (a candidate against
  the learning rate alone, the window's gain) are computed on each seed's grid separately, so that their spread
  across seeds is their uncertainty.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from repro.experiments.noise_scale.point import EDGE
from repro.verdict import Threshold

LEARNED_TRAIN_ACC = Threshold(0.5, "", "a run learned when its train accuracy is at least half (chance 0.1) and it "
                                       "did not diverge; only such runs are ranked")
NEIGHBOURS = 2  # runs nearest in log(quantity) (with ties) that predict a run's accuracy in the collapse score
# name -> (label, metric of a run); Unicode labels (they also go into tables)
CANDIDATES = {
    "noise_scale": ("SGD noise scale η/B", "noise_scale"),
    "intrinsic_lr": ("intrinsic LR η·λ", "intrinsic_lr"),
    "lr_lambda0": ("η·λ₀, λ₀ of the cross-entropy Hessian", "lr_lambda0"),
}
BASELINE = "lr"  # the learning rate alone, the reference every candidate must beat
LABELS = {**{k: v[0] for k, v in CANDIDATES.items()}, BASELINE: "learning rate η alone"}
METRICS = {**{k: v[1] for k, v in CANDIDATES.items()}, BASELINE: "lr"}
SETTING = ("lr", "batch_size", "weight_decay", "epochs")  # runs that share these differ only in their seed


def collapse_score(q: np.ndarray, acc: np.ndarray, k: int = NEIGHBOURS) -> float:
    """1 - (leave-one-out squared error) / variance, predicting each run's accuracy by the mean of the k other
    runs nearest to it in log(q), and of every run as near as the k-th (so all runs that share its q when there
    are k or more of them; q = 0 is placed far below every positive q).
    1: the quantity alone fixes the accuracy; 0 or less: it predicts no better than the grand mean."""
    q, acc = np.asarray(q, float), np.asarray(acc, float)
    n = len(acc)
    if n < 3:
        return float("nan")
    pos = q > 0
    lq = np.where(pos, np.log(np.where(pos, q, 1.0)), (np.log(q[pos].min()) - 10) if pos.any() else 0.0)
    k = min(k, n - 1)
    err = 0.0
    for i in range(n):
        d = np.abs(lq - lq[i])
        d[i] = np.inf
        nearest = d <= np.sort(d)[k - 1]
        err += (acc[i] - acc[nearest].mean()) ** 2
    var = float(((acc - acc.mean()) ** 2).sum())
    return 1 - err / var if var > 0 else float("nan")


def spearman(q: np.ndarray, acc: np.ndarray) -> float:
    if len(q) < 3 or np.ptp(q) == 0 or np.ptp(acc) == 0:
        return float("nan")
    return float(sps.spearmanr(q, acc).statistic)


def mean_and_se(values: list[float]) -> tuple[float, float]:
    """The mean of per-seed values and its standard error (sample SD / sqrt(S)); NaN SE with fewer than 2."""
    v = np.array([x for x in values if math.isfinite(x)], float)
    if len(v) == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")


def learned_mask(rows: list[dict]) -> np.ndarray:
    return np.array([r["train_acc"] >= LEARNED_TRAIN_ACC.value and not r["diverged"] for r in rows])


def seed_spread(rows: list[dict], learned: np.ndarray) -> dict:
    """The seed-to-seed standard deviation of test accuracy (pooled over the settings whose runs all learned),
    the standard deviation of those settings' mean accuracies across the grid, and the seeds per setting."""
    acc = np.array([r["test_acc"] for r in rows])
    settings: dict[tuple, list[int]] = {}
    for i, r in enumerate(rows):
        settings.setdefault(tuple(r[k] for k in SETTING), []).append(i)
    full = [idx for idx in settings.values() if learned[idx].all()]
    within = [float(np.var(acc[idx], ddof=1)) for idx in full if len(idx) > 1]
    means = [float(acc[idx].mean()) for idx in full]
    seed_sd = math.sqrt(np.mean(within)) if within else float("nan")
    between_sd = float(np.std(means, ddof=1)) if len(means) > 1 else float("nan")
    return {"seeds": max(len(idx) for idx in settings.values()), "settings": len(settings),
            "learned_settings": len(full), "seed_sd": seed_sd, "between_sd": between_sd,
            "signal_over_seed": between_sd / seed_sd if seed_sd > 0 else float("nan")}


def _by_seed(rows: list[dict], mask: np.ndarray, statistic) -> list[float]:
    """`statistic(indices)` on each seed's grid, restricted to `mask`."""
    seeds = sorted({r["seed"] for r in rows})
    out = []
    for s in seeds:
        idx = np.array([i for i, r in enumerate(rows) if r["seed"] == s and mask[i]], int)
        out.append(statistic(idx) if len(idx) >= 3 else float("nan"))
    return out


def candidate(rows: list[dict], name: str, subset: np.ndarray, learned: np.ndarray, above: np.ndarray,
              equilibrated: np.ndarray, decayed: np.ndarray) -> dict:
    """One quantity's statistics: on its claim's subset of the learned runs (collapse, Spearman, per seed, and
    the learning rate alone on the same runs per seed), on all runs (the grid as a whole, diverged runs
    included), and on the learned runs below and above the edge, at equilibrium and before it."""
    acc = np.array([r["test_acc"] for r in rows])
    q = np.array([r[METRICS[name]] for r in rows], float)
    lr = np.array([r["lr"] for r in rows], float)
    out = {"name": name, "label": LABELS[name], "n": int(subset.sum()),
           "spearman": spearman(q[subset], acc[subset]), "collapse": collapse_score(q[subset], acc[subset]),
           "spearman_all": spearman(q, acc), "collapse_all": collapse_score(q, acc),
           "collapse_by_seed": _by_seed(rows, subset, lambda i: collapse_score(q[i], acc[i])),
           "baseline_by_seed": _by_seed(rows, subset, lambda i: collapse_score(lr[i], acc[i])), "subsets": {}}
    for sub, mask in (("below_edge", ~above), ("above_edge", above), ("equilibrated", equilibrated & decayed),
                      ("not_equilibrated", ~equilibrated & decayed)):
        m = learned & mask
        if m.sum() >= 5:
            out["subsets"][sub] = {"n": int(m.sum()), "spearman": spearman(q[m], acc[m]),
                                   "collapse": collapse_score(q[m], acc[m])}
    # where it breaks: the widest accuracy spread among learned runs that share the quantity's value
    groups: dict[float, list[int]] = {}
    for i in np.flatnonzero(learned & (q > 0)):
        groups.setdefault(round(float(q[i]), 12), []).append(int(i))
    spreads = [(float(np.ptp(acc[idx])), v, idx) for v, idx in groups.items() if len(idx) > 1]
    if spreads:
        spread, value, idx = max(spreads, key=lambda s: s[0])
        out["worst_group"] = {"value": value, "spread": spread, "runs": len(idx),
                              "acc_min": float(acc[idx].min()), "acc_max": float(acc[idx].max())}
    return out


def window(rows: list[dict], learned: np.ndarray) -> dict:
    """eta * lambda0 as the window it predicts: test accuracy of the learned runs above the edge (inside the
    window, since runs beyond its top diverge or do not learn) against the learned runs below it, overall and on
    each seed's grid; where the window ends; and where the best setting sits."""
    acc = np.array([r["test_acc"] for r in rows])
    x = np.array([r["lr_lambda0"] for r in rows], float)
    inside, below = learned & (x > EDGE), learned & (x <= EDGE)

    def gain(idx: np.ndarray) -> float:
        a, b = idx[inside[idx]], idx[below[idx]]
        return float(acc[a].mean() - acc[b].mean()) if len(a) and len(b) else float("nan")

    every = np.ones(len(rows), bool)
    settings: dict[tuple, list[int]] = {}
    for i, r in enumerate(rows):
        settings.setdefault(tuple(r[k] for k in SETTING), []).append(i)
    learned_settings = {k: idx for k, idx in settings.items() if learned[idx].all()}
    best = max(learned_settings.values(), key=lambda idx: float(acc[idx].mean())) if learned_settings else []
    return {"n_inside": int(inside.sum()), "n_below": int(below.sum()),
            "acc_inside": float(acc[inside].mean()) if inside.any() else float("nan"),
            "acc_below": float(acc[below].mean()) if below.any() else float("nan"),
            "gain": gain(np.arange(len(rows))), "gain_by_seed": _by_seed(rows, every, gain),
            "above_edge": int((x > EDGE).sum()), "diverged_above_edge": int(sum(
                r["diverged"] for r, a in zip(rows, x > EDGE, strict=True) if a)),
            "top": float(x[inside].max()) if inside.any() else float("nan"),
            "best_lr_lambda0": float(x[best].mean()) if len(best) else float("nan"),
            "spearman": spearman(x[learned], acc[learned])}


def analyse(rows: list[dict]) -> dict:
    """Everything the verdicts and the page read, from the runs' metrics."""
    acc = np.array([r["test_acc"] for r in rows])
    learned = learned_mask(rows)
    above = np.array([r["lr_lambda0"] > EDGE for r in rows])
    equilibrated = np.array([r["equilibrium_times"] >= 1 for r in rows])
    decayed = np.array([r["weight_decay"] > 0 for r in rows])
    claim_subset = {"noise_scale": learned, "intrinsic_lr": learned & equilibrated & decayed,
                    "lr_lambda0": learned, BASELINE: learned}
    settings: dict[tuple, list[int]] = {}
    for i, r in enumerate(rows):
        settings.setdefault(tuple(r[k] for k in SETTING), []).append(i)
    best = max(settings, key=lambda k: float(acc[settings[k]].mean()))
    return {
        "points": len(rows), "learned": int(learned.sum()), "diverged": int(sum(r["diverged"] for r in rows)),
        "test_acc_min": float(acc.min()), "test_acc_max": float(acc.max()),
        "learned_test_acc_range": float(np.ptp(acc[learned])) if learned.sum() > 1 else 0.0,
        "equilibrated": int((learned & equilibrated & decayed).sum()),
        "candidates": {name: candidate(rows, name, claim_subset[name], learned, above, equilibrated, decayed)
                       for name in [*CANDIDATES, BASELINE]},
        "window": window(rows, learned), "seeds": seed_spread(rows, learned),
        "best": {**dict(zip(SETTING, best, strict=True)), "test_acc": float(acc[settings[best]].mean()),
                 "seeds": len(settings[best])},
    }
