"""Beyond Keskar et al.'s Adam runs on F1: the course report's SGD and Adagrad extension."""

from __future__ import annotations

import torch
from torch import nn

from repro.data import VisionData
from repro.metrics.hessian import lanczos
from repro.metrics.sharpness import random_subspace, sharpness

from .common import Split, init_grad_norm, load_split, loss_closures, train_run
from .config import Params, net_sizes


def cheap_measures(model: nn.Module, measure_set: VisionData, split: Split, p: Params, g0: float) -> dict:
    """Metric 2.1 in the random subspace at the large eps (the same A as the main runs: same seed, same
    dimensions), the gradient norm of f beside its value `g0` at initialisation, and the top Hessian eigenvalue."""
    theta, value_and_grad, matvec = loss_closures(model, measure_set, split.stats, batch=p.bn_batch)
    a = random_subspace(theta.numel(), p.subspace_dim, p.seed, device=theta.device)
    s = sharpness(value_and_grad, theta, p.sharpness_eps, subspace=a, maxiter=p.sharpness_iters,
                  value_and_grad=True)
    top = lanczos(matvec, theta.numel(), p.lanczos_iters, device=theta.device, dtype=theta.dtype, seed=p.seed)
    return {"subspace_large_eps": s.to_dict(), "grad_norm": s.grad_norm, "grad_norm_init": g0,
            "hessian_top": float(top[0])}


def optimizers_experiment(p: Params, device: torch.device) -> dict:
    """F1 with SGD and Adagrad (and the Adam runs' settings otherwise), small vs large batch."""
    sizes = net_sizes(p, "F1")
    split = load_split("mnist", sizes["n_train"], sizes["n_test"], p.seed, device)
    measure_set = split.train.subset(sizes["sharpness_examples"])
    runs = []
    for opt, lr in (("sgd", p.lr_sgd), ("adagrad", p.lr_adagrad)):
        for i in range(p.extension_seeds):
            g0 = init_grad_norm("F1", p.seed + i, split, measure_set, p)
            for regime, bs, epochs in (("small_batch", sizes["small"], sizes["epochs"]),
                                       ("large_batch", sizes["large"], sizes["large_epochs"])):
                model, row = train_run("F1", split, seed=p.seed + i, batch_size=bs, epochs=epochs, lr=lr,
                                       optimizer=opt, f1_width=p.f1_width)
                runs.append({**row, "regime": regime, "optimizer": opt,
                             **cheap_measures(model, measure_set, split, p, g0)})
    return {"metrics": {"runs": len(runs)}, "data": {"runs": runs}}
