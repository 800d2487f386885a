"""Tables every chapter shows: the parameters it ran with and where each result came from."""

from __future__ import annotations

import pandas as pd

from repro.params import Params
from repro.store import Result


def params_table(params: Params, preset: str) -> pd.DataFrame:
    rows = [{"parameter": r["name"], "value": getattr(params, r["name"]), "book default": r["default"],
             "meaning": r["help"]} for r in params.describe()]
    df = pd.DataFrame(rows).set_index("parameter")
    df.attrs["preset"] = preset
    return df


def provenance_table(results: dict[str, Result]) -> pd.DataFrame:
    rows = []
    for label, r in results.items():
        pv = r.provenance
        rows.append({"result": label, "store key": f"{r.experiment}/{r.key}", "version": r.version,
                     "loaded from store": r.cached, "commit": pv["commit"], "device": pv["device"],
                     "seed": pv["seed"], "wall time (s)": pv["wall_time_s"], "date (UTC)": pv["date"],
                     "torch": pv["torch"]})
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
