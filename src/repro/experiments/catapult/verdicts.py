"""The catapult chapter's verdicts: every threshold named, with its unit and why; the regimes each claim needs; and
`verdicts(result)`, which judges a book-scale run and recorded paper-scale units alike (a section that is None was
not computed, and its claims are skipped)."""

from __future__ import annotations

import math

from repro.fmt import number, percent, signed
from repro.regime import INCONCLUSIVE, Regime, at_least, at_most
from repro.verdict import NOT_REPRODUCED, PARTLY, REPRODUCED, Threshold, Verdict, status_of

from .eos import EOS_REACH, EosRun, EosSection
from .linear import KIND_LABEL, N_TEST, LinearSection, LinearSweep
from .nets import FIT_ACCURACY, NetsSection, NetSweep
from .phases import LOGISTIC_LR_CRIT, THEORY_LR_CRIT, THEORY_LR_MAX
from .result import CatapultResult
from .uv import UvSection

LEWKOWYCZ = "Lewkowycz et al. 2020"
HUANG = "Huang et al. (deep linear, logistic loss)"
COHEN = "Cohen et al. 2021"

# ----------------------------------------------------------------------------------------------- thresholds

UV_EDGE_STEPS = Threshold(2, "grid steps", "the first grid rate past an edge lies within one grid step of it; a "
                                           "second step allows the finite width's shift of the edge")
LOGISTIC_EDGE_WINDOW = Threshold(1.0, "", "η·λ₀ within 1 of 8: a finite width and a finite number of steps "
                                          "move the first visible spike, the squared loss's 2 is far outside")
NET_EDGE_STEPS = Threshold(2, "grid steps", "the first spike within two steps of the sweep's grid above 2: the "
                                            "edge is resolved to one step, and a weak first spike may need one more")
CATAPULT_FLAT_SHARE = Threshold(0.8, "", "most catapult runs end flatter than the edge, η·λ_final < 2: a "
                                         "rare run near the divergence edge may stop before its curvature settles")
ACCURACY_SE = Threshold(2, "standard errors", "a difference of two test accuracies is called only beyond twice its "
                                              "standard error from the test set's size (binomial, the two taken as "
                                              "independent, which errs wide); one seed: the seed spread is not "
                                              "measured")
MIN_TRAIN_ACCURACY = Threshold(FIT_ACCURACY, "", "Lewkowycz et al. compare trained networks: each compared run fits "
                                                 "its training set")
LAZY_START_LOSS = Threshold(1.05, "", "a centred network starts at the zero output's loss (1/2 for one-hot "
                                      "targets), the lazy regime's starting point")
LAZY_NTK_CHANGE = Threshold(0.1, "", "in the lazy regime the NTK hardly moves: λ within 10% of λ₀ at "
                                     "the smallest rate")
MINIMUM_SPREAD = Threshold(1.01, "", "a flatter *minimum* needs runs that reached the minimum: the stable runs' "
                                     "final losses within 1% of each other")
# The edge of stability (Cohen et al. 2021). The sharpness is measured by Lanczos, whose error each run measures
# against a converged float64 eigenvalue at the edge (EosRun.lanczos_error).
EOS_WELL_BELOW = Threshold(0.7, "", "each run starts well below its edge, the sharpness at initialisation at most "
                                    "0.7 × 2/η: only progressive sharpening can bring it there")
EOS_RISE_OVER_ERROR = Threshold(10, "× the Lanczos error", "the sharpness's rise from initialisation to its peak, "
                                                          "relative, at least ten times the run's measured Lanczos "
                                                          "error: a rise no measurement error can fake")
EOS_BAND = (Threshold(0.95, "", "the median sharpness over the last third of training reaches 2/η to within 5%, "
                                "several times the measured Lanczos error"),
            Threshold(1.15, "", "and is at most 15% above it: Cohen et al. see the squared loss's sharpness hover "
                                "at or just above 2/η"))
EOS_CONTROL_PAST = Threshold(1.15, "", "the small-η control's final sharpness above 1.15 × the largest 2/η of the "
                                       "main runs, the top of the band they hover in: at the same physical time it "
                                       "has sharpened past their edge")
EOS_LOSS_DROP = Threshold(0.5, "", "a network that trained: its final loss at most half its initial loss")
EOS_REACH_BY = Threshold(2 / 3, "", "the edge reached within the first two thirds of training, so the last third "
                                    "is all at the edge")
EOS_REACHED = Threshold(EOS_REACH, "", "the sharpness reached 90% of 2/η")


def _nan(x: float) -> bool:
    return isinstance(x, float) and math.isnan(x)


def _numbers(extra: dict[str, float]) -> dict[str, float | None]:
    """Machine-readable numbers for verdicts.json: NaN (not measured) becomes None, as strict JSON has no NaN."""
    return {k: None if _nan(float(v)) else float(v) for k, v in extra.items()}


def accuracy_se(a: float, b: float, n: int) -> float:
    """The standard error of the difference of two test accuracies a and b on n test points, taken as independent
    binomial proportions."""
    return math.sqrt((a * (1 - a) + b * (1 - b)) / n)


def _lowest(values: list[float]) -> float:
    """The smallest value, NaN (not measured) if any is."""
    return math.nan if any(_nan(v) for v in values) else min(values)


def _diff(gain: float, se: float) -> str:
    """A difference of accuracies in points, signed, with its standard error."""
    return f"{signed(100 * gain, 2)} ± {number(100 * se, 2)}"


def _rate(x: float) -> str:
    return "none in the sweep" if _nan(x) else number(x)


# ---------------------------------------------------------------------------------------------------- regimes


def net_regimes(net: NetSweep) -> tuple[Regime, Regime]:
    """The two regimes a network's verdicts need. Phase labels: a network that starts lazy, its centred output's
    loss at most LAZY_START_LOSS times the zero output's (1/2 for one-hot targets), and whose smallest rate stays
    lazy (loss monotone, NTK within LAZY_NTK_CHANGE of lambda0). The generalisation comparison: both compared
    networks fit their training set, since Lewkowycz et al. compare trained networks."""
    phase = Regime(f"{net.label}, phase labels", "a network that starts in the lazy regime", [
        at_most("initial loss / zero-output loss", net.initial_loss / 0.5, float(LAZY_START_LOSS)),
        at_most("smallest rate: |λ_final / λ0 − 1|", net.lazy_lambda_change, float(LAZY_NTK_CHANGE)),
        at_most("smallest rate: largest loss rise (1 = none)", 1.0 if net.smallest_rate_outcome == "lazy" else 2.0,
                1.0)])
    fit = Regime(f"{net.label}, generalisation", "networks that fit their training set", [
        at_least("lowest train accuracy of the compared runs (best lazy and catapult rate, with and without the "
                 "small-LR phase)", _lowest([b.train_accuracy for b in net.best.values()]), float(MIN_TRAIN_ACCURACY))])
    return phase, fit


def minimum_regime(sweep: LinearSweep) -> Regime:
    return Regime(f"deep linear, {KIND_LABEL[sweep.kind]} data", "runs that reached the minimum",
                  [at_most("largest / smallest final loss of the stable runs", sweep.final_loss_spread,
                           float(MINIMUM_SPREAD))])


def eos_regime(run: EosRun) -> Regime:
    """What a main run's edge-of-stability test needs: a network that trained, and a sharpness that reached the
    edge early enough that the last third of training is all at it."""
    return Regime(f"fc-tanh at 2/η = {number(run.edge_factor)} × its initial sharpness",
                  "a network that trained and whose sharpness reached 2/η", [
                      at_most("final loss / initial loss", run.loss_drop, float(EOS_LOSS_DROP)),
                      at_least("largest sharpness / (2/η)", run.max_sharpness_ratio, float(EOS_REACHED)),
                      at_most("first step at 0.9 × 2/η, fraction of training", run.reached_fraction,
                              float(EOS_REACH_BY))])


def control_regime(control: EosRun) -> Regime:
    """The control shows free sharpening only while its own edge is out of reach."""
    return Regime(f"control at 2/η = {number(control.edge_factor)} × its initial sharpness",
                  "a control that trained and stayed below its own 2/η", [
                      at_most("final loss / initial loss", control.loss_drop, float(EOS_LOSS_DROP)),
                      at_most("largest sharpness / its own 2/η", control.max_sharpness_ratio, float(EOS_REACHED))])


def eos_regimes(eos: EosSection) -> list[Regime]:
    return [*(eos_regime(r) for r in eos.runs), control_regime(eos.control)]


def eos_hovers(run: EosRun) -> bool:
    """Progressive sharpening from well below 2/η, a rise beyond the Lanczos error, then hovering at 2/η."""
    rise = run.max_sharpness_ratio / run.initial_ratio - 1
    return (run.initial_ratio <= float(EOS_WELL_BELOW) and rise >= float(EOS_RISE_OVER_ERROR) * run.lanczos_error
            and float(EOS_BAND[0]) <= run.median_ratio_last_third <= float(EOS_BAND[1]))


def regimes(result: CatapultResult) -> list[Regime]:
    """Every regime the verdicts check, for the page's regime table."""
    out: list[Regime] = []
    if result.nets is not None:
        out += [r for net in result.nets.networks.values() for r in net_regimes(net)]
    if result.linear is not None:
        out += [minimum_regime(s) for k, s in result.linear.kinds.items() if k != "separable"]
    if result.eos is not None:
        out += eos_regimes(result.eos)
    return out


# --------------------------------------------------------------------------------------------------- verdicts


def uv_verdicts(uv: UvSection) -> list[Verdict]:
    step = uv.grid_step
    crit_ok = abs(uv.lr_crit - THEORY_LR_CRIT) <= float(UV_EDGE_STEPS) * step
    max_ok = abs(uv.lr_max - THEORY_LR_MAX) <= float(UV_EDGE_STEPS) * step
    log_ok = abs(uv.logistic_lr_crit - LOGISTIC_LR_CRIT) <= float(LOGISTIC_EDGE_WINDOW)
    return [
        Verdict(key="uv-edges", claim=r"uv model: lazy below $\eta\lambda_0=2$, catapult up to 4, divergent above",
                source=f"{LEWKOWYCZ} (uv model)", paper="2 and 4 (theory)",
                ours=f"{number(uv.lr_crit)} and {number(uv.lr_max)} (grid step {number(step)})",
                test=f"first catapult and first divergence on the grid, width {number(uv.width_of_edges)}, median "
                     f"over initialisations, each within {UV_EDGE_STEPS} of 2 and 4",
                status=status_of(crit_ok and max_ok, partly=crit_ok or max_ok), section="uv",
                extra=_numbers({"lr_crit": uv.lr_crit, "lr_max": uv.lr_max, "grid_step": step})),
        Verdict(key="uv-logistic-edge",
                claim=r"uv model, logistic loss: the lazy regime ends at $\eta\lambda_0=8$, not 2",
                source=f"{HUANG}; 8 = 2/ℓ''(0) is our derivation (refs/papers.md §5b)", paper="8",
                ours=f"{number(uv.logistic_lr_crit)}"
                     + ("; none diverges up to 64" if not uv.logistic_diverged_up_to_64 else "; diverges below 64"),
                test=f"first catapult on the grid (step {number(uv.logistic_grid_step)}) within "
                     f"{LOGISTIC_EDGE_WINDOW} of 8",
                status=status_of(log_ok), section="uv", extra=_numbers({"lr_crit": uv.logistic_lr_crit})),
    ]


def net_verdicts(nets: NetsSection) -> list[Verdict]:
    out = []
    for kind, net in nets.networks.items():
        phase, fit = net_regimes(net)
        crit_ok = (not _nan(net.lr_crit)
                   and net.last_lazy < THEORY_LR_CRIT < net.lr_crit <= THEORY_LR_CRIT + float(NET_EDGE_STEPS)
                   * nets.edge_step)
        flat = net.catapult_below_edge
        flat_ok = not _nan(flat) and flat >= float(CATAPULT_FLAT_SHARE)
        top = ("none diverges up to " + number(net.last_stable) if _nan(net.lr_max)
               else f"diverges from {number(net.lr_max)}")
        out.append(Verdict(
            key=f"{kind}-phases", claim=f"{net.label}: lazy below $\\eta\\lambda_0=2$, then catapults that end flatter",
            source=LEWKOWYCZ, paper="edge 2; divergence ≈ 12 for ReLU nets (UNVERIFIED)",
            ours=f"first spike {_rate(net.lr_crit)}; {top}; " + (f"{percent(flat)} end flatter" if not _nan(flat)
                                                                  else "no catapult"),
            test=f"last lazy rate < 2 < first spike ≤ 2 + {NET_EDGE_STEPS} (step {number(nets.edge_step)}), and at "
                 f"least {percent(float(CATAPULT_FLAT_SHARE))} of the catapult runs end with "
                 r"$\eta\lambda_{final}<2$; partly: one of the two",
            status=status_of(crit_ok and flat_ok, partly=crit_ok or (not _nan(flat) and flat > 0)), regime=phase,
            section="nets",
            extra=_numbers({"lr_crit": net.lr_crit, "lr_max": net.lr_max, "catapult_below_edge": flat})))
        pairs = [(net.best[("catapult", a)].test_accuracy, net.best[("lazy", a)].test_accuracy) for a in (False, True)]
        gains = [c - lz for c, lz in pairs]
        ses = [accuracy_se(c, lz, nets.n_test) for c, lz in pairs]
        better = [g > float(ACCURACY_SE) * se for g, se in zip(gains, ses, strict=True) if not _nan(g)]
        out.append(Verdict(
            key=f"{kind}-generalisation",
            claim=f"{net.label}: the catapult window tests better at equal physical time",
            source=LEWKOWYCZ, paper="best test accuracy often in the catapult phase",
            ours=f"{_diff(gains[0], ses[0])} points; after the small-LR phase {_diff(gains[1], ses[1])}",
            test=f"best catapult-window rate minus best lazy rate, test accuracy on {number(nets.n_test)} images, "
                 f"after the main run and after the small-LR phase: both above {ACCURACY_SE} (± one shown); "
                 f"partly: one of the two",
            status=(INCONCLUSIVE if not better else REPRODUCED if all(better) else
                    NOT_REPRODUCED if not any(better) else PARTLY),
            regime=fit, section="nets", extra=_numbers({"gain": gains[0], "gain_annealed": gains[1], "se": ses[0],
                                                        "se_annealed": ses[1]})))
    return out


def linear_verdicts(linear: LinearSection) -> list[Verdict]:
    out = []
    kinds = linear.kinds
    for kind in ("degenerate", "nonseparable"):
        s = kinds[kind]
        has_cat = not _nan(s.sharpness_catapult)
        out.append(Verdict(
            key=f"linear-{kind}-flatter",
            claim=f"Deep linear, logistic loss, {KIND_LABEL[kind]} data: the catapult phase ends in a flatter minimum",
            source=HUANG, paper="flatter minimum in the catapult phase",
            ours=(f"median $\\lambda_H$ {number(s.sharpness_catapult)} (catapult) vs {number(s.sharpness_lazy)} (lazy)"
                  if has_cat else "no catapult run in the sweep"),
            test="median top Hessian eigenvalue at the end, catapult runs below lazy runs",
            status=status_of(s.sharpness_catapult < s.sharpness_lazy if has_cat else None), regime=minimum_regime(s),
            section="linear", extra=_numbers({"lr_crit": s.lr_crit, "lr_crit_from_minimum": s.lr_crit_from_minimum})))
    s = kinds["nonseparable"]
    gain = s.test_accuracy_catapult - s.test_accuracy_lazy
    se = accuracy_se(s.test_accuracy_catapult, s.test_accuracy_lazy, N_TEST)
    out.append(Verdict(
        key="linear-nonseparable-generalisation",
        claim="Deep linear, logistic loss, non-separable data: the catapult phase tests better",
        source=HUANG, paper="better generalisation empirically",
        ours=(f"{_diff(gain, se)} points ({percent(s.test_accuracy_catapult)} vs "
              f"{percent(s.test_accuracy_lazy)})" if not _nan(gain) else "no catapult run in the sweep"),
        test=f"mean test accuracy of the catapult runs minus the lazy runs' above {ACCURACY_SE} (± one shown; "
             f"{number(N_TEST)} test points, clean labels)",
        status=status_of(None if _nan(gain) else gain > float(ACCURACY_SE) * se), section="linear",
        extra=_numbers({"gain": gain, "se": se})))
    return out


def eos_verdicts(eos: EosSection) -> list[Verdict]:
    runs, control = eos.runs, eos.control
    hover = [eos_hovers(r) for r in runs]
    past = control.final_sharpness / max(r.edge for r in runs)
    control_ok = past >= float(EOS_CONTROL_PAST)
    conditions = [c for reg in eos_regimes(eos) for c in reg.conditions]
    regime = Regime("fc-tanh runs and their control", "networks that trained, main runs that reached their edge "
                    "early, a control below its own", conditions)
    factors = ", ".join(number(r.edge_factor) for r in runs)
    return [Verdict(
        key="eos", claim=r"Full-batch GD: the sharpness rises to $2/\eta$ and hovers there; a smaller $\eta$ keeps "
                         r"rising past it",
        source=f"{COHEN} (fc-tanh, 5,000 CIFAR-10 images, squared loss)", paper="sharpness ≈ 2/η",
        ours=f"last third {', '.join(number(r.median_ratio_last_third) for r in runs)} × 2/η from "
             f"{', '.join(number(r.initial_ratio) for r in runs)}; control {number(past)} × the largest 2/η",
        test=f"2/η = {factors} × the initial sharpness; each run: initial sharpness ≤ {EOS_WELL_BELOW} × 2/η, rise to "
             f"its peak ≥ {EOS_RISE_OVER_ERROR} (measured: ≤ {percent(eos.lanczos_error, 2)}), median over the last "
             f"third of training {EOS_BAND[0]}–{EOS_BAND[1]} × 2/η; the control (2/η = "
             f"{number(control.edge_factor)} ×, same physical time) ends ≥ {EOS_CONTROL_PAST} × the largest 2/η; "
             "partly: some runs, or all without the control",
        status=status_of(all(hover) and control_ok, partly=any(hover)), regime=regime, section="eos",
        extra=_numbers({"lanczos_error": eos.lanczos_error, "control_past": past,
                        **{f"median_ratio_last_third_{number(r.edge_factor)}": r.median_ratio_last_third
                           for r in runs}}))]


def verdicts(result: CatapultResult) -> list[Verdict]:
    """Every claim of the chapter whose section was computed, in page order."""
    out: list[Verdict] = []
    if result.uv is not None:
        out += uv_verdicts(result.uv)
    if result.nets is not None:
        out += net_verdicts(result.nets)
    if result.eos is not None:
        out += eos_verdicts(result.eos)
    if result.linear is not None:
        out += linear_verdicts(result.linear)
    return out
