"""Grade a learner's file against the engine: run the cases, report what passed and why not.

`grade(exercise, path)` is the parent's side: it builds every case (fixed ones and fresh random ones)
and keeps every expected value here, while the learner's functions run in a child process
(`runner.Session`) that receives only the inputs. The result is a `Report`: one table row per case
and, for the first failing case, the details (index of the worst element, expected vs got, the value
returned) and a hint. An exception in the learner's code is shown as their own traceback: only the
frames that belong to their file.
"""

from __future__ import annotations

import textwrap
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from minicnn.exercises.catalog import RANDOM
from minicnn.exercises.child import Other
from minicnn.exercises.runner import ChildStopped, LearnerError, Rules, Session
from minicnn.exercises.spec import Budget, Exercise, GradCase, Mistake, TrainCase, ValueCase

WIDTH = 80  # every line of a report fits a terminal of this width
PAGE_ROWS = 24  # a report taller than this is shown per piece (`Report.text`); --all shows every check
MIN_FAILURE_LINES = 3  # a shortened report keeps at least this much of the failure's details
MATCH_RTOL, MATCH_ATOL = 1e-6, 1e-9  # how close a learner's value must be to a known wrong answer
TIMEOUT_SECONDS = 20.0  # the whole check (an Exercise may set its own); every solution takes about a second
SHOWN_ELEMENTS = 24  # a returned array up to this size is printed whole in a failure; larger: a corner
RULE_MARK = "exercise rules:"  # how the child's refusals begin (see child.py)
SEED_BITS = 32  # a fresh seed is drawn from this many bits of OS entropy (short enough to type)
TRAIN_CHUNK_STEPS = 50  # the capstone sends this many steps' batches to the child per call
PREDICT_CHUNK = 2000  # test images per predict call


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
    seed: int | None = None  # the seed the random cases were drawn from (None: drawn from a given rng)

    @property
    def ok(self) -> bool:
        return bool(self.rows) and not self.failure and all(r.status == "PASS" for r in self.rows)

    @property
    def passed(self) -> int:
        return sum(r.status == "PASS" for r in self.rows)

    def text(self, details: bool | None = None) -> str:
        """The report, every line within WIDTH columns. `details` True: one row per check; False: one
        row per piece (function) with its failing checks counted, and the failure cut to fit PAGE_ROWS
        rows; None: the rows when the whole report fits PAGE_ROWS rows, else the pieces."""
        if details is None:
            full = self.text(details=True)
            return full if len(full.splitlines()) <= PAGE_ROWS else self.text(details=False)
        lines = _fit(f"check {self.exercise}  ({self.path})")
        if details:
            for r in self.rows:
                lines += _fit(f"  {r.status:<5} {r.kind:<10} {r.label}")
            if self.rows:
                lines.append(f"  {self.passed}/{len(self.rows)} checks passed")
        else:
            lines += self._pieces()
        failure = [part for line in self.failure for part in _fit(line)]
        rest = self._after()
        if failure:
            room = PAGE_ROWS - len(lines) - len(rest) - 2  # a blank line, the "... more" line
            if not details and len(failure) > max(room, MIN_FAILURE_LINES):
                last = failure[-1:] if any(line.startswith("Traceback") for line in failure) else []
                keep = max(room, MIN_FAILURE_LINES) - len(last)  # the first lines (and an exception's last)
                failure = failure[:keep] + [f"  ... {len(failure) - keep - len(last)} more lines: minicnn "
                                            f"exercise check {self.exercise} --all"] + last
            lines.append("")
            lines += failure
        return "\n".join(lines + rest)

    def _pieces(self) -> list[str]:
        """One row per piece: its status and how many of its checks passed, failed and wait (the first
        failing check is named by the failure below)."""
        pieces: dict[str, list[Row]] = {}
        for r in self.rows:
            piece = r.kind if r.kind == "training" else r.label.split(": ", 1)[0]
            pieces.setdefault(piece, []).append(r)
        width = max((len(p) for p in pieces), default=0) + 1
        lines = []
        for piece, rows in pieces.items():
            failed = [r for r in rows if r.status == "FAIL"]
            skipped = sum(r.status == "skip" for r in rows)
            status = "FAIL" if failed else "skip" if skipped else "PASS"
            text = f"  {status:<5} {piece:<{width}}{sum(r.status == 'PASS' for r in rows)}/{len(rows)} passed"
            if failed:
                text += f", {len(failed)} failing"
            if skipped:
                text += f", {skipped} waiting"
            lines += _fit(text)
        if self.rows:
            lines += _fit(f"  {self.passed}/{len(self.rows)} checks passed (each one: minicnn exercise check "
                          f"{self.exercise} --all)")
        return lines

    def _after(self) -> list[str]:
        """The lines after the failure: hint, seed, notes, verdict."""
        lines: list[str] = []
        if self.hint:
            lines.append("")
            lines += _wrap("hint: " + self.hint)
        # the seed replays the random cases; a fixed case failing first is seen again without it
        failed_random = bool(self.failure) and f": {RANDOM}" in self.failure[0]
        if failed_random and self.seed is not None:
            lines.append("")
            lines += _wrap(f"a random case failed; the same cases again: minicnn exercise check "
                           f"{self.exercise} --seed {self.seed}")
        for note in self.notes:
            lines.append("")
            lines += _wrap("note: " + note)
        if self.ok:
            lines.append("")
            lines.append(f"PASSED: {self.exercise}")
        return lines


def _fit(line: str) -> list[str]:
    """`line` wrapped to WIDTH at spaces; continuation lines keep its indent plus four spaces."""
    if len(line) <= WIDTH:
        return [line]
    text = line.lstrip()
    lead = line[: len(line) - len(text)]
    return textwrap.wrap(text, WIDTH, initial_indent=lead, subsequent_indent=lead + "    ",
                         break_on_hyphens=False) or [line]


def _wrap(text: str, indent: str = "  ") -> list[str]:
    return textwrap.wrap(text, WIDTH, subsequent_indent=indent, break_on_hyphens=False) or [""]


# ---- comparing one output ------------------------------------------------------------------


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}, dtype {value.dtype}"
    if isinstance(value, Other):
        return f"a {value.type_name} {value.shown}"
    return f"{type(value).__name__} {value!r}"


def _shown(name: str, got: Any) -> list[str]:
    """The value the learner returned, printed (whole when small, else its first elements)."""
    if not isinstance(got, np.ndarray) or got.ndim == 0:
        return []
    flat = got.ravel()
    if got.size <= SHOWN_ELEMENTS:
        text = np.array2string(got, precision=6, max_line_width=WIDTH - 4, threshold=SHOWN_ELEMENTS)
        return [f"{name} you returned:"] + ["  " + line for line in text.splitlines()]
    head = np.array2string(flat[:8], precision=6, max_line_width=WIDTH - 4)
    return [f"{name} you returned, first 8 of {got.size} values in C order:"] + \
        ["  " + line for line in head.splitlines()]


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
    if g.dtype.kind not in "biuf":
        return [f"{name}: expected numbers, got an array of dtype {g.dtype}"]
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


def _matches(got: Any, wrong: Any, rtol: float = MATCH_RTOL) -> bool:
    if isinstance(got, Other) or wrong is None:
        return False
    try:
        g, w = _as_array(got), _as_array(wrong)
    except (TypeError, ValueError):
        return False
    if g.shape != w.shape:
        return False
    if w.dtype == bool or np.issubdtype(w.dtype, np.integer) or g.dtype == bool:
        return bool(np.array_equal(g, w))
    with np.errstate(invalid="ignore"):
        return bool(np.allclose(g, w, rtol=rtol, atol=max(MATCH_ATOL, rtol * 1e-3), equal_nan=True))


def _diagnose(output: str, got: Any, mistakes: list[Mistake], rtol: float = MATCH_RTOL) -> str:
    for m in mistakes:
        if m.output != output:
            continue
        if m.when is not None:
            if m.when(got):
                return m.hint
            continue
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                wrong = m.wrong()
            except (ValueError, IndexError):  # this mistake cannot happen with this case's shapes
                continue
        if _matches(got, wrong, rtol):
            return m.hint
    return ""


# ---- running the cases ---------------------------------------------------------------------

IN_PLACE_HINT = ("return new arrays and leave the arguments alone: write v = momentum * v + g, "
                 "not v *= momentum or p -= lr * v (those change the caller's arrays)")


def _in_place(session: Session, since: int) -> list[str]:
    """A failure line per function whose calls since `since` changed their arguments; [] when none did."""
    changed: dict[str, list[str]] = {}
    for function, names in session.changed[since:]:
        changed.setdefault(function, [])
        changed[function] += [n for n in names if n not in changed[function]]
    return [f"{function}() changed the arrays passed in as {', '.join(names)} (in place); "
            f"the caller's arrays must stay as they were" for function, names in changed.items()]


def _run_value_case(case: ValueCase, functions: dict[str, Callable], session: Session) -> tuple[list[str], str]:
    """(failure lines, hint) for one value case; ([], "") when it passes. LearnerError propagates."""
    since = len(session.changed)
    if case.run is not None:
        outputs = case.run(functions)
    else:
        outputs = functions[case.function](*case.args, **case.kwargs)
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
            hint = _diagnose(name, got, case.mistakes, case.match_rtol) if shape_only else ""
            return [problem], hint or (case.shape_hint if shape_only else "")
        lines = _value_problem(name, got, expected, case.tol, case.exact)
        if lines:
            return lines + _shown(name, got), _diagnose(name, got, case.mistakes, case.match_rtol)
    changed = _in_place(session, since)
    if changed:
        return changed, IN_PLACE_HINT
    return [], ""


def _run_grad_case(case: GradCase, functions: dict[str, Callable], session: Session) -> tuple[list[str], str]:
    from minicnn.gradcheck import gradcheck

    since = len(session.changed)
    layer = case.layer(functions)
    report = gradcheck(layer, case.x, raise_on_fail=False, name=case.uses)
    changed = _in_place(session, since)
    if changed:
        return changed, IN_PLACE_HINT
    if report.ok:
        return [], ""
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
    return lines, ""


def grade(exercise: Exercise, path: Path, shown: str | None = None, timeout: float | None = None,
          rng: np.random.Generator | None = None, seed: int | None = None) -> Report:
    """Grade the learner's file `path` for `exercise`: their code runs in a child process (stopped after
    `timeout` seconds; None: the exercise's own limit, else TIMEOUT_SECONDS), every expected value stays
    here. The random cases are drawn from `rng` when given, else from `seed` (a fresh one when None:
    different cases on every run; a failing random case prints it, so `--seed` replays them). Output the
    learner's code prints is noted."""
    shown = shown or str(path)
    if timeout is None:
        timeout = exercise.timeout if exercise.timeout is not None else TIMEOUT_SECONDS
    if rng is None and seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0]) % 2**SEED_BITS
    report = Report(exercise.name, shown, seed=seed if rng is None else None)
    cases = exercise.cases(rng if rng is not None else np.random.default_rng(seed))
    rules = Rules(exercise.forbidden, exercise.numpy_forbidden, _data_dirs() if _trains(cases) else ())
    driver = next((c.driver for c in cases if isinstance(c, TrainCase)), "")
    session = None
    try:
        session = Session(Path(path), shown, rules, timeout, driver)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _grade(exercise, cases, session, shown, report)
    except ChildStopped as stop:
        report.failure = str(stop).splitlines()
        report.hint = ("look for a loop that never ends (a `while` whose condition never changes, a range "
                       "that grows inside the loop); the solution takes well under a second" if stop.timed_out
                       else "did your code end the program (os._exit, a crash in a C extension)?")
    finally:
        if session is not None:
            session.close()
    out = session.printed if session is not None else []
    if out:
        report.notes.append(
            f"your code printed {len(out)} line(s) while being checked (first: {out[0][:40]!r}); the check "
            f"ignores printed output, but remove the print() calls when you are done")
    return report


def check_file(exercise: Exercise, path: Path, timeout: float | None, shown: str | None = None,
               seed: int | None = None) -> Report:
    """`grade` with the time limit first (None: the exercise's own): what the command line runs."""
    return grade(exercise, Path(path), shown, timeout=timeout, seed=seed)


def _trains(cases: list) -> bool:
    return any(isinstance(c, TrainCase) for c in cases)


def _data_dirs() -> tuple[str, ...]:
    """The dataset folders (the child may not read them: the test labels are there)."""
    from minicnn.data.datasets import search_roots

    return tuple(str(root) for root, _ in search_roots())


def _grade(exercise: Exercise, cases: list, session: Session, shown: str, report: Report) -> None:
    if session.load_error:
        report.failure = [f"{shown} did not run:"] + session.load_error
        rule = _rule(session.load_error)
        report.hint = rule or "fix the error above; the file must run on its own (python " + shown + ")"
        return
    missing = [f for f in exercise.functions if f not in session.functions]
    if missing:
        report.failure = [f"{shown} defines no function {missing[0]}(); "
                          f"this exercise needs: {', '.join(exercise.functions)}"]
        report.hint = f"start again from the stub: move the file away, then `minicnn exercise start {exercise.name}`"
        return
    functions = {f: session.proxy(f) for f in exercise.functions}
    values_failed = False
    for case in cases:
        if isinstance(case, TrainCase):
            _train_row(case, session, report)
            continue
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
                lines, hint = _run_grad_case(case, functions, session)
            else:
                lines, hint = _run_value_case(case, functions, session)
        except LearnerError as err:
            lines = _exception_lines(err)
            hint = _rule(err.lines) or f"the traceback shows the line of {shown} where it went wrong"
            if err.not_implemented:
                hint = f"write the body of {err.function}() in {shown}; its docstring has the equation"
        except ChildStopped:
            raise
        except Exception as exc:  # the engine refused what the learner's code returned
            lines = [f"the grader could not use what your function returned: {type(exc).__name__}: {exc}"]
            hint = "return what the docstring says, e.g. a tuple (p, velocity) of new arrays, never None"
        ok = not lines
        values_failed |= not ok and kind == "values"
        report.rows.append(Row("PASS" if ok else "FAIL", kind, label))
        if not ok and not report.failure:
            report.failure = [f"first failure: {label}"] + lines
            report.hint = hint or _default_hint(exercise)


def _train_row(case: TrainCase, session: Session, report: Report) -> None:
    """The capstone's last row: train only when every piece passed; else name the first failing one."""
    if report.failure:
        report.rows.append(Row("skip", "training", case.label))
        failed = next(r for r in report.rows if r.status == "FAIL")
        piece = failed.label.split(":")[0]
        report.notes.append(f"LeNet-5 was not trained: your {piece}() fails its "
                            f"{'gradient check' if failed.kind == 'gradcheck' else 'values check'} (above); "
                            f"fix {piece}() first")
        return
    try:
        lines, hint, note = _run_train_case(case.budget, session)
    except LearnerError as err:
        lines, hint, note = _exception_lines(err), "every piece passed its checks on small inputs; the " \
            "traceback shows where one failed on LeNet-5's shapes", ""
    report.rows.append(Row("PASS" if not lines else "FAIL", "training", case.label))
    if note:
        report.notes.append(note)
    if lines:
        report.failure = [f"first failure: training {case.label}"] + lines
        report.hint = hint


def _run_train_case(budget: Budget, session: Session) -> tuple[list[str], str, str]:
    """(failure lines, hint, note) of training LeNet-5 of the learner's pieces within `budget`."""
    import time

    from minicnn.data.datasets import DatasetError, load_dataset

    try:
        data = load_dataset("mnist", download=False)
    except DatasetError as exc:
        return [f"MNIST is not there: {exc}"], ("set MINICNN_DATA to the folder holding mnist/ (the lines "
                                                "above say where it looked), then check again"), ""
    x_train = np.round(data.x_train * 255).astype(np.uint8)  # (60000, 1, 28, 28): a quarter of the bytes
    x_test = np.round(data.x_test * 255).astype(np.uint8)
    rng = np.random.default_rng(budget.seed)
    needed = budget.steps * budget.batch
    epochs = -(-needed // len(x_train))
    order = np.concatenate([rng.permutation(len(x_train)) for _ in range(epochs)])[:needed]
    start = time.monotonic()
    session.call("driver:init", budget.seed)
    losses: list[float] = []
    chunk = TRAIN_CHUNK_STEPS * budget.batch
    for first in range(0, needed, chunk):
        picked = order[first:first + chunk]
        losses += session.call("driver:train", x_train[picked], data.y_train[picked], budget.batch,
                               budget.lr, budget.momentum)
        if not np.isfinite(losses[-1]):
            return ([f"the training loss is {losses[-1]} at step {len(losses)}"],
                    "every piece passed its checks; look for a piece that misbehaves in float32 or on "
                    "LeNet-5's shapes (e.g. softmax without the max subtracted)", "")
    trained = time.monotonic() - start
    predictions = [session.call("driver:predict", x_test[i:i + PREDICT_CHUNK])
                   for i in range(0, len(x_test), PREDICT_CHUNK)]
    if not all(isinstance(p, np.ndarray) and p.ndim == 1 for p in predictions):
        return ["the network's predictions are not arrays of class numbers"], "", ""
    accuracy = float(np.mean(np.concatenate(predictions) == data.y_test))
    note = (f"LeNet-5 of your pieces: {budget.steps} steps in {trained:.0f} s, loss {np.mean(losses[:10]):.3f} "
            f"-> {np.mean(losses[-50:]):.3f}; test accuracy {accuracy:.2%} on {len(x_test)} images")
    if accuracy < budget.target:
        return ([f"test accuracy {accuracy:.2%}, below the {budget.target:.0%} needed"],
                "every piece passed its checks, so compare the wiring's shapes with the docstring: the "
                "pieces must work for any N, C and padding", note)
    return [], "", note


def _rule(lines: list[str]) -> str:
    """The exercise rule a refusal in these traceback lines names ('' when none)."""
    for line in lines:
        if RULE_MARK in line:
            rule = line[line.index(RULE_MARK):]
            return f"the {rule}; write it yourself"
    return ""


def _exception_lines(err: LearnerError) -> list[str]:
    if err.not_implemented:
        where = f" (line {err.line})" if err.line else ""
        return [f"{err.function}() is not written yet: it raises NotImplementedError{where}"]
    return [f"{err.function}() raised an exception:"] + err.lines


def _default_hint(exercise: Exercise) -> str:
    return (f"no known mistake matches this output; compare your code with the equation in the "
            f"docstring, step by step on the worked example, or ask: minicnn exercise hint {exercise.name}")
