"""Units for the campaign's tests, built by name in the test process and in the campaign's worker processes
(`units` is the campaign's unit source): each one does what its name says."""

import os
import time

from repro.checkpoint import Checkpoint
from repro.data.vision import DataError
from repro.units import Unit, Work, make_unit

CHAPTERS = {
    "slow": ["slow/a", "slow/b"],  # each checkpoints, then sleeps CAMPAIGN_TEST_SLEEP seconds
    "mixed": ["boom", "crash", "nodata", "cifar100", "good/a", "good/b"],
    "plan": ["f1/big", "f1/small", "wrn", "toy"],  # for the estimates: work on bench networks, and none
}
WORK = {"f1/big": Work("F1", 1.2e6), "f1/small": Work("F1", 1.2e5), "wrn": Work("WRN-16-10", 6e4)}


def _fn(name: str):
    def fn():
        ckpt = Checkpoint("fake", "run", every=1)  # in REPRO_CHECKPOINT_DIR, the campaign's folder for the unit
        resumed = ckpt.load() is not None
        if name.startswith("slow/"):
            ckpt.save({"step": 1})
            time.sleep(float(os.environ.get("CAMPAIGN_TEST_SLEEP", "0")))
        elif name == "boom":
            raise ValueError("boom")
        elif name == "crash":
            os._exit(5)  # as a crash in native code, or the kernel's out-of-memory kill, ends a process
        elif name == "nodata":
            raise DataError("No cifar100 train data in /nowhere.")
        return {"metrics": {"resumed": resumed}, "data": {}}
    return fn


def units(chapter: str, preset: str) -> list[Unit]:
    out = []
    for name in CHAPTERS[chapter]:
        out.append(make_unit(chapter, name, f"fake_{chapter}", 1, {"name": name, "preset": preset}, _fn(name),
                             work=WORK.get(name, Work()), datasets=("cifar100",) if name == "cifar100" else ()))
    return out
