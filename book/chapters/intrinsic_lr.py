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
# orthogonal to $w$ and shrinks as $1/\lVert w\rVert$. Trained by SGD with learning rate $\eta$ and weight
# decay $\lambda$, $w\leftarrow(1-\eta\lambda)w-\eta\nabla L(w)$, its norm obeys
# $\lVert w_{t+1}\rVert^2=(1-\eta\lambda)^2\lVert w_t\rVert^2+\eta^2G_t^2/\lVert w_t\rVert^2$ with
# $G=\lVert\nabla L(w)\rVert\,\lVert w\rVert$ independent of the scale. What matters is the **intrinsic learning
# rate** $\lambda_e=\eta\lambda$:
#
# - the norm, the per-step angular update and the effective learning rate $\eta/\lVert w\rVert^2$ settle to an
#   equilibrium that depends on $\lambda_e$ (and the gradient noise), not on the initialization or the history:
#   $\lVert w\rVert^4=\eta G^2/(\lambda(2-\lambda_e))\approx\eta G^2/(2\lambda)$ and angular update
#   $\Delta\theta\approx\sqrt{2\lambda_e}$ (exactly $\cos\Delta\theta=1-\lambda_e$ for a constant $G$);
# - equilibrium is reached in about $1/\lambda_e$ steps (in the norm recursion, $\lVert w\rVert^4$ relaxes at
#   the rate $4\lambda_e$ per step);
# - after the learning rate is divided by 10 the angular update first drops 10×, then recovers to
#   $\sqrt{10}$ below its old level (the paper's explanation of why test accuracy first jumps, then degrades).

# %% [markdown]
# The paper's Figure 5 trains PreResNet-32 on CIFAR-10 with five different LR/WD schedules for 500 epochs, then
# the same $(\eta,\lambda)$ to epoch 1000: the runs reach the same accuracy, norm and effective LR, and about 95%
# test accuracy after the LR is decayed and weight decay removed. The NeurIPS reviewers asked for
# measurements of the $\sqrt{10}$ recovery and of steps-to-equilibrium against $1/\lambda_e$, and what momentum,
# batch size, a drop before equilibrium, the size of the first learning rate, warmup with linear decay or cosine
# decay, and LayerNorm in place of BatchNorm do.
#
# **This page.** (1) A scale-invariant toy model, where the relations can be read off and swept over
# $\lambda_e$. (2) A BatchNorm network (at `book` scale a BN MLP on a few thousand MNIST images; the `paper`
# preset is PreResNet-32 on full CIFAR-10 for one GPU) trained by plain SGD with weight decay, every
# scale-invariant layer tracked at every step, and the same network with LayerNorm. The paper's code is not
# public; the setting below is ours. The claims are about networks that learned and reached equilibrium, so each
# network verdict first checks that state (test accuracy at least 5× chance; runs of at least a few $1/\lambda_e$
# whose effective LR no longer drifts) and reads "inconclusive at this scale" where it was not reached.

# %% tags=["parameters"]
preset = "book"  # which preset the values below came from (set by `python -m repro run --preset`)
seed = 0  # seed of data subset, initialization, batch order and the toy model
dataset = "mnist"  # training data (the paper: cifar10 for Figure 5)
model = "bn_mlp"  # network: bn_mlp, bn_convnet, or the paper's preresnet32
width = 256  # hidden units (bn_mlp) or first-layer channels (bn_convnet)
bn_eps = 1e-08  # BatchNorm eps (PyTorch's default 1e-5 breaks scale invariance at small norms)
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
sweep_relaxation_times = 4.0  # network sweep run length, in units of 1 / lambda_e steps
equilibrium_tol = 0.1  # relative distance to the final norm that counts as equilibrium
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
# a 4× larger initial scale of the scale-invariant weights with a 10× smaller weight decay), then all train at
# the same (`lr`, `weight_decay`) for `phase2_epochs`, then at `lr / lr_drop` without weight decay for
# `final_epochs` (as the paper does at epoch 1000). The claim: after the common phase they agree in accuracy,
# norm and effective LR.

# %% tags=["hide-input"]
show_figure(*figures.figure5(result), "figure5")
display(figures.figure5_table(result))

# %% [markdown]
# ## 1. The exact picture: a scale-invariant toy model
#
# The toy model is online normalized linear regression: $L(w)=\frac12\,\mathrm{mean}_i(\langle x_i,w/\lVert
# w\rVert\rangle-y_i)^2$ with fresh $x\sim N(0,I_d)$, $y=x_1+\varepsilon$ every step, so it is exactly
# scale-invariant and its gradient noise never vanishes. Each curve is the average of `toy_replicas` runs.
# One $\lambda_e$ (`toy_intrinsic_lr`) reached from initial norms 1/4 to 16 and with $\eta/\lambda$ from
# 1/16 to 16: the norm differs with $\eta/\lambda$, but the effective LR and the angular update do not.

# %% tags=["hide-input"]
show_figure(*figures.toy_history(result), "toy-history")
display(figures.toy_history_table(result))

# %% [markdown]
# ## 2. A real BatchNorm network: equilibrium and the LR drop
#
# The network trains with plain SGD at (`lr`, `weight_decay`) for `equilibrium_epochs`, then the learning rate
# is divided by `lr_drop`. For every scale-invariant layer we record the angular update of every step (RMS over
# windows), $\lVert w\rVert^2$, the effective LR $\eta/\lVert w\rVert^2$ and $G^2$. The predictions drawn are
# $\sqrt{2\lambda_e}$ for the angular update and, for the norm, the recursion's fixed point
# $\sqrt{\eta G^2/(\lambda(2-\lambda_e))}$ with the $G^2$ measured in the same window, since $G$ of a real
# network changes as it learns.

# %% tags=["hide-input"]
show_figure(*figures.lr_drop(result), "lr-drop")
display(figures.drop_table(result))

# %% [markdown]
# ## 3. Warmup + linear decay and cosine decay against step decay (reviewer 1, question 5; reviewer 2, point 10)
#
# Three schedules of the same length (`decay_epochs`) and the same peak $\lambda_e$: step decay (the learning
# rate divided by `lr_drop` at 1/2 and at 3/4 of the run), cosine decay, and a linear warmup over
# `warmup_fraction` of the run followed by linear decay to zero; weight decay constant. Each runs twice: at
# (`lr`, `weight_decay`) and at (`lr` × `split_factor`, `weight_decay` / `split_factor`), the same $\lambda_e$ at
# every step. If $\lambda_e$ determined everything, the two runs of each schedule would end with the same test
# accuracy and effective LR; the reviewers expected the learning rate itself to matter once the decay is too fast
# for equilibrium.

# %% tags=["hide-input"]
show_figure(*figures.decay(result), "decay")
display(Markdown(figures.decay_sentence(result)))
display(figures.decay_table(result))

# %% [markdown]
# ## 4. Momentum, batch size and LayerNorm
#
# **Momentum** (reviewer 1, question 7): with heavy-ball momentum $\mu$, Wan et al.'s spherical motion dynamics
# predict $\Delta\theta\approx\sqrt{2\lambda_e/(1+\mu)}$ (references, section 4b). We run momentum `momentum` at
# learning rate $\eta(1-\mu)$, so that the long-run step size matches plain SGD. **Batch size** (reviewer 2):
# the equilibrium angular update does not involve the batch size; the norm does, through the gradient noise
# $G^2$, which the prediction uses as measured. All runs have the same number of steps. One more run uses
# PyTorch's default BatchNorm eps $10^{-5}$ instead of `bn_eps`: BatchNorm divides by
# $\sqrt{\mathrm{var}+\epsilon}$, so once the weight decay has made a layer's pre-activations small against
# $\epsilon$, the layer is no longer scale-invariant (the gradient gets a radial part that holds the norm up).

# %% tags=["hide-input"]
show_figure(*figures.momentum_batch(result), "momentum-batch")
display(Markdown(figures.eps_sentence(result)))
display(figures.short_table(result))

# %% [markdown]
# **LayerNorm** (reviewer 2, point 3; reviewer 3) in place of every BatchNorm normalizes each example over its
# features, so the layers stay scale-invariant and the same relations should hold. The angular update and the
# effective LR of the first layer with BatchNorm and with LayerNorm, each at (`lr`, `weight_decay`) and at
# (`lr` × `split_factor`, `weight_decay` / `split_factor`), the same $\lambda_e$ (the table above gives every
# layer).

# %% tags=["hide-input"]
show_figure(*figures.layernorm(result), "layernorm")

# %% [markdown] tags=["details"]
# ## The toy model's $\lambda_e$ sweep and LR drop
#
# A sweep over $\lambda_e$ with $\eta=\lambda=\sqrt{\lambda_e}$ (so the equilibrium norm, and the distance every
# run starts from, is the same for every $\lambda_e$): the measured equilibrium angular update against
# $\arccos(1-\lambda_e)\approx\sqrt{2\lambda_e}$, the measured equilibrium $\lVert w\rVert^2$ against
# $\sqrt{\eta G^2/(\lambda(2-\lambda_e))}$ with the measured mean $G^2$, and the steps until $\lVert w\rVert^2$
# first comes within `equilibrium_tol` of its equilibrium, against the norm recursion's prediction
# $\ln(\text{initial gap}/\text{tolerance gap})/(4\lambda_e)$. Then the LR drop: at equilibrium the learning
# rate is divided by `lr_drop`; the dashed curve is the exact norm recursion from the same start with the $G^2$
# measured before the drop.

# %% tags=["details"]
show_figure(*figures.toy_sweep(result), "toy-sweep")
display(figures.toy_sweep_table(result))
show_figure(*figures.toy_drop(result), "toy-drop")

# %% [markdown] tags=["details"]
# ## The LR drop, measured (reviewer 1, questions 1, 3 and 4)

# %% tags=["details"]
display(Markdown(figures.drop_sentence(result)))
display(figures.drop_ratio_table(result))

# %% [markdown] tags=["details"]
# Test accuracy around the drop, and reviewer 1's third question: the same run with the drop at
# `early_drop_epochs`, before equilibrium, compared over the first `compare_after_drop_epochs` after each drop.
# Reviewer 1's fourth question: first learning rates `lr_small_first`, `lr`, `lr_large_first` (same weight
# decay) for `equilibrium_epochs`, each then divided by `lr_drop`.

# %% tags=["details"]
show_figure(*figures.early_drop(result), "early-drop")
display(figures.early_drop_table(result))
display(figures.first_lr_table(result))
display(Markdown(figures.questions_sentence(result)))

# %% [markdown] tags=["details"]
# ## Steps to equilibrium against $1/\lambda_e$ in the network (reviewer 1, question 2)
#
# Runs of `sweep_relaxation_times`$/\lambda_e$ steps at $\eta=\lambda=\sqrt{\lambda_e}$ over a range of
# $\lambda_e$, from the default initialization. Steps to equilibrium: the first step at which every
# scale-invariant layer's $\lVert w\rVert^2$ is within `equilibrium_tol` of its value over the last quarter of
# the run. A slope of 1 in log-log is the prediction.

# %% tags=["details"]
show_figure(*figures.sweep(result), "sweep")

# %% [markdown] tags=["details"]
# ## Regime checks
# What each network verdict needs, as measured: a network that learned (test accuracy at least 5× chance) and,
# for claims about equilibrium, runs of at least a few $1/\lambda_e$ whose effective LR no longer drifts between
# the last two windows of $1/\lambda_e$ (at most `equilibrium_tol`).

# %% tags=["details"]
display(regime_table(list(intrinsic_lr.verdicts.regimes(result).values())))

# %% [markdown] tags=["details"]
# ## Recorded at paper scale
# Where the `paper` preset's units (PreResNet-32 on CIFAR-10, on a GPU) are recorded, their verdicts and figures
# are drawn below from the recorded files, through the same code as this page's.

# %% tags=["details"]
paper = show_recorded("intrinsic_lr", intrinsic_lr.verdicts.verdicts)
if paper.result is not None and paper.result.drop is not None:
    show_figure(*figures.lr_drop(paper.result), "paper-lr-drop")
if paper.result is not None and paper.result.schedules is not None:
    show_figure(*figures.figure5(paper.result), "paper-figure5")

# %% [markdown] tags=["details"]
# **Scale.** The `book` preset uses a BN MLP on a few thousand MNIST images and a large $\lambda_e$ so that
# runs of several $1/\lambda_e$ fit within minutes on two CPU cores (the regime checks say which reached
# equilibrium); the paper's own setting is the `paper` preset (PreResNet-32, full CIFAR-10 with crop and flip,
# batch 128, $\eta=0.1$, $\lambda=5\times10^{-4}$, Figure 5's 500 + 500 epochs), written for one GPU.

# %% [markdown] tags=["details"]
# ## How these numbers were made

# %% tags=["details"]
display(figures.provenance(result))
