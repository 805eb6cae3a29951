"""The learner's code in a child process that holds no expected values.

    Session(path, shown, rules, timeout)     start `child.py` on the learner's file
    session.call(name, *args, **kwargs)      send the inputs, get the outputs back (or LearnerError)

(`grading.grade` is the parent's side that uses it.)

The parent (this process) builds every case and keeps every expected value; the child receives the
inputs of one call at a time, runs the learner's function on them and answers with the outputs, the
names of the arguments the function changed in place, and what it printed. Values travel as JSON
(`child.encode` / `child.decode`), so nothing the child sends is ever unpickled here. One deadline
covers the whole check: a child still running after `timeout` seconds is killed.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minicnn.exercises.child import decode, encode

CHILD = Path(__file__).with_name("child.py")
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # minicnn/: the child refuses to read files in it


class LearnerError(Exception):
    """An exception raised inside the learner's code: their traceback lines, already formatted."""

    def __init__(self, function: str, lines: list[str], not_implemented: bool = False, line: int = 0):
        super().__init__(lines[-1] if lines else function)
        self.function, self.lines, self.not_implemented, self.line = function, lines, not_implemented, line


class ChildStopped(Exception):
    """The child ended without answering (it crashed, called os._exit, or ran out of time)."""

    def __init__(self, message: str, timed_out: bool = False):
        super().__init__(message)
        self.timed_out = timed_out


@dataclass
class Rules:
    """What the child refuses: modules (name -> the rule shown) and numpy functions (name -> rule)."""

    modules: dict[str, str] = field(default_factory=dict)
    numpy: dict[str, str] = field(default_factory=dict)
    data_dirs: tuple[str, ...] = ()  # folders whose files the child may not open (the datasets)


class Session:
    """One child process running the learner's file; `call` runs one of their functions there.
    `driver`, when given, is NumPy-only source the child runs after their file (see child.py)."""

    def __init__(self, path: Path, shown: str, rules: Rules, timeout: float, driver: str = ""):
        self.shown, self.timeout = shown, timeout
        self.deadline = time.monotonic() + timeout
        self.printed: list[str] = []
        self.changed: list[tuple[str, list[str]]] = []  # (function, arguments it changed) per call
        config = {"path": str(Path(path).resolve()), "shown": shown, "package_dir": str(PACKAGE_DIR),
                  "forbidden": rules.modules, "numpy_forbidden": rules.numpy, "data_dirs": list(rules.data_dirs),
                  "driver": driver}
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        self._stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen([sys.executable, "-I", str(CHILD), json.dumps(config)], env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                        text=True)
        try:
            first = self._receive()
        except BaseException:  # the child ended while loading the file: no Session for the caller to close
            self.close()
            raise
        self.printed += first.get("printed", [])
        self.load_error: list[str] = [] if first["ok"] else first["error"]
        self.functions: list[str] = first.get("functions", [])

    def _receive(self) -> dict:
        remaining = self.deadline - time.monotonic()
        ready = select.select([self.process.stdout], [], [], max(remaining, 0))[0] if remaining > 0 else []
        if not ready:
            self.close()
            raise ChildStopped(f"{self.shown} was still running after {self.timeout:g} s and was stopped.",
                               timed_out=True)
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            self._stderr.seek(0)
            tail = self._stderr.read().decode(errors="replace").strip().splitlines()[-3:]
            raise ChildStopped("\n".join([f"checking {self.shown} stopped without a result (exit code {code})"]
                                         + tail))
        try:
            return json.loads(line)
        except ValueError as exc:
            raise ChildStopped(f"checking {self.shown}: the child sent something unreadable ({exc})") from exc

    def call(self, function: str, *args: Any, **kwargs: Any) -> Any:
        """Run the learner's `function` on these inputs in the child; its result (LearnerError if it
        raised). The arguments it changed in place are recorded in `self.changed`."""
        try:
            self.process.stdin.write(json.dumps({"function": function, "args": encode(list(args)),
                                                 "kwargs": encode(kwargs)}) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the child is gone; _receive says how
        answer = self._receive()
        self.printed += answer.get("printed", [])
        if not answer["ok"]:
            raise LearnerError(function, answer["error"], answer.get("not_implemented", False),
                               answer.get("line", 0))
        if answer["changed"]:
            self.changed.append((function, answer["changed"]))
        return decode(answer["result"])

    def proxy(self, function: str):
        """A callable that runs the learner's `function` in the child."""
        def call(*args, **kwargs):
            return self.call(function, *args, **kwargs)
        call.__name__ = function
        return call

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self._stderr.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

