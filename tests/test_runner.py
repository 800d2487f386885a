"""Every chapter through the real runner at smoke scale, and the command line's errors."""

import ast
import os
import subprocess
import sys

import jupytext
import nbformat
import pytest

from repro.chapters import CHAPTERS, get_chapter
from repro.cli import main
from repro.runner import run_chapter


def parameters_cell(chapter):
    nb = jupytext.read(chapter.source)
    return next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))


@pytest.mark.parametrize("name", list(CHAPTERS))
def test_parameters_cell_matches_the_chapters_params(name):
    """The cell a reader sees lists exactly the Params fields, at their book defaults, plus `preset`."""
    chapter = get_chapter(name)
    namespace = {}
    exec(parameters_cell(chapter).source, namespace)
    namespace.pop("__builtins__")
    assert namespace.pop("preset") == "book"
    assert namespace == chapter.params().to_dict()
    # one parameter per line, each with a comment
    for line in parameters_cell(chapter).source.splitlines():
        assert isinstance(ast.parse(line).body[0], ast.Assign) and "#" in line


@pytest.mark.parametrize("name", list(CHAPTERS))
def test_chapter_runs_at_smoke_through_the_runner(name, tmp_path, monkeypatch):
    """Runs with --record into a scratch folder, so the chapter's recorded-results section draws them too. Every
    path is relative, as a user types it: it means the caller's directory, not the kernel's (book/chapters)."""
    monkeypatch.chdir(tmp_path)
    if "REPRO_DATA_DIR" in os.environ:
        monkeypatch.setenv("REPRO_DATA_DIR", os.path.relpath(os.environ["REPRO_DATA_DIR"], tmp_path))
    monkeypatch.setenv("REPRO_RESULTS_DIR", "results")
    monkeypatch.setenv("REPRO_RECORDED_DIR", "recorded")
    out = run_chapter(name, "smoke", output=f"{name}.ipynb", record=True)
    assert out == tmp_path / f"{name}.ipynb" and list((tmp_path / "results").rglob("*.json"))
    assert list((tmp_path / "recorded").rglob("*.json"))
    nb = nbformat.read(out, as_version=4)
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                if o.get("output_type") == "error"]
    injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert 'preset = "smoke"' in injected.source
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert images, "the chapter drew no figure"
    html = "".join(o["data"].get("text/html", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []) if "data" in o)
    assert "commit" in html and "device" in html  # the provenance table is on the page
    markdown = "".join(o["data"].get("text/markdown", "") for c in nb.cells if c.cell_type == "code"
                       for o in c.get("outputs", []) if "data" in o)
    assert "**recorded on CPU" in markdown  # the recorded run is drawn, labelled with its device


@pytest.mark.parametrize("args, message", [
    (["run", "convex", "-p", "lrr", "0.1"], "Unknown parameter 'lrr'"),
    (["run", "convex", "-p", "lr_large", "-1"], "lr_large must be > 0"),
    (["run", "convex", "-p", "n_datasets", "many"], "n_datasets expects an integer"),
    (["run", "convex", "--preset", "huge"], "Unknown preset 'huge'"),
    (["run", "nosuch"], "Unknown chapter 'nosuch'"),
    (["run", "convex", "-p", "seed", "1", "-p", "seed", "2"], "given twice"),
    (["run", "sharp_minima", "--preset", "smoke", "-p", "networks", ",".join(["F1"] * 3001)],
     "Parameter networks is 9002 characters long; at most 200 are allowed."),
])
def test_bad_input_stops_before_running(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.ipynb"))


def test_a_budget_that_is_not_a_number_is_one_line_from_the_real_entry_point(tmp_path):
    """The process as a user starts it: stderr holds the one line and nothing else (inf and 1e999 in
    test_fuzz_cli)."""
    out = subprocess.run([sys.executable, "-m", "repro", "campaign", "--budget", "nan", "--out", "D", "--dry-run"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert (out.returncode, out.stderr, out.stdout) == (
        2, "error: --budget must be a finite number of seconds > 0; got 'nan'.\n", "")
    assert not list(tmp_path.iterdir())


def test_list_shows_parameters_defaults_presets_and_help():
    out = subprocess.run([sys.executable, "-m", "repro", "list"], capture_output=True, text=True, check=True).stdout
    assert "convex" in out and "lr_large" in out and "smoke" in out and "the report: 0.1" in out
