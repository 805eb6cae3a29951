"""Runtime settings of the engine, in one place, read when they are used (never at import time).

    configure(threads=, workers=, blas_threads=, keep_freed_memory=, kernels=, tune=)
                             change settings now, after NumPy is imported too (see `configure`)
    temporarily(**changes)   a context manager: `configure(**changes)` inside the block, then restored
    settings()               what is set here (a Settings; None = not set: the environment decides)
    blas_libraries()         the OpenBLAS libraries loaded in this process, each with its thread count
    parse_threads(value, source)
                             a thread count checked: a whole number >= 1, else ValueError naming `source`
    kernels_enabled()        True when layers run the fast kernels (`minicnn.kernels`), False when
                             they run the plain course math (`minicnn.functional`) only
    use_kernels(flag)        switch the kernels on or off for the whole process
    plain()                  a context manager: the plain math inside the `with` block
    tuning_enabled()         True when the kernels' planner may measure candidates (`minicnn.kernels.planner`);
                             False (`minicnn --no-tune`, MINICNN_NO_TUNE=1, use_tuning(False)) runs fixed
                             defaults, for reproducible timing
    use_tuning(flag)         switch the planner's measuring on or off for the whole process

Where a count comes from, at each call of `minicnn.threads.configured_threads()` / `configured_workers()`:
the value set here, else the environment (BLAS: OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS,
in this order, else every core; workers: MINICNN_WORKERS, else 1), each checked by `parse_threads`.

The kernel switch is also the environment variable MINICNN_PLAIN (1 = plain math; read at each call, so
it can be set after import) and the command-line flag `minicnn --plain COMMAND`. A value set by
`use_kernels` (or `configure(kernels=...)`) wins over the variable.

NumPy's OpenBLAS reads its thread count from the environment once, as it loads. To change it later,
`configure(blas_threads=n)` calls OpenBLAS's own `openblas_set_num_threads` through ctypes, on every
OpenBLAS loaded in the process (NumPy's and SciPy's wheels each bundle one). The libraries are found as
threadpoolctl finds them, in a smaller way: the loaded shared objects whose file name holds "openblas"
(from /proc/self/maps on Linux, else NumPy's bundled library folders), opened without loading anything
new (RTLD_NOLOAD), and the symbol names the builds use (`scipy_openblas_set_num_threads64_` in NumPy 2's
wheels, `openblas_set_num_threads` in older and system builds). A NumPy on another BLAS (MKL, Apple's
Accelerate) cannot be changed after import: `configure` then warns and leaves the count as it is.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

PLAIN_VARIABLE = "MINICNN_PLAIN"
NO_TUNE_VARIABLE = "MINICNN_NO_TUNE"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")  # BLAS; read in this order
WORKERS_VARIABLE = "MINICNN_WORKERS"

_kernels: bool | None = None  # set by use_kernels(); None: follow $MINICNN_PLAIN
_tuning: bool | None = None  # set by use_tuning(); None: follow $MINICNN_NO_TUNE
_workers: int | None = None  # set by configure(); None: follow $MINICNN_WORKERS
_blas_threads: int | None = None  # set by configure(); None: follow THREAD_VARIABLES
_freed_memory_kept = False  # configure(keep_freed_memory=True) raised glibc's thresholds


MAX_THREADS = 1024  # far above any core count minicnn runs on; a 20-digit count is a typo, not a plan


def parse_threads(value: object, source: str) -> int:
    """A thread count: a whole number >= 1 (an int or its decimal text); ValueError naming `source` else.

    NumPy's OpenBLAS quietly falls back to every core for a value it cannot use, and a value like -1 in
    minicnn's own loops once meant wrong convolutions, so every count (option, variable or argument)
    goes through here."""
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str) and text.isascii() and text.isdigit():
        count = int(text)
    elif isinstance(text, int) and not isinstance(text, bool):
        count = text
    else:
        count = 0
    if count < 1:
        raise ValueError(f"{source}: expected a whole number of threads >= 1, got {value!r}")
    if count > MAX_THREADS:
        raise ValueError(f"{source}: expected at most {MAX_THREADS} threads, got {value!r}")
    return count


@dataclass(frozen=True)
class Settings:
    """What is set in this process through `configure` (None: not set, the environment decides)."""

    workers: int | None  # parts a batch is split into ($MINICNN_WORKERS, else 1)
    blas_threads: int | None  # NumPy's BLAS threads (THREAD_VARIABLES, else every core)
    kernels: bool | None  # fast kernels on or off (None: $MINICNN_PLAIN decides)
    keep_freed_memory: bool  # glibc keeps freed blocks for reuse


def settings() -> Settings:
    """The settings made with `configure` / `use_kernels` so far."""
    return Settings(_workers, _blas_threads, _kernels, _freed_memory_kept)


def blas_thread_count(environ: Mapping[str, str] | None = None) -> int:
    """Threads NumPy's BLAS uses: the count `configure` set, else the first of THREAD_VARIABLES that is
    set and not empty, checked by `parse_threads` (a bad value raises ValueError naming the variable),
    else every core. Given `environ`, only that mapping is read (no setting). Read at each call: this is
    `minicnn.threads.configured_threads`."""
    if environ is None and _blas_threads is not None:
        return _blas_threads
    environ = os.environ if environ is None else environ
    for name in THREAD_VARIABLES:
        raw = environ.get(name)
        if raw and not raw.isspace():
            return _count_of(name, raw)
    return cores()


@functools.lru_cache(maxsize=64)
def _count_of(name: str, raw: str) -> int:
    """`parse_threads(raw, name)`, remembered per (variable, raw text): the variables are still read at
    each call (a change after import is seen at once), only the parsing of a text seen before is skipped
    (a refused text raises again each time: lru_cache keeps no exceptions)."""
    return parse_threads(raw, name)


@functools.cache
def cores() -> int:
    """The machine's cores, as os.cpu_count() says (asked once: glibc reads /sys for it, ~35 us a call)."""
    return os.cpu_count() or 1


def worker_count(environ: Mapping[str, str] | None = None) -> int:
    """How many parts minicnn splits a batch into: the count `configure` set, else `$MINICNN_WORKERS`
    (checked by `parse_threads`), else 1. Given `environ`, only that mapping is read. Read at each call:
    this is `minicnn.threads.configured_workers`."""
    if environ is None and _workers is not None:
        return _workers
    environ = os.environ if environ is None else environ
    raw = environ.get(WORKERS_VARIABLE)
    return _count_of(WORKERS_VARIABLE, raw.strip()) if raw and not raw.isspace() else 1


def configure(threads: int | None = None, workers: int | None = None, blas_threads: int | None = None,
              keep_freed_memory: bool | None = None, kernels: bool | None = None, tune: bool | None = None) -> None:
    """Change the engine's runtime settings now; an argument left at None is not changed.

    threads            n workers, each with a one-thread BLAS (what `minicnn --threads n` does);
                       not together with `workers` or `blas_threads`
    workers            how many parts minicnn splits a batch into, each on its own thread of
                       `minicnn.threads.pool()` (which grows or shrinks to fit at its next use)
    blas_threads       NumPy's BLAS threads: set at once on every loaded OpenBLAS (module docstring),
                       and written to THREAD_VARIABLES, which a BLAS reads as it loads (NumPy's, if
                       not imported yet; SciPy's) and child processes inherit. NumPy imported and
                       no OpenBLAS found: a warning, and nothing changed
    keep_freed_memory  True: glibc keeps freed arrays' memory for reuse (see `_set_malloc_thresholds`);
                       False: its starting thresholds again. Elsewhere than glibc, a no-op
    kernels            True / False: the fast kernels on / off (`use_kernels`)
    tune               True / False: the kernels' planner measures candidates / runs fixed defaults
                       (`use_tuning`)

    Counts are checked by `parse_threads`, flags must be bools: a ValueError naming the argument
    otherwise, before anything is changed.
    """
    global _workers, _blas_threads, _freed_memory_kept
    if threads is not None:
        if workers is not None or blas_threads is not None:
            raise ValueError(f"configure: threads={threads!r} means workers={threads!r} and blas_threads=1; "
                             f"give either threads or workers/blas_threads, got workers={workers!r}, "
                             f"blas_threads={blas_threads!r}")
        workers, blas_threads = parse_threads(threads, "configure: threads"), 1
    for name, flag in (("keep_freed_memory", keep_freed_memory), ("kernels", kernels), ("tune", tune)):
        if flag is not None and not isinstance(flag, bool):
            raise ValueError(f"configure: expected {name} True, False or None, got {flag!r}")
    workers = None if workers is None else parse_threads(workers, "configure: workers")
    blas_threads = None if blas_threads is None else parse_threads(blas_threads, "configure: blas_threads")
    if workers is not None:
        _workers = workers
    if blas_threads is not None and _set_blas_threads(blas_threads):
        _blas_threads = blas_threads
    if keep_freed_memory is not None:
        _freed_memory_kept = _set_malloc_thresholds(keep_freed_memory) and keep_freed_memory
    if kernels is not None:
        use_kernels(kernels)
    if tune is not None:
        use_tuning(tune)


@contextlib.contextmanager
def temporarily(**changes) -> Iterator[Settings]:
    """`with temporarily(workers=2): ...` runs the block with `configure(**changes)`, then puts back the
    settings, the thread variables and the OpenBLAS libraries' thread counts as they were (a library
    first loaded inside the block, such as SciPy's, gets the count the restored settings say).
    (`keep_freed_memory` is process-wide and not undone here: change it with `configure`.)"""
    global _workers, _blas_threads, _kernels, _tuning
    if "keep_freed_memory" in changes:
        raise ValueError("temporarily: keep_freed_memory is not undone at the end of a block; use configure")
    before = (_workers, _blas_threads, _kernels, _tuning)
    counts = {lib.path: lib.get_num_threads() for lib in blas_libraries()}
    variables = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    configure(**changes)
    try:
        yield settings()
    finally:
        _workers, _blas_threads, _kernels, _tuning = before
        for name, value in variables.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        try:
            outside = blas_thread_count()
        except ValueError:  # a bad variable: refused where a count is read, not while restoring
            outside = None
        for lib in blas_libraries():
            count = counts.get(lib.path, outside)
            if count is not None:
                lib.set_num_threads(count)


# ---- NumPy's BLAS --------------------------------------------------------------------------------------

OPENBLAS_SYMBOLS = (  # (set, get) pairs, as OpenBLAS builds name them (NumPy 2's wheels first)
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
)


@dataclass(frozen=True)
class OpenBlas:
    """One loaded OpenBLAS library and its two thread functions."""

    path: str
    library: ctypes.CDLL
    set_symbol: str
    get_symbol: str

    def get_num_threads(self) -> int:
        return int(getattr(self.library, self.get_symbol)())

    def set_num_threads(self, count: int) -> None:
        getattr(self.library, self.set_symbol)(ctypes.c_int(count))


def _loaded_library_paths() -> list[str]:
    """Files of the shared objects mapped into this process (Linux), else NumPy's bundled library
    folders (wheels for macOS keep theirs in numpy/.dylibs, for Linux and Windows in numpy.libs)."""
    maps = Path("/proc/self/maps")
    if maps.is_file():
        fields = (line.split(maxsplit=5) for line in maps.read_text().splitlines())
        return list(dict.fromkeys(f[5] for f in fields if len(f) == 6 and f[5].startswith("/")))
    numpy = sys.modules.get("numpy")
    if numpy is None or numpy.__file__ is None:
        return []
    home = Path(numpy.__file__).parent
    return [str(p) for folder in (home.parent / "numpy.libs", home / ".dylibs") if folder.is_dir()
            for p in sorted(folder.iterdir())]


def blas_libraries() -> list[OpenBlas]:
    """The OpenBLAS libraries already loaded in this process (none before NumPy is imported); a library
    is opened with RTLD_NOLOAD, so nothing new is ever loaded here."""
    found = []
    for path in _loaded_library_paths():
        if "openblas" not in Path(path).name.lower():
            continue
        try:
            library = ctypes.CDLL(path, mode=getattr(os, "RTLD_NOLOAD", 0))
        except OSError:  # not loaded after all
            continue
        for set_symbol, get_symbol in OPENBLAS_SYMBOLS:
            if hasattr(library, set_symbol) and hasattr(library, get_symbol):
                found.append(OpenBlas(path, library, set_symbol, get_symbol))
                break
    return found


def _set_blas_threads(count: int) -> bool:
    """`count` threads for NumPy's BLAS (see `configure`): on every loaded OpenBLAS, and in
    THREAD_VARIABLES for a BLAS loaded later (SciPy's, NumPy's own when not imported yet) and for child
    processes. False (with a warning, nothing changed) when NumPy is imported and no OpenBLAS is found."""
    libraries = blas_libraries() if "numpy" in sys.modules else []
    if "numpy" in sys.modules and not libraries:
        warnings.warn(f"configure: blas_threads={count} not applied: NumPy is imported and no OpenBLAS is "
                      f"loaded (another BLAS reads {THREAD_VARIABLES[0]} only before NumPy is imported)",
                      RuntimeWarning, stacklevel=3)
        return False
    for library in libraries:
        library.set_num_threads(count)
    for name in THREAD_VARIABLES:
        os.environ[name] = str(count)
    return True


# ---- glibc malloc --------------------------------------------------------------------------------------

MMAP_THRESHOLD_BYTES = 32 * 2**20  # glibc's largest allowed value: arrays up to 32 MB reuse freed memory
TRIM_THRESHOLD_BYTES = 2**30  # free memory kept at the top of the heap before glibc returns it
GLIBC_START_THRESHOLD_BYTES = 128 * 2**10  # both thresholds' starting values in glibc
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers (glibc malloc.h)


def _set_malloc_thresholds(keep: bool) -> bool:
    """Let freed arrays' memory be reused instead of returned to the OS (keep=True; glibc only).

    A training step allocates its activations and gradients afresh (about 200 MB for cifar_net at batch
    64), and glibc hands every block over 128 KB straight back to the OS when it is freed, so the next
    step page-faults it in again, about 1.3 us per 4 KiB: 20-25% of a cifar_net step (measured with
    MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ set, 1 thread). Raising both thresholds keeps freed
    blocks of up to MMAP_THRESHOLD_BYTES in the process for the next step. The peak resident memory is
    then the largest working set, which freed memory would be faulted back up to anyway. keep=False sets
    both back to glibc's starting values (glibc's own adjustment of them stays off). True when applied.
    """
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mmap, trim = (MMAP_THRESHOLD_BYTES, TRIM_THRESHOLD_BYTES) if keep else (GLIBC_START_THRESHOLD_BYTES,) * 2
    return bool(mallopt(M_MMAP_THRESHOLD, mmap)) and bool(mallopt(M_TRIM_THRESHOLD, trim))


# ---- the kernel switch ---------------------------------------------------------------------------------

def _flag_from_environment(name: str) -> bool:
    return _flag_of(name, os.environ.get(name, ""))


@functools.lru_cache(maxsize=64)
def _flag_of(name: str, raw: str) -> bool:
    """The flag variable `name`'s raw text as a bool, remembered per text (the variable is read at each call)."""
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}: expected 1 or 0 (also true/false, yes/no, on/off), got {value!r}")


def _plain_from_environment() -> bool:
    return _flag_from_environment(PLAIN_VARIABLE)


def tuning_enabled() -> bool:
    """True when the planner may time candidate kernels; False runs each operation's fixed default."""
    if _tuning is not None:
        return _tuning
    return not _flag_from_environment(NO_TUNE_VARIABLE)


def use_tuning(flag: bool | None) -> None:
    """Let the planner measure (True) or use fixed defaults (False); None follows $MINICNN_NO_TUNE again."""
    global _tuning
    if flag is not None and not isinstance(flag, bool):
        raise ValueError(f"use_tuning: expected True, False or None, got {flag!r}")
    _tuning = flag


def kernels_enabled() -> bool:
    """True when layers should take the fast kernels, False for the plain math."""
    if _kernels is not None:
        return _kernels
    return not _plain_from_environment()


def use_kernels(flag: bool | None) -> None:
    """Run the fast kernels (True) or only the plain math (False); None follows $MINICNN_PLAIN again."""
    global _kernels
    if flag is not None and not isinstance(flag, bool):
        raise ValueError(f"use_kernels: expected True, False or None, got {flag!r}")
    _kernels = flag


@contextlib.contextmanager
def plain() -> Iterator[None]:
    """`with minicnn.runtime.plain(): ...` runs the block on the plain course math, then restores."""
    global _kernels
    before = _kernels
    _kernels = False
    try:
        yield
    finally:
        _kernels = before
