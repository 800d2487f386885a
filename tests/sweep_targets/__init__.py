"""Sweep targets for the executors' failure tests (`python -m repro sweep sweep_targets.dying ...`)."""
