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
# # Sharp minima: small vs large batch, Metric 2.1 and the 1-D interpolation
#
# **Claim** (Keskar et al., ICLR 2017, arXiv 1609.04836): training with a large batch (LB, 10% of the training
# set) converges to *sharp* minimisers of the training loss and generalises worse than training with a small
# batch (SB, 256), which finds *flat* ones.

# %% [markdown]
# Sharpness is measured by their Metric 2.1, the largest relative increase of the loss in a small box around
# the minimiser,
#
# $$\phi_{x,f}(\epsilon, A) = 100\cdot\frac{\max_{y\in\mathcal C_\epsilon} f(x+Ay) - f(x)}{1+f(x)},\qquad
# \mathcal C_\epsilon=\{y: |y_i|\le\epsilon(|(A^+x)_i|+1)\},$$
#
# with $A=I$ (the full space) or a random $n\times p$ matrix, $p=100$, and the maximum taken inexactly by 10
# iterations of L-BFGS-B. Sources: the paper's tables as the course report quotes them (section 2.2);
# the official code `keskarnitish/large-batch-training` (networks, Adam, SB 256 / LB 5000, the parametric plot;
# its sharpness code was never released, issue #9); everything is collected in `refs/papers.md` section 2, where
# the paper's numbers are marked UNVERIFIED against the PDF.

# %% [markdown]
# **What this chapter runs.** F1 (MNIST, 784-[512-BN-ReLU]x5-10) on a fixed MNIST subset, and C1 (the
# shallow AlexNet-like net of the official `network_zoo.py`) on a fixed CIFAR-10 subset, each with Adam from the
# same initialisation for SB and LB, for several seeds, each batch size trained to a minimiser (the large batch
# gets more epochs, since it makes fewer updates per epoch). Keskar et al. compare minimisers, so before any
# verdict a regime check measures whether every network is one: train accuracy and the full-batch gradient norm
# of the loss on which sharpness is measured. Then Metric 2.1 (full space and a random subspace, both
# $\epsilon$), the top Hessian eigenvalue, the 1-D interpolation between the two minimisers, the course
# report's SGD/Adagrad extension, and two questions the paper leaves open: is the metric invariant to a
# reparametrisation that leaves the function unchanged (Dinh et al. 2017), and does a learning-rate fix for the
# large batch (Hoffer et al. 2017) close the gap, and do Hoffer et al.'s distance from initialisation and "train
# longer" explain it? C2 (VGG-like), C3 and C4 (CIFAR-100) run with
# `--preset paper` or `-p networks F1,C1,C2,C3,C4`. F2 needs TIMIT, which is not freely distributable, so it is
# not part of this book.
#
# **BatchNorm.** Training uses batch statistics. Accuracies, Metric 2.1 and the Hessian use eval mode: BN's
# running statistics are frozen (they are buffers, not parameters, so the box does not perturb them; BN's scale
# and shift are parameters and are perturbed) and dropout is off, so $f$ is a deterministic function of the
# parameters on a fixed set of training examples. The official Keras networks used per-batch statistics at test
# time too (`mode=2`); that is a difference of this reproduction.

# %% tags=["parameters"]
preset = "book"  # which preset the values below came from (set by `python -m repro run --preset`)
seed = 0  # seed of the first run; run i uses seed + i (initialisation and batch order)
seeds = 2  # independent runs per batch size (the paper: 5)
device = "auto"  # where the networks train: auto (CUDA if present), cpu or cuda
networks = "F1,C1"  # comma-separated networks among F1, C1, C2 (CIFAR-10), C3, C4 (CIFAR-100)
lr = 0.001  # Adam learning rate, both batch sizes (Keras default, as the official script)
batch_size = 256  # small batch (SB) for F1 (the paper: 256)
large_batch_fraction = 0.1  # large batch (LB) as a fraction of the training set (the paper: 0.1)
epochs = 8  # training epochs of F1's small batch
large_batch_epochs = 25  # training epochs of F1's large batch (it makes fewer updates per epoch)
f1_width = 512  # hidden width of F1's five layers (the paper: 512)
n_train = 12000  # MNIST training images for F1 (a fixed random subset; full: 60000)
n_test = 10000  # MNIST test images
cifar_train = 1500  # CIFAR training images for C1-C4 (a fixed random subset; full: 50000)
cifar_test = 1000  # CIFAR test images (full: 10000)
cifar_batch_size = 32  # small batch for C1-C4 (the paper: 256)
cifar_epochs = 20  # training epochs of C1-C4's small batch
cifar_large_batch_epochs = 30  # training epochs of C1-C4's large batch
sharpness_eps = 0.001  # box size eps of Metric 2.1 (the paper: 1e-3 and 5e-4)
sharpness_eps_small = 0.0005  # the second, smaller box size eps
sharpness_iters = 10  # L-BFGS-B iterations of the maximisation (the paper: 10)
subspace_dim = 100  # dimension p of the random subspace A (the paper: 100)
sharpness_examples = 500  # fixed F1 training examples on which f is measured
cifar_sharpness_examples = 100  # fixed CIFAR training examples on which f is measured
lanczos_iters = 15  # Lanczos iterations for the top Hessian eigenvalue
interp_points = 25  # alphas in [-1, 2] of the 1-D interpolation (the paper: 25)
interp_examples = 3000  # training examples for the train curve and BN statistics along it
extension_seeds = 0  # runs per batch size with SGD and with Adagrad on F1 (0: skip)
lr_sgd = 0.05  # SGD learning rate (no momentum) of the extension
lr_adagrad = 0.01  # Adagrad learning rate of the extension
remedy_scaling = "sqrt"  # Hoffer et al.'s LB learning rate: lr * (LB / SB) ** 0.5, or linear
dinh_alpha = 10.0  # rescaling factor of the reparametrisation check (and its inverse)
hoffer_train = 3000  # MNIST training images of the train-longer runs (Hoffer et al.)
hoffer_batch_size = 32  # small batch of the train-longer runs (large: large_batch_fraction x hoffer_train)
hoffer_epochs = 12  # epochs of SB and plain LB; the long LB run makes as many updates as SB

# %% tags=["hide-input"]
import numpy as np
import pandas as pd
import scipy.stats
from IPython.display import Markdown, display
from matplotlib.ticker import FuncFormatter, LogFormatter

from repro.experiments import sharp_minima
from repro.plotting import LABELS, PALETTE, figure, reference_line
from repro.report import regime_table
from repro.report import book_style, number, provenance_table, show_parameters, show_recorded

book_style()

params = sharp_minima.Params.from_namespace(globals())
result = sharp_minima.run(params)
show_parameters(params, preset)

# %% tags=["hide-input"]
# Tables and figures as functions of a stored result, so that a recorded paper-scale result is drawn by the
# same code as this page's own run.
REGIMES = ("small_batch", "large_batch")
SPACES = (("full", "large_eps"), ("full", "small_eps"), ("subspace", "large_eps"), ("subspace", "small_eps"))


def nets_of(r):
    return [n for n in sharp_minima.NETWORKS if n in r.data]


def pm(mean, std):
    return f"{mean:.2f} ± {std:.2f}"


def accuracy_table(r):
    rows = []
    for net in nets_of(r):
        m, sizes = r.metrics[net], r.data[net]["sizes"]
        paper = sharp_minima.PAPER_ACCURACY[net]
        for j, regime in enumerate(REGIMES):
            bs = sizes["small"] if regime == "small_batch" else sizes["large"]
            epochs = sizes["epochs"] if regime == "small_batch" else sizes["large_epochs"]
            rows.append({"network": net, "batch": f"{LABELS[regime]} ({bs})",
                         "train acc % (ours)": pm(m[f"{regime}_train_acc"], m[f"{regime}_train_acc_std"]),
                         "test acc % (ours)": pm(m[f"{regime}_test_acc"], m[f"{regime}_test_acc_std"]),
                         "train acc % (paper)": pm(*paper[j]), "test acc % (paper)": pm(*paper[2 + j]),
                         "training images": sizes["n_train"], "epochs": epochs,
                         "updates": epochs * (sizes["n_train"] // bs)})
    return pd.DataFrame(rows).set_index(["network", "batch"])


def sharpness_table(r):
    eps = {"large_eps": r.config["sharpness_eps"], "small_eps": r.config["sharpness_eps_small"]}
    rows = []
    for net in nets_of(r):
        m = r.metrics[net]
        paper = sharp_minima.PAPER_SHARPNESS[net]
        for j, regime in enumerate(REGIMES):
            row = {"network": net, "batch": LABELS[regime]}
            for space, e in SPACES:
                row[f"{space}, eps {eps[e]:g}"] = pm(m[f"{regime}_{space}_{e}"], m[f"{regime}_{space}_{e}_std"])
            row["top Hessian eigenvalue"] = pm(m[f"{regime}_hessian_top"], m[f"{regime}_hessian_top_std"])
            row["paper, full, eps 1e-3"] = pm(*paper[j])
            row["paper, full, eps 5e-4"] = pm(*paper[2 + j])
            rows.append(row)
    return pd.DataFrame(rows).set_index(["network", "batch"])


def ratio_table(r):
    """LB / SB of each measure, as the geometric mean over seeds of the paired ratios."""
    rows = []
    for net in nets_of(r):
        runs = r.data[net]["runs"]
        sb = [x for x in runs if x["regime"] == "small_batch"]
        lb = [x for x in runs if x["regime"] == "large_batch"]
        row = {"network": net}
        for space, e in SPACES:
            key = f"{space}_{e}"
            ratios = [b[key]["value"] / max(a[key]["value"], 1e-12) for a, b in zip(sb, lb, strict=True)]
            row[f"{space} {e.replace('_', ' ')}"] = float(np.exp(np.mean(np.log(np.maximum(ratios, 1e-12)))))
        row["Hessian top"] = r.metrics[net]["hessian_ratio"]
        row["paper, full, eps 1e-3"] = sharp_minima.PAPER_SHARPNESS[net][1][0] / sharp_minima.PAPER_SHARPNESS[net][0][0]
        row["test acc SB - LB (points)"] = r.metrics[net]["test_gap"][0]
        row["paper: test acc SB - LB"] = sharp_minima.PAPER_ACCURACY[net][2][0] - sharp_minima.PAPER_ACCURACY[net][3][0]
        rows.append(row)
    return pd.DataFrame(rows).set_index("network")


def cost_table(r):
    rows = []
    for net in nets_of(r):
        runs, sizes = r.data[net]["runs"], r.data[net]["sizes"]
        for space, e in SPACES:
            s = [x[f"{space}_{e}"] for x in runs]
            rows.append({"network": net, "maximisation": f"{space}, {e.replace('_', ' ')}",
                         "dimension": s[0]["dim"], "L-BFGS-B iterations": np.mean([x["iterations"] for x in s]),
                         "loss+gradient evaluations": np.mean([x["evaluations"] for x in s]),
                         "seconds": np.mean([x["seconds"] for x in s]),
                         "in SB training epochs (wall)": np.mean([x["seconds"] / y["epoch_seconds"]
                                                                   for x, y in zip(s, runs, strict=True)]),
                         "in epochs (examples through the net)": np.mean([x["evaluations"] for x in s])
                         * sizes["sharpness_examples"] / sizes["n_train"]})
        rows.append({"network": net, "maximisation": "Lanczos, Hessian top eigenvalue",
                     "dimension": r.data[net]["n_params"], "seconds": np.mean([x["hessian_seconds"] for x in runs]),
                     "in SB training epochs (wall)": np.mean([x["hessian_seconds"] / x["epoch_seconds"]
                                                              for x in runs])})
    return pd.DataFrame(rows).set_index(["network", "maximisation"])


def agreement_figure(r):
    """Per run: Metric 2.1 (full space, large eps) against the top Hessian eigenvalue."""
    fig, axes = figure(ncols=len(nets_of(r)), width=4.2)
    out = {}
    for ax, net in zip(axes, nets_of(r), strict=True):
        runs = r.data[net]["runs"]
        for regime in REGIMES:
            x = [q["hessian_top"] for q in runs if q["regime"] == regime]
            y = [q["full_large_eps"]["value"] for q in runs if q["regime"] == regime]
            ax.scatter(x, y, color=PALETTE[regime], label=LABELS[regime], s=40)
        ax.set(xscale="log", yscale="log", xlabel="top Hessian eigenvalue", ylabel="Metric 2.1 (full, eps large)",
               title=net)
        ax.tick_params(which="minor", labelbottom=False, labelleft=False)
        ax.legend(fontsize=8)
        h = [q["hessian_top"] for q in runs]
        s = [q["full_large_eps"]["value"] for q in runs]
        out[net] = scipy.stats.spearmanr(h, s).statistic if len(runs) > 2 else np.nan
    return out


def interpolation_figure(r):
    nets = nets_of(r)
    fig, axes = figure(ncols=len(nets), width=5.0, height=3.8)
    for ax, net in zip(axes, nets, strict=True):
        d = pd.DataFrame(r.data[net]["interpolation"])
        ax.plot(d["alpha"], d["train_loss"], "-", color=PALETTE["train"], label="train loss")
        ax.plot(d["alpha"], d["test_loss"], "--", color=PALETTE["test"], label="test loss")
        ax.set(yscale="log", xlabel=r"$\alpha$ in $\alpha\,\theta_{LB}+(1-\alpha)\,\theta_{SB}$",
               ylabel="cross-entropy", title=f"{net}: SB at α = 0, LB at α = 1")
        # plain tick labels: on a narrow log range matplotlib writes "1.3 x 10^0", which reads like 1.3e6
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False))
        for a, regime in ((0, "small_batch"), (1, "large_batch")):
            ax.axvline(a, color=PALETTE[regime], lw=1, alpha=0.6)
        acc = ax.twinx()
        acc.plot(d["alpha"], d["train_acc"], "-o", ms=3, color=PALETTE["train"], alpha=0.6, label="train acc")
        acc.plot(d["alpha"], d["test_acc"], "--o", ms=3, color=PALETTE["test"], alpha=0.6, label="test acc")
        paper = sharp_minima.PAPER_ACCURACY[net]
        reference_line(acc, paper[2][0], "paper's SB test acc (Keskar et al. 2017, UNVERIFIED)")
        acc.set(ylabel="accuracy (%)", ylim=(0, 100))
        acc.grid(False)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = acc.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2)


def curvature_along_line(r, net):
    """Second difference of the train loss at the two ends: which minimiser sits in the more curved valley."""
    d = pd.DataFrame(r.data[net]["interpolation"])
    a, loss = d["alpha"].to_numpy(), np.log(d["train_loss"].to_numpy())
    h = a[1] - a[0]
    out = {}
    for end, name in ((0.0, "small_batch"), (1.0, "large_batch")):
        i = int(np.argmin(np.abs(a - end)))
        if 0 < i < len(a) - 1:
            out[name] = (loss[i + 1] - 2 * loss[i] + loss[i - 1]) / h**2
    return out


def optimizers_table(r):
    if "optimizers" not in r.data:
        return None
    runs = pd.DataFrame(r.data["optimizers"]["runs"])
    f1 = r.metrics["F1"]
    adam = {"optimizer": "adam", "lr": r.config["lr"],
            **{f"{reg} test acc % (ours)": f1[f"{reg}_test_acc"] for reg in REGIMES},
            **{f"{reg} subspace sharpness": f1[f"{reg}_subspace_large_eps"] for reg in REGIMES}}
    rows = [adam]
    for opt, g in runs.groupby("optimizer", sort=False):
        row = {"optimizer": opt, "lr": g["lr"].iloc[0]}
        for reg in REGIMES:
            row[f"{reg} test acc % (ours)"] = g[g.regime == reg]["test_acc"].mean()
            row[f"{reg} subspace sharpness"] = g[g.regime == reg]["subspace_sharpness"].mean()
        rows.append(row)
    df = pd.DataFrame(rows).set_index("optimizer")
    df["report: SB test acc %"] = [sharp_minima.REPORT_OPTIMIZERS[o][0] for o in df.index]
    df["report: LB test acc %"] = [sharp_minima.REPORT_OPTIMIZERS[o][1] for o in df.index]
    return df


def remedy_table(r):
    if "remedy" not in r.data:
        return None
    f1, rem = r.metrics["F1"], pd.DataFrame(r.data["remedy"]["runs"])
    lb_runs = [x for x in r.data["F1"]["runs"] if x["regime"] == "large_batch"]
    rows = [{"run": f"{LABELS[reg]}, lr {r.config['lr']:g}",
             "test acc %": pm(f1[f"{reg}_test_acc"], f1[f"{reg}_test_acc_std"]),
             "train acc %": pm(f1[f"{reg}_train_acc"], f1[f"{reg}_train_acc_std"]),
             "subspace sharpness": f1[f"{reg}_subspace_large_eps"], "top Hessian eigenvalue": f1[f"{reg}_hessian_top"]}
            for reg in REGIMES]
    rows.append({"run": f"large batch, lr {rem['lr'].iloc[0]:.3g} ({r.config['remedy_scaling']} scaling)",
                 "test acc %": pm(rem["test_acc"].mean(), rem["test_acc"].std(ddof=1) if len(rem) > 1 else 0.0),
                 "train acc %": pm(rem["train_acc"].mean(), rem["train_acc"].std(ddof=1) if len(rem) > 1 else 0.0),
                 "subspace sharpness": rem["subspace_sharpness"].mean(),
                 "top Hessian eigenvalue": rem["hessian_top"].mean()})
    gap = f1["small_batch_test_acc"] - f1["large_batch_test_acc"]
    closed = (rem["test_acc"].mean() - np.mean([x["test_acc"] for x in lb_runs])) / gap if gap > 0 else np.nan
    return pd.DataFrame(rows).set_index("run"), closed


def rescaling_table(r):
    if "rescaling" not in r.data.get("F1", {}):
        return None
    df = pd.DataFrame(r.data["F1"]["rescaling"]).rename(columns={
        "alpha": "alpha (last BN x alpha, output layer x 1/alpha)", "test_acc": "test acc %",
        "base_loss": "f(x)", "sharpness": "Metric 2.1 (full, eps large)", "hessian_top": "top Hessian eigenvalue",
        "param_norm": "|theta|"})
    return df.set_index(df.columns[0])


def variant_name(r, key):
    eps = {"large_eps": r.config["sharpness_eps"], "small_eps": r.config["sharpness_eps_small"]}
    space, e = key.split("_", 1)
    return f"{'full space' if space == 'full' else 'random subspace'}, eps {eps[e]:g}"


def variant_ratios(r, net):
    """LB / SB of each of the four Metric 2.1 variants: geometric mean over seeds of the paired ratios."""
    runs = r.data[net]["runs"]
    sb = [x for x in runs if x["regime"] == "small_batch"]
    lb = [x for x in runs if x["regime"] == "large_batch"]
    return {f"{space}_{e}": float(np.exp(np.mean([np.log(max(b[f"{space}_{e}"]["value"], 1e-12)
                                                        / max(a[f"{space}_{e}"]["value"], 1e-12))
                                                 for a, b in zip(sb, lb, strict=True)])))
            for space, e in SPACES}


def regimes_of(r):
    return {net: sharp_minima.minimiser_regime(net, r.metrics[net]) for net in nets_of(r)}


def first_order_table(r):
    """Metric 2.1 in the full space beside its first-order part (the linear term's maximum over the box) and the
    gradient norm, per network and batch size (means over seeds)."""
    eps = {"large_eps": r.config["sharpness_eps"], "small_eps": r.config["sharpness_eps_small"]}
    rows = []
    for net in nets_of(r):
        m = r.metrics[net]
        for regime in REGIMES:
            row = {"network": net, "batch": LABELS[regime], "train loss f": m[f"{regime}_train_loss"],
                   "gradient norm": m[f"{regime}_grad_norm"], "at initialisation": m[f"{regime}_grad_norm_init"]}
            for e in ("large_eps", "small_eps"):
                row[f"Metric 2.1, eps {eps[e]:g}"] = m[f"{regime}_full_{e}"]
                row[f"first-order part, eps {eps[e]:g}"] = m[f"{regime}_first_order_{e}"]
            rows.append(row)
    return pd.DataFrame(rows).set_index(["network", "batch"]).map(number)


def hoffer_data(r):
    return [r.data[k] for k in sorted(r.data) if k.startswith("hoffer/")]


HOFFER_RUNS = {"small_batch": "small batch", "large_batch": "large batch, same epochs",
               "large_batch_long": "large batch, SB's updates"}


def hoffer_table(r):
    data = hoffer_data(r)
    rows = []
    for reg, name in HOFFER_RUNS.items():
        runs = sharp_minima.hoffer_runs(data, reg)
        def sd(k, runs=runs):
            return float(np.std([x[k] for x in runs], ddof=1)) if len(runs) > 1 else 0.0
        rows.append({"run": f"{name} ({runs[0]['batch_size']})", "updates": runs[0]["steps"],
                     "train acc %": pm(np.mean([x["train_acc"] for x in runs]), sd("train_acc")),
                     "test acc %": pm(np.mean([x["test_acc"] for x in runs]), sd("test_acc")),
                     "gradient norm / at init": number(max(x["grad_norm"] / x["grad_norm_init"] for x in runs)),
                     "‖w − w0‖": number(float(np.mean([x["distance"][-1]["distance"] for x in runs]))),
                     "Metric 2.1 (full, eps large)": number(float(np.mean([x["full_large_eps"] for x in runs]))),
                     "its first-order part": number(float(np.mean([x["first_order_large_eps"] for x in runs])))})
    return pd.DataFrame(rows).set_index("run")


def distance_figure(r):
    """Hoffer et al.'s Figure 2: ||w_t - w0|| against the number of updates t (log axis), for each seed."""
    fig, axes = figure(ncols=1, width=5.4, height=3.6)
    ax = axes[0]
    for j, d in enumerate(hoffer_data(r)):
        for reg, style in (("small_batch", "-"), ("large_batch_long", "--")):
            run = next(x for x in d["runs"] if x["regime"] == reg)
            dist = pd.DataFrame(run["distance"])
            ax.plot(dist["step"], dist["distance"], style, color=PALETTE[reg.replace("_long", "")],
                    label=HOFFER_RUNS[reg] if j == 0 else None)
        plain = next(x for x in d["runs"] if x["regime"] == "large_batch")
        ax.plot(plain["steps"], plain["distance"][-1]["distance"], "o", color=PALETTE["large_batch"],
                label="large batch, same epochs: its end" if j == 0 else None)
    ax.set(xscale="log", xlabel="updates t", ylabel="‖w_t − w_0‖", title="F1: distance from initialisation")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.legend(fontsize=8)


# %% [markdown]
# ## 1. Small vs large batch: accuracy (the paper's Table 2)
# Mean ± standard deviation over `seeds` runs; the SB and LB runs of one seed start from the same
# initialisation. "Paper" columns: {cite}`keskar2017large` Table 2 as quoted in the course report §2.2.3 (UNVERIFIED
# against the PDF). The paper trained until its own stopping rule (not in the released code; the official Keras
# script uses 20 epochs); here each batch size gets its own number of epochs (`epochs`, `large_batch_epochs`),
# chosen so that both reach a minimiser, which the regime check below measures.

# %% tags=["hide-input"]
display(accuracy_table(result))
display(Markdown(f"Paper values: {sharp_minima.PAPER_SOURCE}."))

# %% [markdown] tags=["details"]
# **Regime check: are these minimisers?** Keskar et al.'s networks reach 99.1-99.99% train accuracy. Each network
# here must reach train accuracy ≥ 99% in every run, and the full-batch gradient norm of $f$ (the mean
# cross-entropy on the examples Metric 2.1 is measured on, at the measured point) must have fallen to at most a
# tenth of its value at the same run's initialisation. A network that fails either makes its verdict
# "inconclusive at this scale".

# %% tags=["details"]
regimes = regimes_of(result)
display(regime_table(list(regimes.values())))

# %% [markdown]
# ## 2. Sharpness: Metric 2.1 and the top Hessian eigenvalue (the paper's Tables 3 and 4)
# Metric 2.1 is maximised by SciPy's L-BFGS-B (`sharpness_iters` iterations, starting at $y=0$) on the mean
# cross-entropy of a fixed subset of the training set (`sharpness_examples`; the paper used the training loss),
# in the full space ($A=I$, box $\epsilon(|x_i|+1)$) and in one random subspace per network ($A$ with i.i.d.
# $N(0,1)$ entries, $p$ = `subspace_dim`, bounds through $A^+x$). The top Hessian eigenvalue is Lanczos on
# Hessian-vector products (`repro.metrics.hessian`) on the same loss. The paper's full-space values are shown
# beside ours; its subspace table is not quoted in our sources, so only its full-space numbers appear.
# Compare ratios rather than absolute values: the full-space box moves every one of the network's parameters by
# up to $\epsilon(|x_i|+1)$, and its value depends on the loss it is measured on (our eval-mode BN, a subset
# of the training set, our training length), none of which the paper's tables pin down.

# %% tags=["hide-input"]
display(sharpness_table(result))
ratios = ratio_table(result)
display(Markdown("**LB / SB ratios** (geometric mean over seeds of the paired ratios), and the test-accuracy gap:"))
display(ratios)

# %% tags=["hide-input"]
rho = agreement_figure(result)
display(Markdown("Spearman rank correlation between Metric 2.1 and the top Hessian eigenvalue over all runs: "
                 + ", ".join(f"{k}: {v:.2f}" for k, v in rho.items()) + "."))

# %% [markdown] tags=["details"]
# **Cost of the metric.** The full-space maximisation works in as many dimensions as the network has
# parameters; its cost is reported in wall-clock time as a multiple of one small-batch training epoch on the
# same machine, and in examples pushed through the network (evaluations x measured examples / training images).

# %% tags=["details"]
costs = cost_table(result)
display(costs)
in_epochs = costs["in SB training epochs (wall)"]
display(Markdown(" ".join(
    f"{net}: one full-space maximisation costs {in_epochs[(net, 'full, large eps')]:.2g} small-batch epochs of "
    f"wall time, one Lanczos estimate {in_epochs[(net, 'Lanczos, Hessian top eigenvalue')]:.2g}."
    for net in nets_of(result))))

# %% [markdown] tags=["details"]
# **Why is absolute Metric 2.1 so much larger than the paper's?** In the full space the box lets each of the
# network's parameters move by up to $\epsilon(|x_i|+1)$. One candidate: away from a minimum the loss's linear
# term alone reaches $\epsilon\sum_i |g_i|(|x_i|+1)$ over the box, summed over all parameters; the table shows that
# first-order part (scaled as the metric is, $100\,\cdot/(1+f)$) beside the measured metric and the gradient
# norm. The train-longer runs of section 6 measure the same large-batch trajectory twice, once after
# `hoffer_epochs` epochs and once at a minimiser, which says whether the metric shrinks there.

# %% tags=["details"]
display(first_order_table(result))
share = {(net, LABELS[reg]): result.metrics[net][f"{reg}_first_order_large_eps"]
         / max(result.metrics[net][f"{reg}_full_large_eps"], 1e-12) for net in nets_of(result) for reg in REGIMES}
top = max(share, key=share.get)
display(Markdown(
    f"At eps {result.config['sharpness_eps']:g} the first-order part is at most {number(100 * share[top])}% of the "
    f"measured metric ({top[0]}, {top[1]})"
    + (": the linear term does not explain the metric's size here; the loss rises far beyond its linear "
       "term inside a box that moves every parameter at once." if share[top] < 0.5 else
       ": the linear term accounts for much of the metric's size.")))

# %% [markdown]
# ## 3. The 1-D interpolation (the paper's Figure 3, drawn at the top of this page)
# $\theta(\alpha)=\alpha\,\theta_{LB}+(1-\alpha)\,\theta_{SB}$ for `interp_points` values of $\alpha\in[-1,2]$,
# between the seed-`seed` minimisers, over all parameters (BN's scale and shift included). At every $\alpha$ BN's
# running statistics are re-estimated on `interp_examples` training images (BN in train mode with a cumulative
# average over batches, dropout off); then train (on those images) and test losses and accuracies are measured
# in eval mode. The official PyTorch script interpolated the running statistics too and evaluated with the model
# still in train mode (dropout on); we do neither. Because of the re-estimated statistics, the values at
# $\alpha$ = 0 and 1 differ slightly from section 1's. Sagun et al. 2017 caution that SB and LB solutions may be
# connected through flat regions that a straight line does not see.

# %% tags=["summary-figure"]
interpolation_figure(result)
curv = {net: curvature_along_line(result, net) for net in nets_of(result)}

# %% [markdown] tags=["details"]
# ## 4. Other optimizers on F1 (the course report's extension)
# The course report (§3.2) re-ran F1 with SGD and Adagrad and found the same direction of the gap for SGD
# (its Adagrad LB run did not finish). Here: `extension_seeds` runs per batch size, the same epochs and data as
# the Adam runs, constant learning rates `lr_sgd` and `lr_adagrad` (the report gives none); sharpness in the
# random subspace only (the full-space maximisation is the expensive part; see the cost table).

# %% tags=["details"]
opt_table = optimizers_table(result)
if opt_table is not None:
    display(opt_table)
    display(Markdown(f"Report values: {sharp_minima.REPORT_SOURCE} (one run each; NaN: not reported)."))
else:
    display(Markdown("Not run on this page (`extension_seeds` is 0, to spend the time on minimisers); "
                     "`--preset paper` or `-p extension_seeds 1` runs it."))

# %% [markdown] tags=["details"]
# ## 5. Beyond the paper
# **(a) Reparametrisation (Dinh et al. 2017).** F1 ends with BN → ReLU → Linear. Multiplying the last BN's
# scale and shift by $\alpha>0$ and dividing the output layer's weights by $\alpha$ leaves the function exactly
# unchanged (ReLU is positively homogeneous), so the test accuracy and loss cannot move; Metric 2.1 and the
# Hessian are measured on the SB minimiser of seed `seed` for $\alpha$ = 1/`dinh_alpha`, 1 and `dinh_alpha`.

# %% tags=["details"]
resc = rescaling_table(result)
if resc is not None:
    display(resc)

# %% [markdown] tags=["details"]
# **(b) A remedy (Hoffer et al. 2017).** Hoffer et al. attribute the gap to the large batch making fewer
# updates and propose (i) scaling its learning rate by $\sqrt{LB/SB}$, (ii) ghost batch norm and (iii) training
# for the same number of updates. We try (i) (`remedy_scaling`) on F1 with the same seeds and epochs, and report
# the fraction of the SB-LB test gap it closes.

# %% tags=["details"]
rem = remedy_table(result)
if rem is not None:
    display(rem[0])
    display(Markdown("There is no SB-LB test gap to close at this scale." if not np.isfinite(rem[1]) else
                      f"Fraction of the SB-LB test-accuracy gap closed: {rem[1]:.0%}." if rem[1] >= 0 else
                      f"The scaled learning rate does not close the gap: it widens it by {-rem[1]:.1f} times "
                      "its size."))

# %% [markdown]
# ## 6. Train longer (Hoffer et al. 2017)
# Hoffer et al. observe that the weights' distance from initialisation grows about logarithmically with the
# number of updates, $\|w_t-w_0\|\sim\log t$, for small and large batches alike, so a large batch that makes
# fewer updates ends nearer its start; trained for as many updates as the small batch ("train longer"), it
# closes the generalisation gap. Here F1 trains on `hoffer_train` MNIST images with Adam (the chapter's `lr`):
# the small batch (`hoffer_batch_size`) for `hoffer_epochs` epochs; the large batch (`large_batch_fraction` of
# the images) for as many updates as the small batch, measured on its way after `hoffer_epochs` epochs (the plain
# large batch: the same trajectory, fewer updates). Each run's regime and the gap are measured below.

# %% tags=["hide-input"]
if hoffer_data(result):
    distance_figure(result)
    display(hoffer_table(result))

# %% tags=["details"]
if hoffer_data(result):
    display(regime_table([sharp_minima.distance_regime(hoffer_data(result)),
                          sharp_minima.train_longer_regime(hoffer_data(result))]))

# %% [markdown] tags=["summary"]
# ## Verdict

# %% tags=["summary"]
lines = []
for net in nets_of(result):
    m, reg = result.metrics[net], regimes[net]
    gap, gap_sd = m["test_gap"]
    worse = gap > 0 and gap > gap_sd
    ratios = variant_ratios(result, net)
    sharper = [k for k, v in ratios.items() if v > 1]
    c = curv.get(net, {})
    line_sharper = "large_batch" in c and "small_batch" in c and c["large_batch"] > c["small_batch"]
    all_sharper = len(sharper) == len(ratios)
    # both halves of the claim: LB generalises worse, and LB is sharper by every variant measured
    raw = "reproduced" if worse and all_sharper else "partly reproduced" if worse or all_sharper else "not reproduced"
    paper_ratio = sharp_minima.PAPER_SHARPNESS[net][1][0] / sharp_minima.PAPER_SHARPNESS[net][0][0]
    listed = "; ".join(f"{variant_name(result, k)}: {number(v)}" for k, v in ratios.items())
    text = (f"- **{net}: {reg.verdict(raw)}.** {reg.sentence()} LB's test accuracy is {number(abs(gap))} ± "
            f"{number(gap_sd)} points " + ("below" if gap > 0 else "above") + " SB's. Metric 2.1, LB / SB: "
            f"{listed} (paper, full space, eps 1e-3: {paper_ratio:.0f} times); "
            + ("all four variants say LB is sharper" if all_sharper else
               "no variant says LB is sharper" if not sharper else
               f"the variants disagree: {len(sharper)} of {len(ratios)} say LB is sharper")
            + f"; the top Hessian eigenvalue {number(m['hessian_ratio'])} times.")
    deficit = m["small_batch_train_acc"] - m["large_batch_train_acc"]
    if deficit > 0 and deficit > abs(gap):
        text += (f" LB's train accuracy is {number(deficit)} points below SB's, more than the test gap: part of "
                 "the gap is fitting, not the sharpness of a minimiser.")
    if c:
        text += (" Along the interpolation line the train loss curves more sharply at the LB end."
                 if line_sharper else " Along the interpolation line the LB end is not the more curved one.")
    lines.append(text)
hd = hoffer_data(result)
if hd:
    sb_runs, lb_runs, long_runs = (sharp_minima.hoffer_runs(hd, k) for k in HOFFER_RUNS)
    first = {k: float(np.mean([x["first_order_large_eps"] for x in v]))
             for k, v in (("plain", lb_runs), ("long", long_runs))}
    metric = {k: float(np.mean([x["full_large_eps"] for x in v])) for k, v in (("plain", lb_runs),
                                                                               ("long", long_runs))}
    acc = {k: float(np.mean([x["train_acc"] for x in v])) for k, v in (("plain", lb_runs), ("long", long_runs))}
    treg = sharp_minima.train_longer_regime(hd)
    long_ok = all(c.ok for c in treg.conditions if c.name.startswith("LB"))
    where = "at the minimiser" if long_ok else "at the long run's end (not a minimiser by the regime check)"
    lines.append(f"- **Metric 2.1 along one large-batch run:** on the same trajectory, Metric 2.1 (full space, eps "
                 f"{result.config['sharpness_eps']:g}) is {number(metric['plain'])} after {lb_runs[0]['steps']} "
                 f"updates (train accuracy {number(acc['plain'])}%, first-order part {number(first['plain'])}) and "
                 f"{number(metric['long'])} after {long_runs[0]['steps']} (train accuracy {number(acc['long'])}%, "
                 f"first-order part {number(first['long'])}): it "
                 + (f"is 0 {where}: L-BFGS-B stops at its start point when the gradient there is below its "
                    "tolerance, so at a near-exact minimiser the metric as computed is an artefact."
                    if min(metric.values()) <= 0 else
                    (f"shrinks by a factor {number(metric['plain'] / metric['long'])} {where}"
                     if metric["long"] < metric["plain"] else
                     f"grows by a factor {number(metric['long'] / metric['plain'])} {where}")
                    + ", and the first-order part is "
                    + f"{number(first['long'] / metric['long'])} of it there, so the linear term "
                    + ("still dominates." if first["long"] > 0.5 * metric["long"] else "no longer dominates."))
                 + f" The paper's SB value for F1 is {sharp_minima.PAPER_SHARPNESS['F1'][0][0]} (its LB value "
                 f"{sharp_minima.PAPER_SHARPNESS['F1'][1][0]}).")
    dreg = sharp_minima.distance_regime(hd)
    fits = {k: sharp_minima.log_fit(run["distance"]) for k, run in
            (("SB", sb_runs[0]), ("LB, SB's updates", long_runs[0]))}
    log_ok = all(f["r2"] >= 0.95 for f in fits.values())
    power_better = [k for k, f in fits.items() if f["power_r2"] > f["r2"]]
    d_sb = float(np.mean([x["distance"][-1]["distance"] for x in sb_runs]))
    d_lb = float(np.mean([x["distance"][-1]["distance"] for x in lb_runs]))
    lags = d_lb < d_sb
    raw = "reproduced" if log_ok and lags else "partly reproduced" if log_ok or lags else "not reproduced"
    lines.append(f"- **Distance from initialisation (Hoffer et al.): {dreg.verdict(raw)}.** {dreg.sentence()} "
                 "Fit of ‖w − w0‖ = a + b log t over t ≥ 10 (seed " + str(result.config["seed"]) + "): "
                 + "; ".join(f"{k} R² {number(f['r2'])}" for k, f in fits.items())
                 + ("; a power law t^k fits " + ", ".join(f"{k} better (k = {number(fits[k]['exponent'])}, R² "
                                                           f"{number(fits[k]['power_r2'])})" for k in power_better)
                    if power_better else "")
                 + f". After the same epochs the large batch is at {number(d_lb)}, the small batch at "
                 f"{number(d_sb)}" + (": it lags, having made fewer updates." if lags else ": it does not lag."))
    t = {k: float(np.mean([x["test_acc"] for x in v])) for k, v in
         (("sb", sb_runs), ("lb", lb_runs), ("long", long_runs))}
    gap_plain, gap_long = t["sb"] - t["lb"], t["sb"] - t["long"]
    raw = ("not reproduced" if gap_plain <= 0 else "reproduced" if gap_long <= 0.25 * gap_plain else
           "partly reproduced" if gap_long < gap_plain else "not reproduced")
    lines.append(f"- **Train longer (Hoffer et al.): {treg.verdict(raw)}.** {treg.sentence()} Test accuracy: small "
                 f"batch {number(t['sb'])}%, large batch after the same epochs {number(t['lb'])}%, large batch "
                 f"with the small batch's updates {number(t['long'])}%"
                 + (": there is no gap to close after the same epochs." if gap_plain <= 0 else
                    f": training longer closes {number(100 * (gap_plain - gap_long) / gap_plain)}% of the "
                    f"{number(gap_plain)}-point gap."))
if resc is not None:
    s = resc["Metric 2.1 (full, eps large)"]
    spread = s.max() / max(s.min(), 1e-12)
    h_spread = resc["top Hessian eigenvalue"].max() / max(resc["top Hessian eigenvalue"].min(), 1e-12)
    lines.append(f"- **Reparametrisation:** the same function (test accuracy identical) has Metric 2.1 between "
                 f"{s.min():.3g} and {s.max():.3g} and top Hessian eigenvalues between "
                 f"{resc['top Hessian eigenvalue'].min():.3g} and {resc['top Hessian eigenvalue'].max():.3g}"
                 + (f": the metric moves by a factor {spread:.2g} without any change in generalisation, so it is "
                    "not a property of the function alone." if spread > 1.5 else
                    ": the metric's $|x_i|$-relative box makes it nearly invariant to this rescaling.")
                 + (f" The top Hessian eigenvalue, by contrast, changes by a factor {h_spread:.2g}: it is not "
                    "invariant, so comparing it across differently parametrised minimisers needs care."
                    if h_spread > 1.5 else ""))
if rem is not None and np.isfinite(rem[1]):
    f1_regime = regimes["F1"]  # the gap it closes is the one between F1's SB and LB networks
    lines.append(f"- **Remedy ({result.config['remedy_scaling']} learning-rate scaling): "
                 + f1_regime.verdict("helps" if rem[1] > 0 else "does not help here") + ".** "
                 + ("" if f1_regime.ok else "It compares F1's SB and LB networks, which are not both minimisers. ")
                 + (f"It closes {rem[1]:.0%} of F1's SB-LB test gap at the same number of epochs."
                    if rem[1] > 0 else
                    "With Adam the larger rate lowers the large batch's test accuracy further (the gap grows by "
                    f"{-rem[1]:.1f} times its size); Hoffer et al. paired it with SGD, ghost batch norm and as many "
                    "updates as the small batch."))
display(Markdown("\n".join(lines)))

# %% [markdown] tags=["details"]
# ## Recorded at paper scale
# The `paper` preset trains every network (F1, C1, C2, C3, C4) on the full data with the paper's settings:
# Adam (lr 1e-3), SB 256, LB 10% of the training set (6,000 for MNIST, 5,000 for CIFAR), SB for 20 epochs (the
# official Keras script's `nb_epoch`) and LB for 100 (it makes about 20 times fewer updates per epoch), 5 seeds,
# Metric 2.1 on 10,000 training examples, the interpolation on 50,000, and the train-longer runs on full MNIST.
# It is meant for one GPU; where it has been recorded with `--record`, the same tables and figures are
# drawn from the recorded file below.

# %% tags=["details"]
rec = show_recorded("sharp_minima", sharp_minima.VERSION, "sharp_minima")
if rec:
    display(accuracy_table(rec.result), sharpness_table(rec.result), ratio_table(rec.result))
    interpolation_figure(rec.result)

# %% [markdown] tags=["details"]
# ## How these numbers were made

# %% tags=["details"]
parts = {f"{k} (this page)": result for k in ["sharp_minima"]}
display(provenance_table({**parts, **{f"sharp_minima ({r.label})": r.result for r in [rec] if r}}))
display(pd.DataFrame([{"part": k, "store key": f"{v['experiment']}/{v['key'][:8]}", "loaded from store": v["cached"],
                       "device": v["provenance"]["device"], "wall time (s)": v["provenance"]["wall_time_s"]}
                      for k, v in result.data["parts"].items()]).set_index("part"))
