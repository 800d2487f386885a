"""Which single quantity predicts generalization across learning rate, batch size and weight decay?

One task, one grid over (lr, batch_size, weight_decay, epochs), every point a plain-SGD run of
`noise_scale_point` (run through `repro.sweep` on a local process pool, each point stored on its own), then for
each candidate quantity:
- the SGD noise scale lr / B (Smith & Le 2018; Goyal et al. 2017);
- the intrinsic learning rate lr * weight_decay (Li, Lyu, Arora 2020);
- lr * lambda0 against the edge 2 (Lewkowycz et al. 2020), lambda0 the top Hessian eigenvalue at init;
the Spearman rank correlation with test accuracy and a collapse score: how well the quantity alone predicts a
run's test accuracy (leave-one-out, from the runs nearest to it in log of the quantity).
"""

from __future__ import annotations

import dataclasses
import itertools
import sys

import numpy as np
from scipy import stats as sps

from repro import params as P
from repro import sweep as S
from repro.device import get_device
from repro.experiments import noise_scale_point as point
from repro.store import Result, Store
from repro.units import Unit, Work, make_unit, run_unit

VERSION = 2
POINT = "noise_scale_point"
# name -> (label, metric of a point)
CANDIDATES = {
    "noise_scale": ("SGD noise scale lr / B", "noise_scale"),
    "intrinsic_lr": ("intrinsic LR lr x wd", "intrinsic_lr"),
    "lr_lambda0": ("lr x lambda0 (edge at 2)", "lr_lambda0"),
}
BASELINES = {"lr": ("learning rate alone", "lr")}
LEARNED_TRAIN_ACC = 0.5  # a run "learned" when its train accuracy is at least this (chance: 0.1)
NEIGHBOURS = 2  # runs nearest in log(quantity) (with ties) that predict a run's accuracy in the collapse score


def parse_list(name: str, text: str, kind: type) -> list:
    try:
        values = [kind(v) for v in S.parse_values(name, text)]
    except ValueError:
        raise P.ConfigError(f"Parameter {name} expects comma-separated numbers, got {text!r}.") from None
    return values


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
    lrs: str = P.param("0.00625,0.025,0.1,0.4,1.6", "learning rates of the grid (comma-separated)")
    batch_sizes: str = P.param("32,128,512", "batch sizes of the grid (comma-separated)")
    weight_decays: str = P.param("0,0.001,0.01", "weight decays of the grid (comma-separated)")
    epochs: str = P.param("2,6", "training lengths of the grid, in epochs (comma-separated)")
    lambda0_batches: int = P.param(2, "minibatches lambda0 is averaged over", ge=1)
    lanczos_iters: int = P.param(15, "Lanczos iterations per top eigenvalue", ge=2)

    PRESETS = {
        "smoke": {"n_seeds": 1, "n_train": 1024, "n_test": 500, "width": 32, "lrs": "0.1,1.6", "batch_sizes": "32,128",
                  "weight_decays": "0,0.01", "epochs": "1", "lanczos_iters": 8, "lambda0_batches": 1},
        # The same grid on full CIFAR-10 with PreResNet-32 (crop and flip), for a GPU or a Ray cluster:
        # 5 x 3 x 3 x 2 = 90 settings, one seed each, of 15 or 45 epochs.
        "paper": {"n_seeds": 1, "dataset": "cifar10", "model": "preresnet32", "n_train": 50_000, "n_test": 10_000,
                  "augment": True, "weight_decays": "0,0.0005,0.005", "epochs": "15,45", "lanczos_iters": 20},
    }

    def grid(self) -> dict[str, list]:
        return {"lr": parse_list("lrs", self.lrs, float),
                "batch_size": parse_list("batch_sizes", self.batch_sizes, int),
                "weight_decay": parse_list("weight_decays", self.weight_decays, float),
                "epochs": parse_list("epochs", self.epochs, int)}

    def points(self) -> list[S.Point]:
        """Every grid point as validated `noise_scale_point` parameters."""
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
        grid = self.grid()
        if self.n_seeds > 16:
            raise P.ConfigError(f"n_seeds ({self.n_seeds}) is more than 16; a grid that size belongs on a cluster "
                                f"via `python -m repro sweep noise_scale_point`.")
        for field, name in (("lrs", "lr"), ("batch_sizes", "batch_size"), ("epochs", "epochs")):
            if any(v <= 0 for v in grid[name]):
                raise P.ConfigError(f"Parameter {field}: every value must be > 0, got {grid[name]}.")
        if any(v < 0 for v in grid["weight_decay"]):
            raise P.ConfigError(f"Parameter weight_decays: every value must be >= 0, got {grid['weight_decay']}.")
        if len(self.points()) < 8:
            raise P.ConfigError("The grid has fewer than 8 points; give more values, or a rank correlation means "
                                "nothing.")


# ============================================================================================== analysis


def collapse_score(q: np.ndarray, acc: np.ndarray, k: int = NEIGHBOURS) -> float:
    """1 - (leave-one-out squared error) / variance, predicting each run's accuracy by the mean of the k other
    runs nearest to it in log(q), and of every run as near as the k-th (so all runs that share its q when there
    are k or more of them; q = 0 is placed far below every positive q).
    1: the quantity alone fixes the accuracy; 0 or less: it predicts no better than the grand mean."""
    q, acc = np.asarray(q, float), np.asarray(acc, float)
    pos = q > 0
    lq = np.where(pos, np.log(np.where(pos, q, 1.0)), (np.log(q[pos].min()) - 10) if pos.any() else 0.0)
    n = len(acc)
    k = min(k, n - 1)
    err = 0.0
    for i in range(n):
        d = np.abs(lq - lq[i])
        d[i] = np.inf
        nearest = d <= np.sort(d)[k - 1]
        err += (acc[i] - acc[nearest].mean()) ** 2
    var = float(((acc - acc.mean()) ** 2).sum())
    return 1 - err / var if var > 0 else float("nan")


def spearman(q: np.ndarray, acc: np.ndarray) -> float:
    if len(q) < 3 or np.ptp(q) == 0 or np.ptp(acc) == 0:
        return float("nan")
    return float(sps.spearmanr(q, acc).statistic)


def analyse(rows: list[dict]) -> dict:
    """Everything the verdict is computed from, from the points' metrics."""
    acc = np.array([r["test_acc"] for r in rows])
    learned = np.array([r["train_acc"] >= LEARNED_TRAIN_ACC and not r["diverged"] for r in rows])
    above = np.array([r["lr_lambda0"] > point.EDGE for r in rows])
    eq = np.array([r["equilibrium_times"] >= 1 for r in rows])
    wd0 = np.array([r["weight_decay"] == 0 for r in rows])
    out: dict = {"points": len(rows), "learned": int(learned.sum()), "above_edge": int(above.sum()),
                 "test_acc_min": float(acc.min()), "test_acc_max": float(acc.max()),
                 "learned_test_acc_range": float(np.ptp(acc[learned])) if learned.sum() > 1 else 0.0,
                 "candidates": {}}
    for name, (label, key) in {**CANDIDATES, **BASELINES}.items():
        q = np.array([r[key] for r in rows])
        c = {"label": label, "spearman": spearman(q, acc), "collapse": collapse_score(q, acc),
             "baseline": name in BASELINES}
        # where it breaks: the accuracy spread among runs that share the quantity's value
        groups: dict[float, list[int]] = {}
        for i, v in enumerate(q):
            groups.setdefault(round(float(v), 12), []).append(i)
        spreads = [(float(np.ptp(acc[idx])), v, idx) for v, idx in groups.items() if len(idx) > 1]
        if spreads:
            worst = max(spreads, key=lambda s: s[0])
            c["worst_group"] = {"value": worst[1], "spread": worst[0], "runs": len(worst[2]),
                                "acc_min": float(acc[worst[2]].min()), "acc_max": float(acc[worst[2]].max())}
        for sub, mask in (("below_edge", ~above), ("above_edge", above), ("equilibrated", eq & ~wd0),
                          ("not_equilibrated", ~eq & ~wd0), ("learned", learned)):
            if mask.sum() >= 5:
                c[f"spearman_{sub}"] = spearman(q[mask], acc[mask])
                c[f"collapse_{sub}"] = collapse_score(q[mask], acc[mask])
        out["candidates"][name] = c
    out["acc_below_edge"] = float(acc[~above].mean()) if (~above).any() else float("nan")
    out["acc_above_edge"] = float(acc[above].mean()) if above.any() else float("nan")
    out["diverged"] = int(sum(r["diverged"] for r in rows))
    out["diverged_above_edge"] = int(sum(r["diverged"] for r, a in zip(rows, above, strict=True) if a))
    # seed-to-seed variation: runs that differ only in their seed
    settings: dict[tuple, list[int]] = {}
    for i, r in enumerate(rows):
        settings.setdefault(tuple(r[k] for k in ("lr", "batch_size", "weight_decay", "epochs")), []).append(i)
    within = [float(np.var(acc[idx], ddof=1)) for idx in settings.values() if len(idx) > 1]
    out["seed_sd"] = float(np.sqrt(np.mean(within))) if within else float("nan")
    out["seed_share"] = float(np.mean(within) / np.var(acc)) if within and np.var(acc) > 0 else float("nan")
    best = max(settings, key=lambda k: float(acc[settings[k]].mean()))
    out["best"] = {**dict(zip(("lr", "batch_size", "weight_decay", "epochs"), best, strict=True)),
                   "test_acc": float(acc[settings[best]].mean()), "seeds": len(settings[best])}
    return out


def units(p: Params) -> list[Unit]:
    """One unit per run of the grid: one `noise_scale_point` result each (the merge is cheap analysis)."""
    device = get_device()
    model = {"preresnet32": "PreResNet-32"}.get(p.model)  # the bench network whose throughput sizes a unit
    out = []
    for pt in p.points():
        q = pt.params
        name = f"lr{q.lr:g}/B{q.batch_size}/wd{q.weight_decay:g}/epochs{q.epochs}/seed{q.seed}"
        out.append(make_unit("noise_scale", name, POINT, point.VERSION, q.to_dict(),
                             lambda q=q: point.compute(q, device), device,
                             Work(model, q.epochs * q.n_train)))
    return out


def run(p: Params, store: Store | None = None, force: bool | None = None, executor: str = "local") -> Result:
    """Every grid point (each stored on its own, computed only if missing), then the analysis.

    On a plain on-disk store the missing points run in parallel through `repro.sweep` (a local process pool by
    default); any other store (one that serves recorded units, say) gets every point through its own run()."""
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
        return {"metrics": _headline(analyse(rows)), "data": {"rows": rows, "analysis": analyse(rows)}}

    return store.run("noise_scale", VERSION, p.to_dict(), compute, device=get_device(), force=force)


def _headline(a: dict) -> dict:
    out = {"points": a["points"], "learned": a["learned"], "above_edge": a["above_edge"], "seed_sd": a["seed_sd"],
           "seed_share": a["seed_share"]}
    for name, c in a["candidates"].items():
        out[f"{name}_spearman"] = c["spearman"]
        out[f"{name}_collapse"] = c["collapse"]
    return out

