import hashlib
import json
import os

import numpy as np
import pytest
import torch

from repro.data import DataError, load_dataset, read_arrays
from repro.data.vision import data_dir


def _sha(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def make_pack(root, name, split, n, shape, classes=10, parts=1, seed=0):
    """A small pack in the offline format, with its manifest entry."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    y = rng.integers(0, classes, size=n).astype(np.uint8)
    if parts == 1:
        np.savez_compressed(root / f"{name}_{split}.npz", x=x, y=y)
    else:
        for k, (xs, ys) in enumerate(zip(np.array_split(x, parts), np.array_split(y, parts), strict=True)):
            np.savez_compressed(root / f"{name}_{split}_part{k}.npz", x=xs, y=ys)
    manifest_path = root / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest.setdefault(name, {"stats": {}})["stats"][split] = {
        "x_shape": list(x.shape), "y_shape": list(y.shape), "x_sha256": _sha(x), "y_sha256": _sha(y)}
    manifest_path.write_text(json.dumps(manifest))
    return x, y


def test_pack_in_parts_loads_as_nchw_tensors(tmp_path):
    x, y = make_pack(tmp_path, "cifar10", "train", 30, (32, 32, 3), parts=3)
    data = load_dataset("cifar10", "train", root=tmp_path)
    assert data.x.shape == (30, 3, 32, 32) and data.x.dtype == torch.uint8 and data.y.dtype == torch.int64
    assert torch.equal(data.x, torch.from_numpy(x).permute(0, 3, 1, 2))
    assert torch.equal(data.y, torch.from_numpy(y).long())
    assert data.subset(10).x.shape[0] == 10
    with pytest.raises(DataError, match="Asked for 31 examples"):
        data.subset(31)


def test_mnist_and_cifar100_packs(tmp_path):
    make_pack(tmp_path, "mnist", "test", 12, (28, 28))
    make_pack(tmp_path, "cifar100", "test", 12, (32, 32, 3), classes=100)
    assert load_dataset("mnist", "test", root=tmp_path).x.shape == (12, 1, 28, 28)
    c100 = load_dataset("cifar100", "test", root=tmp_path)
    assert c100.num_classes == 100 and c100.x.shape == (12, 3, 32, 32)


def test_checksum_mismatch_is_reported(tmp_path):
    make_pack(tmp_path, "mnist", "train", 8, (28, 28))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["mnist"]["stats"]["train"]["y_sha256"] = "0" * 64
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="does not match manifest.json .*'y'"):
        read_arrays("mnist", "train", tmp_path)


def test_corrupt_pack_is_reported(tmp_path):
    make_pack(tmp_path, "mnist", "train", 8, (28, 28))
    path = tmp_path / "mnist_train.npz"
    path.write_bytes(path.read_bytes()[:100])  # truncated, as by an interrupted copy
    with pytest.raises(DataError, match="unreadable or corrupt"):
        read_arrays("mnist", "train", tmp_path)


def test_missing_part_is_reported(tmp_path):
    make_pack(tmp_path, "cifar10", "test", 9, (32, 32, 3), parts=3)
    os.remove(tmp_path / "cifar10_test_part1.npz")
    with pytest.raises(DataError, match=r"parts \[0, 2\]"):
        read_arrays("cifar10", "test", tmp_path)


def test_wrong_shape_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_ALLOW_UNVERIFIED", "1")
    np.savez_compressed(tmp_path / "mnist_test.npz", x=np.zeros((4, 32, 32), np.uint8), y=np.zeros(4, np.uint8))
    with pytest.raises(DataError, match=r"expected uint8 images of shape \(N, 28, 28\)"):
        read_arrays("mnist", "test", tmp_path)


def test_missing_data_names_both_ways_to_supply_it(tmp_path, monkeypatch):
    monkeypatch.delenv("REPRO_DOWNLOAD", raising=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as err:
        read_arrays("cifar10", "train", tmp_path / "empty")
    message = str(err.value)
    assert "offline packs" in message and "REPRO_DATA_DIR" in message and "REPRO_DOWNLOAD=1" in message
    with pytest.raises(DataError, match="Unknown dataset 'svhn'"):
        read_arrays("svhn", "train", tmp_path)


@pytest.mark.skipif(not (data_dir() / "manifest.json").exists(), reason="no offline packs in REPRO_DATA_DIR")
def test_real_mnist_pack_verifies_against_its_manifest():
    x, y = read_arrays("mnist", "test")  # raises if the checksums do not match
    assert x.shape == (10000, 28, 28) and list(y[:5]) == [7, 2, 1, 0, 4]
    assert abs(x.mean() / 255 - 0.132515) < 1e-4


def test_torchvision_files_are_read_when_there_is_no_pack(tmp_path):
    """torchvision's own MNIST layout (raw IDX files), read without any download."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    x = np.arange(5 * 28 * 28, dtype=np.uint32).reshape(5, 28, 28).astype(np.uint8)
    y = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    header = lambda magic, *dims: np.array([magic, *dims], dtype=">i4").tobytes()  # noqa: E731
    for prefix in ("train", "t10k"):  # torchvision wants all four files present
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(header(2051, 5, 28, 28) + x.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(header(2049, 5) + y.tobytes())
    xs, ys = read_arrays("mnist", "test", tmp_path, download=False)
    assert np.array_equal(xs, x) and ys.tolist() == [3, 1, 4, 1, 5]
