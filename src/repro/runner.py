"""Execute a chapter's jupytext source with papermill, after validating its parameters.

A chapter is `book/chapters/NAME.py` (percent format) with a cell tagged `parameters`, backed by
`repro.experiments.NAME.Params`. The runner resolves defaults <- preset <- user overrides, validates them
(papermill alone only warns about unknown names), and injects every resolved value plus `preset`.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repro.params import ConfigError, Params
from repro.store import config_key, project_root


@dataclass(frozen=True)
class Chapter:
    name: str
    title: str

    @property
    def params(self) -> type[Params]:
        return importlib.import_module(f"repro.experiments.{self.name}").Params

    @property
    def source(self) -> Path:
        return project_root() / "book" / "chapters" / f"{self.name}.py"


# In book order.
CHAPTERS = {c.name: c for c in [
    Chapter("sharp_minima", "Sharp minima: small vs large batch, the sharpness metric and the 1-D interpolation"),
    Chapter("catapult", "The catapult phase: large learning rates, a loss spike and a flatter minimum"),
    Chapter("intrinsic_lr", "The intrinsic learning rate: scale invariance, weight decay and equilibrium"),
    Chapter("learning_order", "Learning order: a large initial learning rate, a small one, and noise"),
    Chapter("convex", "A convex counterexample: early stopping and the learning-rate schedule"),
    Chapter("noise_scale", "Which single quantity predicts generalization: lr / B, lr x wd, or lr x lambda0?"),
]}


def get_chapter(name: str) -> Chapter:
    if name not in CHAPTERS:
        raise ConfigError(f"Unknown chapter {name!r}; choose one of {', '.join(CHAPTERS)} "
                          f"(see `python -m repro list`).")
    return CHAPTERS[name]


def resolve(name: str, preset: str = "book", overrides: dict[str, Any] | None = None) -> Params:
    """The chapter's validated parameters; raises ConfigError before anything runs."""
    return get_chapter(name).params.resolve(preset, overrides)


def read_chapter(chapter: Chapter):
    import jupytext

    nb = jupytext.read(chapter.source)
    if not any("parameters" in c.metadata.get("tags", []) for c in nb.cells):
        raise ConfigError(f"{chapter.source} has no cell tagged 'parameters'.")
    return nb


def run_chapter(name: str, preset: str = "book", overrides: dict[str, Any] | None = None,
                output: Path | str | None = None, force: bool = False, progress: bool = False,
                record: bool = False) -> Path:
    """Validate, then execute the chapter into `output` (default runs/NAME/PRESET-KEY.ipynb). Returns it.
    With `record`, its results are also kept in the tracked folder results/recorded/."""
    import papermill as pm

    chapter = get_chapter(name)
    params = resolve(name, preset, overrides)
    nb = read_chapter(chapter)
    if output is None:
        key = config_key(name, 0, params.to_dict())[:8]
        output = project_root() / "runs" / name / f"{preset}-{key}.ipynb"
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    # The kernel inherits this process's environment: figures must render inline whatever MPLBACKEND says.
    env = {"MPLBACKEND": "module://matplotlib_inline.backend_inline", **({"REPRO_FORCE": "1"} if force else {}),
           **({"REPRO_RECORD": json.dumps({"chapter": name, "preset": preset})} if record else {})}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        pm.execute_notebook(nb, str(output), parameters={"preset": preset, **params.to_dict()},
                            kernel_name="python3", cwd=str(chapter.source.parent), progress_bar=progress,
                            log_output=False)
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    return output


def build_book(chapters: list[str] | None = None, render: bool = True, force: bool = False) -> int:
    """Execute every chapter at its defaults into book/executed/, then render _build/html with
    jupyter-book (warnings are errors). Returns a process exit code: non-zero if anything failed."""
    root = project_root()
    failed = []
    for name in chapters or list(CHAPTERS):
        start = time.perf_counter()
        try:
            run_chapter(name, output=root / "book" / "executed" / f"{name}.ipynb", force=force)
            status = "ok"
        except Exception as err:  # report every failing chapter, then fail the build
            failed.append(name)
            status = f"FAILED: {type(err).__name__}: {str(err).strip().splitlines()[-1] if str(err) else ''}"
        print(f"chapter {name:<16} {time.perf_counter() - start:7.1f} s  {status}", flush=True)
    if failed:
        print(f"{len(failed)} chapter(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    if not render:
        return 0
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(root / "book"), "--path-output", str(root),
           "--config", str(root / "_config.yml"), "--toc", str(root / "book" / "_toc.yml"),
           "--warningiserror", "--nitpick", "--keep-going"]
    return subprocess.run(cmd, cwd=root).returncode
