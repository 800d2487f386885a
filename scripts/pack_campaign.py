"""Pack what a GPU campaign needs into loads that fit one call to a GPU machine, and print the calls.

A remote GPU call copies the working tree plus carried ignored folders, at most 64 MiB in all, and keeps
ignored files between calls while the machine stays warm (about 30 s). So the data packs (from REPRO_DATA_DIR)
travel in loads `.devdata-1`, `.devdata-2`, ...: each call but the last moves its load into `.data/`, the last
also runs the campaign with REPRO_DATA_DIR=.data. Checkpoint pieces returned by an earlier window
(`--resume DIR`, the files of its $OUT) travel the same way.

    PYTHONPATH=src python scripts/pack_campaign.py [--datasets mnist,cifar10] [--budget 420] [--resume DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from repro.campaign import WINDOW_COMPUTE_S
from repro.data.vision import data_dir
from repro.pieces import MiB, pack
from repro.store import git_commit, project_root

CALL_LIMIT = 64 * MiB  # the working tree and every carried folder of one call
MARGIN = 2 * MiB  # for files that change between packing and the call


def tree_bytes(root: Path) -> int:
    """What travels besides the carried folders: tracked files and untracked files git does not ignore."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                           capture_output=True, check=True).stdout.split(b"\0")
    return sum((root / n.decode()).stat().st_size for n in names if n and (root / n.decode()).is_file())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="mnist,cifar10", help="data packs to carry (default: mnist,cifar10)")
    ap.add_argument("--budget", type=int, default=int(WINDOW_COMPUTE_S),
                    help=f"the campaign's seconds in the last call (default {WINDOW_COMPUTE_S:.0f})")
    ap.add_argument("--resume", help="a returned $OUT folder whose checkpoint pieces (ckpt-*) go back too")
    args = ap.parse_args(argv)
    root = project_root()
    src = data_dir()
    files = [src / "manifest.json"] if (src / "manifest.json").exists() else []
    for name in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        found = sorted(src.glob(f"{name}_*.npz"))
        if not found:
            print(f"error: no {name} packs in {src}; set REPRO_DATA_DIR to the folder of the offline packs.",
                  file=sys.stderr)
            return 2
        files += found
    if args.resume:
        files += sorted(Path(args.resume).glob("ckpt-*"))
    limit = CALL_LIMIT - tree_bytes(root) - MARGIN
    loads = pack(files, limit)
    for old in root.glob(".devdata-*"):
        shutil.rmtree(old)
    for k, load in enumerate(loads, 1):
        folder = root / f".devdata-{k}"
        folder.mkdir()
        for f in load:
            try:
                os.link(f, folder / f.name)
            except OSError:  # another file system, or links refused: copy
                shutil.copy2(f, folder / f.name)
    (root / f".devdata-{len(loads)}" / "COMMIT").write_text(git_commit())
    print(f"{len(loads)} load(s) of at most {limit / MiB:.1f} MiB each; calls, back to back:")
    for k, load in enumerate(loads, 1):
        size = sum(f.stat().st_size for f in load) / MiB
        move = f"mkdir -p .data && mv .devdata-{k}/* .data/"
        if k < len(loads):
            command = f"{move} && ls .data"
        else:
            command = (f"{move} && REPRO_DATA_DIR=.data REPRO_COMMIT=$(cat .data/COMMIT) PYTHONPATH=src "
                       f"PYTHONUNBUFFERED=1 python3 -m repro campaign --budget {args.budget} --out $OUT")
        print(f"  call {k}: carry [\".devdata-{k}\"] ({size:.1f} MiB: {', '.join(f.name for f in load)})\n"
              f"          command: {command}")
    print(f"then, here: python -m repro campaign --take FILES_FROM_OUT   (timeout of the last call: "
          f"{args.budget + 60} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
