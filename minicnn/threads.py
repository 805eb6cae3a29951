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


WORKERS_VARIABLE = "MINICNN_WORKERS"


def configured_workers(environ: dict[str, str] | None = None) -> int:
    """Threads minicnn's convolutions split a batch between (`$MINICNN_WORKERS`, checked by `parse_threads`;
    default 1). Each part runs its own matrix products, so BLAS is best left at one thread then."""
    environ = os.environ if environ is None else environ
    value = environ.get(WORKERS_VARIABLE, "").strip()
    return parse_threads(value, WORKERS_VARIABLE) if value else 1


def set_thread_environment(threads: int) -> None:
    """Set every variable of THREAD_VARIABLES to `threads` (checked). Takes effect on BLAS only if NumPy
    has not been imported yet."""
    count = parse_threads(threads, "threads")
    for name in THREAD_VARIABLES:
        os.environ[name] = str(count)


MMAP_THRESHOLD_BYTES = 32 * 2**20  # glibc's largest allowed value: arrays up to 32 MB reuse freed memory
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers (glibc malloc.h)


def keep_freed_memory() -> bool:
    """Let freed arrays' memory be reused instead of returned to the OS (glibc only; else a no-op).

    A training step allocates its activations and gradients afresh (about 200 MB for cifar_net at batch
    64), and glibc hands every block over 128 KB straight back to the OS when it is freed, so the next
    step page-faults it in again, about 1.3 us per 4 KiB: 20-25% of a cifar_net step (measured with
    MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ set, 1 thread). Raising both thresholds keeps freed
    blocks of up to MMAP_THRESHOLD_BYTES in the process for the next step. The peak resident memory is
    then the largest working set, which freed memory would be faulted back up to anyway. Returns True
    when the setting was applied. Called by the `minicnn` command; a library user may call it too.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, 2**30))
