"""Property-based fuzzing of `python -m repro run` and every chapter's parameters.

Every generated case is bad input. Each must stop with exit code 2 and exactly one line on stderr that names the
parameter and says what is allowed, before any work: the data check and papermill are replaced by guards that
record a call, and no case may reach them. The profile is derandomized (the same cases on every run) and sized
to stay well within a minute.
"""

import ast
import contextlib
import dataclasses
import io
import math
import typing
from collections import Counter

import papermill
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from papermill.translators import PythonTranslator

from repro import cli, runner
from repro.params import INT_MAX, PRESET_NAMES
from repro.runner import CHAPTERS

settings.register_profile("repro-fuzz", derandomize=True, database=None, deadline=None, max_examples=300,
                          suppress_health_check=list(HealthCheck), print_blob=False)
FUZZ = settings.get_profile("repro-fuzz")

# The words with which a message says what is allowed.
ALLOWED_WORDS = ("expects", "must", "choose one of", "may only hold", "known parameters", "takes a parameter",
                 "give it once", "exceeds", "need ", "is larger than", "invalid choice", "use dataset")

CODE = ["__import__('os').system('touch pwned')", '"; import os; os.system("touch pwned"); "',
        "\\\"; raise SystemExit(7) #", "1; import shutil", "${HOME}", "$(touch pwned)", "`id`", "{0.__class__}",
        "'\n__import__('os')\n'", "F1\nimport os", "nan", "inf", "1e999", "-inf"]
ODD_TEXT = st.one_of(
    st.sampled_from(CODE + ["", " ", "'", '"', "\\", "\n", "\t", "\x00", "é", "１２", "١٢٣", "1_000", "0x10", "1e",
                            "--force", "-p", "True", "None", "[]", "1,2,", "🙂"]),
    st.text(min_size=0, max_size=30),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=8).map(lambda s: s + "'\""),
)


def fields(chapter):
    cls = chapter.params
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls)]


def _out_of_range(f, typ):
    """Values that break one of the field's own bounds, as command-line text."""
    m, out = f.metadata, []
    step = 1 if typ is int else 1e-9
    for rule, sign in (("gt", 0), ("ge", -step), ("lt", 0), ("le", step)):
        if rule in m:
            bound = m[rule] + sign
            if typ is float and rule == "ge":
                bound = m[rule] - max(abs(m[rule]) * 1e-6, 1e-9)
            if typ is float and rule == "le":
                bound = m[rule] + max(abs(m[rule]) * 1e-6, 1e-9)
            out.append(repr(bound) if typ is float else str(int(bound)))
    return out


def accepted(chapter, preset, overrides):
    try:
        chapter.params.resolve(preset, overrides)
    except runner.ConfigError:
        return False
    return True


@st.composite
def bad_value(draw, chapter, preset):
    """(overrides as -p pairs, names that the message may mention)."""
    f, typ = draw(st.sampled_from(fields(chapter)))
    choices = f.metadata.get("choices")
    if typ is bool:
        value = draw(ODD_TEXT.filter(lambda s: s.strip().lower() not in ("true", "false", "1", "0", "yes", "no")))
    elif typ is str:
        # Code-like strings must always be refused; other odd text only where the chapter cannot use it.
        value = draw(st.sampled_from(CODE) | ODD_TEXT.filter(lambda s: s not in (choices or ()) and not (
            choices is None and accepted(chapter, preset, {f.name: s}))))
    else:
        huge = st.integers(INT_MAX + 1, 10**40).map(str) | st.integers(13, 5000).map(lambda n: "9" * n)
        nonfinite = st.sampled_from(["nan", "NaN", "inf", "-inf", "+Infinity", "1e999", "-1e999", "1e309"])
        wrong_type = ODD_TEXT.filter(lambda s: not _parses(s, typ))
        options = [huge, nonfinite, wrong_type] if typ is int else [nonfinite, wrong_type]
        if typ is int:
            options.append(st.sampled_from(["1.5", "2.0", "1e3", "0.1"]))
        bounds = _out_of_range(f, typ)
        if bounds:
            options.append(st.sampled_from(bounds))
        value = draw(st.one_of(*options))
    return [(f.name, value)], {f.name}


def _parses(text, typ):
    t = text.strip()
    try:
        v = typ(t)
    except (ValueError, TypeError):
        return False
    return t.isascii() and "_" not in t and (typ is int or math.isfinite(v))


# Combinations that are each fine alone but contradict each other: chapter -> strategies of override dicts.
def contradictions(name):
    pos = st.floats(1e-4, 1.0)
    return {
        "convex": [pos.flatmap(lambda lr: st.floats(1.0, 10.0).map(lambda k: {"lr_large": lr, "lr_small": lr * k})),
                   st.floats(0.01, 0.5).map(lambda a: {"anneal_loss": a, "stop_loss": a})],
        "catapult": [st.integers(8, 5000).map(lambda w: {"width_small": w, "width_large": w}),
                     st.integers(60_001, INT_MAX).map(lambda n: {"dataset": "mnist", "n_train": n}),
                     st.integers(10_001, 10**6).map(lambda n: {"n_test": n})],
        "intrinsic_lr": [st.integers(16, 600).map(lambda n: {"n_train": n, "batch_size_large": n + 1}),
                         st.just({"model": "preresnet32", "dataset": "mnist"}),
                         st.just({"augment": "true", "dataset": "mnist"}),
                         st.floats(0.5, 5.0).map(lambda wd: {"weight_decay": wd, "lr_large_first": 1.0})],
        "learning_order": [st.integers(256, 2000).map(lambda n: {"n_train": n, "batch_size": n}),
                           st.integers(1, 12).map(lambda e: {"epochs": e, "anneal_epoch": e}),
                           st.integers(50_001, 10**7).map(lambda n: {"n_train": n}),
                           st.floats(0.51, 1.0).map(lambda p: {"pq_p0": p, "pq_q0": 0.5})],
        "sharp_minima": [st.integers(16, 1000).map(lambda n: {"n_train": n, "batch_size": n}),
                         st.integers(1, 5).map(lambda k: {"sharpness_eps": 1e-4 * k, "sharpness_eps_small": 1e-3}),
                         st.sampled_from(["F2", "C9", ",", "F1,X"]).map(lambda s: {"networks": s})],
        "noise_scale": [st.just({"model": "preresnet32", "dataset": "mnist"}),
                        st.just({"augment": "true", "dataset": "mnist"}),
                        st.integers(16, 500).map(lambda n: {"n_train": n, "batch_sizes": f"{n + 1}"}),
                        st.sampled_from(["0.1,x", ",", "0.1,0.1", "-1,0.1"]).map(lambda s: {"lrs": s})],
    }[name]


@st.composite
def case(draw):
    """One bad command line: (argv, names the message may mention, kind)."""
    name = draw(st.sampled_from(list(CHAPTERS)))
    chapter = CHAPTERS[name]
    preset = draw(st.sampled_from(PRESET_NAMES))
    kind = draw(st.sampled_from(["value", "value", "value", "unknown_name", "unknown_preset", "unknown_chapter",
                                 "repeated", "missing_value", "contradiction"]))
    known = chapter.params.names()
    names = set()
    if kind == "value":
        pairs, names = draw(bad_value(chapter, preset))
    elif kind == "unknown_name":
        bad = draw(ODD_TEXT.filter(lambda s: s not in known))
        pairs, names = [(bad, "1")], {"Unknown parameter"}
    elif kind == "repeated":
        f = draw(st.sampled_from(known))
        pairs, names = [(f, "1"), (f, "2")], {f}
    elif kind == "contradiction":
        combo = draw(st.sampled_from(contradictions(name)).flatmap(lambda s: s))
        pairs, names = [(k, repr(v) if isinstance(v, float) else str(v)) for k, v in combo.items()], set(combo)
    else:
        pairs = []
    argv = ["run", name]
    if kind == "unknown_chapter":
        argv[1] = draw(ODD_TEXT.filter(lambda s: s not in CHAPTERS and not s.startswith("-")))
        names = {"chapter"}
    for k, v in pairs:
        argv += ["-p", k, v]
    if kind == "unknown_preset":
        p = draw(ODD_TEXT.filter(lambda s: s not in PRESET_NAMES and not s.startswith("-")))
        argv += ["--preset", p]
        names = {"preset"}
    else:
        argv += ["--preset", preset]
    if kind == "missing_value":
        argv += ["-p", draw(st.sampled_from(known))]
        names = {"-p"}
    return argv, names, kind


@pytest.fixture
def guarded(monkeypatch, tmp_path):
    """Work that bad input must never reach: reading data and executing the notebook."""
    calls = []
    monkeypatch.setattr(runner, "check_data", lambda *a, **k: calls.append("check_data"))
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: calls.append("execute_notebook"))
    monkeypatch.chdir(tmp_path)
    return calls


def run_cli(argv):
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = cli.main(argv)
        except SystemExit as exit_:  # argparse exits on its own
            code = exit_.code
    return code, err.getvalue()


def test_fuzzed_bad_input_stops_with_one_line_before_any_work(guarded, tmp_path):
    tally = Counter()

    @FUZZ
    @given(case())
    def check(c):
        argv, names, kind = c
        tally["tried"] += 1
        tally[kind] += 1
        code, err = run_cli(argv)
        assert "Traceback" not in err, err
        tally["tracebacks"] += "Traceback" in err
        assert code == 2, (argv, code, err)
        assert err.count("\n") == 1 and err.endswith("\n") and err.startswith("error: "), (argv, err)
        assert any(n in err for n in names), (argv, names, err)
        assert any(w in err.lower() for w in ALLOWED_WORDS), (argv, err)
        assert not guarded, (argv, guarded)
        tally["rejected cleanly"] += 1

    check()
    print(f"\nfuzz: {dict(tally)}")
    assert tally["tried"] >= 200 and tally["rejected cleanly"] == tally["tried"] and tally["tracebacks"] == 0
    assert min(tally[k] for k in ("value", "unknown_name", "unknown_preset", "unknown_chapter", "repeated",
                                  "missing_value", "contradiction")) > 0
    assert not list(tmp_path.rglob("*.ipynb")) and not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("name, value", [("lr_large", " 0.05 "), ("lr_large", "5e-2"), ("lr_large", "+.5"),
                                         ("seed", "+3"), ("seed", str(INT_MAX)), ("noise_std", "-0")])
def test_well_formed_values_reach_the_run(guarded, name, value):
    """The guards do catch a run: good input gets through to them (with values parsed as the user meant)."""
    assert run_cli(["run", "convex", "--preset", "smoke", "-p", name, value])[0] == 0
    assert guarded == ["check_data", "execute_notebook"]


def test_a_value_starting_with_a_minus_is_a_value_not_an_option(guarded):
    code, err = run_cli(["run", "convex", "-p", "lr_large", "-1e-3"])
    assert (code, err) == (2, "error: Parameter lr_large must be > 0, got -0.001.\n")


@FUZZ
@given(st.text())
def test_no_string_can_become_code_in_the_injected_cell(value):
    """Even past validation, papermill's injected parameters cell reads any string back as the same string."""
    source = PythonTranslator.codify({"networks": value})
    namespace = {}
    exec(compile(source, "<injected>", "exec"), {"__builtins__": {}}, namespace)
    assert namespace == {"networks": value}
    tree = ast.parse(source)
    assert all(isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) for node in tree.body)


def test_a_string_parameter_that_tries_to_run_code_is_refused_and_runs_nothing(guarded, tmp_path):
    evil = '"; __import__("pathlib").Path("pwned").touch(); "'
    code, err = run_cli(["run", "sharp_minima", "--preset", "smoke", "-p", "networks", evil])
    assert code == 2 and err.startswith("error: Parameter networks may only hold letters, digits")
    assert not guarded and not (tmp_path / "pwned").exists()
    with pytest.raises(runner.ConfigError, match="cannot be passed to the notebook"):
        runner._check_injectable({"networks": float("nan")})  # reads back as float('nan'): not a literal
