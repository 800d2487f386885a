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


def recorded_summary(recorded: list, chapter: str) -> str:
    """One Markdown paragraph: what recorded paper-scale results exist, which are stale, or how to make one."""
    command = f"`python -m repro run {chapter} --preset paper --record`"
    if not recorded:
        return f"No paper-scale result has been recorded for this chapter yet; {command} makes one."
    lines = []
    for r in recorded:
        lines.append(f"- {r.label}" + (f": **not shown as current**, {r.why_stale}." if r.stale else "."))
    if all(r.stale for r in recorded):
        lines.append(f"\nEvery recorded result is stale; {command} records a current one.")
    return "\n".join(lines)


def show_recorded(experiment: str, version: int, chapter: str):
    """In a chapter: say what recorded results of `experiment` exist (or how to make one), and return the
    newest current one (a repro.store.Recorded, its label already shown), or None."""
    from IPython.display import Markdown, display

    from repro.store import recorded_results

    recorded = recorded_results(experiment, version)
    display(Markdown(recorded_summary(recorded, chapter)))
    current = next((r for r in recorded if not r.stale), None)
    if current is not None:
        display(Markdown(f"**{current.label}**"))
    return current
