"""Recorded results: written by --record, validated, marked stale when the code's version moved on."""

import json

import pytest
import torch

from repro.checkpoint import Checkpoint
from repro.store import Store, project_root, read_recorded

RECORDED = project_root() / "results" / "recorded"


@pytest.fixture
def recorded_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_RECORDED_DIR", str(tmp_path / "recorded"))
    return tmp_path / "recorded"


def test_record_keeps_a_labelled_copy(recorded_dir, monkeypatch):
    monkeypatch.setenv("REPRO_RECORD", json.dumps({"chapter": "toy", "preset": "paper"}))
    r = Store().run("toy", 1, {"seed": 0}, lambda: {"metrics": {"acc": 0.9}, "data": {"curve": [1, 2]}})
    [path] = (recorded_dir / "toy").glob("*.json")
    rec = read_recorded(path, 1)
    assert rec.result.metrics == {"acc": 0.9} and rec.result.key == r.key and rec.preset == "paper"
    assert not rec.stale and "recorded on CPU" in rec.label and "preset paper" in rec.label


def test_a_record_from_an_older_version_is_stale(recorded_dir, monkeypatch):
    """How the merge of recorded units (tests/test_recorded_sections.py) tells a stale unit from a current one."""
    monkeypatch.setenv("REPRO_RECORD", json.dumps({"chapter": "toy", "preset": "paper"}))
    Store().run("toy", 1, {"seed": 0}, lambda: {"metrics": {}})
    [path] = (recorded_dir / "toy").glob("*.json")
    assert read_recorded(path, 2).stale and not read_recorded(path, 1).stale


def test_schema_violations_are_errors(recorded_dir, monkeypatch):
    monkeypatch.setenv("REPRO_RECORD", json.dumps({"chapter": "toy", "preset": "paper"}))
    Store().run("toy", 1, {"seed": 0}, lambda: {"metrics": {}})
    [path] = (recorded_dir / "toy").glob("*.json")
    payload = json.loads(path.read_text())
    payload["config"]["seed"] = 1  # edited by hand: the key no longer matches
    path.write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="key does not match"):
        read_recorded(path, 1)
    del payload["provenance"]
    path.write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="lacks provenance"):
        read_recorded(path, 1)


def test_every_tracked_recorded_file_loads_and_is_small():
    """CI's check of the repository's recorded results (no GPU needed: the figures are redrawn by the
    chapters when the book is built)."""
    for folder in sorted(p for p in RECORDED.glob("*") if p.is_dir()):
        size = 0
        for path in folder.glob("*.json"):
            rec = read_recorded(path, current_version=-1)
            assert rec.result.metrics and rec.preset in ("smoke", "book", "paper")
            size += path.stat().st_size
        assert size < 5e6, f"{folder.name}: recorded results take {size / 1e6:.1f} MB; keep them under 5 MB"


def test_checkpoint_roundtrip_and_damage(tmp_path):
    ckpt = Checkpoint("toy", "abc", every=2, root=tmp_path)
    assert ckpt.load() is None and not ckpt.due(1) and ckpt.due(2)
    ckpt.save({"epoch": 4, "w": torch.ones(3)})
    state = ckpt.load()
    assert state["epoch"] == 4 and torch.equal(state["w"], torch.ones(3))
    ckpt.path.write_bytes(ckpt.path.read_bytes()[:10])
    with pytest.warns(UserWarning, match="unreadable checkpoint"):
        assert ckpt.load() is None
    ckpt.clear()
    assert not ckpt.path.exists()
    with pytest.raises(ValueError, match="interval"):
        Checkpoint("toy", "abc", every=0)
