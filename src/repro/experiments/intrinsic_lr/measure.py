"""Measurements on recorded curves, shared by the toy model and the network runs: when a curve settles, log-log
fits, and per-layer window averages, equilibrium summaries against the predictions, drift and accuracy of a
network run (a `train_run` dict)."""

from __future__ import annotations

import math

import numpy as np

from repro.metrics.norms import approx_angular_update


def settle_step(curve: np.ndarray, tol: float, final_frac: float = 0.25, steps: np.ndarray | None = None,
                final_steps: float | None = None) -> float:
    """The first step at which `curve` comes within a relative `tol` of its final value: the mean over its last
    `final_steps` steps (the network sweep: a fixed number of 1 / lambda_e) or else its last `final_frac`; NaN if
    that happens only in that final stretch (the run was too short to tell). The first entry, not the last exit,
    so that the equilibrium's own fluctuations do not count as not having arrived."""
    curve = np.asarray(curve, dtype=float)
    steps = np.arange(1, len(curve) + 1) if steps is None else np.asarray(steps)
    final_from = (int(np.searchsorted(steps, steps[-1] - final_steps, side="right")) if final_steps is not None
                  else int(len(curve) * (1 - final_frac)))
    final = curve[final_from:].mean()
    inside = np.nonzero(np.abs(curve / final - 1) <= tol)[0]
    if len(inside) == 0 or inside[0] >= final_from:
        return math.nan
    return float(steps[inside[0]])


def log_fit(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Least-squares line log y = slope log x + intercept, with the slope's standard error."""
    x, y = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 2:
        return {"slope": math.nan, "intercept": math.nan, "slope_se": math.nan, "points": int(len(x))}
    a = np.vstack([x, np.ones_like(x)]).T
    coef, res, *_ = np.linalg.lstsq(a, y, rcond=None)
    se = math.sqrt(res[0] / (len(x) - 2) / ((x - x.mean()) ** 2).sum()) if len(x) > 2 and len(res) else math.nan
    return {"slope": float(coef[0]), "intercept": float(coef[1]), "slope_se": se, "points": int(len(x))}


def thin(a: np.ndarray, n: int = 240) -> tuple[np.ndarray, np.ndarray]:
    """About n log-spaced indices (steps 1..len) and the values there, for figures."""
    idx = np.unique(np.geomspace(1, a.shape[-1], n).astype(int)) - 1
    return idx + 1, a[..., idx]


def window_mean(run: dict, key: str, start: int, end: int, rms: bool = False) -> dict[str, float]:
    """Per group: the mean (or RMS) of a tracked quantity over the windows ending in (start, end]."""
    n = run["norms"]
    step = np.array(n["step"])
    sel = (step > start) & (step <= end)
    out = {}
    for g, vals in n[key].items():
        v = np.array(vals)[sel]
        out[g] = float(np.sqrt((v**2).mean())) if rms else float(v.mean())
    return out


def radial_push(radial: float, angular: float) -> float:
    """How much a radial part of the gradient moves the norm, relative to what sets the equilibrium. With
    cos = cos(w, grad), SGD with weight decay gives |w'|^2 = (1 - lr wd)^2 |w|^2 - 2 lr (1 - lr wd) <w, grad>
    + lr^2 |grad|^2; the radial term over the last one is 2 |cos| |w| / (lr |grad|) = 2 |cos| / dtheta. The
    norm recursion (and every prediction on this page) assumes it is 0, as it is for a scale-invariant layer."""
    return 2 * abs(radial) / angular


def summary(run: dict, start: int, end: int, lr: float, wd: float) -> dict:
    """Measured equilibrium over steps (start, end] against the predictions with the measured G^2, and the
    radial part of the gradient that the predictions assume absent."""
    ang = window_mean(run, "angular", start, end, rms=True)
    sq = window_mean(run, "sq_norm", start, end)
    g2 = window_mean(run, "grad_sq", start, end)
    rad = window_mean(run, "radial", start, end)
    rows = []
    for g in ang:
        rows.append({"group": g, "angular": ang[g], "pred_angular": approx_angular_update(lr * wd, run["momentum"]),
                     "sq_norm": sq[g], "pred_sq_norm": math.sqrt(lr * g2[g] / (wd * (2 - lr * wd))),
                     "effective_lr": lr / sq[g], "grad_sq": g2[g], "radial": rad[g],
                     "radial_push": radial_push(rad[g], ang[g])})
    return {"start": start, "end": end, "lr": lr, "weight_decay": wd, "groups": rows}


def driven_recursion(step: np.ndarray, lr: np.ndarray, weight_decay: np.ndarray, grad_sq: np.ndarray,
                     sq_norm0: float, start: int = 0) -> np.ndarray:
    """|w|^2 at the end of each tracking window from window `start` on, by the norm recursion of a scale-invariant
    layer, |w'|^2 = (1 - lr wd)^2 |w|^2 + lr^2 G^2 / |w|^2, driven step by step with each window's lr, weight
    decay and measured mean G^2, from `sq_norm0` (the measured |w|^2 at the end of window `start`). Where it
    follows the measured norm, the layer's norm is the recursion's; where the measured norm sits above it, a
    radial part of the gradient holds the norm up."""
    out = np.empty(len(step) - start)
    s = float(sq_norm0)
    out[0] = s
    for i in range(start + 1, len(step)):
        a, b = (1 - lr[i] * weight_decay[i]) ** 2, lr[i] ** 2 * grad_sq[i]
        for _ in range(int(step[i] - step[i - 1])):
            s = a * s + b / s
        out[i - start] = s
    return out


def drift(run: dict, end: int, window: float) -> dict[str, float]:
    """Per group: how much the effective LR still moves at `end`: |mean over the last window / mean over the
    window before - 1|, windows of `window` steps (1 / lambda_e: the claim's time unit). NaN if the run is too
    short for two windows."""
    n = run["norms"]
    step = np.array(n["step"])
    w = max(float(window), 2.0 * step[0])
    a = (step > end - 2 * w) & (step <= end - w)
    b = (step > end - w) & (step <= end)
    out = {}
    for g, vals in n["effective_lr"].items():
        v = np.array(vals)
        out[g] = float(abs(v[b].mean() / v[a].mean() - 1)) if a.any() and b.any() and end - 2 * w >= 0 else math.nan
    return out


def acc_at(run: dict, start: int, end: int) -> dict[str, float]:
    h = run["history"]
    st = np.array(h["step"])
    sel = (st > start) & (st <= end)
    acc = np.array(h["test_acc"])[sel]
    return {"best": float(acc.max()), "final": float(acc[-1]), "mean": float(acc.mean()),
            "best_step": int(st[sel][acc.argmax()])}
