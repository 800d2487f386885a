"""Keskar et al.'s comparison on one network (F1, C1-C4): small- and large-batch Adam runs from the same
initialisation, each measured with Metric 2.1 (full space and a random subspace, two box sizes) and the top
Hessian eigenvalue; the 1-D interpolation between the two minimisers of the first run; for F1 the rescaling
check (Dinh et al. 2017). One stored unit per run (`sharp_minima_seed`), merged per network (`sharp_minima_net`).
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
from torch import nn

from repro.data import VisionData
from repro.metrics.hessian import lanczos
from repro.metrics.sharpness import random_subspace, sharpness
from repro.train.loop import evaluate

from .common import (
    Split,
    init_grad_norm,
    load_split,
    loss_closures,
    mean_std,
    recompute_bn,
    train_run,
)
from .config import NETWORKS, Params, net_sizes


def measure(model: nn.Module, data: VisionData, stats, p: Params, subspace: torch.Tensor | None) -> dict:
    """Metric 2.1 at both eps in the full space and in the subspace (each with its first-order part, iterations
    and evaluations), the top Hessian eigenvalue, the gradient norm of f; and, for comparison, the full-space
    metric at the large eps with BN's running statistics frozen (PyTorch's eval mode) instead of Keras's batch
    statistics."""
    theta, value_and_grad, matvec = loss_closures(model, data, stats, batch=p.bn_batch)
    out = {}
    for name, eps in (("large_eps", p.sharpness_eps), ("small_eps", p.sharpness_eps_small)):
        for space, a in (("full", None), ("subspace", subspace)):
            s = sharpness(value_and_grad, theta, eps, subspace=a, maxiter=p.sharpness_iters, value_and_grad=True)
            out[f"{space}_{name}"] = s.to_dict()
    _, running, _ = loss_closures(model, data, stats, bn="running", batch=p.bn_batch)
    out["full_large_eps_running"] = sharpness(running, theta, p.sharpness_eps, maxiter=p.sharpness_iters,
                                              value_and_grad=True).to_dict()
    start = time.perf_counter()
    ritz = lanczos(matvec, theta.numel(), p.lanczos_iters, device=theta.device, dtype=theta.dtype, seed=p.seed)
    out["hessian_top"] = float(ritz[0])
    out["hessian_seconds"] = time.perf_counter() - start
    full = out["full_large_eps"]
    out |= {"base_loss": full["base_loss"], "grad_norm": full["grad_norm"], "first_order_large_eps":
            full["first_order"], "first_order_small_eps": out["full_small_eps"]["first_order"]}
    return out


# BN statistics along the interpolation line: batches of this many training images (the estimate is a cumulative
# average over them, so their size matters little; small batches only cost time)
INTERP_BN_BATCH = 500


def interpolate(sb: nn.Module, lb: nn.Module, split: Split, alphas: np.ndarray, n_examples: int,
                batch_size: int = INTERP_BN_BATCH) -> list[dict]:
    """theta(alpha) = alpha theta_LB + (1 - alpha) theta_SB over the parameters; BN statistics re-estimated at
    each alpha on the first n_examples training images; losses and accuracies in eval mode."""
    theta_sb = nn.utils.parameters_to_vector(sb.parameters()).detach()
    theta_lb = nn.utils.parameters_to_vector(lb.parameters()).detach()
    model = copy.deepcopy(sb)
    train_part = split.train.subset(n_examples)
    rows = []
    for a in alphas:
        nn.utils.vector_to_parameters(float(a) * theta_lb + (1 - float(a)) * theta_sb, model.parameters())
        recompute_bn(model, train_part, split.stats, batch_size)
        train_loss, train_acc = evaluate(model, train_part, *split.stats)
        test_loss, test_acc = evaluate(model, split.test, *split.stats)
        rows.append({"alpha": float(a), "train_loss": train_loss, "train_acc": 100 * train_acc,
                     "test_loss": test_loss, "test_acc": 100 * test_acc})
    return rows


@torch.no_grad()
def rescale_last_layer(model: nn.Module, alpha: float) -> nn.Module:
    """A copy computing the same function with different parameters (Dinh et al. 2017): the last BN's affine
    output scaled by alpha, the output layer's weights by 1 / alpha (ReLU is positively homogeneous)."""
    out = copy.deepcopy(model)
    bn = [m for m in out.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)][-1]
    last = [m for m in out.modules() if isinstance(m, nn.Linear)][-1]
    bn.weight.mul_(alpha), bn.bias.mul_(alpha)
    last.weight.div_(alpha)
    return out





def seed_experiment(p: Params, net: str, i: int, device: torch.device) -> dict:
    """Run i of a network: small and large batch from the same initialisation (seed + i), each with Metric 2.1
    and the top Hessian eigenvalue; run 0 also the 1-D interpolation between its two minimisers and, for F1,
    the rescaling check. Every run uses the same data subset and the same random subspace A (seed `seed`)."""
    sizes = net_sizes(p, net)
    split = load_split(NETWORKS[net][0], sizes["n_train"], sizes["n_test"], p.seed, device)
    measure_set = split.train.subset(sizes["sharpness_examples"])
    runs, models = [], {}
    subspace = None
    g0 = init_grad_norm(net, p.seed + i, split, measure_set, p)
    for regime, bs, epochs in (("small_batch", sizes["small"], sizes["epochs"]),
                               ("large_batch", sizes["large"], sizes["large_epochs"])):
        model, row = train_run(net, split, seed=p.seed + i, batch_size=bs, epochs=epochs, lr=p.lr,
                               f1_width=p.f1_width)
        row["grad_norm_init"] = g0
        if subspace is None:
            subspace = random_subspace(sum(q.numel() for q in model.parameters()), p.subspace_dim, p.seed,
                                       device=device)
        row.update(regime=regime, **measure(model, measure_set, split.stats, p, subspace))
        runs.append(row)
        models[regime] = model
    out: dict = {"runs": runs}
    if i == 0:
        alphas = np.linspace(-1, 2, p.interp_points)
        out["interpolation"] = interpolate(models["small_batch"], models["large_batch"], split, alphas,
                                           sizes["interp_examples"])
        out["n_params"] = sum(q.numel() for q in models["small_batch"].parameters())
        if net == "F1":
            out["rescaling"] = rescaling_check(models["small_batch"], split, measure_set, p, device)
    return {"metrics": {}, "data": out}


def net_experiment(p: Params, net: str, device: torch.device) -> dict:
    """A network's comparison computed in one go (run() stores each seed as a unit instead)."""
    return merge_seeds(p, net, [seed_experiment(p, net, i, device)["data"] for i in range(p.seeds)])


def merge_seeds(p: Params, net: str, seed_runs: list[dict]) -> dict:
    """A network's comparison from its runs' data (seed_experiment, in seed order)."""
    first = seed_runs[0]
    runs = [r for d in seed_runs for r in d["runs"]]
    out = {"runs": runs, "interpolation": first["interpolation"], "sizes": net_sizes(p, net),
           "n_params": first["n_params"]}
    if "rescaling" in first:
        out["rescaling"] = first["rescaling"]
    return {"metrics": summarize(runs), "data": out}


def rescaling_check(model: nn.Module, split: Split, measure_set: VisionData, p: Params,
                    device: torch.device) -> list[dict]:
    """The same function under three parametrisations: its accuracy, Metric 2.1 (full space, large eps, with its
    first-order part and iterations) and top Hessian eigenvalue."""
    rows = []
    for alpha in (1 / p.dinh_alpha, 1.0, p.dinh_alpha):
        m = rescale_last_layer(model, alpha)
        test_loss, test_acc = evaluate(m, split.test, *split.stats)
        theta, value_and_grad, matvec = loss_closures(m, measure_set, split.stats, batch=p.bn_batch)
        s = sharpness(value_and_grad, theta, p.sharpness_eps, maxiter=p.sharpness_iters, value_and_grad=True)
        top = lanczos(matvec, theta.numel(), p.lanczos_iters, device=device, dtype=theta.dtype, seed=p.seed)
        rows.append({"alpha": alpha, "test_loss": test_loss, "test_acc": 100 * test_acc,
                     "base_loss": s.base_loss, "sharpness": s.value, "first_order": s.first_order,
                     "iterations": s.iterations, "hessian_top": float(top[0]), "param_norm": float(theta.norm())})
    return rows


def summarize(runs: list[dict]) -> dict:
    """Mean and std over seeds of each regime's accuracies, sharpness values and Hessian eigenvalue."""
    out = {}
    keys = ["train_acc", "test_acc", "train_loss", "base_loss", "hessian_top", "grad_norm", "grad_norm_init",
            "first_order_large_eps", "first_order_small_eps", "full_large_eps_running",
            *(f"{s}_{e}" for s in ("full", "subspace") for e in ("large_eps", "small_eps"))]
    for regime in ("small_batch", "large_batch"):
        rows = [r for r in runs if r["regime"] == regime]
        for k in keys:
            vals = [r[k]["value"] if isinstance(r[k], dict) else r[k] for r in rows]
            out[f"{regime}_{k}"], out[f"{regime}_{k}_std"] = mean_std(vals)
    # paired over seeds: LB / SB of the same seed
    sb = [r for r in runs if r["regime"] == "small_batch"]
    lb = [r for r in runs if r["regime"] == "large_batch"]
    out["test_gap"] = mean_std([a["test_acc"] - b["test_acc"] for a, b in zip(sb, lb, strict=True)])
    out["grad_ratio_max"] = {reg: max(r["grad_norm"] / r["grad_norm_init"] for r in runs if r["regime"] == reg)
                             for reg in ("small_batch", "large_batch")}
    out["train_acc_min"] = {reg: min(r["train_acc"] for r in runs if r["regime"] == reg)
                            for reg in ("small_batch", "large_batch")}
    out["sharpness_ratio"] = float(np.exp(np.mean([np.log(max(b["full_large_eps"]["value"], 1e-12)
                                                         / max(a["full_large_eps"]["value"], 1e-12))
                                                  for a, b in zip(sb, lb, strict=True)])))
    out["hessian_ratio"] = float(np.exp(np.mean([np.log(max(b["hessian_top"], 1e-12) / max(a["hessian_top"], 1e-12))
                                                for a, b in zip(sb, lb, strict=True)])))
    out["sharpness_seconds"] = float(np.mean([r["full_large_eps"]["seconds"] for r in runs]))
    out["epoch_seconds_small_batch"] = float(np.mean([r["epoch_seconds"] for r in sb]))
    out["cost_in_epochs"] = out["sharpness_seconds"] / out["epoch_seconds_small_batch"]
    return out


