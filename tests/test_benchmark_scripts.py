"""The benchmark scripts still run (timings themselves are never asserted: benchmarks, not tests)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, check=False,
                          env={"PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "PATH": ""})


def test_profile_step_prints_every_layer_within_80_columns():
    done = _run("benchmarks/profile_step.py", "lenet5", "--steps", "1")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("lenet5, batch 64:") and lines[-1].startswith("optimiser")
    assert len(lines) == 2 + 12 + 1  # header lines, LeNet-5's 12 layers, the optimiser
    assert max(map(len, lines)) <= 80


def test_profile_step_refuses_an_unknown_model_in_80_columns():
    done = _run("benchmarks/profile_step.py", "nope")
    assert done.returncode == 2 and "unknown model 'nope'" in done.stderr
    assert max(map(len, done.stderr.splitlines())) <= 80


def test_bench_floor_prints_a_row_within_80_columns():
    done = _run("benchmarks/bench_floor.py", "--rounds", "1", "--only", "C3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    rows = [line for line in lines if line.startswith("LeNet C3")]
    assert len(rows) == 1 and len(rows[0].split()) >= 7  # label words, floor, minicnn, pytorch (or nan)
    assert max(map(len, lines)) <= 80
    done = _run("benchmarks/bench_floor.py", "--only", "nope")
    assert done.returncode == 2 and "no convolution label holds 'nope'" in done.stderr


def test_bench_checkouts_compares_two_checkouts_within_80_columns():
    done = _run("benchmarks/bench_checkouts.py", str(ROOT), str(ROOT), "--rounds", "1", "--seconds", "0.01")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    rows = [line for line in lines if line.startswith(("conv", "LeNet", "cifar_net", "ReLU", "BatchNorm",
                                                       "depthwise", "MaxPool"))]
    assert len(rows) == 10 and all(float(r.split()[-1]) > 0 for r in rows)
    assert max(map(len, lines)) <= 80
    done = _run("benchmarks/bench_checkouts.py", str(ROOT), "/nonexistent")
    assert done.returncode == 2 and "expected a minicnn checkout" in done.stderr


def test_bench_planning_reports_the_planners_own_seconds_within_80_columns(data_dir):
    done = subprocess.run([sys.executable, "benchmarks/bench_planning.py", "--images", "128", "--test-images", "64",
                           "--rounds", "1"], capture_output=True, text=True, cwd=ROOT, check=False,
                          env={"PYTHONPATH": str(ROOT), "PATH": "", "MINICNN_DATA": str(data_dir)})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(map(len, lines)) <= 80
    cold = next(line for line in lines if line.startswith("cold epoch"))
    assert int(cold.split("(")[1].split()[0]) > 0  # the empty folder made the planner measure
    assert "(0.00 s planning)" in next(line for line in lines if line.startswith("warm epoch"))
    assert any(line.startswith("planning / epoch") for line in lines)


def test_bench_vs_torch_apart_without_pytorch_says_so():
    """--apart needs PyTorch: without it, one line saying so (CI installs no PyTorch: the engine is never
    a minicnn dependency)."""
    import importlib.util

    if importlib.util.find_spec("torch") is not None:
        pytest.skip("PyTorch is installed here: the message for its absence cannot be seen")
    done = _run("benchmarks/bench_vs_torch.py", "--apart", "--threads", "1", "--no-memory")
    assert done.returncode == 1
    assert "PyTorch, which is not installed" in done.stderr and "Traceback" not in done.stderr


def test_bench_plans_times_each_plan_and_names_the_choices_that_differ_within_80_columns():
    done = _run("benchmarks/bench_plans.py", "--model", "lenet5", "--threads", "1", "--plans", "2", "--rounds", "1",
                "--steps", "1")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("CPU: ") and lines[1] == "lenet5, batch 64, 1 worker(s) x 1 BLAS thread"
    rows = [line.split() for line in lines[3:5]]
    assert [row[0] for row in rows] == ["0", "1"] and all(float(row[1]) > 0 for row in rows)
    assert lines[5].startswith("slowest / fastest: ")
    assert max(map(len, lines)) <= 80


def test_bench_plans_refuses_one_plan_and_an_unknown_model():
    done = _run("benchmarks/bench_plans.py", "--plans", "1")
    assert done.returncode == 2 and "--plans: expected a whole number >= 2, got 1" in done.stderr
    done = _run("benchmarks/bench_plans.py", "--model", "nope")
    assert done.returncode == 2 and "unknown model 'nope'" in done.stderr
