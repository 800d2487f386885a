"""One theme and one palette for the whole book: a concept keeps its colour in every chapter."""

from __future__ import annotations

import matplotlib.pyplot as plt
import seaborn as sns

_C = sns.color_palette("colorblind", 10)

# One colour per concept across chapters (e.g. "large LR + anneal" is the same blue everywhere).
PALETTE = {
    "large_lr_anneal": _C[0],
    "small_lr": _C[1],
    "small_lr_noise": _C[2],
    "small_batch": _C[0],
    "large_batch": _C[1],
    "train": _C[7],
    "test": _C[3],
    "population": _C[3],
    "ours": _C[4],
    "edge": _C[5],  # a rate at the edge where gradient descent starts to oscillate
    "reference": "0.35",  # a paper's or report's number
}

LABELS = {
    "large_lr_anneal": "large LR + anneal",
    "small_lr": "small LR",
    "small_lr_noise": "small LR + noise",
    "small_batch": "small batch",
    "large_batch": "large batch",
}


def set_theme() -> None:
    sns.set_theme(context="notebook", style="whitegrid", palette=list(_C),
                  rc={"figure.dpi": 110, "savefig.dpi": 150, "axes.titleweight": "bold",
                      "legend.frameon": False, "figure.constrained_layout.use": True})


def figure(ncols: int = 1, nrows: int = 1, width: float = 4.2, height: float = 3.4, **kw):
    """A grid of axes sized per panel; returns (fig, axes) with axes always a flat array."""
    set_theme()
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kw)
    return fig, axes.ravel()


def reference_line(ax, value: float, label: str, *, axis: str = "y", **kw) -> None:
    """A paper's or report's number, drawn dashed in the reference colour and labelled with its source."""
    draw = ax.axhline if axis == "y" else ax.axvline
    draw(value, color=PALETTE["reference"], linestyle="--", linewidth=1.2, label=label, **kw)
