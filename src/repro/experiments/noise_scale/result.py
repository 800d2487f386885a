"""The capstone's result, typed: the grid's runs and the analysis of them, read the same way from a book-scale
run and from recorded paper-scale units. Verdicts and figures read these, never the JSON."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from repro.experiments.noise_scale.analysis import BASELINE, CANDIDATES, LEARNED_TRAIN_ACC, mean_and_se
from repro.experiments.noise_scale.point import EDGE
from repro.store import Result


def _pick(cls: type, row: dict[str, Any], **extra: Any):
    """An instance of the dataclass `cls` from the fields of `row` it names (the stored dicts hold more)."""
    return cls(**{f.name: row[f.name] for f in dataclasses.fields(cls) if f.name not in extra}, **extra)


@dataclass(frozen=True)
class Run:
    """One run of the grid (one stored `noise_scale_point` result)."""

    lr: float
    batch_size: int
    weight_decay: float
    epochs: int
    seed: int
    test_acc: float
    train_acc: float
    diverged: bool
    lambda0: float  # top eigenvalue of the minibatch cross-entropy Hessian at initialisation
    noise_scale: float  # lr / batch_size
    intrinsic_lr: float  # lr * weight_decay
    lr_lambda0: float
    steps: int
    equilibrium_times: float  # steps * lr * weight_decay: the run's length in units of 1 / (lr * wd)
    key: str
    wall_time_s: float
    device: str
    commit: str

    @property
    def learned(self) -> bool:
        return self.train_acc >= LEARNED_TRAIN_ACC.value and not self.diverged


@dataclass(frozen=True)
class Subset:
    n: int
    spearman: float
    collapse: float


@dataclass(frozen=True)
class Candidate:
    """One quantity's statistics on the learned runs its claim is about (`n` of them)."""

    name: str
    label: str
    n: int
    spearman: float
    collapse: float
    spearman_all: float  # on every run of the grid, diverged ones included
    collapse_all: float
    collapse_by_seed: list[float]  # on each seed's grid
    baseline_by_seed: list[float]  # the learning rate alone, on the same runs of each seed's grid
    subsets: dict[str, Subset]
    worst_group: dict[str, float] | None = None

    @property
    def vs_baseline(self) -> tuple[float, float]:
        """The collapse score's margin over the learning rate alone: mean over the seed grids and its SE."""
        return mean_and_se([a - b for a, b in zip(self.collapse_by_seed, self.baseline_by_seed, strict=True)])


@dataclass(frozen=True)
class Window:
    """eta * lambda0 as a window: learned runs above the edge 2 against learned runs below it."""

    n_inside: int
    n_below: int
    acc_inside: float
    acc_below: float
    gain: float  # acc_inside - acc_below over all seeds' runs
    gain_by_seed: list[float]
    above_edge: int  # runs that started above the edge, learned or not
    diverged_above_edge: int
    top: float  # the largest eta * lambda0 among learned runs: where the window ends on this grid
    best_lr_lambda0: float  # eta * lambda0 of the best setting (mean test accuracy over seeds)
    spearman: float  # the old statistic, for comparison: a window is not a monotone trend

    @property
    def gain_over_seeds(self) -> tuple[float, float]:
        return mean_and_se(self.gain_by_seed)

    @property
    def best_in_window(self) -> bool:
        return self.best_lr_lambda0 > EDGE


@dataclass(frozen=True)
class Seeds:
    seeds: int  # runs per setting
    settings: int
    learned_settings: int  # settings whose runs all learned
    seed_sd: float  # test-accuracy SD between runs that differ only in their seed (pooled)
    between_sd: float  # SD of the learned settings' mean test accuracies
    signal_over_seed: float


@dataclass(frozen=True)
class Grid:
    runs: list[Run]
    points: int
    learned: int
    diverged: int
    equilibrated: int  # learned runs with weight decay, longer than 1 / (lr * wd) steps
    test_acc_min: float
    test_acc_max: float
    learned_test_acc_range: float
    candidates: dict[str, Candidate]  # the three quantities
    baseline: Candidate  # the learning rate alone
    window: Window
    seeds: Seeds
    best: dict[str, float]  # the best setting and its mean test accuracy over seeds

    @property
    def best_candidate(self) -> Candidate:
        return max(self.candidates.values(), key=lambda c: c.collapse if c.collapse == c.collapse else -1e9)


@dataclass(frozen=True)
class NoiseScaleResult:
    """The chapter (None where the grid was not computed) and its stored merge, for provenance."""

    stored: Result | None = None
    grid: Grid | None = None

    @classmethod
    def from_stored(cls, r: Result) -> NoiseScaleResult:
        a = r.data["analysis"]

        def cand(c: dict) -> Candidate:
            return _pick(Candidate, c, subsets={k: Subset(**v) for k, v in c["subsets"].items()},
                         worst_group=c.get("worst_group"))

        grid = _pick(Grid, a, runs=[_pick(Run, row) for row in r.data["rows"]],
                     candidates={k: cand(a["candidates"][k]) for k in CANDIDATES},
                     baseline=cand(a["candidates"][BASELINE]), window=_pick(Window, a["window"]),
                     seeds=_pick(Seeds, a["seeds"]))
        return cls(r, grid)
