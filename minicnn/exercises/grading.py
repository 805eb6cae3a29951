"""Grade a learner's file against the engine: run the cases, report what passed and why not.

`grade(exercise, path)` runs in the current process; `minicnn.exercises.runner.check_file` runs it in
a child process with a time limit (the command line always does, so a file that hangs cannot hang
the command). The result is a `Report`: one table row per case and, for the first failing case, the
details (index of the worst element, expected vs got) and a hint. An exception in the learner's code
is shown as the learner's own traceback: only the frames that belong to their file.
"""

from __future__ import annotations

import contextlib
import io
import os
import traceback
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from minicnn.exercises.spec import Exercise, GradCase, Mistake, ValueCase

WIDTH = 80  # every line of a report fits a terminal of this width
MAX_FRAMES = 8  # at most this many frames of the learner's traceback (deeper: first 2, last 3)
MATCH_RTOL, MATCH_ATOL = 1e-6, 1e-9  # how close a learner's value must be to a known wrong answer


@dataclass
class Row:
    status: str  # "PASS", "FAIL" or "skip"
    kind: str  # "values" or "gradcheck"
    label: str


@dataclass
class Report:
    exercise: str
    path: str
    rows: list[Row] = field(default_factory=list)
    failure: list[str] = field(default_factory=list)  # details of the first failure
    hint: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.rows) and not self.failure and all(r.status == "PASS" for r in self.rows)

    @property
    def passed(self) -> int:
        return sum(r.status == "PASS" for r in self.rows)

    def text(self) -> str:
        lines = [_fit(f"check {self.exercise}  ({self.path})")]
        for r in self.rows:
            lines.append(_fit(f"  {r.status:<5} {r.kind:<10} {r.label}"))
        if self.rows:
            lines.append(f"  {self.passed}/{len(self.rows)} checks passed")
        if self.failure:
            lines.append("")
            lines += [_fit(line) for line in self.failure]
        if self.hint:
            lines.append("")
            lines += _wrap("hint: " + self.hint)
        for note in self.notes:
            lines.append("")
            lines += _wrap("note: " + note)
        if self.ok:
            lines.append("")
            lines.append(f"PASSED: {self.exercise}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Report:
        rows = [Row(**r) for r in data.pop("rows")]
        return cls(rows=rows, **data)


def _fit(line: str) -> str:
    return line if len(line) <= WIDTH else line[: WIDTH - 3] + "..."


def _wrap(text: str, indent: str = "  ") -> list[str]:
    import textwrap

    return textwrap.wrap(text, WIDTH, subsequent_indent=indent, break_long_words=True) or [""]


# ---- the learner's code --------------------------------------------------------------------


class LearnerError(Exception):
    """An exception raised inside the learner's code (kept, to show their traceback)."""

    def __init__(self, original: BaseException, function: str):
        super().__init__(str(original))
        self.original, self.function = original, function


def _is_theirs(filename: str, path: Path) -> bool:
    try:
        return os.path.samefile(filename, path)
    except OSError:
        return False


def learner_traceback(exc: BaseException, path: Path, shown: str) -> list[str]:
    """Their traceback: the frames from their file only, then the exception line."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _is_theirs(f.filename, path)]
    lines = ["Traceback (your code, most recent call last):"]
    if len(frames) > MAX_FRAMES:  # deep recursion: the first and the last frames tell the story
        hidden = len(frames) - 5
        frames = frames[:2] + [None] + frames[-3:]
    for f in frames:
        if f is None:
            lines.append(f"  ... {hidden} more frames ...")
            continue
        lines.append(f'  File "{shown}", line {f.lineno}, in {f.name}')
        if f.line:
            lines.append(f"    {f.line.strip()}")
    if isinstance(exc, SyntaxError) and exc.filename and _is_theirs(exc.filename, path):
        lines.append(f'  File "{shown}", line {exc.lineno}')
        if exc.text:
            lines.append(f"    {exc.text.strip()}")
    lines += [s.rstrip() for s in traceback.format_exception_only(type(exc), exc)[-1:]]
    return lines


def load(path: Path) -> dict[str, Any]:
    """Run the learner's file and return its namespace. Raises LearnerError on any exception."""
    source = path.read_text()
    namespace: dict[str, Any] = {"__name__": "exercise", "__file__": str(path)}
    try:
        exec(compile(source, str(path), "exec"), namespace)
    except (Exception, SystemExit) as exc:  # their code may even call sys.exit()
        raise LearnerError(exc, "<file>") from exc
    return namespace


def _guarded(fn: Callable, name: str) -> Callable:
    """Call the learner's fn; any exception it raises becomes a LearnerError naming it."""
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (Exception, SystemExit) as exc:
            raise LearnerError(exc, name) from exc
    return call


# ---- comparing one output ------------------------------------------------------------------


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}, dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"[:60]


def _check_type(name: str, got: Any, expected: Any) -> str | None:
    """A message when `got` has the wrong kind, dtype or shape; None when they agree."""
    if got is None:
        return f"{name}: got None; did the function forget to `return` it?"
    if isinstance(expected, np.ndarray):
        if not isinstance(got, np.ndarray):
            return (f"{name}: expected a NumPy array of shape {expected.shape}, got {_describe(got)}; "
                    f"return an ndarray (np.asarray(...))")
        if got.dtype != expected.dtype:
            fix = ("compute it with a comparison (x > 0, rank < k)" if expected.dtype == bool
                   else "create arrays with the input's dtype, e.g. np.zeros(shape, dtype=x.dtype)")
            return f"{name}: expected dtype {expected.dtype}, got {got.dtype}; {fix}"
        if got.shape != expected.shape:
            return f"{name}: expected shape {expected.shape}, got {got.shape}"
        return None
    if isinstance(expected, (bool, np.bool_)):
        return None if isinstance(got, (bool, np.bool_)) else f"{name}: expected a bool, got {_describe(got)}"
    if isinstance(expected, (int, np.integer)):
        if isinstance(got, (int, np.integer)) and not isinstance(got, bool):
            return None
        return f"{name}: expected an int, got {_describe(got)} (use // for floor division, int() to convert)"
    if isinstance(got, (float, int, np.floating, np.integer)) and not isinstance(got, bool):
        return None
    if isinstance(got, np.ndarray) and got.ndim == 0 and np.issubdtype(got.dtype, np.floating):
        return None
    return f"{name}: expected a float (a number), got {_describe(got)}; use float(...)"


def _as_array(v: Any) -> np.ndarray:
    return np.asarray(v, dtype=float) if not isinstance(v, np.ndarray) else v


def _value_problem(name: str, got: Any, expected: Any, tol: float, exact: bool) -> list[str]:
    """Lines describing how `got` differs from `expected` (same type and shape); [] when equal."""
    g, e = _as_array(got), _as_array(expected)
    if exact or e.dtype == bool or np.issubdtype(e.dtype, np.integer):
        bad = g != e
    else:
        bad = ~np.isclose(g, e, rtol=tol, atol=tol) | ~np.isfinite(g)
    if not np.any(bad):
        return []
    if e.ndim == 0:
        return [f"{name}: expected {_num(expected)}, got {_num(got)}"]
    if e.dtype == bool or np.issubdtype(e.dtype, np.integer):
        err = bad.astype(float)
    else:
        with np.errstate(invalid="ignore"):
            err = np.where(np.isfinite(g), np.abs(g.astype(float) - e), np.inf)
    idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(err)), e.shape))
    what = "differ" if exact else f"differ by more than {tol:g}"
    return [f"{name}: worst element at index {idx}: expected {_num(e[idx])}, got {_num(g[idx])}",
            f"{' ' * len(name)}  ({int(bad.sum())} of {e.size} elements {what})"]


def _num(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return f"{float(v):.10g}"


def _matches(got: Any, wrong: Any) -> bool:
    try:
        g, w = _as_array(got), _as_array(wrong)
    except (TypeError, ValueError):
        return False
    if g.shape != w.shape:
        return False
    if w.dtype == bool or np.issubdtype(w.dtype, np.integer) or g.dtype == bool:
        return bool(np.array_equal(g, w))
    with np.errstate(invalid="ignore"):
        return bool(np.allclose(g, w, rtol=MATCH_RTOL, atol=MATCH_ATOL, equal_nan=True))


def _diagnose(output: str, got: Any, mistakes: list[Mistake]) -> str:
    for m in mistakes:
        if m.output != output:
            continue
        if m.when is not None:
            if m.when(got):
                return m.hint
            continue
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wrong = m.wrong()
        if _matches(got, wrong):
            return m.hint
    return ""


# ---- running the cases ---------------------------------------------------------------------


def _copy(v: Any) -> Any:
    return v.copy() if isinstance(v, np.ndarray) else v


def _run_value_case(case: ValueCase, functions: dict[str, Callable]) -> tuple[list[str], str]:
    """(failure lines, hint) for one value case; ([], "") when it passes. LearnerError propagates."""
    args = tuple(_copy(a) for a in case.args)
    if case.run is not None:
        outputs = case.run(functions)
    else:
        outputs = functions[case.function](*args, **case.kwargs)
    changed = [i for i, (a, b) in enumerate(zip(args, case.args, strict=True))
               if isinstance(b, np.ndarray) and not np.array_equal(a, b, equal_nan=True)]
    names = list(case.expected)
    if len(names) > 1:
        if not isinstance(outputs, (tuple, list)) or len(outputs) != len(names):
            got = f"{len(outputs)} values" if isinstance(outputs, (tuple, list)) else _describe(outputs)
            return [f"expected {len(names)} return values ({', '.join(names)}), got {got}"], ""
        got_values = dict(zip(names, outputs, strict=True))
    else:
        got_values = {names[0]: outputs}
    for name in names:
        got, expected = got_values[name], case.expected[name]
        problem = _check_type(name, got, expected)
        if problem is not None:
            shape_only = isinstance(got, np.ndarray) and isinstance(expected, np.ndarray) and \
                got.dtype == expected.dtype
            hint = _diagnose(name, got, case.mistakes) if shape_only else ""
            return [problem], hint or (case.shape_hint if shape_only else "")
        lines = _value_problem(name, got, expected, case.tol, case.exact)
        if lines:
            return lines, _diagnose(name, got, case.mistakes)
    if changed:
        return [f"your function changed its input argument {changed[0] + 1} in place; work on a copy"], \
            "never modify an input array (no `x += ...` on an argument); compute a new array"
    return [], ""


def _run_grad_case(case: GradCase, functions: dict[str, Callable]) -> list[str]:
    from minicnn.gradcheck import gradcheck

    layer = case.layer(functions)
    report = gradcheck(layer, case.x, raise_on_fail=False, name=case.uses)
    if report.ok:
        return []
    lines = []
    for t in report.tensors:
        if t.max_rel_error >= report.tol:
            lines.append(f"gradient of {t.name} {t.shape}: max relative error {t.max_rel_error:.1e} "
                         f"at index {t.worst_index}")
            lines.append(f"  your backward {t.analytic:.6g}, central difference {t.numeric:.6g}")
            break
    if not report.deterministic:
        lines.append("backward gave different results for the same input twice (state kept between calls?)")
    if not report.zero_upstream_ok:
        lines.append("a zero upstream gradient did not give zero gradients")
    return lines


def grade(exercise: Exercise, path: Path, shown: str | None = None) -> Report:
    """Grade the learner's file `path` for `exercise`, in this process (it cannot stop a file that hangs:
    `runner.check_file` adds the time limit). Output the learner's code prints is captured and noted."""
    shown = shown or str(path)
    report = Report(exercise.name, shown)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _grade(exercise, Path(path), shown, report)
    out = printed.getvalue().splitlines()
    if out:
        report.notes.append(
            f"your code printed {len(out)} line(s) while being checked (first: {out[0][:40]!r}); the check "
            f"ignores printed output, but remove the print() calls when you are done")
    return report


def _grade(exercise: Exercise, path: Path, shown: str, report: Report) -> None:
    try:
        namespace = load(path)
    except LearnerError as err:
        report.failure = [f"{shown} did not run:"] + learner_traceback(err.original, path, shown)
        report.hint = "fix the error above; the file must run on its own (python " + shown + ")"
        return
    missing = [f for f in exercise.functions if not callable(namespace.get(f))]
    if missing:
        report.failure = [f"{shown} defines no function {missing[0]}(); "
                          f"this exercise needs: {', '.join(exercise.functions)}"]
        report.hint = f"start again from the stub: move the file away, then `minicnn exercise start {exercise.name}`"
        return
    functions = {f: _guarded(namespace[f], f) for f in exercise.functions}
    values_failed = False
    for case in exercise.cases():
        if isinstance(case, GradCase):
            label = f"{case.uses}: {case.label}"
            if values_failed:
                report.rows.append(Row("skip", "gradcheck", label))
                continue
            kind = "gradcheck"
        else:
            label, kind = f"{case.function}: {case.label}", "values"
        try:
            if isinstance(case, GradCase):
                lines, hint = _run_grad_case(case, functions), ""
            else:
                lines, hint = _run_value_case(case, functions)
        except LearnerError as err:
            lines = _exception_lines(err, path, shown)
            hint = f"the traceback shows the line of {shown} where it went wrong"
            if isinstance(err.original, NotImplementedError):
                hint = f"write the body of {err.function}() in {shown}; its docstring has the equation"
        except Exception as exc:  # the engine refused what the learner's code returned
            lines, hint = [f"{type(exc).__name__}: {exc}"], ""
        ok = not lines
        values_failed |= not ok and kind == "values"
        report.rows.append(Row("PASS" if ok else "FAIL", kind, label))
        if not ok and not report.failure:
            report.failure = [f"first failure: {label}"] + lines
            report.hint = hint or _default_hint(exercise)


def _exception_lines(err: LearnerError, path: Path, shown: str) -> list[str]:
    exc = err.original
    if isinstance(exc, NotImplementedError):
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if _is_theirs(f.filename, path)]
        where = f" (line {frames[-1].lineno})" if frames else ""
        return [f"{err.function}() is not written yet: it raises NotImplementedError{where}"]
    return [f"{err.function}() raised an exception:"] + learner_traceback(exc, path, shown)


def _default_hint(exercise: Exercise) -> str:
    return (f"no known mistake matches this output; compare your code with the equation in the "
            f"docstring, step by step on the worked example, or ask: minicnn exercise hint {exercise.name}")
