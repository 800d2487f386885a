"""Keskar et al.'s sharpness (Metric 2.1): the largest relative increase of the loss in a box around x.

    phi_{x,f}(eps, A) = 100 * (max_{y in C_eps} f(x + A y) - f(x)) / (1 + f(x)),
    C_eps = { y in R^p : |y_i| <= eps (|(A^+ x)_i| + 1) },

with A = I (the full space, p = n) or a random n x p matrix (a random p-dimensional subspace). The maximum is
taken inexactly, as in the paper, by a few iterations of L-BFGS-B (SciPy's) on -f with the box as bounds, so the
value is a lower bound on the true box maximum.

The paper does not say how A's columns are scaled. The box's "+1" term is in the coordinates y, so the scale
decides how far the box reaches in parameter space: with i.i.d. N(0, 1) entries every column has norm about
sqrt(n), and for a network with a million parameters the box reaches about a thousand times further than with unit
columns, further even than the full-space box. `random_subspace` therefore scales each column to unit length, so
that one unit of y_i moves the parameters by one unit, as one unit of a coordinate does in the full space.

Next to the value, each measurement keeps what it rests on: the L-BFGS-B iterations (0 means it stopped at its
start, so a zero metric is that, not a flat point), the loss evaluations, the box's reach in parameter space, the
gradient norm at x, and the metric's first-order part: the largest value the loss's linear term f(x) + g.(A y)
reaches over the box, eps sum_i |(A^T g)_i| (|(A^+ x)_i| + 1), scaled as the metric is. At a minimiser it is near
0; where it is a large share of the metric, the metric measures the slope of the point, not the sharpness of a
minimum.

Everything is a function of a closure `loss(theta)` of a flat parameter vector (see metrics.hessian.functional),
so it serves any model and loss; the caller decides what f is (which data, which BatchNorm mode).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

import numpy as np
import torch
from scipy.optimize import _lbfgsb

Closure = Callable[[torch.Tensor], torch.Tensor]


@dataclasses.dataclass
class Sharpness:
    """The metric's value, its first-order part, the norm of f's gradient at x, and what it cost: `iterations` of
    L-BFGS-B and `evaluations` of the loss and its gradient in `seconds`; `radius` is the L2 norm of A times the
    box's corner (how far the box reaches in parameter space, for orthogonal columns)."""

    value: float
    base_loss: float
    max_loss: float
    first_order: float
    grad_norm: float
    eps: float
    dim: int
    radius: float
    iterations: int
    evaluations: int
    seconds: float

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def random_subspace(n: int, p: int, seed: int = 0, *, device: torch.device | str = "cpu",
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A random n x p matrix with i.i.d. N(0, 1) entries from a CPU generator (the same on every device), each
    column scaled to unit length."""
    g = torch.Generator().manual_seed(seed)
    # generated in row blocks so that a large n never needs a float64 copy
    blocks = [torch.randn(min(1 << 18, n - i), p, generator=g).to(device=device, dtype=dtype)
              for i in range(0, n, 1 << 18)]
    a = torch.cat(blocks)
    return a / a.norm(dim=0, keepdim=True)


def box_bounds(x: torch.Tensor, eps: float, subspace: torch.Tensor | None = None) -> np.ndarray:
    """The half-widths eps (|(A^+ x)_i| + 1) of the box C_eps (A = I when subspace is None)."""
    if subspace is None:
        coords = x
    else:
        # A^+ x for a full-column-rank A (n >> p): least squares through the p x p normal equations, in float64
        # and in row blocks so that a large A is never copied whole
        p = subspace.shape[1]
        gram = torch.zeros(p, p, dtype=torch.float64, device=subspace.device)
        rhs = torch.zeros(p, dtype=torch.float64, device=subspace.device)
        for i in range(0, subspace.shape[0], 1 << 18):
            block = subspace[i:i + (1 << 18)].to(torch.float64)
            gram += block.T @ block
            rhs += block.T @ x[i:i + (1 << 18)].to(torch.float64)
        coords = torch.linalg.solve(gram, rhs)
    return (eps * (coords.abs().to(torch.float64) + 1)).cpu().numpy()


def lbfgsb(fun: Callable[[np.ndarray], tuple[float, np.ndarray]], x0: np.ndarray, lower: np.ndarray,
           upper: np.ndarray, maxiter: int, maxcor: int = 10, ftol: float = 2.2204460492503131e-09,
           gtol: float = 1e-5, maxls: int = 20) -> tuple[np.ndarray, int, int]:
    """SciPy's L-BFGS-B (`scipy.optimize._lbfgsb.setulb`) on `fun(x) -> (f, gradient)` within [lower, upper],
    driven exactly as `scipy.optimize.minimize(method="L-BFGS-B")` drives it (same defaults, same iterates),
    except that the bounds go in as arrays: SciPy's wrapper converts them with Python loops over every
    coordinate, seconds per call for a network's million parameters. Returns (x, iterations, evaluations)."""
    n = len(x0)
    x = np.clip(np.asarray(x0, dtype=np.float64), lower, upper)
    nbd = np.full(n, 2, dtype=np.int32)  # every coordinate has both bounds
    lower, upper = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
    wa = np.zeros(2 * maxcor * n + 5 * n + 11 * maxcor * maxcor + 8 * maxcor, np.float64)
    iwa = np.zeros(3 * n, np.int32)
    task, ln_task, lsave = np.zeros(2, np.int32), np.zeros(2, np.int32), np.zeros(4, np.int32)
    isave, dsave = np.zeros(44, np.int32), np.zeros(29, np.float64)
    last_x, (f, g) = x.copy(), fun(x)  # SciPy evaluates at x0 first and serves repeated points from a cache
    evaluations, iterations = 1, 0
    factr = ftol / np.finfo(float).eps
    while True:
        g = np.asarray(g, dtype=np.float64)
        _lbfgsb.setulb(maxcor, x, lower, upper, nbd, np.float64(f), g, factr, gtol, wa, iwa, task, lsave, isave,
                       dsave, maxls, ln_task)
        if task[0] == 3:  # FG: the loss and its gradient at x
            if not np.array_equal(x, last_x):
                last_x, (f, g) = x.copy(), fun(x)
                evaluations += 1
        elif task[0] == 1:  # NEW_X: an iteration is done
            iterations += 1
            if iterations >= maxiter:
                task[0], task[1] = 5, 504  # STOP: the iteration limit
        else:
            return x, iterations, evaluations


def sharpness(loss: Closure, x: torch.Tensor, eps: float, *, subspace: torch.Tensor | None = None,
              maxiter: int = 10, start: str = "zero", seed: int = 0, value_and_grad: bool = False) -> Sharpness:
    """Metric 2.1 of `loss` at the flat parameter vector `x`.

    `subspace` is A (n x p) or None for the full space. `maxiter` L-BFGS-B iterations (the paper: 10) maximise
    f(x + A y) over the box, from y = 0 (`start="zero"`) or from a uniform random point of the box
    (`start="random"`, seeded); the best loss seen at any evaluated point (all lie in the box) is the maximum.
    With `value_and_grad`, `loss(theta)` returns (value, gradient) itself (e.g. accumulated over chunks of a
    large data set); otherwise the gradient comes from autograd.
    """
    if eps <= 0:
        raise ValueError(f"eps must be > 0, got {eps}.")
    if subspace is not None and (subspace.ndim != 2 or subspace.shape[0] != x.numel()):
        raise ValueError(f"subspace must be an n x p matrix with n = {x.numel()}, got {tuple(subspace.shape)}.")
    if start not in ("zero", "random"):
        raise ValueError(f"start must be 'zero' or 'random', got {start!r}.")
    x = x.detach()
    half = box_bounds(x, eps, subspace)
    start_time = time.perf_counter()
    evaluations = [0]

    def evaluate(theta: torch.Tensor) -> tuple[float, torch.Tensor]:
        evaluations[0] += 1
        if value_and_grad:
            value, grad = loss(theta)
        else:
            theta = theta.clone().requires_grad_(True)
            value = loss(theta)
            (grad,) = torch.autograd.grad(value, theta)
        return float(value.detach()), grad.detach()

    def project(grad: torch.Tensor) -> torch.Tensor:
        return grad if subspace is None else subspace.T @ grad

    base, full_grad = evaluate(x)
    grad0 = project(full_grad)
    g0 = grad0.to(torch.float64).abs().cpu().numpy()
    first_order = 100 * float(g0 @ half) / (1 + base)
    col_norms = 1.0 if subspace is None else torch.linalg.vector_norm(subspace, dim=0).double().cpu().numpy()
    radius = float(np.sqrt(((half * col_norms) ** 2).sum()))
    best = [base]

    def negative(y: np.ndarray) -> tuple[float, np.ndarray]:
        if not y.any():  # the start point of a zero start: already evaluated
            value, grad = base, grad0
        else:
            step = torch.as_tensor(y, dtype=x.dtype, device=x.device)
            value, grad = evaluate(x + (step if subspace is None else subspace @ step))
            grad = project(grad)
        if math.isfinite(value):
            best[0] = max(best[0], value)
        return -value, -grad.to(torch.float64).cpu().numpy()

    y0 = np.zeros_like(half) if start == "zero" else np.random.default_rng(seed).uniform(-half, half)
    _, iterations, _ = lbfgsb(negative, y0, -half, half, maxiter)
    return Sharpness(value=100 * (best[0] - base) / (1 + base), base_loss=base, max_loss=best[0],
                     first_order=first_order, grad_norm=float(full_grad.norm()), eps=eps, dim=len(half),
                     radius=radius, iterations=iterations,
                     evaluations=evaluations[0], seconds=time.perf_counter() - start_time)
