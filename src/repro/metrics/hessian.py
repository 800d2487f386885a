"""Top eigenvalues of the loss Hessian and of the empirical neural tangent kernel, by Lanczos on matrix-free
products (Hessian-vector products and Jacobian-vector products from torch.func); dense versions for checks.

Everything is a function of a closure of the flat parameter vector `theta` (see `functional`), so the same
code serves any model, loss and data, on any device.

Normalisation. For outputs f(theta; x_i) in R^k on m examples and the squared loss
L(theta) = (1/2m) sum_i |f(x_i) - y_i|^2, the empirical NTK is Theta = J J^T / m, with J the (m k) x P Jacobian
of all outputs. Its nonzero eigenvalues are those of the Gauss-Newton part J^T J / m of the Hessian of L, so
gradient descent on L is linearly stable for eta * lambda_max(Theta) < 2.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call, jvp, vjp

Closure = Callable[[torch.Tensor], torch.Tensor]


def functional(model: nn.Module) -> tuple[torch.Tensor, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    """The model's parameters as one flat vector theta, and apply(theta, x) -> model output with them.
    Buffers are taken as they are; models with batch-dependent state (BatchNorm in train mode) need care."""
    names = [n for n, _ in model.named_parameters()]
    tensors = [p.detach() for _, p in model.named_parameters()]
    shapes, sizes = [t.shape for t in tensors], [t.numel() for t in tensors]
    theta = torch.cat([t.reshape(-1) for t in tensors]).clone()

    def apply(th: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        parts = torch.split(th, sizes)
        return functional_call(model, {n: p.view(s) for n, p, s in zip(names, parts, shapes, strict=True)}, (x,))

    return theta, apply


def lanczos(matvec: Closure, dim: int, iters: int = 20, *, device: torch.device | str = "cpu",
            dtype: torch.dtype = torch.float32, seed: int = 0) -> torch.Tensor:
    """Ritz values (descending, float64 on the CPU) of a symmetric operator after `iters` Lanczos steps with
    full reorthogonalisation. The start vector comes from a CPU generator, so it is the same on every device."""
    iters = min(iters, dim)
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(dim, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
    q = q / q.norm()
    basis = [q]
    alphas, betas = [], []
    for j in range(iters):
        w = matvec(basis[j]).to(dtype)
        alphas.append(float(w @ basis[j]))
        # full reorthogonalisation (twice is enough) keeps spurious copies of the top eigenvalue away
        Q = torch.stack(basis)
        for _ in range(2):
            w = w - Q.T @ (Q @ w)
        beta = float(w.norm())
        if j == iters - 1 or beta < 1e-10 * max(1.0, abs(alphas[-1])):
            break
        betas.append(beta)
        basis.append(w / beta)
    k = len(alphas)
    t = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if k > 1:
        off = torch.tensor(betas[: k - 1], dtype=torch.float64)
        t += torch.diag(off, 1) + torch.diag(off, -1)
    return torch.linalg.eigvalsh(t).flip(0)


def hvp(loss: Closure, theta: torch.Tensor) -> Closure:
    """v -> H v, with H the Hessian of loss(theta) (forward-over-reverse)."""
    grad = torch.func.grad(loss)
    return lambda v: jvp(grad, (theta,), (v,))[1]


def hessian_top_eigenvalue(loss: Closure, theta: torch.Tensor, iters: int = 20, seed: int = 0) -> float:
    """Largest eigenvalue of the Hessian of the scalar loss(theta) (the algebraically largest; for the
    sharpness of a minimum that is also the largest in magnitude)."""
    return float(lanczos(hvp(loss, theta), theta.numel(), iters, device=theta.device, dtype=theta.dtype,
                         seed=seed)[0])


def ntk_matvec(outputs: Closure, theta: torch.Tensor) -> tuple[Closure, int]:
    """u -> Theta u with Theta = J J^T / m, for outputs(theta) of shape (m, ...); returns it and its size."""
    out, pullback = vjp(outputs, theta)
    m, shape = out.shape[0], out.shape

    def matvec(u: torch.Tensor) -> torch.Tensor:
        (jt_u,) = pullback(u.view(shape))
        return jvp(outputs, (theta,), (jt_u,))[1].reshape(-1) / m

    return matvec, out.numel()


def ntk_top_eigenvalue(outputs: Closure, theta: torch.Tensor, iters: int = 20, seed: int = 0) -> float:
    """Largest eigenvalue of the empirical NTK J J^T / m of outputs(theta) (shape (m, ...))."""
    matvec, dim = ntk_matvec(outputs, theta)
    return float(lanczos(matvec, dim, iters, device=theta.device, dtype=theta.dtype, seed=seed)[0])


# ------------------------------------------------------------------------------------- dense, for small checks


def hessian_dense(loss: Closure, theta: torch.Tensor) -> torch.Tensor:
    return torch.func.hessian(loss)(theta)


def ntk_dense(outputs: Closure, theta: torch.Tensor) -> torch.Tensor:
    jac = torch.func.jacrev(outputs)(theta)  # (m, ..., P)
    m = jac.shape[0]
    jac = jac.reshape(-1, theta.numel())
    return jac @ jac.T / m
