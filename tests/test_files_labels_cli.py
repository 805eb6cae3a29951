"""Issue 26 follow-ups: float labels checked before the cast, `minicnn` alone is a usage error."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

from minicnn import cli
from minicnn.data import readers


def _dataset(path, y_train):
    np.savez(path, x_train=np.zeros((3, 1, 8, 8), np.uint8), y_train=y_train,
             x_test=np.zeros((2, 1, 8, 8), np.uint8), y_test=np.array([0, 1]))
    return path


@pytest.mark.parametrize("labels, match", [
    (np.array([0.0, 1.0, 1e30]), r"y_train: labels up to 1,000,000,000,000,000,019,884,624,838,656 would make"),
    (np.array([0.0, 1.0, np.nan]), r"y_train: expected finite integer class labels, got nan \(1 of 3"),
    (np.array([0.0, np.inf, 1.0]), r"y_train: expected finite integer class labels, got inf \(1 of 3"),
    (np.array([0.0, 1.5, 1.0]), r"y_train: expected integer class labels, got 1.5 \(1 of 3"),
    (np.array([0, 1, 2**63 + 5], np.uint64), r"y_train: labels up to 9,223,372,036,854,775,813 would make"),
    (np.array([0.0, -1.0, 1.0]), r"y_train: labels must be >= 0, got minimum -1.0"),
])
def test_labels_are_checked_on_their_values_before_the_cast(tmp_path, labels, match):
    """Before: 1e30 and inf were cast to int64 first (a RuntimeWarning, then a wrapped-round number), NaN
    was reported as a wrong dtype, and uint64 beyond int64 wrapped to a negative label."""
    path = _dataset(tmp_path / "d.npz", labels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from a cast on the way
        with pytest.raises(readers.DataFormatError, match=match):
            readers.read_dataset_npz(path)


def test_whole_float_labels_are_still_accepted(tmp_path):
    data = readers.read_dataset_npz(_dataset(tmp_path / "d.npz", np.array([0.0, 1.0, 1.0])))
    assert data["y_train"].dtype == np.int64 and data["y_train"].tolist() == [0, 1, 1]


def test_minicnn_without_a_command_is_a_usage_error(capsys):
    """Before: `minicnn` alone printed the help and exited 0, as if something had been done."""
    assert cli.main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("usage: minicnn") and "COMMAND" in captured.err
    assert "minicnn --help" in captured.err
    assert all(len(line) <= 80 for line in captured.err.splitlines())


def test_minicnn_help_documents_the_usage_exit_code():
    proc = subprocess.run([sys.executable, "-m", "minicnn", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert "no command" in proc.stdout


@pytest.mark.parametrize("argv", [
    ["lr-find", "--seed", "99999999999999999999"], ["lr-find", "--batch-size", "99999999999999999999"],
    ["lr-find", "--end-lr", "1e30"], ["lr-find", "--start-lr", "1e30"], ["lr-find", "--weight-decay", "1e30"],
    ["demo", "--seed", "99999999999999999999"],
])
def test_out_of_range_numbers_are_refused_before_anything_runs(argv, capsys):
    """Before (the hostile probes): each was accepted and the sweep or the demo ran (exit 0)."""
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert argv[1] in err and "Traceback" not in err
