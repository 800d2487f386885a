"""Files in pieces: packing data into loads under a size limit, and cutting a large file (a checkpoint) into
numbered pieces and joining them again, each step checked by size and SHA-256."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from repro.store import write_json_atomic

MiB = 2**20


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MiB), b""):
            h.update(block)
    return h.hexdigest()


def pack(files: list[Path], limit: int) -> list[list[Path]]:
    """Group files into loads of at most `limit` bytes, largest first into the first load with room (first-fit
    decreasing). A file larger than `limit` is an error: cut it first with split()."""
    too_big = [f for f in files if f.stat().st_size > limit]
    if too_big:
        raise ValueError(f"{too_big[0].name} ({too_big[0].stat().st_size / MiB:.1f} MiB) is larger than a load "
                         f"({limit / MiB:.1f} MiB); cut it with repro.pieces.split first.")
    loads: list[list[Path]] = []
    sizes: list[int] = []
    for f in sorted(files, key=lambda f: (-f.stat().st_size, f.name)):
        size = f.stat().st_size
        for i, used in enumerate(sizes):
            if used + size <= limit:
                loads[i].append(f)
                sizes[i] += size
                break
        else:
            loads.append([f])
            sizes.append(size)
    return loads


def split(path: Path, dest: Path, piece_bytes: int) -> list[Path]:
    """Cut `path` into dest/NAME.part000, .part001, ... of at most piece_bytes each, and dest/NAME.pieces.json
    (sizes and SHA-256 of the whole and of each piece). Returns the pieces and the index, index last."""
    if piece_bytes < 1:
        raise ValueError(f"piece_bytes must be >= 1, got {piece_bytes}.")
    dest.mkdir(parents=True, exist_ok=True)
    pieces = []
    with open(path, "rb") as f:
        for i, block in enumerate(iter(lambda: f.read(piece_bytes), b"")):
            piece = dest / f"{path.name}.part{i:03d}"
            piece.write_bytes(block)
            pieces.append(piece)
    index = dest / f"{path.name}.pieces.json"
    write_json_atomic(index, {"name": path.name, "size": path.stat().st_size, "sha256": sha256(path),
                              "pieces": [{"name": p.name, "size": p.stat().st_size, "sha256": sha256(p)}
                                         for p in pieces]})
    return [*pieces, index]


def join(index: Path, dest: Path) -> Path:
    """Reassemble the file an index (NAME.pieces.json) describes from the pieces beside it, into dest/NAME,
    atomically; raises ValueError if a piece is missing or differs, or the whole does not match."""
    meta = json.loads(index.read_text())
    missing = [p["name"] for p in meta["pieces"] if not (index.parent / p["name"]).exists()]
    if missing:
        raise ValueError(f"{meta['name']}: pieces {', '.join(missing)} are missing.")
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / meta["name"]
    tmp = dest / f".{meta['name']}.joining"
    with open(tmp, "wb") as f:
        for p in meta["pieces"]:
            with open(index.parent / p["name"], "rb") as src:
                shutil.copyfileobj(src, f)
    if tmp.stat().st_size != meta["size"] or sha256(tmp) != meta["sha256"]:
        tmp.unlink()
        raise ValueError(f"{meta['name']}: the joined pieces do not match the recorded size and SHA-256.")
    os.replace(tmp, out)
    return out
