import json

import pytest

from repro.store import Store, config_key


def test_key_depends_on_experiment_version_and_config_only():
    a = config_key("e", 1, {"lr": 0.1, "seed": 0})
    assert a == config_key("e", 1, {"seed": 0, "lr": 0.1})  # order does not matter
    assert a != config_key("e", 2, {"lr": 0.1, "seed": 0})
    assert a != config_key("e", 1, {"lr": 0.2, "seed": 0})
    assert a != config_key("f", 1, {"lr": 0.1, "seed": 0})


def test_run_saves_with_provenance_then_loads(tmp_path):
    store, calls = Store(tmp_path), []

    def fn():
        calls.append(1)
        return {"metrics": {"acc": 0.5}, "data": {"curve": [1.0, 2.0]}}

    first = store.run("e", 1, {"seed": 3}, fn)
    assert not first.cached and first.provenance["seed"] == 3
    assert {"commit", "device", "date", "wall_time_s", "torch"} <= set(first.provenance)
    second = store.run("e", 1, {"seed": 3}, fn)
    assert second.cached and second.metrics == {"acc": 0.5} and second.data == {"curve": [1.0, 2.0]}
    assert len(calls) == 1
    store.run("e", 1, {"seed": 3}, fn, force=True)
    assert len(calls) == 2
    store.run("e", 2, {"seed": 3}, fn)  # a new experiment version does not load the old result
    assert len(calls) == 3


def test_corrupt_or_foreign_file_is_recomputed_not_read(tmp_path):
    store = Store(tmp_path)
    fn = lambda: {"metrics": {"x": 1}}  # noqa: E731
    r = store.run("e", 1, {"a": 1}, fn)
    path = store.path("e", r.key)
    path.write_text(path.read_text()[:20])  # a half-written file
    with pytest.warns(UserWarning, match="unreadable result"):
        again = store.run("e", 1, {"a": 1}, fn)
    assert not again.cached and json.loads(path.read_text())["metrics"] == {"x": 1}
    payload = json.loads(path.read_text())
    payload["key"] = "0" * 16
    path.write_text(json.dumps(payload))
    with pytest.warns(UserWarning, match="key mismatch"):
        assert store.load("e", 1, {"a": 1}) is None


def test_interrupted_write_leaves_nothing_readable(tmp_path):
    store = Store(tmp_path)
    with pytest.raises(TypeError):
        store.run("e", 1, {"a": 1}, lambda: {"metrics": {"bad": object()}})
    assert store.load("e", 1, {"a": 1}) is None
    assert not any(p.is_file() for p in tmp_path.rglob("*"))  # no temporary file left behind either
