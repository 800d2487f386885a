"""The small typed pieces the chapter's views are built from (each section's view, in its compute module, wraps
the unit's `repro.store.Result`, whose JSON is unchanged): fits, a layer's equilibrium over a window, accuracy over
evaluations, a number's spread over seeds, the tracked curves of a run."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class Fit:
    """A least-squares line in log-log: log y = slope log x + intercept (NaN where fewer than 2 points)."""

    slope: float
    intercept: float
    slope_se: float
    points: int

    @classmethod
    def of(cls, d: dict[str, Any]) -> Fit:
        return cls(float(d["slope"]), float(d["intercept"]), float(d["slope_se"]), int(d["points"]))


@dataclasses.dataclass(frozen=True)
class LayerEq:
    """One scale-invariant layer measured over a window, against the predictions: angular update against
    sqrt(2 lambda_e / (1 + mu)), |w|^2 against the norm recursion's fixed point with the G^2 measured there."""

    group: str
    angular: float
    pred_angular: float
    sq_norm: float
    pred_sq_norm: float
    effective_lr: float
    grad_sq: float
    radial: float  # mean cos(w, grad): 0 for a scale-invariant layer
    radial_push: float  # 2 |radial| / angular: the radial term of the norm's update against the one the theory keeps

    @property
    def angular_error(self) -> float:
        return abs(self.angular / self.pred_angular - 1)

    @property
    def norm_error(self) -> float:
        return abs(self.sq_norm / self.pred_sq_norm - 1)


@dataclasses.dataclass(frozen=True)
class Window:
    """The layers' equilibrium over steps (start, end] at (lr, weight_decay)."""

    start: int
    end: int
    lr: float
    weight_decay: float
    layers: list[LayerEq]

    @classmethod
    def of(cls, d: dict[str, Any]) -> Window:
        return cls(int(d["start"]), int(d["end"]), float(d["lr"]), float(d["weight_decay"]),
                   [LayerEq(**g) for g in d["groups"]])

    def layer(self, group: str) -> LayerEq:
        return next(g for g in self.layers if g.group == group)

    @property
    def max_angular_error(self) -> float:
        return max(g.angular_error for g in self.layers)

    @property
    def max_norm_error(self) -> float:
        return max(g.norm_error for g in self.layers)


@dataclasses.dataclass(frozen=True)
class Acc:
    """Test accuracy over a window of evaluations: best, last, mean, and the step of the best."""

    best: float
    final: float
    mean: float
    best_step: int

    @classmethod
    def of(cls, d: dict[str, Any] | None) -> Acc | None:
        return None if d is None else cls(float(d["best"]), float(d["final"]), float(d["mean"]), int(d["best_step"]))


@dataclasses.dataclass(frozen=True)
class Spread:
    """One number measured at several seeds (the reference run of a comparison): its mean and standard deviation.
    A difference between two single-seed runs has standard deviation sqrt(2) x `sd`."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def sd(self) -> float:
        return float(np.std(self.values, ddof=1)) if self.n > 1 else math.nan


def spreads(windows: list[dict[str, Any]], key: str, log: bool = True) -> dict[str, Spread]:
    """Per layer, the spread of `key` over summary windows of the same run at several seeds (log: of its log)."""
    f = math.log if log else float
    groups = [g["group"] for g in windows[0]["groups"]]
    return {name: Spread(tuple(f(next(g[key] for g in w["groups"] if g["group"] == name)) for w in windows))
            for name in groups}


@dataclasses.dataclass(frozen=True)
class Trace:
    """What NormTracker recorded, per window of steps: the step at its end, lr, weight decay, and per layer |w|^2,
    the RMS angular update, the mean G^2 and the effective LR lr / |w|^2 (whichever were stored)."""

    step: np.ndarray
    lr: np.ndarray | None
    weight_decay: np.ndarray | None
    sq_norm: dict[str, np.ndarray]
    angular: dict[str, np.ndarray]
    grad_sq: dict[str, np.ndarray]
    radial: dict[str, np.ndarray]
    effective_lr: dict[str, np.ndarray]

    @classmethod
    def of(cls, d: dict[str, Any]) -> Trace:
        arr = lambda k: np.asarray(d[k], float) if k in d else None  # noqa: E731
        per = lambda k: {g: np.asarray(v, float) for g, v in d.get(k, {}).items()}  # noqa: E731
        return cls(np.asarray(d["step"]), arr("lr"), arr("weight_decay"), per("sq_norm"), per("angular"),
                   per("grad_sq"), per("radial"), per("effective_lr"))

    @property
    def groups(self) -> list[str]:
        return list(next(x for x in (self.sq_norm, self.angular, self.effective_lr) if x))


@dataclasses.dataclass(frozen=True)
class History:
    """Evaluations of a run: step, test accuracy and train accuracy (on a fixed training subset)."""

    step: np.ndarray
    test_acc: np.ndarray
    train_acc: np.ndarray

    @classmethod
    def of(cls, d: dict[str, Any]) -> History:
        return cls(np.asarray(d["step"]), np.asarray(d["test_acc"], float), np.asarray(d["train_acc"], float))


@dataclasses.dataclass(frozen=True)
class NetRun:
    """One training run: its evaluations and its tracked layers."""

    history: History
    trace: Trace

    @classmethod
    def of(cls, d: dict[str, Any]) -> NetRun:
        return cls(History.of(d["history"]), Trace.of(d["norms"]))
