"""The report's experiment (sections 2 and 3 of the chapter): early-stopped full-batch gradient descent on
Gaussian 2-D linear regression datasets, the annealed schedule against the small rate throughout, paired on the
same datasets, and where the large initial rate helps.

Loss convention (the report's): train loss = mean squared error (1/n) sum (<beta, x_i> - y_i)^2, so its
Hessian is 2 X^T X / n and gradient descent is stable for lr < 1 / lambda_max(X^T X / n).
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING

import numpy as np
import scipy.stats
import torch

if TYPE_CHECKING:  # the package's Params, for annotations only
    from repro.experiments.convex import Params

# The report's own 10-run table (course report, section 4.3): test RMSE at train loss 0.1,
# small LR 0.01 throughout vs large LR 0.1 then 0.01. Reference values, not our results.
REPORT_RMSE_SMALL = [0.237, 0.242, 0.236, 0.229, 0.244, 0.254, 0.217, 0.249, 0.266, 0.22]
REPORT_RMSE_ANNEAL = [0.217, 0.228, 0.233, 0.231, 0.211, 0.249, 0.235, 0.251, 0.243, 0.213]
REPORT_AVERAGES = {"small": 0.2394, "anneal": 0.2311}
REPORT_SOURCE = "course report, section 4.3"
# The level-set figure's discrete example: a small rate throughout against a large one annealed to it, stopped at
# train loss 0.05 (the exact analysis holds at any stopping loss; these make the two paths visibly different).
DISCRETE_RATES = (0.05, 1.0)
DISCRETE_STOP_LOSS = 0.05


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
    low, high = wilson_interval(wins, n)
    return {"n": n, "rmse_small": float(rmse_small.mean()), "rmse_anneal": float(rmse_anneal.mean()),
            "diff_mean": mean, "diff_ci_low": mean - half, "diff_ci_high": mean + half,
            "diff_std": float(diff.std(ddof=1)) if n > 1 else math.nan,
            "win_rate": wins / n, "win_ci_low": low, "win_ci_high": high}


def wilson_interval(wins: int, n: int) -> tuple[float, float]:
    """The 95% Wilson interval of a win rate `wins / n`."""
    ci = scipy.stats.binomtest(int(wins), int(n)).proportion_ci(0.95, method="wilson")
    return float(ci.low), float(ci.high)


def headline(p: Params) -> dict:
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


def sweeps(p: Params) -> dict:
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
    return {"grid": grid, "by_n": by_n, "by_curvature": curvature_scan(p)}


def curvature_scan(p: Params, bins: int = 24) -> list[dict]:
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


def paths(p: Params) -> dict:
    """GD paths for the figure: the discrete n = 3 example and the first Gaussian dataset."""
    out = {}
    # Discrete example: samples (1,0), (1,0), (0,1), i.e. counts (2, 1); beta* = (1, 1).
    x = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]], dtype=torch.float64)
    y = x @ torch.tensor([1.0, 1.0], dtype=torch.float64)
    eps = DISCRETE_STOP_LOSS
    small, large = DISCRETE_RATES
    for name, lr in (("small_lr", small), ("large_lr_anneal", large)):
        r = early_stopped_gd(x, y, lr, small, 3 * eps, eps, 10_000, record_path=True)
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
