"""One owner per run folder: `RunLock(folder)`, a lock file taken atomically.

    with RunLock(Path("runs/a")) as lock:   # RunLockError if another live process holds it
        ...                                 # train, write checkpoints and metrics
                                            # released on exit: normal, exception, Ctrl-C

The lock is the file `folder/run.lock`, created with O_CREAT | O_EXCL (the kernel lets exactly one
process create it) and holding the owner's PID, host name and start time as one JSON line. A lock
left by a process that died (same host, that PID no longer running) is *stale*: it is reported
(`lock.took_over` says whose it was) and taken over. Taking over is guarded by a second file,
`run.lock.break`, also made with O_EXCL: only its holder may delete a stale lock, and only after
reading it again and finding the same owner, so two runs that find one stale lock cannot both win.

A lock of another host is never judged stale (its PID means nothing here): the message says which
host holds it. Within one process the lock is re-entrant (`minicnn train` takes it before clearing
the folder for --overwrite; `fit` takes it again around the run).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

LOCK_NAME = "run.lock"
BREAK_SUFFIX = ".break"
BREAK_ABANDONED_S = 30.0  # a break file older than this was left by a process killed while taking over
_HELD: dict[Path, tuple[int, dict]] = {}  # lock file -> (times this process holds it, the owner it wrote)


class RunLockError(RuntimeError):
    """The run folder is in use by another run (or its lock cannot be read); the message says which."""


def _alive(pid: int) -> bool:
    """True when a process with this PID runs on this machine (signal 0 checks without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        return True
    return True


def _read_owner(path: Path) -> dict | None:
    """The owner recorded in a lock file, or None when it is empty or unreadable (being written)."""
    try:
        owner = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(owner, dict) and isinstance(owner.get("pid"), int) and isinstance(owner.get("host"), str)
    return owner if ok else None


def _describe(owner: dict) -> str:
    return f"process {owner['pid']} on {owner['host']}" + (f", since {owner['started']}" if "started" in owner else "")


class RunLock:
    """The lock of run folder `folder` (made, with its parents, when taken). See the module docstring."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.took_over: str | None = None  # "process N on HOST (since ...)" when a stale lock was taken over
        self._made: list[Path] = []  # folders this lock created (removed again when left empty)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock, or raise RunLockError naming the live owner."""
        key = self.path.absolute()
        if key in _HELD:
            count, owner = _HELD[key]
            _HELD[key] = (count + 1, owner)
            return
        self._make_folder()
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        for _attempt in range(3):  # a lock that vanishes between our looks: try again
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = _read_owner(self.path)
                if owner is None:
                    if not self.path.exists():
                        continue
                    raise RunLockError(f"{self.folder} is locked by another run ({self.path} names no owner yet); "
                                       f"if no run uses this folder, delete {self.path}") from None
                if owner["host"] != me["host"]:
                    raise RunLockError(f"{self.folder} is in use by {_describe(owner)}; a lock of another host "
                                       f"is never taken over: delete {self.path} if that run has ended") from None
                if owner["pid"] == me["pid"] or _alive(owner["pid"]):
                    raise RunLockError(f"{self.folder} is in use by another run ({_describe(owner)}); wait for it "
                                       f"to end or choose another --out") from None
                self._break_stale(owner)
                continue
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(me) + "\n")
                f.flush()
                os.fsync(f.fileno())
            _HELD[key] = (1, me)
            return
        raise RunLockError(f"{self.folder}: could not take the lock {self.path} (other runs kept changing it)")

    def _break_stale(self, stale: dict) -> None:
        """Delete the lock of dead process `stale` if it is still that one, holding the break file."""
        guard = self.path.with_name(self.path.name + BREAK_SUFFIX)
        try:
            fd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                abandoned = time.time() - guard.stat().st_mtime > BREAK_ABANDONED_S
            except FileNotFoundError:
                return  # the other taker is done: look again
            if abandoned:
                guard.unlink(missing_ok=True)
                return
            raise RunLockError(f"{self.folder}: another run is taking over its stale lock; try again") from None
        try:
            os.close(fd)
            if _read_owner(self.path) == stale:  # still the dead owner's: nobody took it over meanwhile
                self.path.unlink()
                self.took_over = _describe(stale)
        finally:
            guard.unlink(missing_ok=True)

    def release(self) -> None:
        """Give the lock back (the file is deleted only while it is still ours), then remove the
        folders the lock created if nothing else was written into them."""
        key = self.path.absolute()
        if key not in _HELD:
            return
        count, owner = _HELD.pop(key)
        if count > 1:
            _HELD[key] = (count - 1, owner)
            return
        if _read_owner(self.path) == owner:
            self.path.unlink(missing_ok=True)
        for folder in reversed(self._made):
            try:
                folder.rmdir()  # only succeeds when empty
            except OSError:
                break

    def _make_folder(self) -> None:
        missing = [p for p in (self.folder, *self.folder.parents) if not p.exists()]
        self.folder.mkdir(parents=True, exist_ok=True)
        self._made = list(reversed(missing))  # outermost first
