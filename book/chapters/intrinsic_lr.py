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
# # The intrinsic learning rate: scale invariance, weight decay and equilibrium
#
# **Claim** (Li, Lyu, Arora, "Reconciling Modern Deep Learning with Traditional Optimization Analyses: The
# Intrinsic Learning Rate", NeurIPS 2020; relations and an independent check in section 4 of the references).
# A weight $w$ followed by normalization is *scale-invariant*: $L(cw)=L(w)$ for $c>0$, so its gradient is
# orthogonal to $w$. Trained by SGD with learning rate $\eta$ and weight decay $\lambda$, its norm obeys
# $\lVert w_{t+1}\rVert^2=(1-\eta\lambda)^2\lVert w_t\rVert^2+\eta^2G_t^2/\lVert w_t\rVert^2$ with
# $G=\lVert\nabla L(w)\rVert\,\lVert w\rVert$ independent of the scale. What matters is the **intrinsic learning
# rate** $\lambda_e=\eta\lambda$: the norm, the angular update per step and the effective learning rate
# $\eta/\lVert w\rVert^2$ settle, in about $1/\lambda_e$ steps, to an equilibrium set by $\lambda_e$ and the
# gradient noise, not by the history: $\lVert w\rVert^4\approx\eta G^2/(2\lambda)$ and
# $\Delta\theta\approx\sqrt{2\lambda_e}$. After the learning rate is divided by 10, the angular update first
# drops 10×, then recovers to $\sqrt{10}$ below its old level.
#
# **This page.** A scale-invariant toy model, where the relations can be read off exactly; then a BatchNorm MLP
# on a few thousand MNIST images (the `paper` preset: PreResNet-32 on CIFAR-10, on a GPU) trained by plain SGD with
# weight decay, every scale-invariant layer tracked at every step. The paper's code is not public; the setting is
# ours. Time is counted in units of $1/\lambda_e$, and each network verdict first checks the state its claim is
# about (a network that learned, runs of at least a few $1/\lambda_e$, no drift, layers that are scale-invariant as
# measured); where that state was not reached it reads "inconclusive at this scale". A difference between runs
# is called only beyond twice its standard deviation over seeds, measured by repeating each comparison's reference
# run (`seeds` seeds in all).

# %% tags=["parameters"]
preset = "book"  # which preset the values below came from (set by `python -m repro run --preset`)
seed = 0  # seed of data subset, initialization, batch order and the toy model
dataset = "mnist"  # training data (the paper: cifar10 for Figure 5)
model = "bn_mlp"  # network: bn_mlp, bn_convnet, or the paper's preresnet32
width = 256  # hidden units (bn_mlp) or first-layer channels (bn_convnet)
bn_eps = 1e-12  # normalization eps: small against the variance it divides by, or not scale-invariant
n_train = 4000  # training examples (a fixed random subset)
n_test = 2000  # held-out test examples
augment = False  # random crop and flip (CIFAR-10 only)
batch_size = 128  # minibatch size (the paper: 128, UNVERIFIED)
lr = 0.1  # learning rate of the reference runs (the paper: 0.1)
weight_decay = 0.04  # weight decay of the reference runs (the paper: 5e-4)
lr_drop = 10.0  # factor the learning rate is divided by at the drop (the paper: 10)
equilibrium_epochs = 50  # epochs at (lr, weight_decay) before the drop
after_drop_epochs = 330  # epochs after the drop (several 1 / lambda_e' at the new lambda_e')
early_drop_epochs = 4  # drop epoch of the run that drops before equilibrium
lr_small_first = 0.025  # small first learning rate (reviewer 1, question 4)
lr_large_first = 0.4  # large first learning rate (reviewer 1, question 4)
compare_after_drop_epochs = 20  # epochs after the drop in the early-drop and first-LR comparisons
phase1_epochs = 15  # epochs of the differing schedules (the paper's Figure 5: 500)
phase2_epochs = 30  # epochs at the common (lr, weight_decay) (Figure 5: 500)
final_epochs = 10  # epochs with lr / lr_drop and no weight decay at the end (Figure 5)
decay_epochs = 30  # length of the step, cosine and warmup + linear decay runs
warmup_fraction = 0.1  # warmup share of the warmup + linear decay schedule
split_factor = 4.0  # lr x this and weight decay / this: the equal-lambda_e runs
momentum = 0.9  # momentum of the momentum run (plain SGD elsewhere)
short_epochs = 50  # length of the momentum, batch-size and LayerNorm runs, in epochs at batch_size
batch_size_small = 32  # small batch of the batch-size comparison
batch_size_large = 512  # large batch of the batch-size comparison
sweep_size = 4  # intrinsic LRs in the network's steps-to-equilibrium sweep
sweep_min_intrinsic_lr = 0.002  # smallest lambda_e of the network sweep
sweep_max_intrinsic_lr = 0.016  # largest lambda_e of the network sweep
sweep_relaxation_times = 8.0  # network sweep run length, in units of 1 / lambda_e steps
equilibrium_tol = 0.1  # relative distance to the final norm that counts as equilibrium
seeds = 3  # seeds of each comparison's reference run: their spread is what a difference must exceed
eval_every_epochs = 2  # test evaluation interval, in epochs
toy_dim = 32  # dimension of the toy model's weight
toy_batch = 4  # toy model minibatch (fresh samples every step)
toy_replicas = 8  # independent toy runs averaged per setting
toy_sweep_size = 10  # intrinsic LRs in the toy sweep
toy_min_intrinsic_lr = 0.0003  # smallest lambda_e of the toy sweep
toy_max_intrinsic_lr = 0.1  # largest lambda_e of the toy sweep
toy_relaxation_times = 8.0  # toy run length, in units of 1 / lambda_e steps
toy_intrinsic_lr = 0.01  # lambda_e of the toy's history, LR-drop and momentum runs

# %% tags=["hide-input"]
from IPython.display import Markdown, display

from repro.experiments import intrinsic_lr
from repro.experiments.intrinsic_lr import figures
from repro.report import book_style, regime_table, show_figure, show_parameters, show_recorded, show_verdicts

book_style()
params = intrinsic_lr.Params.from_namespace(globals())
result = intrinsic_lr.run(params)
show_parameters(params, preset)

# %% [markdown]
# ## Verdicts

# %% tags=["hide-input"]
show_verdicts("intrinsic_lr", intrinsic_lr.verdicts.verdicts(result))

# %% [markdown]
# The paper's Figure 5 at this page's scale: four runs differ for `phase1_epochs` (learning rate, weight decay, or
# a 4× larger initial scale with a 10× smaller weight decay), then train at the same (`lr`, `weight_decay`) for
# `phase2_epochs`, then at `lr / lr_drop` without weight decay for `final_epochs`. After the common phase they
# should agree in accuracy, norm and effective LR.

# %% tags=["hide-input"]
show_figure(*figures.figure5(result), "figure5")
display(figures.figure5_table(result))

# %% [markdown]
# ## 1. The exact picture: a scale-invariant toy model
#
# Online normalized linear regression, $L(w)=\frac12\,\mathrm{mean}_i(\langle x_i,w/\lVert w\rVert\rangle-y_i)^2$
# with fresh $x\sim N(0,I_d)$ and $y=x_1+\varepsilon$ every step: exactly scale-invariant, with gradient noise that
# never vanishes. One $\lambda_e$ (`toy_intrinsic_lr`) from initial norms 1/4 to 16 and with $\eta/\lambda$ from
# 1/16 to 16 (each curve the mean of `toy_replicas` runs): the norm differs with $\eta/\lambda$, the effective LR
# and the angular update do not.

# %% tags=["hide-input"]
show_figure(*figures.toy_history(result), "toy-history")
display(figures.toy_history_table(result))

# %% [markdown]
# ## 2. A BatchNorm network: equilibrium and the LR drop
#
# Plain SGD at (`lr`, `weight_decay`) for `equilibrium_epochs`, then the learning rate divided by `lr_drop`. For
# both hidden layers (each followed by BatchNorm) we record every step's angular update, $\lVert w\rVert^2$, the
# effective LR, $G^2$ and the radial part of the gradient, $\cos(w,\nabla L)$, which is exactly 0 for a
# scale-invariant layer. The dashed lines are the recursion's fixed point
# $\sqrt{\eta G^2/(\lambda(2-\lambda_e))}$ with the $G^2$ measured in the same window; the dotted ones the
# recursion itself, driven step by step by the measured $G^2$: where a layer follows it, its norm is the
# recursion's.
#
# A layer is scale-invariant only while the variance its normalization divides by is large against the
# normalization's $\epsilon$, and weight decay shrinks that variance. Here $\epsilon$ = `bn_eps`; with
# PyTorch's default $10^{-5}$ the second layer stops being scale-invariant (section 4 and the details), and a
# layer that is not is left out of every claim of the theory.

# %% tags=["hide-input"]
show_figure(*figures.lr_drop(result), "lr-drop")
display(figures.drop_table(result))

# %% [markdown]
# ## 3. Warmup + linear decay and cosine decay against step decay (reviewer 1, question 5; reviewer 2, point 10)
#
# Three schedules of the same length (`decay_epochs`) and peak $\lambda_e$: step decay (divided by `lr_drop` at
# 1/2 and 3/4 of the run), cosine decay, and a linear warmup over `warmup_fraction` of the run followed by linear
# decay to zero; weight decay constant. Each runs at (`lr`, `weight_decay`) and at (`lr` × `split_factor`,
# `weight_decay` / `split_factor`), the same $\lambda_e$ at every step. If $\lambda_e$ determined everything, the
# two runs of each schedule would end alike; the reviewers expected the learning rate itself to matter once the
# decay is too fast for equilibrium.

# %% tags=["hide-input"]
show_figure(*figures.decay(result), "decay")
display(Markdown(figures.decay_sentence(result)))

# %% [markdown]
# ## 4. Momentum, batch size, the normalization's eps and LayerNorm
#
# **Momentum** (reviewer 1, question 7): Wan et al.'s spherical motion dynamics predict
# $\Delta\theta\approx\sqrt{2\lambda_e/(1+\mu)}$; we run momentum `momentum` at $\eta(1-\mu)$, so that the
# long-run step matches plain SGD. **Batch size** (reviewer 2): the equilibrium angular update does not involve
# the batch size (the norm does, through $G^2$). One more run uses PyTorch's default BatchNorm $\epsilon$.
# **LayerNorm** (reviewer 2, point 3; reviewer 3) in place of every BatchNorm keeps the layers scale-invariant;
# BatchNorm and LayerNorm each run at two splits of the same $\lambda_e$. All runs have `short_epochs` epochs.

# %% tags=["hide-input"]
show_figure(*figures.momentum_batch(result), "momentum-batch")
display(Markdown(figures.eps_sentence(result)))
show_figure(*figures.layernorm(result), "layernorm")

# %% [markdown] tags=["details"]
# ## The toy model's $\lambda_e$ sweep and LR drop
#
# With $\eta=\lambda=\sqrt{\lambda_e}$ every run starts at the same distance from its equilibrium: the measured
# angular update against $\arccos(1-\lambda_e)\approx\sqrt{2\lambda_e}$, the norm against the fixed point with
# the measured $G^2$, and the steps until $\lVert w\rVert^2$ first comes within `equilibrium_tol` of its
# equilibrium, against the recursion's $\ln(\text{initial gap}/\text{tolerance gap})/(4\lambda_e)$. Then the LR
# drop, with the exact recursion from the same start (dashed).

# %% tags=["details"]
show_figure(*figures.toy_sweep(result), "toy-sweep")
display(figures.toy_sweep_table(result))
show_figure(*figures.toy_drop(result), "toy-drop")

# %% [markdown] tags=["details"]
# ## The LR drop, measured (reviewer 1, questions 1, 3 and 4)
#
# Question 3: the same run with the drop at `early_drop_epochs`, before equilibrium, compared over the first
# `compare_after_drop_epochs` after each drop. Question 4: first learning rates `lr_small_first`, `lr`,
# `lr_large_first` (same weight decay) for `equilibrium_epochs`, each then divided by `lr_drop`.

# %% tags=["details"]
display(Markdown(figures.drop_sentence(result)))
display(figures.drop_ratio_table(result))
show_figure(*figures.early_drop(result), "early-drop")
display(figures.early_drop_table(result))
display(figures.first_lr_table(result))
display(Markdown(figures.questions_sentence(result)))

# %% [markdown] tags=["details"]
# ## Steps to equilibrium against $1/\lambda_e$ (reviewer 1, question 2)
#
# Runs of `sweep_relaxation_times`$/\lambda_e$ steps at $\eta=\lambda=\sqrt{\lambda_e}$ from the default
# initialization, everything in units of $1/\lambda_e$: each run's equilibrium level is its mean
# $\lVert w\rVert^2$ over the last $2/\lambda_e$, and a layer has settled at the first step within
# `equilibrium_tol` of it, before that window. A layer that starts far from equilibrium needs several
# $1/\lambda_e$ to settle; the regime checks that every run is longer than its slowest layer's settling time by
# the norm recursion, from its measured start, plus the final window. A slope of 1 in log-log is the prediction.

# %% tags=["details"]
display(Markdown(figures.sweep_sentence(result)))
show_figure(*figures.sweep(result), "sweep")
display(figures.sweep_table(result))

# %% [markdown] tags=["details"]
# ## Which layers are scale-invariant
#
# Every tracked layer in every window the verdicts use: the mean $\cos(w,\nabla L)$ and the radial push
# $2|\cos(w,\nabla L)|/\Delta\theta$, the radial term of the norm's update
# ($-2\eta\langle w,\nabla L\rangle$) over the term that sets the equilibrium ($\eta^2\lVert\nabla L\rVert^2$).
# The norm recursion, and every prediction on this page, assumes it is 0.

# %% tags=["details"]
display(figures.invariance_table(result))
display(figures.short_table(result))
display(Markdown(figures.toy_momentum_sentence(result)))

# %% [markdown] tags=["details"]
# ## Regime checks

# %% tags=["details"]
display(regime_table(list(intrinsic_lr.verdicts.regimes(result).values())))

# %% [markdown] tags=["details"]
# ## Recorded at paper scale

# %% tags=["details"]
display(Markdown(figures.paper_scope(intrinsic_lr.Params.resolve("paper"))))
paper = show_recorded("intrinsic_lr", intrinsic_lr.verdicts.verdicts)
if paper.result is not None and paper.result.drop is not None:
    show_figure(*figures.lr_drop(paper.result), "paper-lr-drop")
if paper.result is not None and paper.result.schedules is not None:
    show_figure(*figures.figure5(paper.result), "paper-figure5")

# %% [markdown] tags=["details"]
# ## How these numbers were made

# %% tags=["details"]
display(figures.provenance(result))
