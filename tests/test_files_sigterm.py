"""Issue 26: SIGTERM ends a `minicnn` command cleanly: exit 143, the run lock released, no temporary
file left, and the next run into the folder finds no stale lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 120  # until the first epoch line (a busy shared machine)


def _tiny_dataset(path: Path) -> Path:
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.integers(0, 256, (128, 28, 28), np.uint8), y_train=rng.integers(0, 10, 128),
             x_test=rng.integers(0, 256, (32, 28, 28), np.uint8), y_test=np.arange(32) % 10)
    return path


def _train(tmp_path: Path, *options: str) -> subprocess.Popen:
    env = {**os.environ, "MINICNN_CACHE_DIR": str(tmp_path / "cache"), "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "minicnn", "--no-tune", "train", "--dataset",
                             str(tmp_path / "d.npz"), "--out", str(tmp_path / "run"), "--no-progress", *options],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)


def test_sigterm_mid_run_releases_the_lock_and_leaves_whole_files(tmp_path):
    """Before: SIGTERM killed the process on the spot (exit -15): run.lock stayed behind and the next run
    reported it as the stale lock of a dead process."""
    _tiny_dataset(tmp_path / "d.npz")
    proc = _train(tmp_path, "--epochs", "10000", "--batch-size", "16")
    deadline = time.monotonic() + START_TIMEOUT_S
    lines = []
    while time.monotonic() < deadline:  # wait until an epoch has ended: the run is under way
        line = proc.stdout.readline()
        lines.append(line)
        if not line or line.startswith("2/"):  # the table's row of epoch 2
            break
    assert (tmp_path / "run" / "run.lock").exists(), lines
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, (lines, out, err)
    assert "terminated (SIGTERM)" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "run.lock").exists()
    assert not list((tmp_path / "run").glob("*.tmp"))
    again = _train(tmp_path, "--epochs", "1", "--overwrite")
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, (out, err)
    assert "no longer running" not in out + err and "locked" not in out + err
