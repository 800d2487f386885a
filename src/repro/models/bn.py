"""Small normalized networks whose hidden layers are scale-invariant: every linear map or convolution feeds only
a BatchNorm (or, with `norm="layer"`, a LayerNorm over each example's features), so multiplying its weights by
c > 0 leaves the output (in training mode) unchanged.

Up to the normalization's eps: it normalizes by sqrt(var + eps), so once a layer's pre-activation variance is not
large against eps, a larger norm gives larger outputs and the loss gradient gets a radial part (`bn_eps`)."""

from __future__ import annotations

import torch
from torch import nn

NORMS = ("batch", "layer")


def norm_layer(norm: str, features: int, eps: float, conv: bool) -> nn.Module:
    """BatchNorm (statistics over the batch) or LayerNorm (over one example's features; for a convolution,
    GroupNorm with one group, which normalizes over channels and positions): both make the layer before them
    scale-invariant."""
    if norm == "batch":
        return (nn.BatchNorm2d if conv else nn.BatchNorm1d)(features, eps=eps)
    if norm == "layer":
        return nn.GroupNorm(1, features, eps=eps) if conv else nn.LayerNorm(features, eps=eps)
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}.")


class BNConvNet(nn.Module):
    """conv-BN-ReLU blocks (channels width, 2 width, 4 width; 2x2 max-pool after the first two), global average
    pooling and a linear classifier. Convolutions have no bias: BatchNorm would cancel it."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 16, bn_eps: float = 1e-5,
                 norm: str = "batch"):
        super().__init__()
        chans = [in_channels, width, 2 * width, 4 * width]
        layers: list[nn.Module] = []
        for i in range(3):
            layers += [nn.Conv2d(chans[i], chans[i + 1], 3, padding=1, bias=False),
                       norm_layer(norm, chans[i + 1], bn_eps, conv=True), nn.ReLU(inplace=True)]
            if i < 2:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(chans[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean((2, 3)))

    def scale_invariant_groups(self) -> dict[str, list[nn.Parameter]]:
        """Each convolution on its own: its output goes only into a BatchNorm."""
        convs = [m for m in self.features if isinstance(m, nn.Conv2d)]
        return {f"conv{i + 1}": [c.weight] for i, c in enumerate(convs)}


class BNMLP(nn.Module):
    """Flatten, `depth` hidden layers Linear(no bias)-norm-ReLU of `width` units, and a linear classifier."""

    def __init__(self, in_features: int = 784, num_classes: int = 10, width: int = 256, depth: int = 2,
                 bn_eps: float = 1e-5, norm: str = "batch"):
        super().__init__()
        dims = [in_features] + [width] * depth
        self.linears = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.norms = nn.ModuleList(norm_layer(norm, width, bn_eps, conv=False) for _ in range(depth))
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for lin, bn in zip(self.linears, self.norms, strict=True):
            x = torch.relu(bn(lin(x)))
        return self.classifier(x)

    def scale_invariant_groups(self) -> dict[str, list[nn.Parameter]]:
        return {f"layer{i + 1}": [lin.weight] for i, lin in enumerate(self.linears)}
