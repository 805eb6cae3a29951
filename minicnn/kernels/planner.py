"""The planner: which kernel is fastest for this call, measured on the real operands, then remembered.

In the spirit of cuDNN's benchmark mode and FFTW's planner. A kernel entry point that has several ways
to compute the same numbers (block sizes, layouts, one product or one per image, ...) hands them to

    result = planner().run(key, candidates)     # candidates: {name: zero-argument callable}

`key` names the operation and everything its speed depends on (shapes, stride, padding, dilation,
groups, dtype, workers): see `op_key`. The first call with a new key runs EVERY candidate once on the
real operands, timing each (the two fastest once more when they are within CLOSE of each other),
checks that each candidate's result agrees with the first candidate's (a candidate that disagrees is
dropped with a one-line warning and never chosen), keeps the fastest, and returns ITS result, so
planning costs only the other candidates' calls. Later calls with the key run the chosen one directly.

Plans are remembered for the process and, unless $MINICNN_PLANS=off, in a file per machine under the
user's cache folder (`plan_file()`: $MINICNN_CACHE_DIR, else $XDG_CACHE_HOME/minicnn, else
~/.cache/minicnn), named by PLAN_VERSION and a digest of `machine.fingerprint` (CPU model, caches, NumPy
and BLAS build, worker and BLAS thread counts). A file that is damaged, of another version or of
another machine is ignored with a one-line note, never trusted. The file is written (atomically) when
`save()` is called and when the process exits.

With tuning off (`minicnn --no-tune`, `minicnn.runtime.configure(tune=False)`, MINICNN_NO_TUNE=1) the
first candidate, the fixed default, always runs: reproducible timing, no measurement.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from minicnn import runtime

from . import machine

PLAN_VERSION = 1
CLOSE = 0.10  # the two fastest candidates are timed once more when within 10% of each other
AGREE_RTOL = {np.dtype(np.float32): 1e-3, np.dtype(np.float64): 1e-9}  # results must agree this closely
PLANS_VARIABLE = "MINICNN_PLANS"  # "off": keep plans for this process only, read and write no file
CACHE_VARIABLE = "MINICNN_CACHE_DIR"


@dataclass
class Plan:
    """The choice for one key: the candidate's name and every candidate's measured seconds."""

    choice: str
    seconds: dict[str, float]
    stored: bool = False  # True when it came from the plan file


@dataclass
class Planner:
    """The process's plans (`planner()`), their file, and the time spent measuring."""

    plans: dict[str, Plan] = field(default_factory=dict)
    planning_seconds: float = 0.0  # time spent in candidates whose result was not used
    measured: int = 0  # keys planned by measuring in this process
    notes: list[str] = field(default_factory=list)
    _loaded: str | None = None  # the fingerprint digest whose file was read
    _dirty: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, key: str, candidates: dict[str, Callable[[], object]]):
        """The result of the planned candidate for `key` (planned now, by measuring, if new)."""
        names = list(candidates)
        if not names:
            raise ValueError(f"planner: expected at least one candidate for {key}")
        if len(names) == 1 or not runtime.tuning_enabled():
            return candidates[names[0]]()
        self._load()
        plan = self.plans.get(key)
        if plan is not None and plan.choice in candidates:
            return candidates[plan.choice]()
        return self._measure(key, candidates)

    def _measure(self, key: str, candidates: dict[str, Callable[[], object]]):
        seconds, results = {}, {}
        for name, fn in candidates.items():
            start = time.perf_counter()
            results[name] = fn()
            seconds[name] = time.perf_counter() - start
        reference = next(iter(results.values()))
        for name in list(results)[1:]:
            if not _agree(results[name], reference):
                self._note(f"planner: candidate {name!r} of {key} disagrees with {next(iter(results))!r}; "
                           "dropped")
                del seconds[name]
        ranked = sorted(seconds, key=seconds.get)
        if len(ranked) > 1 and seconds[ranked[1]] <= seconds[ranked[0]] * (1 + CLOSE):
            for name in ranked[:2]:  # too close to call from one run each: once more, keep the better
                start = time.perf_counter()
                results[name] = candidates[name]()
                seconds[name] = min(seconds[name], time.perf_counter() - start)
            ranked = sorted(seconds, key=seconds.get)
        choice = ranked[0]
        with self._lock:
            self.plans[key] = Plan(choice, seconds)
            self.planning_seconds += sum(seconds.values()) - seconds[choice]
            self.measured += 1
            self._dirty = True
        return results[choice]

    def _note(self, message: str) -> None:
        self.notes.append(message)
        print(message, file=sys.stderr)

    # ---- the plan file ---------------------------------------------------------------------------------

    def _load(self) -> None:
        if os.environ.get(PLANS_VARIABLE, "").strip().lower() == "off":
            return
        digest = _digest(_fingerprint())
        if self._loaded == digest:
            return
        self._loaded = digest
        path = plan_file()
        if not path.exists():
            return
        try:
            data = json.loads(path.read_text())
            if data.get("version") != PLAN_VERSION or data.get("fingerprint") != _fingerprint():
                raise ValueError("written for another version or machine")
            stored = {k: Plan(str(v["choice"]), {n: float(s) for n, s in v["seconds"].items()}, True)
                      for k, v in data["plans"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            self._note(f"planner: ignoring the plan file {path} ({e}); plans will be measured afresh")
            return
        with self._lock:
            for k, plan in stored.items():
                self.plans.setdefault(k, plan)

    def save(self) -> Path | None:
        """Write the plans to `plan_file()` (atomically); None when plans are kept in memory only."""
        if os.environ.get(PLANS_VARIABLE, "").strip().lower() == "off" or not self.plans:
            return None
        path = plan_file()
        data = {"version": PLAN_VERSION, "fingerprint": _fingerprint(),
                "plans": {k: {"choice": p.choice, "seconds": p.seconds} for k, p in sorted(self.plans.items())}}
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=1)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self._dirty = False
        return path

    def clear(self) -> list[Path]:
        """Forget every plan, in memory and on disk (every minicnn plan file in the cache folder)."""
        with self._lock:
            self.plans.clear()
            self._dirty = False
        removed = []
        for path in sorted(cache_dir().glob("plans-v*.json")):
            path.unlink()
            removed.append(path)
        return removed

    def save_if_changed(self) -> None:
        if self._dirty:
            try:
                self.save()
            except OSError as e:  # a read-only home: plans stay in memory, say so once
                print(f"planner: could not save the plans ({e}); they will be measured again next time",
                      file=sys.stderr)


def _agree(a, b) -> bool:
    """Two candidates' results are the same numbers (arrays, or tuples of arrays and None)."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_agree(x, y) for x, y in zip(a, b, strict=True))
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    rtol = AGREE_RTOL.get(np.result_type(a, b), 1e-3)
    scale = max(float(np.max(np.abs(b), initial=0.0)), 1e-30)
    return bool(np.all(np.abs(a - b) <= rtol * scale + 1e-30))


def _fingerprint() -> dict[str, object]:
    from minicnn import threads

    return machine.fingerprint(threads.configured_workers(), threads.configured_threads())


def _digest(fingerprint: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]


def cache_dir() -> Path:
    """Where plan files live: $MINICNN_CACHE_DIR, else $XDG_CACHE_HOME/minicnn, else ~/.cache/minicnn."""
    if os.environ.get(CACHE_VARIABLE, "").strip():
        return Path(os.environ[CACHE_VARIABLE])
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache"
    return Path(base) / "minicnn"


def plan_file() -> Path:
    """This machine's plan file: plans-v{PLAN_VERSION}-{digest of the fingerprint}.json in `cache_dir()`."""
    return cache_dir() / f"plans-v{PLAN_VERSION}-{_digest(_fingerprint())}.json"


def op_key(op: str, *arrays: np.ndarray, **settings) -> str:
    """A plan key: the operation, each array's shape and dtype, every setting, and the worker count."""
    from minicnn import threads

    parts = [op] + [f"{'x'.join(map(str, a.shape))}:{a.dtype}" for a in arrays]
    parts += [f"{k}={v}" for k, v in sorted(settings.items())]
    parts.append(f"workers={threads.configured_workers()}")
    return "|".join(parts)


_PLANNER = Planner()
atexit.register(_PLANNER.save_if_changed)


def planner() -> Planner:
    """The process's planner."""
    return _PLANNER
