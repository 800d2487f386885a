import json
import math

import pytest
import torch

from repro.experiments import learning_order
from repro.experiments.learning_order import setting as L
from repro.experiments.learning_order import theory as T
from repro.experiments.learning_order import verdicts as V
from repro.experiments.learning_order.results import Runs
from repro.params import ConfigError
from repro.regime import INCONCLUSIVE
from repro.store import Store


def _sample(n=20_000, p0=0.2, q0=0.3, d=50, gamma0=0.05, zq=5.0, zeta=1.0, seed=0):
    w = L.w_star(d, seed)
    x, y, kind = L.sample(n, p0, q0, d, gamma0, zq, zeta, w, torch.Generator().manual_seed(seed))
    return x, y, kind, w, d


def test_sampler_fractions_and_balanced_labels():
    x, y, kind, _, _ = _sample()
    n = len(y)
    tol = 4 / math.sqrt(n)  # four standard errors of a fraction
    assert abs((kind == 0).float().mean() - 0.2) < tol
    assert abs((kind == 1).float().mean() - 0.3) < tol
    assert abs((kind == 2).float().mean() - 0.5) < tol
    assert abs((y == 1).float().mean() - 0.5) < tol
    assert set(y.unique().tolist()) == {-1.0, 1.0}


def test_p_component_has_margin_gamma0_and_unit_scale_noise():
    x, y, kind, w, d = _sample()
    x1, x2 = x[:, :d], x[:, d:]
    has_p = kind != 1
    assert (y[has_p] * (x1[has_p] @ w) >= 0.05 - 1e-6).all()  # y <w*, x1> >= gamma0
    assert (x1[kind == 1] == 0).all() and (x2[kind == 0] == 0).all()
    # z ~ N(0, I/d): |x1|^2 is about 1 + gamma0^2
    assert abs(float((x1[has_p] ** 2).sum(1).mean()) - 1.0) < 0.05
    # the half Gaussian: y <w*, z> = y <w*, x1> - gamma0 has the mean of |N(0, 1/d)|
    along = (y[has_p] * (x1[has_p] @ w) - 0.05).mean()
    assert abs(float(along) - math.sqrt(2 / math.pi / d)) < 0.01


def test_q_component_lies_on_the_three_rays():
    x, y, kind, _, d = _sample()
    x2 = x[:, d:]
    has_q = kind != 0
    alpha = x2[has_q, 0] / 5.0  # the zq coordinate is alpha * |zq|
    assert (alpha >= 0).all() and (alpha <= 1).all()
    offset = x2[has_q, 1] / (alpha.clamp(min=1e-9) * 1.0)  # the zeta coordinate is alpha * b * |zeta|
    pos, neg = y[has_q] > 0, y[has_q] < 0
    assert torch.allclose(x2[has_q][pos, 1], torch.zeros(int(pos.sum())))  # Q_{+1}: x2 = alpha zq
    assert torch.allclose(offset[neg].abs(), torch.ones(int(neg.sum())), atol=1e-4)  # Q_{-1}: alpha (zq +- zeta)
    b = offset[neg].sign()
    assert abs(float((b > 0).float().mean()) - 0.5) < 0.03
    assert abs(float(alpha.mean()) - 0.5) < 0.01  # alpha ~ U[0, 1]


def test_make_data_pads_with_zero_weight_and_balanced_test_kinds():
    p = L.TheoryParams.resolve("smoke")
    data = L.make_data(p, 0, 1.0, 0.0, n=30)
    assert data.x.shape == (p.pq_n_train, p.pq_d + 2)
    assert math.isclose(float(data.weight.sum()), 1.0, rel_tol=1e-6) and int((data.weight > 0).sum()) == 30
    assert (data.kind == 0).all()
    assert [int((data.kind_test == k).sum()) for k in range(3)] == [p.pq_n_test] * 3


def test_a_dead_network_counts_as_chance_not_as_always_wrong():
    assert L._correct(torch.tensor([1.0, -1.0, 0.0])).tolist() == [1.0, 0.0, 0.5]


@pytest.fixture(scope="module")
def smoke_runs():
    """L-S and S at smoke size on seeds 0 and 1, in one batch: L-S anneals at step 150 of 300, too late to fit
    its Q-only examples afterwards, so this is an under-trained run by design."""
    p = L.TheoryParams.resolve("smoke")
    algos = L.algorithms(p)
    runs = [(algos[a], L.make_data(p, seed, p.pq_p0, p.pq_q0)) for seed in (0, 1) for a in ("L-S", "S")]
    return L.train_batch(runs, p, torch.device("cpu"), 0)


def _algorithms(out):
    """The main experiment's per-algorithm summaries from train_batch rows."""
    names = dict.fromkeys(r["algorithm"] for r in out)
    return {a: Runs.of(a, {**T.summarize([r for r in out if r["algorithm"] == a]),
                           **{f"fit_step_{k}": T.fit_steps([r for r in out if r["algorithm"] == a], k)
                              for k in L.KINDS},
                           "anneal_step": [r["anneal_step"] for r in out if r["algorithm"] == a]}) for a in names}


def test_an_under_trained_smoke_run_is_inconclusive(smoke_runs):
    regime = V.theory_regime(_algorithms(smoke_runs))
    assert not regime.ok
    assert regime.verdict("reproduced") == INCONCLUSIVE
    assert "share of runs that fit every kind of training example" in regime.reason
    assert "did not reach" in regime.sentence()


def test_the_large_rate_does_not_fit_q_before_annealing_and_the_small_rate_does_fit_it(smoke_runs):
    """The learning order's robust half at smoke size (seeds 0-7 alone and six seeds in one batch all showed
    it): L-S has not fit its Q-only training examples by the step it anneals; S, on the same data, fits them."""
    ls, s = smoke_runs[0::2], smoke_runs[1::2]
    for a, b in zip(ls, s, strict=True):
        assert a["fit_step_Q"] < 0 or a["fit_step_Q"] > a["anneal_step"]
        assert b["fit_step_Q"] >= 0


def _runs(name="S", pq_error=0.01, fit=(10, 20), fit_q=None):
    row = {k: 0.1 for k in ("p_error", "p_error_std", "q_error", "q_error_std", "pq_error_std", "train_loss",
                            "train_loss_std")}
    row |= {"pq_error": pq_error, "fit_step_P": list(fit), "fit_step_PQ": list(fit),
            "fit_step_Q": list(fit if fit_q is None else fit_q), "anneal_step": [5, 5]}
    return Runs.of(name, row)


def test_a_run_that_fit_its_training_set_keeps_its_verdict():
    regime = V.theory_regime({"L-S": _runs("L-S"), "S": _runs()})
    assert regime.ok and regime.verdict("reproduced") == "reproduced"
    p_only, q_only = _runs(fit=(3, 4), fit_q=(-1, -1)), _runs(fit=(-1, -1), fit_q=(5, -1))
    assert V.ablation_regime([p_only], ["P only, N = 40"], "P only").ok
    both = V.ablation_regime([p_only, q_only], ["P only, N = 40", "Q only, N = 200"], "single")
    assert both.conditions[0].measured == 0.75


def test_a_run_does_not_depend_on_the_other_runs_in_its_batch():
    """Without noise, training a run alone or in a batch beside another gives the same trajectory (the first
    run's initial weights are the first draws of the batch's stream either way)."""
    p = L.TheoryParams.resolve("smoke", {"pq_noise": 0.0, "pq_steps": 60, "pq_anneal_max": 30})
    s = L.algorithms(p)["S"]
    d0, d1 = L.make_data(p, 0, 0.2, 0.2), L.make_data(p, 1, 0.3, 0.1)
    alone = L.train_batch([(s, d0)], p, torch.device("cpu"), 5)[0]
    both = L.train_batch([(s, d0), (L.algorithms(p)["L-S"], d1)], p, torch.device("cpu"), 5)[0]
    for key in ("train_loss", "acc_P", "margin_Q"):
        assert alone["curves"][key] == pytest.approx(both["curves"][key], rel=1e-4, abs=1e-5)


def test_run_theory_stores_json_and_loads_it_again(tmp_path):
    p = learning_order.Params.resolve("smoke", {"pq_steps": 40, "pq_anneal_max": 20})
    store = Store(tmp_path)
    sections = {"theory", "ablations"}
    done = learning_order.run(p, store, sections=sections)
    assert done.patch is None and done.clean is None
    first = done.theory.result, done.ablations.result
    assert not first[0].cached and not first[1].cached
    assert first[0].experiment == "learning_order_theory"
    assert first[1].experiment == "learning_order_theory_ablations"
    json.dumps(first[0].to_json())
    json.dumps(first[1].to_json())
    m = first[0].metrics
    assert set(m["algorithms"]) == set(L.ALGORITHMS)
    assert len(m["algorithms"]["S"]["p_error_seeds"]) == p.pq_seeds
    assert {r["p0"] for r in first[0].data["sweep"]} == set(p.p0_grid)
    assert {r["lr_large"] for r in first[0].data["lr_sweep"]} == set(p.lr_large_grid)
    groups = {r.group for r in done.ablations.rows}
    assert groups == {"noise", "loss", "single", "adam"}
    assert all(0 <= r.p_error <= 1 for r in done.ablations.rows)
    # configs hold only the fields each sub-experiment depends on
    assert "pq_adam_lr_large" not in first[0].config and "pq_p0_grid" not in first[1].config
    again = learning_order.run(p, store, sections=sections)
    assert again.theory.result.cached and again.ablations.result.cached
    assert again.theory.result.metrics == first[0].metrics
    # an ablation-only parameter does not recompute the main experiment
    other = learning_order.run(p.replace(pq_adam_lr_large=0.02), store, sections=sections)
    assert other.theory.result.cached and not other.ablations.result.cached


def test_bad_parameters_stop_with_one_sentence():
    with pytest.raises(ConfigError, match="pq_p0 \\+ pq_q0 .* must not exceed 1"):
        L.TheoryParams.resolve("book", {"pq_p0": "0.7", "pq_q0": "0.5"})
    with pytest.raises(ConfigError, match="pq_lr_small .* must be smaller than pq_lr_large"):
        L.TheoryParams.resolve("book", {"pq_lr_small": "2.0"})
    with pytest.raises(ConfigError, match="pq_anneal_max .* must be below pq_steps"):
        L.TheoryParams.resolve("book", {"pq_anneal_max": "5000"})
    with pytest.raises(ConfigError, match="pq_p0_grid may only hold letters, digits and the characters , . _ \\+ -"):
        L.TheoryParams.resolve("book", {"pq_p0_grid": "0.1;0.2"})
    for grid in ("0.1,a", "0.1,nan", "inf", "0.5,1e999"):
        with pytest.raises(ConfigError, match="pq_lr_large_grid must be comma-separated numbers"):
            L.TheoryParams.resolve("book", {"pq_lr_large_grid": grid})
    with pytest.raises(ConfigError, match="every value of pq_p0_grid"):
        L.TheoryParams.resolve("book", {"pq_p0_grid": "0.1,0.9"})
    with pytest.raises(ConfigError, match="every value of pq_lr_large_grid .* must exceed pq_lr_small"):
        L.TheoryParams.resolve("book", {"pq_lr_large_grid": "0.05,2"})
    with pytest.raises(ConfigError, match="pq_adam_lr_small .* must be smaller than pq_adam_lr_large"):
        L.TheoryParams.resolve("book", {"pq_adam_lr_small": "0.1"})
    with pytest.raises(ConfigError, match="device must be one of"):
        L.TheoryParams.resolve("book", {"device": "tpu"})
    with pytest.raises(ConfigError, match="pq_gamma0 must be >= 0"):
        L.TheoryParams.resolve("book", {"pq_gamma0": "-0.1"})


def test_presets_resolve_and_every_field_but_seed_and_device_is_prefixed():
    for preset in ("smoke", "book", "paper"):
        L.TheoryParams.resolve(preset)
    assert all(n.startswith("pq_") for n in L.TheoryParams.names() if n not in ("seed", "device"))
    assert set(T.MAIN_FIELDS) | set(T.ABLATION_FIELDS) == set(L.TheoryParams.names())
