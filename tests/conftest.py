"""Shared test fixtures.

The plan cache of the kernels' planner is a temporary folder for the whole session (MINICNN_CACHE_DIR).

Real-data tests read the dataset folder named by MINICNN_DATA (`.ci/run` points it at
shared/datasets). Elsewhere they skip, saying why, only when that folder is absent.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# One BLAS thread unless the environment says otherwise (set before NumPy loads): two spinning
# OpenBLAS threads stall the in-process tutorial and training tests 10x on a busy machine.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# The kernels' plan files go to a fresh folder for the whole run (and the commands it starts), never the
# user's cache: set in the environment itself, not by monkeypatch, because the planner saves at exit.
os.environ["MINICNN_CACHE_DIR"] = tempfile.mkdtemp(prefix="minicnn-test-plans-")

import numpy as np  # noqa: E402
import pytest

from minicnn import core


@pytest.fixture(autouse=True)
def _seed_engine():
    """Every test starts from the same engine RNG state."""
    core.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def _a_quiet_machine(monkeypatch):
    """The planner stores no plan measured while other programs used the CPU (`planner.other_cpu_seconds`);
    a test of plan files must not depend on what else the test machine runs, so here the reading is
    unknown (None: never busy). tests/test_planner.py tests the rule itself, with its own readings."""
    from minicnn.kernels import planner

    monkeypatch.setattr(planner, "other_cpu_seconds", lambda *args, **kwargs: None)
    yield


@pytest.fixture
def data_dir() -> Path:
    value = os.environ.get("MINICNN_DATA")
    if not value:
        pytest.skip("real-data test: set MINICNN_DATA to the dataset folder (CI sets it to shared/datasets)")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"real-data test: MINICNN_DATA={value} is not a folder")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
