"""The kernels' planner: measures on first use, keeps the fastest, drops a wrong candidate, remembers plans
per machine in a file that it never trusts when damaged or foreign; the machine facts it keys them by."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from minicnn import runtime
from minicnn.kernels import machine
from minicnn.kernels import planner as planner_module
from minicnn.kernels.planner import Planner, op_key, plan_file

READ_OTHER_CPU = planner_module.other_cpu_seconds  # the real reading (tests/conftest.py replaces it per test)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(planner_module.CACHE_VARIABLE, str(tmp_path / "cache"))
    monkeypatch.delenv(planner_module.PLANS_VARIABLE, raising=False)
    monkeypatch.delenv(runtime.NO_TUNE_VARIABLE, raising=False)
    yield


def _candidates(calls: list[str], slow: float = 0.02):
    y = np.arange(6.0)

    def make(name, delay, value):
        def fn():
            calls.append(name)
            time.sleep(delay)
            return value

        return fn

    return {"default": make("default", slow, y), "fast": make("fast", 0.0, y.copy()),
            "slower": make("slower", 2 * slow, y.copy())}


def test_the_first_call_measures_then_the_fastest_runs_alone():
    p, calls = Planner(), []
    result = p.run("op|a", _candidates(calls))
    assert np.array_equal(result, np.arange(6.0))
    assert set(calls) == {"default", "fast", "slower"} and p.plans["op|a"].choice == "fast"
    assert p.measured == 1 and p.planning_seconds >= 0.05  # default's and slower's calls were not used
    calls.clear()
    p.run("op|a", _candidates(calls))
    assert calls == ["fast"]


def test_a_wrong_candidate_is_dropped_and_never_chosen(capsys):
    p, calls = Planner(), []
    candidates = _candidates(calls)
    candidates["fast"] = lambda: np.arange(6.0) + 1e-2  # fast and wrong
    assert np.array_equal(p.run("op|b", candidates), np.arange(6.0))
    assert p.plans["op|b"].choice == "default" and "fast" not in p.plans["op|b"].seconds
    assert "candidate 'fast' of op|b disagrees" in capsys.readouterr().err


def test_float32_rounding_is_not_a_disagreement():
    p = Planner()
    y = np.random.default_rng(0).standard_normal(100).astype(np.float32)
    candidates = {"default": lambda: (y, None), "other": lambda: ((y * 3 / 3).astype(np.float32), None)}
    p.run("op|c", candidates)
    assert set(p.plans["op|c"].seconds) == {"default", "other"}


def test_a_cancelled_bias_gradient_is_judged_on_the_tuple_scale(capsys):
    """A UNet's conv before BatchNorm: db is rounding noise (1e-10) beside dw (5e-4); two summation
    orders give two noises, which is no disagreement. A db that is wrong on dw's scale still is."""
    dw = np.full((4, 3), 5e-4, np.float32)
    same = (None, dw, np.array([1.2e-10, -3e-11], np.float32))
    other_noise = (None, dw * (1 + 1e-6), np.array([-2e-11, 9e-11], np.float32))
    wrong = (None, dw, np.array([3e-5, 0.0], np.float32))
    assert planner_module._agree(other_noise, same)
    assert not planner_module._agree(wrong, same)
    p = Planner()
    p.run("op|d", {"default": lambda: same, "other": lambda: other_noise})
    assert set(p.plans["op|d"].seconds) == {"default", "other"} and "disagrees" not in capsys.readouterr().err


def test_nan_and_inf_must_sit_in_the_same_places():
    y = np.array([1.0, np.inf, np.nan, -np.inf], np.float32)
    assert planner_module._agree(y.copy(), y)
    assert not planner_module._agree(np.array([1.0, np.inf, 0.0, -np.inf], np.float32), y)
    assert not planner_module._agree(np.array([1.0, -np.inf, np.nan, -np.inf], np.float32), y)
    assert not planner_module._agree(np.array([1.5, np.inf, np.nan, -np.inf], np.float32), y)


def test_no_tune_runs_the_default_and_measures_nothing():
    p, calls = Planner(), []
    runtime.use_tuning(False)
    try:
        p.run("op|d", _candidates(calls))
    finally:
        runtime.use_tuning(None)
    assert calls == ["default"] and not p.plans


def test_plans_survive_in_the_file_of_this_machine():
    first, calls = Planner(), []
    first.run("op|e", _candidates(calls))
    path = first.save()
    assert path == plan_file() and path.is_file()
    second, calls = Planner(), []
    second.run("op|e", _candidates(calls))
    assert calls == ["fast"] and second.plans["op|e"].stored and second.measured == 0


@pytest.mark.parametrize("damage", ["not json {", '{"version": 99, "plans": {}}', "foreign", "bad entry"])
def test_a_damaged_or_foreign_plan_file_is_ignored_with_a_note(damage, capsys):
    Planner().run("op|f", _candidates([]))
    path = plan_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    if damage == "foreign":
        data = {"version": planner_module.PLAN_VERSION, "fingerprint": {"cpu": "another CPU"},
                "plans": {"op|f": {"choice": "slower", "seconds": {"slower": 0.0}}}}
        path.write_text(json.dumps(data))
    elif damage == "bad entry":
        data = {"version": planner_module.PLAN_VERSION, "fingerprint": planner_module._fingerprint(),
                "plans": {"op|f": {"choice": "slower"}}}
        path.write_text(json.dumps(data))
    else:
        path.write_text(damage)
    p, calls = Planner(), []
    p.run("op|f", _candidates(calls))
    err = capsys.readouterr().err
    assert "ignoring the plan file" in err and len(err.strip().splitlines()) == 1
    assert set(calls) == {"default", "fast", "slower"}  # measured afresh, the file not trusted
    assert p.plans["op|f"].choice == "fast"


def test_plans_off_reads_and_writes_no_file(monkeypatch):
    monkeypatch.setenv(planner_module.PLANS_VARIABLE, "off")
    p = Planner()
    p.run("op|g", _candidates([]))
    assert p.save() is None and not plan_file().exists()


def test_clear_forgets_memory_and_files():
    p = Planner()
    p.run("op|h", _candidates([]))
    path = p.save()
    assert p.clear() == [path] and not p.plans and not path.exists()


def test_op_key_names_shapes_dtypes_settings_and_workers():
    x, w = np.zeros((2, 3, 4, 4), np.float32), np.zeros((5, 3, 3, 3), np.float32)
    key = op_key("conv2d", x, w, stride=(1, 1), groups=1)
    assert key == "conv2d|2x3x4x4:float32|5x3x3x3:float32|groups=1|stride=(1, 1)|workers=1"
    assert op_key("conv2d", x.astype(np.float64), w) != op_key("conv2d", x, w)


def test_cache_sizes_from_sysfs_then_fallback(tmp_path):
    for i, (level, kind, size) in enumerate([(1, "Data", "48K"), (1, "Instruction", "32K"), (2, "Unified", "1024K"),
                                             (3, "Unified", "32M")]):
        d = tmp_path / f"index{i}"
        d.mkdir()
        (d / "level").write_text(f"{level}\n")
        (d / "type").write_text(f"{kind}\n")
        (d / "size").write_text(f"{size}\n")
    sizes = machine.cache_sizes(tmp_path)
    assert (sizes.l1, sizes.l2, sizes.l3, sizes.source) == (48 * 1024, 2**20, 32 * 2**20, "sysfs")
    real = machine.cache_sizes(tmp_path / "missing")  # no sysfs: sysconf, else the documented fallback
    assert real.source in ("sysconf", "fallback") and real.l2 > 0
    if real.source == "fallback":
        assert (real.l1, real.l2, real.l3) == machine.FALLBACK_CACHES


def test_fingerprint_names_what_a_plan_depends_on():
    fp = machine.fingerprint(2, 1)
    assert {"cpu", "caches", "numpy", "blas", "blas_version", "coretype", "workers", "blas_threads"} <= set(fp)
    assert fp["workers"] == 2 and fp["cpu"] == machine.cpu_model()
    import numpy as np

    assert machine.blas_description()["numpy"] == np.__version__


def test_a_measured_plan_is_lent_to_other_batch_sizes_of_the_same_operation():
    p, calls = Planner(), []
    p.run("conv2d|w|batch=64|stride=1", _candidates(calls))
    assert p.plans["conv2d|w|batch=64|stride=1"].choice == "fast"
    calls.clear()
    p.run("conv2d|w|batch=512|stride=1", _candidates(calls))  # the evaluation batches: no measuring
    assert calls == ["fast"] and p.plans["conv2d|w|batch=512|stride=1"].lent and p.measured == 1
    calls.clear()
    p.run("conv2d|w|batch=64|stride=2", _candidates(calls))  # another operation: measured
    assert set(calls) == {"default", "fast", "slower"} and p.measured == 2
    path = p.save()
    stored = json.loads(path.read_text())["plans"]
    assert "conv2d|w|batch=512|stride=1" not in stored and "conv2d|w|batch=64|stride=1" in stored


def _readings(monkeypatch, values):
    """other_cpu_seconds returns `values` in turn (the conftest makes it None for every other test)."""
    values = iter(values)
    monkeypatch.setattr(planner_module, "other_cpu_seconds", lambda *args, **kwargs: next(values))
    monkeypatch.setattr(planner_module, "_spare_cores", lambda: 0)  # every core is minicnn's


@pytest.mark.parametrize("other, busy", [(0.0, False), (0.02, False), (1.0, True), (None, False)])
def test_a_plan_measured_while_others_used_the_cpu_is_kept_but_not_stored(monkeypatch, other, busy):
    _readings(monkeypatch, [100.0, None if other is None else 100.0 + other])
    first, calls = Planner(), []
    assert np.array_equal(first.run("op|busy", _candidates(calls)), np.arange(6.0))
    assert first.plans["op|busy"].choice == "fast" and first.plans["op|busy"].busy is busy
    calls.clear()
    first.run("op|busy", _candidates(calls))
    assert calls == ["fast"]  # this process uses it either way
    first.save()
    saved = json.loads(plan_file().read_text())["plans"]
    assert ("op|busy" in saved) is not busy  # measured again next time when it was busy


def test_the_busy_share_scales_with_the_measuring_time():
    assert not planner_module._busy(0.0, 0.2, 1.0) and planner_module._busy(0.0, 0.3, 1.0)  # BUSY_SHARE 0.25
    assert not planner_module._busy(0.0, planner_module.BUSY_MIN_SECONDS, 0.01)  # below three clock ticks
    assert not planner_module._busy(None, 5.0, 1.0) and not planner_module._busy(0.0, None, 1.0)
    # a core minicnn's threads leave free may be used by others without disturbing the measurement
    assert not planner_module._busy(0.0, 1.2, 1.0, spare=1) and planner_module._busy(0.0, 1.3, 1.0, spare=1)


def test_spare_cores_are_the_cores_minicnn_does_not_run_on(monkeypatch):
    monkeypatch.setattr(planner_module.os, "cpu_count", lambda: 8)
    with runtime.temporarily(workers=2, blas_threads=1):
        assert planner_module._spare_cores() == 6
    with runtime.temporarily(workers=1, blas_threads=16):
        assert planner_module._spare_cores() == 0


def test_other_cpu_seconds_reads_the_system_less_this_process(tmp_path):
    stat, own = tmp_path / "stat", tmp_path / "self"
    stat.write_text("cpu  500 10 90 9000 7 0 3 40 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n")
    own.write_text("42 (a name (with) spaces) S " + " ".join(["0"] * 10) + " 120 30 0 0\n")  # utime 120, stime 30
    tick = __import__("os").sysconf("SC_CLK_TCK")
    assert READ_OTHER_CPU(stat, own) == pytest.approx((500 + 10 + 90 + 0 + 3 + 40 - 150) / tick)
    assert READ_OTHER_CPU(tmp_path / "missing", own) is None
    stat.write_text("garbage\n")
    assert READ_OTHER_CPU(stat, own) is None


@pytest.mark.skipif(not __import__("pathlib").Path("/proc/stat").exists(), reason="needs Linux's /proc/stat")
def test_a_program_spinning_beside_the_measurement_makes_the_plan_busy(monkeypatch):
    import subprocess
    import sys

    monkeypatch.setattr(planner_module, "other_cpu_seconds", READ_OTHER_CPU)  # the real reading
    monkeypatch.setattr(planner_module, "_spare_cores", lambda: 0)  # the spinner takes a core minicnn would use
    burner = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 30: pass"])
    try:
        time.sleep(0.3)  # let it start spinning
        p = Planner()
        p.run("op|spin", _candidates([], slow=0.2))  # ~0.8 s of sleeping candidates beside a spinning core
    finally:
        burner.kill()
        burner.wait()
    assert p.plans["op|spin"].busy


def test_store_busy_writes_a_busy_plan_too(monkeypatch):
    _readings(monkeypatch, [100.0, 101.0])
    p = Planner(store_busy=True)
    p.run("op|kept", _candidates([]))
    assert p.plans["op|kept"].busy
    p.save()
    assert "op|kept" in json.loads(plan_file().read_text())["plans"]
