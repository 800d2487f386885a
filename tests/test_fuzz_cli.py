"""Property-based fuzzing of the command line: `run` with every chapter's parameters, and the options of `sweep`,
`campaign`, `bench`, `build` and `list`.

Every generated case is bad input. Each must stop with exit code 2 and exactly one line on stderr that names the
parameter or option and says what is allowed, before any work: the data check, papermill, the sweep's executor,
the campaign, filing a returned bundle, the bench and the book build are replaced by guards that record a call,
and no case may reach them. The profile is derandomized (the same cases on every run) and sized to stay within
seconds.
"""

import ast
import contextlib
import dataclasses
import io
import itertools
import json
import math
import typing
from collections import Counter

import pandas
import papermill
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from papermill.translators import PythonTranslator

import repro.bench
import repro.campaign
import repro.sweep
from repro import cli, runner
from repro.chapters import CHAPTERS
from repro.params import INT_MAX, PRESET_NAMES, STR_MAX

settings.register_profile("repro-fuzz", derandomize=True, database=None, deadline=None, max_examples=300,
                          suppress_health_check=list(HealthCheck), print_blob=False)
FUZZ = settings.get_profile("repro-fuzz")

# The words with which a message says what is allowed.
ALLOWED_WORDS = ("expects", "must", "choose one of", "may only hold", "known parameters", "takes a parameter",
                 "give it once", "exceeds", "need ", "is larger than", "invalid choice", "use dataset",
                 "at most", "give each", "choose from", "needs ", "expected one argument", "give the folder",
                 "copy it again", "name a", "takes ", "lower ", "belongs to", "unrecognized arguments")

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
        # Code-like strings must always be refused; other odd text only where the chapter cannot use it; any
        # string longer than STR_MAX; a list that repeats an entry.
        options = [st.sampled_from(CODE), ODD_TEXT.filter(lambda s: s not in (choices or ()) and not (
            choices is None and accepted(chapter, preset, {f.name: s}))),
            st.integers(STR_MAX + 1, 20_000).map(lambda n: (f.default + ",") * (n // (len(f.default) + 1) + 1))]
        if f.metadata.get("items") is not None:
            first = f.default.split(",")[0]
            options.append(st.integers(2, 5).map(lambda k: ",".join([first] * k)))
        value = draw(st.one_of(*options))
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
    """Work that bad input must never reach: reading data, executing a notebook, running a sweep's points, a
    campaign or a bench, filing a returned bundle, building the book. Each guard records its call and returns
    what its caller expects, so that good input runs through to the end."""
    calls = []

    def guard(name, value=None):
        return lambda *a, **k: calls.append(name) or value

    monkeypatch.setattr(runner, "check_data", guard("check_data"))
    monkeypatch.setattr(papermill, "execute_notebook", guard("execute_notebook"))
    monkeypatch.setattr(repro.sweep, "sweep", guard("sweep", []))
    monkeypatch.setattr(repro.sweep, "table", lambda outcomes: pandas.DataFrame())
    monkeypatch.setattr(repro.campaign, "run_campaign", guard("run_campaign"))
    monkeypatch.setattr(repro.campaign, "take", guard("take", ([], [])))
    monkeypatch.setattr(repro.bench, "run_bench", guard("run_bench", {"rows": []}))
    monkeypatch.setattr(repro.bench, "format_report", guard("format_report", ""))
    monkeypatch.setattr(runner, "build_book", guard("build_book", 0))
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


# ------------------------------------------------------------------------------------ the other subcommands

NONFINITE = ["nan", "NaN", "inf", "-inf", "+Infinity", "1e999", "-1e999", "1e309"]


def bad_number(typ, lo=None, hi=None, lo_open=False):
    """Text that is not a number of this type within [lo, hi] (or (lo, hi] with lo_open), as typed."""
    def good(text):
        t = text.strip()
        if not (t.isascii() and "_" not in t) or not _parses(t, typ):
            return False
        v = typ(t)
        return (lo is None or v > lo or (v == lo and not lo_open)) and (hi is None or v <= hi)

    options = [st.sampled_from(NONFINITE), ODD_TEXT.filter(lambda t: not good(t))]
    if lo is not None:
        options.append(st.sampled_from([str(lo - 1), str(lo) if lo_open else str(lo - 1), "-1", "-0.5"]).filter(
            lambda t: not good(t)))
    if hi is not None:
        options.append(st.sampled_from([str(hi + 1), str(hi * 10)]))
    if typ is int:
        options.append(st.sampled_from(["1.5", "2.0", "1e3", "0.1", "9" * 40]))
    return st.one_of(*options)


def odd_name(allowed):
    return ODD_TEXT.filter(lambda t: t not in allowed and not t.startswith("-"))


FOLDERS = itertools.count()


@st.composite
def take_folder(draw, tmp):
    """A --take folder that is missing, a file, empty, or holds a bundle that is not a campaign's."""
    kind = draw(st.sampled_from(["missing", "file", "empty", "bytes", "json", "units"]))
    folder = tmp / f"take-{next(FOLDERS)}"
    if kind == "missing":
        return str(folder / "nowhere")
    if kind == "file":
        folder.write_text("x")
        return str(folder)
    folder.mkdir(exist_ok=True)
    json_value = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                              lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                              max_leaves=8)
    fields = ["schema", "experiment", "version", "key", "config", "metrics", "data", "provenance", "recorded"]
    unit = st.dictionaries(st.sampled_from(fields), json_value, max_size=len(fields))
    content = {"empty": st.just(None), "bytes": st.binary(max_size=40),
               "json": json_value.filter(lambda v: not (isinstance(v, dict) and "units" in v)).map(
                   lambda v: json.dumps(v).encode()),
               "units": st.lists(unit, max_size=3).map(lambda u: json.dumps({"units": u}).encode())}[kind]
    data = draw(content)
    if data is not None:
        (folder / "units-0.json").write_bytes(data)
    return str(folder)


@st.composite
def option_case(draw, tmp):
    """One bad command line of sweep, campaign, bench, build or list: (argv, names the message may mention)."""
    command = draw(st.sampled_from(["campaign", "campaign", "campaign", "bench", "bench", "sweep", "sweep", "build",
                                    "list"]))
    if command == "campaign":
        base = {"--budget": "60", "--dry-run": None}
        bad = draw(st.sampled_from(["--budget", "--budget", "--unknown-s", "--preset", "--chapters", "--device",
                                    "--out", "--take", "--take"]))
        value = draw({"--budget": bad_number(float, 0, lo_open=True), "--unknown-s": bad_number(float, 0, lo_open=True),
                      "--preset": odd_name(PRESET_NAMES), "--device": odd_name(("cpu", "cuda")),
                      "--chapters": odd_name(CHAPTERS) | st.sampled_from(["convex,convex", "convex,", ",",
                                                                          "convex,,catapult"]),
                      "--out": st.just(str(tmp / "a-file")), "--take": take_folder(tmp)}[bad])
        if bad == "--out":
            base = {"--budget": "60"}
        if bad == "--take":
            base = {}
        names = {bad, "--out"} if bad == "--out" else {bad}
    elif command == "bench":
        base = {"--models": "F1", "--device": "cpu"}
        bad = draw(st.sampled_from(["--models", "--batch-size", "--steps", "--warmup", "--device", "--out"]))
        value = draw({"--models": odd_name(repro.bench.MODELS) | st.just("F1 F1"),
                      "--batch-size": bad_number(int, 1, 8192), "--steps": bad_number(int, 1, 10_000),
                      "--warmup": bad_number(int, 0, 1000), "--device": odd_name(("cpu", "cuda")),
                      "--out": st.sampled_from([str(tmp), str(tmp / "b.txt"), str(tmp / "a-file" / "b.json")])}[bad])
        names = {bad}
    elif command == "sweep":
        base = {"-g": ("lr_large", "0.1,0.2"), "--preset": "smoke"}
        bad = draw(st.sampled_from(["--workers", "--gpus-per-point", "--timeout-min", "--executor", "--preset",
                                    "--out", "-g", "-g"]))
        if bad == "-g":
            syntax = st.tuples(st.sampled_from(["lr_large", "lr_small", "seed"]),
                               st.sampled_from(["0.1,0.1", "0.1,,0.2", ",", "", "1,1.0"]))
            one_value = bad_value(CHAPTERS["convex"], "smoke").map(lambda c: c[0][0])  # (name, value)
            name, value = draw(syntax | one_value.filter(lambda c: "," not in c[1]))
            base = {"-g": (name, value), "--preset": "smoke"}
            names = {name, "Grid"}
        else:
            value = draw({"--workers": bad_number(int, 1), "--gpus-per-point": bad_number(float, 0),
                          "--timeout-min": bad_number(int, 1), "--executor": odd_name(repro.sweep.EXECUTORS),
                          "--preset": odd_name(PRESET_NAMES),
                          "--out": st.sampled_from([str(tmp), str(tmp / "t.txt"), str(tmp / "a-file" / "t.csv")])}[bad])
            names = {bad}
    elif command == "build":
        chapters = draw(st.sampled_from([["convex", "convex"], ["nosuch"]]) | odd_name(CHAPTERS).map(lambda c: [c]))
        return ["build", *chapters], {"CHAPTER"}
    else:
        return ["list", draw(st.sampled_from(["extra", "--budget", "--preset"]))], {"unrecognized"}
    argv = [command] + (["convex"] if command == "sweep" else [])
    for option, v in base.items():
        if option != bad and option != "-g":
            argv += [option] if v is None else [option, v]
    if command == "sweep":
        argv += ["-g", *base["-g"]]
    if bad != "-g":
        argv += [bad, *value.split(" ")] if bad == "--models" else [bad, value]
    return argv, names


def test_fuzzed_bad_options_of_every_subcommand_stop_with_one_line_before_any_work(guarded, tmp_path):
    (tmp_path / "a-file").write_text("x")
    tally = Counter()

    @FUZZ
    @given(option_case(tmp_path))
    def check(c):
        argv, names = c
        tally[argv[0]] += 1
        code, err = run_cli(argv)
        assert "Traceback" not in err, err
        assert code == 2, (argv, code, err)
        assert err.count("\n") == 1 and err.endswith("\n") and err.startswith("error: "), (argv, err)
        assert any(n in err for n in names), (argv, names, err)
        assert any(w in err.lower() for w in ALLOWED_WORDS), (argv, err)
        assert not guarded, (argv, guarded)
        tally["rejected cleanly"] += 1

    check()
    print(f"\nfuzz: {dict(tally)}")
    assert tally["rejected cleanly"] == sum(tally[c] for c in ("campaign", "bench", "sweep", "build", "list")) >= 200
    assert min(tally[c] for c in ("campaign", "bench", "sweep", "build", "list")) > 0
    assert not list((tmp_path.parent / "results").rglob("*.json"))  # nothing was stored


@pytest.mark.parametrize("argv, message", [
    (["campaign", "--budget", "nan", "--out", "D", "--dry-run"],
     "--budget must be a finite number of seconds > 0; got 'nan'."),
    (["campaign", "--budget", "inf", "--out", "D", "--dry-run"],
     "--budget must be a finite number of seconds > 0; got 'inf'."),
    (["campaign", "--budget", "1e999", "--out", "D", "--dry-run"],
     "--budget must be a finite number of seconds > 0; got '1e999'."),
    (["campaign", "--budget", "-inf", "--dry-run"], "--budget must be a finite number of seconds > 0; got '-inf'."),
    (["campaign", "--budget", "60", "--unknown-s", "0", "--dry-run"],
     "--unknown-s must be a finite number of seconds > 0; got '0'."),
    (["campaign", "--budget", "60", "--dry-run", "--chapters", "convex,convex"],
     "--chapters names the chapter convex twice; give each once."),
    (["campaign", "--take", "T", "--budget", "60"],
     "campaign --take DIR files returned units and takes no --budget; run it on its own."),
    (["run", "sharp_minima", "--preset", "smoke", "-p", "networks", ",".join(["F1"] * 3001)],
     "Parameter networks is 9002 characters long; at most 200 are allowed."),
    (["bench", "--models", "F1", "F1"], "--models names the model F1 twice; give each once."),
    (["bench", "--batch-size", "4096", "--steps", "1000"],
     "bench holds --batch-size x (--steps + --warmup + 1) = 4112384 synthetic images in memory, more than 1048576; "
     "lower --batch-size or --steps."),
    (["sweep", "convex", "-g", "lr_large", "0.1,0.2", "--timeout-min", "0"],
     "--timeout-min must be a whole number of minutes >= 1; got '0'."),
    (["sweep", "convex", "-g", "lr_large", "0.1,0.1"], "Grid lr_large repeats a value (0.1,0.1); each value must "
                                                       "appear once."),
    (["build", "convex", "convex"], "CHAPTER names the chapter convex twice; give each once."),
])
def test_bad_input_gets_its_one_line(guarded, tmp_path, argv, message):
    (tmp_path / "T").mkdir()
    assert run_cli(argv) == (2, f"error: {message}\n") and not guarded


@pytest.mark.parametrize("setup, message", [
    (lambda t: None, "--take {t}/T does not exist; give the folder of the returned files (units-K.json)."),
    (lambda t: (t / "T").write_text("x"), "--take {t}/T is a file; give the folder of the returned files"),
    (lambda t: (t / "T").mkdir(), "--take {t}/T holds no units-K.json; give the folder of the files a campaign"),
    (lambda t: (t / "T").mkdir() or (t / "T" / "units-0.json").write_bytes(b"\x89PNG"),
     "--take {t}/T: units-0.json is not a campaign bundle: it is not JSON; copy it again. Nothing was filed."),
    (lambda t: (t / "T").mkdir() or (t / "T" / "units-0.json").write_text('{"units": [{"schema": 1}]}'),
     "--take {t}/T: units-0.json is not a campaign bundle: units-0.json[0] lacks experiment, version, key"),
])
def test_a_take_folder_that_is_not_a_returned_bundle_files_nothing(guarded, tmp_path, setup, message):
    setup(tmp_path)
    code, err = run_cli(["campaign", "--take", "T"])
    assert code == 2 and err.startswith(f"error: {message.format(t=tmp_path)}") and err.count("\n") == 1, err
    assert not guarded


@pytest.mark.parametrize("argv, calls", [
    (["campaign", "--budget", "1e3", "--dry-run", "--chapters", "convex, catapult"], ["run_campaign"]),
    (["campaign", "--budget", "60", "--out", "D", "--device", "cpu"], ["run_campaign"]),
    (["bench", "--models", "F1", "C1", "--batch-size", "64", "--steps", "+5", "--warmup", "0", "--out", "b.json"],
     ["run_bench", "format_report"]),
    (["sweep", "convex", "-g", "lr_large", "0.1,0.2", "--preset", "smoke", "--workers", "2", "--gpus-per-point",
      "0.5", "--timeout-min", "30", "--out", "t.csv"], ["sweep"]),
    (["build", "convex", "catapult"], ["build_book"]),
])
def test_good_options_reach_the_work(guarded, argv, calls):
    """The guards do catch the work: good input of every subcommand gets through to them."""
    assert run_cli(argv)[0] == 0 and guarded == calls
