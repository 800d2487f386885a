"""What every chapter shows besides its own figures: its parameters, its verdicts (which the book's build also
collects for the front page's scoreboard), figures with their data, the recorded paper-scale units, where each
result came from, and collapsed sections. Presentation only: it reads results and verdicts, it computes neither."""

from __future__ import annotations

import html
import json
import os
import warnings
from collections.abc import Callable
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import HTML, Markdown, display

from repro.fmt import number
from repro.params import Params
from repro.plotting import set_theme
from repro.regime import Regime
from repro.store import Result
from repro.units import MergedRecorded, merged_recorded
from repro.verdict import Verdict

# The MIME type under which a chapter's notebook carries its verdicts; the build reads them (repro.pages) and
# the pages never show them.
VERDICTS_MIME = "application/vnd.repro.verdicts+json"
# Figure data travels as CSV under this output metadata key; the pages turn it into a download link.
FIGURE_DATA = "repro-figure-data"


def book_style() -> None:
    """Set up a chapter's kernel for the page: the book's number format in every table, its figure theme, and no
    warnings about the notebook front end (tqdm's widget fallback, torch's deprecations) in the output."""
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


def regime_table(regimes: list[Regime]) -> pd.DataFrame:
    """One row per condition: subject, what was measured, the need, and whether it was met."""
    rows = [{"subject": r.subject, "condition": c.name, "measured": c.measured, "needs": c.need,
             "met": "yes" if c.ok else "no"} for r in regimes for c in r.conditions]
    return pd.DataFrame(rows, columns=["subject", "condition", "measured", "needs", "met"]).set_index(
        ["subject", "condition"])


# ------------------------------------------------------------------------------------------------- verdicts


def status_badge(status: str) -> str:
    return f'<span class="verdict verdict-{status.split()[0]}">{html.escape(status)}</span>'


def verdict_line(v: Verdict) -> str:
    """One line: the status, the claim, our headline number beside the paper's."""
    paper = f"; paper: {v.paper}" if v.paper else ""
    return f"- {status_badge(v.status)} **{v.claim}** — ours: {v.ours}{paper}"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def verdict_table(verdicts: list[Verdict]) -> str:
    """A Markdown table of how each verdict was decided: the test and its thresholds, the regime, the source."""
    rows = ["| claim | test (thresholds) | regime | source |", "|---|---|---|---|"]
    for v in verdicts:
        regime = v.regime_text + (f" — {v.sentence}" if v.sentence and v.regime is not None and not v.regime.ok
                                  else "")
        rows.append(f"| {_cell(v.claim)} | {_cell(v.test)} | {_cell(regime)} | {_cell(v.source)} |")
    return "\n".join(rows)


def show_verdicts(chapter: str, verdicts: list[Verdict], scale: str = "book",
                  sections: dict[str, tuple[int, int]] | None = None) -> None:
    """Show a chapter's verdicts, one line each, with a collapsed table of how each was decided (and, for a
    verdict that holds a sentence, that line under it); and hand them to the book's build, which lists them on
    the front page and in verdicts.json. `sections` (recorded units: section -> (recorded, total)) lets the
    scoreboard say how many units a claim still lacks at paper scale."""
    keys = [v.key for v in verdicts]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{chapter}: verdict keys repeat: {keys}")
    if verdicts:
        lines = []
        for v in verdicts:  # the sentence, if any, on a line of its own under the verdict
            lines.append(verdict_line(v) + (f"\\\n  {v.sentence}" if v.sentence else ""))
        display(Markdown("\n".join(lines) + "\n\n:::{dropdown} How each verdict was decided\n"
                         + verdict_table(verdicts) + "\n:::"))
    record = {"chapter": chapter, "scale": scale, "verdicts": [v.to_dict() for v in verdicts],
              "sections": {k: list(v) for k, v in (sections or {}).items()}}
    display({VERDICTS_MIME: json.loads(json.dumps(record, default=_plain))}, raw=True)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)


# -------------------------------------------------------------------------------------------------- figures


def show_figure(fig, data: pd.DataFrame, name: str) -> None:
    """Show a figure and offer the numbers it plots as a CSV download beside it (`name`: the file's stem, unique
    within the chapter). `data` is tidy: one row per plotted point, columns named with units."""
    display(fig)
    plt.close(fig)
    display({"text/csv": data.to_csv(index=False)}, raw=True, metadata={FIGURE_DATA: name})


# ------------------------------------------------------------------------------------------ recorded units


def recorded_preset() -> str:
    """The preset whose recorded units a chapter draws: `paper`, or the preset this very run is recording
    (`python -m repro run CHAPTER --preset P --record`), so that a recorded run is drawn by its own chapter."""
    label = os.environ.get("REPRO_RECORD")
    return json.loads(label).get("preset", "paper") if label else "paper"


def recorded_summary(merged: MergedRecorded) -> str:
    """One Markdown paragraph: how many of the preset's units are recorded, per section, which are stale or
    unreadable (never drawn), the label of each complete section, and how to record the rest."""
    chapter = merged.chapter
    lines = [merged.summary]
    by_section: dict[str, list] = {}
    for s in merged.states:
        if s.recorded is not None:
            by_section.setdefault(s.unit.section, []).append(s.recorded.result.provenance)
    for section in merged.complete:
        pvs = by_section.get(section, [])
        devices = ", ".join(sorted({pv["device"] for pv in pvs}))
        dates = ", ".join(sorted({pv["date"][:10] for pv in pvs}))
        commits = ", ".join(sorted({pv["commit"] for pv in pvs}))
        lines.append(f"- {section}: **recorded on {devices}, {dates}, commit {commits}**")
    if merged.n_recorded < len(merged.states):
        lines.append(f"\nTo record the rest: `python -m repro campaign --budget SECONDS --out DIR --chapters "
                     f"{chapter}` on a GPU (see the README), or `python -m repro run {chapter} --preset "
                     f"{merged.preset} --record`.")
    return "\n".join(lines)


def show_recorded(chapter: str, judge: Callable[[Any], list[Verdict]]) -> MergedRecorded:
    """In a chapter: say how many units of the recorded preset exist and where they came from, show the verdicts
    `judge` gives on the sections recorded so far (the same verdict code as the book-scale run), and return the
    MergedRecorded, whose `.result` (None until a section is complete) the chapter draws with its own figures."""
    merged = merged_recorded(chapter, recorded_preset())
    display(Markdown(recorded_summary(merged)))
    show_verdicts(chapter, judge(merged.result) if merged.result is not None else [], scale=merged.preset,
                  sections=merged.sections)
    return merged
