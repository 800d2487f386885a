"""Units and the GPU campaign: every paper preset split exactly once, the budget logic on a fake clock, a real
smoke campaign stopped partway and resumed, bundles, and damaged or stale unit files."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import campaign_units
import pytest
import torch

from repro import campaign as C
from repro.chapters import CHAPTERS, resolve
from repro.cli import main
from repro.experiments import intrinsic_lr, sharp_minima
from repro.store import Result, Store, _jsonable, config_key, provenance, read_recorded
from repro.units import MergedRecorded, Unit, chapter_units, merged_recorded, unit_label, unit_status

# experiments that gather units and train nothing themselves
MERGES = {"sharp_minima", "sharp_minima_net", "intrinsic_lr", "catapult_nets", "catapult_linear", "catapult_eos",
          "noise_scale"}


@pytest.fixture
def recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_RECORDED_DIR", str(tmp_path / "recorded"))
    return tmp_path / "recorded"


class Unserved(Exception):
    """A merge read the content of a unit the spy serves: the spy has none to give."""


class Blank(dict):
    """A served unit's metrics, data and provenance: any read raises Unserved."""

    def _unserved(self, *args, **kwargs):
        raise Unserved

    __getitem__ = get = __iter__ = __len__ = __contains__ = keys = values = items = _unserved


class SpyStore(Store):
    """Serves every unit with a blank result and records the calls; lets only the chapters' merges run. A merge
    runs until it reads a served unit's content (Unserved, the one exception caught here): so a merge that calls
    a unit twice, computes something that is no unit, or fails before it reads its units fails the test."""

    trains = False

    def __init__(self, units: list[Unit]):
        super().__init__("/nonexistent")
        self.units = {(u.experiment, u.key) for u in units}
        self.calls: list[tuple[str, str]] = []

    def run(self, experiment, version, config, fn, *, device="cpu", force=None):
        key = config_key(experiment, version, config)
        blank = Result(experiment, version, key, config, Blank(), Blank(), Blank())
        if (experiment, key) in self.units:
            self.calls.append((experiment, key))
            return blank
        assert experiment in MERGES, f"run() computes {experiment} outside its units"
        try:
            fn()
        except Unserved:
            pass  # the merge reached its units' numbers; the calls it made are what is checked
        return blank


@pytest.mark.parametrize("chapter", list(CHAPTERS))
def test_units_cover_the_paper_preset_exactly_once(chapter):
    units = chapter_units(chapter, "paper")
    p = resolve(chapter, "paper")
    expected = {"learning_order": lambda: 3 + p.cifar_seeds * (3 + 3 + 2 + p.iid_noise),
                "sharp_minima": lambda: (len(p.network_list()) + 2) * p.seeds + (p.extension_seeds > 0),
                "catapult": lambda: 8 + p.eos_lrs, "intrinsic_lr": lambda: 5, "convex": lambda: 1,
                "noise_scale": lambda: len(p.points())}[chapter]()
    assert len(units) == expected
    spy = SpyStore(units)
    import importlib

    try:
        importlib.import_module(f"repro.experiments.{chapter}").run(p, store=spy)
    except Unserved:
        pass  # the chapter's typed result reads its units' numbers; the calls it made are what is checked
    assert sorted(spy.calls) == sorted((u.experiment, u.key) for u in units)  # each unit once, nothing else
    assert len({u.name for u in units}) == len(units) and all(u.chapter == chapter for u in units)


def test_learning_order_paper_units_are_the_papers_runs():
    names = [u.name for u in chapter_units("learning_order", "paper")]
    assert names[:5] == ["theory/main", "theory/search", "theory/ablations", "patch/large_lr/seed0",
                         "patch/small_lr/seed0"]
    u = chapter_units("learning_order", "paper")[3]
    # 30 epochs of 390 batches of 128, plus three 10,000-image evaluations per epoch at a third of a pass
    assert u.work.model == "WRN-16-10" and u.work.images == 30 * (390 * 128 + 3 * 10_000 / 3)


def _payload(unit: Unit, preset: str, metrics=None) -> dict:
    r = Result(unit.experiment, unit.version, unit.key, unit.config, metrics or {"x": 1.0}, {},
               provenance("cpu", unit.config.get("seed"), 1.0))
    return {**_jsonable(r.to_json()), "recorded": unit_label(unit, preset)}


def test_budget_logic_on_a_fake_clock(recorded, tmp_path):
    """Units run in order of value while their estimate fits; a unit that does not fit is passed over for a
    smaller one; a unit that overruns is stopped at the deadline and the campaign ends there."""
    units = chapter_units("sharp_minima", "smoke")  # net/F1/seed0, net/F1/seed1, hoffer/seed0, recipe/seed0, ...
    rate = 10.0
    est = {u.name: C.OVERHEAD_S + u.work.images / rate for u in units}
    now = [0.0]
    true = est | {"hoffer/seed0": 3 * est["hoffer/seed0"]}  # the first train-longer unit overruns
    calls = []

    def execute(unit, preset, timeout, ckpt):
        calls.append((unit.name, timeout))
        if true[unit.name] > timeout:
            now[0] += timeout
            return "timeout", "stopped"
        now[0] += true[unit.name]
        return "ok", _payload(unit, preset)

    budget = est["net/F1/seed0"] + est["hoffer/seed0"] + 10.0  # the first and hoffer/seed0 fit, the others do not
    assert all(e > est["hoffer/seed0"] + 10.0 for k, e in est.items() if k not in ("net/F1/seed0", "hoffer/seed0",
                                                                                   "hoffer/seed1"))
    report = C.run_campaign(budget, tmp_path / "out", "smoke", ["sharp_minima"], execute=execute,
                            rates={"F1": rate}, margin_s=5.0, clock=lambda: now[0], echo=False)
    assert [c[0] for c in calls] == ["net/F1/seed0", "hoffer/seed0"]
    assert calls[1][1] == pytest.approx(budget - 5.0 - est["net/F1/seed0"])  # the time left: its timeout
    assert report.finished == ["sharp_minima:net/F1/seed0"] and report.failed == ["sharp_minima:hoffer/seed0"]
    assert now[0] <= budget - 5.0
    assert [s.state for s in unit_status(units, "smoke")] == ["recorded"] + ["pending"] * (len(units) - 1)
    assert C.pick(report.plan, 1e9, 1.0, {"sharp_minima:net/F1/seed1"}).unit.name == "hoffer/seed0"
    assert C.pick(report.plan, min(est.values()) - 1, 1.0, set()) is None  # nothing left fits


def test_a_real_smoke_campaign_stops_partway_and_the_next_one_finishes(recorded, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["campaign", "--out", str(out), "--preset", "smoke", "--chapters", "convex,intrinsic_lr"]
    toy = chapter_units("intrinsic_lr", "smoke")[0]

    def clock():  # the budget is spent once the first unit, the toy model, is recorded (whenever that is)
        return time.monotonic() + 3600 * (recorded / toy.path).exists()

    report = C.run_campaign(600, out, "smoke", ["convex", "intrinsic_lr"], clock=clock, unknown_s=10, echo=False)
    assert report.finished == ["intrinsic_lr:toy"] and report.log[-2].startswith("stop: 5 pending unit(s) do not fit")
    first = [s for s in unit_status(chapter_units("intrinsic_lr", "smoke") + chapter_units("convex", "smoke"),
                                    "smoke") if s.state == "recorded"]
    assert [s.unit.name for s in first] == ["toy"]
    bundle = json.loads((out / "units-0.json").read_text())["units"]
    assert len(bundle) == len(first)
    for s in first:  # readable, with full provenance
        rec = read_recorded(recorded / s.unit.path, s.unit.version)
        assert rec.preset == "smoke" and rec.result.provenance["wall_time_s"] > 0
    capsys.readouterr()
    assert main([*args, "--budget", "600", "--unknown-s", "1", "--workers", "2"]) == 0  # the rest, two at a time
    log = capsys.readouterr().out
    assert all(f"done intrinsic_lr:{s.unit.name} " not in log for s in first)  # not redone
    assert "campaign: " + f"{6 - len(first)} unit(s) recorded" in log
    second = json.loads((out / "units-1.json").read_text())["units"]  # a new bundle; the first one kept
    assert len(second) == 6 - len(first) and {u["key"] for u in bundle}.isdisjoint(u["key"] for u in second)
    merged = merged_recorded("intrinsic_lr", "smoke")
    assert merged.summary.startswith("5 of the smoke preset's 5 units are recorded")
    direct = intrinsic_lr.run(resolve("intrinsic_lr", "smoke"))
    # the chapter draws the numbers of a run in one process: those of units run one or two at a time
    assert json.dumps(merged.result.metrics) == json.dumps(direct.metrics)


def test_a_worker_reports_its_calls_errors_and_death():
    """One worker process through every outcome; killing one at the deadline is in
    test_two_units_in_flight_are_both_stopped_at_the_deadline_then_resumed_and_never_redone."""
    from repro.workers import Worker, exit_text, wait

    w = Worker()
    w.submit("a", divmod, 7, 2)
    assert wait([w], 60) == [(w, "a", "ok", (3, 1))]
    w.submit("b", divmod, 1, 0)
    [(_, _, status, text)] = wait([w], 60)
    assert status == "error" and text.strip().splitlines()[-1].startswith("ZeroDivisionError: integer division")
    w.submit("u", campaign_units.units, "slow", "smoke")  # units hold closures: their return cannot be pickled
    [(_, _, status, text)] = wait([w], 60)
    assert status == "error" and "Can't pickle" in text and w.alive
    w.submit("s", time.sleep, 60)
    assert wait([w], 0.2) == [] and w.task == "s"  # still running
    os.kill(w.proc.pid, signal.SIGKILL)  # as the kernel's out-of-memory killer would
    assert wait([w], 60) == [(w, "s", "died", "the worker process was killed by SIGKILL (out of memory?)")]
    assert exit_text(7) == "the worker process ended with exit code 7"


def test_corrupt_and_stale_unit_files_are_reported_and_redone(recorded):
    units = chapter_units("intrinsic_lr", "smoke")
    toy, drop = units[0], units[1]
    (recorded / toy.experiment).mkdir(parents=True)
    (recorded / toy.path).write_text('{"schema": 1, "experi')  # cut short
    old = Unit(drop.chapter, drop.name, drop.experiment, drop.version - 1, drop.config, drop.fn)
    C.write_unit_file(recorded, _payload(old, "smoke"))
    states = {s.unit.name: s for s in unit_status(units, "smoke")}
    assert states["toy"].state == "corrupt" and "unreadable" in states["toy"].note
    assert states["drop"].state == "stale" and f"version {drop.version - 1}" in states["drop"].note
    m = MergedRecorded("intrinsic_lr", "smoke", list(states.values()))
    assert m.n_recorded == 0 and "toy (corrupt" in m.summary and "drop (stale" in m.summary
    plan = C.make_plan("smoke", ["intrinsic_lr"], {}, recorded)
    assert all(p.pending for p in plan)  # both are redone
    assert merged_recorded("intrinsic_lr", "smoke").result is None  # never drawn


def test_take_files_good_units_and_refuses_tampered_ones(recorded, tmp_path):
    units = chapter_units("sharp_minima", "smoke")
    good, bad = _payload(units[0], "smoke"), _payload(units[1], "smoke")
    bad["config"]["seed"] = 99
    (tmp_path / "units-0.json").write_text(json.dumps({"units": [good, bad]}))
    written, refused = C.take(tmp_path)
    assert [p.name for p in written] == [f"{units[0].key}.json"] and len(refused) == 1
    assert "key does not match" in refused[0]
    assert [s.state for s in unit_status(units, "smoke")] == ["recorded"] + ["pending"] * (len(units) - 1)


def test_bundles_roll_over_before_16_mib(tmp_path, monkeypatch):
    monkeypatch.setattr(C, "BUNDLE_LIMIT", 300)
    b = C.Bundle(tmp_path)
    assert b.add({"experiment": "a", "pad": "x" * 200}).name == "units-0.json"
    assert b.add({"experiment": "b", "pad": "x" * 200}).name == "units-1.json"
    assert C.Bundle(tmp_path).index == 2  # a later campaign in the same folder starts a new file


def test_dry_run_prints_the_plan_without_papermill_or_jupyter(tmp_path):
    code = ("import sys\nfor m in ('papermill', 'jupytext', 'IPython', 'nbformat'): sys.modules[m] = None\n"
            "from repro.cli import main\nsys.exit(main(['campaign', '--budget', '600', '--dry-run']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "REPRO_RECORDED_DIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    units = [u for c in CHAPTERS for u in chapter_units(c, "paper")]
    total, needs = len(units), sum("cifar100" in u.datasets for u in units)  # the packs hold no CIFAR-100
    assert len(lines) == total + 3 and lines[1].startswith("learning_order theory/main")
    assert lines[-2].startswith(f"0 of {total} units recorded; {total - needs} pending")
    assert lines[-2].endswith(f"; {needs} skipped: their data are missing.") and needs > 0
    assert lines[-1].startswith("no bench is recorded yet")


@pytest.mark.parametrize("argv, message", [
    (["--budget", "0", "--out", "x"], "--budget must be a finite number of seconds > 0"),
    (["--budget", "60"], "--out DIR"),
    (["--budget", "60", "--dry-run", "--chapters", "sharp"], "Unknown chapter 'sharp'"),
    (["--budget", "60", "--dry-run", "--preset", "huge"], "Unknown preset 'huge'"),
    (["--budget", "60", "--out", "x", "--device", "cuda"], "needs a GPU"),
    (["--take", "/nonexistent/returned"], "does not exist"),
    (["--budget", "60", "--out", "x", "--workers", "0"], "--workers must be a whole number of units in flight >= 1"),
])
def test_bad_campaign_arguments_stop_with_one_line(argv, message, capsys):
    assert main(["campaign", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_sharp_minima_units_estimate_training_and_measurement_passes():
    p = resolve("sharp_minima", "paper")
    f1 = {u.name: u for u in chapter_units("sharp_minima", "paper") if u.name.startswith("net/F1/")}
    assert list(f1) == [f"net/F1/seed{i}" for i in range(3)]
    train = p.epochs * (60_000 // 256 * 256) + p.large_batch_epochs * (60_000 // 6000 * 6000)
    # five Metric 2.1 maximisations (four variants, and eval-mode BN) and Lanczos on all 60,000 training images
    measure = 2 * 60_000 * (5 * 1.5 * p.sharpness_iters + 2 * p.lanczos_iters)
    interp = 25 * (2 * 10_000 + 10_000) / 3  # the first seed only
    assert f1["net/F1/seed0"].work.model == "F1"
    assert f1["net/F1/seed0"].work.images == pytest.approx(train + measure + interp)
    assert f1["net/F1/seed1"].work == sharp_minima.Work("F1", train + measure)
    assert "seeds" not in f1["net/F1/seed1"].config and f1["net/F1/seed1"].config["run"] == 1


class _StopAt(Exception):
    pass


def _tracked_run(ckpt, stop_at: int | None = None):
    """A BN MLP trained 4 epochs with a NormTracker; optionally interrupted after step `stop_at`."""
    from repro.data import VisionData
    from repro.metrics.norms import NormTracker
    from repro.models.bn import BNMLP
    from repro.train.loop import constant, train

    g = torch.Generator().manual_seed(0)
    data = VisionData(torch.randint(0, 256, (96, 1, 4, 4), generator=g, dtype=torch.uint8),
                      torch.randint(0, 10, (96,), generator=g), 10)
    torch.manual_seed(0)
    model = BNMLP(16, width=8)

    class Tracker(NormTracker):
        def __call__(self, info):
            super().__call__(info)
            if info.step == stop_at:
                raise _StopAt

    tracker = Tracker(model, every=3)
    hist = train(model, data, steps=4 * 6, batch_size=16, schedule=constant(0.1, 5e-3), seed=0, momentum=0.9,
                 on_step=tracker, checkpoint=ckpt, eval_every=6, test_data=data)
    return hist.to_dict(), tracker.to_dict()


def test_a_checkpointed_run_with_its_norm_tracker_resumes_exactly(tmp_path):
    from repro.checkpoint import Checkpoint

    whole = _tracked_run(None)
    ckpt = Checkpoint("runs", "k", every=1, root=tmp_path)
    with pytest.raises(_StopAt):
        _tracked_run(ckpt, stop_at=14)  # in epoch 3; epochs 1 and 2 were saved
    assert torch.load(ckpt.path, weights_only=False)["step"] == 12
    assert _tracked_run(ckpt) == whole and not ckpt.path.exists()


def test_a_stopped_units_checkpoint_comes_back_in_pieces_and_is_restored(recorded, tmp_path, monkeypatch):
    monkeypatch.setattr(C, "PIECE_BYTES", 8192)
    unit = chapter_units("intrinsic_lr", "smoke")[1]
    blob = torch.arange(3000, dtype=torch.float64)  # 24 kB: several pieces

    def execute(u, preset, timeout, ckpt):
        (ckpt / "runs").mkdir(parents=True)
        torch.save({"w": blob}, ckpt / "runs" / "r.pt")
        return "timeout", "stopped"

    report = C.run_campaign(60, tmp_path / "out", "smoke", ["intrinsic_lr"], execute=execute, rates={},
                            unknown_s=1, echo=False)
    assert report.failed == report.stopped == ["intrinsic_lr:toy"]  # the first unit is the one stopped
    toy = chapter_units("intrinsic_lr", "smoke")[0]
    pieces = sorted((tmp_path / "out").glob("ckpt-*"))
    assert 4 <= len(pieces) <= C.RETURN_FILES and all(p.stat().st_size <= 8192 for p in pieces[:-1])
    assert pieces[-1].name == "ckpt-units.tar.pieces.json" and unit.key != toy.key
    shutil.rmtree(C.unit_checkpoints(toy))  # a fresh machine: only the pieces came back
    assert C.restore_pieces(tmp_path / "out") == [f"{toy.experiment}-{toy.key}"]
    assert torch.equal(torch.load(C.unit_checkpoints(toy) / "runs" / "r.pt")["w"], blob)


def test_pieces_pack_under_the_limit_and_join_checks_every_byte(tmp_path):
    from repro.pieces import join, pack, split

    files = []
    for name, size in (("a", 50), ("b", 40), ("c", 30), ("d", 20)):
        (tmp_path / name).write_bytes(bytes(range(size)))
        files.append(tmp_path / name)
    assert [[f.name for f in load] for load in pack(files, 70)] == [["a", "d"], ["b", "c"]]
    with pytest.raises(ValueError, match="larger than a load"):
        pack(files, 45)
    *parts, index = split(tmp_path / "a", tmp_path / "p", 16)
    assert [p.stat().st_size for p in parts] == [16, 16, 16, 2]
    assert join(index, tmp_path / "j").read_bytes() == (tmp_path / "a").read_bytes()
    parts[1].write_bytes(b"x" * 16)
    with pytest.raises(ValueError, match="do not match"):
        join(index, tmp_path / "j2")


def synthetic_bench(recorded, flight: dict[str, dict[int, float]], memory_mb: float = 3000.0,
                    free_mb: float | None = 140_000.0, cores: int = 16) -> None:
    """Record a bench of made-up figures on 'NVIDIA H200' (K = 1 alone: the K = 1 figure)."""
    rows = [{"model": m, "batch_size": 128, "fast_images_per_s": per[1], "reference_images_per_s": per[1] / 6,
             "speedup": 6.0, "fast_s_per_epoch_50k": 0.0, "reference_s_per_epoch_50k": 0.0, "gflop_per_image": 1.0,
             "fraction_of_peak": 0.1, "peak_memory_mb": memory_mb} for m, per in flight.items()]
    report = {"device": "NVIDIA H200", "rows": rows, "cpu_count": cores, "free_memory_mb": free_mb,
              "in_flight": {m: {str(k): {"images_per_s": v, "peak_memory_mb": memory_mb} for k, v in per.items()}
                            for m, per in flight.items()}}
    result = C.bench_result(report, list(flight), "cpu", 12.0)
    C.write_unit_file(recorded, {**_jsonable(result.to_json()),
                                 "recorded": {"chapter": "bench", "preset": "paper", "unit": "bench"}})


FLIGHT = {"F1": {1: 1000.0, 2: 1800.0, 4: 3000.0, 8: 3200.0}, "WRN-16-10": {1: 500.0, 2: 600.0, 4: 640.0, 8: 650.0}}


def test_the_windows_left_come_from_the_recorded_bench(recorded):
    """Fake units (tests/campaign_units.py, chapter "plan"): 1.32e6 F1 and 6e4 WRN-16-10 image passes, and one
    unit without a bench network. Their time at K, 1.32e6 / F1(K) + 6e4 / WRN(K), is 1440, 833, 534 and 505 s for
    K = 1, 2, 4, 8: K = 4 is the smallest within 10% of the best."""
    synthetic_bench(recorded, FLIGHT)
    assert C.newest_bench().single == {"F1": 1000.0, "WRN-16-10": 500.0}
    report = C.run_campaign(420, None, "paper", ["plan"], dry_run=True, source=campaign_units.units, unknown_s=100,
                            echo=False)
    assert report.workers == 4
    est = {p.unit.name: p.estimate_s for p in report.plan}
    # one unit's share at K = 4: 3000 / 4 images/s on F1, 640 / 4 on WRN-16-10
    assert est == {"f1/big": C.OVERHEAD_S + 1.2e6 / 750, "f1/small": C.OVERHEAD_S + 1.2e5 / 750,
                   "wrn": C.OVERHEAD_S + 6e4 / 160, "toy": None}
    seconds = 3 * C.OVERHEAD_S + 1.32e6 / 750 + 6e4 / 160 + 100  # 2295 s
    assert report.windows.rows == [("plan", 4, pytest.approx(seconds), math.ceil(seconds / (4 * 420)))]
    assert report.windows.total == 2 and report.windows.too_long == ["plan:f1/big"]
    assert report.windows.assumed == 1
    text = "\n".join(report.log)
    assert "throughput from the bench recorded on NVIDIA H200" in text and "K = 4:" in text
    assert "windows left at K = 4 units in flight, 420 s of compute per window" in text
    assert f"{'plan':<16}{4:>8}{seconds:>14.0f}{2:>9}" in text
    # --workers K overrides the choice; the estimates follow K's share of the aggregate
    report = C.run_campaign(420, None, "paper", ["plan"], dry_run=True, source=campaign_units.units, unknown_s=100,
                            workers=2, echo=False)
    assert report.workers == 2 and report.plan[0].estimate_s == C.OVERHEAD_S + 1.2e6 / (1800 / 2)


def test_k_is_capped_by_the_cores_and_the_gpu_memory(recorded):
    synthetic_bench(recorded, FLIGHT)
    tp = C.newest_bench()
    plan = C.make_plan("paper", ["plan"], {}, recorded, campaign_units.units)
    assert C.choose_workers(tp, plan, cores=16, free_memory_mb=140_000)[0] == 4
    # F1 alone: 1320, 733, 440, 413 s at K = 1, 2, 4, 8; one core, or memory for 3 units, stops it earlier
    f1 = [p for p in plan if p.unit.work.model == "F1"]
    assert C.choose_workers(tp, f1, 16, 140_000)[0] == 4
    assert C.choose_workers(tp, f1, 1, 140_000)[0] == 1
    per_unit = 3000 * C.UNIT_MEMORY_FACTOR + C.UNIT_MEMORY_FIXED_MB
    k, why = C.choose_workers(tp, f1, 16, 3 * per_unit)
    assert k == 2 and "GiB a unit" in why  # 3 units fit: the measured levels under 3 are 1 and 2
    assert C.choose_workers(tp, [p for p in plan if p.unit.work.model is None], 16, None)[0] == 1


def test_a_recorded_bench_of_another_version_or_device_is_not_used(recorded):
    synthetic_bench(recorded, FLIGHT)
    assert C.newest_bench("NVIDIA H200") is not None and C.newest_bench("CPU (x, 2 threads)") is None
    path = next((recorded / "bench").glob("*.json"))
    payload = json.loads(path.read_text())
    payload["version"] = C.BENCH_VERSION - 1
    payload["key"] = config_key("bench", payload["version"], payload["config"])
    path.write_text(json.dumps(payload))
    assert C.newest_bench() is None


def test_a_chapter_says_how_many_of_its_paper_units_are_recorded(recorded):
    from repro.report import recorded_summary

    text = recorded_summary(merged_recorded("sharp_minima"))
    total = len(chapter_units("sharp_minima", "paper"))
    assert text.startswith(f"0 of the paper preset's {total} units are recorded at the current code version.")
    assert "python -m repro campaign" in text and "--preset paper --record" in text


def test_two_units_in_flight_are_both_stopped_at_the_deadline_then_resumed_and_never_redone(recorded, tmp_path,
                                                                                            monkeypatch):
    """K = 2 worker processes (tests/campaign_units.py, chapter "slow"): both units start at once, checkpoint,
    and sleep; the campaign's clock passes the deadline once both have checkpointed, and the campaign kills both
    within a second; their checkpoints come back in one set of pieces; the next campaign resumes and records
    both; a third one runs nothing."""
    out = tmp_path / "out"
    kw = dict(preset="smoke", chapters=["slow"], source=campaign_units.units, workers=2, unknown_s=1, rates={},
              echo=False)
    units = campaign_units.units("slow", "smoke")
    files = [C.unit_checkpoints(u) / "fake" / "run.pt" for u in units]

    def clock():  # an hour later once both units have checkpointed (whenever their workers got there)
        return time.monotonic() + 3600 * all(f.exists() for f in files)

    monkeypatch.setenv("CAMPAIGN_TEST_SLEEP", "600")
    first = C.run_campaign(600, out, clock=clock, **kw)
    assert first.finished == [] and sorted(first.stopped) == ["slow:slow/a", "slow:slow/b"]
    assert "\n".join(first.log).count("stopped at the deadline") == 2
    assert sorted(p.name for p in out.iterdir())[-1] == "ckpt-units.tar.pieces.json"
    assert len(list(out.iterdir())) <= C.RETURN_FILES
    for u in units:  # a fresh machine: only the pieces come back
        shutil.rmtree(C.unit_checkpoints(u), ignore_errors=True)
    monkeypatch.setenv("CAMPAIGN_TEST_SLEEP", "0")
    second = C.run_campaign(60, out, **kw)
    assert sorted(second.finished) == ["slow:slow/a", "slow:slow/b"] and second.failed == []
    for u in units:
        assert read_recorded(recorded / u.path, u.version).result.metrics["resumed"]  # from the pieces
        assert not C.unit_checkpoints(u).exists()  # a finished unit leaves no checkpoint
    bundle = json.loads((out / "units-0.json").read_text())["units"]  # the first campaign finished none
    assert sorted(u["recorded"]["unit"] for u in bundle) == ["slow/a", "slow/b"]
    third = C.run_campaign(60, out, **kw)
    assert third.finished == third.failed == [] and "stop: no pending unit left" in third.log


@pytest.mark.parametrize("workers", [1, 2])
def test_an_error_a_crash_and_missing_data_leave_the_other_units_running(recorded, tmp_path, workers):
    """Chapter "mixed": a unit that raises, one whose worker process dies in mid-unit (os._exit), one whose data
    are missing at run time (DataError), one that declares CIFAR-100, which is not present; the two good units
    after them are recorded, by a fresh worker where the old one died."""
    report = C.run_campaign(120, tmp_path / "out", "smoke", ["mixed"], source=campaign_units.units, workers=workers,
                            unknown_s=1, rates={}, echo=False)
    assert sorted(report.finished) == ["mixed:good/a", "mixed:good/b"]
    assert sorted(report.failed) == ["mixed:boom", "mixed:crash"] and report.stopped == []
    assert report.needs == ["mixed:nodata"]
    log = "\n".join(report.log)
    assert "error mixed:boom after" in log and log.count("ValueError: boom") == 1
    assert "error mixed:crash after" in log and "the worker process ended with exit code 5" in log
    assert "needs data: mixed:nodata skipped: No cifar100 train data in /nowhere." in log
    cifar = next(p for p in report.plan if p.unit.name == "cifar100")
    assert cifar.state == "needs" and cifar.note == "needs cifar100" and "mixed:cifar100" not in log
    states = {s.unit.name: s.state for s in unit_status(campaign_units.units("mixed", "smoke"), "smoke")}
    assert states == {"boom": "pending", "crash": "pending", "nodata": "pending", "cifar100": "pending",
                      "good/a": "recorded", "good/b": "recorded"}
    plan = C.run_campaign(60, None, "smoke", ["mixed"], source=campaign_units.units, dry_run=True, rates={},
                          echo=False)
    assert "needs cifar100" in plan.log[0] and "1 skipped: their data are missing" in plan.log[0]


def test_a_failing_bench_leaves_every_unit_its_unknown_estimate(recorded, tmp_path, monkeypatch):
    import repro.bench

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA error: out of memory")

    monkeypatch.setattr(repro.bench, "run_bench", broken)
    ran = []

    def execute(unit, preset, timeout, ckpt):
        ran.append(unit.name)
        return "ok", _payload(unit, preset)

    report = C.run_campaign(600, tmp_path / "out", "smoke", ["sharp_minima"], execute=execute, unknown_s=2,
                            device="cpu", echo=False)
    assert report.log[0] == "bench failed (RuntimeError: CUDA error: out of memory); every unit takes --unknown-s"
    units = chapter_units("sharp_minima", "smoke")
    assert ran == [u.name for u in units] and all(p.estimate_s is None for p in report.plan)
    assert report.workers == 1 and not (recorded / "bench").exists()


def test_checkpoints_that_do_not_fit_the_returned_files_are_named_and_left_out(tmp_path, monkeypatch):
    """Three units' checkpoints in value order (50, 80 and 30 kB) and 3 files of 64 kB (one of them the index):
    the first and the third fit, the second is dropped and said so."""
    monkeypatch.setattr(C, "PIECE_BYTES", 64 * 1024)
    units = campaign_units.units("plan", "paper")[:3]
    for u, size in zip(units, (50_000, 80_000, 30_000), strict=True):
        (C.unit_checkpoints(u) / "runs").mkdir(parents=True)
        (C.unit_checkpoints(u) / "runs" / "r.pt").write_bytes(os.urandom(size))
    written, dropped = C.save_pieces(units, tmp_path / "out", files=3)
    assert len(written) <= 3 and written[-1].name == "ckpt-units.tar.pieces.json"
    assert len(dropped) == 1 and dropped[0].startswith("the checkpoint of plan:f1/small (0.1 MiB) does not fit")
    blobs = {u.name: (C.unit_checkpoints(u) / "runs" / "r.pt").read_bytes() for u in units}
    shutil.rmtree(C.checkpoint_root())
    assert C.restore_pieces(tmp_path / "out") == sorted(f"{u.experiment}-{u.key}" for u in (units[0], units[2]))
    for u in (units[0], units[2]):
        assert (C.unit_checkpoints(u) / "runs" / "r.pt").read_bytes() == blobs[u.name]
    assert not C.unit_checkpoints(units[1]).exists()
