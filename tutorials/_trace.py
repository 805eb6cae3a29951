"""Did the code a step showed run in that step? A tracer that checks every `t.code` of a chapter.

    python -m tutorials._trace 6           one line per excerpt that did not run; exit 1 if any
    python -m tutorials._trace 6 --json    the same as JSON (tests/test_tutorials_shown_code.py)

The chapter runs as `--quick --no-pause` does, under `sys.settrace` (and `threading.settrace`, so
minicnn's worker threads are traced too; they must start after the tracer, hence a fresh process).
The tracer records, per step, every code object of the `minicnn` package that was entered and every
line of it that executed. `Tutorial.code` records what it printed (a `Shown`: object and file lines).
The rule, for each excerpt, in the step that printed it:

1. A function or method shown, whole or in part (`start=` / `end=`): its code object was entered.
2. An excerpt with executable lines (lines of a function body that compile to bytecode; a
   docstring, a comment, a blank line or a `def` line is not one): at least one of them executed.
3. A class or a module shown with no executable line (its docstring, a dataclass's fields) is
   text, not code: nothing to run.

A class shown whole passes rule 2 when any of its methods ran. For an excerpt that fails, the report
names the functions of the same file that ran in the step instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import io
import json
import os
import sys
import tempfile
import textwrap
import threading
import types
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

OUTSIDE_STEPS = 0  # the step number the tracer books code under between steps
REPORT_WIDTH = 80  # columns of the command's report


@dataclass(frozen=True)
class Miss:
    """An excerpt that did not run in its step: what was shown, why it fails, what ran instead."""

    step: int
    label: str
    lines: str  # "path:first-last", the path relative to the repository
    reason: str
    instead: list[str]


class _Tracer:
    """A `sys.settrace` function that books minicnn's code objects and lines under `self.step`."""

    def __init__(self, root: Path):
        self.root = str(root) + os.sep  # the package folder: a file under it is minicnn's
        self.step = OUTSIDE_STEPS
        self.entered: dict[int, set[types.CodeType]] = defaultdict(set)
        self.lines: dict[int, set[tuple[str, int]]] = defaultdict(set)
        self._resolved: dict[str, str | None] = {}  # co_filename -> resolved path inside the package

    def path(self, filename: str) -> str | None:
        if filename not in self._resolved:
            path = os.path.realpath(filename)
            self._resolved[filename] = path if path.startswith(self.root) else None
        return self._resolved[filename]

    def __call__(self, frame: types.FrameType, event: str, arg: object):
        if self.path(frame.f_code.co_filename) is None:
            return None  # not minicnn: no line events for this frame
        self.entered[self.step].add(frame.f_code)
        return self._line

    def _line(self, frame: types.FrameType, event: str, arg: object):
        if event == "line":
            self.lines[self.step].add((self.path(frame.f_code.co_filename), frame.f_lineno))
        return self._line


def _codes(code: types.CodeType) -> Iterator[types.CodeType]:
    """`code` and every code object nested in it."""
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


_EXECUTABLE: dict[str, set[int]] = {}


def executable_lines(path: str) -> set[int]:
    """Lines of `path` that compile to bytecode inside a function body (not its `def` line)."""
    if path not in _EXECUTABLE:
        module = compile(Path(path).read_text(), path, "exec")
        found = set()
        for code in _codes(module):
            if code.co_flags & inspect.CO_OPTIMIZED:  # a function, not a module or class body
                found |= {line for _, _, line in code.co_lines() if line and line != code.co_firstlineno}
        _EXECUTABLE[path] = found
    return _EXECUTABLE[path]


def function_code(obj: object) -> types.CodeType | None:
    """The code object a shown function or method runs; None for a class or a module."""
    if isinstance(obj, property):
        obj = obj.fget
    obj = inspect.unwrap(getattr(obj, "__func__", obj))
    return obj.__code__ if inspect.isfunction(obj) else None


def misses(shown: list, step: int, tracer: _Tracer, root: Path) -> list[Miss]:
    """The excerpts of one step (a list of `Shown`) that break the rule of the module docstring."""
    found = []
    for s in shown:
        others = {function_code(o.obj) for o in shown if o is not s}  # shown too: not "instead"
        code = function_code(s.obj)
        span = set(range(s.first, s.last + 1)) & executable_lines(s.path)
        ran = {line for path, line in tracer.lines[step] if path == s.path}
        if code is not None and code not in tracer.entered[step]:
            reason = "the function was not called in this step"
        elif span and not span & ran:
            reason = "none of the excerpt's lines executed in this step"
        else:
            continue
        instead = sorted({c.co_qualname for c in tracer.entered[step] - others
                          if tracer.path(c.co_filename) == s.path and not c.co_qualname.endswith(">")})
        rel = Path(s.path).relative_to(root).as_posix()
        found.append(Miss(step, s.label, f"{rel}:{s.first}-{s.last}", reason, instead))
    return found


def trace_chapter(number: int, fig_dir: str | os.PathLike) -> tuple[int, str, list[Miss]]:
    """Run chapter `number` (quick, no pause) under the tracer: (exit code, output, misses).
    Worker threads started before this call are not traced: call it in a fresh process."""
    from . import load_chapter

    return trace_steps(load_chapter(number), number, fig_dir)


def trace_steps(chapter, number: int, fig_dir: str | os.PathLike) -> tuple[int, str, list[Miss]]:
    """`trace_chapter` for a chapter module (or any object with TITLE, SUMMARY and STEPS)."""
    import minicnn

    from ._runner import run_steps

    package = Path(minicnn.__file__).resolve().parent
    tracer = _Tracer(package)
    shown: dict[int, list] = {}

    def traced(k: int, run):
        def step(t) -> None:
            before = len(t.shown)
            tracer.step = k
            try:
                run(t)
            finally:
                tracer.step = OUTSIDE_STEPS
            shown[k] = t.shown[before:]  # a step that stopped (a failed check, no data) is not judged
        return step

    steps = [dataclasses.replace(s, run=traced(k, s.run)) for k, s in enumerate(chapter.STEPS, 1)]
    wrapped = types.SimpleNamespace(TITLE=chapter.TITLE, SUMMARY=chapter.SUMMARY, STEPS=steps)
    out = io.StringIO()
    previous, previous_threads = sys.gettrace(), threading.gettrace()  # e.g. a coverage tool's
    threading.settrace(tracer)
    sys.settrace(tracer)
    try:
        rc = run_steps(wrapped, number, pause=False, quick=True, fig_dir=fig_dir, out=out, width=80)
    finally:
        sys.settrace(previous)
        threading.settrace(previous_threads)
    found = [m for k in sorted(shown) for m in misses(shown[k], k, tracer, package.parent)]
    return rc, out.getvalue(), found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tutorials._trace", description=__doc__.splitlines()[0])
    parser.add_argument("chapter", type=int)
    parser.add_argument("--json", action="store_true", help="print the exit code, output and misses as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as fig_dir:
        rc, text, found = trace_chapter(args.chapter, fig_dir)
    if args.json:
        print(json.dumps({"rc": rc, "output": text, "misses": [dataclasses.asdict(m) for m in found]}))
        return 0
    if rc != 0:
        print(text[-2000:])
        print(f"chapter {args.chapter} exited with {rc}")
    for m in found:
        for line in (f"step {m.step}: {m.label} ({m.lines}): {m.reason}",
                     f"ran instead: {', '.join(m.instead) or 'nothing from that file'}"):
            print(textwrap.fill(line, REPORT_WIDTH, subsequent_indent="    ", break_on_hyphens=False))
    return 1 if found or rc != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
