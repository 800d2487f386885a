import json

from repro.bench import run_bench
from repro.cli import main


def test_bench_rejects_unknown_models(capsys):
    assert main(["bench", "--models", "VGG"]) == 2
    assert "Unknown model 'VGG' for --models; choose from F1" in capsys.readouterr().err


def test_bench_rejects_bad_concurrency(capsys):
    assert main(["bench", "--models", "F1", "--concurrency", "1,0"]) == 2
    err = capsys.readouterr().err
    assert "--concurrency must be a whole number of units in flight >= 1" in err and len(err.strip().splitlines()) == 1


def test_bench_compares_both_loops_and_units_in_flight_side_by_side(tmp_path, capsys):
    """F1 on the CPU: the book's loop against the DataLoader loop, and K = 1 and 2 worker processes timed
    together, each K's aggregate images/s printed beside the rows."""
    out = tmp_path / "bench.json"
    assert main(["bench", "--models", "F1", "--batch-size", "16", "--steps", "3", "--warmup", "1",
                 "--device", "cpu", "--concurrency", "1,2", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    [row] = report["rows"]
    assert row["fast_images_per_s"] > 0 and row["reference_images_per_s"] > 0
    assert abs(row["speedup"] - row["fast_images_per_s"] / row["reference_images_per_s"]) < 1e-9
    assert 0.005 < row["gflop_per_image"] < 0.02  # F1: about 3 x 2 x 1.46 M multiply-adds per image
    flight = report["in_flight"]["F1"]
    assert set(flight) == {"1", "2"} and all(v["images_per_s"] > 0 and v["peak_memory_mb"] > 0
                                             for v in flight.values())
    assert report["cpu_count"] >= 1 and report["free_memory_mb"] is None  # no GPU memory on a CPU
    text = capsys.readouterr().out
    assert "ratio" in text and "units in flight" in text and "best/ref" in text
    line = next(r for r in text.splitlines()[::-1] if r.startswith("F1"))
    best = max(v["images_per_s"] for v in flight.values())
    assert line.split()[-2] == f"{best / row['reference_images_per_s']:.2f}"
    peak = 100 * flight["2"]["images_per_s"] * row["gflop_per_image"] * 1e9 / report["peak_flops"]
    assert f"({peak:.1f}%)" in line


def test_run_bench_reports_the_device():
    report = run_bench(["F1"], batch_size=8, steps=1, warmup=0, device="cpu")
    assert report["device"].startswith("CPU") and report["peak_flops"] > 0 and report["in_flight"] == {}
    assert report["peak_note"] == "measured fp32 matmul 1024^3"
