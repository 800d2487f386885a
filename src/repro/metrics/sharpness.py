"""Keskar et al.'s sharpness (Metric 2.1): the largest relative increase of the loss in a box around x.

    phi_{x,f}(eps, A) = 100 * (max_{y in C_eps} f(x + A y) - f(x)) / (1 + f(x)),
    C_eps = { y in R^p : |y_i| <= eps (|(A^+ x)_i| + 1) },

with A = I (the full space, p = n) or a random n x p matrix (a random p-dimensional subspace). The maximum is
taken inexactly, as in the paper, by a few iterations of L-BFGS-B (SciPy) on -f with the box as bounds, so the
value is a lower bound on the true box maximum.

Everything is a function of a closure `loss(theta)` of a flat parameter vector (see metrics.hessian.functional),
so it serves any model and loss; the caller decides what f is (which data, which BatchNorm mode).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

import numpy as np
import scipy.optimize
import torch

Closure = Callable[[torch.Tensor], torch.Tensor]


@dataclasses.dataclass
class Sharpness:
    """The metric's value and what it cost: `evaluations` loss-and-gradient evaluations in `seconds`."""

    value: float
    base_loss: float
    max_loss: float
    eps: float
    dim: int
    iterations: int
    evaluations: int
    seconds: float

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def random_subspace(n: int, p: int, seed: int = 0, *, device: torch.device | str = "cpu",
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A random n x p matrix with i.i.d. N(0, 1) entries, from a CPU generator (the same on every device)."""
    g = torch.Generator().manual_seed(seed)
    # generated in row blocks so that a large n never needs a float64 copy
    blocks = [torch.randn(min(1 << 18, n - i), p, generator=g).to(device=device, dtype=dtype)
              for i in range(0, n, 1 << 18)]
    return torch.cat(blocks)


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
    x = x.detach()
    half = box_bounds(x, eps, subspace)
    start_time = time.perf_counter()
    if value_and_grad:
        base = float(loss(x)[0])
    else:
        with torch.no_grad():
            base = float(loss(x))
    best = [base]
    count = [0]

    def negative(y: np.ndarray) -> tuple[float, np.ndarray]:
        count[0] += 1
        step = torch.as_tensor(y, dtype=x.dtype, device=x.device)
        if subspace is not None:
            step = subspace @ step
        if value_and_grad:
            value, grad = loss(x + step)
        else:
            theta = (x + step).requires_grad_(True)
            value = loss(theta)
            (grad,) = torch.autograd.grad(value, theta)
        if subspace is not None:
            grad = subspace.T @ grad
        v = float(value.detach())
        if math.isfinite(v):
            best[0] = max(best[0], v)
        return -v, -grad.detach().to(torch.float64).cpu().numpy()

    if start == "zero":
        y0 = np.zeros_like(half)
    elif start == "random":
        y0 = np.random.default_rng(seed).uniform(-half, half)
    else:
        raise ValueError(f"start must be 'zero' or 'random', got {start!r}.")
    res = scipy.optimize.minimize(negative, y0, jac=True, method="L-BFGS-B",
                                  bounds=scipy.optimize.Bounds(-half, half), options={"maxiter": maxiter})
    seconds = time.perf_counter() - start_time
    return Sharpness(value=100 * (best[0] - base) / (1 + base), base_loss=base, max_loss=best[0], eps=eps,
                     dim=len(half), iterations=int(res.nit), evaluations=count[0], seconds=seconds)
