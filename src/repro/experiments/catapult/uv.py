"""The uv model of Lewkowycz et al. (2020), exactly (repro.models.uv): phase diagrams over eta * lambda0 and the
width n for the squared and the logistic loss, trajectories at one width, and the width dependence of the spike.
Everything here is float64 on the CPU and takes seconds."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from repro.models import uv as uv_model
from repro.store import Result

from .params import Params
from .phases import THEORY_LR_CRIT, classify, first_above, max_rise


def _uv_inits(widths: list[int], seeds: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """f0, lambda0 of shape (widths, seeds) and the widths as a (widths, 1) tensor; width n from seed + n."""
    f0, lam0 = zip(*(uv_model.f_and_lambda(*uv_model.init(n, seeds, seed + n)) for n in widths), strict=True)
    return torch.stack(f0), torch.stack(lam0), torch.tensor(widths, dtype=torch.float64)[:, None]


def uv_phase(widths: list[int], lr_factors: np.ndarray, steps: int, seeds: int, seed: int,
             loss: str = "mse") -> dict:
    """Outcome of every (width, initialisation, eta * lambda0) run, with each run's eta = factor / lambda0
    of its own initialisation, and per width the measured edges (the median over initialisations of the
    first factor whose loss spikes, and of the first that diverges)."""
    f0, lam0, n = _uv_inits(widths, seeds, seed)  # (W, S)
    c = torch.as_tensor(lr_factors, dtype=torch.float64)
    r = uv_model.trajectory(f0[..., None], lam0[..., None], c / lam0[..., None], n[..., None], steps, loss)
    rise = max_rise(r["loss"])  # (W, S, C)
    ratio = r["loss"][..., 1:].max(-1).values / r["loss"][..., 0]
    lr_lam_final = c / lam0[..., None] * r["lambda"][..., -1]
    rows, edges = [], []
    for i, width in enumerate(widths):
        crit, top = [], []
        for s in range(seeds):
            outcome = [classify(float(rise[i, s, j]), bool(r["diverged"][i, s, j])) for j in range(len(c))]
            crit.append(first_above(list(lr_factors), [o != "lazy" for o in outcome]))
            top.append(first_above(list(lr_factors), [o == "divergent" for o in outcome]))
            rows += [{"width": width, "init": s, "lr_factor": float(c[j]), "outcome": outcome[j],
                      "max_rise": float(rise[i, s, j]), "max_loss_ratio": float(ratio[i, s, j]),
                      "lr_lambda_final": float(lr_lam_final[i, s, j])} for j in range(len(c))]
        edges.append({"width": width, "lr_crit": float(np.median(crit)),
                      "lr_max": float(np.median(top)) if not any(map(math.isnan, top)) else math.nan})
    return {"runs": rows, "edges": edges}


def uv_spike_vs_width(widths: list[int], lr_factors: list[float], steps: int, seeds: int, seed: int) -> list[dict]:
    """Height (peak loss / initial loss) and duration (steps until the loss is back below its start, for
    good) of the catapult spike against the width n; medians over initialisations."""
    f0, lam0, n = _uv_inits(widths, seeds, seed)
    c = torch.as_tensor(lr_factors, dtype=torch.float64)
    r = uv_model.trajectory(f0[..., None], lam0[..., None], c / lam0[..., None], n[..., None], steps)
    loss = r["loss"]  # (W, S, C, T)
    idx = torch.arange(loss.shape[-1], dtype=torch.float64)
    duration = torch.where(loss > loss[..., :1], idx, torch.zeros_like(idx)).max(-1).values + 1
    peak = loss.max(-1).values / loss[..., 0]
    rows = []
    for i, width in enumerate(widths):
        for j, factor in enumerate(lr_factors):
            rows.append({"width": width, "lr_factor": factor, "peak_ratio": float(peak[i, :, j].median()),
                         "peak_loss": float(loss[i, :, j].max(-1).values.median()),
                         "duration": float(duration[i, :, j].median()),
                         "converged": bool(((loss[i, :, j, -1] < loss[i, :, j, 0]) & ~r["diverged"][i, :, j]).all())})
    return rows


def uv_experiment(p: Params) -> dict:
    widths = sorted({int(w) for w in np.geomspace(16, p.uv_width_max, 5).round()} | {p.uv_width})
    c_mse = np.linspace(5 / p.uv_grid, 5, p.uv_grid, endpoint=False)  # (0, 5), grid step 5 / uv_grid
    mse = uv_phase(widths, c_mse, p.uv_steps, p.uv_seeds, p.seed)
    c_log = np.linspace(16 / p.uv_grid, 16, p.uv_grid, endpoint=False)
    logistic = uv_phase(widths, c_log, p.uv_steps, p.uv_seeds, p.seed, loss="logistic")
    # trajectories at one width and one initialisation
    u, v = uv_model.init(p.uv_width, 1, p.seed)
    f0, lam0 = uv_model.f_and_lambda(u, v)
    shown = min(p.uv_steps, 200)
    traj = {}
    for name, factors in (("mse", [0.5, 1.5, 1.9, 2.5, 3.0, 3.5, 3.9, 4.1]),
                          ("logistic", [4.0, 7.5, 9.0, 12.0, 24.0])):
        for c in factors:
            r = uv_model.trajectory(f0, lam0, c / lam0, p.uv_width, p.uv_steps, name)
            traj[f"{name}_{c}"] = {"lr_factor": c, "loss": r["loss"][0, : shown + 1],
                                   "lr_lambda": (c / lam0 * r["lambda"])[0, : shown + 1],
                                   "diverged": bool(r["diverged"][0]),
                                   "lr_lambda_final": float(c / lam0[0] * r["lambda"][0, -1])}
    # a logistic check far beyond the squared loss's window: does anything diverge up to 64 / lambda0?
    far = uv_model.trajectory(f0, lam0, torch.tensor([16.0, 32.0, 64.0], dtype=torch.float64) / lam0, p.uv_width,
                        p.uv_steps, "logistic")
    spike_widths = [int(w) for w in np.unique(np.geomspace(16, p.uv_width_max, 8).round())]
    spikes = uv_spike_vs_width(spike_widths, [2.5, 3.0, 3.5], p.uv_steps, p.uv_seeds, p.seed)
    big = [e for e in mse["edges"] if e["width"] == max(widths)][0]
    big_log = [e for e in logistic["edges"] if e["width"] == max(widths)][0]
    metrics = {"uv_lambda0": float(lam0[0]), "uv_lr_crit": big["lr_crit"], "uv_lr_max": big["lr_max"],
               "uv_grid_step": 5 / p.uv_grid, "uv_width_of_edges": max(widths),
               "uv_logistic_lr_crit": big_log["lr_crit"], "uv_logistic_lr_max": big_log["lr_max"],
               "uv_logistic_grid_step": 16 / p.uv_grid,
               "uv_logistic_diverged_up_to_64": bool(far["diverged"].any())}
    return {"metrics": metrics,
            "data": {"phase_mse": mse, "phase_logistic": logistic, "trajectories": traj, "spikes": spikes,
                     "widths": widths}}




@dataclasses.dataclass
class UvSection:
    """The stored uv experiment, read by the verdicts and figures."""

    result: Result

    @property
    def width(self) -> int:
        """The width of the trajectory figure."""
        return int(self.result.config["uv_width"])

    @property
    def lambda0(self) -> float:
        return self.result.metrics["uv_lambda0"]

    @property
    def width_of_edges(self) -> int:
        """The largest width, at which the edges are read."""
        return int(self.result.metrics["uv_width_of_edges"])

    @property
    def lr_crit(self) -> float:
        return self.result.metrics["uv_lr_crit"]

    @property
    def lr_max(self) -> float:
        return self.result.metrics["uv_lr_max"]

    @property
    def grid_step(self) -> float:
        return self.result.metrics["uv_grid_step"]

    @property
    def logistic_lr_crit(self) -> float:
        return self.result.metrics["uv_logistic_lr_crit"]

    @property
    def logistic_grid_step(self) -> float:
        return self.result.metrics["uv_logistic_grid_step"]

    @property
    def logistic_diverged_up_to_64(self) -> bool:
        return bool(self.result.metrics["uv_logistic_diverged_up_to_64"])

    def phase_runs(self, loss: str = "mse") -> list[dict]:
        """One row per (width, initialisation, eta * lambda0) run."""
        return self.result.data[f"phase_{loss}"]["runs"]

    def edges(self, loss: str = "mse") -> list[dict]:
        """Per width, the measured edges (median over initialisations)."""
        return self.result.data[f"phase_{loss}"]["edges"]

    def trajectories(self, loss: str = "mse") -> list[dict]:
        """The runs at one width and initialisation, in order of eta * lambda0."""
        return [v for k, v in self.result.data["trajectories"].items() if k.startswith(f"{loss}_")]

    @property
    def spikes(self) -> list[dict]:
        return self.result.data["spikes"]

    @property
    def catapult_below_edge(self) -> float:
        """The fraction of squared-loss catapult runs (every width and initialisation) that end flatter than the
        edge, eta * lambda_final < 2."""
        final = [r["lr_lambda_final"] for r in self.phase_runs() if r["outcome"] == "catapult"]
        return float(np.mean([f < THEORY_LR_CRIT for f in final])) if final else math.nan

    def spike_slope(self, lr_factor: float) -> float:
        """The log-log slope of the spike's peak loss against the width at one eta * lambda0 (uv theory: 1). The
        peak loss itself, not over the initial loss f0^2 / 2, whose f0 ~ N(0, 1) makes that ratio heavy-tailed."""
        rows = [r for r in self.spikes if r["lr_factor"] == lr_factor]
        if len(rows) < 2:
            return math.nan
        return float(np.polyfit(np.log([r["width"] for r in rows]), np.log([r["peak_loss"] for r in rows]), 1)[0])
