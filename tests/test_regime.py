import math

from repro.regime import INCONCLUSIVE, Regime, at_least, at_most
from repro.report import regime_table


def test_conditions_compare_and_nan_fails():
    assert at_least("train accuracy", 0.995, 0.99).ok
    assert not at_least("train accuracy", 0.51, 0.99).ok
    assert at_most("gradient norm", 1e-3, 1e-2).ok
    assert not at_most("gradient norm", 0.5, 1e-2).ok
    assert not at_least("train accuracy", math.nan, 0.0).ok
    assert not at_most("gradient norm", math.nan, 1.0).ok


def test_failed_regime_turns_verdict_inconclusive_and_says_why():
    r = Regime("C1, LB", "a minimiser", [at_least("train accuracy", 0.48, 0.99), at_most("gradient norm", 1e-3, 1e-2)])
    assert not r.ok
    assert r.verdict("partly reproduced") == INCONCLUSIVE
    assert r.reason == "train accuracy 0.480 (needs ≥ 0.990)"
    assert "did not reach" in r.sentence() and "0.480" in r.sentence()


def test_reached_regime_keeps_verdict_and_empty_regime_is_not_reached():
    r = Regime("F1, SB", "a minimiser", [at_least("train accuracy", 1.0, 0.99)])
    assert r.ok and r.verdict("reproduced") == "reproduced" and r.reason == ""
    assert not Regime("x", "y").ok


def test_table_has_one_row_per_condition():
    a = Regime("SB", "fit", [at_least("train accuracy", 0.9, 0.99), at_most("loss", 0.1, 0.2)])
    b = Regime("LB", "fit", [at_least("train accuracy", 1.0, 0.99)])
    t = regime_table([a, b])
    assert len(t) == 3 and list(t["met"]) == ["no", "yes", "yes"]
