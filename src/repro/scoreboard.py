"""The book's scoreboard: every claim of every chapter, the paper's number, ours at book scale and at paper scale.

Chapters show their verdicts with repro.report.show_verdicts; the pages step (repro.pages.take_verdicts) keeps them
in book/executed/verdicts/CHAPTER.json. After every chapter has run, the build turns them into the front page's
table (book/executed/scoreboard.md, included by book/intro.md) and into `verdicts.json`, and says which verdicts
changed against the last committed copy (book/verdicts.json), so that a change in the science shows in review.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

from repro.report import status_badge

COMMITTED = Path("book") / "verdicts.json"  # relative to the project root


def collect(verdict_dir: Path, chapters: dict[str, str]) -> dict[str, Any]:
    """{"chapters": {name: {"title", "book": [verdict dicts], "paper": {"verdicts", "sections"} | None}}} from
    the records the pages step kept, in book order. A chapter's paper-scale record is the one its recorded-units
    section emitted (scale "paper"); there is none where that chapter was not run."""
    out: dict[str, Any] = {}
    for name, title in chapters.items():
        path = verdict_dir / f"{name}.json"
        records = json.loads(path.read_text()) if path.exists() else []
        book = [v for r in records if r["scale"] == "book" for v in r["verdicts"]]
        paper = next((r for r in records if r["scale"] == "paper"), None)
        out[name] = {"title": title, "book": book,
                     "paper": None if paper is None else {"verdicts": paper["verdicts"],
                                                          "sections": paper["sections"]}}
    return {"chapters": out}


def _paper_cell(v: dict[str, Any], paper: dict[str, Any] | None) -> str:
    if paper is None:
        return "not run"
    match = next((p for p in paper["verdicts"] if p["key"] == v["key"]), None)
    if match is not None:
        return f"{status_badge(match['status'])} {match['ours']}"
    done_total = paper["sections"].get(v.get("section", ""))
    if done_total is None:
        return "–"
    done, total = done_total
    return f"{done} of {total} unit{'' if total == 1 else 's'} recorded"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(board: dict[str, Any]) -> str:
    """The front page's table: one row per claim (the paper's number under it), grouped by chapter in book order,
    in a box of class `scoreboard` (custom.css sets it small enough to fit the text column)."""
    rows = ["| chapter | claim, and the paper's number | ours, book scale | ours, paper scale |", "|---|---|---|---|"]
    for name, ch in board["chapters"].items():
        link = f"[{ch['title'].split(':')[0]}](executed/{name})"
        if not ch["book"]:
            rows.append(f"| {link} | (this chapter did not run) | | |")
        for i, v in enumerate(ch["book"]):
            rows.append(f"| {link if i == 0 else ''} | {_cell(v['claim'])}. *Paper: {_cell(v['paper']) or '–'}* | "
                        f"{status_badge(v['status'])} {_cell(v['ours'])} | {_cell(_paper_cell(v, ch['paper']))} |")
    counts: dict[str, int] = {}
    for ch in board["chapters"].values():
        for v in ch["book"]:
            counts[v["status"]] = counts.get(v["status"], 0) + 1
    total = sum(counts.values())
    head = (f"{total} claims at book scale: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + ". "
            if total else "")
    return (head + "Each row links to its chapter, where the verdict's test, thresholds and regime are given. "
            "The paper-scale column is filled from units recorded on a GPU.\n\n:::{container} scoreboard\n"
            + "\n".join(rows) + "\n:::\n")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None  # strict JSON has no NaN
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_jsonable(v) for v in obj]
    return obj


def dumps(board: dict[str, Any]) -> str:
    return json.dumps(_jsonable(board), indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def _flat(board: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    flat = {}
    for name, ch in board.get("chapters", {}).items():
        for v in ch.get("book", []):
            flat[(name, "book", v["key"])] = v
        for v in (ch.get("paper") or {}).get("verdicts", []):
            flat[(name, "paper", v["key"])] = v
    return flat


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """One line per verdict that appeared, disappeared, or changed its status or its number."""
    before, after = _flat(old), _flat(new)
    lines = []
    for key in sorted(before.keys() | after.keys()):
        label = "/".join(key)
        a, b = before.get(key), after.get(key)
        if a is None:
            lines.append(f"new verdict {label}: {b['status']} (ours {b['ours']})")
        elif b is None:
            lines.append(f"verdict gone {label} (was {a['status']})")
        elif a["status"] != b["status"]:
            lines.append(f"verdict changed {label}: {a['status']} -> {b['status']} (ours {a['ours']} -> {b['ours']})")
        elif a["ours"] != b["ours"]:
            lines.append(f"number changed {label}: {a['ours']} -> {b['ours']} (still {b['status']})")
    return lines


def committed(root: Path) -> dict[str, Any]:
    """The last committed book/verdicts.json (git HEAD), else the file as it is, else nothing."""
    try:
        text = subprocess.run(["git", "show", f"HEAD:{COMMITTED.as_posix()}"], cwd=root, capture_output=True,
                              text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        path = root / COMMITTED
        text = path.read_text() if path.exists() else "{}"
    try:
        return json.loads(text)
    except ValueError:
        return {}


def write(root: Path, pages_dir: Path, chapters: dict[str, str]) -> list[str]:
    """Collect the chapters' verdicts; write pages_dir/scoreboard.md and book/verdicts.json; return the changes
    against the committed copy."""
    board = collect(pages_dir / "verdicts", chapters)
    (pages_dir / "scoreboard.md").write_text(markdown(board))
    old = committed(root)
    (root / COMMITTED).write_text(dumps(board))
    return changes(old, board)
