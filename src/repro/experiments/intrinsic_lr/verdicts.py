"""The chapter's claims judged on a result (book-scale or recorded alike): every threshold named, with its unit and
why; the regime each network claim needs (a network that learned, at equilibrium for long enough in units of
1 / lambda_e), measured, so that a verdict on a network not in that state reads "inconclusive at this scale"."""

from __future__ import annotations

import math

import numpy as np

from repro.fmt import number, percent, ratio
from repro.regime import Regime, at_least, at_most
from repro.verdict import Threshold, Verdict, status_of

from .net import DECAY_SHAPES
from .result import IntrinsicLRResult, ToyResult

SOURCE = "Li, Lyu, Arora 2020 (references, section 4b)"
MOMENTUM_SOURCE = "Wan et al., Spherical Motion Dynamics (references, section 4b)"
REVIEWS = "NeurIPS 2020 reviews (references, section 4d)"
# Figure 5 of the paper (caption quoted in the references, section 4a): PreResNet-32, 5 random LR/WD schedules
# for 500 epochs, then the same LR and WD until epoch 1000, then LR decayed and WD removed: ~95% test accuracy.
PAPER_FIG5_TEST_ACC = 0.95

# ------------------------------------------------------------------------------------------------- regimes
LEARNED_TEST_ACC = Threshold(0.5, "", "a network that learned: test accuracy 5x chance on 10 classes")
EQ_TIMES = Threshold(3.0, "/λe", "equilibrium is reached in O(1/λe) steps: a run of at least three of them")

# ---------------------------------------------------------------------------------------------- the toy model
TOY_EQ_ERROR = Threshold(0.05, "", "the toy is exactly scale-invariant: 16 replicas x half a run of 4+/λe steps "
                                   "average the noise to well under 5%")
SLOPE_TOY_TOL = Threshold(0.1, "", "the toy's settling time is exactly ∝ 1/λe in the recursion; 10% in the slope")
SLOPE_TOY_PARTLY = Threshold(0.3, "", "a slope within 30% of 1 still grows with 1/λe")
TOY_DROP_TOL = Threshold(0.1, "", "the toy's final angular update averages half a long run: 10% of √10")

# ---------------------------------------------------------------------------------------------- the network
NET_ANGLE_TOL = Threshold(0.15, "", "√(2λe) drops a term of order λe and assumes the gradient ⟂ w; a real "
                                    "network's G² moves as it learns: 15%")
NET_ANGLE_PARTLY = Threshold(0.4, "", "within 40%: the right order and trend, not the value")
DROP_TOL = Threshold(0.25, "", "the immediate and the final factor, each within 25% of 10 and of √10")
SLOPE_NET_TOL = Threshold(0.2, "", "steps to equilibrium ∝ 1/λe: a log-log slope within 0.2 of 1")
SLOPE_NET_PARTLY = Threshold(0.5, "", "a slope within 0.5 of 1 still grows with 1/λe")
SAME_ELR = Threshold(1.25, "×", "the same equilibrium: effective LRs within 25% of each other")
SAME_ACC = Threshold(0.01, "", "the same test accuracy: within 1 point")
BATCH_SPREAD = Threshold(0.2, "", "the angular update does not depend on B: spread within 20% over B")
BATCH_SPREAD_PARTLY = Threshold(0.5, "", "a spread within 50%: B matters, but less than through lr")


def _near(value: float, target: float, tol: float | Threshold) -> bool:
    return bool(np.isfinite(value)) and abs(value / target - 1) <= float(tol)


def _worst(d: dict[str, float]) -> float:
    """The largest value over layers; NaN (not measurable) wins, so that it fails the check."""
    v = list(d.values())
    return math.nan if any(not np.isfinite(x) for x in v) else max(v)


# ================================================================================================= regimes


def drop_regimes(result: IntrinsicLRResult) -> dict[str, Regime]:
    """Before the drop: a network that learned, run for EQ_TIMES / lambda_e steps and no longer drifting (the
    effective LR moves by at most `equilibrium_tol` between the last two windows of 1 / lambda_e); after it: the
    same at lambda_e' = lambda_e / lr_drop."""
    p, d = result.params, result.drop
    lam, tol = p.intrinsic_lr, p.equilibrium_tol
    after_steps = d.main.trace.step[-1] - d.drop_step
    before = [at_least("test accuracy before the drop", d.acc("main_before").mean, LEARNED_TEST_ACC.value),
              at_least("steps before the drop x lambda_e", d.drop_step * lam, EQ_TIMES.value),
              at_most("effective-LR drift over the last 1/lambda_e before the drop (worst layer)",
                      _worst(d.drift_before), tol)]
    return {"equilibrium": Regime("Network before the drop", "a network that learned, at equilibrium", before),
            "drop": Regime("Network after the drop", "equilibrium before the drop and at the end of the run", [
                *before[1:], at_least("test accuracy after the drop", d.acc("main_after").mean, LEARNED_TEST_ACC.value),
                at_least("steps after the drop x lambda_e'", after_steps * lam / p.lr_drop, EQ_TIMES.value),
                at_most("effective-LR drift over the last 1/lambda_e' (worst layer)", _worst(d.drift_after), tol)])}


def schedules_regimes(result: IntrinsicLRResult) -> dict[str, Regime]:
    p, s = result.params, result.schedules
    runs = s.runs
    n2 = s.phase_ends[1] - s.phase_ends[0]  # steps of the common phase
    return {"schedules": Regime("Figure 5 runs", "networks that learned, with a common phase of several 1/lambda_e", [
        at_least("lowest test accuracy (common phase)", min(r.acc_phase2.mean for r in runs), LEARNED_TEST_ACC.value),
        at_least("common-phase steps x lambda_e", n2 * p.intrinsic_lr, EQ_TIMES.value),
        at_most("reference run's effective-LR drift at the end of the common phase (worst layer)",
                _worst(runs[0].drift_phase2), p.equilibrium_tol)]),
            "decay": Regime("Decay-schedule runs", "networks that learned", [
                at_least("lowest final test accuracy", min(r.test_acc for r in s.decay), LEARNED_TEST_ACC.value)])}


def sweep_regime(result: IntrinsicLRResult) -> Regime:
    p, rows = result.params, result.sweep.rows
    return Regime("lambda_e sweep", "networks that learned, every layer settled within the run", [
        at_least("lowest final test accuracy", min(r.test_acc for r in rows), LEARNED_TEST_ACC.value),
        at_least("run length x lambda_e", p.sweep_relaxation_times, EQ_TIMES.value),
        at_least("share of (lambda_e, layer) pairs whose norm settled", result.sweep.settled_share, 1.0)])


def short_regimes(result: IntrinsicLRResult) -> dict[str, Regime]:
    p, m = result.params, result.momentum_batch

    def short(runs, subject: str) -> Regime:
        # momentum mu at lr (1 - mu) takes steps like plain SGD at lr: its time unit is (1 - mu) / (lr wd)
        return Regime(subject, "networks that learned, at equilibrium", [
            at_least("lowest test accuracy (second half)", min(r.acc.mean for r in runs), LEARNED_TEST_ACC.value),
            at_least("steps x lambda_e (shortest run; with momentum mu: lambda_e / (1 - mu))",
                     min(m.steps * r.lr * r.weight_decay / (1 - r.momentum) for r in runs), EQ_TIMES.value),
            at_most("effective-LR drift over the last 1/lambda_e (worst run and layer)",
                    max(_worst(r.drift) for r in runs), p.equilibrium_tol)])

    return {"momentum_batch": short([r for r in m.runs if r.norm == "batch"],
                                    "Momentum, batch-size and BatchNorm split runs"),
            "layernorm": short([r for r in m.runs if r.norm == "layer"], "LayerNorm runs")}


def regimes(result: IntrinsicLRResult) -> dict[str, Regime]:
    """Every regime of the sections present in `result`."""
    out: dict[str, Regime] = {}
    if result.drop is not None:
        out |= drop_regimes(result)
    if result.schedules is not None:
        out |= schedules_regimes(result)
    if result.sweep is not None:
        out["sweep"] = sweep_regime(result)
    if result.momentum_batch is not None:
        out |= short_regimes(result)
    return out


# ================================================================================================ verdicts


def toy_verdicts(t: ToyResult, lr_drop: float) -> list[Verdict]:
    lo, hi = t.intrinsic_lr_range
    ang, nrm = t.max_angular_error, t.max_norm_error
    slope = t.settle_fit.slope
    sq = math.sqrt(lr_drop)
    final = t.drop["ratio_final"]
    return [
        Verdict("toy-equilibrium", r"Toy model: the equilibrium angular update is $\arccos(1-\lambda_e)\approx"
                r"\sqrt{2\lambda_e}$ and the norm the recursion's fixed point", SOURCE, r"$\sqrt{2\lambda_e}$",
                f"within {percent(ang)} (angle), {percent(nrm)} (norm)",
                f"worst relative error over λe {number(lo)} to {number(hi)} below {TOY_EQ_ERROR} for the angular "
                f"update and for |w|² (against the fixed point with the measured G²)",
                status_of(ang < TOY_EQ_ERROR.value and nrm < TOY_EQ_ERROR.value), section="toy"),
        Verdict("toy-settle-time", r"Toy model: equilibrium is reached in $\propto 1/\lambda_e$ steps", SOURCE,
                "slope 1", f"slope {number(slope)}",
                f"log-log slope of steps to equilibrium against 1/λe within {SLOPE_TOY_TOL} of 1 (partly: within "
                f"{SLOPE_TOY_PARTLY})",
                status_of(_near(slope, 1, SLOPE_TOY_TOL), _near(slope, 1, SLOPE_TOY_PARTLY)), section="toy"),
        Verdict("toy-lr-drop", rf"Toy model: after the LR is divided by {number(lr_drop)} the angular update "
                rf"recovers to $\sqrt{{{number(lr_drop)}}}$ below its old level", SOURCE, ratio(sq),
                f"{ratio(t.drop['ratio_immediate'])} at once, {ratio(final)} at the end",
                f"final factor within {percent(TOY_DROP_TOL.value)} of √{number(lr_drop)}",
                status_of(_near(final, sq, TOY_DROP_TOL)), section="toy"),
    ]


def drop_verdicts(result: IntrinsicLRResult) -> list[Verdict]:
    p, d = result.params, result.drop
    reg = drop_regimes(result)
    sq = math.sqrt(p.lr_drop)
    layers = d.layers
    imm_ok = _near(d.ratio_immediate, p.lr_drop, DROP_TOL)
    fin_each = [_near(r.ratio_final, sq, DROP_TOL) for r in layers]
    before = d.before
    ang = before.max_angular_error
    return [
        Verdict("net-equilibrium", r"Network: before the drop the angular update is $\sqrt{2\lambda_e}$", SOURCE,
                r"$\sqrt{2\lambda_e}$", f"within {percent(ang)} (worst layer)",
                f"worst layer's angular update within {percent(NET_ANGLE_TOL.value)} of √(2λe) (partly: "
                f"{percent(NET_ANGLE_PARTLY.value)}); norms within {percent(before.max_norm_error)} of the fixed "
                f"point with the measured G²",
                status_of(ang < NET_ANGLE_TOL.value, ang < NET_ANGLE_PARTLY.value), regime=reg["equilibrium"],
                section="drop"),
        Verdict("net-lr-drop", rf"Network: the angular update falls {number(p.lr_drop)}× at the drop, then "
                rf"recovers to $\sqrt{{{number(p.lr_drop)}}}$ below its old level", SOURCE,
                f"{ratio(p.lr_drop)}, then {ratio(sq)}",
                f"{ratio(d.ratio_immediate)}, then " + ", ".join(f"{r.group} {ratio(r.ratio_final)}" for r in layers),
                f"median immediate factor within {percent(DROP_TOL.value)} of {number(p.lr_drop)} and every layer's "
                f"final factor within {percent(DROP_TOL.value)} of √{number(p.lr_drop)} (partly: one of them)",
                status_of(imm_ok and all(fin_each), imm_ok or any(fin_each)), regime=reg["drop"], section="drop"),
    ]


def schedules_verdicts(result: IntrinsicLRResult) -> list[Verdict]:
    s = result.schedules
    reg = schedules_regimes(result)
    runs = s.runs
    ref = np.array([g.effective_lr for g in runs[0].phase2.layers])
    off = [r.name for r in runs[1:]
           if np.max(np.abs(np.log(np.array([g.effective_lr for g in r.phase2.layers]) / ref)))
           > math.log(SAME_ELR.value)]
    elr, acc = s.effective_lr_spread, s.test_acc_spread
    same = elr < SAME_ELR.value and acc < SAME_ACC.value
    rows = [(shape, *s.decay_gap(shape)) for shape in DECAY_SHAPES]
    acc_same = [shape for shape, gap, _ in rows if abs(gap) <= SAME_ACC.value]
    elr_same = [shape for shape, _, r in rows if r <= SAME_ELR.value]
    both = [shape for shape in DECAY_SHAPES if shape in acc_same and shape in elr_same]
    return [
        Verdict("fig5-history", "Figure 5: different histories, then the same (η, λ), reach the same equilibrium",
                SOURCE, "same accuracy, norm and effective LR",
                f"effective LRs {ratio(elr)} apart, test accuracy {percent(acc)} apart",
                f"effective LRs within {SAME_ELR} (worst layer) and test accuracies within {percent(SAME_ACC.value)} "
                "at the end of the common phase (partly: at least one history agrees with the reference)"
                + (f"; off the reference: {', '.join(off)}" if off else ""),
                status_of(same, len(off) < len(runs) - 1), regime=reg["schedules"], section="schedules"),
        Verdict("decay-schedules", r"Decay schedules at equal $\lambda_e$ end alike whatever the (η, λ) split",
                REVIEWS + " (reviewer 1, question 5)", "(asked, not measured)",
                "; ".join(f"{shape} {percent(abs(gap))}, {ratio(r)}" for shape, gap, r in rows),
                f"per schedule, the two splits' final test accuracies within {percent(SAME_ACC.value)} and effective "
                f"LRs within {SAME_ELR} (partly: some schedules); same accuracy: {', '.join(acc_same) or 'none'}; "
                f"same effective LR: {', '.join(elr_same) or 'none'}",
                status_of(len(both) == len(DECAY_SHAPES), bool(acc_same or elr_same)), regime=reg["decay"],
                section="schedules"),
    ]


def sweep_verdicts(result: IntrinsicLRResult) -> list[Verdict]:
    sw = result.sweep
    slope = sw.fit.slope
    status = (status_of(_near(slope, 1, SLOPE_NET_TOL), _near(slope, 1, SLOPE_NET_PARTLY)) if np.isfinite(slope)
              else status_of(None))
    return [Verdict("net-settle-time", r"Network: equilibrium is reached in $\propto 1/\lambda_e$ steps", SOURCE,
                    "slope 1", f"slope {number(slope)}",
                    f"log-log slope of the slowest layer's steps to equilibrium against 1/λe within {SLOPE_NET_TOL} "
                    f"of 1 (partly: within {SLOPE_NET_PARTLY}); per layer: " + ", ".join(
                        f"{g} {number(f.slope)} ({f.points} λe)" for g, f in sw.layer_fits.items()),
                    status, regime=sweep_regime(result), section="sweep")]


def short_verdicts(result: IntrinsicLRResult) -> list[Verdict]:
    p, m = result.params, result.momentum_batch
    reg = short_regimes(result)
    mom = [g for r in m.runs if r.momentum > 0 for g in r.equilibrium.layers]
    mom_err = max(g.angular_error for g in mom)
    bs = [r for r in m.runs if r.plain and r.norm == "batch" and r.lr == p.lr]
    angles = np.array([[g.angular for g in r.equilibrium.layers] for r in bs])  # runs x layers
    bs_spread = float((np.ptp(angles, axis=0) / angles.mean(0)).max())
    ln_err, ln_ratio = m.angular_error("layer"), m.split_effective_lr_ratio("layer")
    batches = ", ".join(str(r.batch_size) for r in bs)
    return [
        Verdict("momentum", r"With momentum $\mu$ the angular update is $\sqrt{2\lambda_e/(1+\mu)}$",
                MOMENTUM_SOURCE, r"$\sqrt{2\lambda_e/(1+\mu)}$", f"within {percent(mom_err)} (worst layer)",
                f"worst layer within {percent(NET_ANGLE_TOL.value)} (partly: {percent(NET_ANGLE_PARTLY.value)}), "
                f"momentum {number(p.momentum)} at lr × (1 − μ)",
                status_of(mom_err < NET_ANGLE_TOL.value, mom_err < NET_ANGLE_PARTLY.value),
                regime=reg["momentum_batch"], section="momentum_batch"),
        Verdict("batch-size", "The equilibrium angular update does not depend on the batch size", SOURCE,
                "independent of B", f"spread {percent(bs_spread)}",
                f"largest spread of a layer's angular update over batch sizes {batches}, relative to its mean, "
                f"within {percent(BATCH_SPREAD.value)} (partly: {percent(BATCH_SPREAD_PARTLY.value)})",
                status_of(bs_spread < BATCH_SPREAD.value, bs_spread < BATCH_SPREAD_PARTLY.value),
                regime=reg["momentum_batch"], section="momentum_batch"),
        Verdict("layernorm", "With LayerNorm in place of BatchNorm the same relations hold",
                REVIEWS + " (reviewer 2, point 3; reviewer 3)", "(asked, not measured)",
                f"angle within {percent(ln_err)}; splits {ratio(ln_ratio)} apart",
                f"LayerNorm layers' angular update within {percent(NET_ANGLE_TOL.value)} of √(2λe) and the two "
                f"splits' effective LRs within {SAME_ELR} (partly: one of them, or the angle within "
                f"{percent(NET_ANGLE_PARTLY.value)})",
                status_of(ln_err < NET_ANGLE_TOL.value and ln_ratio <= SAME_ELR.value,
                          ln_err < NET_ANGLE_PARTLY.value or ln_ratio <= SAME_ELR.value),
                regime=reg["layernorm"], section="momentum_batch"),
    ]


def verdicts(result: IntrinsicLRResult) -> list[Verdict]:
    """The verdicts of the sections present in `result`, in page order."""
    out: list[Verdict] = []
    if result.toy is not None:
        out += toy_verdicts(result.toy, result.params.lr_drop)
    if result.drop is not None:
        out += drop_verdicts(result)
    if result.schedules is not None:
        out += schedules_verdicts(result)
    if result.sweep is not None:
        out += sweep_verdicts(result)
    if result.momentum_batch is not None:
        out += short_verdicts(result)
    return out

