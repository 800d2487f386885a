"""Regime checks: the state a claim is about, measured before its verdict is given.

A claim about minimisers says nothing about a network stopped at 50% train accuracy; a claim about generalisation
needs a network that learned. Each chapter states the conditions its claim needs as `Condition`s, measures them, and
passes its verdict through `Regime.verdict`, which turns it into "inconclusive at this scale" (with the measured
reason) when a condition fails."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from repro.fmt import number

INCONCLUSIVE = "inconclusive at this scale"


@dataclass(frozen=True)
class Condition:
    """One measured requirement: `name` (what was measured), `measured`, and the `need` it was checked against."""

    name: str
    measured: float
    need: str
    ok: bool

    @property
    def text(self) -> str:
        return f"{self.name} {number(self.measured)} (needs {self.need})"


def at_least(name: str, measured: float, threshold: float) -> Condition:
    """`measured` >= `threshold`; NaN (not measured) fails."""
    m = float(measured)
    return Condition(name, m, f"≥ {number(float(threshold))}", math.isfinite(m) and m >= threshold)


def at_most(name: str, measured: float, threshold: float) -> Condition:
    """`measured` <= `threshold`; NaN (not measured) fails."""
    m = float(measured)
    return Condition(name, m, f"≤ {number(float(threshold))}", math.isfinite(m) and m <= threshold)


@dataclass
class Regime:
    """The conditions a claim needs (`needs`, in words) for one subject (a network, a run pair)."""

    subject: str
    needs: str
    conditions: list[Condition] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.conditions) and all(c.ok for c in self.conditions)

    @property
    def failed(self) -> list[Condition]:
        return [c for c in self.conditions if not c.ok]

    @property
    def reason(self) -> str:
        """The failed conditions in one clause, or "" when the regime was reached."""
        return "; ".join(c.text for c in self.failed) if self.conditions else "nothing was measured"

    def verdict(self, verdict: str) -> str:
        """`verdict` when the regime was reached, else "inconclusive at this scale"."""
        return verdict if self.ok else INCONCLUSIVE

    def sentence(self) -> str:
        """A sentence for the verdict's text: what the claim needs and whether this run reached it."""
        if self.ok:
            return (f"{self.subject} reached the regime the claim needs ({self.needs}): "
                    + ", ".join(c.text for c in self.conditions) + ".")
        return f"{self.subject} did not reach the regime the claim needs ({self.needs}): {self.reason}."
