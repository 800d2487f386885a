import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

if "REPRO_DATA_DIR" not in os.environ and SHARED_DATA.is_dir():
    os.environ["REPRO_DATA_DIR"] = str(SHARED_DATA)


@pytest.fixture(autouse=True)
def isolated_results(tmp_path, monkeypatch):
    """Every test writes results to its own folder, never to the project's store."""
    monkeypatch.setenv("REPRO_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.delenv("REPRO_FORCE", raising=False)
    return tmp_path / "results"
