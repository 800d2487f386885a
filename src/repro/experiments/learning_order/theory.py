"""The theory setting's experiments (Li, Wei, Ma 2019, section 3), on the distribution and training loop of
setting.py. Two stored sub-experiments, each one unit:
- `learning_order_theory`: L-S, S and S + noise at every p0 of the sweep (the default p0 included) and several
  seeds, with learning curves (test accuracy and margin on P-only, Q-only and both-component examples, train
  loss, the share of the gradient coming from each kind of training example), and L-S at other large rates;
- `learning_order_theory_ablations`: the reviewers' questions: where the noise goes (pre-activation,
  post-activation, on the iterates), squared vs logistic loss, no L2, one feature type only, Adam.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from repro.device import get_device
from repro.units import Unit, make_unit

from .setting import KINDS, Algo, Data, TheoryParams, algorithms, make_data, sample, train_batch, w_star

VERSION = 1

# ------------------------------------------------------------------------------------------------ summaries


def summarize(rows: list[dict], keys: tuple[str, ...] = ("p_error", "q_error", "pq_error", "train_loss")) -> dict:
    """Mean, standard deviation (over seeds, ddof 1; 0 for one seed) and the per-seed values of each key."""
    out = {}
    for key in keys:
        vals = np.array([r[key] for r in rows], dtype=float)
        out[key] = float(vals.mean())
        out[f"{key}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
        out[f"{key}_seeds"] = vals.tolist()
    return out


def fit_steps(rows: list[dict], kind: str) -> list[int | None]:
    """Per seed, the first step at which the kind's training examples were fit (None: never)."""
    return [r[f"fit_step_{kind}"] if r[f"fit_step_{kind}"] >= 0 else None for r in rows]


def mean_curves(rows: list[dict]) -> dict[str, list[float]]:
    """Curves averaged over seeds (all runs share the evaluation steps)."""
    keys = [k for k in rows[0]["curves"] if k != "step"]
    out = {"step": rows[0]["curves"]["step"]}
    for key in keys:
        out[key] = np.mean([r["curves"][key] for r in rows], 0).round(5).tolist()
    return out


def distribution_sample(p: TheoryParams, n: int = 600) -> dict:
    """Points of the distribution for the 2-D pictures: x1 projected on (w*, a fixed noise direction) and x2
    in the (zq, zeta) plane, with labels and kinds."""
    gen = torch.Generator().manual_seed(p.seed + 999)
    w = w_star(p.pq_d, p.seed)
    x, y, kind = sample(n, p.pq_p0, p.pq_q0, p.pq_d, p.pq_gamma0, p.pq_zq_norm, p.pq_zeta, w, gen)
    noise_dir = torch.randn(p.pq_d, generator=gen)
    noise_dir = noise_dir - (noise_dir @ w) * w
    noise_dir = noise_dir / noise_dir.norm()
    x1, x2 = x[:, : p.pq_d], x[:, p.pq_d:]
    return {"p_along_w": (x1 @ w).tolist(), "p_along_noise": (x1 @ noise_dir).tolist(),
            "q_along_zq": x2[:, 0].tolist(), "q_along_zeta": x2[:, 1].tolist(), "y": y.tolist(),
            "kind": kind.tolist()}


# ------------------------------------------------------------------------------------------------ experiments


def _seeds(p: TheoryParams) -> list[int]:
    return [p.seed + k for k in range(p.pq_seeds)]


def main_experiment(p: TheoryParams) -> dict:
    """L-S, S and S + noise at every p0 of the sweep and every seed, in one batch."""
    device = get_device(p.device)
    algos = algorithms(p)
    runs, labels = [], []
    for p0 in p.p0_grid:
        for s in _seeds(p):
            data = make_data(p, s, p0, p.pq_q0)
            for name, algo in algos.items():
                runs.append((algo, data))
                labels.append((p0, s, name))
    n_main = len(runs)
    for lr in p.lr_large_grid:  # the large learning rate's sweep (L-S at the default p0)
        if lr == p.pq_lr_large:
            continue
        for s in _seeds(p):
            runs.append((dataclasses.replace(algos["L-S"], lr_large=lr), make_data(p, s, p.pq_p0, p.pq_q0)))
            labels.append((p.pq_p0, s, f"L-S@{lr}"))
    out = train_batch(runs, p, device, p.seed, desc="learning order: main")
    lr_rows = [{"lr_large": float(a.split("@")[1]), "seed": s, **{k: v for k, v in r.items() if k != "curves"}}
               for (_, s, a), r in zip(labels[n_main:], out[n_main:], strict=True)]
    labels, out = labels[:n_main], out[:n_main]
    rows = [{"p0": p0, "seed": s, **{k: v for k, v in r.items() if k != "curves"}}
            for (p0, s, _), r in zip(labels, out, strict=True)]
    lr_rows += [{"lr_large": p.pq_lr_large, **r} for r in rows if r["p0"] == p.pq_p0 and r["algorithm"] == "L-S"]
    lr_sweep = []
    for lr in p.lr_large_grid:
        sel = [r for r in lr_rows if r["lr_large"] == lr]
        lr_sweep.append({"lr_large": lr, "lr_ratio": lr / p.pq_lr_small,
                         **{k: v for k, v in summarize(sel).items() if not k.endswith("_seeds")},
                         "fit_step_Q": fit_steps(sel, "Q"), "fit_step_P": fit_steps(sel, "P"),
                         "anneal_step": [r["anneal_step"] for r in sel]})
    by_algo = {}
    for name in algos:
        at_p0 = [r for (p0, _, a), r in zip(labels, out, strict=True) if a == name and p0 == p.pq_p0]
        by_algo[name] = {**summarize(at_p0), **{f"fit_step_{k}": fit_steps(at_p0, k) for k in KINDS},
                         "anneal_step": [r["anneal_step"] for r in at_p0]}
    sweep = []
    for p0 in p.p0_grid:
        for name in algos:
            sel = [r for r in rows if r["p0"] == p0 and r["algorithm"] == name]
            sweep.append({"p0": p0, "algorithm": name, "p_only_examples": round(p0 * p.pq_n_train),
                          **{k: v for k, v in summarize(sel).items() if not k.endswith("_seeds")}})
    curves = {name: mean_curves([r for (p0, _, a), r in zip(labels, out, strict=True)
                                 if a == name and p0 == p.pq_p0]) for name in algos}
    seed_curves = {name: [r["curves"] for (p0, s, a), r in zip(labels, out, strict=True)
                          if a == name and p0 == p.pq_p0 and s == p.seed][0] for name in algos}
    gap = by_algo["S"]["p_error"] - by_algo["L-S"]["p_error"]
    paired = np.array(by_algo["S"]["p_error_seeds"]) - np.array(by_algo["L-S"]["p_error_seeds"])
    metrics = {"algorithms": by_algo, "p_error_gap_S_minus_LS": gap,
               "p_error_gap_std": float(paired.std(ddof=1)) if len(paired) > 1 else 0.0,
               "ls_better_on_seeds": int((paired > 0).sum()), "seeds": p.pq_seeds,
               "q_only_fraction": p.pq_q0, "p_only_examples": round(p.pq_p0 * p.pq_n_train),
               "p_carrying_examples": round((1 - p.pq_q0) * p.pq_n_train)}
    return {"metrics": metrics, "data": {"rows": rows, "sweep": sweep, "lr_sweep": lr_sweep, "curves": curves,
                                         "seed_curves": seed_curves, "distribution": distribution_sample(p)}}


def ablation_runs(p: TheoryParams) -> list[tuple[str, str, Algo, dict]]:
    """(group, variant, algorithm, data spec) of every ablation run (one per seed each)."""
    base = algorithms(p)
    ls, s = base["L-S"], base["S"]
    main = {"p0": p.pq_p0, "q0": p.pq_q0}
    n_p, n_pc = max(2, round(p.pq_p0 * p.pq_n_train)), max(2, round((1 - p.pq_q0) * p.pq_n_train))
    return [
        # 1. where the noise goes, at the small learning rate, each switched off where L-S anneals
        ("noise", "none (S)", s, main),
        ("noise", "pre-activation", base["S+noise"], main),
        ("noise", "post-activation", dataclasses.replace(s, name="S+post", post_noise=p.pq_act_noise), main),
        ("noise", "on the iterates", dataclasses.replace(s, name="S+iterate", iterate_noise=p.pq_iterate_noise), main),
        ("noise", "L-S without update noise", dataclasses.replace(ls, name="L-S", noise=0.0), main),
        ("noise", "L-S with 10x update noise", dataclasses.replace(ls, name="L-S", noise=10 * p.pq_noise), main),
        # 2. the loss, and L2
        ("loss", "logistic + L2 (paper)", ls, main), ("loss", "logistic + L2 (paper)", s, main),
        ("loss", "squared + L2", dataclasses.replace(ls, loss="squared"), main),
        ("loss", "squared + L2", dataclasses.replace(s, loss="squared"), main),
        ("loss", "logistic, no L2", dataclasses.replace(ls, weight_decay=0.0), main),
        ("loss", "logistic, no L2", dataclasses.replace(s, weight_decay=0.0), main),
        # 3. one type of feature only
        *[("single", f"P only, N = {n}", algo, {"p0": 1.0, "q0": 0.0, "n": n})
          for n in (n_p, n_pc, p.pq_n_train) for algo in (ls, s)],
        *[("single", f"Q only, N = {p.pq_n_train}", algo, {"p0": 0.0, "q0": 1.0}) for algo in (ls, s)],
        # 4. Adam instead of gradient descent
        ("adam", "Adam", dataclasses.replace(ls, optimizer="adam", lr_large=p.pq_adam_lr_large,
                                             lr_small=p.pq_adam_lr_small), main),
        ("adam", "Adam", dataclasses.replace(s, optimizer="adam", lr_large=p.pq_adam_lr_small,
                                             lr_small=p.pq_adam_lr_small), main),
    ]


def ablation_experiment(p: TheoryParams) -> dict:
    device = get_device(p.device)
    specs = ablation_runs(p)
    runs, labels = [], []
    for s in _seeds(p):
        cache: dict[tuple, Data] = {}
        for group, variant, algo, spec in specs:
            key = (spec["p0"], spec["q0"], spec.get("n"))
            if key not in cache:
                cache[key] = make_data(p, s, spec["p0"], spec["q0"], spec.get("n"))
            runs.append((algo, cache[key]))
            labels.append((group, variant, algo.name, s))
    out = train_batch(runs, p, device, p.seed + 1, desc="learning order: ablations")
    rows = [{"group": g, "variant": v, "algorithm": a, "seed": s, **{k: x for k, x in r.items() if k != "curves"}}
            for (g, v, a, s), r in zip(labels, out, strict=True)]
    table = []
    seen = []
    for g, v, a, _ in labels:
        if (g, v, a) in seen:
            continue
        seen.append((g, v, a))
        sel = [r for r in rows if (r["group"], r["variant"], r["algorithm"]) == (g, v, a)]
        table.append({"group": g, "variant": v, "algorithm": a,
                      **summarize(sel), "fit_step_Q": fit_steps(sel, "Q"), "fit_step_P": fit_steps(sel, "P"),
                      "anneal_step": [r["anneal_step"] for r in sel]})
    return {"metrics": {"table": table}, "data": {"rows": rows}}


# ------------------------------------------------------------------------------------------------ units

_ALL_FIELDS = tuple(f.name for f in dataclasses.fields(TheoryParams) if f.name.startswith("pq_"))
MAIN_FIELDS = ("seed", "device", *(f for f in _ALL_FIELDS if not f.startswith("pq_adam") and f != "pq_iterate_noise"))
ABLATION_FIELDS = ("seed", "device", *(f for f in _ALL_FIELDS if f not in ("pq_p0_grid", "pq_lr_large_grid")))


def theory_units(p: TheoryParams, chapter: str = "learning_order") -> list[Unit]:
    """The theory setting's two units: the main comparison (section "theory") and the ablations ("ablations")."""
    cfg = p.to_dict()
    device = get_device(p.device)
    return [make_unit(chapter, f"theory/{kind}", name, VERSION, {k: cfg[k] for k in fields},
                      lambda fn=fn: fn(p), device, section=section)
            for kind, name, fields, fn, section in (
                ("main", "learning_order_theory", MAIN_FIELDS, main_experiment, "theory"),
                ("ablations", "learning_order_theory_ablations", ABLATION_FIELDS, ablation_experiment, "ablations"))]
