"""The catapult chapter's parameters: the book preset's values as defaults, with the smoke and paper presets.

Learning rates are given as eta * lambda0 throughout (metrics/hessian.py: lambda0 is the top eigenvalue of the
empirical NTK J J^T / m, so gradient descent on L = (1/2m) sum_i |f(x_i) - y_i|^2 is linearly stable for
eta lambda0 < 2)."""

from __future__ import annotations

import dataclasses

import torch

from repro import params as P
from repro.data.vision import SPLIT_SIZES
from repro.device import get_device


@dataclasses.dataclass(frozen=True)
class Params(P.Params):
    seed: int = P.param(0, "seed of initialisations and data subsets", ge=0)
    device: str = P.param("auto", "where the networks train: auto (CUDA if present), cpu or cuda",
                          choices=("auto", "cpu", "cuda"))
    # the uv model
    uv_width: int = P.param(1000, "width n of the uv model in the trajectory figure", ge=2)
    uv_width_max: int = P.param(100_000, "largest width n of the uv width scan (which starts at n 16)", ge=32)
    uv_grid: int = P.param(200, "points of η·λ₀ in the uv phase diagrams", ge=10)
    uv_steps: int = P.param(3000, "gradient descent steps of each uv run", ge=10)
    uv_seeds: int = P.param(4, "independent uv initialisations per width", ge=1)
    # real networks, squared loss, full-batch gradient descent
    dataset: str = P.param("mnist", "image data of the network experiments", choices=("mnist", "cifar10"))
    n_train: int = P.param(256, "training images (a fixed random subset of the train split)", ge=16)
    n_test: int = P.param(2000, "test images for the test accuracy", ge=16)
    width_small: int = P.param(256, "hidden width of the narrower ReLU MLP (paper: 2048)", ge=8)
    width_large: int = P.param(512, "hidden width of the wider ReLU MLP", ge=8)
    depth: int = P.param(1, "hidden layers of the MLPs (paper: 1 to 3)", ge=1, le=4)
    cnn_channels: int = P.param(16, "filters of the CNN's first conv layer (second: twice that)", ge=1)
    lr_max_factor: float = P.param(64.0, "largest η·λ₀ of the network sweeps", gt=5)
    sweep_size: int = P.param(14, "learning rates per deep linear sweep", ge=4)
    edge_step: float = P.param(0.4, "spacing of η·λ₀ from 2.1 to 4.5 in the network sweeps", gt=0, le=1)
    high_rates: int = P.param(7, "network rates above 5/λ₀ (geometric up to lr_max_factor)", ge=1)
    physical_time: float = P.param(250.0, "training length η · steps in units of 1/λ₀", gt=0)
    anneal_lr_factor: float = P.param(1.0, "η·λ₀ of the final small-LR phase", gt=0, lt=2)
    anneal_steps: int = P.param(30, "steps of the final small-LR phase", ge=0)
    lanczos_iters: int = P.param(12, "Lanczos iterations per top eigenvalue", ge=2)
    # edge of stability (Cohen et al. 2021): full-batch GD on a CIFAR-10 subset, fc-tanh, squared loss
    eos_n_train: int = P.param(1000, "CIFAR-10 training images of the edge-of-stability runs (Cohen et al.: 5000)",
                               ge=16)
    eos_width: int = P.param(100, "width of the two tanh hidden layers (Cohen et al.'s fc-tanh: 200)", ge=4)
    eos_lrs: int = P.param(2, "learning rates of the edge-of-stability runs (besides the control)", ge=1)
    eos_edge_min: float = P.param(1.5, "smallest 2/η, in units of the sharpness at initialisation", gt=1)
    eos_edge_max: float = P.param(2.0, "largest 2/η, in units of the sharpness at initialisation", gt=1)
    eos_control: float = P.param(3.5, "2/η of the small-η control, in units of the sharpness at initialisation",
                                 gt=1)
    eos_time: float = P.param(2200.0, "length η · steps of each edge-of-stability run, in units of 1 / the "
                                      "initial sharpness", gt=0)
    eos_measurements: int = P.param(22, "sharpness measurements per run, evenly spaced in η · steps", ge=3)
    # deep linear networks, logistic loss
    dl_width: int = P.param(64, "width of the deep linear networks", ge=2)
    dl_depth: int = P.param(3, "layers of the deep linear networks (hidden layers + readout)", ge=2)
    dl_dim: int = P.param(10, "input dimension of the synthetic classification data", ge=2)
    dl_n_train: int = P.param(200, "training points of the synthetic data", ge=4)
    dl_label_noise: float = P.param(0.2, "fraction of flipped training labels (non-separable data)", gt=0,
                                    lt=0.5)
    dl_steps: int = P.param(2000, "gradient descent steps per deep linear run", ge=10)
    dl_lr_max_factor: float = P.param(40.0, "largest η·λ₀ of the deep linear sweeps", gt=8)

    PRESETS = {
        "smoke": {"uv_width_max": 1000, "uv_grid": 40, "uv_steps": 300, "uv_seeds": 1, "n_train": 64,
                  "n_test": 200, "width_small": 32, "width_large": 64, "cnn_channels": 4, "sweep_size": 6,
                  "lanczos_iters": 6, "physical_time": 30.0, "anneal_steps": 10, "dl_width": 16, "dl_n_train": 60,
                  "dl_steps": 150, "edge_step": 0.8, "high_rates": 2, "eos_n_train": 128, "eos_width": 32,
                  "eos_lrs": 1, "eos_time": 100.0, "eos_measurements": 4},
        "paper": {"uv_width_max": 1_000_000, "uv_grid": 400, "uv_steps": 4000, "uv_seeds": 8,
                  "n_train": 2000, "n_test": 10_000, "width_small": 512, "width_large": 2048, "depth": 3,
                  "cnn_channels": 64, "sweep_size": 24, "physical_time": 1000.0, "anneal_steps": 500,
                  "lanczos_iters": 30, "dl_width": 256, "dl_dim": 50, "dl_n_train": 1000, "dl_steps": 10_000,
                  "edge_step": 0.2, "high_rates": 12, "eos_n_train": 5000, "eos_width": 200, "eos_lrs": 3,
                  "eos_edge_min": 1.5, "eos_edge_max": 2.5, "eos_control": 6.0, "eos_time": 6000.0,
                  "eos_measurements": 40},
    }

    def check(self) -> None:
        if self.width_small >= self.width_large:
            raise P.ConfigError(f"width_small ({self.width_small}) must be smaller than width_large "
                                f"({self.width_large}).")
        for name, split in (("n_train", "train"), ("n_test", "test")):
            if getattr(self, name) > SPLIT_SIZES[self.dataset][split]:
                raise P.ConfigError(f"{name} ({getattr(self, name)}) exceeds the {SPLIT_SIZES[self.dataset][split]} "
                                    f"{self.dataset} {split} images; lower it.")
        if self.eos_edge_min > self.eos_edge_max:
            raise P.ConfigError(f"eos_edge_min ({self.eos_edge_min}) must not exceed eos_edge_max "
                                f"({self.eos_edge_max}).")
        if self.eos_control <= self.eos_edge_max:
            raise P.ConfigError(f"eos_control ({self.eos_control}) must exceed eos_edge_max ({self.eos_edge_max}): "
                                f"the control's smaller η leaves the sharpness room to rise past every 2/η.")
        if self.eos_n_train > SPLIT_SIZES["cifar10"]["train"]:
            raise P.ConfigError(f"eos_n_train ({self.eos_n_train}) exceeds the {SPLIT_SIZES['cifar10']['train']} "
                                f"cifar10 train images; lower it.")
        if self.uv_width > self.uv_width_max:
            raise P.ConfigError(f"uv_width ({self.uv_width}) must not exceed uv_width_max ({self.uv_width_max}).")
        if self.dl_n_train <= 2 * self.dl_dim:
            raise P.ConfigError(f"dl_n_train ({self.dl_n_train}) must exceed 2 * dl_dim ({2 * self.dl_dim}), or "
                                f"the noisy labels would be linearly separable.")

    def datasets(self) -> list[tuple[str, str]]:
        return [(self.dataset, "train"), (self.dataset, "test"), ("cifar10", "train")]


def resolve_device(p: Params) -> torch.device:
    return get_device(p.device)

