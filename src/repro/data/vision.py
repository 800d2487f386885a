"""MNIST, CIFAR-10 and CIFAR-100 as uint8 tensors on the training device.

Two sources, in this order:
1. offline packs `{name}_{split}.npz` or `{name}_{split}_part{K}.npz` (keys `x`, `y`) with a `manifest.json`
   whose array SHA-256 sums are verified; packs without a manifest entry are refused unless
   `REPRO_ALLOW_UNVERIFIED=1` (a careful user would rather stop than train on a half-copied pack);
2. torchvision's own files under the same folder (downloaded only when the user allows it).
The folder is `REPRO_DATA_DIR` (relative to the current directory), or `~/.cache/repro/data`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

# name -> (torchvision class, image shape HWC or HW, number of classes)
DATASETS = {
    "mnist": ("MNIST", (28, 28), 10),
    "cifar10": ("CIFAR10", (32, 32, 3), 10),
    "cifar100": ("CIFAR100", (32, 32, 3), 100),
}
SPLITS = ("train", "test")
SPLIT_SIZES = {"mnist": {"train": 60_000, "test": 10_000}, "cifar10": {"train": 50_000, "test": 10_000},
               "cifar100": {"train": 50_000, "test": 10_000}}


class DataError(RuntimeError):
    """Data missing or damaged; the message says how to supply it."""


def data_dir() -> Path:
    env = os.environ.get("REPRO_DATA_DIR")
    return Path(env).expanduser().absolute() if env else Path.home() / ".cache" / "repro" / "data"


def download_allowed() -> bool:
    return os.environ.get("REPRO_DOWNLOAD", "") not in ("", "0")


def unverified_allowed() -> bool:
    return os.environ.get("REPRO_ALLOW_UNVERIFIED", "") not in ("", "0")


def _manifest_stats(root: Path, name: str, split: str, files: list[Path]) -> dict | None:
    """The manifest's entry for this pack; a missing manifest or entry stops the run unless the user opts out."""
    manifest = root / "manifest.json"
    shown = files[0].name if len(files) == 1 else f"{files[0].name} .. {files[-1].name}"
    try:
        stats = json.loads(manifest.read_text()).get(name, {}).get("stats", {}).get(split)
    except FileNotFoundError:
        stats, why = None, f"there is no {manifest}"
    except (OSError, ValueError, AttributeError) as err:
        raise DataError(f"{manifest} is unreadable or not a pack manifest ({type(err).__name__}); copy it "
                        f"again from the packs' source.") from None
    else:
        why = f"{manifest} has no entry for {name} {split}"
    if stats is None and not unverified_allowed():
        raise DataError(f"Cannot verify {shown} in {root}: {why}. Copy manifest.json from the packs' source, or "
                        f"set REPRO_ALLOW_UNVERIFIED=1 to use the packs unchecked.")
    return stats


def pack_files(root: Path, name: str, split: str) -> list[Path]:
    """The pack's files in order: one whole file, or its parts sorted by K."""
    whole = root / f"{name}_{split}.npz"
    if whole.exists():
        return [whole]
    parts = {}
    for p in root.glob(f"{name}_{split}_part*.npz"):
        m = re.fullmatch(rf"{name}_{split}_part(\d+)\.npz", p.name)
        if m:
            parts[int(m.group(1))] = p
    if parts and sorted(parts) != list(range(len(parts))):
        raise DataError(f"The {name} {split} pack in {root} has parts {sorted(parts)}; parts must be numbered "
                        f"0..K-1 with none missing. Copy the missing parts again.")
    return [parts[k] for k in sorted(parts)]


def _sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def read_pack(root: Path, name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    files = pack_files(root, name, split)
    stats = _manifest_stats(root, name, split, files)
    xs, ys = [], []
    for f in files:
        try:
            with np.load(f, allow_pickle=False) as z:
                xs.append(z["x"])
                ys.append(z["y"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as err:
            raise DataError(f"The pack file {f} is unreadable or corrupt ({err}); copy it again from its "
                            f"source or delete it to fall back to torchvision's files.") from None
    x, y = np.concatenate(xs), np.concatenate(ys)
    if stats:
        for key, arr in (("x", x), ("y", y)):
            if list(arr.shape) != stats.get(f"{key}_shape") or _sha256(arr) != stats.get(f"{key}_sha256"):
                raise DataError(f"The {name} {split} pack ({', '.join(f.name for f in files)}) in {root} does not "
                                f"match manifest.json (array {key!r} has another shape or checksum); copy the "
                                f"pack again.")
    expected = DATASETS[name][1]
    if x.dtype != np.uint8 or tuple(x.shape[1:]) != expected or len(x) != len(y):
        raise DataError(f"The {name} {split} pack in {root} holds x of shape {x.shape} ({x.dtype}) and "
                        f"{len(y)} labels; expected uint8 images of shape (N, {', '.join(map(str, expected))}).")
    return x, y.astype(np.int64)


def read_torchvision(root: Path, name: str, split: str, download: bool) -> tuple[np.ndarray, np.ndarray]:
    import torchvision.datasets as tvd  # optional: only this fallback needs torchvision

    cls = getattr(tvd, DATASETS[name][0])
    ds = cls(str(root), train=(split == "train"), download=download)
    x = ds.data.numpy() if isinstance(ds.data, torch.Tensor) else np.asarray(ds.data)
    return x.astype(np.uint8), np.asarray(ds.targets, dtype=np.int64)


def read_arrays(name: str, split: str, root: Path | str | None = None,
                download: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, H, W[, C]) uint8 and labels (N,) int64 as NumPy arrays, from a pack or torchvision."""
    if name not in DATASETS:
        raise DataError(f"Unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.")
    if split not in SPLITS:
        raise DataError(f"Unknown split {split!r}; choose 'train' or 'test'.")
    root = Path(root) if root is not None else data_dir()
    if pack_files(root, name, split):
        return read_pack(root, name, split)
    download = download_allowed() if download is None else download
    if not download and not root.is_dir():
        raise DataError(f"The data folder {root} does not exist. Point REPRO_DATA_DIR at the folder that holds "
                        f"the packs ({name}_{split}.npz ... with manifest.json), or set REPRO_DOWNLOAD=1 to let "
                        f"torchvision download {name} there (needs network).")
    try:
        return read_torchvision(root, name, split, download=download)
    except (RuntimeError, OSError, ImportError) as err:
        if download:
            raise DataError(f"Could not download {name} into {root} ({err}).") from None
    raise DataError(
        f"No {name} {split} data in {root}. Either put the offline packs there ({name}_{split}.npz or "
        f"{name}_{split}_part0.npz ..., with manifest.json) or point REPRO_DATA_DIR at a folder that holds "
        f"them, or let torchvision download it by setting REPRO_DOWNLOAD=1 (needs network).")


@dataclass
class VisionData:
    """A split as tensors on one device: x uint8 NCHW, y int64. Batches are slices or index gathers."""

    x: torch.Tensor
    y: torch.Tensor
    num_classes: int

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, n: int, generator: torch.Generator | None = None) -> VisionData:
        """The first n examples, or n drawn uniformly without replacement when a generator is given."""
        if n > len(self):
            raise DataError(f"Asked for {n} examples but the split has {len(self)}.")
        if generator is None:
            return VisionData(self.x[:n], self.y[:n], self.num_classes)
        idx = torch.randperm(len(self), generator=generator)[:n].to(self.y.device)
        return VisionData(self.x[idx], self.y[idx], self.num_classes)


def load_dataset(name: str, split: str, device: torch.device | str = "cpu", root: Path | str | None = None,
                 download: bool | None = None) -> VisionData:
    x, y = read_arrays(name, split, root, download)
    x = torch.from_numpy(x)
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()
    return VisionData(x.to(device), torch.from_numpy(y).to(device), DATASETS[name][2])
