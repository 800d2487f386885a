import json

from repro.bench import run_bench
from repro.cli import main


def test_bench_compares_both_loops_side_by_side(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--models", "F1", "--batch-size", "16", "--steps", "2", "--warmup", "1",
                 "--device", "cpu", "--out", str(out)]) == 0
    [row] = json.loads(out.read_text())["rows"]
    assert row["fast_images_per_s"] > 0 and row["reference_images_per_s"] > 0
    assert abs(row["speedup"] - row["fast_images_per_s"] / row["reference_images_per_s"]) < 1e-9
    assert 0.005 < row["gflop_per_image"] < 0.02  # F1: about 3 x 2 x 1.46 M multiply-adds per image
    assert "ratio" in capsys.readouterr().out


def test_bench_rejects_unknown_models(capsys):
    assert main(["bench", "--models", "VGG"]) == 2
    assert "Unknown model 'VGG' for --models; choose from F1" in capsys.readouterr().err


def test_run_bench_reports_the_device():
    report = run_bench(["F1"], batch_size=8, steps=1, warmup=0, device="cpu")
    assert report["device"].startswith("CPU") and report["peak_flops"] > 0
