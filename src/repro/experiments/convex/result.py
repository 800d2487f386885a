"""The chapter's result, typed: one view per page section over the one stored unit (`convex`), read the same way
from a book-scale run and from a recorded paper-scale one. Verdicts and figures read these, never the JSON."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from repro.experiments.convex.schedules import wilson_interval
from repro.store import Result


def _pick(cls: type, row: dict[str, Any], **extra: Any):
    """An instance of the dataclass `cls` from the fields of `row` it names (the stored dicts hold more)."""
    return cls(**{f.name: row[f.name] for f in dataclasses.fields(cls) if f.name not in extra}, **extra)


# --------------------------------------------------------------------------------- section 1: the exact analysis


@dataclass(frozen=True)
class Split:
    """One count split (n1 samples at (1, 0), n2 at (0, 1)) of the discrete example."""

    n1: int
    n2: int
    probability: float
    min_pop_over_eps: float  # the best population loss on the train level set, in units of its train loss
    max_pop_over_eps: float  # the worst
    small_lr_limit: float  # where gradient flow (a small rate) ends on it

    @property
    def sees_both(self) -> bool:
        return bool(self.n1 and self.n2)


@dataclass(frozen=True)
class Exact:
    splits: list[Split]

    @property
    def report_split(self) -> Split:
        """The split (2, 1) of the report's section 4.2."""
        return next(s for s in self.splits if (s.n1, s.n2) == (2, 1))

    @property
    def p_both(self) -> float:
        """The probability that the three samples see both coordinates."""
        return sum(s.probability for s in self.splits if s.sees_both)

    @property
    def small_lr_at_worst(self) -> bool:
        """Whether gradient flow stops at the worst point of the level set in every split that sees both."""
        return all(np.isclose(s.small_lr_limit, s.max_pop_over_eps) for s in self.splits if s.sees_both)


# ------------------------------------------------------------------------- section 2: the report's experiment


@dataclass(frozen=True)
class Paired:
    """Annealed vs small rate on the same datasets: mean RMSEs, the paired difference (small - annealed) with
    its 95% t-interval, and the annealed schedule's win rate with its 95% Wilson interval."""

    n: int
    rmse_small: float
    rmse_anneal: float
    diff_mean: float
    diff_ci_low: float
    diff_ci_high: float
    diff_std: float
    win_rate: float
    win_ci_low: float
    win_ci_high: float


@dataclass(frozen=True)
class ReportRuns:
    n_samples: int
    lr_large: float
    lr_small: float
    stop_loss: float
    paired: Paired
    n_unfinished: int  # datasets left out: one of the two runs did not reach stop_loss (or diverged)
    groups_of_10_anneal_better: float  # the fraction of 10-dataset averages that favour annealing
    median_steps_small: float
    median_steps_anneal: float
    rmse_small: np.ndarray  # per dataset that both runs finished
    rmse_anneal: np.ndarray

    @property
    def diff(self) -> np.ndarray:
        """Per dataset, RMSE(small) - RMSE(annealed): positive where annealing wins."""
        return self.rmse_small - self.rmse_anneal

    @property
    def group_means(self) -> np.ndarray:
        """The paired difference averaged over consecutive groups of 10 datasets, as the report's table did."""
        groups = len(self.diff) // 10
        return self.diff[: groups * 10].reshape(groups, 10).mean(1)

    @property
    def finished_fraction(self) -> float:
        return self.paired.n / (self.paired.n + self.n_unfinished)


# ------------------------------------------------------------------- section 3: when the large rate helps


@dataclass(frozen=True)
class CurvatureBin:
    """The datasets x large rates of the scan whose lr_large * tr(S) falls in one bin."""

    lr_trace: float  # the bin's centre (geometric)
    count: int
    win_rate: float
    gain_mean: float  # mean RMSE(small) - RMSE(annealed) among the runs that finished
    diverged_fraction: float

    @property
    def win_ci(self) -> tuple[float, float]:
        return wilson_interval(round(self.win_rate * self.count), self.count)


@dataclass(frozen=True)
class GridCell:
    lr_ratio: float  # lr_large / lr_small
    stop_loss: float
    win_rate: float
    diff_mean: float
    valid_fraction: float
    diverged_fraction: float


@dataclass(frozen=True)
class SampleCount:
    n_samples: int
    paired: Paired


@dataclass(frozen=True)
class Window:
    by_curvature: list[CurvatureBin]
    grid: list[GridCell]
    by_n: list[SampleCount]

    @property
    def peak(self) -> CurvatureBin:
        return max(self.by_curvature, key=lambda b: b.win_rate)

    def crossing(self, name: str, level: float) -> float:
        """Where the binned `name` ("win_rate" or "gain_mean") rises through `level` below the peak of the win
        rate, interpolated in log(lr_trace) between the two bins around it; NaN if it does not."""
        bins = self.by_curvature[: self.by_curvature.index(self.peak) + 1]
        for a, b in reversed(list(zip(bins, bins[1:], strict=False))):
            ya, yb = getattr(a, name), getattr(b, name)
            if ya <= level < yb:
                t = (level - ya) / (yb - ya)
                return float(np.exp((1 - t) * np.log(a.lr_trace) + t * np.log(b.lr_trace)))
        return float("nan")

    def pooled_below(self, lr_trace: float) -> tuple[float, int]:
        """The win rate over every (dataset, rate) pair in the bins below `lr_trace`, and their number."""
        below = [b for b in self.by_curvature if b.lr_trace < lr_trace]
        count = sum(b.count for b in below)
        return (sum(b.win_rate * b.count for b in below) / count if count else float("nan")), count


# ------------------------------------------------------------------------------------------ section 4: the foil


@dataclass(frozen=True)
class Setting:
    """One side of the two-settings table: the large rate against the train curvature, and the outcome."""

    eta_large: float
    eta_trace: float  # eta * tr(S), mean over datasets
    sharp_contraction: float  # |1 - 2 eta s_max| per step
    flat_contraction: float  # |1 - 2 eta s_min| per step
    bias: float  # contraction_bias (median): sharp-over-flat contraction of a step, relative to gradient flow
    flat_ratio: float  # test / train curvature along the flat train direction (median)
    sharp_ratio: float  # and along the sharp one
    test_small: float  # mean test loss of the small-rate schedule (gradient flow in Nakkiran's setting)
    test_anneal: float  # mean test loss of the large rate, then the small one
    win_rate: float
    n: int

    @property
    def anneal_wins(self) -> bool:
        return self.test_anneal < self.test_small


@dataclass(frozen=True)
class EpsPoint:
    stop_loss: float
    ratio_median: float  # test loss (A) / test loss (B)
    ratio_low: float  # 5% of draws
    ratio_high: float  # 95%


@dataclass(frozen=True)
class EtaPoint:
    eta_smax: float
    eta_trace: float
    win_rate: float
    gain_mean: float  # mean (test(A) - test(B)) / test(A)


@dataclass(frozen=True)
class NakkiranPaths:
    beta_star: np.ndarray
    train_cov: np.ndarray
    flow: np.ndarray  # (A), sampled in time
    large_steps: np.ndarray  # (B)'s large steps, from 0
    anneal_flow: np.ndarray  # (B)'s gradient flow after them
    stop_loss: float
    draw: int


@dataclass(frozen=True)
class Nakkiran:
    setting: Setting
    curvature_ratio: float
    stop_loss: float
    lr_small: float
    ratio_median: float
    ratio_low: float
    ratio_high: float
    limit_ratio: float  # the small-loss limit of the factor, s_max / s_min weighted by the test covariance
    win_rate_small: float  # (B) against gradient descent at lr_small
    test_gd_small: float  # mean test loss of gradient descent at lr_small
    lose_rate: float
    n_small_unfinished: int  # draws where gradient descent at lr_small did not reach the stopping loss
    no_large_step: float  # draws where even the first large step would cross the stopping loss
    crossover_eta_trace: float  # where contraction_bias crosses 1 on these covariances
    by_eps: list[EpsPoint]
    by_eta: list[EtaPoint]
    paths: NakkiranPaths

    @property
    def sign_changes(self) -> list[tuple[float, float]]:
        """The (eta * tr(S)) intervals of the scan across which annealing's mean benefit changes sign."""
        pts = self.by_eta
        return [(a.eta_trace, b.eta_trace) for a, b in zip(pts, pts[1:], strict=False)
                if (a.gain_mean > 0) != (b.gain_mean > 0)]


@dataclass(frozen=True)
class Flip:
    """Where annealing's mean benefit changes sign on Nakkiran's covariances diag(ratio, 1), in eta * tr(S)."""

    ratio: float
    exact: float  # the crossover of contraction_bias
    low: float  # the measured bracket
    high: float

    @property
    def measured(self) -> float:
        return (self.low + self.high) / 2

    @property
    def relative_error(self) -> float:
        return self.measured / self.exact - 1


@dataclass(frozen=True)
class Crossover:
    """The crossover against the curvature ratio r = s_max / s_min: exact on a fine grid, measured at a few r."""

    ratio: np.ndarray
    eta_trace: np.ndarray  # the exact crossover in eta * tr(S) at each ratio
    floor: float  # its limit as r -> oo (it tends to 1 as r -> 1)
    flips: list[Flip]
    draws: int  # draws of beta* the measured sign changes are averaged over
    report_ratio: list[float]  # 5%, 50% and 95% quantiles of the report's datasets' curvature ratios


@dataclass(frozen=True)
class Foil:
    nakkiran: Nakkiran
    report: Setting
    crossover: Crossover


# ----------------------------------------------------------------------------------- the level-set figure


@dataclass(frozen=True)
class LevelSetPanel:
    """One panel of the level-set figure: a dataset, and the gradient-descent paths on it by schedule."""

    x: np.ndarray
    y: np.ndarray
    beta_star: np.ndarray
    stop_loss: float
    paths: dict[str, np.ndarray]  # schedule ("small_lr", "large_lr_anneal", "edge") -> path
    population_scale: float  # L_D = scale * |beta - beta*|^2 (+ a constant)
    lr_edge: float = float("nan")  # the Gaussian panel's 1 / tr(S)
    dataset: int = -1
    anisotropy: float = float("nan")  # s_max / s_min


@dataclass(frozen=True)
class ConvexResult:
    """The chapter, section by section (None where a section was not computed), and the stored unit."""

    stored: Result | None = None
    exact: Exact | None = None
    report: ReportRuns | None = None
    window: Window | None = None
    foil: Foil | None = None
    level_sets: dict[str, LevelSetPanel] | None = None  # "discrete", "gaussian"

    @classmethod
    def from_stored(cls, r: Result) -> ConvexResult:
        d, cfg, m = r.data, r.config, r.metrics
        report = _pick(ReportRuns, m, **{k: cfg[k] for k in ("n_samples", "lr_large", "lr_small", "stop_loss")},
                       paired=_pick(Paired, m), rmse_small=np.array(d["rmse_small"]),
                       rmse_anneal=np.array(d["rmse_anneal"]))
        window = Window([_pick(CurvatureBin, b) for b in d["by_curvature"]], [_pick(GridCell, g) for g in d["grid"]],
                        [SampleCount(s["n_samples"], _pick(Paired, s)) for s in d["by_n"]])
        nk, side = d["nakkiran"]["summary"], d["report_foil"]
        paths = d["nakkiran"]["paths"]
        nakkiran = _pick(
            Nakkiran, nk, setting=_pick(Setting, nk, test_small=nk["test_flow"]),
            curvature_ratio=cfg["nakkiran_curvature_ratio"], stop_loss=cfg["nakkiran_stop_loss"],
            lr_small=cfg["lr_small"], test_gd_small=nk["test_small"],
            by_eps=[_pick(EpsPoint, e) for e in d["nakkiran"]["by_eps"]],
            by_eta=[_pick(EtaPoint, e) for e in d["nakkiran"]["by_eta"]],
            paths=_pick(NakkiranPaths, {k: np.array(v) if isinstance(v, list) else v for k, v in paths.items()}))
        c = d["crossover"]
        crossover = _pick(Crossover, c, ratio=np.array(c["ratio"]), eta_trace=np.array(c["eta_trace"]),
                          flips=[Flip(**f) for f in c["flips"]])
        return cls(r, Exact([Split(**row) for row in d["exact"]]), report, window,
                   Foil(nakkiran, _pick(Setting, side), crossover), _level_sets(d["paths"]))


def _level_sets(paths: dict[str, Any]) -> dict[str, LevelSetPanel]:
    out = {}
    for panel, scale in (("discrete", 0.5), ("gaussian", 1.0)):  # L_D = |e|^2 / 2 (discrete), |e|^2 + const
        info = paths[panel]
        runs = {k: np.array(paths[f"{panel}_{k}"]) for k in ("small_lr", "large_lr_anneal", "edge")
                if f"{panel}_{k}" in paths}
        extra = {k: info[k] for k in ("lr_edge", "dataset", "anisotropy") if k in info}
        out[panel] = LevelSetPanel(np.array(info["x"]), np.array(info["y"]), np.array(info["beta_star"]),
                                   info["stop_loss"], runs, scale, **extra)
    return out
