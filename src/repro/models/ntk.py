"""Networks in NTK parameterisation (Jacot et al. 2018; as in Lewkowycz et al. 2020): every weight is N(0, 1)
and each layer multiplies by sigma_w / sqrt(fan_in), so the NTK has a finite limit as the width grows and a
learning rate in units of 1 / lambda0 means the same thing at every width."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class NTKLinear(nn.Module):
    def __init__(self, fan_in: int, fan_out: int, sigma_w: float = 1.0, sigma_b: float = 0.0,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fan_out, fan_in, generator=generator))
        self.bias = nn.Parameter(torch.randn(fan_out, generator=generator)) if sigma_b else None
        self.scale, self.sigma_b = sigma_w / math.sqrt(fan_in), sigma_b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight) * self.scale
        return out + self.sigma_b * self.bias if self.bias is not None else out


class NTKConv2d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, sigma_w: float = 1.0,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size,
                                               generator=generator))
        self.scale = sigma_w / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, padding=self.weight.shape[-1] // 2) * self.scale


class NTKMLP(nn.Module):
    """`depth` hidden layers of `width` units (ReLU, sigma_w = sqrt 2; or none: a deep linear network,
    sigma_w = 1) and a linear readout with sigma_w = 1. Inputs are flattened."""

    def __init__(self, in_dim: int, width: int, depth: int, out_dim: int, activation: str = "relu",
                 sigma_b: float = 0.0, seed: int = 0):
        super().__init__()
        if activation not in ("relu", "linear"):
            raise ValueError(f"activation must be 'relu' or 'linear', got {activation!r}")
        g = torch.Generator().manual_seed(seed)  # built on the CPU, then moved: same weights on every device
        sigma_w = math.sqrt(2.0) if activation == "relu" else 1.0
        dims = [in_dim] + [width] * depth
        self.hidden = nn.ModuleList(NTKLinear(a, b, sigma_w, sigma_b, g)
                                    for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.readout = NTKLinear(dims[-1], out_dim, 1.0, sigma_b, g)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(1)
        for layer in self.hidden:
            h = layer(h)
            if self.activation == "relu":
                h = F.relu(h)
        return self.readout(h)


class NTKConvNet(nn.Module):
    """Two Conv(3x3)-ReLU-MaxPool(2) blocks with `channels` and 2 `channels` filters, then a linear readout
    (the paper's CNN family: Conv-ReLU-MaxPool)."""

    def __init__(self, in_channels: int, image_size: int, channels: int, out_dim: int, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        s = math.sqrt(2.0)
        self.conv1 = NTKConv2d(in_channels, channels, 3, s, g)
        self.conv2 = NTKConv2d(channels, 2 * channels, 3, s, g)
        side = image_size // 4
        self.readout = NTKLinear(2 * channels * side * side, out_dim, 1.0, 0.0, g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        return self.readout(h.flatten(1))
