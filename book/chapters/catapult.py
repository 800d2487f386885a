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
# # The catapult phase: large learning rates, a loss spike, and a flatter minimum
#
# **Claim** (Lewkowycz, Bahri, Dyer, Sohl-Dickstein, Gur-Ari 2020, {cite}`lewkowycz2020large`): for gradient
# descent on the squared loss, the curvature $\lambda_0$ at initialisation (the top eigenvalue of the neural
# tangent kernel) splits learning rates into three regimes.
# - **lazy**, $\eta<2/\lambda_0$: the loss falls monotonically and the curvature stays put (the
#   infinite-width theory applies);
# - **catapult**, $2/\lambda_0<\eta<\eta_{\max}$: the loss first grows for about $\log n$ steps, the curvature
#   drops until it fits below $2/\eta$, and training converges to a flatter minimum, often with better test
#   accuracy;
# - **divergent**, $\eta>\eta_{\max}$.
#
# Their solvable uv model gives $\eta_{\max}=4/\lambda_0$; for ReLU networks the paper reports about
# $12/\lambda_0$. Huang, Du, Xu and Liu ({cite}`huang2020implicit`) carry the picture over to deep *linear*
# networks with the *logistic* loss, where the separability of the data decides what happens. Cohen et al.
# ({cite}`cohen2021gradient`) find the same edge, $2/\eta$, as an attractor of full-batch gradient descent.
# Reference values and their sources: `refs/papers.md`, sections 3 and 5.

# %% tags=["parameters"]
preset = "book"  # which preset the values below came from (set by `python -m repro run --preset`)
seed = 0  # seed of initialisations and data subsets
device = "auto"  # where the networks train: auto (CUDA if present), cpu or cuda
uv_width = 1000  # width n of the uv model in the trajectory figure
uv_width_max = 100000  # largest width n of the uv width scan (which starts at n 16)
uv_grid = 200  # points of η·λ₀ in the uv phase diagrams
uv_steps = 3000  # gradient descent steps of each uv run
uv_seeds = 4  # independent uv initialisations per width
dataset = "mnist"  # image data of the network experiments
n_train = 256  # training images (a fixed random subset of the train split)
n_test = 2000  # test images for the test accuracy
width_small = 256  # hidden width of the narrower ReLU MLP (paper: 2048)
width_large = 512  # hidden width of the wider ReLU MLP
depth = 1  # hidden layers of the MLPs (paper: 1 to 3)
cnn_channels = 16  # filters of the CNN's first conv layer (second: twice that)
lr_max_factor = 64.0  # largest η·λ₀ of the network sweeps
sweep_size = 14  # learning rates per deep linear sweep
edge_step = 0.4  # spacing of η·λ₀ from 2.1 to 4.5 in the network sweeps
high_rates = 7  # network rates above 5/λ₀ (geometric up to lr_max_factor)
physical_time = 250.0  # training length η · steps in units of 1/λ₀
anneal_lr_factor = 1.0  # η·λ₀ of the final small-LR phase
anneal_steps = 30  # steps of the final small-LR phase
lanczos_iters = 12  # Lanczos iterations per top eigenvalue
eos_n_train = 1000  # CIFAR-10 training images of the edge-of-stability runs (Cohen et al.: 5000)
eos_width = 100  # width of the two tanh hidden layers (Cohen et al.'s fc-tanh: 200)
eos_lrs = 2  # learning rates of the edge-of-stability runs (besides the control)
eos_edge_min = 1.5  # smallest 2/η, in units of the sharpness at initialisation
eos_edge_max = 2.0  # largest 2/η, in units of the sharpness at initialisation
eos_control = 3.5  # 2/η of the small-η control, in units of the sharpness at initialisation
eos_time = 2200.0  # length η · steps of each edge-of-stability run, in units of 1 / the initial sharpness
eos_measurements = 22  # sharpness measurements per run, evenly spaced in η · steps
dl_width = 64  # width of the deep linear networks
dl_depth = 3  # layers of the deep linear networks (hidden layers + readout)
dl_dim = 10  # input dimension of the synthetic classification data
dl_n_train = 200  # training points of the synthetic data
dl_label_noise = 0.2  # fraction of flipped training labels (non-separable data)
dl_steps = 2000  # gradient descent steps per deep linear run
dl_lr_max_factor = 40.0  # largest η·λ₀ of the deep linear sweeps


# %% tags=["hide-input"]
from IPython.display import Markdown, display

from repro.experiments import catapult
from repro.report import (
    book_style,
    provenance_table,
    regime_table,
    show_figure,
    show_parameters,
    show_recorded,
    show_verdicts,
)

book_style()
params = catapult.Params.from_namespace(globals())
result = catapult.run(params)
show_parameters(params, preset)

# %% [markdown]
# ## Verdicts

# %% tags=["hide-input"]
show_verdicts("catapult", catapult.verdicts.verdicts(result))

# %% tags=["hide-input"]
show_figure(*catapult.figures.uv_trajectories(result.uv), "uv-trajectories")

# %% [markdown]
# **Conventions.** For $m$ examples with outputs in $\mathbb R^k$ and
# $L=\frac1{2m}\sum_i\lVert f(x_i)-y_i\rVert^2$, $\lambda_0$ is the top eigenvalue of the empirical NTK
# $\Theta=JJ^\top/m$ ($J$ the Jacobian of all $mk$ outputs), computed by Lanczos on Jacobian-vector
# products. With this normalisation gradient descent is linearly stable for $\eta\lambda_0<2$, so every
# learning rate below is given as $\eta\lambda_0$, in units of $1/\lambda_0$ of its own network. A run is a
# *catapult* when its loss rises at least 1% above its lowest value so far (gradient descent in the lazy
# regime only lowers it), *divergent* when the loss becomes non-finite or $10^4$ times its start; a
# diverged run is recorded as a result.
#
# ## 1. The uv model, exactly
# One input $x=1$, target $0$, $f=v^\top u/\sqrt n$ with $u,v\sim N(0,I_n)$ and NTK $\lambda=(|u|^2+|v|^2)/n$.
# Gradient descent on $L=f^2/2$ closes on the two numbers $(f,\lambda)$:
# $f_{t+1}=(1-\eta\lambda_t+\eta^2f_t^2/n)f_t$, $\lambda_{t+1}=\lambda_t+(\eta f_t^2/n)(\eta\lambda_t-4)$
# (the code iterates these in float64, and a test checks them against plain gradient descent on $u,v$).
# Above $\eta\lambda=2$ the factor $|1-\eta\lambda|$ exceeds 1 and $f$ grows; once $f^2\sim n$ the second
# equation lowers $\lambda$ as long as $\eta\lambda<4$, until $\eta\lambda<2$ and the run converges. Above 4 it
# raises $\lambda$ instead, and the run diverges. The figure above shows such runs at one width.
#
# The phase diagram: every point is one run, with $\eta$ set from its own initialisation's $\lambda_0$; the
# measured edge is the first $\eta\lambda_0$ on the grid whose loss spikes (lazy $\to$ catapult) or diverges
# (median over initialisations), at every width.

# %% tags=["hide-input"]
show_figure(*catapult.figures.uv_phase(result.uv), "uv-phase")
display(Markdown(catapult.figures.uv_phase_sentence(result.uv)))
display(catapult.figures.uv_edges_table(result.uv))

# %% [markdown] tags=["details"]
# ## The uv model: the spike against the width, and the logistic loss
# In the uv model the loss must grow until $f^2\sim n$ before the curvature moves, so the spike's height should
# grow like $n$ and its duration like $\log n$.

# %% tags=["details"]
show_figure(*catapult.figures.uv_spikes(result.uv), "uv-spikes")

# %% [markdown] tags=["details"]
# **The logistic loss, same model.** Degenerate, non-separable data (the same $x$ with labels $\pm1$ in equal
# numbers, as in Huang et al.): $\ell(f)=\frac12[\log(1+e^{-f})+\log(1+e^{f})]$ has its minimum at $f=0$ with
# $\ell''(0)=1/4$, a quarter of the squared loss's curvature. So the lazy regime should end at
# $\eta\lambda_0=2/(1/4)=8$, not 2, and since $\ell'$ is bounded, nothing needs to diverge.

# %% tags=["details"]
show_figure(*catapult.figures.uv_logistic(result.uv), "uv-logistic")
display(Markdown(catapult.figures.uv_logistic_sentence(result.uv)))

# %% [markdown]
# ## 2. Real networks, squared loss, full-batch gradient descent
# A fixed random subset of the training images (standardised), one-hot targets, the squared loss above, and
# three networks in NTK parameterisation ($\sigma_w^2=2$ for ReLU layers, no biases): ReLU MLPs of two widths
# and a small CNN (Conv-ReLU-MaxPool twice, then a linear readout). The output is centred, $f(x)-f_0(x)$, so that
# every network starts at the zero output's loss, the lazy regime's starting point; a constant shift leaves the
# Jacobian, hence $\lambda_0$, unchanged. The rates run every `edge_step` from 2.1 to 4.5, so that both edges, 2
# and 4, are resolved. For each network we measure $\lambda_0$, then train one run per learning rate for the same
# *physical time* $\eta\cdot$steps, then continue each run for a short phase at a small rate. We record the loss
# at every step, $\lambda$ (the NTK's top eigenvalue) at the end and, for three rates, along training. The top
# eigenvalue of the loss Hessian at initialisation is shown beside $\lambda_0$: it differs from it by the residual
# term of the Hessian.

# %% tags=["hide-input"]
display(catapult.figures.net_edges_table(result.nets))
show_figure(*catapult.figures.net_phases(result.nets), "net-phases")

# %% tags=["details"]
show_figure(*catapult.figures.net_trajectories(result.nets), "net-trajectories")

# %% [markdown]
# **Test accuracy at equal physical time.** Each run trains for the same $\eta\cdot$steps, so a large rate
# takes few steps; the dashed line adds the same small-rate phase to every run. A generalisation verdict needs
# networks that fit their training set; where one does not, it reads "inconclusive at this scale".

# %% tags=["hide-input"]
show_figure(*catapult.figures.net_accuracy(result.nets), "net-accuracy")
display(catapult.figures.net_accuracy_table(result.nets))

# %% [markdown]
# ## 3. The edge of stability (Cohen et al. 2021)
# Cohen, Kaur, Li, Kolter and Talwalkar ({cite}`cohen2021gradient`) follow the loss Hessian's top eigenvalue, the
# *sharpness*, along full-batch gradient descent: it rises (*progressive sharpening*) until it reaches $2/\eta$,
# where a quadratic model would diverge, and then hovers there while the loss keeps falling, non-monotonically; a
# smaller $\eta$ lets it rise further. Their setting, scaled down: Cohen et al.'s fc-tanh (two tanh hidden layers
# with biases, PyTorch's default initialisation; `eos_width` units here, 200 there) on `eos_n_train` CIFAR-10
# images (5,000 there), per-channel standardised, the squared loss $\frac1{2m}\sum_i\lVert f(x_i)-y_i\rVert^2$
# on one-hot targets. Each run's $2/\eta$ is `eos_edge_min` to `eos_edge_max` times the sharpness at
# initialisation, so the run starts well below its edge and only sharpening can bring it there; a control with a
# smaller $\eta$ ($2/\eta$ = `eos_control` times it) trains for the same physical time $\eta t$ and shows where
# the sharpness goes when no edge stops it. Since the first layer only sees the span of the training images, the
# runs train in its coordinates (an exact change of variables, three times cheaper at 1,000 images).

# %% tags=["hide-input"]
show_figure(*catapult.figures.eos_sharpness(result.eos), "eos-sharpness")
display(Markdown(catapult.figures.eos_sentence(result.eos)))
display(catapult.figures.eos_table(result.eos))

# %% [markdown] tags=["details"]
# ## 4. Deep linear networks with the logistic loss (Huang et al.)
# A linear network of `dl_depth` layers in NTK parameterisation, $f(x)=W_L\cdots W_1x$ with the scalings above,
# and the logistic loss $\frac1m\sum_i\log(1+e^{-y_if(x_i)})$, on three kinds of data in `dl_dim` dimensions:
# **degenerate** (every input the same point, labels $\pm1$ in turn: a minimum exists, in one direction),
# **non-separable** (Gaussian inputs, labels from a linear teacher with a fraction flipped), **separable** (the
# same without flips: no finite minimum, the loss only tends to 0). All rates run for the same number of steps.
# The curvature at the end is the top eigenvalue of the loss Hessian, $\lambda_H$ (Lanczos on Hessian-vector
# products); the lazy regime should end where $\eta\lambda_H$ at the minimum reaches 2. That is
# $\eta\lambda_0=8$ when the minimum has outputs near 0 (degenerate data, $\ell''(0)=1/4$); where the
# minimum has larger margins $\ell''$ is smaller there, and the edge moves up. Our own prediction for that
# case, drawn dash-dotted, is $2\lambda_0/\lambda_H$ at the minimum that the smallest rate reached.

# %% tags=["details"]
show_figure(*catapult.figures.linear_phases(result.linear), "linear-phases")
display(catapult.figures.linear_table(result.linear))
display(Markdown(catapult.figures.linear_separable_sentence(result.linear)))

# %% [markdown] tags=["details"]
# **Generalisation on the non-separable data.** Test accuracy (5,000 fresh points, labels from the clean teacher)
# against the learning rate, and the loss curves of a few runs on each kind of data.

# %% tags=["details"]
show_figure(*catapult.figures.linear_generalisation(result.linear), "linear-generalisation")

# %% [markdown] tags=["details"]
# ## 5. Not done here: loss spikes of small-batch SGD
# Zhu, Liu, Radhakrishnan and Belkin (2023) read the loss spikes of small-batch SGD as catapults and count more of
# them at smaller batch sizes. This chapter does not run that experiment: it stays with full-batch gradient
# descent, where the regimes are defined.
#
# ## Regime checks
# What each verdict needs, measured; a verdict whose regime was not reached reads "inconclusive at this scale".

# %% tags=["details"]
display(regime_table(catapult.verdicts.regimes(result)))

# %% [markdown] tags=["details"]
# ## Recorded at a larger scale
# The `paper` preset is meant for one GPU, about 8 PFLOP in all (under a minute at a fifth of an H200's peak), each
# section drawn by the same code as this page's as soon as its units are recorded. It keeps the papers' networks,
# the squared loss (logistic for the deep linear nets) and full-batch gradient descent, and differs from them where
# their cost or their reports leave a choice: MLPs of widths 512 and 2,048 with 3 hidden layers (Lewkowycz et al.:
# width 2,048, 1-3 layers) and a 64-filter CNN on 2,000 MNIST images, compared at a physical time of
# $1000/\lambda_0$ and after 500 small-rate steps (their training lengths and subsets are not verified); the edge of
# stability with Cohen et al.'s fc-tanh (width 200) on their 5,000 CIFAR-10 images, at $2/\eta$ = 1.5, 2 and 2.5
# times the initial sharpness and a control at 6 times, each for the same physical time (Cohen et al. set $\eta$
# directly and train to a loss threshold); no Wide ResNet.

# %% tags=["details"]
paper = show_recorded("catapult", catapult.verdicts.verdicts)
if paper.result is not None:
    for fig, data, name in catapult.figures.recorded(paper.result):
        show_figure(fig, data, f"paper-{name}")

# %% [markdown] tags=["details"]
# ## How these numbers were made

# %% tags=["details"]
recorded = paper.result.stored() if paper.result is not None else {}
display(provenance_table({**{f"{name} (this page)": r for name, r in result.stored().items()},
                          **{f"{name} ({paper.preset} preset, recorded)": r for name, r in recorded.items()}}))
