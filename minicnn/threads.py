"""How minicnn's own loops use threads: the counts, read at each call, and the pool that splits a batch.

    configured_threads()                    the count NumPy's BLAS uses: `minicnn.runtime.configure`'s
                                            blas_threads, else the environment, else every core
    configured_workers()                    how many parts minicnn's convolutions split a batch into:
                                            `configure`'s workers, else $MINICNN_WORKERS, else 1
    own_threads()                           threads of minicnn's own loops: the larger of the two
    split_batch(fn, n, parts)               [fn(lo, hi), ...] over `parts` slices of range(n), side by side
    split_large(fn, n, size)                split_batch over the workers, for arrays of >= 2**20 values
    large_parts(size)                       the parts split_large uses: the workers, or 1 below 2**20 values
    split_blocks(fn, n, per_image, block_values, parts)
                                            fn over cache-sized blocks of images, the blocks in parts
    pool()                                  the process's thread pool, own_threads() threads (remade when
                                            that changes)
    set_thread_environment(n), keep_freed_memory()
                                            the old names of `runtime.configure(threads=n)` and
                                            `runtime.configure(keep_freed_memory=True)`

Every count is read when it is used, never at import time, so `minicnn.runtime.configure(threads=2)`
takes effect after import. Where a count comes from, and its check (`parse_threads`: a whole number
>= 1, else a ValueError naming where it came from), is `minicnn.runtime`'s; these names are the ones the
kernels call.

Why workers rather than BLAS threads: a CIFAR-size training step is many medium matrix products with
copies between them. OpenBLAS threads split each product and then spin idle through every copy, which
stays on one core; workers split the batch, so both the copies and the products of one part run beside
the other part's (cifar_net, batch 64, 2 threads: see benchmarks/bench_vs_torch.py).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from minicnn import runtime
from minicnn.runtime import THREAD_VARIABLES, parse_threads  # noqa: F401  (tutorials, benchmarks import these)


def configured_threads(environ: Mapping[str, str] | None = None) -> int:
    """Threads NumPy's BLAS uses: the count `runtime.configure` set, else the first of THREAD_VARIABLES
    that is set (checked: a bad value raises ValueError naming the variable), else every core
    (`runtime.blas_thread_count`, where the rule lives). Given `environ`, only that mapping is read."""
    return runtime.blas_thread_count(environ)


def configured_workers(environ: Mapping[str, str] | None = None) -> int:
    """How many parts minicnn's convolutions split a batch into, each a whole convolution on its own
    thread: the count `runtime.configure` set, else `$MINICNN_WORKERS` (checked), else 1
    (`runtime.worker_count`). Given `environ`, only that mapping is read. Each part runs its own matrix
    products, so BLAS is best left at one thread then (`configure(threads=n)` does both)."""
    return runtime.worker_count(environ)


def own_threads(environ: Mapping[str, str] | None = None) -> int:
    """Threads of minicnn's own loops (depthwise taps, `scipy.fft` workers): max(BLAS threads, workers)."""
    return max(configured_threads(environ), configured_workers(environ))


_POOL: tuple[int, int, ThreadPoolExecutor] | None = None  # (process id, threads, pool)
_POOL_LOCK = threading.Lock()
_PART = threading.local()  # .busy: this thread is running a part of `split_batch`


def pool() -> ThreadPoolExecutor:
    """The process's thread pool of own_threads() threads, made on first use, and anew in a forked child
    or when own_threads() has changed. A replaced pool is dropped, not shut down: work already handed to
    it finishes, and its idle threads end once nothing refers to it any more."""
    global _POOL
    size, pid = own_threads(), os.getpid()
    with _POOL_LOCK:
        if _POOL is None or _POOL[:2] != (pid, size):
            _POOL = (pid, size, ThreadPoolExecutor(size))
        return _POOL[2]


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
    """`minicnn.runtime.configure(threads=threads)`: `threads` workers, each with a one-thread BLAS
    (the name from before the settings could change after import; `configure` is the one to call)."""
    runtime.configure(threads=threads)


def keep_freed_memory() -> bool:
    """`minicnn.runtime.configure(keep_freed_memory=True)` (the setting lives in `minicnn.runtime`, which
    explains it); True when glibc took it."""
    runtime.configure(keep_freed_memory=True)
    return runtime.settings().keep_freed_memory
