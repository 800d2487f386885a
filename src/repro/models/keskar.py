"""Keskar et al.'s networks: F1 (MNIST) as re-implemented by Hoffer et al., and C1 (shallow AlexNet-like, CIFAR)
and C2 (VGG-like) as in the official `network_zoo.py`. The official networks used Keras-1's
`BatchNormalization(mode=2)`, which normalises by the batch's statistics at test time too; here BatchNorm is
PyTorch's, and the chapter chooses per measurement which statistics it uses (repro.experiments.sharp_minima.common
.f_mode). F1 optionally has Hoffer et al.'s ghost batch norm."""

from __future__ import annotations

import torch
from torch import nn


class GhostBatchNorm1d(nn.BatchNorm1d):
    """Hoffer et al. 2017's ghost batch norm: in training, a batch larger than `ghost_batch` is split into
    round(batch / ghost_batch) nearly equal ghost batches, each normalised by its own statistics (and each updating
    the running statistics, as their code does by feeding the ghost batches one after the other). In eval mode, or
    with `ghost_batch` 0, it is plain BatchNorm; parameters and buffers are BatchNorm1d's."""

    def __init__(self, features: int, ghost_batch: int = 0):
        super().__init__(features)
        self.ghost_batch = ghost_batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and self.ghost_batch) or len(x) < 2 * self.ghost_batch:
            return super().forward(x)
        return torch.cat([super(GhostBatchNorm1d, self).forward(part)
                          for part in x.tensor_split(round(len(x) / self.ghost_batch))])


class F1(nn.Module):
    """784 -> 5 x [Linear 512, BN, ReLU] -> Linear 10; with `ghost_batch` > 0 the BNs are ghost batch norms."""

    def __init__(self, in_features: int = 784, width: int = 512, depth: int = 5, num_classes: int = 10,
                 ghost_batch: int = 0):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        for i in range(depth):
            layers += [nn.Linear(in_features if i == 0 else width, width), GhostBatchNorm1d(width, ghost_batch),
                       nn.ReLU()]
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class C1(nn.Module):
    """Conv5x5-64, BN, ReLU, MaxPool 3/2; Conv5x5-64, BN, ReLU, MaxPool 3/2; Dense 384, BN, ReLU, Dropout 0.5;
    Dense 192, BN, ReLU, Dropout 0.5; Dense classes."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, 5, padding=2), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
            nn.Conv2d(64, 64, 5, padding=2), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * 8 * 8, 384), nn.BatchNorm1d(384), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(384, 192), nn.BatchNorm1d(192), nn.ReLU(), nn.Dropout(dropout), nn.Linear(192, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


# C2/C4 (`deepnet` in the official network_zoo.py): (channels, dropout after the block) or "M" (MaxPool 2x2).
C2_LAYERS: list[tuple[int, float] | str] = [
    (64, 0.3), (64, 0.0), "M", (128, 0.4), (128, 0.0), "M", (256, 0.4), (256, 0.4), (256, 0.0), "M",
    (512, 0.4), (512, 0.4), (512, 0.0), "M", (512, 0.4), (512, 0.4), (512, 0.0), "M"]


class C2(nn.Module):
    """VGG-like: 13 x [Conv3x3 same, BN, ReLU (, Dropout)] with five 2x2 max-pools (C2_LAYERS); Flatten,
    Dropout 0.5, Dense 512, BN, ReLU, Dropout 0.5, Dense classes. C4 is C2 with 100 classes."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, dropout: float = 0.5):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for spec in C2_LAYERS:
            if spec == "M":
                layers.append(nn.MaxPool2d(2, 2))
                continue
            width, drop = spec
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
            if drop:
                layers.append(nn.Dropout(drop))
            channels = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(),
            nn.Dropout(dropout), nn.Linear(512, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
