"""Faults a user or a machine can cause: paths, damaged data, killed and concurrent runs, Ctrl-C.

Each bad path or damaged pack must stop the command line with exit code 2 and one line that names the file and
the fix, before any work (papermill is replaced by a guard that records a call). Killed and concurrent writers
must never leave a result file that a later run would read wrongly.
"""

import contextlib
import io
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import papermill
import pytest
from test_data import make_pack

from repro import cli, runner
from repro.store import Store, config_key

ROOT = Path(__file__).resolve().parents[1]
FORK = multiprocessing.get_context("fork")


@pytest.fixture
def guarded(monkeypatch, tmp_path):
    """papermill's execution, which no bad input may reach."""
    calls = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: calls.append(k.get("parameters")))
    monkeypatch.chdir(tmp_path)
    return calls


def run_cli(argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(argv)
    return code, err.getvalue()


def one_line(err):
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    return err


def after_progress(err):
    """stderr without the progress bar that a real run draws above its one line."""
    bar, _, last = err.rstrip("\n").rpartition("\n")
    assert all(part.startswith("Executing:") for part in bar.replace("\r", "\n").splitlines() if part), err
    return last + "\n"


# ---------------------------------------------------------------------------------------------------- paths


def test_relative_paths_mean_the_callers_directory(guarded, tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_RESULTS_DIR", "store")
    monkeypatch.setenv("REPRO_RECORDED_DIR", "rec")
    monkeypatch.setenv("REPRO_DATA_DIR", "data")
    assert runner.user_paths(record=True) == {"REPRO_DATA_DIR": str(tmp_path / "data"),
                                              "REPRO_RESULTS_DIR": str(tmp_path / "store"),
                                              "REPRO_RECORDED_DIR": str(tmp_path / "rec")}
    assert run_cli(["run", "convex", "--preset", "smoke", "--output", "out/c.ipynb"]) == (0, "")
    assert guarded and os.environ["REPRO_RESULTS_DIR"] == "store"  # restored after the run


@pytest.mark.parametrize("setup, argv, message", [
    (lambda t: (t / "f").write_text("x"), ["--output", "f/c.ipynb"],
     "--output {t}/f/c.ipynb cannot be created: {t}/f is a file, not a folder"),
    (lambda t: (t / "d").mkdir(), ["--output", "d"], "--output {t}/d is a folder; name the notebook file in it"),
    (lambda t: None, ["--output", "c.txt"], "--output {t}/c.txt must name a .ipynb file."),
    (lambda t: (t / "link.ipynb").symlink_to("/tmp/elsewhere.ipynb"), ["--output", "link.ipynb"],
     "--output {t}/link.ipynb is a symbolic link to /tmp/elsewhere.ipynb; name the file itself."),
    (lambda t: None, ["--output", "/proc/repro/c.ipynb"], "--output /proc/repro/c.ipynb cannot be written: /proc"),
    (lambda t: (t / "f").write_text("x"), ["env:REPRO_RESULTS_DIR=f"], "REPRO_RESULTS_DIR is {t}/f, a file"),
    (lambda t: None, ["env:REPRO_RESULTS_DIR=/proc/repro"], "REPRO_RESULTS_DIR /proc/repro cannot be written"),
    (lambda t: (t / "f").write_text("x"), ["env:REPRO_DATA_DIR=f"], "REPRO_DATA_DIR is {t}/f, a file"),
])
def test_bad_paths_stop_with_one_line(guarded, tmp_path, monkeypatch, setup, argv, message):
    setup(tmp_path)
    for arg in [a for a in argv if a.startswith("env:")]:
        monkeypatch.setenv(*arg[4:].split("=", 1))
    args = [a for a in argv if not a.startswith("env:")]
    code, err = run_cli(["run", "convex", "--preset", "smoke", *args])
    assert code == 2 and message.format(t=tmp_path) in one_line(err) and not guarded
    assert not (tmp_path / "f").is_dir() and not [p for p in tmp_path.rglob("*.ipynb") if not p.is_symlink()]


# ----------------------------------------------------------------------------------------------- data faults


def mnist_packs(folder):
    folder.mkdir()
    make_pack(folder, "mnist", "train", 80, (28, 28))
    make_pack(folder, "mnist", "test", 40, (28, 28))
    return folder


def _checksum(d):
    m = json.loads((d / "manifest.json").read_text())
    m["mnist"]["stats"]["train"]["x_sha256"] = "0" * 64
    (d / "manifest.json").write_text(json.dumps(m))


def _no_entry(d):
    m = json.loads((d / "manifest.json").read_text())
    del m["mnist"]["stats"]["test"]
    (d / "manifest.json").write_text(json.dumps(m))


DATA_FAULTS = {
    "missing folder": (lambda d: os.rename(d, d.with_name("gone")),
                       ["The data folder {d} does not exist", "Point REPRO_DATA_DIR at the folder"]),
    "empty folder": (lambda d: [p.unlink() for p in d.iterdir()],
                     ["No mnist train data in {d}", "point REPRO_DATA_DIR at a folder that holds them"]),
    "checksum mismatch": (_checksum, ["The mnist train pack (mnist_train.npz) in {d} does not match manifest.json",
                                      "copy the pack again"]),
    "truncated npz": (lambda d: (d / "mnist_test.npz").write_bytes((d / "mnist_test.npz").read_bytes()[:3000]),
                      ["The pack file {d}/mnist_test.npz is unreadable or corrupt", "copy it again"]),
    "missing manifest": (lambda d: (d / "manifest.json").unlink(),
                         ["Cannot verify mnist_train.npz in {d}: there is no {d}/manifest.json",
                          "set REPRO_ALLOW_UNVERIFIED=1"]),
    "manifest without the entry": (_no_entry, ["{d}/manifest.json has no entry for mnist test"]),
    "garbage manifest": (lambda d: (d / "manifest.json").write_bytes(b"\xff{not json"),
                         ["{d}/manifest.json is unreadable or not a pack manifest", "copy it again"]),
}


@pytest.mark.parametrize("fault", list(DATA_FAULTS))
def test_data_faults_stop_before_the_run_with_the_file_and_the_fix(guarded, tmp_path, monkeypatch, fault):
    data = mnist_packs(tmp_path / "data")
    monkeypatch.setenv("REPRO_DATA_DIR", "data")  # relative, as a user would type it
    monkeypatch.delenv("REPRO_DOWNLOAD", raising=False)
    damage, phrases = DATA_FAULTS[fault]
    damage(data)
    code, err = run_cli(["run", "intrinsic_lr", "--preset", "smoke", "--output", "c.ipynb"])
    assert code == 2 and not guarded, err
    for phrase in phrases:
        assert phrase.format(d=data) in one_line(err)


def test_truncation_anywhere_is_caught(tmp_path):
    from repro.data import DataError, read_arrays

    data = mnist_packs(tmp_path / "data")
    whole = (data / "mnist_train.npz").read_bytes()
    for cut in random.Random(0).sample(range(1, len(whole)), 25):
        (data / "mnist_train.npz").write_bytes(whole[:cut])
        with pytest.raises(DataError, match="mnist_train.npz is unreadable or corrupt"):
            read_arrays("mnist", "train", data)


def test_unverified_packs_are_used_only_when_the_user_says_so(guarded, tmp_path, monkeypatch):
    data = mnist_packs(tmp_path / "data")
    (data / "manifest.json").unlink()
    monkeypatch.setenv("REPRO_DATA_DIR", str(data))
    assert run_cli(["run", "intrinsic_lr", "--preset", "smoke", "--output", "c.ipynb"])[0] == 2
    monkeypatch.setenv("REPRO_ALLOW_UNVERIFIED", "1")
    assert run_cli(["run", "intrinsic_lr", "--preset", "smoke", "--output", "c.ipynb"]) == (0, "") and guarded


def test_a_data_error_raised_by_a_chapters_own_kernel_is_one_line_exit_2(tmp_path, monkeypatch):
    """A real chapter on real (tiny) packs: the runner's check passes (the packs are whole and match the
    manifest), then the kernel asks for more test images than the pack holds and its own read raises DataError.
    The kernel's error is one line, like the runner's, and the notebook that shows it is kept."""
    mnist_packs(tmp_path / "data")  # 80 training and 40 test images
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REPRO_DATA_DIR", "data")
    code, err = run_cli(["run", "intrinsic_lr", "--preset", "smoke", "-p", "n_test", "100", "--output", "c.ipynb"])
    assert (code, after_progress(err)) == (2, "error: Asked for 100 examples but the split has 40.\n")
    errors = [o for c in json.loads((tmp_path / "c.ipynb").read_text())["cells"] for o in c.get("outputs", [])
              if o["output_type"] == "error"]
    assert [e["ename"] for e in errors] == ["DataError"]


SCRATCH = """# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["parameters"]
lr_large = 0.1  # the convex chapter's parameters are injected below

# %%
import os
print("ran")

# %%
{cell}
"""


@pytest.mark.parametrize("cell, code, message", [
    ("x = 1 / 0", 1, "error: the chapter failed in cell 4: ZeroDivisionError: division by zero; the notebook with "
                     "the full traceback is {out}.\n"),
    ("os.kill(os.getpid(), 9)", 1, "error: the chapter's kernel died in cell 4 (killed, or out of memory); the "
                                   "notebook up to there is {out}.\n"),
])
def test_a_kernel_that_fails_is_one_line_naming_the_notebook(tmp_path, monkeypatch, cell, code, message):
    """A real kernel runs a chapter whose last code cell raises or kills the kernel; the notebook is kept under
    the requested name with what ran (the injected parameters are cell 2). A kernel's own ConfigError or DataError
    is exit 2 instead: see the test above."""
    source = tmp_path / "chapters" / "scratch.py"
    source.parent.mkdir()
    source.write_text(SCRATCH.format(cell=cell))

    class Scratch(runner.Chapter):
        source = property(lambda self: source)
        params = property(lambda self: runner.CHAPTERS["convex"].params)

    monkeypatch.setitem(runner.CHAPTERS, "scratch", Scratch("scratch", "a chapter that fails"))
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "c.ipynb"
    got, err = run_cli(["run", "scratch", "--preset", "smoke", "--output", "c.ipynb"])
    assert (got, after_progress(err)) == (code, message.format(out=out))
    cells = [c for c in json.loads(out.read_text())["cells"] if c["cell_type"] == "code"]
    assert cells[2]["outputs"][0]["text"] == ["ran\n"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.ipynb", "chapters"]  # no temporary notebook left


# ------------------------------------------------------------------------------------------------ the store


def _writer(root, log, seed):
    """Store results of random sizes one after another, logging each key once it is saved."""
    store, rng = Store(root), random.Random(seed)
    for i in range(10_000):
        n = rng.choice([10, 1000, 50_000])
        r = store.run("e", 1, {"i": i % 10, "seed": seed}, lambda n=n: {"metrics": {"n": n}, "data": {
            "curve": [rng.random() for _ in range(n)]}}, force=True)
        with open(log, "a") as f:
            f.write(f"{r.key} {n}\n")


def test_sigkill_at_random_points_leaves_only_whole_results(tmp_path):
    rng, saved, rounds = random.Random(16), {}, 8
    for k in range(rounds):
        p = FORK.Process(target=_writer, args=(tmp_path / "store", tmp_path / "log", k))
        p.start()
        time.sleep(rng.uniform(0.2, 0.8))
        os.kill(p.pid, signal.SIGKILL)
        p.join()
        assert p.exitcode == -signal.SIGKILL
    for line in (tmp_path / "log").read_text().splitlines():
        key, n = line.split()
        saved[key] = int(n)
    files = list((tmp_path / "store" / "e").glob("*.json"))
    for path in files:  # every file that a later run would read is a whole result
        payload = json.loads(path.read_text())
        assert payload["key"] == path.stem and len(payload["data"]["curve"]) == payload["metrics"]["n"]
    lost = [key for key in saved if not (tmp_path / "store" / "e" / f"{key}.json").exists()]
    assert saved and not lost, f"{len(lost)} saved results lost"
    # a later run loads what was saved and recomputes the rest, clearing the killed writers' temporary files
    store = Store(tmp_path / "store")
    for seed in range(rounds):
        for i in range(10):
            store.run("e", 1, {"i": i, "seed": seed}, lambda: {"metrics": {"n": 0}, "data": {"curve": []}})
    assert not list((tmp_path / "store" / "e").glob(".*"))
    print(f"\nSIGKILL: {rounds} kills survived, {len(saved)} results saved before them, {len(lost)} lost, "
          f"{len(files)} files checked")


@pytest.mark.parametrize("garbage", [b"", b"\xff\xfe\x00", b"[]", b"123", b'"text"', b"null", b'{"schema": 1}',
                                     b'{"schema": 1, "experiment": "e", "version": 1, "key": "KEY", "config": {}, '
                                     b'"metrics": {}, "data": {}, "provenance": {}, "extra": 1}'])
def test_garbage_in_the_store_is_reported_and_recomputed(tmp_path, garbage):
    store = Store(tmp_path)
    path = store.path("e", config_key("e", 1, {"a": 1}))
    path.parent.mkdir(parents=True)
    path.write_bytes(garbage.replace(b"KEY", path.stem.encode()))
    with pytest.warns(UserWarning, match=f"Ignoring unreadable result {path}"):
        r = store.run("e", 1, {"a": 1}, lambda: {"metrics": {"x": 1}})
    assert not r.cached and store.load("e", 1, {"a": 1}).metrics == {"x": 1}


def _same_run(root, calls, start, out):
    start.wait()

    def fn():
        with open(calls, "a") as f:
            f.write("computed\n")
        time.sleep(0.5)
        return {"metrics": {"pid": os.getpid()}}

    r = Store(root).run("e", 1, {"a": 1}, fn)
    Path(out).write_text(json.dumps(r.metrics))


def test_two_identical_runs_at_once_compute_once_and_agree(tmp_path):
    start = FORK.Event()
    procs = [FORK.Process(target=_same_run, args=(tmp_path / "s", tmp_path / "calls", start, tmp_path / f"o{i}"))
             for i in range(2)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert (tmp_path / "calls").read_text() == "computed\n"
    assert (tmp_path / "o0").read_text() == (tmp_path / "o1").read_text()
    assert [p.name for p in (tmp_path / "s" / "e").iterdir()] == [f"{config_key('e', 1, {'a': 1})}.json"]


# --------------------------------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_in_the_command_line_is_one_line_and_exit_130(guarded, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(papermill, "execute_notebook", interrupted)
    code, err = run_cli(["run", "convex", "--preset", "smoke", "--output", "c.ipynb"])
    assert code == 130 and err.count("\n") == 1 and err.startswith("interrupted: finished results are stored")
    assert not list(Path.cwd().rglob("*.ipynb"))  # no half-executed notebook under any name


TRAIN = textwrap.dedent("""
    import sys, time, torch
    from repro.checkpoint import Checkpoint
    from repro.data.vision import VisionData
    from repro.device import num_threads
    from repro.train.loop import constant, train

    def run(root=None, slow=False):
        g = torch.Generator().manual_seed(0)
        data = VisionData(torch.randint(0, 256, (64, 1, 4, 4), dtype=torch.uint8, generator=g),
                          torch.randint(0, 3, (64,), generator=g), 3)
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
        ckpt = Checkpoint("toy", "k", every=1, root=root) if root else None
        with num_threads(1):
            train(model, data, steps=160, batch_size=8, schedule=constant(0.1, 0.0), seed=1, checkpoint=ckpt,
                  on_epoch=(lambda epoch, m: time.sleep(0.2)) if slow else None)
        return model[1].weight.detach().clone()

    if __name__ == "__main__":
        try:
            run(sys.argv[1], slow=True)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(130)
""")


def _sigint_default():
    """A child started from a background job inherits SIGINT ignored; Ctrl-C is what these tests are about."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_during_training_leaves_a_checkpoint_that_resumes_exactly(tmp_path):
    import torch

    ckpt = tmp_path / "ckpt" / "toy" / "k.pt"
    p = subprocess.Popen([sys.executable, "-c", TRAIN, str(tmp_path / "ckpt")], stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, preexec_fn=_sigint_default)
    deadline = time.time() + 60
    while not ckpt.exists() and time.time() < deadline:
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    assert p.wait(30) == 130 and p.stdout.read() == "interrupted\n"
    epoch = torch.load(ckpt, weights_only=False)["epoch"]
    assert 1 <= epoch < 20
    namespace = {"__name__": "train_script"}
    exec(TRAIN, namespace)
    resumed = namespace["run"](tmp_path / "ckpt")
    assert not ckpt.exists()  # cleared once the run finished
    assert torch.equal(resumed, namespace["run"]()) and torch.isfinite(resumed).all()


def test_ctrl_c_during_a_chapter_is_one_line_exit_130_and_leaves_no_notebook(tmp_path):
    """Through the real runner: the kernel is shut down quietly and the half-executed notebook is removed."""
    out = tmp_path / "out" / "c.ipynb"
    p = subprocess.Popen([sys.executable, "-m", "repro", "run", "catapult", "--preset", "smoke", "--force",
                          "--output", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, cwd=tmp_path,
                         preexec_fn=_sigint_default)
    deadline = time.time() + 120
    while not list(out.parent.glob(".c.*.ipynb")) and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(2)  # a few cells into the chapter
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=60)
    lines = [line for line in stderr.replace("\r", "\n").splitlines() if line.strip()]
    progress = [line for line in lines if line.startswith("Executing:")]
    assert p.returncode == 130 and stdout == ""
    assert lines == [*progress, "interrupted: finished results are stored; run the same command again to continue "
                                "(a training run with checkpoints resumes from its last one)."]
    assert not list(out.parent.iterdir())
