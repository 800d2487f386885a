"""Typed views over the chapter's stored results: what figures and verdicts read. The store's JSON is unchanged;
these classes only name its parts and compute the paired quantities over seeds."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from repro.store import Result

REGIMES = ("small_batch", "large_batch")
# Metric 2.1's four variants: (space, box size) as stored, "large_eps" being `sharpness_eps`
VARIANTS = (("full", "large_eps"), ("full", "small_eps"), ("subspace", "large_eps"), ("subspace", "small_eps"))


def value(x: Any) -> float:
    """A stored Metric 2.1 entry: a dict (value with its cost) or a plain number."""
    return float(x["value"]) if isinstance(x, dict) else float(x)


def geometric_mean_ratio(pairs: list[tuple[float, float]]) -> float:
    """exp(mean log(b / a)) over paired (a, b), with values floored at 1e-12 (a zero metric)."""
    return float(np.exp(np.mean([np.log(max(b, 1e-12) / max(a, 1e-12)) for a, b in pairs])))


@dataclasses.dataclass(frozen=True)
class NetComparison:
    """One network's small- vs large-batch comparison (the stored `sharp_minima_net` result)."""

    net: str
    result: Result

    @property
    def metrics(self) -> dict[str, Any]:
        return self.result.metrics

    @property
    def config(self) -> dict[str, Any]:
        return self.result.config

    @property
    def runs(self) -> list[dict]:
        return self.result.data["runs"]

    def of(self, regime: str) -> list[dict]:
        """The runs of one batch regime, in seed order."""
        return [r for r in self.runs if r["regime"] == regime]

    @property
    def pairs(self) -> list[tuple[dict, dict]]:
        """(SB run, LB run) of each seed: both start from the same initialisation."""
        return list(zip(self.of("small_batch"), self.of("large_batch"), strict=True))

    @property
    def seeds(self) -> int:
        return len(self.pairs)

    @property
    def sizes(self) -> dict[str, int]:
        return self.result.data["sizes"]

    @property
    def interpolation(self) -> list[dict]:
        return self.result.data["interpolation"]

    @property
    def rescaling(self) -> list[dict] | None:
        return self.result.data.get("rescaling")

    @property
    def n_params(self) -> int:
        return self.result.data["n_params"]

    @property
    def test_gaps(self) -> list[float]:
        """SB minus LB test accuracy (points), per seed."""
        return [a["test_acc"] - b["test_acc"] for a, b in self.pairs]

    @property
    def test_gap(self) -> tuple[float, float]:
        """Mean and standard deviation over seeds of the paired test gap (points)."""
        return tuple(self.metrics["test_gap"])

    def variant_ratio(self, space: str, eps: str) -> float:
        """LB / SB of one Metric 2.1 variant: the geometric mean over seeds of the paired ratios."""
        key = f"{space}_{eps}"
        return geometric_mean_ratio([(value(a[key]), value(b[key])) for a, b in self.pairs])

    def log_ratios(self, space: str, eps: str) -> list[float]:
        """log(LB / SB) of one Metric 2.1 variant, per seed."""
        key = f"{space}_{eps}"
        return [math.log(max(value(b[key]), 1e-12) / max(value(a[key]), 1e-12)) for a, b in self.pairs]

    @property
    def variant_ratios(self) -> dict[tuple[str, str], float]:
        return {v: self.variant_ratio(*v) for v in VARIANTS}

    def mean(self, regime: str, key: str) -> float:
        return float(self.metrics[f"{regime}_{key}"])

    def std(self, regime: str, key: str) -> float:
        return float(self.metrics[f"{regime}_{key}_std"])

    def worst(self, regime: str, key: str, worst=min) -> float:
        return float(worst(r[key] for r in self.of(regime)))


@dataclasses.dataclass(frozen=True)
class Optimizers:
    """F1 with SGD and Adagrad, small vs large batch (the course report's extension)."""

    result: Result

    @property
    def runs(self) -> list[dict]:
        return self.result.data["runs"]


@dataclasses.dataclass(frozen=True)
class Hoffer:
    """Hoffer et al.'s runs on F1, one stored result per seed each. `results`, with Keskar's Adam: small batch
    ("small_batch"), large batch after the same epochs ("large_batch") and given the small batch's number of
    updates ("large_batch_long"). `recipe`, with their SGD regime: small batch, large batch after the same epochs,
    the large batch with the scaled rate and ghost batch norm after the same epochs ("large_batch_lr_gbn") and with
    their full recipe ("large_batch_recipe")."""

    results: tuple[Result, ...]
    recipe: tuple[Result, ...] = ()

    def of(self, regime: str) -> list[dict]:
        """The Adam runs of one regime, in seed order."""
        return [r for res in self.results for r in res.data["runs"] if r["regime"] == regime]

    def recipe_of(self, regime: str) -> list[dict]:
        """The SGD runs of one regime, in seed order."""
        return [r for res in self.recipe for r in res.data["runs"] if r["regime"] == regime]

    @property
    def per_seed(self) -> list[dict[str, dict]]:
        """Each seed's Adam runs by regime."""
        return [{r["regime"]: r for r in res.data["runs"]} for res in self.results]

    @property
    def sizes(self) -> dict[str, int]:
        return self.results[0].data["sizes"]


@dataclasses.dataclass(frozen=True)
class SharpMinimaResult:
    """The chapter's result, one field per page section; None where the section was not computed."""

    config: dict[str, Any]
    F1: NetComparison | None = None
    C1: NetComparison | None = None
    C2: NetComparison | None = None
    C3: NetComparison | None = None
    C4: NetComparison | None = None
    optimizers: Optimizers | None = None
    hoffer: Hoffer | None = None

    @property
    def networks(self) -> list[NetComparison]:
        """The networks' comparisons present, in the paper's order."""
        return [n for n in (self.F1, self.C1, self.C2, self.C3, self.C4) if n is not None]

    def parts(self) -> dict[str, Result]:
        """Every stored result behind this one, by section (for the provenance table)."""
        out: dict[str, Result] = {n.net: n.result for n in self.networks}
        if self.optimizers is not None:
            out["optimizers"] = self.optimizers.result
        if self.hoffer is not None:
            out |= {f"hoffer, Adam, run {i}": r for i, r in enumerate(self.hoffer.results)}
            out |= {f"hoffer, recipe, run {i}": r for i, r in enumerate(self.hoffer.recipe)}
        return out
