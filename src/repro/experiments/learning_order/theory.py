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
import itertools

import numpy as np
import torch

from repro.device import get_device
from repro.units import Unit, make_unit

from .setting import KINDS, Algo, Data, TheoryParams, algorithms, make_data, sample, train_batch, w_star

VERSION = 2  # 2: the paper's stopping rules (anneal by loss, stop at eps2), the regime's measurements

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


def _plain(r: dict) -> dict:
    return {k: v for k, v in r.items() if k != "curves"}


def regime_measures(ls: list[dict], s: list[dict], budget: int, cap: int) -> dict[str, list]:
    """What the theorem's regime needs, per seed, from L-S's and S's runs on the same seeds, for a step budget
    `budget` whose anneal cap is `cap`: L-S's mean share of units active on Q and its mean Q-only test accuracy
    before annealing, whether it annealed by the loss rule (before the cap), whether S memorised its Q-only
    training examples, and whether both stopped at the train loss eps2 within the budget."""
    return {"alive_Q": [r["active_q_mean"] for r in ls], "q_accuracy_before": [r["q_acc_mean"] for r in ls],
            "annealed_by_loss": [bool(r["annealed_by_loss"] and 0 <= r["anneal_step"] < cap) for r in ls],
            "s_memorised_Q": [0 <= r["fit_step_Q"] <= budget for r in s],
            "stopped": [0 <= r["stop_step"] <= budget for r in ls + s]}


def main_experiment(p: TheoryParams) -> dict:
    """At the chapter's p0: L-S, S and S + noise on every seed; at the other p0 of the sweep L-S and S; and L-S
    with the other large rates. All in one batch, each run stopped by the paper's rules."""
    device = get_device(p.device)
    algos = algorithms(p)
    runs, labels = [], []
    for p0 in p.p0_grid:
        for s in _seeds(p):
            data = make_data(p, s, p0, p.pq_q0)
            for name, algo in algos.items():
                if p0 == p.pq_p0 or name != "S+noise":
                    runs.append((algo, data))
                    labels.append((p0, s, name))
            if p0 == p.pq_p0:
                for lr in p.lr_large_grid:  # the large learning rate's sweep (L-S at the chapter's p0)
                    if lr != p.pq_lr_large:
                        runs.append((dataclasses.replace(algos["L-S"], lr_large=lr), data))
                        labels.append((p0, s, f"L-S@{lr}"))
    out = train_batch(runs, p, device, p.seed, desc="learning order: main")
    rows = [{"p0": p0, "seed": s, "run": a, **_plain(r)} for (p0, s, a), r in zip(labels, out, strict=True)]

    def pick(p0: float, run: str) -> list[dict]:
        return [r for r in rows if r["p0"] == p0 and r["run"] == run]

    summary = summary_of
    by_algo = {name: summary(pick(p.pq_p0, name)) for name in algos}
    sweep = [{"p0": p0, "algorithm": name, "p_only_examples": round(p0 * p.pq_n_train), **summary(pick(p0, name)),
              "regime": regime_measures(pick(p0, "L-S"), pick(p0, "S"), p.pq_steps, p.pq_anneal_max)}
             for p0 in p.p0_grid for name in ("L-S", "S")]
    lr_sweep = [{"lr_large": lr, "lr_ratio": lr / p.pq_lr_small,
                 **summary(pick(p.pq_p0, "L-S" if lr == p.pq_lr_large else f"L-S@{lr}"))} for lr in p.lr_large_grid]
    at_p0 = [(s, a, r) for (p0, s, a), r in zip(labels, out, strict=True) if p0 == p.pq_p0]
    curves = {name: mean_curves([r for _, a, r in at_p0 if a == name]) for name in algos}
    seed_curves = {name: [r["curves"] for s, a, r in at_p0 if a == name and s == p.seed][0] for name in algos}
    paired = np.array(by_algo["S"]["p_error_seeds"]) - np.array(by_algo["L-S"]["p_error_seeds"])
    metrics = {"algorithms": by_algo, "regime": regime_measures(pick(p.pq_p0, "L-S"), pick(p.pq_p0, "S"),
                                                                 p.pq_steps, p.pq_anneal_max),
               "p_error_gap_S_minus_LS": float(paired.mean()),
               "p_error_gap_std": float(paired.std(ddof=1)) if len(paired) > 1 else 0.0,
               "ls_better_on_seeds": int((paired > 0).sum()), "seeds": p.pq_seeds,
               "q_only_fraction": p.pq_q0, "p_only_examples": round(p.pq_p0 * p.pq_n_train),
               "p_carrying_examples": round((1 - p.pq_q0) * p.pq_n_train)}
    return {"metrics": metrics, "data": {"rows": rows, "sweep": sweep, "lr_sweep": lr_sweep, "curves": curves,
                                         "seed_curves": seed_curves, "distribution": distribution_sample(p)}}


# The setting this chapter used before the search: a Q component 32 times longer than |x1| with zeta a quarter of
# it, little update noise, and runs compared after an equal number of steps. Its large rate switches off every
# unit on Q (see the search); it is kept as a reference, run exactly so.
PREVIOUS = {"pq_zq_norm": 32.0, "pq_zeta": 8.0, "pq_noise": 0.001, "pq_lr_large": 2.0, "pq_lr_small": 0.1,
            "pq_weight_decay": 1e-3, "pq_gamma0": 0.02, "pq_anneal_loss": 0.1}
PREVIOUS_STEPS = 3000


def search_settings(p: TheoryParams) -> list[dict[str, float]]:
    """The search's grid: Q scale |zq|, zeta / |zq|, update noise tau_xi and small rate eta2."""
    return [{"zq_norm": zq, "zeta_ratio": r, "noise": tau, "lr_small": lr2}
            for zq, r, tau, lr2 in itertools.product(p.search_zq, p.search_zeta, p.search_noise, p.search_lr_small)]


def search_experiment(p: TheoryParams) -> dict:
    """L-S and S at every setting of the search's grid (the chapter's other parameters fixed), run once with the
    longest step budget; each shorter budget (anneal cap scaled with it) is read from the same runs, which are
    identical up to it whenever L-S anneals by the loss rule in time. Then the previous setting, with its
    runs compared after an equal number of steps."""
    device = get_device(p.device)
    budgets = p.search_steps
    longest = max(budgets)
    cap_share = p.pq_anneal_max / p.pq_steps
    q = p.replace(pq_steps=longest, pq_anneal_max=max(1, round(longest * cap_share)))
    base = algorithms(q)
    seeds = [p.seed + k for k in range(p.pq_search_seeds)]
    datas = {s: make_data(q, s, p.pq_p0, p.pq_q0) for s in seeds}
    runs, labels = [], []
    for i, st in enumerate(search_settings(p)):
        for s in seeds:
            data = datas[s].with_q(st["zq_norm"], st["zq_norm"] * st["zeta_ratio"])
            runs.append((dataclasses.replace(base["L-S"], noise=st["noise"], lr_small=st["lr_small"]), data))
            runs.append((dataclasses.replace(base["S"], noise=st["noise"], lr_small=st["lr_small"],
                                             lr_large=st["lr_small"]), data))
            labels += [(i, s, "L-S"), (i, s, "S")]
    out = train_batch(runs, q, device, p.seed + 2, desc="learning order: search")
    rows = []
    for i, st in enumerate(search_settings(p)):
        ls = [_plain(r) for (j, _, a), r in zip(labels, out, strict=True) if j == i and a == "L-S"]
        s = [_plain(r) for (j, _, a), r in zip(labels, out, strict=True) if j == i and a == "S"]
        alive = next(r["curves"]["active_units_Q"] for (j, sd, a), r in zip(labels, out, strict=True)
                     if j == i and a == "L-S" and sd == seeds[0])
        for budget in budgets:
            rows.append({**st, "steps": budget,
                         "regime": regime_measures(ls, s, budget, max(1, round(budget * cap_share))),
                         **{f"{key}_{name}": [r[key] for r in sel] for name, sel in (("LS", ls), ("S", s))
                            for key in ("p_error", "train_loss", "anneal_step", "stop_step", "fit_step_Q")},
                         **({"alive_curve_LS": alive} if budget == longest else {})})
    prev = p.replace(**PREVIOUS, pq_steps=min(p.pq_steps, PREVIOUS_STEPS),
                     pq_anneal_max=min(p.pq_steps, PREVIOUS_STEPS) // 2, pq_stop_loss=1e-9)
    old = algorithms(prev)
    prev_runs = [(old[a], make_data(prev, s, p.pq_p0, p.pq_q0)) for s in _seeds(p) for a in ("L-S", "S")]
    prev_out = train_batch(prev_runs, prev, device, p.seed, desc="learning order: previous setting")
    previous = {name: {**summary_of([r for (a, _), r in zip(prev_runs, prev_out, strict=True) if a.name == name]),
                       "curves": mean_curves([r for (a, _), r in zip(prev_runs, prev_out, strict=True)
                                              if a.name == name])}
                for name in ("L-S", "S")}
    plain = {name: {k: v for k, v in summary.items() if k != "curves"} for name, summary in previous.items()}
    config = {**PREVIOUS, "pq_steps": prev.pq_steps, "pq_anneal_max": prev.pq_anneal_max}
    return {"metrics": {"settings": rows, "budgets": budgets, "seeds": len(seeds), "previous": plain,
                        "previous_config": config},
            "data": {"previous_curves": {name: summary["curves"] for name, summary in previous.items()}}}


def summary_of(sel: list[dict]) -> dict:
    """summarize() plus the per-seed steps and regime measurements of a list of runs."""
    return {**summarize(sel), **{f"fit_step_{k}": fit_steps(sel, k) for k in KINDS},
            **{key: [r[key] for r in sel] for key in ("anneal_step", "stop_step", "annealed_by_loss",
                                                       "active_q_mean", "q_acc_mean")}}


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
        table.append({"group": g, "variant": v, "algorithm": a, **summary_of(sel)})
    return {"metrics": {"table": table}, "data": {"rows": rows}}


# ------------------------------------------------------------------------------------------------ units

_ALL_FIELDS = tuple(f.name for f in dataclasses.fields(TheoryParams) if f.name.startswith("pq_"))
_SEARCH_ONLY = tuple(f for f in _ALL_FIELDS if f.startswith("pq_search"))
MAIN_FIELDS = ("seed", "device", *(f for f in _ALL_FIELDS if not f.startswith("pq_adam") and f != "pq_iterate_noise"
                                   and f not in _SEARCH_ONLY))
ABLATION_FIELDS = ("seed", "device", *(f for f in _ALL_FIELDS if f not in ("pq_p0_grid", "pq_lr_large_grid")
                                       and f not in _SEARCH_ONLY))
# the search sets the Q scale, the update noise and the small rate itself
SEARCH_FIELDS = ("seed", "device", *(f for f in MAIN_FIELDS[2:] if f not in (
    "pq_zq_norm", "pq_zeta", "pq_noise", "pq_lr_small", "pq_act_noise", "pq_p0_grid", "pq_lr_large_grid")),
    *_SEARCH_ONLY)


def theory_units(p: TheoryParams, chapter: str = "learning_order") -> list[Unit]:
    """The theory setting's units: the main comparison (section "theory"), the search for the theorem's regime
    ("search") and the ablations ("ablations")."""
    cfg = p.to_dict()
    device = get_device(p.device)
    return [make_unit(chapter, f"theory/{kind}", name, VERSION, {k: cfg[k] for k in fields},
                      lambda fn=fn: fn(p), device, section=section)
            for kind, name, fields, fn, section in (
                ("main", "learning_order_theory", MAIN_FIELDS, main_experiment, "theory"),
                ("search", "learning_order_theory_search", SEARCH_FIELDS, search_experiment, "search"),
                ("ablations", "learning_order_theory_ablations", ABLATION_FIELDS, ablation_experiment, "ablations"))]
