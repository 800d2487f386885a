"""The catapult phase (Lewkowycz et al. 2020), its logistic-loss, deep-linear follow-up (Huang et al.) and the edge of
stability (Cohen et al. 2021).

Four sections, each stored on its own, each a sub-module:
- `uv`: the uv model's exact dynamics for the squared and the logistic loss (one unit).
- `nets`: full-batch gradient descent with the squared loss on real images, two ReLU MLPs and a CNN in NTK
  parameterisation (one unit per network).
- `eos`: the edge of stability, fc-tanh on a CIFAR-10 subset (one unit per learning rate).
- `linear`: deep linear networks with the logistic loss on three kinds of data (one unit per kind).
The verdicts (`verdicts.py`) and figures (`figures.py`) read the typed sections of a `CatapultResult`.

Normalisation (metrics/hessian.py): lambda0 is the top eigenvalue of the empirical NTK J J^T / m, with the
squared loss L = (1/2m) sum_i |f(x_i) - y_i|^2, so gradient descent's linear stability edge is eta lambda0 = 2.
Learning rates are given as eta * lambda0 throughout.
"""

from __future__ import annotations

import dataclasses

from repro.device import num_threads
from repro.store import Result, Store
from repro.units import Unit, Work, make_unit, run_unit

from . import eos, figures, linear, nets, uv, verdicts
from .eos import EosSection
from .linear import DATA_KINDS, LinearSection
from .nets import NETS, NetsSection
from .params import Params, resolve_device
from .result import SECTIONS, CatapultResult
from .uv import UvSection

__all__ = ["Params", "CatapultResult", "VERSION", "NETS_VERSION", "EOS_VERSION", "units", "run", "uv", "nets",
           "eos", "linear", "verdicts", "figures"]

# A unit's work in image passes through the bench network F1 (Keskar et al.'s MLP, repro.bench): its own FLOPs over
# F1's per image (as nets.flops_per_image counts them). Full-batch gradient descent on a few thousand images keeps a
# GPU busier than F1's minibatches, so the estimate errs long.
F1_FLOPS_PER_IMAGE = 6.0 * (784 * 512 + 4 * 512 * 512 + 512 * 10) - 2.0 * 784 * 512
VERSION = 1  # the uv model and the deep linear nets
NETS_VERSION = 2  # 2: centred outputs, a dense rate grid across the edges
EOS_VERSION = 2  # 2: 2/eta 1.5-2x the initial sharpness, equal physical time, a small-eta control, the Lanczos error

# The parameters each section's store key depends on, so that changing a network parameter does not recompute the
# uv model.
UV_FIELDS = ("seed", "uv_width", "uv_width_max", "uv_grid", "uv_steps", "uv_seeds")
LINEAR_FIELDS = ("seed", "device", "sweep_size", "lanczos_iters", *(f.name for f in dataclasses.fields(Params)
                                                                      if f.name.startswith("dl_")))
EOS_FIELDS = ("seed", "device", "lanczos_iters", *(f.name for f in dataclasses.fields(Params)
                                                 if f.name.startswith("eos_")))
NET_FIELDS = tuple(f.name for f in dataclasses.fields(Params)
                   if f.name not in UV_FIELDS[1:] and not f.name.startswith(("dl_", "eos_")))


def units(p: Params) -> list[Unit]:
    """The uv model (on the CPU, one thread), then one unit per network's learning-rate sweep, one per
    edge-of-stability learning rate and its control, and one per data kind of the deep linear nets. The networks'
    and edge-of-stability units carry their FLOPs in F1 image passes; the uv model and the deep linear nets are
    tiny and have no estimate."""
    cfg = p.to_dict()
    device = resolve_device(p)

    def uv_single_thread() -> dict:
        with num_threads(1):
            return uv.uv_experiment(p)

    found = [make_unit("catapult", "uv", "catapult_uv", VERSION, {k: cfg[k] for k in UV_FIELDS}, uv_single_thread,
                       "cpu")]
    shape = nets.IMAGE_SHAPE[p.dataset]
    found += [make_unit("catapult", f"nets/{kind}", "catapult_net", NETS_VERSION,
                        {**{k: cfg[k] for k in NET_FIELDS}, "network": kind},
                        lambda kind=kind: nets.net_unit(kind, p), device,
                        Work("F1", nets.sweep_flops(kind, p, shape) / F1_FLOPS_PER_IMAGE), datasets=(p.dataset,))
              for kind in NETS]
    factors = {**dict(enumerate(eos.eos_edges(p, 1.0))), eos.CONTROL: p.eos_control}
    found += [make_unit("catapult", f"eos/{i}", "catapult_eos_run", EOS_VERSION,
                        {**{k: cfg[k] for k in EOS_FIELDS}, "index": i}, lambda i=i: eos.eos_unit(i, p), device,
                        Work("F1", eos.run_flops(p, f) / F1_FLOPS_PER_IMAGE), datasets=("cifar10",))
              for i, f in factors.items()]
    found += [make_unit("catapult", f"linear/{kind}", "catapult_linear_kind", VERSION,
                        {**{k: cfg[k] for k in LINEAR_FIELDS}, "data_kind": kind},
                        lambda kind=kind: linear.linear_unit(kind, p), device) for kind in DATA_KINDS]
    return found


def run(p: Params, store: Store | None = None, force: bool | None = None,
        sections: set[str] | None = None) -> CatapultResult:
    """The sections asked for (all when `sections` is None), each merged from its units through the store."""
    store = store or Store()
    cfg = p.to_dict()
    device = resolve_device(p)
    found = units(p)
    wanted = set(SECTIONS) if sections is None else set(sections)

    def merged(name: str, section: str, fields: tuple[str, ...], merge, version: int) -> Result:
        mine = [u for u in found if u.section == section]
        return store.run(name, version, {k: cfg[k] for k in fields},
                         lambda: merge({u.name.removeprefix(f"{section}/"): run_unit(store, u, force) for u in mine}),
                         device=device, force=force)

    return CatapultResult(
        uv=UvSection(run_unit(store, found[0], force)) if "uv" in wanted else None,
        nets=(NetsSection(merged("catapult_nets", "nets", NET_FIELDS, nets.nets_experiment, NETS_VERSION))
              if "nets" in wanted else None),
        eos=(EosSection(merged("catapult_eos", "eos", EOS_FIELDS, eos.eos_experiment, EOS_VERSION))
             if "eos" in wanted else None),
        linear=(LinearSection(merged("catapult_linear", "linear", LINEAR_FIELDS, linear.linear_experiment, VERSION))
                if "linear" in wanted else None))
