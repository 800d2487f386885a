"""Learning order's verdicts on small synthetic results (every status reachable, each threshold's boundary), its
smoke-scale statuses, and the determinism of its smoke run."""

import json

import pytest

from repro.experiments import learning_order
from repro.experiments.learning_order import verdicts as V
from repro.experiments.learning_order.results import CifarSet, LearningOrderResult, RegimeMeasures, TheoryMain
from repro.regime import INCONCLUSIVE
from repro.store import Result, Store
from repro.verdict import NOT_REPRODUCED, PARTLY, REPRODUCED

EPOCHS, ANNEAL = 6, 3


def cifar_run(method, clean=0.8, train=0.99, patch_only=None, seed=0, n_train=5000, sep=0.35):
    """One stored CIFAR run: final accuracies and per-epoch curves (patch-only accuracy by epoch)."""
    patch_only = patch_only or [0.1] * EPOCHS
    config = {"method": method, "seed": seed, "n_train": n_train, "patch_sep": sep, "epochs": EPOCHS,
              "anneal_epoch": ANNEAL, "network": "mlp", "width": 8}
    metrics = {"final_clean": clean, "final_train": train, "final_patch_only": patch_only[-1],
               "final_patched": clean, "seconds_per_epoch": 1.0, "final_train_clean": train}
    data = {"clean": [clean] * EPOCHS, "patched": [clean] * EPOCHS, "patch_only": list(patch_only)}
    return Result("learning_order_cifar", 2, f"{method}{seed}{n_train}", config, metrics, data, {})


EARLY = [0.1, 0.9, 0.95, 0.95, 0.97, 0.98]  # learns the patch at epoch 2
LATE = [0.1, 0.1, 0.2, 0.6, 0.9, 0.95]  # learns it after the anneal (epoch 4)


def cifar_result(clean=None, patch_curves=None, train=0.99, seeds=2, control=True, n_small=1000, cost=0.05):
    clean = clean or {"large_lr": 0.90, "small_lr": 0.80, "small_lr_noise": 0.9, "small_lr_noise_iid": 0.9}
    curves = patch_curves or {"large_lr": LATE, "small_lr": EARLY, "small_lr_noise": LATE, "small_lr_noise_iid": LATE}

    def one(methods, n_train=5000, patched=True):
        # patch training costs the small LR half of what the control's fewer images cost it
        drop = {"small_lr": cost} if patched else {}
        return CifarSet({m: [cifar_run(m, clean[m] - drop.get(m, 0) + 0.001 * s, train,
                                       curves[m] if patched else None, s, n_train)
                             for s in range(seeds)] for m in methods})

    patch = one(["large_lr", "small_lr", "small_lr_noise", "small_lr_noise_iid"])
    clean_set = one(["large_lr", "small_lr", "small_lr_noise"], patched=False)
    # the control, 0.1 below the full set: the patch runs' positions are 1 (large LR) and 0.5 (small LR)
    ctrl = CifarSet({m: [cifar_run(m, clean[m] - 0.1 + 0.001 * s, train, None, s, n_small) for s in range(seeds)]
                     for m in ("large_lr", "small_lr")}) if control else None
    return LearningOrderResult(learning_order.Params.resolve("smoke"), patch=patch, official_patch=CifarSet({}),
                               clean=clean_set, control=ctrl)


def statuses(result):
    return {v.key: v.status for v in V.cifar_verdicts(result)}


def test_cifar_claims_reproduced_when_the_runs_show_them():
    assert statuses(cifar_result()) == {
        "patch-small-lr-memorises-early": REPRODUCED, "patch-large-lr-ignores-until-anneal": REPRODUCED,
        "patch-noise-delays-patch": REPRODUCED, "noise-recovers-clean-accuracy": REPRODUCED,
        "large-lr-higher-clean-accuracy": REPRODUCED, "control-small-lr-learns-from-few-images": REPRODUCED}


def test_cifar_claims_not_reproduced_when_the_runs_show_the_opposite():
    curves = {"large_lr": EARLY, "small_lr": LATE, "small_lr_noise": EARLY, "small_lr_noise_iid": EARLY}
    clean = {"large_lr": 0.80, "small_lr": 0.90, "small_lr_noise": 0.75, "small_lr_noise_iid": 0.75}
    got = statuses(cifar_result(clean, curves))
    assert got["patch-small-lr-memorises-early"] == NOT_REPRODUCED
    assert got["patch-large-lr-ignores-until-anneal"] == NOT_REPRODUCED
    assert got["patch-noise-delays-patch"] == NOT_REPRODUCED
    assert got["noise-recovers-clean-accuracy"] == NOT_REPRODUCED
    assert got["large-lr-higher-clean-accuracy"] == NOT_REPRODUCED


def test_a_claim_that_holds_on_one_variant_only_is_partly_reproduced():
    # the i.i.d. noise learns the patch early, the shared noise late: one variant of two holds
    curves = {"large_lr": LATE, "small_lr": EARLY, "small_lr_noise": LATE, "small_lr_noise_iid": EARLY}
    assert statuses(cifar_result(patch_curves=curves))["patch-noise-delays-patch"] == PARTLY


def test_seeds_that_overlap_leave_a_clean_accuracy_claim_undecided():
    clean = {"large_lr": 0.800, "small_lr": 0.8005, "small_lr_noise": 0.85, "small_lr_noise_iid": 0.85}
    assert statuses(cifar_result(clean, cost=0))["large-lr-higher-clean-accuracy"] == INCONCLUSIVE


def test_noise_between_the_two_rates_recovers_the_large_rate_in_part():
    clean = {"large_lr": 0.90, "small_lr": 0.80, "small_lr_noise": 0.85, "small_lr_noise_iid": 0.85}
    assert statuses(cifar_result(clean))["noise-recovers-clean-accuracy"] == PARTLY


@pytest.mark.parametrize("clean_low, ok", [(V.CLEAN_TEST_NEED.value, True), (V.CLEAN_TEST_NEED.value - 0.002, False)])
def test_clean_accuracy_threshold_of_the_cifar_regime(clean_low, ok):
    clean = {"large_lr": 0.90, "small_lr": clean_low, "small_lr_noise": 0.9, "small_lr_noise_iid": 0.9}
    result = cifar_result(clean, cost=0)
    regime = V.cifar_regime("runs", result.patch.all_runs())
    assert regime.ok is ok
    verdict = next(v for v in V.cifar_verdicts(result) if v.key == "patch-small-lr-memorises-early")
    assert (verdict.status == REPRODUCED) is ok and (verdict.status == INCONCLUSIVE) is not ok
    if not ok:
        assert "clean test accuracy, lowest run" in verdict.sentence


@pytest.mark.parametrize("train, ok", [(V.TRAIN_NEED.value, True), (V.TRAIN_NEED.value - 0.001, False)])
def test_train_accuracy_threshold_of_the_cifar_regime(train, ok):
    assert V.cifar_regime("runs", cifar_result(train=train).patch.all_runs()).ok is ok


@pytest.mark.parametrize("at_anneal, learned", [(V.PATCH_LEARNED.value, True), (V.PATCH_LEARNED.value - 0.01, False)])
def test_a_patch_counts_as_learned_from_half_patch_only_accuracy(at_anneal, learned):
    curve = [0.1, 0.1, at_anneal, 0.9, 0.9, 0.9]  # the anneal epoch is 3
    curves = {"large_lr": curve, "small_lr": EARLY, "small_lr_noise": LATE, "small_lr_noise_iid": LATE}
    got = statuses(cifar_result(patch_curves=curves))["patch-large-lr-ignores-until-anneal"]
    assert got == (NOT_REPRODUCED if learned else REPRODUCED)


def test_sections_not_computed_give_no_verdicts():
    result = LearningOrderResult(learning_order.Params.resolve("smoke"))
    assert V.verdicts(result) == [] and V.ablation_answers(result) == []
    only_patch = cifar_result()
    only_patch.clean = only_patch.control = None
    assert [v.section for v in V.cifar_verdicts(only_patch)] == ["patch"] * 3


def test_verdict_keys_are_stable_and_unique():
    keys = [v.key for v in V.cifar_verdicts(cifar_result())]
    assert len(keys) == len(set(keys)) and all("/" not in k for k in keys)
    json.dumps([v.to_dict() for v in V.cifar_verdicts(cifar_result())])


# ------------------------------------------------------------------------------------------------ smoke scale


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    p = learning_order.Params.resolve("smoke", {"device": "cpu"})
    root = tmp_path_factory.mktemp("learning_order_smoke")
    return p, root, learning_order.run(p, Store(root / "a"), force=True)


# ------------------------------------------------------------------------------------------------ theory


def runs_row(p_errors, fit_q=(100, 120, 110), anneal=(500, 500, 500), **extra):
    n = len(p_errors)
    row = {"p_error": sum(p_errors) / n, "p_error_std": 0.01, "p_error_seeds": list(p_errors), "q_error": 0.0,
           "q_error_std": 0.0, "pq_error": 0.0, "pq_error_std": 0.0, "train_loss": 0.15, "train_loss_std": 0.0,
           "fit_step_P": [50] * n, "fit_step_PQ": [60] * n, "fit_step_Q": list(fit_q), "anneal_step": list(anneal),
           "stop_step": [2000] * n, "annealed_by_loss": [True] * n, "active_q_mean": [0.45] * n,
           "q_acc_mean": [0.55] * n}
    return row | extra


IN_REGIME = {"alive_Q": [0.45, 0.45, 0.45], "q_accuracy_before": [0.55, 0.55, 0.55],
             "annealed_by_loss": [True] * 3, "s_memorised_Q": [True] * 3, "stopped": [True] * 6}


def theory_result(ls=(0.10, 0.11, 0.12), s=(0.20, 0.22, 0.21), noisy=(0.12, 0.12, 0.13), regime=None,
                  ls_fit_q=(700, 710, 720), s_fit_q=(100, 120, 110), gaps=(0.12, 0.05)):
    """L-S fits Q after annealing at 500, S before it; the p0 sweep's gap S - L-S is `gaps` at p0 0.1, 0.3."""
    regime = {**IN_REGIME, **(regime or {})}
    algos = {"L-S": runs_row(ls, ls_fit_q), "S": runs_row(s, s_fit_q), "S+noise": runs_row(noisy, ls_fit_q)}
    sweep = []
    for p0, gap in zip((0.1, 0.3), gaps, strict=True):
        sweep += [{"p0": p0, "algorithm": "L-S", "p_error": 0.1, "regime": regime},
                  {"p0": p0, "algorithm": "S", "p_error": 0.1 + gap, "regime": regime}]
    config = {"pq_stop_loss": 0.15, "pq_p0": 0.2, "pq_q0": 0.2, "pq_n_train": 200}
    result = Result("learning_order_theory", 2, "k", config, {"algorithms": algos, "regime": regime, "seeds": 3},
                    {"sweep": sweep}, {})
    return LearningOrderResult(learning_order.Params.resolve("smoke"), theory=TheoryMain(result))


def theory_statuses(result):
    return {v.key: v.status for v in V.theory_verdicts(result)}


def test_theory_claims_reproduced_in_the_regime():
    assert theory_statuses(theory_result()) == {
        "theory-learning-order": REPRODUCED, "theory-p-only-error": REPRODUCED,
        "theory-gap-grows-as-p0-shrinks": REPRODUCED, "theory-noise-like-large-lr": REPRODUCED}


def test_theory_claims_not_reproduced_in_the_regime():
    got = theory_statuses(theory_result(ls=(0.20, 0.22, 0.21), s=(0.10, 0.11, 0.12), noisy=(0.1, 0.11, 0.12),
                                        ls_fit_q=(100, 120, 110), s_fit_q=(700, 710, 720), gaps=(-0.05, 0.02)))
    assert set(got.values()) == {NOT_REPRODUCED}


def test_the_order_on_some_seeds_only_is_partly_reproduced():
    assert theory_statuses(theory_result(ls_fit_q=(700, 100, 100)))["theory-learning-order"] == PARTLY


def test_a_p_only_gap_within_two_paired_standard_errors_is_inconclusive():
    # paired differences 0.05, 0.05, -0.04: mean 0.02, standard error 0.03
    assert theory_statuses(theory_result(ls=(0.10, 0.10, 0.14), s=(0.15, 0.15, 0.10)))["theory-p-only-error"] == \
        INCONCLUSIVE


@pytest.mark.parametrize("mean, status", [(0.0115, INCONCLUSIVE), (0.0116, REPRODUCED)])
def test_the_paired_standard_error_threshold(mean, status):
    """Per-seed differences mean - 0.01, mean, mean + 0.01: standard error 0.01 / sqrt(3), so the call needs a
    mean beyond 2 x 0.00577 = 0.01155."""
    s = [0.3 + mean + d for d in (-0.01, 0.0, 0.01)]
    assert theory_statuses(theory_result(ls=(0.3, 0.3, 0.3), s=s))["theory-p-only-error"] == status


@pytest.mark.parametrize("field, value, condition", [
    ("alive_Q", [0.45, 0.45, 0.0], "share of L-S's units active on Q before annealing"),
    ("alive_Q", [0.45, 0.45, V.ALIVE_NEED.value - 1e-3], "share of L-S's units active on Q before annealing"),
    ("q_accuracy_before", [0.55, 0.55, V.Q_CHANCE_NEED.value + 1e-3], "Q-only test accuracy before annealing"),
    ("annealed_by_loss", [True, True, False], "annealed by the loss rule"),
    ("s_memorised_Q", [True, False, True], "S's seeds that memorised Q"),
    ("stopped", [True] * 5 + [False], "stopped at train loss ε₂"),
])
def test_a_run_outside_the_theorem_s_regime_is_inconclusive(field, value, condition):
    result = theory_result(regime={field: value})
    for v in V.theory_verdicts(result):
        assert v.status == INCONCLUSIVE and condition in v.sentence and "the theorem's regime" in v.sentence


@pytest.mark.parametrize("field, value", [("alive_Q", [V.ALIVE_NEED.value] * 3),
                                          ("q_accuracy_before", [V.Q_CHANCE_NEED.value] * 3)])
def test_the_regime_s_thresholds_are_inclusive(field, value):
    assert V.theorem_regime(RegimeMeasures.of({**IN_REGIME, field: value})).ok


def test_the_gap_claim_needs_the_regime_at_every_p0():
    result = theory_result()
    result.theory.result.data["sweep"][0]["regime"] = {**IN_REGIME, "alive_Q": [0.0] * 3}
    got = theory_statuses(result)
    assert got["theory-gap-grows-as-p0-shrinks"] == INCONCLUSIVE and got["theory-p-only-error"] == REPRODUCED


# ------------------------------------------------------------------------------------------------ smoke scale


def test_smoke_statuses(smoke):
    """The smoke preset's statuses, pinned: its runs miss every regime (a few hundred steps, a 32-unit MLP on 512
    images for two epochs), so every claim is inconclusive at this scale."""
    _, _, result = smoke
    got = [(v.key, v.status) for v in V.verdicts(result)]
    assert got == [(key, INCONCLUSIVE) for key in (
        "theory-learning-order", "theory-p-only-error", "theory-gap-grows-as-p0-shrinks",
        "theory-noise-like-large-lr", "patch-small-lr-memorises-early", "patch-large-lr-ignores-until-anneal",
        "patch-noise-delays-patch", "noise-recovers-clean-accuracy", "large-lr-higher-clean-accuracy",
        "control-small-lr-learns-from-few-images")]
    assert {a.shown for a in V.ablation_answers(result)} <= {INCONCLUSIVE} | {a.answer for a in
                                                                              V.ablation_answers(result)}


def test_the_same_smoke_run_twice_gives_the_same_files(smoke):
    """Determinism: the module's smoke run again, into a second store, gives identical result files apart from
    provenance (date, wall time) and the CIFAR runs' seconds per epoch."""
    p, root, _ = smoke
    learning_order.run(p, Store(root / "b"), force=True)
    files = {run: {path.relative_to(root / run).as_posix(): json.loads(path.read_text())
                   for path in sorted((root / run).rglob("*.json"))} for run in ("a", "b")}
    assert files["a"] and files["a"].keys() == files["b"].keys()

    def strip(obj):
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items() if k != "provenance" and "seconds" not in k}
        return [strip(v) for v in obj] if isinstance(obj, list) else obj

    for path, payload in files["a"].items():
        assert payload["provenance"]["deterministic"] is True
        assert strip(payload) == strip(files["b"][path]), path
