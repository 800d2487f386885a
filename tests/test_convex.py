import math

import numpy as np
import pytest
import torch

from repro.experiments import convex
from repro.params import ConfigError


def test_exact_analysis_gives_the_reports_two_cases():
    rows = {(r["n1"], r["n2"]): r for r in convex.discrete_example(3)}
    for split in ((2, 1), (1, 2)):
        assert rows[split]["min_pop_over_eps"] == pytest.approx(0.75)
        assert rows[split]["max_pop_over_eps"] == pytest.approx(1.5)
        assert rows[split]["small_lr_limit"] == pytest.approx(1.5)
        assert rows[split]["probability"] == pytest.approx(3 / 8)
    assert math.isinf(rows[(3, 0)]["max_pop_over_eps"])
    assert sum(r["probability"] for r in rows.values()) == pytest.approx(1.0)


def test_level_set_range_is_the_generalised_eigenvalue_range():
    lo, hi = convex.level_set_range(np.diag([4.0, 1.0]), np.diag([2.0, 3.0]))
    assert (lo, hi) == pytest.approx((0.5, 3.0))


def test_gd_matches_the_closed_form_on_a_diagonal_problem():
    # loss (2/3) e1^2 + (1/3) e2^2: each error shrinks by (1 - 2 lr c_i) per step
    x = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]], dtype=torch.float64)
    y = x @ torch.tensor([1.0, -2.0], dtype=torch.float64)
    r = convex.early_stopped_gd(x, y, 0.3, 0.3, 10.0, 1e-3, 1000, record_path=True)
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
    r = convex.early_stopped_gd(x, y, torch.tensor([3.0, 0.5, 1e-4]), 1e-4, 1e-9, 1e-6, 200)
    assert r["diverged"].tolist() == [True, False, False]
    assert r["reached"].tolist() == [False, True, False]
    assert r["steps"].tolist()[2] == 200


def test_same_seed_same_numbers():
    p = convex.Params.resolve("smoke")
    a = convex.compare_schedules(p, 0.1, 0.3, 0.1)
    b = convex.compare_schedules(p, 0.1, 0.3, 0.1)
    assert torch.equal(a["rmse_anneal"], b["rmse_anneal"]) and torch.equal(a["rmse_small"], b["rmse_small"])


def test_phenomenon_large_rate_helps_only_near_equal_contraction():
    """On fixed seeds: at lr * tr(S) ~ 1 the annealed schedule wins on most datasets; at the report's lr = 0.1
    (lr * tr(S) ~ 0.2) it loses on most of them."""
    p = convex.Params.resolve("book", {"n_datasets": "400"})
    near = convex.compare_schedules(p, 0.5, 0.3, 0.1)  # E tr(S) = 2, so lr * tr(S) ~ 1
    win_near = ((near["rmse_small"] - near["rmse_anneal"]) > 0)[near["valid"]].float().mean()
    report = convex.compare_schedules(p, 0.1, 0.3, 0.1)
    win_report = ((report["rmse_small"] - report["rmse_anneal"]) > 0)[report["valid"]].float().mean()
    assert win_near > 0.6 and win_report < 0.4


def test_paired_summary_statistics():
    s = convex.paired_summary(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 1.0, 3.5, 3.0]))
    assert s["win_rate"] == 0.75 and s["diff_mean"] == pytest.approx(0.625)
    assert s["diff_ci_low"] < 0.625 < s["diff_ci_high"]


def test_cross_field_checks():
    with pytest.raises(ConfigError, match="lr_small .* must be smaller than lr_large"):
        convex.Params.resolve("book", {"lr_small": "0.2"})
    with pytest.raises(ConfigError, match="stop_loss .* must be below anneal_loss"):
        convex.Params.resolve("book", {"stop_loss": "0.5"})
