"""The exact analysis (sections 1 and 4 of the chapter): the range of the population loss on a train level set,
and how much more a gradient step contracts the sharp train direction than the flat one, relative to gradient
flow. Closed forms and root finding only; no simulation."""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg
import scipy.optimize

# The report's two cases (course report, section 4.2): on the train level set L_n = eps of the 3-sample example
# with counts (2, 1), the population loss ranges from 0.75 eps to 1.5 eps.
REPORT_LEVEL_SET_RANGE = (0.75, 1.5)
REPORT_LEVEL_SET_SOURCE = "course report, section 4.2"

def level_set_range(train_curvature: np.ndarray, population_curvature: np.ndarray) -> tuple[float, float]:
    """Min and max of L_D / L_n over the points with a given train excess loss L_n = eps.

    Both losses are quadratics around the same minimiser, e^T A e, so the ratio is a generalised Rayleigh
    quotient and its range is the extreme generalised eigenvalues of (A_pop, A_train).
    """
    w = scipy.linalg.eigh(population_curvature, train_curvature, eigvals_only=True)
    return float(w[0]), float(w[-1])


def discrete_example(n: int = 3) -> list[dict]:
    """x uniform on {(1,0), (0,1)}, y = <beta*, x>, n samples: for each count split (n1, n2), its probability
    and the range of population loss / eps over the train level set L_n = eps. Population curvature is I/2."""
    rows = []
    for n1 in range(n + 1):
        n2 = n - n1
        prob = math.comb(n, n1) / 2**n
        if n1 == 0 or n2 == 0:
            lo = hi = math.inf  # one coordinate never appears: the train loss does not constrain it
        else:
            lo, hi = level_set_range(np.diag([n1 / n, n2 / n]), np.eye(2) / 2)
        rows.append({"n1": n1, "n2": n2, "probability": prob, "min_pop_over_eps": lo, "max_pop_over_eps": hi,
                     # gradient flow (small LR) leaves the residual along the flattest train direction
                     "small_lr_limit": 0.5 / (min(n1, n2) / n) if n1 and n2 else math.inf})
    return rows


def contraction_bias(eta: float | np.ndarray, s_max: np.ndarray, s_min: np.ndarray) -> np.ndarray:
    """How much more a gradient-descent step at rate eta contracts the sharp train direction than the flat one,
    relative to gradient flow: log|1 - 2 eta s_max| / log|1 - 2 eta s_min| divided by s_max / s_min (gradient
    flow's ratio of decay rates). Above 1 the step leaves relatively more error in the flat direction than
    gradient flow does, below 1 relatively more in the sharp one (0 where the sharp one is not contracted)."""
    with np.errstate(divide="ignore"):
        return (np.log(np.abs(1 - 2 * eta * s_max)) / np.log(np.abs(1 - 2 * eta * s_min))) / (s_max / s_min)


def bias_crossover(s_max: float, s_min: float) -> float:
    """The rate at which contraction_bias crosses 1 (between 1 / (2 s_max), where it is infinite, and 1 / s_max,
    where it is 0): below it a large step ends in the flat direction more than gradient flow, above it less."""
    f = lambda eta: float(contraction_bias(eta, np.array(s_max), np.array(s_min))) - 1  # noqa: E731
    return float(scipy.optimize.brentq(f, (1 + 1e-9) / (2 * s_max), (1 - 1e-9) / s_max))


def crossover_eta_trace(ratio: float) -> float:
    """The crossover in the dimensionless units eta * tr(S) for S with eigenvalues (ratio, 1): it depends on the
    curvature ratio alone (contraction_bias is unchanged when S is scaled and eta scaled inversely)."""
    return bias_crossover(ratio, 1.0) * (ratio + 1.0)


def crossover_floor() -> float:
    """The crossover's limit in eta * tr(S) as the curvature ratio r grows: with v = eta * s_max fixed and r -> oo,
    log|1 - 2v| / (r log(1 - 2v / r)) -> log|1 - 2v| / (-2v), which is 1 where 2v - 1 = exp(-2v), and
    eta * tr(S) -> v. (As r -> 1 the crossover tends to eta * tr(S) = 1, where both directions contract equally.)"""
    return float(scipy.optimize.brentq(lambda v: 2 * v - 1 - math.exp(-2 * v), 0.5, 1.0))
