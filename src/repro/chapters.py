"""The book's chapters, in book order: each a jupytext source `book/chapters/NAME.py` backed by the experiment
package `repro.experiments.NAME` (its `Params`, `units`, `run`, `verdicts`)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repro.params import ConfigError, Params
from repro.store import project_root


@dataclass(frozen=True)
class Chapter:
    name: str
    title: str

    @property
    def params(self) -> type[Params]:
        return importlib.import_module(f"repro.experiments.{self.name}").Params

    @property
    def source(self) -> Path:
        return project_root() / "book" / "chapters" / f"{self.name}.py"


# In book order.
CHAPTERS = {c.name: c for c in [
    Chapter("sharp_minima", "Sharp minima: small vs large batch, the sharpness metric and the 1-D interpolation"),
    Chapter("catapult", "The catapult phase: large learning rates, a loss spike and a flatter minimum"),
    Chapter("intrinsic_lr", "The intrinsic learning rate: scale invariance, weight decay and equilibrium"),
    Chapter("learning_order", "Learning order: a large initial learning rate, a small one, and noise"),
    Chapter("convex", "A convex counterexample: early stopping and the learning-rate schedule"),
    Chapter("noise_scale", "Which single quantity predicts generalization: lr / B, lr x wd, or lr x lambda0?"),
]}


def get_chapter(name: str) -> Chapter:
    if name not in CHAPTERS:
        raise ConfigError(f"Unknown chapter {name!r}; choose one of {', '.join(CHAPTERS)} "
                          f"(see `python -m repro list`).")
    return CHAPTERS[name]


def resolve(name: str, preset: str = "book", overrides: dict[str, Any] | None = None) -> Params:
    """The chapter's validated parameters; raises ConfigError before anything runs."""
    return get_chapter(name).params.resolve(preset, overrides)
