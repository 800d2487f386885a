"""Throughput of the book's training path against a loop in the style of the papers' code, side by side.

Fast path: `repro.train.train` (uint8 data resident on the device, batches sliced from one permutation, batched
augmentation and normalisation on the device). Reference: a torch DataLoader over a Dataset that converts each
image with PIL and torchvision transforms (random crop, flip, ToTensor, Normalize), one worker, fp32, as in
Li et al.'s and Keskar et al.'s public code. Both train the same model on the same synthetic data of the right
shape for the same number of SGD steps, after a warm-up; synthetic tensors are enough for throughput.
"""

from __future__ import annotations

import dataclasses
import platform
import resource
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from repro.data import VisionData
from repro.device import device_name, get_device
from repro.models.keskar import C1, C2, F1
from repro.models.preresnet import preresnet32
from repro.models.wrn import WideResNet, set_act_noise
from repro.train.loop import constant, train

# name -> (constructor, input shape C, H, W)
MODELS: dict[str, tuple[Callable[[], nn.Module], tuple[int, int, int]]] = {
    "F1": (F1, (1, 28, 28)),
    "C1": (C1, (3, 32, 32)),
    "C2": (C2, (3, 32, 32)),
    "PreResNet-32": (preresnet32, (3, 32, 32)),
    "WRN-16-4": (lambda: WideResNet(16, 4), (3, 32, 32)),
    "WRN-16-10": (lambda: WideResNet(16, 10), (3, 32, 32)),
    "WRN-16-10+noise": (lambda: _noisy(WideResNet(16, 10)), (3, 32, 32)),  # Li et al.'s pre-activation noise
}


def _noisy(model: nn.Module, std: float = 0.4) -> nn.Module:
    set_act_noise(model, std)
    return model

# Dense peak FLOP/s by GPU name (bf16 tensor cores, no sparsity), from the vendors' data sheets.
GPU_PEAK_FLOPS = {"H100 SXM": 989e12, "H100 PCIe": 756e12, "H100": 989e12, "H200": 989e12, "A100": 312e12}


@dataclasses.dataclass
class Row:
    model: str
    batch_size: int
    fast_images_per_s: float
    reference_images_per_s: float
    speedup: float
    fast_s_per_epoch_50k: float
    reference_s_per_epoch_50k: float
    gflop_per_image: float
    fraction_of_peak: float
    peak_memory_mb: float


def synthetic(shape: tuple[int, int, int], n: int, device: torch.device, seed: int = 0) -> VisionData:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, *shape), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 10, (n,), generator=g)
    return VisionData(x.to(device), y.to(device), 10)


def train_flops_per_image(model: nn.Module, shape: tuple[int, int, int], device: torch.device) -> float:
    """Forward + backward FLOPs for one image, counted by torch's FlopCounterMode on a batch of 2."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(2, *shape, device=device)
    counter = FlopCounterMode(display=False)
    with counter:
        model(x).sum().backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 2


def cpu_peak_flops(size: int = 1024, repeats: int = 5) -> float:
    """Measured fp32 matmul FLOP/s of this CPU: the reference for 'fraction of peak' on a CPU."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_fast(model: nn.Module, data: VisionData, batch_size: int, steps: int, warmup: int, augment: bool) -> float:
    """Seconds for `steps` SGD steps of the book's loop, after `warmup` steps."""
    kw = dict(batch_size=batch_size, schedule=constant(0.01, 5e-4), momentum=0.9, augment=augment)
    train(model, data, steps=warmup, seed=1, **kw)
    _sync(data.x.device)
    start = time.perf_counter()
    train(model, data, steps=steps, seed=2, **kw)
    _sync(data.x.device)
    return time.perf_counter() - start


class _PerSampleDataset(torch.utils.data.Dataset):
    """What the papers' loaders do: one PIL image and one transform pipeline per sample."""

    def __init__(self, x: np.ndarray, y: np.ndarray, augment: bool):
        from torchvision import transforms as T

        self.x, self.y = x, y
        gray = x.shape[-1] == 1
        mean, std = ((0.1307,), (0.3081,)) if gray else ((0.491, 0.482, 0.447), (0.247, 0.243, 0.262))
        steps = [T.RandomCrop(x.shape[1], padding=4), T.RandomHorizontalFlip()] if augment else []
        self.transform = T.Compose([*steps, T.ToTensor(), T.Normalize(mean, std)])

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        from PIL import Image

        img = self.x[i][..., 0] if self.x.shape[-1] == 1 else self.x[i]
        return self.transform(Image.fromarray(img)), int(self.y[i])


def time_reference(model: nn.Module, data: VisionData, batch_size: int, steps: int, warmup: int,
                   augment: bool) -> float:
    device = data.x.device
    x = data.x.permute(0, 2, 3, 1).cpu().numpy()
    loader = torch.utils.data.DataLoader(_PerSampleDataset(x, data.y.cpu().numpy(), augment), batch_size=batch_size,
                                         shuffle=True, num_workers=1, pin_memory=device.type == "cuda",
                                         drop_last=True, persistent_workers=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    done, start = 0, None
    while done < warmup + steps:
        for xb, yb in loader:
            if done == warmup:
                _sync(device)
                start = time.perf_counter()
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
            done += 1
            if done == warmup + steps:
                break
    _sync(device)
    return time.perf_counter() - start


def run_bench(models: list[str], batch_size: int = 128, steps: int = 20, warmup: int = 3,
              device: torch.device | str | None = None, augment: bool = True) -> dict:
    device = torch.device(device) if device is not None else get_device()
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"Unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}.")
    name = device_name(device)
    if device.type == "cuda":
        peak = next((v for k, v in GPU_PEAK_FLOPS.items() if k in name), float("nan"))
        peak_note = "vendor dense bf16 peak"
    else:
        peak, peak_note = cpu_peak_flops(), "measured fp32 matmul"
    rows = []
    for m in models:
        build, shape = MODELS[m]
        n = batch_size * (steps + warmup + 1)
        data = synthetic(shape, n, device)
        torch.manual_seed(0)
        model = build().to(device)
        flops = train_flops_per_image(model, shape, device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        fast = time_fast(model, data, batch_size, steps, warmup, augment and shape[0] == 3)
        mem = (torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda"
               else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        torch.manual_seed(0)
        ref = time_reference(build().to(device), data, batch_size, steps, warmup, augment and shape[0] == 3)
        fast_ips, ref_ips = steps * batch_size / fast, steps * batch_size / ref
        rows.append(Row(m, batch_size, fast_ips, ref_ips, fast_ips / ref_ips, 50_000 / fast_ips, 50_000 / ref_ips,
                        flops / 1e9, flops * fast_ips / peak, mem))
    return {"device": name, "torch": torch.__version__, "python": platform.python_version(),
            "peak_flops": peak, "peak_note": peak_note, "steps": steps, "warmup": warmup,
            "rows": [dataclasses.asdict(r) for r in rows]}


def format_report(report: dict) -> str:
    head = (f"device: {report['device']}, torch {report['torch']}, {report['steps']} timed steps after "
            f"{report['warmup']} warm-up; peak {report['peak_flops'] / 1e12:.2f} TFLOP/s ({report['peak_note']})")
    cols = f"{'model':<13}{'batch':>6}{'fast img/s':>12}{'ref img/s':>11}{'ratio':>7}{'fast s/ep':>11}" \
           f"{'ref s/ep':>10}{'GFLOP/img':>11}{'% peak':>8}{'peak MB':>9}"
    lines = [head, cols]
    for r in report["rows"]:
        lines.append(f"{r['model']:<13}{r['batch_size']:>6}{r['fast_images_per_s']:>12.1f}"
                     f"{r['reference_images_per_s']:>11.1f}{r['speedup']:>7.2f}{r['fast_s_per_epoch_50k']:>11.1f}"
                     f"{r['reference_s_per_epoch_50k']:>10.1f}{r['gflop_per_image']:>11.3f}"
                     f"{100 * r['fraction_of_peak']:>8.1f}{r['peak_memory_mb']:>9.0f}")
    return "\n".join(lines)
