"""The chapter's claims judged on a result: named thresholds, the regimes each claim needs, and the verdicts."""

from __future__ import annotations

import math

import numpy as np

from repro.fmt import number, pm, ratio
from repro.regime import Regime, at_least, at_most
from repro.verdict import PARTLY, REPRODUCED, Threshold, Verdict, status_of

from .hoffer import log_fit
from .paper import PAPER_ACCURACY, PAPER_SHARPNESS
from .result import VARIANTS, Hoffer, NetComparison, SharpMinimaResult

MIN_TRAIN_ACC = Threshold(99.0, "%", "Keskar et al.'s minimisers reach 99.1-99.99% train accuracy (Table 2); a "
                                     "network below 99% has not reached their regime")
MAX_GRAD_RATIO = Threshold(0.1, "", "at a minimiser the gradient of f is 0; one that has not fallen by a factor 10 "
                                    "from initialisation leaves a first-order term that dominates Metric 2.1")
MIN_DECADES = Threshold(2.0, "decades", "a logarithmic law is only tested over a range of update counts: at least "
                                        "two decades past t = 10")
MIN_LOG_R2 = Threshold(0.95, "", "‖w − w0‖ = a + b log t explains at least 95% of the variance over t ≥ 10")
LONGER_CLOSES = Threshold(0.75, "", "training longer closes at least three quarters of the gap after the same "
                                    "epochs")
MIN_RESCALING_SPREAD = Threshold(1.5, "×", "a factor 1.5 between the largest and the smallest value of the same "
                                          "function is more than the metric's spread over seeds")


def minimiser_conditions(label: str, train_acc: float, grad_ratio: float) -> list:
    return [at_least(f"{label} train accuracy (%, worst run)", train_acc, MIN_TRAIN_ACC.value),
            at_most(f"{label} gradient norm / at initialisation (worst run)", grad_ratio, MAX_GRAD_RATIO.value)]


def minimiser_regime(net: NetComparison) -> Regime:
    """Keskar et al. compare minimisers: both the SB and the LB networks of every run must be one."""
    conds = []
    for reg, label in (("small_batch", "SB"), ("large_batch", "LB")):
        conds += minimiser_conditions(label, net.metrics["train_acc_min"][reg], net.metrics["grad_ratio_max"][reg])
    return Regime(net.net, "SB and LB minimisers: train accuracy near 100% and a small gradient", conds)


def train_longer_regime(hoffer: Hoffer) -> Regime:
    """Train longer compares the small batch with a large batch given as many updates, both trained."""
    conds = []
    for reg, label in (("small_batch", "SB"), ("large_batch_long", "LB, SB's updates")):
        runs = hoffer.of(reg)
        conds += minimiser_conditions(label, min(r["train_acc"] for r in runs),
                                      max(r["grad_norm"] / r["grad_norm_init"] for r in runs))
    return Regime("F1, train longer", "SB and the long LB run trained to a minimiser", conds)


def distance_regime(hoffer: Hoffer) -> Regime:
    """A logarithmic law is only tested over a range of update counts."""
    steps = min(r["steps"] for r in hoffer.of("small_batch"))
    return Regime("F1, distance from initialisation", "updates spanning at least two decades past 10",
                  [at_least("SB updates (decades past 10)", math.log10(steps / 10), MIN_DECADES.value)])


def variant_name(config: dict, space: str, eps: str) -> str:
    e = config["sharpness_eps"] if eps == "large_eps" else config["sharpness_eps_small"]
    return f"{'full space' if space == 'full' else 'random subspace'}, ε {e:g}"


def sharper_and_worse(net: NetComparison, config: dict) -> Verdict:
    gap, gap_sd = net.test_gap
    worse = gap > 0 and gap > gap_sd
    ratios = net.variant_ratios
    sharper = [v for v, r in ratios.items() if r > 1]
    all_sharper = len(sharper) == len(ratios)
    paper_gap = PAPER_ACCURACY[net.net][2][0] - PAPER_ACCURACY[net.net][3][0]
    paper_sb, paper_lb = PAPER_SHARPNESS[net.net][0][0], PAPER_SHARPNESS[net.net][1][0]
    full = ratios[("full", "large_eps")]
    return Verdict(
        key=f"{net.net}-sharper-and-worse",
        claim=f"{net.net}: large batches generalise worse and sit in sharper minima",
        source="Keskar et al. 2017, Tables 2-3", section=net.net,
        paper=f"gap {number(paper_gap)} points; Metric 2.1 {number(paper_lb)} vs {number(paper_sb)}",
        ours=f"gap {pm(gap, gap_sd)} points; Metric 2.1 LB/SB {ratio(full)}",
        test=f"gap > 0 and above its standard deviation over {net.seeds} seeds, and all four Metric 2.1 variants "
             "LB > SB (geometric mean of the paired ratios); partly: one of the two",
        status=status_of(worse and all_sharper, partly=worse or all_sharper),
        regime=minimiser_regime(net),
        extra={"test_gap": gap, "test_gap_sd": gap_sd,
               "ratios": {f"{s}_{e}": r for (s, e), r in ratios.items()}})


def distance(hoffer: Hoffer, seed: int) -> Verdict:
    first = hoffer.per_seed[0]
    fits = {k: log_fit(first[reg]["distance"]) for k, reg in (("SB", "small_batch"),
                                                              ("LB, SB's updates", "large_batch_long"))}
    log_ok = all(f["r2"] >= MIN_LOG_R2.value for f in fits.values())
    d_sb = float(np.mean([x["distance"][-1]["distance"] for x in hoffer.of("small_batch")]))
    d_lb = float(np.mean([x["distance"][-1]["distance"] for x in hoffer.of("large_batch")]))
    lags = d_lb < d_sb
    return Verdict(
        key="distance-log-t", claim="F1: the distance from initialisation grows as log t, and the large batch lags "
                                    "after the same epochs",
        source="Hoffer et al. 2017, Figure 2", section="hoffer", paper="‖w − w0‖ ∼ log t",
        ours="R² " + ", ".join(f"{k} {number(f['r2'])}" for k, f in fits.items())
             + f"; LB {number(d_lb)} vs SB {number(d_sb)}",
        test=f"R² of a + b log t over t ≥ 10 ≥ {MIN_LOG_R2} for SB and the long LB run (seed {seed}), and the "
             "LB's distance after the same epochs below the SB's; partly: one of the two",
        status=status_of(log_ok and lags, partly=log_ok or lags), regime=distance_regime(hoffer),
        extra={"fits": fits, "distance_sb": d_sb, "distance_lb": d_lb})


def train_longer(hoffer: Hoffer) -> Verdict:
    t = {k: float(np.mean([x["test_acc"] for x in hoffer.of(k)]))
         for k in ("small_batch", "large_batch", "large_batch_long")}
    gap_plain = t["small_batch"] - t["large_batch"]
    gap_long = t["small_batch"] - t["large_batch_long"]
    # no gap after the same epochs: nothing to close, the claim cannot be tested here
    status = status_of(None if gap_plain <= 0 else gap_long <= (1 - LONGER_CLOSES.value) * gap_plain,
                       partly=gap_long < gap_plain)
    return Verdict(
        key="train-longer", claim="F1: a large batch given as many updates as the small batch closes the gap",
        source="Hoffer et al. 2017, Table 1", section="hoffer", paper="gap closed",
        ours=f"gap {number(gap_plain)} → {number(gap_long)} points",
        test=f"a gap after the same epochs, and the long run closing ≥ {number(100 * LONGER_CLOSES.value)}% of it; "
             "partly: it narrows",
        status=status, regime=train_longer_regime(hoffer),
        extra={"test_acc": t, "gap_plain": gap_plain, "gap_long": gap_long})


def reparametrisation(net: NetComparison) -> Verdict:
    rows = net.rescaling
    s = [r["sharpness"] for r in rows]
    h = [r["hessian_top"] for r in rows]
    spread = max(s) / max(min(s), 1e-12)
    h_spread = max(h) / max(min(h), 1e-12)
    return Verdict(
        key="reparametrisation", claim="F1: the same function, rescaled, has a different sharpness",
        source="Dinh et al. 2017", section="F1", paper="sharpness not invariant",
        ours=f"Metric 2.1 × {number(spread)}, top Hessian eigenvalue × {number(h_spread)}",
        test=f"Metric 2.1's largest / smallest value over the three parametrisations ≥ {MIN_RESCALING_SPREAD}",
        status=status_of(spread >= MIN_RESCALING_SPREAD.value),
        extra={"metric_spread": spread, "hessian_spread": h_spread})


def remedy(result: SharpMinimaResult) -> Verdict:
    f1, rem = result.F1, result.remedy
    gap = f1.mean("small_batch", "test_acc") - f1.mean("large_batch", "test_acc")
    lb = f1.mean("large_batch", "test_acc")
    rem_acc = float(np.mean([r["test_acc"] for r in rem.runs]))
    closed = (rem_acc - lb) / gap if gap > 0 else math.nan
    status = status_of(None if not gap > 0 else closed >= LONGER_CLOSES.value, partly=closed > 0)
    return Verdict(
        key="remedy-lr-scaling", claim=f"F1: the large batch's learning rate scaled up "
                                       f"({result.config['remedy_scaling']}) closes the gap",
        source="Hoffer et al. 2017, section 4", section="remedy", paper="gap closed (with ghost BN, SGD)",
        ours="no gap to close" if not gap > 0 else f"{number(100 * closed)}% of the gap closed",
        test=f"the fraction of the SB-LB test gap closed at the same epochs ≥ {number(100 * LONGER_CLOSES.value)}%; "
             "partly: > 0",
        status=status, regime=minimiser_regime(f1), extra={"closed": closed, "lr": rem.lr})


def verdicts(result: SharpMinimaResult) -> list[Verdict]:
    """Every claim whose section is in the result."""
    out = [sharper_and_worse(net, result.config) for net in result.networks]
    if result.F1 is not None and result.F1.rescaling:
        out.append(reparametrisation(result.F1))
    if result.remedy is not None and result.F1 is not None:
        out.append(remedy(result))
    if result.hoffer is not None:
        out += [distance(result.hoffer, result.config["seed"]), train_longer(result.hoffer)]
    return out


__all__ = ["PARTLY", "REPRODUCED", "VARIANTS", "verdicts"]
