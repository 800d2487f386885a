"""Real networks, squared loss, full-batch gradient descent (Lewkowycz et al. 2020, section 2 of the page): NTK-
parameterised ReLU MLPs of two widths and a small CNN on a real image subset, with centred outputs f(x) - f0(x):
lambda0, the sweep of eta * lambda0 from the lazy side to divergence, the curvature along training and at the
end, and train and test accuracy at equal physical time eta * steps, with and without a final small-LR phase."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from repro.data import load_dataset
from repro.metrics.hessian import functional, hessian_top_eigenvalue, ntk_top_eigenvalue
from repro.models.ntk import NTKMLP, NTKConvNet
from repro.store import Result

from .params import Params, resolve_device
from .phases import DIVERGED, THEORY_LR_CRIT, classify, first_above, max_rise, thin

# A network fits its training set at this train accuracy (the generalisation comparison's regime).
FIT_ACCURACY = 0.99


def net_lr_grid(edge_step: float, high_rates: int, top: float) -> np.ndarray:
    """eta * lambda0 of the network sweeps: two lazy rates (1 and 1.9), every edge_step from 2.1 to 4.5, so that
    both the lazy edge 2 and the uv model's divergence edge 4 fall between neighbours no more than edge_step apart,
    then high_rates geometric from 5 to `top` (the paper's ~12 for ReLU nets lies in that range)."""
    window = np.arange(2.1, 4.5 + 1e-9, edge_step)
    return np.concatenate([[1.0, 1.9], window, np.geomspace(5.0, top, high_rates)])



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
    non-finite or DIVERGED times its start: a diverged run is a result. `measure(step, theta)` is recorded
    before the steps listed in `measure_at` (at `steps`: the end). Returns the final theta and the loss at
    every step."""
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
        if not math.isfinite(losses[-1]) or losses[-1] > DIVERGED * losses[0]:
            diverged = True
            break
        if measure is not None and step in measure_at:
            measured.append((step, measure(step, theta)))
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
                              lambda _, th: ntk_top_eigenvalue(outputs, th, p.lanczos_iters, seed=p.seed), at)
        lam_t = [(s, lr * lam) for s, lam in run["measured"]]  # eta * lambda_t
        losses = run["loss"]
        ratio = max(losses[1:], default=losses[0]) / losses[0]
        row = {"lr_factor": c, "lr": lr, "steps": steps, "diverged": run["diverged"],
               "outcome": classify(max_rise(losses), run["diverged"]), "max_rise": max_rise(losses),
               "max_loss_ratio": ratio,
               "final_loss": losses[-1], "loss_steps": thin(losses)[0], "loss": thin(losses)[1],
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


NETS = ("mlp_small", "mlp_large", "cnn")
IMAGE_SHAPE = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32)}  # channels, height, width
# What one Hessian- or NTK-vector product costs, in gradients (a forward-mode pass over a backward pass).
MATVEC_IN_GRADIENTS = 3


def flops_per_image(kind: str, p: Params, shape: tuple[int, int, int]) -> float:
    """Forward + backward FLOPs of one image through the network: 2 per multiply-add forward, 4 backward, less the
    first layer's gradient with respect to the input, which nothing needs."""
    c, h, w = shape
    if kind == "cnn":
        k = p.cnn_channels
        first = h * w * k * c * 9
        macs = first + (h // 2) * (w // 2) * 2 * k * k * 9 + 2 * k * (h // 4) * (w // 4) * 10
    else:
        width = p.width_small if kind == "mlp_small" else p.width_large
        first = c * h * w * width
        macs = first + (p.depth - 1) * width * width + width * 10
    return 6.0 * macs - 2.0 * first


def sweep_flops(kind: str, p: Params, shape: tuple[int, int, int]) -> float:
    """The FLOPs of one network's sweep (net_sweep): every gradient step, the small-LR phases, the Lanczos
    products (lambda0, the top Hessian eigenvalue, lambda at the end of every run, eight points along three runs)
    on the training images, and the accuracies on the test images (forward only)."""
    grid = net_lr_grid(p.edge_step, p.high_rates, p.lr_max_factor)
    steps = sum(max(1, math.ceil(p.physical_time / c)) for c in grid) + p.anneal_steps * len(grid)
    products = p.lanczos_iters * (2 + len(grid) + 3 * 8)
    return flops_per_image(kind, p, shape) * (p.n_train * (steps + MATVEC_IN_GRADIENTS * products)
                                              + p.n_test * 2 * len(grid) / 3)


def net_unit(kind: str, p: Params) -> dict:
    """One network's learning-rate sweep, a unit of its own."""
    device = resolve_device(p)
    out = net_sweep(kind, p, image_data(p, device), device)
    return {"metrics": out["summary"], "data": out}


def nets_experiment(parts: dict[str, Result]) -> dict:
    """The three networks' sweeps, merged from their units."""
    return {"metrics": {kind: parts[kind].data["summary"] for kind in NETS},
            "data": {kind: parts[kind].data for kind in NETS}}




NET_LABEL = {"mlp_small": "ReLU MLP, narrow", "mlp_large": "ReLU MLP, wide", "cnn": "CNN"}


@dataclasses.dataclass(frozen=True)
class Best:
    """The best-testing rate of one side of the edge (lazy: eta lambda0 < 2; catapult: a run that spiked and
    converged), after the main run or after the small-LR phase."""

    lr_factor: float
    test_accuracy: float
    train_accuracy: float


@dataclasses.dataclass(frozen=True)
class NetSweep:
    """One network's learning-rate sweep: its summary and its runs (one row per eta * lambda0)."""

    kind: str
    label: str
    parameters: int
    lambda0: float
    hessian0: float
    initial_loss: float
    lazy_lambda_change: float
    smallest_rate_outcome: str
    lr_crit: float
    last_lazy: float
    lr_max: float
    last_stable: float
    best_train_accuracy: float
    last_fit: float
    catapult_below_edge: float
    best: dict[tuple[str, bool], Best]  # (side, annealed) -> the best rate of that side
    runs: list[dict]

    @classmethod
    def from_stored(cls, kind: str, label: str, data: dict) -> NetSweep:
        s = data["summary"]
        best = {(side, annealed): Best(*(s[f"best_{side}_{q}{'_annealed' if annealed else ''}"]
                                         for q in ("lr_factor", "test_accuracy", "train_accuracy")))
                for side in ("lazy", "catapult") for annealed in (False, True)}
        names = [f.name for f in dataclasses.fields(cls) if f.name not in ("kind", "label", "best", "runs")]
        return cls(kind=kind, label=label, best=best, runs=data["runs"], **{n: s[n] for n in names})


@dataclasses.dataclass
class NetsSection:
    """The stored network sweeps, read by the verdicts and figures."""

    result: Result

    @property
    def networks(self) -> dict[str, NetSweep]:
        c = self.result.config
        labels = {"mlp_small": f"{NET_LABEL['mlp_small']} (width {c['width_small']})",
                  "mlp_large": f"{NET_LABEL['mlp_large']} (width {c['width_large']})",
                  "cnn": f"{NET_LABEL['cnn']} ({c['cnn_channels']} ch)"}
        return {k: NetSweep.from_stored(k, labels[k], self.result.data[k]) for k in NETS}

    @property
    def edge_step(self) -> float:
        return float(self.result.config["edge_step"])

    @property
    def n_test(self) -> int:
        return int(self.result.config["n_test"])

    @property
    def physical_time(self) -> float:
        return float(self.result.config["physical_time"])

    @property
    def anneal_steps(self) -> int:
        return int(self.result.config["anneal_steps"])

    @property
    def anneal_lr_factor(self) -> float:
        return float(self.result.config["anneal_lr_factor"])
