"""`python -m repro sweep`: the grid and its validation, resume after an interruption, and the same results on
the local worker processes, a real Ray cluster on the loopback address, and submitit's local executor; on each,
a point whose worker process dies is reported with why and the other points go on."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from repro import sweep as S
from repro.cli import main
from repro.experiments.noise_scale import point as NP
from repro.params import ConfigError
from repro.store import Store

POINT = "noise_scale.point"
# two tiny points: 64 steps of a width-8 BN MLP on 512 MNIST images
TINY = {"n_train": "512", "n_test": "200", "width": "8", "lanczos_iters": "4"}
# the capstone's grid point with a `die` parameter whose worker exits in mid-point (tests/sweep_targets/dying.py)
DYING = "sweep_targets.dying"
TESTS = str(Path(__file__).resolve().parent)


def tiny_grid():
    return S.make_grid(POINT, [("lr", "0.1,0.4")], TINY, "smoke")


def dying_grid():
    """The two tiny points, then one whose worker dies."""
    pts = S.make_grid(DYING, [("lr", "0.1,0.4")], TINY, "smoke")
    return [*pts, S.Point(2, {"die": "1"}, pts[0].params.replace(die=1))]


@pytest.fixture
def dying_importable(monkeypatch):
    """Workers of every executor import the dying target: the tests folder on their PYTHONPATH."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [TESTS, os.environ.get("PYTHONPATH")])))


def check_dying(out, local_run, store, died: str):
    """Both tiny points done with the local pool's numbers and stored; the third failed with why."""
    assert [o.status for o in out] == ["done", "done", "failed"], [o.error for o in out]
    assert [o.metrics for o in out[:2]] == local_metrics(local_run)
    assert all(S.stored_result(POINT, pt.params, store) is not None for pt in tiny_grid())
    assert out[2].error.startswith(died), out[2].error


def test_grid_is_the_cartesian_product_in_order():
    pts = S.make_grid(POINT, [("lr", "0.1,0.2,0.4"), ("batch_size", "32,64")], {"seed": "3"}, "smoke")
    assert [(p.params.lr, p.params.batch_size) for p in pts] == [
        (lr, b) for lr in (0.1, 0.2, 0.4) for b in (32, 64)]
    assert all(p.params.seed == 3 and p.params.n_train == 1024 for p in pts)  # fixed, and the smoke preset
    assert pts[1].label == "lr=0.1, batch_size=64"


@pytest.mark.parametrize("grid, fixed, message", [
    ([("lrr", "0.1,0.2")], {}, "Unknown parameter 'lrr'"),
    ([("lr", "0.1,-1")], {}, "Grid point lr=-1: Parameter lr must be > 0"),
    ([("batch_size", "32,4096")], {}, "Grid point batch_size=4096: batch_size (4096) is larger than n_train"),
    ([("lr", "0.1,,0.2")], {}, "Grid lr needs comma-separated values"),
    ([("lr", "0.1,0.1")], {}, "repeats a value"),
    ([("lr", "0.1"), ("lr", "0.2")], {}, "Grid lr is given twice"),
    ([("lr", "0.1,0.2")], {"lr": "0.3"}, "both a grid (-g) and fixed (-p)"),
    ([("lr", "0.1,1e-1")], {}, "are the same run"),
    ([], {}, "at least one grid"),
])
def test_bad_grids_stop_with_one_sentence(grid, fixed, message):
    with pytest.raises(ConfigError) as err:
        S.make_grid(POINT, grid, fixed, "smoke")
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("args, message", [
    (["sweep", "nosuch", "-g", "lr", "0.1,0.2"], "Unknown sweep target 'nosuch'"),
    (["sweep", POINT, "-g", "lr", "0.1,x"], "Grid point lr=x: Parameter lr expects a number"),
    (["sweep", POINT, "-g", "lr", "0.1,0.2", "--executor", "dask"], "Unknown executor 'dask'"),
    (["sweep", POINT, "-g", "lr", "0.1,0.2", "--preset", "huge"], "Unknown preset 'huge'"),
    (["sweep", "store", "-g", "lr", "0.1,0.2"], "Unknown sweep target 'store'"),
    (["sweep", "noise_scale.nosuch", "-g", "lr", "0.1,0.2"], "Unknown sweep target 'noise_scale.nosuch'"),
    (["sweep", "nosuch.point", "-g", "lr", "0.1,0.2"], "Unknown sweep target 'nosuch.point'"),
    (["sweep", "noise_scale..point", "-g", "lr", "0.1,0.2"], "Unknown sweep target 'noise_scale..point'"),
    (["sweep", POINT, "-g", "lr", "-1,0.1"], "Grid point lr=-1: Parameter lr must be > 0"),
    (["run", "convex", "-g", "lr_large", "0.1,0.2"], "-g NAME V1,V2,... belongs to `sweep`"),
])
def test_cli_bad_input_exits_2_before_running(args, message, capsys, isolated_results):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not isolated_results.exists()


def test_a_point_stores_its_quantities():
    p = NP.Params.resolve("smoke", {**TINY, "lr": "0.4", "weight_decay": "0.01"})
    r = NP.run(p)
    m = r.metrics
    assert m["steps"] == 512 // 128 == p.steps
    assert m["noise_scale"] == pytest.approx(0.4 / 128) and m["intrinsic_lr"] == pytest.approx(0.004)
    assert m["lr_lambda0"] == pytest.approx(0.4 * m["lambda0"]) and m["lambda0"] > 0
    assert NP.run(p).cached


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """On the local pool, with a data folder that holds MNIST only: a sweep of two MNIST points and one CIFAR-10
    point is interrupted after its first result, then run again."""
    root = tmp_path_factory.mktemp("local")
    data = root / "data"
    data.mkdir()
    for name in ("mnist_train.npz", "mnist_test.npz", "manifest.json"):
        (data / name).symlink_to(Path(os.environ["REPRO_DATA_DIR"]) / name)
    pts = tiny_grid()
    pts.append(S.Point(2, {"dataset": "cifar10"}, pts[0].params.replace(dataset="cifar10")))
    store = Store(root / "results")
    first = []

    def stop(outcome):
        first.append(outcome)
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REPRO_DATA_DIR", str(data))
        with pytest.raises(KeyboardInterrupt):
            S.sweep(POINT, pts, "local", store, progress=False, workers=1, on_outcome=stop)
        stored_after_interrupt = [pt.label for pt in pts if S.stored_result(POINT, pt.params, store)]
        second = S.sweep(POINT, pts, "local", store, progress=False, workers=2)
    return {"points": pts, "store": store, "first": first, "after_interrupt": stored_after_interrupt,
            "second": second}


def test_interrupted_sweep_resumes_where_it_stopped(local_run):
    first, second = local_run["first"], local_run["second"]
    assert len(first) == 1 and first[0].status == "done"
    assert local_run["after_interrupt"] == [first[0].point.label]  # written as soon as it finished
    assert [o.status for o in second] == ["stored", "done", "failed"]  # the re-run skips it
    rerun = S.sweep(POINT, local_run["points"][:2], "local", local_run["store"], progress=False)
    assert [o.status for o in rerun] == ["stored", "stored"]


def test_a_failing_point_is_reported_and_the_rest_go_on(local_run):
    """The CIFAR-10 point fails with its error (no data), the MNIST points have their results."""
    out = local_run["second"]
    assert out[2].error.startswith("DataError: No cifar10 train data")
    df = S.table(out)
    assert list(df["status"]) == ["stored", "done", "failed"] and df["error"].iloc[2] == out[2].error
    assert df["error"].iloc[0] == ""


def local_metrics(local_run):
    return [S.summary(S.stored_result(POINT, pt.params, local_run["store"])) for pt in local_run["points"][:2]]


def test_ray_cluster_on_loopback_gives_the_local_results(local_run, monkeypatch, dying_importable):
    """One local cluster: the two tiny points give the local pool's numbers; the third point's worker dies."""
    pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    store = Store()

    def too_slow(*_):
        raise TimeoutError("the Ray sweep took more than 150 s")

    old = signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(150)
    try:
        out = S.sweep(DYING, dying_grid(), "ray", store, progress=False)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    # same seeds, same CPU, one thread: the same numbers
    check_dying(out, local_run, store, "WorkerCrashedError: ")
    import ray

    assert not ray.is_initialized()  # the cluster the sweep started is stopped


def test_submitit_local_executor_gives_the_local_results(local_run, dying_importable):
    pytest.importorskip("submitit")
    store = Store()
    out = S.sweep(DYING, dying_grid(), "submitit", store, progress=False, timeout_min=5)
    check_dying(out, local_run, store, "WorkerDied: the job ended without a result")


def test_a_dying_local_worker_fails_its_point_and_a_fresh_one_runs_the_rest(local_run, capsys):
    """One worker: the first point kills it (os._exit), the second runs in a new worker; exit code 1."""
    args = ["sweep", DYING, "-g", "die", "1,0", "--preset", "smoke", "--workers", "1",
            *[a for k, v in TINY.items() for a in ("-p", k, v)]]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "WorkerDied: the worker process ended with exit code 3" in out
    assert "1 computed, 0 already stored, 1 failed" in out
    acc = local_metrics(local_run)[0]["test_acc"]  # die=0 is the first tiny point
    row = next(line for line in out.splitlines() if line.split()[:2] == ["0", "done"])
    assert f"{acc:.3g}" in row


def test_a_module_path_is_a_sweep_target_and_a_bad_one_is_refused():
    assert S.target_module(DYING).__name__ == DYING
    for bad, message in (("sweep_targets.nosuch", "Unknown sweep target"), ("os.path", "cannot be swept"),
                         ("a..b", "Unknown sweep target")):
        with pytest.raises(ConfigError, match=message):
            S.target_module(bad)


def test_cli_sweep_prints_the_table_and_skips_what_is_stored(local_run):
    """The command line on the store the local sweep filled: every point is found, nothing runs."""
    cmd = [sys.executable, "-m", "repro", "sweep", POINT, "-g", "lr", "0.1,0.4", "--preset", "smoke",
           *[a for k, v in TINY.items() for a in ("-p", k, v)]]
    env = {**os.environ, "REPRO_RESULTS_DIR": str(local_run["store"].root)}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert "0 computed, 2 already stored, 0 failed" in out.stdout
    header, *rows = out.stdout.splitlines()[1:4]
    assert header.split()[:4] == ["lr", "status", "wall", "(s)"] and "test_acc" in header
    acc = local_metrics(local_run)[1]["test_acc"]
    assert rows[1].split()[:2] == ["0.4", "stored"] and f"{acc:.3g}" in rows[1]


def test_lambda0_is_the_top_eigenvalue_of_the_minibatch_hessian():
    """Lanczos on the batch-statistics copy against the dense Hessian of the same minibatch loss."""
    import torch
    from torch.nn import functional as F

    from repro.data import VisionData
    from repro.metrics.hessian import functional, hessian_dense
    from repro.train.loop import normalize

    g = torch.Generator().manual_seed(0)
    data = VisionData(torch.randint(0, 256, (64, 1, 4, 4), generator=g, dtype=torch.uint8),
                      torch.randint(0, 3, (64,), generator=g), 3)
    p = NP.Params(n_train=64, n_test=100, width=6, batch_size=16)
    model = NP.build_model(p, (1, 4, 4), 3)
    stats = (torch.full((1, 1, 1, 1), 0.5), torch.full((1, 1, 1, 1), 0.3))
    lam = NP.minibatch_sharpness(model, data, stats, 16, 2, iters=60, seed=0)
    m = NP.batch_stat_copy(model)
    theta, apply = functional(m)
    order = torch.randperm(64, generator=torch.Generator().manual_seed(1))
    for b in range(2):
        idx = order[b * 16:(b + 1) * 16]
        x, y = normalize(data.x[idx], *stats), data.y[idx]
        dense = torch.linalg.eigvalsh(hessian_dense(lambda th, x=x, y=y: F.cross_entropy(apply(th, x), y), theta))
        assert lam[b] == pytest.approx(float(dense[-1]), rel=1e-2)  # float32 Lanczos
    assert lam[0] != pytest.approx(lam[1], rel=1e-3)  # two different minibatches
    assert model.norms[0].running_mean is not None  # the model itself keeps its running statistics
