"""Typed views over the chapter's stored units: what the verdicts and figures read, by name. Each view wraps the
unit's `repro.store.Result` (its JSON is unchanged) and builds small dataclasses from it."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from repro.store import Result

from .net import DECAY_SHAPES
from .params import Params


@dataclasses.dataclass(frozen=True)
class Fit:
    """A least-squares line in log-log: log y = slope log x + intercept (NaN where fewer than 2 points)."""

    slope: float
    intercept: float
    slope_se: float
    points: int

    @classmethod
    def of(cls, d: dict[str, Any]) -> Fit:
        return cls(float(d["slope"]), float(d["intercept"]), float(d["slope_se"]), int(d["points"]))


@dataclasses.dataclass(frozen=True)
class LayerEq:
    """One scale-invariant layer measured over a window, against the predictions: angular update against
    sqrt(2 lambda_e / (1 + mu)), |w|^2 against the norm recursion's fixed point with the G^2 measured there."""

    group: str
    angular: float
    pred_angular: float
    sq_norm: float
    pred_sq_norm: float
    effective_lr: float
    grad_sq: float

    @property
    def angular_error(self) -> float:
        return abs(self.angular / self.pred_angular - 1)

    @property
    def norm_error(self) -> float:
        return abs(self.sq_norm / self.pred_sq_norm - 1)


@dataclasses.dataclass(frozen=True)
class Window:
    """The layers' equilibrium over steps (start, end] at (lr, weight_decay)."""

    start: int
    end: int
    lr: float
    weight_decay: float
    layers: list[LayerEq]

    @classmethod
    def of(cls, d: dict[str, Any]) -> Window:
        return cls(int(d["start"]), int(d["end"]), float(d["lr"]), float(d["weight_decay"]),
                   [LayerEq(**g) for g in d["groups"]])

    def layer(self, group: str) -> LayerEq:
        return next(g for g in self.layers if g.group == group)

    @property
    def max_angular_error(self) -> float:
        return max(g.angular_error for g in self.layers)

    @property
    def max_norm_error(self) -> float:
        return max(g.norm_error for g in self.layers)


@dataclasses.dataclass(frozen=True)
class Acc:
    """Test accuracy over a window of evaluations: best, last, mean, and the step of the best."""

    best: float
    final: float
    mean: float
    best_step: int

    @classmethod
    def of(cls, d: dict[str, Any] | None) -> Acc | None:
        return None if d is None else cls(float(d["best"]), float(d["final"]), float(d["mean"]), int(d["best_step"]))


@dataclasses.dataclass(frozen=True)
class Trace:
    """What NormTracker recorded, per window of steps: the step at its end, lr, weight decay, and per layer |w|^2,
    the RMS angular update, the mean G^2 and the effective LR lr / |w|^2 (whichever were stored)."""

    step: np.ndarray
    lr: np.ndarray | None
    weight_decay: np.ndarray | None
    sq_norm: dict[str, np.ndarray]
    angular: dict[str, np.ndarray]
    grad_sq: dict[str, np.ndarray]
    effective_lr: dict[str, np.ndarray]

    @classmethod
    def of(cls, d: dict[str, Any]) -> Trace:
        arr = lambda k: np.asarray(d[k], float) if k in d else None  # noqa: E731
        per = lambda k: {g: np.asarray(v, float) for g, v in d.get(k, {}).items()}  # noqa: E731
        return cls(np.asarray(d["step"]), arr("lr"), arr("weight_decay"), per("sq_norm"), per("angular"),
                   per("grad_sq"), per("effective_lr"))

    @property
    def groups(self) -> list[str]:
        return list(next(x for x in (self.sq_norm, self.angular, self.effective_lr) if x))


@dataclasses.dataclass(frozen=True)
class History:
    """Evaluations of a run: step, test accuracy and train accuracy (on a fixed training subset)."""

    step: np.ndarray
    test_acc: np.ndarray
    train_acc: np.ndarray

    @classmethod
    def of(cls, d: dict[str, Any]) -> History:
        return cls(np.asarray(d["step"]), np.asarray(d["test_acc"], float), np.asarray(d["train_acc"], float))


@dataclasses.dataclass(frozen=True)
class NetRun:
    """One training run: its evaluations and its tracked layers."""

    history: History
    trace: Trace

    @classmethod
    def of(cls, d: dict[str, Any]) -> NetRun:
        return cls(History.of(d["history"]), Trace.of(d["norms"]))


# ================================================================================================== the toy


@dataclasses.dataclass(frozen=True)
class ToyResult:
    """The toy model: the lambda_e sweep, history independence at one lambda_e, the LR drop and momentum."""

    result: Result

    @property
    def data(self) -> dict[str, Any]:
        return self.result.data

    @property
    def sweep(self) -> list[dict[str, float]]:
        """Per lambda_e: measured and predicted equilibrium angular update and |w|^2, mean G^2, steps to settle."""
        return self.data["sweep"]

    @property
    def settle_fit(self) -> Fit:
        return Fit.of(self.data["settle_fit"])

    @property
    def history(self) -> dict[str, Any]:
        """Runs at one lambda_e from different initial norms and lr / wd splits (curves thinned for figures)."""
        return self.data["history"]

    @property
    def drop(self) -> dict[str, Any]:
        """The LR drop: windowed angular update, the exact recursion beside it, and the ratios."""
        return self.data["drop"]

    @property
    def momentum(self) -> list[dict[str, float]]:
        return self.data["momentum"]

    @property
    def max_angular_error(self) -> float:
        return max(abs(r["angular_rms"] / r["pred_angular"] - 1) for r in self.sweep)

    @property
    def max_norm_error(self) -> float:
        return max(abs(r["sq_norm"] / r["pred_sq_norm"] - 1) for r in self.sweep)

    @property
    def intrinsic_lr_range(self) -> tuple[float, float]:
        lams = [r["intrinsic_lr"] for r in self.sweep]
        return min(lams), max(lams)


# ============================================================================================== the LR drop


@dataclasses.dataclass(frozen=True)
class LayerDrop:
    """One layer's angular update just before the drop, just after it and at the end of the run."""

    group: str
    before: float
    just_after: float
    final: float
    ratio_immediate: float
    ratio_final: float
    settle_steps_after: float


@dataclasses.dataclass(frozen=True)
class FirstLR:
    """Reviewer 1, question 4: one first learning rate, dropped at the same step."""

    lr_first: float
    intrinsic_lr: float
    best_after: float
    best_after_step: int
    before: float


@dataclasses.dataclass(frozen=True)
class DropResult:
    """The LR drop at equilibrium, the drop before equilibrium and the first-LR comparison."""

    result: Result

    @property
    def data(self) -> dict[str, Any]:
        return self.result.data

    @property
    def main(self) -> NetRun:
        return NetRun.of(self.data["main"])

    @property
    def early(self) -> NetRun:
        return NetRun.of(self.data["early"])

    @property
    def drop_step(self) -> int:
        return int(self.data["drop_step"])

    @property
    def early_drop_step(self) -> int:
        return int(self.data["early_drop_step"])

    @property
    def just_after_steps(self) -> int:
        return int(self.data["just_after_steps"])

    @property
    def before(self) -> Window:
        return Window.of(self.data["before"])

    @property
    def after(self) -> Window:
        return Window.of(self.data["after"])

    @property
    def layers(self) -> list[LayerDrop]:
        return [LayerDrop(**r) for r in self.data["ratios"]]

    @property
    def ratio_immediate(self) -> float:
        """Median over layers of the angular update's fall at the drop."""
        return float(np.median([r.ratio_immediate for r in self.layers]))

    @property
    def drift_before(self) -> dict[str, float]:
        return self.data["drift_before"]

    @property
    def drift_after(self) -> dict[str, float]:
        return self.data["drift_after"]

    def acc(self, which: str) -> Acc:
        """Test accuracy: "main_before", "main_after", "main_cmp" (the comparison window) or "early_after"."""
        return Acc.of(self.data[f"acc_{which}"])

    @property
    def compare(self) -> list[FirstLR]:
        return [FirstLR(**{k: v for k, v in c.items() if k != "history"}) for c in self.data["compare"]]

    @property
    def final_train_acc(self) -> float:
        return float(self.main.history.train_acc[-1])


# ========================================================================================== the schedules


@dataclasses.dataclass(frozen=True)
class ScheduleRun:
    """One history of Figure 5, measured at the end of the common phase and after the final phase."""

    name: str
    run: NetRun
    phase2: Window
    acc_phase2: Acc
    train_acc_phase2: float
    acc_final: Acc | None
    drift_phase2: dict[str, float]


@dataclasses.dataclass(frozen=True)
class DecayRun:
    """One decay schedule at one (lr, weight decay) split of the same peak lambda_e."""

    shape: str
    split: float
    lr: float
    weight_decay: float
    test_acc: float
    train_acc: float
    best_test_acc: float
    effective_lr_end: dict[str, float]
    run: NetRun


@dataclasses.dataclass(frozen=True)
class SchedulesResult:
    """Figure 5's histories and the decay-schedule pairs."""

    result: Result

    @property
    def data(self) -> dict[str, Any]:
        return self.result.data

    @property
    def runs(self) -> list[ScheduleRun]:
        return [ScheduleRun(r["name"], NetRun.of(r["run"]), Window.of(r["phase2"]), Acc.of(r["acc_phase2"]),
                            float(r["train_acc_phase2"]), Acc.of(r["acc_final"]), r["drift_phase2"])
                for r in self.data["runs"]]

    @property
    def phase_ends(self) -> list[int]:
        return list(self.data["phase_ends"])

    @property
    def test_acc_spread(self) -> float:
        """Largest minus smallest mean test accuracy over the second half of the common phase."""
        return float(np.ptp([r.acc_phase2.mean for r in self.runs]))

    @property
    def effective_lr_spread(self) -> float:
        """The largest factor between two histories' effective LRs at the end of the common phase (worst layer)."""
        runs = self.runs
        return max(math.exp(float(np.ptp(np.log([r.phase2.layers[i].effective_lr for r in runs]))))
                   for i in range(len(runs[0].phase2.layers)))

    @property
    def decay(self) -> list[DecayRun]:
        return [DecayRun(r["shape"], float(r["split"]), float(r["lr"]), float(r["weight_decay"]),
                         float(r["test_acc"]), float(r["train_acc"]), float(r["best_test_acc"]),
                         r["effective_lr_end"],
                         NetRun(History(np.asarray(r["history"]["step"]), np.asarray(r["history"]["test_acc"]),
                                        np.asarray(r["history"]["train_acc"])), Trace.of(r["norms"])))
                for r in self.data["decay"]["runs"]]

    def decay_pair(self, shape: str) -> tuple[DecayRun, DecayRun]:
        """The reference split and the lr x k, weight decay / k split of one schedule."""
        a, b = [r for r in self.decay if r.shape == shape]
        return a, b

    def decay_gap(self, shape: str) -> tuple[float, float]:
        """(final test accuracy of the split run minus the reference's, the largest factor between their final
        effective LRs over layers)."""
        a, b = self.decay_pair(shape)
        return b.test_acc - a.test_acc, max(math.exp(abs(math.log(b.effective_lr_end[g] / a.effective_lr_end[g])))
                                            for g in a.effective_lr_end)


# ============================================================================================== the sweep


@dataclasses.dataclass(frozen=True)
class SweepRow:
    """One lambda_e of the network sweep, run at lr = weight decay = sqrt(lambda_e)."""

    intrinsic_lr: float
    lr: float
    weight_decay: float
    steps: int
    settle_steps: dict[str, float]
    settle_steps_max: float
    test_acc: float
    equilibrium: Window
    trace: Trace


@dataclasses.dataclass(frozen=True)
class SweepResult:
    result: Result

    @property
    def data(self) -> dict[str, Any]:
        return self.result.data

    @property
    def rows(self) -> list[SweepRow]:
        return [SweepRow(float(r["intrinsic_lr"]), float(r["lr"]), float(r["weight_decay"]), int(r["steps"]),
                         {g: float(v) for g, v in r["settle_steps"].items()}, float(r["settle_steps_max"]),
                         float(r["test_acc"]), Window.of(r["equilibrium"]), Trace.of(r["norms"]))
                for r in self.data["rows"]]

    @property
    def fit(self) -> Fit:
        return Fit.of(self.data["fit"])

    @property
    def layer_fits(self) -> dict[str, Fit]:
        return {g: Fit.of(f) for g, f in self.data["layer_fits"].items()}

    @property
    def settled_share(self) -> float:
        return float(np.mean([np.isfinite(v) for r in self.rows for v in r.settle_steps.values()]))


# ============================================================================== momentum, batch, LayerNorm


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


# ============================================================================================ the chapter


@dataclasses.dataclass(frozen=True)
class IntrinsicLRResult:
    """Everything the chapter shows: one typed view per section, None where the section was not computed."""

    params: Params
    toy: ToyResult | None = None
    drop: DropResult | None = None
    schedules: SchedulesResult | None = None
    sweep: SweepResult | None = None
    momentum_batch: MomentumBatchResult | None = None

    @property
    def parts(self) -> dict[str, Result]:
        """The stored result of every computed section (for provenance)."""
        return {f.name: getattr(self, f.name).result for f in dataclasses.fields(self)
                if f.name != "params" and getattr(self, f.name) is not None}

    @property
    def metrics(self) -> dict[str, float]:
        """The headline numbers of the computed sections (a sweep's table shows them)."""
        out: dict[str, float] = {}
        if self.toy is not None:
            t = self.toy
            out |= {"toy_max_norm_error": t.max_norm_error, "toy_max_angular_error": t.max_angular_error,
                    "toy_settle_slope": t.settle_fit.slope, "toy_drop_ratio_immediate": t.drop["ratio_immediate"],
                    "toy_drop_ratio_final": t.drop["ratio_final"]}
        if self.drop is not None:
            d = self.drop
            finals = [r.ratio_final for r in d.layers]
            out |= {"net_max_angular_error": d.before.max_angular_error, "net_max_norm_error": d.before.max_norm_error,
                    "net_drop_ratio_immediate": d.ratio_immediate, "net_drop_ratio_final": float(np.median(finals)),
                    "net_drop_ratio_final_min": min(finals), "net_drop_ratio_final_max": max(finals)}
        if self.sweep is not None:
            out["net_settle_slope"] = self.sweep.fit.slope
        if self.schedules is not None:
            s = self.schedules
            out |= {"schedules_test_acc_spread": s.test_acc_spread,
                    "schedules_effective_lr_spread": math.log(s.effective_lr_spread)}
            for shape in DECAY_SHAPES:
                gap, ratio = s.decay_gap(shape)
                out |= {f"decay_{shape}_test_acc": s.decay_pair(shape)[0].test_acc,
                        f"decay_{shape}_split_acc_gap": gap, f"decay_{shape}_split_effective_lr_ratio": ratio}
        if self.momentum_batch is not None:
            m = self.momentum_batch
            for norm in ("batch", "layer"):
                ref = m.reference(norm)
                out |= {f"{norm}norm_angular_error": m.angular_error(norm),
                        f"{norm}norm_split_effective_lr_ratio": m.split_effective_lr_ratio(norm),
                        f"{norm}norm_test_acc": ref.acc.mean,
                        f"{norm}norm_split_acc_gap": m.split(norm).acc.mean - ref.acc.mean}
        return out
