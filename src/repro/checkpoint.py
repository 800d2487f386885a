"""Checkpoints for runs that outlast one sitting: saved atomically every few epochs, outside the tracked
results, and removed once the run's result is stored. A rerun of the same config resumes from the last one."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from repro.store import results_dir


def checkpoint_dir() -> Path | None:
    """`REPRO_CHECKPOINT_DIR`: set by a campaign for the unit it runs, so that runs which may outlast a GPU
    window checkpoint there and resume in the next one (None outside a campaign)."""
    env = os.environ.get("REPRO_CHECKPOINT_DIR")
    return Path(env) if env else None


class Checkpoint:
    def __init__(self, experiment: str, key: str, every: int = 5, root: Path | str | None = None):
        if every < 1:
            raise ValueError(f"Checkpoint interval must be >= 1 epoch, got {every}.")
        self.every = every
        self.path = Path(root or checkpoint_dir() or results_dir() / "checkpoints") / experiment / f"{key}.pt"

    def due(self, epoch: int) -> bool:
        """Whether to save after this epoch (1-based)."""
        return epoch % self.every == 0

    def save(self, state: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            torch.save(state, tmp)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self, map_location: torch.device | str = "cpu") -> dict[str, Any] | None:
        """The last saved state, or None (no checkpoint, or an unreadable one, which is reported)."""
        if not self.path.exists():
            return None
        try:
            return torch.load(self.path, map_location=map_location, weights_only=False)
        except Exception as err:  # a damaged file: start over rather than resume from garbage
            warnings.warn(f"Ignoring unreadable checkpoint {self.path} ({err}); starting over.", stacklevel=2)
            return None

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
