import numpy as np
import pytest
import scipy.optimize
import torch

from repro.metrics.sharpness import box_bounds, lbfgsb, random_subspace, sharpness


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
        # the box's corner reaches |b| in parameter space; the linear term's maximum is sum |g_i| b_i
        assert s.radius == pytest.approx(float(b.norm()))
        g = h_diag * x
        assert s.first_order == pytest.approx(100 * float((g.abs() * b).sum()) / (1 + base))
        assert s.grad_norm == pytest.approx(float(g.norm()))


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
    at_start = sharpness(f, x, eps)  # from y = 0 L-BFGS-B sees a zero gradient and stops before iterating
    assert at_start.value == 0.0 and at_start.iterations == 0 and at_start.first_order == 0.0


def test_subspace_columns_have_unit_length_so_the_box_reaches_as_far_as_a_coordinate_box():
    """With N(0, 1) columns the box would reach about sqrt(n) times further than the same box on p coordinates;
    with unit columns it reaches as far (up to the columns' small overlaps)."""
    n, p, eps = 200_000, 10, 1e-3
    a = random_subspace(n, p, seed=0)
    assert torch.allclose(a.norm(dim=0), torch.ones(p), atol=1e-5)
    x = torch.zeros(n)
    s = sharpness(lambda th: th.sum() * 0, x, eps, subspace=a, maxiter=1)
    assert s.radius == pytest.approx(eps * p**0.5, rel=1e-4)  # box half-widths eps (|A^+ 0| + 1) = eps


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


def test_the_first_order_part_is_the_metric_of_a_linear_loss_in_a_subspace():
    """For f(theta) = c . theta the box maximum is the linear term's, eps sum |(A^T c)_i| (|(A^+ x)_i| + 1):
    Metric 2.1 and its first-order part agree exactly, in the full space and in a subspace."""
    g = torch.Generator().manual_seed(0)
    c, x = torch.randn(50, generator=g, dtype=torch.float64), 0.01 * torch.randn(50, generator=g, dtype=torch.float64)
    a = random_subspace(50, 4, seed=1, dtype=torch.float64)
    for subspace in (None, a):
        s = sharpness(lambda th: (c * th).sum(), x, 1e-3, subspace=subspace, maxiter=5)
        coef = c if subspace is None else a.T @ c
        half = box_bounds(x, 1e-3, subspace)
        f = float((c * x).sum())
        assert s.first_order == pytest.approx(100 * float(coef.abs().numpy() @ half) / (1 + f))
        assert s.value == pytest.approx(s.first_order, rel=1e-6)


def test_lbfgsb_drives_scipy_exactly_as_minimize_does():
    """The same iterates, iterations and evaluations as scipy.optimize.minimize(method="L-BFGS-B") on a bounded
    nonconvex problem, at several iteration limits (the driver only passes the bounds as arrays)."""
    rng = np.random.default_rng(0)
    n = 60
    m = rng.standard_normal((n, n)) / n**0.5
    h, c = m @ m.T + 0.1 * np.eye(n), rng.standard_normal(n)

    def f(z):
        return float(-(0.5 * z @ h @ z + c @ z + np.sin(3 * z).sum())), -(h @ z + c + 3 * np.cos(3 * z))

    lower, upper = -rng.uniform(0.1, 1, n), rng.uniform(0.1, 1, n)
    for maxiter in (1, 2, 5, 10, 100):
        ref = scipy.optimize.minimize(f, np.zeros(n), jac=True, method="L-BFGS-B",
                                      bounds=scipy.optimize.Bounds(lower, upper), options={"maxiter": maxiter})
        x, iterations, evaluations = lbfgsb(f, np.zeros(n), lower, upper, maxiter)
        assert np.array_equal(x, ref.x) and (iterations, evaluations) == (ref.nit, ref.nfev)


def test_bad_arguments():
    f = quadratic(torch.eye(3, dtype=torch.float64), 0.0)
    x = torch.ones(3, dtype=torch.float64)
    with pytest.raises(ValueError, match="eps must be > 0"):
        sharpness(f, x, 0.0)
    with pytest.raises(ValueError, match="n x p matrix with n = 3"):
        sharpness(f, x, 1e-3, subspace=torch.ones(4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="start must be"):
        sharpness(f, x, 1e-3, start="middle")
