"""Pre-activation ResNet for CIFAR (He, Zhang, Ren, Sun 2016): PreResNet-32 is depth 32 = 6 * 5 + 2."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from repro.models.bn import norm_layer


class PreActBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int, bn_eps: float = 1e-5, norm: str = "batch"):
        super().__init__()
        self.bn1 = norm_layer(norm, in_channels, bn_eps, conv=True)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn2 = norm_layer(norm, out_channels, bn_eps, conv=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.shortcut = (nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)
                         if stride != 1 or in_channels != out_channels else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + skip


class PreResNet(nn.Module):
    """conv3x3(16), three stages of `blocks` pre-activation blocks (16, 32, 64 channels), BN-ReLU, average
    pooling, linear. depth = 6 * blocks + 2."""

    def __init__(self, depth: int = 32, in_channels: int = 3, num_classes: int = 10, width: int = 16,
                 bn_eps: float = 1e-5, norm: str = "batch"):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"PreResNet depth must be 6n + 2 (20, 32, 56, ...), got {depth}.")
        blocks = (depth - 2) // 6
        self.conv = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        layers, chans = [], width
        for stage, out in enumerate((width, 2 * width, 4 * width)):
            for b in range(blocks):
                layers.append(PreActBlock(chans, out, 2 if stage > 0 and b == 0 else 1, bn_eps, norm))
                chans = out
        self.blocks = nn.Sequential(*layers)
        self.bn = norm_layer(norm, chans, bn_eps, conv=True)
        self.fc = nn.Linear(chans, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn(self.blocks(self.conv(x))))
        return self.fc(out.mean((2, 3)))

    def scale_invariant_groups(self) -> dict[str, list[nn.Parameter]]:
        """The residual stream adds convolution outputs without normalizing them, so no single convolution is
        scale-invariant; scaling *all* of them by c scales the whole stream by c, which the BatchNorms at every
        block input and before the classifier remove. The convolutions form one scale-invariant group."""
        return {"all_convs": [m.weight for m in self.modules() if isinstance(m, nn.Conv2d)]}


def preresnet32(num_classes: int = 10, in_channels: int = 3, bn_eps: float = 1e-5, norm: str = "batch") -> PreResNet:
    return PreResNet(32, in_channels, num_classes, bn_eps=bn_eps, norm=norm)
