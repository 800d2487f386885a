"""Verdicts as data: does a paper's claim hold in our runs, at the scale we ran?

Each chapter package has a `verdicts.py` with its thresholds as named `Threshold`s and a function
`verdicts(result) -> list[Verdict]`; the same function judges a book-scale run and recorded paper-scale units.
A `Verdict` carries the claim, its source, the paper's number, ours, the test that decided it, the regime it
checked and the status. The status is one of four words, and a verdict whose regime was not reached is
"inconclusive at this scale" whatever the test said: that is enforced here, not left to each chapter.

Chapters display verdicts with `repro.report.show_verdicts`, which also hands them to the book's build for the
front page's scoreboard and `verdicts.json`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from repro.fmt import number
from repro.regime import INCONCLUSIVE, Regime

REPRODUCED = "reproduced"
PARTLY = "partly reproduced"
NOT_REPRODUCED = "not reproduced"
STATUSES = (REPRODUCED, PARTLY, NOT_REPRODUCED, INCONCLUSIVE)


@dataclass(frozen=True)
class Threshold:
    """A named threshold of a verdict or a regime: its value, unit ("" for a pure number) and why this value."""

    value: float
    unit: str
    why: str

    def __str__(self) -> str:
        return number(self.value) + (f" {self.unit}" if self.unit and self.unit != "%" else self.unit)

    def __float__(self) -> float:
        return float(self.value)


def status_of(holds: bool | None, partly: bool = False) -> str:
    """The status of a claim from its test: holds (reproduced), fails but `partly` holds (partly reproduced),
    fails (not reproduced), or None/NaN when the test could not be evaluated (inconclusive)."""
    if holds is None or (isinstance(holds, float) and math.isnan(holds)):
        return INCONCLUSIVE
    return REPRODUCED if holds else PARTLY if partly else NOT_REPRODUCED


@dataclass(frozen=True)
class Verdict:
    """One claim judged on one result.

    `key` is stable across runs and scales (the scoreboard lines up the book-scale and the paper-scale verdict of
    a claim by it, and the build reports changes by it); `section` names the preset's section whose units the
    claim needs, so that the scoreboard can say how many of them are recorded at paper scale. `ours` and
    `paper` are short formatted numbers (a reader compares them side by side); `test` says what decided the
    status, with its thresholds; `sentence` is at most one more line for the reader.

    If `regime` is given and was not reached, the status becomes "inconclusive at this scale" and the sentence
    names the failed conditions: a claim about minimisers says nothing about a run that is not one."""

    key: str
    claim: str
    source: str
    paper: str
    ours: str
    test: str
    status: str
    sentence: str = ""
    regime: Regime | None = None
    section: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # machine-readable numbers for verdicts.json

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"verdict {self.key!r}: status {self.status!r} is not one of {', '.join(STATUSES)}")
        if not self.key or "/" in self.key:
            raise ValueError(f"verdict key {self.key!r} must be non-empty and hold no '/'")
        if self.regime is not None and not self.regime.ok and self.status != INCONCLUSIVE:
            object.__setattr__(self, "extra", {**self.extra, "status_if_regime_held": self.status})
            object.__setattr__(self, "status", INCONCLUSIVE)
            object.__setattr__(self, "sentence", self.regime.sentence())

    @property
    def regime_text(self) -> str:
        if self.regime is None:
            return "no regime condition (an exact or population quantity)"
        return ("reached: " if self.regime.ok else "not reached: ") + "; ".join(
            c.text for c in self.regime.conditions)

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("key", "claim", "source", "paper", "ours", "test", "status",
                                            "sentence", "section")}
        out["regime"] = None if self.regime is None else {
            "subject": self.regime.subject, "needs": self.regime.needs, "ok": self.regime.ok,
            "conditions": [dataclasses.asdict(c) for c in self.regime.conditions]}
        out["extra"] = self.extra
        return out
