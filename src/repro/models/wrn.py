"""Wide ResNet (Zagoruyko & Komodakis 2016) as in Li, Wei, Ma's official code, with its pre-activation noise.

WRN-d-k: a 3x3 conv to 16 channels, three groups of (d - 4) / 6 pre-activation basic blocks with 16k, 32k, 64k
channels (strides 1, 2, 2), BN-ReLU, global average pooling, linear. Li et al. use WRN-16-10 (17,116,634
parameters). Their "act_noise" adds, after every BatchNorm and before its ReLU, one Gaussian H x W map per layer
per step, shared across the batch and the channels, in training mode only.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class ActNoise(nn.Module):
    """Adds `std` x Gaussian noise in training mode: one H x W map shared over batch and channels (`shared`,
    the official code's form) or i.i.d. per activation (an ablation). Identity when std == 0 or in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.std = 0.0
        self.shared = True
        self._noise: torch.Tensor | None = None  # refilled in place each step: no allocation in the hot loop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.std == 0.0:
            return x
        # shared: one map over the spatial dims of NCHW input, one vector over the features of (N, F) input
        shape = (x.shape[-2:] if x.ndim == 4 else x.shape[-1:]) if self.shared else x.shape
        buf = self._noise
        if buf is None or buf.shape != shape or buf.device != x.device or buf.dtype != x.dtype:
            buf = self._noise = torch.empty(shape, device=x.device, dtype=x.dtype)
        return x + self.std * buf.normal_()


class BNNoiseReLU(nn.Module):
    def __init__(self, channels: int, norm: type[nn.Module] = nn.BatchNorm2d):
        super().__init__()
        self.bn = norm(channels)
        self.noise = ActNoise()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.noise(self.bn(x)))


class WideBasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int, drop_rate: float = 0.0):
        super().__init__()
        self.act1 = BNNoiseReLU(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.act2 = BNNoiseReLU(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.drop_rate = drop_rate
        self.shortcut = (nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)
                         if in_channels != out_channels else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(x)
        # as in the official code: when the shape changes, the shortcut takes the activated input
        skip = x if self.shortcut is None else self.shortcut(out)
        out = self.act2(self.conv1(out))
        if self.drop_rate > 0:
            out = F.dropout(out, self.drop_rate, self.training)
        return skip + self.conv2(out)


class WideResNet(nn.Module):
    def __init__(self, depth: int = 16, widen_factor: int = 10, num_classes: int = 10, in_channels: int = 3,
                 drop_rate: float = 0.0):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"WideResNet depth must be 6n + 4 (10, 16, 22, 28, ...), got {depth}.")
        n = (depth - 4) // 6
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        blocks, chans = [], widths[0]
        for group, out in enumerate(widths[1:]):
            for b in range(n):
                blocks.append(WideBasicBlock(chans, out, 1 if group == 0 or b > 0 else 2, drop_rate))
                chans = out
        self.blocks = nn.Sequential(*blocks)
        self.act = BNNoiseReLU(chans)
        self.fc = nn.Linear(chans, num_classes)
        for m in self.modules():  # the official initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight), nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.blocks(self.conv(x)))
        return self.fc(out.mean((2, 3)))


def set_act_noise(model: nn.Module, std: float, shared: bool = True) -> None:
    """Set the pre-activation noise of every ActNoise layer (0 switches it off)."""
    for m in model.modules():
        if isinstance(m, ActNoise):
            m.std, m.shared = float(std), shared



class NoisyMLP(nn.Module):
    """A fully connected net with the same Linear-BN-noise-ReLU units, for CPU-sized runs of Li et al.'s
    experiments: `depth` hidden layers of `width` units on the flattened image, then a linear readout. Its
    noise map is one vector per layer per step, shared across the batch."""

    def __init__(self, width: int = 512, depth: int = 2, num_classes: int = 10, in_features: int = 3 * 32 * 32):
        super().__init__()
        dims = [in_features] + [width] * depth
        self.hidden = nn.Sequential(*(nn.Sequential(nn.Linear(a, b, bias=False), BNNoiseReLU(b, nn.BatchNorm1d))
                                      for a, b in zip(dims[:-1], dims[1:], strict=True)))
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.hidden(x.flatten(1)))
