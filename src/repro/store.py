"""The results store: one JSON file per (experiment, version, resolved config), written atomically.

A run is keyed by a hash of its experiment name, the experiment's version and its resolved config, so the same
request loads instead of training, and a change to the code that changes results (a version bump) or to any
parameter gives a new key. Files are written to a temporary name and renamed into place, so an interrupted
write never leaves a readable half file; an unreadable file is reported and recomputed, never half-read. Two
processes that ask for the same missing result take turns on a lock file: one computes, the other loads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import hashlib
import json
import os
import platform
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from repro.device import device_name

SCHEMA = 1
_REQUIRED = ("schema", "experiment", "version", "key", "config", "metrics", "data", "provenance")


def results_dir() -> Path:
    """`REPRO_RESULTS_DIR` (relative to the current directory), or `results/` in the project checkout."""
    env = os.environ.get("REPRO_RESULTS_DIR")
    return Path(env).expanduser().absolute() if env else project_root() / "results"


def project_root() -> Path:
    """The checkout holding `_config.yml` (the package is installed editable from it), else the cwd."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "_config.yml").exists() and (parent / "src" / "repro").is_dir():
            return parent
    return Path.cwd()


def config_key(experiment: str, version: int, config: dict[str, Any]) -> str:
    blob = json.dumps({"experiment": experiment, "version": version, "config": config}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def git_commit() -> str:
    """The checkout's commit, with `-dirty` when tracked files differ from it. Outside git (a copy of the
    working tree on a GPU machine), `REPRO_COMMIT` as written by scripts/pack_campaign.py, else `unknown`."""
    root = project_root()
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("REPRO_COMMIT", "unknown")
    return f"{sha}-dirty" if dirty else sha


def is_deterministic(device: torch.device | str) -> bool:
    """Whether the same seed gives bit-identical numbers on this device. CPU kernels are (with the same thread
    count); CUDA ones are not unless deterministic algorithms are switched on (atomics and cuDNN's autotuner
    reorder floating-point sums from run to run)."""
    if torch.device(device).type == "cpu":
        return True
    return torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.benchmark


def provenance(device: torch.device | str, seed: int | None, wall_time_s: float) -> dict[str, Any]:
    return {
        "commit": git_commit(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "device": device_name(device),
        "seed": seed,
        "deterministic": is_deterministic(device),
        "wall_time_s": round(wall_time_s, 3),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


@dataclasses.dataclass
class Result:
    """What an experiment produced: final metrics, curves/tables in `data`, and how it was made."""

    experiment: str
    version: int
    key: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    data: dict[str, Any]
    provenance: dict[str, Any]
    cached: bool = False

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("cached")
        return {"schema": SCHEMA, **out}


def _jsonable(obj: Any) -> Any:
    """Tensors and arrays become lists, NumPy scalars become Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().tolist()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes files private; results are meant to be shared
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an advisory lock on `path` (released by the kernel if the process dies). Where the file system has no
    locks, runs do not wait for each other; every write is still atomic. The lock file is removed on the way out:
    a process still waiting on the removed file then re-checks the store, and at worst computes once more."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        with contextlib.suppress(OSError):
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            path.unlink(missing_ok=True)


def _clear_leftovers(path: Path, lock: Path) -> None:
    """Remove the temporary files and the lock file that a killed writer of `path` left behind, but only while no
    live process holds the lock (a live writer's temporary file is its result in the making)."""
    temps = list(path.parent.glob(f".{path.name}.*.tmp"))
    if not temps and not lock.exists():
        return
    with open(lock, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held by a live process, or no locks on this file system: leave them
            return
        for temp in temps:
            temp.unlink(missing_ok=True)
        lock.unlink(missing_ok=True)


class Store:
    trains = True  # a store that may compute; repro.units.RecordedStore only replays recorded units

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else results_dir()

    def path(self, experiment: str, key: str) -> Path:
        return self.root / experiment / f"{key}.json"

    def load(self, experiment: str, version: int, config: dict[str, Any]) -> Result | None:
        """The stored result for this request, or None if there is none or it cannot be read."""
        key = config_key(experiment, version, config)
        path = self.path(experiment, key)
        if not path.exists():
            return None
        try:
            payload = json.loads(path.read_text())
            if not isinstance(payload, dict) or any(k not in payload for k in _REQUIRED) or payload["key"] != key:
                raise ValueError("fields missing or key mismatch")
            payload.pop("schema")
            return Result(**payload, cached=True)
        except (OSError, ValueError, TypeError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            warnings.warn(f"Ignoring unreadable result {path} ({err}); it will be recomputed.", stacklevel=2)
            return None

    def save(self, result: Result) -> Path:
        path = self.path(result.experiment, result.key)
        write_json_atomic(path, _jsonable(result.to_json()))
        return path

    def run(self, experiment: str, version: int, config: dict[str, Any],
            fn: Callable[[], dict[str, Any]], *, device: torch.device | str = "cpu",
            force: bool | None = None) -> Result:
        """Load the result for (experiment, version, config), or call fn() -> {"metrics":..., "data":...},
        record provenance, save atomically and return it. `force` (or REPRO_FORCE=1) recomputes."""
        if force is None:
            force = os.environ.get("REPRO_FORCE", "") not in ("", "0")
        key = config_key(experiment, version, config)
        path = self.path(experiment, key)
        if not force:
            cached = self.load(experiment, version, config)
            if cached is not None:
                _clear_leftovers(path, path.with_name(f".{key}.lock"))
                return _maybe_record(cached)
        with _exclusive(path.with_name(f".{key}.lock")):
            if not force:  # another process may have computed it while this one waited for the lock
                cached = self.load(experiment, version, config)
                if cached is not None:
                    return _maybe_record(cached)
            for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a killed writer of this key
                stale.unlink(missing_ok=True)
            start = time.perf_counter()
            out = fn()
            wall = time.perf_counter() - start
            result = Result(experiment=experiment, version=version, key=key, config=_jsonable(config),
                            metrics=_jsonable(out["metrics"]), data=_jsonable(out.get("data", {})),
                            provenance=provenance(device, config.get("seed"), wall))
            self.save(result)
        return _maybe_record(result)


# ------------------------------------------------------------------------------------------ recorded results
# Paper-scale results made on a GPU are kept, compact, in a tracked folder so that the book (re-run on a CPU)
# can draw them beside its own runs. `python -m repro run CHAPTER --record` sets REPRO_RECORD to a JSON
# label ({"chapter", "preset"}), and every result the chapter computes or loads is copied there.


def recorded_dir() -> Path:
    env = os.environ.get("REPRO_RECORDED_DIR")
    return Path(env).expanduser().absolute() if env else project_root() / "results" / "recorded"


def _maybe_record(result: Result) -> Result:
    label = os.environ.get("REPRO_RECORD")
    if label:
        path = recorded_dir() / result.experiment / f"{result.key}.json"
        write_json_atomic(path, {**_jsonable(result.to_json()), "recorded": json.loads(label)})
    return result


@dataclasses.dataclass
class Recorded:
    """A recorded result, and whether it still matches the code (its experiment version)."""

    result: Result
    chapter: str
    preset: str
    stale: bool
    path: Path

    @property
    def label(self) -> str:
        pv = self.result.provenance
        text = (f"recorded on {pv['device']}, {pv['date'][:10]}, commit {pv['commit']}, "
                f"preset {self.preset}, {pv['wall_time_s']:.0f} s")
        return f"STALE ({text})" if self.stale else text


def read_recorded(path: Path, current_version: int) -> Recorded:
    """Load and check one recorded file; raises ValueError if it does not match the schema."""
    return check_recorded(json.loads(Path(path).read_text()), path, current_version)


def check_recorded(payload: dict[str, Any], path: Path | str, current_version: int) -> Recorded:
    """Check a recorded result's JSON (from `path`, named in errors); raises ValueError if it does not match the
    schema, its key or the provenance fields."""
    if not isinstance(payload, dict):
        raise ValueError(f"{path} is not a JSON object")
    payload = dict(payload)
    missing = [k for k in (*_REQUIRED, "recorded") if k not in payload]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}")
    if payload["schema"] != SCHEMA:
        raise ValueError(f"{path} has schema {payload['schema']}, expected {SCHEMA}")
    if payload["key"] != config_key(payload["experiment"], payload["version"], payload["config"]):
        raise ValueError(f"{path}: key does not match its experiment, version and config")
    pv_missing = [k for k in ("commit", "device", "date", "seed", "wall_time_s", "torch") if k not in
                  payload["provenance"]]
    if pv_missing:
        raise ValueError(f"{path}: provenance lacks {', '.join(pv_missing)}")
    meta = payload.pop("recorded")
    payload.pop("schema")
    result = Result(**payload, cached=True)
    return Recorded(result, meta.get("chapter", "?"), meta.get("preset", "?"), result.version != current_version,
                    Path(path))
