"""Momentum, batch size, BatchNorm's eps and LayerNorm in place of BatchNorm, at fixed steps (section 5 of the
page)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from repro.store import Result

from .measure import acc_at, drift, summary
from .net import NetSetup, reference_seeds, train_run
from .params import Params
from .result import Acc, Spread, Trace, Window, spreads


def net_momentum_batch(p: Params, s: NetSetup) -> dict:
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
        summ = summary(r, steps // 2, steps, lr_i, wd_i)
        runs.append({"name": name, "lr": lr_i, "weight_decay": wd_i, "momentum": r["momentum"],
                     "batch_size": r["batch_size"], "norm": kw.get("norm", "batch"), "equilibrium": summ,
                     "acc": acc_at(r, steps // 2, steps), "train_acc": float(r["history"]["train_acc"][-1]),
                     # momentum mu at lr (1 - mu) moves like plain SGD at lr: time unit (1 - mu) / (lr wd)
                     "drift": drift(r, steps, (1 - r["momentum"]) / (lr_i * wd_i)),
                     "norms": {"step": r["norms"]["step"], "angular": r["norms"]["angular"],
                               "effective_lr": r["norms"]["effective_lr"], "radial": r["norms"]["radial"]}})
    # the seed spread: plain SGD at more seeds
    seed_runs = []
    for sd in reference_seeds(p):
        r = train_run(p.replace(seed=sd), s, [(steps, lr, wd)], label=f"plain SGD, seed {sd}")
        seed_runs.append({"seed": sd, "equilibrium": summary(r, steps // 2, steps, lr, wd),
                          "acc": acc_at(r, steps // 2, steps)})
    return {"runs": runs, "steps": steps, "seed_runs": seed_runs}


# ============================================================================================ typed view


@dataclasses.dataclass(frozen=True)
class ShortRun:
    """One run of the momentum / batch-size / normalization comparison, all of the same number of steps."""

    name: str
    lr: float
    weight_decay: float
    momentum: float
    batch_size: int
    norm: str
    equilibrium: Window
    acc: Acc
    train_acc: float
    drift: dict[str, float]
    trace: Trace

    @property
    def plain(self) -> bool:
        """Plain SGD at the reference batch size and BatchNorm eps (the base of each comparison)."""
        return self.momentum == 0 and "eps" not in self.name


@dataclasses.dataclass(frozen=True)
class MomentumBatchResult:
    result: Result

    @property
    def data(self) -> dict[str, Any]:
        return self.result.data

    @property
    def steps(self) -> int:
        return int(self.data["steps"])

    @property
    def runs(self) -> list[ShortRun]:
        return [ShortRun(r["name"], float(r["lr"]), float(r["weight_decay"]), float(r["momentum"]),
                         int(r["batch_size"]), r["norm"], Window.of(r["equilibrium"]), Acc.of(r["acc"]),
                         float(r["train_acc"]), r["drift"], Trace.of(r["norms"])) for r in self.data["runs"]]

    @property
    def seeds(self) -> int:
        return 1 + len(self.data["seed_runs"])

    def _plain_windows(self) -> list[dict[str, Any]]:
        return [self.data["runs"][0]["equilibrium"], *(r["equilibrium"] for r in self.data["seed_runs"])]

    @property
    def log_angular_spread(self) -> dict[str, Spread]:
        """Per layer, plain SGD's log equilibrium angular update over seeds."""
        return spreads(self._plain_windows(), "angular")

    @property
    def log_elr_spread(self) -> dict[str, Spread]:
        """Per layer, plain SGD's log equilibrium effective LR over seeds."""
        return spreads(self._plain_windows(), "effective_lr")

    def reference(self, norm: str) -> ShortRun:
        """Plain SGD at (lr, weight decay) with BatchNorm ("batch") or LayerNorm ("layer")."""
        return next(r for r in self.runs if r.norm == norm and r.plain and r.momentum == 0)

    def split(self, norm: str) -> ShortRun:
        """The same lambda_e at lr x split_factor, weight decay / split_factor."""
        ref = self.reference(norm)
        return next(r for r in self.runs if r.norm == norm and r.momentum == 0 and r.lr > ref.lr)

    def split_effective_lr_ratio(self, norm: str) -> float:
        """The largest factor, over layers, between the two splits' equilibrium effective LRs."""
        a, b = self.reference(norm).equilibrium.layers, self.split(norm).equilibrium.layers
        return max(math.exp(abs(math.log(x.effective_lr / y.effective_lr))) for x, y in zip(a, b, strict=True))

    def angular_error(self, norm: str) -> float:
        """The worst layer's angular update against sqrt(2 lambda_e), over the reference and its split."""
        return max(self.reference(norm).equilibrium.max_angular_error, self.split(norm).equilibrium.max_angular_error)

