"""What the planner needs to know about the machine: its CPU, its caches, its BLAS.

    cpu_model()          "AMD EPYC", "Intel(R) Xeon(R) Platinum 8481C", ... (/proc/cpuinfo, else platform)
    cache_sizes()        CacheSizes(l1, l2, l3, source): bytes per core of the data / unified caches, read
                         from the operating system (Linux sysfs, else sysconf), else FALLBACK_CACHES
    blas_description()   NumPy's version and its BLAS (name, version, the OPENBLAS_CORETYPE in force)
    fingerprint(workers) all of that as one dict: a stored plan is used only on a machine with the same
                         fingerprint (`minicnn.kernels.planner`)

Nothing here is read at import time; each call reads afresh (cheap: a few small files).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import NamedTuple

SYS_CACHE = Path("/sys/devices/system/cpu/cpu0/cache")
FALLBACK_CACHES = (32 * 2**10, 512 * 2**10, 8 * 2**20)  # L1d, L2, L3 bytes when the OS does not say
_SYSCONF = {1: "SC_LEVEL1_DCACHE_SIZE", 2: "SC_LEVEL2_CACHE_SIZE", 3: "SC_LEVEL3_CACHE_SIZE"}
_UNITS = {"K": 2**10, "M": 2**20, "G": 2**30}


class CacheSizes(NamedTuple):
    """Bytes of each cache level as one core sees it; `source` says where the numbers came from."""

    l1: int
    l2: int
    l3: int
    source: str  # "sysfs", "sysconf" or "fallback"


def cpu_model() -> str:
    """The CPU's model name, or "unknown CPU"."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _size(text: str) -> int:
    """sysfs cache size text ("48K", "1024K", "32M") -> bytes."""
    text = text.strip().upper()
    if text and text[-1] in _UNITS:
        return int(text[:-1]) * _UNITS[text[-1]]
    return int(text)


def _from_sysfs(root: Path) -> dict[int, int]:
    sizes = {}
    for index in sorted(root.glob("index*")):
        try:
            kind = (index / "type").read_text().strip()
            level = int((index / "level").read_text())
            size = _size((index / "size").read_text())
        except (OSError, ValueError):
            continue
        if kind in ("Data", "Unified") and size > 0:
            sizes[level] = size
    return sizes


def _from_sysconf() -> dict[int, int]:
    sizes = {}
    for level, name in _SYSCONF.items():
        try:
            value = os.sysconf(name)
        except (ValueError, OSError, AttributeError):
            continue
        if value and value > 0:
            sizes[level] = int(value)
    return sizes


def cache_sizes(root: Path = SYS_CACHE) -> CacheSizes:
    """The data caches of CPU 0: sysfs first, then sysconf, then FALLBACK_CACHES, level by level."""
    for source, sizes in (("sysfs", _from_sysfs(root)), ("sysconf", _from_sysconf())):
        if 1 in sizes and 2 in sizes:
            return CacheSizes(sizes[1], sizes[2], sizes.get(3, sizes[2]), source)
    return CacheSizes(*FALLBACK_CACHES, "fallback")


def blas_description() -> dict[str, str]:
    """NumPy's version and BLAS, as NumPy reports its build, plus the OpenBLAS core type in force."""
    import numpy as np

    blas = {}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except (TypeError, KeyError, AttributeError):  # an old NumPy without mode="dicts"
        pass
    return {"numpy": np.__version__, "blas": str(blas.get("name", "unknown")),
            "blas_version": str(blas.get("version", "unknown")),
            "coretype": os.environ.get("OPENBLAS_CORETYPE", "")}


def fingerprint(workers: int, blas_threads: int) -> dict[str, object]:
    """What a stored plan depends on: CPU model, caches, NumPy/BLAS build, worker and BLAS thread counts."""
    caches = cache_sizes()
    return {"cpu": cpu_model(), "caches": [caches.l1, caches.l2, caches.l3], **blas_description(),
            "workers": int(workers), "blas_threads": int(blas_threads)}
