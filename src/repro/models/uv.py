"""The uv model of Lewkowycz et al. (2020): f = v.u / sqrt(n) on one input x = 1, trained by gradient descent.

With u, v in R^n and the NTK lambda = (|u|^2 + |v|^2) / n, a gradient step on a loss l(f) with g = l'(f) is
    f'      = f - eta g lambda + eta^2 g^2 f / n
    lambda' = lambda - 4 eta g f / n + eta^2 g^2 lambda / n
which for the squared loss l = f^2 / 2 (target y = 0, g = f) is the paper's pair
    f' = (1 - eta lambda + eta^2 f^2 / n) f,   lambda' = lambda + (eta f^2 / n)(eta lambda - 4).
The logistic version takes the degenerate, non-separable data of Huang et al.: the same x with labels +1 and
-1 in equal numbers, l(f) = [log(1 + e^-f) + log(1 + e^f)] / 2, so g = tanh(f / 2) / 2 and l''(0) = 1/4.
"""

from __future__ import annotations

import math

import torch

LOSSES = ("mse", "logistic")


def loss_value(f: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "mse":
        return f**2 / 2
    return (torch.nn.functional.softplus(-f) + torch.nn.functional.softplus(f)) / 2


def loss_grad(f: torch.Tensor, loss: str) -> torch.Tensor:
    return f if loss == "mse" else torch.tanh(f / 2) / 2


def init(n: int, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` independent initialisations u, v ~ N(0, I_n), float64, shape (count, n)."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(count, n, generator=g, dtype=torch.float64),
            torch.randn(count, n, generator=g, dtype=torch.float64))


def f_and_lambda(u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    n = u.shape[-1]
    return (u * v).sum(-1) / math.sqrt(n), (u.pow(2).sum(-1) + v.pow(2).sum(-1)) / n


def trajectory(f0: torch.Tensor, lambda0: torch.Tensor, lr: torch.Tensor, n: int | torch.Tensor, steps: int,
               loss: str = "mse", blowup: float = 1e12) -> dict[str, torch.Tensor]:
    """Exact GD dynamics in (f, lambda) for a batch of runs (all arguments broadcast), float64.
    Returns loss and lambda of shape (runs, steps + 1). A run whose |f| passes `blowup` is frozen there and
    marked diverged: a diverged run is a result, not an error."""
    f, lam, lr = (torch.as_tensor(t, dtype=torch.float64) for t in (f0, lambda0, lr))
    f, lam, lr = torch.broadcast_tensors(f, lam, lr)
    f, lam = f.clone(), lam.clone()
    n = torch.as_tensor(n, dtype=torch.float64)
    diverged = torch.zeros_like(f, dtype=torch.bool)
    losses, lams = [loss_value(f, loss)], [lam.clone()]
    for _ in range(steps):
        g = loss_grad(f, loss)
        f_new = f - lr * g * lam + lr**2 * g**2 * f / n
        lam_new = lam - 4 * lr * g * f / n + lr**2 * g**2 * lam / n
        bad = ~torch.isfinite(f_new) | (f_new.abs() > blowup) | ~torch.isfinite(lam_new)
        diverged |= bad
        f_new = torch.where(f_new.abs() < 1e-200, 0.0, f_new)  # no subnormals: they are slow and meaningless
        f, lam = torch.where(diverged, f, f_new), torch.where(diverged, lam, lam_new)
        losses.append(torch.where(diverged, torch.inf, loss_value(f, loss)))
        lams.append(torch.where(diverged, torch.nan, lam))
    return {"loss": torch.stack(losses, -1), "lambda": torch.stack(lams, -1), "diverged": diverged}


def gd_direct(u: torch.Tensor, v: torch.Tensor, lr: float, steps: int, loss: str = "mse"):
    """Plain gradient descent on the vectors u, v (for checking `trajectory`): returns f_t, lambda_t."""
    n = u.shape[-1]
    fs, lams = [], []
    for _ in range(steps + 1):
        f, lam = f_and_lambda(u, v)
        fs.append(f), lams.append(lam)
        g = loss_grad(f, loss)[..., None]
        u, v = u - lr * g * v / math.sqrt(n), v - lr * g * u / math.sqrt(n)
    return torch.stack(fs, -1), torch.stack(lams, -1)
