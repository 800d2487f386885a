"""What a run's loss curve says, shared by the uv model, the networks and the deep linear nets: lazy (the loss only
goes down), catapult (it rises, then converges) or divergent; and the predicted edges, in units of 1 / lambda0
(sources: refs/papers.md sections 3 and 5)."""

from __future__ import annotations

import math

import numpy as np
import torch

THEORY_LR_CRIT = 2.0  # Lewkowycz et al. 2020: lazy/catapult edge, squared loss
THEORY_LR_MAX = 4.0  # Lewkowycz et al. 2020: uv model's divergence edge
PAPER_RELU_LR_MAX = 12.0  # Lewkowycz et al. 2020, ReLU nets, empirical (secondary summary; UNVERIFIED)
LOGISTIC_LR_CRIT = 8.0  # logistic loss at its minimum has curvature 1/4 of the squared loss's: 2 / (lambda0 / 4)
# A spike: the loss rises 1% above its lowest value so far (gradient descent in the lazy regime only lowers it).
# Diverged: the loss is non-finite or 1e4 times its start.
SPIKE = 1.01
DIVERGED = 1e4


def max_rise(loss: list[float] | torch.Tensor) -> float | torch.Tensor:
    """Largest ratio of the loss to its lowest value before (over the last axis of a tensor). Losses are
    floored at 1e-12 of the initial loss, so that rounding near an exact zero loss is not read as a rise."""
    loss = torch.as_tensor(loss, dtype=torch.float64)
    if loss.shape[-1] < 2:
        return 1.0 if loss.ndim == 1 else torch.ones(loss.shape[:-1], dtype=torch.float64)
    loss = loss + 1e-12 * loss[..., :1]
    rise = (loss[..., 1:] / torch.cummin(loss, -1).values[..., :-1]).nan_to_num(nan=math.inf).max(-1).values
    return float(rise) if loss.ndim == 1 else rise


def classify(rise: float, diverged: bool) -> str:
    """lazy (the loss only goes down), catapult (it rises, then converges) or divergent."""
    if diverged:
        return "divergent"
    return "catapult" if rise > SPIKE else "lazy"


def first_above(xs: list[float], flags: list[bool]) -> float:
    """The smallest x at which the flag is set (nan if never)."""
    hits = [x for x, f in zip(xs, flags, strict=True) if f]
    return min(hits) if hits else math.nan


def lr_grid(low_side: int, high_side: int, top: float, edge: float) -> np.ndarray:
    """eta * lambda0 values: `low_side` evenly from edge/2 to 0.95 edge (lazy side), `high_side` geometric
    from 1.1 edge to `top`."""
    return np.concatenate([np.linspace(edge / 2, 0.95 * edge, low_side), np.geomspace(1.1 * edge, top, high_side)])


def thin(curve: list[float], keep: int = 400) -> tuple[list[int], list[float]]:
    """At most `keep` points of a curve (all of the first 100 steps, then evenly spaced), with their steps."""
    n = len(curve)
    idx = sorted(set(range(min(n, 100))) | set(np.linspace(0, n - 1, min(n, keep)).round().astype(int).tolist()))
    return idx, [curve[i] for i in idx]
