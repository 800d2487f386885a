"""The catapult phase (Lewkowycz et al. 2020) and its logistic-loss, deep-linear follow-up (Huang et al.).

Three stored sub-experiments, each cached on its own:
- `catapult_uv`: the uv model's exact dynamics (models/uv.py) for the squared and the logistic loss: phase
  diagram over eta * lambda0 and the width n, trajectories, and the width dependence of the spike.
- `catapult_nets`: full-batch gradient descent with the squared loss on a real image subset, for NTK-
  parameterised ReLU MLPs of two widths and a small CNN, with centred outputs f(x) - f0(x): lambda0, the sweep of
  eta * lambda0 from the lazy side to divergence, the curvature along training and at the end, and train and
  test accuracy at equal physical time eta * steps, with and without a final small-LR phase.
- `catapult_eos`: the edge of stability (Cohen et al. 2021): full-batch gradient descent on a CIFAR-10 subset
  with Cohen et al.'s fc-tanh network and the squared loss, the sharpness tracked along training, at several eta.
- `catapult_linear`: deep linear networks with the logistic loss on degenerate, non-separable and separable
  data: where the lazy regime ends, the curvature reached, and test accuracy on the non-separable data.

Normalisation (metrics/hessian.py): lambda0 is the top eigenvalue of the empirical NTK J J^T / m, with the
squared loss L = (1/2m) sum_i |f(x_i) - y_i|^2, so gradient descent's linear stability edge is eta lambda0 = 2.
Learning rates are given as eta * lambda0 throughout.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from repro import params as P
from repro.data import load_dataset
from repro.data.vision import SPLIT_SIZES
from repro.device import get_device, num_threads
from repro.metrics.hessian import functional, hessian_top_eigenvalue, ntk_top_eigenvalue
from repro.models import uv
from repro.models.ntk import NTKMLP, NTKConvNet
from repro.regime import Regime, at_least, at_most
from repro.store import Result, Store
from repro.units import Unit, make_unit, run_unit

VERSION = 1  # the uv model and the deep linear nets
NETS_VERSION = 2  # 2: centred outputs, a dense rate grid across the edges
EOS_VERSION = 1

# Predictions and reported values, in units of 1 / lambda0 (sources: /refs/papers.md sections 3 and 5).
THEORY_LR_CRIT = 2.0  # Lewkowycz et al. 2020: lazy/catapult edge, squared loss
THEORY_LR_MAX = 4.0  # Lewkowycz et al. 2020: uv model's divergence edge
PAPER_RELU_LR_MAX = 12.0  # Lewkowycz et al. 2020, ReLU nets, empirical (secondary summary; UNVERIFIED)
LOGISTIC_LR_CRIT = 8.0  # logistic loss at its minimum has curvature 1/4 of the squared loss's: 2 / (lambda0 / 4)
# A spike: the loss rises 1% above its lowest value so far (gradient descent in the lazy regime only lowers
# it). Diverged: the loss is non-finite or 1e4 times its start.
THRESHOLDS = {"spike": 1.01, "diverged": 1e4}
# Regime checks of the networks (see net_regimes): a trained network fits its training set; a lazy start has the
# zero output's loss (centred output) and an NTK that hardly moves at the smallest rate.
FIT_ACCURACY = 0.99
LAZY_START_LOSS = 1.05
LAZY_NTK_CHANGE = 0.1


@dataclasses.dataclass(frozen=True)
class Params(P.Params):
    seed: int = P.param(0, "seed of initialisations and data subsets", ge=0)
    device: str = P.param("auto", "where the networks train: auto (CUDA if present), cpu or cuda",
                          choices=("auto", "cpu", "cuda"))
    # the uv model
    uv_width: int = P.param(1000, "width n of the uv model in the trajectory figure", ge=2)
    uv_width_max: int = P.param(100_000, "largest width n of the uv width scan (which starts at n 16)", ge=32)
    uv_grid: int = P.param(200, "points of eta * lambda0 in the uv phase diagrams", ge=10)
    uv_steps: int = P.param(3000, "gradient descent steps of each uv run", ge=10)
    uv_seeds: int = P.param(4, "independent uv initialisations per width", ge=1)
    # real networks, squared loss, full-batch gradient descent
    dataset: str = P.param("mnist", "image data of the network experiments", choices=("mnist", "cifar10"))
    n_train: int = P.param(256, "training images (a fixed random subset of the train split)", ge=16)
    n_test: int = P.param(2000, "test images for the test accuracy", ge=16)
    width_small: int = P.param(256, "hidden width of the narrower ReLU MLP (paper: 2048)", ge=8)
    width_large: int = P.param(512, "hidden width of the wider ReLU MLP", ge=8)
    depth: int = P.param(1, "hidden layers of the MLPs (paper: 1 to 3)", ge=1, le=4)
    cnn_channels: int = P.param(16, "filters of the CNN's first conv layer (second: twice that)", ge=1)
    lr_max_factor: float = P.param(64.0, "largest eta * lambda0 of the network sweeps", gt=5)
    sweep_size: int = P.param(14, "learning rates per deep linear sweep", ge=4)
    edge_step: float = P.param(0.4, "spacing of eta * lambda0 from 2.1 to 4.5 in the network sweeps", gt=0, le=1)
    high_rates: int = P.param(7, "network rates above 5 / lambda0 (geometric up to lr_max_factor)", ge=1)
    physical_time: float = P.param(250.0, "training length eta * steps in units of 1 / lambda0", gt=0)
    anneal_lr_factor: float = P.param(1.0, "eta * lambda0 of the final small-LR phase", gt=0, lt=2)
    anneal_steps: int = P.param(30, "steps of the final small-LR phase", ge=0)
    lanczos_iters: int = P.param(12, "Lanczos iterations per top eigenvalue", ge=2)
    # edge of stability (Cohen et al. 2021): full-batch GD on a CIFAR-10 subset, fc-tanh, squared loss
    eos_n_train: int = P.param(1000, "CIFAR-10 training images of the edge-of-stability runs (Cohen et al.: 5000)",
                               ge=16)
    eos_width: int = P.param(100, "width of the two tanh hidden layers (Cohen et al.'s fc-tanh: 200)", ge=4)
    eos_lrs: int = P.param(3, "learning rates of the edge-of-stability runs", ge=1)
    eos_edge_min: float = P.param(1.15, "smallest 2/eta, in units of the sharpness at initialisation", gt=1)
    eos_edge_max: float = P.param(1.35, "largest 2/eta, in units of the sharpness at initialisation", gt=1)
    eos_steps: int = P.param(700, "gradient descent steps of each edge-of-stability run", ge=10)
    eos_every: int = P.param(50, "steps between sharpness measurements", ge=1)
    # deep linear networks, logistic loss
    dl_width: int = P.param(64, "width of the deep linear networks", ge=2)
    dl_depth: int = P.param(3, "layers of the deep linear networks (hidden layers + readout)", ge=2)
    dl_dim: int = P.param(10, "input dimension of the synthetic classification data", ge=2)
    dl_n_train: int = P.param(200, "training points of the synthetic data", ge=4)
    dl_label_noise: float = P.param(0.2, "fraction of flipped training labels (non-separable data)", gt=0,
                                    lt=0.5)
    dl_steps: int = P.param(2000, "gradient descent steps per deep linear run", ge=10)
    dl_lr_max_factor: float = P.param(40.0, "largest eta * lambda0 of the deep linear sweeps", gt=8)

    PRESETS = {
        "smoke": {"uv_width_max": 1000, "uv_grid": 40, "uv_steps": 300, "uv_seeds": 1, "n_train": 64,
                  "n_test": 200, "width_small": 32, "width_large": 64, "cnn_channels": 4, "sweep_size": 6,
                  "lanczos_iters": 6, "physical_time": 30.0, "anneal_steps": 10, "dl_width": 16, "dl_n_train": 60,
                  "dl_steps": 150, "edge_step": 0.8, "high_rates": 2, "eos_n_train": 128, "eos_width": 32,
                  "eos_lrs": 2, "eos_steps": 60, "eos_every": 20},
        "paper": {"uv_width_max": 1_000_000, "uv_grid": 400, "uv_steps": 4000, "uv_seeds": 8,
                  "n_train": 2000, "n_test": 10_000, "width_small": 512, "width_large": 2048, "depth": 3,
                  "cnn_channels": 64, "sweep_size": 24, "physical_time": 1000.0, "anneal_steps": 500,
                  "lanczos_iters": 30, "dl_width": 256, "dl_dim": 50, "dl_n_train": 1000, "dl_steps": 10_000,
                  "edge_step": 0.2, "high_rates": 12, "eos_n_train": 5000, "eos_width": 200, "eos_lrs": 4,
                  "eos_edge_min": 1.5, "eos_edge_max": 3.0, "eos_steps": 5000, "eos_every": 25},
    }

    def check(self) -> None:
        if self.width_small >= self.width_large:
            raise P.ConfigError(f"width_small ({self.width_small}) must be smaller than width_large "
                                f"({self.width_large}).")
        for name, split in (("n_train", "train"), ("n_test", "test")):
            if getattr(self, name) > SPLIT_SIZES[self.dataset][split]:
                raise P.ConfigError(f"{name} ({getattr(self, name)}) exceeds the {SPLIT_SIZES[self.dataset][split]} "
                                    f"{self.dataset} {split} images; lower it.")
        if self.eos_edge_min > self.eos_edge_max:
            raise P.ConfigError(f"eos_edge_min ({self.eos_edge_min}) must not exceed eos_edge_max "
                                f"({self.eos_edge_max}).")
        if self.eos_n_train > SPLIT_SIZES["cifar10"]["train"]:
            raise P.ConfigError(f"eos_n_train ({self.eos_n_train}) exceeds the {SPLIT_SIZES['cifar10']['train']} "
                                f"cifar10 train images; lower it.")
        if self.uv_width > self.uv_width_max:
            raise P.ConfigError(f"uv_width ({self.uv_width}) must not exceed uv_width_max ({self.uv_width_max}).")
        if self.dl_n_train <= 2 * self.dl_dim:
            raise P.ConfigError(f"dl_n_train ({self.dl_n_train}) must exceed 2 * dl_dim ({2 * self.dl_dim}), or "
                                f"the noisy labels would be linearly separable.")

    def datasets(self) -> list[tuple[str, str]]:
        return [(self.dataset, "train"), (self.dataset, "test"), ("cifar10", "train")]


def resolve_device(p: Params) -> torch.device:
    return get_device(p.device)


def lr_grid(low_side: int, high_side: int, top: float, edge: float) -> np.ndarray:
    """eta * lambda0 values: `low_side` evenly from edge/2 to 0.95 edge (lazy side), `high_side` geometric
    from 1.1 edge to `top`."""
    return np.concatenate([np.linspace(edge / 2, 0.95 * edge, low_side), np.geomspace(1.1 * edge, top, high_side)])


def net_lr_grid(edge_step: float, high_rates: int, top: float) -> np.ndarray:
    """eta * lambda0 of the network sweeps: two lazy rates (1 and 1.9), every edge_step from 2.1 to 4.5, so that
    both the lazy edge 2 and the uv model's divergence edge 4 fall between neighbours no more than edge_step apart,
    then high_rates geometric from 5 to `top` (the paper's ~12 for ReLU nets lies in that range)."""
    window = np.arange(2.1, 4.5 + 1e-9, edge_step)
    return np.concatenate([[1.0, 1.9], window, np.geomspace(5.0, top, high_rates)])


def max_rise(loss: list[float] | torch.Tensor) -> float | torch.Tensor:
    """Largest ratio of the loss to its lowest value before (over the last axis of a tensor). Losses are
    floored at 1e-12 of the initial loss, so that rounding near an exact zero loss is not read as a rise."""
    loss = torch.as_tensor(loss, dtype=torch.float64)
    if loss.shape[-1] < 2:
        return 1.0 if loss.ndim == 1 else torch.ones(loss.shape[:-1], dtype=torch.float64)
    loss = loss + 1e-12 * loss[..., :1]
    rise = (loss[..., 1:] / torch.cummin(loss, -1).values[..., :-1]).nan_to_num(nan=math.inf).max(-1).values
    return float(rise) if loss.ndim == 1 else rise


def classify(rise: float, diverged: bool) -> str:
    """lazy (the loss only goes down), catapult (it rises, then converges) or divergent."""
    if diverged:
        return "divergent"
    return "catapult" if rise > THRESHOLDS["spike"] else "lazy"


def first_above(xs: list[float], flags: list[bool]) -> float:
    """The smallest x at which the flag is set (nan if never)."""
    hits = [x for x, f in zip(xs, flags, strict=True) if f]
    return min(hits) if hits else math.nan


# ------------------------------------------------------------------------------------------------- the uv model


def _uv_inits(widths: list[int], seeds: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """f0, lambda0 of shape (widths, seeds) and the widths as a (widths, 1) tensor; width n from seed + n."""
    f0, lam0 = zip(*(uv.f_and_lambda(*uv.init(n, seeds, seed + n)) for n in widths), strict=True)
    return torch.stack(f0), torch.stack(lam0), torch.tensor(widths, dtype=torch.float64)[:, None]


def uv_phase(widths: list[int], lr_factors: np.ndarray, steps: int, seeds: int, seed: int,
             loss: str = "mse") -> dict:
    """Outcome of every (width, initialisation, eta * lambda0) run, with each run's eta = factor / lambda0
    of its own initialisation, and per width the measured edges (the median over initialisations of the
    first factor whose loss spikes, and of the first that diverges)."""
    f0, lam0, n = _uv_inits(widths, seeds, seed)  # (W, S)
    c = torch.as_tensor(lr_factors, dtype=torch.float64)
    r = uv.trajectory(f0[..., None], lam0[..., None], c / lam0[..., None], n[..., None], steps, loss)
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
    r = uv.trajectory(f0[..., None], lam0[..., None], c / lam0[..., None], n[..., None], steps)
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
    u, v = uv.init(p.uv_width, 1, p.seed)
    f0, lam0 = uv.f_and_lambda(u, v)
    shown = min(p.uv_steps, 200)
    traj = {}
    for name, factors in (("mse", [0.5, 1.5, 1.9, 2.5, 3.0, 3.5, 3.9, 4.1]),
                          ("logistic", [4.0, 7.5, 9.0, 12.0, 24.0])):
        for c in factors:
            r = uv.trajectory(f0, lam0, c / lam0, p.uv_width, p.uv_steps, name)
            traj[f"{name}_{c}"] = {"lr_factor": c, "loss": r["loss"][0, : shown + 1],
                                   "lr_lambda": (c / lam0 * r["lambda"])[0, : shown + 1],
                                   "diverged": bool(r["diverged"][0]),
                                   "lr_lambda_final": float(c / lam0[0] * r["lambda"][0, -1])}
    # a logistic check far beyond the squared loss's window: does anything diverge up to 64 / lambda0?
    far = uv.trajectory(f0, lam0, torch.tensor([16.0, 32.0, 64.0], dtype=torch.float64) / lam0, p.uv_width,
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


# ----------------------------------------------------------------------------------------------- real networks


def image_data(p: Params, device: torch.device) -> dict[str, torch.Tensor]:
    """A fixed random train subset and the first n_test test images, standardised with the subset's
    mean and std, one-hot targets (the squared loss of the paper)."""
    g = torch.Generator().manual_seed(p.seed)
    train = load_dataset(p.dataset, "train", device).subset(p.n_train, g)
    test = load_dataset(p.dataset, "test", device).subset(p.n_test)
    xtr, xte = train.x.float() / 255, test.x.float() / 255
    mean, std = xtr.mean(), xtr.std()
    return {"x": (xtr - mean) / std, "y": train.y, "t": F.one_hot(train.y, train.num_classes).float(),
            "x_test": (xte - mean) / std, "y_test": test.y}


def make_net(kind: str, p: Params, shape: tuple[int, ...], classes: int) -> torch.nn.Module:
    if kind == "cnn":
        return NTKConvNet(shape[0], shape[1], p.cnn_channels, classes, seed=p.seed)
    width = p.width_small if kind == "mlp_small" else p.width_large
    return NTKMLP(math.prod(shape), width, p.depth, classes, "relu", seed=p.seed)


def gd_squared_loss(apply, theta: torch.Tensor, x: torch.Tensor, t: torch.Tensor, lr: float, steps: int,
                    measure=None, measure_at: tuple[int, ...] = ()) -> dict:
    """Full-batch gradient descent on L = (1/2m) sum |f - t|^2. Stops early, and says so, once the loss is
    non-finite or THRESHOLDS["diverged"] times its start: a diverged run is a result. `measure(theta)` is
    recorded before the steps listed in `measure_at`. Returns the final theta and the loss at every step."""
    m = x.shape[0]

    def loss_fn(th: torch.Tensor) -> torch.Tensor:
        return 0.5 * (apply(th, x) - t).pow(2).sum() / m

    grad_and_loss = torch.func.grad_and_value(loss_fn)
    losses, measured, diverged = [], [], False
    theta = theta.clone()
    for step in range(steps + 1):
        if step == steps:
            losses.append(float(loss_fn(theta)))
        else:
            g, loss = grad_and_loss(theta)
            losses.append(float(loss))
        if not math.isfinite(losses[-1]) or losses[-1] > THRESHOLDS["diverged"] * losses[0]:
            diverged = True
            break
        if measure is not None and step in measure_at:
            measured.append((step, measure(theta)))
        if step < steps:
            theta = theta - lr * g
    return {"theta": theta, "loss": losses, "diverged": diverged, "measured": measured}


def accuracy(apply, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, offset: torch.Tensor | None = None,
             batch: int = 2000) -> float:
    """Accuracy of argmax(f(x) - offset): the offset is the output at initialisation for a centred network."""
    with torch.no_grad():
        hits = 0
        for i in range(0, len(y), batch):
            out = apply(theta, x[i:i + batch])
            if offset is not None:
                out = out - offset[i:i + batch]
            hits += int((out.argmax(1) == y[i:i + batch]).sum())
    return hits / len(y)


def outputs_at(apply, theta: torch.Tensor, x: torch.Tensor, batch: int = 2000) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([apply(theta, x[i:i + batch]) for i in range(0, len(x), batch)])


def _thin(curve: list[float], keep: int = 400) -> tuple[list[int], list[float]]:
    """At most `keep` points of a curve (all of the first 100 steps, then evenly spaced), with their steps."""
    n = len(curve)
    idx = sorted(set(range(min(n, 100))) | set(np.linspace(0, n - 1, min(n, keep)).round().astype(int).tolist()))
    return idx, [curve[i] for i in idx]


def net_sweep(kind: str, p: Params, data: dict[str, torch.Tensor], device: torch.device) -> dict:
    """lambda0 at initialisation, then one run per eta * lambda0 on the grid, each for physical time
    eta * steps = physical_time / lambda0, then anneal_steps at eta = anneal_lr_factor / lambda0.

    The network's output is centred, f(x) - f0(x), as in the NTK setups of Lewkowycz et al.: the initial loss is
    then that of the zero output, the lazy regime's starting point. Centring by a constant leaves the Jacobian,
    so lambda0 and every NTK and Hessian eigenvalue, unchanged; it is done by shifting the targets by f0."""
    model = make_net(kind, p, tuple(data["x"].shape[1:]), int(data["t"].shape[1])).to(device)
    theta0, apply = functional(model)
    x, m = data["x"], data["x"].shape[0]
    f0, f0_test = outputs_at(apply, theta0, x), outputs_at(apply, theta0, data["x_test"])
    t = data["t"] + f0  # |f - t|^2 = |(f - f0) - onehot|^2

    def outputs(th):
        return apply(th, x)

    def loss(th):
        return 0.5 * (apply(th, x) - t).pow(2).sum() / m

    lambda0 = ntk_top_eigenvalue(outputs, theta0, p.lanczos_iters, seed=p.seed)
    hessian0 = hessian_top_eigenvalue(loss, theta0, p.lanczos_iters, seed=p.seed)
    grid = net_lr_grid(p.edge_step, p.high_rates, p.lr_max_factor)
    # curvature along training for three representative rates: lazy, catapult, deep in the window
    tracked = {float(grid[np.abs(grid - c).argmin()]) for c in (1.0, 3.0, 8.0)}
    runs = []
    for c in tqdm(grid, desc=f"{kind}: eta * lambda0", leave=False, disable=None):
        c = float(c)
        lr, steps = c / lambda0, max(1, math.ceil(p.physical_time / c))
        at = tuple(np.unique(np.geomspace(1, steps + 1, 8).round().astype(int) - 1)) if c in tracked else ()
        run = gd_squared_loss(apply, theta0, x, t, lr, steps,
                              lambda th: ntk_top_eigenvalue(outputs, th, p.lanczos_iters, seed=p.seed), at)
        lam_t = [(s, lr * lam) for s, lam in run["measured"]]  # eta * lambda_t
        losses = run["loss"]
        ratio = max(losses[1:], default=losses[0]) / losses[0]
        row = {"lr_factor": c, "lr": lr, "steps": steps, "diverged": run["diverged"],
               "outcome": classify(max_rise(losses), run["diverged"]), "max_rise": max_rise(losses),
               "max_loss_ratio": ratio,
               "final_loss": losses[-1], "loss_steps": _thin(losses)[0], "loss": _thin(losses)[1],
               "lr_lambda_t": lam_t}
        if not run["diverged"]:
            theta = run["theta"]
            lam_final = ntk_top_eigenvalue(outputs, theta, p.lanczos_iters, seed=p.seed)
            row.update(lambda_final=lam_final, lr_lambda_final=lr * lam_final,
                       train_accuracy=accuracy(apply, theta, x, data["y"], f0),
                       test_accuracy=accuracy(apply, theta, data["x_test"], data["y_test"], f0_test))
            if p.anneal_steps:
                small = gd_squared_loss(apply, theta, x, t, p.anneal_lr_factor / lambda0, p.anneal_steps)
                if not small["diverged"]:
                    row.update(final_loss_annealed=small["loss"][-1],
                               train_accuracy_annealed=accuracy(apply, small["theta"], x, data["y"], f0),
                               test_accuracy_annealed=accuracy(apply, small["theta"], data["x_test"],
                                                               data["y_test"], f0_test))
        runs.append(row)
    return {"summary": summarise_sweep(kind, runs, theta0.numel(), lambda0, hessian0, float(loss(theta0))),
            "runs": runs}


def _best(runs: list[dict], key: str) -> dict | None:
    return max(runs, key=lambda r: r[key], default=None)


def summarise_sweep(kind: str, runs: list[dict], parameters: int, lambda0: float, hessian0: float,
                    initial_loss: float) -> dict:
    """Edges, curvature and the generalisation comparison of one sweep: the best lazy rate (eta lambda0 < 2)
    against the best rate in the catapult window (a run whose loss spiked and then converged), each with the
    train accuracy it reached, after the main run and after the small-LR phase."""
    factors = [r["lr_factor"] for r in runs]
    finite = [r for r in runs if not r["diverged"]]
    lazy_side = [r for r in finite if r["lr_factor"] < THEORY_LR_CRIT]
    catapult = [r for r in finite if r["outcome"] == "catapult"]
    smallest = runs[0]
    summary = {
        "kind": kind, "parameters": int(parameters), "lambda0": lambda0, "hessian0": hessian0,
        "initial_loss": initial_loss,
        # the lazy regime's signature at the smallest rate: the NTK hardly moves and the loss only falls
        "lazy_lambda_change": (abs(smallest["lambda_final"] / lambda0 - 1) if not smallest["diverged"]
                               else math.nan),
        "smallest_rate_outcome": smallest["outcome"],
        "lr_crit": first_above(factors, [r["outcome"] != "lazy" for r in runs]),
        "last_lazy": max((r["lr_factor"] for r in runs if r["outcome"] == "lazy"), default=math.nan),
        "lr_max": first_above(factors, [r["diverged"] for r in runs]),
        "last_stable": max((r["lr_factor"] for r in finite), default=math.nan),
        "best_train_accuracy": max((r["train_accuracy"] for r in finite), default=math.nan),
        # the largest rate at which the network still fits its training set (train accuracy >= FIT_ACCURACY)
        "last_fit": max((r["lr_factor"] for r in finite if r["train_accuracy"] >= FIT_ACCURACY), default=math.nan),
        "catapult_below_edge": (sum(r["lr_lambda_final"] < 2 for r in catapult) / len(catapult)
                                if catapult else math.nan),
    }
    for suffix, key in (("", "test_accuracy"), ("_annealed", "test_accuracy_annealed")):
        train_key = key.replace("test", "train")
        lb = _best([r for r in lazy_side if key in r], key)
        cb = _best([r for r in catapult if key in r], key)
        summary.update({f"best_lazy_lr_factor{suffix}": lb["lr_factor"] if lb else math.nan,
                        f"best_lazy_test_accuracy{suffix}": lb[key] if lb else math.nan,
                        f"best_lazy_train_accuracy{suffix}": lb[train_key] if lb else math.nan,
                        f"best_catapult_lr_factor{suffix}": cb["lr_factor"] if cb else math.nan,
                        f"best_catapult_test_accuracy{suffix}": cb[key] if cb else math.nan,
                        f"best_catapult_train_accuracy{suffix}": cb[train_key] if cb else math.nan})
    return summary


def net_regimes(kind: str, s: dict, label: str) -> tuple[Regime, Regime]:
    """The two regimes a network's verdicts need. Phase labels: a network that starts lazy, its centred output's
    loss at most LAZY_START_LOSS times the zero output's (1/2 for one-hot targets), and whose smallest rate stays
    lazy (loss monotone, NTK within LAZY_NTK_CHANGE of lambda0). The generalisation comparison: both compared
    networks fit their training set (train accuracy >= FIT_ACCURACY), since Lewkowycz et al. compare trained
    networks."""
    phase = Regime(f"{label}, phase labels", "a network that starts in the lazy regime", [
        at_most("initial loss / zero-output loss", s["initial_loss"] / 0.5, LAZY_START_LOSS),
        at_most("smallest rate: |lambda_final / lambda0 - 1|", s["lazy_lambda_change"], LAZY_NTK_CHANGE),
        at_most("smallest rate: largest loss rise (1 = none)", 1.0 if s["smallest_rate_outcome"] == "lazy"
                else 2.0, 1.0)])
    fit = Regime(f"{label}, generalisation", "networks that fit their training set", [
        at_least("train accuracy, best lazy rate", s["best_lazy_train_accuracy"], FIT_ACCURACY),
        at_least("train accuracy, best catapult rate", s["best_catapult_train_accuracy"], FIT_ACCURACY),
        at_least("train accuracy, best lazy rate + small-LR phase", s["best_lazy_train_accuracy_annealed"],
                 FIT_ACCURACY),
        at_least("train accuracy, best catapult rate + small-LR phase", s["best_catapult_train_accuracy_annealed"],
                 FIT_ACCURACY)])
    return phase, fit


NETS = ("mlp_small", "mlp_large", "cnn")


def net_unit(kind: str, p: Params) -> dict:
    """One network's learning-rate sweep, a unit of its own."""
    device = resolve_device(p)
    out = net_sweep(kind, p, image_data(p, device), device)
    return {"metrics": out["summary"], "data": out}


def nets_experiment(parts: dict[str, Result]) -> dict:
    """The three networks' sweeps, merged from their units."""
    return {"metrics": {kind: parts[kind].data["summary"] for kind in NETS},
            "data": {kind: parts[kind].data for kind in NETS}}


# ------------------------------------------------------------------------------- edge of stability (Cohen et al.)

# Cohen et al. 2021: under full-batch GD the sharpness (top Hessian eigenvalue) rises to 2/eta and hovers there.
# Reached: sharpness at least EOS_REACH * 2/eta. Hovering: the median sharpness over the last third of training
# within EOS_BAND * 2/eta; with the squared loss Cohen et al. see it oscillate just above 2/eta, and a 12-step
# Lanczos estimate is good to a few percent, so a band of -10% / +20% around 2/eta.
EOS_REACH = 0.9
EOS_BAND = (0.9, 1.2)
EOS_LOSS_DROP = 0.5  # trained: final loss at most half the initial loss
EOS_REACH_BY = 2 / 3  # the edge reached within the first two thirds, so the last third is all at the edge


def eos_net(p: Params) -> torch.nn.Module:
    """Cohen et al.'s fc-tanh (two tanh hidden layers with biases, PyTorch's default initialisation), narrower
    at book scale; built on the CPU from the seed, so the weights are the same on every device."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(p.seed)
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3072, p.eos_width), torch.nn.Tanh(),
                                   torch.nn.Linear(p.eos_width, p.eos_width), torch.nn.Tanh(),
                                   torch.nn.Linear(p.eos_width, 10))


def eos_edges(p: Params, sharpness0: float) -> np.ndarray:
    """The runs' 2/eta, from eos_edge_min to eos_edge_max times the sharpness at initialisation: each run starts
    stable (sharpness below 2/eta), so reaching the edge needs progressive sharpening."""
    return np.linspace(p.eos_edge_min, p.eos_edge_max, p.eos_lrs) * sharpness0


def eos_run(p: Params, index: int, device: torch.device) -> dict:
    """Full-batch GD at eta = 2 / eos_edges[index] on eos_n_train CIFAR-10 images (per-channel standardised,
    one-hot targets, L = (1/2m) sum |f - y|^2 as Cohen et al.), with the sharpness every eos_every steps."""
    train = load_dataset("cifar10", "train", device).subset(p.eos_n_train, torch.Generator().manual_seed(p.seed))
    x = train.x.float() / 255
    x = (x - x.mean((0, 2, 3), keepdim=True)) / x.std((0, 2, 3), keepdim=True)
    t, m = F.one_hot(train.y, 10).float(), x.shape[0]
    theta, apply = functional(eos_net(p).to(device))

    def loss_fn(th):
        return 0.5 * (apply(th, x) - t).pow(2).sum() / m

    def sharpness(th):
        return hessian_top_eigenvalue(loss_fn, th, p.lanczos_iters, seed=p.seed)

    sharpness0 = sharpness(theta)
    edge = float(eos_edges(p, sharpness0)[index])
    lr = 2 / edge
    grad_and_loss = torch.func.grad_and_value(loss_fn)
    losses, measured, diverged = [], [], False
    for step in range(p.eos_steps + 1):
        if step % p.eos_every == 0 or step == p.eos_steps:
            measured.append((step, sharpness(theta)))
        if step == p.eos_steps:
            losses.append(float(loss_fn(theta)))
            break
        g, loss = grad_and_loss(theta)
        losses.append(float(loss))
        if not math.isfinite(losses[-1]) or losses[-1] > THRESHOLDS["diverged"] * losses[0]:
            diverged = True
            break
        theta = theta - lr * g
    steps, sharp = zip(*measured, strict=True)
    ratio = np.array(sharp) / edge
    reached = [s for s, r in zip(steps, ratio, strict=True) if r >= EOS_REACH]
    last = ratio[np.array(steps) >= p.eos_steps * (1 - 1 / 3)]
    summary = {"lr": lr, "edge": edge, "sharpness0": sharpness0, "diverged": diverged,
               "initial_loss": losses[0], "final_loss": losses[-1], "loss_drop": losses[-1] / losses[0],
               "max_sharpness_ratio": float(ratio.max()),
               "reached_at": float(reached[0]) if reached else math.nan,
               "reached_fraction": reached[0] / p.eos_steps if reached else math.nan,
               "median_ratio_last_third": float(np.median(last)) if len(last) else math.nan,
               "train_accuracy": accuracy(apply, theta, x, train.y)}
    return {"summary": summary, "sharpness_steps": list(steps), "sharpness": list(sharp),
            "loss_steps": _thin(losses)[0], "loss": _thin(losses)[1]}


def eos_unit(index: int, p: Params) -> dict:
    out = eos_run(p, index, resolve_device(p))
    return {"metrics": out["summary"], "data": out}


def eos_experiment(parts: dict[str, Result]) -> dict:
    keys = sorted(parts, key=int)
    return {"metrics": {k: parts[k].data["summary"] for k in keys}, "data": {k: parts[k].data for k in keys}}


def eos_regime(s: dict, label: str) -> Regime:
    """What the edge-of-stability verdict needs: a network that trained, and a sharpness that reached the edge
    early enough that the last third of training is all at it."""
    return Regime(label, "a network that trained and whose sharpness reached 2/eta", [
        at_most("final loss / initial loss", s["loss_drop"], EOS_LOSS_DROP),
        at_least("largest sharpness / (2/eta)", s["max_sharpness_ratio"], EOS_REACH),
        at_most("first step at 0.9 * 2/eta, fraction of training", s["reached_fraction"], EOS_REACH_BY)])


def eos_hovers(s: dict) -> bool:
    return EOS_BAND[0] <= s["median_ratio_last_third"] <= EOS_BAND[1]


# ----------------------------------------------------------------------------------- deep linear, logistic loss

DATA_KINDS = ("degenerate", "nonseparable", "separable")


def linear_data(kind: str, p: Params, n: int, seed: int, device: torch.device, noisy: bool = True):
    """Degenerate: every x is the same point sqrt(d) e_1, labels +1 and -1 in turn (non-separable, all in one
    direction). Otherwise x ~ N(0, I_d) and y = sign(<w*, x>), with a dl_label_noise fraction of the labels
    flipped for the non-separable data (and none for the test set)."""
    g = torch.Generator().manual_seed(seed)
    d = p.dl_dim
    if kind == "degenerate":
        x = torch.zeros(n, d)
        x[:, 0] = math.sqrt(d)
        y = torch.where(torch.arange(n) % 2 == 0, 1.0, -1.0)
        return x.to(device), y.to(device)
    w_star = torch.randn(d, generator=torch.Generator().manual_seed(p.seed))
    x = torch.randn(n, d, generator=g)
    y = torch.sign(x @ w_star)
    if kind == "nonseparable" and noisy:
        flip = torch.randperm(n, generator=g)[: round(p.dl_label_noise * n)]
        y[flip] = -y[flip]
    return x.to(device), y.to(device)


def linear_sweep(kind: str, p: Params, device: torch.device) -> dict:
    x, y = linear_data(kind, p, p.dl_n_train, p.seed + 1, device)
    x_test, y_test = linear_data(kind, p, 5000, p.seed + 2, device, noisy=False)
    model = NTKMLP(p.dl_dim, p.dl_width, p.dl_depth - 1, 1, "linear", seed=p.seed).to(device)
    theta0, apply = functional(model)

    def loss_fn(th):
        return F.softplus(-y * apply(th, x)[:, 0]).mean()  # logistic loss log(1 + e^{-y f})

    def outputs(th):
        return apply(th, x)

    lambda0 = ntk_top_eigenvalue(outputs, theta0, p.lanczos_iters, seed=p.seed)
    hessian0 = hessian_top_eigenvalue(loss_fn, theta0, p.lanczos_iters, seed=p.seed)
    n_low = max(2, p.sweep_size // 4)
    grid = lr_grid(n_low, p.sweep_size - n_low, p.dl_lr_max_factor, LOGISTIC_LR_CRIT)
    # every learning rate at once: one weight stack per layer with a leading run axis (batched matmuls), and the
    # gradient of the summed losses, which for independent runs is each run's own gradient
    lrs = torch.as_tensor(grid / lambda0, dtype=theta0.dtype, device=theta0.device)
    layers = [*model.hidden, model.readout]
    weights = [layer.weight.detach().expand(len(grid), *layer.weight.shape).clone() for layer in layers]

    def batched_loss(ws: list[torch.Tensor]) -> torch.Tensor:
        h = x.expand(len(grid), *x.shape)
        for w, layer in zip(ws, layers, strict=True):
            h = torch.matmul(h, w.transpose(1, 2)) * layer.scale
        return F.softplus(-y * h[..., 0]).mean(1)

    losses = torch.empty(p.dl_steps + 1, len(grid), dtype=torch.float64)
    diverged = torch.zeros(len(grid), dtype=torch.bool, device=theta0.device)
    first = None
    for step in range(p.dl_steps + 1):
        ws = [w.requires_grad_(True) for w in weights]
        loss = batched_loss(ws)
        grads = torch.autograd.grad(loss.sum(), ws)
        loss = loss.detach()
        first = loss if first is None else first
        diverged |= ~torch.isfinite(loss) | (loss > THRESHOLDS["diverged"] * first)
        losses[step] = torch.where(diverged, torch.inf, loss).double().cpu()
        if step < p.dl_steps:  # a diverged run is frozen where it was, and recorded as diverged
            keep = diverged.view(-1, 1, 1)
            weights = [torch.where(keep, w.detach(), w.detach() - lrs.view(-1, 1, 1) * g)
                       for w, g in zip(ws, grads, strict=True)]
    thetas = torch.cat([w.detach().flatten(1) for w in weights], 1)  # same order as functional(model)
    runs = []
    for j, c in enumerate(grid):
        curve = losses[:, j].tolist()
        bad = bool(diverged[j])
        if bad:
            curve = curve[: curve.index(math.inf) + 1]
        row = {"lr_factor": float(c), "lr": float(lrs[j]), "diverged": bad,
               "outcome": classify(max_rise(curve), bad), "max_rise": max_rise(curve),
               "max_loss_ratio": max(curve[1:]) / curve[0], "final_loss": curve[-1],
               "loss_steps": _thin(curve)[0], "loss": _thin(curve)[1]}
        if not bad:
            theta = thetas[j]
            sharp = hessian_top_eigenvalue(loss_fn, theta, p.lanczos_iters, seed=p.seed)
            with torch.no_grad():  # degenerate data have no test set worth the name
                acc = (float((torch.sign(apply(theta, x_test)[:, 0]) == y_test).float().mean())
                       if kind != "degenerate" else math.nan)
            row.update(hessian_final=sharp, lr_hessian_final=float(lrs[j]) * sharp, test_accuracy=acc,
                       weight_norm=float(theta.norm()))
        runs.append(row)
    factors = [r["lr_factor"] for r in runs]
    finite = [r for r in runs if not r["diverged"]]
    catapult = [r for r in finite if r["outcome"] == "catapult"]
    lazy = [r for r in finite if r["outcome"] == "lazy"]
    # the lazy edge predicted from the minimum the smallest rate reached: eta * lambda_H(minimum) = 2
    smallest = runs[0] if not runs[0]["diverged"] else None
    summary = {"kind": kind, "lambda0": lambda0, "hessian0": hessian0,
               "lr_crit_from_minimum": 2 * lambda0 / smallest["hessian_final"] if smallest else math.nan,
               "lr_crit": first_above(factors, [r["outcome"] != "lazy" for r in runs]),
               "lr_max": first_above(factors, [r["diverged"] for r in runs]),
               "catapult_below_edge": (sum(r["lr_hessian_final"] < 2 for r in catapult) / len(catapult)
                                       if catapult else math.nan),
               "sharpness_lazy": float(np.median([r["hessian_final"] for r in lazy])) if lazy else math.nan,
               "sharpness_catapult": (float(np.median([r["hessian_final"] for r in catapult]))
                                      if catapult else math.nan),
               "test_accuracy_lazy": float(np.mean([r["test_accuracy"] for r in lazy])) if lazy else math.nan,
               "test_accuracy_catapult": (float(np.mean([r["test_accuracy"] for r in catapult]))
                                          if catapult else math.nan)}
    return {"summary": summary, "runs": runs}


def linear_unit(kind: str, p: Params) -> dict:
    """One data kind's deep-linear sweep, a unit of its own (one thread: tiny matrices)."""
    with num_threads(1):
        out = linear_sweep(kind, p, resolve_device(p))
    return {"metrics": out["summary"], "data": out}


def linear_experiment(parts: dict[str, Result]) -> dict:
    """The three data kinds' sweeps, merged from their units."""
    return {"metrics": {kind: parts[kind].data["summary"] for kind in DATA_KINDS},
            "data": {kind: parts[kind].data for kind in DATA_KINDS}}


# ------------------------------------------------------------------------------------------------------ run


UV_FIELDS = ("seed", "uv_width", "uv_width_max", "uv_grid", "uv_steps", "uv_seeds")
LINEAR_FIELDS = ("seed", "device", "sweep_size", "lanczos_iters", *(f.name for f in dataclasses.fields(Params)
                                                                      if f.name.startswith("dl_")))
EOS_FIELDS = ("seed", "device", "lanczos_iters", *(f.name for f in dataclasses.fields(Params)
                                                 if f.name.startswith("eos_")))
NET_FIELDS = tuple(f.name for f in dataclasses.fields(Params)
                   if f.name not in UV_FIELDS[1:] and not f.name.startswith(("dl_", "eos_")))


@dataclasses.dataclass
class Results:
    uv: Result
    nets: Result
    linear: Result
    eos: Result


def units(p: Params) -> list[Unit]:
    """The uv model (on the CPU, one thread), then one unit per network's learning-rate sweep, one per data
    kind of the deep linear nets and one per edge-of-stability learning rate. None is a bench network's SGD
    training, so none has a time estimate."""
    cfg = p.to_dict()
    device = resolve_device(p)

    def uv_single_thread() -> dict:
        with num_threads(1):
            return uv_experiment(p)

    found = [make_unit("catapult", "uv", "catapult_uv", VERSION, {k: cfg[k] for k in UV_FIELDS}, uv_single_thread,
                       "cpu")]
    found += [make_unit("catapult", f"nets/{kind}", "catapult_net", NETS_VERSION,
                        {**{k: cfg[k] for k in NET_FIELDS}, "network": kind}, lambda kind=kind: net_unit(kind, p),
                        device) for kind in NETS]
    found += [make_unit("catapult", f"linear/{kind}", "catapult_linear_kind", VERSION,
                        {**{k: cfg[k] for k in LINEAR_FIELDS}, "data_kind": kind},
                        lambda kind=kind: linear_unit(kind, p), device) for kind in DATA_KINDS]
    found += [make_unit("catapult", f"eos/{i}", "catapult_eos_run", EOS_VERSION,
                        {**{k: cfg[k] for k in EOS_FIELDS}, "index": i}, lambda i=i: eos_unit(i, p), device)
              for i in range(p.eos_lrs)]
    return found


def run(p: Params, store: Store | None = None, force: bool | None = None) -> Results:
    """The uv model, the networks' sweeps and the deep linear nets, each stored under the parameters it depends
    on (so changing a network parameter does not recompute the uv model), merged from their units."""
    store = store or Store()
    cfg = p.to_dict()
    device = resolve_device(p)
    found = units(p)

    def merged(name: str, prefix: str, fields: tuple[str, ...], merge, version: int = VERSION) -> Result:
        mine = [u for u in found if u.name.startswith(prefix)]
        return store.run(name, version, {k: cfg[k] for k in fields},
                         lambda: merge({u.name.removeprefix(prefix): run_unit(store, u, force) for u in mine}),
                         device=device, force=force)

    return Results(uv=run_unit(store, found[0], force),
                   nets=merged("catapult_nets", "nets/", NET_FIELDS, nets_experiment, NETS_VERSION),
                   linear=merged("catapult_linear", "linear/", LINEAR_FIELDS, linear_experiment),
                   eos=merged("catapult_eos", "eos/", EOS_FIELDS, eos_experiment, EOS_VERSION))
