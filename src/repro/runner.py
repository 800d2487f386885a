"""Execute a chapter's jupytext source with papermill, after validating its parameters.

A chapter is `book/chapters/NAME.py` (percent format) with a cell tagged `parameters`, backed by
`repro.experiments.NAME.Params`. The runner resolves defaults <- preset <- user overrides, validates them
(papermill alone only warns about unknown names), and injects every resolved value plus `preset`.

Everything a user can get wrong is checked before the kernel starts: parameters, the paths they name (resolved
against the caller's directory, since the kernel runs in book/chapters) and the data the chapter reads.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from repro.chapters import CHAPTERS, Chapter, get_chapter, resolve
from repro.params import ConfigError, Params
from repro.store import config_key, project_root


def read_chapter(chapter: Chapter):
    import jupytext

    nb = jupytext.read(chapter.source)
    if not any("parameters" in c.metadata.get("tags", []) for c in nb.cells):
        raise ConfigError(f"{chapter.source} has no cell tagged 'parameters'.")
    return nb


# Folders a user names through the environment, as (variable, what it is for, written to).
PATH_VARIABLES = (("REPRO_DATA_DIR", "the data packs", False), ("REPRO_RESULTS_DIR", "the results store", True),
                  ("REPRO_RECORDED_DIR", "recorded results", True))


def _writable_folder(path: Path, label: str) -> None:
    """Stop unless `path` is, or can be created as, a folder this process can write in."""
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{label} cannot be created: {existing} is a file, not a folder; name a path in a folder.")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".repro-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ConfigError(f"{label} cannot be written: {existing} refuses new files ({err.strerror}); name a "
                          f"folder you can write in.") from None


def user_paths(record: bool = False) -> dict[str, str]:
    """The REPRO_*_DIR variables as absolute paths (a relative one means the caller's directory, not the
    kernel's), after checking that the folders to be written are writable folders."""
    env = {}
    for var, what, written in PATH_VARIABLES:
        value = os.environ.get(var)
        if not value:
            continue
        path = Path(value).expanduser().absolute()
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{var} is {path}, a file; point it at the folder for {what}.")
        if written and (record or var != "REPRO_RECORDED_DIR"):
            _writable_folder(path, f"{var} {path}")
        env[var] = str(path)
    return env


def check_output(output: Path | str) -> Path:
    """The absolute notebook path; stops if it is not a writable .ipynb file path. A symbolic link is refused:
    the notebook would land somewhere other than the path the user named."""
    path = Path(output).expanduser().absolute()
    if path.is_dir():
        raise ConfigError(f"--output {path} is a folder; name the notebook file in it, e.g. {path / 'out.ipynb'}.")
    if path.suffix != ".ipynb":
        raise ConfigError(f"--output {path} must name a .ipynb file.")
    if path.is_symlink():
        raise ConfigError(f"--output {path} is a symbolic link to {path.resolve()}; name the file itself.")
    _writable_folder(path.parent, f"--output {path}")
    return path


def _check_injectable(values: dict[str, Any]) -> None:
    """papermill writes the parameters into the notebook as source code: each must read back as the same literal,
    so that no value can become code."""
    from papermill.translators import PythonTranslator

    for name, value in values.items():
        text = PythonTranslator.translate(value)
        try:
            same = ast.literal_eval(text) == value and type(ast.literal_eval(text)) is type(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            same = False
        if not same:
            raise ConfigError(f"Parameter {name} cannot be passed to the notebook as a plain value; got {value!r}.")


def check_data(params: Params) -> None:
    """Read and verify every dataset the run needs, so that missing or damaged data stops it before any work."""
    from repro.data.vision import read_arrays

    for dataset, split in params.datasets():
        read_arrays(dataset, split)


def _quiet_kernel_manager():
    """A kernel manager whose kernel process writes nothing to the terminal: a cell's own output reaches the
    notebook through the kernel's messages, and what the process itself prints is transport chatter, or a
    traceback from the socket it was replying on when Ctrl-C shut it down. A dead kernel is still reported, by
    papermill."""
    from jupyter_client.manager import AsyncKernelManager

    class QuietKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            return await super()._async_launch_kernel(kernel_cmd, **{**kw, "stderr": subprocess.DEVNULL})

    return QuietKernelManager


class ChapterFailed(RuntimeError):
    """A chapter's cell raised, or its kernel died; the message is one line that names the error and the notebook
    that shows where (exit code 1 on the command line)."""


def _dead_cell(path: str) -> str:
    """'cell N' for the code cell that was running when the kernel died: the last one papermill started, since it
    stops at the first failure (N counts code cells, as the kernel's execution count does). Whether that cell has an
    execution count depends on whether the kernel announced it before it died, so it is not looked at."""
    import nbformat

    try:
        cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    except (OSError, ValueError):
        return "a cell"
    started = [i for i, c in enumerate(cells, 1) if c.metadata.get("papermill", {}).get("start_time")]
    return f"cell {started[-1]}" if started else "a cell"


def run_chapter(name: str, preset: str = "book", overrides: dict[str, Any] | None = None,
                output: Path | str | None = None, force: bool = False, progress: bool = False,
                record: bool = False) -> Path:
    """Validate, then execute the chapter into `output` (default runs/NAME/PRESET-KEY.ipynb). Returns it.
    With `record`, its results are also kept in the tracked folder results/recorded/."""
    import papermill as pm
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    from repro.data.vision import DataError

    chapter = get_chapter(name)
    params = resolve(name, preset, overrides)
    values = {"preset": preset, **params.to_dict()}
    _check_injectable(values)
    paths = user_paths(record)
    if output is None:
        key = config_key(name, 0, params.to_dict())[:8]
        output = project_root() / "runs" / name / f"{preset}-{key}.ipynb"
    output = check_output(output)
    nb = read_chapter(chapter)
    # The kernel inherits this process's environment: figures must render inline whatever MPLBACKEND says.
    env = {"MPLBACKEND": "module://matplotlib_inline.backend_inline", **({"REPRO_FORCE": "1"} if force else {}),
           **({"REPRO_RECORD": json.dumps({"chapter": name, "preset": preset})} if record else {}), **paths}
    output.parent.mkdir(parents=True, exist_ok=True)
    # papermill rewrites its output after every cell: run into a temporary name, so that an interrupted run
    # never leaves a half-executed notebook under the name a reader or the book build looks at.
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.stem}.", suffix=".ipynb")
    os.fchmod(fd, 0o644)  # mkstemp makes files private; a notebook is meant to be read
    os.close(fd)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        check_data(params)
        pm.execute_notebook(nb, tmp, parameters=values, kernel_name="python3", cwd=str(chapter.source.parent),
                            progress_bar=progress, log_output=False, kernel_manager_class=_quiet_kernel_manager())
        os.replace(tmp, output)
    except PapermillExecutionError as err:
        os.replace(tmp, output)  # a complete notebook that shows the failing cell
        if err.ename in ("ConfigError", "DataError"):  # the kernel's own checks: one line, like ours
            raise (ConfigError if err.ename == "ConfigError" else DataError)(err.evalue) from None
        evalue = " ".join(str(err.evalue).splitlines())
        raise ChapterFailed(f"the chapter failed in cell {err.exec_count}: {err.ename}: {evalue}; the notebook with "
                            f"the full traceback is {output}.") from None
    except DeadKernelError:
        where = _dead_cell(tmp)
        os.replace(tmp, output)  # papermill saved the cells that ran
        raise ChapterFailed(f"the chapter's kernel died in {where} (killed, or out of memory); the notebook up to "
                            f"there is {output}.") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    return output


def build_book(chapters: list[str] | None = None, render: bool = True, force: bool = False) -> int:
    """Execute every chapter at its defaults into book/executed/notebooks/, turn each into its pages in
    book/executed/ (repro.pages), write the execution page, then render _build/html with jupyter-book (warnings
    are errors) and serve MathJax with it. Returns a process exit code: non-zero if anything failed."""
    from repro import pages, scoreboard  # the pages pull in IPython and matplotlib; a run does not need them

    root = project_root()
    pages_dir = root / "book" / "executed"
    failed = []
    for name in chapters or list(CHAPTERS):
        start = time.perf_counter()
        executed = pages_dir / "notebooks" / f"{name}.ipynb"
        try:
            run_chapter(name, output=executed, force=force)
            pages.write_pages(executed, pages_dir, name, CHAPTERS[name].source,
                              pages.run_info("book", time.perf_counter() - start))
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
    pages.execution_page(pages_dir, {n: c.title for n, c in CHAPTERS.items()}, pages_dir / "notebooks")
    for line in scoreboard.write(root, pages_dir, {n: c.title for n, c in CHAPTERS.items()}):
        print(line, flush=True)  # a change in the science, for review
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(root / "book"), "--path-output", str(root),
           "--config", str(root / "_config.yml"), "--toc", str(root / "book" / "_toc.yml"),
           "--warningiserror", "--nitpick", "--keep-going"]
    code = subprocess.run(cmd, cwd=root).returncode
    pages.install_mathjax(root / "_build" / "html")
    shutil.copy(root / scoreboard.COMMITTED, root / "_build" / "html" / "verdicts.json")
    return code
