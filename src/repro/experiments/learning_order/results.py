"""Typed views over the learning-order chapter's stored results: what its verdicts and figures read. The store's
JSON is unchanged; these classes only name its quantities, so that a book-scale run and recorded units are read
by the same code."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from repro.params import Params
from repro.store import Result

from .setting import KINDS


def _steps(values: list[int | None]) -> list[int | None]:
    return [None if v is None or v < 0 else int(v) for v in values]


@dataclasses.dataclass(frozen=True)
class Runs:
    """One algorithm (or ablation variant) over its seeds: test errors on each kind of example, final train loss,
    and per seed the steps at which each kind of training example was first fit (None: never) and the anneal
    step."""

    name: str
    p_error: float
    p_error_std: float
    p_error_seeds: list[float]
    q_error: float
    q_error_std: float
    pq_error: float
    pq_error_std: float
    train_loss: float
    train_loss_std: float
    fit_step_P: list[int | None]
    fit_step_Q: list[int | None]
    fit_step_PQ: list[int | None]
    anneal_step: list[int]

    @classmethod
    def of(cls, name: str, row: dict[str, Any]) -> Runs:
        return cls(name, row["p_error"], row["p_error_std"], list(row.get("p_error_seeds", [])), row["q_error"],
                   row["q_error_std"], row["pq_error"], row["pq_error_std"], row["train_loss"],
                   row["train_loss_std"], *(_steps(row.get(f"fit_step_{k}", [])) for k in KINDS),
                   list(row["anneal_step"]))

    @property
    def seeds(self) -> int:
        return len(self.anneal_step)

    def fit_step(self, kind: str) -> list[int | None]:
        return getattr(self, f"fit_step_{kind}")


@dataclasses.dataclass(frozen=True)
class AblationRuns(Runs):
    group: str = ""
    variant: str = ""


@dataclasses.dataclass
class TheoryMain:
    """L-S, S and S + noise at the chapter's p0 (`algorithms`), the p0 sweep, the large-rate sweep, the
    seed-averaged learning curves and a sample of the distribution."""

    result: Result

    @property
    def config(self) -> dict[str, Any]:
        return self.result.config

    @property
    def algorithms(self) -> dict[str, Runs]:
        return {name: Runs.of(name, row) for name, row in self.result.metrics["algorithms"].items()}

    @property
    def seeds(self) -> int:
        return int(self.result.metrics["seeds"])

    @property
    def p_only_examples(self) -> int:
        return int(self.result.metrics["p_only_examples"])

    @property
    def p_carrying_examples(self) -> int:
        return int(self.result.metrics["p_carrying_examples"])

    @property
    def sweep(self) -> list[dict[str, Any]]:
        """One row per (p0, algorithm): p_error, p_error_std, q_error, ... over the seeds."""
        return self.result.data["sweep"]

    @property
    def lr_sweep(self) -> list[dict[str, Any]]:
        """One row per large rate of L-S: lr_large, lr_ratio, errors, fit_step_Q, anneal_step per seed."""
        return self.result.data["lr_sweep"]

    @property
    def curves(self) -> dict[str, dict[str, list[float]]]:
        """Per algorithm, the seed-averaged curves: step, train_loss, acc_K, margin_K, grad_share_K,
        active_units_Q."""
        return self.result.data["curves"]

    @property
    def distribution(self) -> dict[str, list[float]]:
        return self.result.data["distribution"]

    def p_error_gaps(self) -> dict[float, float]:
        """S's P-only test error minus L-S's at every p0 of the sweep, in increasing p0."""
        by = {(r["p0"], r["algorithm"]): r["p_error"] for r in self.sweep}
        return {p0: by[(p0, "S")] - by[(p0, "L-S")] for p0 in sorted({r["p0"] for r in self.sweep})}

    def before_anneal(self, algo: str) -> dict[str, float]:
        """The seed-averaged curves at the last evaluation before the algorithm's earliest anneal step."""
        c = self.curves[algo]
        first = min(self.algorithms[algo].anneal_step)
        i = max(j for j, step in enumerate(c["step"]) if step <= max(first - 1, 0))
        return {key: c[key][i] for key in c if key != "step"} | {"step": c["step"][i]}


@dataclasses.dataclass
class Ablations:
    """The reviewers' questions, one row per (group, variant, algorithm) over the seeds."""

    result: Result

    @property
    def config(self) -> dict[str, Any]:
        return self.result.config

    @property
    def rows(self) -> list[AblationRuns]:
        return [AblationRuns(**dataclasses.asdict(Runs.of(row["algorithm"], row)), group=row["group"],
                             variant=row["variant"]) for row in self.result.metrics["table"]]

    def group(self, name: str) -> list[AblationRuns]:
        return [r for r in self.rows if r.group == name]

    def pairs(self, name: str) -> dict[str, dict[str, AblationRuns]]:
        """variant -> algorithm -> runs, in the group's order."""
        out: dict[str, dict[str, AblationRuns]] = {}
        for r in self.group(name):
            out.setdefault(r.variant, {})[r.name] = r
        return out

    def single_refs(self) -> dict[str, AblationRuns]:
        """The P-only distribution trained on as many examples as the mixed one has P-only examples (S) and as
        many as carry P (L-S): the P-only errors the theory expects of S and of L-S."""
        cfg = self.config
        n_p = max(2, round(cfg["pq_p0"] * cfg["pq_n_train"]))
        n_pc = max(2, round((1 - cfg["pq_q0"]) * cfg["pq_n_train"]))
        out = {}
        for r in self.group("single"):
            if r.name == "S" and r.variant == f"P only, N = {n_p}":
                out[f"reference: P only, {n_p} examples (the P-only examples), S"] = r
            if r.name == "L-S" and r.variant == f"P only, N = {n_pc}":
                out[f"reference: P only, {n_pc} examples (every P-carrying one), L-S"] = r
        return out


@dataclasses.dataclass
class CifarSet:
    """One set of CIFAR-10 runs (patched, clean, control...): method -> runs, one per seed."""

    runs: dict[str, list[Result]]

    def __bool__(self) -> bool:
        return bool(self.runs)

    @property
    def methods(self) -> list[str]:
        return list(self.runs)

    @property
    def config(self) -> dict[str, Any]:
        """The first run's config (epochs, anneal_epoch, n_train, network... are the same for every run)."""
        return next(iter(self.runs.values()))[0].config

    def values(self, method: str, key: str) -> list[float]:
        return [float(r.metrics.get(key, math.nan)) for r in self.runs[method]]

    def mean(self, method: str, key: str = "final_clean") -> float:
        return float(np.mean(self.values(method, key)))

    def curve(self, method: str, key: str) -> np.ndarray:
        """The seed-averaged per-epoch curve of `key` (clean, patched, patch_only)."""
        return np.mean([r.data[key] for r in self.runs[method]], axis=0)

    def learned_epoch(self, method: str, level: float = 0.5) -> int | None:
        """First epoch whose seed-averaged patch-only accuracy reaches `level` (None: never)."""
        return next((i + 1 for i, a in enumerate(self.curve(method, "patch_only")) if a >= level), None)

    def all_runs(self) -> list[Result]:
        return [r for rs in self.runs.values() for r in rs]


@dataclasses.dataclass
class LearningOrderResult:
    """The chapter's sections: the theory setting's main comparison and its ablations, and the CIFAR-10 sets
    (None where the section was not computed; `official_patch` is empty where patch_sep is the official one)."""

    params: Params
    theory: TheoryMain | None = None
    ablations: Ablations | None = None
    patch: CifarSet | None = None
    official_patch: CifarSet | None = None
    clean: CifarSet | None = None
    control: CifarSet | None = None

    def stored(self) -> dict[str, Result]:
        """Every stored result behind this one, labelled, for the provenance table."""
        out: dict[str, Result] = {}
        if self.theory is not None:
            out["theory: main"] = self.theory.result
        if self.ablations is not None:
            out["theory: ablations"] = self.ablations.result
        for label, cs in (("patched", self.patch), ("official patch", self.official_patch),
                          ("clean", self.clean), ("control", self.control)):
            for method, rs in (cs.runs if cs else {}).items():
                for r in rs:
                    out[f"{label}: {method}, {r.config['n_train']} images, seed {r.config['seed']}"] = r
        return out
