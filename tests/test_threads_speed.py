"""One place checks a thread count (minicnn.runtime.parse_threads), read at each call by minicnn.threads: used
by --threads, the im2col/FFT loops and BLAS. (Settings made after import: tests/test_runtime.py.)"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from minicnn.runtime import THREAD_VARIABLES, parse_threads
from minicnn.threads import configured_threads, configured_workers, own_threads

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("value,want", [("1", 1), ("2", 2), (" 3 ", 3), (4, 4)])
def test_parse_threads_accepts_whole_numbers_from_one(value, want):
    assert parse_threads(value, "--threads") == want


@pytest.mark.parametrize("value", ["0", "-1", "abc", "", "1.5", "²", 0, -2, True, 2.0, None])
def test_parse_threads_refuses_everything_else_naming_the_source(value):
    with pytest.raises(ValueError, match=r"OPENBLAS_NUM_THREADS: expected a whole number of threads >= 1, got"):
        parse_threads(value, "OPENBLAS_NUM_THREADS")


def test_configured_threads_reads_the_variables_in_order_and_checks_them():
    assert configured_threads({}) == (os.cpu_count() or 1)
    assert configured_threads({"OMP_NUM_THREADS": "3"}) == 3
    assert configured_threads({"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "3"}) == 2
    assert configured_threads({"OPENBLAS_NUM_THREADS": " ", "OMP_NUM_THREADS": "3"}) == 3  # blank = unset
    with pytest.raises(ValueError, match="OMP_NUM_THREADS.*'-1'"):
        configured_threads({"OMP_NUM_THREADS": "-1"})


def _run(args, **env_overrides):
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env.update(PYTHONPATH=str(ROOT), **env_overrides)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=ROOT, check=False)


@pytest.mark.parametrize("value", ["0", "-1", "abc"])
def test_cli_refuses_a_bad_threads_option_in_one_line(value):
    done = _run(["-m", "minicnn", f"--threads={value}", "summary", "lenet5"])
    assert done.returncode == 2
    assert done.stderr.strip() == f"minicnn: --threads: expected a whole number of threads >= 1, got '{value}'"
    assert done.stdout == ""


@pytest.mark.parametrize("value", ["-1", "abc"])
def test_cli_with_a_bad_thread_variable_shows_help_but_refuses_to_run(value):
    helped = _run(["-m", "minicnn", "--help"], OPENBLAS_NUM_THREADS=value)
    assert helped.returncode == 0 and "usage: minicnn" in helped.stdout and helped.stderr == ""
    done = _run(["-m", "minicnn", "summary", "lenet5"], OPENBLAS_NUM_THREADS=value)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert " ".join(done.stderr.split()) == (  # one message, wrapped to 80 columns
        f"minicnn: OPENBLAS_NUM_THREADS: expected a whole number of threads >= 1, got '{value}' (or pass --threads N)")
    assert all(len(line) <= 80 for line in done.stderr.splitlines())
    fixed = _run(["-m", "minicnn", "--threads", "1", "summary", "lenet5", "--input", "1,28,28"],
                 OPENBLAS_NUM_THREADS=value)  # an explicit --threads overrides the bad variable
    assert fixed.returncode == 0, fixed.stderr


def test_workers_come_from_minicnn_workers_checked():
    assert configured_workers({}) == 1
    assert configured_workers({"MINICNN_WORKERS": "2"}) == 2
    assert own_threads({"MINICNN_WORKERS": "2", "OPENBLAS_NUM_THREADS": "1"}) == 2
    assert own_threads({"MINICNN_WORKERS": "1", "OPENBLAS_NUM_THREADS": "3"}) == 3
    with pytest.raises(ValueError, match="MINICNN_WORKERS: expected a whole number of threads >= 1, got '0'"):
        configured_workers({"MINICNN_WORKERS": "0"})


def test_cli_refuses_a_bad_minicnn_workers_variable():
    done = _run(["-m", "minicnn", "summary", "lenet5"], MINICNN_WORKERS="-2")
    assert done.returncode == 2 and "MINICNN_WORKERS: expected a whole number of threads >= 1" in done.stderr


def test_split_large_splits_only_large_arrays_over_the_workers(monkeypatch):
    """Passes over arrays under SPLIT_MIN_VALUES values stay whole (the hand-offs would cost more);
    larger ones go to MINICNN_WORKERS parts that cover the batch once, in order."""
    from minicnn import threads

    monkeypatch.setenv("MINICNN_WORKERS", "3")
    spans = []
    assert threads.split_large(lambda lo, hi: spans.append((lo, hi)) or hi - lo, 7,
                               threads.SPLIT_MIN_VALUES - 1) == [7]
    assert spans == [(0, 7)]
    spans.clear()
    assert threads.split_large(lambda lo, hi: spans.append((lo, hi)) or hi - lo, 7,
                               threads.SPLIT_MIN_VALUES) == [2, 2, 3]
    assert sorted(spans) == [(0, 2), (2, 4), (4, 7)]
    monkeypatch.setenv("MINICNN_WORKERS", "1")
    assert threads.split_large(lambda lo, hi: hi - lo, 7, 10**9) == [7]


def test_split_blocks_covers_the_batch_once_in_cache_sized_blocks(monkeypatch):
    """Blocks of whole images of about block_values values, in order within each part, every image once."""
    from minicnn import threads

    monkeypatch.setenv("MINICNN_WORKERS", "2")
    want = {1: [(0, 3), (3, 6), (6, 9), (9, 10)], 2: [(0, 3), (3, 5), (5, 8), (8, 10)]}  # parts [0, 5), [5, 10)
    for parts, blocks_wanted in want.items():
        blocks = []
        threads.split_blocks(lambda lo, hi, seen=blocks: seen.append((lo, hi)), 10, 30, 100, parts)
        assert sorted(blocks) == blocks_wanted
    blocks = []
    threads.split_blocks(lambda lo, hi: blocks.append((lo, hi)), 3, 500, 100, 1)  # an image larger than a block
    assert blocks == [(0, 1), (1, 2), (2, 3)]
