"""Units and the GPU campaign: every paper preset split exactly once, the budget logic on a fake clock, a real
smoke campaign stopped partway and resumed, bundles, and damaged or stale unit files."""

import json
import shutil
import subprocess
import sys
import time

import pytest
import torch

from repro import campaign as C
from repro.cli import main
from repro.experiments import intrinsic_lr, sharp_minima
from repro.runner import CHAPTERS, resolve
from repro.store import Result, Store, _jsonable, config_key, provenance, read_recorded
from repro.units import MergedRecorded, Unit, chapter_units, merged_recorded, unit_label, unit_status

# experiments that gather units and train nothing themselves
MERGES = {"sharp_minima", "sharp_minima_net", "intrinsic_lr", "catapult_nets", "catapult_linear", "catapult_eos",
          "noise_scale"}


@pytest.fixture
def recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_RECORDED_DIR", str(tmp_path / "recorded"))
    return tmp_path / "recorded"


class SpyStore(Store):
    """Serves every unit with an empty result and records the calls; lets only the chapters' merges run."""

    trains = False

    def __init__(self, units: list[Unit]):
        super().__init__("/nonexistent")
        self.units = {(u.experiment, u.key) for u in units}
        self.calls: list[tuple[str, str]] = []

    def run(self, experiment, version, config, fn, *, device="cpu", force=None):
        key = config_key(experiment, version, config)
        fake = Result(experiment, version, key, config, {}, {}, {})
        if (experiment, key) in self.units:
            self.calls.append((experiment, key))
            return fake
        assert experiment in MERGES, f"run() computes {experiment} outside its units"
        try:
            fn()
        except (KeyError, IndexError, TypeError, ValueError):
            pass  # a merge of empty results; the calls it made are what is checked
        return fake


@pytest.mark.parametrize("chapter", list(CHAPTERS))
def test_units_cover_the_paper_preset_exactly_once(chapter):
    units = chapter_units(chapter, "paper")
    p = resolve(chapter, "paper")
    expected = {"learning_order": lambda: 2 + p.cifar_seeds * (3 + 3 + 2 + p.iid_noise),
                "sharp_minima": lambda: (len(p.network_list()) + 1) * p.seeds + 1 + (p.extension_seeds > 0),
                "catapult": lambda: 8 + p.eos_lrs, "intrinsic_lr": lambda: 5, "convex": lambda: 1,
                "noise_scale": lambda: len(p.points())}[chapter]()
    assert len(units) == expected
    spy = SpyStore(units)
    import importlib

    importlib.import_module(f"repro.experiments.{chapter}").run(p, store=spy)
    assert sorted(spy.calls) == sorted((u.experiment, u.key) for u in units)  # each unit once, nothing else
    assert len({u.name for u in units}) == len(units) and all(u.chapter == chapter for u in units)


def test_learning_order_paper_units_are_the_papers_runs():
    names = [u.name for u in chapter_units("learning_order", "paper")]
    assert names[:5] == ["theory/main", "theory/ablations", "patch/large_lr/seed0", "patch/small_lr/seed0",
                         "patch/small_lr_noise/seed0"]
    u = chapter_units("learning_order", "paper")[2]
    # 60 epochs of 390 batches of 128, plus three 10,000-image evaluations per epoch at a third of a pass
    assert u.work.model == "WRN-16-10" and u.work.images == 60 * (390 * 128 + 3 * 10_000 / 3)


def _payload(unit: Unit, preset: str, metrics=None) -> dict:
    r = Result(unit.experiment, unit.version, unit.key, unit.config, metrics or {"x": 1.0}, {},
               provenance("cpu", unit.config.get("seed"), 1.0))
    return {**_jsonable(r.to_json()), "recorded": unit_label(unit, preset)}


def test_budget_logic_on_a_fake_clock(recorded, tmp_path):
    """Units run in order of value while their estimate fits; a unit that does not fit is passed over for a
    smaller one; a unit that overruns is stopped at the deadline and the campaign ends there."""
    units = chapter_units("sharp_minima", "smoke")  # net/F1/seed0, net/F1/seed1, remedy, hoffer/seed0, 1: F1 work
    rate = 10.0
    est = {u.name: C.OVERHEAD_S + u.work.images / rate for u in units}
    now = [0.0]
    true = est | {"remedy": 3 * est["remedy"]}  # the remedy overruns
    calls = []

    def execute(unit, preset, timeout, ckpt):
        calls.append((unit.name, timeout))
        if true[unit.name] > timeout:
            now[0] += timeout
            return "timeout", "stopped"
        now[0] += true[unit.name]
        return "ok", _payload(unit, preset)

    budget = est["net/F1/seed0"] + est["remedy"] + 10.0  # the first and the remedy fit, the others do not
    assert all(e > est["remedy"] + 10.0 for k, e in est.items() if k not in ("net/F1/seed0", "remedy"))
    report = C.run_campaign(budget, tmp_path / "out", "smoke", ["sharp_minima"], execute=execute,
                            rates={"F1": rate}, margin_s=5.0, clock=lambda: now[0], echo=False)
    assert [c[0] for c in calls] == ["net/F1/seed0", "remedy"]
    assert calls[1][1] == pytest.approx(budget - 5.0 - est["net/F1/seed0"])  # the time left: the remedy's timeout
    assert report.finished == ["sharp_minima:net/F1/seed0"] and report.failed == ["sharp_minima:remedy"]
    assert now[0] <= budget - 5.0
    assert [s.state for s in unit_status(units, "smoke")] == ["recorded"] + ["pending"] * (len(units) - 1)
    assert C.pick(report.plan, 1e9, 1.0, {"sharp_minima:net/F1/seed1"}).unit.name == "remedy"
    assert C.pick(report.plan, min(est.values()) - 1, 1.0, set()) is None  # nothing left fits


def test_a_real_smoke_campaign_stops_partway_and_the_next_one_finishes(recorded, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["campaign", "--out", str(out), "--preset", "smoke", "--chapters", "convex,intrinsic_lr"]
    start = time.perf_counter()
    # 10.5 s assumed per unit (none has an estimate) in a 14 s budget: units start only in the first 2.8 s, so
    # the first one starts, and the six cannot all start, since the spawned worker alone takes seconds to import torch
    assert main([*args, "--budget", "14", "--unknown-s", "10.5"]) == 0
    assert time.perf_counter() - start < 14 + 3
    first = [s for s in unit_status(chapter_units("intrinsic_lr", "smoke") + chapter_units("convex", "smoke"),
                                    "smoke") if s.state == "recorded"]
    assert 1 <= len(first) <= 5 and first[0].unit.name == "toy"
    bundle = json.loads((out / "units-0.json").read_text())["units"]
    assert len(bundle) == len(first)
    for s in first:  # readable, with full provenance
        rec = read_recorded(recorded / s.unit.path, s.unit.version)
        assert rec.preset == "smoke" and rec.result.provenance["wall_time_s"] > 0
    capsys.readouterr()
    assert main([*args, "--budget", "120", "--unknown-s", "1"]) == 0
    log = capsys.readouterr().out
    assert all(f"done intrinsic_lr:{s.unit.name} " not in log for s in first)  # not redone
    assert "campaign: " + f"{6 - len(first)} unit(s) recorded" in log
    second = json.loads((out / "units-1.json").read_text())["units"]  # a new bundle; the first one kept
    assert len(second) == 6 - len(first) and {u["key"] for u in bundle}.isdisjoint(u["key"] for u in second)
    merged = merged_recorded("intrinsic_lr", "smoke")
    assert merged.summary.startswith("5 of the smoke preset's 5 units are recorded")
    direct = intrinsic_lr.run(resolve("intrinsic_lr", "smoke"))
    assert json.dumps(merged.result.metrics) == json.dumps(direct.metrics)  # the chapter draws the same numbers


def test_the_worker_is_stopped_at_the_deadline(tmp_path):
    worker = C.Worker()
    unit = chapter_units("convex", "paper")[0]
    start = time.perf_counter()
    status, text = worker(unit, "paper", 0.5, tmp_path)
    assert status == "timeout" and "deadline" in text and not worker.proc.is_alive()
    assert time.perf_counter() - start < 5
    status, text = worker(unit, "paper", 5.0, tmp_path)  # a dead worker is reported, not waited for
    assert status == "error" and "worker process ended" in text and time.perf_counter() - start < 5


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
    total = sum(len(chapter_units(c, "paper")) for c in CHAPTERS)
    assert len(lines) == total + 2 and lines[1].startswith("learning_order theory/main")
    assert lines[-1].startswith(f"0 of {total} units recorded; {total} pending")


@pytest.mark.parametrize("argv, message", [
    (["--budget", "0", "--out", "x"], "--budget SECONDS (> 0)"),
    (["--budget", "60"], "--out DIR"),
    (["--budget", "60", "--dry-run", "--chapters", "sharp"], "Unknown chapter 'sharp'"),
    (["--budget", "60", "--dry-run", "--preset", "huge"], "Unknown preset 'huge'"),
    (["--budget", "60", "--out", "x", "--device", "cuda"], "needs a GPU"),
    (["--take", "/nonexistent/returned"], "does not exist"),
])
def test_bad_campaign_arguments_stop_with_one_line(argv, message, capsys):
    assert main(["campaign", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_sharp_minima_units_estimate_training_and_measurement_passes():
    p = resolve("sharp_minima", "paper")
    f1 = {u.name: u for u in chapter_units("sharp_minima", "paper") if u.name.startswith("net/F1/")}
    assert list(f1) == [f"net/F1/seed{i}" for i in range(5)]
    train = p.epochs * (60_000 // 256 * 256) + p.large_batch_epochs * (60_000 // 6000 * 6000)
    measure = 2 * 10_000 * (4 * 1.5 * p.sharpness_iters + 2 * p.lanczos_iters)
    interp = 25 * (2 * 50_000 + 10_000) / 3  # the first seed only
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
    monkeypatch.setattr(C, "PIECE_BYTES", 4096)
    unit = chapter_units("intrinsic_lr", "smoke")[1]
    blob = torch.arange(3000, dtype=torch.float64)  # 24 kB: several pieces

    def execute(u, preset, timeout, ckpt):
        (ckpt / "runs").mkdir(parents=True)
        torch.save({"w": blob}, ckpt / "runs" / "r.pt")
        return "timeout", "stopped"

    report = C.run_campaign(60, tmp_path / "out", "smoke", ["intrinsic_lr"], execute=execute, rates={},
                            unknown_s=1, echo=False)
    assert report.failed == ["intrinsic_lr:toy"]  # the first unit is the one stopped
    toy = chapter_units("intrinsic_lr", "smoke")[0]
    pieces = sorted((tmp_path / "out").glob("ckpt-*"))
    assert len(pieces) >= 4 and all(p.stat().st_size <= 4096 for p in pieces[:-1])
    assert pieces[-1].name == f"ckpt-{toy.experiment}-{toy.key}.tar.pieces.json" and unit.key != toy.key
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


def test_the_bench_is_recorded_and_gives_a_dry_run_its_estimates(recorded):
    rows = [{"model": "WRN-16-10", "fast_images_per_s": 5000.0, "reference_images_per_s": 800.0, "speedup": 6.25,
             "fraction_of_peak": 0.3}]
    report = {"device": "NVIDIA H200", "rows": rows}
    result = C.bench_result(report, ["WRN-16-10"], "cpu", 12.0)
    C.write_unit_file(recorded, {**_jsonable(result.to_json()),
                                 "recorded": {"chapter": "bench", "preset": "paper", "unit": "bench"}})
    rec = read_recorded(recorded / "bench" / f"{result.key}.json", C.BENCH_VERSION)
    assert rec.result.metrics["WRN-16-10"]["speedup"] == 6.25
    assert C.newest_bench() == {"WRN-16-10": 5000.0}
    plan = C.run_campaign(600, None, "paper", ["learning_order"], dry_run=True, echo=False).plan
    patch = next(p for p in plan if p.unit.name == "patch/large_lr/seed0")
    assert patch.estimate_s == pytest.approx(C.OVERHEAD_S + 60 * (390 * 128 + 10_000) / 5000.0)
    assert next(p for p in plan if p.unit.name == "patch/small_lr_noise/seed0").estimate_s is None  # not benched


def test_a_chapter_says_how_many_of_its_paper_units_are_recorded(recorded):
    from repro.report import recorded_summary

    text = recorded_summary([], "sharp_minima", merged_recorded("sharp_minima"))
    assert text.startswith("0 of the paper preset's 32 units are recorded at the current code version.")
    assert "python -m repro campaign" in text and "--preset paper --record" in text
