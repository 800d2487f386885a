"""The intrinsic learning rate (Li, Lyu, Arora, NeurIPS 2020): scale invariance, weight decay and equilibrium.

For a scale-invariant weight w (a layer followed by normalization) trained by SGD with learning rate lr and
weight decay wd, the norm, the per-step angular update and the effective learning rate lr / |w|^2 settle to an
equilibrium that depends on lambda_e = lr * wd alone, in about 1 / lambda_e steps (references, section 4).

One unit per section of the page, each its own stored result:
- `toy` (toy.py): a scale-invariant toy model (online normalized linear regression), vectorized over many runs,
  where the relations can be read off exactly and swept widely;
- `drop` (drop.py), `schedules` (schedules.py), `sweep` (sweep.py), `momentum_batch` (momentum_batch.py): a real
  normalized network (a BN MLP or convnet on MNIST at book scale, PreResNet-32 on CIFAR-10 at paper scale) with
  plain SGD and weight decay, every scale-invariant layer tracked: the LR drop, Figure 5's histories and the decay
  schedules, the lambda_e sweep, and momentum, batch size and LayerNorm.

`verdicts.py` judges them (with the regime each claim needs), `figures.py` draws them.
"""

from __future__ import annotations

from collections.abc import Callable

from repro.device import get_device, num_threads
from repro.store import Store
from repro.units import Unit, Work, make_unit, run_unit

from . import figures, verdicts
from .chapter import IntrinsicLRResult
from .drop import DropResult, net_drop
from .momentum_batch import MomentumBatchResult, net_momentum_batch
from .net import NetSetup, build_model, decay_schedule, load_setup, train_run
from .params import DECAY_SHAPES, Params, part_images
from .schedules import SchedulesResult, net_schedules
from .sweep import SweepResult, net_sweep
from .toy import ToyResult, norm_recursion, toy, toy_sgd

__all__ = ["DECAY_SHAPES", "VERSIONS", "IntrinsicLRResult", "Params", "build_model", "decay_schedule", "figures",
           "norm_recursion", "run", "toy_sgd", "train_run", "units", "verdicts"]

# Of each unit's stored result. The network sections are at 3: the tracker records the radial part of the
# gradient, the sweep measures settling in units of 1 / lambda_e, and each comparison's reference run is repeated
# at more seeds.
VERSIONS = {"toy": 2, "drop": 3, "schedules": 3, "sweep": 3, "momentum_batch": 3}
TOY_FIELDS = ("seed", "toy_dim", "toy_batch", "toy_replicas", "toy_sweep_size", "toy_min_intrinsic_lr",
              "toy_max_intrinsic_lr", "toy_relaxation_times", "toy_intrinsic_lr", "equilibrium_tol", "lr_drop",
              "momentum")
# each network section: its compute and its typed view
NET_PARTS: dict[str, tuple[Callable[[Params, NetSetup], dict], type]] = {
    "drop": (net_drop, DropResult), "schedules": (net_schedules, SchedulesResult),
    "sweep": (net_sweep, SweepResult), "momentum_batch": (net_momentum_batch, MomentumBatchResult)}
SECTIONS = ("toy", *NET_PARTS)


def _threads(p: Params) -> int | None:
    """The small MLP runs faster, and gives the same numbers whether alone or in run(), on one CPU thread."""
    return 1 if get_device().type == "cpu" and p.model == "bn_mlp" else None


def units(p: Params) -> list[Unit]:
    """The toy model (CPU), then one unit per network section (the LR drop; Figure 5's schedules with the step,
    cosine and warmup + linear decay runs; the lambda_e sweep; momentum, batch size and LayerNorm); the network
    sections of one process share one loaded data set."""
    device = get_device()
    config = p.to_dict()
    net_config = {k: v for k, v in config.items() if not k.startswith("toy_")}

    def toy_unit() -> dict:
        with num_threads(_threads(p)):
            return {"metrics": {}, "data": toy(p)}

    found = [make_unit("intrinsic_lr", "toy", "intrinsic_lr_toy", VERSIONS["toy"], {k: config[k] for k in TOY_FIELDS},
                       toy_unit, "cpu")]
    setup: list[NetSetup] = []  # loaded once for every section run in this process

    def part(fn: Callable[[Params, NetSetup], dict]) -> dict:
        setup[:] = setup or [load_setup(p, device)]
        with num_threads(_threads(p)):
            return {"metrics": {}, "data": fn(p, setup[0])}

    model = "PreResNet-32" if p.model == "preresnet32" else None
    for name, (fn, _) in NET_PARTS.items():
        found.append(make_unit("intrinsic_lr", name, f"intrinsic_lr_{name}", VERSIONS[name], net_config,
                               lambda fn=fn: part(fn), device, Work(model, part_images(p, name)),
                               datasets=(p.dataset,)))
    return found


def run(p: Params, store: Store | None = None, force: bool | None = None,
        sections: set[str] | None = None) -> IntrinsicLRResult:
    """Everything the chapter shows (or only `sections`, the others None): each section is a unit, its own stored
    result, loaded or computed through the store."""
    store = store or Store()
    wanted = set(SECTIONS) if sections is None else set(sections)
    unknown = wanted - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown sections {sorted(unknown)}; the chapter's sections are {', '.join(SECTIONS)}")
    views = {"toy": ToyResult, **{name: view for name, (_, view) in NET_PARTS.items()}}
    parts = {}
    with num_threads(_threads(p)):
        for u in units(p):
            if u.section in wanted:
                parts[u.section] = views[u.section](run_unit(store, u, force))
    return IntrinsicLRResult(p, **parts)
