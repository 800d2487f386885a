"""The capstone's verdicts: one per candidate quantity's claim, with its thresholds named, judged on the runs that
learned; differences are called against their spread across the seed grids."""

from __future__ import annotations

import math

from repro.experiments.noise_scale.analysis import LEARNED_TRAIN_ACC
from repro.experiments.noise_scale.point import EDGE
from repro.experiments.noise_scale.result import Candidate, Grid, NoiseScaleResult
from repro.fmt import number, pm, signed
from repro.regime import Regime, at_least
from repro.verdict import Threshold, Verdict, status_of

SECTION = "grid"

MIN_LEARNED = Threshold(8, "runs", "a ranking needs runs that learned; fewer than eight rank nothing")
MIN_LEARNED_SHARE = Threshold(0.5, "", "and at least half the grid, or the ranking is about a corner of it")
MIN_SEEDS = Threshold(2, "seeds", "the seed-to-seed spread, against which every difference is judged, needs two "
                                  "runs per setting")
SIGNAL_OVER_SEED = Threshold(2.0, "", "the settings' mean test accuracies must differ by more than twice what a "
                                      "change of seed alone does (SD across settings / SD across seeds)")
COLLAPSES = Threshold(0.75, "", "the quantity alone explains three quarters of the test-accuracy variance")
PARTLY_COLLAPSES = Threshold(0.4, "", "the quantity alone explains a good part of it")
CALLED_AT = Threshold(2.0, "standard errors", "a difference is called when its mean over the seed grids exceeds "
                                              "twice its standard error across them (SD / √seeds)")
MIN_EQUILIBRATED = Threshold(8, "runs", "the intrinsic LR's claim is about equilibrium: runs with weight decay, "
                                        "longer than 1/(η·λ) steps")
MIN_SIDE = Threshold(4, "runs", "the window is compared with the lazy side: learned runs on both sides of the edge")


def called(mean: float, se: float) -> bool:
    """Whether a difference (mean over the seed grids, its SE across them) is called positive."""
    return math.isfinite(se) and mean > CALLED_AT.value * se


def grid_regime(grid: Grid) -> Regime:
    """What any ranking on this grid needs: runs that learned, and settings that differ by more than seeds do."""
    return Regime("the grid", "runs that learned, whose settings differ by more than their seeds do", [
        at_least(f"runs that learned (train accuracy ≥ {LEARNED_TRAIN_ACC}, not diverged)", grid.learned,
                 MIN_LEARNED.value),
        at_least("share of the grid that learned", grid.learned / grid.points, MIN_LEARNED_SHARE.value),
        at_least("seeds per setting", grid.seeds.seeds, MIN_SEEDS.value),
        at_least("test-accuracy SD across settings / SD across seeds", grid.seeds.signal_over_seed,
                 SIGNAL_OVER_SEED.value)])


def equilibrium_regime(grid: Grid) -> Regime:
    return Regime("the runs at equilibrium", "learned runs with weight decay, longer than 1/(η·λ) steps", [
        at_least("learned runs at equilibrium (t·η·λ ≥ 1, λ > 0)", grid.equilibrated, MIN_EQUILIBRATED.value)])


def window_regime(grid: Grid) -> Regime:
    w = grid.window
    return Regime("the window", "learned runs on both sides of the edge η·λ₀ = 2", [
        at_least("learned runs below the edge", w.n_below, MIN_SIDE.value),
        at_least("learned runs above the edge", w.n_inside, MIN_SIDE.value)])


def _with(regime: Regime, other: Regime) -> Regime:
    """The grid's regime and another's conditions: a verdict needs both."""
    return Regime(regime.subject, f"{regime.needs}; {other.needs}", [*regime.conditions, *other.conditions])


def collapse_status(c: Candidate) -> str:
    """A candidate's status by its collapse score and its margin over the learning rate alone (by seed)."""
    margin, se = c.vs_baseline
    return status_of(c.collapse >= COLLAPSES.value and called(margin, se), partly=c.collapse >= PARTLY_COLLAPSES.value)


def _collapse_ours(c: Candidate) -> str:
    margin, se = c.vs_baseline
    return f"collapse {number(c.collapse)} on {c.n} runs; over η alone {pm(margin, se)}; ρ {number(c.spearman)}"


def _collapse_test(runs: str) -> str:
    return (f"on {runs}: collapse score ≥ {COLLAPSES} and above the learning rate alone's by more than "
            f"{CALLED_AT} (computed on each seed's grid) for reproduced; collapse ≥ {PARTLY_COLLAPSES} for partly")


def noise_scale_verdict(grid: Grid) -> Verdict:
    c = grid.candidates["noise_scale"]
    return Verdict(
        key="noise-scale", claim=r"The SGD noise scale $\eta/B$ alone predicts test accuracy",
        source="Smith & Le 2018; Goyal et al. 2017", paper="equal η/B, equal accuracy",
        ours=_collapse_ours(c), test=_collapse_test("the runs that learned"), status=collapse_status(c),
        regime=grid_regime(grid), section=SECTION,
        extra={"collapse": c.collapse, "spearman": c.spearman, "collapse_all": c.collapse_all,
               "spearman_all": c.spearman_all, "vs_lr": c.vs_baseline[0]})


def intrinsic_lr_verdict(grid: Grid) -> Verdict:
    c = grid.candidates["intrinsic_lr"]
    regime = _with(grid_regime(grid), equilibrium_regime(grid))
    return Verdict(
        key="intrinsic-lr", claim=r"At equilibrium, the intrinsic learning rate $\eta\lambda$ alone predicts test "
        "accuracy", source="Li, Lyu, Arora 2020", paper="equal η·λ, equal equilibrium",
        ours=_collapse_ours(c), test=_collapse_test("the learned runs at equilibrium"),
        status=collapse_status(c), regime=regime, section=SECTION,
        extra={"collapse": c.collapse, "spearman": c.spearman, "vs_lr": c.vs_baseline[0]})


def window_verdict(grid: Grid) -> Verdict:
    w = grid.window
    gain, se = w.gain_over_seeds
    better = called(gain, se)
    regime = _with(grid_regime(grid), window_regime(grid))
    return Verdict(
        key="catapult-window", claim=r"Runs that start above the edge, $\eta\lambda_0>2$, without diverging "
        r"generalise better than runs below it ($\lambda_0$: top eigenvalue of the minibatch cross-entropy Hessian "
        "at initialisation)", source="Lewkowycz et al. 2020",
        paper="best accuracy for 2 < η·λ₀ < η_max·λ₀ (NTK, squared loss)",
        ours=f"window − below {signed(100 * gain)} ± {number(100 * se)} points; best setting at η·λ₀ = "
             f"{number(w.best_lr_lambda0)}",
        test=f"the mean test accuracy of learned runs with η·λ₀ > {number(EDGE)} exceeds that of learned runs "
             f"below by more than {CALLED_AT} (computed on each seed's grid), and the best setting lies above the "
             "edge; partly if one of the two",
        status=status_of(better and w.best_in_window, partly=better or w.best_in_window), regime=regime,
        section=SECTION, sentence=f"Spearman's ρ on the same runs is {number(w.spearman)}: a window is not a "
                                  "monotone trend, and ρ does not test it.",
        extra={"gain": gain, "gain_se": se, "best_lr_lambda0": w.best_lr_lambda0, "spearman": w.spearman})


def verdicts(result: NoiseScaleResult) -> list[Verdict]:
    if result.grid is None:
        return []
    return [noise_scale_verdict(result.grid), intrinsic_lr_verdict(result.grid), window_verdict(result.grid)]


def regimes(result: NoiseScaleResult) -> list[Regime]:
    """The regimes the verdicts checked, each once, for the page's regime table."""
    if result.grid is None:
        return []
    return [grid_regime(result.grid), equilibrium_regime(result.grid), window_regime(result.grid)]
