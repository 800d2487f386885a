import math

import pytest
import torch

from repro.experiments import catapult
from repro.experiments.catapult import eos, linear, nets, phases, uv, verdicts
from repro.models import uv as uv_model
from repro.params import ConfigError
from repro.regime import INCONCLUSIVE
from repro.store import Result
from repro.verdict import NOT_REPRODUCED, PARTLY, REPRODUCED

# ------------------------------------------------------------------------------------------- exact formulas


def test_uv_recursion_is_gradient_descent_on_u_and_v():
    u, v = uv_model.init(300, 2, 5)
    f0, lam0 = uv_model.f_and_lambda(u, v)
    for loss in uv_model.LOSSES:
        lr = (3.0 if loss == "mse" else 10.0) / lam0[0].item()
        f_direct, lam_direct = uv_model.gd_direct(u, v, lr, 40, loss)
        r = uv_model.trajectory(f0, lam0, lr, 300, 40, loss)
        assert torch.allclose(uv_model.loss_value(f_direct, loss), r["loss"], rtol=1e-8, atol=1e-12)
        assert torch.allclose(lam_direct, r["lambda"], rtol=1e-10)


def test_uv_phase_edges_are_2_and_4():
    """The measured lazy/catapult edge falls at 2/lambda0 and the divergence edge at 4/lambda0, within the grid
    step, at a large width (n = 4000), for every initialisation."""
    grid = torch.arange(1, 100).double().numpy() * 0.05  # 0.05 ... 4.95
    out = uv.uv_phase([4000], grid, 2000, 4, seed=0)
    for e in out["edges"]:
        assert 2.0 < e["lr_crit"] <= 2.0 + 0.05 + 1e-9
        assert 4.0 - 0.05 - 1e-9 <= e["lr_max"] <= 4.0 + 0.05 + 1e-9
    # catapult runs end flatter than the edge: eta * lambda_final < 2
    cat = [r for r in out["runs"] if r["outcome"] == "catapult"]
    assert cat and all(r["lr_lambda_final"] < 2 for r in cat)
    assert all(r["max_loss_ratio"] > 10 for r in cat if r["lr_factor"] >= 2.5)  # the loss really spikes


def test_uv_independent_table_of_the_references():
    """refs/papers.md section 3a (n = 4000): lazy keeps lambda, catapult lowers eta*lambda below 2, 4.1 diverges."""
    u, v = uv_model.init(4000, 1, 11)
    f0, lam0 = uv_model.f_and_lambda(u, v)
    c = torch.tensor([1.0, 1.9, 2.5, 3.0, 3.5, 3.9, 4.1], dtype=torch.float64)
    r = uv_model.trajectory(f0, lam0, c / lam0, 4000, 3000)
    lr_lam = c * r["lambda"][:, -1] / lam0
    assert torch.allclose(lr_lam[:2], c[:2], rtol=5e-3)  # lambda moves by O(f0^2 / n) only
    assert (lr_lam[2:6] < 2).all() and not r["diverged"][:6].any() and r["diverged"][6]


def test_uv_logistic_lazy_edge_is_8_and_nothing_diverges():
    grid = torch.arange(1, 161).double().numpy() * 0.1  # 0.1 ... 16
    out = uv.uv_phase([4000], grid, 2000, 2, seed=0, loss="logistic")
    for e in out["edges"]:
        assert 8.0 < e["lr_crit"] < 9.0 and math.isnan(e["lr_max"])
    u, v = uv_model.init(1000, 1, 0)
    f0, lam0 = uv_model.f_and_lambda(u, v)
    assert not uv_model.trajectory(f0, lam0, 64.0 / lam0, 1000, 2000, "logistic")["diverged"].any()


def test_uv_spike_grows_with_width():
    rows = uv.uv_spike_vs_width([100, 1000, 10_000], [3.0], 2000, 3, seed=0)
    peaks = [r["peak_ratio"] for r in rows]
    durations = [r["duration"] for r in rows]
    assert peaks[0] < peaks[1] < peaks[2] and durations[0] < durations[2]
    assert all(r["converged"] for r in rows)


def test_max_rise_and_classify():
    assert phases.max_rise([4.0, 2.0, 3.0, 1.0]) == pytest.approx(1.5)
    assert phases.max_rise([4.0, 2.0, 1.0, 0.0, 0.0]) == pytest.approx(1.0)
    assert phases.classify(1.0, False) == "lazy"
    assert phases.classify(2.0, False) == "catapult"
    assert phases.classify(1.0, True) == "divergent"


def _toy_images(n: int = 32, classes: int = 4) -> dict:
    g = torch.Generator().manual_seed(0)
    data = {"x": torch.randn(n, 1, 8, 8, generator=g), "y": torch.arange(n) % classes}
    return data | {"t": torch.nn.functional.one_hot(data["y"], classes).float(), "x_test": data["x"],
                   "y_test": data["y"]}


def test_diverged_network_runs_are_recorded_as_results():
    """A sweep far past the edge on a tiny network: the diverged runs are rows with outcome 'divergent' and no
    accuracy, and the sweep reports where divergence starts."""
    p = catapult.Params.resolve("smoke", {"lr_max_factor": 400.0, "sweep_size": 5, "n_train": 32, "n_test": 32,
                                          "anneal_steps": 0, "physical_time": 10.0, "lanczos_iters": 4})
    out = nets.net_sweep("mlp_small", p, _toy_images(), torch.device("cpu"))
    outcomes = [r["outcome"] for r in out["runs"]]
    assert outcomes[0] == "lazy" and outcomes[-1] == "divergent"
    assert all("test_accuracy" not in r for r in out["runs"] if r["diverged"])
    assert out["summary"]["lr_max"] == min(r["lr_factor"] for r in out["runs"] if r["diverged"])


def test_gd_stops_on_divergence_without_raising():
    theta = torch.zeros(3)
    x, t = torch.eye(3), torch.ones(3, 1)
    r = nets.gd_squared_loss(lambda th, xx: xx @ th[:, None], theta, x, t, 100.0, 50)
    assert r["diverged"] and len(r["loss"]) < 50


def test_bad_parameters_stop_with_one_sentence():
    with pytest.raises(ConfigError, match="width_small .* must be smaller than width_large"):
        catapult.Params.resolve("book", {"width_small": "2048"})
    with pytest.raises(ConfigError, match="dl_n_train .* must exceed 2 \\* dl_dim"):
        catapult.Params.resolve("book", {"dl_n_train": "20"})
    with pytest.raises(ConfigError, match="dataset must be one of"):
        catapult.Params.resolve("book", {"dataset": "imagenet"})
    with pytest.raises(ConfigError, match="lr_max_factor must be > 5"):
        catapult.Params.resolve("book", {"lr_max_factor": "3"})
    with pytest.raises(ConfigError, match="anneal_lr_factor must be < 2"):
        catapult.Params.resolve("book", {"anneal_lr_factor": "2.5"})


def test_presets_resolve():
    for preset in ("smoke", "book", "paper"):
        catapult.Params.resolve(preset)


def test_deep_linear_logistic_degenerate_data_lazy_edge_near_8_and_flatter_catapult():
    p = catapult.Params.resolve("smoke")
    out = linear.linear_sweep("degenerate", p, torch.device("cpu"))
    s = out["summary"]
    assert 7.5 < s["lr_crit"] < 10 and 7.5 < s["lr_crit_from_minimum"] < 8.5
    assert s["sharpness_catapult"] < 0.5 * s["sharpness_lazy"] and s["catapult_below_edge"] == 1.0


def test_network_rate_grid_resolves_both_edges():
    grid = nets.net_lr_grid(0.4, 7, 64.0)
    for edge in (2.0, 4.0):
        below, above = grid[grid < edge].max(), grid[grid > edge].min()
        assert above - below <= 0.4 + 1e-9
    assert grid[-1] == pytest.approx(64.0) and (grid[(grid > 5) & (grid < 20)]).size >= 3


def test_centred_network_starts_lazy_and_an_under_trained_sweep_is_inconclusive():
    """Centring puts every network at the zero output's loss (1/2 for one-hot targets), so the phase labels'
    regime holds; a sweep stopped after a physical time of 2 / lambda0 fits nothing, so the generalisation
    verdict is 'inconclusive at this scale' with the measured train accuracy as its reason."""
    p = catapult.Params.resolve("smoke", {"physical_time": 2.0, "anneal_steps": 1, "lanczos_iters": 4,
                                          "lr_max_factor": 6.0, "high_rates": 1})
    out = nets.net_sweep("mlp_small", p, _toy_images(), torch.device("cpu"))
    s = out["summary"]
    assert s["initial_loss"] == pytest.approx(0.5, rel=1e-5)
    net = nets.NetSweep.from_stored("mlp_small", "toy MLP", out)
    phase, fit = verdicts.net_regimes(net)
    assert phase.conditions[0].ok
    assert not fit.ok and fit.verdict(REPRODUCED) == INCONCLUSIVE
    assert "train accuracy" in fit.sentence() and "did not reach" in fit.sentence()


def test_under_trained_edge_of_stability_run_is_inconclusive():
    """Ten steps: the loss has not fallen to half its start and the sharpness is still below 2/eta."""
    p = catapult.Params.resolve("smoke", {"eos_steps": 10, "eos_every": 5, "eos_n_train": 64, "eos_width": 8,
                                          "lanczos_iters": 6})
    out = eos.eos_run(p, 0, torch.device("cpu"))
    run = eos.EosRun.from_stored(out)
    assert run.sharpness0 < run.edge  # each run starts stable: 2/eta is above the initial sharpness
    reg = verdicts.eos_regime(run, "toy fc-tanh")
    assert not reg.ok and reg.verdict(REPRODUCED) == INCONCLUSIVE


# --------------------------------------------------------------------------- verdicts on synthetic results


def _result(experiment: str, config: dict, metrics: dict, data: dict) -> Result:
    return Result(experiment, 1, "synthetic", config, metrics, data, {})


def uv_section(lr_crit=2.025, lr_max=4.025, step=0.025, log_crit=8.08, log_diverged=False) -> uv.UvSection:
    metrics = {"uv_lambda0": 2.0, "uv_lr_crit": lr_crit, "uv_lr_max": lr_max, "uv_grid_step": step,
               "uv_width_of_edges": 100_000, "uv_logistic_lr_crit": log_crit, "uv_logistic_lr_max": math.nan,
               "uv_logistic_grid_step": 0.08, "uv_logistic_diverged_up_to_64": log_diverged}
    return uv.UvSection(_result("catapult_uv", {"uv_width": 1000}, metrics, {}))


def _net_summary(kind: str, lr_crit=2.1, last_lazy=1.9, flat=1.0, gain=0.01, gain_annealed=0.01, train=1.0,
                 initial_loss=0.5, lambda_change=0.01, smallest="lazy") -> dict:
    s = {"kind": kind, "parameters": 1000, "lambda0": 10.0, "hessian0": 12.0, "initial_loss": initial_loss,
         "lazy_lambda_change": lambda_change, "smallest_rate_outcome": smallest, "lr_crit": lr_crit,
         "last_lazy": last_lazy, "lr_max": 13.9, "last_stable": 9.0, "best_train_accuracy": train,
         "last_fit": 9.0, "catapult_below_edge": flat}
    for suffix, g in (("", gain), ("_annealed", gain_annealed)):
        s |= {f"best_lazy_lr_factor{suffix}": 1.9, f"best_lazy_test_accuracy{suffix}": 0.9,
              f"best_lazy_train_accuracy{suffix}": train, f"best_catapult_lr_factor{suffix}": 3.0,
              f"best_catapult_test_accuracy{suffix}": 0.9 + g, f"best_catapult_train_accuracy{suffix}": train}
    return s


def nets_section(**kw) -> nets.NetsSection:
    config = {"width_small": 256, "width_large": 512, "cnn_channels": 16, "edge_step": 0.4, "n_test": 2000,
              "physical_time": 250.0, "anneal_steps": 30, "anneal_lr_factor": 1.0}
    data = {k: {"summary": _net_summary(k, **kw), "runs": []} for k in nets.NETS}
    return nets.NetsSection(_result("catapult_nets", config, {}, data))


def _linear_summary(kind: str, lazy=0.2, cat=0.05, acc_lazy=0.80, acc_cat=0.82) -> dict:
    return {"kind": kind, "lambda0": 1.0, "hessian0": 0.25, "lr_crit_from_minimum": 8.0, "lr_crit": 8.5,
            "lr_max": math.nan, "catapult_below_edge": 1.0, "sharpness_lazy": lazy, "sharpness_catapult": cat,
            "test_accuracy_lazy": acc_lazy, "test_accuracy_catapult": acc_cat}


def linear_section(final_losses=(0.5, 0.5), **kw) -> linear.LinearSection:
    runs = [{"final_loss": f, "diverged": False} for f in final_losses]
    data = {k: {"summary": _linear_summary(k, **kw), "runs": runs} for k in linear.DATA_KINDS}
    return linear.LinearSection(_result("catapult_linear", {"dl_steps": 2000}, {}, data))


def statuses(result) -> dict[str, str]:
    return {v.key: v.status for v in verdicts.verdicts(result)}


def only(**sections) -> catapult.CatapultResult:
    return catapult.CatapultResult(**{name: sections.get(name) for name in catapult.SECTIONS})


@pytest.mark.parametrize("kw, status", [
    ({}, REPRODUCED),
    ({"lr_crit": 2.05}, REPRODUCED),  # exactly two grid steps above 2: inside
    ({"lr_crit": 2.0501}, PARTLY),  # just outside, the divergence edge still right
    ({"lr_crit": 2.5, "lr_max": 4.5}, NOT_REPRODUCED),
])
def test_uv_edges_verdict(kw, status):
    assert statuses(only(uv=uv_section(**kw)))["uv-edges"] == status


@pytest.mark.parametrize("log_crit, status", [(8.08, REPRODUCED), (9.0, REPRODUCED), (9.01, NOT_REPRODUCED),
                                              (2.0, NOT_REPRODUCED)])
def test_uv_logistic_edge_verdict(log_crit, status):
    assert statuses(only(uv=uv_section(log_crit=log_crit)))["uv-logistic-edge"] == status


@pytest.mark.parametrize("kw, status", [
    ({}, REPRODUCED),
    ({"lr_crit": 2.8}, REPRODUCED),  # two grid steps (0.4) above 2: inside
    ({"lr_crit": 2.81}, PARTLY),  # just outside: the flatter end alone
    ({"flat": 0.8}, REPRODUCED),
    ({"flat": 0.79}, PARTLY),  # the edge alone
    ({"lr_crit": 3.5, "flat": 0.0}, NOT_REPRODUCED),
    ({"initial_loss": 0.5 * 1.05}, REPRODUCED),  # at the lazy start's limit
    ({"initial_loss": 0.5 * 1.06}, INCONCLUSIVE),  # not a lazy start: the phase labels mean nothing
    ({"lambda_change": 0.11}, INCONCLUSIVE),
    ({"smallest": "catapult"}, INCONCLUSIVE),
])
def test_network_phase_verdict(kw, status):
    got = statuses(only(nets=nets_section(**kw)))
    assert [got[f"{k}-phases"] for k in nets.NETS] == [status] * 3


@pytest.mark.parametrize("kw, status", [
    ({}, REPRODUCED),
    ({"gain": 0.0051}, REPRODUCED),
    ({"gain": 0.0049}, PARTLY),  # under half a point is no difference
    ({"gain": -0.02, "gain_annealed": -0.02}, NOT_REPRODUCED),
    ({"train": 0.99}, REPRODUCED),  # fits, at the limit
    ({"train": 0.989}, INCONCLUSIVE),  # does not fit its training set
])
def test_network_generalisation_verdict(kw, status):
    got = statuses(only(nets=nets_section(**kw)))
    assert [got[f"{k}-generalisation"] for k in nets.NETS] == [status] * 3


@pytest.mark.parametrize("kw, flatter, better", [
    ({}, REPRODUCED, REPRODUCED),
    ({"cat": 0.3}, NOT_REPRODUCED, REPRODUCED),
    ({"acc_cat": 0.8049}, REPRODUCED, NOT_REPRODUCED),  # under half a point better: no difference
    ({"cat": math.nan, "acc_cat": math.nan}, INCONCLUSIVE, INCONCLUSIVE),  # no catapult run in the sweep
    ({"final_losses": (0.5, 0.5 * 1.01)}, REPRODUCED, REPRODUCED),
    ({"final_losses": (0.5, 0.5 * 1.02)}, INCONCLUSIVE, REPRODUCED),  # the runs did not reach one minimum
])
def test_deep_linear_verdicts(kw, flatter, better):
    got = statuses(only(linear=linear_section(**kw)))
    assert got["linear-degenerate-flatter"] == got["linear-nonseparable-flatter"] == flatter
    assert got["linear-nonseparable-generalisation"] == better


def test_verdicts_skip_sections_not_computed():
    assert verdicts.verdicts(only()) == []
    assert {v.section for v in verdicts.verdicts(only(uv=uv_section()))} == {"uv"}
