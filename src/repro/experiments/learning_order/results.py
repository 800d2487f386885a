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
    stop_step: list[int | None] = dataclasses.field(default_factory=list)  # None: never reached eps2
    annealed_by_loss: list[bool] = dataclasses.field(default_factory=list)
    active_q_mean: list[float] = dataclasses.field(default_factory=list)  # share of units alive on Q, pre-anneal
    q_acc_mean: list[float] = dataclasses.field(default_factory=list)  # Q-only test accuracy, pre-anneal mean

    @classmethod
    def of(cls, name: str, row: dict[str, Any]) -> Runs:
        return cls(name, row["p_error"], row["p_error_std"], list(row.get("p_error_seeds", [])), row["q_error"],
                   row["q_error_std"], row["pq_error"], row["pq_error_std"], row["train_loss"],
                   row["train_loss_std"], *(_steps(row.get(f"fit_step_{k}", [])) for k in KINDS),
                   list(row["anneal_step"]), _steps(row.get("stop_step", [])), list(row.get("annealed_by_loss", [])),
                   list(row.get("active_q_mean", [])), list(row.get("q_acc_mean", [])))

    @property
    def seeds(self) -> int:
        return len(self.anneal_step)

    def fit_step(self, kind: str) -> list[int | None]:
        return getattr(self, f"fit_step_{kind}")


@dataclasses.dataclass(frozen=True)
class RegimeMeasures:
    """What the theorem's regime needs, per seed (theory.regime_measures): L-S's mean share of units active on Q
    and its mean Q-only test accuracy before annealing, whether it annealed by the loss rule, whether S memorised
    its Q-only training examples, and whether each run (L-S's, then S's) stopped at eps2 within its budget."""

    alive_Q: list[float]
    q_accuracy_before: list[float]
    annealed_by_loss: list[bool]
    s_memorised_Q: list[bool]
    stopped: list[bool]

    @classmethod
    def of(cls, d: dict[str, list]) -> RegimeMeasures:
        return cls(*(list(d[f.name]) for f in dataclasses.fields(cls)))

    @classmethod
    def merged(cls, parts: list[RegimeMeasures]) -> RegimeMeasures:
        """The measurements of several run pairs (e.g. every p0 of the sweep) as one."""
        return cls(*([v for part in parts for v in getattr(part, f.name)] for f in dataclasses.fields(cls)))


@dataclasses.dataclass(frozen=True)
class SearchRow:
    """One setting of the search at one step budget: its measurements and L-S's and S's results per seed."""

    zq_norm: float
    zeta_ratio: float
    noise: float
    lr_small: float
    steps: int
    regime: RegimeMeasures
    p_error_LS: list[float]
    p_error_S: list[float]
    stop_step_LS: list[int]
    stop_step_S: list[int]
    alive_curve_LS: list[float] | None = None  # L-S's share of units active on Q along its run, first seed

    @classmethod
    def of(cls, d: dict[str, Any]) -> SearchRow:
        return cls(d["zq_norm"], d["zeta_ratio"], d["noise"], d["lr_small"], int(d["steps"]),
                   RegimeMeasures.of(d["regime"]), d["p_error_LS"], d["p_error_S"], d["stop_step_LS"],
                   d["stop_step_S"], d.get("alive_curve_LS"))

    @property
    def label(self) -> str:
        return (f"|zq| {self.zq_norm:g}, ζ/|zq| {self.zeta_ratio:g}, τξ {self.noise:g}, η₂ {self.lr_small:g}, "
                f"{self.steps} steps")

    def matches(self, config: dict[str, Any]) -> bool:
        """Whether this is the chapter's own setting (config: a theory unit's config)."""
        return (math.isclose(self.zq_norm, config["pq_zq_norm"]) and math.isclose(self.noise, config["pq_noise"])
                and math.isclose(self.zeta_ratio * self.zq_norm, config["pq_zeta"], rel_tol=1e-6)
                and math.isclose(self.lr_small, config["pq_lr_small"]) and self.steps == config["pq_steps"])


@dataclasses.dataclass
class Search:
    """The search for the theorem's regime (every setting at every budget), and the previous setting's runs,
    compared after an equal number of steps."""

    result: Result

    @property
    def rows(self) -> list[SearchRow]:
        return [SearchRow.of(d) for d in self.result.metrics["settings"]]

    @property
    def budgets(self) -> list[int]:
        return list(self.result.metrics["budgets"])

    @property
    def step_axis(self) -> list[int]:
        """The steps at which alive_curve_LS was recorded (every longest-budget // 100 steps)."""
        longest = max(self.budgets)
        every = max(1, longest // 100)
        n = len(next(r.alive_curve_LS for r in self.rows if r.alive_curve_LS is not None))
        return [min(i * every, longest) for i in range(n)]

    @property
    def previous(self) -> dict[str, Runs]:
        return {name: Runs.of(name, row) for name, row in self.result.metrics["previous"].items()}

    @property
    def previous_config(self) -> dict[str, Any]:
        return self.result.metrics["previous_config"]

    @property
    def previous_curves(self) -> dict[str, dict[str, list[float]]]:
        return self.result.data["previous_curves"]


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
    def regime(self) -> RegimeMeasures:
        """The theorem's regime measured on L-S and S at the chapter's p0."""
        return RegimeMeasures.of(self.result.metrics["regime"])

    @property
    def sweep_regimes(self) -> RegimeMeasures:
        """The theorem's regime measured on L-S and S at every p0 of the sweep."""
        return RegimeMeasures.merged([RegimeMeasures.of(r["regime"]) for r in self.sweep if r["algorithm"] == "L-S"])

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
    search: Search | None = None
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
        if self.search is not None:
            out["theory: search"] = self.search.result
        if self.ablations is not None:
            out["theory: ablations"] = self.ablations.result
        for label, cs in (("patched", self.patch), ("official patch", self.official_patch),
                          ("clean", self.clean), ("control", self.control)):
            for method, rs in (cs.runs if cs else {}).items():
                for r in rs:
                    out[f"{label}: {method}, {r.config['n_train']} images, seed {r.config['seed']}"] = r
        return out
