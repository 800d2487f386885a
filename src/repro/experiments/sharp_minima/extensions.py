"""Beyond Keskar et al.'s Adam runs on F1: the course report's SGD and Adagrad extension, and the large batch with
its learning rate scaled up (Hoffer et al. 2017's first fix)."""

from __future__ import annotations

import math

import torch
from torch import nn

from repro.data import VisionData
from repro.metrics.hessian import lanczos
from repro.metrics.sharpness import random_subspace, sharpness

from .common import Split, load_split, loss_closures, mean_std, train_run
from .config import Params, net_sizes


def cheap_measures(model: nn.Module, measure_set: VisionData, split: Split, p: Params) -> dict:
    """Metric 2.1 in the random subspace (a full-space maximisation costs about a training epoch) and the top
    Hessian eigenvalue; the same A as the main runs (same seed, same dimensions)."""
    theta, value_and_grad, matvec = loss_closures(model, measure_set, split.stats)
    a = random_subspace(theta.numel(), p.subspace_dim, p.seed, device=theta.device)
    s = sharpness(value_and_grad, theta, p.sharpness_eps, subspace=a, maxiter=p.sharpness_iters,
                  value_and_grad=True)
    top = lanczos(matvec, theta.numel(), p.lanczos_iters, device=theta.device, dtype=theta.dtype, seed=p.seed)
    return {"subspace_sharpness": s.value, "hessian_top": float(top[0])}


def optimizers_experiment(p: Params, device: torch.device) -> dict:
    """F1 with SGD and Adagrad (and the Adam runs' settings otherwise), small vs large batch."""
    sizes = net_sizes(p, "F1")
    split = load_split("mnist", sizes["n_train"], sizes["n_test"], p.seed, device)
    measure_set = split.train.subset(sizes["sharpness_examples"])
    runs = []
    for opt, lr in (("sgd", p.lr_sgd), ("adagrad", p.lr_adagrad)):
        for i in range(p.extension_seeds):
            for regime, bs, epochs in (("small_batch", sizes["small"], sizes["epochs"]),
                                       ("large_batch", sizes["large"], sizes["large_epochs"])):
                model, row = train_run("F1", split, seed=p.seed + i, batch_size=bs, epochs=epochs, lr=lr,
                                       optimizer=opt, f1_width=p.f1_width)
                runs.append({**row, "regime": regime, "optimizer": opt, **cheap_measures(model, measure_set, split, p)})
    return {"metrics": {"runs": len(runs)}, "data": {"runs": runs}}


def remedy_lr(p: Params, small: int, large: int) -> float:
    factor = {"sqrt": math.sqrt(large / small), "linear": large / small, "none": 1.0}[p.remedy_scaling]
    return p.lr * factor


def remedy_experiment(p: Params, device: torch.device) -> dict:
    """F1's large batch with Hoffer et al.'s learning-rate scaling, same seeds and epochs as the Adam runs."""
    sizes = net_sizes(p, "F1")
    split = load_split("mnist", sizes["n_train"], sizes["n_test"], p.seed, device)
    measure_set = split.train.subset(sizes["sharpness_examples"])
    lr = remedy_lr(p, sizes["small"], sizes["large"])
    runs = []
    for i in range(p.seeds):
        model, row = train_run("F1", split, seed=p.seed + i, batch_size=sizes["large"], epochs=sizes["large_epochs"],
                               lr=lr, f1_width=p.f1_width)
        runs.append({**row, "regime": "large_batch_remedy", **cheap_measures(model, measure_set, split, p)})
    return {"metrics": {"lr": lr, "test_acc": mean_std([r["test_acc"] for r in runs])}, "data": {"runs": runs}}


