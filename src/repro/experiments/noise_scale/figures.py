"""The capstone's figures, tables and computed sentences: functions of a `NoiseScaleResult`, so that recorded
paper-scale units are drawn by the same code as the page's own run."""

from __future__ import annotations

import math

import pandas as pd
import seaborn as sns

from repro.experiments.noise_scale.analysis import BASELINE, CANDIDATES, LABELS, LEARNED_TRAIN_ACC, METRICS
from repro.experiments.noise_scale.point import EDGE
from repro.experiments.noise_scale.result import Grid, NoiseScaleResult
from repro.experiments.noise_scale.verdicts import COLLAPSES, PARTLY_COLLAPSES, called, grid_regime
from repro.fmt import number, percent, pm, signed
from repro.plotting import figure, reference_line

SUBSETS = {"below_edge": "η·λ₀ < 2", "above_edge": "η·λ₀ > 2", "equilibrated": "t ≥ 1/(η·λ)",
           "not_equilibrated": "t < 1/(η·λ)"}


def runs_frame(grid: Grid) -> pd.DataFrame:
    return pd.DataFrame([{**vars(r), "learned": r.learned} for r in grid.runs])


def strength(collapse: float) -> str:
    if not math.isfinite(collapse):
        return "not measurable"
    return ("collapses the grid" if collapse >= COLLAPSES.value else
            "partly collapses it" if collapse >= PARTLY_COLLAPSES.value else "does not collapse it")


def candidate_table(result: NoiseScaleResult) -> pd.DataFrame:
    """Each quantity on the runs its claim is about, beside the same statistics on every run of the grid."""
    grid = result.grid
    rows = []
    for name, c in [*grid.candidates.items(), (BASELINE, grid.baseline)]:
        margin, se = c.vs_baseline
        window = name == "lr_lambda0"
        gain, gain_se = grid.window.gain_over_seeds
        rows.append({
            "quantity": c.label + (" (reference)" if name == BASELINE else ""),
            "runs judged": c.n,
            "collapse score": number(c.collapse),
            "Spearman ρ": "a window, see right" if window else number(c.spearman),
            "window − below (points)": pm(100 * gain, 100 * gain_se) if window else "",
            "collapse over η alone": "" if name == BASELINE else pm(margin, se),
            "all runs: collapse / ρ": f"{number(c.collapse_all)} / {number(c.spearman_all)}"})
    return pd.DataFrame(rows).set_index("quantity")


def answer(result: NoiseScaleResult) -> str:
    """The chapter's answer in a paragraph, computed from the grid."""
    grid = result.grid
    regime = grid_regime(grid)
    if not regime.ok:
        return (f"**Inconclusive at this scale.** {regime.sentence()} No ranking of the candidates means "
                "anything here.")
    best = grid.best_candidate
    margin, se = best.vs_baseline
    beats = called(margin, se)
    head = (f"**{best.label} predicts test accuracy best**" if best.collapse >= PARTLY_COLLAPSES.value else
            f"**No single quantity collapses the grid**; {best.label} comes closest")
    s = grid.seeds
    b = grid.best
    return (
        f"{head} among the {grid.learned} of {grid.points} runs that learned: collapse score "
        f"{number(best.collapse)} (1: the quantity fixes the accuracy; 0: no better than the mean). It "
        f"{strength(best.collapse)}, and "
        + (f"beats the learning rate alone by {pm(margin, se)} (mean and standard error over {s.seeds} seed grids)"
           if beats else f"does not beat the learning rate alone beyond the seeds' spread ({pm(margin, se)} over "
                         f"{s.seeds} seed grids), so the grid's spread is mostly $\\eta$'s")
        + ". The others: " + "; ".join(f"{c.label} {number(c.collapse)}" for c in grid.candidates.values()
                                       if c is not best)
        + f". Best setting: $\\eta$ = {number(b['lr'])}, $B$ = {number(b['batch_size'])}, $\\lambda$ = "
        f"{number(b['weight_decay'])}, {number(b['epochs'])} epochs, {percent(b['test_acc'])} test accuracy (mean "
        f"of {b['seeds']} seeds). Runs that differ only in their seed differ by {percent(s.seed_sd)} (standard "
        f"deviation), the settings' means by {percent(s.between_sd)}.")


def breaks(result: NoiseScaleResult) -> str:
    """Where each candidate breaks, one computed line each (Markdown list)."""
    grid = result.grid
    frame = runs_frame(grid)
    learned = frame[frame.learned]
    lines = []
    for name, c in grid.candidates.items():
        parts = []
        if name == "intrinsic_lr":
            pos = learned[learned.intrinsic_lr > 0].groupby("intrinsic_lr").test_acc.agg(["count", "min", "max"])
            pos = pos[pos["count"] > 1]
            if len(pos):
                v = (pos["max"] - pos["min"]).idxmax()
                parts.append(f"{pos.loc[v, 'count']} learned runs share the value {number(v)} but reach "
                             f"{percent(pos.loc[v, 'min'])} to {percent(pos.loc[v, 'max'])} test accuracy")
            zero = learned[learned.weight_decay == 0]
            if len(zero) > 1:
                parts.append(f"without weight decay it is 0 for all {len(zero)} such learned runs, whose accuracy "
                             f"spans {percent(zero.test_acc.min())} to {percent(zero.test_acc.max())}")
            eq, neq = c.subsets.get("equilibrated"), c.subsets.get("not_equilibrated")
            if eq and neq:
                parts.append(f"collapse {number(eq.collapse)} among runs longer than $1/(\\eta\\lambda)$ steps "
                             f"against {number(neq.collapse)} among shorter ones (not yet at equilibrium)")
        elif c.worst_group is not None:
            w = c.worst_group
            parts.append(f"{w['runs']} learned runs share the value {number(w['value'])} but reach "
                         f"{percent(w['acc_min'])} to {percent(w['acc_max'])} test accuracy")
        if name == "lr_lambda0":
            w = grid.window
            parts.append(f"{w.above_edge} of {grid.points} runs start above the edge $\\eta\\lambda_0>2$; "
                         f"{w.n_inside} of them learned (mean test accuracy {percent(w.acc_inside)} against "
                         f"{percent(w.acc_below)} for the {w.n_below} learned runs below it) and "
                         f"{w.diverged_above_edge} diverged; the learned runs reach up to $\\eta\\lambda_0$ = "
                         f"{number(w.top)}")
        lines.append(f"- *{c.label}*: " + ("; ".join(parts) + "." if parts else "–"))
    return "**Where each breaks.**\n" + "\n".join(lines)


def accuracy_figure(result: NoiseScaleResult):
    """Test accuracy against each candidate and the learning rate: colour = batch size, marker = weight decay,
    hollow = the shorter run, grey cross = a run that did not learn (left out of every statistic)."""
    grid = result.grid
    frame = runs_frame(grid)
    fig, axes = figure(ncols=2, nrows=2, width=4.6, height=3.5)
    bs, wds = sorted(frame.batch_size.unique()), sorted(frame.weight_decay.unique())
    colours = dict(zip(bs, sns.color_palette("viridis", len(bs)), strict=True))
    markers = dict(zip(wds, "os^Dv", strict=False))
    short = frame.epochs.min()
    data = []
    for ax, name in zip(axes, [*CANDIDATES, BASELINE], strict=True):
        metric = METRICS[name]
        x = frame[metric].to_numpy(float)
        floor = x[x > 0].min() / 3
        for _, r in frame.iterrows():
            xv = r[metric] if r[metric] > 0 else floor
            if not r.learned:
                ax.scatter(xv, r.test_acc, color="0.6", marker="x", s=22, linewidths=1)
            else:
                ax.scatter(xv, r.test_acc, color=colours[r.batch_size], marker=markers[r.weight_decay], s=28,
                           facecolors="none" if r.epochs == short and frame.epochs.nunique() > 1
                           else colours[r.batch_size], linewidths=1.1)
            data.append({"panel": LABELS[name], "x": r[metric], "test_acc": r.test_acc, "learned": r.learned,
                         "lr": r.lr, "batch_size": r.batch_size, "weight_decay": r.weight_decay,
                         "epochs": r.epochs, "seed": r.seed})
        c = grid.baseline if name == BASELINE else grid.candidates[name]
        title = f"{c.label}: collapse {number(c.collapse, 2)}"
        if name == "lr_lambda0":
            w = grid.window
            reference_line(ax, EDGE, "edge 2", axis="x")
            lo = frame.lr_lambda0[frame.learned].min()
            ax.hlines([w.acc_below, w.acc_inside], [lo, EDGE], [EDGE, w.top], colors="k", lw=1.5,
                      label="mean of learned runs")
            ax.legend(fontsize=7, loc="lower left")
            title = f"{c.label}: window {signed(100 * w.gain, 2)} points"
        if name == "intrinsic_lr" and (x == 0).any():
            ax.axvline(floor * 1.7, color="0.6", lw=0.8)
            ax.text(floor, ax.get_ylim()[0], "wd = 0", fontsize=7, rotation=90, va="bottom")
        ax.set(xscale="log", xlabel=c.label, ylabel="test accuracy", title=title)
        ax.title.set_fontsize(9)
    handles = [axes[0].scatter([], [], color=colours[b], label=f"B = {b}") for b in bs]
    handles += [axes[0].scatter([], [], color="0.4", marker=markers[w], label=f"wd = {number(w)}") for w in wds]
    if frame.epochs.nunique() > 1:
        handles += [axes[0].scatter([], [], facecolors="none", edgecolors="0.4", label=f"{short} epochs (hollow)")]
    handles += [axes[0].scatter([], [], color="0.6", marker="x", label="did not learn")]
    axes[0].legend(handles=handles, fontsize=7, loc="lower right")
    return fig, pd.DataFrame(data)


def lambda0_table(result: NoiseScaleResult) -> pd.DataFrame:
    frame = runs_frame(result.grid)
    lam = frame.groupby("batch_size").lambda0.mean()
    return pd.DataFrame({"λ₀ (top eigenvalue of the cross-entropy Hessian at init, mean over runs)": lam.map(number),
                         "edge 2 / λ₀ (learning rate)": (EDGE / lam).map(number)}).rename_axis("batch size")


def regime_sentence(result: NoiseScaleResult) -> str:
    grid = result.grid
    s = grid.seeds
    regime = grid_regime(grid)
    return (
        f"{grid.learned} of {grid.points} runs learned (train accuracy at least {percent(LEARNED_TRAIN_ACC.value)}, "
        f"chance 10%, and not diverged); {grid.diverged} diverged. Test accuracy over the grid: "
        f"{percent(grid.test_acc_min)} to {percent(grid.test_acc_max)}; among runs that learned it spans "
        f"{percent(grid.learned_test_acc_range)}. Runs that differ only in their seed ({s.seeds} per setting) differ "
        f"by {percent(s.seed_sd)} (standard deviation, pooled over the {s.learned_settings} settings whose runs all "
        f"learned); those settings' mean accuracies differ by {percent(s.between_sd)}, "
        f"{number(s.signal_over_seed)} times as much. "
        + ("The comparison is **conclusive at this scale** in this sense." if regime.ok else
           f"The comparison is **inconclusive at this scale**: {regime.reason}."))


def subsets_table(result: NoiseScaleResult) -> pd.DataFrame:
    grid = result.grid
    rows = []
    for c in [*grid.candidates.values(), grid.baseline]:
        row = {"quantity": c.label, "learned runs": f"{number(c.spearman)} / {number(c.collapse)}"}
        for key, label in SUBSETS.items():
            s = c.subsets.get(key)
            row[label] = f"{number(s.spearman)} / {number(s.collapse)} ({s.n})" if s else "< 5 runs"
        rows.append(row)
    return pd.DataFrame(rows).set_index("quantity")


def noise_groups_table(result: NoiseScaleResult) -> pd.DataFrame:
    """Learned runs that share a value of lr / B: if the noise scale alone set the accuracy, each row's spread
    would be small (as small as the seeds')."""
    frame = runs_frame(result.grid)
    g = frame[frame.learned].groupby("noise_scale").test_acc.agg(["count", "min", "max", "mean"])
    g = g[g["count"] > 1]
    g["spread"] = g["max"] - g["min"]
    return (g.rename(columns={"count": "learned runs", "min": "lowest test acc", "max": "highest", "mean": "mean"})
            .rename_axis("η / B").map(number))


def runs_table(result: NoiseScaleResult) -> pd.DataFrame:
    frame = runs_frame(result.grid)
    cols = ["lr", "batch_size", "weight_decay", "epochs", "seed", "noise_scale", "intrinsic_lr", "lr_lambda0",
            "equilibrium_times", "train_acc", "test_acc", "learned"]
    return frame[cols].rename(columns={"batch_size": "B", "weight_decay": "wd", "noise_scale": "η/B",
                                       "intrinsic_lr": "η·λ", "lr_lambda0": "η·λ₀", "equilibrium_times": "t·η·λ",
                                       "train_acc": "train acc", "test_acc": "test acc"}).map(
        lambda v: number(v) if isinstance(v, float) else v)


def devices_table(result: NoiseScaleResult) -> pd.DataFrame:
    frame = runs_frame(result.grid)
    dev = frame.groupby(["device", "commit"]).agg(runs=("key", "count"), wall_time_s=("wall_time_s", "sum"))
    return dev.rename(columns={"wall_time_s": "training wall time, summed over runs (s)"}).map(number)


def compare_table(result: NoiseScaleResult, recorded: NoiseScaleResult) -> pd.DataFrame:
    """This page's headline statistics beside a recorded grid's."""
    def headline(r: NoiseScaleResult) -> dict:
        g = r.grid
        out = {"runs (learned)": f"{g.points} ({g.learned})", "seed SD": percent(g.seeds.seed_sd),
               "settings' SD / seed SD": number(g.seeds.signal_over_seed),
               "η·λ₀ window − below (points)": pm(*(100 * v for v in g.window.gain_over_seeds))}
        for c in g.candidates.values():
            out[f"{c.label}: collapse"] = number(c.collapse)
        return out

    return pd.DataFrame({"this page": headline(result), "recorded": headline(recorded)})
