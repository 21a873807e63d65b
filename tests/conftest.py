"""Shared fixtures: the real sample archives (read in place) and builders of
corrupted or re-laid-out copies made from them inside each test's tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "ptbxl" / "ptbxl_database.csv").exists():
        pytest.fail(f"the sample archives are expected at {SHARED_DATA} (see README)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ptbxl_root(shared_data: Path) -> Path:
    return shared_data / "ptbxl"


@pytest.fixture(scope="session")
def cinc_root(shared_data: Path) -> Path:
    return shared_data / "cinc2021"


@pytest.fixture(scope="session")
def wfdb_samples_root(shared_data: Path) -> Path:
    return shared_data / "wfdb-samples"
