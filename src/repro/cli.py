"""`python -m repro list | run CHAPTER [-p NAME VALUE ...] [--preset P] [--record] | sweep CHAPTER -g NAME V1,V2 ...
| build | bench | campaign`.

Every mistake a user can make stops with exit code 2 and one line on stderr, before any work; Ctrl-C stops with
exit code 130 and one line.
"""

from __future__ import annotations

import argparse
import sys

from repro.params import PRESET_NAMES, ConfigError


def _list() -> int:
    from repro.runner import CHAPTERS

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
    import sys as _sys

    from repro.bench import MODELS, format_report, run_bench

    models = args.models or list(MODELS)
    if any(m not in MODELS for m in models) or args.batch_size < 1 or args.steps < 1 or args.warmup < 0:
        raise ConfigError(f"bench takes --models from {', '.join(MODELS)}, --batch-size >= 1, --steps >= 1 "
                          f"and --warmup >= 0.")
    if args.concurrency is None:
        concurrency = ()
    else:
        try:
            concurrency = tuple(int(k) for k in args.concurrency.split(","))
        except ValueError:
            concurrency = (0,)
        if any(k < 1 for k in concurrency):
            raise ConfigError(f"bench --concurrency takes comma-separated numbers of units in flight >= 1, like "
                              f"1,2,4,8; got {args.concurrency!r}.")
    report = run_bench(models, args.batch_size, args.steps, args.warmup, args.device, concurrency=concurrency)
    report["command"] = "python -m repro bench " + " ".join(_sys.argv[2:])
    print(format_report(report))
    if args.out:
        from pathlib import Path

        from repro.store import write_json_atomic

        write_json_atomic(Path(args.out), report)
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (argparse prints the whole usage first)."""

    def error(self, message: str) -> None:
        self.exit(2, f"error: {message}; see `{self.prog} --help`.\n")


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


def _campaign(args) -> int:
    from pathlib import Path

    from repro.campaign import run_campaign, take
    from repro.runner import get_chapter

    if args.take:
        if not Path(args.take).exists():
            raise ConfigError(f"campaign --take: {args.take} does not exist; give the folder of the returned files.")
        written, refused = take(Path(args.take))
        for line in refused:
            print(f"refused: {line}", file=sys.stderr)
        print(f"filed {len(written)} recorded unit(s) under results/recorded/")
        return 1 if refused else 0
    if args.budget is None or args.budget <= 0 or (args.out is None and not args.dry_run):
        raise ConfigError("campaign needs --budget SECONDS (> 0) and --out DIR (or --dry-run, or --take DIR).")
    if args.preset not in PRESET_NAMES:
        raise ConfigError(f"Unknown preset {args.preset!r}; choose one of {', '.join(PRESET_NAMES)}.")
    if args.device == "cuda" and not args.dry_run:
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("campaign --device cuda needs a GPU, and this PyTorch sees none; use --device cpu.")
    chapters = [c.strip() for c in args.chapters.split(",") if c.strip()] if args.chapters else None
    for name in chapters or []:
        get_chapter(name)
    if args.workers is not None and args.workers < 1:
        raise ConfigError("campaign --workers takes a number of units in flight >= 1.")
    run_campaign(args.budget, Path(args.out) if args.out else None, args.preset, chapters, dry_run=args.dry_run,
                 device=args.device, unknown_s=args.unknown_s, workers=args.workers)
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(sys.argv[1:] if argv is None else list(argv))
    except KeyboardInterrupt:
        print("interrupted: finished results are stored; run the same command again to continue (a training run "
              "with checkpoints resumes from its last one).", file=sys.stderr)
        return 130


def _main(argv: list[str]) -> int:
    from repro.data.vision import DataError

    try:
        argv, param_pairs = split_params(argv)
        argv, grid_pairs = split_params(argv, ("-g", "--grid"))
    except ConfigError as err:
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return 2
    parser = _Parser(prog="python -m repro", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
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
    from repro import sweep as _sweep

    _sweep.add_arguments(sub.add_parser("sweep", help="run a grid of a chapter's parameters on local processes, "
                                                      "Ray or SLURM (submitit)"))
    build = sub.add_parser("build", help="execute every chapter at its defaults and render the book")
    build.add_argument("chapters", nargs="*", help="only these chapters (default: all)")
    build.add_argument("--no-render", action="store_true", help="execute chapters but do not render HTML")
    build.add_argument("--force", action="store_true", help="recompute results even if stored")
    bench = sub.add_parser("bench", help="training throughput of the book's loop vs a papers'-style loop")
    bench.add_argument("--models", nargs="*", default=None, help="default: every model of repro.bench.MODELS")
    bench.add_argument("--batch-size", type=int, default=128)
    bench.add_argument("--steps", type=int, default=20, help="timed SGD steps per loop")
    bench.add_argument("--warmup", type=int, default=3)
    bench.add_argument("--device", default=None, help="cpu or cuda (default: CUDA when present)")
    bench.add_argument("--concurrency", default=None, metavar="K1,K2,...",
                       help="also time K units in flight at once for each K, e.g. 1,2,4,8 (worker processes)")
    bench.add_argument("--out", help="also write the figures as JSON here")
    camp = sub.add_parser("campaign", help="run the pending units of a preset that fit a time budget, recording "
                                           "each (for a short GPU window)")
    camp.add_argument("--budget", type=float, help="seconds the whole campaign may take, the bench included")
    camp.add_argument("--out", help="folder for the finished units' bundles (units-K.json)")
    camp.add_argument("--preset", default="paper", help="whose units to run (default: paper)")
    camp.add_argument("--chapters", help="comma-separated chapters (default: all, in order of value)")
    camp.add_argument("--dry-run", action="store_true", help="print the plan with estimated times, run nothing")
    camp.add_argument("--device", default=None, choices=("cpu", "cuda"), help="default: CUDA when present")
    camp.add_argument("--unknown-s", type=float, default=120.0,
                      help="seconds assumed for a unit without an estimate (default: 120)")
    camp.add_argument("--workers", type=int, default=None, metavar="K",
                      help="units in flight at once (default: chosen from the bench; 1 without one)")
    camp.add_argument("--take", metavar="DIR", help="file the units of a returned bundle under results/recorded/")
    args = parser.parse_args(argv)
    if param_pairs and args.command not in ("run", "sweep"):
        print(f"error: -p NAME VALUE belongs to `run` or `sweep`, not `{args.command}`.", file=sys.stderr)
        return 2
    if grid_pairs and args.command != "sweep":
        print(f"error: -g NAME V1,V2,... belongs to `sweep`, not `{args.command}`.", file=sys.stderr)
        return 2
    if args.command == "sweep":
        args.param, args.grid = param_pairs, grid_pairs

    from repro import runner

    try:
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
            return _sweep.main(args)
        if args.command == "campaign":
            return _campaign(args)
        for name in args.chapters:
            runner.get_chapter(name)
        return runner.build_book(args.chapters or None, render=not args.no_render, force=args.force)
    except (ConfigError, DataError) as err:
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return 2
    except Exception as err:
        # matched by name, not imported: `campaign` runs on GPU machines where papermill is not installed
        if type(err).__name__ != "PapermillExecutionError":
            raise
        print(f"error: the chapter failed in cell {err.exec_count}: {err.ename}: {_one_line(err.evalue)}; "
              f"the notebook with the full traceback is {getattr(err, 'output', 'under runs/')}.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
