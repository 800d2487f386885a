"""Which single quantity predicts generalization across learning rate, batch size and weight decay?

One task, one grid over (lr, batch_size, weight_decay, epochs), every point a plain-SGD run of
`noise_scale.point` (run through `repro.sweep` on a local process pool, each point stored on its own), then for
each candidate quantity, on the runs that learned:
- the SGD noise scale lr / B (Smith & Le 2018; Goyal et al. 2017);
- the intrinsic learning rate lr * weight_decay (Li, Lyu, Arora 2020), at equilibrium;
- lr * lambda0 against the edge 2 (Lewkowycz et al. 2020), judged as the window it predicts; lambda0 here is the
  top eigenvalue of the minibatch cross-entropy Hessian at initialisation, not the paper's NTK of the squared loss.

Modules: `point` (one run of the grid), `analysis` (the statistics), `result` (the typed result), `verdicts`,
and `figures` (imported by the chapter, not here: compute never imports presentation).
"""

from __future__ import annotations

import dataclasses
import itertools
import sys

from repro import params as P
from repro import sweep as S
from repro.device import get_device
from repro.experiments.noise_scale import point, verdicts
from repro.experiments.noise_scale.analysis import analyse
from repro.experiments.noise_scale.result import NoiseScaleResult
from repro.store import Store
from repro.units import Unit, Work, make_unit, run_unit

__all__ = ["POINT", "VERSION", "NoiseScaleResult", "Params", "run", "units", "verdicts"]

VERSION = 3  # 3: the analysis ranks the runs that learned, judges eta * lambda0 as a window, calls differences by seed
POINT = "noise_scale.point"  # the sweep target of one grid point (its results are stored as noise_scale_point)
SECTION = "grid"  # every run of the grid: the analysis needs all of them


@dataclasses.dataclass(frozen=True)
class Params(P.Params):
    seed: int = P.param(0, "seed of data subset, initialisation and batch order (first of n_seeds)", ge=0)
    n_seeds: int = P.param(2, "runs per setting, with seeds seed, seed + 1, ...", ge=1)
    dataset: str = P.param("mnist", "training data (paper preset: cifar10)", choices=("mnist", "cifar10"))
    model: str = P.param("bn_mlp", "network: BN MLP, BN convnet, or PreResNet-32",
                         choices=("bn_mlp", "bn_convnet", "preresnet32"))
    width: int = P.param(128, "hidden units (bn_mlp) or first-layer channels (bn_convnet)", ge=4)
    n_train: int = P.param(8192, "training examples (a fixed random subset)", ge=16)
    n_test: int = P.param(2000, "held-out test examples", ge=100)
    augment: bool = P.param(False, "random crop and flip (CIFAR-10 only)")
    lrs: str = P.param("0.00625,0.025,0.1,0.4,1.6", "learning rates of the grid (comma-separated)", items=float, gt=0)
    batch_sizes: str = P.param("32,128,512", "batch sizes of the grid (comma-separated)", items=int, ge=1)
    weight_decays: str = P.param("0,0.001,0.01", "weight decays of the grid (comma-separated)", items=float, ge=0)
    epochs: str = P.param("2,6", "training lengths of the grid, in epochs (comma-separated)", items=int, ge=1)
    lambda0_batches: int = P.param(2, "minibatches lambda0 is averaged over", ge=1)
    lanczos_iters: int = P.param(15, "Lanczos iterations per top eigenvalue", ge=2)

    PRESETS = {
        # 8 runs of a small MLP on 1,024 images, one seed: seconds, for the tests
        "smoke": {"n_seeds": 1, "n_train": 1024, "n_test": 500, "width": 32, "lrs": "0.1,1.6", "batch_sizes": "32,128",
                  "weight_decays": "0,0.01", "epochs": "1", "lanczos_iters": 8, "lambda0_batches": 1},
        # The paper's network and data (PreResNet-32 on full CIFAR-10, crop and flip), re-scoped to about 2.5
        # minutes of an H200 (72 runs, 5.7e7 image passes): two seeds, which the seed-spread comparison needs;
        # four learning rates spaced by the batch sizes' factor 4, so that equal noise scales recur; one length
        # of 15 epochs, at which 15 of the 24 settings with weight decay pass 1 / (lr * wd) steps.
        "paper": {"dataset": "cifar10", "model": "preresnet32", "n_train": 50_000, "n_test": 10_000,
                  "augment": True, "lrs": "0.025,0.1,0.4,1.6", "weight_decays": "0,0.0005,0.005", "epochs": "15",
                  "lanczos_iters": 20},
    }

    def grid(self) -> dict[str, list]:
        return {"lr": self.listed("lrs"), "batch_size": self.listed("batch_sizes"),
                "weight_decay": self.listed("weight_decays"), "epochs": self.listed("epochs")}

    def points(self) -> list[S.Point]:
        """Every grid point as validated `noise_scale.point` parameters."""
        base = {k: getattr(self, k) for k in ("dataset", "model", "width", "n_train", "n_test", "augment",
                                              "lambda0_batches", "lanczos_iters")}
        grid = {**self.grid(), "seed": [self.seed + i for i in range(self.n_seeds)]}
        out = []
        for i, combo in enumerate(itertools.product(*grid.values())):
            values = dict(zip(grid, combo, strict=True))
            try:
                p = point.Params(**base, **values)
            except P.ConfigError as err:
                label = ", ".join(f"{k}={v:g}" for k, v in values.items())
                raise P.ConfigError(f"Grid point {label}: {err}") from None
            out.append(S.Point(i, {k: str(v) for k, v in values.items()}, p))
        return out

    def check(self) -> None:
        if self.n_seeds > 16:
            raise P.ConfigError(f"n_seeds ({self.n_seeds}) is more than 16; a grid that size belongs on a cluster "
                                f"via `python -m repro sweep {POINT}`.")
        if len(self.points()) < 8:
            raise P.ConfigError("The grid has fewer than 8 points; give more values, or a rank correlation means "
                                "nothing.")


def units(p: Params) -> list[Unit]:
    """One unit per run of the grid: one `noise_scale_point` result each (the merge is cheap analysis)."""
    device = get_device()
    model = {"preresnet32": "PreResNet-32"}.get(p.model)  # the bench network whose throughput sizes a unit
    out = []
    for pt in p.points():
        q = pt.params
        name = f"lr{q.lr:g}/B{q.batch_size}/wd{q.weight_decay:g}/epochs{q.epochs}/seed{q.seed}"
        out.append(make_unit("noise_scale", name, point.EXPERIMENT, point.VERSION, q.to_dict(),
                             lambda q=q: point.compute(q, device), device, Work(model, point.image_passes(q)),
                             section=SECTION, datasets=(q.dataset,)))
    return out


def run(p: Params, store: Store | None = None, force: bool | None = None, sections: set[str] | None = None,
        executor: str = "local") -> NoiseScaleResult:
    """Every grid point (each stored on its own, computed only if missing), then the analysis; `sections` (None:
    all) limits it to the named sections, the others are None in the result.

    On a plain on-disk store the missing points run in parallel through `repro.sweep` (a local process pool by
    default); any other store (one that serves recorded units, say) gets every point through its own run()."""
    if sections is not None and SECTION not in sections:
        return NoiseScaleResult()
    store = store or Store()
    points, us = p.points(), units(p)

    def compute() -> dict:
        if type(store) is Store:
            outcomes = S.sweep(POINT, points, executor, store, force=bool(force), progress=sys.stderr.isatty())
            failed = [o for o in outcomes if o.status == "failed"]
            if failed:
                raise RuntimeError(f"{len(failed)} of {len(points)} grid points failed, e.g. "
                                   f"{failed[0].point.label}: {failed[0].error}")
        results = [run_unit(store, u) for u in us]  # after the sweep, loads
        rows = []
        for pt, r in zip(points, results, strict=True):
            rows.append({**{k: getattr(pt.params, k) for k in ("lr", "batch_size", "weight_decay", "epochs", "seed")},
                         **r.metrics, "key": f"{r.experiment}/{r.key}", "wall_time_s": r.provenance["wall_time_s"],
                         "device": r.provenance["device"], "commit": r.provenance["commit"],
                         "test_acc_curve": r.data["history"]["test_acc"], "curve_step": r.data["history"]["step"]})
        analysis = analyse(rows)
        return {"metrics": _headline(analysis), "data": {"rows": rows, "analysis": analysis}}

    return NoiseScaleResult.from_stored(store.run("noise_scale", VERSION, p.to_dict(), compute, device=get_device(),
                                                  force=force))


def _headline(a: dict) -> dict:
    out = {"points": a["points"], "learned": a["learned"], "seed_sd": a["seeds"]["seed_sd"],
           "signal_over_seed": a["seeds"]["signal_over_seed"], "window_gain": a["window"]["gain"]}
    for name, c in a["candidates"].items():
        out[f"{name}_spearman"] = c["spearman"]
        out[f"{name}_collapse"] = c["collapse"]
    return out
