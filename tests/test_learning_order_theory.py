import json
import math

import pytest
import torch

from repro.experiments import learning_order
from repro.experiments.learning_order import setting as L
from repro.experiments.learning_order import theory as T
from repro.experiments.learning_order import verdicts as V
from repro.experiments.learning_order.results import RegimeMeasures, Runs
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


def test_make_data_pads_with_zero_weight_and_its_test_sets():
    p = L.TheoryParams.resolve("smoke")
    data = L.make_data(p, 0, 1.0, 0.0, n=30)
    assert data.x.shape == (p.pq_n_train, p.pq_d + 2)
    assert math.isclose(float(data.weight.sum()), 1.0, rel_tol=1e-6) and int((data.weight > 0).sum()) == 30
    assert (data.kind == 0).all()
    # P-only and both-component test examples (the Q-only test accuracy is exact, from the rays)
    assert [int((data.kind_test == k).sum()) for k in range(3)] == [p.pq_n_test, 0, p.pq_n_test]
    assert (data.x[:, -2] >= 0).all() and (data.x[:, -2] <= 1).all()  # Q at unit scale: alpha along zq


def test_a_dead_network_counts_as_chance_not_as_always_wrong():
    assert L._correct(torch.tensor([1.0, -1.0, 0.0])).tolist() == [1.0, 0.0, 0.5]


# ------------------------------------------------------------------------------------------------ training rules

EASY = {"pq_d": 20, "pq_n_train": 60, "pq_n_test": 100, "pq_width": 16, "pq_gamma0": 0.5, "pq_steps": 190,
        "pq_anneal_max": 120, "pq_noise": 0.0, "pq_weight_decay": 0.0, "pq_anneal_loss": 0.2, "pq_stop_loss": 0.1,
        "pq_lr_large": 4.0, "pq_lr_small": 0.8, "pq_lr_large_grid": "2"}


def _easy_runs(algos=("L-S", "S"), seed=0, **over):
    """P alone with a wide margin (gamma0 = 0.5): both rates fit it within the budget, so the annealing
    threshold (here eps1: there are no Q-only examples) and the stopping loss are crossed. Evaluated every step."""
    p = L.TheoryParams.resolve("smoke", {**EASY, **over})
    data = L.make_data(p, seed, 1.0, 0.0)
    return p, L.train_batch([(L.algorithms(p)[a], data) for a in algos], p, torch.device("cpu"), seed)


def test_the_annealing_rule_fires_by_loss_when_the_loss_crosses_its_threshold():
    p, (ls, _) = _easy_runs()
    assert ls["annealed_by_loss"] and 0 < ls["anneal_step"] < p.pq_anneal_max
    loss = dict(zip(ls["curves"]["step"], ls["curves"]["train_loss"], strict=True))
    assert loss[ls["anneal_step"]] <= p.pq_anneal_loss < loss[ls["anneal_step"] - 1]  # the first crossing


def test_a_run_that_never_reaches_the_threshold_anneals_at_the_cap():
    p, (ls,) = _easy_runs(("L-S",), pq_gamma0=0.0, pq_anneal_loss=1e-4, pq_stop_loss=5e-5)
    assert not ls["annealed_by_loss"] and ls["anneal_step"] == p.pq_anneal_max and ls["stop_step"] == -1


def test_runs_stop_at_the_same_train_loss_and_stay_there():
    p, runs = _easy_runs()
    for r in runs:
        steps, loss = r["curves"]["step"], r["curves"]["train_loss"]
        at = steps.index(r["stop_step"])
        assert r["stop_step"] >= r["anneal_step"] >= 0
        assert loss[at] <= p.pq_stop_loss < loss[at - 1]
        assert r["train_loss"] == pytest.approx(loss[at], abs=1e-5)  # the metrics are the stop's
        assert len(set(loss[at:])) == 1  # frozen afterwards (the curves carry the last value)
    assert runs[0]["stop_step"] != runs[1]["stop_step"]  # an equal loss, not an equal number of steps


def test_a_run_does_not_depend_on_the_other_runs_in_its_batch():
    """Without noise, training a run alone or in a batch beside another, which stops and leaves the batch early,
    gives the same trajectory (the first group's initial weights are the first draws either way)."""
    p = L.TheoryParams.resolve("smoke", {"pq_noise": 0.0, "pq_steps": 60, "pq_anneal_max": 30})
    d0 = L.make_data(p, 0, 0.2, 0.2)
    easy = L.TheoryParams.resolve("smoke", {**EASY, **{k: getattr(p, k) for k in ("pq_d", "pq_n_train",
                                                                                   "pq_n_test")}})
    d1 = L.make_data(easy, 1, 1.0, 0.0)
    s = L.algorithms(p)["S"]
    alone = L.train_batch([(s, d0)], p, torch.device("cpu"), 5)[0]
    batch = L.train_batch([(s, d0), (L.algorithms(easy)["L-S"], d1)], p, torch.device("cpu"), 5)
    assert 0 <= batch[1]["stop_step"] < p.pq_steps  # the other run left the batch early
    for key in ("train_loss", "acc_P", "margin_Q", "active_units_Q"):
        assert alone["curves"][key] == pytest.approx(batch[0]["curves"][key], rel=1e-4, abs=1e-5)


def test_q_only_accuracy_is_exact_from_the_ray_ends():
    """A Q-only input is alpha times a ray's end and relu is positively homogeneous, so the outputs at the three
    ends give the Q-only test accuracy: it matches a sampled Q-only test set."""
    gen = torch.Generator().manual_seed(3)
    w_q = torch.randn(4, 32, 2, generator=gen)
    u = torch.cat([torch.ones(16), -torch.ones(16)]) / 32 ** 0.5
    ends, active = L.q_on_rays(w_q, u)
    x, y, _ = L.sample(4000, 0.0, 1.0, 2, 0.0, 1.0, 1.0, torch.ones(2) / 2 ** 0.5, gen)
    f = torch.relu(torch.einsum("nd,rmd->rnm", x[:, 2:], w_q)) @ u
    sampled = L._correct(f * y).mean(1)
    assert torch.allclose(L.q_accuracy(ends), sampled, atol=0.03)  # 4,000 examples: a percent or two of noise
    assert ((active >= 0) & (active <= 1)).all()


def test_dead_units_on_q_put_a_run_outside_the_theorem_s_regime():
    """The previous setting (|zq| = 32, |zeta| = 8, eta1 = 2) at a small size: the large rate switches off its
    units on Q, and the regime check names that."""
    p = L.TheoryParams.resolve("smoke", {**T.PREVIOUS, "pq_steps": 200, "pq_anneal_max": 100})
    data = L.make_data(p, 0, p.pq_p0, p.pq_q0)
    ls, s = L.train_batch([(L.algorithms(p)[a], data) for a in ("L-S", "S")], p, torch.device("cpu"), 0)
    assert ls["active_q_mean"] < V.ALIVE_NEED.value < s["active_q_mean"]
    regime = V.theorem_regime(RegimeMeasures.of(T.regime_measures([ls], [s], p.pq_steps, p.pq_anneal_max)))
    assert not regime.ok and "share of L-S's units active on Q before annealing" in regime.reason
    assert regime.verdict("reproduced") == INCONCLUSIVE


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_large_rate_memorises_q_before_it_anneals(seed):
    """The learning order itself, with L-S trained until it fits its Q-only training examples, at a small size
    with the chapter's Q scale (|zq| = 8, |zeta| = 1.28) and units alive on Q: the large rate memorises Q
    before its loss rule anneals it, the reverse of the order Theorem 3.4 proves in its regime (which this
    setting misses). Measured over seeds 0-29: L-S fits Q before annealing on 29 of 30 (once it never fit Q in
    700 steps), annealing by the loss rule on 30 of 30."""
    p = L.TheoryParams.resolve("smoke", {"pq_noise": 0.01, "pq_lr_small": 0.1, "pq_steps": 700,
                                         "pq_anneal_max": 600, "pq_stop_loss": 1e-6})
    data = L.make_data(p, seed, p.pq_p0, p.pq_q0)
    (ls,) = L.train_batch([(L.algorithms(p)["L-S"], data)], p, torch.device("cpu"), seed)
    assert ls["annealed_by_loss"] and ls["anneal_step"] < p.pq_anneal_max
    assert 0 <= ls["fit_step_Q"] < ls["anneal_step"]


def _runs(name="S", fit=(10, 20), fit_q=None):
    row = {k: 0.1 for k in ("p_error", "p_error_std", "q_error", "q_error_std", "pq_error", "pq_error_std",
                            "train_loss", "train_loss_std")}
    row |= {"fit_step_P": list(fit), "fit_step_PQ": list(fit), "fit_step_Q": list(fit if fit_q is None else fit_q),
            "anneal_step": [5, 5]}
    return Runs.of(name, row)


def test_an_ablation_needs_runs_that_fit_their_own_distribution():
    p_only, q_only = _runs(fit=(3, 4), fit_q=(-1, -1)), _runs(fit=(-1, -1), fit_q=(5, -1))
    assert V.ablation_regime([p_only], ["P only, N = 40"], "P only").ok
    both = V.ablation_regime([p_only, q_only], ["P only, N = 40", "Q only, N = 200"], "single")
    assert both.conditions[0].measured == 0.75 and not both.ok


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
        L.TheoryParams.resolve("book", {"pq_anneal_max": "7000"})
    with pytest.raises(ConfigError, match="pq_stop_loss .* must be below the annealing threshold"):
        L.TheoryParams.resolve("book", {"pq_stop_loss": "0.3"})
    with pytest.raises(ConfigError, match="pq_search_zeta must be comma-separated numbers"):
        L.TheoryParams.resolve("book", {"pq_search_zeta": "0.1,x"})
    with pytest.raises(ConfigError, match="every value of pq_search_noise .* must be positive"):
        L.TheoryParams.resolve("book", {"pq_search_noise": "0.01,-0.1"})
    with pytest.raises(ConfigError, match="every value of pq_search_lr_small .* must be smaller than pq_lr_large"):
        L.TheoryParams.resolve("book", {"pq_search_lr_small": "0.3,3"})
    with pytest.raises(ConfigError, match="every value of pq_search_steps .* whole number"):
        L.TheoryParams.resolve("book", {"pq_search_steps": "3000,4500.5"})
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
    assert set(T.MAIN_FIELDS) | set(T.ABLATION_FIELDS) | set(T.SEARCH_FIELDS) == set(L.TheoryParams.names())
    # the search sets the Q scale, the noise and the small rate itself: its unit does not depend on them
    assert not {"pq_zq_norm", "pq_zeta", "pq_noise", "pq_lr_small"} & set(T.SEARCH_FIELDS)
