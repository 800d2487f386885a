"""Throughput of the book's training path against a loop in the style of the papers' code, side by side, and
how it grows with the number of units in flight.

Fast path: `repro.train.train` (uint8 data resident on the device, batches sliced from one permutation, batched
augmentation and normalisation on the device). Reference: a torch DataLoader over a Dataset that converts each
image with PIL and torchvision transforms (random crop, flip, ToTensor, Normalize), one worker, fp32, as in
Li et al.'s and Keskar et al.'s public code. Both train the same model on the same synthetic data of the right
shape for the same number of SGD steps, after a warm-up; synthetic tensors are enough for throughput.

Units in flight: K worker processes (repro.workers, each with its own CUDA context and one CPU thread on a GPU,
the cores shared out on a CPU, as the campaign runs its units) train the fast path at once; after every
worker's warm-up, all start their timed steps together, and the aggregate is all their images over the span
from the first start to the last end. FLOPs per image are counted by torch's FlopCounterMode (one forward and
backward); the peak they are compared with is measured here: a bf16 dense matrix product on a GPU, an fp32 one
on a CPU.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import resource
import time
from collections.abc import Callable
from typing import Any

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

# Units in flight measured by default: powers of two up to the CPU cores (one CPU thread per worker).
CONCURRENCY = (1, 2, 4, 8)


def worker_threads(device_type: str, k: int, cores: int | None = None) -> int:
    """CPU threads of each of k workers: one on a GPU (the GPU does the work; a thread launches it, and the
    cores are left to the other workers), the cores shared out on a CPU."""
    return 1 if device_type == "cuda" else max(1, (cores or os.cpu_count() or 1) // k)


def concurrency_levels(levels: tuple[int, ...] = CONCURRENCY, cores: int | None = None) -> tuple[int, ...]:
    """The levels the machine can run with one core per worker (at least K = 1)."""
    cores = cores or os.cpu_count() or 1
    return tuple(k for k in levels if k <= cores) or (1,)


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


def peak_flops(device: torch.device) -> tuple[float, str]:
    """This device's measured dense matrix-product rate, FLOP/s: bf16 8192^3 on a GPU (random inputs, median of
    10 after 3 warm-ups, timed with CUDA events), fp32 1024^3 on a CPU."""
    if device.type == "cuda":
        n = 8192
        a, b = (torch.randn(n, n, device=device, dtype=torch.bfloat16) for _ in range(2))
        times = []
        for i in range(13):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            a @ b
            end.record()
            end.synchronize()
            if i >= 3:
                times.append(start.elapsed_time(end) / 1e3)
        return 2 * n**3 / sorted(times)[len(times) // 2], f"measured bf16 dense matmul {n}^3"
    size, repeats = 1024, 5
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start), f"measured fp32 matmul {size}^3"


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


# ------------------------------------------------------------------------------------------- units in flight
_PREPARED: dict[str, Any] = {}  # in a bench worker: the model and data its next timed call trains


def _prepare(model: str, batch_size: int, steps: int, warmup: int, device: str, augment: bool, threads: int) -> None:
    """In a worker: build the network and its synthetic data, and run the warm-up steps."""
    torch.set_num_threads(threads)
    dev = torch.device(device)
    build, shape = MODELS[model]
    data = synthetic(shape, batch_size * (steps + warmup + 1), dev)
    torch.manual_seed(0)
    net = build().to(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    kw = dict(batch_size=batch_size, schedule=constant(0.01, 5e-4), momentum=0.9, augment=augment and shape[0] == 3)
    train(net, data, steps=warmup, seed=1, **kw)
    _sync(dev)
    _PREPARED.update(model=net, data=data, kw=kw, steps=steps, device=dev)


def _timed() -> dict[str, float]:
    """In a worker: the prepared timed steps, as (start, end) on the machine's monotonic clock and images."""
    p = _PREPARED
    start = time.monotonic()
    train(p["model"], p["data"], steps=p["steps"], seed=2, **p["kw"])
    _sync(p["device"])
    end = time.monotonic()
    mem = (torch.cuda.max_memory_allocated(p["device"]) / 2**20 if p["device"].type == "cuda"
           else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    images = p["steps"] * p["kw"]["batch_size"]
    _PREPARED.clear()
    return {"start": start, "end": end, "images": images, "peak_memory_mb": mem}


def in_flight(models: list[str], levels: tuple[int, ...], batch_size: int, steps: int, warmup: int,
              device: torch.device, augment: bool = True) -> dict[str, dict[str, dict[str, float]]]:
    """model -> str(K) -> {"images_per_s": aggregate of K workers training at once, "peak_memory_mb": the
    largest worker's (on a GPU its peak allocation for this network; on a CPU its peak resident memory so far)}.
    Raises RuntimeError naming the model when a worker fails."""
    from repro.workers import Worker, wait

    workers = [Worker({"TQDM_DISABLE": "1"}, threads=1) for _ in range(max(levels))]

    def every(k: int, fn: Callable[..., Any], *args: Any) -> list[Any]:
        for i, w in enumerate(workers[:k]):
            w.submit(i, fn, *args)
        done: dict[int, Any] = {}
        while len(done) < k:
            for _, i, status, value in wait(workers[:k], None):
                if status != "ok":
                    raise RuntimeError(f"a bench worker ({args[0] if args else 'timed'} at K = {k}) failed: "
                                       f"{str(value).strip().splitlines()[-1]}")
                done[i] = value
        return [done[i] for i in range(k)]

    out: dict[str, dict[str, dict[str, float]]] = {}
    try:
        for m in models:
            out[m] = {}
            for k in levels:
                every(k, _prepare, m, batch_size, steps, warmup, str(device), augment,
                      worker_threads(device.type, k))
                runs = every(k, _timed)  # all k start within the sends' microseconds of each other
                span = max(r["end"] for r in runs) - min(r["start"] for r in runs)
                out[m][str(k)] = {"images_per_s": sum(r["images"] for r in runs) / span,
                                  "peak_memory_mb": max(r["peak_memory_mb"] for r in runs)}
    finally:
        for w in workers:
            w.close()
    return out


def run_bench(models: list[str], batch_size: int = 128, steps: int = 20, warmup: int = 3,
              device: torch.device | str | None = None, augment: bool = True,
              concurrency: tuple[int, ...] = ()) -> dict:
    """The loop against the DataLoader loop per model (rows), and, for each K of `concurrency`, K units in
    flight (in_flight)."""
    device = torch.device(device) if device is not None else get_device()
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"Unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}.")
    name = device_name(device)
    peak, peak_note = peak_flops(device)
    free_mb = torch.cuda.mem_get_info(device)[0] / 2**20 if device.type == "cuda" else None
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
        del model, data
    if device.type == "cuda":
        torch.cuda.empty_cache()  # the workers below need the memory
    flight = in_flight(models, tuple(concurrency), batch_size, steps, warmup, device, augment) if concurrency else {}
    return {"device": name, "torch": torch.__version__, "python": platform.python_version(),
            "peak_flops": peak, "peak_note": peak_note, "steps": steps, "warmup": warmup,
            "cpu_count": os.cpu_count(), "free_memory_mb": free_mb,
            "rows": [dataclasses.asdict(r) for r in rows], "in_flight": flight}


def format_report(report: dict) -> str:
    head = (f"device: {report['device']}, torch {report['torch']}, {report['steps']} timed steps after "
            f"{report['warmup']} warm-up; peak {report['peak_flops'] / 1e12:.2f} TFLOP/s ({report['peak_note']})")
    cols = f"{'model':<16}{'batch':>6}{'fast img/s':>12}{'ref img/s':>11}{'ratio':>7}{'fast s/ep':>11}" \
           f"{'ref s/ep':>10}{'GFLOP/img':>11}{'% peak':>8}{'peak MB':>9}"
    lines = [head, cols]
    for r in report["rows"]:
        lines.append(f"{r['model']:<16}{r['batch_size']:>6}{r['fast_images_per_s']:>12.1f}"
                     f"{r['reference_images_per_s']:>11.1f}{r['speedup']:>7.2f}{r['fast_s_per_epoch_50k']:>11.1f}"
                     f"{r['reference_s_per_epoch_50k']:>10.1f}{r['gflop_per_image']:>11.3f}"
                     f"{100 * r['fraction_of_peak']:>8.1f}{r['peak_memory_mb']:>9.0f}")
    flight = report.get("in_flight") or {}
    if flight:
        levels = sorted({int(k) for per in flight.values() for k in per})
        lines.append("units in flight: K processes training at once; aggregate images/s (% of peak), and the best "
                     "K's aggregate over the DataLoader loop's images/s")
        lines.append(f"{'model':<16}" + "".join(f"{f'K={k}':>18}" for k in levels) + f"{'best/ref':>10}"
                     f"{'MB/unit':>9}")
        for r in report["rows"]:
            per = flight.get(r["model"], {})
            cells, best = "", 0.0
            for k in levels:
                v = per.get(str(k))
                if v is None:
                    cells += f"{'-':>18}"
                    continue
                ips = v["images_per_s"]
                best = max(best, ips)
                frac = 100 * ips * r["gflop_per_image"] * 1e9 / report["peak_flops"]
                cells += f"{f'{ips:.1f} ({frac:.1f}%)':>18}"
            mem = max((v["peak_memory_mb"] for v in per.values()), default=float("nan"))
            lines.append(f"{r['model']:<16}{cells}{best / r['reference_images_per_s']:>10.2f}{mem:>9.0f}")
    return "\n".join(lines)
