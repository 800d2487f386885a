"""The chapter's figures and tables, functions of a result (book-scale or recorded alike). A figure builder returns
`(fig, data)`, `data` a tidy DataFrame of what is plotted (one row per point, columns with units); a table builder
returns a DataFrame (Unicode math: plain HTML cells do not typeset TeX); a sentence builder returns Markdown."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import seaborn as sns
import torch

from repro.bench import train_flops_per_image
from repro.fmt import number, percent, ratio, signed
from repro.models.preresnet import preresnet32
from repro.plotting import PALETTE, figure, reference_line

from .chapter import IntrinsicLRResult
from .measure import driven_recursion
from .params import DECAY_SHAPES, Params, part_images
from .result import NetRun, Trace, Window
from .verdicts import DIFF_Z, MOMENTUM_SOURCE, PAPER_FIG5_TEST_ACC, PAPER_WEIGHT_DECAY, RADIAL_PUSH_MAX, invariant

RUNS = sns.color_palette("colorblind", 8)
CAMPAIGN_FLOPS = 0.2 * 790e12  # the paper campaign's planning rate: 20% of an H200's bf16 peak, in aggregate
SRC = "Li, Lyu, Arora"
STYLES = ["-", "--", ":", "-."]


def _trace_rows(trace: Trace, run: str, keys: tuple[str, ...] = ("sq_norm", "angular", "effective_lr")) -> list[dict]:
    """One row per (window, layer) of a tracked run, with the quantities named in `keys`."""
    names = {"sq_norm": "|w|²", "angular": "angular update (rad/step)", "effective_lr": "effective LR η/|w|²",
             "grad_sq": "G²", "radial": "cos(w, ∇L)"}
    rows = []
    for g in trace.groups:
        for i, st in enumerate(trace.step):
            rows.append({"run": run, "layer": g, "step": int(st),
                         **{names[k]: float(getattr(trace, k)[g][i]) for k in keys if getattr(trace, k)}})
    return rows


def _acc_rows(run: NetRun, name: str, offset: int = 0) -> list[dict]:
    h = run.history
    return [{"run": name, "step": int(s) - offset, "test accuracy": float(a)} for s, a in zip(h.step, h.test_acc,
                                                                                                strict=True)]


def window_table(windows: dict[str, Window]) -> pd.DataFrame:
    """Per phase and layer: measured equilibrium against the predictions with the measured G²."""
    return pd.DataFrame([{"phase": label, "layer": g.group, "angular (ours)": g.angular,
                          "angular predicted": g.pred_angular, "|w|² (ours)": g.sq_norm,
                          "|w|² predicted (measured G²)": g.pred_sq_norm, "effective LR (ours)": g.effective_lr,
                          "G²": g.grad_sq}
                         for label, w in windows.items() for g in w.layers]).set_index(["phase", "layer"])


# ================================================================================================== the toy


def toy_history(result: IntrinsicLRResult):
    """One lambda_e from different initial norms and lr / wd splits: norm, effective LR and angular update."""
    h = result.toy.history
    fig, axes = figure(ncols=3, width=4.2)
    rows = []
    for i, r in enumerate(h["runs"]):
        label = f"η {number(r['lr'])}, λ {number(r['weight_decay'])}, |w₀| {number(r['init_norm'])}"
        c = RUNS[i % 8]
        axes[0].plot(r["step"], r["sq_norm"], color=c, label=label)
        axes[1].plot(r["step"], r["effective_lr"], color=c)
        axes[2].plot(r["angular_step"], r["angular"], color=c)
        rows += [{"run": label, "step": int(s), "|w|²": float(q), "effective LR η/|w|²": float(e)}
                 for s, q, e in zip(r["step"], r["sq_norm"], r["effective_lr"], strict=True)]
        rows += [{"run": label, "step": int(s), "angular update (rad/step)": float(a)}
                 for s, a in zip(r["angular_step"], r["angular"], strict=True)]
    reference_line(axes[2], h["pred_angular"], rf"$\arccos(1-\lambda_e)$ ({SRC})")
    axes[0].set(xscale="log", yscale="log", xlabel="step", ylabel=r"$\|w\|^2$", title="Norm: depends on η/λ")
    axes[1].set(xscale="log", yscale="log", xlabel="step", ylabel=r"$\eta/\|w\|^2$", title="Effective LR")
    axes[2].set(xscale="log", yscale="log", xlabel="step", ylabel="angular update (rad / step)",
                title="Angular update")
    axes[0].legend(fontsize=6)
    axes[2].legend(fontsize=7)
    return fig, pd.DataFrame(rows)


def toy_history_table(result: IntrinsicLRResult) -> pd.DataFrame:
    return pd.DataFrame([{"η": r["lr"], "λ": r["weight_decay"], "initial |w|": r["init_norm"],
                          "equilibrium |w|²": r["final_sq_norm"], "effective LR": r["final_effective_lr"],
                          "angular update": r["final_angular"]} for r in result.toy.history["runs"]]
                        ).set_index(["η", "λ", "initial |w|"])


def toy_sweep(result: IntrinsicLRResult):
    """The toy's lambda_e sweep: equilibrium angular update and norm against the predictions, and steps to
    equilibrium against 1 / lambda_e."""
    sw = pd.DataFrame(result.toy.sweep)
    fit = result.toy.settle_fit
    fig, axes = figure(ncols=3, width=4.2)
    lam = np.geomspace(sw["intrinsic_lr"].min(), sw["intrinsic_lr"].max(), 100)
    axes[0].plot(sw["intrinsic_lr"], sw["angular_rms"], "o", color=PALETTE["ours"], label="toy model (measured)")
    axes[0].plot(lam, np.sqrt(2 * lam), "--", color=PALETTE["reference"], label=rf"$\sqrt{{2\lambda_e}}$ ({SRC})")
    axes[0].set(xscale="log", yscale="log", xlabel=r"$\lambda_e=\eta\lambda$", ylabel="angular update (rad / step)",
                title="Equilibrium angular update")
    axes[1].plot(sw["pred_sq_norm"], sw["sq_norm"], "o", color=PALETTE["ours"], label="toy model")
    lims = [sw[["pred_sq_norm", "sq_norm"]].min().min(), sw[["pred_sq_norm", "sq_norm"]].max().max()]
    axes[1].plot(lims, lims, "--", color=PALETTE["reference"], label=f"prediction with measured $G^2$ ({SRC})")
    axes[1].set(xlabel=r"predicted $\|w\|^2$", ylabel=r"measured $\|w\|^2$", title="Equilibrium norm")
    axes[2].plot(1 / sw["intrinsic_lr"], sw["settle_steps"], "o", color=PALETTE["ours"], label="toy model")
    axes[2].plot(1 / sw["intrinsic_lr"], sw["pred_settle_steps"], "--", color=PALETTE["reference"],
                 label=r"norm recursion, $\ln(\mathrm{gap\ ratio})/(4\lambda_e)$")
    x = 1 / lam
    axes[2].plot(x, np.exp(fit.intercept) * x ** fit.slope, ":", color=PALETTE["ours"],
                 label=f"fit: slope {number(fit.slope)} in log-log")
    axes[2].set(xscale="log", yscale="log", xlabel=r"$1/\lambda_e$ (steps)", ylabel="steps to equilibrium",
                title="Time to equilibrium")
    for ax in axes:
        ax.legend(fontsize=7)
    return fig, toy_sweep_table(result).reset_index()


def toy_sweep_table(result: IntrinsicLRResult) -> pd.DataFrame:
    sw = pd.DataFrame(result.toy.sweep)
    return sw[["intrinsic_lr", "angular_rms", "pred_angular", "approx_angular", "sq_norm", "pred_sq_norm",
               "settle_steps", "pred_settle_steps"]].rename(columns={
                   "intrinsic_lr": "λe", "angular_rms": "angular (ours)", "pred_angular": "arccos(1 − λe)",
                   "approx_angular": "√(2λe)", "sq_norm": "|w|² (ours)", "pred_sq_norm": "|w|² predicted",
                   "settle_steps": "steps to eq. (ours)", "pred_settle_steps": "steps to eq. (recursion)"}
               ).set_index("λe")


def toy_drop(result: IntrinsicLRResult):
    """The LR drop in the toy model, with the exact norm recursion from the same start."""
    td, lr_drop = result.toy.drop, result.params.lr_drop
    fig, axes = figure(width=7.5, height=3.4)
    ax = axes[0]
    ax.plot(td["step"], td["angular"], color=PALETTE["ours"], label="toy model (measured, RMS per window)")
    ax.plot(td["exact_step"], td["exact_angular"], "--", color=PALETTE["reference"], lw=1,
            label=f"exact norm recursion ({SRC})")
    for level, text in [(td["before"] / lr_drop, f"1/{number(lr_drop)} of the old level"),
                        (td["before"] / math.sqrt(lr_drop), f"1/√{number(lr_drop)} of the old level (prediction)")]:
        ax.axhline(level, color=PALETTE["reference"], ls=":", lw=1)
        ax.text(td["step"][-1], level, text, ha="right", va="bottom", fontsize=7)
    ax.axvline(td["drop_step"], color="k", lw=0.8)
    ax.set(yscale="log", xlabel="step", ylabel="angular update (rad / step)",
           title=rf"Toy model: LR / {number(lr_drop)} at step {td['drop_step']} "
                 rf"($\lambda_e$ = {number(td['intrinsic_lr'])})")
    ax.legend(fontsize=7, loc="upper right")
    col = "angular update (rad/step)"
    data = pd.concat([pd.DataFrame({"curve": "toy model", "step": td["step"], col: td["angular"]}),
                      pd.DataFrame({"curve": "norm recursion", "step": td["exact_step"],
                                    col: td["exact_angular"]})])
    return fig, data


# ============================================================================================= the LR drop


def lr_drop(result: IntrinsicLRResult):
    """The LR-drop run: angular update, norm (with the recursion's fixed point for the measured G²) and effective LR
    of every scale-invariant layer."""
    p, d = result.params, result.drop
    tr = d.main.trace
    fig, axes = figure(ncols=3, width=4.3)
    for i, g in enumerate(tr.groups):
        c = RUNS[i % 8]
        axes[0].plot(tr.step, tr.angular[g], color=c, lw=1, label=f"{g} (measured)")
        axes[1].plot(tr.step, tr.sq_norm[g], color=c, lw=1, label=f"{g} (measured)")
        axes[1].plot(tr.step, _fixed_point(tr, g), "--", color=c, lw=0.8, label=f"{g}: fixed point, measured $G^2$")
        axes[1].plot(tr.step, _driven(tr, g), ":", color="k", lw=0.8,
                     label="recursion driven by the measured $G^2$" if i == 0 else None)
        axes[2].plot(tr.step, tr.effective_lr[g], color=c, lw=1, label=g)
    lam = p.intrinsic_lr
    pre, post = math.sqrt(2 * lam), math.sqrt(2 * lam / p.lr_drop)
    axes[0].hlines([pre, post], [0, d.drop_step], [d.drop_step, tr.step[-1]], colors=PALETTE["reference"],
                   linestyles="--", label=rf"$\sqrt{{2\lambda_e}}$ ({SRC})")
    axes[0].hlines(pre / p.lr_drop, d.drop_step, tr.step[-1], colors=PALETTE["reference"], linestyles=":",
                   label=f"old level / {number(p.lr_drop)}")
    for ax in axes:
        ax.axvline(d.drop_step, color="k", lw=0.8)
        ax.legend(fontsize=6)
    axes[0].set(yscale="log", xlabel="step", ylabel="angular update (rad / step)", title="Angular update")
    axes[1].set(yscale="log", xlabel="step", ylabel=r"$\|w\|^2$", title="Weight norm")
    axes[2].set(yscale="log", xlabel="step", ylabel=r"$\eta/\|w\|^2$", title="Effective LR")
    rows = _trace_rows(tr, "drop at equilibrium", ("sq_norm", "angular", "effective_lr", "grad_sq", "radial"))
    data = pd.DataFrame(rows)
    data["|w|² fixed point (measured G²)"] = np.concatenate([_fixed_point(tr, g) for g in tr.groups])
    data["|w|² by the recursion driven by the measured G²"] = np.concatenate([_driven(tr, g) for g in tr.groups])
    return fig, data


def _fixed_point(tr: Trace, g: str) -> np.ndarray:
    """|w|² at the norm recursion's fixed point for each window's lr, weight decay and measured G²."""
    return np.sqrt(tr.lr * tr.grad_sq[g] / (tr.weight_decay * (2 - tr.lr * tr.weight_decay)))


def _driven(tr: Trace, g: str) -> np.ndarray:
    """|w|² by the norm recursion driven by the measured G², from the first tracking window on."""
    return driven_recursion(tr.step, tr.lr, tr.weight_decay, tr.grad_sq[g], tr.sq_norm[g][0])


def drop_table(result: IntrinsicLRResult) -> pd.DataFrame:
    p, d = result.params, result.drop
    return window_table({f"before the drop (η {number(p.lr)})": d.before,
                         f"end of run (η {number(p.lr / p.lr_drop)})": d.after})


def drop_sentence(result: IntrinsicLRResult) -> str:
    p, d = result.params, result.drop
    lam = p.intrinsic_lr
    after = (d.main.trace.step[-1] - d.drop_step) * lam / p.lr_drop
    return (f"Reviewer 1's first question, measured: the angular update just after the drop (over the first "
            f"{d.just_after_steps} steps, {number(d.just_after_steps * lam)}$/\\lambda_e$: whole tracking windows, "
            f"over which the norm has hardly moved) and at the end of the run (its second half), relative to just "
            f"before it. The run after the drop lasts {number(after)}$/\\lambda_e'$ steps at the new "
            f"$\\lambda_e'=\\lambda_e/{number(p.lr_drop)}$. The prediction is a factor {number(p.lr_drop)} at once "
            f"and $\\sqrt{{{number(p.lr_drop)}}}$ = {number(math.sqrt(p.lr_drop))} at the new equilibrium.")


def drop_ratio_table(result: IntrinsicLRResult) -> pd.DataFrame:
    p, d = result.params, result.drop
    rows = [{"layer": r.group, "angular before": r.before, "just after": r.just_after, "end": r.final,
             "drop factor (ours)": r.ratio_immediate, "final factor (ours)": r.ratio_final,
             "steps to new norm equilibrium": r.settle_steps_after} for r in d.layers]
    if result.toy is not None:
        td = result.toy.drop
        rows.append({"layer": "toy model", "angular before": td["before"], "just after": td["just_after"],
                     "end": td["final"], "drop factor (ours)": td["ratio_immediate"],
                     "final factor (ours)": td["ratio_final"],
                     "steps to new norm equilibrium": td["settle_steps_after"]})
    out = pd.DataFrame(rows).set_index("layer")
    out["drop factor predicted"] = p.lr_drop
    out["final factor predicted"] = math.sqrt(p.lr_drop)
    return out


def early_drop(result: IntrinsicLRResult):
    """Test accuracy around the drop at equilibrium and around a drop before it (reviewer 1, question 3)."""
    d = result.drop
    fig, axes = figure(ncols=2, width=5.2)
    rows = []
    for run, name, d0, c in [(d.main, "drop at equilibrium", d.drop_step, PALETTE["large_lr_anneal"]),
                             (d.early, "drop before equilibrium", d.early_drop_step, PALETTE["small_lr"])]:
        axes[0].plot(run.history.step, run.history.test_acc, color=c, label=name)
        axes[1].plot(run.history.step - d0, run.history.test_acc, color=c, label=name)
        rows += _acc_rows(run, name)
    axes[0].axvline(d.drop_step, color="k", lw=0.8)
    axes[0].set(xlabel="step", ylabel="test accuracy", title="Test accuracy")
    axes[1].set(xlabel="steps after the drop", ylabel="test accuracy", title="Aligned at the drop",
                xlim=(-200, result.params.compare_after_drop_epochs * (result.params.n_train
                                                                         // result.params.batch_size)))
    axes[1].legend(fontsize=8)
    return fig, pd.DataFrame(rows)


def early_drop_table(result: IntrinsicLRResult) -> pd.DataFrame:
    d = result.drop
    rows = []
    for name, step, acc in [("drop at equilibrium", d.drop_step, d.acc("main_cmp")),
                            ("drop before equilibrium", d.early_drop_step, d.acc("early_after"))]:
        rows.append({"run": name, "drop step": step, "best test acc after drop": acc.best,
                     "test acc at the window's end": acc.final, "mean test acc after drop": acc.mean,
                     "step of best": acc.best_step})
    return pd.DataFrame(rows).set_index("run")


def first_lr_table(result: IntrinsicLRResult) -> pd.DataFrame:
    return pd.DataFrame([{"first η": c.lr_first, "λe before drop": c.intrinsic_lr, "test acc before drop": c.before,
                          "best test acc after drop": c.best_after, "steps after drop to it": c.best_after_step}
                         for c in result.drop.compare]).set_index("first η")


# ========================================================================================== the schedules


def figure5(result: IntrinsicLRResult):
    """The paper's Figure 5 at our scale: four histories, then the same (lr, weight decay), then lr / lr_drop
    without weight decay; test accuracy, norm and effective LR of the first layer."""
    s = result.schedules
    runs = s.runs
    first = runs[0].run.trace.groups[0]
    fig, axes = figure(ncols=3, width=4.3)
    rows = []
    for i, r in enumerate(runs):
        tr = r.run.trace
        axes[0].plot(r.run.history.step, r.run.history.test_acc, color=RUNS[i], label=r.name)
        axes[1].plot(tr.step, tr.sq_norm[first], color=RUNS[i])
        axes[2].plot(tr.step, tr.effective_lr[first], color=RUNS[i])
        rows += _acc_rows(r.run, r.name)
        rows += [row for row in _trace_rows(tr, r.name, ("sq_norm", "effective_lr")) if row["layer"] == first]
    for ax in axes:
        for e in s.phase_ends[:-1]:
            ax.axvline(e, color="k", lw=0.8)
    axes[0].set(xlabel="step", ylabel="test accuracy", title="Test accuracy", ylim=(0.5, 1))
    axes[1].set(yscale="log", xlabel="step", ylabel=rf"$\|w\|^2$ ({first})", title="Weight norm")
    axes[2].set(yscale="log", xlabel="step", ylabel=rf"$\eta/\|w\|^2$ ({first})", title="Effective LR")
    axes[0].legend(fontsize=7)
    return fig, pd.DataFrame(rows)


def figure5_table(result: IntrinsicLRResult) -> pd.DataFrame:
    rows = []
    for r in result.schedules.runs:
        for g in r.phase2.layers:
            rows.append({"schedule": r.name, "layer": g.group, "test acc (end of phase 2)": r.acc_phase2.mean,
                         "train acc": r.train_acc_phase2, "|w|²": g.sq_norm, "effective LR": g.effective_lr,
                         "angular": g.angular, "angular predicted": g.pred_angular,
                         "test acc after final phase": r.acc_final.final if r.acc_final else math.nan})
    return pd.DataFrame(rows).set_index(["schedule", "layer"])


def decay(result: IntrinsicLRResult):
    """Step, cosine and warmup + linear decay, each at two splits of the same peak lambda_e."""
    runs = result.schedules.decay
    first = runs[0].run.trace.groups[0]
    fig, axes = figure(ncols=2, width=5.0)
    color = dict(zip(DECAY_SHAPES, RUNS, strict=False))
    rows = []
    for r in runs:
        ls = "-" if r.split == 1 else "--"
        name = f"{r.shape}, η {number(r.lr)}, λ {number(r.weight_decay)}"
        axes[0].plot(r.run.history.step, r.run.history.test_acc, ls, color=color[r.shape], label=name)
        axes[1].plot(r.run.trace.step, r.run.trace.effective_lr[first], ls, color=color[r.shape])
        rows += _acc_rows(r.run, name)
        rows += [row for row in _trace_rows(r.run.trace, name, ("effective_lr",)) if row["layer"] == first]
    axes[0].set(xlabel="step", ylabel="test accuracy", title="Test accuracy", ylim=(0.5, 1))
    axes[1].set(yscale="log", xlabel="step", ylabel=rf"$\eta/\|w\|^2$ ({first})", title="Effective LR")
    axes[0].legend(fontsize=6)
    return fig, pd.DataFrame(rows)


def decay_table(result: IntrinsicLRResult) -> pd.DataFrame:
    return pd.DataFrame([{"schedule": r.shape, "η": r.lr, "λ": r.weight_decay, "final test acc": r.test_acc,
                          "best test acc": r.best_test_acc, "final train acc": r.train_acc,
                          **{f"effective LR, last tenth ({g})": v for g, v in r.effective_lr_end.items()}}
                         for r in result.schedules.decay]).set_index(["schedule", "η"])


def decay_sentence(result: IntrinsicLRResult) -> str:
    """The splits' differences per schedule, against the seed spread of the reference step decay."""
    s = result.schedules
    parts = []
    for shape in DECAY_SHAPES:
        gap, r = s.decay_gap(shape)
        parts.append(f"{shape}: final test accuracy {signed(100 * gap)} points, effective LR {ratio(r)} apart")
    acc, elr = s.decay_acc_spread, s.decay_log_elr_spread
    return ("Between the two splits of each schedule (one seed each): " + "; ".join(parts) + ". Over "
            f"{acc.n} seeds the reference step decay's final test accuracy spreads by ± {number(100 * acc.sd)} points "
            f"and its effective LR by ± {percent(max(x.sd for x in elr.values()))} (worst layer): a difference "
            f"between two runs is called beyond {number(DIFF_Z.value)} σ of a difference.")


# ============================================================================================== the sweep


def sweep(result: IntrinsicLRResult):
    """The network's lambda_e sweep in units of 1 / lambda_e: each layer's |w|² over its run's equilibrium level
    against step x lambda_e (the runs collapse if time scales as 1 / lambda_e), and steps to equilibrium against
    1 / lambda_e, measured and by the norm recursion from the measured start (with the toy model's)."""
    sw, tol = result.sweep, result.params.equilibrium_tol
    fig, axes = figure(ncols=2, width=5.0)
    rows = []
    for i, r in enumerate(sw.rows):
        st = r.trace.step
        for j, g in enumerate(r.trace.groups):
            level = r.trace.sq_norm[g][st > r.steps - r.window].mean()
            axes[0].plot(st * r.intrinsic_lr, r.trace.sq_norm[g] / level, color=RUNS[i % 8], ls=STYLES[j % 4], lw=1,
                         label=rf"$\lambda_e$ {number(r.intrinsic_lr)}, {g}")
            rows += [{"run": f"λe {number(r.intrinsic_lr)}", "λe": r.intrinsic_lr, "layer": g, "step": int(t),
                      "step × λe": t * r.intrinsic_lr, "|w|² / equilibrium level": q / level}
                     for t, q in zip(st, r.trace.sq_norm[g], strict=True)]
    end = min(r.steps * r.intrinsic_lr for r in sw.rows)
    axes[0].axhspan(1 - tol, 1 + tol, color=PALETTE["reference"], alpha=0.15, lw=0, label=f"±{percent(tol)}")
    axes[0].axvspan(end - sw.settle_window, end, color="k", alpha=0.06, lw=0, label="final window (the level)")
    axes[0].set(yscale="log", xlabel=r"step $\times\,\lambda_e$", ylabel=r"$\|w\|^2$ / equilibrium level",
                title="Norms in units of $1/\\lambda_e$")
    axes[0].legend(fontsize=6, ncol=2)
    inv = np.array([1 / r.intrinsic_lr for r in sw.rows])
    for j, g in enumerate(sw.layer_fits):
        axes[1].plot(inv, [r.settle_steps[g] for r in sw.rows], "o", color=RUNS[j % 8], label=f"{g} (measured)")
        axes[1].plot(inv, [r.pred_settle_steps[g] for r in sw.rows], "o", mfc="none", color=RUNS[j % 8],
                     label=f"{g} (norm recursion)")
        rows += [{"run": f"λe {number(r.intrinsic_lr)}", "λe": r.intrinsic_lr, "layer": g,
                  "steps to equilibrium": r.settle_steps[g],
                  "steps to equilibrium (norm recursion)": r.pred_settle_steps[g]} for r in sw.rows]
    if result.toy is not None:
        toy = pd.DataFrame(result.toy.sweep)
        axes[1].plot(1 / toy["intrinsic_lr"], toy["settle_steps"], "s", color=PALETTE["train"], ms=4,
                     label="toy model")
    axes[1].plot(inv, 3 * inv, "--", color=PALETTE["reference"], label=rf"$3/\lambda_e$ ({SRC}: $\propto 1/\lambda_e$)")
    axes[1].set(xscale="log", yscale="log", xlabel=r"$1/\lambda_e$ (steps)", ylabel="steps to equilibrium",
                title="Time to equilibrium")
    axes[1].legend(fontsize=6)
    return fig, pd.DataFrame(rows)


def sweep_sentence(result: IntrinsicLRResult) -> str:
    """The slowest start of the sweep and what the recursion makes of it, in units of 1 / lambda_e."""
    sw = result.sweep
    start, le, g = max((r.trace.sq_norm[g][0] / r.trace.sq_norm[g][r.trace.step > r.steps - r.window].mean(),
                        r.intrinsic_lr, g) for r in sw.rows for g in r.trace.groups)
    row = next(r for r in sw.rows if r.intrinsic_lr == le)
    return (f"From the default initialization, {g} starts {ratio(start)} above its equilibrium $\\lVert w\\rVert^2$ "
            f"(at $\\lambda_e$ = {number(le)}): the norm recursion needs {number(row.pred_settle_steps[g] * le)}"
            f"$/\\lambda_e$ to come within {percent(result.params.equilibrium_tol)} of it, and the level is the mean "
            f"over the final {number(sw.settle_window)}$/\\lambda_e$, so a run needs more than "
            f"{number(row.pred_settle_steps[g] * le + sw.settle_window)}$/\\lambda_e$; these runs have "
            f"{number(min(r.steps * r.intrinsic_lr for r in sw.rows))}$/\\lambda_e$.")


def sweep_table(result: IntrinsicLRResult) -> pd.DataFrame:
    """Per lambda_e and layer, in units of 1 / lambda_e: the run, the measured and the predicted settling, and
    whether the layer was scale-invariant over the final window."""
    return pd.DataFrame([{"λe": r.intrinsic_lr, "layer": g.group, "run (1/λe)": r.steps * r.intrinsic_lr,
                          "settled at (1/λe)": r.settle_steps[g.group] * r.intrinsic_lr,
                          "norm recursion (1/λe)": r.pred_settle_steps[g.group] * r.intrinsic_lr,
                          "radial push": g.radial_push, "test acc": r.test_acc}
                         for r in result.sweep.rows for g in r.equilibrium.layers]).set_index(["λe", "layer"])


def invariance_table(result: IntrinsicLRResult) -> pd.DataFrame:
    """Which tracked layers were scale-invariant where the page measures them: the mean cos(w, ∇L) over the window
    and the radial push 2|cos|/Δθ (the radial term of the norm's update over the term that sets the equilibrium)."""
    windows: dict[str, Window] = {}
    if result.drop is not None:
        windows |= {"before the drop": result.drop.before, "end of the drop run": result.drop.after}
    if result.sweep is not None:
        windows |= {f"sweep, λe {number(r.intrinsic_lr)}": r.equilibrium for r in result.sweep.rows}
    if result.momentum_batch is not None:
        windows |= {r.name: r.equilibrium for r in result.momentum_batch.runs}
    return pd.DataFrame([{"run": k, "layer": g.group, "cos(w, ∇L)": g.radial, "radial push": g.radial_push,
                          "|w|² / fixed point": g.sq_norm / g.pred_sq_norm if "momentum" not in k else math.nan,
                          "scale-invariant": "yes" if invariant(g) else "no"}
                         for k, w in windows.items() for g in w.layers]).set_index(["run", "layer"])


# ============================================================================== momentum, batch, LayerNorm


def short_table(result: IntrinsicLRResult) -> pd.DataFrame:
    """The short runs' equilibria per layer; the norm's prediction is plain SGD's fixed point, so none is given for
    the momentum run."""
    return pd.DataFrame([{"run": r.name, "layer": g.group, "η": r.lr, "batch": r.batch_size,
                          "angular (ours)": g.angular, "angular predicted": g.pred_angular, "|w|² (ours)": g.sq_norm,
                          "|w|² predicted": g.pred_sq_norm if r.momentum == 0 else math.nan, "G²": g.grad_sq,
                          "test acc": r.acc.mean}
                         for r in result.momentum_batch.runs for g in r.equilibrium.layers]).set_index(["run", "layer"])


def toy_momentum_sentence(result: IntrinsicLRResult) -> str:
    """The toy model's equilibrium angular update with and without momentum, against Wan et al.'s prediction."""
    return "The toy model at the same $\\lambda_e$: " + "; ".join(
        f"momentum {number(r['momentum'])}, angular update {number(r['angular_rms'])} (predicted "
        f"{number(r['pred_angular'])})" for r in result.toy.momentum) + "."


def momentum_batch(result: IntrinsicLRResult):
    """The first layer's angular update under momentum and at three batch sizes."""
    p, m = result.params, result.momentum_batch
    first = m.runs[0].trace.groups[0]
    fig, axes = figure(width=6.5, height=3.2)
    rows = []
    for i, r in enumerate(m.runs):
        axes[0].plot(r.trace.step, r.trace.angular[first], color=RUNS[i % 8], lw=1, label=r.name)
        rows += [row for row in _trace_rows(r.trace, r.name, ("angular",)) if row["layer"] == first]
    lam = p.intrinsic_lr
    reference_line(axes[0], math.sqrt(2 * lam), rf"$\sqrt{{2\lambda_e}}$ ({SRC})")
    axes[0].axhline(math.sqrt(2 * lam * (1 - p.momentum) / (1 + p.momentum)), color=PALETTE["reference"], ls=":",
                    label=rf"$\sqrt{{2\lambda_e/(1+\mu)}}$ at $\eta(1-\mu)$ ({MOMENTUM_SOURCE.split(',')[0]})")
    axes[0].set(yscale="log", xlabel="step", ylabel=f"angular update ({first})", title="Momentum and batch size")
    axes[0].legend(fontsize=6)
    return fig, pd.DataFrame(rows)


def layernorm(result: IntrinsicLRResult):
    """BatchNorm and LayerNorm, each at two splits of the same lambda_e: angular update and effective LR."""
    p, m = result.params, result.momentum_batch
    first = m.runs[0].trace.groups[0]
    fig, axes = figure(ncols=2, width=5.0)
    rows = []
    for norm in ("batch", "layer"):
        for r in (m.reference(norm), m.split(norm)):
            name = r.name.replace("plain SGD", "BatchNorm")
            ls = "-" if r.lr == p.lr else "--"
            c = RUNS[0] if norm == "batch" else RUNS[3]
            axes[0].plot(r.trace.step, r.trace.angular[first], ls, color=c, lw=1, label=name)
            axes[1].plot(r.trace.step, r.trace.effective_lr[first], ls, color=c, lw=1, label=name)
            rows += [row for row in _trace_rows(r.trace, name, ("angular", "effective_lr")) if row["layer"] == first]
    reference_line(axes[0], math.sqrt(2 * p.intrinsic_lr), rf"$\sqrt{{2\lambda_e}}$ ({SRC})")
    axes[0].set(yscale="log", xlabel="step", ylabel=f"angular update ({first})", title="Angular update")
    axes[1].set(yscale="log", xlabel="step", ylabel=rf"$\eta/\|w\|^2$ ({first})", title="Effective LR")
    axes[0].legend(fontsize=6)
    return fig, pd.DataFrame(rows)


def eps_sentence(result: IntrinsicLRResult) -> str:
    """The normalization's eps: with PyTorch's default, which layers stop being scale-invariant, and what that does
    to their norm, against the same run with the chapter's eps."""
    p, m = result.params, result.momentum_batch
    eps = [r for r in m.runs if "eps" in r.name]
    if not eps:
        return ""
    plain = m.reference("batch").equilibrium
    parts = [f"{g.group}: radial push {number(g.radial_push)}, |w|² {ratio(g.sq_norm / g.pred_sq_norm)} the fixed "
             f"point (with eps = {number(p.bn_eps)}: {number(plain.layer(g.group).radial_push)}, "
             f"{ratio(plain.layer(g.group).sq_norm / plain.layer(g.group).pred_sq_norm)})"
             for g in eps[0].equilibrium.layers]
    return ("**The normalization's eps decides which layers are scale-invariant.** BatchNorm divides by "
            "$\\sqrt{\\mathrm{var}+\\epsilon}$: a layer is scale-invariant only while the variance of its "
            "pre-activations is large against $\\epsilon$. Weight decay shrinks that variance (the layer's own norm, "
            "and the BatchNorm scale of the layer before it, which feeds it), until a larger norm lowers the loss: "
            "the gradient gets a radial part, $\\cos(w,\\nabla L)<0$, which holds the norm above the recursion's "
            "fixed point. With PyTorch's default eps $10^{-5}$, at the end of the plain-SGD run: "
            + "; ".join(parts) + ". The radial push is $2|\\cos(w,\\nabla L)|/\\Delta\\theta$, the radial term "
            "of the norm's update over the term that sets the equilibrium; the page counts a layer as "
            f"scale-invariant while it is at most {number(RADIAL_PUSH_MAX.value)}.")


def questions_sentence(result: IntrinsicLRResult) -> str:
    """Reviewer 1's questions 3 and 4, answered with the seed spread of test accuracy (Figure 5's reference run)
    where it was measured: a difference below it is not called."""
    p, d = result.params, result.drop
    early, main = d.acc("early_after"), d.acc("main_cmp")
    best = max(d.compare, key=lambda c: c.best_after)
    sd = result.schedules.acc_spread.sd if result.schedules is not None else math.nan
    bar = DIFF_Z.value * math.sqrt(2) * sd
    n = result.schedules.seeds if result.schedules is not None else 0

    def compared(diff: float) -> str:
        if not np.isfinite(bar) or abs(diff) <= bar:
            return "no different, beyond the seed spread, from"
        return "higher than" if diff > 0 else "lower than"

    second = sorted(c.best_after for c in d.compare)[-2]
    margin = ("a difference within the seed spread" if not np.isfinite(bar) or best.best_after - second <= bar
              else "a called difference")
    return (f"Within {p.compare_after_drop_epochs} epochs after the drop, the best test accuracy of the run dropped "
            f"before equilibrium was {compared(early.best - main.best)} that of the run dropped at equilibrium "
            f"({number(early.best)} against {number(main.best)}); the best accuracy right after the drop came from "
            f"the first learning rate {number(best.lr_first)} ({number(best.best_after)}; the next "
            f"{number(second)}, {margin}). One seed per run; a difference is called beyond {number(DIFF_Z.value)} σ "
            f"of a difference, {number(bar)} here (σ of test accuracy from Figure 5's reference run at {n} seeds).")


def paper_scope(paper: Params) -> str:
    """What the `paper` preset runs, in units of 1 / lambda_e, how it differs from the paper and what it costs: image
    passes through PreResNet-32 (forward + backward FLOPs counted by torch) at the campaign's planning rate."""
    flops_per_image = train_flops_per_image(preresnet32(), (3, 32, 32), torch.device("cpu"))
    h200_flops = CAMPAIGN_FLOPS
    spe = paper.n_train // paper.batch_size
    lam = paper.intrinsic_lr
    unit = 1 / (lam * spe)  # epochs per 1 / lambda_e
    images = sum(part_images(paper, name) for name in ("drop", "schedules", "sweep", "momentum_batch"))
    minutes = images * flops_per_image / h200_flops / 60
    theirs = 1 / (paper.lr * PAPER_WEIGHT_DECAY * spe)  # the paper's 1 / lambda_e, in epochs
    times = lambda epochs, drop=1.0: number(epochs * spe * lam / drop)  # noqa: E731
    return (f"**The `paper` preset** trains the paper's PreResNet-32 on full CIFAR-10 (crop and flip) with plain SGD, "
            f"batch {paper.batch_size}, $\\eta$ = {number(paper.lr)}, but with weight decay "
            f"$\\lambda$ = {number(paper.weight_decay)} instead of the paper's {number(PAPER_WEIGHT_DECAY)}: "
            f"$\\lambda_e$ = {number(lam)}, so $1/\\lambda_e$ is {number(unit)} epochs instead of {number(theirs)}. "
            "The claims are about equilibria reached in a number of $1/\\lambda_e$, not of epochs; at the paper's "
            "$\\lambda_e$ the new equilibrium after an LR drop alone would take $3/\\lambda_e'$ = "
            f"{number(3 * paper.lr_drop * theirs)} epochs. Its runs: {times(paper.equilibrium_epochs)}$/\\lambda_e$ "
            f"before the drop and {times(paper.after_drop_epochs, paper.lr_drop)}$/\\lambda_e'$ after it; Figure 5's "
            f"differing phase {times(paper.phase1_epochs)}$/\\lambda_e$ and common phase "
            f"{times(paper.phase2_epochs)}$/\\lambda_e$ (the paper: 500 + 500 epochs, {number(500 / theirs)} + "
            f"{number(500 / theirs)}$/\\lambda_e$); decay, momentum, batch-size and LayerNorm runs "
            f"{times(paper.short_epochs)}$/\\lambda_e$; the sweep over $\\lambda_e$ "
            f"{number(paper.sweep_min_intrinsic_lr)} to {number(paper.sweep_max_intrinsic_lr)} at "
            f"{number(paper.sweep_relaxation_times)}$/\\lambda_e$; {paper.seeds} seeds of each comparison's reference "
            f"run. In all {number(images)} image passes, about {number(minutes)} minutes of an H200 at "
            f"{number(h200_flops / 1e12)} TFLOP/s. Test accuracy after Figure 5's final phase is not comparable with "
            f"the paper's {percent(PAPER_FIG5_TEST_ACC)} at this weight decay.")


def provenance(result: IntrinsicLRResult) -> pd.DataFrame:
    """Per section: its store key, whether it was loaded, device, wall time and commit."""
    return pd.DataFrame([{"section": name, "store key (version)": f"{r.experiment} {r.key[:8]} (v{r.version})",
                          "loaded from store": r.cached, "device": r.provenance["device"],
                          "wall time (s)": r.provenance["wall_time_s"], "commit": r.provenance["commit"]}
                         for name, r in result.parts.items()]).set_index("section")

