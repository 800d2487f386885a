"""The same chapter, preset and seed twice on this CPU gives identical result files, apart from when they were
made and how long they took. Each chapter's run() is called twice in this process, with two separate stores."""

import json

import pytest

from repro.experiments import catapult, convex
from repro.experiments.noise_scale import point as noise_scale_point
from repro.store import Store, is_deterministic, provenance

# Smoke scale. Sharp minima and intrinsic LR check their own smoke runs against a second one in their test files.
CASES = {
    "convex": (convex, {}),
    # one run of the capstone's grid; the whole grid and its merge are checked in test_noise_scale.py
    "noise_scale.point": (noise_scale_point, {}),
    "catapult": (catapult, {"uv_width": 100, "uv_width_max": 100, "uv_grid": 10, "uv_steps": 50, "n_train": 32,
                            "n_test": 32, "width_small": 8, "width_large": 16, "cnn_channels": 2, "edge_step": 1.0,
                            "high_rates": 1, "physical_time": 10.0, "anneal_steps": 2, "lanczos_iters": 3,
                            "eos_n_train": 32, "eos_width": 8, "eos_time": 20.0, "eos_measurements": 3,
                            "dl_width": 8, "dl_n_train": 30, "dl_steps": 20, "sweep_size": 4}),
}


# Wall-clock measurements: provenance's date and wall time, and the chapters' own timings (seconds per epoch, and
# sharp minima's cost of the sharpness metric in training epochs, a ratio of two durations).
TIMINGS = ("date", "wall_time_s", "cost_in_epochs")


def without_timings(obj):
    """The file minus its wall-clock measurements."""
    if isinstance(obj, dict):
        return {k: without_timings(v) for k, v in obj.items() if k not in TIMINGS and "seconds" not in k}
    if isinstance(obj, list):
        return [without_timings(v) for v in obj]
    return obj


def stored_files(root):
    return {p.relative_to(root).as_posix(): json.loads(p.read_text()) for p in sorted(root.rglob("*.json"))}


@pytest.mark.parametrize("name", list(CASES))
def test_same_seed_same_numbers(name, tmp_path):
    module, overrides = CASES[name]
    p = module.Params.resolve("smoke", {**overrides, "device": "cpu"} if "device" in module.Params.names()
                              else overrides)
    for run in ("a", "b"):
        module.run(p, Store(tmp_path / run), force=True)
    a, b = stored_files(tmp_path / "a"), stored_files(tmp_path / "b")
    assert a and a.keys() == b.keys()
    for path in a:
        assert a[path]["provenance"]["deterministic"] is True
        assert without_timings(a[path]) == without_timings(b[path]), f"{name}: {path} differs between two runs"


def test_a_gpu_run_says_it_is_not_bit_identical(monkeypatch):
    import torch

    assert provenance("cpu", 0, 1.0)["deterministic"] is True
    monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: False)
    assert is_deterministic("cuda") is False
    monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    assert is_deterministic("cuda") is True
