"""One fast training loop shared by the chapters: data resident on the device, per-step schedules, callbacks."""

from repro.train.loop import History, Schedule, StepInfo, evaluate, normalize, train

__all__ = ["History", "Schedule", "StepInfo", "evaluate", "normalize", "train"]
