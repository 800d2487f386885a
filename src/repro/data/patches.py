"""Li, Wei, Ma's patch-augmented images (official code `cwein3/large-lr-code`, data_util.py).

A 7 x 7 block at the image centre is overwritten, in normalised pixel space, by z + s * zeta_y: one z shared by
all classes (z_scale x N(0, 1)), a class pattern zeta_y ~ U[-sep, sep], and a random sign s = +-1 drawn on every
access. Which training images carry a patch is fixed once (probability `prop`); of those, a fraction
`only_prob` is drawn on every access as *patch-only*: the image is zeroed (the mean after normalisation) and
zeta_y is scaled by only_scale x U(0, 1). The label lives only in +-zeta_y on top of the large shared z: the
patch is memorisable but not linearly separable, the paper's Q component.
"""

from __future__ import annotations

import dataclasses

import torch

from repro.device import to_device


@dataclasses.dataclass(frozen=True)
class Patches:
    z: torch.Tensor  # (C, size, size), shared by all classes
    zeta: torch.Tensor  # (K, C, size, size), one pattern per class
    only_prob: float = 0.2
    only_scale: float = 1.75

    @property
    def size(self) -> int:
        return self.z.shape[-1]

    def to(self, device: torch.device | str) -> Patches:
        return dataclasses.replace(self, z=self.z.to(device), zeta=self.zeta.to(device))


def make_patches(num_classes: int, channels: int = 3, size: int = 7, z_scale: float = 1.25, sep: float = 0.1,
                 only_prob: float = 0.2, only_scale: float = 1.75,
                 generator: torch.Generator | None = None) -> Patches:
    """The official defaults: 7 x 7, z_scale 1.25, sep 0.1, patch-only probability 0.2 and scale 1.75."""
    z = z_scale * torch.randn(channels, size, size, generator=generator)
    zeta = (2 * torch.rand(num_classes, channels, size, size, generator=generator) - 1) * sep
    return Patches(z, zeta, only_prob, only_scale)


def apply_patches(x: torch.Tensor, y: torch.Tensor, patches: Patches, carries: torch.Tensor,
                  generator: torch.Generator, only: bool = False) -> torch.Tensor:
    """Patch the normalised batch `x` (N, C, H, W) with labels `y` where `carries` (N bool) is set; the random
    sign, patch-only choice and scale come from the CPU `generator`. `only` zeroes every image (the code's
    patch-only test set, whose scale is drawn as in training). Returns a new tensor."""
    n, dev = len(x), x.device
    sign = torch.randint(0, 2, (n,), generator=generator) * 2 - 1
    only_draw = torch.rand(n, generator=generator)
    scale_draw = torch.rand(n, generator=generator)
    # one non-blocking copy of the three draws (exact in float32: +-1, U(0, 1) draws) instead of three that wait
    draws = to_device(torch.stack([sign.float(), only_draw, scale_draw]), dev)
    sign = draws[0].to(x.dtype)
    patch_only = draws[1] < patches.only_prob
    scale = torch.where(patch_only, patches.only_scale * draws[2], torch.ones((), device=dev)).to(x.dtype)
    if only:
        carries = torch.ones(n, dtype=torch.bool, device=dev)
    blank = carries & (patch_only | only)
    block = patches.z + (sign * scale)[:, None, None, None] * patches.zeta[y]
    start = int(x.shape[-1] / 2 - patches.size / 2)
    stop = start + patches.size
    out = torch.where(blank[:, None, None, None], torch.zeros((), dtype=x.dtype, device=dev), x)
    region = out[:, :, start:stop, start:stop]
    out[:, :, start:stop, start:stop] = torch.where(carries[:, None, None, None], block, region)
    return out
