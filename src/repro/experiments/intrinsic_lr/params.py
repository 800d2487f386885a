"""The intrinsic-LR chapter's parameters: flat scalars, the book's defaults, and the smoke and paper presets."""

from __future__ import annotations

import dataclasses

import numpy as np

from repro import params as P

DECAY_SHAPES = ("step", "cosine", "warmup_linear")


@dataclasses.dataclass(frozen=True)
class Params(P.Params):
    seed: int = P.param(0, "seed of data subset, initialization, batch order and the toy model", ge=0)
    dataset: str = P.param("mnist", "training data (the paper: cifar10 for Figure 5)", choices=("mnist", "cifar10"))
    model: str = P.param("bn_mlp", "network: BN MLP, BN convnet, or the paper's PreResNet-32",
                         choices=("bn_mlp", "bn_convnet", "preresnet32"))
    width: int = P.param(256, "hidden units (bn_mlp) or first-layer channels (bn_convnet)", ge=4)
    bn_eps: float = P.param(1e-12, "normalization eps: small against the variance it divides by, or the layer before "
                                   "is not scale-invariant (weight decay shrinks that variance)", gt=0)
    n_train: int = P.param(4000, "training examples (a fixed random subset)", ge=16)
    n_test: int = P.param(2000, "held-out test examples", ge=100)
    augment: bool = P.param(False, "random crop and flip (CIFAR-10 only)")
    batch_size: int = P.param(128, "minibatch size (the paper: 128, UNVERIFIED)", ge=1)
    lr: float = P.param(0.1, "learning rate of the reference runs (the paper: 0.1)", gt=0)
    weight_decay: float = P.param(0.04, "weight decay of the reference runs (the paper: 5e-4)", gt=0)
    lr_drop: float = P.param(10.0, "factor the learning rate is divided by at the drop (the paper: 10)", gt=1)
    equilibrium_epochs: int = P.param(50, "epochs at (lr, weight_decay) before the drop", ge=1)
    after_drop_epochs: int = P.param(330, "epochs after the drop (several 1 / lambda_e' at the new lambda_e')", ge=1)
    early_drop_epochs: int = P.param(4, "drop epoch of the run that drops before equilibrium", ge=1)
    lr_small_first: float = P.param(0.025, "small first learning rate (reviewer 1, question 4)", gt=0)
    lr_large_first: float = P.param(0.4, "large first learning rate (reviewer 1, question 4)", gt=0)
    compare_after_drop_epochs: int = P.param(20, "epochs after the drop in the early-drop and first-LR comparisons",
                                             ge=1)
    phase1_epochs: int = P.param(15, "epochs of the differing schedules (the paper's Figure 5: 500)", ge=1)
    phase2_epochs: int = P.param(30, "epochs at the common (lr, weight_decay) (Figure 5: 500)", ge=1)
    final_epochs: int = P.param(10, "epochs with lr / lr_drop and no weight decay at the end (Figure 5)", ge=0)
    decay_epochs: int = P.param(30, "length of the step, cosine and warmup + linear decay runs", ge=2)
    warmup_fraction: float = P.param(0.1, "warmup share of the warmup + linear decay schedule", gt=0, lt=1)
    split_factor: float = P.param(4.0, "lr x this and weight decay / this: the equal-lambda_e runs", gt=1)
    momentum: float = P.param(0.9, "momentum of the momentum run (plain SGD elsewhere)", ge=0, lt=1)
    short_epochs: int = P.param(50, "length of the momentum, batch-size and LayerNorm runs, in epochs at batch_size",
                                ge=1)
    batch_size_small: int = P.param(32, "small batch of the batch-size comparison", ge=1)
    batch_size_large: int = P.param(512, "large batch of the batch-size comparison", ge=1)
    sweep_size: int = P.param(4, "intrinsic LRs in the network's steps-to-equilibrium sweep", ge=2)
    sweep_min_intrinsic_lr: float = P.param(2e-3, "smallest lambda_e of the network sweep", gt=0)
    sweep_max_intrinsic_lr: float = P.param(1.6e-2, "largest lambda_e of the network sweep", gt=0, lt=0.5)
    sweep_relaxation_times: float = P.param(8.0, "network sweep run length, in units of 1 / lambda_e steps (a layer "
                                            "starting far from equilibrium takes about 5 of them)", gt=0)
    equilibrium_tol: float = P.param(0.1, "relative distance to the final norm that counts as equilibrium",
                                     gt=0, lt=1)
    seeds: int = P.param(3, "seeds of each comparison's reference run: their spread is what a difference must exceed",
                         ge=2)
    eval_every_epochs: int = P.param(2, "test evaluation interval, in epochs", ge=1)
    toy_dim: int = P.param(32, "dimension of the toy model's weight", ge=3)
    toy_batch: int = P.param(4, "toy model minibatch (fresh samples every step)", ge=1)
    toy_replicas: int = P.param(8, "independent toy runs averaged per setting", ge=1)
    toy_sweep_size: int = P.param(10, "intrinsic LRs in the toy sweep", ge=2)
    toy_min_intrinsic_lr: float = P.param(3e-4, "smallest lambda_e of the toy sweep", gt=0)
    toy_max_intrinsic_lr: float = P.param(0.1, "largest lambda_e of the toy sweep", gt=0, lt=0.5)
    toy_relaxation_times: float = P.param(8.0, "toy run length, in units of 1 / lambda_e steps", gt=0)
    toy_intrinsic_lr: float = P.param(0.01, "lambda_e of the toy's history, LR-drop and momentum runs", gt=0,
                                      lt=0.1)

    PRESETS = {
        "smoke": {"n_train": 512, "n_test": 500, "width": 64, "batch_size": 64, "weight_decay": 0.05,
                  "equilibrium_epochs": 10, "after_drop_epochs": 10, "early_drop_epochs": 2, "decay_epochs": 4,
                  "compare_after_drop_epochs": 2, "phase1_epochs": 3, "phase2_epochs": 3, "final_epochs": 1,
                  "short_epochs": 4, "batch_size_large": 256, "sweep_size": 2, "sweep_min_intrinsic_lr": 8e-3,
                  "sweep_max_intrinsic_lr": 1.6e-2, "sweep_relaxation_times": 2.0, "eval_every_epochs": 2, "seeds": 2,
                  "toy_sweep_size": 4,
                  "toy_replicas": 4, "toy_min_intrinsic_lr": 1e-2, "toy_relaxation_times": 6.0,
                  "toy_intrinsic_lr": 0.03},
        # The paper's network, optimizer and batch on one GPU: PreResNet-32 on full CIFAR-10 with crop and flip,
        # plain SGD, batch 128, lr 0.1 (390 steps per epoch). Re-scoped in units of 1 / lambda_e, the claims' time
        # unit: at the paper's weight decay 5e-4 (lambda_e 5e-5, 1 / lambda_e = 51 epochs) the new equilibrium
        # after an LR drop (lambda_e' = 5e-6) needs 3 / lambda_e' = 1,540 epochs, and the page's runs 5e8 image
        # passes; at weight decay 2e-3 (lambda_e 2e-4, 1 / lambda_e = 12.8 epochs) every run reaches the same
        # number of 1 / lambda_e in a quarter of the steps: 4 / lambda_e before the drop and in the common phase
        # (51 epochs), 3.5 / lambda_e' after the drop (448), Figure 5's differing phase 2 / lambda_e (26; the
        # paper: 500 + 500 epochs), decay runs 4 / lambda_e. The sweep spans lambda_e 2e-4 .. 1.6e-3 at 8 / lambda_e.
        "paper": {"dataset": "cifar10", "model": "preresnet32", "n_train": 50_000, "n_test": 10_000,
                  "augment": True, "weight_decay": 2e-3, "equilibrium_epochs": 51, "after_drop_epochs": 448,
                  "decay_epochs": 51, "early_drop_epochs": 5, "lr_small_first": 0.01, "lr_large_first": 1.0,
                  "compare_after_drop_epochs": 26, "phase1_epochs": 26, "phase2_epochs": 51, "final_epochs": 15,
                  "short_epochs": 51, "batch_size_small": 32, "batch_size_large": 512, "sweep_size": 4,
                  "sweep_min_intrinsic_lr": 2e-4, "sweep_max_intrinsic_lr": 1.6e-3, "eval_every_epochs": 3,
                  "toy_dim": 64, "toy_replicas": 16, "toy_sweep_size": 13, "toy_min_intrinsic_lr": 1e-4},
    }

    @property
    def intrinsic_lr(self) -> float:
        return self.lr * self.weight_decay

    def check(self) -> None:
        limit = 60_000 if self.dataset == "mnist" else 50_000
        if self.n_train > limit:
            raise P.ConfigError(f"n_train ({self.n_train}) exceeds the {self.dataset} training set ({limit}).")
        if self.n_test > 10_000:
            raise P.ConfigError(f"n_test ({self.n_test}) exceeds the 10,000 test examples.")
        for name in ("batch_size", "batch_size_small", "batch_size_large"):
            if getattr(self, name) > self.n_train:
                raise P.ConfigError(f"{name} ({getattr(self, name)}) is larger than n_train ({self.n_train}); "
                                    f"lower it or use more training examples.")
        if not self.batch_size_small < self.batch_size < self.batch_size_large:
            raise P.ConfigError(f"Need batch_size_small < batch_size < batch_size_large, got "
                                f"{self.batch_size_small}, {self.batch_size}, {self.batch_size_large}.")
        if not self.lr_small_first < self.lr < self.lr_large_first:
            raise P.ConfigError(f"Need lr_small_first < lr < lr_large_first, got {self.lr_small_first}, "
                                f"{self.lr}, {self.lr_large_first}.")
        if self.early_drop_epochs >= self.equilibrium_epochs:
            raise P.ConfigError(f"early_drop_epochs ({self.early_drop_epochs}) must be below equilibrium_epochs "
                                f"({self.equilibrium_epochs}).")
        if self.sweep_min_intrinsic_lr >= self.sweep_max_intrinsic_lr:
            raise P.ConfigError("sweep_min_intrinsic_lr must be below sweep_max_intrinsic_lr.")
        if self.toy_min_intrinsic_lr >= self.toy_max_intrinsic_lr:
            raise P.ConfigError("toy_min_intrinsic_lr must be below toy_max_intrinsic_lr.")
        if self.lr_large_first * self.weight_decay >= 0.5:
            raise P.ConfigError(f"lr_large_first * weight_decay ({self.lr_large_first * self.weight_decay:g}) "
                                f"must be below 0.5, or weight decay alone shrinks the weights too fast.")
        if self.augment and self.dataset != "cifar10":
            raise P.ConfigError("augment must be false for dataset mnist: crop and flip is for cifar10.")
        if self.model == "preresnet32" and self.dataset != "cifar10":
            raise P.ConfigError("model preresnet32 is the paper's CIFAR-10 network; use dataset cifar10 with it.")

    def datasets(self) -> list[tuple[str, str]]:
        return [(self.dataset, "train"), (self.dataset, "test")]


def part_images(p: Params, name: str) -> float:
    """Training images of each network section's runs (step counts as in the sections; the batch-size runs of
    momentum_batch take the same steps at their own batch size)."""
    spe_images = (p.n_train // p.batch_size) * p.batch_size  # one epoch at the main batch size
    if name == "drop":
        return spe_images * ((p.equilibrium_epochs + p.after_drop_epochs)
                             + (p.early_drop_epochs + p.compare_after_drop_epochs)
                             + 2 * (p.equilibrium_epochs + p.compare_after_drop_epochs))
    if name == "schedules":  # four histories, two splits of each decay shape, and the reference runs' seeds
        return spe_images * (4 * (p.phase1_epochs + p.phase2_epochs + p.final_epochs)
                             + 2 * len(DECAY_SHAPES) * p.decay_epochs
                             + (p.seeds - 1) * (p.phase1_epochs + p.phase2_epochs + p.decay_epochs))
    if name == "sweep":
        lams = np.geomspace(p.sweep_min_intrinsic_lr, p.sweep_max_intrinsic_lr, p.sweep_size)
        return float(sum(int(p.sweep_relaxation_times / le) for le in lams)) * p.batch_size
    steps = p.short_epochs * (p.n_train // p.batch_size)
    # plain, (eps), momentum, BN split, LayerNorm and its split, plain at the other seeds, all at batch_size
    runs = (6 if p.bn_eps == 1e-5 else 7) + p.seeds - 1
    return steps * (runs * p.batch_size + p.batch_size_small + p.batch_size_large)
