"""Sharp minima (Keskar et al., ICLR 2017): small- vs large-batch Adam, Metric 2.1, and the 1-D interpolation.

Sub-experiments, each stored under the parameters it depends on (one section of the page each):
- `sharp_minima_seed` (one per network F1, C1, C2, C3, C4 and seed; sections "F1" ... "C4", module `nets`): small
  batch (`batch_size`) and large batch (`large_batch_fraction` of the training set) Adam runs from the same
  initialisation; train and test accuracy; Metric 2.1 (full space and a random `subspace_dim`-dimensional
  subspace, at both eps); the top Hessian eigenvalue (Lanczos); for the first seed also the 1-D interpolation
  between its two minimisers and, for F1, the rescaling check (Dinh et al. 2017). `sharp_minima_net` merges a
  network's seeds.
- `sharp_minima_optimizers` (section "optimizers", module `extensions`): the same comparison on F1 with SGD and
  Adagrad (the course report's extension).
- `sharp_minima_hoffer` (one per seed; section "hoffer", module `hoffer`): Hoffer et al.'s distance from
  initialisation against the number of updates, and "more updates alone": F1's large batch trained with Adam for
  as many updates as the small batch, on an MNIST subset.
- `sharp_minima_recipe` (one per seed; section "hoffer", module `hoffer`): Hoffer et al.'s full recipe on the same
  subset: SGD with momentum and their regime for the small batch and the large batch; the large batch with its
  learning rate scaled by sqrt(LB / SB) and ghost batch norm, for the same epochs and for as many updates as the
  small batch (their full recipe).

Every trained network also records what its regime check needs: train accuracy, train loss, the full-batch
gradient norm of f (the loss Metric 2.1 is measured on) at the measured point and at initialisation, and with every
Metric 2.1 value its first-order part and L-BFGS-B iterations.
`verdicts.py` judges a result, `figures.py` draws it.
"""

from __future__ import annotations

from repro.data import load_dataset
from repro.device import get_device
from repro.store import Result, Store
from repro.units import Unit, Work, make_unit, run_unit

from . import figures, verdicts
from .config import (
    BENCH_MODEL,
    CIFAR_FIELDS,
    EXTENSION_FIELDS,
    F1_FIELDS,
    HOFFER_FIELDS,
    NET_FIELDS,
    NETWORKS,
    RECIPE_FIELDS,
    VERSION,
    Params,
    hoffer_sizes,
    large_batch,
    net_sizes,
)
from .extensions import optimizers_experiment
from .hoffer import hoffer_experiment, recipe_experiment
from .nets import merge_seeds, seed_experiment
from .result import Hoffer, NetComparison, Optimizers, SharpMinimaResult

__all__ = ["Params", "SharpMinimaResult", "VERSION", "figures", "large_batch", "run", "units", "verdicts"]

SECTIONS = ("F1", "C1", "C2", "C3", "C4", "optimizers", "hoffer")


def _measure_images(p: Params, examples: int, runs: int, maximisations: int = 5, lanczos: bool = True) -> float:
    """Image passes of the measurements of `runs` trained networks: Metric 2.1 maximisations (L-BFGS-B, about 1.5
    evaluations per iteration) and Lanczos (an HVP is about two passes) on `examples` training examples."""
    return runs * examples * (maximisations * 1.5 * p.sharpness_iters + 2 * p.lanczos_iters * lanczos)


def units(p: Params) -> list[Unit]:
    """One unit per network and seed (both batch regimes with their measurements; the first seed also the
    interpolation), then the optimizers' extension and the train-longer runs on F1."""
    device = get_device(p.device)
    cfg = p.to_dict()

    def unit(name: str, section: str, experiment: str, fields: tuple[str, ...], fn, model: str, images: float,
             dataset: str, **extra) -> Unit:
        return make_unit("sharp_minima", name, experiment, VERSION, {**{k: cfg[k] for k in fields}, **extra}, fn,
                         device, Work(model, images), section=section, datasets=(dataset,))

    found = []
    for net in p.network_list():
        sz = net_sizes(p, net)
        train_images = (sz["epochs"] * (sz["n_train"] // sz["small"] * sz["small"])
                        + sz["large_epochs"] * (sz["n_train"] // sz["large"] * sz["large"]))
        interp = p.interp_points * (2 * sz["interp_examples"] + sz["n_test"]) / 3
        fields = tuple(f for f in NET_FIELDS if f != "seeds") + (F1_FIELDS if net == "F1" else CIFAR_FIELDS)
        for i in range(p.seeds):  # a run does not depend on how many runs there are
            found.append(unit(f"net/{net}/seed{p.seed + i}", net, "sharp_minima_seed", fields,
                              lambda net=net, i=i: seed_experiment(p, net, i, device), BENCH_MODEL[net],
                              train_images + _measure_images(p, sz["sharpness_examples"], 2)
                              + (interp if i == 0 else 0),
                              NETWORKS[net][0], network=net, run=i))
    if "F1" in p.network_list():
        sz = net_sizes(p, "F1")
        per_run = (sz["epochs"] + sz["large_epochs"]) * sz["n_train"] / 2
        if p.extension_seeds:
            found.append(unit("optimizers", "optimizers", "sharp_minima_optimizers", EXTENSION_FIELDS,
                              lambda: optimizers_experiment(p, device), "F1",
                              4 * p.extension_seeds * per_run
                              + _measure_images(p, sz["sharpness_examples"], 4 * p.extension_seeds, 1), "mnist"))
        hs = hoffer_sizes(p)
        measured = _measure_images(p, hs["sharpness_examples"], 3, 1, lanczos=False)
        for i in range(p.seeds):
            found.append(unit(f"hoffer/seed{p.seed + i}", "hoffer", "sharp_minima_hoffer", HOFFER_FIELDS,
                              lambda i=i: hoffer_experiment(p, i, device), "F1",
                              hs["small_steps"] * (hs["small"] + hs["large"]) + measured, "mnist", run=i))
            found.append(unit(f"recipe/seed{p.seed + i}", "hoffer", "sharp_minima_recipe", RECIPE_FIELDS,
                              lambda i=i: recipe_experiment(p, i, device), "F1",
                              hs["small_steps"] * (hs["small"] + hs["large"]) + 2 * hs["large_steps"] * hs["large"]
                              + measured * 4 / 3, "mnist", run=i))
    return found


def run(p: Params, store: Store | None = None, force: bool | None = None,
        sections: set[str] | None = None) -> SharpMinimaResult:
    """Every section's stored results (each network's comparison merged from its seed units; the optimizers'
    extension and the train-longer runs), as one typed result. `sections` (None: all) names the
    sections to compute; the others are None in the result."""
    store = store or Store()
    device = get_device(p.device)
    wanted = set(SECTIONS) if sections is None else set(sections)
    found = [u for u in units(p) if u.section in wanted]
    if store.trains:
        for dataset in dict.fromkeys(d for u in found for d in u.datasets):  # missing data stops before training
            load_dataset(dataset, "test", "cpu")
    cfg = p.to_dict()

    def mine(section: str) -> list[Unit]:
        return [u for u in found if u.section == section]

    def net_part(net: str) -> NetComparison:  # a network's comparison, merged from its seed units
        config = {**{k: cfg[k] for k in NET_FIELDS + (F1_FIELDS if net == "F1" else CIFAR_FIELDS)}, "network": net}
        merged = store.run("sharp_minima_net", VERSION, config,
                           lambda: merge_seeds(p, net, [run_unit(store, u, force).data for u in mine(net)]),
                           device=device, force=force)
        return NetComparison(net, merged)

    def single(section: str) -> Result | None:
        units_ = mine(section)
        return run_unit(store, units_[0], force) if units_ else None

    nets = {net: net_part(net) for net in p.network_list() if mine(net)}
    optimizers = single("optimizers")
    adam = tuple(run_unit(store, u, force) for u in mine("hoffer") if u.experiment == "sharp_minima_hoffer")
    recipe = tuple(run_unit(store, u, force) for u in mine("hoffer") if u.experiment == "sharp_minima_recipe")
    return SharpMinimaResult(config=cfg, **nets,
                             optimizers=Optimizers(optimizers) if optimizers is not None else None,
                             hoffer=Hoffer(adam, recipe) if adam else None)

