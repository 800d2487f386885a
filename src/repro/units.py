"""Units: a preset split into independent pieces of work, each one of the paper's runs or measurements.

Every experiment module lists its units (`units(params) -> list[Unit]`), and its `run()` computes exactly
those units through the store, then merges them; so a unit is one stored result, keyed like any other. A GPU
campaign (repro.campaign) runs pending units of the `paper` preset and records each one on its own under
`results/recorded/EXPERIMENT/KEY.json`; a chapter then draws the merged recorded units through
`merged_recorded`, which replays the experiment's `run()` on a store that serves recorded units and trains
nothing, and says how many of the preset's units are recorded (`unit_status`).

This module imports neither papermill nor Jupyter: the campaign runs on a bare PyTorch.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from repro.chapters import resolve
from repro.store import Recorded, Result, Store, _jsonable, config_key, read_recorded, recorded_dir, write_json_atomic


@dataclasses.dataclass(frozen=True)
class Work:
    """What a unit computes, for the campaign's time estimate: `images` passes (forward + backward) through the
    network `model` of repro.bench.MODELS, whose throughput the campaign measures first. A unit whose work is
    not a bench network's training (a toy model, full-batch GD on a small net) has no estimate (model None)."""

    model: str | None = None
    images: float = 0.0


@dataclasses.dataclass(frozen=True)
class Unit:
    """One independent stored result of a preset; `fn() -> {"metrics", "data"}` computes it."""

    chapter: str
    name: str
    experiment: str
    version: int
    config: dict[str, Any]
    fn: Callable[[], dict[str, Any]] = dataclasses.field(repr=False, compare=False)
    device: str = "cpu"
    work: Work = Work()
    section: str = ""  # the part of the chapter it belongs to (a page section); default: the name up to its "/"
    datasets: tuple[str, ...] = ()  # the datasets it reads (e.g. "cifar100"): a campaign skips it where one is missing

    def __post_init__(self) -> None:
        if not self.section:
            object.__setattr__(self, "section", self.name.split("/")[0])

    @property
    def key(self) -> str:
        return config_key(self.experiment, self.version, self.config)

    @property
    def path(self) -> str:
        """Where its recorded file lives, relative to the recorded folder."""
        return f"{self.experiment}/{self.key}.json"


def make_unit(chapter: str, name: str, experiment: str, version: int, config: dict[str, Any],
              fn: Callable[[], dict[str, Any]], device: torch.device | str = "cpu", work: Work = Work(),
              section: str = "", datasets: tuple[str, ...] = ()) -> Unit:
    return Unit(chapter, name, experiment, version, _jsonable(config), fn, str(device), work, section,
                tuple(datasets))


def run_unit(store: Store, unit: Unit, force: bool | None = None) -> Result:
    """Load or compute one unit through the store (the one way every experiment computes its parts)."""
    return store.run(unit.experiment, unit.version, unit.config, unit.fn, device=unit.device, force=force)


def chapter_units(chapter: str, preset: str = "paper", overrides: dict[str, Any] | None = None) -> list[Unit]:
    """The units of a chapter at a preset, most important first; names are unique within the chapter."""
    params = resolve(chapter, preset, overrides)
    units = importlib.import_module(f"repro.experiments.{chapter}").units(params)
    names = [u.name for u in units]
    if len(set(names)) != len(names):
        raise AssertionError(f"{chapter}: duplicate unit names {names}")
    return units


# --------------------------------------------------------------------------------------------- recorded units


@dataclasses.dataclass
class UnitState:
    """Where a unit stands in a recorded folder: recorded (current), pending, or to redo (stale, corrupt)."""

    unit: Unit
    state: str  # "recorded", "pending", "stale", "corrupt"
    note: str = ""
    recorded: Recorded | None = None


def unit_label(unit: Unit, preset: str) -> dict[str, str]:
    return {"chapter": unit.chapter, "preset": preset, "unit": unit.name}


def unit_status(units: list[Unit], preset: str = "paper", folder: Path | None = None) -> list[UnitState]:
    """Each unit's state in `folder` (default: results/recorded). A file at the unit's key that cannot be read
    or does not match it is corrupt; a file of the same unit from another experiment version is stale. Both
    are reported and the unit counts as not recorded, so it is redone and never drawn as current."""
    folder = folder or recorded_dir()
    out = []
    for u in units:
        path = folder / u.path
        if path.exists():
            try:
                rec = read_recorded(path, u.version)
                if rec.result.config != u.config or rec.result.experiment != u.experiment:
                    raise ValueError("its config is not this unit's")
                out.append(UnitState(u, "recorded", rec.label, rec))
                continue
            except (OSError, ValueError, TypeError) as err:
                out.append(UnitState(u, "corrupt", f"{path.name} is unreadable ({err}); it will be redone"))
                continue
        stale = _stale_versions(folder / u.experiment, u, preset)
        if stale:
            out.append(UnitState(u, "stale", f"recorded at version {', '.join(map(str, stale))} of "
                                             f"{u.experiment!r}, the code is at {u.version}; it will be redone"))
        else:
            out.append(UnitState(u, "pending"))
    return out


def _stale_versions(folder: Path, unit: Unit, preset: str) -> list[int]:
    found = set()
    for path in folder.glob("*.json"):
        try:
            payload = json.loads(path.read_text())
            label = payload.get("recorded", {})
            if (label.get("unit") == unit.name and label.get("chapter") == unit.chapter
                    and label.get("preset") == preset and payload.get("version") != unit.version):
                found.add(int(payload["version"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue  # not this unit's file; an unreadable file at this unit's own key is reported above
    return sorted(found)


def write_unit_file(folder: Path, payload: dict[str, Any]) -> Path:
    """Write one recorded unit (a Result's JSON with its `recorded` label) at EXPERIMENT/KEY.json, atomically."""
    path = folder / payload["experiment"] / f"{payload['key']}.json"
    write_json_atomic(path, payload)
    return path


class MissingUnits(LookupError):
    """A replay needed units that are not recorded."""


class RecordedStore(Store):
    """A store that serves a preset's recorded units and computes only the merges above them: replaying an
    experiment's run() on it trains nothing (a unit that is not recorded raises MissingUnits)."""

    trains = False

    def __init__(self, units: list[Unit], states: list[UnitState]):
        super().__init__(root=Path("/nonexistent"))
        self.by_key = {(u.experiment, u.key): s for u, s in zip(units, states, strict=True)}
        self.used: list[Recorded] = []

    def run(self, experiment: str, version: int, config: dict[str, Any], fn, *, device="cpu",
            force: bool | None = None) -> Result:
        key = config_key(experiment, version, config)
        state = self.by_key.get((experiment, key))
        if state is not None:
            if state.recorded is None:
                raise MissingUnits(f"unit {state.unit.name} of {state.unit.chapter} is {state.state}")
            self.used.append(state.recorded)
            return state.recorded.result
        first = len(self.used)
        out = fn()  # a merge of units: cheap, and its provenance is that of the units it merges
        pvs = [r.result.provenance for r in self.used[first:]]
        prov = {"commit": ", ".join(sorted({pv["commit"] for pv in pvs})),
                "device": ", ".join(sorted({pv["device"] for pv in pvs})),
                "date": max(pv["date"] for pv in pvs), "seed": config.get("seed"),
                "wall_time_s": round(sum(pv["wall_time_s"] for pv in pvs), 3),
                "torch": ", ".join(sorted({pv["torch"] for pv in pvs}))}
        return Result(experiment, version, key, _jsonable(config), _jsonable(out["metrics"]),
                      _jsonable(out.get("data", {})), prov, cached=True)


def find_result(obj: Any, experiment: str) -> Result | None:
    """The first Result of `experiment` inside what a run() returns (a Result, a dataclass, dicts, lists)."""
    if isinstance(obj, Result):
        return obj if obj.experiment == experiment else None
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = [getattr(obj, f.name) for f in dataclasses.fields(obj)]
    items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list | tuple) else []
    return next((r for r in (find_result(x, experiment) for x in items) if r is not None), None)


@dataclasses.dataclass
class MergedRecorded:
    """What a chapter draws from a preset's recorded units: each unit's state, and the experiment's result
    replayed on the recorded units of every complete section (a section whose units are all recorded), so a
    section is drawn as soon as its own units exist."""

    chapter: str
    preset: str
    states: list[UnitState]
    result: Any = None  # what the experiment's run(sections=complete) returns; None when no section is complete

    @property
    def n_recorded(self) -> int:
        return sum(s.state == "recorded" for s in self.states)

    @property
    def sections(self) -> dict[str, tuple[int, int]]:
        """Per section, in unit order: (units recorded, units in the preset)."""
        out: dict[str, tuple[int, int]] = {}
        for s in self.states:
            done, total = out.get(s.unit.section, (0, 0))
            out[s.unit.section] = (done + (s.state == "recorded"), total + 1)
        return out

    @property
    def complete(self) -> list[str]:
        return [name for name, (done, total) in self.sections.items() if done == total]

    @property
    def summary(self) -> str:
        done, total = self.n_recorded, len(self.states)
        text = f"{done} of the {self.preset} preset's {total} units are recorded at the current code version"
        partial = [f"{name} {d} of {t}" for name, (d, t) in self.sections.items() if 0 < d < t]
        if self.complete and done < total:
            text += f"; complete sections, drawn below: {', '.join(self.complete)}"
        if partial:
            text += f"; partly recorded: {', '.join(partial)}"
        redo = [s for s in self.states if s.state in ("stale", "corrupt")]
        if redo:
            text += "; not drawn: " + "; ".join(f"{s.unit.name} ({s.state}: {s.note})" for s in redo)
        return text + "."


def merged_recorded(chapter: str, preset: str = "paper", folder: Path | None = None) -> MergedRecorded:
    """The recorded units of a chapter's preset, and the experiment's result replayed from them (run() on a
    RecordedStore, which trains nothing) for the sections whose units are all recorded."""
    units = chapter_units(chapter, preset)
    states = unit_status(units, preset, folder)
    merged = MergedRecorded(chapter, preset, states)
    if merged.complete:
        module = importlib.import_module(f"repro.experiments.{chapter}")
        every = len(merged.complete) == len(merged.sections)
        merged.result = module.run(resolve(chapter, preset), store=RecordedStore(units, states),
                                   sections=None if every else set(merged.complete))
    return merged
