"""Figures, tables and computed sentences of the chapter: functions of a result (book-scale or recorded alike).
A figure builder returns (fig, data), `data` being the plotted numbers as a tidy DataFrame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.stats
from matplotlib.ticker import FuncFormatter, LogFormatter

from repro.fmt import number, percent, pm, ratio
from repro.plotting import LABELS, PALETTE, figure, reference_line

from .hoffer import log_fit
from .paper import PAPER_ACCURACY, PAPER_SHARPNESS, PAPER_SOURCE, REPORT_OPTIMIZERS, REPORT_SOURCE
from .result import REGIMES, VARIANTS, NetComparison, SharpMinimaResult, value
from .verdicts import FIRST_ORDER_FLOOR, MAX_FIRST_ORDER_SHARE, first_order_share

HOFFER_RUNS = {"small_batch": "small batch", "large_batch": "large batch, same epochs",
               "large_batch_long": "large batch, SB's updates"}


def _eps(config: dict, eps: str) -> float:
    return config["sharpness_eps"] if eps == "large_eps" else config["sharpness_eps_small"]


# --------------------------------------------------------------------------------------------- section 1: accuracy


def accuracy_table(r: SharpMinimaResult) -> pd.DataFrame:
    """Train and test accuracy per network and batch (mean ± std over seeds) beside the paper's Table 2."""
    rows = []
    for net in r.networks:
        paper = PAPER_ACCURACY[net.net]
        for j, regime in enumerate(REGIMES):
            bs = net.sizes["small"] if regime == "small_batch" else net.sizes["large"]
            epochs = net.sizes["epochs"] if regime == "small_batch" else net.sizes["large_epochs"]
            rows.append({"network": net.net, "batch": f"{LABELS[regime]} ({bs})",
                         "train acc % (ours)": pm(net.mean(regime, "train_acc"), net.std(regime, "train_acc")),
                         "test acc % (ours)": pm(net.mean(regime, "test_acc"), net.std(regime, "test_acc")),
                         "train acc % (paper)": pm(*paper[j]), "test acc % (paper)": pm(*paper[2 + j]),
                         "training images": net.sizes["n_train"], "epochs": epochs,
                         "updates": epochs * (net.sizes["n_train"] // bs)})
    return pd.DataFrame(rows).set_index(["network", "batch"])


def paper_source() -> str:
    return f"Paper values: {PAPER_SOURCE}."


# ------------------------------------------------------------------------------------------ section 2: sharpness


def sharpness_table(r: SharpMinimaResult) -> pd.DataFrame:
    """Metric 2.1's four variants and the top Hessian eigenvalue (mean ± std over seeds), beside the paper's."""
    rows = []
    for net in r.networks:
        paper = PAPER_SHARPNESS[net.net]
        for j, regime in enumerate(REGIMES):
            row = {"network": net.net, "batch": LABELS[regime]}
            for space, eps in VARIANTS:
                key = f"{space}_{eps}"
                row[f"{space}, ε {_eps(r.config, eps):g}"] = pm(net.mean(regime, key), net.std(regime, key))
            row["top Hessian eigenvalue"] = pm(net.mean(regime, "hessian_top"), net.std(regime, "hessian_top"))
            row["paper, full, ε 1e-3"] = pm(*paper[j])
            row["paper, full, ε 5e-4"] = pm(*paper[2 + j])
            rows.append(row)
    return pd.DataFrame(rows).set_index(["network", "batch"])


def ratio_table(r: SharpMinimaResult) -> pd.DataFrame:
    """LB / SB of each measure (geometric mean over seeds of the paired ratios) and the test gap."""
    rows = []
    for net in r.networks:
        row = {"network": net.net}
        for (space, eps), q in net.variant_ratios.items():
            row[f"{space}, ε {_eps(r.config, eps):g}"] = ratio(q)
        row["Hessian top"] = ratio(net.metrics["hessian_ratio"])
        row["paper, full, ε 1e-3"] = ratio(PAPER_SHARPNESS[net.net][1][0] / PAPER_SHARPNESS[net.net][0][0])
        row["test acc SB − LB (points, ± sd)"] = pm(*net.test_gap)
        row["paper: test acc SB − LB"] = number(PAPER_ACCURACY[net.net][2][0] - PAPER_ACCURACY[net.net][3][0])
        rows.append(row)
    return pd.DataFrame(rows).set_index("network")


def agreement(r: SharpMinimaResult):
    """Per run: Metric 2.1 (full space, large ε) against the top Hessian eigenvalue, one panel per network."""
    fig, axes = figure(ncols=len(r.networks), width=4.2)
    rows = []
    for ax, net in zip(axes, r.networks, strict=True):
        for regime in REGIMES:
            runs = net.of(regime)
            x = [q["hessian_top"] for q in runs]
            y = [value(q["full_large_eps"]) for q in runs]
            ax.scatter(x, y, color=PALETTE[regime], label=LABELS[regime], s=40)
            rows += [{"network": net.net, "batch": LABELS[regime], "seed": q["seed"], "top Hessian eigenvalue": a,
                      "Metric 2.1 (full space, large ε)": b} for q, a, b in zip(runs, x, y, strict=True)]
        ax.set(xscale="log", yscale="log", xlabel="top Hessian eigenvalue", ylabel="Metric 2.1 (full, large ε)",
               title=net.net)
        ax.tick_params(which="minor", labelbottom=False, labelleft=False)
        ax.legend(fontsize=8)
    return fig, pd.DataFrame(rows)


def agreement_sentence(r: SharpMinimaResult) -> str:
    parts = []
    for net in r.networks:
        h = [q["hessian_top"] for q in net.runs]
        s = [value(q["full_large_eps"]) for q in net.runs]
        rho = scipy.stats.spearmanr(h, s).statistic if len(h) > 2 else np.nan
        parts.append(f"{net.net}: {number(rho)}")
    return ("Spearman rank correlation between Metric 2.1 and the top Hessian eigenvalue over all runs: "
            + ", ".join(parts) + ".")


def cost_table(r: SharpMinimaResult) -> pd.DataFrame:
    """What each maximisation and the Lanczos estimate cost, in seconds and in small-batch training epochs."""
    rows = []
    for net in r.networks:
        runs = net.runs
        for space, eps in VARIANTS:
            s = [x[f"{space}_{eps}"] for x in runs]
            rows.append({"network": net.net, "maximisation": f"{space}, ε {_eps(r.config, eps):g}",
                         "dimension": s[0]["dim"], "L-BFGS-B iterations": np.mean([x["iterations"] for x in s]),
                         "loss+gradient evaluations": np.mean([x["evaluations"] for x in s]),
                         "seconds": np.mean([x["seconds"] for x in s]),
                         "in SB training epochs (wall)": np.mean([x["seconds"] / y["epoch_seconds"]
                                                                   for x, y in zip(s, runs, strict=True)]),
                         "in epochs (examples through the net)": np.mean([x["evaluations"] for x in s])
                         * net.sizes["sharpness_examples"] / net.sizes["n_train"]})
        rows.append({"network": net.net, "maximisation": "Lanczos, Hessian top eigenvalue",
                     "dimension": net.n_params, "seconds": np.mean([x["hessian_seconds"] for x in runs]),
                     "in SB training epochs (wall)": np.mean([x["hessian_seconds"] / x["epoch_seconds"]
                                                              for x in runs])})
    return pd.DataFrame(rows).set_index(["network", "maximisation"])


def cost_sentence(r: SharpMinimaResult) -> str:
    costs = cost_table(r)["in SB training epochs (wall)"]
    eps = f"full, ε {r.config['sharpness_eps']:g}"
    return " ".join(f"{net.net}: one full-space maximisation costs {number(costs[(net.net, eps)])} small-batch "
                    f"epochs of wall time, one Lanczos estimate "
                    f"{number(costs[(net.net, 'Lanczos, Hessian top eigenvalue')])}." for net in r.networks)


def first_order_table(r: SharpMinimaResult) -> pd.DataFrame:
    """Metric 2.1 in the full space beside its first-order part, its L-BFGS-B iterations and the gradient norm
    (means over seeds; the share is the worst run's)."""
    rows = []
    for net in r.networks:
        for regime in REGIMES:
            runs = net.of(regime)
            row = {"network": net.net, "batch": LABELS[regime], "f": net.mean(regime, "base_loss"),
                   "gradient norm": net.mean(regime, "grad_norm"),
                   "at initialisation": net.mean(regime, "grad_norm_init")}
            for eps in ("large_eps", "small_eps"):
                e = f"ε {_eps(r.config, eps):g}"
                row[f"Metric 2.1, {e}"] = net.mean(regime, f"full_{eps}")
                row[f"first-order part, {e}"] = net.mean(regime, f"first_order_{eps}")
                row[f"share (worst run), {e}"] = max(first_order_share(x[f"full_{eps}"]["first_order"],
                                                                       x[f"full_{eps}"]["value"]) for x in runs)
                row[f"L-BFGS-B iterations, {e}"] = np.mean([x[f"full_{eps}"]["iterations"] for x in runs])
            rows.append(row)
    return pd.DataFrame(rows).set_index(["network", "batch"]).map(number)


def bn_table(r: SharpMinimaResult) -> pd.DataFrame:
    """Metric 2.1 (full space, large ε) on the same examples with BN's batch statistics (Keras mode=2, the
    paper's networks) and with its running statistics frozen (PyTorch's eval mode), per network and batch."""
    rows = []
    for net in r.networks:
        for regime in REGIMES:
            batch = net.mean(regime, "full_large_eps")
            running = net.mean(regime, "full_large_eps_running")
            rows.append({"network": net.net, "batch": LABELS[regime],
                         "f measured on (training examples)": f"{number(net.sizes['sharpness_examples'])} of "
                                                               f"{number(net.sizes['n_train'])}",
                         "batch statistics (Keras mode=2)": pm(batch, net.std(regime, "full_large_eps")),
                         "running statistics (eval mode)": pm(running, net.std(regime, "full_large_eps_running")),
                         "eval mode / batch statistics": ratio(running / batch) if batch > 0 else "–"})
    return pd.DataFrame(rows).set_index(["network", "batch"])


def box_sentence(r: SharpMinimaResult) -> str:
    """How far the boxes reach in parameter space (L2 norm of A times the box's corner), full space vs subspace."""
    parts = []
    for net in r.networks:
        runs = net.of("small_batch")
        full = np.mean([x["full_large_eps"]["radius"] for x in runs])
        sub = np.mean([x["subspace_large_eps"]["radius"] for x in runs])
        parts.append(f"{net.net}: {number(full)} in the full space ({number(net.n_params)} coordinates), "
                     f"{number(sub)} in the {net.config['subspace_dim']}-dimensional subspace")
    runs = [x for net in r.networks for x in net.runs]
    sub = max(x["subspace_large_eps"]["value"] for x in runs)
    sub_first = max(x["subspace_large_eps"]["first_order"] for x in runs)
    return (f"At ε {r.config['sharpness_eps']:g} the box reaches, in L2 norm, " + "; ".join(parts)
            + ". With unnormalised N(0, 1) columns it would reach about √n times further in the subspace. Over so "
            f"short a reach the loss barely moves: the subspace metric is at most {number(sub)} in any run (its "
            f"first-order part at most {number(sub_first)}). "
            + "The verdicts judge the full-space metric (the paper's Table 3).")


def first_order_sentence(r: SharpMinimaResult) -> str:
    """The largest first-order share of any run, as the regime check computes it."""
    share = {(net.net, LABELS[reg]): max(first_order_share(x["full_large_eps"]["first_order"],
                                                            x["full_large_eps"]["value"]) for x in net.of(reg))
             for net in r.networks for reg in REGIMES}
    top = max(share, key=share.get)
    return (f"At ε {r.config['sharpness_eps']:g} the first-order part is at most {percent(share[top])} of the "
            f"measured metric (of {number(FIRST_ORDER_FLOOR.value)} where the metric is smaller) in any run "
            f"({top[0]}, {top[1]}); the regime check allows {percent(MAX_FIRST_ORDER_SHARE.value)}.")


# -------------------------------------------------------------------------------------- section 3: interpolation


def interpolation(r: SharpMinimaResult):
    """The paper's Figure 3: losses and accuracies along θ(α) = α θ_LB + (1 − α) θ_SB, one panel per network."""
    fig, axes = figure(ncols=len(r.networks), width=5.0, height=3.8)
    frames = []
    for ax, net in zip(axes, r.networks, strict=True):
        d = pd.DataFrame(net.interpolation)
        frames.append(d.assign(network=net.net))
        ax.plot(d["alpha"], d["train_loss"], "-", color=PALETTE["train"], label="train loss")
        ax.plot(d["alpha"], d["test_loss"], "--", color=PALETTE["test"], label="test loss")
        ax.set(yscale="log", xlabel=r"$\alpha$ in $\alpha\,\theta_{LB}+(1-\alpha)\,\theta_{SB}$",
               ylabel="cross-entropy", title=f"{net.net}: SB at α = 0, LB at α = 1")
        # plain tick labels: on a narrow log range matplotlib writes "1.3 x 10^0", which reads like 1.3e6
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False))
        for a, regime in ((0, "small_batch"), (1, "large_batch")):
            ax.axvline(a, color=PALETTE[regime], lw=1, alpha=0.6)
        acc = ax.twinx()
        acc.plot(d["alpha"], d["train_acc"], "-o", ms=3, color=PALETTE["train"], alpha=0.6, label="train acc")
        acc.plot(d["alpha"], d["test_acc"], "--o", ms=3, color=PALETTE["test"], alpha=0.6, label="test acc")
        reference_line(acc, PAPER_ACCURACY[net.net][2][0], "paper's SB test acc (Keskar et al. 2017, UNVERIFIED)")
        acc.set(ylabel="accuracy (%)", ylim=(0, 100))
        acc.grid(False)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = acc.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2)
    data = pd.concat(frames).rename(columns={"train_loss": "train cross-entropy", "test_loss": "test cross-entropy",
                                             "train_acc": "train accuracy (%)", "test_acc": "test accuracy (%)"})
    return fig, data[["network", "alpha", "train cross-entropy", "test cross-entropy", "train accuracy (%)",
                      "test accuracy (%)"]]


def curvature_along_line(net: NetComparison) -> dict[str, float]:
    """Second difference of log train loss at the two ends: which minimiser sits in the more curved valley."""
    d = pd.DataFrame(net.interpolation)
    a, loss = d["alpha"].to_numpy(), np.log(d["train_loss"].to_numpy())
    h = a[1] - a[0]
    out = {}
    for end, name in ((0.0, "small_batch"), (1.0, "large_batch")):
        i = int(np.argmin(np.abs(a - end)))
        if 0 < i < len(a) - 1:
            out[name] = float((loss[i + 1] - 2 * loss[i] + loss[i - 1]) / h**2)
    return out


def interpolation_sentence(r: SharpMinimaResult) -> str:
    parts = []
    for net in r.networks:
        c = curvature_along_line(net)
        if len(c) == 2:
            parts.append(f"{net.net}: the train loss curves "
                         + ("more sharply at the LB end" if c["large_batch"] > c["small_batch"] else
                            "more sharply at the SB end")
                         + f" (second difference of log loss {number(c['large_batch'])} vs "
                         f"{number(c['small_batch'])})")
    return "Along the line, " + "; ".join(parts) + "." if parts else ""


# ------------------------------------------------------------------------------------------ details: extensions


def optimizers_table(r: SharpMinimaResult) -> pd.DataFrame | None:
    if r.optimizers is None or r.F1 is None:
        return None
    runs = pd.DataFrame(r.optimizers.runs)
    f1 = r.F1
    rows = [{"optimizer": "adam", "lr": r.config["lr"],
             **{f"{LABELS[reg]} test acc % (ours)": f1.mean(reg, "test_acc") for reg in REGIMES},
             **{f"{LABELS[reg]} Metric 2.1 (subspace)": f1.mean(reg, "subspace_large_eps") for reg in REGIMES}}]
    for opt, g in runs.groupby("optimizer", sort=False):
        row = {"optimizer": opt, "lr": g["lr"].iloc[0]}
        for reg in REGIMES:
            row[f"{LABELS[reg]} test acc % (ours)"] = g[g.regime == reg]["test_acc"].mean()
            row[f"{LABELS[reg]} Metric 2.1 (subspace)"] = g[g.regime == reg]["subspace_large_eps"].map(value).mean()
        rows.append(row)
    df = pd.DataFrame(rows).set_index("optimizer")
    df["report: SB test acc %"] = [REPORT_OPTIMIZERS[o][0] for o in df.index]
    df["report: LB test acc %"] = [REPORT_OPTIMIZERS[o][1] for o in df.index]
    return df


def report_source() -> str:
    return f"Report values: {REPORT_SOURCE} (one run each; –: not reported)."


def rescaling_table(r: SharpMinimaResult) -> pd.DataFrame | None:
    if r.F1 is None or not r.F1.rescaling:
        return None
    df = pd.DataFrame(r.F1.rescaling).rename(columns={
        "alpha": "α (last BN × α, output layer × 1/α)", "test_acc": "test acc %", "test_loss": "test loss",
        "base_loss": "f(x)", "sharpness": "Metric 2.1 (full, large ε)", "first_order": "its first-order part",
        "iterations": "L-BFGS-B iterations", "hessian_top": "top Hessian eigenvalue", "param_norm": "‖θ‖"})
    return df.set_index(df.columns[0])


# ---------------------------------------------------------------------------------- section 4: train longer


RECIPE_RUNS = {"small_batch": "SGD: small batch", "large_batch": "SGD: large batch, same epochs",
               "large_batch_lr_gbn": "SGD: large batch, √ rate and ghost BN, same epochs",
               "large_batch_recipe": "SGD: large batch, the full recipe (and SB's updates)"}


def _hoffer_row(name: str, runs: list[dict]) -> dict:
    def sd(k: str) -> float:
        return float(np.std([x[k] for x in runs], ddof=1)) if len(runs) > 1 else 0.0

    return {"run": f"{name} ({runs[0]['batch_size']})", "updates": runs[0]["steps"],
            "learning rate": number(runs[0]["lr"]),
            "train acc %": pm(np.mean([x["train_acc"] for x in runs]), sd("train_acc")),
            "test acc %": pm(np.mean([x["test_acc"] for x in runs]), sd("test_acc")),
            "gradient norm / at init": number(max(x["grad_norm"] / x["grad_norm_init"] for x in runs)),
            "‖w − w0‖": number(float(np.mean([x["distance"][-1]["distance"] for x in runs]))),
            "Metric 2.1 (full, large ε)": number(float(np.mean([value(x["full_large_eps"]) for x in runs]))),
            "its first-order part": number(float(np.mean([x["first_order_large_eps"] for x in runs]))),
            "L-BFGS-B iterations": number(float(np.mean([x["full_large_eps"]["iterations"] for x in runs])))}


def hoffer_table(r: SharpMinimaResult) -> pd.DataFrame:
    """Every train-longer run: Adam (Keskar's optimizer) and Hoffer et al.'s SGD recipe, means over seeds."""
    rows = [_hoffer_row(f"Adam: {name}", r.hoffer.of(reg)) for reg, name in HOFFER_RUNS.items()]
    rows += [_hoffer_row(name, r.hoffer.recipe_of(reg)) for reg, name in RECIPE_RUNS.items()
             if r.hoffer.recipe_of(reg)]
    return pd.DataFrame(rows).set_index("run")


def distance(r: SharpMinimaResult):
    """Hoffer et al.'s Figure 2: ‖w_t − w0‖ against the number of updates t (log axis), for each seed; with Adam
    (left) and with their SGD recipe (right)."""
    panels = [("Adam", r.hoffer.results, HOFFER_RUNS, "large_batch_long")]
    if r.hoffer.recipe:
        panels.append(("SGD, Hoffer et al.'s recipe", r.hoffer.recipe, RECIPE_RUNS, "large_batch_recipe"))
    fig, axes = figure(ncols=len(panels), width=4.6, height=3.6)
    rows = []
    for ax, (title, results, names, long) in zip(axes, panels, strict=True):
        for j, res in enumerate(results):
            runs = {x["regime"]: x for x in res.data["runs"]}
            for reg, style in (("small_batch", "-"), (long, "--")):
                dist = pd.DataFrame(runs[reg]["distance"])
                ax.plot(dist["step"], dist["distance"], style, color=PALETTE["small_batch" if reg == "small_batch"
                                                                             else "large_batch"],
                        label=names[reg] if j == 0 else None)
                rows += [{"optimizer": title, "run": names[reg], "seed": runs[reg]["seed"], "updates t": t,
                          "‖w_t − w0‖": d} for t, d in zip(dist["step"], dist["distance"], strict=True)]
            plain = runs["large_batch"]
            ax.plot(plain["steps"], plain["distance"][-1]["distance"], "o", color=PALETTE["large_batch"],
                    label="large batch, same epochs: its end" if j == 0 else None)
        ax.set(xscale="log", xlabel="updates t", ylabel="‖w_t − w_0‖", title=f"F1, {title}")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.legend(fontsize=7)
    return fig, pd.DataFrame(rows)


def distance_sentence(r: SharpMinimaResult) -> str:
    first = r.hoffer.per_seed[0]
    fits = {k: log_fit(first[reg]["distance"]) for k, reg in (("SB", "small_batch"),
                                                              ("LB, SB's updates", "large_batch_long"))}
    power_better = [k for k, f in fits.items() if f["power_r2"] > f["r2"]]
    return (f"Fit of ‖w − w0‖ = a + b log t over t ≥ 10 (seed {r.config['seed']}): "
            + "; ".join(f"{k} R² {number(f['r2'])}" for k, f in fits.items())
            + ("; a power law t^k fits " + ", ".join(f"{k} better (k = {number(fits[k]['exponent'])}, R² "
                                                      f"{number(fits[k]['power_r2'])})" for k in power_better)
               if power_better else "") + ".")


def along_one_run_sentence(r: SharpMinimaResult) -> str:
    """Metric 2.1 measured twice on one large-batch trajectory: after the same epochs and at the long run's end."""
    h = r.hoffer
    lb, long = h.of("large_batch"), h.of("large_batch_long")
    metric = {k: float(np.mean([value(x["full_large_eps"]) for x in v])) for k, v in (("plain", lb), ("long", long))}
    first = {k: float(np.mean([x["first_order_large_eps"] for x in v])) for k, v in (("plain", lb),
                                                                                      ("long", long))}
    acc = {k: float(np.mean([x["train_acc"] for x in v])) for k, v in (("plain", lb), ("long", long))}
    stopped = [x for x in lb + long if x["full_large_eps"]["iterations"] == 0]
    text = (f"On the same Adam trajectory, Metric 2.1 (full space, ε {r.config['sharpness_eps']:g}) is "
            f"{number(metric['plain'])} after {lb[0]['steps']} updates (train accuracy {number(acc['plain'])}%, "
            f"first-order part {number(first['plain'])}) and {number(metric['long'])} after {long[0]['steps']} "
            f"(train accuracy {number(acc['long'])}%, first-order part {number(first['long'])})")
    if stopped:
        text += (f"; in {len(stopped)} of these runs L-BFGS-B stopped at its start (0 iterations: the gradient there "
                 "is below its tolerance), so their value is that start, not a flat point")
    elif min(metric.values()) > 0:
        text += (f": it shrinks by a factor {number(metric['plain'] / metric['long'])}" if metric["long"] <
                 metric["plain"] else f": it grows by a factor {number(metric['long'] / metric['plain'])}")
    return (text + f". The paper's F1 values: SB {PAPER_SHARPNESS['F1'][0][0]}, LB {PAPER_SHARPNESS['F1'][1][0]}.")
