"""The planner: which kernel is fastest for this call, measured on the real operands, then remembered.

In the spirit of cuDNN's benchmark mode and FFTW's planner. A kernel entry point that has several ways
to compute the same numbers (block sizes, layouts, one product or one per image, ...) hands them to

    result = planner().run(key, candidates)     # candidates: {name: zero-argument callable}

`key` names the operation and everything its speed depends on (shapes, stride, padding, dilation,
groups, dtype, workers): see `op_key`. The first call with a new key runs the candidates once each on
the real operands, in their order, timing each, until the time spent reaches BUDGET times the
default's (the candidates left are then not tried: callers list likely winners first); checks that each
result agrees with the first candidate's (one that disagrees is dropped with a one-line warning and
never chosen); times the default once more when it lost (it ran first, cold: fresh memory, the first
product of its shape); times the two fastest once more when they are within CLOSE of each other; keeps the
fastest, and returns ITS result, so planning costs only the other candidates' calls. Later calls
with the key run the chosen one directly.

A caller may also hand `run` a `trial`: the same candidates on a part of the operands (the convolutions
give the first TRIAL_FRACTION of a batch, never less than the largest block a candidate works on). The
candidates are then measured, and checked against each other, on that part only, and the chosen one
runs once on the whole: planning costs about TRIAL_FRACTION of measuring on the whole batch, plus the
default's trial call. The blocked candidates work block by block, so their time per image on a few
blocks is their time per image on many (the same reason plans are lent across batch sizes, below).
`planning_seconds` then counts every trial call. The plan's seconds are the trial's, times the trial
mapping's `scale` attribute when it has one (whole batch / part: an estimate for the whole batch).

A key's `batch=` field is the one thing a plan is lent across: once one batch size of an operation
has been measured, its other batch sizes (a network's evaluation batches, an epoch's last, partial
batch) take the same choice without measuring (`Plan.lent`). The candidates work on cache-sized blocks
of images, so which one wins hardly depends on how many blocks there are; measuring every batch size
separately cost 19-26% of a cifar_net epoch on the 4,000-image partial CIFAR-10 (25 plans, 20-30 s of
measuring, busy 2-core AMD EPYC, `minicnn train --model cifar_net`). Lent plans are not written to the
plan file (they are lent again next time).

Plans are remembered for the process and, unless $MINICNN_PLANS=off, in a file per machine under the
user's cache folder (`plan_file()`: $MINICNN_CACHE_DIR, else $XDG_CACHE_HOME/minicnn, else
~/.cache/minicnn), named by PLAN_VERSION and a digest of `machine.fingerprint` (CPU model, caches, NumPy
and BLAS build, worker and BLAS thread counts). A file that is damaged, of another version or of
another machine is ignored with a one-line note, never trusted. A plan measured while other programs
used more than the cores minicnn's threads leave free plus BUSY_SHARE of one (Linux's /proc/stat, the
hypervisor's steal included: `other_cpu_seconds`) is used in this process but never written, so the
next run measures it again: a busy moment would otherwise fix a wrong choice for every later run. The
machine's facts are read once per process, the thread counts at each call; when these change, the plans
made so far are saved to their own file and those of the new counts read. The file is written (atomically) when
`save()` is called and when the process exits.

With tuning off (`minicnn --no-tune`, `minicnn.runtime.configure(tune=False)`, MINICNN_NO_TUNE=1) the
first candidate, the fixed default, always runs: reproducible timing, no measurement.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from minicnn import runtime
from minicnn.files import write_atomic

from . import machine

PLAN_VERSION = 1
CLOSE = 0.10  # the two fastest candidates are timed once more when within 10% of each other
_BATCH_FIELD = re.compile(r"\|batch=\d+")  # the part of a key a plan may be lent across (module docstring)
BUDGET = 8.0  # candidates stop being tried once those tried took BUDGET times the default's time
# results must agree this closely, relative to the largest value: float32 sums of ~10^5 terms in a naive order
# (the plain math's db over N*OH*OW) drift by ~n*eps = 4e-3; a wrong kernel (a tap, a pad) is off by O(1)
AGREE_RTOL = {np.dtype(np.float32): 1e-2, np.dtype(np.float64): 1e-9}
TUPLE_FLOOR = 1e-3  # a part of a tuple result is compared on at least this share of the tuple's largest number
BUSY_SHARE = 0.25  # not stored: a plan measured while other programs used the free cores and a quarter of one more;
#   on the shared 2-core AMD EPYC one plan of six chose four unsplit backward passes on trial times 1-3% below
#   the split's, 214 against 148 ms per cifar_net step at 2 workers (benchmarks/bench_plans.py), most likely
#   measured while the other core was taken; stored, it would have cost every later run as much
BUSY_MIN_SECONDS = 0.03  # three clock ticks: /proc/stat counts in ticks of 10 ms, this process's own as well
PLANS_VARIABLE = "MINICNN_PLANS"  # "off": keep plans for this process only, read and write no file
CACHE_VARIABLE = "MINICNN_CACHE_DIR"


@dataclass
class Plan:
    """The choice for one key: the candidate's name and every candidate's measured seconds."""

    choice: str
    seconds: dict[str, float]
    stored: bool = False  # True when it came from the plan file
    lent: bool = False  # True when taken from another batch size of the same operation (no measurement)
    busy: bool = False  # True when other programs used the CPU while it was measured: this process only


@dataclass
class Planner:
    """The process's plans (`planner()`), their file, and the time spent measuring."""

    plans: dict[str, Plan] = field(default_factory=dict)
    planning_seconds: float = 0.0  # time spent measuring, but for the kept call of each plan
    measured: int = 0  # keys planned by measuring in this process
    used: dict[str, bool] = field(default_factory=dict)  # key -> measured now (True) or read from the file,
    #                                                      in the order of first use in this process
    notes: list[str] = field(default_factory=list)
    store_busy: bool = False  # True: busy plans are written too (a benchmark's pre-planning, which must leave
    #                           every plan in the file whatever else the machine runs)
    _loaded: str | None = None  # the fingerprint digest whose file was read
    _fingerprint: dict | None = None  # the fingerprint the plans in memory were made under
    _dirty: bool = False
    _seen: tuple | None = None  # ((workers, BLAS threads), $MINICNN_PLANS) at the last `_load` that read the file
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, key: str, candidates: Mapping[str, Callable[[], object]], counts: tuple[int, int] | None = None,
            trial: Callable[[], Mapping[str, Callable[[], object]] | None] | None = None):
        """The result of the planned candidate for `key` (planned now, by measuring, if new).

        `candidates`: any mapping, its first entry the default (only the ones called are looked up);
        `counts`: (workers, BLAS threads) when the caller has read them already; `trial`: when given, a
        call making the same candidates on part of the operands (a few cache-sized blocks of the batch),
        which are then measured instead, and only the chosen one runs on the whole (module docstring);
        the call may return None (the operands are too small to part): then the whole is measured."""
        if not candidates:
            raise ValueError(f"planner: expected at least one candidate for {key}")
        if len(candidates) == 1 or not runtime.tuning_enabled():
            return candidates[_first_name(candidates)]()
        self._load(counts)
        plan = self.plans.get(key)
        if plan is None:
            plan = self._lend(key, candidates)
        if plan is not None and plan.choice in candidates:
            self.used.setdefault(key, not plan.stored)
            return candidates[plan.choice]()
        self.used[key] = True
        part = None if trial is None else trial()
        if part is None:
            return self._measure(key, candidates)
        began = time.perf_counter()
        self._measure(key, part, kept=False)
        with self._lock:
            self.planning_seconds += time.perf_counter() - began
            scale = getattr(part, "scale", 1.0)  # the trial's times, as estimates for the whole batch
            self.plans[key].seconds = {name: t * scale for name, t in self.plans[key].seconds.items()}
        return candidates[self.plans[key].choice]()

    def _lend(self, key: str, candidates: Mapping[str, Callable[[], object]]) -> Plan | None:
        """The choice of a measured plan of the same operation at another batch size, kept for `key`."""
        family = _BATCH_FIELD.sub("", key)
        if family == key:
            return None
        for other, plan in self.plans.items():
            if not plan.lent and plan.choice in candidates and _BATCH_FIELD.sub("", other) == family:
                with self._lock:
                    self.plans[key] = lent = Plan(plan.choice, {}, plan.stored, lent=True)
                    self._dirty = True
                return lent
        return None

    def _measure(self, key: str, candidates: Mapping[str, Callable[[], object]], kept: bool = True):
        """Time the candidates, keep the plan, return the chosen one's result; `kept=False` (a trial on part
        of the operands): nothing of it is used, so none of its time is added to planning_seconds here.
        A plan measured while other programs used more than BUSY_SHARE of a core (`other_cpu_seconds`) is
        marked busy: used in this process, never written to the plan file, so the next run measures again."""
        began, others = time.perf_counter(), other_cpu_seconds()
        seconds, results = {}, {}
        for name, fn in candidates.items():
            if seconds and sum(seconds.values()) > BUDGET * seconds[_first_name(candidates)]:
                break  # the budget is spent: the candidates not yet tried are not measured (put likely winners first)
            start = time.perf_counter()
            results[name] = fn()
            seconds[name] = time.perf_counter() - start
        reference = next(iter(results.values()))
        for name in list(results)[1:]:
            if not _agree(results[name], reference):
                self._note(f"planner: candidate {name!r} of {key} disagrees with {next(iter(results))!r}; "
                           "dropped")
                del seconds[name]
        first = _first_name(candidates)
        ranked = sorted(seconds, key=seconds.get)
        if ranked[0] != first:  # the default ran first, cold (fresh memory, first product of its shape): once more
            start = time.perf_counter()
            candidates[first]()
            seconds[first] = min(seconds[first], time.perf_counter() - start)
            ranked = sorted(seconds, key=seconds.get)
        if len(ranked) > 1 and seconds[ranked[1]] <= seconds[ranked[0]] * (1 + CLOSE):
            for name in ranked[:2]:  # too close to call from one run each: once more, keep the better
                start = time.perf_counter()
                results[name] = candidates[name]()
                seconds[name] = min(seconds[name], time.perf_counter() - start)
            ranked = sorted(seconds, key=seconds.get)
        choice = ranked[0]
        busy = _busy(others, other_cpu_seconds(), time.perf_counter() - began, _spare_cores())
        with self._lock:
            self.plans[key] = Plan(choice, seconds, busy=busy)
            if kept:
                self.planning_seconds += time.perf_counter() - began - seconds[choice]  # all but the kept call
            self.measured += 1
            self._dirty = True
        return results[choice]

    def _note(self, message: str) -> None:
        self.notes.append(message)
        print(message, file=sys.stderr)

    # ---- the plan file ---------------------------------------------------------------------------------

    def _load(self, counts: tuple[int, int] | None = None) -> None:
        switch = os.environ.get(PLANS_VARIABLE, "")
        if counts is not None and (counts, switch) == self._seen:
            return  # the usual call: nothing changed since the last one (comparing two tuples, ~0.1 us)
        if switch.strip().lower() == "off":
            return
        fingerprint = _fingerprint(counts)
        self._seen = (fingerprint["workers"], fingerprint["blas_threads"]), switch
        if fingerprint == self._fingerprint:
            return
        digest = _digest(fingerprint)
        if self._loaded is not None:  # another thread count than before: the plans of the old one go to its file
            self.save_if_changed()
            with self._lock:
                self.plans.clear()
                self.used.clear()
        self._loaded, self._fingerprint = digest, fingerprint
        stored = self.stored()
        with self._lock:
            for k, plan in stored.items():
                self.plans.setdefault(k, plan)

    def stored(self) -> dict[str, Plan]:
        """The plans in this machine's plan file ({} when there is none, or it is damaged or foreign: noted)."""
        path = plan_file()
        if os.environ.get(PLANS_VARIABLE, "").strip().lower() == "off" or not path.exists():
            return {}
        try:
            data = json.loads(path.read_text())
            if data.get("version") != PLAN_VERSION or data.get("fingerprint") != _fingerprint():
                raise ValueError("written for another version or machine")
            return {k: Plan(str(v["choice"]), {n: float(s) for n, s in v["seconds"].items()}, True)
                    for k, v in data["plans"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            self._note(f"planner: ignoring the plan file {path} ({e}); plans will be measured afresh")
            return {}

    def save(self) -> Path | None:
        """Write the plans to `plan_file()` (atomically); None when plans are kept in memory only. Raises
        OSError when it cannot be written, minicnn.files.TargetError (a ValueError) when a folder, link or
        device stands where the file goes (never written through)."""
        if os.environ.get(PLANS_VARIABLE, "").strip().lower() == "off" or not self.plans:
            return None
        fingerprint = self._fingerprint or _fingerprint()  # the plans' own, not the one at exit (settings restored)
        path = cache_dir() / f"plans-v{PLAN_VERSION}-{_digest(fingerprint)}.json"
        data = {"version": PLAN_VERSION, "fingerprint": fingerprint,
                "plans": {k: {"choice": p.choice, "seconds": p.seconds} for k, p in sorted(self.plans.items())
                          if not (p.lent or (p.busy and not self.store_busy))}}
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda tmp: tmp.write_text(json.dumps(data, indent=1)), overwrite=True)
        self._dirty = False
        return path

    def clear(self) -> list[Path]:
        """Forget every plan, in memory and on disk (every minicnn plan file in the cache folder)."""
        with self._lock:
            self.plans.clear()
            self.used.clear()
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
            except (OSError, ValueError) as e:  # a read-only home, a folder or link where the file goes:
                # plans stay in memory, say so once (ValueError: minicnn.files.TargetError)
                print(f"planner: could not save the plans ({e}); they will be measured again next time",
                      file=sys.stderr)


def other_cpu_seconds(stat: Path = Path("/proc/stat"), own: Path = Path("/proc/self/stat")) -> float | None:
    """CPU seconds every program but this process has used since boot, the hypervisor's steal included
    (Linux's /proc/stat and /proc/self/stat, in clock ticks); None where they cannot be read."""
    try:
        user, nice, sys_, _idle, _iowait, irq, softirq, steal = map(int, stat.read_text().split()[1:9])
        mine = own.read_text().rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        return (user + nice + sys_ + irq + softirq + steal - int(mine[11]) - int(mine[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _spare_cores() -> int:
    """The machine's cores (all of them: /proc/stat counts every core) less the threads minicnn runs on."""
    from minicnn import threads

    return max((os.cpu_count() or 1) - threads.own_threads(), 0)


def _busy(before: float | None, after: float | None, wall: float, spare: int = 0) -> bool:
    """True when other programs used more than the `spare` cores (those minicnn's threads leave free) plus
    BUSY_SHARE of one over `wall` seconds (and at least BUSY_MIN_SECONDS: the counts are in clock ticks), so
    that they must have taken time from the measured threads; False when that cannot be read."""
    if before is None or after is None:
        return False
    return after - before > max((spare + BUSY_SHARE) * wall, BUSY_MIN_SECONDS)


def _first_name(candidates: Mapping) -> str:
    """The first candidate's name: the fixed default."""
    return next(iter(candidates))


def _largest(result) -> float:
    """The largest magnitude among a result's finite numbers (a tuple's arrays taken together)."""
    if isinstance(result, tuple):
        return max((_largest(part) for part in result), default=0.0)
    if result is None:
        return 0.0
    values = np.abs(np.asarray(result, dtype=np.float64))
    return float(np.max(values[np.isfinite(values)], initial=0.0))


def _agree(a, b, floor: float = 0.0) -> bool:
    """Two candidates' results are the same numbers (arrays, or tuples of arrays and None). The parts of
    a tuple are each compared on their own scale, but never a scale below TUPLE_FLOOR of the tuple's
    largest number: a bias gradient before BatchNorm is a sum that cancels to rounding noise (1e-10
    beside a weight gradient of 5e-4, measured on a UNet), and two summation orders give two noises."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        floor = TUPLE_FLOOR * _largest(b)
        return len(a) == len(b) and all(_agree(x, y, floor) for x, y in zip(a, b, strict=True))
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    finite = np.isfinite(b)
    if not np.array_equal(finite, np.isfinite(a)) or not np.array_equal(a[~finite], b[~finite], equal_nan=True):
        return False  # NaN and inf (operands may hold them) must sit in the same places, as the same values
    a, b = a[finite], b[finite]
    rtol = AGREE_RTOL.get(np.result_type(a, b), 1e-3)
    scale = max(float(np.max(np.abs(b), initial=0.0)), floor, 1e-30)
    return bool(np.all(np.abs(a - b) <= rtol * scale + 1e-30))


@functools.cache
def _machine() -> dict[str, object]:
    """The machine's part of the fingerprint, read once per process (reading it costs ~3 ms: too much
    for every convolution call); the thread counts are read at each call."""
    return machine.fingerprint(1, 1)


def _fingerprint(counts: tuple[int, int] | None = None) -> dict[str, object]:
    """The machine's facts and the (workers, BLAS threads) `counts` (read now when None)."""
    from minicnn import threads

    workers, blas = counts or (threads.configured_workers(), threads.configured_threads())
    return {**_machine(), "workers": workers, "blas_threads": blas}


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
