"""A/B of minicnn's own choices, each in one process, alternating round by round (medians):

    python benchmarks/bench_paths.py rows [--rounds 11]      patches as rows (kernels.conv_rows) vs columns
    python benchmarks/bench_paths.py threads [--rounds 9]    1 thread vs 2 BLAS threads vs 2 workers

rows: forward and backward CPU ms of the CIFAR layer shapes (batch 64, float32, 1 thread), the layer
path with `minicnn.kernels.conv_rows` switched on and off (its MIN_CHANNELS), then the whole cifar_net training step.
threads: images/s of a cifar_net and a LeNet-5 training step (batch 64) with one thread, with OpenBLAS
at 2 threads (switched at run time through the OpenBLAS library NumPy loaded; skipped, saying so,
where that library cannot be found), and with MINICNN_WORKERS-style splitting into 2 parts.
Measured 2026-11-29, quiet 2-core machine:
    rows, CPU ms fwd / bwd, columns -> rows: 64->128 8x8 10.2 / 20.4 -> 7.9 / 16.4; 64->64 16x16
    18.5 / 36.5 -> 17.5 / 32.4; 32->64 16x16 10.1 / 19.0 -> 10.0 / 19.3 (even); 32x32 maps never take
    rows (same path both ways: 24.7 / 24.6); cifar_net step 311 -> 325 img/s.
    threads, img/s, two runs: cifar_net 1 thread 325 and 342, 2 workers 453 and 471, 2 BLAS threads 359
    and 413; LeNet-5 9,008 / 9,010 / 7,852 and 8,996 / 8,916 / 7,751. OpenBLAS threads keep spinning
    a while after their last product: measured right after the BLAS mode, 2 workers lost up to 20%,
    so that mode runs last in each round.
Both run with the planner off (`minicnn.runtime.use_tuning(False)`): they compare the fixed rules.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys

os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = "2" if "threads" in sys.argv else "1"

import numpy as np  # noqa: E402  (after the thread count is fixed)

from minicnn import layers, runtime  # noqa: E402
from minicnn.commands._options import integer  # noqa: E402
from minicnn.commands.bench import alternate, layer_calls  # noqa: E402
from minicnn.kernels import conv_rows  # noqa: E402
from minicnn.threads import WORKERS_VARIABLE, keep_freed_memory  # noqa: E402

LAYERS = [(32, 64, 16), (64, 64, 16), (64, 128, 8), (32, 32, 32)]  # C, T, H = W; 3x3, padding 1


def training_step(name: str):
    """One training step of a registered model on random images, exactly as `bench_vs_torch.py` times it."""
    from bench_vs_torch import _training_case  # this folder is on sys.path when the script runs

    return _training_case(name)[0]


def _with(setting, fn):
    """fn, run with setting() applied first (each engine of `alternate` sets its own switches)."""
    def run():
        setting()
        fn()
    return run


def _rows_on(on: bool):
    return lambda: setattr(conv_rows, "MIN_CHANNELS", 32 if on else 10**9)


def bench_rows(rounds: int) -> None:
    print("conv 3x3 pad 1, batch 64, float32, 1 thread: CPU ms, median of", rounds, "rounds")
    print(f"{'layer':<16}{'cols fwd':>10}{'rows fwd':>10}{'cols bwd':>10}{'rows bwd':>10}")
    g = np.random.default_rng(0)
    for c, t, h in LAYERS:
        layer = layers.Conv2D(c, t, 3, padding=1)
        x = g.standard_normal((64, c, h, h), dtype=np.float32)
        dy = g.standard_normal(layer(x).shape, dtype=np.float32)
        forward, both = layer_calls(layer, x, dy)

        engines = {}
        for name, on in (("cols", False), ("rows", True)):
            engines[f"{name} fwd"] = _with(_rows_on(on), forward)
            engines[f"{name} bwd"] = _with(_rows_on(on), both)
        cpu: dict[str, list[float]] = {}
        alternate(engines, rounds, cpu_times=cpu)
        ms = {k: float(np.median(v)) * 1e3 for k, v in cpu.items()}
        fwd = {k: ms[f"{k} fwd"] for k in ("cols", "rows")}
        bwd = {k: ms[f"{k} bwd"] - fwd[k] for k in ("cols", "rows")}  # the backward alone
        print(f"{f'{c}->{t} {h}x{h}':<16}{fwd['cols']:>10.2f}{fwd['rows']:>10.2f}{bwd['cols']:>10.2f}"
              f"{bwd['rows']:>10.2f}")
    step = training_step("cifar_net")
    times = alternate({on: _with(_rows_on(on), step) for on in (False, True)}, rounds)
    print("cifar_net step, img/s: columns only {:.0f}, with rows {:.0f}".format(
        *(64 / float(np.median(times[on])) for on in (False, True))))


def _openblas_threads():
    """OpenBLAS's set-thread-count function in the library NumPy loaded, or None (Linux wheels only)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line and "numpy" in line}
    except OSError:
        return None
    for path in paths:
        lib = ctypes.CDLL(path)
        for symbol in ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_",
                       "openblas_set_num_threads"):
            if hasattr(lib, symbol):
                fn = getattr(lib, symbol)
                fn.argtypes = [ctypes.c_int]
                return fn
    return None


def bench_threads(rounds: int) -> None:
    set_blas = _openblas_threads()
    modes = {"1 thread": (1, 1), "2 workers": (1, 2), "2 BLAS threads": (2, 1)}  # BLAS last: its threads spin on
    if set_blas is None:
        print("OpenBLAS's thread switch was not found in this NumPy:\n"
              "comparing 1 thread and 2 workers only")
        modes.pop("2 BLAS threads")

    def mode(blas: int, workers: int):
        def apply():
            if set_blas is not None:
                set_blas(blas)
            # the kernels read both at each call (minicnn.threads)
            os.environ[WORKERS_VARIABLE], os.environ["OPENBLAS_NUM_THREADS"] = str(workers), str(blas)
        return apply

    print("training step, batch 64, images/s (median of", rounds, "rounds):")
    for name in ("cifar_net", "lenet5"):
        step = training_step(name)
        repeat = 10 if name == "lenet5" else 2

        def many(step=step, repeat=repeat):
            for _ in range(repeat):
                step()

        times = alternate({label: _with(mode(*m), many) for label, m in modes.items()}, rounds)
        print(f"  {name:<10}" + "".join(f"{label} {64 * repeat / float(np.median(v)):,.0f}   "
                                          for label, v in times.items()))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=("rows", "threads"))
    p.add_argument("--rounds", type=integer(1), default=None, help="alternating rounds (default 11 rows, 9 threads)")
    args = p.parse_args(argv)
    keep_freed_memory()  # as the `minicnn` command does
    runtime.use_tuning(False)  # these A/B the fixed rules themselves: the planner would choose past them
    if args.what == "rows":
        bench_rows(args.rounds or 11)
    else:
        bench_threads(args.rounds or 9)
    return 0


if __name__ == "__main__":
    sys.exit(main())
