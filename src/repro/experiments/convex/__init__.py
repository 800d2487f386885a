"""A convex counterexample: early-stopped gradient descent on under-sampled 2-D linear regression.

Source: the course report, section 4. With few samples the train loss's level sets are not the
population loss's, so two points with the same train loss can have different population losses, and the
learning-rate schedule decides which one early-stopped gradient descent reaches.

The foil: Nakkiran (2020, arXiv 2005.07360), a 2-D linear regression whose train covariance is unlike the test
one, where a large step followed by gradient flow provably generalises better than gradient flow.

Modules: `analysis` (the exact analysis), `schedules` (the report's experiment and where the large rate helps),
`nakkiran` (the foil), `result` (the typed result), `verdicts`, and `figures` (the page's figures and tables,
imported by the chapter, not here: compute never imports presentation).
"""

from __future__ import annotations

import dataclasses

from repro import params as P
from repro.experiments.convex import analysis, nakkiran, schedules, verdicts
from repro.experiments.convex.result import ConvexResult
from repro.store import Store
from repro.units import Unit, make_unit, run_unit

__all__ = ["VERSION", "ConvexResult", "Params", "run", "units", "verdicts"]

VERSION = 3  # 3: the crossover against the curvature ratio (nakkiran.crossover)
SECTION = "convex"  # the chapter is one unit of CPU work, so one section


@dataclasses.dataclass(frozen=True)
class Params(P.Params):
    seed: int = P.param(0, "seed of the first dataset; dataset i is drawn from seed + i", ge=0)
    n_samples: int = P.param(10, "training examples per dataset (the report: 10)", ge=2)
    n_datasets: int = P.param(4000, "independent datasets (beta*, X) per setting", ge=1)
    noise_std: float = P.param(0.0, "label noise: y = <beta*, x> + noise_std * N(0, 1)", ge=0)
    lr_large: float = P.param(0.1, "initial large learning rate (the report: 0.1)", gt=0)
    lr_small: float = P.param(0.01, "small learning rate, also used after annealing (the report: 0.01)",
                              gt=0)
    anneal_loss: float = P.param(0.3, "train loss at which the large rate is annealed to the small one", gt=0)
    stop_loss: float = P.param(0.1, "early-stopping train loss (the report: 0.1)", gt=0)
    max_steps: int = P.param(20_000, "give up on a run that has not reached stop_loss by then", ge=1)
    sweep_size: int = P.param(7, "grid points per axis of the win-rate sweeps, and curvature ratios of the crossover's",
                              ge=2, le=12)
    nakkiran_curvature_ratio: float = P.param(
        2.0, "Nakkiran's setting: train covariance S = diag(ratio, 1), test covariance I", gt=1)
    nakkiran_eta_smax: float = P.param(
        1.0, "Nakkiran's large step as eta * s_max(S); at 1 the sharp direction is never contracted", gt=0, le=1)
    nakkiran_large_steps: int = P.param(
        50, "Nakkiran's setting: large-step gradient descent steps before the switch to gradient flow", ge=1)
    nakkiran_stop_loss: float = P.param(1e-3, "Nakkiran's setting: the train loss both runs stop at", gt=0)

    PRESETS = {
        # 64 datasets and a 3-point sweep: seconds, for the tests
        "smoke": {"n_datasets": 64, "sweep_size": 3, "max_steps": 20_000},
        # 20,000 datasets per setting and a 9-point sweep: minutes on a CPU (no GPU needed)
        "paper": {"n_datasets": 20_000, "sweep_size": 9},
    }

    def check(self) -> None:
        if self.lr_small >= self.lr_large:
            raise P.ConfigError(f"lr_small ({self.lr_small}) must be smaller than lr_large ({self.lr_large}).")
        if self.stop_loss >= self.anneal_loss:
            raise P.ConfigError(f"stop_loss ({self.stop_loss}) must be below anneal_loss ({self.anneal_loss}), "
                                f"or the large rate would never be annealed.")


def units(p: Params) -> list[Unit]:
    """One unit: the whole chapter is CPU work of seconds to minutes."""
    def compute() -> dict:
        head = schedules.headline(p)
        foil = nakkiran.nakkiran(p)
        report_side = nakkiran.report_side(p, head["rmse_small"], head["rmse_anneal"])
        return {"metrics": head["summary"],
                "data": {"exact": analysis.discrete_example(3), "rmse_small": head["rmse_small"],
                         "rmse_anneal": head["rmse_anneal"], **schedules.sweeps(p), "paths": schedules.paths(p),
                         "nakkiran": foil, "report_foil": report_side, "crossover": nakkiran.crossover(p)}}

    return [make_unit("convex", "convex", "convex", VERSION, p.to_dict(), compute, "cpu", section=SECTION)]


def run(p: Params, store: Store | None = None, force: bool | None = None,
        sections: set[str] | None = None) -> ConvexResult:
    """Everything the chapter shows, computed once per resolved config and stored; `sections` (None: all)
    limits it to the named sections, the others are None in the result."""
    if sections is not None and SECTION not in sections:
        return ConvexResult()
    [unit] = units(p)
    return ConvexResult.from_stored(run_unit(store or Store(), unit, force))
