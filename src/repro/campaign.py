"""A campaign: turn one short GPU window into recorded paper-scale units, K of them in flight at once.

`python -m repro campaign --budget SECONDS --out DIR [--preset paper] [--chapters ...] [--workers K] [--dry-run]`
1. takes the throughput of the networks the pending units train from the bench recorded on this device, or
   measures it (repro.bench: one unit alone against the papers' DataLoader loop, and K units in flight for
   K = 1, 2, 4, 8) and records it;
2. sizes K, the units in flight, from that bench: the smallest K whose measured aggregate throughput for the
   pending work is within KNEE of the best, capped by the CPU cores and by the GPU memory a unit needs
   (choose_workers); each worker process has its own CUDA context and one CPU thread (on a CPU, the cores
   shared out);
3. estimates each pending unit's time at K as a fixed overhead plus its image passes over its share (1/K) of
   the aggregate throughput, and starts the units that fit the time left, in order of value (VALUE_ORDER, then
   each chapter's own order), whenever a worker is free;
4. writes each finished unit at once, from this process, into the recorded folder and into DIR's bundle
   `units-K.json` (atomic rewrite, each under 16 MiB: a window returns few files), skipping units already
   recorded at the current experiment version and redoing stale or corrupt ones;
5. stops every worker at the deadline and packs the checkpoints of every unit left unfinished into DIR as
   pieces, within the files a window returns (RETURN_FILES, the bundles counted), to resume in the next window.
Units whose datasets are not present (sharp minima's C3/C4 need CIFAR-100, which the offline packs lack) are
listed as "needs DATASET" and skipped: not run and not failed. `--dry-run` prints the plan and, from the
recorded bench, the windows each chapter still needs. `python -m repro campaign --take DIR` checks a returned
bundle and files its units under results/recorded/.

No papermill, Jupyter or IPython here: this runs on a bare PyTorch with PYTHONPATH=src.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from repro.pieces import MiB, join, split
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
BENCH_VERSION = 2  # 2: units in flight (K = 1, 2, 4, 8), the machine's cores and free GPU memory
BENCH_STEPS, BENCH_WARMUP = 30, 5
BUNDLE_LIMIT = 15 * MiB  # bytes of one bundle file; a window returns files of at most 16 MiB
RETURN_FILES = 8  # files a window returns from $OUT: the bundles and the checkpoint pieces share them
# A 15-minute window (900 s of device time, starting the machine and every transfer counted) spends about 90 s
# starting the machine, two calls that carry about 60 MiB of data each (README: the call sequence) and the last
# call's transfers and returned files; the campaign's --budget 420 (the last call's 480 s timeout less a
# minute's margin) is the compute left, the bench included when none is recorded for the device.
WINDOW_COMPUTE_S = 420.0
# K is the smallest number of units in flight whose aggregate throughput is within this fraction of the best
# measured: fewer units in flight finish sooner each, so fewer are lost at a window's deadline.
KNEE = 0.10
POLL_S = 1.0  # the campaign looks at its clock at least this often while units run
# GPU memory of a unit: its bench peak (weights, optimizer, activations of one batch) twice over for the
# evaluations' larger batches and the measurements, plus its CUDA context and its dataset on the device.
UNIT_MEMORY_FACTOR, UNIT_MEMORY_FIXED_MB = 2.0, 2048.0


def ident(unit: Unit) -> str:
    return f"{unit.chapter}:{unit.name}"


@dataclasses.dataclass
class Planned:
    """A unit in the campaign's plan: its state ("recorded", "pending", "stale", "corrupt", or "needs" when its
    data are missing), a note, and its estimated seconds at the campaign's K (None: no estimate)."""

    unit: Unit
    state: str
    note: str
    estimate_s: float | None

    @property
    def pending(self) -> bool:
        return self.state not in ("recorded", "needs")


# ------------------------------------------------------------------------------------------------ throughput


@dataclasses.dataclass
class Throughput:
    """A recorded bench as the campaign uses it: per network, one unit's images/s alone and the aggregate
    images/s of K units in flight, one unit's peak memory; the machine's cores and free GPU memory."""

    device: str
    date: str
    single: dict[str, float]
    flight: dict[str, dict[int, float]]
    memory_mb: dict[str, float]
    cpu_count: int
    free_memory_mb: float | None

    @classmethod
    def from_report(cls, report: dict[str, Any], date: str = "") -> Throughput:
        rows = {r["model"]: r for r in report["rows"]}
        flight = {m: {int(k): v["images_per_s"] for k, v in per.items()}
                  for m, per in (report.get("in_flight") or {}).items()}
        memory = {m: max([rows[m]["peak_memory_mb"]] + [v["peak_memory_mb"] for v in
                                                        (report.get("in_flight") or {}).get(m, {}).values()])
                  for m in rows}
        return cls(report["device"], date, {m: r["fast_images_per_s"] for m, r in rows.items()}, flight, memory,
                   int(report.get("cpu_count") or 1), report.get("free_memory_mb"))

    def aggregate(self, model: str, k: int) -> float | None:
        """Images/s of k units of `model` in flight: the measured level nearest below k (no gain assumed past
        it); one unit alone where no level was measured."""
        if model not in self.single:
            return None
        levels = [lv for lv in self.flight.get(model, {}) if lv <= k]
        return self.flight[model][max(levels)] if levels else self.single[model]

    def rates(self, k: int) -> dict[str, float]:
        """Images/s of one unit among k in flight, by network: its share of the aggregate."""
        return {m: self.aggregate(m, k) / k for m in self.single}

    def levels(self) -> list[int]:
        return sorted({1, *(lv for per in self.flight.values() for lv in per)})


def choose_workers(tp: Throughput, plan: list[Planned], cores: int | None = None,
                   free_memory_mb: float | None = None) -> tuple[int, str]:
    """K for the pending units of `plan`, with the reason: the smallest measured K whose time for all their
    bench-network image passes (network by network at its aggregate throughput) is within KNEE of the best
    measured K's, capped by the cores and by the free GPU memory over a unit's (UNIT_MEMORY_*)."""
    work: dict[str, float] = {}
    for p in plan:
        if p.pending and p.unit.work.model in tp.single:
            work[p.unit.work.model] = work.get(p.unit.work.model, 0.0) + p.unit.work.images
    cores = cores or tp.cpu_count
    caps = [f"{cores} cores"]
    cap = cores
    if free_memory_mb is not None and work:
        per_unit = max(tp.memory_mb[m] for m in work) * UNIT_MEMORY_FACTOR + UNIT_MEMORY_FIXED_MB
        cap = min(cap, max(1, int(free_memory_mb // per_unit)))
        caps.append(f"{free_memory_mb / 1024:.0f} GiB free at {per_unit / 1024:.1f} GiB a unit")
    if not work:
        return 1, "K = 1: no pending unit trains a bench network"
    candidates = [k for k in tp.levels() if k <= cap] or [1]
    seconds = {k: sum(images / tp.aggregate(m, k) for m, images in work.items()) for k in candidates}
    best = min(seconds.values())
    k = min(c for c in candidates if seconds[c] <= (1 + KNEE) * best)
    shown = ", ".join(f"K={c}: {seconds[c]:.0f} s" for c in candidates)
    return k, (f"K = {k}: the pending image passes take {shown} at the measured aggregate throughput; the "
               f"smallest K within {KNEE:.0%} of the best (capped by {' and '.join(caps)})")


def estimate_seconds(unit: Unit, rates: dict[str, float]) -> float | None:
    """OVERHEAD_S plus the unit's image passes over its network's images per second (one unit's share)."""
    model = unit.work.model
    if model is None or model not in rates or rates[model] <= 0:
        return None
    return OVERHEAD_S + unit.work.images / rates[model]


# ----------------------------------------------------------------------------------------------------- plan

UnitSource = Callable[[str, str], list[Unit]]


def unit_datasets(unit: Unit) -> tuple[str, ...]:
    """The datasets a unit reads, where its chapter declares them (Unit.datasets)."""
    return unit.datasets


def dataset_present(name: str, root: Path | None = None) -> bool:
    """Whether both splits of `name` can be read without a download: offline packs, or torchvision's files."""
    from repro.data.vision import DataError, data_dir, pack_files, read_torchvision

    root = root or data_dir()
    if all(pack_files(root, name, split) for split in ("train", "test")):
        return True
    try:
        return all(len(read_torchvision(root, name, split, download=False)[1]) for split in ("train", "test"))
    except (DataError, RuntimeError, OSError, ImportError, ValueError):
        return False


def make_plan(preset: str, chapters: list[str], rates: dict[str, float], folder: Path | None = None,
              source: UnitSource = chapter_units, present: Callable[[str], bool] = dataset_present
              ) -> list[Planned]:
    """Every unit of the chapters at the preset, in order of value, with its state in the recorded folder; a
    unit not recorded whose datasets are missing is "needs"."""
    order = sorted(chapters, key=lambda c: VALUE_ORDER.index(c) if c in VALUE_ORDER else len(VALUE_ORDER))
    plan, seen = [], {}
    for chapter in order:
        for s in unit_status(source(chapter, preset), preset, folder):
            missing = [d for d in unit_datasets(s.unit) if not seen.setdefault(d, present(d))]
            if missing and s.state != "recorded":
                plan.append(Planned(s.unit, "needs", f"needs {', '.join(missing)}", None))
            else:
                plan.append(Planned(s.unit, s.state, s.note, estimate_seconds(s.unit, rates)))
    return plan


def pick(plan: list[Planned], remaining_s: float, unknown_s: float, tried: set[str]) -> Planned | None:
    """The most valuable pending unit not yet tried whose estimate (unknown_s without one) fits the time left."""
    for item in plan:
        if item.pending and ident(item.unit) not in tried:
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


@dataclasses.dataclass
class Windows:
    """What the pending units still need: per chapter (pending units, estimated unit-seconds at K, windows of
    WINDOW_COMPUTE_S with K units in flight), and in all."""

    k: int
    rows: list[tuple[str, int, float, int]]
    total_s: float
    total: int
    too_long: list[str]
    assumed: int


def windows_left(plan: list[Planned], k: int, unknown_s: float, window_s: float = WINDOW_COMPUTE_S) -> Windows:
    """Each chapter's pending unit-seconds (a unit without an estimate counts unknown_s) over K units in flight
    times the compute of one window, rounded up; the whole campaign likewise. Units are whole, so this is a
    lower bound where they pack badly; a unit longer than a window finishes only if it checkpoints."""
    rows, total = [], 0.0
    for chapter in dict.fromkeys(p.unit.chapter for p in plan):
        pending = [p for p in plan if p.unit.chapter == chapter and p.pending]
        seconds = sum(p.estimate_s if p.estimate_s is not None else unknown_s for p in pending)
        rows.append((chapter, len(pending), seconds, math.ceil(seconds / (k * window_s))))
        total += seconds
    too_long = [ident(p.unit) for p in plan if p.pending and (p.estimate_s or 0) > window_s]
    assumed = sum(p.pending and p.estimate_s is None for p in plan)
    return Windows(k, rows, total, math.ceil(total / (k * window_s)), too_long, assumed)


def format_windows(w: Windows, unknown_s: float, window_s: float = WINDOW_COMPUTE_S) -> str:
    lines = [f"windows left at K = {w.k} units in flight, {window_s:.0f} s of compute per window:",
             f"{'chapter':<16}{'pending':>8}{'unit-seconds':>14}{'windows':>9}"]
    for chapter, n, seconds, windows in w.rows:
        lines.append(f"{chapter:<16}{n:>8}{seconds:>14.0f}{windows:>9}")
    lines.append(f"{'all':<16}{sum(r[1] for r in w.rows):>8}{w.total_s:>14.0f}{w.total:>9}")
    if w.assumed:
        lines.append(f"{w.assumed} pending unit(s) have no estimate and count {unknown_s:.0f} s each.")
    if w.too_long:
        lines.append(f"longer than one window at K = {w.k} (each finishes only if it checkpoints): "
                     + ", ".join(w.too_long))
    return "\n".join(lines)


def bench_result(report: dict[str, Any], models: list[str], device: str, wall_s: float) -> Result:
    """The bench as a recorded result (experiment `bench`), so it is kept and checked like any unit."""
    config = {"models": models, "batch_size": 128, "steps": BENCH_STEPS, "warmup": BENCH_WARMUP,
              "device": report["device"]}
    flight = report.get("in_flight") or {}
    metrics = {r["model"]: {**{k: r[k] for k in ("fast_images_per_s", "reference_images_per_s", "speedup",
                                                  "fraction_of_peak", "gflop_per_image")},
                            "in_flight_images_per_s": {k: v["images_per_s"] for k, v in
                                                       flight.get(r["model"], {}).items()}}
               for r in report["rows"]}
    return Result("bench", BENCH_VERSION, config_key("bench", BENCH_VERSION, config), config, _jsonable(metrics),
                  _jsonable(report), provenance(device, None, wall_s))


def newest_bench(device: str | None = None, folder: Path | None = None) -> Throughput | None:
    """The newest bench recorded at the current BENCH_VERSION: on `device` (its name), or, with None, on a GPU
    where one is recorded (the plan is for a GPU window), else on any device."""
    found = []
    for path in ((folder or recorded_dir()) / "bench").glob("*.json"):
        try:
            rec = check_recorded(json.loads(path.read_text()), path, BENCH_VERSION)
            if not rec.stale:
                found.append(rec.result)
        except (OSError, ValueError, TypeError, KeyError):
            continue
    if device is not None:
        found = [r for r in found if r.data.get("device") == device]
    elif any(not r.data.get("device", "CPU").startswith("CPU") for r in found):
        found = [r for r in found if not r.data.get("device", "CPU").startswith("CPU")]
    if not found:
        return None
    newest = max(found, key=lambda r: r.provenance["date"])
    try:
        return Throughput.from_report(newest.data, newest.provenance["date"])
    except (KeyError, TypeError, ValueError):
        return None


# ------------------------------------------------------------------------------------------------- execution
_UNITS: dict[tuple[Any, str, str], list[Unit]] = {}  # in a worker: the units it has looked up


def run_unit(source: UnitSource, chapter: str, preset: str, name: str, ckpt: str) -> dict[str, Any]:
    """In a worker process: compute one unit (its runs checkpoint into `ckpt`, see repro.checkpoint) and return
    {"result": its JSON}, or {"needs": why} when its data are missing or damaged."""
    from repro.data.vision import DataError

    os.environ["REPRO_CHECKPOINT_DIR"] = ckpt
    units = _UNITS.setdefault((source, chapter, preset), source(chapter, preset))
    u = next(u for u in units if u.name == name)
    with tempfile.TemporaryDirectory() as scratch:
        try:
            result = Store(scratch).run(u.experiment, u.version, u.config, u.fn, device=u.device, force=True)
        except DataError as err:
            return {"needs": str(err)}
    return {"result": _jsonable(result.to_json())}


# An event of a pool: (the planned unit, "ok" | "needs" | "error" | "timeout", result JSON or text)
Event = tuple[Planned, str, Any]


class UnitPool:
    """K worker processes (repro.workers), one unit each at a time, started when first needed; a worker that
    dies in mid-unit is reported and replaced by a fresh one for the next unit."""

    def __init__(self, k: int, preset: str, source: UnitSource, threads: int):
        from repro.workers import Worker

        self.slots: list[Worker | None] = [None] * k
        self.preset, self.source, self.threads = preset, source, threads
        self._new = lambda: Worker({"TQDM_DISABLE": "1"}, threads)  # progress bars off in the window's log

    @property
    def free(self) -> int:
        return sum(w is None or w.task is None for w in self.slots)

    @property
    def busy(self) -> int:
        return len(self.slots) - self.free

    def start(self, item: Planned, timeout_s: float) -> None:
        i = next(i for i, w in enumerate(self.slots) if w is None or w.task is None)
        if self.slots[i] is None:
            self.slots[i] = self._new()
        u = item.unit
        self.slots[i].submit(item, run_unit, self.source, u.chapter, self.preset, u.name, str(unit_checkpoints(u)))

    def wait(self, timeout_s: float) -> list[Event]:
        from repro.workers import wait

        events = []
        for w, item, status, value in wait([w for w in self.slots if w is not None], timeout_s):
            if status == "died":
                self.slots[self.slots.index(w)] = None
                w.kill()
                events.append((item, "error", value))
            elif status == "ok":
                events.append((item, "needs", value["needs"]) if "needs" in value else (item, "ok", value["result"]))
            else:
                events.append((item, status, value))
        return events

    def stop_all(self) -> list[Planned]:
        """Kill every worker in mid-unit (the deadline); returns their units."""
        stopped = []
        for i, w in enumerate(self.slots):
            if w is not None and w.task is not None:
                stopped.append(w.task)
                w.kill()
                self.slots[i] = None
        return stopped

    def close(self) -> None:
        for w in self.slots:
            if w is not None:
                w.close()


# Execute = (unit, preset, seconds allowed, its checkpoint folder) -> ("ok", result JSON) | ("needs" | "error" |
# "timeout", text): a unit runner in this process, for tests (a fake clock, fake units)
Execute = Callable[[Unit, str, float, Path], tuple[str, Any]]


class CallPool:
    """A pool of one slot that runs `execute` in this process when waited on, on the campaign's clock."""

    def __init__(self, execute: Execute, preset: str, deadline: float, clock: Callable[[], float]):
        self.execute, self.preset, self.deadline, self.clock = execute, preset, deadline, clock
        self.running: Planned | None = None

    free = property(lambda self: int(self.running is None))
    busy = property(lambda self: int(self.running is not None))

    def start(self, item: Planned, timeout_s: float) -> None:
        self.running = item

    def wait(self, timeout_s: float) -> list[Event]:
        item, self.running = self.running, None
        status, value = self.execute(item.unit, self.preset, self.deadline - self.clock(), unit_checkpoints(item.unit))
        return [(item, status, value)]

    def stop_all(self) -> list[Planned]:
        item, self.running = self.running, None
        return [item] if item is not None else []

    def close(self) -> None:
        pass


# ----------------------------------------------------------------------------------- checkpoints in pieces
# A unit that may outlast a window (its runs call repro.checkpoint.Checkpoint) checkpoints into its own folder.
# At the end of a campaign, the folders of every unit left unfinished go into DIR as one tar, ckpt-units.tar,
# cut into pieces of at most PIECE_BYTES (files that come back are at most 16 MiB), within the RETURN_FILES a
# window returns; the next window carries the pieces back (from REPRO_DATA_DIR, see scripts/pack_campaign.py)
# and each unit resumes where it stopped.
PIECE_BYTES = 15 * MiB
CKPT_TAR = "ckpt-units.tar"


def checkpoint_root() -> Path:
    return results_dir() / "checkpoints" / "units"


def unit_checkpoints(unit: Unit) -> Path:
    return checkpoint_root() / f"{unit.experiment}-{unit.key}"


def _tar_bytes(folder: Path) -> int:
    """An upper bound of a folder's bytes in a tar: 512-byte blocks, with room for long-name headers."""
    return sum(2048 + math.ceil(p.stat().st_size / 512) * 512 for p in [folder, *folder.rglob("*")])


def save_pieces(units: list[Unit], out: Path, files: int) -> tuple[list[Path], list[str]]:
    """The checkpoint folders of `units` (in their order) as out/ckpt-units.tar.partNNN and its index, in at
    most `files` files. Returns the files written and one line per unit left out (it would not fit; it starts
    over in the next window)."""
    for old in out.glob(f"{CKPT_TAR}.*"):
        old.unlink()
    folders = [(u, unit_checkpoints(u)) for u in units]
    folders = [(u, f) for u, f in folders if f.is_dir() and any(f.rglob("*.pt"))]
    capacity = (files - 1) * PIECE_BYTES - 10240  # one file is the index; the tar's end blocks
    chosen, dropped, used = [], [], 0
    for u, f in folders:
        size = _tar_bytes(f)
        if used + size <= capacity:
            chosen.append((u, f))
            used += size
        else:
            dropped.append(f"the checkpoint of {ident(u)} ({size / MiB:.1f} MiB) does not fit the {files} of "
                           f"{RETURN_FILES} returned files left; it starts over in the next window")
    if not chosen:
        return [], dropped
    with tempfile.TemporaryDirectory() as tmp:
        tar = Path(tmp) / CKPT_TAR
        with tarfile.open(tar, "w") as t:
            for _, f in chosen:
                t.add(f, arcname=f.name)
        return split(tar, out, PIECE_BYTES), dropped


def restore_pieces(*folders: Path) -> list[str]:
    """Unpack the checkpoint tar whose pieces lie in each of these folders into the units' checkpoint folders;
    returns the units' folder names."""
    restored = []
    for folder in folders:
        index = folder / f"{CKPT_TAR}.pieces.json"
        if not index.is_file():
            continue
        with tempfile.TemporaryDirectory() as tmp:
            tar = join(index, Path(tmp))
            checkpoint_root().mkdir(parents=True, exist_ok=True)
            with tarfile.open(tar) as t:
                names = sorted({m.name.split("/")[0] for m in t.getmembers()})
                for name in names:
                    shutil.rmtree(checkpoint_root() / name, ignore_errors=True)
                t.extractall(checkpoint_root(), filter="data")
        restored += names
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
    failed: list[str] = dataclasses.field(default_factory=list)  # errors, and units stopped at the deadline
    stopped: list[str] = dataclasses.field(default_factory=list)
    needs: list[str] = dataclasses.field(default_factory=list)  # skipped: their data are missing
    log: list[str] = dataclasses.field(default_factory=list)
    bench: dict[str, Any] | None = None
    workers: int = 1
    windows: Windows | None = None

    def say(self, line: str, echo: bool) -> None:
        self.log.append(line)
        if echo:
            print(line, flush=True)


def format_plan(plan: list[Planned], unknown_s: float) -> str:
    w = max([len(p.unit.name) for p in plan] + [30]) + 2
    lines = [f"{'chapter':<15}{'unit':<{w}}{'state':<16}{'network':<17}{'image passes':>14}{'estimate':>10}"]
    for p in plan:
        est = "-" if not p.pending else (f"{p.estimate_s:.0f} s" if p.estimate_s is not None
                                         else f"?({unknown_s:.0f})")
        images = f"{p.unit.work.images:.3g}" if p.unit.work.model else "-"
        state = p.note if p.state == "needs" else p.state
        lines.append(f"{p.unit.chapter:<15}{p.unit.name:<{w}}{state:<16}{p.unit.work.model or '-':<17}"
                     f"{images:>14}{est:>10}")
    pending = [p for p in plan if p.pending]
    known = sum(p.estimate_s for p in pending if p.estimate_s is not None)
    needs = sum(p.state == "needs" for p in plan)
    lines.append(f"{sum(p.state == 'recorded' for p in plan)} of {len(plan)} units recorded; {len(pending)} "
                 f"pending, {known:.0f} s estimated for those with an estimate, "
                 f"{sum(p.estimate_s is None for p in pending)} without one (assumed {unknown_s:.0f} s each)"
                 + (f"; {needs} skipped: their data are missing." if needs else "."))
    return "\n".join(lines)


def run_campaign(budget_s: float, out: Path | None, preset: str = "paper", chapters: list[str] | None = None, *,
                 dry_run: bool = False, device: str | None = None, unknown_s: float = 120.0,
                 margin_s: float | None = None, clock: Callable[[], float] = time.monotonic,
                 execute: Execute | None = None, rates: dict[str, float] | None = None, workers: int | None = None,
                 source: UnitSource = chapter_units, echo: bool = True) -> Report:
    """Plan, bench, then run the pending units that fit `budget_s`, `workers` (default: chosen from the bench)
    at a time (see the module's docstring). For tests: `clock` a fake clock, `execute` a unit runner in this
    process (one unit at a time), `rates` given images/s of one unit (no bench), `source` the units of a
    chapter and preset (a module-level function: the workers call it too)."""
    start = clock()
    if not math.isfinite(budget_s) or budget_s <= 0:
        raise ValueError(f"The budget must be a positive number of seconds, got {budget_s}.")
    if workers is not None and workers < 1:
        raise ValueError(f"The number of workers must be at least 1, got {workers}.")
    from repro.chapters import CHAPTERS

    chapters = chapters or list(CHAPTERS)
    margin = margin_s if margin_s is not None else min(30.0, 0.05 * budget_s)
    deadline = start + budget_s - margin
    folder = recorded_dir()
    if dry_run:
        tp = newest_bench() if rates is None else None
        plan = make_plan(preset, chapters, {}, folder, source)
        k = workers or 1
        if tp is not None:
            k, why = (workers, f"K = {workers} (--workers)") if workers else choose_workers(
                tp, plan, tp.cpu_count, tp.free_memory_mb)
            rates = tp.rates(k)
        plan = make_plan(preset, chapters, rates or {}, folder, source)
        report = Report(plan, workers=k)
        report.say(format_plan(plan, unknown_s), echo)
        if tp is None and rates is None:
            report.say("no bench is recorded yet: no estimates, and no windows left, until a campaign has "
                       "measured the throughput on the GPU", echo)
            return report
        if tp is not None:
            report.say(f"throughput from the bench recorded on {tp.device}, {tp.date[:10]}; {why}", echo)
        report.windows = windows_left(plan, k, unknown_s)
        report.say(format_windows(report.windows, unknown_s), echo)
        return report
    if out is None:
        raise ValueError("A campaign needs a folder for its bundles and checkpoint pieces (out).")
    out.mkdir(parents=True, exist_ok=True)
    for line in take(out, folder)[1]:  # a campaign resumed in the same DIR keeps what it finished
        print(f"refused: {line}", flush=True)
    from repro.data.vision import data_dir

    for name in restore_pieces(data_dir(), out):
        print(f"resuming from the checkpoint pieces of {name}", flush=True)
    plan = make_plan(preset, chapters, rates or {}, folder, source)
    report = Report(plan)
    import torch

    from repro.device import device_name, get_device

    dev = get_device(device or "auto")
    bundle = Bundle(out)
    k = workers or 1
    if rates is None:
        models = bench_models(plan, dev.type)
        tp = newest_bench(device_name(dev)) if models else None
        if tp is not None and not set(models) <= set(tp.single):
            tp = None  # a network the recorded bench lacks: measure again
        if tp is not None:
            report.say(f"throughput from the bench recorded on {tp.device}, {tp.date[:10]}", echo)
        elif models:
            tp = _bench(models, dev, folder, bundle, preset, report, echo)
        if tp is not None:
            free = torch.cuda.mem_get_info(dev)[0] / MiB if dev.type == "cuda" else None
            k, why = (workers, f"K = {workers} (--workers)") if workers else choose_workers(
                tp, plan, os.cpu_count(), free)
            report.say(why, echo)
            rates = tp.rates(k)
            plan[:] = make_plan(preset, chapters, rates, folder, source)
    report.workers = k
    report.say(format_plan(plan, unknown_s), echo)
    from repro.bench import worker_threads

    threads = worker_threads(dev.type, k)
    pool: UnitPool | CallPool = (CallPool(execute, preset, deadline, clock) if execute is not None
                                 else UnitPool(k, preset, source, threads))
    tried: set[str] = set()
    started: dict[str, float] = {}

    def took(item: Planned) -> float:
        return clock() - started[ident(item.unit)]

    try:
        while True:
            now = clock()
            while pool.free and (item := pick(plan, deadline - now, unknown_s, tried)) is not None:
                tried.add(ident(item.unit))
                started[ident(item.unit)] = now
                pool.start(item, deadline - now)
            if not pool.busy:
                left = [p for p in plan if p.pending and ident(p.unit) not in tried]
                report.say(f"stop: {len(left)} pending unit(s) do not fit the {max(deadline - now, 0):.0f} s left"
                           if left else "stop: no pending unit left", echo)
                break
            events = pool.wait(min(deadline - clock(), POLL_S))
            if not events and clock() >= deadline:
                events = [(item, "timeout", "stopped at the deadline") for item in pool.stop_all()]
            for item, status, value in events:
                name = ident(item.unit)
                if status == "ok":
                    shutil.rmtree(unit_checkpoints(item.unit), ignore_errors=True)
                    payload = {**value, "recorded": unit_label(item.unit, preset)}
                    write_unit_file(folder, payload)
                    where = bundle.add(payload)
                    item.state, item.note = "recorded", f"{took(item):.0f} s"
                    report.finished.append(name)
                    est = f"{item.estimate_s:.0f} s" if item.estimate_s is not None else "no estimate"
                    report.say(f"done {name} in {took(item):.1f} s ({est}) -> {where.name}", echo)
                elif status == "needs":
                    item.state, item.note = "needs", str(value).strip().splitlines()[-1]
                    report.needs.append(name)
                    report.say(f"needs data: {name} skipped: {item.note}", echo)
                else:
                    report.failed.append(name)
                    if status == "timeout":
                        report.stopped.append(name)
                    report.say(f"{status} {name} after {took(item):.1f} s: {str(value).strip().splitlines()[-1]}",
                               echo)
            if any(status == "timeout" for _, status, _ in events):
                for item in pool.stop_all():  # the deadline stops every worker
                    report.failed.append(ident(item.unit))
                    report.stopped.append(ident(item.unit))
                    report.say(f"timeout {ident(item.unit)} after {took(item):.1f} s: stopped at the deadline",
                               echo)
                break
    finally:
        pool.close()
    files = RETURN_FILES - sum(1 for f in out.iterdir() if f.is_file() and not f.name.startswith(CKPT_TAR))
    pieces, dropped = save_pieces([p.unit for p in plan if p.pending], out, files)
    for line in dropped:
        report.say(line, echo)
    if pieces:
        report.say(f"checkpoints of the unfinished units saved in {len(pieces) - 1} piece(s) {pieces[0].name} ...; "
                   f"carry them to the next window to resume", echo)
    report.say(f"campaign: {len(report.finished)} unit(s) recorded in {clock() - start:.1f} s of a "
               f"{budget_s:.0f} s budget on {device_name(dev)} with {k} unit(s) in flight", echo)
    return report


def _bench(models: list[str], dev, folder: Path, bundle: Bundle, preset: str, report: Report,
           echo: bool) -> Throughput | None:
    """Measure the networks (repro.bench, K = 1, 2, 4, 8 up to the cores), record the bench and add it to the
    bundle; None, with a line, if it fails (every unit then takes --unknown-s and K is 1 or --workers)."""
    import torch

    from repro.bench import concurrency_levels, format_report, run_bench

    t = time.perf_counter()
    try:
        bench = run_bench(models, 128, BENCH_STEPS, BENCH_WARMUP, dev, concurrency=concurrency_levels())
    except Exception as err:  # no estimates then, but the window still runs units
        report.say(f"bench failed ({type(err).__name__}: {str(err).strip().splitlines()[-1] if str(err) else ''}); "
                   f"every unit takes --unknown-s", echo)
        return None
    finally:
        if dev.type == "cuda":
            torch.cuda.empty_cache()  # the workers need the memory
    bench["command"] = "python -m repro campaign (bench)"
    result = bench_result(bench, models, str(dev), time.perf_counter() - t)
    payload = {**_jsonable(result.to_json()), "recorded": {"chapter": "bench", "preset": preset, "unit": "bench"}}
    write_unit_file(folder, payload)
    bundle.add(payload)
    report.bench = bench
    report.say(format_report(bench), echo)
    report.say(f"bench: {time.perf_counter() - t:.0f} s, recorded as bench/{result.key}.json", echo)
    return Throughput.from_report(bench, result.provenance["date"])
