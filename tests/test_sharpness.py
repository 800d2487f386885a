import numpy as np
import pytest
import torch

from repro.metrics.sharpness import box_bounds, random_subspace, sharpness


def quadratic(h: torch.Tensor, offset: float):
    return lambda theta: 0.5 * theta @ (h @ theta) + offset


def test_full_space_metric_equals_the_box_maximum_of_a_quadratic():
    """f(z) = z^T H z / 2 + c with H diagonal: the box maximum around x is at y_i = b_i sign(x_i), so
    max f = sum_i h_i (|x_i| + b_i)^2 / 2 + c with b_i = eps (|x_i| + 1)."""
    g = torch.Generator().manual_seed(0)
    h_diag = torch.rand(50, generator=g, dtype=torch.float64) * 10 + 0.1
    x = torch.randn(50, generator=g, dtype=torch.float64)
    f = quadratic(torch.diag(h_diag), 0.3)
    for eps in (1e-3, 5e-4):
        b = eps * (x.abs() + 1)
        top = float(0.5 * (h_diag * (x.abs() + b) ** 2).sum() + 0.3)
        base = float(f(x))
        s = sharpness(f, x, eps)
        assert s.value == pytest.approx(100 * (top - base) / (1 + base), rel=1e-6)
        assert s.iterations <= 10 and s.evaluations >= 2


def test_random_start_reaches_the_vertex_of_a_rank_one_quadratic_at_its_minimum():
    """At the minimiser (x = 0) of f = (v^T z)^2 / 2 the gradient is zero, so only a random start moves; the
    maximum over the box |y_i| <= eps is (eps sum |v_i|)^2 / 2 at y = +-eps sign(v)."""
    v = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    f = quadratic(torch.outer(v, v), 0.0)
    x = torch.zeros(4, dtype=torch.float64)
    eps = 1e-3
    s = sharpness(f, x, eps, start="random", seed=1)
    assert s.max_loss == pytest.approx(0.5 * float(eps * v.abs().sum()) ** 2, rel=1e-6)
    assert s.value == pytest.approx(100 * s.max_loss)
    assert sharpness(f, x, eps).value == 0.0  # from y = 0 L-BFGS-B sees a zero gradient and stops


def test_subspace_bounds_use_the_pseudo_inverse_and_the_metric_is_exact_for_a_quadratic():
    n, p = 40, 5
    a = random_subspace(n, p, seed=3, dtype=torch.float64)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(n, generator=g, dtype=torch.float64)
    eps = 1e-3
    half = box_bounds(x, eps, a)
    expected = eps * (np.abs(np.linalg.pinv(a.numpy()) @ x.numpy()) + 1)
    assert half == pytest.approx(expected, rel=1e-9)
    # f(z) = |A^T z|^2 / 2 restricted to x + A y has Hessian (A^T A)^2 in y; take A^T A diagonal by using
    # a matrix with orthogonal columns, so that the box maximum is again a vertex with known signs
    q, _ = torch.linalg.qr(a)
    scales = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0], dtype=torch.float64)
    b = q * scales
    f = lambda z: 0.5 * (b.T @ z).pow(2).sum()  # noqa: E731
    half = box_bounds(x, eps, b)
    coef = b.T @ x  # f(x + B y) = |B^T x + (B^T B) y|^2 / 2 with B^T B = diag(scales^2)
    top = 0.5 * float(((coef.abs() + scales**2 * torch.as_tensor(half)) ** 2).sum())
    s = sharpness(f, x, eps, subspace=b)
    assert s.dim == p
    assert s.max_loss == pytest.approx(top, rel=1e-6)


def test_bad_arguments():
    f = quadratic(torch.eye(3, dtype=torch.float64), 0.0)
    x = torch.ones(3, dtype=torch.float64)
    with pytest.raises(ValueError, match="eps must be > 0"):
        sharpness(f, x, 0.0)
    with pytest.raises(ValueError, match="n x p matrix with n = 3"):
        sharpness(f, x, 1e-3, subspace=torch.ones(4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="start must be"):
        sharpness(f, x, 1e-3, start="middle")
