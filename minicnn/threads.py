"""The one place that reads and checks a thread count (`--threads`, OPENBLAS_NUM_THREADS, ...).

NumPy's OpenBLAS reads its thread count from the environment once, when NumPy is imported, and
quietly falls back to every core for a value it cannot use. minicnn's own threaded loops (the im2col
copies, `scipy.fft` workers) read the same variables, and a value like -1 there once meant wrong
convolutions. So every reader goes through `parse_threads`, which accepts a whole number >= 1 and
refuses anything else with a ValueError naming where the value came from.

    parse_threads("2", "--threads") -> 2;   parse_threads("-1", "OPENBLAS_NUM_THREADS") -> ValueError
    configured_threads()                    the count NumPy's BLAS will use (environment, else all cores)
    configured_workers()                    how many parts minicnn's convolutions split a batch into
                                            ($MINICNN_WORKERS, default 1), each on its own thread
    own_threads()                           threads of minicnn's own loops: the larger of the two
    set_thread_environment(n)               what `minicnn --threads n` does, before NumPy is imported:
                                            n workers, each with a one-thread BLAS
    split_batch(fn, n, parts)               [fn(lo, hi), ...] over `parts` slices of range(n), side by side
    split_large(fn, n, size)                split_batch over the workers, for arrays of >= 2**20 values
    large_parts(size)                       the parts split_large uses: the workers, or 1 below 2**20 values
    split_blocks(fn, n, per_image, block_values, parts)
                                            fn over cache-sized blocks of images, the blocks in parts
    pool()                                  the process's thread pool (own_threads() threads)

Why workers rather than BLAS threads: a CIFAR-size training step is many medium matrix products with
copies between them. OpenBLAS threads split each product and then spin idle through every copy, which
stays on one core; workers split the batch, so both the copies and the products of one part run beside
the other part's (cifar_net, batch 64, 2 threads: see benchmarks/bench_vs_torch.py).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

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
    """How many parts minicnn's convolutions split a batch into, each a whole convolution on its own
    thread (`$MINICNN_WORKERS`, checked by `parse_threads`; default 1). Each part runs its own matrix
    products, so BLAS is best left at one thread then (`set_thread_environment` does both)."""
    environ = os.environ if environ is None else environ
    value = environ.get(WORKERS_VARIABLE, "").strip()
    return parse_threads(value, WORKERS_VARIABLE) if value else 1


def own_threads(environ: dict[str, str] | None = None) -> int:
    """Threads of minicnn's own loops (depthwise taps, `scipy.fft` workers): max(BLAS threads, workers)."""
    return max(configured_threads(environ), configured_workers(environ))


_POOL: tuple[int, ThreadPoolExecutor] | None = None  # (process id, pool): a forked child makes its own
_PART = threading.local()  # .busy: this thread is running a part of `split_batch`


def pool() -> ThreadPoolExecutor:
    """The process's thread pool, own_threads() threads (made on first use, and anew in a forked child)."""
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid():
        _POOL = (os.getpid(), ThreadPoolExecutor(own_threads()))
    return _POOL[1]


def in_a_part() -> bool:
    """True in a thread that is running a part of `split_batch` (which must then not wait on the pool)."""
    return getattr(_PART, "busy", False)


def split_batch(fn, n: int, parts: int) -> list:
    """[fn(lo, hi), ...] over `parts` contiguous slices [lo, hi) of range(n), run side by side on `pool()`.

    NumPy releases the GIL in its copies, arithmetic and matrix products, so parts that each do whole-array
    work on their own images run at once. One part (parts <= 1, n <= 1, or a call from inside a part,
    which must not wait on the pool it runs on) runs here, in this thread."""
    parts = min(parts, n)
    if parts <= 1 or in_a_part():
        return [fn(0, n)]
    bounds = [n * k // parts for k in range(parts + 1)]

    def run(k: int):
        _PART.busy = True
        try:
            return fn(bounds[k], bounds[k + 1])
        finally:
            _PART.busy = False

    return list(pool().map(run, range(parts)))


SPLIT_MIN_VALUES = 2**20  # arrays smaller than this stay whole in `split_large`. Training steps at 2 workers
#   (in-process A/B, 11 rounds): cifar_net 537 / 527 / 485 img/s with 2**18 / 2**20 / no split, LeNet-5
#   8,145 / 9,933 / 9,697: its (64, 6, 28, 28) maps lost 18% to the hand-offs at 2**18


def large_parts(size: int) -> int:
    """configured_workers() for work on arrays of at least SPLIT_MIN_VALUES values (`size`), else 1."""
    return configured_workers() if size >= SPLIT_MIN_VALUES else 1


def split_large(fn, n: int, size: int) -> list:
    """`split_batch(fn, n, large_parts(size))`: how the value-by-value passes of BatchNorm, ReLU and
    pooling use the workers."""
    return split_batch(fn, n, large_parts(size))


def split_blocks(fn, n: int, per_image: int, block_values: int, parts: int) -> None:
    """fn(lo, hi) over blocks of whole images [lo, hi) covering range(n), each about `block_values` values
    (`per_image` values an image), the blocks cut into `parts` parts side by side (`split_batch`).

    For memory-bound loops that pass over the same images several times (the depthwise taps, max
    pooling): on a cache-sized block the later passes read it from cache instead of memory. Each block
    writes only its own images, so any number of parts gives the numbers of one."""
    step = max(1, block_values // max(per_image, 1))

    def part(lo: int, hi: int) -> None:
        for b0 in range(lo, hi, step):
            fn(b0, min(b0 + step, hi))

    split_batch(part, n, parts)


def set_thread_environment(threads: int) -> None:
    """Use `threads` threads (checked): MINICNN_WORKERS = threads, and every variable of THREAD_VARIABLES
    (BLAS) = 1. Takes effect only if NumPy and minicnn.functional have not been imported yet."""
    count = parse_threads(threads, "threads")
    os.environ[WORKERS_VARIABLE] = str(count)
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"


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
