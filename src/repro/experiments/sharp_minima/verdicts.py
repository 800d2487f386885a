"""The chapter's claims judged on a result: named thresholds, the regimes each claim needs, and the verdicts.

A difference between two settings (a test-accuracy gap, a sharpness ratio, a gain) is called only when it exceeds
its uncertainty across seeds: the runs are paired by seed (the same initialisation and data order), and the
difference is called when the two-sided t-interval of its mean over the seeds (`CONFIDENCE`) excludes zero. With
two seeds that interval is 12.7 standard errors wide on each side, so only a difference far larger than its seed
spread is called; an uncalled difference makes the claim "inconclusive at this scale", not "not reproduced".
"""

from __future__ import annotations

import math

import numpy as np
import scipy.stats

from repro.fmt import number, pm, ratio
from repro.regime import Condition, Regime, at_least, at_most
from repro.verdict import INCONCLUSIVE, NOT_REPRODUCED, PARTLY, REPRODUCED, Threshold, Verdict

from .hoffer import log_fit
from .paper import PAPER_ACCURACY, PAPER_SHARPNESS, REPORT_OPTIMIZERS
from .result import VARIANTS, Hoffer, NetComparison, SharpMinimaResult, value

# The claim's sharpness is the full-space metric (the paper's Table 3). In a 100-dimensional subspace with unit
# columns the box reaches only eps sqrt(p) in parameter space, and the metric there is its first-order part: shown,
# not judged.
FULL_SPACE = ("full_large_eps", "full_small_eps")

MIN_TRAIN_ACC = Threshold(99.0, "%", "Keskar et al.'s minimisers reach 99.1-99.99% train accuracy (Table 2); a "
                                     "network below 99% has not reached their regime")
MAX_GRAD_RATIO = Threshold(0.1, "", "at a minimiser the gradient of f is 0; one that has not fallen by a factor 10 "
                                    "from initialisation is still on its way down")
MAX_FIRST_ORDER_SHARE = Threshold(0.5, "", "Metric 2.1 measures the curvature of a minimum only where the loss's "
                                           "linear term reaches at most half of it over the box; above that it "
                                           "measures the slope of the point")
FIRST_ORDER_FLOOR = Threshold(0.2, "", "below a metric of 0.2 the share is taken of 0.2: a first-order part under 0.1 "
                                       "is negligible beside every value the paper reports (the smallest: 0.61)")
CONFIDENCE = Threshold(0.95, "", "a difference is called when the two-sided 95% t-interval of its mean over the "
                                 "seeds' paired differences excludes 0")
MIN_DECADES = Threshold(2.0, "decades", "a logarithmic law is only tested over a range of update counts: at least "
                                        "two decades past t = 10")
MIN_LOG_R2 = Threshold(0.95, "", "‖w − w0‖ = a + b log t explains at least 95% of the variance over t ≥ 10")
MIN_RESCALING_SPREAD = Threshold(1.5, "×", "the same function's largest and smallest Metric 2.1 differ by more than "
                                           "a factor 1.5, and by more than the metric's spread over seeds")


# ------------------------------------------------------------------------------------------------ differences


def interval(values: list[float]) -> tuple[float, float]:
    """Mean over seeds and the half width of its two-sided CONFIDENCE t-interval (NaN for a single seed)."""
    a = np.asarray(values, dtype=float)
    if len(a) < 2:
        return float(a.mean()), math.nan
    t = scipy.stats.t.ppf(0.5 + CONFIDENCE.value / 2, len(a) - 1)
    return float(a.mean()), float(t * a.std(ddof=1) / math.sqrt(len(a)))


def called(values: list[float]) -> int:
    """+1 when the paired differences' mean is called above 0, -1 when below, 0 when its interval holds 0."""
    mean, half = interval(values)
    if not math.isfinite(half):
        return 0
    return 1 if mean - half > 0 else -1 if mean + half < 0 else 0


def status_of_parts(parts: list[int]) -> str:
    """A claim made of parts, each +1 (called as claimed), -1 (called against) or 0 (not called): all as claimed
    is reproduced, some is partly, none with one called against is not reproduced, nothing called is
    inconclusive."""
    held = sum(x == 1 for x in parts)
    if held == len(parts):
        return REPRODUCED
    if held:
        return PARTLY
    return NOT_REPRODUCED if any(x == -1 for x in parts) else INCONCLUSIVE


def how_called(seeds: int) -> str:
    t = scipy.stats.t.ppf(0.5 + CONFIDENCE.value / 2, seeds - 1) if seeds > 1 else math.nan
    return (f"paired over {seeds} seeds; a difference is called when its {number(100 * CONFIDENCE.value)}% "
            f"t-interval (± t·sd/√n, t = {number(t)}) excludes 0")


# ----------------------------------------------------------------------------------------------------- regimes


def minimiser_conditions(label: str, runs: list[dict]) -> list[Condition]:
    return [at_least(f"{label} train accuracy (%, worst run)", min(r["train_acc"] for r in runs),
                     MIN_TRAIN_ACC.value),
            at_most(f"{label} gradient norm / at initialisation (worst run)",
                    max(r["grad_norm"] / r["grad_norm_init"] for r in runs), MAX_GRAD_RATIO.value)]


def first_order_share(first_order: float, metric: float) -> float:
    """The metric's first-order part as a share of the metric, or of FIRST_ORDER_FLOOR for a smaller metric."""
    return first_order / max(metric, FIRST_ORDER_FLOOR.value)


def metric_conditions(label: str, runs: list[dict]) -> list[Condition]:
    """Both full-space variants, in every run: the metric is not its gradient's linear term."""
    out = []
    for key in FULL_SPACE:
        eps = runs[0][key]["eps"]
        share = max(first_order_share(r[key]["first_order"], r[key]["value"]) for r in runs)
        out.append(at_most(f"{label} first-order part / max(Metric 2.1, {number(FIRST_ORDER_FLOOR.value)}), ε {eps:g} "
                           "(worst run)", share, MAX_FIRST_ORDER_SHARE.value))
    return out


def minimiser_regime(net: NetComparison) -> Regime:
    """Keskar et al. compare the sharpness of minimisers: every SB and LB network is one, and its Metric 2.1 is
    not its gradient's linear term."""
    conds = []
    for reg, label in (("small_batch", "SB"), ("large_batch", "LB")):
        conds += minimiser_conditions(label, net.of(reg)) + metric_conditions(label, net.of(reg))
    return Regime(net.net, "SB and LB minimisers: train accuracy near 100%, a small gradient, and a Metric 2.1 "
                           "that is not the gradient's linear term", conds)


def runs_regime(subject: str, needs: str, groups: list[tuple[str, list[dict]]]) -> Regime:
    return Regime(subject, needs, [c for label, runs in groups for c in minimiser_conditions(label, runs)])


def distance_regime(hoffer: Hoffer) -> Regime:
    """A logarithmic law is only tested over a range of update counts."""
    steps = min(r["steps"] for r in hoffer.of("small_batch"))
    return Regime("F1, distance from initialisation", "updates spanning at least two decades past 10",
                  [at_least("SB updates (decades past 10)", math.log10(steps / 10), MIN_DECADES.value)])


def train_longer_regime(hoffer: Hoffer) -> Regime:
    return runs_regime("F1, more updates alone (Adam)", "SB and the long LB run trained to minimisers",
                       [("SB", hoffer.of("small_batch")), ("LB, SB's updates", hoffer.of("large_batch_long"))])


def recipe_regime(hoffer: Hoffer) -> Regime:
    return runs_regime("F1, Hoffer et al.'s recipe (SGD)", "SB and the recipe's LB run trained to minimisers",
                       [("SB (SGD)", hoffer.recipe_of("small_batch")),
                        ("LB, recipe", hoffer.recipe_of("large_batch_recipe"))])


# ---------------------------------------------------------------------------------------------------- verdicts


def sharper_and_worse(net: NetComparison) -> Verdict:
    gaps = net.test_gaps
    gap, gap_half = interval(gaps)
    worse = called(gaps)
    sharper = [called(net.log_ratios(*key.split("_", 1))) for key in FULL_SPACE]
    sharp = 1 if all(x == 1 for x in sharper) else -1 if any(x == -1 for x in sharper) else 0
    paper = PAPER_SHARPNESS[net.net]
    paper_gap = PAPER_ACCURACY[net.net][2][0] - PAPER_ACCURACY[net.net][3][0]
    sb, lb = net.mean("small_batch", "full_large_eps"), net.mean("large_batch", "full_large_eps")
    return Verdict(
        key=f"{net.net}-sharper-and-worse",
        claim=f"{net.net}: large batches generalise worse and sit in sharper minima",
        source="Keskar et al. 2017, Tables 2-3", section=net.net,
        paper=f"gap {number(paper_gap)} points; Metric 2.1 SB {number(paper[0][0])}, LB {number(paper[1][0])}",
        ours=f"gap {pm(gap, gap_half)} points (95%); Metric 2.1 SB {number(sb)}, LB {number(lb)}",
        test=f"SB − LB test accuracy called above 0, and LB/SB of Metric 2.1 in the full space called above 1 at "
             f"both ε (log ratios); {how_called(net.seeds)}; partly: one of the two; not reproduced: neither, with "
             "one called against",
        status=status_of_parts([worse, sharp]), regime=minimiser_regime(net),
        extra={"test_gap": gap, "test_gap_interval": gap_half, "metric_sb": sb, "metric_lb": lb,
               "ratios": {f"{s}_{e}": net.variant_ratio(s, e) for s, e in VARIANTS},
               "called": {"worse": worse, "sharper": dict(zip(FULL_SPACE, sharper, strict=True))}})


def reparametrisation(net: NetComparison) -> Verdict:
    rows = net.rescaling
    s = [r["sharpness"] for r in rows]
    h = [r["hessian_top"] for r in rows]
    spread = max(s) / max(min(s), 1e-12)
    h_spread = max(h) / max(min(h), 1e-12)
    seeds = [value(r["full_large_eps"]) for r in net.of("small_batch")]
    seed_spread = max(seeds) / max(min(seeds), 1e-12)
    sb = net.of("small_batch")[:1]
    regime = Regime("F1, SB minimiser of the first seed", "a minimiser whose Metric 2.1 is not its gradient's "
                    "linear term", minimiser_conditions("SB", sb) + [
                        at_most(f"first-order part / max(Metric 2.1, {number(FIRST_ORDER_FLOOR.value)}) (worst "
                                "parametrisation)", max(first_order_share(r["first_order"], r["sharpness"])
                                                        for r in rows), MAX_FIRST_ORDER_SHARE.value)])
    return Verdict(
        key="reparametrisation", claim="F1: the same function, rescaled, has a different sharpness",
        source="Dinh et al. 2017", section="F1", paper="sharpness not invariant",
        ours=f"Metric 2.1 {ratio(spread)}, top Hessian eigenvalue {ratio(h_spread)}",
        test=f"Metric 2.1's largest / smallest value over the three parametrisations ≥ {MIN_RESCALING_SPREAD} and "
             f"above its SB spread over seeds ({ratio(seed_spread)})",
        status=REPRODUCED if spread >= max(MIN_RESCALING_SPREAD.value, seed_spread) else NOT_REPRODUCED,
        regime=regime, extra={"metric_spread": spread, "hessian_spread": h_spread, "seed_spread": seed_spread})


def gap_closed(key: str, claim: str, source: str, section: str, paper: str, sb: list[dict], plain: list[dict],
               fixed: list[dict], regime: Regime, fix: str) -> Verdict:
    """A fix for the large batch: a gap SB − LB after the same epochs, closed by the fixed LB run (paired by seed).
    Reproduced: the gap is called, the fix's gain over the plain LB is called, and no gap SB − fixed LB is
    called; partly: the gain is called but a gap remains; not reproduced: no gain called; inconclusive: no gap."""
    acc = lambda runs: [r["test_acc"] for r in runs]  # noqa: E731
    gap = [a - b for a, b in zip(acc(sb), acc(plain), strict=True)]
    gain = [a - b for a, b in zip(acc(fixed), acc(plain), strict=True)]
    left = [a - b for a, b in zip(acc(sb), acc(fixed), strict=True)]
    g, gh = interval(gap)
    r, rh = interval(left)
    if called(gap) != 1:
        status = INCONCLUSIVE
    else:
        status = REPRODUCED if called(gain) == 1 and called(left) != 1 else PARTLY if called(gain) == 1 else \
            NOT_REPRODUCED
    return Verdict(
        key=key, claim=claim, source=source, section=section, paper=paper,
        ours=f"gap {pm(g, gh)} → {pm(r, rh)} points (95%)",
        test=f"the SB − LB test gap after the same epochs called above 0; {fix} gains over the plain LB (called) and "
             f"leaves no gap called; {how_called(len(gap))}; inconclusive: no gap called",
        status=status, regime=regime,
        extra={"gap": g, "gap_interval": gh, "gap_left": r, "gap_left_interval": rh, "gain": interval(gain)[0],
               "called": {"gap": called(gap), "gain": called(gain), "left": called(left)}})


def more_updates(hoffer: Hoffer) -> Verdict:
    return gap_closed("train-longer", "F1: with Adam, a large batch given as many updates as the small batch closes "
                      "the gap", "Hoffer et al. 2017 (their regime adaptation alone)", "hoffer",
                      "gap closed (with SGD, √ LR scaling and ghost BN)", hoffer.of("small_batch"),
                      hoffer.of("large_batch"), hoffer.of("large_batch_long"), train_longer_regime(hoffer),
                      "the SB's number of updates")


def recipe(hoffer: Hoffer) -> Verdict:
    return gap_closed("hoffer-recipe", "F1: SGD with √(LB/SB) learning rate, ghost batch norm and as many updates "
                      "closes the gap", "Hoffer et al. 2017, Table 1", "hoffer", "gap closed",
                      hoffer.recipe_of("small_batch"), hoffer.recipe_of("large_batch"),
                      hoffer.recipe_of("large_batch_recipe"), recipe_regime(hoffer), "the recipe")


def distance(hoffer: Hoffer, seed: int) -> Verdict:
    first = hoffer.per_seed[0]
    fits = {k: log_fit(first[reg]["distance"]) for k, reg in (("SB", "small_batch"),
                                                              ("LB, SB's updates", "large_batch_long"))}
    log_ok = all(f["r2"] >= MIN_LOG_R2.value for f in fits.values())
    lag = [a["distance"][-1]["distance"] - b["distance"][-1]["distance"]
           for a, b in zip(hoffer.of("small_batch"), hoffer.of("large_batch"), strict=True)]
    d_sb = float(np.mean([x["distance"][-1]["distance"] for x in hoffer.of("small_batch")]))
    d_lb = float(np.mean([x["distance"][-1]["distance"] for x in hoffer.of("large_batch")]))
    return Verdict(
        key="distance-log-t", claim="F1: the distance from initialisation grows as log t, and the large batch lags "
                                    "after the same epochs",
        source="Hoffer et al. 2017, Figure 2", section="hoffer", paper="‖w − w0‖ ∼ log t",
        ours="R² " + ", ".join(f"{k} {number(f['r2'])}" for k, f in fits.items())
             + f"; LB {number(d_lb)} vs SB {number(d_sb)}",
        test=f"R² of a + b log t over t ≥ 10 ≥ {MIN_LOG_R2} for SB and the long LB run (seed {seed}), and "
             f"SB − LB distance after the same epochs called above 0 ({how_called(len(lag))}); partly: one of the two",
        status=status_of_parts([1 if log_ok else -1, called(lag)]), regime=distance_regime(hoffer),
        extra={"fits": fits, "distance_sb": d_sb, "distance_lb": d_lb})


def optimizers(result: SharpMinimaResult) -> Verdict:
    runs = [r for r in result.optimizers.runs if r["optimizer"] == "sgd"]
    sb = [r for r in runs if r["regime"] == "small_batch"]
    lb = [r for r in runs if r["regime"] == "large_batch"]
    gap = [a["test_acc"] - b["test_acc"] for a, b in zip(sb, lb, strict=True)]
    g, gh = interval(gap)
    report = REPORT_OPTIMIZERS["sgd"]
    return Verdict(
        key="sgd-gap", claim="F1 with plain SGD: large batches generalise worse too", source="course report, §3.2",
        section="optimizers", paper=f"gap {number(report[0] - report[1])} points (one run)",
        ours=f"gap {pm(g, gh)} points (95%)", test=f"SB − LB test accuracy called above 0; {how_called(len(gap))}",
        status=status_of_parts([called(gap)]),
        regime=runs_regime("F1 with SGD", "SB and LB minimisers", [("SB", sb), ("LB", lb)]),
        extra={"gap": g, "gap_interval": gh})


def regimes(result: SharpMinimaResult) -> list[Regime]:
    """The regimes of the claims in the result, for the page's regime table."""
    out = [minimiser_regime(net) for net in result.networks]
    if result.hoffer is not None:
        out += [distance_regime(result.hoffer), train_longer_regime(result.hoffer)]
        if result.hoffer.recipe:
            out.append(recipe_regime(result.hoffer))
    return out


def verdicts(result: SharpMinimaResult) -> list[Verdict]:
    """Every claim whose section is in the result."""
    out = [sharper_and_worse(net) for net in result.networks]
    if result.F1 is not None and result.F1.rescaling:
        out.append(reparametrisation(result.F1))
    if result.optimizers is not None:
        out.append(optimizers(result))
    if result.hoffer is not None:
        out += [distance(result.hoffer, result.config["seed"]), more_updates(result.hoffer)]
        if result.hoffer.recipe:
            out.append(recipe(result.hoffer))
    return out
