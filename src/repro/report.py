"""Tables every chapter shows (the parameters it ran with, where each result came from), the one number format of
the book, and collapsed sections."""

from __future__ import annotations

import html
import math
import warnings

import pandas as pd

from repro.params import Params
from repro.store import Result


def number(value, digits: int = 3) -> str:
    """A number to `digits` significant figures, the book's one format: 0.00123, 0.123, 12.3, 1,230; integers
    as they are; scientific notation only below 0.001 or from a million on; NaN as a dash."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e6):
        return f"{int(value):,}"
    if isinstance(value, float) and math.isnan(value):
        return "–"  # not measured or not reported
    if not isinstance(value, float) or not math.isfinite(value):
        return str(value)
    if value != 0 and not 1e-3 <= abs(value) < 1e6:
        return f"{value:.{digits - 1}e}"
    rounded = float(f"{value:.{digits}g}")
    if rounded == 0:
        return "0"
    return f"{rounded:,.{max(digits - 1 - math.floor(math.log10(abs(rounded))), 0)}f}"


def book_style() -> None:
    """Set up a chapter's kernel for the page: the book's number format in every table, its figure theme, and no
    warnings about the notebook front end (tqdm's widget fallback, torch's deprecations) in the output."""
    from repro.plotting import set_theme

    pd.set_option("display.float_format", number)
    pd.set_option("display.max_colwidth", 80)
    set_theme()
    try:
        from tqdm import TqdmExperimentalWarning, TqdmWarning

        warnings.filterwarnings("ignore", category=TqdmWarning)
        warnings.filterwarnings("ignore", category=TqdmExperimentalWarning)
    except ImportError:
        pass
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\..*")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\..*")


def collapsed(summary: str, *items) -> None:
    """Display a collapsed section (HTML <details>) titled `summary`, holding DataFrames, Markdown text or figures'
    HTML. The reader opens it; the page stays short."""
    from IPython.display import HTML, display

    parts = []
    for item in items:
        if isinstance(item, pd.DataFrame):
            parts.append(item.to_html(float_format=number, classes="dataframe", border=0))
        else:
            parts.append(f"<p>{html.escape(str(item))}</p>")
    display(HTML(f'<details class="repro-details"><summary>{html.escape(summary)}</summary>\n'
                 + "\n".join(parts) + "\n</details>"))


def params_table(params: Params, preset: str) -> pd.DataFrame:
    rows = [{"parameter": r["name"], "value": getattr(params, r["name"]), "book default": r["default"],
             "meaning": r["help"]} for r in params.describe()]
    df = pd.DataFrame(rows).set_index("parameter")
    df.attrs["preset"] = preset
    return df


def show_parameters(params: Params, preset: str) -> None:
    """The chapter's parameters, once, as a collapsed table that names the preset."""
    changed = sum(getattr(params, r["name"]) != r["default"] for r in params.describe())
    collapsed(f"Parameters of this run: preset {preset}"
              + (f", {changed} value(s) differ from the book's defaults" if changed else ""),
              params_table(params, preset).astype(str))


def provenance_table(results: dict[str, Result]) -> pd.DataFrame:
    rows = []
    for label, r in results.items():
        pv = r.provenance
        rows.append({"result": label, "store key (version)": f"{r.experiment} {r.key[:8]} (v{r.version})",
                     "loaded from store": r.cached, "commit": pv["commit"], "device": pv["device"],
                     "seed": pv["seed"], "wall time (s)": pv["wall_time_s"],
                     "date (UTC)": pv["date"][:16].replace("T", " ")})  # torch: pinned, and in recorded files
    return pd.DataFrame(rows).set_index("result")


def recorded_summary(recorded: list, chapter: str, units=None) -> str:
    """One Markdown paragraph: how many of the paper preset's units are recorded (`units`, a
    repro.units.MergedRecorded), what recorded results exist, which are stale, or how to make one."""
    command = (f"`python -m repro campaign --budget SECONDS --out DIR --chapters {chapter}` on a GPU, or "
               f"`python -m repro run {chapter} --preset paper --record`,")
    head = f"{units.summary}\n\n" if units is not None else ""
    if not recorded:
        return f"{head}No paper-scale result has been recorded for this chapter yet; {command} makes one."
    lines = []
    for r in recorded:
        lines.append(f"- {r.label}" + (f": **not shown as current**, {r.why_stale}." if r.stale else "."))
    if all(r.stale for r in recorded):
        lines.append(f"\nEvery recorded result is stale; {command} records a current one.")
    return head + "\n".join(lines)


def show_recorded(experiment: str, version: int, chapter: str, preset: str = "paper"):
    """In a chapter: say how many of the preset's units are recorded and what recorded results of `experiment`
    exist (or how to make one), and return the newest current one (a repro.store.Recorded, its label already
    shown), or None. Where `experiment` merges units (no file of its own), the merge of the recorded units is
    returned once every unit is recorded."""
    from pathlib import Path

    from IPython.display import Markdown, display

    from repro.runner import CHAPTERS
    from repro.store import Recorded, recorded_results
    from repro.units import find_result, merged_recorded

    recorded = recorded_results(experiment, version)
    units = merged_recorded(chapter, preset) if chapter in CHAPTERS else None
    display(Markdown(recorded_summary(recorded, chapter, units)))
    current = next((r for r in recorded if not r.stale), None)
    merged = find_result(getattr(units, "result", None), experiment)
    if current is None and merged is not None:
        current = Recorded(merged, chapter, preset, False, Path(f"{len(units.states)} recorded units"))
    if current is not None:
        display(Markdown(f"**{current.label}**"))
    return current
