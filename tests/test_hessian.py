"""Lanczos top eigenvalues of the loss Hessian and of the NTK against dense computations."""

import pytest
import torch

from repro.metrics import hessian as H
from repro.models.ntk import NTKMLP, NTKConvNet


def _mlp_closures():
    torch.manual_seed(0)
    model = NTKMLP(5, 16, 2, 3, seed=0).double()
    x, y = torch.randn(7, 5, dtype=torch.float64), torch.randn(7, 3, dtype=torch.float64)
    theta, apply = H.functional(model)
    return theta, (lambda th: apply(th, x)), (lambda th: 0.5 * (apply(th, x) - y).pow(2).sum() / len(x))


def test_hessian_lanczos_matches_dense_on_a_small_mlp():
    theta, _, loss = _mlp_closures()
    dense = torch.linalg.eigvalsh(H.hessian_dense(loss, theta))[-1]
    assert H.hessian_top_eigenvalue(loss, theta, iters=40) == pytest.approx(float(dense), rel=1e-6)


def test_ntk_lanczos_matches_dense_on_a_small_mlp_and_cnn():
    theta, outputs, _ = _mlp_closures()
    dense = torch.linalg.eigvalsh(H.ntk_dense(outputs, theta))[-1]
    assert H.ntk_top_eigenvalue(outputs, theta, iters=21) == pytest.approx(float(dense), rel=1e-6)
    cnn = NTKConvNet(1, 8, 2, 4, seed=1).double()
    x = torch.randn(5, 1, 8, 8, dtype=torch.float64)
    theta, apply = H.functional(cnn)
    dense = torch.linalg.eigvalsh(H.ntk_dense(lambda th: apply(th, x), theta))[-1]
    assert H.ntk_top_eigenvalue(lambda th: apply(th, x), theta, iters=20) == pytest.approx(float(dense), rel=1e-6)


def test_normalisation_linear_model_ntk_equals_hessian():
    """For f = X w and L = (1/2m)|Xw - y|^2 both the NTK X X^T / m and the Hessian X^T X / m have the same top
    eigenvalue: gradient descent is stable for eta * lambda0 < 2."""
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(20, 6, generator=g, dtype=torch.float64), torch.randn(20, generator=g, dtype=torch.float64)
    w = torch.zeros(6, dtype=torch.float64)
    exact = float(torch.linalg.eigvalsh(x.T @ x / 20)[-1])
    assert H.ntk_top_eigenvalue(lambda v: x @ v, w, iters=20) == pytest.approx(exact, rel=1e-9)
    assert H.hessian_top_eigenvalue(lambda v: 0.5 * (x @ v - y).pow(2).mean(), w, iters=6) == pytest.approx(exact)
    # and the edge: GD at eta = 1.9 / lambda0 converges, at 2.1 / lambda0 it blows up
    for factor, converges in ((1.9, True), (2.1, False)):
        v = w.clone()
        for _ in range(2000):
            v = v - factor / exact * x.T @ (x @ v - y) / 20
        assert bool(v.norm() < 1e3) == converges


def test_lanczos_stops_early_on_a_low_rank_operator():
    a = torch.diag(torch.tensor([5.0, 1.0, 0.0, 0.0], dtype=torch.float64))
    ritz = H.lanczos(lambda v: a @ v, 4, iters=10, dtype=torch.float64)
    assert float(ritz[0]) == pytest.approx(5.0)
