"""`python -m repro list | run CHAPTER [-p NAME VALUE ...] [--preset P] [--record] | sweep CHAPTER -g NAME V1,V2 ...
| build | bench`."""

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
    report = run_bench(models, args.batch_size, args.steps, args.warmup, args.device)
    report["command"] = "python -m repro bench " + " ".join(_sys.argv[2:])
    print(format_report(report))
    if args.out:
        from pathlib import Path

        from repro.store import write_json_atomic

        write_json_atomic(Path(args.out), report)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m repro", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="chapters, their parameters with defaults and help, and their presets")
    run = sub.add_parser("run", help="execute one chapter with papermill")
    run.add_argument("chapter")
    run.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="override a parameter (repeatable)")
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
    bench.add_argument("--out", help="also write the figures as JSON here")
    args = parser.parse_args(argv)

    from repro import runner

    try:
        if args.command == "list":
            return _list()
        if args.command == "run":
            overrides = {}
            for name, value in args.param:
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
        for name in args.chapters:
            runner.get_chapter(name)
        return runner.build_book(args.chapters or None, render=not args.no_render, force=args.force)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
