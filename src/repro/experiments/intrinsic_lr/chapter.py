"""The chapter's result: one typed view per section, None where the section was not computed, and the headline
numbers (a sweep's table shows them)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from repro.store import Result

from .drop import DropResult
from .momentum_batch import MomentumBatchResult
from .params import DECAY_SHAPES, Params
from .schedules import SchedulesResult
from .sweep import SweepResult
from .toy import ToyResult


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

