"""`python -m repro list | run CHAPTER [-p NAME VALUE ...] [--preset P] | build`."""

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
    build = sub.add_parser("build", help="execute every chapter at its defaults and render the book")
    build.add_argument("chapters", nargs="*", help="only these chapters (default: all)")
    build.add_argument("--no-render", action="store_true", help="execute chapters but do not render HTML")
    build.add_argument("--force", action="store_true", help="recompute results even if stored")
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
        for name in args.chapters:
            runner.get_chapter(name)
        return runner.build_book(args.chapters or None, render=not args.no_render, force=args.force)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
