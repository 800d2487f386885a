"""A campaign: turn one short GPU window into recorded paper-scale units.

`python -m repro campaign --budget SECONDS --out DIR [--preset paper] [--chapters ...] [--dry-run]`
1. measures the training throughput of the networks the pending units train (repro.bench, recorded too);
2. estimates each pending unit's time as a fixed overhead plus its image passes over that throughput;
3. runs the units that fit the time left, in order of value (VALUE_ORDER, then each chapter's own order), one
   after the other in a worker process that is stopped at the deadline, so the campaign ends in time;
4. writes each finished unit at once into the recorded folder and into DIR's bundle `units-K.json` (atomic
   rewrite, each under 16 MiB: a window returns few files), skipping units already recorded at the current
   experiment version and redoing stale or corrupt ones.
`python -m repro campaign --take DIR` checks a returned bundle and files its units under results/recorded/.

No papermill, Jupyter or IPython here: this runs on a bare PyTorch with PYTHONPATH=src.
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing as mp
import os
import shutil
import tarfile
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from repro.pieces import join, split
from repro.store import (
    Result,
    Store,
    _jsonable,
    check_recorded,
    config_key,
    provenance,
    recorded_dir,
    results_dir,
    write_json_atomic,
)
from repro.units import Unit, chapter_units, unit_label, unit_status, write_unit_file

# The chapter whose claim is least settled first: learning order's CIFAR claim rests on a WRN trained on all
# 50,000 images, which only a GPU makes (the book's CPU MLP reaches 43%); sharp minima's C1 learns to 41% at book
# scale; the catapult CNN to 16.5%; the intrinsic-LR chapter reproduces at book scale on MNIST; the convex chapter
# is CPU work and already recorded.
VALUE_ORDER = ("learning_order", "sharp_minima", "catapult", "intrinsic_lr", "convex")
OVERHEAD_S = 20.0  # per unit: loading data to the device, the first steps' kernel choices, evaluations
BENCH_VERSION = 1
BENCH_STEPS, BENCH_WARMUP = 30, 5
BUNDLE_LIMIT = 15 * 2**20  # bytes of one bundle file; a window returns files of at most 16 MiB


@dataclasses.dataclass
class Planned:
    """A unit in the campaign's plan: its recorded state and estimated seconds (None: no estimate)."""

    unit: Unit
    state: str
    note: str
    estimate_s: float | None

    @property
    def pending(self) -> bool:
        return self.state != "recorded"


def estimate_seconds(unit: Unit, rates: dict[str, float]) -> float | None:
    """OVERHEAD_S plus the unit's image passes over its network's measured images per second."""
    model = unit.work.model
    if model is None or model not in rates or rates[model] <= 0:
        return None
    return OVERHEAD_S + unit.work.images / rates[model]


def make_plan(preset: str, chapters: list[str], rates: dict[str, float], folder: Path | None = None
              ) -> list[Planned]:
    """Every unit of the chapters at the preset, in order of value, with its state in the recorded folder."""
    order = sorted(chapters, key=lambda c: VALUE_ORDER.index(c) if c in VALUE_ORDER else len(VALUE_ORDER))
    plan = []
    for chapter in order:
        for s in unit_status(chapter_units(chapter, preset), preset, folder):
            plan.append(Planned(s.unit, s.state, s.note, estimate_seconds(s.unit, rates)))
    return plan


def pick(plan: list[Planned], remaining_s: float, unknown_s: float, tried: set[str]) -> Planned | None:
    """The most valuable pending unit not yet tried whose estimate (unknown_s without one) fits the time left."""
    for item in plan:
        ident = f"{item.unit.chapter}:{item.unit.name}"
        if item.pending and ident not in tried:
            need = item.estimate_s if item.estimate_s is not None else unknown_s
            if need <= remaining_s:
                return item
    return None


def bench_models(plan: list[Planned], device_type: str) -> list[str]:
    """The bench networks the pending units train; on CUDA always WRN-16-10, the learning-order network."""
    from repro.bench import MODELS

    models = {p.unit.work.model for p in plan if p.pending and p.unit.work.model in MODELS}
    if device_type == "cuda":
        models.add("WRN-16-10")
    return [m for m in MODELS if m in models]


def bench_result(report: dict[str, Any], models: list[str], device: str, wall_s: float) -> Result:
    """The bench as a recorded result (experiment `bench`), so it is kept and checked like any unit."""
    config = {"models": models, "batch_size": 128, "steps": BENCH_STEPS, "warmup": BENCH_WARMUP,
              "device": report["device"]}
    metrics = {r["model"]: {k: r[k] for k in ("fast_images_per_s", "reference_images_per_s", "speedup",
                                                "fraction_of_peak")} for r in report["rows"]}
    return Result("bench", BENCH_VERSION, config_key("bench", BENCH_VERSION, config), config, _jsonable(metrics),
                  _jsonable(report), provenance(device, None, wall_s))


# ------------------------------------------------------------------------------------------------- execution


def _worker(conn, env: dict[str, str]) -> None:
    """Runs units one at a time for the campaign: receives (chapter, preset, unit name, checkpoint folder),
    sends back the unit's result JSON, or an error text."""
    os.environ.update(env)
    units: dict[tuple[str, str], list[Unit]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        while True:
            msg = conn.recv()
            if msg is None:
                return
            chapter, preset, name, ckpt = msg
            os.environ["REPRO_CHECKPOINT_DIR"] = ckpt  # the unit's runs checkpoint here (repro.checkpoint)
            try:
                found = units.setdefault((chapter, preset), chapter_units(chapter, preset))
                u = next(u for u in found if u.name == name)
                result = Store(scratch).run(u.experiment, u.version, u.config, u.fn, device=u.device, force=True)
                conn.send(("ok", _jsonable(result.to_json())))
            except Exception:  # one failing unit is reported; the campaign goes on with the next
                conn.send(("error", traceback.format_exc(limit=4)))


class Worker:
    """A worker process (spawned: CUDA cannot be forked) that the campaign stops when a unit overruns."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        # progress bars off: a remote call returns only the end of the output, which should be the campaign's
        env = {**{k: v for k, v in os.environ.items() if k.startswith("REPRO_")}, "TQDM_DISABLE": "1"}
        self.proc = ctx.Process(target=_worker, args=(child, env), daemon=True)
        self.proc.start()

    def __call__(self, unit: Unit, preset: str, timeout_s: float, ckpt: Path) -> tuple[str, Any]:
        try:
            self.conn.send((unit.chapter, preset, unit.name, str(ckpt)))
            if self.conn.poll(max(timeout_s, 0.0)):
                return self.conn.recv()
        except (EOFError, OSError):  # the worker died (out of memory, a crash): report it, start another
            self.stop()
            return "error", f"the worker process ended with exit code {self.proc.exitcode}"
        self.stop()
        return "timeout", f"stopped at the deadline after {timeout_s:.0f} s"

    def stop(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(10)

    def close(self) -> None:
        if self.proc.is_alive():
            try:
                self.conn.send(None)
                self.proc.join(10)
            except (BrokenPipeError, OSError):
                pass
        self.stop()


# Execute = (unit, preset, seconds allowed, its checkpoint folder) -> ("ok", result JSON) | ("error" | "timeout", text)
Execute = Callable[[Unit, str, float, Path], tuple[str, Any]]


# ----------------------------------------------------------------------------------- checkpoints in pieces
# A unit that may outlast a window (its runs call repro.checkpoint.Checkpoint) checkpoints into its own folder.
# When the campaign stops it at the deadline, that folder goes into DIR as one tar cut into pieces of at most
# PIECE_BYTES (files that come back are at most 16 MiB); the next window carries the pieces back (from
# REPRO_DATA_DIR, see scripts/pack_campaign.py) and the unit resumes where it stopped.
PIECE_BYTES = 15 * 2**20


def checkpoint_root() -> Path:
    return results_dir() / "checkpoints" / "units"


def unit_checkpoints(unit: Unit) -> Path:
    return checkpoint_root() / f"{unit.experiment}-{unit.key}"


def save_pieces(unit: Unit, out: Path) -> list[Path]:
    """The unit's checkpoint folder as DIR/ckpt-EXPERIMENT-KEY.tar.partNNN and its index; [] if it is empty."""
    folder = unit_checkpoints(unit)
    if not folder.is_dir() or not any(folder.rglob("*.pt")):
        return []
    with tempfile.TemporaryDirectory() as tmp:
        tar = Path(tmp) / f"ckpt-{folder.name}.tar"
        with tarfile.open(tar, "w") as t:
            t.add(folder, arcname=".")
        for old in out.glob(f"{tar.name}.*"):
            old.unlink()
        return split(tar, out, PIECE_BYTES)


def restore_pieces(*folders: Path) -> list[str]:
    """Unpack every checkpoint tar whose pieces lie in these folders into its unit's checkpoint folder."""
    restored = []
    for folder in folders:
        for index in sorted(folder.glob("ckpt-*.tar.pieces.json")) if folder.is_dir() else []:
            name = index.name.removeprefix("ckpt-").removesuffix(".tar.pieces.json")
            with tempfile.TemporaryDirectory() as tmp:
                tar = join(index, Path(tmp))
                dest = checkpoint_root() / name
                dest.mkdir(parents=True, exist_ok=True)
                with tarfile.open(tar) as t:
                    t.extractall(dest, filter="data")
            restored.append(name)
    return restored


class Bundle:
    """DIR/units-K.json: every unit this campaign finished, rewritten atomically after each one; a new file
    starts when one would pass BUNDLE_LIMIT."""

    def __init__(self, out: Path):
        self.out = out
        self.index, self.payloads = 0, []
        while (out / f"units-{self.index}.json").exists():
            self.index += 1

    def add(self, payload: dict[str, Any]) -> Path:
        size = len(json.dumps({"units": [*self.payloads, payload]}))
        if self.payloads and size > BUNDLE_LIMIT:
            self.index, self.payloads = self.index + 1, []
        self.payloads.append(payload)
        path = self.out / f"units-{self.index}.json"
        write_json_atomic(path, {"units": self.payloads})
        return path


def take(source: Path, folder: Path | None = None) -> tuple[list[Path], list[str]]:
    """File the units of the bundles in `source` (a folder of units-K.json, or one such file) under the
    recorded folder, each checked first. Returns the files written and one line per unit refused."""
    folder = folder or recorded_dir()
    files = sorted(source.glob("units-*.json")) if source.is_dir() else [source]
    written, refused = [], []
    for path in files:
        try:
            payloads = json.loads(path.read_text())["units"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            refused.append(f"{path.name}: unreadable bundle ({err})")
            continue
        for i, payload in enumerate(payloads):
            try:
                check_recorded(payload, f"{path.name}[{i}]", -1)
                if "unit" not in payload["recorded"]:
                    raise ValueError(f"{path.name}[{i}] is not a campaign unit")
            except (ValueError, TypeError, KeyError) as err:
                refused.append(str(err))
                continue
            written.append(write_unit_file(folder, payload))
    return written, refused


@dataclasses.dataclass
class Report:
    plan: list[Planned]
    finished: list[str] = dataclasses.field(default_factory=list)
    failed: list[str] = dataclasses.field(default_factory=list)
    log: list[str] = dataclasses.field(default_factory=list)
    bench: dict[str, Any] | None = None

    def say(self, line: str, echo: bool) -> None:
        self.log.append(line)
        if echo:
            print(line, flush=True)


def format_plan(plan: list[Planned], unknown_s: float) -> str:
    lines = [f"{'chapter':<15}{'unit':<34}{'state':<10}{'network':<17}{'image passes':>14}{'estimate':>10}"]
    for p in plan:
        est = "-" if not p.pending else (f"{p.estimate_s:.0f} s" if p.estimate_s is not None
                                         else f"?({unknown_s:.0f})")
        images = f"{p.unit.work.images:.3g}" if p.unit.work.model else "-"
        lines.append(f"{p.unit.chapter:<15}{p.unit.name:<34}{p.state:<10}{p.unit.work.model or '-':<17}"
                     f"{images:>14}{est:>10}")
    pending = [p for p in plan if p.pending]
    known = sum(p.estimate_s for p in pending if p.estimate_s is not None)
    lines.append(f"{len(plan) - len(pending)} of {len(plan)} units recorded; {len(pending)} pending, "
                 f"{known:.0f} s estimated for those with an estimate, "
                 f"{sum(p.estimate_s is None for p in pending)} without one (assumed {unknown_s:.0f} s each).")
    return "\n".join(lines)


def newest_bench() -> dict[str, float]:
    """Images per second by network from the newest recorded bench (for a dry run, which measures nothing)."""
    found = []
    for path in (recorded_dir() / "bench").glob("*.json"):
        try:
            found.append(check_recorded(json.loads(path.read_text()), path, BENCH_VERSION))
        except (OSError, ValueError, TypeError):
            continue
    if not found:
        return {}
    newest = max(found, key=lambda r: r.result.provenance["date"]).result
    return {m: v["fast_images_per_s"] for m, v in newest.metrics.items()}


def run_campaign(budget_s: float, out: Path | None, preset: str = "paper", chapters: list[str] | None = None, *,
                 dry_run: bool = False, device: str | None = None, unknown_s: float = 120.0,
                 margin_s: float | None = None, clock: Callable[[], float] = time.monotonic,
                 execute: Execute | None = None, rates: dict[str, float] | None = None,
                 echo: bool = True) -> Report:
    """Plan, bench, then run the pending units that fit `budget_s` (see the module's docstring). `clock`,
    `execute` and `rates` are for tests: a fake clock, a fake unit runner and given throughputs."""
    start = clock()
    if not math.isfinite(budget_s) or budget_s <= 0:
        raise ValueError(f"The budget must be a positive number of seconds, got {budget_s}.")
    from repro.runner import CHAPTERS

    chapters = chapters or list(CHAPTERS)
    margin = margin_s if margin_s is not None else min(30.0, 0.05 * budget_s)
    deadline = start + budget_s - margin
    folder = recorded_dir()
    if out is not None and not dry_run:
        out.mkdir(parents=True, exist_ok=True)
        for line in take(out, folder)[1]:  # a campaign resumed in the same DIR keeps what it finished
            print(f"refused: {line}", flush=True)
        from repro.data.vision import data_dir

        for name in restore_pieces(data_dir(), out):
            print(f"resuming from the checkpoint pieces of {name}", flush=True)
    plan = make_plan(preset, chapters, rates or (newest_bench() if dry_run else {}), folder)
    report = Report(plan)
    if dry_run:
        report.say(format_plan(plan, unknown_s), echo)
        return report
    import torch

    from repro.device import get_device

    dev = get_device(device or "auto")
    models = bench_models(plan, dev.type) if rates is None else []
    bundle = Bundle(out)
    if models:
        from repro.bench import format_report, run_bench

        t = time.perf_counter()
        try:
            bench = run_bench(models, 128, BENCH_STEPS, BENCH_WARMUP, dev)
        except Exception as err:  # no estimates then, but the window still runs units
            report.say(f"bench failed ({type(err).__name__}: {err}); every unit takes --unknown-s", echo)
            models = []
    if models:
        bench["command"] = "python -m repro campaign (bench)"
        result = bench_result(bench, models, str(dev), time.perf_counter() - t)
        payload = {**_jsonable(result.to_json()), "recorded": {"chapter": "bench", "preset": preset,
                                                               "unit": "bench"}}
        write_unit_file(folder, payload)
        bundle.add(payload)
        report.bench = bench
        report.say(format_report(bench), echo)
        rates = {r["model"]: r["fast_images_per_s"] for r in bench["rows"]}
        if dev.type == "cuda":
            torch.cuda.empty_cache()  # the worker process needs the memory
        plan[:] = make_plan(preset, chapters, rates, folder)
    report.say(format_plan(plan, unknown_s), echo)
    owned = execute is None
    tried: set[str] = set()
    worker: Worker | None = None
    try:
        while True:
            remaining = deadline - clock()
            item = pick(plan, remaining, unknown_s, tried)
            if item is None:
                left = [p for p in plan if p.pending and f"{p.unit.chapter}:{p.unit.name}" not in tried]
                report.say(f"stop: {len(left)} pending unit(s) do not fit the {max(remaining, 0):.0f} s left"
                           if left else "stop: no pending unit left", echo)
                break
            ident = f"{item.unit.chapter}:{item.unit.name}"
            tried.add(ident)
            if owned and worker is None:
                worker = Worker()
            run = execute or worker
            t0 = clock()
            status, value = run(item.unit, preset, deadline - t0, unit_checkpoints(item.unit))
            took = clock() - t0
            if status == "ok":
                shutil.rmtree(unit_checkpoints(item.unit), ignore_errors=True)
                payload = {**value, "recorded": unit_label(item.unit, preset)}
                write_unit_file(folder, payload)
                where = bundle.add(payload)
                item.state, item.note = "recorded", f"{took:.0f} s"
                report.finished.append(ident)
                est = f"{item.estimate_s:.0f} s" if item.estimate_s is not None else "no estimate"
                report.say(f"done {ident} in {took:.1f} s ({est}) -> {where.name}", echo)
            else:
                if worker is not None and not worker.proc.is_alive():
                    worker = None  # the next unit gets a fresh worker
                report.failed.append(ident)
                report.say(f"{status} {ident} after {took:.1f} s: {str(value).strip().splitlines()[-1]}", echo)
                if status == "timeout":
                    worker = None
                    pieces = save_pieces(item.unit, out)
                    if pieces:
                        report.say(f"checkpoint of {ident} saved in {len(pieces) - 1} piece(s) "
                                   f"{pieces[0].name} ...; carry them to the next window to resume", echo)
                    break
    finally:
        if worker is not None:
            worker.close()
    report.say(f"campaign: {len(report.finished)} unit(s) recorded in {clock() - start:.1f} s of a "
               f"{budget_s:.0f} s budget on {torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu'}",
               echo)
    return report
