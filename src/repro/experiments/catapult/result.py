"""What the catapult chapter's run() returns: its four sections, each a typed view over its stored result."""

from __future__ import annotations

import dataclasses

from repro.store import Result

from .eos import EosSection
from .linear import LinearSection
from .nets import NetsSection
from .uv import UvSection

SECTIONS = ("uv", "nets", "eos", "linear")  # in page order


@dataclasses.dataclass
class CatapultResult:
    """The chapter's sections; a section that was not asked for (run(sections=...)) is None."""

    uv: UvSection | None
    nets: NetsSection | None
    eos: EosSection | None
    linear: LinearSection | None

    def stored(self) -> dict[str, Result]:
        """Each computed section's stored result, by section name (for the provenance table)."""
        return {name: getattr(self, name).result for name in SECTIONS if getattr(self, name) is not None}
