"""Verdicts as data and the front page's scoreboard: statuses, the regime rule, thresholds, the scoreboard's cells and
the changes the build reports."""

import json
import math

import pytest

from repro import scoreboard
from repro.regime import Regime, at_least
from repro.verdict import INCONCLUSIVE, NOT_REPRODUCED, PARTLY, REPRODUCED, STATUSES, Threshold, Verdict, status_of


def verdict(key="gap", status=REPRODUCED, regime=None, section="F1", ours="1.2 ± 0.3 points"):
    return Verdict(key=key, claim="large batches generalise worse", source="Keskar et al. 2017, Table 2",
                   paper="1.1 points", ours=ours, test="gap > 2 seed SDs", status=status, regime=regime,
                   section=section)


def test_status_of_reaches_every_status():
    assert [status_of(True), status_of(False, partly=True), status_of(False), status_of(None),
            status_of(math.nan)] == [REPRODUCED, PARTLY, NOT_REPRODUCED, INCONCLUSIVE, INCONCLUSIVE]
    assert set(STATUSES) == {REPRODUCED, PARTLY, NOT_REPRODUCED, INCONCLUSIVE}


def test_a_regime_not_reached_makes_any_status_inconclusive_and_says_why():
    unfit = Regime("F1, LB", "a minimiser", [at_least("train accuracy (%)", 97.0, 99.0)])
    v = verdict(status=REPRODUCED, regime=unfit)
    assert v.status == INCONCLUSIVE and v.extra["status_if_regime_held"] == REPRODUCED
    assert "train accuracy (%) 97 (needs ≥ 99)" in v.sentence
    fit = Regime("F1, LB", "a minimiser", [at_least("train accuracy (%)", 99.5, 99.0)])
    assert verdict(status=NOT_REPRODUCED, regime=fit).status == NOT_REPRODUCED


def test_bad_status_and_keys_are_refused():
    with pytest.raises(ValueError, match="is not one of"):
        verdict(status="reversed")
    with pytest.raises(ValueError, match="must be non-empty"):
        verdict(key="F1/gap")


def test_threshold_prints_with_its_unit():
    assert str(Threshold(99.0, "%", "a minimiser fits")) == "99%"
    assert str(Threshold(0.1, "× initial gradient norm", "x")) == "0.100 × initial gradient norm"
    assert float(Threshold(0.25, "", "x")) == 0.25


def test_verdict_dict_is_json_with_its_regime():
    reg = Regime("F1", "a minimiser", [at_least("train accuracy (%)", 99.5, 99.0)])
    d = verdict(regime=reg).to_dict()
    assert json.loads(json.dumps(d))["regime"]["conditions"][0]["measured"] == 99.5
    assert d["status"] == REPRODUCED and d["section"] == "F1"


def board(book, paper=None, sections=None):
    records = [{"chapter": "ch", "scale": "book", "verdicts": [v.to_dict() for v in book], "sections": {}}]
    if paper is not None:
        records.append({"chapter": "ch", "scale": "paper", "verdicts": [v.to_dict() for v in paper],
                        "sections": sections or {}})
    return records


def test_scoreboard_lines_up_book_and_paper_scale_by_key(tmp_path):
    (tmp_path / "verdicts").mkdir()
    book = [verdict("gap"), verdict("sharper", NOT_REPRODUCED, section="C1")]
    paper = [verdict("gap", PARTLY, ours="0.4 ± 0.2 points")]
    (tmp_path / "verdicts" / "ch.json").write_text(json.dumps(board(book, paper, {"F1": [3, 3], "C1": [1, 3]})))
    data = scoreboard.collect(tmp_path / "verdicts", {"ch": "Chapter: sub", "missing": "Missing: x"})
    text = scoreboard.markdown(data)
    assert "2 claims at book scale: 1 reproduced, 1 not reproduced." in text
    row_gap = next(line for line in text.splitlines() if "0.4 ± 0.2" in line)
    assert row_gap.startswith("| [Chapter](executed/ch) |") and "verdict-reproduced" in row_gap
    assert "verdict-partly" in row_gap
    row_sharper = next(line for line in text.splitlines() if "verdict-not" in line)
    assert row_sharper.endswith("| 1 of 3 units recorded |")
    assert "| [Missing](executed/missing) | (this chapter did not run) |" in text
    no_paper = scoreboard.collect(tmp_path / "none", {"ch": "Chapter"})
    assert scoreboard.markdown(no_paper).count("did not run") == 1


def test_scoreboard_says_not_run_without_a_paper_record(tmp_path):
    (tmp_path / "verdicts").mkdir()
    (tmp_path / "verdicts" / "ch.json").write_text(json.dumps(board([verdict()])))
    text = scoreboard.markdown(scoreboard.collect(tmp_path / "verdicts", {"ch": "Chapter"}))
    assert text.splitlines()[-2].endswith("| not run |") and text.splitlines()[-1] == ":::"


def test_changes_name_new_gone_and_changed_verdicts():
    old = {"chapters": {"ch": {"book": [verdict("gap").to_dict(), verdict("old").to_dict()], "paper": None}}}
    new = {"chapters": {"ch": {"book": [verdict("gap", PARTLY, ours="0.5").to_dict(), verdict("new").to_dict()],
                               "paper": {"verdicts": [verdict("gap").to_dict()], "sections": {}}}}}
    lines = scoreboard.changes(old, new)
    assert "verdict changed ch/book/gap: reproduced -> partly reproduced (ours 1.2 ± 0.3 points -> 0.5)" in lines
    assert "verdict gone ch/book/old (was reproduced)" in lines
    assert "new verdict ch/book/new: reproduced (ours 1.2 ± 0.3 points)" in lines
    assert "new verdict ch/paper/gap: reproduced (ours 1.2 ± 0.3 points)" in lines
    assert scoreboard.changes(new, new) == []


def test_verdicts_json_is_strict_json():
    reg = Regime("x", "y", [at_least("accuracy", math.nan, 0.5)])
    text = scoreboard.dumps({"chapters": {"ch": {"book": [verdict(regime=reg).to_dict()], "paper": None}}})
    assert json.loads(text)["chapters"]["ch"]["book"][0]["regime"]["conditions"][0]["measured"] is None
