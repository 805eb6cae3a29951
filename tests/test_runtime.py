"""minicnn.runtime: settings made after import take effect (workers, NumPy's BLAS threads, the kernel
switch), bad values are refused before anything changes, the environment is read at each call."""

from __future__ import annotations

import gc
import os
import pkgutil
import platform
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import minicnn.kernels
from minicnn import runtime, threads

ROOT = Path(__file__).resolve().parent.parent


def _blas_counts() -> list[int]:
    """Every loaded OpenBLAS's thread count, by threadpoolctl when it is installed, else by OpenBLAS's
    own get function."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [lib.get_num_threads() for lib in runtime.blas_libraries()]
    return [info["num_threads"] for info in threadpool_info() if info["internal_api"] == "openblas"]


def test_numpy_openblas_is_found():
    """NumPy's wheels bundle OpenBLAS (numpy.libs/libscipy_openblas64_*.so in NumPy 2): it must be found,
    else every blas_threads test below would pass without testing anything."""
    names = [Path(lib.path).name for lib in runtime.blas_libraries()]
    assert any("openblas" in name for name in names), names


@pytest.mark.parametrize("count", [2, 1])
def test_blas_threads_set_after_numpy_is_imported(count):
    assert "numpy" in sys.modules
    with runtime.temporarily(blas_threads=count):
        assert set(_blas_counts()) == {count}
        assert threads.configured_threads() == count
        assert runtime.settings().blas_threads == count
    assert runtime.settings().blas_threads is None


def test_temporarily_puts_the_blas_count_back():
    before = _blas_counts()
    with runtime.temporarily(blas_threads=3):
        assert set(_blas_counts()) == {3}
    assert _blas_counts() == before


def test_workers_set_after_import_are_seen_by_threads_and_the_pool(monkeypatch):
    monkeypatch.setenv(runtime.WORKERS_VARIABLE, "1")
    with runtime.temporarily(workers=3):
        assert threads.configured_workers() == 3
        assert threads.own_threads() == max(3, threads.configured_threads())
        assert threads.pool()._max_workers == threads.own_threads()
        spans = []
        assert threads.split_large(lambda lo, hi: spans.append((lo, hi)) or hi - lo, 7,
                                   threads.SPLIT_MIN_VALUES) == [2, 2, 3]
    assert threads.configured_workers() == 1  # the variable again


def test_the_pool_grows_and_shrinks_with_the_setting():
    """pool() is remade when own_threads() changes; the dropped pool's threads end."""
    with runtime.temporarily(workers=1, blas_threads=1):
        assert threads.pool()._max_workers == 1
        with runtime.temporarily(workers=4):
            big = threads.pool()
            assert big._max_workers == 4
            assert sorted(big.map(lambda k: k * k, range(8))) == [k * k for k in range(8)]
            workers_of_big = list(big._threads)
        small = threads.pool()
        assert small._max_workers == 1 and small is not big
    del big
    gc.collect()
    deadline = time.monotonic() + 10
    while any(t.is_alive() for t in workers_of_big) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(t.is_alive() for t in workers_of_big)


def test_threads_means_that_many_workers_with_a_one_thread_blas():
    with runtime.temporarily(threads=2):
        assert (threads.configured_workers(), threads.configured_threads()) == (2, 1)
        assert set(_blas_counts()) == {1}
    with runtime.temporarily(threads=2):  # the old name is a thin call of configure
        threads.set_thread_environment(3)
        assert (threads.configured_workers(), threads.configured_threads()) == (3, 1)


@pytest.mark.parametrize("changes, words", [
    ({"workers": 0}, "configure: workers: expected a whole number of threads >= 1, got 0"),
    ({"workers": -1}, "configure: workers: expected a whole number of threads >= 1, got -1"),
    ({"workers": 2.5}, "configure: workers: expected a whole number of threads >= 1, got 2.5"),
    ({"workers": True}, "configure: workers: expected a whole number of threads >= 1, got True"),
    ({"blas_threads": "two"}, "configure: blas_threads: expected a whole number of threads >= 1, got 'two'"),
    ({"threads": 0}, "configure: threads: expected a whole number of threads >= 1, got 0"),
    ({"threads": 2, "workers": 2}, "configure: threads=2 means workers=2 and blas_threads=1; give either"),
    ({"kernels": "no"}, "configure: expected kernels True, False or None, got 'no'"),
    ({"keep_freed_memory": 1}, "configure: expected keep_freed_memory True, False or None, got 1"),
    ({"workers": 2, "kernels": 0}, "configure: expected kernels True, False or None, got 0"),
])
def test_bad_values_are_refused_before_anything_changes(changes, words):
    before = runtime.settings(), _blas_counts()
    with pytest.raises(ValueError, match="^" + re.escape(words)):
        runtime.configure(**changes)
    assert (runtime.settings(), _blas_counts()) == before


def test_unknown_setting_is_a_type_error():
    with pytest.raises(TypeError, match="cores"):
        runtime.configure(cores=2)


def test_blas_threads_without_an_openblas_warn_and_change_nothing(monkeypatch):
    monkeypatch.setattr(runtime, "blas_libraries", lambda: [])
    with pytest.warns(RuntimeWarning, match="blas_threads=2 not applied: NumPy is imported and no OpenBLAS"):
        runtime.configure(blas_threads=2)
    assert runtime.settings().blas_threads is None


def test_keep_freed_memory_is_applied_on_glibc():
    runtime.configure(keep_freed_memory=True)
    assert runtime.settings().keep_freed_memory == (platform.libc_ver()[0] == "glibc")
    runtime.configure(keep_freed_memory=False)
    assert not runtime.settings().keep_freed_memory
    assert threads.keep_freed_memory() == (platform.libc_ver()[0] == "glibc")  # the old name, as the command runs
    with pytest.raises(ValueError, match="temporarily: keep_freed_memory is not undone"):
        with runtime.temporarily(keep_freed_memory=False):
            pass


def test_configured_counts_read_the_environment_at_each_call(monkeypatch):
    monkeypatch.setenv(runtime.WORKERS_VARIABLE, "2")
    assert threads.configured_workers() == 2
    monkeypatch.setenv(runtime.WORKERS_VARIABLE, "5")
    assert threads.configured_workers() == 5
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    assert threads.configured_threads() == 3
    with runtime.temporarily(workers=4):  # a setting wins over the variable; a given mapping reads only that
        assert threads.configured_workers() == 4
        assert threads.configured_workers({}) == 1


def test_minicnn_plain_is_read_at_each_call(monkeypatch):
    monkeypatch.delenv(runtime.PLAIN_VARIABLE, raising=False)
    assert runtime.kernels_enabled()
    monkeypatch.setenv(runtime.PLAIN_VARIABLE, "1")
    assert not runtime.kernels_enabled()
    monkeypatch.setenv(runtime.PLAIN_VARIABLE, "off")
    assert runtime.kernels_enabled()
    monkeypatch.setenv(runtime.PLAIN_VARIABLE, "maybe")
    with pytest.raises(ValueError, match="MINICNN_PLAIN: expected 1 or 0 .* got 'maybe'"):
        runtime.kernels_enabled()
    monkeypatch.setenv(runtime.PLAIN_VARIABLE, "1")
    with runtime.temporarily(kernels=True):  # a setting wins over the variable
        assert runtime.kernels_enabled()
        with runtime.plain():
            assert not runtime.kernels_enabled()
        assert runtime.kernels_enabled()
    assert not runtime.kernels_enabled()


def _run(code: str, **env_overrides) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in runtime.THREAD_VARIABLES}
    env.update(PYTHONPATH=str(ROOT), **env_overrides)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)


def test_importing_reads_no_setting_a_bad_value_is_refused_at_first_use():
    """Bad variables do not stop `import`; the first count read names the variable."""
    code = ("import minicnn.runtime, minicnn.threads, minicnn.core, minicnn.files, minicnn.cli\n"
            "try:\n    minicnn.threads.configured_threads()\nexcept ValueError as e:\n    print(e)\n"
            "try:\n    minicnn.runtime.kernels_enabled()\nexcept ValueError as e:\n    print(e)\n")
    done = _run(code, OPENBLAS_NUM_THREADS="-1", MINICNN_PLAIN="perhaps")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "OPENBLAS_NUM_THREADS: expected a whole number of threads >= 1, got '-1'",
        "MINICNN_PLAIN: expected 1 or 0 (also true/false, yes/no, on/off), got 'perhaps'"]


COUNT_READERS = {"configured_threads", "configured_workers", "own_threads", "large_parts", "kernels_enabled"}


def test_no_module_reads_a_setting_at_import_time():
    """No call of a count reader (or of os.environ.get / os.environ[...]) outside a function or class body
    anywhere in minicnn: a setting made after import must reach every loop."""
    import ast

    found = []
    for path in sorted((ROOT / "minicnn").rglob("*.py")):
        for statement in ast.parse(path.read_text()).body:
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            for node in ast.walk(statement):
                text = ast.unparse(node)
                call = isinstance(node, ast.Call) and (
                    getattr(node.func, "id", getattr(node.func, "attr", None)) in COUNT_READERS
                    or text.startswith("os.environ.get("))
                if call or (isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ"):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text}")
    assert not found, "\n".join(found)


def test_blas_threads_configured_before_numpy_loads_reach_the_blas():
    """Before NumPy is imported, configure writes the BLAS variables, which OpenBLAS reads as it loads."""
    code = ("from minicnn import runtime; runtime.configure(blas_threads=1); import numpy; "
            "print(sorted({lib.get_num_threads() for lib in runtime.blas_libraries()}))")
    assert _run(code).stdout.strip() == "[1]"


def test_a_blas_loaded_after_configure_takes_the_setting():
    """SciPy's wheels bundle their own OpenBLAS, loaded with scipy.linalg: it reads the variables
    configure wrote (with no variable set it would start with every core)."""
    code = ("import numpy; from minicnn import runtime; runtime.configure(blas_threads=1); "
            "n = len(runtime.blas_libraries()); import scipy.linalg; "
            "print(n, [lib.get_num_threads() for lib in runtime.blas_libraries()])")
    before, counts = _run(code).stdout.split(maxsplit=1)
    assert before == "1" and counts.strip() == "[1, 1]"


# ---- the switch, traced: with the kernels off, no function of minicnn.kernels runs ---------------------

KERNELS_DIR = str(Path(minicnn.kernels.__file__).parent)
KERNEL_MODULES = [m.name for m in pkgutil.iter_modules(minicnn.kernels.__path__)]


def _small_net():
    from minicnn import layers as L
    from minicnn.core import Sequential

    return Sequential(L.Conv2D(2, 4, 3, padding=1), L.BatchNorm2D(4), L.ReLU(), L.MaxPool2D(2))


def _kernel_functions_run(net, x: np.ndarray) -> set[str]:
    """Names of the minicnn.kernels functions that forward + backward of `net` on `x` call (one worker,
    so that every call is on this thread, where sys.setprofile sees it)."""
    called: set[str] = set()

    def profile(frame, event, arg):
        if event == "call" and frame.f_code.co_filename.startswith(KERNELS_DIR):
            called.add(f"{Path(frame.f_code.co_filename).stem}.{frame.f_code.co_name}")

    with runtime.temporarily(workers=1):
        sys.setprofile(profile)
        threading.setprofile(profile)
        try:
            y = net(x)
            net.backward(np.ones_like(y))
        finally:
            sys.setprofile(None)
            threading.setprofile(None)
    return called


def test_plain_switch_is_off_inside_plain_and_on_outside(monkeypatch):
    monkeypatch.delenv(runtime.PLAIN_VARIABLE, raising=False)
    with runtime.plain():
        assert not runtime.kernels_enabled()
    assert runtime.kernels_enabled()


@pytest.mark.skipif(not KERNEL_MODULES, reason="minicnn.kernels has no modules yet (the layers' dispatch lands "
                                               "with the kernels of issue 21)")
def test_plain_forward_and_backward_run_no_kernel_function(monkeypatch):
    monkeypatch.delenv(runtime.PLAIN_VARIABLE, raising=False)
    x = np.random.default_rng(0).standard_normal((4, 2, 8, 8)).astype(np.float32)
    net = _small_net().train()
    assert _kernel_functions_run(net, x), "with the kernels on, the trace saw no minicnn.kernels function"
    with runtime.plain():
        assert _kernel_functions_run(net, x) == set()


@pytest.mark.parametrize("value", ["99999999999999999999", "1025", 10**20])
def test_a_thread_count_beyond_the_documented_maximum_is_refused(value):
    with pytest.raises(ValueError, match=r"--threads: expected at most 1024 threads, got"):
        runtime.parse_threads(value, "--threads")
    assert runtime.parse_threads(str(runtime.MAX_THREADS), "--threads") == runtime.MAX_THREADS
