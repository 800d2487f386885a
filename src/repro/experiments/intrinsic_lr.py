"""The intrinsic learning rate (Li, Lyu, Arora, NeurIPS 2020): scale invariance, weight decay and equilibrium.

For a scale-invariant weight w (a layer followed by normalization) trained by SGD with learning rate lr and
weight decay wd, the norm, the per-step angular update and the effective learning rate lr / |w|^2 settle to an
equilibrium that depends on lambda_e = lr * wd alone, in about 1 / lambda_e steps (references, section 4).

Three kinds of runs, each stored separately so that each is cached on its own:
- `intrinsic_lr_toy`: a scale-invariant toy model (online normalized linear regression), vectorized over many
  runs, where the relations can be read off exactly and swept widely;
- `intrinsic_lr_net_*`: a real BatchNorm network (a BN MLP or convnet on MNIST at book scale, PreResNet-32 on
  CIFAR-10 at paper scale) with plain SGD and weight decay, tracking every scale-invariant layer; the same network
  with LayerNorm in place of BatchNorm, and under warmup + linear decay and cosine decay against step decay.

`regimes` states what each network claim needs (a network that learned, at equilibrium for long enough in units
of 1 / lambda_e) and measures it, so that a verdict on a network that is not in that state reads "inconclusive".
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import torch

from repro import params as P
from repro.checkpoint import Checkpoint, checkpoint_dir
from repro.data import VisionData, load_dataset
from repro.device import get_device, num_threads
from repro.metrics.norms import NormTracker, approx_angular_update, equilibrium_angular_update, relaxation_steps
from repro.models.bn import BNMLP, BNConvNet
from repro.models.preresnet import preresnet32
from repro.regime import Regime, at_least, at_most
from repro.store import Result, Store, config_key
from repro.train.loop import channel_stats, piecewise, train
from repro.units import Unit, Work, make_unit, run_unit

VERSION = 2
SOURCE = "Li, Lyu, Arora 2020 (references, section 4b)"
MOMENTUM_SOURCE = "Wan et al., Spherical Motion Dynamics (references, section 4b)"
# Figure 5 of the paper (caption quoted in the references, section 4a): PreResNet-32, 5 random LR/WD schedules
# for 500 epochs, then the same LR and WD until epoch 1000, then LR decayed and WD removed: ~95% test accuracy.
PAPER_FIG5_TEST_ACC = 0.95
# Regime: a network "learned" at 5x chance (10 classes); "at equilibrium" needs a run of at least EQ_TIMES / lambda_e
# steps (the paper's O(1 / lambda_e) with room for the constant) and an effective LR that no longer drifts.
LEARNED_TEST_ACC = 0.5
EQ_TIMES = 3.0
# the angular update "just after" the drop: the first JUST_AFTER / lambda_e steps (the norm has hardly moved yet)
JUST_AFTER = 0.1
DECAY_SHAPES = ("step", "cosine", "warmup_linear")


@dataclasses.dataclass(frozen=True)
class Params(P.Params):
    seed: int = P.param(0, "seed of data subset, initialization, batch order and the toy model", ge=0)
    dataset: str = P.param("mnist", "training data (the paper: cifar10 for Figure 5)", choices=("mnist", "cifar10"))
    model: str = P.param("bn_mlp", "network: BN MLP, BN convnet, or the paper's PreResNet-32",
                         choices=("bn_mlp", "bn_convnet", "preresnet32"))
    width: int = P.param(256, "hidden units (bn_mlp) or first-layer channels (bn_convnet)", ge=4)
    bn_eps: float = P.param(1e-8, "BatchNorm eps (PyTorch's default 1e-5 breaks scale invariance at small norms)",
                            gt=0)
    n_train: int = P.param(4000, "training examples (a fixed random subset)", ge=16)
    n_test: int = P.param(2000, "held-out test examples", ge=100)
    augment: bool = P.param(False, "random crop and flip (CIFAR-10 only)")
    batch_size: int = P.param(128, "minibatch size (the paper: 128, UNVERIFIED)", ge=1)
    lr: float = P.param(0.1, "learning rate of the reference runs (the paper: 0.1)", gt=0)
    weight_decay: float = P.param(0.04, "weight decay of the reference runs (the paper: 5e-4)", gt=0)
    lr_drop: float = P.param(10.0, "factor the learning rate is divided by at the drop (the paper: 10)", gt=1)
    equilibrium_epochs: int = P.param(50, "epochs at (lr, weight_decay) before the drop", ge=1)
    after_drop_epochs: int = P.param(330, "epochs after the drop (several 1 / lambda_e' at the new lambda_e')", ge=1)
    early_drop_epochs: int = P.param(4, "drop epoch of the run that drops before equilibrium", ge=1)
    lr_small_first: float = P.param(0.025, "small first learning rate (reviewer 1, question 4)", gt=0)
    lr_large_first: float = P.param(0.4, "large first learning rate (reviewer 1, question 4)", gt=0)
    compare_after_drop_epochs: int = P.param(20, "epochs after the drop in the early-drop and first-LR comparisons",
                                             ge=1)
    phase1_epochs: int = P.param(15, "epochs of the differing schedules (the paper's Figure 5: 500)", ge=1)
    phase2_epochs: int = P.param(30, "epochs at the common (lr, weight_decay) (Figure 5: 500)", ge=1)
    final_epochs: int = P.param(10, "epochs with lr / lr_drop and no weight decay at the end (Figure 5)", ge=0)
    decay_epochs: int = P.param(30, "length of the step, cosine and warmup + linear decay runs", ge=2)
    warmup_fraction: float = P.param(0.1, "warmup share of the warmup + linear decay schedule", gt=0, lt=1)
    split_factor: float = P.param(4.0, "lr x this and weight decay / this: the equal-lambda_e runs", gt=1)
    momentum: float = P.param(0.9, "momentum of the momentum run (plain SGD elsewhere)", ge=0, lt=1)
    short_epochs: int = P.param(50, "length of the momentum, batch-size and LayerNorm runs, in epochs at batch_size",
                                ge=1)
    batch_size_small: int = P.param(32, "small batch of the batch-size comparison", ge=1)
    batch_size_large: int = P.param(512, "large batch of the batch-size comparison", ge=1)
    sweep_size: int = P.param(4, "intrinsic LRs in the network's steps-to-equilibrium sweep", ge=2)
    sweep_min_intrinsic_lr: float = P.param(2e-3, "smallest lambda_e of the network sweep", gt=0)
    sweep_max_intrinsic_lr: float = P.param(1.6e-2, "largest lambda_e of the network sweep", gt=0, lt=0.5)
    sweep_relaxation_times: float = P.param(4.0, "network sweep run length, in units of 1 / lambda_e steps", gt=0)
    equilibrium_tol: float = P.param(0.1, "relative distance to the final norm that counts as equilibrium",
                                     gt=0, lt=1)
    eval_every_epochs: int = P.param(2, "test evaluation interval, in epochs", ge=1)
    toy_dim: int = P.param(32, "dimension of the toy model's weight", ge=3)
    toy_batch: int = P.param(4, "toy model minibatch (fresh samples every step)", ge=1)
    toy_replicas: int = P.param(8, "independent toy runs averaged per setting", ge=1)
    toy_sweep_size: int = P.param(10, "intrinsic LRs in the toy sweep", ge=2)
    toy_min_intrinsic_lr: float = P.param(3e-4, "smallest lambda_e of the toy sweep", gt=0)
    toy_max_intrinsic_lr: float = P.param(0.1, "largest lambda_e of the toy sweep", gt=0, lt=0.5)
    toy_relaxation_times: float = P.param(8.0, "toy run length, in units of 1 / lambda_e steps", gt=0)
    toy_intrinsic_lr: float = P.param(0.01, "lambda_e of the toy's history, LR-drop and momentum runs", gt=0,
                                      lt=0.1)

    PRESETS = {
        "smoke": {"n_train": 512, "n_test": 500, "width": 64, "batch_size": 64, "weight_decay": 0.05,
                  "equilibrium_epochs": 10, "after_drop_epochs": 10, "early_drop_epochs": 2, "decay_epochs": 4,
                  "compare_after_drop_epochs": 2, "phase1_epochs": 3, "phase2_epochs": 3, "final_epochs": 1,
                  "short_epochs": 4, "batch_size_large": 256, "sweep_size": 2, "sweep_min_intrinsic_lr": 8e-3,
                  "sweep_max_intrinsic_lr": 1.6e-2, "sweep_relaxation_times": 2.0, "eval_every_epochs": 2,
                  "toy_sweep_size": 4,
                  "toy_replicas": 4, "toy_min_intrinsic_lr": 1e-2, "toy_relaxation_times": 6.0,
                  "toy_intrinsic_lr": 0.03},
        # The paper's setting for one GPU: PreResNet-32 on full CIFAR-10 with crop+flip, batch 128, lr 0.1,
        # weight decay 5e-4 (lambda_e = 5e-5, 1 / lambda_e = 20,000 steps = 51 epochs), Figure 5's 500 + 500
        # epochs. The drop and sweep runs are sized in the same units (after the drop lambda_e' = 5e-6: 1,600
        # epochs are 3.1 / lambda_e'; the decay runs 200 epochs, 3.9 / lambda_e).
        "paper": {"dataset": "cifar10", "model": "preresnet32", "bn_eps": 1e-5, "n_train": 50_000, "n_test": 10_000,
                  "augment": True, "weight_decay": 5e-4, "equilibrium_epochs": 300, "after_drop_epochs": 1600,
                  "decay_epochs": 200,
                  "early_drop_epochs": 20, "lr_small_first": 0.01, "lr_large_first": 1.0,
                  "compare_after_drop_epochs": 50, "phase1_epochs": 500, "phase2_epochs": 500,
                  "final_epochs": 50, "short_epochs": 150, "batch_size_small": 32, "batch_size_large": 512,
                  "sweep_size": 4, "sweep_min_intrinsic_lr": 5e-5, "sweep_max_intrinsic_lr": 4e-4,
                  "eval_every_epochs": 5, "toy_dim": 64, "toy_replicas": 16, "toy_sweep_size": 13,
                  "toy_min_intrinsic_lr": 1e-4},
    }

    @property
    def intrinsic_lr(self) -> float:
        return self.lr * self.weight_decay

    def check(self) -> None:
        limit = 60_000 if self.dataset == "mnist" else 50_000
        if self.n_train > limit:
            raise P.ConfigError(f"n_train ({self.n_train}) exceeds the {self.dataset} training set ({limit}).")
        if self.n_test > 10_000:
            raise P.ConfigError(f"n_test ({self.n_test}) exceeds the 10,000 test examples.")
        for name in ("batch_size", "batch_size_small", "batch_size_large"):
            if getattr(self, name) > self.n_train:
                raise P.ConfigError(f"{name} ({getattr(self, name)}) is larger than n_train ({self.n_train}); "
                                    f"lower it or use more training examples.")
        if not self.batch_size_small < self.batch_size < self.batch_size_large:
            raise P.ConfigError(f"Need batch_size_small < batch_size < batch_size_large, got "
                                f"{self.batch_size_small}, {self.batch_size}, {self.batch_size_large}.")
        if not self.lr_small_first < self.lr < self.lr_large_first:
            raise P.ConfigError(f"Need lr_small_first < lr < lr_large_first, got {self.lr_small_first}, "
                                f"{self.lr}, {self.lr_large_first}.")
        if self.early_drop_epochs >= self.equilibrium_epochs:
            raise P.ConfigError(f"early_drop_epochs ({self.early_drop_epochs}) must be below equilibrium_epochs "
                                f"({self.equilibrium_epochs}).")
        if self.sweep_min_intrinsic_lr >= self.sweep_max_intrinsic_lr:
            raise P.ConfigError("sweep_min_intrinsic_lr must be below sweep_max_intrinsic_lr.")
        if self.toy_min_intrinsic_lr >= self.toy_max_intrinsic_lr:
            raise P.ConfigError("toy_min_intrinsic_lr must be below toy_max_intrinsic_lr.")
        if self.lr_large_first * self.weight_decay >= 0.5:
            raise P.ConfigError(f"lr_large_first * weight_decay ({self.lr_large_first * self.weight_decay:g}) "
                                f"must be below 0.5, or weight decay alone shrinks the weights too fast.")
        if self.augment and self.dataset != "cifar10":
            raise P.ConfigError("augment must be false for dataset mnist: crop and flip is for cifar10.")
        if self.model == "preresnet32" and self.dataset != "cifar10":
            raise P.ConfigError("model preresnet32 is the paper's CIFAR-10 network; use dataset cifar10 with it.")

    def datasets(self) -> list[tuple[str, str]]:
        return [(self.dataset, "train"), (self.dataset, "test")]


# ============================================================================================== the toy model


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


def settle_step(curve: np.ndarray, tol: float, final_frac: float = 0.25, steps: np.ndarray | None = None) -> float:
    """The first step at which `curve` comes within a relative `tol` of its final value (the mean of its last
    `final_frac`); NaN if that happens only in the final stretch. The first entry, not the last exit, so that
    the equilibrium's own fluctuations do not count as not having arrived."""
    curve = np.asarray(curve, dtype=float)
    steps = np.arange(1, len(curve) + 1) if steps is None else np.asarray(steps)
    final = curve[int(len(curve) * (1 - final_frac)):].mean()
    inside = np.nonzero(np.abs(curve / final - 1) <= tol)[0]
    if len(inside) == 0 or inside[0] >= len(curve) * (1 - final_frac):
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


def _thin(a: np.ndarray, n: int = 240) -> tuple[np.ndarray, np.ndarray]:
    """About n log-spaced indices (steps 1..len) and the values there, for figures."""
    idx = np.unique(np.geomspace(1, a.shape[-1], n).astype(int)) - 1
    return idx + 1, a[..., idx]


def _toy(p: Params) -> dict:
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
        st, v = _thin(sq)
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
        st, sq_thin = _thin(sq)
        st2, ang_thin = _thin(smooth)
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


# ============================================================================================ the real network


@dataclasses.dataclass
class NetSetup:
    train: VisionData
    test: VisionData
    train_eval: VisionData
    stats: tuple[torch.Tensor, torch.Tensor]
    device: torch.device
    steps_per_epoch: int


def load_setup(p: Params, device: torch.device) -> NetSetup:
    g = torch.Generator().manual_seed(p.seed)
    full = load_dataset(p.dataset, "train", device)
    train_data = full.subset(p.n_train, g) if p.n_train < len(full) else full
    test = load_dataset(p.dataset, "test", device).subset(p.n_test)
    return NetSetup(train_data, test, train_data.subset(min(p.n_train, p.n_test)), channel_stats(train_data),
                    device, p.n_train // p.batch_size)


def build_model(p: Params, data: VisionData, norm: str = "batch") -> torch.nn.Module:
    """The chapter's network, initialised from `seed` on the CPU (so the same on every device); `norm` "layer"
    puts LayerNorm where the network has BatchNorm."""
    torch.manual_seed(p.seed)
    c, h, w = data.x.shape[1:]
    if p.model == "bn_mlp":
        return BNMLP(c * h * w, data.num_classes, p.width, bn_eps=p.bn_eps, norm=norm)
    if p.model == "bn_convnet":
        return BNConvNet(c, data.num_classes, p.width, bn_eps=p.bn_eps, norm=norm)
    return preresnet32(data.num_classes, c, bn_eps=p.bn_eps, norm=norm)


def decay_schedule(shape: str, steps: int, lr: float, weight_decay: float, lr_drop: float = 10.0,
                   warmup_fraction: float = 0.1) -> Callable[[int], tuple[float, float]]:
    """Peak learning rate `lr` over `steps`, constant weight decay: "step" divides lr by `lr_drop` at 1/2 and
    again at 3/4 of the run; "cosine" is lr (1 + cos(pi t / steps)) / 2; "warmup_linear" rises linearly over
    `warmup_fraction` of the run, then falls linearly to 0 at the end."""
    warm = max(1, int(warmup_fraction * steps))

    def schedule(t: int) -> tuple[float, float]:
        if shape == "step":
            return lr / lr_drop ** ((t >= steps // 2) + (t >= 3 * steps // 4)), weight_decay
        if shape == "cosine":
            return lr * 0.5 * (1 + math.cos(math.pi * min(t, steps) / steps)), weight_decay
        if shape == "warmup_linear":
            f = (t + 1) / warm if t < warm else max(steps - t, 0) / (steps - warm)
            return lr * f, weight_decay
        raise ValueError(f"shape must be one of {DECAY_SHAPES}, got {shape!r}.")
    return schedule


def train_run(p: Params, s: NetSetup, phases: list[tuple[int, float, float]], *, batch_size: int | None = None,
              momentum: float = 0.0, init_scale: float = 1.0, label: str = "", bn_eps: float | None = None,
              norm: str = "batch", shape: str | None = None) -> dict:
    """One network run through `phases` (steps, lr, weight_decay), with every scale-invariant group tracked.
    With `shape`, one phase whose lr is the peak of that `decay_schedule`."""
    model = build_model(p if bn_eps is None else p.replace(bn_eps=bn_eps), s.train, norm)
    if init_scale != 1.0:
        with torch.no_grad():
            for ps in model.scale_invariant_groups().values():
                for q in ps:
                    q.mul_(init_scale)
    model = model.to(s.device)
    steps = sum(ph[0] for ph in phases)
    tracker = NormTracker(model, every=max(1, min(20, steps // 400)))
    ckpt = done = None
    if checkpoint_dir() is not None:  # in a campaign: a run stopped at a window's end resumes in the next
        key = config_key("intrinsic_lr_run", VERSION, {"params": p.to_dict(), "phases": phases, "label": label,
                                                       "batch_size": batch_size, "momentum": momentum,
                                                       "init_scale": init_scale, "bn_eps": bn_eps,
                                                       **({"norm": norm} if norm != "batch" else {}),
                                                       **({"shape": shape} if shape else {})})
        ckpt, done = Checkpoint("runs", key, every=5), Checkpoint("runs", f"{key}-done")
        finished = done.load()
        if finished is not None:
            return finished
    if shape:
        (_, lr0, wd0), = phases
        schedule = decay_schedule(shape, steps, lr0, wd0, p.lr_drop, p.warmup_fraction)
    else:
        schedule = piecewise(phases)
    hist = train(model, s.train, steps=steps, batch_size=batch_size or p.batch_size, schedule=schedule,
                 seed=p.seed, momentum=momentum, test_data=s.test, train_eval_data=s.train_eval,
                 eval_every=p.eval_every_epochs * s.steps_per_epoch, on_step=tracker, augment=p.augment,
                 stats=s.stats, progress=label or None, checkpoint=ckpt)
    out = {"phases": phases, "momentum": momentum, "batch_size": batch_size or p.batch_size,
           "init_scale": init_scale, "norm": norm, "shape": shape, "history": hist.to_dict(),
           "norms": tracker.to_dict()}
    if done is not None:
        done.save(out)
    return out


def _window_mean(run: dict, key: str, start: int, end: int, rms: bool = False) -> dict[str, float]:
    """Per group: the mean (or RMS) of a tracked quantity over the windows ending in (start, end]."""
    n = run["norms"]
    step = np.array(n["step"])
    sel = (step > start) & (step <= end)
    out = {}
    for g, vals in n[key].items():
        v = np.array(vals)[sel]
        out[g] = float(np.sqrt((v**2).mean())) if rms else float(v.mean())
    return out


def _summary(run: dict, start: int, end: int, lr: float, wd: float) -> dict:
    """Measured equilibrium over steps (start, end] against the predictions with the measured G^2."""
    ang = _window_mean(run, "angular", start, end, rms=True)
    sq = _window_mean(run, "sq_norm", start, end)
    g2 = _window_mean(run, "grad_sq", start, end)
    rows = []
    for g in ang:
        rows.append({"group": g, "angular": ang[g], "pred_angular": approx_angular_update(lr * wd, run["momentum"]),
                     "sq_norm": sq[g], "pred_sq_norm": math.sqrt(lr * g2[g] / (wd * (2 - lr * wd))),
                     "effective_lr": lr / sq[g], "grad_sq": g2[g]})
    return {"start": start, "end": end, "lr": lr, "weight_decay": wd, "groups": rows}


def _drift(run: dict, end: int, window: float) -> dict[str, float]:
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


def _acc_at(run: dict, start: int, end: int) -> dict[str, float]:
    h = run["history"]
    st = np.array(h["step"])
    sel = (st > start) & (st <= end)
    acc = np.array(h["test_acc"])[sel]
    return {"best": float(acc.max()), "final": float(acc[-1]), "mean": float(acc.mean()),
            "best_step": int(st[sel][acc.argmax()])}


def _net_drop(p: Params, s: NetSetup) -> dict:
    """Reviewer 1: the LR drop at equilibrium (angular update 10x down, then back up to sqrt(10) below), the drop
    before equilibrium (question 3) and a small vs a large first LR (question 4)."""
    spe = s.steps_per_epoch
    eq, after, early = p.equilibrium_epochs * spe, p.after_drop_epochs * spe, p.early_drop_epochs * spe
    lo = p.lr / p.lr_drop
    cmp_after = p.compare_after_drop_epochs * spe
    main = train_run(p, s, [(eq, p.lr, p.weight_decay), (after, lo, p.weight_decay)], label="drop at equilibrium")
    # question 3 compares the best test accuracy within cmp_after steps after each drop
    first = train_run(p, s, [(early, p.lr, p.weight_decay), (cmp_after, lo, p.weight_decay)], label="early drop")
    n = main["norms"]
    step = np.array(n["step"])
    every = step[0]
    res: dict = {"main": main, "early": first, "drop_step": eq, "early_drop_step": early}
    res["before"] = _summary(main, eq // 2, eq, p.lr, p.weight_decay)
    res["after"] = _summary(main, eq + after // 2, eq + after, lo, p.weight_decay)
    # immediate drop: the first JUST_AFTER / lambda_e steps after the drop (the norm has hardly moved yet) against
    # the last 0.5 / lambda_e steps before it (windows end exactly at the drop)
    i_drop = int(np.searchsorted(step, eq, side="right"))
    before_sel = (step > eq - 0.5 / p.intrinsic_lr) & (step <= eq)
    just = max(JUST_AFTER / p.intrinsic_lr, every)
    after_sel = (step > eq) & (step <= eq + just)
    res["just_after_steps"] = int(step[after_sel][-1] - eq)
    ratios = []
    for g, vals in n["angular"].items():
        v = np.array(vals)
        before = float(np.sqrt((v[before_sel] ** 2).mean()))
        just = float(np.sqrt((v[after_sel] ** 2).mean()))
        final = next(r["angular"] for r in res["after"]["groups"] if r["group"] == g)
        settle = settle_step(np.array(n["sq_norm"][g])[i_drop:], p.equilibrium_tol, steps=step[i_drop:] - eq)
        ratios.append({"group": g, "before": before, "just_after": just, "final": final,
                       "ratio_immediate": before / just, "ratio_final": before / final,
                       "settle_steps_after": settle})
    res["ratios"] = ratios
    res["pred_settle_steps_after"] = relaxation_steps(p.intrinsic_lr / p.lr_drop, math.sqrt(p.lr_drop),
                                                      p.equilibrium_tol)
    # regime: still moving at the drop (over the last 1 / lambda_e) and at the end (over the last 1 / lambda_e')
    res["drift_before"] = _drift(main, eq, 1 / p.intrinsic_lr)
    res["drift_after"] = _drift(main, eq + after, p.lr_drop / p.intrinsic_lr)
    res["acc_main_after"] = _acc_at(main, eq, eq + after)
    res["acc_main_cmp"] = _acc_at(main, eq, eq + cmp_after)
    res["acc_early_after"] = _acc_at(first, early, early + cmp_after)
    res["acc_main_before"] = _acc_at(main, eq // 2, eq)
    # question 4: the first LR small or large (same weight decay), each dropped by lr_drop at the same step
    compare = []
    for lr1 in (p.lr_small_first, p.lr, p.lr_large_first):
        r = main if lr1 == p.lr else train_run(p, s, [(eq, lr1, p.weight_decay),
                                                       (cmp_after, lr1 / p.lr_drop, p.weight_decay)],
                                               label=f"first lr {lr1}")
        acc = _acc_at(r, eq, eq + cmp_after)
        compare.append({"lr_first": lr1, "intrinsic_lr": lr1 * p.weight_decay, "best_after": acc["best"],
                        "best_after_step": acc["best_step"] - eq, "before": _acc_at(r, eq // 2, eq)["mean"],
                        "history": r["history"] if r is not main else None})
    res["compare"] = compare
    return res


def _net_schedules(p: Params, s: NetSetup) -> dict:
    """The paper's Figure 5: differing LR/WD schedules (and initial scales) for phase 1, then the same
    (lr, weight_decay) for phase 2, then lr / lr_drop without weight decay."""
    spe = s.steps_per_epoch
    n1, n2, n3 = p.phase1_epochs * spe, p.phase2_epochs * spe, p.final_epochs * spe
    lr, wd = p.lr, p.weight_decay
    half = n1 // 2
    tail = [(n2, lr, wd)] + ([(n3, lr / p.lr_drop, 0.0)] if n3 else [])
    schedules = {
        "reference (lr, wd) throughout": ([(n1, lr, wd)], 1.0),
        "lr x4, wd / 4 (same lambda_e)": ([(n1, 4 * lr, wd / 4)], 1.0),
        "lr / 4 then x4 lr, wd x 4": ([(half, lr / 4, wd), (n1 - half, lr, 4 * wd)], 1.0),
        "init x 4, wd / 10": ([(n1, lr, wd / 10)], 4.0),
    }
    runs = []
    for name, (phase1, scale) in schedules.items():
        r = train_run(p, s, phase1 + tail, init_scale=scale, label=name)
        end2 = n1 + n2
        summ = _summary(r, n1 + n2 // 2, end2, lr, wd)
        runs.append({"name": name, "run": r, "phase2": summ, "acc_phase2": _acc_at(r, n1 + n2 // 2, end2),
                     "train_acc_phase2": float(np.array(r["history"]["train_acc"])[
                         (np.array(r["history"]["step"]) > n1 + n2 // 2) & (np.array(r["history"]["step"]) <= end2)]
                         .mean()),
                     "acc_final": _acc_at(r, end2, end2 + n3) if n3 else None,
                     "drift_phase2": _drift(r, end2, 1 / p.intrinsic_lr)})
    return {"runs": runs, "phase_ends": [n1, n1 + n2, n1 + n2 + n3], "decay": _decay_runs(p, s)}


def _decay_runs(p: Params, s: NetSetup) -> dict:
    """Reviewer 1, question 5 and reviewer 2, point 10: step decay, cosine decay and warmup + linear decay with the
    same peak lambda_e = lr * weight_decay and length, each at (lr, wd) and at (lr x k, wd / k) (the same
    lambda_e at every step). If lambda_e determined everything, the two splits of each shape would end alike."""
    steps = p.decay_epochs * s.steps_per_epoch
    tail = max(1, steps // 10)  # "final": the last tenth of the run
    runs = []
    for shape in DECAY_SHAPES:
        for k in (1.0, p.split_factor):
            lr, wd = p.lr * k, p.weight_decay / k
            r = train_run(p, s, [(steps, lr, wd)], shape=shape, label=f"{shape}, lr x {k:g}")
            h = r["history"]
            n = r["norms"]
            last = np.array(n["step"]) > steps - tail
            runs.append({"shape": shape, "split": k, "lr": lr, "weight_decay": wd,
                         "test_acc": float(h["test_acc"][-1]), "train_acc": float(h["train_acc"][-1]),
                         "best_test_acc": float(max(h["test_acc"])),
                         "effective_lr_end": {g: float(np.array(v)[last].mean()) for g, v in n["effective_lr"].items()},
                         "history": {k2: h[k2] for k2 in ("step", "test_acc", "train_acc")},
                         "norms": {"step": n["step"], "lr": n["lr"], "effective_lr": n["effective_lr"],
                                   "sq_norm": n["sq_norm"]}})
    return {"runs": runs, "steps": steps}


def _net_sweep(p: Params, s: NetSetup) -> dict:
    """Reviewer 1, question 2: steps to equilibrium against 1 / lambda_e, with lr = wd = sqrt(lambda_e)."""
    lams = np.geomspace(p.sweep_min_intrinsic_lr, p.sweep_max_intrinsic_lr, p.sweep_size)
    rows = []
    for le in lams:
        rate = float(math.sqrt(le))
        steps = int(p.sweep_relaxation_times / le)
        r = train_run(p, s, [(steps, rate, rate)], label=f"lambda_e {le:.2g}")
        n = r["norms"]
        step = np.array(n["step"])
        settle = {g: settle_step(np.array(v), p.equilibrium_tol, steps=step) for g, v in n["sq_norm"].items()}
        summ = _summary(r, steps // 2, steps, rate, rate)
        # every layer must have settled: a layer that has not makes the run's time to equilibrium unknown (NaN)
        rows.append({"intrinsic_lr": float(le), "lr": rate, "weight_decay": rate, "steps": steps,
                     "settle_steps": settle, "settle_steps_max": float(max(settle.values()))
                     if all(np.isfinite(v) for v in settle.values()) else math.nan,
                     "test_acc": float(r["history"]["test_acc"][-1]),
                     "equilibrium": summ, "norms": {"step": n["step"], "sq_norm": n["sq_norm"],
                                                    "angular": n["angular"]}})
    fit = log_fit([1 / r["intrinsic_lr"] for r in rows], [r["settle_steps_max"] for r in rows])
    layer_fits = {g: log_fit([1 / r["intrinsic_lr"] for r in rows], [r["settle_steps"][g] for r in rows])
                  for g in rows[0]["settle_steps"]}
    return {"rows": rows, "fit": fit, "layer_fits": layer_fits}


def _net_momentum_batch(p: Params, s: NetSetup) -> dict:
    """Momentum (Wan et al.'s sqrt(2 lambda_e / (1 + mu))) and batch size (temperature lr / B) at fixed steps."""
    steps = p.short_epochs * s.steps_per_epoch
    lr, wd = p.lr, p.weight_decay
    runs = []
    k = p.split_factor
    extra = [] if p.bn_eps == 1e-5 else [("plain SGD, BN eps 1e-5 (PyTorch default)", {"bn_eps": 1e-5}, lr, wd)]
    # reviewer 2, point 3 and reviewer 3: LayerNorm makes the layers scale-invariant too; the split runs (same
    # lambda_e, lr x k) test "lambda_e alone sets the equilibrium" for both normalizations
    for name, kw, lr_i, wd_i in [("plain SGD", {}, lr, wd), *extra,
                                 (f"momentum {p.momentum}, lr x (1 - momentum)", {"momentum": p.momentum},
                                  lr * (1 - p.momentum), wd),
                                 (f"batch {p.batch_size_small}", {"batch_size": p.batch_size_small}, lr, wd),
                                 (f"batch {p.batch_size_large}", {"batch_size": p.batch_size_large}, lr, wd),
                                 (f"BatchNorm, lr x {k:g}, wd / {k:g}", {}, lr * k, wd / k),
                                 ("LayerNorm", {"norm": "layer"}, lr, wd),
                                 (f"LayerNorm, lr x {k:g}, wd / {k:g}", {"norm": "layer"}, lr * k, wd / k)]:
        r = train_run(p, s, [(steps, lr_i, wd_i)], label=name, **kw)
        summ = _summary(r, steps // 2, steps, lr_i, wd_i)
        runs.append({"name": name, "lr": lr_i, "weight_decay": wd_i, "momentum": r["momentum"],
                     "batch_size": r["batch_size"], "norm": kw.get("norm", "batch"), "equilibrium": summ,
                     "acc": _acc_at(r, steps // 2, steps), "train_acc": float(r["history"]["train_acc"][-1]),
                     # momentum mu at lr (1 - mu) moves like plain SGD at lr: time unit (1 - mu) / (lr wd)
                     "drift": _drift(r, steps, (1 - r["momentum"]) / (lr_i * wd_i)),
                     "norms": {"step": r["norms"]["step"], "angular": r["norms"]["angular"],
                               "effective_lr": r["norms"]["effective_lr"]}})
    return {"runs": runs, "steps": steps}


# ============================================================================================== entry point

NET_PARTS = {"drop": _net_drop, "schedules": _net_schedules, "sweep": _net_sweep,
             "momentum_batch": _net_momentum_batch}
TOY_FIELDS = ("seed", "toy_dim", "toy_batch", "toy_replicas", "toy_sweep_size", "toy_min_intrinsic_lr",
              "toy_max_intrinsic_lr", "toy_relaxation_times", "toy_intrinsic_lr", "equilibrium_tol", "lr_drop",
              "momentum")


def units(p: Params) -> list[Unit]:
    """The toy model (CPU), then one unit per network part (the LR drop; Figure 5's schedules with the step,
    cosine and warmup + linear decay runs; the lambda_e sweep; momentum, batch size and LayerNorm); the network
    parts of one process share one loaded data set."""
    device = get_device()
    config = p.to_dict()
    net_config = {k: v for k, v in config.items() if not k.startswith("toy_")}
    threads = 1 if device.type == "cpu" and p.model == "bn_mlp" else None  # as run(): same numbers alone

    def toy() -> dict:
        with num_threads(threads):
            return {"metrics": {}, "data": _toy(p)}

    found = [make_unit("intrinsic_lr", "toy", "intrinsic_lr_toy", VERSION, {k: config[k] for k in TOY_FIELDS},
                       toy, "cpu")]
    setup: list[NetSetup] = []  # loaded once for every part run in this process

    def part(fn) -> dict:
        setup[:] = setup or [load_setup(p, device)]
        with num_threads(threads):
            return {"metrics": {}, "data": fn(p, setup[0])}

    for name, fn in NET_PARTS.items():
        found.append(make_unit("intrinsic_lr", name, f"intrinsic_lr_{name}", VERSION, net_config,
                               lambda fn=fn: part(fn), device, Work("PreResNet-32" if p.model == "preresnet32"
                                                                    else None, _part_images(p, name))))
    return found


def _part_images(p: Params, name: str) -> float:
    """Training images of each part's runs (step counts as in the parts; batch runs of momentum_batch take the
    same steps at their own batch size)."""
    spe_images = (p.n_train // p.batch_size) * p.batch_size  # one epoch at the main batch size
    if name == "drop":
        return spe_images * ((p.equilibrium_epochs + p.after_drop_epochs)
                             + (p.early_drop_epochs + p.compare_after_drop_epochs)
                             + 2 * (p.equilibrium_epochs + p.compare_after_drop_epochs))
    if name == "schedules":
        return spe_images * (4 * (p.phase1_epochs + p.phase2_epochs + p.final_epochs)
                             + 2 * len(DECAY_SHAPES) * p.decay_epochs)
    if name == "sweep":
        lams = np.geomspace(p.sweep_min_intrinsic_lr, p.sweep_max_intrinsic_lr, p.sweep_size)
        return float(sum(int(p.sweep_relaxation_times / le) for le in lams)) * p.batch_size
    steps = p.short_epochs * (p.n_train // p.batch_size)
    runs = 6 if p.bn_eps == 1e-5 else 7  # plain, (eps), momentum, BN split, LayerNorm and its split at batch_size
    return steps * (runs * p.batch_size + p.batch_size_small + p.batch_size_large)


def run(p: Params, store: Store | None = None, force: bool | None = None) -> Result:
    """Everything the chapter shows. Each part is a unit, its own stored result; this one gathers them."""
    store = store or Store()
    device = get_device()

    def compute() -> dict:
        with num_threads(1 if device.type == "cpu" and p.model == "bn_mlp" else None):
            parts = {u.name: run_unit(store, u, force) for u in units(p)}
        data = {name: r.data for name, r in parts.items()}
        data["provenance"] = {name: {"key": f"{r.experiment}/{r.key}", "cached": r.cached, **r.provenance}
                              for name, r in parts.items()}
        return {"metrics": _metrics(p, data), "data": data}

    return store.run("intrinsic_lr", VERSION, p.to_dict(), compute, device=device, force=force)


def _metrics(p: Params, d: dict) -> dict:
    """The headline numbers the verdicts are computed from."""
    toy, drop = d["toy"], d["drop"]
    rel = lambda a, b: abs(a / b - 1)  # noqa: E731
    before = drop["before"]["groups"]
    return {
        "toy_max_norm_error": max(rel(r["sq_norm"], r["pred_sq_norm"]) for r in toy["sweep"]),
        "toy_max_angular_error": max(rel(r["angular_rms"], r["pred_angular"]) for r in toy["sweep"]),
        "toy_settle_slope": toy["settle_fit"]["slope"],
        "toy_drop_ratio_immediate": toy["drop"]["ratio_immediate"],
        "toy_drop_ratio_final": toy["drop"]["ratio_final"],
        "net_max_angular_error": max(rel(r["angular"], r["pred_angular"]) for r in before),
        "net_max_norm_error": max(rel(r["sq_norm"], r["pred_sq_norm"]) for r in before),
        "net_drop_ratio_immediate": float(np.median([r["ratio_immediate"] for r in drop["ratios"]])),
        "net_drop_ratio_final": float(np.median([r["ratio_final"] for r in drop["ratios"]])),
        "net_settle_slope": d["sweep"]["fit"]["slope"],
        "schedules_test_acc_spread": float(np.ptp([r["acc_phase2"]["mean"] for r in d["schedules"]["runs"]])),
        "schedules_effective_lr_spread": max(
            float(np.ptp(np.log([r["phase2"]["groups"][i]["effective_lr"] for r in d["schedules"]["runs"]])))
            for i in range(len(d["schedules"]["runs"][0]["phase2"]["groups"]))),
        "net_drop_ratio_final_min": float(min(r["ratio_final"] for r in drop["ratios"])),
        "net_drop_ratio_final_max": float(max(r["ratio_final"] for r in drop["ratios"])),
        **_decay_metrics(d), **_norm_metrics(d),
    }


def _decay_metrics(d: dict) -> dict:
    runs = d["schedules"]["decay"]["runs"]
    out = {}
    for shape in DECAY_SHAPES:
        a, b = [r for r in runs if r["shape"] == shape]
        out[f"decay_{shape}_test_acc"] = a["test_acc"]
        out[f"decay_{shape}_split_acc_gap"] = b["test_acc"] - a["test_acc"]
        out[f"decay_{shape}_split_effective_lr_ratio"] = max(
            math.exp(abs(math.log(b["effective_lr_end"][g] / a["effective_lr_end"][g]))) for g in a["effective_lr_end"])
    return out


def _norm_metrics(d: dict) -> dict:
    runs = {r["name"]: r for r in d["momentum_batch"]["runs"]}
    out = {}
    for norm, ref in (("batch", "plain SGD"), ("layer", "LayerNorm")):
        a = runs[ref]
        b = next(r for r in runs.values() if r["norm"] == norm and r["lr"] > a["lr"] and r["momentum"] == 0)
        ea, eb = a["equilibrium"]["groups"], b["equilibrium"]["groups"]
        out[f"{norm}norm_angular_error"] = max(abs(g["angular"] / g["pred_angular"] - 1) for g in ea + eb)
        out[f"{norm}norm_split_effective_lr_ratio"] = max(
            math.exp(abs(math.log(x["effective_lr"] / y["effective_lr"]))) for x, y in zip(ea, eb, strict=True))
        out[f"{norm}norm_test_acc"] = a["acc"]["mean"]
        out[f"{norm}norm_split_acc_gap"] = b["acc"]["mean"] - a["acc"]["mean"]
    return out


def _worst(d: dict[str, float]) -> float:
    """The largest value over layers; NaN (not measurable) wins, so that it fails the check."""
    v = list(d.values())
    return math.nan if any(not np.isfinite(x) for x in v) else max(v)


def regimes(p: Params, d: dict) -> dict[str, Regime]:
    """The state each network claim is about, measured: a network that learned (test accuracy at least
    LEARNED_TEST_ACC) and, for claims about equilibrium, runs of at least EQ_TIMES / lambda_e steps whose effective
    LR no longer drifts (by more than `equilibrium_tol` between the last two windows of 1 / lambda_e)."""
    spe = p.n_train // p.batch_size
    lam, tol = p.intrinsic_lr, p.equilibrium_tol
    learned = "test accuracy"
    drop = d["drop"]
    eq_steps, after_steps = p.equilibrium_epochs * spe, p.after_drop_epochs * spe
    before = [at_least(f"{learned} before the drop", drop["acc_main_before"]["mean"], LEARNED_TEST_ACC),
              at_least("steps before the drop x lambda_e", eq_steps * lam, EQ_TIMES),
              at_most("effective-LR drift over the last 1/lambda_e before the drop (worst layer)",
                      _worst(drop["drift_before"]), tol)]
    out = {"equilibrium": Regime("Network before the drop", "a network that learned, at equilibrium", before)}
    out["drop"] = Regime("Network after the drop", "equilibrium before the drop and at the end of the run", [
        *before[1:], at_least(f"{learned} after the drop", drop["acc_main_after"]["mean"], LEARNED_TEST_ACC),
        at_least("steps after the drop x lambda_e'", after_steps * lam / p.lr_drop, EQ_TIMES),
        at_most("effective-LR drift over the last 1/lambda_e' (worst layer)", _worst(drop["drift_after"]), tol)])
    sc = d["schedules"]
    ref = sc["runs"][0]
    out["schedules"] = Regime("Figure 5 runs", "networks that learned, with a common phase of several 1/lambda_e", [
        at_least(f"lowest {learned} (common phase)", min(r["acc_phase2"]["mean"] for r in sc["runs"]),
                 LEARNED_TEST_ACC),
        at_least("common-phase steps x lambda_e", p.phase2_epochs * spe * lam, EQ_TIMES),
        at_most("reference run's effective-LR drift at the end of the common phase (worst layer)",
                _worst(ref["drift_phase2"]), tol)])
    rows = d["sweep"]["rows"]
    settled = [np.isfinite(v) for r in rows for v in r["settle_steps"].values()]
    out["sweep"] = Regime("lambda_e sweep", "networks that learned, every layer settled within the run", [
        at_least(f"lowest final {learned}", min(r["test_acc"] for r in rows), LEARNED_TEST_ACC),
        at_least("run length x lambda_e", p.sweep_relaxation_times, EQ_TIMES),
        at_least("share of (lambda_e, layer) pairs whose norm settled", float(np.mean(settled)), 1.0)])
    mb = d["momentum_batch"]

    def short(runs: list[dict], subject: str) -> Regime:
        # momentum mu at lr (1 - mu) takes steps like plain SGD at lr: its time unit is (1 - mu) / (lr wd)
        return Regime(subject, "networks that learned, at equilibrium", [
            at_least(f"lowest {learned} (second half)", min(r["acc"]["mean"] for r in runs), LEARNED_TEST_ACC),
            at_least("steps x lambda_e (shortest run; with momentum mu: lambda_e / (1 - mu))",
                     min(mb["steps"] * r["lr"] * r["weight_decay"] / (1 - r["momentum"]) for r in runs), EQ_TIMES),
            at_most("effective-LR drift over the last 1/lambda_e (worst run and layer)",
                    max(_worst(r["drift"]) for r in runs), tol)])

    out["momentum_batch"] = short([r for r in mb["runs"] if r["norm"] == "batch"],
                                  "Momentum, batch-size and BatchNorm split runs")
    out["layernorm"] = short([r for r in mb["runs"] if r["norm"] == "layer"], "LayerNorm runs")
    dec = sc["decay"]["runs"]
    out["decay"] = Regime("Decay-schedule runs", "networks that learned", [
        at_least(f"lowest final {learned}", min(r["test_acc"] for r in dec), LEARNED_TEST_ACC)])
    return out
