"""Datasets: real vision data from offline packs or torchvision, and the chapters' synthetic distributions."""

from repro.data.vision import DATASETS, DataError, VisionData, data_dir, load_dataset, read_arrays

__all__ = ["DATASETS", "DataError", "VisionData", "data_dir", "load_dataset", "read_arrays"]
