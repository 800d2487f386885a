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


# The page's text column is about 7.4 inches wide at the figures' 100 dpi. A row of more than two panels wider
# than PAGE_WIDTH_IN is wrapped to two panels per row, and a figure wider than MAX_WIDTH_IN is scaled down as a
# whole (fonts keep their size in points), so that ticks and legends stay readable at page width.
PAGE_WIDTH_IN = 10.5
MAX_WIDTH_IN = 8.6


def set_theme() -> None:
    sns.set_theme(context="notebook", style="whitegrid", palette=list(_C),
                  rc={"figure.dpi": 100, "savefig.dpi": 200, "axes.titleweight": "bold", "axes.titlesize": 11,
                      "axes.labelsize": 10.5, "xtick.labelsize": 9.5, "ytick.labelsize": 9.5, "legend.fontsize": 9,
                      "legend.frameon": False, "figure.constrained_layout.use": True})
    try:  # notebooks: PNGs at twice the resolution, shown at the figure's size (sharp on high-DPI screens)
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("retina")
    except ImportError:
        pass


def figure(ncols: int = 1, nrows: int = 1, width: float = 4.2, height: float = 3.4, **kw):
    """A grid of axes sized per panel; returns (fig, axes) with axes always a flat array, in reading order.
    A row wider than the page is wrapped to two panels per row (extra axes are removed)."""
    set_theme()
    panels = ncols * nrows
    if ncols > 2 and width * ncols > PAGE_WIDTH_IN:
        ncols, nrows = 2, -(-panels // 2)
    shrink = min(1.0, MAX_WIDTH_IN / (width * ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols * shrink, height * nrows * shrink), squeeze=False,
                             **kw)
    axes = axes.ravel()
    for ax in axes[panels:]:
        ax.remove()
    return fig, axes[:panels]


def reference_line(ax, value: float, label: str, *, axis: str = "y", **kw) -> None:
    """A paper's or report's number, drawn dashed in the reference colour and labelled with its source."""
    draw = ax.axhline if axis == "y" else ax.axvline
    draw(value, color=PALETTE["reference"], linestyle="--", linewidth=1.2, label=label, **kw)
