"""The scale-invariant toy model (section 1 of the page): online normalized linear regression, vectorized over many
runs in float64, where the equilibrium relations can be read off exactly and swept over lambda_e; and the exact
discrete norm recursion it is compared with."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch

from repro.metrics.norms import approx_angular_update, equilibrium_angular_update, relaxation_steps
from repro.store import Result

from .measure import log_fit, settle_step, thin
from .params import Params
from .result import Fit


def toy_sgd(lr: torch.Tensor, weight_decay: torch.Tensor, init_norm: torch.Tensor, steps: int, *, dim: int,
            batch: int, seed: int, momentum: torch.Tensor | float = 0.0, noise: float = 1.0,
            drop_at: int | None = None, drop: float = 10.0) -> dict[str, torch.Tensor]:
    """Online SGD with weight decay on R scale-invariant problems at once (float64, CPU).

    Each problem: loss(w) = 1/2 mean_i (<x_i, w / |w|> - y_i)^2 with fresh x ~ N(0, I_dim) and
    y = <u*, x> + noise * eps every step, so the gradient is orthogonal to w and scales as 1 / |w|. Update
    (torch.optim.SGD's convention): v <- momentum v + grad + wd w, w <- w - lr v. At `drop_at` the learning
    rate is divided by `drop`. Returns per step (R x steps): sq_norm after the step, angular update of the
    step, G^2 = |grad|^2 |w|^2 before it.
    """
    g = torch.Generator().manual_seed(seed)
    r = len(lr)
    lr, wd = lr.double().clone(), weight_decay.double()
    mom = torch.as_tensor(momentum, dtype=torch.float64).expand(r)
    w = torch.randn(r, dim, generator=g, dtype=torch.float64)
    w = w / w.norm(dim=1, keepdim=True) * init_norm.double()[:, None]
    v = torch.zeros_like(w)
    out = {k: torch.empty(r, steps, dtype=torch.float64) for k in ("sq_norm", "angular", "grad_sq")}
    for t in range(steps):
        if t == drop_at:
            lr = lr / drop
        x = torch.randn(r, batch, dim, generator=g, dtype=torch.float64)
        y = x[..., 0] + noise * torch.randn(r, batch, generator=g, dtype=torch.float64)
        norm = w.norm(dim=1, keepdim=True)
        u = w / norm
        resid = (x @ u.unsqueeze(-1)).squeeze(-1) - y
        grad_u = (resid.unsqueeze(-1) * x).mean(1)
        grad = (grad_u - (grad_u * u).sum(1, keepdim=True) * u) / norm  # chain rule through w / |w|
        v = mom[:, None] * v + grad + wd[:, None] * w
        new = w - lr[:, None] * v
        out["grad_sq"][:, t] = grad.pow(2).sum(1) * norm.squeeze(1) ** 2
        new_u = new / new.norm(dim=1, keepdim=True)
        out["angular"][:, t] = 2 * torch.asin((new_u - u).norm(dim=1).clamp(max=2) / 2)
        out["sq_norm"][:, t] = new.pow(2).sum(1)
        w = new
    return out


def norm_recursion(lr: float, weight_decay: float, grad_sq: float, init_sq_norm: float, steps: int,
                   drop_at: int | None = None, drop: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """The exact discrete norm dynamics with a constant G^2 and the gradient orthogonal to w:
    |w_{t+1}|^2 = (1 - lr wd)^2 |w_t|^2 + lr^2 G^2 / |w_t|^2 (references, section 4b), and the step's angle
    tan(dtheta_t) = lr G / ((1 - lr wd) |w_t|^2). Returns (|w_t|^2 after step t, dtheta_t) for t = 1..steps."""
    sq, ang = np.empty(steps), np.empty(steps)
    s = init_sq_norm
    for t in range(steps):
        if t == drop_at:
            lr = lr / drop
        ang[t] = math.atan(lr * math.sqrt(grad_sq) / ((1 - lr * weight_decay) * s))
        s = (1 - lr * weight_decay) ** 2 * s + lr**2 * grad_sq / s
        sq[t] = s
    return sq, ang


def toy(p: Params) -> dict:
    """The toy model's sweep over lambda_e, initial norms and lr/wd splits, LR drop and momentum."""
    out: dict = {}
    reps = p.toy_replicas
    common = {"dim": p.toy_dim, "batch": p.toy_batch}
    # 1. Sweep: lr = wd = sqrt(lambda_e), so the equilibrium norm is the same for every lambda_e and every run
    # starts at the same distance from it; the settling time then scales as 1 / lambda_e exactly in theory.
    lam = np.geomspace(p.toy_min_intrinsic_lr, p.toy_max_intrinsic_lr, p.toy_sweep_size)
    steps = int(p.toy_relaxation_times / lam.min())
    rates = torch.tensor(np.repeat(np.sqrt(lam), reps))
    init = 4.0
    run = toy_sgd(rates, rates, torch.full_like(rates, init), steps, seed=p.seed, **common)
    sweep = []
    curves = {}
    for i, le in enumerate(lam):
        sl = slice(i * reps, (i + 1) * reps)
        n = int(math.ceil(p.toy_relaxation_times / le))
        sq = run["sq_norm"][sl, :n].mean(0).numpy()
        ang = run["angular"][sl, :n].numpy()
        gsq = run["grad_sq"][sl, :n].numpy()
        eq = slice(n // 2, n)  # the second half of each run counts as equilibrium (>= 4 relaxation times)
        g2 = float(gsq[:, eq].mean())
        sq_eq = float(run["sq_norm"][sl, eq].mean())
        settle = settle_step(sq, p.equilibrium_tol)
        pred_settle = relaxation_steps(le, init**2 / math.sqrt(g2 / (2 - le)), p.equilibrium_tol)
        sweep.append({"intrinsic_lr": float(le), "lr": float(math.sqrt(le)), "weight_decay": float(math.sqrt(le)),
                      "sq_norm": sq_eq, "pred_sq_norm": math.sqrt(g2 / (2 - le)),  # lr = wd
                      "angular_rms": float(np.sqrt((ang[:, eq] ** 2).mean())),
                      "pred_angular": equilibrium_angular_update(le), "approx_angular": approx_angular_update(le),
                      "grad_sq": g2,
                      "settle_steps": settle, "pred_settle_steps": pred_settle})
        st, v = thin(sq)
        curves[f"{le:.3g}"] = {"step": st, "sq_norm": v}
    fit = log_fit([1 / r["intrinsic_lr"] for r in sweep], [r["settle_steps"] for r in sweep])
    out["sweep"], out["sweep_curves"], out["settle_fit"] = sweep, curves, fit

    # 2. History independence at one lambda_e: initial norms 1/4 .. 16 times, and lr/wd splits 1:16 .. 16:1.
    le = p.toy_intrinsic_lr
    n = int(12 / le)
    inits = [0.25, 1.0, 4.0, 16.0]
    splits = [0.25, 1.0, 4.0]  # lr / sqrt(le); wd = le / lr
    lrs = [math.sqrt(le)] * len(inits) + [s * math.sqrt(le) for s in splits]
    wds = [le / x for x in lrs]
    norms0 = inits + [1.0] * len(splits)
    lr_t = torch.tensor(np.repeat(lrs, reps))
    run = toy_sgd(lr_t, torch.tensor(np.repeat(wds, reps)), torch.tensor(np.repeat(norms0, reps)), n,
                  seed=p.seed + 1, **common)
    hist = []
    for i, (lr_i, wd_i, n0) in enumerate(zip(lrs, wds, norms0, strict=True)):
        sl = slice(i * reps, (i + 1) * reps)
        sq = run["sq_norm"][sl].mean(0).numpy()
        ang = np.sqrt((run["angular"][sl] ** 2).mean(0).numpy())
        # effective LR lr / |w|^2 and angular update, smoothed over 1 / (4 lambda_e) steps for the figure
        k = int(1 / (4 * le))
        smooth = np.sqrt(np.convolve(ang**2, np.ones(k) / k, mode="valid"))
        st, sq_thin = thin(sq)
        st2, ang_thin = thin(smooth)
        hist.append({"lr": lr_i, "weight_decay": wd_i, "init_norm": n0, "step": st, "sq_norm": sq_thin,
                     "effective_lr": lr_i / sq_thin, "angular_step": st2, "angular": ang_thin,
                     "final_sq_norm": float(sq[n // 2:].mean()), "final_effective_lr": float((lr_i / sq[n // 2:])
                                                                                              .mean()),
                     "final_angular": float(np.sqrt((ang[n // 2:] ** 2).mean()))})
    out["history"] = {"intrinsic_lr": le, "runs": hist, "pred_angular": equilibrium_angular_update(le)}

    # 3. LR drop by lr_drop at equilibrium; the exact recursion with the measured G^2 drawn beside it.
    pre = int(8 / le)
    post = int(8 * p.lr_drop / le)
    lr0 = math.sqrt(le)
    run = toy_sgd(torch.full((reps,), lr0), torch.full((reps,), lr0), torch.full((reps,), 1.0), pre + post,
                  seed=p.seed + 2, drop_at=pre, drop=p.lr_drop, **common)
    ang2 = (run["angular"] ** 2).mean(0).numpy()
    g2_before = float(run["grad_sq"][:, pre // 2:pre].mean())
    g2_after = float(run["grad_sq"][:, pre + post // 2:].mean())
    k = int(1 / (8 * le))  # windows of 1 / (8 lambda_e) steps
    win = ang2[: (pre + post) // k * k].reshape(-1, k).mean(1) ** 0.5
    before = float(np.sqrt(ang2[pre // 2:pre].mean()))
    just_after = float(np.sqrt(ang2[pre:pre + 5].mean()))
    final = float(np.sqrt(ang2[pre + post // 2:].mean()))
    # the exact recursion from the same start, with G^2 measured before the drop
    _, exact_ang = norm_recursion(lr0, lr0, g2_before, 1.0, pre + post, drop_at=pre, drop=p.lr_drop)
    out["drop"] = {"intrinsic_lr": le, "drop_step": pre, "window": k, "step": (np.arange(len(win)) + 1) * k,
                   "angular": win, "exact_step": np.arange(0, pre + post, k) + 1, "exact_angular": exact_ang[::k],
                   "before": before, "just_after": just_after, "final": final,
                   "ratio_immediate": before / just_after, "ratio_final": before / final,
                   "grad_sq_before": g2_before, "grad_sq_after": g2_after,
                   "settle_steps_after": settle_step(
                       np.convolve(run["sq_norm"].mean(0).numpy()[pre:], np.ones(k) / k, mode="valid"),
                       p.equilibrium_tol),
                   "pred_settle_steps_after": relaxation_steps(le / p.lr_drop, math.sqrt(p.lr_drop),
                                                               p.equilibrium_tol)}

    # 4. Momentum: same lambda_e, momentum 0 vs p.momentum; Wan et al. predict sqrt(2 lambda_e / (1 + mu)).
    n = int(8 / le * 1)
    moms = [0.0, p.momentum]
    run = toy_sgd(torch.full((2 * reps,), lr0), torch.full((2 * reps,), lr0), torch.ones(2 * reps), n,
                  seed=p.seed + 3, momentum=torch.tensor(np.repeat(moms, reps)), **common)
    out["momentum"] = [{"momentum": m, "intrinsic_lr": le,
                        "angular_rms": float(run["angular"][i * reps:(i + 1) * reps, n // 2:].pow(2).mean().sqrt()),
                        "pred_angular": approx_angular_update(le, m)} for i, m in enumerate(moms)]
    return out


# ============================================================================================ typed view


@dataclasses.dataclass(frozen=True)
class ToyResult:
    """The toy model: the lambda_e sweep, history independence at one lambda_e, the LR drop and momentum."""

    result: Result

    @property
    def data(self) -> dict[str, Any]:
        return self.result.data

    @property
    def sweep(self) -> list[dict[str, float]]:
        """Per lambda_e: measured and predicted equilibrium angular update and |w|^2, mean G^2, steps to settle."""
        return self.data["sweep"]

    @property
    def settle_fit(self) -> Fit:
        return Fit.of(self.data["settle_fit"])

    @property
    def history(self) -> dict[str, Any]:
        """Runs at one lambda_e from different initial norms and lr / wd splits (curves thinned for figures)."""
        return self.data["history"]

    @property
    def drop(self) -> dict[str, Any]:
        """The LR drop: windowed angular update, the exact recursion beside it, and the ratios."""
        return self.data["drop"]

    @property
    def momentum(self) -> list[dict[str, float]]:
        return self.data["momentum"]

    @property
    def max_angular_error(self) -> float:
        return max(abs(r["angular_rms"] / r["pred_angular"] - 1) for r in self.sweep)

    @property
    def max_norm_error(self) -> float:
        return max(abs(r["sq_norm"] / r["pred_sq_norm"] - 1) for r in self.sweep)

    @property
    def intrinsic_lr_range(self) -> tuple[float, float]:
        lams = [r["intrinsic_lr"] for r in self.sweep]
        return min(lams), max(lams)

