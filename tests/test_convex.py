import math

import numpy as np
import pytest
import scipy.linalg
import torch

from repro.experiments import convex
from repro.experiments.convex import analysis, nakkiran, schedules
from repro.experiments.convex import verdicts as V
from repro.experiments.convex.result import (
    ConvexResult,
    Crossover,
    CurvatureBin,
    Exact,
    Flip,
    Foil,
    Nakkiran,
    Paired,
    ReportRuns,
    SampleCount,
    Setting,
    Split,
    Window,
)
from repro.params import ConfigError
from repro.regime import INCONCLUSIVE
from repro.store import Store
from repro.verdict import NOT_REPRODUCED, PARTLY, REPRODUCED


def test_exact_analysis_gives_the_reports_two_cases():
    rows = {(r["n1"], r["n2"]): r for r in analysis.discrete_example(3)}
    for split in ((2, 1), (1, 2)):
        assert rows[split]["min_pop_over_eps"] == pytest.approx(0.75)
        assert rows[split]["max_pop_over_eps"] == pytest.approx(1.5)
        assert rows[split]["small_lr_limit"] == pytest.approx(1.5)
        assert rows[split]["probability"] == pytest.approx(3 / 8)
    assert math.isinf(rows[(3, 0)]["max_pop_over_eps"])
    assert sum(r["probability"] for r in rows.values()) == pytest.approx(1.0)


def test_level_set_range_is_the_generalised_eigenvalue_range():
    lo, hi = analysis.level_set_range(np.diag([4.0, 1.0]), np.diag([2.0, 3.0]))
    assert (lo, hi) == pytest.approx((0.5, 3.0))


def test_gd_matches_the_closed_form_on_a_diagonal_problem():
    # loss (2/3) e1^2 + (1/3) e2^2: each error shrinks by (1 - 2 lr c_i) per step
    x = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]], dtype=torch.float64)
    y = x @ torch.tensor([1.0, -2.0], dtype=torch.float64)
    r = schedules.early_stopped_gd(x, y, 0.3, 0.3, 10.0, 1e-3, 1000, record_path=True)
    t = int(r["steps"][0])
    e = torch.tensor([-1.0, 2.0], dtype=torch.float64) * torch.tensor([1 - 0.6 * 2 / 3, 1 - 0.6 / 3]) ** t
    assert torch.allclose(r["path"][0, t] - torch.tensor([1.0, -2.0], dtype=torch.float64), e)
    loss = lambda k: float((2 / 3) * (1 - 0.4) ** (2 * k) + (1 / 3) * 4 * (1 - 0.2) ** (2 * k))  # noqa: E731
    assert loss(t) <= 1e-3 < loss(t - 1)  # stops at the first step below the threshold
    assert r["reached"][0] and not r["diverged"][0]


def test_divergent_and_unfinished_runs_are_recorded_not_raised():
    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]] * 3, dtype=torch.float64)
    y = torch.ones(3, 2, dtype=torch.float64)
    # Hessian = I: lr 3 diverges, lr 0.5 converges in one step, lr 1e-4 cannot finish in 200 steps
    r = schedules.early_stopped_gd(x, y, torch.tensor([3.0, 0.5, 1e-4]), 1e-4, 1e-9, 1e-6, 200)
    assert r["diverged"].tolist() == [True, False, False]
    assert r["reached"].tolist() == [False, True, False]
    assert r["steps"].tolist()[2] == 200


def test_same_seed_same_numbers():
    p = convex.Params.resolve("smoke")
    a = schedules.compare_schedules(p, 0.1, 0.3, 0.1)
    b = schedules.compare_schedules(p, 0.1, 0.3, 0.1)
    assert torch.equal(a["rmse_anneal"], b["rmse_anneal"]) and torch.equal(a["rmse_small"], b["rmse_small"])


def test_phenomenon_large_rate_helps_only_near_equal_contraction():
    """On fixed seeds: at lr * tr(S) ~ 1 the annealed schedule wins on most datasets; at the report's lr = 0.1
    (lr * tr(S) ~ 0.2) it loses on most of them."""
    p = convex.Params.resolve("book", {"n_datasets": "400"})
    near = schedules.compare_schedules(p, 0.5, 0.3, 0.1)  # E tr(S) = 2, so lr * tr(S) ~ 1
    win_near = ((near["rmse_small"] - near["rmse_anneal"]) > 0)[near["valid"]].float().mean()
    report = schedules.compare_schedules(p, 0.1, 0.3, 0.1)
    win_report = ((report["rmse_small"] - report["rmse_anneal"]) > 0)[report["valid"]].float().mean()
    assert win_near > 0.6 and win_report < 0.4


def test_paired_summary_statistics():
    s = schedules.paired_summary(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 1.0, 3.5, 3.0]))
    assert s["win_rate"] == 0.75 and s["diff_mean"] == pytest.approx(0.625)
    assert s["diff_ci_low"] < 0.625 < s["diff_ci_high"]


def test_cross_field_checks():
    with pytest.raises(ConfigError, match="lr_small .* must be smaller than lr_large"):
        convex.Params.resolve("book", {"lr_small": "0.2"})
    with pytest.raises(ConfigError, match="stop_loss .* must be below anneal_loss"):
        convex.Params.resolve("book", {"stop_loss": "0.5"})


# ------------------------------------------------------------------------------- Nakkiran's setting, the foil


def _rotated_problem(seed=0, n=6):
    """A design whose covariance is a rotated diag(3, 0.5), beta* from the seed."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(1, n, 2, generator=g, dtype=torch.float64)
    w, v = torch.linalg.eigh(z.transpose(1, 2) @ z / n)
    rot = torch.tensor([[0.8, -0.6], [0.6, 0.8]], dtype=torch.float64)
    s = torch.diag(torch.tensor([3.0, 0.5], dtype=torch.float64))
    x = z @ v @ torch.diag_embed(w.rsqrt()) @ v.transpose(1, 2) @ s.sqrt() @ rot.T
    beta = torch.tensor([[1.0, -0.7]], dtype=torch.float64)
    return beta, x, (x @ beta.unsqueeze(-1)).squeeze(-1), rot @ s @ rot.T


def test_nakkiran_designs_have_exactly_the_stated_train_covariance():
    beta, x, y = nakkiran.nakkiran_datasets(3, 5, 10, 2.0)
    assert torch.allclose(nakkiran.train_covariance(x), torch.diag(torch.tensor([2.0, 1.0])).double().expand(5, 2, 2))
    assert torch.allclose(y, (x @ beta.unsqueeze(-1)).squeeze(-1))


def test_large_steps_are_the_closed_form_iterates_and_the_simulated_ones():
    beta, x, y, cov = _rotated_problem()
    assert torch.allclose(nakkiran.train_covariance(x)[0], cov)
    eta, k = 0.3, 7
    closed = torch.linalg.matrix_power(torch.eye(2, dtype=torch.float64) - 2 * eta * cov, k) @ (-beta[0])
    ours = nakkiran.large_steps_then_flow(nakkiran.train_covariance(x), -beta, eta, k, 1e-12)
    assert int(ours["large_steps_taken"][0]) == k
    assert torch.allclose(ours["err_switch"][0], closed)
    sim = schedules.early_stopped_gd(x, y, eta, eta, -1.0, 1e-12, k, record_path=True)
    assert torch.allclose(sim["path"][0, k] - beta[0], closed)


def test_gradient_flow_is_the_matrix_exponential_and_the_small_step_limit():
    beta, x, y, cov = _rotated_problem(1)
    eps = 1e-3
    t, e = nakkiran.gradient_flow_to_loss(nakkiran.train_covariance(x), -beta, eps)
    closed = torch.from_numpy(scipy.linalg.expm(-2 * float(t[0]) * cov.numpy())) @ (-beta[0])
    assert torch.allclose(e[0], closed)
    assert float(e[0] @ cov @ e[0]) == pytest.approx(eps, rel=1e-9)  # stops exactly at the stopping loss
    gd = schedules.early_stopped_gd(x, y, 1e-3, 1e-3, -1.0, eps, 20_000)
    assert torch.allclose(gd["beta"][0] - beta[0], e[0], atol=2e-3)


def test_nakkiran_factor_tends_to_the_curvature_ratio():
    # eta * s_max = 1 on diag(2, 1): one step zeroes the flat coordinate and flips the sharp one, and no later
    # step shrinks it; gradient flow ends along the flat direction, so test(A) / test(B) -> 2 as eps -> 0.
    beta, x, y = nakkiran.nakkiran_datasets(0, 50, 10, 2.0)
    cov = nakkiran.train_covariance(x)
    one = nakkiran.large_steps_then_flow(cov, -beta, 0.5, 1, 1e-12)["err_switch"]
    assert torch.allclose(one, torch.stack([beta[:, 0], torch.zeros(50, dtype=torch.float64)], -1))
    r = nakkiran.nakkiran_compare(beta, x, y, 0.5, 50, 1e-8)
    # a draw that starts almost on the sharp axis needs a smaller eps before gradient flow turns flat
    turned = beta[:, 1].abs() > 0.05
    assert turned.sum() >= 45
    assert torch.allclose((r["test_flow"] / r["test_anneal"])[turned], torch.tensor(2.0, dtype=torch.float64),
                          rtol=2e-3)


def test_phenomenon_annealing_wins_in_nakkirans_setting_and_loses_in_the_reports():
    """Fixed seeds: in Nakkiran's setting the large step then gradient flow has the lower mean test loss, by the
    paper's factor 2 (median), against gradient flow and against a small rate; in the report's setting the
    annealed schedule has the higher mean test loss."""
    p = convex.Params.resolve("book", {"n_datasets": "400"})
    beta, x, y = nakkiran.nakkiran_datasets(p.seed, p.n_datasets, p.n_samples, p.nakkiran_curvature_ratio)
    r = nakkiran.nakkiran_compare(beta, x, y, 0.5, p.nakkiran_large_steps, p.nakkiran_stop_loss, p.lr_small,
                                  p.max_steps)
    assert r["test_anneal"].mean() < r["test_flow"].mean() and r["test_anneal"].mean() < r["test_small"].mean()
    assert float((r["test_flow"] / r["test_anneal"]).median()) == pytest.approx(2.0, rel=0.05)
    report = schedules.compare_schedules(p, p.lr_large, p.anneal_loss, p.stop_loss)
    ok = report["valid"]
    assert report["rmse_anneal"][ok].pow(2).mean() > report["rmse_small"][ok].pow(2).mean()


def test_the_sign_of_annealings_benefit_flips_across_eta_trace_one():
    # diag(2, 1): tr(S) = 3, so eta * tr(S) = 0.6 at eta = 0.2 and 1.2 at eta = 0.4
    beta, x, y = nakkiran.nakkiran_datasets(0, 200, 10, 2.0)
    below = nakkiran.nakkiran_compare(beta, x, y, 0.2, 50, 1e-3)
    above = nakkiran.nakkiran_compare(beta, x, y, 0.4, 50, 1e-3)
    assert (below["test_anneal"] > below["test_flow"]).double().mean() > 0.9
    assert below["test_anneal"].mean() > below["test_flow"].mean()
    assert (above["test_anneal"] < above["test_flow"]).double().mean() > 0.9
    assert above["test_anneal"].mean() < above["test_flow"].mean()


def test_curvature_split_of_a_known_covariance():
    cov = torch.diag(torch.tensor([2.0, 1.0])).double()[None]
    s = nakkiran.curvature_split(cov)
    assert s["sharp_ratio"][0] == pytest.approx(0.5) and s["flat_ratio"][0] == pytest.approx(1.0)
    assert s["trace"][0] == pytest.approx(3.0)


def test_contraction_bias_and_its_crossover():
    # a small step is more sharp-biased than gradient flow (log(1 - u) is convex); at eta * s_max = 1 it is 0
    assert analysis.contraction_bias(0.01, np.array(2.0), np.array(1.0)) > 1
    assert analysis.contraction_bias(0.5, np.array(2.0), np.array(1.0)) == 0
    # on diag(2, 1): |1 - 4 eta| = (1 - 2 eta)^2 above eta = 1/4, i.e. eta = 1 - sqrt(2) / 2
    assert analysis.bias_crossover(2.0, 1.0) == pytest.approx(1 - math.sqrt(2) / 2)


# ----------------------------------------------------------------------------- verdicts on synthetic results

def _status(result, key):
    return {v.key: v.status for v in V.verdicts(result)}[key]


def _exact(lo, hi):
    return ConvexResult(exact=Exact([Split(2, 1, 3 / 8, lo, hi, 1.5), Split(3, 0, 1 / 8, math.inf, math.inf,
                                                                             math.inf)]))


def test_exact_verdict_and_its_tolerance():
    tol = V.EXACT_TOLERANCE.value
    assert _status(_exact(0.75, 1.5), "exact-level-set") == REPRODUCED
    assert _status(_exact(0.75, 1.5 * (1 + tol / 2)), "exact-level-set") == REPRODUCED
    assert _status(_exact(0.75, 1.5 * (1 + 2 * tol)), "exact-level-set") == NOT_REPRODUCED


def _paired(win_rate, low, high, n=1000):
    return Paired(n, 0.25, 0.25, 0.0, -0.01, 0.01, 0.1, win_rate, low, high)


def _report(low, high, unfinished=0, groups=None):
    n = 1000
    diff = np.full(n, 0.0) if groups is None else np.repeat(groups, 10)
    return ConvexResult(report=ReportRuns(10, 0.1, 0.01, 0.1, _paired((low + high) / 2, low, high, n), unfinished,
                                          0.5, 50.0, 20.0, np.full(n, 0.25) + diff, np.full(n, 0.25)))


def test_report_verdict_every_status_at_the_coin_flip():
    half = V.COIN_FLIP.value
    assert _status(_report(half + 1e-6, 0.6), "report-schedules") == REPRODUCED
    assert _status(_report(half, 0.6), "report-schedules") == INCONCLUSIVE  # the interval touches a coin flip
    assert _status(_report(0.4, half), "report-schedules") == INCONCLUSIVE
    assert _status(_report(0.4, half - 1e-6), "report-schedules") == NOT_REPRODUCED


def test_report_verdict_needs_runs_compared_at_the_same_train_loss():
    # 1000 datasets finished: the regime needs at least 95% of them, so 52 left out (95.06%) pass, 53 (94.97%) not
    assert V.MIN_FINISHED.value == 0.95
    assert _status(_report(0.6, 0.7, unfinished=52), "report-schedules") == REPRODUCED
    v = {v.key: v for v in V.verdicts(_report(0.6, 0.7, unfinished=53))}["report-schedules"]
    assert v.status == INCONCLUSIVE and v.extra["status_if_regime_held"] == REPRODUCED
    assert "did not reach the regime" in v.sentence


def test_report_sentence_says_whether_ten_runs_can_show_the_reports_difference():
    rare = V.REPORT_DIFF_RARE.value
    above = V.REPORT_DIFF + 0.001
    groups = np.array([above] * 2 + [0.0] * 98)  # 2% of the groups reach it: below the 2.5% threshold
    v = {v.key: v for v in V.verdicts(_report(0.4, 0.45, groups=groups))}["report-schedules"]
    assert v.extra["groups_as_large"] == pytest.approx(0.02) and 0.02 < rare and "lies outside" in v.sentence
    groups = np.array([above] * 3 + [0.0] * 97)
    v = {v.key: v for v in V.verdicts(_report(0.4, 0.45, groups=groups))}["report-schedules"]
    assert "cannot resolve" in v.sentence


def _window(peak_wins, peak_count, below_rate, below_at=0.3):
    bins = [CurvatureBin(below_at, 1000, below_rate, 0.0, 0.0), CurvatureBin(1.0, peak_count, peak_wins / peak_count,
                                                                               0.01, 0.0)]
    samples = [SampleCount(n, _paired(w, w - 0.05, w + 0.05)) for n, w in ((3, 0.3), (200, 0.48))]
    return ConvexResult(window=Window(bins, [], samples))


def test_window_verdict_every_status_and_the_wilson_boundary():
    # 59 wins of 100: Wilson 95% interval [0.492, 0.681]; 61 of 100: [0.512, 0.700]
    assert schedules.wilson_interval(59, 100)[0] < 0.5 < schedules.wilson_interval(61, 100)[0]
    assert _status(_window(61, 100, 0.2), "large-rate-window") == REPRODUCED
    assert _status(_window(59, 100, 0.2), "large-rate-window") == PARTLY  # hurts below, but the peak is noise
    assert _status(_window(61, 100, 0.55), "large-rate-window") == PARTLY  # helps at the peak, not hurt below
    assert _status(_window(59, 100, 0.55), "large-rate-window") == NOT_REPRODUCED
    # a bin at exactly the threshold is not below it: nothing below, nothing to decide
    assert _status(_window(61, 100, 0.2, below_at=V.LOSING_BELOW.value), "large-rate-window") == INCONCLUSIVE


def _nakkiran(ratio_median=2.0, limit=2.0, win_rate=0.95, unfinished=0, n=1000):
    setting = Setting(0.5, 1.5, 1.0, 0.0, 0.0, 1.0, 0.5, 1e-3, 5e-4, win_rate, n)
    nk = Nakkiran(setting, 2.0, 1e-3, 0.01, ratio_median, 1.0, 2.0, limit, win_rate, 1e-3, 0.0, unfinished, 0.05,
                  0.88, [], [], None)
    return ConvexResult(foil=Foil(nk, setting, _crossover([0.0, 0.0])))


def _crossover(errors):
    """Measured sign changes off the exact crossover by the given relative errors."""
    flips = [Flip(r, 0.8, 0.8 * (1 + e) - 0.001, 0.8 * (1 + e) + 0.001) for r, e in zip((2.0, 10.0, 50.0), errors,
                                                                                          strict=False)]
    return Crossover(np.array([1.5, 5.0]), np.array([0.9, 0.7]), 0.639, flips, 512, [1.2, 2.2, 5.5])


def test_nakkiran_verdict_every_status_and_the_ratio_tolerance():
    tol = V.RATIO_TOLERANCE.value
    assert _status(_nakkiran(), "nakkiran-factor") == REPRODUCED
    assert _status(_nakkiran(ratio_median=2 * (1 + tol * 0.99)), "nakkiran-factor") == REPRODUCED
    assert _status(_nakkiran(ratio_median=2 * (1 + tol * 1.01)), "nakkiran-factor") == PARTLY
    assert _status(_nakkiran(limit=2 * (1 - tol * 1.01)), "nakkiran-factor") == PARTLY
    assert _status(_nakkiran(win_rate=0.52), "nakkiran-factor") == NOT_REPRODUCED  # Wilson [0.489, 0.551]
    assert _status(_nakkiran(unfinished=51), "nakkiran-factor") == INCONCLUSIVE  # 94.9% reached the stopping loss


def test_crossover_verdict_every_status_and_its_tolerance():
    tol = V.FLIP_TOLERANCE.value
    assert _status(ConvexResult(foil=_foil(_crossover([0.0, tol * 0.99, -tol * 0.99]))), "sign-change-crossover") \
        == REPRODUCED
    assert _status(ConvexResult(foil=_foil(_crossover([0.0, 0.0, tol * 1.01]))), "sign-change-crossover") == PARTLY
    assert _status(ConvexResult(foil=_foil(_crossover([0.0, 0.1, -0.1]))), "sign-change-crossover") == NOT_REPRODUCED


def _foil(crossover):
    nk = _nakkiran().foil.nakkiran
    return Foil(nk, nk.setting, crossover)


def test_the_crossover_falls_from_one_to_its_limit_as_the_curvature_ratio_grows():
    floor = analysis.crossover_floor()
    assert 2 * floor - 1 == pytest.approx(math.exp(-2 * floor))
    ratios = np.geomspace(1.001, 1e5, 30)
    crossovers = [analysis.crossover_eta_trace(r) for r in ratios]
    assert np.all(np.diff(crossovers) < 0) and crossovers[0] == pytest.approx(1, abs=1e-3)
    assert crossovers[-1] == pytest.approx(floor, abs=1e-4)
    assert analysis.crossover_eta_trace(2.0) == pytest.approx(3 * (1 - math.sqrt(2) / 2))


def test_the_measured_sign_change_brackets_the_exact_crossover():
    """On 64 draws at r = 3 and r = 20 (the sign change does not depend on beta*, so any draws give it)."""
    for ratio in (3.0, 20.0):
        beta, x, y = nakkiran.nakkiran_datasets(0, 64, 10, ratio)
        low, high = nakkiran.sign_change(beta, x, y, ratio, 50, 1e-3)
        exact = analysis.crossover_eta_trace(ratio)
        assert high - low < 0.005 and low - 0.002 < exact < high + 0.002


def test_a_missing_section_gives_no_verdict():
    assert V.verdicts(ConvexResult()) == []
    assert [v.key for v in V.verdicts(_exact(0.75, 1.5))] == ["exact-level-set"]
    assert convex.run(convex.Params.resolve("smoke"), sections={"other"}) == ConvexResult()


# ------------------------------------------------------------------------------------- the smoke run, pinned


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    return convex.run(convex.Params.resolve("smoke"), Store(tmp_path_factory.mktemp("convex-smoke")))


def test_smoke_statuses_are_pinned(smoke):
    assert [(v.key, v.status) for v in V.verdicts(smoke)] == [
        ("exact-level-set", REPRODUCED), ("report-schedules", NOT_REPRODUCED), ("large-rate-window", REPRODUCED),
        ("nakkiran-factor", REPRODUCED), ("sign-change-crossover", REPRODUCED)]
    assert all(v.section == "convex" for v in V.verdicts(smoke))
