# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Which single quantity predicts generalization: $\eta/B$, $\eta\lambda$, or $\eta\lambda_0$?
#
# **The question.** Across learning rate $\eta$, batch size $B$ and weight decay $\lambda$ on one task, does one
# number predict the test accuracy of plain SGD: the SGD noise scale $\eta/B$ (Smith & Le {cite}`smith2018bayesian`;
# the linear scaling rule of Goyal et al. {cite}`goyal2017accurate`), the intrinsic learning rate $\eta\lambda$
# (Li, Lyu, Arora {cite}`li2020reconciling`), or the learning rate against the catapult edge, $\eta\lambda_0$
# against 2 (Lewkowycz et al. {cite}`lewkowycz2020large`)? Each of the other chapters holds one knob fixed and
# turns another; this one turns all of them on one grid and asks which quantity *collapses* it.

# %% tags=["parameters"]
preset = "book"  # which preset the values below came from (set by `python -m repro run --preset`)
seed = 0  # seed of data subset, initialisation and batch order (first of n_seeds)
n_seeds = 2  # runs per setting, with seeds seed, seed + 1, ...
dataset = "mnist"  # training data (paper preset: cifar10)
model = "bn_mlp"  # network: BN MLP, BN convnet, or PreResNet-32
width = 128  # hidden units (bn_mlp) or first-layer channels (bn_convnet)
n_train = 8192  # training examples (a fixed random subset)
n_test = 2000  # held-out test examples
augment = False  # random crop and flip (CIFAR-10 only)
lrs = "0.00625,0.025,0.1,0.4,1.6"  # learning rates of the grid (comma-separated)
batch_sizes = "32,128,512"  # batch sizes of the grid (comma-separated)
weight_decays = "0,0.001,0.01"  # weight decays of the grid (comma-separated)
epochs = "2,6"  # training lengths of the grid, in epochs (comma-separated)
lambda0_batches = 2  # minibatches lambda0 is averaged over
lanczos_iters = 15  # Lanczos iterations per top eigenvalue

# %% tags=["hide-input"]
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import Markdown, display

from repro.experiments import noise_scale, noise_scale_point
from repro.plotting import figure, reference_line
from repro.regime import Regime, at_least
from repro.report import book_style, provenance_table, show_parameters, show_recorded

book_style()
params = noise_scale.Params.from_namespace(globals())
result = noise_scale.run(params)
show_parameters(params, preset)
D, M = result.data, result.metrics
A = D["analysis"]
rows = pd.DataFrame(D["rows"])
CAND = A["candidates"]
EDGE = noise_scale_point.EDGE


def sig(x, n=3):
    """A number to n significant figures, as text."""
    return "nan" if x is None or not np.isfinite(x) else f"{x:.{n}g}"


def strength(c):
    if not np.isfinite(c):
        return "not measurable"
    return "collapses the grid" if c >= 0.75 else ("partly collapses it" if c >= 0.4 else "does not collapse it")


n, learned = A["points"], A["learned"]
# A ranking of predictors needs networks that learned, whose accuracies differ by more than noise.
REGIME = Regime("the grid", "networks that learned, whose test accuracies differ",
                [at_least("runs that learned", learned, max(8, n / 2)),
                 at_least("test-accuracy range among them", A["learned_test_acc_range"], 0.01)])
conclusive = REGIME.ok
names = list(noise_scale.CANDIDATES)
best = max(names, key=lambda k: CAND[k]["collapse"] if np.isfinite(CAND[k]["collapse"]) else -np.inf)
lr_only = CAND["lr"]["collapse"]


def breaks(name):
    """Where a candidate breaks, in one sentence computed from the grid."""
    c = CAND[name]
    parts = []
    if name == "intrinsic_lr":  # the weight-decay-free group is described on its own below
        pos = rows[rows.intrinsic_lr > 0].groupby("intrinsic_lr").test_acc.agg(["count", "min", "max"])
        pos = pos[pos["count"] > 1]
        if len(pos):
            v = (pos["max"] - pos["min"]).idxmax()
            parts.append(f"{pos.loc[v, 'count']} runs share the value {sig(v)} but reach {pos.loc[v, 'min']:.1%} "
                         f"to {pos.loc[v, 'max']:.1%} test accuracy")
    elif "worst_group" in c:
        w = c["worst_group"]
        parts.append(f"{w['runs']} runs share the value {sig(w['value'])} but reach {w['acc_min']:.1%} to "
                     f"{w['acc_max']:.1%} test accuracy")
    if name == "intrinsic_lr":
        zero = rows[rows.weight_decay == 0]
        if len(zero) > 1:
            parts.append(f"without weight decay it is 0 for all {len(zero)} such runs, whose accuracy spans "
                         f"{zero.test_acc.min():.1%} to {zero.test_acc.max():.1%}")
        if "collapse_not_equilibrated" in c:
            parts.append(f"collapse {sig(c.get('collapse_equilibrated', np.nan), 2)} among runs longer than "
                         f"$1/(\\eta\\lambda)$ steps against {sig(c['collapse_not_equilibrated'], 2)} among shorter "
                         "ones (not yet at equilibrium)")
    if name in ("noise_scale", "lr_lambda0") and "spearman_below_edge" in c and "spearman_above_edge" in c:
        parts.append(f"below the edge $\\eta\\lambda_0<2$ Spearman {sig(c['spearman_below_edge'], 2)} and collapse "
                     f"{sig(c['collapse_below_edge'], 2)}, above it {sig(c['spearman_above_edge'], 2)} and "
                     f"{sig(c['collapse_above_edge'], 2)}")
    if name in ("noise_scale", "lr_lambda0") and A["above_edge"] and A["above_edge"] < n:
        parts.append(f"{A['above_edge']} of {n} runs start above the edge $\\eta\\lambda_0>2$ (mean test accuracy "
                     f"{A['acc_above_edge']:.1%} against {A['acc_below_edge']:.1%} below it; "
                     f"{A['diverged_above_edge']} of them diverged)")
    return "; ".join(parts) + "." if parts else "-"


verdict_rows = [{"quantity": CAND[k]["label"], "Spearman rho with test accuracy": sig(CAND[k]["spearman"]),
                 "collapse score": sig(CAND[k]["collapse"]),
                 "verdict": REGIME.verdict(strength(CAND[k]["collapse"]))}
                for k in names]
verdict_rows.append({"quantity": CAND["lr"]["label"] + " (baseline)", "Spearman rho with test accuracy":
                     sig(CAND["lr"]["spearman"]), "collapse score": sig(lr_only), "verdict": "reference"})
VERDICT = pd.DataFrame(verdict_rows).set_index("quantity")

# %% [markdown]
# ## The answer

# %% tags=["hide-input"]
if not conclusive:
    answer = (f"**Inconclusive at this scale.** Only {learned} of {n} runs learned (train accuracy at least "
              f"{noise_scale.LEARNED_TRAIN_ACC:.0%}), or the runs that learned differ by less than one point of test "
              "accuracy, so no ranking of the candidates means anything here.")
else:
    bc = CAND[best]["collapse"]
    margin = (f"better than the learning rate alone ({sig(lr_only, 2)})" if bc > lr_only + 0.05 else
              f"no better than the learning rate alone ({sig(lr_only, 2)}), so the grid's spread is mostly $\\eta$'s")
    head = (f"**{CAND[best]['label']} predicts test accuracy best**" if bc >= 0.4 else
            f"**No single quantity collapses the grid**; {CAND[best]['label']} comes closest")
    answer = (f"{head} on this grid of {n} runs ({learned} learned): "
              f"collapse score {sig(bc, 2)} (1: the quantity fixes the accuracy; 0: no better than the mean), "
              f"{margin}. It {strength(bc)}. The others: "
              + "; ".join(f"{CAND[k]['label']} {sig(CAND[k]['collapse'], 2)}" for k in names if k != best)
              + f". Best setting: $\\eta$ = {A['best']['lr']:g}, $B$ = {A['best']['batch_size']}, "
              f"$\\lambda$ = {A['best']['weight_decay']:g}, {A['best']['epochs']} epochs, "
              f"{A['best']['test_acc']:.1%} test accuracy (mean of {A['best']['seeds']} seeds)."
              + (f" Runs that differ only in their seed differ by {A['seed_sd']:.1%} (standard deviation), "
                 f"{A['seed_share']:.0%} of the grid's variance, so no quantity can score much above "
                 f"{1 - A['seed_share']:.2f}." if np.isfinite(A["seed_sd"]) else ""))
display(Markdown(answer))
display(VERDICT)
display(Markdown("**Where each breaks.**\n" + "\n".join(f"- *{CAND[k]['label']}*: {breaks(k)}" for k in names)))

# %% [markdown]
# The collapse score predicts each run's test accuracy from the runs nearest to it in the logarithm of the
# quantity alone (leave one out; all runs that share its value when there are several) and reports the fraction
# of the grid's variance in test accuracy that this explains. Unlike the rank correlation it rewards a quantity
# with an optimum in the middle, which is what a noise scale is expected to have.

# %% tags=["hide-input"]
def accuracy_figure(rows, analysis):
    """Test accuracy against each candidate: colour = batch size, marker = weight decay, hollow = short run."""
    cands = analysis["candidates"]
    fig, axes = figure(ncols=2, nrows=2, width=4.6, height=3.5)
    bs = sorted(rows.batch_size.unique())
    wds = sorted(rows.weight_decay.unique())
    colours = dict(zip(bs, sns.color_palette("viridis", len(bs)), strict=True))
    markers = dict(zip(wds, "os^Dv", strict=False))
    short = rows.epochs.min()
    for ax, key in zip(axes, [*noise_scale.CANDIDATES, "lr"], strict=True):
        label, metric = {**noise_scale.CANDIDATES, **noise_scale.BASELINES}[key]
        x = rows[metric].to_numpy(float)
        floor = x[x > 0].min() / 3
        for _, r in rows.iterrows():
            xv = r[metric] if r[metric] > 0 else floor
            ax.scatter(xv, r.test_acc, color=colours[r.batch_size], marker=markers[r.weight_decay], s=28,
                       facecolors="none" if r.epochs == short else colours[r.batch_size], linewidths=1.1)
        if key == "lr_lambda0":
            reference_line(ax, EDGE, "edge 2 (Lewkowycz et al. 2020)", axis="x")
            ax.legend(fontsize=7, loc="lower left")
        if key == "intrinsic_lr" and (x == 0).any():
            ax.axvline(floor * 1.7, color="0.6", lw=0.8)
            ax.text(floor, ax.get_ylim()[0], "wd = 0", fontsize=7, rotation=90, va="bottom")
        ax.set(xscale="log", xlabel=label, ylabel="test accuracy",
               title=f"{label}: Spearman {sig(cands[key]['spearman'], 2)}, collapse {sig(cands[key]['collapse'], 2)}")
        ax.title.set_fontsize(9)
    handles = [axes[0].scatter([], [], color=colours[b], label=f"B = {b}") for b in bs]
    handles += [axes[0].scatter([], [], color="0.4", marker=markers[w], label=f"wd = {w:g}") for w in wds]
    handles += [axes[0].scatter([], [], facecolors="none", edgecolors="0.4", label=f"{short} epochs (hollow)")]
    axes[0].legend(handles=handles, fontsize=7, loc="lower right")
    return fig


fig = accuracy_figure(rows, A)

# %% [markdown]
# ## The story
#
# **The task.** A BatchNorm MLP (two hidden layers of `width` units, every hidden layer followed by BatchNorm, so
# its weights are scale-invariant, as in the intrinsic-LR chapter) trained on `n_train` MNIST images by plain SGD,
# momentum off, constant learning rate, coupled weight decay on every parameter; test accuracy on `n_test` held-out
# images after `epochs` passes. The grid is every combination of `lrs`, `batch_sizes`, `weight_decays` and `epochs`,
# each with `n_seeds` seeds (data subset, initialisation and batch order); each run is one stored result of
# `noise_scale_point`, so `python -m repro sweep noise_scale_point -g lr ... -g batch_size ...` on a Ray cluster or
# SLURM fills the same store this page reads. The `paper` preset is the same grid, one seed per setting, on full
# CIFAR-10 with PreResNet-32 (crop and flip).
#
# **The three quantities.**
# - *Noise scale* $\eta/B$: SGD as a discretised stochastic differential equation has a temperature proportional
#   to $\eta/B$ (for $B$ much smaller than the training set), so runs with the same $\eta/B$ should generalize
#   alike at a fixed number of epochs; the linear scaling rule (multiply $\eta$ by $k$ when $B$ is multiplied by
#   $k$) is the same statement.
# - *Intrinsic learning rate* $\eta\lambda$: for scale-invariant weights, the norm and the effective learning rate
#   reach an equilibrium set by $\eta\lambda$ alone after about $1/(\eta\lambda)$ steps; before that, the history
#   (initial norm, $\eta/\lambda$) still matters.
# - *Learning rate against the catapult edge* $\eta\lambda_0$: gradient descent on a quadratic of top curvature
#   $\lambda_0$ is stable for $\eta\lambda_0<2$; above it, the catapult mechanism drives the network to flatter
#   regions (or diverges). Here $\lambda_0$ is the top eigenvalue of the Hessian of the minibatch cross-entropy at
#   initialisation, on minibatches of the run's own size $B$ with BatchNorm on the batch's statistics, as in a
#   training step (mean over `lambda0_batches` batches, `lanczos_iters` Lanczos steps). It therefore depends on
#   $B$, not on $\eta$ or $\lambda$. The catapult chapter's $\lambda_0$ is the NTK's for the squared loss; for the
#   cross-entropy the Hessian's top eigenvalue takes its place.

# %% tags=["hide-input"]
lam = rows.groupby("batch_size").lambda0.mean()
display(pd.DataFrame({"lambda0 (top Hessian eigenvalue at init, mean over seeds)": lam.map(sig),
                      "edge 2 / lambda0 (learning rate)": (EDGE / lam).map(sig)}).rename_axis("batch size"))

# %% [markdown]
# **Regime check.** A ranking of predictors means something only among networks that learned, and only where
# the grid's accuracies differ by more than noise.

# %% tags=["hide-input"]
display(Markdown(
    f"{learned} of {n} runs learned (train accuracy at least {noise_scale.LEARNED_TRAIN_ACC:.0%}, chance 10%); "
    f"{A['diverged']} diverged. Test accuracy over the grid: {A['test_acc_min']:.1%} to {A['test_acc_max']:.1%}; "
    f"among runs that learned it spans {A['learned_test_acc_range']:.1%}. "
    + (f"Runs that differ only in their seed differ by {A['seed_sd']:.1%} (standard deviation over seeds, averaged "
       f"over settings). " if np.isfinite(A["seed_sd"]) else "Each setting ran with one seed, so the seed-to-seed "
       "variation is not measured here. ")
    + ("The comparison above is **conclusive at this scale** in this sense." if conclusive else
       "The comparison is **inconclusive at this scale**.")))

# %% [markdown]
# **Where each breaks.** The subsets below recompute both statistics on part of the grid: below and above the
# edge $\eta\lambda_0=2$; runs longer than $1/(\eta\lambda)$ steps (Li et al.'s time to equilibrium) and shorter
# ones, among runs with weight decay; runs that learned.

# %% tags=["hide-input"]
SUBSETS = {"below_edge": "eta lambda0 < 2", "above_edge": "eta lambda0 > 2", "equilibrated":
           "steps >= 1 / (eta wd)", "not_equilibrated": "steps < 1 / (eta wd)", "learned": "learned"}
sub = []
for k in [*names, "lr"]:
    c = CAND[k]
    sub.append({"quantity": c["label"], "all runs": f"{sig(c['spearman'], 2)} / {sig(c['collapse'], 2)}",
                **{label: (f"{sig(c['spearman_' + s], 2)} / {sig(c['collapse_' + s], 2)}" if "spearman_" + s in c
                           else "< 5 runs") for s, label in SUBSETS.items()}})
display(Markdown("Spearman $\\rho$ / collapse score, on each subset of the grid:"))
display(pd.DataFrame(sub).set_index("quantity"))

# %% [markdown]
# **Equal noise scale, different runs.** Where the grid's learning rates and batch sizes are spaced by the same
# factor (four, by default), a value of $\eta/B$ is shared by several $(\eta, B)$ pairs, each at every weight
# decay and length. If $\eta/B$ alone set the accuracy, each row below would have a small spread.

# %% tags=["hide-input"]
g = rows.groupby("noise_scale").test_acc.agg(["count", "min", "max", "mean"])
g = g[g["count"] > 1]
g["spread"] = g["max"] - g["min"]
display(g.rename(columns={"count": "runs", "min": "lowest test acc", "max": "highest", "mean": "mean"})
        .rename_axis("lr / B").map(sig))

# %% [markdown] tags=["details"]
# :::{admonition} All runs of the grid
# :class: dropdown
# One row per run (to three significant figures): its setting, the three quantities, the run length $t\eta\lambda$
# ($t$ steps, in units of $1/(\eta\lambda)$), train and test accuracy.
# :::

# %% tags=["details", "hide-output"]
cols = ["lr", "batch_size", "weight_decay", "epochs", "seed", "noise_scale", "intrinsic_lr", "lr_lambda0",
        "equilibrium_times", "train_acc", "test_acc"]
with pd.option_context("display.max_rows", None):
    display(rows[cols].rename(columns={"batch_size": "B", "weight_decay": "wd", "noise_scale": "lr / B",
                                       "intrinsic_lr": "lr x wd", "lr_lambda0": "lr x lambda0",
                                       "equilibrium_times": "t x lr x wd", "train_acc": "train acc",
                                       "test_acc": "test acc"}).map(
        lambda v: sig(v) if isinstance(v, float) else v))

# %% [markdown] tags=["details"]
# ## Recorded at a larger scale
# Where this chapter has been run at the `paper` preset (on a GPU or a Ray cluster) with `--record`, the recorded
# grid's statistics and figure are drawn here beside this page's.

# %% tags=["details"]
rec = show_recorded("noise_scale", noise_scale.VERSION, "noise_scale")
if rec:
    display(pd.DataFrame({"this page": M, "recorded": rec.result.metrics}).map(sig))
    rec_fig = accuracy_figure(pd.DataFrame(rec.result.data["rows"]), rec.result.data["analysis"])

# %% [markdown] tags=["details"]
# ## How these numbers were made
#
# Every run on this page is its own stored result (`noise_scale_point/KEY`), made by this repository's code on
# the device named below; the analysis above is computed from them. The `paper` preset (full CIFAR-10,
# PreResNet-32, 15 and 45 epochs) is written for a GPU or a Ray cluster
# (`python -m repro sweep noise_scale_point ... --preset paper --executor ray`) and has not been run for this page.

# %% tags=["details"]
display(provenance_table({"noise_scale (this page)": result}))
dev = rows.groupby(["device", "commit"]).agg(runs=("key", "count"), wall_time_s=("wall_time_s", "sum"))
display(dev.rename(columns={"wall_time_s": "training wall time, summed over runs (s)"}).map(sig))
