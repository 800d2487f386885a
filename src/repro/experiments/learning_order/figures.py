"""Learning order's figures, tables and computed sentences: functions of a LearningOrderResult (book-scale or
recorded alike). A figure builder returns (fig, data), data being the tidy table of what it plots."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from repro.fmt import number, percent, pm, signed
from repro.plotting import LABELS, PALETTE, figure

from .cifar import METHOD_LABELS, PAPER_CLEAN_TABLE, REPLICATION_CONTROL, REPLICATION_PATCH_CLEAN, network_label
from .results import Ablations, CifarSet, LearningOrderResult, Runs, TheoryMain
from .setting import ALGORITHMS, KIND_NAMES, KINDS
from .verdicts import (
    ALIVE_NEED,
    PATCH_LEARNED,
    Answer,
    control_position,
    order_counts,
    replication_position,
    search_regimes,
    steps_text,
    theorem_regime,
    with_range,
)

ALGO_KEY = {"L-S": "large_lr_anneal", "S": "small_lr", "S+noise": "small_lr_noise"}
ALGO_LABEL = {a: f"{a} ({LABELS[k]})" for a, k in ALGO_KEY.items()}
KIND_STYLE = {"P": "-", "Q": "--", "PQ": ":"}
METHOD_COLOR = {"large_lr": PALETTE["large_lr_anneal"], "small_lr": PALETTE["small_lr"],
                "small_lr_noise": PALETTE["small_lr_noise"], "small_lr_noise_iid": PALETTE["small_lr_noise"]}
METHOD_STYLE = {"small_lr_noise_iid": ":"}
EVAL_SETS = {"clean": "clean test images", "patched": "patched test images", "patch_only": "patch-only images"}


# ------------------------------------------------------------------------------------------------ theory


def distribution(main: TheoryMain):
    """The P component along w* and a noise direction, and the Q component's three rays in their plane."""
    dist, cfg = main.distribution, main.config
    y, kind = np.array(dist["y"]), np.array(dist["kind"])
    fig, axes = figure(ncols=2, width=5.0, height=4.0)
    has_p, has_q = kind != 1, kind != 0
    for label, color in ((1, PALETTE["large_lr_anneal"]), (-1, PALETTE["test"])):
        sel = has_p & (y == label)
        axes[0].scatter(np.array(dist["p_along_w"])[sel], np.array(dist["p_along_noise"])[sel], s=8, alpha=0.6,
                        color=color, label=f"y = {label:+d}")
        sel = has_q & (y == label)
        axes[1].scatter(np.array(dist["q_along_zq"])[sel], np.array(dist["q_along_zeta"])[sel], s=8, alpha=0.6,
                        color=color, label=f"y = {label:+d}")
    for sign in (1, -1):
        axes[0].axvline(sign * cfg["pq_gamma0"], color=PALETTE["reference"], ls="--", lw=1)
    axes[0].axvline(0, color="k", lw=0.6)
    axes[0].set(xlabel=r"$\langle w^*, x_1\rangle$", ylabel=r"$x_1$ along a fixed noise direction",
                title=f"P plane (d = {cfg['pq_d']}, margin {number(cfg['pq_gamma0'])})")
    axes[0].legend(fontsize=8)
    zq, ze = cfg["pq_zq_norm"], cfg["pq_zeta"]
    for end, label in (((zq, 0), r"$z_q$: y = +1"), ((zq, ze), r"$z_q+\zeta$: y = -1"),
                       ((zq, -ze), r"$z_q-\zeta$: y = -1")):
        axes[1].plot([0, end[0]], [0, end[1]], color="0.6", lw=0.8, zorder=0)
        axes[1].annotate(label, end, fontsize=8, xytext=(4, 0), textcoords="offset points")
    axes[1].set(xlabel=r"$x_2$ along $z_q$", ylabel=r"$x_2$ along $\zeta$", xlim=(-0.03 * zq, 1.3 * zq),
                title=f"Q plane (|z_q| = {number(zq)}, |ζ| = {number(ze)})")
    axes[1].legend(fontsize=8, loc="lower left")
    data = pd.DataFrame({"y": y, "kind": [KINDS[k] for k in kind], "x1 along w*": dist["p_along_w"],
                         "x1 along a noise direction": dist["p_along_noise"], "x2 along zq": dist["q_along_zq"],
                         "x2 along zeta": dist["q_along_zeta"]})
    return fig, data


def kinds_table(main: TheoryMain) -> pd.DataFrame:
    cfg = main.config
    n, p0, q0 = cfg["pq_n_train"], cfg["pq_p0"], cfg["pq_q0"]
    return pd.DataFrame([{"kind": "P only", "fraction": p0, "training examples (expected)": p0 * n},
                         {"kind": "Q only", "fraction": q0, "training examples (expected)": q0 * n},
                         {"kind": "both", "fraction": 1 - p0 - q0, "training examples (expected)": (1 - p0 - q0) * n}]
                        ).set_index("kind")


def kinds_sentence(main: TheoryMain) -> str:
    d = main.config["pq_d"]
    return (f"With N = {main.config['pq_n_train']} and d = {d} the P-only examples number about "
            f"{main.p_only_examples}, " + ("below" if main.p_only_examples < d / 2 else "not below")
            + f" the theorem's $d/2$ = {number(d / 2)}, while {main.p_carrying_examples} examples carry P.")


def learning_order(main: TheoryMain):
    """Test accuracy per kind of example for each algorithm, the train loss, the test margin on Q-only examples
    and where the gradient comes from, against the step (means over the seeds)."""
    curves, algos = main.curves, main.algorithms
    fig, axes = figure(ncols=3, nrows=2, width=4.2, height=3.2)
    rows = []
    for i, algo in enumerate(ALGORITHMS):
        c, ax = curves[algo], axes[i]
        for kind in KINDS:
            ax.plot(c["step"], c[f"acc_{kind}"], KIND_STYLE[kind], color=PALETTE[ALGO_KEY[algo]],
                    label=f"test, {KIND_NAMES[kind]}")
        for s in algos[algo].anneal_step if algo != "S" else []:
            ax.axvline(s, color=PALETTE["reference"], lw=0.8, alpha=0.6)
        ax.set(ylim=(0.4, 1.02), xlabel="step", ylabel="test accuracy",
               title=ALGO_LABEL[algo] + ("" if algo == "S" else ": grey = anneal"))
        ax.legend(fontsize=7, loc="lower right")
        for j, step in enumerate(c["step"]):
            rows.append({"algorithm": algo, "step": step, **{k: c[k][j] for k in c if k != "step"}})
    for algo in ALGORITHMS:
        c = curves[algo]
        axes[3].plot(c["step"], c["train_loss"], color=PALETTE[ALGO_KEY[algo]], label=ALGO_LABEL[algo])
        axes[4].plot(c["step"], c["margin_Q"], color=PALETTE[ALGO_KEY[algo]], label=ALGO_LABEL[algo])
        axes[5].plot(c["step"], c["grad_share_PQ"], color=PALETTE[ALGO_KEY[algo]], label=f"{algo}: both")
        axes[5].plot(c["step"], c["grad_share_P"], "--", color=PALETTE[ALGO_KEY[algo]], label=f"{algo}: P only")
    axes[3].set(yscale="log", xlabel="step", ylabel="train loss (without noise)", title="train loss")
    axes[4].set(xlabel="step", ylabel=r"mean $y f(x)$", title="test margin on Q-only examples")
    axes[5].set(xlabel="step", ylabel="share of |dloss/df|", title="gradient share by kind")
    axes[3].legend(fontsize=7)
    axes[5].legend(fontsize=6, ncol=2)
    return fig, pd.DataFrame(rows)


def fit_table(main: TheoryMain) -> pd.DataFrame:
    rows = []
    for algo, a in main.algorithms.items():
        rows.append({"algorithm": ALGO_LABEL[algo],
                     "anneal step": steps_text(a.anneal_step) if algo != "S" else "(nothing to anneal)",
                     "P-only train examples fit at step": steps_text(a.fit_step_P),
                     "both-component examples fit at step": steps_text(a.fit_step_PQ),
                     "Q-only train examples fit at step": steps_text(a.fit_step_Q)})
    return pd.DataFrame(rows).set_index("algorithm")


def theory_finding(result: LearningOrderResult) -> str:
    """Whether the chapter's own runs reach the theorem's regime, and when L-S memorises Q."""
    main = result.theory
    regime = theorem_regime(main.regime, "the chapter's setting")
    n, ls = main.seeds, main.algorithms["L-S"]
    text = (f"The chapter's setting, on {n} seeds, " + ("reaches the theorem's regime. " if regime.ok else
                                                         f"misses the theorem's regime: {regime.reason}. "))
    early = sum(q is not None and q < a for q, a in zip(ls.fit_step_Q, ls.anneal_step, strict=True))
    text += (f"L-S memorises its Q-only training examples at steps {steps_text(ls.fit_step_Q)} and anneals at "
             f"{steps_text(ls.anneal_step)}: before annealing on {early} of {n} seeds"
             + (", which Lemma 4.2 rules out inside the theorem's regime." if early else "."))
    return text


def order_sentence(main: TheoryMain) -> str:
    algos, n = main.algorithms, main.seeds
    c = order_counts(algos)
    return (f"S fits its Q-only training examples before L-S anneals on {c['s_first']} of {n} seeds; L-S has not fit "
            f"them by its anneal step on {c['ls_waits']} of {n}. L-S fits its P-only training examples before S "
            f"does on {c['ls_p_first']} of {n} seeds (steps {steps_text(algos['L-S'].fit_step_P)} against "
            f"{steps_text(algos['S'].fit_step_P)}).")


def error_table(main: TheoryMain, ablations: Ablations | None) -> pd.DataFrame:
    """P-only, Q-only and both-component test errors of the three algorithms, and the P-only references."""
    def row(label: str, a: Runs, full: bool = True) -> dict:
        return {"algorithm": label, "P-only test error": pm(a.p_error, a.p_error_std),
                "Q-only test error": pm(a.q_error, a.q_error_std) if full else "",
                "both: test error": pm(a.pq_error, a.pq_error_std) if full else "",
                "final train loss": pm(a.train_loss, a.train_loss_std),
                "P-only error per seed": ", ".join(number(v) for v in a.p_error_seeds) if full else ""}

    rows = [row(ALGO_LABEL[name], a) for name, a in main.algorithms.items()]
    refs = ablations.single_refs() if ablations is not None else {}
    rows += [row(label, a, full=False) for label, a in refs.items()]
    return pd.DataFrame(rows).set_index("algorithm")


def gap_sentence(main: TheoryMain) -> str:
    m = main.result.metrics
    return (f"P-only test error of S minus that of L-S: {signed(m['p_error_gap_S_minus_LS'])} (standard deviation of "
            f"the per-seed difference {number(m['p_error_gap_std'])}); L-S is better on {m['ls_better_on_seeds']} of "
            f"{main.seeds} seeds.")


def p0_sweep(main: TheoryMain):
    sweep = pd.DataFrame(main.sweep)
    fig, axes = figure(ncols=2, width=5.0, height=3.6)
    for algo in [a for a in ALGORITHMS if a in set(sweep["algorithm"])]:
        s = sweep[sweep["algorithm"] == algo]
        axes[0].errorbar(s["p0"], s["p_error"], yerr=s["p_error_std"], fmt="o-", capsize=3,
                         color=PALETTE[ALGO_KEY[algo]], label=ALGO_LABEL[algo])
    gaps = main.p_error_gaps()
    axes[1].plot(list(gaps), list(gaps.values()), "o-", color=PALETTE["ours"], label="S minus L-S")
    axes[1].axhline(0, color="k", lw=0.8)
    half = main.config["pq_d"] / 2 / main.config["pq_n_train"]
    for ax in axes:
        ax.axvline(half, color=PALETTE["reference"], ls="--", lw=1, label="p0 N = d/2 (theory: S fails below)")
    axes[0].set(xlabel="p0 (fraction of P-only examples)", ylabel="P-only test error",
                title="P-only test error against p0")
    axes[1].set(xlabel="p0", ylabel="P-only test error difference", title="theory: positive, growing as p0 shrinks")
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    return fig, sweep[["p0", "algorithm", "p_error", "p_error_std", "q_error", "pq_error", "train_loss"]]


def p0_table(main: TheoryMain) -> pd.DataFrame:
    sweep = pd.DataFrame(main.sweep)
    return sweep.pivot(index="p0", columns="algorithm", values="p_error").rename(
        columns=lambda a: f"P-only error, {a}")


def lr_sweep(main: TheoryMain):
    lr = pd.DataFrame(main.lr_sweep)
    s = main.algorithms["S"]
    ratio_s = 1.0
    fig, axes = figure(ncols=2, width=5.0, height=3.5)
    axes[0].errorbar(lr["lr_ratio"], lr["p_error"], yerr=lr["p_error_std"], fmt="o-", capsize=3,
                     color=PALETTE["large_lr_anneal"], label="L-S")
    axes[0].errorbar([ratio_s], [s.p_error], yerr=[s.p_error_std], fmt="s", capsize=3, color=PALETTE["small_lr"],
                     label="S (ratio 1)")
    axes[0].set(xscale="log", xlabel="lr_large / lr_small", ylabel="P-only test error", title="L-S against its ratio")
    axes[0].legend(fontsize=8)
    for _, row in lr.iterrows():
        fits = [np.nan if v is None else v for v in row["fit_step_Q"]]
        axes[1].plot([row["lr_ratio"]] * len(fits), fits, "o", color=PALETTE["large_lr_anneal"], alpha=0.7)
        axes[1].plot([row["lr_ratio"]] * len(row["anneal_step"]), row["anneal_step"], "x", color=PALETTE["reference"])
    fits_s = [np.nan if v is None else v for v in s.fit_step_Q]
    axes[1].plot([ratio_s] * len(fits_s), fits_s, "o", color=PALETTE["small_lr"], label="S: Q-only fit")
    axes[1].plot([], [], "o", color=PALETTE["large_lr_anneal"], label="L-S: Q-only fit")
    axes[1].plot([], [], "x", color=PALETTE["reference"], label="L-S: anneal step")
    axes[1].set(xscale="log", xlabel="lr_large / lr_small", ylabel="step",
                title="when Q-only training examples are fit")
    axes[1].legend(fontsize=7)
    ticks = [ratio_s, *lr["lr_ratio"]]
    for ax in axes:
        ax.set_xticks(ticks, [number(v) for v in ticks])
        ax.minorticks_off()
    data = pd.DataFrame([{"lr_ratio": r["lr_ratio"], "lr_large": r["lr_large"], "p_error": r["p_error"],
                          "p_error_std": r["p_error_std"], "seed": i, "fit_step_Q": q, "anneal_step": a}
                         for r in main.lr_sweep for i, (q, a) in enumerate(zip(r["fit_step_Q"], r["anneal_step"],
                                                                               strict=True))])
    return fig, data


def lr_table(main: TheoryMain) -> pd.DataFrame:
    return pd.DataFrame([{"lr_large": r["lr_large"], "ratio": r["lr_ratio"],
                          "P-only test error": pm(r["p_error"], r["p_error_std"]),
                          "Q-only test error": pm(r["q_error"], r["q_error_std"]),
                          "Q-only train fit at step": steps_text(r["fit_step_Q"]),
                          "anneal step": steps_text(r["anneal_step"])} for r in main.lr_sweep]).set_index("lr_large")


def ablation_table(ablations: Ablations, group: str) -> pd.DataFrame:
    rows = [{"variant": r.variant, "algorithm": r.name, "P-only test error": pm(r.p_error, r.p_error_std),
             "Q-only test error": pm(r.q_error, r.q_error_std), "both: test error": pm(r.pq_error, r.pq_error_std),
             "final train loss": pm(r.train_loss, r.train_loss_std),
             "Q-only train fit at step": steps_text(r.fit_step_Q), "anneal step": steps_text(r.anneal_step)}
            for r in ablations.group(group)]
    return pd.DataFrame(rows).set_index(["variant", "algorithm"])


def answers_table(answers: list[Answer]) -> pd.DataFrame:
    """The reviewers' questions: the answer (inconclusive where the runs missed the regime), what was measured,
    and the regime."""
    return pd.DataFrame([{"question": a.question, "answer": a.shown, "measured": a.measured,
                          "regime": ("reached" if a.regime.ok else "not reached: " + a.regime.reason)}
                         for a in answers]).set_index("question")


# ------------------------------------------------------------------------------------------------ CIFAR-10


def patch_examples(images: dict) -> tuple:
    """Four test images clean, patched and patch-only (from cifar.patch_examples)."""
    n = len(next(iter(images.values())))
    fig, axes = figure(ncols=n, nrows=3, width=1.6, height=1.6)
    for r, (name, imgs) in enumerate(images.items()):
        for c in range(n):
            ax = axes[r * n + c]
            ax.imshow(imgs[c].permute(1, 2, 0).numpy())
            ax.set(xticks=[], yticks=[])
            if c == 0:
                ax.set_ylabel(name)
    data = pd.DataFrame([{"row": name, "image": c, "mean pixel": float(imgs[c].mean())}
                         for name, imgs in images.items() for c in range(n)])
    return fig, data


def scale_table(result: LearningOrderResult) -> pd.DataFrame:
    p = result.params
    return pd.DataFrame({
        "this page": {"network": network_label(p), "training images": p.n_train,
                      "epochs (anneal at)": f"{p.epochs} ({p.anneal_epoch})",
                      "patch sep (zeta half-width)": p.patch_sep,
                      "test images per set": p.n_test},
        "official code / paper": {"network": "WRN-16-10 (17.1M parameters)", "training images": 50_000,
                                  "epochs (anneal at)": "60 (30)", "patch sep (zeta half-width)": 0.1,
                                  "test images per set": "10,000 (patch-only: 1,000)"}}).astype(str)


def accuracy_curves(runs: CifarSet, title: str):
    """Clean, patched and patch-only test accuracy per epoch of each method (mean over seeds)."""
    anneal = runs.config["anneal_epoch"]
    fig, axes = figure(ncols=3, width=4.0, height=3.2)
    rows = []
    for ax, (key, name) in zip(axes, EVAL_SETS.items(), strict=True):
        for method in runs.methods:
            y = runs.curve(method, key)
            ax.plot(range(1, len(y) + 1), y, METHOD_STYLE.get(method, "-"), color=METHOD_COLOR[method],
                    label=METHOD_LABELS[method])
            rows += [{"set": key, "method": method, "epoch": e + 1, "accuracy": float(v)} for e, v in enumerate(y)]
        ax.axvline(anneal, color=PALETTE["reference"], lw=0.8, ls="--", label="anneal / noise off")
        ax.set(title=name, xlabel="epoch", ylabel="accuracy", ylim=(0, 1))
    axes[2].axhline(0.1, color="k", lw=0.6)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    return fig, pd.DataFrame(rows)


def patch_table(runs: CifarSet) -> pd.DataFrame:
    anneal = runs.config["anneal_epoch"]
    rows = []
    for method in runs.methods:
        e = runs.learned_epoch(method, float(PATCH_LEARNED))
        rows.append({"method": METHOD_LABELS[method],
                     f"patch-only acc ≥ {number(float(PATCH_LEARNED))} from epoch": "never" if e is None else e,
                     f"patch-only acc at epoch {anneal}": float(runs.curve(method, "patch_only")[anneal - 1]),
                     "final patch-only acc": with_range(runs.values(method, "final_patch_only")),
                     "final patched acc": with_range(runs.values(method, "final_patched")),
                     "final clean acc": with_range(runs.values(method, "final_clean")),
                     "replication, clean acc (WRN-16-10, 50k)": REPLICATION_PATCH_CLEAN.get(method, math.nan) / 100,
                     "seconds per epoch": runs.mean(method, "seconds_per_epoch")})
    return pd.DataFrame(rows).set_index("method")


def official_sentence(runs: CifarSet) -> str:
    best = max(max(runs.values(m, "final_patch_only")) for m in runs.methods)
    learnt = [METHOD_LABELS[m] for m in runs.methods if runs.learned_epoch(m, float(PATCH_LEARNED)) is not None]
    return (f"At the official separation the highest final patch-only accuracy of any run is {number(best)} (chance "
            f"0.1); {number(float(PATCH_LEARNED))} patch-only accuracy is reached by "
            + (", ".join(learnt) if learnt else "no method") + f" within {runs.config['epochs']} epochs.")


def clean_table(clean: CifarSet) -> pd.DataFrame:
    return pd.DataFrame({METHOD_LABELS[m]: {"ours, clean acc": with_range(clean.values(m, "final_clean")),
                                            "paper (WRN-16-10, 50k)": number(PAPER_CLEAN_TABLE[m] / 100)}
                         for m in ("large_lr", "small_lr_noise", "small_lr") if m in clean.runs}).T


def control_table(control: CifarSet, clean: CifarSet, patch: CifarSet) -> pd.DataFrame:
    few_n, all_n = control.config["n_train"], clean.config["n_train"]
    rows = []
    for m in ("large_lr", "small_lr"):
        rep_few, rep_full = REPLICATION_CONTROL[m]
        rows.append({"method": METHOD_LABELS[m], f"clean, {few_n} images": control.mean(m),
                     f"clean, {all_n} images": clean.mean(m), "clean after patch training": patch.mean(m),
                     "position of the patch run (0 = few, 1 = all)": control_position(control, clean, patch, m),
                     "replication: 10k / 50k / patch": f"{number(rep_few)} / {number(rep_full)} / "
                                                       f"{number(REPLICATION_PATCH_CLEAN[m])}",
                     "replication's position": replication_position(m)})
    return pd.DataFrame(rows).set_index("method")


def cifar_runs_table(result: LearningOrderResult) -> pd.DataFrame:
    """Train and test accuracy of every CIFAR-10 run, for the regime check."""
    rows = []
    for kind, cs in (("patched", result.patch), ("official patch", result.official_patch), ("clean", result.clean),
                     ("control", result.control)):
        for m, rs in (cs.runs if cs else {}).items():
            for r in rs:
                rows.append({"runs": f"{kind}, {r.config['n_train']} images", "method": METHOD_LABELS[m],
                             "seed": r.config["seed"], "train accuracy": r.metrics.get("final_train", math.nan),
                             "clean train accuracy": r.metrics.get("final_train_clean", math.nan),
                             "clean test accuracy": r.metrics["final_clean"]})
    return pd.DataFrame(rows).set_index(["runs", "method", "seed"]) if rows else pd.DataFrame()


# ------------------------------------------------------------------------------------------------ the regime


def alive_on_q(result: LearningOrderResult):
    """The share of units active on some Q ray against the step: the previous setting (left; its large rate
    switches them off) and the chapter's (right), mean over the seeds, with the regime's need."""
    panels = []
    if result.search is not None:
        cfg = result.search.previous_config
        panels.append((f"previous setting: |z_q| = {number(cfg['pq_zq_norm'])}, τξ = {number(cfg['pq_noise'])}",
                       result.search.previous_curves, result.search.previous))
    if result.theory is not None:
        cfg = result.theory.config
        panels.append((f"this chapter: |z_q| = {number(cfg['pq_zq_norm'])}, τξ = {number(cfg['pq_noise'])}",
                       result.theory.curves, result.theory.algorithms))
    fig, axes = figure(ncols=len(panels), width=5.0, height=3.6)
    rows = []
    for ax, (title, curves, runs) in zip(axes, panels, strict=True):
        for algo, c in curves.items():
            ax.plot(c["step"], c["active_units_Q"], color=PALETTE[ALGO_KEY[algo]], label=ALGO_LABEL[algo])
            rows += [{"setting": title, "algorithm": algo, "step": s, "share of units active on Q": v}
                     for s, v in zip(c["step"], c["active_units_Q"], strict=True)]
        for s in runs["L-S"].anneal_step:
            ax.axvline(s, color=PALETTE["reference"], lw=0.8, alpha=0.6)
        ax.axhline(float(ALIVE_NEED), color=PALETTE["reference"], ls="--", lw=1, label="regime's need (L-S)")
        ax.set(ylim=(-0.02, 1.02), xlabel="step", ylabel="share of units active on Q", title=title)
        ax.legend(fontsize=7)
    return fig, pd.DataFrame(rows)


def search_table(result: LearningOrderResult) -> pd.DataFrame:
    """Every setting and budget of the search: the regime's measurements, whether it reached the regime (the
    chapter's own setting marked), and the P-only test errors of L-S and S (at ε₂ where they stopped)."""
    config = result.theory.config if result.theory is not None else {}
    rows = []
    for row, regime in search_regimes(result.search):
        m = row.regime
        mark = " (this chapter)" if config and row.matches(config) else ""
        rows.append({"|zq|": row.zq_norm, "ζ/|zq|": row.zeta_ratio, "τξ": row.noise, "η₂": row.lr_small,
                     "steps": row.steps, "alive": min(m.alive_Q), "Q acc.": max(m.q_accuracy_before),
                     "by loss": percent(np.mean(m.annealed_by_loss)), "S memorised": percent(np.mean(m.s_memorised_Q)),
                     "stopped": percent(np.mean(m.stopped)), "regime": ("reached" if regime.ok else "missed") + mark,
                     "P-only error L-S / S": f"{number(float(np.mean(row.p_error_LS)))} / "
                                             f"{number(float(np.mean(row.p_error_S)))}"})
    return pd.DataFrame(rows).set_index(["|zq|", "ζ/|zq|", "τξ", "η₂", "steps"])


def search_figure(result: LearningOrderResult):
    """Left: L-S's share of units active on Q along its run at every setting of the search (longest budget).
    Right: for each condition of the regime, the share of the search's settings that meet it, per budget."""
    search = result.search
    fig, axes = figure(ncols=2, width=5.0, height=3.6)
    steps = search.step_axis
    zqs = sorted({r.zq_norm for r in search.rows})
    colors = dict(zip(zqs, [PALETTE["large_lr_anneal"], PALETTE["test"], PALETTE["ours"], PALETTE["edge"]],
                      strict=False))
    rows = []
    for r in search.rows:
        if r.alive_curve_LS is None:
            continue
        axes[0].plot(steps, r.alive_curve_LS, color=colors.get(r.zq_norm, "0.5"), lw=0.8, alpha=0.6)
        rows += [{"panel": "alive", "setting": r.label, "step": s, "value": v}
                 for s, v in zip(steps, r.alive_curve_LS, strict=True)]
    for zq in zqs:
        axes[0].plot([], [], color=colors.get(zq, "0.5"), label=f"|z_q| = {number(zq)}")
    axes[0].axhline(float(ALIVE_NEED), color=PALETTE["reference"], ls="--", lw=1, label="regime's need")
    axes[0].set(ylim=(-0.02, 1.02), xlabel="step", ylabel="share of L-S's units active on Q",
                title="L-S at every setting of the search")
    axes[0].legend(fontsize=7)
    judged = search_regimes(search)
    names = [c.name for c in judged[0][1].conditions]
    short = ["units alive", "Q unlearnt", "anneal by loss", "S memorises Q", "stop at ε₂"]
    width = 0.8 / len(search.budgets)
    for k, budget in enumerate(search.budgets):
        sel = [reg for row, reg in judged if row.steps == budget]
        shares = [np.mean([reg.conditions[i].ok for reg in sel]) for i in range(len(names))]
        shares.append(np.mean([reg.ok for reg in sel]))
        ys = np.arange(len(shares)) + k * width
        axes[1].barh(ys, shares, height=width, label=f"{budget} steps",
                     color=[PALETTE["small_lr"], PALETTE["large_lr_anneal"]][k % 2])
        rows += [{"panel": "conditions", "setting": f"{budget} steps", "step": budget, "value": v, "condition": c}
                 for c, v in zip(short + ["all (the regime)"], shares, strict=True)]
    axes[1].set_yticks(np.arange(len(short) + 1) + width * (len(search.budgets) - 1) / 2,
                       short + ["all (the regime)"])
    axes[1].set(xlim=(0, 1), xlabel="share of the search's settings", title="which conditions are met")
    axes[1].invert_yaxis()
    axes[1].legend(fontsize=7)
    return fig, pd.DataFrame(rows)


def search_sentence(result: LearningOrderResult) -> str:
    judged = search_regimes(result.search)
    reached = [row for row, reg in judged if reg.ok]
    total = len(judged)
    failed = {}
    for _, reg in judged:
        for c in reg.failed:
            failed[c.name] = failed.get(c.name, 0) + 1
    worst = sorted(failed.items(), key=lambda kv: -kv[1])[:2]
    text = (f"{len(reached)} of the search's {total} settings and budgets ({percent(len(reached) / total)}) reach the "
            f"theorem's regime ({result.search.result.metrics['seeds']} seed each). ")
    if worst:
        text += "The conditions missed most often: " + "; ".join(f"{name} ({n} of {total})" for name, n in worst) + ". "
    gaps = [float(np.mean(r.p_error_S)) - float(np.mean(r.p_error_LS)) for r in reached]
    if len(gaps) == 1:
        text += f"Where it is reached, S's P-only error minus L-S's is {signed(gaps[0])}."
    elif gaps:
        text += (f"Where it is reached, S's P-only error minus L-S's ranges from {signed(min(gaps))} to "
                 f"{signed(max(gaps))}.")
    return text


def asymptotics_table(config: dict) -> pd.DataFrame:
    """The paper's conditions on the setting's constants, at this d: which a finite d can meet."""
    d, n, p0, q0 = config["pq_d"], config["pq_n_train"], config["pq_p0"], config["pq_q0"]
    eps1, eps2 = config["pq_anneal_loss"], config["pq_stop_loss"]
    low, high = d ** (-1 / 16), p0 ** 2 * q0 ** 3
    threshold = eps1 + q0 * math.log(2)
    rows = [
        {"condition (paper)": "p₀N < d/2 < (1−q₀)N (Theorem 3.5)",
         "here": f"{number(p0 * n)} < {number(d / 2)} < {number((1 - q0) * n)}",
         "met": "yes" if p0 * n < d / 2 < (1 - q0) * n else "no"},
        {"condition (paper)": "ε₁ in (d^−c, κ²p²q³) for some c < 1/16 (Theorem 3.4)",
         "here": f"d^−1/16 = {number(low)} > p₀²q₀³ = {number(high)}: empty",
         "met": "no" if low >= high else "yes"},
        {"condition (paper)": "stop L-S at ε₂ = √(ε₁/q), below the annealing loss ε₁ + q log 2",
         "here": f"√(ε₁/q₀) = {number(math.sqrt(eps1 / q0))} > {number(threshold)}; both stop at ε₂ = {number(eps2)}",
         "met": "yes" if math.sqrt(eps1 / q0) < threshold else "no"},
        {"condition (paper)": "η₂ ≤ η₁ d^−c (Theorem 3.5)",
         "here": f"η₂ / η₁ = {number(config['pq_lr_small'] / config['pq_lr_large'])}, d^−1/16 = {number(low)}",
         "met": "yes" if config["pq_lr_small"] <= config["pq_lr_large"] * low else "no"},
        {"condition (paper)": "‖ζ‖ = r ≪ ‖z‖, the three rays close (Lemma 4.2)",
         "here": f"|ζ| / |z_q| = {number(config['pq_zeta'] / config['pq_zq_norm'])}",
         "met": "in part" if config["pq_zeta"] / config["pq_zq_norm"] < 0.3 else "no"},
    ]
    return pd.DataFrame(rows).set_index("condition (paper)")


def closing_note(result: LearningOrderResult) -> str:
    """The previous setting's and this chapter's P-only test errors and L-S's units alive on Q before annealing."""
    if result.theory is None or result.search is None:
        return ""
    old, new = result.search.previous, result.theory.algorithms

    def alive(runs: Runs) -> str:
        return f"{percent(float(np.mean(runs.active_q_mean)))} (seeds: {', '.join(map(percent, runs.active_q_mean))})"

    cfg = result.search.previous_config
    return (f"**Before and after.** The previous setting (|z_q| = {number(cfg['pq_zq_norm'])}, "
            f"|ζ| = {number(cfg['pq_zeta'])}, τξ = {number(cfg['pq_noise'])}, λ = {number(cfg['pq_weight_decay'])}, "
            f"both runs stopped after {cfg['pq_steps']} steps) gives a P-only test error of "
            f"{pm(old['L-S'].p_error, old['L-S'].p_error_std)} for L-S and "
            f"{pm(old['S'].p_error, old['S'].p_error_std)} for S, and L-S's units active on Q before "
            f"annealing {alive(old['L-S'])}. This chapter's setting, both runs stopped at train loss "
            f"ε₂ = {number(result.theory.config['pq_stop_loss'])}: "
            f"{pm(new['L-S'].p_error, new['L-S'].p_error_std)} for L-S and "
            f"{pm(new['S'].p_error, new['S'].p_error_std)} for S, and L-S's units active on Q before annealing "
            f"{alive(new['L-S'])} (mean ± standard deviation over {len(new['L-S'].p_error_seeds)} seeds).")
