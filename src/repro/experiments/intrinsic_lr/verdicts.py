"""The chapter's claims judged on a result (book-scale or recorded alike): every threshold named, with its unit and
why; the regime each network claim needs (a network that learned, at equilibrium for long enough in units of
1 / lambda_e), measured, so that a verdict on a network not in that state reads "inconclusive at this scale"."""

from __future__ import annotations

import math

import numpy as np

from repro.fmt import number, percent, ratio, signed
from repro.regime import Regime, at_least, at_most
from repro.verdict import Threshold, Verdict, status_of

from .chapter import IntrinsicLRResult
from .measure import log_fit
from .params import DECAY_SHAPES
from .result import Fit, LayerEq
from .toy import ToyResult

SOURCE = "Li, Lyu, Arora 2020 (references, section 4b)"
MOMENTUM_SOURCE = "Wan et al., Spherical Motion Dynamics (references, section 4b)"
REVIEWS = "NeurIPS 2020 reviews (references, section 4d)"
# Figure 5 of the paper (caption quoted in the references, section 4a): PreResNet-32, 5 random LR/WD schedules
# for 500 epochs, then the same LR and WD until epoch 1000, then LR decayed and WD removed: ~95% test accuracy.
PAPER_FIG5_TEST_ACC = 0.95
PAPER_WEIGHT_DECAY = 5e-4  # with lr 0.1 (references, section 4a)

# ------------------------------------------------------------------------------------------------- regimes
LEARNED_TEST_ACC = Threshold(0.5, "", "a network that learned: test accuracy 5x chance on 10 classes")
EQ_TIMES = Threshold(3.0, "/λe", "equilibrium is reached in O(1/λe) steps: a run of at least three of them")

# ---------------------------------------------------------------------------------------------- the toy model
TOY_EQ_ERROR = Threshold(0.05, "", "the toy is exactly scale-invariant: averaged over its replicas and the second "
                                   "half of a run of several 1/λe, its noise is well under 5%")
SLOPE_TOY_TOL = Threshold(0.1, "", "the toy's settling time is exactly ∝ 1/λe in the recursion; 10% in the slope")
SLOPE_TOY_PARTLY = Threshold(0.3, "", "a slope within 30% of 1 still grows with 1/λe")
TOY_DROP_TOL = Threshold(0.1, "", "the toy's final angular update averages half a long run: 10% of √10")

# ---------------------------------------------------------------------------------------------- the network
RADIAL_PUSH_MAX = Threshold(0.1, "", "the theory is about scale-invariant layers: a layer counts as one while the "
                                     "radial part of its gradient moves its norm by at most 10% of what sets the "
                                     "equilibrium (2|cos(w, ∇L)|/Δθ ≤ 0.1)")
NET_ANGLE_TOL = Threshold(0.15, "", "√(2λe) drops a term of order λe and assumes the gradient ⟂ w; a real "
                                    "network's G² moves as it learns: 15%")
NET_ANGLE_PARTLY = Threshold(0.4, "", "within 40%: the right order and trend, not the value")
DROP_TOL = Threshold(0.25, "", "the immediate and the final factor, each within 25% of 10 and of √10")
SLOPE_NET_TOL = Threshold(0.2, "", "steps to equilibrium ∝ 1/λe: a log-log slope within 0.2 of 1")
SLOPE_NET_PARTLY = Threshold(0.5, "", "a slope within 0.5 of 1 still grows with 1/λe")
DIFF_Z = Threshold(2.0, "σ", "a difference between two single-seed runs is called only beyond twice its seed "
                             "standard deviation (√2 × one run's, measured on the comparison's reference run)")
SAME_ELR = Threshold(1.25, "×", "and only if it is a real difference: effective LRs more than 25% apart")
SAME_ACC = Threshold(0.01, "", "and only if it is a real difference: test accuracies more than 1 point apart")
BATCH_SPREAD = Threshold(0.2, "", "and only if it is a real difference: angular updates more than 20% apart")
BATCH_SPREAD_PARTLY = Threshold(0.5, "", "apart by at most 50%: B matters, but less than through lr")


def _near(value: float, target: float, tol: float | Threshold) -> bool:
    return bool(np.isfinite(value)) and abs(value / target - 1) <= float(tol)


def _worst(d: dict[str, float]) -> float:
    """The largest value over layers; NaN (not measurable) wins, so that it fails the check."""
    v = list(d.values())
    return math.nan if any(not np.isfinite(x) for x in v) else max(v)


def invariant(layer: LayerEq) -> bool:
    """Whether a tracked layer was scale-invariant over a window, as measured (a NaN push is not)."""
    return bool(layer.radial_push <= RADIAL_PUSH_MAX.value)


def called(diff: float, seed_sd: float, tolerance: float) -> bool:
    """Whether a difference between two single-seed runs is called: beyond DIFF_Z standard deviations of a
    difference (sqrt(2) x one run's seed sd) and beyond the `tolerance` that makes it matter. Without a seed
    spread (NaN) nothing is called."""
    return bool(np.isfinite(seed_sd)) and abs(diff) > max(DIFF_Z.value * math.sqrt(2) * seed_sd, tolerance)


def _names(layers: list[str]) -> str:
    return ", ".join(layers) if layers else "none"


# ================================================================================================= regimes


def drop_regimes(result: IntrinsicLRResult) -> dict[str, Regime]:
    """Before the drop: a network that learned, run for EQ_TIMES / lambda_e steps and no longer drifting (the
    effective LR moves by at most `equilibrium_tol` between the last two windows of 1 / lambda_e), with at least
    one scale-invariant layer; after it: the same at lambda_e' = lambda_e / lr_drop."""
    p, d = result.params, result.drop
    lam, tol = p.intrinsic_lr, p.equilibrium_tol
    after_steps = d.main.trace.step[-1] - d.drop_step
    before = [at_least("test accuracy before the drop", d.acc("main_before").mean, LEARNED_TEST_ACC.value),
              at_least("steps before the drop × λe", d.drop_step * lam, EQ_TIMES.value),
              at_most("effective-LR drift over the last 1/λe before the drop (worst layer)",
                      _worst(d.drift_before), tol),
              at_least("scale-invariant layers before the drop", sum(map(invariant, d.before.layers)), 1)]
    return {"equilibrium": Regime("Network before the drop", "a network that learned, at equilibrium", before),
            "drop": Regime("Network after the drop", "equilibrium before the drop and at the end of the run", [
                *before[1:3], at_least("test accuracy after the drop", d.acc("main_after").mean,
                                       LEARNED_TEST_ACC.value),
                at_least("steps after the drop × λe′", after_steps * lam / p.lr_drop, EQ_TIMES.value),
                at_most("effective-LR drift over the last 1/λe′ (worst layer)", _worst(d.drift_after), tol),
                at_least("layers scale-invariant before and after the drop", len(drop_layers(result)), 1)])}


def drop_layers(result: IntrinsicLRResult) -> list[str]:
    """The tracked layers scale-invariant both before the drop and at the end of the run."""
    d = result.drop
    return [g.group for g in d.before.layers if invariant(g) and invariant(d.after.layer(g.group))]


def schedules_regimes(result: IntrinsicLRResult) -> dict[str, Regime]:
    p, s = result.params, result.schedules
    runs = s.runs
    common = s.phase_ends[1] - s.phase_ends[0]  # steps of the common phase
    return {"schedules": Regime("Figure 5 runs", "networks that learned, with a common phase of several 1/λe", [
        at_least("lowest test accuracy (common phase)", min(r.acc_phase2.mean for r in runs), LEARNED_TEST_ACC.value),
        at_least("common-phase steps × λe", common * p.intrinsic_lr, EQ_TIMES.value),
        at_most("reference run's effective-LR drift at the end of the common phase (worst layer)",
                _worst(runs[0].drift_phase2), p.equilibrium_tol),
        at_least("scale-invariant layers (reference, common phase)", sum(map(invariant, runs[0].phase2.layers)),
                 1)]),
            "decay": Regime("Decay-schedule runs", "networks that learned", [
                at_least("lowest final test accuracy", min(r.test_acc for r in s.decay), LEARNED_TEST_ACC.value)])}


def sweep_layers(result: IntrinsicLRResult) -> list[str]:
    """The tracked layers scale-invariant over the final window of every run of the sweep."""
    rows = result.sweep.rows
    return [g.group for g in rows[0].equilibrium.layers if all(invariant(r.equilibrium.layer(g.group)) for r in rows)]


def sweep_regime(result: IntrinsicLRResult) -> Regime:
    """Networks that learned; runs long enough, in units of 1 / lambda_e, for the slowest layer to settle (the norm
    recursion's settling time from its measured start, plus the final window that defines the level); every
    scale-invariant layer settled."""
    sw = result.sweep
    rows, layers = sw.rows, sweep_layers(result)
    margin = min(((r.steps - r.window - max(r.pred_settle_steps[g] for g in layers)) * r.intrinsic_lr
                  for r in rows), default=math.nan)
    settled = [np.isfinite(r.settle_steps[g]) for r in rows for g in layers]
    return Regime("λe sweep", "networks that learned, every scale-invariant layer settled within the run", [
        at_least("lowest final test accuracy", min(r.test_acc for r in rows), LEARNED_TEST_ACC.value),
        at_least("scale-invariant layers", len(layers), 1),
        at_least("run length minus the slowest predicted settling and the final window, × λe", margin, 0.0),
        at_least("share of (λe, scale-invariant layer) pairs whose norm settled",
                 float(np.mean(settled)) if settled else math.nan, 1.0)])


def short_regimes(result: IntrinsicLRResult) -> dict[str, Regime]:
    p, m = result.params, result.momentum_batch

    def short(runs, subject: str) -> Regime:
        # momentum mu at lr (1 - mu) takes steps like plain SGD at lr: its time unit is (1 - mu) / (lr wd)
        return Regime(subject, "networks that learned, at equilibrium", [
            at_least("lowest test accuracy (second half)", min(r.acc.mean for r in runs), LEARNED_TEST_ACC.value),
            at_least("steps × λe (shortest run; with momentum μ: λe/(1 − μ))",
                     min(m.steps * r.lr * r.weight_decay / (1 - r.momentum) for r in runs), EQ_TIMES.value),
            at_most("effective-LR drift over the last 1/λe (worst run and layer)",
                    max(_worst(r.drift) for r in runs), p.equilibrium_tol),
            at_least("scale-invariant layers (fewest in a run)",
                     min(sum(map(invariant, r.equilibrium.layers)) for r in runs), 1)])

    batch = [r for r in m.runs if r.norm == "batch" and "eps" not in r.name]
    return {"momentum_batch": short(batch, "Momentum, batch-size and BatchNorm split runs"),
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
                f"worst relative error over λe {number(lo)} to {number(hi)} below {percent(TOY_EQ_ERROR.value)} for "
                "the angular update and for |w|² (against the fixed point with the measured G²)",
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
    before_ok = [g for g in d.before.layers if invariant(g)]
    kept = drop_layers(result)
    layers = [r for r in d.layers if r.group in kept]
    excluded = [g.group for g in d.before.layers if g.group not in kept]
    imm = float(np.median([r.ratio_immediate for r in layers])) if layers else math.nan
    # the angular update is lr G / |w|^2: what is left of the immediate fall once G's own fall is divided out
    lr_part = float(np.median([r.ratio_immediate / r.grad_ratio_immediate for r in layers])) if layers else math.nan
    g_fall = float(np.median([r.grad_ratio_immediate for r in layers])) if layers else math.nan
    fin_each = [_near(r.ratio_final, sq, DROP_TOL) for r in layers]
    ang = max((g.angular_error for g in before_ok), default=math.nan)
    nrm = max((g.norm_error for g in before_ok), default=math.nan)
    not_invariant = (f"; not scale-invariant (radial push above {RADIAL_PUSH_MAX.value:g}), left out: "
                     f"{_names(excluded)}" if excluded else "")
    window = f"the first {d.just_after_steps} steps after the drop against the last 0.5/λe before it"
    return [
        Verdict("net-equilibrium", r"Network: before the drop the angular update is $\sqrt{2\lambda_e}$", SOURCE,
                r"$\sqrt{2\lambda_e}$", f"within {percent(ang)} (worst layer)",
                f"worst scale-invariant layer's angular update within {percent(NET_ANGLE_TOL.value)} of √(2λe) "
                f"(partly: {percent(NET_ANGLE_PARTLY.value)}); norms within {percent(nrm)} of the fixed point with "
                f"the measured G²; one seed" + not_invariant,
                status_of(ang < NET_ANGLE_TOL.value, ang < NET_ANGLE_PARTLY.value), regime=reg["equilibrium"],
                section="drop"),
        Verdict("net-lr-drop-immediate", rf"Network: at the LR drop the angular update falls {number(p.lr_drop)}×",
                SOURCE, ratio(p.lr_drop), f"{ratio(imm)} ({ratio(lr_part)} with G's own fall divided out)",
                f"median over scale-invariant layers of the fall over {window}, within {percent(DROP_TOL.value)} of "
                f"{number(p.lr_drop)} (partly: once the fall of G = |∇L||w| over the same windows, "
                f"{ratio(g_fall)}, is divided out, since Δθ = ηG/|w|²); one seed" + not_invariant,
                status_of(_near(imm, p.lr_drop, DROP_TOL), _near(lr_part, p.lr_drop, DROP_TOL)),
                sentence=(f"G falls {ratio(g_fall)} within those steps (the loss falls after the drop), so the "
                          f"angular update falls more than the learning rate." if not _near(imm, p.lr_drop, DROP_TOL)
                          and _near(lr_part, p.lr_drop, DROP_TOL) else ""),
                regime=reg["drop"], section="drop"),
        Verdict("net-lr-drop", rf"Network: after the LR drop the angular update recovers to "
                rf"$\sqrt{{{number(p.lr_drop)}}}$ below its old level", SOURCE, ratio(sq),
                ", ".join(f"{r.group} {ratio(r.ratio_final)}" for r in layers),
                f"every scale-invariant layer's angular update at the end (the run's second half) within "
                f"{percent(DROP_TOL.value)} of √{number(p.lr_drop)} below the last 0.5/λe before the drop (partly: "
                "one layer); one seed" + not_invariant,
                status_of(bool(fin_each) and all(fin_each), any(fin_each)), regime=reg["drop"], section="drop"),
    ]


def figure5_differences(result: IntrinsicLRResult) -> dict[str, dict[str, list[str]]]:
    """Per history (after the reference), what differs from the reference at the end of the common phase beyond
    its seed spread: {"effective LR": the scale-invariant layers whose effective LR differs, "test accuracy":
    ["test accuracy"] or []}."""
    s = result.schedules
    ref = s.runs[0]
    acc_sd, elr_sd = s.acc_spread.sd, s.log_elr_spread
    return {r.name: {"effective LR": [g.group for g in ref.phase2.layers if invariant(g) and called(
        math.log(r.phase2.layer(g.group).effective_lr / g.effective_lr), elr_sd[g.group].sd,
        math.log(SAME_ELR.value))],
                     "test accuracy": ["test accuracy"] if called(r.acc_phase2.mean - ref.acc_phase2.mean, acc_sd,
                                                                  SAME_ACC.value) else []}
            for r in s.runs[1:]}


def decay_differences(result: IntrinsicLRResult) -> dict[str, dict[str, list[str]]]:
    """Per schedule, what differs between its two splits beyond the seed spread of the reference step decay."""
    s = result.schedules
    acc_sd, elr_sd = s.decay_acc_spread.sd, s.decay_log_elr_spread
    out = {}
    for shape in DECAY_SHAPES:
        a, b = s.decay_pair(shape)
        out[shape] = {"effective LR": [g for g in a.effective_lr_end if called(
            math.log(b.effective_lr_end[g] / a.effective_lr_end[g]), elr_sd[g].sd, math.log(SAME_ELR.value))],
                      "test accuracy": ["test accuracy"] if called(b.test_acc - a.test_acc, acc_sd, SAME_ACC.value)
                      else []}
    return out


def _agreement(differs: dict[str, dict[str, list[str]]]) -> str:
    """Over every (comparison, quantity) pair: reproduced when none differs, not reproduced when all do, partly
    otherwise (e.g. the same test accuracy but another effective LR)."""
    flags = [bool(v) for q in differs.values() for v in q.values()]
    return status_of(not any(flags), not all(flags))


def _differing(differs: dict[str, dict[str, list[str]]]) -> str:
    items = [f"{name}: " + ", ".join(f"{q} ({', '.join(v)})" if q == "effective LR" else q for q, v in d.items() if v)
             for name, d in differs.items() if any(d.values())]
    return "; ".join(items) if items else "none"


def schedules_verdicts(result: IntrinsicLRResult) -> list[Verdict]:
    s = result.schedules
    reg = schedules_regimes(result)
    fig5, dec = figure5_differences(result), decay_differences(result)
    seeds = f"{s.seeds} seeds"
    gaps = {shape: s.decay_gap(shape) for shape in DECAY_SHAPES}
    return [
        Verdict("fig5-history", "Figure 5: different histories, then the same (η, λ), reach the same equilibrium",
                SOURCE, "same accuracy, norm and effective LR",
                f"effective LRs {ratio(s.effective_lr_spread)} apart, test accuracy {percent(s.test_acc_spread)} apart",
                f"a history differs from the reference where its effective LR (a scale-invariant layer) or its test "
                f"accuracy at the end of the common phase is off by more than {number(DIFF_Z.value)} σ of a "
                f"difference and by more than {SAME_ELR} or {percent(SAME_ACC.value)} (σ from the reference history "
                f"at {seeds}: test accuracy ± {percent(s.acc_spread.sd)}); reproduced if nothing differs, not "
                "reproduced if both differ for every history, partly otherwise; differing: " + _differing(fig5),
                _agreement(fig5), regime=reg["schedules"], section="schedules"),
        Verdict("decay-schedules", r"Decay schedules at equal $\lambda_e$ end alike whatever the (η, λ) split",
                REVIEWS + " (reviewer 1, question 5)", "(asked, not measured)",
                "; ".join(f"{shape} {signed(100 * gap)} points, {ratio(r)}" for shape, (gap, r) in gaps.items()),
                f"per schedule, the two splits differ where their final test accuracy or a layer's final effective "
                f"LR is off by more than {number(DIFF_Z.value)} σ of a difference and by more than "
                f"{percent(SAME_ACC.value)} or {SAME_ELR} (σ from the reference step decay at {seeds}: test "
                f"accuracy ± {percent(s.decay_acc_spread.sd)}); reproduced if nothing differs, not reproduced if "
                "both differ for every schedule, partly otherwise; differing: " + _differing(dec),
                _agreement(dec), regime=reg["decay"], section="schedules"),
    ]


def sweep_verdicts(result: IntrinsicLRResult) -> list[Verdict]:
    sw = result.sweep
    layers = sweep_layers(result)
    excluded = [g for g in sw.layer_fits if g not in layers]
    inv = [1 / r.intrinsic_lr for r in sw.rows]
    slowest = [max((r.settle_steps[g] for g in layers), default=math.nan) for r in sw.rows]
    fit = Fit.of(log_fit(inv, slowest)) if layers and all(np.isfinite(slowest)) else None
    slope = fit.slope if fit is not None else math.nan
    status = (status_of(_near(slope, 1, SLOPE_NET_TOL), _near(slope, 1, SLOPE_NET_PARTLY)) if np.isfinite(slope)
              else status_of(None))
    return [Verdict("net-settle-time", r"Network: equilibrium is reached in $\propto 1/\lambda_e$ steps", SOURCE,
                    "slope 1", f"slope {number(slope)}" + (f" ± {number(fit.slope_se)}" if fit is not None else ""),
                    f"log-log slope of the slowest scale-invariant layer's steps to equilibrium against 1/λe within "
                    f"{SLOPE_NET_TOL} of 1 (partly: within {SLOPE_NET_PARTLY}), ± its standard error over "
                    f"{len(sw.rows)} values of λe, one seed; per layer: " + ", ".join(
                        f"{g} {number(f.slope)}" for g, f in sw.layer_fits.items())
                    + (f"; not scale-invariant, left out: {_names(excluded)}" if excluded else ""),
                    status, regime=sweep_regime(result), section="sweep")]


def short_verdicts(result: IntrinsicLRResult) -> list[Verdict]:
    p, m = result.params, result.momentum_batch
    reg = short_regimes(result)
    mom = [g for r in m.runs if r.momentum > 0 for g in r.equilibrium.layers if invariant(g)]
    mom_err = max((g.angular_error for g in mom), default=math.nan)
    bs = [r for r in m.runs if r.plain and r.norm == "batch" and r.lr == p.lr]
    ref = bs[[r.batch_size for r in bs].index(p.batch_size)] if p.batch_size in [r.batch_size for r in bs] else bs[0]
    spread = m.log_angular_spread
    layers = [g.group for g in ref.equilibrium.layers if all(invariant(r.equilibrium.layer(g.group)) for r in bs)]
    rel = {(r.batch_size, g): r.equilibrium.layer(g).angular / ref.equilibrium.layer(g).angular - 1
           for r in bs if r is not ref for g in layers}
    differ = [k for k, v in rel.items() if called(math.log1p(v), spread[k[1]].sd, math.log1p(BATCH_SPREAD.value))]
    worst = max((abs(v) for v in rel.values()), default=math.nan)
    ln_err = m.angular_error("layer")
    ln_ratio = m.split_effective_lr_ratio("layer")
    ln_sd = max(s.sd for s in m.log_elr_spread.values())
    ln_split_differs = called(math.log(ln_ratio), ln_sd, math.log(SAME_ELR.value))
    seeds = f"{m.seeds} seeds"
    return [
        Verdict("momentum", r"With momentum $\mu$ the angular update is $\sqrt{2\lambda_e/(1+\mu)}$",
                MOMENTUM_SOURCE, r"$\sqrt{2\lambda_e/(1+\mu)}$", f"within {percent(mom_err)} (worst layer)",
                f"worst scale-invariant layer within {percent(NET_ANGLE_TOL.value)} (partly: "
                f"{percent(NET_ANGLE_PARTLY.value)}), momentum {number(p.momentum)} at lr × (1 − μ); one seed",
                status_of(mom_err < NET_ANGLE_TOL.value, mom_err < NET_ANGLE_PARTLY.value),
                regime=reg["momentum_batch"], section="momentum_batch"),
        Verdict("batch-size", "The equilibrium angular update does not depend on the batch size", SOURCE,
                "independent of B", f"up to {percent(worst)} apart",
                f"batch {', '.join(str(r.batch_size) for r in bs if r is not ref)} against batch {ref.batch_size}, per "
                f"scale-invariant layer: a difference is called beyond {number(DIFF_Z.value)} σ of a difference "
                f"(σ of the log angular update from plain SGD at {seeds}) and beyond {percent(BATCH_SPREAD.value)}; "
                f"reproduced if none is called, partly if those called are within "
                f"{percent(BATCH_SPREAD_PARTLY.value)}; called: "
                + _names([f"batch {b} {g}" for b, g in differ]),
                status_of(not differ, all(abs(rel[k]) <= BATCH_SPREAD_PARTLY.value for k in differ)),
                regime=reg["momentum_batch"], section="momentum_batch"),
        Verdict("layernorm", "With LayerNorm in place of BatchNorm the same relations hold",
                REVIEWS + " (reviewer 2, point 3; reviewer 3)", "(asked, not measured)",
                f"angle within {percent(ln_err)}; splits {ratio(ln_ratio, 4)} apart",
                f"LayerNorm layers' angular update within {percent(NET_ANGLE_TOL.value)} of √(2λe), and the two "
                f"splits of one λe not called different (beyond {number(DIFF_Z.value)} σ of a difference, σ of the "
                f"log effective LR of BatchNorm's plain SGD at {seeds}, and beyond {SAME_ELR}); partly: one of "
                f"them, or the angle within {percent(NET_ANGLE_PARTLY.value)}",
                status_of(ln_err < NET_ANGLE_TOL.value and not ln_split_differs,
                          ln_err < NET_ANGLE_PARTLY.value or not ln_split_differs),
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
