"""From an executed chapter notebook to the pages a reader sees.

A chapter is executed once, top to bottom, by papermill. For the book its notebook is then turned into pages:
- `clean`: no stderr (warnings, progress bars), no stray reprs, no empty outputs, no paths of the machine in the
  metadata; the parameters cell and papermill's injected cell are removed from the page (the chapter shows its
  parameters once, as a table), code is removed from the page (the downloads keep it).
- `split_details`: cells tagged `details` (reviewers' questions, ablations, sweeps, recorded runs, provenance)
  move to a sub-page NAME_details, linked at the end of the main page. Nothing else moves: a chapter's source is
  written in page order (claim, verdicts, the figure that shows them, then the story).
- `take_verdicts`: the verdicts a chapter showed (repro.report.show_verdicts) leave the page for the book's
  scoreboard (repro.scoreboard); `take_figure_data`: the numbers behind each figure become a CSV file offered for
  download under the figure.
- the page offers the executed notebook (.ipynb, in execution order) and the chapter's source (.py).
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import re
from pathlib import Path
from typing import Any

import nbformat

from repro.report import FIGURE_DATA, VERDICTS_MIME

DETAILS = "details"
_HIDE = {"hide-input", "hide-output", "hide-cell", "remove-input", "remove-output", "remove-cell"}


def _tags(cell) -> list[str]:
    return cell.setdefault("metadata", {}).setdefault("tags", [])


def _set_display(cell, tag: str) -> None:
    cell.metadata["tags"] = [t for t in _tags(cell) if t not in _HIDE] + [tag]


def _keep(output) -> bool:
    kind = output.get("output_type")
    if FIGURE_DATA in output.get("metadata", {}) or VERDICTS_MIME in output.get("data", {}):
        return False  # taken by take_figure_data and take_verdicts
    if kind == "stream":
        return output.get("name") == "stdout" and bool(output.get("text", "").strip())
    if kind == "execute_result":  # a stray repr such as `<matplotlib.legend.Legend at 0x...>`
        return set(output.get("data", {})) - {"text/plain"} != set()
    if kind == "display_data":
        data = output.get("data", {})
        return any(str(v).strip() for k, v in data.items() if k != "text/plain") or \
            bool(str(data.get("text/plain", "")).strip() and len(data) == 1)
    return True  # errors stay: a chapter that raised must be seen


def clean(nb) -> Any:
    """Strip what a reader should not see (in place); returns nb."""
    pm = nb.metadata.get("papermill", {})
    for key in ("input_path", "output_path", "environment_variables"):
        pm.pop(key, None)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs = [o for o in cell.get("outputs", []) if _keep(o)]
        tags = _tags(cell)
        if "parameters" in tags or "injected-parameters" in tags or not cell.outputs:
            _set_display(cell, "remove-cell")
        elif "hide-output" not in tags:
            _set_display(cell, "remove-input")
    return nb


def take_verdicts(nb) -> list[dict[str, Any]]:
    """Remove the verdict records a chapter emitted (in place) and return them, in page order."""
    found = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        keep = []
        for out in cell.get("outputs", []):
            if VERDICTS_MIME in out.get("data", {}):
                found.append(out["data"][VERDICTS_MIME])
            else:
                keep.append(out)
        cell.outputs = keep
    return found


def take_figure_data(nb, folder: Path, prefix: str, link_dir: str) -> list[Path]:
    """Write each figure's data (CSV outputs of repro.report.show_figure) to folder/PREFIX-NAME.csv, remove those
    outputs (in place) and put, after each cell that had some, a Markdown cell with their download links (paths
    relative to the page: link_dir/PREFIX-NAME.csv), tagged like the cell so that it lands on the same page."""
    written, cells = [], []
    for cell in nb.cells:
        cells.append(cell)
        if cell.cell_type != "code":
            continue
        names, keep = [], []
        for out in cell.get("outputs", []):
            name = out.get("metadata", {}).get(FIGURE_DATA)
            if name and "text/csv" in out.get("data", {}):
                path = folder / f"{prefix}-{name}.csv"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(out["data"]["text/csv"])
                written.append(path)
                names.append(path.name)
            else:
                keep.append(out)
        cell.outputs = keep
        if names:
            links = " · ".join(f"{{download}}`{n.removeprefix(prefix + '-').removesuffix('.csv')} "
                               f"<{link_dir}/{n}>`" for n in names)
            tags = [t for t in _tags(cell) if t == DETAILS]
            cells.append(nbformat.v4.new_markdown_cell(f"<small>Data of the figure{'s' if len(names) > 1 else ''} "
                                                       f"above (CSV): {links}</small>", metadata={"tags": tags}))
    nb.cells = cells
    return written


def title_of(nb) -> str:
    first = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    match = re.search(r"^#\s+(.+)$", first.source if first else "", re.M)
    return match.group(1).strip() if match else "Chapter"


def split_details(nb, name: str) -> tuple[Any, Any | None]:
    """(main page, details page or None). The details page is titled after the chapter."""
    idx = [i for i, c in enumerate(nb.cells) if DETAILS in _tags(c)]
    if not idx:
        return nb, None
    short = title_of(nb).split(":")[0]
    details = copy.deepcopy(nb)
    details.cells = [nbformat.v4.new_markdown_cell(
        f"# {short}: details\n\nThe experiments behind the answers of [the chapter]({name}.ipynb) that a first "
        f"reading can skip: reviewers' questions, ablations and sweeps, recorded runs, and where every number "
        f"came from.")] + [nb.cells[i] for i in idx]
    link = nbformat.v4.new_markdown_cell(
        f"```{{seealso}}\n[{short}: details]({name}_details.ipynb): reviewers' questions, ablations and sweeps, "
        f"recorded runs and where every number came from.\n```")
    main = copy.deepcopy(nb)
    main.cells = [c for i, c in enumerate(nb.cells) if i not in idx] + [link]
    return main, details


def with_downloads(nb, name: str, notebook: str, source: str) -> Any:
    """Insert, after the opening cell, links to download the executed notebook and the chapter's source."""
    nb.cells.insert(1, nbformat.v4.new_markdown_cell(
        f"Download this chapter: {{download}}`executed notebook (.ipynb) <{notebook}>` · "
        f"{{download}}`source (.py) <{source}>` · re-run it with `python -m repro run {name}` "
        f"({{doc}}`../reproducing`)."))
    return nb


def run_info(preset: str, wall_time_s: float) -> dict[str, Any]:
    """What the execution page says about a chapter's run: preset, wall time, date, device, commit."""
    from repro.device import device_name, get_device
    from repro.store import git_commit

    return {"preset": preset, "wall_time_s": round(wall_time_s, 1), "device": device_name(get_device()),
            "commit": git_commit(), "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}


def write_pages(executed: Path, pages_dir: Path, name: str, source: Path, info: dict[str, Any]) -> list[Path]:
    """Turn the executed notebook `executed` (cleaned in place, kept for download) into the chapter's pages in
    `pages_dir`: NAME.ipynb and, if the chapter tags details, NAME_details.ipynb; its verdicts go to
    pages_dir/verdicts/NAME.json and its figures' data to pages_dir/data/. Returns the pages written."""
    nb = nbformat.read(executed, as_version=4)
    verdicts = take_verdicts(nb)
    (pages_dir / "verdicts").mkdir(parents=True, exist_ok=True)
    (pages_dir / "verdicts" / f"{name}.json").write_text(json.dumps(verdicts, indent=1))
    page = copy.deepcopy(nb)
    take_figure_data(page, pages_dir / "data", name, "data")
    nb = clean(nb)  # the download keeps the figures, not their CSV outputs
    nb.metadata["repro"] = info
    nbformat.write(nb, executed)
    page = clean(page)
    page.metadata["repro"] = info
    main, details = split_details(page, name)
    rel = lambda p: Path(_relpath(p, pages_dir)).as_posix()  # noqa: E731
    with_downloads(main, name, rel(executed), rel(source))
    written = [pages_dir / f"{name}.ipynb"]
    nbformat.write(main, written[0])
    if details is not None:
        written.append(pages_dir / f"{name}_details.ipynb")
        nbformat.write(details, written[1])
    return written


def _relpath(path: Path, start: Path) -> str:
    import os

    return os.path.relpath(Path(path).resolve(), Path(start).resolve())


def _fmt_seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def execution_page(pages_dir: Path, chapters: dict[str, str], downloads: Path) -> Path:
    """Write pages_dir/execution.md: per chapter shown, the preset, wall time, date, device and commit of its run."""
    rows = []
    for name, title in chapters.items():
        path = downloads / f"{name}.ipynb"
        info = nbformat.read(path, as_version=4).metadata.get("repro") if path.exists() else None
        if not info:
            rows.append(f"| [{title.split(':')[0]}]({name}.ipynb) | not run | | | | |")
            continue
        rows.append(f"| [{title.split(':')[0]}]({name}.ipynb) | `{info['preset']}` | "
                    f"{_fmt_seconds(info['wall_time_s'])} | {info['date']} | {info['device']} | "
                    f"`{info['commit']}` |")
    text = "\n".join([
        "# How this book was executed", "",
        "Each chapter page shows the run below: the chapter executed top to bottom at this preset, on this device, "
        "from this commit. Wall time is the whole chapter's, including results loaded from the store instead of "
        "recomputed; each chapter's details page lists every result's own compute time, device and commit.", "",
        "| chapter | preset | wall time (this execution) | date | device | commit |",
        "|---|---|---|---|---|---|", *rows, ""])
    out = pages_dir / "execution.md"
    out.write_text(text)
    return out


def install_mathjax(html_dir: Path) -> Path | None:
    """Copy MathJax 3 (from the django-static-mathjax package: MathJax's own files, no Django needed) into the
    site, so that math renders with no network. SVG output: no web fonts to fetch."""
    import shutil

    try:
        import mathjax
    except ImportError:
        return None
    src = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    dst = html_dir / "_static" / "mathjax"
    shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns(
        "sre", "*-full*.js", "node-main.js", "mml-*.js", "tex-chtml*.js", "tex-mml-*.js"))
    return dst
