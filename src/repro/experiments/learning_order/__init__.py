"""Learning order (Li, Wei, Ma, NeurIPS 2019): a large initial learning rate, then annealed, against a small one
and a small one with pre-activation noise, in the paper's synthetic theory setting (setting.py, theory.py) and
on patch-augmented CIFAR-10 (cifar.py). Verdicts in verdicts.py, figures and tables in figures.py.

Sections (each a set of units stored on their own): "theory" (the main comparison), "search" (the search for the
theorem's regime), "ablations" (the reviewers' questions), and the CIFAR-10 sets "patch", "clean", "control" and
"official_patch".
"""

from __future__ import annotations

import dataclasses

from repro.data import load_dataset
from repro.device import get_device
from repro.store import Result, Store
from repro.units import Unit, run_unit

from . import figures, verdicts
from .cifar import VERSION, CifarParams, cifar_units
from .results import Ablations, CifarSet, LearningOrderResult, Search, TheoryMain
from .setting import TheoryParams
from .theory import VERSION as THEORY_VERSION
from .theory import theory_units

__all__ = ["VERSION", "THEORY_VERSION", "Params", "LearningOrderResult", "units", "run", "figures", "verdicts"]

SECTIONS = ("theory", "search", "ablations", "patch", "clean", "control", "official_patch")


@dataclasses.dataclass(frozen=True)
class Params(CifarParams, TheoryParams):
    """The theory setting's parameters (pq_*), then the CIFAR-10 runs'. Presets: TheoryParams.PRESETS and
    CifarParams.PRESETS, each with its reasons."""

    PRESETS = {preset: {**TheoryParams.PRESETS.get(preset, {}), **CifarParams.PRESETS.get(preset, {})}
               for preset in ("smoke", "paper")}

    def check(self) -> None:
        TheoryParams.check(self)
        CifarParams.check(self)


def units(p: Params) -> list[Unit]:
    """The theory units, then one unit per CIFAR run (set, method, seed), most important first."""
    return theory_units(p) + cifar_units(p, p.seed, get_device(p.device))


def run(p: Params, store: Store | None = None, force: bool | None = None,
        sections: set[str] | None = None) -> LearningOrderResult:
    """The units of the sections asked for (all when None), each loaded or computed through the store, merged
    into the typed result; sections not asked for are None."""
    store = store or Store()
    chosen = [u for u in units(p) if sections is None or u.section in sections]
    if store.trains and any("cifar10" in u.datasets for u in chosen):
        load_dataset("cifar10", "test", "cpu")  # missing data stops the chapter before any training
    done = {u.name: (u.section, run_unit(store, u, force)) for u in chosen}
    out = LearningOrderResult(p)
    if "theory/main" in done:
        out.theory = TheoryMain(done.pop("theory/main")[1])
    if "theory/search" in done:
        out.search = Search(done.pop("theory/search")[1])
    if "theory/ablations" in done:
        out.ablations = Ablations(done.pop("theory/ablations")[1])
    sets: dict[str, dict[str, list[Result]]] = {}
    for name, (section, result) in done.items():
        sets.setdefault(section, {}).setdefault(name.split("/")[1], []).append(result)
    for section in ("patch", "clean", "control", "official_patch"):
        if sections is None or section in sections:
            setattr(out, section, CifarSet(sets.get(section, {})))
    return out
