"""The foil (section 4 of the chapter): Nakkiran (2020, arXiv 2005.07360), a 2-D linear regression whose train
covariance is unlike the test one, where a large step followed by gradient flow provably generalises better than
gradient flow; and the report's datasets described in the same terms."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from repro.experiments.convex.analysis import bias_crossover, contraction_bias, crossover_eta_trace, crossover_floor
from repro.experiments.convex.schedules import early_stopped_gd, make_datasets

if TYPE_CHECKING:  # the package's Params, for annotations only
    from repro.experiments.convex import Params

# Nakkiran (2020), arXiv 2005.07360: (A) gradient flow vs (B) gradient descent with a large step, then gradient
# flow, both run to the same train loss; the claim is that (A)'s test loss is twice (B)'s.
NAKKIRAN_CLAIMED_RATIO = 2.0
NAKKIRAN_SOURCE = "Nakkiran (2020), section 1"
# Where annealing's benefit changes sign does not depend on beta* (the exact criterion, contraction_bias, does not
# involve it), so the first FLIP_DRAWS draws locate it as well as all of them, at a fraction of the cost; the
# bisection on eta * s_max in (1/2, 1) halves the bracket FLIP_BISECTIONS times (to 0.002 in eta * s_max).
FLIP_DRAWS = 512
FLIP_BISECTIONS = 8


def nakkiran_datasets(seed: int, n_datasets: int, n_samples: int, curvature_ratio: float):
    """Train designs whose covariance X^T X / n is exactly S = diag(ratio, 1) (Gaussian samples, whitened), and
    beta* ~ N(0, I): the train loss is e^T S e, the test loss e^T I e, e = beta - beta*. Only beta* is random
    for the losses; the samples' own randomness cancels."""
    g = torch.Generator().manual_seed(seed)
    beta = torch.randn(n_datasets, 2, generator=g, dtype=torch.float64)
    z = torch.randn(n_datasets, n_samples, 2, generator=g, dtype=torch.float64)
    w, v = torch.linalg.eigh(z.transpose(1, 2) @ z / n_samples)
    inv_sqrt = v @ torch.diag_embed(w.rsqrt()) @ v.transpose(1, 2)
    s_half = torch.diag(torch.tensor([curvature_ratio, 1.0], dtype=torch.float64).sqrt())
    x = z @ inv_sqrt @ s_half
    return beta, x, (x @ beta.unsqueeze(-1)).squeeze(-1)


def train_covariance(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(1, 2) @ x / x.shape[1]


def gradient_flow_to_loss(cov: torch.Tensor, err: torch.Tensor, stop_loss: float,
                          iters: int = 60) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact gradient flow on the train loss e^T S e (de/dt = -2 S e) from error `err`, run until the train
    loss first equals stop_loss: each eigen-coordinate c_i decays as c_i exp(-2 s_i t), so the loss is
    sum_i s_i c_i^2 exp(-4 s_i t). Its logarithm is convex and decreasing in t, so Newton's method from t = 0
    approaches the crossing time from below without overshooting. Returns (stop time, error at the stop); a
    run already at or below stop_loss stops at t = 0."""
    s, v = torch.linalg.eigh(cov)
    c = (v.transpose(1, 2) @ err.unsqueeze(-1)).squeeze(-1)
    # numpy: torch's multi-threaded exp is slow on tiny float64 arrays when the cores are busy
    sn, cn = s.numpy(), c.numpy()
    w, rate = sn * cn**2, 4 * sn
    t = np.zeros(len(cn))
    target = math.log(stop_loss)
    for _ in range(iters):
        terms = w * np.exp(-rate * t[:, None])
        loss = terms.sum(-1)
        f = np.log(loss) - target
        step = np.where(f > 0, f * loss / (rate * terms).sum(-1), 0.0)  # f / -(d/dt log L)
        t = t + step
        if step.max() < 1e-13 * max(t.max(), 1.0):
            break
    end = torch.from_numpy(cn * np.exp(-2 * sn * t[:, None]))
    return torch.from_numpy(t), (v @ end.unsqueeze(-1)).squeeze(-1)


def large_steps_then_flow(cov: torch.Tensor, err: torch.Tensor, eta: torch.Tensor | float, large_steps: int,
                          stop_loss: float) -> dict[str, torch.Tensor]:
    """Nakkiran's (B): up to `large_steps` steps of gradient descent e <- (I - 2 eta S) e on the train loss
    e^T S e, then gradient flow to the train loss stop_loss. A step that would take the train loss below
    stop_loss is not taken (the switch to gradient flow comes first), so (B) stops at exactly the train loss of
    (A) rather than below it."""
    eta = torch.as_tensor(eta, dtype=err.dtype).expand(len(err))
    grad = lambda e: (cov * e[:, None, :]).sum(-1)  # S e for B tiny matrices, cheaper than a batched matmul  # noqa: E731
    loss = lambda e: (grad(e) * e).sum(-1)  # noqa: E731
    step = lambda e: e - 2 * eta[:, None] * grad(e)  # noqa: E731
    active = loss(err) > stop_loss
    taken = torch.zeros(len(err), dtype=torch.long)
    for _ in range(large_steps):
        nxt = step(err)
        ok = active & (loss(nxt) > stop_loss)
        err = torch.where(ok[:, None], nxt, err)
        taken += ok
        active = ok
        if not active.any():
            break
    _, end = gradient_flow_to_loss(cov, err, stop_loss)
    return {"err_switch": err, "err": end, "large_steps_taken": taken}


def nakkiran_compare(beta_star: torch.Tensor, x: torch.Tensor, y: torch.Tensor, eta: torch.Tensor | float,
                     large_steps: int, stop_loss: float, lr_small: float | None = None, max_steps: int = 0,
                     test_cov: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Test loss at train loss `stop_loss` of (A) gradient flow and (B) large steps at rate eta, then gradient
    flow; with lr_small, also (C) gradient descent at lr_small throughout, stopped at the first step at or below
    stop_loss (the simulated version of (A))."""
    cov = train_covariance(x)
    test_cov = torch.eye(2, dtype=x.dtype) if test_cov is None else test_cov
    test = lambda e: (e @ test_cov * e).sum(-1)  # noqa: E731
    _, e_flow = gradient_flow_to_loss(cov, -beta_star, stop_loss)
    big = large_steps_then_flow(cov, -beta_star, eta, large_steps, stop_loss)
    out = {"test_flow": test(e_flow), "test_anneal": test(big["err"]), "large_steps_taken": big["large_steps_taken"]}
    if lr_small is not None:
        small = early_stopped_gd(x, y, lr_small, lr_small, -1.0, stop_loss, max_steps)
        out.update(test_small=test(small["beta"] - beta_star), small_reached=small["reached"])
    return out


def curvature_split(cov: torch.Tensor, test_cov: torch.Tensor | None = None) -> dict[str, np.ndarray]:
    """Per dataset, along the train covariance's sharp (s_max) and flat (s_min) eigenvectors: the eigenvalues
    and test curvature / train curvature. Gradient flow stopped at a small train loss eps leaves its error in
    the flat direction (test loss -> eps * flat ratio); a run that never contracts the sharp direction leaves
    it there (test loss -> eps * sharp ratio)."""
    s, v = torch.linalg.eigh(cov)
    test_cov = torch.eye(cov.shape[-1], dtype=cov.dtype) if test_cov is None else test_cov
    t = (v.transpose(1, 2) @ test_cov @ v).diagonal(dim1=1, dim2=2)
    return {"s_min": s[:, 0].numpy(), "s_max": s[:, -1].numpy(), "trace": s.sum(-1).numpy(),
            "flat_ratio": (t[:, 0] / s[:, 0]).numpy(), "sharp_ratio": (t[:, -1] / s[:, -1]).numpy()}


def nakkiran(p: Params) -> dict:
    beta_star, x, y = nakkiran_datasets(p.seed, p.n_datasets, p.n_samples, p.nakkiran_curvature_ratio)
    s_max = p.nakkiran_curvature_ratio
    eta = p.nakkiran_eta_smax / s_max
    head = nakkiran_compare(beta_star, x, y, eta, p.nakkiran_large_steps, p.nakkiran_stop_loss, p.lr_small,
                            p.max_steps)
    split = curvature_split(train_covariance(x))
    summary = {"eta_large": eta, "eta_trace": float(eta * split["trace"].mean()), "eta_smax": p.nakkiran_eta_smax,
               "sharp_contraction": abs(1 - 2 * eta * s_max), "flat_contraction": abs(1 - 2 * eta * 1.0),
               "flat_ratio": float(split["flat_ratio"].mean()), "sharp_ratio": float(split["sharp_ratio"].mean()),
               "bias": float(np.median(contraction_bias(eta, split["s_max"], split["s_min"]))),
               "crossover_eta_trace": bias_crossover(s_max, 1.0) * (s_max + 1.0),
               "n": p.n_datasets, "median_large_steps": float(head["large_steps_taken"].double().median()),
               "no_large_step": float((head["large_steps_taken"] == 0).double().mean()),
               "n_small_unfinished": int((~head["small_reached"]).sum())}
    for k in ("flow", "anneal", "small"):
        summary[f"test_{k}"] = float(head[f"test_{k}"].mean())
    ratio = (head["test_flow"] / head["test_anneal"]).numpy()
    summary.update(ratio_median=float(np.median(ratio)), ratio_low=float(np.quantile(ratio, 0.05)),
                   ratio_high=float(np.quantile(ratio, 0.95)),
                   win_rate=float((head["test_anneal"] < head["test_flow"]).double().mean()),
                   # worse by more than rounding: a run whose first large step would already cross stop_loss
                   # takes none and ties with (A)
                   lose_rate=float((head["test_anneal"] > head["test_flow"] * (1 + 1e-9)).double().mean()),
                   win_rate_small=float((head["test_anneal"] < head["test_small"]).double().mean()),
                   limit_ratio=float(np.mean(split["flat_ratio"] / split["sharp_ratio"])))
    # The factor at other stopping losses: the claim is about the limit of small train loss.
    by_eps = []
    for eps in np.geomspace(1e-5, 0.3, 2 * p.sweep_size):
        r = nakkiran_compare(beta_star, x, y, eta, p.nakkiran_large_steps, float(eps))
        q = (r["test_flow"] / r["test_anneal"]).numpy()
        by_eps.append({"stop_loss": float(eps), "ratio_median": float(np.median(q)),
                       "ratio_low": float(np.quantile(q, 0.05)), "ratio_high": float(np.quantile(q, 0.95))})
    # The sweep across the separating quantity eta * tr(S), up to the stability edge eta * s_max = 1.
    by_eta = []
    for frac in np.linspace(0.05, 1.0, 3 * p.sweep_size):
        r = nakkiran_compare(beta_star, x, y, float(frac / s_max), p.nakkiran_large_steps, p.nakkiran_stop_loss)
        gain = (r["test_flow"] - r["test_anneal"]) / r["test_flow"]
        by_eta.append({"eta_smax": float(frac), "eta_trace": float(frac / s_max * split["trace"].mean()),
                       "win_rate": float((gain > 0).double().mean()), "gain_mean": float(gain.mean())})
    return {"summary": summary, "by_eps": by_eps, "by_eta": by_eta, "paths": nakkiran_paths(p, beta_star, x)}


def nakkiran_paths(p: Params, beta_star, x, points: int = 60) -> dict:
    """Paths for the figure, on the first draw whose beta* has both coordinates between 0.6 and 1.6 in size (so
    that both directions are visible): gradient flow (sampled in time), and the large steps then gradient flow."""
    size = beta_star.abs()
    i = int(torch.nonzero(((size >= 0.6) & (size <= 1.6)).all(-1))[0])
    b, xs = beta_star[i:i + 1], x[i:i + 1]
    cov = train_covariance(xs)
    eta = p.nakkiran_eta_smax / p.nakkiran_curvature_ratio

    def flow_path(start):
        t_end, _ = gradient_flow_to_loss(cov, start - b, p.nakkiran_stop_loss)
        s, v = torch.linalg.eigh(cov)
        c = (v.transpose(1, 2) @ (start - b).unsqueeze(-1)).squeeze(-1)
        ts = torch.linspace(0, float(t_end[0]), points, dtype=torch.float64)
        return (b + (c * torch.exp(-2 * s * ts[:, None])) @ v[0].T).numpy()

    # the large steps one by one (the rule of large_steps_then_flow), then the flow from the switch point
    steps, err = [torch.zeros_like(b)], -b
    for _ in range(p.nakkiran_large_steps):
        r = large_steps_then_flow(cov, err, eta, 1, p.nakkiran_stop_loss)
        if not int(r["large_steps_taken"][0]):
            break
        err = r["err_switch"]
        steps.append(err + b)
    return {"beta_star": b[0].numpy(), "train_cov": cov[0].numpy(), "flow": flow_path(torch.zeros_like(b)),
            "large_steps": torch.cat(steps).numpy(), "anneal_flow": flow_path(err + b),
            "stop_loss": p.nakkiran_stop_loss, "draw": i}


def report_side(p: Params, rmse_small: np.ndarray, rmse_anneal: np.ndarray) -> dict:
    """The report's side of the two-settings table, in the terms used for Nakkiran's: its datasets' curvatures
    and the mean test loss (population RMSE squared) of each schedule."""
    _, x, _ = make_datasets(p.seed, p.n_datasets, p.n_samples, p.noise_std)
    split = curvature_split(x.transpose(1, 2) @ x / p.n_samples)
    eta = p.lr_large
    return {"eta_large": eta, "eta_trace": float(eta * split["trace"].mean()),
            "eta_smax": float(eta * split["s_max"].mean()),
            "sharp_contraction": float(np.abs(1 - 2 * eta * split["s_max"]).mean()),
            "flat_contraction": float(np.abs(1 - 2 * eta * split["s_min"]).mean()),
            "flat_ratio": float(np.median(split["flat_ratio"])), "sharp_ratio": float(np.median(split["sharp_ratio"])),
            "bias": float(np.median(contraction_bias(eta, split["s_max"], split["s_min"]))),
            "test_small": float((rmse_small**2).mean()), "test_anneal": float((rmse_anneal**2).mean()),
            "win_rate": float((rmse_anneal < rmse_small).mean()), "n": int(len(rmse_small))}


def sign_change(beta_star: torch.Tensor, x: torch.Tensor, y: torch.Tensor, ratio: float, large_steps: int,
                stop_loss: float, bisections: int = FLIP_BISECTIONS) -> tuple[float, float]:
    """Where the mean relative benefit of (B) over (A), (test(A) - test(B)) / test(A), changes sign on train
    covariances diag(ratio, 1), as a bracket in eta * tr(S): bisection on eta * s_max between 1/2 (the sharp
    direction zeroed in one step: (B) ends flat, and loses) and 1 (never contracted: (B) ends sharp, and wins)."""
    lo, hi = 0.5, 1.0
    for _ in range(bisections):
        mid = (lo + hi) / 2
        r = nakkiran_compare(beta_star, x, y, mid / ratio, large_steps, stop_loss)
        if float(((r["test_flow"] - r["test_anneal"]) / r["test_flow"]).mean()) > 0:
            hi = mid
        else:
            lo = mid
    trace_over_smax = (ratio + 1.0) / ratio
    return lo * trace_over_smax, hi * trace_over_smax


def crossover(p: Params) -> dict:
    """The crossover of contraction_bias against the curvature ratio r = s_max / s_min, exactly (bias_crossover)
    on a fine grid of r, and measured: where annealing's mean benefit changes sign on Nakkiran's covariances
    diag(r, 1), for `sweep_size` ratios. Also the curvature ratios of the report's datasets."""
    curve = np.geomspace(1.01, 1000, 48)
    flips = []
    for ratio in np.geomspace(1.25, 50, p.sweep_size):
        beta_star, x, y = nakkiran_datasets(p.seed, min(p.n_datasets, FLIP_DRAWS), p.n_samples, float(ratio))
        low, high = sign_change(beta_star, x, y, float(ratio), p.nakkiran_large_steps, p.nakkiran_stop_loss)
        flips.append({"ratio": float(ratio), "exact": crossover_eta_trace(float(ratio)), "low": low, "high": high})
    _, x, _ = make_datasets(p.seed, p.n_datasets, p.n_samples, p.noise_std)
    split = curvature_split(train_covariance(x))
    report_ratio = split["s_max"] / split["s_min"]
    return {"ratio": curve, "eta_trace": [crossover_eta_trace(float(r)) for r in curve], "floor": crossover_floor(),
            "flips": flips, "draws": min(p.n_datasets, FLIP_DRAWS),
            "report_ratio": [float(np.quantile(report_ratio, q)) for q in (0.05, 0.5, 0.95)]}
