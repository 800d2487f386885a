"""Sweeps: the cartesian grid of an experiment's parameters, run point by point on a pool of workers.

`python -m repro sweep NAME -g lr 0.05,0.1 -g batch_size 32,128 [-p NAME VALUE] --preset P --executor E`

NAME is a chapter (`repro.experiments.NAME` with `Params` and `run(params, store, force)`), any other module
of `repro.experiments` with the same two names, or such a module named by its path `package.module` (it must be
importable where the workers run). Every point is resolved and validated with `Params.resolve`
before anything runs. A point calls `run(params)` directly (no notebook), in a worker:

- `local`: worker processes, one per core (one torch thread each) on a CPU, or one per GPU, each pinned to
  its GPU;
- `ray`: tasks on the Ray cluster at `RAY_ADDRESS` (or `--ray-address`), or on a local cluster started for the
  sweep and stopped after it; each point asks for `--gpus-per-point` GPUs when the cluster has GPUs;
- `submitit`: one SLURM job array (`--slurm-partition`, `--timeout-min`), or submitit's local executor where
  there is no SLURM.

Workers write nothing: a worker reads stored results from the store when it can see it, and returns the new
ones; the sweep writes them into the one store (atomically, as `repro.store` does) as each point finishes. So a
re-run skips what is stored and an interrupted sweep resumes where it stopped, on any executor. A point that
fails, or whose worker dies under it (out of memory, a crash, a kill), is reported with why, and the others go
on, on every executor.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import itertools
import math
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from repro.params import PRESET_NAMES, ConfigError, Params
from repro.store import Result, Store

EXECUTORS = ("local", "ray", "submitit")


# ============================================================================================= the grid


def target_module(name: str):
    """The module `repro.experiments.NAME` (a chapter, or a package's module such as `noise_scale.point`), else the
    module path NAME importable where the workers run (`package.module`); it must define Params and run()."""
    unknown = ConfigError(f"Unknown sweep target {name!r}; give a chapter name (see `python -m repro list`), a "
                          f"module of repro.experiments, or a module path package.module.")
    if not all(part.isidentifier() for part in name.split(".")):
        raise unknown
    module = None
    for path in [f"repro.experiments.{name}"] + ([name] if "." in name else []):
        try:
            module = importlib.import_module(path)
            break
        except ModuleNotFoundError as err:
            if err.name is None or not (path == err.name or path.startswith(f"{err.name}.")):
                raise  # a module the target imports is missing
    if module is None:
        raise unknown from None
    if not (isinstance(getattr(module, "Params", None), type) and issubclass(module.Params, Params)
            and callable(getattr(module, "run", None))):
        raise ConfigError(f"{path} has no Params and run(); it cannot be swept.")
    return module


def parse_values(name: str, text: str) -> list[str]:
    """`v1,v2,...` -> the values as strings (Params converts and checks them), or one clear error."""
    values = [v.strip() for v in text.split(",")]
    if not text.strip() or any(v == "" for v in values):
        raise ConfigError(f"Grid {name} needs comma-separated values like 0.1,0.2; got {text!r}.")
    if len(set(values)) != len(values):
        raise ConfigError(f"Grid {name} repeats a value ({text}); each value must appear once.")
    return values


@dataclasses.dataclass(frozen=True)
class Point:
    """One grid point: its grid values (as given) and its resolved, validated parameters."""

    index: int
    values: dict[str, str]
    params: Params

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.values.items())


def make_grid(name: str, grid: dict[str, list[str]] | list[tuple[str, str]], fixed: dict[str, Any] | None = None,
              preset: str = "book") -> list[Point]:
    """Every point of the cartesian product of `grid` (name -> values, or (name, "v1,v2") pairs from the
    command line) on top of the preset and the `fixed` overrides, each validated. Raises ConfigError, naming
    the point, before anything runs."""
    params_cls = target_module(name).Params
    if preset not in PRESET_NAMES:
        raise ConfigError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESET_NAMES)}.")
    if isinstance(grid, list):
        pairs, grid = grid, {}
        for key, text in pairs:
            if key in grid:
                raise ConfigError(f"Grid {key} is given twice; give it once with all its values.")
            grid[key] = parse_values(key, text)
    if not grid:
        raise ConfigError("A sweep needs at least one grid: -g NAME v1,v2,...")
    fixed = dict(fixed or {})
    both = sorted(set(grid) & set(fixed))
    if both:
        raise ConfigError(f"Parameter {both[0]} is both a grid (-g) and fixed (-p); give it once.")
    unknown = [k for k in [*grid, *fixed] if k not in params_cls.names()]
    if unknown:
        params_cls.resolve(preset, {unknown[0]: None})  # raises the one-line "Unknown parameter" message
    points = []
    for i, combo in enumerate(itertools.product(*grid.values())):
        values = dict(zip(grid, map(str, combo), strict=True))
        try:
            p = params_cls.resolve(preset, {**fixed, **values})
        except ConfigError as err:
            raise ConfigError(f"Grid point {', '.join(f'{k}={v}' for k, v in values.items())}: {err}") from None
        points.append(Point(i, values, p))
    seen: dict[tuple, Point] = {}
    for pt in points:
        key = tuple(sorted(pt.params.to_dict().items()))
        if key in seen:
            raise ConfigError(f"Grid points {seen[key].label} and {pt.label} are the same run; give each value once.")
        seen[key] = pt
    return points


# =============================================================================================== a point


class CollectingStore(Store):
    """A store that reads from `root` (when this machine can see it) and keeps what it computes in memory
    instead of writing it, so that the sweep writes every result into the one store."""

    def __init__(self, root: Path | str | None):
        super().__init__(root if root is not None else "/nonexistent-store")
        self.new: list[dict[str, Any]] = []

    def save(self, result: Result) -> Path:
        from repro.store import _jsonable

        self.new.append(_jsonable(result.to_json()))
        return self.path(result.experiment, result.key)


def stored_result(name: str, params: Params, store: Store) -> Result | None:
    """The point's stored result, if its experiment stores it under the module's name (or EXPERIMENT)."""
    module = target_module(name)
    version = getattr(module, "VERSION", None)
    if version is None:
        return None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return store.load(getattr(module, "EXPERIMENT", name), version, params.to_dict())


def summary(result: Any) -> dict[str, Any]:
    """The scalar metrics of a run's result, for the sweep's table."""
    metrics = getattr(result, "metrics", None) or {}
    return {k: v for k, v in metrics.items() if isinstance(v, int | float | bool) and not isinstance(v, bool)}


def run_point(name: str, config: dict[str, Any], store_root: str | None, force: bool = False,
              threads: int | None = None) -> dict[str, Any]:
    """Run one point in a worker: {"ok", "metrics", "results" (new results as JSON), "wall_s"} or
    {"ok": False, "error": one line, "traceback"}. Never raises, so one failing point cannot stop the sweep."""
    start = time.perf_counter()
    try:
        import warnings

        import torch

        warnings.simplefilter("ignore", FutureWarning)  # library deprecation notices, not the run's business
        if threads is not None:
            torch.set_num_threads(threads)
        module = target_module(name)
        params = module.Params(**config)
        store = CollectingStore(store_root)
        result = module.run(params, store=store, force=force)
        return {"ok": True, "metrics": summary(result), "results": store.new,
                "wall_s": time.perf_counter() - start, "host": os.uname().nodename}
    except Exception as err:  # reported per point; the rest of the sweep goes on
        msg = str(err).strip().splitlines()
        return {"ok": False, "error": f"{type(err).__name__}: {msg[-1] if msg else ''}".strip(),
                "traceback": traceback.format_exc(), "wall_s": time.perf_counter() - start}


# ============================================================================================= executors
# Each executor takes the pending points and yields (point, outcome) as they finish.

Outcomes = Iterator[tuple[Point, dict[str, Any]]]


def local_gpus() -> int:
    """GPUs the local pool spreads points over: 0 on a CPU or with REPRO_DEVICE=cpu."""
    import torch

    if os.environ.get("REPRO_DEVICE", "auto") == "cpu" or not torch.cuda.is_available():
        return 0
    return torch.cuda.device_count()


def _local(name: str, points: list[Point], store_root: str, force: bool, workers: int | None = None,
           **_: Any) -> Outcomes:
    """Worker processes (repro.workers): one per core on a CPU (one torch thread each), one per GPU where there
    are GPUs, each pinned to its GPU. A worker that dies in mid-point (out of memory, a crash, a kill) fails that
    point with the reason; a fresh worker takes the next point."""
    from repro.workers import Worker, wait

    gpus = local_gpus()
    n = max(1, min(workers or gpus or os.cpu_count() or 1, len(points)))
    threads = None if gpus else max(1, (os.cpu_count() or 1) // n)
    envs = [{"CUDA_VISIBLE_DEVICES": str(i % gpus)} if gpus else {} for i in range(n)]
    pool: list[Worker | None] = [None] * n
    todo = list(points)
    try:
        while todo or any(w is not None and w.task is not None for w in pool):
            for i in range(n):
                if todo and (pool[i] is None or pool[i].task is None):
                    if pool[i] is None:
                        pool[i] = Worker(envs[i])
                    pt = todo.pop(0)
                    pool[i].submit(pt, run_point, name, pt.params.to_dict(), store_root, force, threads)
            for w, pt, status, value in wait([w for w in pool if w is not None], None):
                if status == "ok":
                    yield pt, value
                    continue
                if status == "died":
                    pool[pool.index(w)] = None
                    w.kill()
                error = f"WorkerDied: {value}" if status == "died" else str(value).strip().splitlines()[-1]
                yield pt, {"ok": False, "error": error, "wall_s": float("nan")}
    finally:
        for w in pool:
            if w is not None:
                w.close()


def _worker_env() -> dict[str, str]:
    """Environment a remote worker needs: where the package and the data are, and the device choice."""
    src = str(Path(__file__).resolve().parents[1])
    env = {"PYTHONPATH": os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])])}
    for k in ("REPRO_DATA_DIR", "REPRO_DEVICE", "REPRO_DOWNLOAD"):
        if os.environ.get(k):
            env[k] = os.environ[k]
    return env


def _ray(name: str, points: list[Point], store_root: str, force: bool, ray_address: str | None = None,
         gpus_per_point: float = 1.0, **_: Any) -> Outcomes:
    try:
        import ray
    except ImportError:
        raise ConfigError("The ray executor needs Ray: pip install 'ray[default]'.") from None
    address = ray_address or os.environ.get("RAY_ADDRESS")
    env = _worker_env()
    if address:
        # an existing cluster: ship the package with the job; its machines need the requirements installed
        runtime_env = {"py_modules": [str(Path(__file__).resolve().parent)],
                       "env_vars": {k: v for k, v in env.items() if k != "PYTHONPATH"}}
        try:
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
        except ConnectionError as err:
            raise ConfigError(f"Could not connect to the Ray cluster at {address} ({str(err).splitlines()[0]}); "
                              f"check the address, and for a cluster with token authentication (Ray's default) "
                              f"set RAY_AUTH_MODE=token with its token in ~/.ray/auth_token or RAY_AUTH_TOKEN.") \
                from None
    else:
        # a local cluster on the loopback address, started here and stopped at the end
        ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False,
                 num_cpus=os.cpu_count(), runtime_env={"env_vars": env})
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        task = ray.remote(run_point).options(num_cpus=1, num_gpus=gpus_per_point if gpus else 0, max_retries=0)
        pending = {task.remote(name, pt.params.to_dict(), store_root, force, None if gpus else 1): pt
                   for pt in points}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                pt = pending.pop(ref)
                try:
                    out = ray.get(ref)
                except Exception as err:  # the worker died (out of memory, a crash, node lost): report, go on
                    out = {"ok": False, "error": f"{type(err).__name__}: {str(err).strip().splitlines()[0]}",
                           "wall_s": float("nan")}
                yield pt, out
    finally:
        ray.shutdown()


def _submitit(name: str, points: list[Point], store_root: str, force: bool, slurm_partition: str | None = None,
              timeout_min: int = 60, gpus_per_point: float = 1.0, log_dir: str | None = None,
              **_: Any) -> Outcomes:
    try:
        import submitit
    except ImportError:
        raise ConfigError("The submitit executor needs submitit: pip install submitit.") from None
    folder = Path(log_dir) if log_dir else Path(store_root) / "_submitit"
    executor = submitit.AutoExecutor(folder=folder / "%j")
    kw: dict[str, Any] = {"timeout_min": timeout_min, "cpus_per_task": 1, "name": f"repro-{name}"}
    if executor.cluster == "slurm":
        kw["gpus_per_node"] = math.ceil(gpus_per_point) if gpus_per_point else 0
        if slurm_partition:
            kw["slurm_partition"] = slurm_partition
    executor.update_parameters(**kw)
    configs = [pt.params.to_dict() for pt in points]
    n = len(points)
    with _env(_worker_env()):  # the local executor's jobs inherit this process's environment
        jobs = executor.map_array(run_point, [name] * n, configs, [store_root] * n, [force] * n, [1] * n)
    pending = dict(zip(jobs, points, strict=True))
    while pending:
        for job in [j for j in pending if j.done()]:
            pt = pending.pop(job)
            try:
                out = job.result()
            except submitit.core.utils.UncompletedJobError:  # the job's process ended without a result
                out = {"ok": False, "error": f"WorkerDied: the job ended without a result (state {job.state}); its "
                                             f"log: {job.paths.stdout}", "wall_s": float("nan")}
            except Exception as err:  # the job itself failed (timeout, preemption)
                out = {"ok": False, "error": f"{type(err).__name__}: {str(err).strip().splitlines()[0]}",
                       "wall_s": float("nan")}
            yield pt, out
        if pending:
            time.sleep(0.5)


class _env:
    def __init__(self, env: dict[str, str]):
        self.env, self.saved = env, {}

    def __enter__(self):
        self.saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


_EXECUTORS: dict[str, Callable[..., Outcomes]] = {"local": _local, "ray": _ray, "submitit": _submitit}


# =============================================================================================== a sweep


@dataclasses.dataclass
class Outcome:
    point: Point
    status: str  # "stored" (skipped), "done", "failed"
    metrics: dict[str, Any]
    wall_s: float = float("nan")
    error: str = ""


def sweep(name: str, points: list[Point], executor: str = "local", store: Store | None = None,
          force: bool = False, progress: bool = True, on_outcome: Callable[[Outcome], None] | None = None,
          **options: Any) -> list[Outcome]:
    """Run every point not yet stored on `executor`, writing each new result into `store` as it finishes.
    Returns one Outcome per point, in grid order."""
    if executor not in EXECUTORS:
        raise ConfigError(f"Unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}.")
    store = store or Store()
    outcomes: dict[int, Outcome] = {}
    pending = []
    for pt in points:
        cached = None if force else stored_result(name, pt.params, store)
        if cached is not None:
            outcomes[pt.index] = Outcome(pt, "stored", summary(cached), cached.provenance.get("wall_time_s", math.nan))
        else:
            pending.append(pt)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(points), initial=len(points) - len(pending), desc=f"sweep {name} ({executor})",
                   file=sys.stderr)
    with contextlib.ExitStack() as stack:
        if bar is not None:
            stack.callback(bar.close)
        if pending:
            running = _EXECUTORS[executor](name, pending, str(store.root), force, **options)
            # closed explicitly: an interruption (Ctrl-C) stops the workers at once, not when it is collected
            stack.callback(running.close)
            for pt, out in running:
                for payload in out.get("results", []):
                    payload = dict(payload)
                    payload.pop("schema", None)
                    store.save(Result(**payload))
                o = (Outcome(pt, "done", out["metrics"], out["wall_s"]) if out["ok"] else
                     Outcome(pt, "failed", {}, out.get("wall_s", math.nan), out["error"]))
                outcomes[pt.index] = o
                if on_outcome is not None:
                    on_outcome(o)
                if bar is not None:
                    bar.update(1)
                    if not out["ok"]:
                        bar.write(f"point {pt.label} failed: {out['error']}")
    return [outcomes[pt.index] for pt in points if pt.index in outcomes]


def table(outcomes: list[Outcome], max_metrics: int = 6):
    """One row per point: its grid values, status, wall time, the first scalar metrics, and any error."""
    import pandas as pd

    names: list[str] = []
    for o in outcomes:
        names += [k for k in o.metrics if k not in names]
    names = names[:max_metrics]
    rows = []
    for o in outcomes:
        rows.append({**o.point.values, "status": o.status, "wall (s)": o.wall_s,
                     **{k: o.metrics.get(k, math.nan) for k in names}, "error": o.error})
    df = pd.DataFrame(rows)
    if not any(o.error for o in outcomes):
        df = df.drop(columns="error")
    return df


def format_table(df) -> str:
    return df.to_string(index=False, float_format=lambda v: f"{v:.3g}")


# ========================================================================================== command line


def add_arguments(parser) -> None:
    parser.add_argument("target", metavar="CHAPTER", help="a chapter, or another module of repro.experiments")
    parser.add_argument("-g", "--grid", nargs=2, action="append", default=[], metavar=("NAME", "V1,V2,..."),
                        help="a parameter and its values (repeatable; the sweep is the cartesian product)")
    parser.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="a parameter fixed for every point (repeatable)")
    parser.add_argument("--preset", default="book", help=f"one of {', '.join(PRESET_NAMES)} (default: book)")
    parser.add_argument("--executor", default="local", help=f"one of {', '.join(EXECUTORS)} (default: local)")
    parser.add_argument("--workers", type=int, default=None, help="local: processes (default: the cores)")
    parser.add_argument("--ray-address", default=None, help="ray: cluster address (default: RAY_ADDRESS, else a "
                                                            "local cluster started for the sweep)")
    parser.add_argument("--gpus-per-point", type=float, default=None,
                        help="ray/submitit: GPUs per point where there are GPUs (default: 1 for the paper preset, "
                             "0.25 otherwise, so four small points share a GPU)")
    parser.add_argument("--slurm-partition", default=None, help="submitit: SLURM partition")
    parser.add_argument("--timeout-min", type=int, default=60, help="submitit: time limit per point, minutes")
    parser.add_argument("--force", action="store_true", help="recompute points even if stored")
    parser.add_argument("--out", help="also write the table of all points here (CSV)")


def main(args) -> int:
    """`python -m repro sweep ...`: validate every point, run what is not stored, print the table. Exit 0 if
    every point has a result, 1 if any failed; ConfigError (exit 2 in the CLI) before anything runs."""
    fixed: dict[str, str] = {}
    for key, value in args.param:
        if key in fixed:
            raise ConfigError(f"Parameter {key} is given twice; give it once.")
        fixed[key] = value
    if args.executor not in EXECUTORS:
        raise ConfigError(f"Unknown executor {args.executor!r}; choose one of {', '.join(EXECUTORS)}.")
    if args.workers is not None and args.workers < 1:
        raise ConfigError("--workers must be at least 1.")
    if args.gpus_per_point is not None and args.gpus_per_point < 0:
        raise ConfigError("--gpus-per-point must be 0 or more.")
    points = make_grid(args.target, args.grid, fixed, args.preset)
    gpus = args.gpus_per_point if args.gpus_per_point is not None else (1.0 if args.preset == "paper" else 0.25)
    store = Store()
    print(f"sweep {args.target}: {len(points)} points, preset {args.preset}, executor {args.executor}, "
          f"store {store.root}", flush=True)
    outcomes = sweep(args.target, points, args.executor, store, force=args.force, workers=args.workers,
                     ray_address=args.ray_address, gpus_per_point=gpus, slurm_partition=args.slurm_partition,
                     timeout_min=args.timeout_min)
    df = table(outcomes)
    print(format_table(df))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(args.out, index=False)
    failed = [o for o in outcomes if o.status == "failed"]
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "stored", "failed")}
    print(f"{counts['done']} computed, {counts['stored']} already stored, {counts['failed']} failed")
    return 1 if failed else 0
