"""`python -m repro list | run CHAPTER [-p NAME VALUE ...] [--preset P] [--record] | sweep CHAPTER -g NAME V1,V2 ...
| build | bench | campaign`.

Every mistake a user can make stops with exit code 2 and one line on stderr, before any work; Ctrl-C stops with
exit code 130 and one line.
"""

from __future__ import annotations

import argparse
import json
import sys
import typing
from pathlib import Path

from repro.params import PRESET_NAMES, ConfigError, bounds_text, out_of_bounds, parse_number


def _list() -> int:
    from repro.chapters import CHAPTERS

    for chapter in CHAPTERS.values():
        print(f"{chapter.name}: {chapter.title}\n  source: {chapter.source}")
        others = [p for p in PRESET_NAMES if p != "book"]
        print(f"  {'parameter':<14} {'type':<6} {'book (default)':>14} " + " ".join(f"{p:>10}" for p in others))
        for row in chapter.params.describe():
            vals = " ".join(f"{row[p]!s:>10}" for p in others)
            print(f"  {row['name']:<14} {row['type']:<6} {row['default']!s:>14} {vals}  {row['help']}")
        print()
    return 0


def _bench(args) -> int:
    from repro.bench import MODELS, format_report, run_bench

    report = run_bench(args.models or list(MODELS), args.batch_size, args.steps, args.warmup, args.device,
                       concurrency=tuple(args.concurrency or ()))
    report["command"] = "python -m repro bench " + " ".join(sys.argv[2:])
    print(format_report(report))
    if args.out:
        from repro.store import write_json_atomic

        write_json_atomic(Path(args.out), report)
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is a ConfigError, reported as one line like every other bad input (argparse
    would print the whole usage first)."""

    def error(self, message: str) -> typing.NoReturn:
        raise ConfigError(f"{message}; see `{self.prog} --help`.")


PARAM_FLAGS = ("-p", "--param")


def split_params(argv: list[str], flags: tuple[str, ...] = PARAM_FLAGS) -> tuple[list[str], list[tuple[str, str]]]:
    """Take every `-p NAME VALUE` (or another of `flags`) out of argv before argparse sees it: argparse would read
    a VALUE such as -1e-3 or -inf as an option."""
    rest, pairs, i = [], [], 0
    while i < len(argv):
        if argv[i] in flags:
            if len(argv) - i < 3:
                got = " ".join(argv[i + 1:]) or "nothing"
                raise ConfigError(f"{argv[i]} takes a parameter NAME and a VALUE, got {got!r}; "
                                  f"write -p NAME VALUE (see `python -m repro list`).")
            pairs.append((argv[i + 1], argv[i + 2]))
            i += 3
        else:
            rest.append(argv[i])
            i += 1
    return rest, pairs


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).splitlines()) or type(err).__name__


# ===================================================================================== option rules
# Every option of every subcommand that takes a value is checked here, once, after parsing and before any work:
# OPTIONS names, per subcommand, each option's rule. A rule takes (the option as written, the value as typed)
# and returns the value to use, or raises ConfigError with one sentence that names the option and what it takes.
# argparse converts nothing itself, so every message has this one form.

Rule = typing.Callable[[str, typing.Any], typing.Any]


def _show(value: typing.Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:50]}...{text[-6:]}"


def number(typ: type[int] | type[float], unit: str = "", **bounds: float) -> Rule:
    """A finite number (or an integer) within `bounds` (gt, ge, le, lt), typed as a plain decimal."""
    kind = (("a whole number" if unit else "an integer") if typ is int else "a finite number") + (
        f" of {unit}" if unit else "")
    allowed = f"{kind} {bounds_text(bounds)}".strip()

    def rule(option: str, text: typing.Any) -> int | float:
        if not isinstance(text, str):  # argparse's default, not typed by the user
            return text
        try:
            value = parse_number(text, typ)
        except ValueError:
            raise ConfigError(f"{option} must be {allowed}; got {_show(text)}.") from None
        if out_of_bounds(value, bounds):
            raise ConfigError(f"{option} must be {allowed}; got {_show(text)}.")
        return value

    return rule


def _lazy(allowed: typing.Iterable[str] | typing.Callable[[], typing.Iterable[str]]) -> tuple[str, ...]:
    return tuple(allowed() if callable(allowed) else allowed)


def choice(noun: str, allowed: typing.Iterable[str] | typing.Callable[[], typing.Iterable[str]]) -> Rule:
    """One of `allowed` (or of what the callable returns: its module is imported only when the option is used)."""

    def rule(option: str, text: str) -> str:
        allowed_ = _lazy(allowed)
        if text not in allowed_:
            raise ConfigError(f"Unknown {noun} {_show(text)} for {option}; choose one of {', '.join(allowed_)}.")
        return text

    return rule


def names(noun: str, allowed: typing.Iterable[str] | typing.Callable[[], typing.Iterable[str]]) -> Rule:
    """Several of `allowed`, each once: a comma-separated string or argparse's list (nargs='*')."""

    def rule(option: str, value: str | list[str]) -> list[str]:
        allowed_ = _lazy(allowed)
        entries = [e.strip() for e in value.split(",")] if isinstance(value, str) else list(value)
        if isinstance(value, str) and "" in entries:
            raise ConfigError(f"{option} takes comma-separated {noun}s, none empty, from {', '.join(allowed_)}; "
                              f"got {_show(value)}.")
        for i, entry in enumerate(entries):
            if entry not in allowed_:
                raise ConfigError(f"Unknown {noun} {_show(entry)} for {option}; choose from {', '.join(allowed_)}.")
            if entry in entries[:i]:
                raise ConfigError(f"{option} names the {noun} {entry} twice; give each once.")
        return entries

    return rule


def counts(noun: str, **bounds: float) -> Rule:
    """Comma-separated integers within `bounds`, each once (e.g. units in flight: 1,2,4,8)."""
    one = number(int, noun, **bounds)

    def rule(option: str, text: str) -> list[int]:
        entries = text.split(",")
        if "" in (e.strip() for e in entries):
            raise ConfigError(f"{option} takes comma-separated {noun}, none empty; got {_show(text)}.")
        values = [one(option, e.strip()) for e in entries]
        if len(set(values)) != len(values):
            raise ConfigError(f"{option} names a number of {noun} twice; give each once.")
        return values

    return rule


def file_path(suffix: str) -> Rule:
    """A file to write: it ends in `suffix`, is not a folder, and its folder can be created and written."""

    def rule(option: str, text: str) -> str:
        from repro.runner import _writable_folder

        path = Path(text).expanduser().absolute()
        if path.is_dir():
            raise ConfigError(f"{option} {path} is a folder; name a {suffix} file in it.")
        if path.suffix != suffix:
            raise ConfigError(f"{option} {path} must name a {suffix} file.")
        _writable_folder(path.parent, f"{option} {path}")
        return text

    return rule


def folder_path(option: str, text: str) -> str:
    """A folder to write in (created if missing)."""
    from repro.runner import _writable_folder

    path = Path(text).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path} is a file; name a folder.")
    _writable_folder(path, f"{option} {path}")
    return text


def returned_folder(option: str, text: str) -> str:
    """The folder a campaign returned: its bundles units-K.json are read and every unit in them checked, so
    that a damaged or foreign bundle stops the command before anything is filed."""
    from repro.store import check_recorded

    path = Path(text).expanduser().absolute()
    if not path.exists():
        raise ConfigError(f"{option} {path} does not exist; give the folder of the returned files (units-K.json).")
    if not path.is_dir():
        raise ConfigError(f"{option} {path} is a file; give the folder of the returned files (units-K.json).")
    bundles = sorted(path.glob("units-*.json"))
    if not bundles:
        raise ConfigError(f"{option} {path} holds no units-K.json; give the folder of the files a campaign "
                          f"returned.")
    for bundle in bundles:
        try:
            units = json.loads(bundle.read_text())["units"]
            why = "" if isinstance(units, list) and units else "it holds no list of units"
        except OSError as err:
            why = f"it cannot be read ({err.strerror})"
        except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            why = "it is not JSON"
        except (KeyError, TypeError):
            why = "it holds no list of units"
        for i, unit in enumerate([] if why else units):
            try:
                check_recorded(unit, f"{bundle.name}[{i}]", -1)
                if "unit" not in unit["recorded"]:
                    raise ValueError(f"{bundle.name}[{i}] is not a campaign unit")
            except (ValueError, TypeError, KeyError, AttributeError) as err:
                why = _one_line(err)
                break
        if why:
            raise ConfigError(f"{option} {path}: {bundle.name} is not a campaign bundle: {why}; copy it again. "
                              f"Nothing was filed.")
    return text


def _chapters() -> list[str]:
    from repro.chapters import CHAPTERS

    return list(CHAPTERS)


def _executors() -> tuple[str, ...]:
    from repro.sweep import EXECUTORS

    return EXECUTORS


def _models() -> list[str]:
    from repro.bench import MODELS

    return list(MODELS)


def option_rules(command: str) -> dict[str, Rule]:
    """dest -> rule for the options of `command` that take a value (other than -p and -g, which the chapter's
    Params check, and the positional chapter, which `run` and `sweep` check by name)."""
    preset = choice("preset", PRESET_NAMES)
    device = choice("device", ("cpu", "cuda"))
    if command == "run":
        return {"preset": preset}
    if command == "sweep":
        return {"preset": preset, "executor": choice("executor", _executors), "workers": number(int, ge=1),
                "gpus_per_point": number(float, ge=0), "timeout_min": number(int, "minutes", ge=1),
                "out": file_path(".csv")}
    if command == "campaign":
        return {"budget": number(float, "seconds", gt=0), "unknown_s": number(float, "seconds", gt=0),
                "workers": number(int, "units in flight", ge=1, le=64),
                "preset": preset, "chapters": names("chapter", _chapters), "device": device, "out": folder_path,
                "take": returned_folder}
    if command == "bench":
        return {"models": names("model", _models), "batch_size": number(int, ge=1, le=8192),
                "steps": number(int, ge=1, le=10_000), "warmup": number(int, ge=0, le=1000), "device": device,
                "concurrency": counts("units in flight", ge=1, le=64), "out": file_path(".json")}
    if command == "build":
        return {"chapters": names("chapter", _chapters)}
    return {}


BENCH_IMAGES = 2**20  # synthetic images a bench holds in memory at once (uint8: 3 KiB each for CIFAR's shape)


def check_options(command: str, args: argparse.Namespace, options: dict[str, str]) -> None:
    """Apply `command`'s option rules to the parsed `args` in place, then the checks that involve several
    options. `options` maps dest to the option as the user writes it."""
    if command == "campaign":  # which options go together, before what each holds
        if args.take is not None:
            extra = [o for o, v in (("--budget", args.budget), ("--out", args.out), ("--chapters", args.chapters),
                                    ("--dry-run", args.dry_run or None)) if v is not None]
            if extra:
                raise ConfigError(f"campaign --take DIR files returned units and takes no {extra[0]}; run it "
                                  f"on its own.")
        elif args.budget is None or (args.out is None and not args.dry_run):
            raise ConfigError("campaign needs --budget SECONDS (> 0) and --out DIR (or --dry-run, or --take DIR).")
    for dest, rule in option_rules(command).items():
        value = getattr(args, dest, None)
        if value is not None:
            setattr(args, dest, rule(options[dest], value))
    if command == "bench":
        images = args.batch_size * (args.steps + args.warmup + 1)
        if images > BENCH_IMAGES:
            raise ConfigError(f"bench holds --batch-size x (--steps + --warmup + 1) = {images} synthetic images in "
                              f"memory, more than {BENCH_IMAGES}; lower --batch-size or --steps.")
    if command in ("bench", "campaign") and args.device == "cuda" and not getattr(args, "dry_run", False):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"{command} --device cuda needs a GPU, and this PyTorch sees none; use --device cpu.")


def _campaign(args) -> int:
    from repro.campaign import run_campaign, take

    if args.take:
        written, refused = take(Path(args.take))
        for line in refused:  # checked before, so only a unit changed on disk since lands here
            print(f"refused: {line}", file=sys.stderr)
        print(f"filed {len(written)} recorded unit(s) under results/recorded/")
        return 1 if refused else 0
    run_campaign(args.budget, Path(args.out) if args.out else None, args.preset, args.chapters, dry_run=args.dry_run,
                 device=args.device, unknown_s=args.unknown_s, workers=args.workers)
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(sys.argv[1:] if argv is None else list(argv))
    except KeyboardInterrupt:
        print("interrupted: finished results are stored; run the same command again to continue (a training run "
              "with checkpoints resumes from its last one).", file=sys.stderr)
        return 130


def parser() -> tuple[_Parser, dict[str, _Parser | None]]:
    """The command line's parser and its subcommands' parsers. Options that take a value are read as text: their
    rules (option_rules) convert and check them."""
    from repro import sweep as _sweep

    top = _Parser(prog="python -m repro", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="chapters, their parameters with defaults and help, and their presets")
    run = sub.add_parser("run", help="execute one chapter with papermill")
    run.add_argument("chapter")
    run.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="override a parameter (repeatable; VALUE may start with '-')")
    run.add_argument("--preset", default="book", help=f"one of {', '.join(PRESET_NAMES)} (default: book)")
    run.add_argument("--output", help="executed notebook path (default: runs/CHAPTER/PRESET-KEY.ipynb)")
    run.add_argument("--force", action="store_true", help="recompute results even if stored")
    run.add_argument("--record", action="store_true",
                     help="also keep the results in the tracked folder results/recorded/ (for paper-scale runs)")
    sweep = sub.add_parser("sweep", help="run a grid of a chapter's parameters on local processes, Ray or SLURM "
                                         "(submitit)")
    _sweep.add_arguments(sweep)
    build = sub.add_parser("build", help="execute every chapter at its defaults and render the book")
    build.add_argument("chapters", nargs="*", metavar="CHAPTER", help="only these chapters (default: all)")
    build.add_argument("--no-render", action="store_true", help="execute chapters but do not render HTML")
    build.add_argument("--force", action="store_true", help="recompute results even if stored")
    bench = sub.add_parser("bench", help="training throughput of the book's loop vs a papers'-style loop")
    bench.add_argument("--models", nargs="*", default=None, help="default: every model of repro.bench.MODELS")
    bench.add_argument("--batch-size", default=128, help="images per step, 1 to 8192 (default: 128)")
    bench.add_argument("--steps", default=20, help="timed SGD steps per loop, 1 to 10000 (default: 20)")
    bench.add_argument("--warmup", default=3, help="untimed steps first, 0 to 1000 (default: 3)")
    bench.add_argument("--device", default=None, help="cpu or cuda (default: CUDA when present)")
    bench.add_argument("--concurrency", default=None, metavar="K1,K2,...",
                       help="also time K units in flight at once for each K, e.g. 1,2,4,8 (worker processes)")
    bench.add_argument("--out", help="also write the figures here (a .json file)")
    camp = sub.add_parser("campaign", help="run the pending units of a preset that fit a time budget, recording "
                                           "each (for a short GPU window)")
    camp.add_argument("--budget", help="seconds the whole campaign may take, the bench included (> 0)")
    camp.add_argument("--out", help="folder for the finished units' bundles (units-K.json)")
    camp.add_argument("--preset", default="paper", help="whose units to run (default: paper)")
    camp.add_argument("--chapters", help="comma-separated chapters (default: all, in order of value)")
    camp.add_argument("--dry-run", action="store_true", help="print the plan with estimated times, run nothing")
    camp.add_argument("--device", default=None, help="cpu or cuda (default: CUDA when present)")
    camp.add_argument("--unknown-s", default=120.0,
                      help="seconds assumed for a unit without an estimate (> 0; default: 120)")
    camp.add_argument("--workers", default=None, metavar="K",
                      help="units in flight at once, >= 1 (default: chosen from the bench; 1 without one)")
    camp.add_argument("--take", metavar="DIR", help="file the units of a returned bundle under results/recorded/")
    commands = {"list": None, "run": run, "sweep": sweep, "build": build, "bench": bench, "campaign": camp}
    for name, p in commands.items():
        rules = option_rules(name) if p else {}
        for action in p._actions if p else []:
            if action.dest in rules:
                action.type = None  # converted and checked by the rule, with its one message
    return top, commands


def _options(p: argparse.ArgumentParser) -> dict[str, str]:
    """dest -> the option as a user writes it (its long form), or the positional's name."""
    return {a.dest: (a.option_strings[-1] if a.option_strings else str(a.metavar or a.dest).upper())
            for a in p._actions}


def _main(argv: list[str]) -> int:
    """The one place where bad input of every subcommand becomes one line and exit code 2."""
    from repro.data.vision import DataError
    from repro.runner import ChapterFailed

    try:
        return _dispatch(argv)
    except (ConfigError, DataError) as err:
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return 2
    except ChapterFailed as err:
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return 1


def _attach_values(argv: list[str], commands: dict[str, argparse.ArgumentParser | None]) -> list[str]:
    """`--budget -inf` -> `--budget=-inf`: argparse would read a value that starts with '-' (other than a plain
    negative decimal) as an option and say only that --budget expected an argument; as a value, its rule says
    what the option takes. A following option (`--out --dry-run`) is left alone: the value is missing."""
    actions = [a for p in commands.values() if p for a in p._actions]
    takes_value = {o for a in actions if a.nargs is None and a.option_strings for o in a.option_strings}
    known = {o for a in actions for o in a.option_strings}
    out, i = [], 0
    while i < len(argv):
        if argv[i] in takes_value and i + 1 < len(argv) and argv[i + 1].startswith("-") and argv[i + 1] not in known:
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def _dispatch(argv: list[str]) -> int:
    argv, param_pairs = split_params(argv)
    argv, grid_pairs = split_params(argv, ("-g", "--grid"))
    top, commands = parser()
    args = top.parse_args(_attach_values(argv, commands))
    if param_pairs and args.command not in ("run", "sweep"):
        raise ConfigError(f"-p NAME VALUE belongs to `run` or `sweep`, not `{args.command}`.")
    if grid_pairs and args.command != "sweep":
        raise ConfigError(f"-g NAME V1,V2,... belongs to `sweep`, not `{args.command}`.")
    if commands[args.command] is not None:
        check_options(args.command, args, _options(commands[args.command]))

    from repro import runner

    if args.command == "list":
        return _list()
    if args.command == "run":
        overrides = {}
        for name, value in param_pairs:
            if name in overrides:
                raise ConfigError(f"Parameter {name} is given twice; give it once.")
            overrides[name] = value
        out = runner.run_chapter(args.chapter, args.preset, overrides, args.output, args.force, progress=True,
                                 record=args.record)
        print(f"executed notebook: {out}")
        return 0
    if args.command == "bench":
        return _bench(args)
    if args.command == "sweep":
        from repro import sweep as _sweep

        args.param, args.grid = param_pairs, grid_pairs
        return _sweep.main(args)
    if args.command == "campaign":
        return _campaign(args)
    return runner.build_book(args.chapters or None, render=not args.no_render, force=args.force)


if __name__ == "__main__":
    sys.exit(main())
