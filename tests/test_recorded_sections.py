"""A chapter draws its recorded units section by section: a section is replayed (trains nothing) as soon as all its
units are recorded, the others wait, and a stale or damaged unit is never drawn as current."""

import dataclasses
import json
import sys
import types

import pytest

from repro import params as P
from repro.chapters import CHAPTERS, Chapter
from repro.store import Store, config_key
from repro.units import RecordedStore, chapter_units, make_unit, merged_recorded, run_unit, unit_status

VERSION = 3


@dataclasses.dataclass(frozen=True)
class ToyParams(P.Params):
    seed: int = P.param(0, "seed", ge=0)


def toy_units(p):
    def unit(name, value):
        return make_unit("toy", name, "toy_unit", VERSION, {"name": name, "seed": p.seed},
                         lambda: {"metrics": {"value": value}, "data": {}})

    return [unit("a/1", 1.0), unit("a/2", 2.0), unit("b/1", 10.0)]


def toy_run(p, store=None, force=None, sections=None):
    """Each section's units, summed; a section not asked for is None."""
    store = store or Store()
    out = {}
    for section in ("a", "b"):
        if sections is None or section in sections:
            out[section] = sum(run_unit(store, u, force).metrics["value"] for u in toy_units(p)
                               if u.section == section)
        else:
            out[section] = None
    return out


@pytest.fixture
def toy(monkeypatch, tmp_path):
    module = types.ModuleType("repro.experiments.toy")
    module.Params, module.units, module.run = ToyParams, toy_units, toy_run
    monkeypatch.setitem(sys.modules, "repro.experiments.toy", module)
    monkeypatch.setitem(CHAPTERS, "toy", Chapter("toy", "Toy: sections"))
    monkeypatch.setenv("REPRO_RECORDED_DIR", str(tmp_path / "recorded"))
    return tmp_path / "recorded"


def record(units, names, folder, version=VERSION):
    """Compute the named units and keep them as a campaign would (EXPERIMENT/KEY.json with their label)."""
    for u in units:
        if u.name in names:
            r = run_unit(Store(folder.parent / "store"), u)
            payload = {"schema": 1, **r.to_json(), "recorded": {"chapter": "toy", "preset": "paper", "unit": u.name}}
            if version != VERSION:  # the same unit made by an older version of the code
                payload["version"] = version
                payload["key"] = config_key(u.experiment, version, u.config)
            path = folder / u.experiment / f"{payload['key']}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(payload))


def test_sections_default_to_the_name_before_its_slash(toy):
    assert [u.section for u in chapter_units("toy", "paper")] == ["a", "a", "b"]


def test_a_complete_section_is_drawn_before_the_preset_is(toy):
    units = chapter_units("toy", "paper")
    assert merged_recorded("toy").result is None  # nothing recorded: nothing drawn
    record(units, {"a/1"}, toy)
    partial = merged_recorded("toy")
    assert partial.result is None and partial.sections == {"a": (1, 2), "b": (0, 1)}
    assert "partly recorded: a 1 of 2" in partial.summary
    record(units, {"a/2"}, toy)
    merged = merged_recorded("toy")
    assert merged.complete == ["a"] and merged.result == {"a": 3.0, "b": None}
    assert "complete sections, drawn below: a" in merged.summary
    record(units, {"b/1"}, toy)
    assert merged_recorded("toy").result == {"a": 3.0, "b": 10.0}


def test_a_stale_unit_keeps_its_section_from_being_drawn(toy):
    units = chapter_units("toy", "paper")
    record(units, {"a/1", "a/2"}, toy)
    record(units, {"b/1"}, toy, version=VERSION - 1)
    merged = merged_recorded("toy")
    assert [s.state for s in merged.states] == ["recorded", "recorded", "stale"]
    assert merged.result == {"a": 3.0, "b": None}
    assert "not drawn: b/1 (stale: recorded at version 2" in merged.summary


def test_the_replay_trains_nothing(toy):
    units = chapter_units("toy", "paper")
    store = RecordedStore(units, unit_status(units))
    with pytest.raises(LookupError, match="unit a/1 of toy is pending"):
        toy_run(ToyParams(), store=store)
