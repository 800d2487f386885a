"""The capstone's grid point (noise_scale.point) with one more parameter, `die`: a point with die=1 ends its worker
process (os._exit) before it runs, as an out-of-memory kill or a crash in native code would; the other points are
the grid's own."""

import dataclasses
import os

from repro import params as P
from repro.experiments.noise_scale import point as NP


@dataclasses.dataclass(frozen=True)
class Params(NP.Params):
    die: int = P.param(0, "1: the worker process exits with code 3 instead of running the point", ge=0, le=1)

    def point(self) -> NP.Params:
        return NP.Params(**{k: v for k, v in self.to_dict().items() if k != "die"})


def run(params: Params, store=None, force=None):
    if params.die:
        os._exit(3)
    return NP.run(params.point(), store=store, force=force)
