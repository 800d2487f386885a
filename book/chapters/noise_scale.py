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

# %%
from IPython.display import Markdown, display

from repro.experiments import noise_scale
from repro.experiments.noise_scale import figures, verdicts
from repro.report import (
    book_style,
    collapsed,
    provenance_table,
    regime_table,
    show_figure,
    show_parameters,
    show_recorded,
    show_verdicts,
)

book_style()
params = noise_scale.Params.from_namespace(globals())
result = noise_scale.run(params)
show_parameters(params, preset)

# %% [markdown]
# ## Verdicts

# %%
show_verdicts("noise_scale", verdicts.verdicts(result))

# %% [markdown]
# Test accuracy of every run against each quantity and against the learning rate alone. Grey crosses are runs that
# did not learn (train accuracy below one half, or diverged): they are left out of every statistic, since a
# ranking of predictors means something only among networks that learned.

# %%
show_figure(*figures.accuracy_figure(result), "accuracy")

# %% [markdown]
# ## The answer

# %%
display(Markdown(figures.answer(result)))
display(figures.candidate_table(result))
display(Markdown(figures.breaks(result)))

# %% [markdown]
# **How each quantity is judged.** The *collapse score* predicts each learned run's test accuracy from the learned
# runs nearest to it in the logarithm of the quantity alone (leave one out; all runs that share its value when
# there are several) and reports the fraction of the variance in test accuracy this explains; unlike a rank
# correlation it rewards a quantity with an optimum in the middle, which is what a noise scale is expected to have.
# The intrinsic LR's claim is about equilibrium, so it is judged on the learned runs with weight decay that ran
# longer than $1/(\eta\lambda)$ steps. $\eta\lambda_0$ predicts a window, not a trend: runs above the edge that do
# not diverge should generalise better than runs below it, so it is judged by the difference of the two groups' mean
# test accuracy (and where the best setting lies); Spearman's $\rho$ is not shown for it. Every difference (a
# quantity's collapse score over the learning rate alone's, the window's gain) is computed on each seed's grid
# separately and called only when its mean over the seeds exceeds twice its standard error across them; with
# `n_seeds` seeds (two at the book's scale) that standard error is rough, and with one seed nothing is called.
# Within a batch size $\lambda_0$ is fixed, so the edge is a learning rate, $2/\lambda_0(B)$: the window's gain is
# a statement about learning rates above that edge, to be read beside the learning rate alone's collapse score.
# The table's last column gives each statistic on every run of the grid, diverged ones included, for comparison.

# %% [markdown]
# ## The story
#
# **The task.** A BatchNorm MLP (two hidden layers of `width` units, every hidden layer followed by BatchNorm, so
# its weights are scale-invariant, as in the intrinsic-LR chapter) trained on `n_train` MNIST images by plain SGD,
# momentum off, constant learning rate, coupled weight decay on every parameter; test accuracy on `n_test` held-out
# images after `epochs` passes. The grid is every combination of `lrs`, `batch_sizes`, `weight_decays` and `epochs`,
# each with `n_seeds` seeds (data subset, initialisation and batch order); each run is one stored result of
# `noise_scale.point`, so `python -m repro sweep noise_scale.point -g lr ... -g batch_size ...` on a Ray cluster or
# SLURM fills the same store this page reads.
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
#   $\lambda_0$ is stable for $\eta\lambda_0<2$; above it, up to a maximum rate, the catapult mechanism drives the
#   network to flatter regions, and beyond that maximum it diverges. Lewkowycz et al.'s $\lambda_0$ is the top
#   eigenvalue of the neural tangent kernel for the squared loss, where their phases are derived. **Here $\lambda_0$
#   is the top eigenvalue of the Hessian of the minibatch cross-entropy at initialisation** (the quantity whose
#   edge 2 is gradient descent's stability edge for this loss), on minibatches of the run's own size $B$ with
#   BatchNorm on the batch's statistics, as in a training step (mean over `lambda0_batches` batches,
#   `lanczos_iters` Lanczos steps). It therefore depends on $B$, not on $\eta$ or $\lambda$; the window it predicts
#   is a prediction carried over from the squared loss, not one derived for the cross-entropy.

# %%
display(figures.lambda0_table(result))

# %% [markdown]
# **Regime check.** A ranking of predictors means something only among networks that learned, and only where
# the settings' accuracies differ by more than a change of seed alone makes them differ.

# %%
display(Markdown(figures.regime_sentence(result)))

# %% [markdown]
# **Where each breaks.** The subsets below recompute both statistics on part of the learned runs: below and above
# the edge $\eta\lambda_0=2$; runs longer than $1/(\eta\lambda)$ steps (Li et al.'s time to equilibrium) and
# shorter ones, among runs with weight decay.

# %%
display(Markdown("Spearman $\\rho$ / collapse score (runs) on each subset of the learned runs:"))
display(figures.subsets_table(result))

# %% [markdown]
# **Equal noise scale, different runs.** Where the grid's learning rates and batch sizes are spaced by the same
# factor (four, by default), a value of $\eta/B$ is shared by several $(\eta, B)$ pairs, each at every weight
# decay and length. If $\eta/B$ alone set the accuracy, each row below would spread no more than the seeds do.

# %%
display(figures.noise_groups_table(result))

# %% [markdown] tags=["details"]
# ## All runs of the grid
# One row per run: its setting, the three quantities, the run length $t\eta\lambda$ ($t$ steps, in units of
# $1/(\eta\lambda)$), train and test accuracy, and whether it counts as learned.

# %% tags=["details"]
collapsed("Every run of the grid", figures.runs_table(result))

# %% [markdown] tags=["details"]
# ## The regimes the verdicts checked

# %% tags=["details"]
display(regime_table(verdicts.regimes(result)))

# %% [markdown] tags=["details"]
# ## Recorded at the paper's scale
# The `paper` preset trains the paper's network on the paper's data, PreResNet-32 on full CIFAR-10 with crop and
# flip, by plain SGD, at batch sizes 32, 128 and 512, two seeds per setting. It is re-scoped to about two and a
# half minutes of one H200 (72 runs, 5.7e7 image passes of 0.41 GFLOP at a fifth of its bf16 peak): four learning
# rates (0.025 to 1.6, spaced by four like the batch sizes, so that equal noise scales recur), weight decays 0,
# 0.0005 and 0.005, and one length of 15 epochs, long enough for 15 of the 24 settings with weight decay to pass
# $1/(\eta\lambda)$ steps (the regime the intrinsic LR's claim is about) and far short of training to
# convergence, as the papers do, so the accuracies are those of networks still training. Where its runs are
# recorded (`python -m repro campaign` on a GPU), the grid's statistics, verdicts and figure are drawn here.

# %% tags=["details"]
paper = show_recorded("noise_scale", verdicts.verdicts)
if paper.result is not None and paper.result.grid is not None:
    display(figures.compare_table(result, paper.result))
    show_figure(*figures.accuracy_figure(paper.result), "paper-accuracy")

# %% [markdown] tags=["details"]
# ## How these numbers were made
#
# Every run on this page is its own stored result (`noise_scale_point/KEY`), made by this repository's code on
# the device named below; the analysis above is computed from them.

# %% tags=["details"]
display(provenance_table({"noise_scale (this page)": result.stored}))
display(figures.devices_table(result))
