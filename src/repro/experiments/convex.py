"""A convex counterexample: early-stopped gradient descent on under-sampled 2-D linear regression.

Source: the course report, section 4. With few samples the train loss's level sets are not the
population loss's, so two points with the same train loss can have different population losses, and the
learning-rate schedule decides which one early-stopped gradient descent reaches.

The foil: Nakkiran (2020, arXiv 2005.07360), a 2-D linear regression whose train covariance is unlike the test
one, where a large step followed by gradient flow provably generalises better than gradient flow.

Loss convention (the report's): train loss = mean squared error (1/n) sum (<beta, x_i> - y_i)^2, so its
Hessian is 2 X^T X / n and gradient descent is stable for lr < 1 / lambda_max(X^T X / n).
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.stats
import torch

from repro import params as P
from repro.store import Result, Store
from repro.units import Unit, make_unit, run_unit

VERSION = 2

# The report's own 10-run table (course report, section 4.3): test RMSE at train loss 0.1,
# small LR 0.01 throughout vs large LR 0.1 then 0.01. Reference values, not our results.
REPORT_RMSE_SMALL = [0.237, 0.242, 0.236, 0.229, 0.244, 0.254, 0.217, 0.249, 0.266, 0.22]
REPORT_RMSE_ANNEAL = [0.217, 0.228, 0.233, 0.231, 0.211, 0.249, 0.235, 0.251, 0.243, 0.213]
REPORT_AVERAGES = {"small": 0.2394, "anneal": 0.2311}
REPORT_SOURCE = "course report, section 4.3"
# Nakkiran (2020), arXiv 2005.07360: (A) gradient flow vs (B) gradient descent with a large step, then gradient
# flow, both run to the same train loss; the claim is that (A)'s test loss is twice (B)'s.
NAKKIRAN_CLAIMED_RATIO = 2.0
NAKKIRAN_SOURCE = "Nakkiran (2020), section 1"


@dataclasses.dataclass(frozen=True)
class Params(P.Params):
    seed: int = P.param(0, "seed of the first dataset; dataset i is drawn from seed + i", ge=0)
    n_samples: int = P.param(10, "training examples per dataset (the report: 10)", ge=2)
    n_datasets: int = P.param(4000, "independent datasets (beta*, X) per setting", ge=1)
    noise_std: float = P.param(0.0, "label noise: y = <beta*, x> + noise_std * N(0, 1)", ge=0)
    lr_large: float = P.param(0.1, "initial large learning rate (the report: 0.1)", gt=0)
    lr_small: float = P.param(0.01, "small learning rate, also used after annealing (the report: 0.01)",
                              gt=0)
    anneal_loss: float = P.param(0.3, "train loss at which the large rate is annealed to the small one", gt=0)
    stop_loss: float = P.param(0.1, "early-stopping train loss (the report: 0.1)", gt=0)
    max_steps: int = P.param(20_000, "give up on a run that has not reached stop_loss by then", ge=1)
    sweep_size: int = P.param(7, "grid points per axis of the win-rate sweeps", ge=2, le=12)
    nakkiran_curvature_ratio: float = P.param(
        2.0, "Nakkiran's setting: train covariance S = diag(ratio, 1), test covariance I", gt=1)
    nakkiran_eta_smax: float = P.param(
        1.0, "Nakkiran's large step as eta * s_max(S); at 1 the sharp direction is never contracted", gt=0, le=1)
    nakkiran_large_steps: int = P.param(
        50, "Nakkiran's setting: large-step gradient descent steps before the switch to gradient flow", ge=1)
    nakkiran_stop_loss: float = P.param(1e-3, "Nakkiran's setting: the train loss both runs stop at", gt=0)

    PRESETS = {
        "smoke": {"n_datasets": 64, "sweep_size": 3, "max_steps": 20_000},
        "paper": {"n_datasets": 20_000, "sweep_size": 9},
    }

    def check(self) -> None:
        if self.lr_small >= self.lr_large:
            raise P.ConfigError(f"lr_small ({self.lr_small}) must be smaller than lr_large ({self.lr_large}).")
        if self.stop_loss >= self.anneal_loss:
            raise P.ConfigError(f"stop_loss ({self.stop_loss}) must be below anneal_loss ({self.anneal_loss}), "
                                f"or the large rate would never be annealed.")


# ---------------------------------------------------------------------------------------------- exact analysis


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


# --------------------------------------------------------------------------------------- gradient descent runs


def make_datasets(seed: int, n_datasets: int, n_samples: int, noise_std: float, dim: int = 2):
    """beta* ~ N(0, I), x ~ N(0, I), y = <beta*, x> + noise; dataset i from its own generator (seed + i),
    so dataset i is the same whatever n_datasets is."""
    betas, xs, ys = [], [], []
    for i in range(n_datasets):
        g = torch.Generator().manual_seed(seed + i)
        beta = torch.randn(dim, generator=g, dtype=torch.float64)
        x = torch.randn(n_samples, dim, generator=g, dtype=torch.float64)
        y = x @ beta + noise_std * torch.randn(n_samples, generator=g, dtype=torch.float64)
        betas.append(beta), xs.append(x), ys.append(y)
    return torch.stack(betas), torch.stack(xs), torch.stack(ys)


def population_rmse(beta: torch.Tensor, beta_star: torch.Tensor, noise_std: float) -> torch.Tensor:
    """For x ~ N(0, I): E (<beta, x> - y)^2 = |beta - beta*|^2 + noise_std^2."""
    return ((beta - beta_star).pow(2).sum(-1) + noise_std**2).sqrt()


def early_stopped_gd(x: torch.Tensor, y: torch.Tensor, lr_large: torch.Tensor | float,
                     lr_small: torch.Tensor | float, anneal_loss: torch.Tensor | float,
                     stop_loss: torch.Tensor | float, max_steps: int, record_path: bool = False) -> dict:
    """Full-batch GD from beta = 0 on B problems at once (x: B x n x d, y: B x n), each with its own
    schedule: lr_large until the train loss first falls to anneal_loss, then lr_small, stopping at the first
    step where the train loss is <= stop_loss. Diverged or unfinished runs are reported, not raised."""
    b, n, d = x.shape
    as_vec = lambda v: torch.as_tensor(v, dtype=x.dtype).expand(b).clone()  # noqa: E731
    lr_large, lr_small, anneal_loss, stop_loss = map(as_vec, (lr_large, lr_small, anneal_loss, stop_loss))
    # The loss is quadratic: L(beta) = beta^T H beta / 2 - g^T beta + c, so a step costs O(d^2), not O(n d).
    hess = 2 * x.transpose(1, 2) @ x / n
    lin = 2 * (x.transpose(1, 2) @ y.unsqueeze(-1)).squeeze(-1) / n
    const = y.pow(2).mean(-1)
    out = {"beta": torch.zeros(b, d, dtype=x.dtype), "train_loss": torch.full((b,), math.nan, dtype=x.dtype),
           "steps": torch.full((b,), max_steps, dtype=torch.long),
           "anneal_step": torch.full((b,), -1, dtype=torch.long),
           "reached": torch.zeros(b, dtype=torch.bool), "diverged": torch.zeros(b, dtype=torch.bool)}
    # Work on the still-running problems only; shrink the working set when half of it has finished.
    idx = torch.arange(b)
    h, g, c, lr_s, a_loss, s_loss = hess, lin, const, lr_small, anneal_loss, stop_loss
    beta, lr, annealed = out["beta"].clone(), lr_large.clone(), torch.zeros(b, dtype=torch.bool)
    active = torch.ones(b, dtype=torch.bool)
    path = [beta.clone()] if record_path else None
    for t in range(max_steps + 1):
        grad = (h @ beta.unsqueeze(-1)).squeeze(-1) - g
        loss = 0.5 * (grad - g).mul(beta).sum(-1) + c  # = beta^T H beta / 2 - g^T beta + c
        done = active & (loss <= s_loss)
        bad = active & (~torch.isfinite(loss) | (loss > 1e12))
        newly = active & ~annealed & (loss <= a_loss)
        annealed |= newly
        out["anneal_step"][idx[newly]] = t
        lr = torch.where(newly, lr_s, lr)
        finished = done | bad | (active & (t == max_steps))
        if finished.any():
            f = idx[finished]
            out["beta"][f], out["train_loss"][f] = beta[finished], loss[finished]
            out["steps"][f], out["reached"][f], out["diverged"][f] = t, done[finished], bad[finished]
            active &= ~finished
            if not active.any():
                break
            if active.sum() * 2 < len(idx) and not record_path:
                keep = active
                idx, h, g, c, lr_s, a_loss, s_loss = (v[keep] for v in (idx, h, g, c, lr_s, a_loss, s_loss))
                beta, grad, lr, annealed, active = beta[keep], grad[keep], lr[keep], annealed[keep], active[keep]
        beta = beta - (lr * active)[:, None] * grad
        if record_path:
            path.append(beta.clone())
    if record_path:
        out["path"] = torch.stack(path, 1)
    return out


def compare_schedules(p: Params, lr_large: float, anneal_loss: float, stop_loss: float,
                      n_samples: int | None = None) -> dict[str, torch.Tensor]:
    """Annealed (lr_large -> lr_small) vs small LR throughout on the same datasets: population RMSE of each."""
    n = n_samples or p.n_samples
    beta_star, x, y = make_datasets(p.seed, p.n_datasets, n, p.noise_std)
    x2, y2 = torch.cat([x, x]), torch.cat([y, y])
    lrs = torch.cat([torch.full((p.n_datasets,), lr_large), torch.full((p.n_datasets,), p.lr_small)])
    run = early_stopped_gd(x2, y2, lrs, p.lr_small, anneal_loss, stop_loss, p.max_steps)
    rmse = population_rmse(run["beta"], torch.cat([beta_star, beta_star]), p.noise_std)
    ok = run["reached"]
    k = p.n_datasets
    return {"rmse_anneal": rmse[:k], "rmse_small": rmse[k:], "valid": ok[:k] & ok[k:],
            "steps_anneal": run["steps"][:k], "steps_small": run["steps"][k:],
            "diverged_anneal": run["diverged"][:k]}


def paired_summary(rmse_small: np.ndarray, rmse_anneal: np.ndarray) -> dict[str, float]:
    """Mean RMSE of each, the paired difference (small - anneal) with a 95% t-interval, and the win rate of
    the annealed schedule with a 95% Wilson interval."""
    diff = rmse_small - rmse_anneal
    n = len(diff)
    mean, sem = float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(n)) if n > 1 else math.nan
    half = float(scipy.stats.t.ppf(0.975, n - 1) * sem) if n > 1 else math.nan
    wins = int((diff > 0).sum())
    ci = scipy.stats.binomtest(wins, n).proportion_ci(0.95, method="wilson")
    return {"n": n, "rmse_small": float(rmse_small.mean()), "rmse_anneal": float(rmse_anneal.mean()),
            "diff_mean": mean, "diff_ci_low": mean - half, "diff_ci_high": mean + half,
            "diff_std": float(diff.std(ddof=1)) if n > 1 else math.nan,
            "win_rate": wins / n, "win_ci_low": float(ci.low), "win_ci_high": float(ci.high)}


def _headline(p: Params) -> dict:
    r = compare_schedules(p, p.lr_large, p.anneal_loss, p.stop_loss)
    ok = r["valid"].numpy()
    small, anneal = r["rmse_small"].numpy()[ok], r["rmse_anneal"].numpy()[ok]
    summary = paired_summary(small, anneal)
    # The report averaged 10 datasets: how often does a 10-dataset average favour the annealed schedule?
    groups = len(small) // 10
    group_diff = (small[: groups * 10] - anneal[: groups * 10]).reshape(groups, 10).mean(1)
    summary.update(n_unfinished=int((~ok).sum()), groups_of_10=groups,
                   groups_of_10_anneal_better=float((group_diff > 0).mean()) if groups else math.nan,
                   median_steps_small=float(r["steps_small"][r["valid"]].float().median()),
                   median_steps_anneal=float(r["steps_anneal"][r["valid"]].float().median()))
    return {"summary": summary, "rmse_small": small, "rmse_anneal": anneal}


def _sweeps(p: Params) -> dict:
    """Win rate of the annealed schedule over (LR ratio x stopping loss) and over the sample count."""
    ratios = np.geomspace(2, 50, p.sweep_size)  # lr_large / lr_small
    stops = np.geomspace(0.02, 0.5, p.sweep_size)
    grid = []
    for ratio, stop in itertools.product(ratios, stops):
        # anneal_loss keeps its default ratio to stop_loss, so only the two swept quantities change
        r = compare_schedules(p, ratio * p.lr_small, stop * p.anneal_loss / p.stop_loss, stop)
        ok = r["valid"]
        diff = (r["rmse_small"] - r["rmse_anneal"])[ok]
        # a diverged annealed run counts as a loss for the annealed schedule
        wins = (diff > 0).sum() / (ok | r["diverged_anneal"]).sum()
        grid.append({"lr_ratio": ratio, "stop_loss": stop, "win_rate": float(wins),
                     "diff_mean": float(diff.mean()), "valid_fraction": float(ok.float().mean()),
                     "diverged_fraction": float(r["diverged_anneal"].float().mean())})
    by_n = []
    for n in np.unique(np.geomspace(3, 200, p.sweep_size).round().astype(int)):
        r = compare_schedules(p, p.lr_large, p.anneal_loss, p.stop_loss, n_samples=int(n))
        ok = r["valid"]
        s = paired_summary(r["rmse_small"][ok].numpy(), r["rmse_anneal"][ok].numpy())
        by_n.append({"n_samples": int(n), **s})
    return {"grid": grid, "by_n": by_n, "by_curvature": _curvature_scan(p)}


def _curvature_scan(p: Params, bins: int = 24) -> list[dict]:
    """RMSE gain of annealing against the dimensionless large rate lr_large * tr(S), S = X^T X / n.

    GD contracts the error along an eigenvector of S (eigenvalue s) by |1 - 2 lr s| per step. Below
    lr = 1 / tr(S) the sharp direction contracts faster, and more so the larger lr: the residual ends in the
    flat direction, where population loss / train loss is largest. At lr = 1 / tr(S) both contract equally."""
    beta_star, x, _ = make_datasets(p.seed, p.n_datasets, p.n_samples, p.noise_std)
    trace = (x.pow(2).sum((1, 2)) / p.n_samples).numpy()
    scaled, gain, win = [], [], []
    for lr in np.geomspace(2 * p.lr_small, 0.6, 3 * p.sweep_size):
        r = compare_schedules(p, float(lr), p.anneal_loss, p.stop_loss)
        ok = (r["valid"] | r["diverged_anneal"]).numpy()
        diff = np.where(r["valid"].numpy(), (r["rmse_small"] - r["rmse_anneal"]).numpy(), np.nan)
        scaled.append(lr * trace[ok]), gain.append(diff[ok]), win.append(diff[ok] > 0)
    scaled, gain, win = map(np.concatenate, (scaled, gain, win))
    edges = np.geomspace(scaled.min(), scaled.max() * (1 + 1e-9), bins + 1)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (scaled >= lo) & (scaled < hi)
        if sel.sum() >= 20:
            rows.append({"lr_trace": float(np.sqrt(lo * hi)), "count": int(sel.sum()),
                         "win_rate": float(win[sel].mean()), "gain_mean": float(np.nanmean(gain[sel])),
                         "diverged_fraction": float(np.isnan(gain[sel]).mean())})
    return rows


def _paths(p: Params) -> dict:
    """GD paths for the figure: the discrete n = 3 example and the first Gaussian dataset."""
    out = {}
    # Discrete example: samples (1,0), (1,0), (0,1), i.e. counts (2, 1); beta* = (1, 1).
    x = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]], dtype=torch.float64)
    y = x @ torch.tensor([1.0, 1.0], dtype=torch.float64)
    eps = 0.05
    for name, lr in (("small_lr", 0.05), ("large_lr_anneal", 1.0)):
        r = early_stopped_gd(x, y, lr, 0.05, 3 * eps, eps, 10_000, record_path=True)
        out[f"discrete_{name}"] = r["path"][0, : int(r["steps"][0]) + 1]
    out["discrete"] = {"x": x[0], "y": y[0], "beta_star": [1.0, 1.0], "stop_loss": eps}
    # The first dataset whose design is clearly anisotropic (s_max / s_min >= 3) and that starts far from the
    # stopping loss (10x), so that the paths have room to differ.
    for i in range(1000):
        beta_star, x, y = make_datasets(p.seed + i, 1, p.n_samples, p.noise_std)
        s = torch.linalg.eigvalsh(x[0].T @ x[0] / p.n_samples)
        if s[-1] >= 3 * s[0] and y.pow(2).mean() >= 10 * p.stop_loss:
            break
    lr_edge = float(p.n_samples / x.pow(2).sum())  # 1 / tr(X^T X / n): both directions contract equally
    for name, lr in (("small_lr", p.lr_small), ("large_lr_anneal", p.lr_large), ("edge", lr_edge)):
        r = early_stopped_gd(x, y, lr, p.lr_small, p.anneal_loss, p.stop_loss, p.max_steps, record_path=True)
        out[f"gaussian_{name}"] = r["path"][0, : int(r["steps"][0]) + 1]
    out["gaussian"] = {"x": x[0], "y": y[0], "beta_star": beta_star[0], "stop_loss": p.stop_loss,
                       "lr_edge": lr_edge, "dataset": i, "anisotropy": float(s[-1] / s[0])}
    return out


# ----------------------------------------------------------------------------------- Nakkiran's setting, the foil


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


def _nakkiran(p: Params) -> dict:
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
    return {"summary": summary, "by_eps": by_eps, "by_eta": by_eta, "paths": _nakkiran_paths(p, beta_star, x)}


def _nakkiran_paths(p: Params, beta_star, x, points: int = 60) -> dict:
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


def foil_table(p: Params, rmse_small: np.ndarray, rmse_anneal: np.ndarray) -> list[dict]:
    """The report's side of the two-settings table, in the terms used for Nakkiran's: its datasets' curvatures
    and the mean test loss (population RMSE squared) of each schedule."""
    _, x, _ = make_datasets(p.seed, p.n_datasets, p.n_samples, p.noise_std)
    split = curvature_split(x.transpose(1, 2) @ x / p.n_samples)
    eta = p.lr_large
    return [{"eta_large": eta, "eta_trace": float(eta * split["trace"].mean()),
             "eta_smax": float(eta * split["s_max"].mean()),
             "sharp_contraction": float(np.abs(1 - 2 * eta * split["s_max"]).mean()),
             "flat_contraction": float(np.abs(1 - 2 * eta * split["s_min"]).mean()),
             "flat_ratio": float(np.median(split["flat_ratio"])), "sharp_ratio": float(np.median(split["sharp_ratio"])),
             "bias": float(np.median(contraction_bias(eta, split["s_max"], split["s_min"]))),
             "test_small": float((rmse_small**2).mean()), "test_anneal": float((rmse_anneal**2).mean()),
             "win_rate": float((rmse_anneal < rmse_small).mean()), "n": int(len(rmse_small))}]


def units(p: Params) -> list[Unit]:
    """One unit: the whole chapter is CPU work of seconds to minutes."""
    def compute() -> dict:
        head = _headline(p)
        nak = _nakkiran(p)
        report_side = foil_table(p, head["rmse_small"], head["rmse_anneal"])[0]
        return {"metrics": head["summary"],
                "data": {"exact": discrete_example(3), "rmse_small": head["rmse_small"],
                         "rmse_anneal": head["rmse_anneal"], **_sweeps(p), "paths": _paths(p),
                         "nakkiran": nak, "report_foil": report_side}}

    return [make_unit("convex", "convex", "convex", VERSION, p.to_dict(), compute, "cpu")]


def run(p: Params, store: Store | None = None, force: bool | None = None) -> Result:
    """Everything the chapter shows, computed once per resolved config and stored."""
    [unit] = units(p)
    return run_unit(store or Store(), unit, force)
