"""The one place that reads and checks a thread count (`--threads`, OPENBLAS_NUM_THREADS, ...).

NumPy's OpenBLAS reads its thread count from the environment once, when NumPy is imported, and
quietly falls back to every core for a value it cannot use. minicnn's own threaded loops (the im2col
copies, `scipy.fft` workers) read the same variables, and a value like -1 there once meant wrong
convolutions. So every reader goes through `parse_threads`, which accepts a whole number >= 1 and
refuses anything else with a ValueError naming where the value came from.

    parse_threads("2", "--threads") -> 2;   parse_threads("-1", "OPENBLAS_NUM_THREADS") -> ValueError
    configured_threads()                    the count NumPy's BLAS will use (environment, else all cores)
    set_thread_environment(n)               fix it for NumPy and its BLAS, before NumPy is imported
"""

from __future__ import annotations

import os

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")  # read in this order


def parse_threads(value: object, source: str) -> int:
    """A thread count: a whole number >= 1 (an int or its decimal text); ValueError naming `source` else."""
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str) and text.isascii() and text.isdigit():
        count = int(text)
    elif isinstance(text, int) and not isinstance(text, bool):
        count = text
    else:
        count = 0
    if count < 1:
        raise ValueError(f"{source}: expected a whole number of threads >= 1, got {value!r}")
    return count


def configured_threads(environ: dict[str, str] | None = None) -> int:
    """Threads NumPy's BLAS uses: the first of THREAD_VARIABLES that is set and not empty, checked by
    `parse_threads` (a bad value raises ValueError naming the variable), else every core."""
    environ = os.environ if environ is None else environ
    for name in THREAD_VARIABLES:
        if environ.get(name, "").strip():
            return parse_threads(environ[name], name)
    return os.cpu_count() or 1


def set_thread_environment(threads: int) -> None:
    """Set every variable of THREAD_VARIABLES to `threads` (checked). Takes effect on BLAS only if NumPy
    has not been imported yet."""
    count = parse_threads(threads, "threads")
    for name in THREAD_VARIABLES:
        os.environ[name] = str(count)
