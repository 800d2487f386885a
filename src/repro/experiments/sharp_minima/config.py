"""The chapter's parameters, presets and sizes, and which parameters each stored experiment depends on."""

from __future__ import annotations

import dataclasses

from repro import params as P
from repro.models.keskar import C1, C2, F1

# 2: regime measurements, separate LB epochs, distance from initialisation; 3: f with BN batch statistics (Keras
# mode=2), a unit-column subspace, the first-order part and L-BFGS-B iterations with every Metric 2.1 value, Hoffer
# et al.'s full recipe
VERSION = 3

NETWORKS = {"F1": ("mnist", F1), "C1": ("cifar10", C1), "C2": ("cifar10", C2),
            "C3": ("cifar100", lambda: C1(num_classes=100)), "C4": ("cifar100", lambda: C2(num_classes=100))}


@dataclasses.dataclass(frozen=True)
class Params(P.Params):
    seed: int = P.param(0, "seed of the first run; run i uses seed + i (initialisation and batch order)", ge=0)
    seeds: int = P.param(2, "independent runs per batch size (the paper: 5)", ge=1)
    device: str = P.param("auto", "where the networks train: auto (CUDA if present), cpu or cuda",
                          choices=("auto", "cpu", "cuda"))
    networks: str = P.param("F1,C1", "networks: F1 (MNIST), C1, C2 (CIFAR-10), C3, C4 (CIFAR-100); F2 needs TIMIT, "
                            "which is not freely distributable", items=tuple(NETWORKS))
    lr: float = P.param(1e-3, "Adam learning rate, both batch sizes (Keras default, as the official script)", gt=0)
    batch_size: int = P.param(256, "small batch (SB) for F1 (the paper: 256)", ge=1)
    large_batch_fraction: float = P.param(0.1, "large batch (LB) as a fraction of the training set (paper: 0.1)",
                                          gt=0, le=1)
    epochs: int = P.param(12, "training epochs of F1's small batch", ge=1)
    large_batch_epochs: int = P.param(25, "training epochs of F1's large batch (it makes fewer updates per epoch)",
                                      ge=1)
    f1_width: int = P.param(512, "hidden width of F1's five layers (the paper: 512)", ge=4)
    n_train: int = P.param(6000, "MNIST training images for F1 (a fixed random subset; full: 60000)", ge=16,
                           le=60_000)
    n_test: int = P.param(10_000, "MNIST test images", ge=16, le=10_000)
    cifar_train: int = P.param(600, "CIFAR training images for C1-C4 (a fixed random subset; full: 50000)",
                               ge=16, le=50_000)
    cifar_test: int = P.param(1000, "CIFAR test images (full: 10000)", ge=16, le=10_000)
    cifar_batch_size: int = P.param(16, "small batch for C1-C4 (the paper: 256)", ge=1)
    cifar_epochs: int = P.param(20, "training epochs of C1-C4's small batch", ge=1)
    cifar_large_batch_epochs: int = P.param(30, "training epochs of C1-C4's large batch", ge=1)
    sharpness_eps: float = P.param(1e-3, "box size eps of Metric 2.1 (the paper: 1e-3 and 5e-4)", gt=0)
    sharpness_eps_small: float = P.param(5e-4, "the second, smaller box size eps", gt=0)
    sharpness_iters: int = P.param(10, "L-BFGS-B iterations of the maximisation (the paper: 10)", ge=1)
    subspace_dim: int = P.param(100, "dimension p of the random subspace A (the paper: 100)", ge=1)
    sharpness_examples: int = P.param(2000, "F1 training examples (a fixed sample) on which f is measured (the "
                                            "paper: the training set)", ge=1)
    cifar_sharpness_examples: int = P.param(100, "CIFAR training examples (a fixed sample) on which f is measured",
                                            ge=1)
    bn_batch: int = P.param(5000, "examples per batch that BN normalises by their own statistics in f (Keras "
                                  "mode=2; the official script evaluates in batches of 5,000)", ge=1)
    lanczos_iters: int = P.param(10, "Lanczos iterations for the top Hessian eigenvalue", ge=2)
    interp_points: int = P.param(25, "alphas in [-1, 2] of the 1-D interpolation (the paper: 25)", ge=2)
    interp_examples: int = P.param(2000, "training examples for the train curve and BN statistics along it",
                                   ge=16)
    extension_seeds: int = P.param(0, "runs per batch size with SGD and with Adagrad on F1 (0: skip)", ge=0)
    lr_sgd: float = P.param(0.05, "SGD learning rate (no momentum) of the extension", gt=0)
    lr_adagrad: float = P.param(0.01, "Adagrad learning rate of the extension", gt=0)
    dinh_alpha: float = P.param(10.0, "rescaling factor of the reparametrisation check (and its inverse)", gt=1)
    hoffer_train: int = P.param(1000, "MNIST training images of the train-longer runs (Hoffer et al.)", ge=16,
                                le=60_000)
    hoffer_batch_size: int = P.param(32, "small batch of the train-longer runs; their large batch is "
                                         "large_batch_fraction x hoffer_train", ge=1)
    hoffer_epochs: int = P.param(33, "epochs of the small batch and of the plain large batch; the long large batch "
                                    "makes as many updates as the small one", ge=1)
    hoffer_lr: float = P.param(0.05, "SGD learning rate of Hoffer et al.'s small batch (their F1 regime's 0.1 at batch "
                                     "128, scaled by their square-root rule); their large batch's is scaled by "
                                     "(LB / SB) ** 0.5", gt=0)

    PRESETS = {
        "smoke": {"networks": "F1", "f1_width": 32, "epochs": 1, "large_batch_epochs": 1, "n_train": 1500,
                  "n_test": 500, "batch_size": 30, "sharpness_iters": 3, "subspace_dim": 10, "sharpness_examples": 150,
                  "lanczos_iters": 5, "interp_points": 7, "interp_examples": 500, "hoffer_train": 1500,
                  "hoffer_batch_size": 30, "hoffer_epochs": 1},
        # Keskar et al.'s networks, Adam, SB 256, LB 10% of the data, minimisers, on the full data; re-scoped to
        # about 15 minutes of one H200: 3 runs per batch size (the paper: 5), C1-C4's f on a 10,000-image sample
        # (F1's on all 60,000), the interpolation on 10,000 images
        "paper": {"seeds": 3, "networks": "F1,C1,C2,C3,C4", "epochs": 20, "large_batch_epochs": 100, "n_train": 60_000,
                  "lanczos_iters": 20, "batch_size": 256, "cifar_train": 50_000, "cifar_test": 10_000,
                  "cifar_batch_size": 256, "cifar_epochs": 20, "cifar_large_batch_epochs": 100,
                  "sharpness_examples": 60_000, "cifar_sharpness_examples": 10_000, "interp_examples": 10_000,
                  "extension_seeds": 3, "hoffer_train": 60_000, "hoffer_batch_size": 256, "hoffer_epochs": 20,
                  "hoffer_lr": 0.14},  # their 0.1 at batch 128, square-root scaled to 256
    }

    def network_list(self) -> list[str]:
        return self.listed("networks")

    def check(self) -> None:
        nets = self.network_list()
        if self.sharpness_eps_small >= self.sharpness_eps:
            raise P.ConfigError(f"sharpness_eps_small ({self.sharpness_eps_small}) must be smaller than "
                                f"sharpness_eps ({self.sharpness_eps}).")
        sizes = [("F1", "", self.n_train, self.batch_size, self.sharpness_examples)] if "F1" in nets else []
        if any(n != "F1" for n in nets):
            sizes.append(("C1-C4", "cifar_", self.cifar_train, self.cifar_batch_size, self.cifar_sharpness_examples))
        for net, prefix, n, small, examples in sizes:
            large = large_batch(n, self.large_batch_fraction)
            if small >= large:
                raise P.ConfigError(f"The small batch of {net} ({prefix}batch_size {small}) must be smaller than "
                                    f"its large batch ({large} = large_batch_fraction {self.large_batch_fraction} x "
                                    f"{n} training images); lower the batch size or train on more images.")
            if examples > n:
                raise P.ConfigError(f"The sharpness of {net} is measured on {examples} training examples "
                                    f"({prefix}sharpness_examples) but it trains on {n}; lower the sharpness "
                                    f"examples.")
        if large_batch(self.hoffer_train, self.large_batch_fraction) <= self.hoffer_batch_size:
            raise P.ConfigError(f"The small batch of the train-longer runs (hoffer_batch_size "
                                f"{self.hoffer_batch_size}) must be smaller than their large batch "
                                f"(large_batch_fraction x hoffer_train {self.hoffer_train})"
                                "; lower the batch size or train on more images.")
        if self.subspace_dim > 1000:
            raise P.ConfigError(f"subspace_dim ({self.subspace_dim}) above 1000 makes the n x p matrix A too "
                                f"large to keep; the paper uses 100.")

    def datasets(self) -> list[tuple[str, str]]:
        names = dict.fromkeys(NETWORKS[n][0] for n in self.network_list())
        return [(name, split) for name in names for split in ("train", "test")]


def large_batch(n: int, fraction: float) -> int:
    return max(1, round(fraction * n))


def net_sizes(p: Params, net: str) -> dict[str, int]:
    if net == "F1":
        n, test, small, epochs, examples = p.n_train, p.n_test, p.batch_size, p.epochs, p.sharpness_examples
        large_epochs = p.large_batch_epochs
    else:
        n, test, small, epochs = p.cifar_train, p.cifar_test, p.cifar_batch_size, p.cifar_epochs
        examples, large_epochs = p.cifar_sharpness_examples, p.cifar_large_batch_epochs
    return {"n_train": n, "n_test": test, "small": small, "large": large_batch(n, p.large_batch_fraction),
            "epochs": epochs, "large_epochs": large_epochs, "sharpness_examples": examples,
            "interp_examples": min(p.interp_examples, n)}


def hoffer_sizes(p: Params) -> dict[str, int]:
    n, small = p.hoffer_train, p.hoffer_batch_size
    large = large_batch(n, p.large_batch_fraction)
    small_steps = p.hoffer_epochs * (n // small)
    return {"n_train": n, "n_test": p.n_test, "small": small, "large": large, "small_steps": small_steps,
            "large_steps": p.hoffer_epochs * (n // large), "long_steps": small_steps,
            "sharpness_examples": min(p.sharpness_examples, n)}


# The parameters each stored experiment depends on (its config); a unit does not depend on how many runs there are.
NET_FIELDS = ("seed", "seeds", "lr", "large_batch_fraction", "sharpness_eps", "sharpness_eps_small",
              "sharpness_iters", "subspace_dim", "bn_batch", "lanczos_iters", "interp_points", "interp_examples")
F1_FIELDS = ("f1_width", "batch_size", "epochs", "large_batch_epochs", "n_train", "n_test", "sharpness_examples",
             "dinh_alpha")
CIFAR_FIELDS = ("cifar_train", "cifar_test", "cifar_batch_size", "cifar_epochs", "cifar_large_batch_epochs",
                "cifar_sharpness_examples")
HOFFER_FIELDS = ("seed", "lr", "large_batch_fraction", "f1_width", "n_test", "sharpness_examples", "sharpness_eps",
                 "sharpness_iters", "bn_batch", "hoffer_train", "hoffer_batch_size", "hoffer_epochs")
RECIPE_FIELDS = tuple(f for f in HOFFER_FIELDS if f != "lr") + ("hoffer_lr",)
EXTENSION_FIELDS = ("seed", "extension_seeds", "lr_sgd", "lr_adagrad", "sharpness_eps", "sharpness_iters",
                    "subspace_dim", "bn_batch", "lanczos_iters", "large_batch_fraction",
                    *F1_FIELDS[:-1])


# the bench network whose measured throughput stands for each network (C3, C4: C1, C2 with 100 outputs)
BENCH_MODEL = {"F1": "F1", "C1": "C1", "C2": "C2", "C3": "C1", "C4": "C2"}
