"""Device choice, seeding, and a description of the machine for provenance."""

from __future__ import annotations

import contextlib
import os
import platform
import random
from collections.abc import Iterator

import numpy as np
import torch


def get_device(name: str = "auto") -> torch.device:
    """CUDA when present (or asked for), CPU otherwise. `REPRO_DEVICE` overrides `auto`."""
    name = os.environ.get("REPRO_DEVICE", name) if name == "auto" else name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("CUDA was requested but this PyTorch sees no GPU; use device 'cpu' or 'auto'.")
    return device


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch, and return a torch generator to pass explicitly where it matters."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def device_name(device: torch.device | str | None = None) -> str:
    """A human-readable name: the GPU model, or the CPU model with its thread count."""
    device = torch.device(device) if device is not None else get_device()
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"CPU ({cpu}, {torch.get_num_threads()} threads)"


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU tensor (random draws of a CPU generator) on `device` without stopping the host: on CUDA it goes
    through pinned memory with a non-blocking copy, ordered on the current stream (PyTorch keeps the pinned block
    until the copy is done). A plain `.to(device)` from pageable memory waits for the GPU to drain at every call,
    so no CPU work overlaps the GPU's. Elsewhere the tensor itself."""
    if device.type != "cuda":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)


@contextlib.contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """Run a block with n CPU threads (None: unchanged). Tiny models gain nothing from a second thread and lose
    much when the cores are shared, since threads spin waiting for each other; sums may then differ in the last
    bits from a run with more threads."""
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
