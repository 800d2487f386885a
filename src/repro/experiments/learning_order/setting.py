"""The synthetic theory setting of Li, Wei, Ma (NeurIPS 2019): learning order of a two-layer ReLU network.

The distribution (paper, section 3): a label y uniform on {-1, +1} and an input x = (x1, x2).
- With probability p0 only x1 is present, with probability q0 only x2, otherwise both (the other part is 0).
- x1 ~ P_y (the P component, "hard to generalise, easy to fit"): x1 = y gamma0 w* + z, z ~ N(0, I_d / d)
  conditioned on y <w*, z> >= 0. Linearly separable with margin gamma0, but with d-dimensional noise, so it
  needs many examples to generalise.
- x2 ~ Q_y (the Q component, "easy to generalise, hard to fit"): Q_{+1}: x2 = alpha zq, Q_{-1}: x2 = alpha
  (zq + b zeta), alpha ~ U[0, 1], b = +-1. Three rays: memorisable from few examples, not linearly separable.
  Here zq and zeta are orthogonal and x2 is stored in their plane (2 coordinates): with a Gaussian
  initialisation and spherical Gaussian noise, weights orthogonal to that plane never change the network's
  output, so this is exactly the paper's Q in any dimension.

The network: f(x) = u^T relu(U x), m hidden units, u fixed (half +1/sqrt(m), half -1/sqrt(m)), U trained from
N(0, tau0^2). Loss: mean logistic loss log(1 + exp(-y f)) + (lambda / 2) |U|^2. Training: full-batch gradient
descent with spherical Gaussian noise added to the gradient, U <- U - lr (grad + xi), xi ~ N(0, tau_xi^2), so a
larger learning rate also means larger update noise (the paper's algorithm).

Algorithms (paper, section 3): L-S uses lr_large until the train loss falls below eps1 + q log 2 (q: the
fraction of Q-only training examples, which an untrained Q part leaves at loss log 2), then lr_small. S uses
lr_small throughout. S + noise uses lr_small and pre-activation noise, f = u^T relu(U x + Xi) with Xi ~ N(0,
sigma^2) drawn per example and unit at every step, switched off by L-S's annealing rule. Every run has the same
step budget; annealing happens at the loss threshold, or at `pq_anneal_max` steps at the latest. A test example on
which the network outputs exactly 0 (every unit inactive) counts as half correct.

This module holds the setting's parameters, the distribution and the batched training loop; theory.py runs the
experiments on them.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from repro import params as P

KINDS = ("P", "Q", "PQ")  # example kinds: 0 = P only, 1 = Q only, 2 = both components
KIND_NAMES = {"P": "P only", "Q": "Q only", "PQ": "both"}
ALGORITHMS = ("L-S", "S", "S+noise")
# An example kind counts as fit once this fraction of its training examples is classified correctly.
FIT_ACCURACY = 0.9


def _grid(text: str, name: str = "grid", example: str = "0.05,0.1,0.2") -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
        if not all(math.isfinite(v) for v in values):  # 'nan', 'inf' and '1e999' parse as floats
            raise ValueError
        return values
    except ValueError:
        raise P.ConfigError(f"{name} must be comma-separated numbers such as '{example}'; got {text!r}.") from None


@dataclasses.dataclass(frozen=True)
class TheoryParams(P.Params):
    seed: int = P.param(0, "seed of data, initialisation and noise; the k-th repetition uses seed + k", ge=0)
    device: str = P.param("auto", "where the networks train: auto (CUDA if present), cpu or cuda",
                          choices=("auto", "cpu", "cuda"))
    pq_d: int = P.param(100, "dimension d of the P component x1 (the Q component lives in a plane)", ge=4)
    pq_n_train: int = P.param(200, "training examples N", ge=20)
    pq_n_test: int = P.param(1000, "test examples of each kind (P only, Q only, both)", ge=20)
    pq_p0: float = P.param(0.2, "fraction p0 of examples with only the P component", ge=0, le=1)
    pq_q0: float = P.param(0.2, "fraction q0 of examples with only the Q component", ge=0, le=1)
    pq_gamma0: float = P.param(0.02, "margin gamma0 of the P component along w* (|x1| is about 1)", ge=0)
    pq_zq_norm: float = P.param(32.0, "length of zq, the Q component's positive ray", gt=0)
    pq_zeta: float = P.param(8.0, "length of zeta, the offset of Q's two negative rays from zq", gt=0)
    pq_width: int = P.param(64, "hidden units m of the two-layer ReLU network", ge=2)
    pq_init: float = P.param(0.03, "standard deviation tau0 of the first layer's initial weights", gt=0)
    pq_lr_large: float = P.param(2.0, "large learning rate eta1 of L-S before annealing", gt=0)
    pq_lr_small: float = P.param(0.1, "small learning rate eta2: S throughout, L-S after annealing", gt=0)
    pq_noise: float = P.param(0.001, "std tau_xi of the Gaussian noise added to every gradient", ge=0)
    pq_act_noise: float = P.param(2.0, "std of the pre-activation noise of S + noise before annealing", ge=0)
    pq_iterate_noise: float = P.param(0.003, "std of the noise added to the weights at every step before annealing "
                                      "(ablation)", ge=0)
    pq_weight_decay: float = P.param(1e-3, "L2 coefficient lambda", ge=0)
    pq_anneal_loss: float = P.param(0.1, "eps1: anneal at train loss eps1 + (Q-only fraction) * loss(0)", gt=0)
    pq_anneal_max: int = P.param(1500, "step at which L-S anneals at the latest", ge=1)
    pq_steps: int = P.param(3000, "gradient steps of every run", ge=10)
    pq_seeds: int = P.param(3, "seeds (data, initialisation, noise) per configuration", ge=1)
    pq_p0_grid: str = P.param("0.05,0.1,0.2,0.3", "values of p0 in the sweep, comma-separated")
    pq_lr_large_grid: str = P.param("0.25,0.5,1,4", "other large learning rates of L-S in the sweep, comma-separated")
    pq_adam_lr_large: float = P.param(0.01, "Adam's large learning rate before annealing", gt=0)
    pq_adam_lr_small: float = P.param(0.001, "Adam's small learning rate", gt=0)

    PRESETS = {
        "smoke": {"pq_d": 40, "pq_n_train": 100, "pq_n_test": 200, "pq_width": 32, "pq_steps": 300,
                  "pq_anneal_max": 150, "pq_seeds": 1, "pq_p0_grid": "0.1,0.2", "pq_lr_large_grid": "1"},
        "paper": {"pq_d": 1000, "pq_n_train": 2000, "pq_n_test": 2000, "pq_width": 512, "pq_steps": 20_000,
                  "pq_anneal_max": 10_000, "pq_seeds": 5, "pq_p0_grid": "0.02,0.05,0.1,0.2,0.3"},
    }

    def check(self) -> None:
        if self.pq_p0 + self.pq_q0 > 1:
            raise P.ConfigError(f"pq_p0 + pq_q0 ({self.pq_p0} + {self.pq_q0}) must not exceed 1: they are the "
                                f"fractions of P-only and Q-only examples.")
        if self.pq_lr_small >= self.pq_lr_large:
            raise P.ConfigError(f"pq_lr_small ({self.pq_lr_small}) must be smaller than pq_lr_large "
                                f"({self.pq_lr_large}).")
        if self.pq_adam_lr_small >= self.pq_adam_lr_large:
            raise P.ConfigError(f"pq_adam_lr_small ({self.pq_adam_lr_small}) must be smaller than "
                                f"pq_adam_lr_large ({self.pq_adam_lr_large}).")
        if self.pq_anneal_max >= self.pq_steps:
            raise P.ConfigError(f"pq_anneal_max ({self.pq_anneal_max}) must be below pq_steps ({self.pq_steps}), "
                                f"or L-S might never run at the small learning rate.")
        grid = _grid(self.pq_p0_grid, "pq_p0_grid")
        if not grid or any(not 0 < v < 1 or v + self.pq_q0 > 1 for v in grid):
            raise P.ConfigError(f"every value of pq_p0_grid ({self.pq_p0_grid!r}) must lie in (0, 1) with "
                                f"p0 + pq_q0 <= 1.")
        lrs = _grid(self.pq_lr_large_grid, "pq_lr_large_grid", "0.5,2")
        if any(v <= self.pq_lr_small for v in lrs):
            raise P.ConfigError(f"every value of pq_lr_large_grid ({self.pq_lr_large_grid!r}) must exceed "
                                f"pq_lr_small ({self.pq_lr_small}).")

    @property
    def p0_grid(self) -> list[float]:
        """The sweep's p0 values, the default p0 included, sorted."""
        return sorted(set(_grid(self.pq_p0_grid)) | {self.pq_p0})

    @property
    def lr_large_grid(self) -> list[float]:
        """The large learning rates of the L-S sweep, pq_lr_large included, sorted."""
        return sorted(set(_grid(self.pq_lr_large_grid)) | {self.pq_lr_large})


# ------------------------------------------------------------------------------------------------ distribution


def w_star(d: int, seed: int) -> torch.Tensor:
    """The unit direction w* of the P component, drawn from the seed."""
    w = torch.randn(d, generator=torch.Generator().manual_seed(seed))
    return w / w.norm()


def sample(n: int, p0: float, q0: float, d: int, gamma0: float, zq_norm: float, zeta: float, w: torch.Tensor,
           gen: torch.Generator, kinds: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """n examples x (n, d + 2) = (x1, x2), labels y (n,) in {-1, +1} and kinds (n,) (0 P only, 1 Q only, 2 both).
    x2's two coordinates are along zq and zeta. `kinds` fixes the kind of every example (for test sets)."""
    y = torch.where(torch.rand(n, generator=gen) < 0.5, 1.0, -1.0)
    if kinds is None:
        u = torch.rand(n, generator=gen)
        kinds = torch.where(u < p0, 0, torch.where(u < p0 + q0, 1, 2))
    z = torch.randn(n, d, generator=gen) / math.sqrt(d)
    along = z @ w
    z = z + (y * along.abs() - along)[:, None] * w  # reflect: y <w*, z> >= 0, a half Gaussian along w*
    x1 = y[:, None] * gamma0 * w + z
    alpha = torch.rand(n, generator=gen)
    b = torch.where(torch.rand(n, generator=gen) < 0.5, 1.0, -1.0)
    x2 = torch.stack([torch.full((n,), zq_norm), torch.where(y < 0, b * zeta, 0.0)], 1) * alpha[:, None]
    x1 = x1 * (kinds != 1)[:, None]
    x2 = x2 * (kinds != 0)[:, None]
    return torch.cat([x1, x2], 1), y, kinds


@dataclasses.dataclass
class Data:
    """One training set (padded to n_train rows, padding has weight 0) and a test set with n_test of each kind."""

    x: torch.Tensor
    y: torch.Tensor
    kind: torch.Tensor
    weight: torch.Tensor  # sums to 1 over the real examples
    x_test: torch.Tensor
    y_test: torch.Tensor
    kind_test: torch.Tensor


def make_data(p: TheoryParams, seed: int, p0: float, q0: float, n: int | None = None) -> Data:
    """Training data of the distribution (p0, q0) with n real examples (default N), and its test set. The data
    depend on the seed only (not on p0's position in a sweep), so every algorithm sees the same examples."""
    gen = torch.Generator().manual_seed(10_000 + seed)
    w = w_star(p.pq_d, seed)
    n = p.pq_n_train if n is None else n
    args = (p.pq_d, p.pq_gamma0, p.pq_zq_norm, p.pq_zeta, w, gen)
    x, y, kind = sample(p.pq_n_train, p0, q0, *args)
    weight = (torch.arange(p.pq_n_train) < n).float() / n
    kt = torch.arange(3).repeat_interleave(p.pq_n_test)
    xt, yt, kt = sample(3 * p.pq_n_test, 0.0, 0.0, *args, kinds=kt)
    return Data(x, y, kind, weight, xt, yt, kt)


# ------------------------------------------------------------------------------------------------ training


@dataclasses.dataclass(frozen=True)
class Algo:
    """One training algorithm. Noises other than `noise` act before annealing only; `noise` (tau_xi, on the
    gradient, so scaled by the learning rate) acts throughout, as in the paper."""

    name: str
    lr_large: float
    lr_small: float
    noise: float
    weight_decay: float
    act_noise: float = 0.0  # pre-activation: relu(U x + Xi)
    post_noise: float = 0.0  # post-activation: u^T (relu(U x) + Xi)
    iterate_noise: float = 0.0  # added to the weights at every step, not scaled by the learning rate
    loss: str = "logistic"
    optimizer: str = "sgd"


def algorithms(p: TheoryParams) -> dict[str, Algo]:
    """The paper's three algorithms at the chapter's parameters."""
    common = {"noise": p.pq_noise, "weight_decay": p.pq_weight_decay, "lr_small": p.pq_lr_small}
    return {"L-S": Algo("L-S", lr_large=p.pq_lr_large, **common),
            "S": Algo("S", lr_large=p.pq_lr_small, **common),
            "S+noise": Algo("S+noise", lr_large=p.pq_lr_small, act_noise=p.pq_act_noise, **common)}


def loss_at_zero(loss: str) -> float:
    """Loss of an example the network outputs 0 on: log 2 (logistic) or 1/2 (squared, targets +-1)."""
    return math.log(2) if loss == "logistic" else 0.5


def _per_example_loss(f: torch.Tensor, y: torch.Tensor, squared: torch.Tensor) -> torch.Tensor:
    return torch.where(squared[:, None], 0.5 * (f - y) ** 2, F.softplus(-y * f))


def _correct(margin: torch.Tensor) -> torch.Tensor:
    """1 for a correct sign, 0 for a wrong one, 1/2 for an output of exactly 0 (a unit-less, dead network)."""
    return (margin > 0).float() + 0.5 * (margin == 0).float()


def _grad_weight(f: torch.Tensor, y: torch.Tensor, squared: torch.Tensor) -> torch.Tensor:
    """|d loss / d f| per example: how hard each example still pulls on the weights."""
    return torch.where(squared[:, None], (f - y).abs(), torch.sigmoid(-y * f))


def train_batch(runs: list[tuple[Algo, Data]], p: TheoryParams, device: torch.device, seed: int,
                desc: str = "runs") -> list[dict[str, Any]]:
    """Train one network per (algorithm, data) pair, all at once (a leading run axis, batched matmuls), for
    pq_steps steps. Returns per run: final metrics, the anneal step, the steps at which each kind of training
    example was first fit, and curves every eval_every steps."""
    r_n, m, steps = len(runs), p.pq_width, p.pq_steps
    gen = torch.Generator(device=device).manual_seed(seed)

    def stack(attr: str) -> torch.Tensor:
        return torch.stack([getattr(d, attr) for _, d in runs]).to(device)

    x, y, kind, w = stack("x"), stack("y"), stack("kind"), stack("weight")
    xt, yt, kt = stack("x_test"), stack("y_test"), stack("kind_test")
    dim = x.shape[-1]

    def per_run(attr: str) -> torch.Tensor:
        return torch.tensor([float(getattr(a, attr)) for a, _ in runs], device=device)

    lr1, lr2, tau, wd = per_run("lr_large"), per_run("lr_small"), per_run("noise"), per_run("weight_decay")
    act, post, it_noise = per_run("act_noise"), per_run("post_noise"), per_run("iterate_noise")
    squared = torch.tensor([a.loss == "squared" for a, _ in runs], device=device)
    adam = torch.tensor([a.optimizer == "adam" for a, _ in runs], device=device)
    act_rows = torch.nonzero(act > 0).flatten()
    post_any, it_any, adam_any = bool((post > 0).any()), bool((it_noise > 0).any()), bool(adam.any())
    masks = [((kind == k) & (w > 0)).float() for k in range(3)]
    q_frac = (masks[1] * w).sum(1)
    zero_loss = torch.tensor([loss_at_zero(a.loss) for a, _ in runs], device=device)
    threshold = p.pq_anneal_loss + q_frac * zero_loss
    # with (almost) only Q-only examples the paper's threshold is above the untrained loss: anneal_max decides
    threshold = torch.where(threshold < zero_loss, threshold, torch.full_like(threshold, -math.inf))
    test_masks = [(kt == k).float() for k in range(3)]
    rays = torch.tensor([[p.pq_zq_norm, 0.0], [p.pq_zq_norm, p.pq_zeta], [p.pq_zq_norm, -p.pq_zeta]], device=device)

    u = torch.cat([torch.ones(m // 2), -torch.ones(m - m // 2)]).to(device) / math.sqrt(m)
    init_gen = torch.Generator().manual_seed(seed)
    weights = (torch.randn(r_n, m, dim, generator=init_gen) * p.pq_init).to(device)
    m1, m2 = torch.zeros_like(weights), torch.zeros_like(weights)
    annealed = torch.zeros(r_n, dtype=torch.bool, device=device)
    anneal_step = torch.full((r_n,), -1, device=device)
    fit_step = torch.full((r_n, 3), -1, device=device)
    eval_every = max(1, steps // 100)
    curves: dict[str, list] = {"step": []}

    def record(step: int, clean_f: torch.Tensor, loss: torch.Tensor) -> None:
        ft = F.relu(torch.bmm(xt, weights.transpose(1, 2))) @ u
        margin = ft * yt
        curves["step"].append(step)
        rows = {"train_loss": loss}
        for k, name in enumerate(KINDS):
            rows[f"acc_{name}"] = (_correct(margin) * test_masks[k]).sum(1) / test_masks[k].sum(1)
            rows[f"margin_{name}"] = (margin * test_masks[k]).sum(1) / test_masks[k].sum(1)
            gw = _grad_weight(clean_f, y, squared) * w
            rows[f"grad_share_{name}"] = (gw * masks[k]).sum(1) / gw.sum(1).clamp(min=1e-30)
        # units active on at least one of Q's rays (zq, zq + zeta, zq - zeta): x1 = 0, x2 on the ray
        pre_q = weights[:, :, -2:] @ rays.T  # (runs, m, 3)
        rows["active_units_Q"] = (pre_q > 0).any(-1).float().mean(1)
        for key, val in rows.items():
            curves.setdefault(key, []).append(val.cpu())

    for step in tqdm(range(steps + 1), desc=desc, leave=False, disable=None):
        weights.requires_grad_(True)
        pre = torch.bmm(x, weights.transpose(1, 2))  # (runs, N, m)
        noisy = pre
        if len(act_rows):
            sigma = torch.where(annealed, 0.0, act)[act_rows]
            xi = torch.randn((len(act_rows), *pre.shape[1:]), generator=gen, device=device) * sigma[:, None, None]
            noisy = pre.index_add(0, act_rows, xi)
        f = F.relu(noisy) @ u
        if post_any:  # u^T (relu + Xi) = u^T relu + N(0, sigma^2 |u|^2) per example; |u| = 1
            f = f + torch.randn(f.shape, generator=gen, device=device) * torch.where(annealed, 0.0, post)[:, None]
        loss = (_per_example_loss(f, y, squared) * w).sum(1)
        (grad,) = torch.autograd.grad(loss.sum(), weights)
        weights = weights.detach()
        with torch.no_grad():
            clean_f = F.relu(pre.detach()) @ u if (len(act_rows) or post_any) else f.detach()
            margin = clean_f * y
            clean_loss = (_per_example_loss(clean_f, y, squared) * w).sum(1)
            for k in range(3):
                acc = (_correct(margin) * masks[k]).sum(1) / masks[k].sum(1).clamp(min=1)
                has = masks[k].sum(1) > 0
                fit_step[:, k] = torch.where((fit_step[:, k] < 0) & has & (acc >= FIT_ACCURACY), step,
                                             fit_step[:, k])
            newly = ~annealed & ((clean_loss <= threshold) | (step >= p.pq_anneal_max))
            anneal_step = torch.where(newly, step, anneal_step)
            annealed |= newly
            if step % eval_every == 0 or step == steps:
                record(step, clean_f, clean_loss)
            if step == steps:
                break
            lr = torch.where(annealed, lr2, lr1)[:, None, None]
            g = grad + wd[:, None, None] * weights
            g = g + tau[:, None, None] * torch.randn(weights.shape, generator=gen, device=device)
            if adam_any:
                m1.mul_(0.9).add_(0.1 * g)
                m2.mul_(0.999).add_(0.001 * g * g)
                k = step + 1
                adam_step = m1 / (1 - 0.9 ** k) / ((m2 / (1 - 0.999 ** k)).sqrt() + 1e-8)
                g = torch.where(adam[:, None, None], adam_step, g)
            weights = weights - lr * g
            if it_any:
                sigma = torch.where(annealed, 0.0, it_noise)[:, None, None]
                weights = weights + sigma * torch.randn(weights.shape, generator=gen, device=device)
    stacked = {k: torch.stack(v, 1).numpy() if k != "step" else v for k, v in curves.items()}
    out = []
    for i, (algo, _) in enumerate(runs):
        final = {key: float(stacked[key][i, -1]) for key in stacked if key != "step"}
        out.append({
            "algorithm": algo.name,
            "p_error": 1 - final["acc_P"], "q_error": 1 - final["acc_Q"], "pq_error": 1 - final["acc_PQ"],
            "margin_P": final["margin_P"], "margin_Q": final["margin_Q"], "train_loss": final["train_loss"],
            "anneal_step": int(anneal_step[i]),
            **{f"fit_step_{name}": int(fit_step[i, k]) for k, name in enumerate(KINDS)},
            "curves": {"step": stacked["step"], **{key: stacked[key][i].round(5).tolist() for key in stacked
                                                   if key != "step"}},
        })
    return out
