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
sigma^2) drawn per example and unit at every step, switched off by L-S's annealing rule. The paper's stopping
rules: annealing at the loss threshold (or at `pq_anneal_max` steps at the latest, which the regime check
reports), then every run stops at the train loss eps2 (`pq_stop_loss`), so that L-S and S are compared at an equal
train loss, not after an equal number of steps (`pq_steps` is a budget). A test example on which the network
outputs exactly 0 (every unit inactive) counts as half correct.

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
    pq_zq_norm: float = P.param(8.0, "length of zq, the Q component's positive ray", gt=0)
    pq_zeta: float = P.param(1.28, "length of zeta, the offset of Q's two negative rays from zq", gt=0)
    pq_width: int = P.param(64, "hidden units m of the two-layer ReLU network", ge=2)
    pq_init: float = P.param(0.03, "standard deviation tau0 of the first layer's initial weights", gt=0)
    pq_lr_large: float = P.param(2.0, "large learning rate eta1 of L-S before annealing", gt=0)
    pq_lr_small: float = P.param(0.5, "small learning rate eta2: S throughout, L-S after annealing", gt=0)
    pq_noise: float = P.param(0.003, "std tau_xi of the Gaussian noise added to every gradient", ge=0)
    pq_act_noise: float = P.param(2.0, "std of the pre-activation noise of S + noise before annealing", ge=0)
    pq_iterate_noise: float = P.param(0.003, "std of the noise added to the weights at every step before annealing "
                                      "(ablation)", ge=0)
    pq_weight_decay: float = P.param(1e-4, "L2 coefficient lambda", ge=0)
    pq_anneal_loss: float = P.param(0.1, "eps1: anneal at train loss eps1 + (Q-only fraction) * loss(0)", gt=0)
    pq_anneal_max: int = P.param(3000, "step at which L-S anneals at the latest", ge=1)
    pq_stop_loss: float = P.param(0.15, "eps2: every run stops, once annealed, at this train loss", gt=0)
    pq_steps: int = P.param(6000, "step budget of every run", ge=10)
    pq_seeds: int = P.param(3, "seeds (data, initialisation, noise) per configuration", ge=1)
    pq_p0_grid: str = P.param("0.1,0.3", "other values of p0 (L-S and S), comma-separated")
    pq_lr_large_grid: str = P.param("1,4", "other large learning rates of L-S, comma-separated")
    pq_search_zq: str = P.param("4,8", "search: lengths |zq| of the Q component, comma-separated")
    pq_search_zeta: str = P.param("0.12,0.16,0.2", "search: ratios |zeta| / |zq|, comma-separated")
    pq_search_noise: str = P.param("0.003,0.01", "search: update noise tau_xi, comma-separated")
    pq_search_lr_small: str = P.param("0.3,0.5", "search: small learning rates eta2, comma-separated")
    pq_search_steps: str = P.param("3000,6000", "search: step budgets (anneal cap in proportion), comma-separated")
    pq_search_seeds: int = P.param(1, "search: seeds per setting", ge=1)
    pq_adam_lr_large: float = P.param(0.01, "Adam's large learning rate before annealing", gt=0)
    pq_adam_lr_small: float = P.param(0.001, "Adam's small learning rate", gt=0)

    PRESETS = {
        # seconds on a CPU: a small network, a few hundred steps, one seed, one search setting
        "smoke": {"pq_d": 40, "pq_n_train": 100, "pq_n_test": 200, "pq_width": 32, "pq_steps": 300,
                  "pq_anneal_max": 150, "pq_seeds": 1, "pq_p0_grid": "0.1", "pq_lr_large_grid": "1",
                  "pq_search_zq": "8", "pq_search_zeta": "0.25", "pq_search_noise": "0.01", "pq_search_lr_small": "0.3",
                  "pq_search_steps": "150,300"},
        # ten times d and N (the paper's constants are not given), the book's rates and Q geometry, and budgets
        # in proportion; about a minute and a half of a GPU for the three theory units together
        "paper": {"pq_d": 1000, "pq_n_train": 2000, "pq_n_test": 2000, "pq_width": 256, "pq_steps": 8000,
                  "pq_anneal_max": 4000, "pq_p0_grid": "0.05,0.1,0.3", "pq_search_steps": "4000,8000"},
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
        if self.pq_stop_loss >= self.pq_anneal_loss + self.pq_q0 * math.log(2):
            raise P.ConfigError(f"pq_stop_loss ({self.pq_stop_loss}) must be below the annealing threshold "
                                f"pq_anneal_loss + pq_q0 log 2 ({self.pq_anneal_loss + self.pq_q0 * math.log(2):.3g}): "
                                f"runs stop after they anneal.")
        for name, example in (("pq_search_zq", "4,8"), ("pq_search_zeta", "0.1,0.25"),
                              ("pq_search_noise", "0.01,0.03"), ("pq_search_lr_small", "0.1,0.3"),
                              ("pq_search_steps", "2000,4000")):
            values = _grid(getattr(self, name), name, example)
            if not values or any(v <= 0 for v in values):
                raise P.ConfigError(f"every value of {name} ({getattr(self, name)!r}) must be positive.")
        if any(v >= self.pq_lr_large for v in self.search_lr_small):
            raise P.ConfigError(f"every value of pq_search_lr_small ({self.pq_search_lr_small!r}) must be smaller "
                                f"than pq_lr_large ({self.pq_lr_large}).")
        if any(v != int(v) or v < 10 for v in _grid(self.pq_search_steps, "pq_search_steps")):
            raise P.ConfigError(f"every value of pq_search_steps ({self.pq_search_steps!r}) must be a whole number "
                                f"of steps, at least 10.")
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
    def search_zq(self) -> list[float]:
        return _grid(self.pq_search_zq)

    @property
    def search_zeta(self) -> list[float]:
        return _grid(self.pq_search_zeta)

    @property
    def search_noise(self) -> list[float]:
        return _grid(self.pq_search_noise)

    @property
    def search_lr_small(self) -> list[float]:
        return _grid(self.pq_search_lr_small)

    @property
    def search_steps(self) -> list[int]:
        return sorted({int(v) for v in _grid(self.pq_search_steps)})

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
    """One training set (padded to n_train rows, padding has weight 0) and a test set with n_test P-only and n_test
    both-component examples (Q-only test accuracy is exact, see train_batch). The Q coordinates are stored at unit
    scale, (alpha, alpha b [y = -1]); the Q component's lengths |zq| and |zeta| scale them in train_batch, so one
    draw of the data serves every Q scale of a search."""

    x: torch.Tensor
    y: torch.Tensor
    kind: torch.Tensor
    weight: torch.Tensor  # sums to 1 over the real examples
    x_test: torch.Tensor
    y_test: torch.Tensor
    kind_test: torch.Tensor
    zq_norm: float
    zeta: float

    def with_q(self, zq_norm: float, zeta: float) -> Data:
        """The same examples with another Q scale (the tensors are shared)."""
        return dataclasses.replace(self, zq_norm=zq_norm, zeta=zeta)

    def scaled(self) -> tuple[torch.Tensor, torch.Tensor]:
        """x and x_test at their Q scale (what the network sees)."""
        c = torch.ones(self.x.shape[-1])
        c[-2:] = torch.tensor([self.zq_norm, self.zeta])
        return self.x * c, self.x_test * c


def make_data(p: TheoryParams, seed: int, p0: float, q0: float, n: int | None = None) -> Data:
    """Training data of the distribution (p0, q0) with n real examples (default N), and its test set (P-only and
    both-component examples). The data depend on the seed only (not on p0's position in a sweep), so every
    algorithm sees the same examples."""
    gen = torch.Generator().manual_seed(10_000 + seed)
    w = w_star(p.pq_d, seed)
    n = p.pq_n_train if n is None else n
    args = (p.pq_d, p.pq_gamma0, 1.0, 1.0, w, gen)
    x, y, kind = sample(p.pq_n_train, p0, q0, *args)
    weight = (torch.arange(p.pq_n_train) < n).float() / n
    kt = torch.tensor([0, 2]).repeat_interleave(p.pq_n_test)
    xt, yt, kt = sample(2 * p.pq_n_test, 0.0, 0.0, *args, kinds=kt)
    return Data(x, y, kind, weight, xt, yt, kt, p.pq_zq_norm, p.pq_zeta)


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


def _correct(margin: torch.Tensor) -> torch.Tensor:
    """1 for a correct sign, 0 for a wrong one, 1/2 for an output of exactly 0 (a unit-less, dead network)."""
    return (margin > 0).float() + 0.5 * (margin == 0).float()


# The Q rays at unit scale in the (zq, zeta) plane: zq (y = +1), zq + zeta and zq - zeta (y = -1).
RAYS = torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, -1.0]])


def q_on_rays(w_q: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For first-layer weights on the Q plane at their scale, w_q (runs, m, 2): the network's output at the ends
    of the three rays (runs, 3) and the share of units active on at least one ray (runs,). A Q-only example is
    alpha times a ray end, and relu is positively homogeneous, so these give Q-only test accuracy exactly."""
    pre = w_q @ RAYS.to(w_q).T  # (runs, m, 3)
    return F.relu(pre).transpose(1, 2) @ u, (pre > 0).any(-1).float().mean(1)


def q_accuracy(ends: torch.Tensor) -> torch.Tensor:
    """Population Q-only accuracy from the outputs at the ray ends: half the mass on zq (y = +1), a quarter on
    each of zq +- zeta (y = -1)."""
    return 0.5 * _correct(ends[:, 0]) + 0.25 * _correct(-ends[:, 1]) + 0.25 * _correct(-ends[:, 2])


def train_batch(runs: list[tuple[Algo, Data]], p: TheoryParams, device: torch.device, seed: int,
                desc: str = "runs") -> list[dict[str, Any]]:
    """Train one network per (algorithm, data) pair, all at once, for at most pq_steps full-batch steps.

    Runs whose data share the same examples (whatever their Q scale) form a group whose forward and backward
    passes are one matrix product each. The paper's stopping rules: a run anneals (its learning rate drops to
    lr_small, the noises of `Algo` other than `noise` stop) once its train loss (without noise and L2) falls to
    eps1 + q * loss(0), q being its fraction of Q-only training examples, or at pq_anneal_max; it stops once
    annealed with train loss at most eps2 (pq_stop_loss), and leaves the batch at the next evaluation (its
    curves stay at their last values). Returns per run: final metrics (at the stop), the anneal and stop steps,
    the steps at which each kind of training example was first fit, the regime's measurements before annealing
    (the share of units active on Q, Q-only test accuracy, the second difference of the output along Q's rays),
    and curves every pq_steps // 100 steps."""
    m, steps = p.pq_width, p.pq_steps
    gen = torch.Generator(device=device).manual_seed(seed)
    group_of: dict[int, int] = {}
    for _, data in runs:
        group_of.setdefault(id(data.x), len(group_of))
    order = sorted(range(len(runs)), key=lambda i: group_of[id(runs[i][1].x)])  # runs sorted by group
    algos = [runs[i][0] for i in order]
    datas = [runs[i][1] for i in order]
    firsts = {group_of[id(d.x)]: d for d in reversed(datas)}
    xs = {g: d.x.to(device) for g, d in firsts.items()}
    dim = datas[0].x.shape[-1]

    def per_run(values: list) -> torch.Tensor:
        return torch.tensor([float(v) for v in values], device=device)

    # per-run state, the run axis first (per-example tensors: examples x runs, the run axis second)
    st: dict[str, torch.Tensor] = {
        "index": torch.tensor(order, device=device), "group": per_run([group_of[id(d.x)] for d in datas]).long(),
        "lr1": per_run([a.lr_large for a in algos]), "lr2": per_run([a.lr_small for a in algos]),
        "tau": per_run([a.noise for a in algos]), "wd": per_run([a.weight_decay for a in algos]),
        "act": per_run([a.act_noise for a in algos]), "post": per_run([a.post_noise for a in algos]),
        "it_noise": per_run([a.iterate_noise for a in algos]),
        "squared": torch.tensor([a.loss == "squared" for a in algos], device=device),
        "adam": torch.tensor([a.optimizer == "adam" for a in algos], device=device),
        "zero_loss": per_run([loss_at_zero(a.loss) for a in algos])}
    scale = torch.ones(len(order), dim, device=device)
    scale[:, -2] = per_run([d.zq_norm for d in datas])
    scale[:, -1] = per_run([d.zeta for d in datas])
    st["scale"] = scale
    cols = {"y": "y", "w": "weight", "kind": "kind"}
    examples = {key: torch.stack([getattr(d, attr).to(device).float() for d in datas], 1) for key, attr in cols.items()}
    tests: dict[str, torch.Tensor] = {}
    test_x: dict[str, dict[int, torch.Tensor]] = {}
    for kname, k in (("P", 0), ("PQ", 2)):
        test_x[kname] = {g: d.x_test[d.kind_test == k].to(device) for g, d in firsts.items()}
        tests[kname] = torch.stack([d.y_test[d.kind_test == k].to(device) for d in datas], 1)
    masks = [((examples["kind"] == k) & (examples["w"] > 0)).float() for k in range(3)]
    threshold = p.pq_anneal_loss + (masks[1] * examples["w"]).sum(0) * st["zero_loss"]
    # with (almost) only Q-only examples the paper's threshold is above the untrained loss: anneal_max decides
    st["threshold"] = torch.where(threshold < st["zero_loss"], threshold, torch.full_like(threshold, -math.inf))
    by_example = {**examples, **{f"mask{k}": mk for k, mk in enumerate(masks)}, **{f"test_{k}": v
                                                                                  for k, v in tests.items()}}
    r_n = len(order)
    u = torch.cat([torch.ones(m // 2), -torch.ones(m - m // 2)]).to(device) / math.sqrt(m)
    init_gen = torch.Generator().manual_seed(seed)
    st["weights"] = torch.randn(r_n, m, dim, generator=init_gen).to(device) * p.pq_init
    st["m1"], st["m2"] = torch.zeros_like(st["weights"]), torch.zeros_like(st["weights"])
    for key in ("annealed", "stopped", "by_loss"):
        st[key] = torch.zeros(r_n, dtype=torch.bool, device=device)
    st["anneal_step"], st["stop_step"] = torch.full((r_n,), -1, device=device), torch.full((r_n,), -1, device=device)
    st["fit_step"] = torch.full((r_n, 3), -1, device=device)
    st["active_min"] = torch.ones(r_n, device=device)
    for key in ("q_acc_max", "q_acc_sum", "active_sum", "pre_steps", "sd_max"):
        st[key] = torch.zeros(r_n, device=device)
    eval_every = max(1, steps // 100)
    eval_steps: list[int] = []
    curves: list[dict[str, list[float]]] = [{} for _ in runs]  # per original run index
    finals: list[dict[str, Any]] = [{} for _ in runs]

    def bounds() -> list[tuple[int, int, int]]:
        """(group, start, stop) of each group's runs in the current batch."""
        groups = st["group"].tolist()
        out, start = [], 0
        for i in range(1, len(groups) + 1):
            if i == len(groups) or groups[i] != groups[start]:
                out.append((groups[start], start, i))
                start = i
        return out

    def forward(wc: torch.Tensor, inputs: dict[int, torch.Tensor], spans: list[tuple[int, int, int]]) -> torch.Tensor:
        """Pre-activations (examples, runs, m) of each group's runs on its group's inputs."""
        return torch.cat([inputs[g] @ wc[a:b].reshape(-1, dim).T for g, a, b in spans], 1).view(
            -1, b_total(spans), m)

    def b_total(spans: list[tuple[int, int, int]]) -> int:
        return spans[-1][2]

    def record(step: int, wc: torch.Tensor, spans: list, clean_f: torch.Tensor, loss: torch.Tensor) -> None:
        rows = {"train_loss": loss}
        for kname in ("P", "PQ"):
            margin = (F.relu(forward(wc, test_x[kname], spans)) @ u) * by_example[f"test_{kname}"]
            rows[f"acc_{kname}"], rows[f"margin_{kname}"] = _correct(margin).mean(0), margin.mean(0)
        ends, active = q_on_rays(wc[:, :, -2:], u)
        rows["acc_Q"] = q_accuracy(ends)
        rows["margin_Q"] = 0.5 * (0.5 * ends[:, 0] - 0.25 * ends[:, 1] - 0.25 * ends[:, 2])  # E[alpha] = 1/2
        y, w = by_example["y"], by_example["w"]
        gw = torch.where(st["squared"], (clean_f - y).abs(), torch.sigmoid(-y * clean_f)) * w
        for k, kname in enumerate(KINDS):
            rows[f"grad_share_{kname}"] = (gw * by_example[f"mask{k}"]).sum(0) / gw.sum(0).clamp(min=1e-30)
        rows["active_units_Q"] = active
        rows["second_diff_Q"] = ends[:, 1] + ends[:, 2] - 2 * ends[:, 0]
        eval_steps.append(step)
        values = {key: val.tolist() for key, val in rows.items()}
        for j, i in enumerate(st["index"].tolist()):
            for key, val in values.items():
                curves[i].setdefault(key, []).append(val[j])

    def leave(done: torch.Tensor) -> None:
        """Keep the final state of the runs in `done`, and drop them from the batch."""
        for j in torch.nonzero(done).flatten().tolist():
            i = int(st["index"][j])
            pre = float(st["pre_steps"][j].clamp(min=1))
            finals[i] = {"anneal_step": int(st["anneal_step"][j]), "annealed_by_loss": bool(st["by_loss"][j]),
                         "stop_step": int(st["stop_step"][j]),
                         **{f"fit_step_{name}": int(st["fit_step"][j, k]) for k, name in enumerate(KINDS)},
                         "active_q_min": float(st["active_min"][j]), "active_q_mean": float(st["active_sum"][j]) / pre,
                         "q_acc_max": float(st["q_acc_max"][j]), "q_acc_mean": float(st["q_acc_sum"][j]) / pre,
                         "second_diff_max": float(st["sd_max"][j])}
        keep = torch.nonzero(~done).flatten()
        for key in st:
            st[key] = st[key][keep]
        for key in by_example:
            by_example[key] = by_example[key][:, keep]

    step = 0
    for step in tqdm(range(steps + 1), desc=desc, leave=False, disable=None):
        spans = bounds()
        y, w = by_example["y"], by_example["w"]
        annealed, squared = st["annealed"], st["squared"]
        wc = st["weights"] * st["scale"][:, None, :]
        pre = forward(wc, xs, spans)  # (N, runs, m)
        noisy = pre
        act_rows = torch.nonzero(st["act"] > 0).flatten()
        if len(act_rows):
            sigma = torch.where(annealed, 0.0, st["act"])[act_rows]
            xi = torch.randn((pre.shape[0], len(act_rows), m), generator=gen, device=device) * sigma[:, None]
            noisy = pre.index_add(1, act_rows, xi)
        h = F.relu(noisy)
        f = h @ u  # (N, runs)
        post_any = bool((st["post"] > 0).any())
        if post_any:  # u^T (relu + Xi) = u^T relu + N(0, sigma^2 |u|^2) per example; |u| = 1
            f = f + torch.randn(f.shape, generator=gen, device=device) * torch.where(annealed, 0.0, st["post"])
        clean_f = F.relu(pre) @ u if (len(act_rows) or post_any) else f
        clean_loss = (torch.where(squared, 0.5 * (clean_f - y) ** 2, F.softplus(-y * clean_f)) * w).sum(0)
        correct = _correct(clean_f * y)
        for k in range(3):
            mk = by_example[f"mask{k}"]
            acc = (correct * mk).sum(0) / mk.sum(0).clamp(min=1)
            fit = (st["fit_step"][:, k] < 0) & (mk.sum(0) > 0) & (acc >= FIT_ACCURACY)
            st["fit_step"][:, k] = torch.where(fit, step, st["fit_step"][:, k])
        ends, active = q_on_rays(wc[:, :, -2:], u)
        before = ~annealed
        q_acc = q_accuracy(ends)
        st["active_min"] = torch.where(before, torch.minimum(st["active_min"], active), st["active_min"])
        st["q_acc_max"] = torch.where(before, torch.maximum(st["q_acc_max"], q_acc), st["q_acc_max"])
        st["q_acc_sum"] = st["q_acc_sum"] + before * q_acc
        st["active_sum"] = st["active_sum"] + before * active
        st["pre_steps"] = st["pre_steps"] + before.float()
        second = (ends[:, 1] + ends[:, 2] - 2 * ends[:, 0]).abs()
        st["sd_max"] = torch.where(before, torch.maximum(st["sd_max"], second), st["sd_max"])
        fired = before & (clean_loss <= st["threshold"])
        newly = before & (fired | (step >= p.pq_anneal_max))
        st["by_loss"] = st["by_loss"] | fired
        st["anneal_step"] = torch.where(newly, step, st["anneal_step"])
        st["annealed"] = annealed = annealed | newly
        halt = ~st["stopped"] & annealed & (clean_loss <= p.pq_stop_loss)
        st["stop_step"] = torch.where(halt, step, st["stop_step"])
        st["stopped"] = st["stopped"] | halt
        last = step == steps or bool(st["stopped"].all())
        evaluated = step % eval_every == 0 or last
        if evaluated:
            record(step, wc, spans, clean_f, clean_loss)
        if last:
            break
        weights = st["weights"]
        dldf = torch.where(squared, f - y, -y * torch.sigmoid(-y * f)) * w  # (N, runs)
        g_pre = dldf[:, :, None] * u * (h > 0)
        grad = torch.cat([(g_pre[:, a:b].reshape(xs[g].shape[0], -1).T @ xs[g]).view(b - a, m, dim)
                          for g, a, b in spans]) * st["scale"][:, None, :]
        lr = torch.where(annealed, st["lr2"], st["lr1"])[:, None, None]
        grad = grad + st["wd"][:, None, None] * weights
        grad = grad + st["tau"][:, None, None] * torch.randn(weights.shape, generator=gen, device=device)
        if bool(st["adam"].any()):
            st["m1"].mul_(0.9).add_(0.1 * grad)
            st["m2"].mul_(0.999).add_(0.001 * grad * grad)
            k = step + 1
            adam_step = st["m1"] / (1 - 0.9 ** k) / ((st["m2"] / (1 - 0.999 ** k)).sqrt() + 1e-8)
            grad = torch.where(st["adam"][:, None, None], adam_step, grad)
        new = weights - lr * grad
        if bool((st["it_noise"] > 0).any()):
            sigma = torch.where(annealed, 0.0, st["it_noise"])[:, None, None]
            new = new + sigma * torch.randn(weights.shape, generator=gen, device=device)
        st["weights"] = torch.where(st["stopped"][:, None, None], weights, new)
        if evaluated and bool(st["stopped"].any()):  # stopped runs were recorded frozen: they leave the batch
            leave(st["stopped"])
    leave(torch.ones(len(st["index"]), dtype=torch.bool, device=device))
    out = []
    for i, (algo, _) in enumerate(runs):
        c = {key: (vals + vals[-1:] * (len(eval_steps) - len(vals))) for key, vals in curves[i].items()}
        out.append({"algorithm": algo.name,
                    "p_error": 1 - c["acc_P"][-1], "q_error": 1 - c["acc_Q"][-1], "pq_error": 1 - c["acc_PQ"][-1],
                    "margin_P": c["margin_P"][-1], "margin_Q": c["margin_Q"][-1], "train_loss": c["train_loss"][-1],
                    **finals[i],
                    "curves": {"step": eval_steps, **{key: [round(v, 5) for v in vals] for key, vals in c.items()}}})
    return out
