"""The catapult chapter's figures and tables, functions of its typed sections (a book-scale run or recorded units
alike). A figure builder returns (fig, data), data being a tidy DataFrame of what is plotted; sentences that
describe a figure are Markdown strings."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from repro.fmt import number, percent
from repro.plotting import PALETTE, figure, reference_line

from .eos import EosSection
from .linear import KIND_LABEL, LinearSection
from .nets import FIT_ACCURACY, NetsSection
from .phases import LOGISTIC_LR_CRIT, PAPER_RELU_LR_MAX, SPIKE, THEORY_LR_CRIT, THEORY_LR_MAX
from .result import CatapultResult
from .uv import UvSection

OUTCOME_COLOR = {"lazy": PALETTE["small_lr"], "catapult": PALETTE["large_lr_anneal"], "divergent": PALETTE["test"]}
REF_CRIT = r"Lewkowycz et al. 2020: $2/\lambda_0$ (lazy edge)"
REF_MAX = r"Lewkowycz et al. 2020, uv theory: $4/\lambda_0$"
REF_RELU = r"paper, ReLU nets: $\approx 12/\lambda_0$ (UNVERIFIED)"
REF_LOGISTIC = r"logistic loss: $8/\lambda_0$ ($\ell''(0)=1/4$)"
ETA_LAMBDA0 = r"$\eta\lambda_0$"
LINE_COLORS = [PALETTE[c] for c in ("small_lr", "large_lr_anneal", "small_lr_noise", "ours", "test", "edge",
                                    "train", "population")]


def _outcome_scatter(ax, runs: pd.DataFrame, y: str) -> None:
    for outcome, color in OUTCOME_COLOR.items():
        sel = runs[runs["outcome"] == outcome]
        if len(sel):
            ax.plot(sel["lr_factor"], sel[y], "o", color=color, ms=5, label=outcome)


def _shown(table: pd.DataFrame) -> pd.DataFrame:
    """A table's numbers in the book's format, a value not measured as a dash (pandas would print NaN)."""
    return table.map(lambda v: number(v) if isinstance(v, int | float) and not isinstance(v, bool) else v)


def _rate_label(c: float) -> str:
    return f"{ETA_LAMBDA0} = {number(c)}"


# ------------------------------------------------------------------------------------------------- the uv model


def uv_trajectories(uv: UvSection):
    """The squared-loss uv runs at one width: the loss and eta * lambda_t against the step."""
    fig, axes = figure(ncols=2, width=5.0, height=3.6)
    rows = []
    for run, color in zip(uv.trajectories("mse"), LINE_COLORS, strict=False):
        c = run["lr_factor"]
        loss = np.array(run["loss"], dtype=float)
        loss = np.where(np.isfinite(loss), loss, np.nan)
        axes[0].plot(loss, color=color, label=_rate_label(c) + (" (diverges)" if run["diverged"] else ""))
        axes[1].plot(run["lr_lambda"], color=color)
        rows += [{"eta_lambda0": c, "step": t, "loss": value, "eta_lambda_t": e}
                 for t, (value, e) in enumerate(zip(loss, run["lr_lambda"], strict=True))]
    axes[0].set(yscale="log", ylim=(1e-12, 1e8), xlim=(0, 80), xlabel="step t", ylabel="loss $f_t^2/2$",
                title=f"uv model, n = {number(uv.width)}: the loss")
    axes[1].axhline(2, color=PALETTE["edge"], ls="--", label=r"$\eta\lambda=2$ (stability edge)")
    reference_line(axes[1], THEORY_LR_MAX, r"$\eta\lambda=4$: $\lambda$ grows above it")
    axes[1].set(ylim=(0, 5), xlim=(0, 80), xlabel="step t", ylabel=r"$\eta\lambda_t$", title="the curvature")
    axes[0].legend(fontsize=7, ncol=2)
    axes[1].legend(fontsize=7)
    return fig, pd.DataFrame(rows)


def uv_phase(uv: UvSection):
    """Where training ends at one width and initialisation, and the measured edges against the width."""
    phase, edges = pd.DataFrame(uv.phase_runs("mse")), pd.DataFrame(uv.edges("mse"))
    fig, axes = figure(ncols=2, width=5.0, height=3.6)
    one = phase[(phase["width"] == uv.width) & (phase["init"] == 0)]
    _outcome_scatter(axes[0], one.assign(y=one["lr_lambda_final"].fillna(4.9)), "y")  # diverged: drawn at the top
    axes[0].axhline(2, color=PALETTE["edge"], ls="--", label=r"$\eta\lambda_{final}=2$")
    axes[0].axvline(THEORY_LR_CRIT, color=PALETTE["reference"], ls=":", label=REF_CRIT)
    reference_line(axes[0], THEORY_LR_MAX, REF_MAX, axis="x")
    axes[0].set(xlabel=ETA_LAMBDA0, ylabel=r"$\eta\lambda_{final}$", ylim=(0, 5),
                title=f"uv, n = {number(uv.width)}: where training ends")
    axes[0].legend(fontsize=7)
    axes[1].plot(edges["width"], edges["lr_crit"], "o-", color=PALETTE["large_lr_anneal"],
                 label="measured: first catapult")
    axes[1].plot(edges["width"], edges["lr_max"], "s-", color=PALETTE["test"], label="measured: first divergence")
    axes[1].axhline(THEORY_LR_CRIT, color=PALETTE["reference"], ls=":", label=REF_CRIT)
    reference_line(axes[1], THEORY_LR_MAX, REF_MAX)
    axes[1].set(xscale="log", xlabel="width n", ylabel=f"edge, {ETA_LAMBDA0}", ylim=(0, 5),
                title="measured phase edges against the width")
    axes[1].legend(fontsize=7)
    data = pd.concat([
        one[["width", "lr_factor", "outcome", "lr_lambda_final"]].rename(
            columns={"width": "width_n", "lr_factor": "eta_lambda0", "lr_lambda_final": "eta_lambda_final"}
        ).assign(panel="where training ends"),
        edges.rename(columns={"width": "width_n", "lr_crit": "first_catapult_eta_lambda0",
                              "lr_max": "first_divergence_eta_lambda0"}).assign(panel="edges against the width")])
    return fig, data


def uv_phase_sentence(uv: UvSection) -> str:
    return (f"At width {number(uv.width_of_edges)} the first catapult on the grid is at $\\eta\\lambda_0$ = "
            f"{number(uv.lr_crit)} and the first divergence at {number(uv.lr_max)} (grid step {number(uv.grid_step)}); "
            f"{percent(uv.catapult_below_edge)} of the catapult runs, at every width, end with "
            f"$\\eta\\lambda_{{final}}<2$. The spike's peak loss grows with the width with log-log slope "
            f"{number(uv.spike_slope(3.0), 2)} at $\\eta\\lambda_0=3$ (uv theory: 1; details page).")


def uv_edges_table(uv: UvSection) -> pd.DataFrame:
    return pd.DataFrame(uv.edges("mse")).rename(columns={
        "width": "width n", "lr_crit": "first catapult (η·λ₀)", "lr_max": "first divergence (η·λ₀)"}).set_index(
        "width n").pipe(_shown)


def uv_spikes(uv: UvSection):
    """The spike's height (its peak loss) and duration against the width (uv theory: height ~ n, duration ~ log n);
    medians over initialisations."""
    spikes = pd.DataFrame(uv.spikes)
    fig, axes = figure(ncols=2, width=5.0, height=3.5)
    for (c, grp), color in zip(spikes.groupby("lr_factor"), LINE_COLORS, strict=False):
        axes[0].plot(grp["width"], grp["peak_loss"], "o-", color=color,
                     label=f"{_rate_label(c)}: slope {number(uv.spike_slope(c), 2)}")
        axes[1].plot(grp["width"], grp["duration"], "o-", color=color, label=_rate_label(c))
    mid = spikes[spikes["lr_factor"] == 3.0]
    if len(mid):
        w = mid["width"].to_numpy()
        axes[0].plot(w, mid["peak_loss"].iloc[0] * w / w[0], color=PALETTE["reference"], ls="--",
                     label="uv theory: height ~ n (slope 1)")
    axes[0].set(xscale="log", yscale="log", xlabel="width n", ylabel="peak loss (median)", title="spike height")
    axes[1].set(xscale="log", xlabel="width n", ylabel="steps above the initial loss",
                title="spike duration (~ log n)")
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    return fig, spikes.rename(columns={"width": "width_n", "lr_factor": "eta_lambda0",
                                       "duration": "duration_steps"})


def uv_logistic(uv: UvSection):
    """The logistic loss on degenerate data: where training ends, and the loss of a few runs."""
    phase = pd.DataFrame(uv.phase_runs("logistic"))
    fig, axes = figure(ncols=2, width=5.0, height=3.6)
    one = phase[(phase["width"] == uv.width) & (phase["init"] == 0)]
    _outcome_scatter(axes[0], one.assign(y=one["lr_lambda_final"] / 4), "y")
    axes[0].axhline(2, color=PALETTE["edge"], ls="--", label=r"$\eta\lambda_{final}/4=2$")
    reference_line(axes[0], LOGISTIC_LR_CRIT, REF_LOGISTIC, axis="x")
    axes[0].axvline(THEORY_LR_CRIT, color=PALETTE["reference"], ls=":",
                    label=r"squared loss's edge, $2/\lambda_0$ (does not apply)")
    axes[0].set(xlabel=ETA_LAMBDA0, ylabel=r"$\eta\,\ell''\lambda_{final}=\eta\lambda_{final}/4$",
                title="uv, logistic loss: where training ends")
    axes[0].legend(fontsize=7)
    rows = []
    for run in uv.trajectories("logistic"):
        excess = np.array(run["loss"]) - math.log(2)
        axes[1].plot(excess, label=_rate_label(run["lr_factor"]))
        rows += [{"eta_lambda0": run["lr_factor"], "step": t, "loss_minus_log2": e} for t, e in enumerate(excess)]
    axes[1].set(yscale="symlog", xlabel="step t", ylabel="loss − log 2", title="logistic uv: the loss")
    axes[1].legend(fontsize=7)
    data = pd.concat([one[["lr_factor", "outcome", "lr_lambda_final"]].rename(
        columns={"lr_factor": "eta_lambda0", "lr_lambda_final": "eta_lambda_final"}).assign(panel="where it ends"),
        pd.DataFrame(rows).assign(panel="loss")])
    return fig, data


def uv_logistic_sentence(uv: UvSection) -> str:
    return (f"Logistic loss: the first catapult on the grid is at $\\eta\\lambda_0$ = {number(uv.logistic_lr_crit)} "
            f"(grid step {number(uv.logistic_grid_step)}, width {number(uv.width_of_edges)}); "
            + ("no run diverged up to $\\eta\\lambda_0=64$." if not uv.logistic_diverged_up_to_64 else
               "some run diverged below $\\eta\\lambda_0=64$."))


# ----------------------------------------------------------------------------------------------- real networks


def net_edges_table(nets: NetsSection) -> pd.DataFrame:
    rows = []
    for net in nets.networks.values():
        rows.append({"network": net.label, "parameters": net.parameters, "λ₀ (NTK, J Jᵀ / m)": net.lambda0,
                     "top Hessian eigenvalue at init": net.hessian0, "initial loss (centred output)": net.initial_loss,
                     "first catapult (η·λ₀)": net.lr_crit, "first divergence (η·λ₀)": net.lr_max,
                     "largest stable (η·λ₀)": net.last_stable,
                     f"largest with train accuracy ≥ {percent(FIT_ACCURACY)}": net.last_fit,
                     "best train accuracy": net.best_train_accuracy,
                     "catapults ending with η·λ_final < 2": net.catapult_below_edge})
    return _shown(pd.DataFrame(rows).set_index("network").T)  # one column per network: fits the page


def net_phases(nets: NetsSection):
    """Per network: the spike (largest loss over the initial) and the curvature at the end, against the rate."""
    fig, axes = figure(ncols=2, nrows=3, width=4.2, height=3.3)  # one row per network
    frames = []
    for i, net in enumerate(nets.networks.values()):
        runs = pd.DataFrame(net.runs)
        ax = axes[2 * i]
        _outcome_scatter(ax, runs.assign(y=runs["max_loss_ratio"].clip(upper=1e4)), "y")
        ax.axhline(1, color="k", lw=0.8)
        ax.axvline(THEORY_LR_CRIT, color=PALETTE["reference"], ls=":", label=REF_CRIT)
        reference_line(ax, THEORY_LR_MAX, REF_MAX, axis="x")
        ax.axvline(PAPER_RELU_LR_MAX, color=PALETTE["reference"], ls="-.", lw=1.2, label=REF_RELU)
        ax.set(xscale="log", yscale="log", xlabel=ETA_LAMBDA0, ylabel="max loss / initial loss",
               title=f"{net.label}: the spike")
        ax = axes[2 * i + 1]
        stable = runs[~runs["diverged"]]
        _outcome_scatter(ax, stable, "lr_lambda_final")
        ax.plot(stable["lr_factor"], stable["lr_factor"], color="k", lw=0.6, label=r"no change: $\lambda=\lambda_0$")
        ax.axhline(2, color=PALETTE["edge"], ls="--", label=r"$\eta\lambda=2$ (stability edge)")
        ax.axvline(THEORY_LR_CRIT, color=PALETTE["reference"], ls=":")
        ax.set(xscale="log", yscale="log", xlabel=ETA_LAMBDA0, ylabel=r"$\eta\lambda_{final}$",
               title=f"{net.label}: curvature at the end")
        frames.append(runs[["lr_factor", "outcome", "max_loss_ratio"]].assign(
            network=net.label, eta_lambda_final=runs.get("lr_lambda_final")))
    axes[0].legend(fontsize=7, loc="upper left")
    axes[1].legend(fontsize=7, loc="upper left")
    return fig, pd.concat(frames).rename(columns={"lr_factor": "eta_lambda0"})


def net_trajectories(nets: NetsSection):
    """Loss and eta * lambda_t along training for the three tracked rates of each network, in physical time."""
    fig, axes = figure(ncols=2, nrows=3, width=4.2, height=3.1)  # one row per network
    rows = []
    for i, net in enumerate(nets.networks.values()):
        tracked = [x for x in net.runs if x["lr_lambda_t"]]
        for x, color in zip(tracked, LINE_COLORS, strict=False):
            t = np.array(x["loss_steps"]) * x["lr_factor"]  # physical time eta * steps, in units of 1 / lambda0
            axes[2 * i].plot(t, x["loss"], color=color, label=f"{_rate_label(x['lr_factor'])} ({x['outcome']})")
            lam = np.array(x["lr_lambda_t"])
            axes[2 * i + 1].plot(lam[:, 0] * x["lr_factor"], lam[:, 1], "o-", ms=3, color=color)
            rows += [{"network": net.label, "eta_lambda0": x["lr_factor"], "physical_time": float(p), "loss": v}
                     for p, v in zip(t, x["loss"], strict=True)]
            rows += [{"network": net.label, "eta_lambda0": x["lr_factor"], "physical_time": float(s * x["lr_factor"]),
                      "eta_lambda_t": v} for s, v in lam]
        axes[2 * i].set(xscale="symlog", xlim=(0, None), yscale="log", xlabel=r"physical time $\eta\lambda_0 t$",
                    ylabel="train loss", title=net.label)
        axes[2 * i].legend(fontsize=7)
        axes[2 * i + 1].axhline(2, color=PALETTE["edge"], ls="--", label=r"$\eta\lambda_t=2$")
        axes[2 * i + 1].set(xscale="symlog", xlim=(0, None), yscale="log", xlabel=r"physical time $\eta\lambda_0 t$",
                        ylabel=r"$\eta\lambda_t$ (NTK)", title=f"{net.label}: curvature")
        axes[2 * i + 1].legend(fontsize=7)
    return fig, pd.DataFrame(rows)


def net_accuracy(nets: NetsSection):
    """Test accuracy against the rate at equal physical time, with and without the small-LR phase."""
    fig, axes = figure(ncols=3, width=4.2, height=3.3)
    frames = []
    for ax, net in zip(axes, nets.networks.values(), strict=True):
        runs = pd.DataFrame(net.runs)
        stable = runs[~runs["diverged"]]
        ax.plot(stable["lr_factor"], stable["test_accuracy"], "o-", color=PALETTE["large_lr_anneal"],
                label=f"after physical time {number(nets.physical_time)}" + r"$/\lambda_0$")
        if "test_accuracy_annealed" in stable:
            ax.plot(stable["lr_factor"], stable["test_accuracy_annealed"], "s--", color=PALETTE["small_lr"],
                    label=f"+ {nets.anneal_steps} steps at {_rate_label(nets.anneal_lr_factor)}")
        for f in runs[runs["diverged"]]["lr_factor"]:
            ax.axvline(f, color=OUTCOME_COLOR["divergent"], alpha=0.3, lw=3)
        ax.axvline(THEORY_LR_CRIT, color=PALETTE["reference"], ls=":", label=REF_CRIT)
        ax.set(xscale="log", xlabel=f"{ETA_LAMBDA0} (red bands: diverged)", ylabel="test accuracy", title=net.label)
        ax.legend(fontsize=7)
        cols = [c for c in ("lr_factor", "test_accuracy", "test_accuracy_annealed") if c in stable]
        frames.append(stable[cols].assign(network=net.label))
    return fig, pd.concat(frames).rename(columns={"lr_factor": "eta_lambda0"})


def net_accuracy_table(nets: NetsSection) -> pd.DataFrame:
    rows = []
    for net in nets.networks.values():
        for when, annealed in (("after the main run", False), ("+ small-LR phase", True)):
            for side in ("lazy", "catapult"):
                best = net.best[(side, annealed)]
                rows.append({"network": net.label, "when": when, "side": side, "η·λ₀": best.lr_factor,
                             "test accuracy": best.test_accuracy, "train accuracy": best.train_accuracy})
    return _shown(pd.DataFrame(rows).set_index(["network", "when", "side"]))


# ------------------------------------------------------------------------------------------- edge of stability


def eos_sharpness(eos: EosSection):
    """Sharpness (in units of its value at initialisation) and loss against physical time eta * t, each main run's
    2/eta dashed, the small-eta control in grey: the curves coincide until each meets its own edge."""
    fig, axes = figure(ncols=2, width=5.0, height=3.6)
    rows = []
    runs = [*eos.runs, eos.control]
    colors = [*LINE_COLORS[: len(runs) - 1], PALETTE["reference"]]
    for run, color in zip(runs, colors, strict=True):
        label = ("control, " if run.control else "") + f"$2/\\eta$ = {number(run.edge_factor)} × initial"
        axes[0].plot(run.time(run.sharpness_steps), np.array(run.sharpness) / run.sharpness0, "o-", ms=2.5,
                     color=color, label=label)
        if not run.control:
            axes[0].axhline(run.edge_factor, color=color, ls="--", lw=1)
        axes[1].plot(run.time(run.loss_steps), run.loss, color=color, label=label)
        rows += [{"two_over_eta_x_initial": run.edge_factor, "control": run.control, "step": s,
                  "physical_time": float(run.time([s])[0]), "sharpness": v, "sharpness_x_initial": v / run.sharpness0}
                 for s, v in zip(run.sharpness_steps, run.sharpness, strict=True)]
        rows += [{"two_over_eta_x_initial": run.edge_factor, "control": run.control, "step": s,
                  "physical_time": float(run.time([s])[0]), "train_loss": v}
                 for s, v in zip(run.loss_steps, run.loss, strict=True)]
    axes[0].set(xlabel=r"physical time $\eta t\cdot$(initial sharpness)", ylabel="sharpness / initial sharpness",
                title=r"sharpness; dashed: $2/\eta$ of each run")
    axes[1].set(yscale="log", xlabel=r"physical time $\eta t\cdot$(initial sharpness)", ylabel="train loss",
                title="the loss")
    axes[0].legend(fontsize=7)
    return fig, pd.DataFrame(rows)


def eos_table(eos: EosSection) -> pd.DataFrame:
    rows = [{"run": ("control, " if r.control else "") + f"2/η = {number(r.edge_factor)} × initial",
             "η": r.lr, "steps": r.steps, "initial sharpness / (2/η)": r.initial_ratio,
             "largest sharpness / (2/η)": r.max_sharpness_ratio, "first at 0.9 × 2/η (fraction of training)":
             r.reached_fraction, "median sharpness / (2/η), last third": r.median_ratio_last_third,
             "final sharpness / initial": r.final_sharpness / r.sharpness0, "Lanczos error (measured)": r.lanczos_error,
             "final / initial loss": r.loss_drop, "train accuracy": r.train_accuracy}
            for r in [*eos.runs, eos.control]]
    return _shown(pd.DataFrame(rows).set_index("run").T)  # one column per run: fits the page


def eos_sentence(eos: EosSection) -> str:
    """How the sharpness was measured and how well."""
    return (f"Sharpness by {eos.lanczos_iters} Lanczos iterations on Hessian-vector products (float32), the same "
            f"for every measurement. Its error, measured against 30 iterations in float64 on the same network in "
            f"the last quarter of each run, where the top of the spectrum crowds at the edge: at most "
            f"{percent(eos.lanczos_error, 2)}. {number(eos.n_train)} CIFAR-10 images, width {number(eos.width)} "
            f"(Cohen et al.: 5,000 images, width 200).")


# ----------------------------------------------------------------------------------------- deep linear networks


def linear_phases(linear: LinearSection):
    """Per data kind: the largest rise of the loss, and eta * lambda_H at the end, against the rate."""
    fig, axes = figure(ncols=2, nrows=3, width=4.2, height=3.2)  # one row per kind of data
    frames = []
    for i, (kind, s) in enumerate(linear.kinds.items()):
        runs = pd.DataFrame(s.runs)
        _outcome_scatter(axes[2 * i], runs.assign(y=runs["max_rise"].clip(upper=1e4)), "y")
        axes[2 * i].axhline(SPIKE, color="k", lw=0.8)
        reference_line(axes[2 * i], LOGISTIC_LR_CRIT, REF_LOGISTIC, axis="x")
        axes[2 * i].axvline(s.lr_crit_from_minimum, color=PALETTE["edge"], ls="-.",
                        label=r"ours: $2\lambda_0/\lambda_H$ at the small-rate minimum")
        axes[2 * i].axvline(THEORY_LR_CRIT, color=PALETTE["reference"], ls=":", label=r"squared loss's $2/\lambda_0$")
        axes[2 * i].set(xscale="log", yscale="log", xlabel=ETA_LAMBDA0, ylabel="largest rise of the loss",
                    title=f"{KIND_LABEL[kind]} data")
        stable = runs[~runs["diverged"]]
        _outcome_scatter(axes[2 * i + 1], stable, "lr_hessian_final")
        axes[2 * i + 1].axhline(2, color=PALETTE["edge"], ls="--", label=r"$\eta\lambda_H=2$")
        reference_line(axes[2 * i + 1], LOGISTIC_LR_CRIT, REF_LOGISTIC, axis="x")
        axes[2 * i + 1].set(xscale="log", yscale="log", xlabel=ETA_LAMBDA0, ylabel=r"$\eta\lambda_{H,final}$",
                        title=f"{KIND_LABEL[kind]}: curvature at the end")
        frames.append(runs[["lr_factor", "outcome", "max_rise"]].assign(
            data=kind, eta_lambda_H_final=runs.get("lr_hessian_final")))
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    return fig, pd.concat(frames).rename(columns={"lr_factor": "eta_lambda0"})


def linear_table(linear: LinearSection) -> pd.DataFrame:
    rows = [{"data": KIND_LABEL[kind], "λ₀ (NTK)": s.lambda0, "top Hessian eigenvalue at init": s.hessian0,
             "edge from λ_H at init (η·λ₀)": 2 * s.lambda0 / s.hessian0,
             "edge from λ_H at the small-rate minimum": s.lr_crit_from_minimum,
             "first catapult (η·λ₀)": s.lr_crit, "first divergence (η·λ₀)": s.lr_max,
             "catapults ending with η·λ_H < 2": s.catapult_below_edge, "median λ_H, lazy": s.sharpness_lazy,
             "median λ_H, catapult": s.sharpness_catapult, "test accuracy, lazy (mean)": s.test_accuracy_lazy,
             "test accuracy, catapult (mean)": s.test_accuracy_catapult} for kind, s in linear.kinds.items()]
    return _shown(pd.DataFrame(rows).set_index("data").T)  # one column per kind of data: fits the page


def linear_generalisation(linear: LinearSection):
    """Test accuracy against the rate on the non-separable data, and the loss curves of a few runs."""
    fig, axes = figure(ncols=3, width=4.2, height=3.3)
    kinds = linear.kinds
    runs = pd.DataFrame(kinds["nonseparable"].runs)
    stable = runs[~runs["diverged"]]
    axes[0].plot(stable["lr_factor"], stable["test_accuracy"], "o-", color=PALETTE["large_lr_anneal"],
                 label=f"after {number(linear.steps)} steps")
    reference_line(axes[0], LOGISTIC_LR_CRIT, REF_LOGISTIC, axis="x")
    axes[0].set(xscale="log", xlabel=ETA_LAMBDA0, ylabel="test accuracy", title="non-separable data")
    axes[0].legend(fontsize=7)
    rows = [{"data": "nonseparable", "eta_lambda0": c, "test_accuracy": a}
            for c, a in zip(stable["lr_factor"], stable["test_accuracy"], strict=True)]
    for ax, kind in zip(axes[1:], ("nonseparable", "separable"), strict=True):
        shown = kinds[kind].runs
        for x in shown[:: max(1, len(shown) // 5)]:
            ax.plot(x["loss_steps"], x["loss"], label=f"{_rate_label(x['lr_factor'])} ({x['outcome']})")
            rows += [{"data": kind, "eta_lambda0": x["lr_factor"], "step": s, "train_loss": v}
                     for s, v in zip(x["loss_steps"], x["loss"], strict=True)]
        ax.set(xscale="symlog", xlim=(0, None), yscale="log", xlabel="step", ylabel="train loss",
               title=f"{KIND_LABEL[kind]}: loss")
        ax.legend(fontsize=6)
    return fig, pd.DataFrame(rows)


def linear_separable_sentence(linear: LinearSection) -> str:
    """What the separable data show: no finite minimum, so the curvature decays at every rate."""
    s = linear.kinds["separable"]
    cat = "" if math.isnan(s.sharpness_catapult) else f", {number(s.sharpness_catapult)} in the catapult phase"
    return (f"**Separable data.** Without a finite minimum the Hessian decays at every rate (median $\\lambda_H$ "
            f"{number(s.sharpness_lazy)} in the lazy phase{cat}, from {number(s.hessian0)} at initialisation), "
            "so flatness says little about the rate here, as Huang et al. argue.")



def recorded(result: CatapultResult) -> list[tuple]:
    """(fig, data, name) for the main figures of every section the result holds (recorded units are drawn with the
    same builders as the book-scale run)."""
    out = []
    if result.uv is not None:
        out += [(*uv_trajectories(result.uv), "uv-trajectories"), (*uv_phase(result.uv), "uv-phase")]
    if result.nets is not None:
        out += [(*net_phases(result.nets), "net-phases"), (*net_accuracy(result.nets), "net-accuracy")]
    if result.eos is not None:
        out += [(*eos_sharpness(result.eos), "eos-sharpness")]
    if result.linear is not None:
        out += [(*linear_phases(result.linear), "linear-phases")]
    return out
