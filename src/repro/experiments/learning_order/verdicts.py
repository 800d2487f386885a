"""Learning order's verdicts: the theory setting's claims (Theorems 3.4 and 3.5 and the mitigation), the
reviewers' questions (answered on the details page, not claims of the paper), and the CIFAR-10 claims; every
threshold named, every claim through the regime it needs."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from repro.fmt import number, pm, signed
from repro.regime import INCONCLUSIVE, Regime, at_least, at_most
from repro.store import Result
from repro.verdict import NOT_REPRODUCED, PARTLY, REPRODUCED, Threshold, Verdict

from .cifar import METHOD_LABELS, PAPER_CLEAN_TABLE, REPLICATION_CONTROL, REPLICATION_PATCH_CLEAN, network_label
from .results import CifarSet, LearningOrderResult, RegimeMeasures, Runs, Search, SearchRow

SOURCE = "Li, Wei, Ma 2019"

# ------------------------------------------------------------------------------------------------ thresholds

FIT_SHARE_NEED = Threshold(1.0, "", "an ablation compares networks trained until they fit their training set: "
                                    "every run fits every kind of its training examples (90% correct) within its "
                                    "steps")
# The theorem's regime (Theorems 3.4, 3.5, Lemma 4.2), measured on L-S and S before any direction is called.
ALIVE_NEED = Threshold(0.25, "", "before annealing, L-S keeps its units alive on Q: a unit with Gaussian weights is "
                                 "active on some Q ray with probability a little over one half, a unit switched "
                                 "off by a large step on none; L-S's mean share over its pre-annealing steps, "
                                 "lowest seed")
Q_CHANCE_NEED = Threshold(0.6, "", "before annealing L-S does not learn Q (Lemma 4.2): its Q-only test accuracy "
                                   "stays near chance (0.5; memorised Q gives 1), mean over the pre-annealing steps, "
                                   "highest seed")
BY_LOSS_NEED = Threshold(1.0, "", "L-S anneals by the paper's rule, at train loss ε₁ + q̂ log 2, on every seed, not "
                                  "at the step cap")
MEMORISED_NEED = Threshold(1.0, "", "S memorises Q within its step budget (90% of its Q-only training examples "
                                    "correct), on every seed")
STOPPED_NEED = Threshold(1.0, "", "L-S and S are compared at an equal train loss: every run reaches ε₂ within its "
                                  "budget and stops there")
THEOREM_REGIME = "the theorem's regime"
PAIRED_SE = Threshold(2.0, "paired standard errors", "a P-only error difference is called only beyond two standard "
                                                     "errors of the per-seed (paired) difference")
CLEAN_TEST_NEED = Threshold(0.6, "", "the CIFAR-10 claims are about networks that generalise as the paper's and the "
                                     "replication's do (clean test accuracy 0.65 to 0.90, the lowest being the "
                                     "replication's small LR on 10,000 images)")
TRAIN_NEED = Threshold(0.9, "", "and that fit their training images (as trained on, patches included)")
PATCH_LEARNED = Threshold(0.5, "", "a method has learned the patch once its seed-averaged patch-only accuracy "
                                   "reaches half (chance 0.1)")


# ------------------------------------------------------------------------------------------------ regimes


def _fit_share(runs: list[Runs], kinds: tuple[str, ...]) -> float:
    """Share of the (runs, seed) pairs that fit each of `kinds` of their training examples at some step."""
    fits = [all(r.fit_step(k)[i] is not None for k in kinds) for r in runs for i in range(r.seeds)]
    return float(np.mean(fits)) if fits else math.nan


def _share(flags: list[bool]) -> float:
    return float(np.mean(flags)) if flags else math.nan


def theorem_regime(m: RegimeMeasures, subject: str = "L-S and S") -> Regime:
    """The theorem's regime on one set of L-S and S runs; a run that misses it says nothing about the theorem,
    whichever way its P-only errors point."""
    return Regime(subject, THEOREM_REGIME, [
        at_least("share of L-S's units active on Q before annealing, lowest seed",
                 min(m.alive_Q, default=math.nan), float(ALIVE_NEED)),
        at_most("L-S's Q-only test accuracy before annealing, highest seed", max(m.q_accuracy_before,
                                                                                default=math.nan),
                float(Q_CHANCE_NEED)),
        at_least("share of L-S's seeds annealed by the loss rule", _share(m.annealed_by_loss), float(BY_LOSS_NEED)),
        at_least("share of S's seeds that memorised Q", _share(m.s_memorised_Q), float(MEMORISED_NEED)),
        at_least("share of runs stopped at train loss ε₂", _share(m.stopped), float(STOPPED_NEED))])


def search_regimes(search: Search) -> list[tuple[SearchRow, Regime]]:
    """Every setting and budget of the search with the theorem's regime measured on it."""
    return [(row, theorem_regime(row.regime, row.label)) for row in search.rows]


def ablation_regime(rows: list[Runs], variants: list[str], subject: str) -> Regime:
    """The regime of the ablation rows one answer compares: every run fit the kinds of training example its
    distribution has (`variants`, one per row, say which: "P only...", "Q only..." or both)."""
    kinds = [("P",) if v.startswith("P only") else ("Q",) if v.startswith("Q only") else ("P", "Q") for v in variants]
    fits = [_fit_share([r], k) for r, k in zip(rows, kinds, strict=True)]
    return Regime(subject, "networks that fit the training examples of their distribution",
                  [at_least("share of runs that fit their training examples",
                            float(np.mean(fits)) if fits else math.nan, float(FIT_SHARE_NEED))])


def cifar_regime(subject: str, runs: list[Result]) -> Regime:
    """The regime of the CIFAR runs one verdict rests on: the lowest clean test and train accuracy over them."""
    return Regime(subject, "networks that fit their training images and learn CIFAR-10 as the paper's do",
                  [at_least("clean test accuracy, lowest run", min(r.metrics["final_clean"] for r in runs),
                            float(CLEAN_TEST_NEED)),
                   at_least("train accuracy, lowest run", min(r.metrics.get("final_train", math.nan) for r in runs),
                            float(TRAIN_NEED))])


# ------------------------------------------------------------------------------------------------ comparisons


def paired(a: Runs, b: Runs) -> tuple[float, float]:
    """Mean and standard error over seeds of a's P-only error minus b's (the same seeds and data: paired)."""
    diff = np.array(a.p_error_seeds) - np.array(b.p_error_seeds)
    se = diff.std(ddof=1) / math.sqrt(len(diff)) if len(diff) > 1 else math.nan
    return float(diff.mean()), float(se)


def direction(a: Runs, b: Runs) -> str:
    """'lower', 'higher' or 'indistinguishable': a's P-only error against b's, at PAIRED_SE standard errors."""
    mean, se = paired(a, b)
    if math.isnan(se) or abs(mean) <= float(PAIRED_SE) * se:
        return "indistinguishable"
    return "lower" if mean < 0 else "higher"


def relation(a: Runs, b: Runs) -> str:
    """'lower than', 'higher than' or 'indistinguishable from': a's P-only error against b's."""
    word = direction(a, b)
    return "indistinguishable from" if word == "indistinguishable" else f"{word} than"


def compare(a: Runs, b: Runs, name_a: str, name_b: str) -> str:
    """One sentence comparing two runs' P-only test errors, from their per-seed values."""
    mean, se = paired(a, b)
    verb = relation(a, b)
    spread = f" ± {number(se)}" if not math.isnan(se) else " (one seed)"
    return (f"P-only test error of {name_a} is {verb} that of {name_b} ({number(a.p_error)} vs "
            f"{number(b.p_error)}; paired difference {signed(mean)}{spread})")


def steps_text(steps: list[int | None]) -> str:
    return ", ".join("never" if s is None else str(s) for s in steps)


def order_counts(algorithms: dict[str, Runs]) -> dict[str, int]:
    """Per seed counts of the learning order: S fits Q before L-S anneals; L-S has not fit Q by its anneal
    step; L-S fits its P-only training examples before S does."""
    ls, s = algorithms["L-S"], algorithms["S"]
    return {
        "s_first": sum(q is not None and q < a for q, a in zip(s.fit_step_Q, ls.anneal_step, strict=True)),
        "ls_waits": sum(q is None or q >= a for q, a in zip(ls.fit_step_Q, ls.anneal_step, strict=True)),
        "ls_p_first": sum(a is not None and (b is None or a < b)
                          for a, b in zip(ls.fit_step_P, s.fit_step_P, strict=True))}


# ------------------------------------------------------------------------------------------------ theory


def theory_verdicts(result: LearningOrderResult) -> list[Verdict]:
    main = result.theory
    if main is None:
        return []
    algos = main.algorithms
    ls, s, noisy = algos["L-S"], algos["S"], algos["S+noise"]
    n = main.seeds
    subject = "The chapter's setting"
    searched = ""
    if result.search is not None:
        reached = sum(r.ok for _, r in search_regimes(result.search))
        seeds = result.search.result.metrics["seeds"]
        searched = (f"; {reached} of the search's {len(result.search.rows)} settings and budgets reach the regime "
                    f"({seeds} seed each)")
        subject += f" (the search: {reached} of {len(result.search.rows)} settings reach it, {seeds} seed each)"
    regime = theorem_regime(main.regime, subject)
    counts = order_counts(algos)
    order_ok = counts["s_first"] == n and counts["ls_waits"] == n
    order_some = counts["s_first"] + counts["ls_waits"] > 0
    word = direction(ls, s)
    gaps = main.p_error_gaps()
    p0s = list(gaps)
    refs = list(result.ablations.single_refs().values()) if result.ablations is not None else []
    ref_text = ""
    if len(refs) == 2:
        ref_text = (f"; on P alone the same network reaches {number(refs[0].p_error)} from the P-only examples' "
                    f"number and {number(refs[1].p_error)} from the P-carrying ones'")
    common = {"source": SOURCE, "regime": regime, "section": "theory"}
    return [
        Verdict(key="theory-learning-order", claim="S memorises Q first; L-S fits Q only after annealing",
                paper="Theorems 3.4, 3.5 (Lemma 4.2)",
                ours=f"S first on {counts['s_first']} of {n} seeds, L-S waits on {counts['ls_waits']} of {n}",
                test=f"on every seed S fits its Q-only training examples before L-S anneals, and L-S has not fit "
                     f"them by its anneal step (S: steps {steps_text(s.fit_step_Q)}; L-S: "
                     f"{steps_text(ls.fit_step_Q)}, annealed at {steps_text(ls.anneal_step)})",
                status=REPRODUCED if order_ok else PARTLY if order_some else NOT_REPRODUCED, **common),
        Verdict(key="theory-p-only-error", claim="L-S has a lower P-only test error than S",
                paper="O(pκ log 1/ε₁) against Ω(p)",
                ours=f"L-S {pm(ls.p_error, ls.p_error_std)}, S {pm(s.p_error, s.p_error_std)}",
                test=compare(ls, s, "L-S", "S") + f" at train loss ε₂ = {number(main.config['pq_stop_loss'])}, over "
                     f"{n} seeds; called beyond {PAIRED_SE}{ref_text}{searched}",
                status=REPRODUCED if word == "lower" else NOT_REPRODUCED if word == "higher" else INCONCLUSIVE,
                **common),
        Verdict(key="theory-gap-grows-as-p0-shrinks", claim="The P-only error gap grows as p₀ shrinks",
                paper="S's Ω(p) bound",
                ours=f"S − L-S {signed(gaps[p0s[0]])} at p₀ = {number(p0s[0])}, {signed(gaps[p0s[-1]])} at "
                     f"p₀ = {number(p0s[-1])}",
                test="S's P-only error minus L-S's is positive at the smallest p₀ of the sweep and larger there than "
                     "at the largest",
                status=REPRODUCED if gaps[p0s[0]] > 0 and gaps[p0s[0]] > gaps[p0s[-1]] else NOT_REPRODUCED,
                **{**common, "regime": theorem_regime(main.sweep_regimes, "The runs at every p₀ of the sweep")}),
        Verdict(key="theory-noise-like-large-lr", claim="S + pre-activation noise behaves like L-S",
                paper="Section 5 (mitigation)",
                ours=f"P-only error {pm(noisy.p_error, noisy.p_error_std)}",
                test=f"S + noise's P-only error nearer L-S's ({number(ls.p_error)}) than S's ({number(s.p_error)}); "
                     f"it fit its Q-only training examples at steps {steps_text(noisy.fit_step_Q)}",
                status=REPRODUCED if abs(noisy.p_error - ls.p_error) < abs(noisy.p_error - s.p_error)
                else NOT_REPRODUCED, **common),
    ]


@dataclasses.dataclass(frozen=True)
class Answer:
    """A reviewer's question answered by an ablation: the answer (or "inconclusive at this scale" where the
    runs did not reach the regime it needs), what was measured, and the regime."""

    question: str
    answer: str
    measured: str
    regime: Regime

    @property
    def shown(self) -> str:
        return self.regime.verdict(self.answer)


def ablation_answers(result: LearningOrderResult) -> list[Answer]:
    abl = result.ablations
    if abl is None:
        return []
    out = []
    noise = {r.variant: r for r in abl.group("noise")}
    base = noise["none (S)"]
    names = {"pre-activation": "S + pre-activation noise", "post-activation": "S + post-activation noise",
             "on the iterates": "S + noise on the iterates"}
    placements = [v for v in names if v in noise]
    lower = sum(direction(noise[v], base) == "lower" for v in placements)
    out.append(Answer("Where must the noise go? (reviewer 1)",
                      f"{lower} of {len(placements)} placements lower S's P-only error",
                      "; ".join(compare(noise[v], base, names[v], "S without noise") for v in placements),
                      ablation_regime([base] + [noise[v] for v in placements], ["both"] * (1 + len(placements)),
                                      "S with and without noise")))
    ls_paper = next(r for r in abl.group("loss") if r.name == "L-S")
    quiet, loud = noise["L-S without update noise"], noise["L-S with 10x update noise"]
    out.append(Answer("Does L-S need its update noise?",
                      f"L-S's P-only error without it is {relation(quiet, ls_paper)} that with it",
                      compare(quiet, ls_paper, "L-S without noise", "L-S with the paper's noise") + "; "
                      + compare(loud, ls_paper, "L-S with 10× noise", "L-S with the paper's noise"),
                      ablation_regime([ls_paper, quiet, loud], ["both"] * 3, "L-S with other update noise")))
    for v, pair in abl.pairs("loss").items():
        out.append(Answer(f"The loss and the L2 term (reviewer 2): {v}",
                          f"L-S's P-only error is {relation(pair['L-S'], pair['S'])} S's",
                          compare(pair["L-S"], pair["S"], "L-S", "S"),
                          ablation_regime([pair["L-S"], pair["S"]], [v, v], v)))
    for v, pair in abl.pairs("single").items():
        if v.startswith("Q only"):
            answer = f"Q-only test error L-S {number(pair['L-S'].q_error)}, S {number(pair['S'].q_error)}"
            measured = (f"Q-only test error of L-S {pm(pair['L-S'].q_error, pair['L-S'].q_error_std)}, of S "
                        f"{pm(pair['S'].q_error, pair['S'].q_error_std)}")
        else:
            answer = f"L-S's P-only error is {relation(pair['L-S'], pair['S'])} S's"
            measured = compare(pair["L-S"], pair["S"], "L-S", "S")
        out.append(Answer(f"One kind of pattern only (reviewer 2): {v}", answer, measured,
                          ablation_regime([pair["L-S"], pair["S"]], [v, v], v)))
    adam = {r.name: r for r in abl.group("adam")}
    out.append(Answer("Adam instead of gradient descent (reviewer 1)",
                      f"large-then-small Adam's P-only error is {relation(adam['L-S'], adam['S'])} small Adam's",
                      compare(adam["L-S"], adam["S"], "large-then-small Adam", "small Adam")
                      + f"; Q-only training examples fit at steps {steps_text(adam['L-S'].fit_step_Q)} (large first) "
                        f"and {steps_text(adam['S'].fit_step_Q)} (small)",
                      ablation_regime([adam["L-S"], adam["S"]], ["both"] * 2, "Adam")))
    return out


# ------------------------------------------------------------------------------------------------ CIFAR-10


def _combined(outcomes: list[float | bool | None]) -> str:
    """One status from the variants a claim was measured on (1 or True: holds, 0.5: holds in part, 0 or False:
    fails, None: undecided): all hold, some hold at least in part, none, or none decided."""
    decided = [float(o) for o in outcomes if o is not None]
    if not decided:
        return INCONCLUSIVE
    if len(decided) == len(outcomes) and all(o == 1 for o in decided):
        return REPRODUCED
    return PARTLY if any(o > 0 for o in decided) else NOT_REPRODUCED


def beats(a: list[float], b: list[float]) -> bool | None:
    """True when every seed of a is above every seed of b, False when below, None within the seeds' spread."""
    return True if min(a) > max(b) else False if max(a) < min(b) else None


def with_range(values: list[float]) -> str:
    """Mean over seeds, with the lowest and highest seed in brackets when there are several."""
    return number(float(np.mean(values))) + (f" [{number(min(values))}, {number(max(values))}]"
                                             if len(values) > 1 else "")


def when(epoch: int | None) -> str:
    return "never" if epoch is None else f"at epoch {epoch}"


def control_position(control: CifarSet, clean: CifarSet, patch: CifarSet, method: str) -> float:
    """Where the patch-trained run's clean accuracy lies between the few-images and all-images clean runs (0 =
    few, 1 = all)."""
    few, full, patched = control.mean(method), clean.mean(method), patch.mean(method)
    return (patched - few) / (full - few) if full != few else math.nan


def replication_position(method: str) -> float:
    few, full = REPLICATION_CONTROL[method]
    return (REPLICATION_PATCH_CLEAN[method] - few) / (full - few)


def cifar_verdicts(result: LearningOrderResult) -> list[Verdict]:
    out: list[Verdict] = []
    if result.patch is None or not result.patch:
        return out
    patch_sets = {f"patch sep {result.patch.config['patch_sep']}": result.patch}
    if result.official_patch:
        patch_sets["official patch sep 0.1"] = result.official_patch
    anneal = result.patch.config["anneal_epoch"]
    net = network_label(result.params)
    runs = [r for cs in patch_sets.values() for r in cs.all_runs()]
    r_patch = cifar_regime(f"{net}, patched runs", runs)
    learned = {v: {m: cs.learned_epoch(m, float(PATCH_LEARNED)) for m in cs.methods} for v, cs in patch_sets.items()}

    def before(e: int | None) -> bool:
        return e is not None and e <= anneal

    def epochs_text(method: str) -> str:
        return "; ".join(f"{v}: {when(e[method])}" for v, e in learned.items() if method in e)

    early = [before(e["small_lr"]) and (e["large_lr"] is None or e["small_lr"] < e["large_lr"])
             for e in learned.values()]
    late = [not before(e["large_lr"]) for e in learned.values()]
    noisy = [(v, m) for v, cs in patch_sets.items() for m in ("small_lr_noise", "small_lr_noise_iid") if m in cs.runs]
    common = {"source": f"{SOURCE}, section 6; seed 003", "section": "patch"}
    out += [
        Verdict(key="patch-small-lr-memorises-early", claim="The small LR memorises the patch early",
                paper="within the first epochs", ours=f"50% patch-only accuracy {epochs_text('small_lr')}",
                test=f"seed-averaged patch-only accuracy reaches {PATCH_LEARNED} by the anneal epoch ({anneal}) and "
                     f"before the large LR's ({epochs_text('large_lr')}), on every patch variant",
                status=_combined(early), regime=r_patch, **common),
        Verdict(key="patch-large-lr-ignores-until-anneal", claim="The large LR ignores the patch until it is annealed",
                paper="chance until epoch 30",
                ours="; ".join(f"{v}: {number(float(cs.curve('large_lr', 'patch_only')[anneal - 1]))} at the anneal"
                               for v, cs in patch_sets.items()),
                test=f"the large LR's patch-only accuracy stays below {PATCH_LEARNED} until the anneal epoch "
                     f"({anneal}; chance 0.1), on every patch variant",
                status=_combined(late), regime=r_patch, **common),
        Verdict(key="patch-noise-delays-patch",
                claim="Pre-activation noise keeps the small LR from learning the patch until it is switched off",
                paper="Figure 5", ours="; ".join(f"{v}, {METHOD_LABELS[m]}: {when(learned[v][m])}" for v, m in noisy),
                test=f"patch-only accuracy stays below {PATCH_LEARNED} until the anneal epoch ({anneal}) for every "
                     f"noisy variant",
                status=_combined([not before(learned[v][m]) for v, m in noisy]), regime=r_patch, **common),
    ]
    if result.clean is not None and result.clean:
        clean = result.clean
        r_noise = cifar_regime(f"{net}, patched and clean runs", runs + clean.all_runs())
        noise_sets = {f"patch sep {result.patch.config['patch_sep']}, shared noise": (result.patch, "small_lr_noise")}
        if "small_lr_noise_iid" in result.patch.runs:
            noise_sets[f"patch sep {result.patch.config['patch_sep']}, i.i.d. noise"] = (result.patch,
                                                                                         "small_lr_noise_iid")
        noise_sets["clean"] = (clean, "small_lr_noise")

        def recovers(cs: CifarSet, method: str) -> float | None:
            """1: above the small LR and not below the large LR; 0.5: above the small LR only; 0: below it."""
            up = beats(cs.values(method, "final_clean"), cs.values("small_lr", "final_clean"))
            down = beats(cs.values("large_lr", "final_clean"), cs.values(method, "final_clean"))
            return None if up is None else 0.0 if not up else 0.5 if down is True else 1.0

        n_seeds = len(clean.runs["large_lr"])
        out.append(Verdict(
            key="noise-recovers-clean-accuracy", claim="Small LR + noise recovers the large LR's clean accuracy",
            paper=f"{number(PAPER_CLEAN_TABLE['small_lr_noise'] / 100)} against "
                  f"{number(PAPER_CLEAN_TABLE['large_lr'] / 100)}",
            ours="; ".join(f"{v}: {with_range(cs.values(m, 'final_clean'))}" for v, (cs, m) in noise_sets.items()),
            test=f"above the small LR on every seed and not below the large LR on every seed; above the small LR "
                 f"only: partly ({n_seeds} seeds; small "
                 f"LR {with_range(clean.values('small_lr', 'final_clean'))}, large LR "
                 f"{with_range(clean.values('large_lr', 'final_clean'))} on clean data)",
            status=_combined([recovers(cs, m) for cs, m in noise_sets.values()]), regime=r_noise,
            source=f"{SOURCE}, section 6 table", section="clean"))
        higher_sets = {**patch_sets, "clean": clean}
        out.append(Verdict(
            key="large-lr-higher-clean-accuracy", claim="Clean accuracy ends higher for the large LR than the small LR",
            paper=f"{number(PAPER_CLEAN_TABLE['large_lr'] / 100)} against "
                  f"{number(PAPER_CLEAN_TABLE['small_lr'] / 100)}",
            ours="; ".join(f"{v}: {number(cs.mean('large_lr'))} vs {number(cs.mean('small_lr'))}"
                           for v, cs in higher_sets.items()),
            test="every seed of the large LR above every seed of the small LR, on every variant (replication after "
                 "patch training: 0.876 vs 0.699)",
            status=_combined([beats(cs.values("large_lr", "final_clean"), cs.values("small_lr", "final_clean"))
                              for cs in higher_sets.values()]), regime=r_noise,
            source=f"{SOURCE}, section 6 table; seed 003", section="clean"))
        if result.control is not None and result.control:
            control = result.control
            pos = {m: control_position(control, clean, result.patch, m) for m in ("large_lr", "small_lr")}
            r_control = cifar_regime(f"{net}, clean runs on {control.config['n_train']} and "
                                     f"{clean.config['n_train']} images, patched runs",
                                     control.all_runs() + clean.all_runs() + result.patch.all_runs())
            out.append(Verdict(
                key="control-small-lr-learns-from-few-images",
                claim="After patch training, the small LR's clean accuracy sits nearer its few-images value than the "
                      "large LR's",
                paper=f"position {number(replication_position('small_lr'))} against "
                      f"{number(replication_position('large_lr'))}",
                ours=f"position {number(pos['small_lr'])} against {number(pos['large_lr'])}",
                test=f"position of the patch run's clean accuracy between the {control.config['n_train']}- and "
                     f"{clean.config['n_train']}-image clean runs (0 = few, 1 = all): small LR below large LR",
                status=REPRODUCED if pos["small_lr"] < pos["large_lr"] else NOT_REPRODUCED, regime=r_control,
                source="seed 003 (replication's 10k/50k control)", section="control"))
    return out


def verdicts(result: LearningOrderResult) -> list[Verdict]:
    """The chapter's claims on the sections present in `result`."""
    return theory_verdicts(result) + cifar_verdicts(result)


def regimes(result: LearningOrderResult) -> list[Regime]:
    """Every regime a verdict or an answer passed through, once each, for the details page's table."""
    found: list[Regime] = []
    for r in [v.regime for v in verdicts(result)] + [a.regime for a in ablation_answers(result)]:
        if r is not None and all(r.subject != f.subject for f in found):
            found.append(r)
    return found
