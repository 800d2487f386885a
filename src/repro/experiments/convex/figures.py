"""The convex chapter's figures, tables and computed sentences: functions of a `ConvexResult`, so that a recorded
paper-scale result is drawn by the same code as the page's own run. A figure builder returns `(fig, data)`, `data`
the tidy table of what it plots (the page offers it as CSV)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns

from repro.experiments.convex.analysis import REPORT_LEVEL_SET_RANGE
from repro.experiments.convex.nakkiran import NAKKIRAN_CLAIMED_RATIO
from repro.experiments.convex.result import ConvexResult, LevelSetPanel, Setting
from repro.experiments.convex.schedules import (
    DISCRETE_RATES,
    REPORT_AVERAGES,
    REPORT_RMSE_ANNEAL,
    REPORT_RMSE_SMALL,
    REPORT_SOURCE,
)
from repro.experiments.convex.verdicts import REPORT_DIFF
from repro.fmt import number, signed
from repro.plotting import LABELS, PALETTE, figure, reference_line

TRACE = r"$\eta\,\mathrm{tr}(S)$"  # Markdown
TRACE_AXIS = r"$\eta_{large}\cdot\mathrm{tr}(X^\top X/n)$"  # an axis label


# ------------------------------------------------------------------------------- the level sets (section 1)


def _level_set_panel(ax, panel: LevelSetPanel, title: str) -> list[dict]:
    x, y, bstar = panel.x, panel.y, panel.beta_star
    pts = np.concatenate([*panel.paths.values(), bstar[None]])
    lo, hi = pts.min(0) - 0.3, pts.max(0) + 0.3
    g1, g2 = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    grid = np.stack([g1, g2], -1)
    train = ((grid @ x.T - y) ** 2).mean(-1)
    pop = panel.population_scale * ((grid - bstar) ** 2).sum(-1)
    levels = panel.stop_loss * np.array([1, 4, 16])
    ax.contour(g1, g2, train, levels=levels, colors=[PALETTE["train"]], linewidths=[2.2, 1, 1])
    ax.contour(g1, g2, pop, levels=levels, colors=[PALETTE["population"]], linestyles="--", linewidths=1)
    labels = {**LABELS, "edge": f"LR 1/tr(S) = {number(panel.lr_edge, 2)} + anneal"}
    rows = []
    for run, path in panel.paths.items():
        stop = path[-1]
        pop_over_train = panel.population_scale * ((stop - bstar) ** 2).sum() / ((x @ stop - y) ** 2).mean()
        ax.plot(path[:, 0], path[:, 1], ".-", ms=3, lw=1, color=PALETTE[run],
                label=f"{labels[run]}: L_D/L_n = {number(pop_over_train)}")
        ax.plot(*stop, "o", ms=7, color=PALETTE[run], mec="k")
        rows += [{"run": run, "step": i, "beta_1": b[0], "beta_2": b[1]} for i, b in enumerate(path)]
    ax.plot(*bstar, "*", ms=12, color="k", label=r"$\beta^*$")
    rows.append({"run": "beta_star", "step": 0, "beta_1": bstar[0], "beta_2": bstar[1]})
    ax.set(title=title, xlabel=r"$\beta_1$", ylabel=r"$\beta_2$", aspect="equal")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=8, ncol=1)
    return rows


def level_sets(result: ConvexResult):
    """Train (solid) and population (dashed) level sets with the early-stopped paths: the discrete 3-sample
    example and the first clearly anisotropic Gaussian dataset."""
    fig, axes = figure(ncols=2, width=5.0, height=5.6)
    disc, gauss = result.level_sets["discrete"], result.level_sets["gaussian"]
    small, large = DISCRETE_RATES
    rows = [{"panel": "discrete", **r} for r in _level_set_panel(
        axes[0], disc, f"n = 3: LR {number(small)} vs {number(large)} then {number(small)}")]
    rows += [{"panel": "gaussian", **r} for r in _level_set_panel(
        axes[1], gauss, f"Gaussian dataset {gauss.dataset}, n = {len(gauss.y)}, "
                        f"s_max/s_min = {number(gauss.anisotropy, 2)}")]
    return fig, pd.DataFrame(rows)


def exact_table(result: ConvexResult) -> pd.DataFrame:
    return pd.DataFrame([vars(s) for s in result.exact.splits]).rename(columns={
        "n1": "n1 (x = (1,0))", "n2": "n2 (x = (0,1))", "probability": "P(split)",
        "min_pop_over_eps": "min L_D / eps", "max_pop_over_eps": "max L_D / eps",
        "small_lr_limit": "small-LR GD limit / eps"})


def exact_sentence(result: ConvexResult) -> str:
    ex = result.exact
    split = ex.report_split
    return (
        f"The splits that see both coordinates happen with probability {number(ex.p_both)}; the split (2,1) gives "
        f"the report's two numbers ({number(REPORT_LEVEL_SET_RANGE[0])}$\\epsilon$ and "
        f"{number(REPORT_LEVEL_SET_RANGE[1])}$\\epsilon$): the best point on the level set has population loss "
        f"{number(split.min_pop_over_eps)}$\\epsilon$, the worst {number(split.max_pop_over_eps)}$\\epsilon$. "
        "The last column adds what the report did not: gradient descent with a small rate approaches the minimiser "
        "along the *flattest* direction of the train loss (the error in the sharp direction dies first), and along "
        "that direction the ratio is the largest. "
        + ("**In every such split, small-LR gradient descent stops at the worst point of the level set.** "
           if ex.small_lr_at_worst else "")
        + f"In the remaining splits (probability {number(1 - ex.p_both)}) one coordinate is never seen and the "
        "population loss is not controlled at all.")


# ------------------------------------------------------------------------ the report's experiment (section 2)


def schedule_tables(result: ConvexResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Our mean test RMSE per schedule beside the report's, and the paired comparison's summary."""
    rep = result.report
    s = rep.paired
    ours = pd.DataFrame({
        "schedule": [f"small LR {number(rep.lr_small)}",
                     f"large LR {number(rep.lr_large)}, then {number(rep.lr_small)}"],
        "mean test RMSE (ours)": [s.rmse_small, s.rmse_anneal],
        "std across datasets (ours)": [np.std(rep.rmse_small, ddof=1), np.std(rep.rmse_anneal, ddof=1)],
        "datasets (ours)": [s.n, s.n],
        "mean test RMSE (report)": [REPORT_AVERAGES["small"], REPORT_AVERAGES["anneal"]],
        "datasets (report)": [len(REPORT_RMSE_SMALL)] * 2,
    }).set_index("schedule")
    report_wins = float(np.mean(np.array(REPORT_RMSE_SMALL) > np.array(REPORT_RMSE_ANNEAL)))
    summary = pd.DataFrame([
        {"quantity": "annealed schedule wins (fraction of datasets)", "ours": number(s.win_rate),
         "95% interval (ours)": f"{number(s.win_ci_low)} to {number(s.win_ci_high)}", "report": number(report_wins)},
        {"quantity": "mean RMSE difference, small − annealed", "ours": signed(s.diff_mean),
         "95% interval (ours)": f"{signed(s.diff_ci_low)} to {signed(s.diff_ci_high)}", "report": signed(REPORT_DIFF)},
        {"quantity": "groups of 10 datasets whose average favours annealing",
         "ours": number(rep.groups_of_10_anneal_better), "95% interval (ours)": "", "report": number(1.0)},
    ]).set_index("quantity")
    return ours, summary


def schedule_sentence(result: ConvexResult) -> str:
    rep = result.report
    return (f"Report values: {REPORT_SOURCE}. Median steps to the stopping loss: {number(rep.median_steps_small)} "
            f"(small LR) and {number(rep.median_steps_anneal)} (annealed); {number(rep.n_unfinished)} datasets "
            "where a run did not reach it are left out.")


def report_runs_table(result: ConvexResult) -> pd.DataFrame:
    """The report's ten runs beside our first ten datasets."""
    rep = result.report
    return pd.DataFrame({"report: small LR": REPORT_RMSE_SMALL, "report: annealed": REPORT_RMSE_ANNEAL,
                         "ours: small LR": rep.rmse_small[:10], "ours: annealed": rep.rmse_anneal[:10]},
                        index=pd.RangeIndex(1, 11, name="run (report) / dataset (ours)"))


def difference_histograms(result: ConvexResult):
    """The paired difference per dataset, and averaged over groups of 10 as the report's table did."""
    rep = result.report
    fig, axes = figure(ncols=2, width=4.8)
    counts, edges, _ = axes[0].hist(rep.diff, bins=60, color=PALETTE["ours"])
    axes[0].axvline(0, color="k", lw=1)
    axes[0].set(xlabel="RMSE(small LR) − RMSE(annealed)", ylabel="datasets", title="Paired difference per dataset")
    rows = [{"panel": "per dataset", "bin_low": a, "bin_high": b, "count": int(c)}
            for a, b, c in zip(edges[:-1], edges[1:], counts, strict=True)]
    counts, edges, _ = axes[1].hist(rep.group_means, bins=40, color=PALETTE["ours"], alpha=0.8,
                                    label="ours: averages of 10 datasets")
    rows += [{"panel": "averages of 10 datasets", "bin_low": a, "bin_high": b, "count": int(c)}
             for a, b, c in zip(edges[:-1], edges[1:], counts, strict=True)]
    reference_line(axes[1], REPORT_DIFF, "report's 10-run difference", axis="x")
    axes[1].axvline(0, color="k", lw=1)
    axes[1].set(xlabel="mean RMSE difference over 10 datasets", ylabel="groups", title="What a 10-run table shows")
    axes[1].legend(fontsize=8)
    return fig, pd.DataFrame(rows)


# ----------------------------------------------------------------------- when the large rate helps (section 3)


def curvature_data(result: ConvexResult) -> pd.DataFrame:
    return pd.DataFrame([vars(b) for b in result.window.by_curvature])


def curvature_figure(result: ConvexResult):
    """The win rate and mean gain of annealing against the dimensionless large rate lr_large * tr(S)."""
    curv = curvature_data(result)
    fig, axes = figure(ncols=2, width=4.8)
    axes[0].plot(curv["lr_trace"], curv["win_rate"], "o-", color=PALETTE["large_lr_anneal"], label="annealed wins")
    axes[0].axhline(0.5, color="k", lw=0.8)
    axes[0].axvline(1.0, color=PALETTE["reference"], ls=":", label=r"$\eta\,\mathrm{tr}(S)=1$")
    axes[0].plot(curv["lr_trace"], curv["diverged_fraction"], "x--", color=PALETTE["small_lr"],
                 label="annealed run diverged")
    axes[0].set(xscale="log", xlabel=TRACE_AXIS, ylabel="fraction of datasets", title="When annealing wins",
                ylim=(0, 1))
    axes[0].legend(fontsize=8)
    axes[1].plot(curv["lr_trace"], curv["gain_mean"], "o-", color=PALETTE["large_lr_anneal"])
    axes[1].axhline(0, color="k", lw=0.8)
    axes[1].axvline(1.0, color=PALETTE["reference"], ls=":")
    axes[1].set(xscale="log", xlabel=TRACE_AXIS, ylabel="RMSE(small) − RMSE(annealed)", title="Mean gain of annealing")
    return fig, curv.rename(columns={"lr_trace": "lr_large x tr(S) (bin centre)", "count": "dataset x rate pairs"})


def curvature_sentence(result: ConvexResult) -> str:
    win, rep, cross = result.window, result.foil.report, result.foil.crossover
    rate, count = win.pooled_below(cross.floor)
    return (f"The win rate peaks at {number(win.peak.win_rate)} for {TRACE} ≈ {number(win.peak.lr_trace)} and rises "
            f"through one half at {TRACE} ≈ {number(win.crossing('win_rate', 0.5))}, inside the band from "
            f"{number(cross.floor)} to 1 where the crossover lies; below {number(cross.floor)} annealing wins on "
            f"{number(rate)} of {number(count)} (dataset, rate) pairs. The mean RMSE gain turns positive earlier, at "
            f"{TRACE} ≈ {number(win.crossing('gain_mean', 0.0))}: the report's runs stop at a train loss of "
            f"{number(result.report.stop_loss)}, far from the small-loss limit the crossover describes, so it places "
            f"the change only roughly here. The report's rate {number(rep.eta_large)} sits at {TRACE} ≈ "
            f"{number(rep.eta_trace)} on average.")


def sweep_figure(result: ConvexResult):
    """The win rate over (LR ratio x stopping loss), and against the number of samples at the report's rates."""
    win = result.window
    grid = pd.DataFrame([vars(g) for g in win.grid])
    table = grid.pivot(index="lr_ratio", columns="stop_loss", values="win_rate").sort_index(ascending=False)
    fig, axes = figure(ncols=2, width=5.0, height=4.0)
    sns.heatmap(table, ax=axes[0], vmin=0, vmax=1, cmap="vlag_r", annot=table.map(lambda v: number(v, 2)).to_numpy(),
                fmt="", annot_kws={"size": 7},
                xticklabels=[number(v, 2) for v in table.columns], yticklabels=[number(v) for v in table.index],
                cbar_kws={"label": "annealed wins (fraction)"})
    axes[0].set(xlabel="stop_loss", ylabel="lr_large / lr_small", title="Win rate of the annealed schedule")
    by_n = pd.DataFrame([{"n_samples": s.n_samples, **vars(s.paired)} for s in win.by_n])
    axes[1].errorbar(by_n["n_samples"], by_n["win_rate"],
                     yerr=[by_n["win_rate"] - by_n["win_ci_low"], by_n["win_ci_high"] - by_n["win_rate"]],
                     fmt="o-", color=PALETTE["large_lr_anneal"], capsize=3, label="ours (95% Wilson)")
    axes[1].axhline(0.5, color="k", lw=0.8)
    rep = result.report
    axes[1].set(xscale="log", xlabel="samples per dataset n", ylabel="annealed wins (fraction)", ylim=(0, 1),
                title=f"LR {number(rep.lr_large)} then {number(rep.lr_small)} vs {number(rep.lr_small)}")
    axes[1].legend(fontsize=8)
    data = pd.concat([grid.assign(panel="grid"), by_n.assign(panel="samples")], ignore_index=True)
    return fig, data


# ------------------------------------------------------------------------------------ the foil (section 4)


def nakkiran_sentence(result: ConvexResult) -> str:
    nk = result.foil.nakkiran
    s = nk.setting
    return (
        f"Over {number(s.n)} draws of $\\beta^*$, stopped at train loss {number(nk.stop_loss)}: the test loss of "
        f"(A) is {number(nk.ratio_median)} times that of (B) (median; 5% to 95% of draws: "
        f"{number(nk.ratio_low)} to {number(nk.ratio_high)}); the predicted limit $s_{{\\max}}/s_{{\\min}}$ "
        f"weighted by the test covariance is {number(nk.limit_ratio)}. (B) has the lower test loss on "
        f"{number(s.win_rate)} of the draws against gradient flow and {number(nk.win_rate_small)} against "
        f"gradient descent at LR {number(nk.lr_small)} (whose mean test loss, {number(nk.test_gd_small)}, is close "
        f"to gradient flow's {number(s.test_small)}); it is worse than (A) on {number(nk.lose_rate)} of them. "
        f"On {number(nk.no_large_step)} of the draws even the first large step would cross the stopping loss, "
        "so (B) takes none and is gradient flow.")


def nakkiran_figure(result: ConvexResult):
    """Left: Nakkiran's setting on one draw of beta*, train (solid) and test (dashed) level sets. Right: the
    fraction of draws on which annealing wins against eta * tr(S), Nakkiran's covariances and the report's data."""
    nk, rep = result.foil.nakkiran, result.foil.report
    d = nk.paths
    bstar, cov = d.beta_star, d.train_cov
    flow, steps, tail = d.flow, d.large_steps, d.anneal_flow
    fig, axes = figure(ncols=2, width=5.0, height=4.6)
    ax = axes[0]
    pts = np.concatenate([flow, steps, tail, bstar[None]])
    lo, hi = pts.min(0) - 0.3, pts.max(0) + 0.3
    g1, g2 = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    e = np.stack([g1, g2], -1) - bstar
    train, test = np.einsum("...i,ij,...j->...", e, cov, e), (e**2).sum(-1)
    start = float(bstar @ cov @ bstar)
    levels = np.array([d.stop_loss, start / 16, start / 4, start])
    ax.contour(g1, g2, train, levels=levels, colors=[PALETTE["train"]], linewidths=[2.2, 1, 1, 1])
    ax.contour(g1, g2, test, levels=levels, colors=[PALETTE["test"]], linestyles="--", linewidths=1)

    def test_over_train(b):
        return ((b - bstar) ** 2).sum() / ((b - bstar) @ cov @ (b - bstar))

    ax.plot(flow[:, 0], flow[:, 1], "-", lw=1.5, color=PALETTE["small_lr"],
            label=f"(A) gradient flow: test/train = {number(test_over_train(flow[-1]))}")
    ax.plot(steps[:, 0], steps[:, 1], ".-", ms=4, lw=0.6, color=PALETTE["large_lr_anneal"],
            label=f"(B) {len(steps) - 1} steps at η = {number(nk.setting.eta_large)}, then flow: "
                  f"test/train = {number(test_over_train(tail[-1]))}")
    ax.plot(tail[:, 0], tail[:, 1], "-", lw=1.5, color=PALETTE["large_lr_anneal"])
    for end, key in ((flow[-1], "small_lr"), (tail[-1], "large_lr_anneal")):
        ax.plot(*end, "o", ms=7, color=PALETTE[key], mec="k")
    ax.plot(*bstar, "*", ms=12, color="k", label=r"$\beta^*$")
    ax.set(title=f"Nakkiran's setting, draw {d.draw}", xlabel=r"$\beta_1$", ylabel=r"$\beta_2$", aspect="equal")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=8)
    ax = axes[1]
    by_eta, curv = pd.DataFrame([vars(p) for p in nk.by_eta]), curvature_data(result)
    ax.plot(by_eta["eta_trace"], by_eta["win_rate"], "o-", ms=4, color=PALETTE["large_lr_anneal"],
            label="Nakkiran's covariances")
    ax.plot(curv["lr_trace"], curv["win_rate"], "s--", ms=3, color=PALETTE["ours"],
            label="report's datasets (section 3)")
    ax.axhline(0.5, color="k", lw=0.8)
    ax.axvline(1.0, color=PALETTE["reference"], ls=":", label=r"$\eta\,\mathrm{tr}(S)=1$")
    for x, name, marker in ((nk.setting.eta_trace, "Nakkiran's η", "^"), (rep.eta_trace, "report's η", "v")):
        ax.plot([x], [0.04], marker, color="k", ms=7, label=name)
    ax.set(xscale="log", xlabel=r"$\eta_{large}\cdot\mathrm{tr}(S)$", ylabel="annealing wins (fraction)",
           ylim=(0, 1), title="Where annealing's benefit changes sign")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=8, ncol=2)
    paths = [{"panel": "draw", "run": run, "step": i, "beta_1": b[0], "beta_2": b[1]}
             for run, path in (("A: gradient flow", flow), ("B: large steps", steps), ("B: then flow", tail))
             for i, b in enumerate(path)]
    wins = ([{"panel": "win rate", "run": "Nakkiran's covariances", "eta_trace": p.eta_trace, "win_rate": p.win_rate}
             for p in nk.by_eta]
            + [{"panel": "win rate", "run": "report's datasets", "eta_trace": b.lr_trace, "win_rate": b.win_rate}
               for b in result.window.by_curvature])
    return fig, pd.DataFrame(paths + wins)


def nakkiran_caption(result: ConvexResult) -> str:
    bounces = result.foil.nakkiran.setting.sharp_contraction >= 1 - 1e-9
    return ("On the left, one draw: solid lines are train-loss level sets, dashed lines test-loss level sets"
            + ("; the large steps bounce across the sharp direction without shrinking it, then gradient flow comes "
               "in along it" if bounces else "")
            + ". On the right, the fraction of draws on which annealing wins against $\\eta\\cdot\\mathrm{tr}(S)$, on "
            "Nakkiran's covariances (varying `nakkiran_eta_smax` up to 1) and on the report's datasets (the scan of "
            "section 3); the triangles mark where each setting's own large rate sits.")


def foil_table(result: ConvexResult) -> pd.DataFrame:
    """The two settings side by side, in the same terms."""
    nk, rep = result.foil.nakkiran, result.foil.report
    a, b = nk.setting, rep
    rows = {
        "train covariance S": [f"diag({number(nk.curvature_ratio)}, 1)",
                               f"X^T X / n from n = {result.report.n_samples} samples of N(0, I)"],
        "test covariance": ["I", "I"],
        "small-rate schedule": [f"gradient flow (and GD at LR {number(nk.lr_small)})",
                                f"GD at LR {number(result.report.lr_small)}"],
        "large rate η": [a.eta_large, b.eta_large],
        "η·tr(S) (mean)": [a.eta_trace, b.eta_trace],
        "sharp direction: |1 − 2η s_max| per step (mean)": [a.sharp_contraction, b.sharp_contraction],
        "flat direction: |1 − 2η s_min| per step (mean)": [a.flat_contraction, b.flat_contraction],
        "sharp-over-flat contraction of a large step, relative to gradient flow (median)": [a.bias, b.bias],
        "test/train curvature, sharp direction (median)": [a.sharp_ratio, b.sharp_ratio],
        "test/train curvature, flat direction (median)": [a.flat_ratio, b.flat_ratio],
        "stopping train loss": [nk.stop_loss, result.report.stop_loss],
        "mean test loss, small rate": [a.test_small, b.test_small],
        "mean test loss, large rate then small": [a.test_anneal, b.test_anneal],
        "annealing wins (fraction of datasets)": [a.win_rate, b.win_rate],
        "datasets": [a.n, b.n],
    }
    table = pd.DataFrame(rows, index=["Nakkiran (2020)", "report, section 4"]).T
    return table.map(lambda v: number(v) if isinstance(v, float | int) else v)


def _contraction_clause(s: Setting, who: str) -> str:
    """How a setting's large step treats the two train directions, and where that leaves the error."""
    return (f"In {who} a large step multiplies the sharp train direction by {number(s.sharp_contraction)} "
            f"and the flat one by {number(s.flat_contraction)}, which, against gradient flow's decay rates, "
            f"is a relative contraction of the sharp direction of {number(s.bias)}: "
            + ("the large rate pushes the error into the flat direction even more than a small rate does"
               if s.bias > 1 else "the large rate leaves more of the error in the sharp direction than a small rate")
            + f" (test loss per unit of train loss {number(s.flat_ratio)} in the flat direction, "
            f"{number(s.sharp_ratio)} in the sharp one). ")


def foil_sentence(result: ConvexResult) -> str:
    """Which setting annealing wins in, and what separates them: the large rate against the crossover, which
    depends on the curvature ratio."""
    nk, rep, cross = result.foil.nakkiran, result.foil.report, result.foil.crossover
    a = nk.setting
    q05, median, q95 = cross.report_ratio

    def word(wins: bool) -> str:
        return "wins" if wins else "loses"

    return (
        f"Annealing {word(a.anneal_wins)} in Nakkiran's setting (mean test loss {number(a.test_anneal)} against "
        f"{number(a.test_small)} for gradient flow; lower on {number(a.win_rate)} of the draws) and "
        f"{word(rep.anneal_wins)} in the report's ({number(rep.test_anneal)} against {number(rep.test_small)}; "
        f"lower on {number(rep.win_rate)} of the datasets). "
        + _contraction_clause(a, "Nakkiran's setting") + _contraction_clause(rep, "the report's")
        + "What separates them is where the large rate sits against the rate at which this relative contraction "
        rf"crosses 1, and that crossover depends on the curvature ratio $r=s_{{\max}}/s_{{\min}}$: in units of "
        rf"{TRACE} it falls from 1 as $r\to1$ to {number(cross.floor)} as $r\to\infty$ (the figure below). "
        f"Nakkiran's {TRACE} = {number(a.eta_trace)} lies above its crossover, {number(nk.crossover_eta_trace)} at "
        f"$r$ = {number(nk.curvature_ratio)}; the report's {number(rep.eta_trace)} lies below the crossover for "
        f"every $r$ (its datasets' ratios: median {number(median)}, 5% to 95% {number(q05)} to {number(q95)}). "
        f"So {TRACE} separates these two settings, but the boundary is not {TRACE} = 1: it is the crossover of "
        "the dataset's own curvature ratio.")


def crossover_figure(result: ConvexResult):
    """The crossover in eta * tr(S) against the curvature ratio: exact, and where annealing's benefit was measured
    to change sign; with the two settings' own large rates."""
    nk, rep, cross = result.foil.nakkiran, result.foil.report, result.foil.crossover
    fig, (ax,) = figure(width=5.6, height=3.8)
    edge = 1 + 1 / cross.ratio  # eta * s_max = 1: the large rate diverges above it
    ax.fill_between(cross.ratio, cross.eta_trace, edge, color=PALETTE["large_lr_anneal"], alpha=0.12,
                    label="annealing wins (exact criterion)")
    ax.plot(cross.ratio, cross.eta_trace, "-", color=PALETTE["large_lr_anneal"], label="crossover, exact")
    ax.plot(cross.ratio, edge, "-", lw=0.8, color=PALETTE["edge"], label=r"stability edge $\eta\,s_{\max}=1$")
    flips = pd.DataFrame([{**vars(f), "measured": f.measured} for f in cross.flips])
    ax.errorbar(flips["ratio"], flips["measured"], yerr=[flips["measured"] - flips["low"],
                                                        flips["high"] - flips["measured"]],
                fmt="o", ms=4, color="k", capsize=2, label=f"sign change, measured ({number(cross.draws)} draws)")
    ax.axhline(cross.floor, color=PALETTE["reference"], ls=":", lw=1, label=f"limit {number(cross.floor)} (r → ∞)")
    ax.plot([nk.curvature_ratio], [nk.setting.eta_trace], "^", color="k", ms=8, label="Nakkiran's η (wins)")
    q05, median, q95 = cross.report_ratio
    ax.errorbar([median], [rep.eta_trace], xerr=[[median - q05], [q95 - median]], fmt="v", color="k", ms=8,
                capsize=3, label="report's η, datasets' r 5–95% (loses)")
    ax.set(xscale="log", xlabel=r"curvature ratio $r=s_{\max}/s_{\min}$", ylabel=r"$\eta\cdot\mathrm{tr}(S)$",
           ylim=(0, 2.1), title="Where annealing's benefit changes sign")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
    curve = pd.DataFrame({"kind": "exact", "ratio": cross.ratio, "eta_trace": cross.eta_trace, "edge": edge})
    measured = flips.assign(kind="measured").rename(columns={"measured": "eta_trace", "exact": "exact_eta_trace",
                                                              "low": "bracket_low", "high": "bracket_high"})
    return fig, pd.concat([curve, measured], ignore_index=True)


def factor_by_eps(result: ConvexResult):
    """Nakkiran's factor test(A) / test(B) against the stopping train loss: 2 is its small-loss limit."""
    by_eps = pd.DataFrame([vars(e) for e in result.foil.nakkiran.by_eps])
    fig, (ax,) = figure(width=4.6)
    ax.fill_between(by_eps["stop_loss"], by_eps["ratio_low"], by_eps["ratio_high"], color=PALETTE["ours"],
                    alpha=0.25, label="5% to 95% of draws")
    ax.plot(by_eps["stop_loss"], by_eps["ratio_median"], "o-", color=PALETTE["ours"], label="median")
    reference_line(ax, NAKKIRAN_CLAIMED_RATIO, f"Nakkiran: {number(NAKKIRAN_CLAIMED_RATIO)}")
    ax.set(xscale="log", xlabel="stopping train loss", ylabel="test loss (A) / test loss (B)",
           title="Gradient flow vs large steps then flow")
    ax.legend(fontsize=8)
    return fig, by_eps.rename(columns={"stop_loss": "stopping train loss", "ratio_median": "(A)/(B) median",
                                       "ratio_low": "(A)/(B) 5% of draws", "ratio_high": "(A)/(B) 95% of draws"})
