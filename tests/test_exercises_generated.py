"""Wrong and cheating solution files generated from each exercise's own cases, run through the grader.

Every hint: for every hint of every exercise (each `Mistake` of its cases and each case's shape hint,
enumerated from the catalog, so a new hint is covered the day it is written), a file is generated that
is the official solution except on one case's input, where it returns that mistake's wrong value (a
wrong shape for a shape hint). The file runs through the real grader (child process, pipe, comparison,
report) and must fail with exactly that hint. A hint that no generated file reaches fails the test.
Handwritten wrong solutions with the usual mistakes, written as a learner would, are in
tests/test_exercises.py (WRONG) and tests/test_exercises_capstone.py.

The hard-coded-example cheat, on every exercise: a file that stores the answer of every documented
(fixed) case, keyed by its exact input, and looks it up. It passes every fixed value case and must fail
on the random cases drawn for the run (the other cheat classes on every exercise: test_exercises_hints).

How a file is generated: the solution runs here, in the test process, driven by the case itself (its
`run`, or the plain call), and every call's answer is stored under the call's exact input (the bytes of
each array, the hex of each float). The generated file looks its input up in that table. A case whose
`run` chains several calls (an optimizer's steps) has its wrong trajectory placed call by call, so the
calls the grader makes find the inputs the wrong answers lead to.
"""

from __future__ import annotations

import base64
import pickle
import warnings

import numpy as np
import pytest

from minicnn import exercises
from minicnn.exercises import grading
from minicnn.exercises.catalog import RANDOM
from minicnn.exercises.spec import ValueCase

KEY = '''
import numpy as np


def _key(value):
    """An exact, hashable form of a call's inputs (array bytes, float hex)."""
    if isinstance(value, np.ndarray):
        return ("a", value.dtype.str, value.shape, value.tobytes().hex())
    if isinstance(value, (list, tuple)):
        return ("s", tuple(_key(v) for v in value))
    if isinstance(value, dict):
        return ("d", tuple(sorted((k, _key(v)) for k, v in value.items())))
    if isinstance(value, float):
        return ("f", value.hex())
    if isinstance(value, np.generic):
        return ("g", value.dtype.str, value.tobytes().hex())
    return ("o", repr(value))
'''
_space: dict = {"np": np}
exec(KEY, _space)
_key = _space["_key"]

CHEAT = '''
import base64 as _base64
import pickle as _pickle

TABLE = _pickle.loads(_base64.b64decode({table!r}))


def _cheat(function):
    name = function.__name__

    def answer(*args, **kwargs):
        key = _key((name, args, kwargs))
        if key in TABLE:
            return TABLE[key]
        {otherwise}
    answer.__name__ = name
    return answer
'''


def _solution_functions(exercise) -> dict:
    namespace: dict = {"__name__": "solution"}
    exec(compile(exercise.solution(), f"{exercise.name}.py", "exec"), namespace)
    return {f: namespace[f] for f in exercise.functions}


def _drive(case: ValueCase, functions: dict, table: dict, substitute=None) -> int:
    """Run `case` on the solution's functions, storing each call's answer (after `substitute(i, name,
    out)`, when given) in `table` under its input; the number of calls made."""
    count = [0]

    def recording(name):
        def call(*args, **kwargs):
            out = functions[name](*args, **kwargs)
            if substitute is not None:
                out = substitute(count[0], name, out)
            count[0] += 1
            table[_key((name, args, kwargs))] = out
            return out
        return call

    fns = {name: recording(name) for name in functions}
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if case.run is not None:
            case.run(fns)
        else:
            fns[case.function](*case.args, **case.kwargs)
    return count[0]


def _file(exercise, table: dict, otherwise: str) -> str:
    payload = base64.b64encode(pickle.dumps(table)).decode()
    lines = [exercise.solution(), KEY, CHEAT.format(table=payload, otherwise=otherwise)]
    lines += [f"{f} = _cheat({f})" for f in exercise.functions]
    return "\n".join(lines) + "\n"


def _grade(exercise, text: str, tmp_path) -> grading.Report:
    path = tmp_path / f"{exercise.name}.py"
    path.write_text(text)
    report = grading.grade(exercise, path, shown=f"exercises/{exercise.name}.py", rng=np.random.default_rng(0))
    assert all(len(line) <= grading.WIDTH for line in report.text().splitlines()), report.text()
    return report


# ---- every hint ---------------------------------------------------------------------------------


def _wrong_answer(mistake, case: ValueCase):
    """The mistake's value as the learner's function would return it for `case`, in the expected
    dtype; None when it does not apply to this case's shapes."""
    expected = case.expected[mistake.output]
    if mistake.when is not None:  # a kind of answer (a non-finite one)
        return np.full_like(expected, np.inf) if isinstance(expected, np.ndarray) else float("inf")
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            wrong = mistake.wrong()
        except (ValueError, IndexError):
            return None
    if isinstance(wrong, np.ndarray) and isinstance(expected, np.ndarray):
        wrong = wrong.astype(expected.dtype)
    return wrong


def _shows(case: ValueCase, output: str, got, hint: str) -> bool:
    """Does the grader's comparison give `hint` when `output` of `case` is `got` (and the rest right)?"""
    expected = case.expected[output]
    if got is None:
        return False
    if isinstance(expected, np.ndarray) and isinstance(got, np.ndarray) and got.shape != expected.shape:
        return (grading._diagnose(output, got, case.mistakes, case.match_rtol) or case.shape_hint) == hint
    if not grading._value_problem(output, got, expected, case.tol, case.exact):
        return False  # in this case the mistake gives the right answer
    return grading._diagnose(output, got, case.mistakes, case.match_rtol) == hint


def _placing(case: ValueCase, output: str, wrong, calls: int):
    """substitute(i, name, out) that makes the solution's answers add up to `wrong` for `output`."""
    names = list(case.expected)

    def put(out, value):
        if len(names) == 1:
            return value
        out = list(out)
        out[names.index(output)] = value
        return tuple(out)

    if case.run is None:
        return lambda i, name, out: put(out, wrong)

    def step(i, name, out):  # a chained run: call i gives step i of the wrong trajectory
        first = out[0] if isinstance(out, tuple) else out
        if np.shape(wrong)[:1] == (calls,) and np.shape(first) == np.shape(wrong)[1:]:
            value = np.asarray(wrong[i]).astype(first.dtype)
            return (value,) + tuple(out[1:]) if isinstance(out, tuple) else value
        if i == calls - 1 and np.shape(first) == np.shape(wrong):
            return (wrong,) + tuple(out[1:]) if isinstance(out, tuple) else wrong
        return out
    return step


def _hints(exercise) -> dict[str, list[tuple[ValueCase, str, object]]]:
    """Every hint of the exercise -> the (case, output, wrong value) that should show it."""
    found: dict[str, list] = {}
    for case in exercise.cases(np.random.default_rng(0)):
        if not isinstance(case, ValueCase):
            continue
        for mistake in case.mistakes:
            found.setdefault(mistake.hint, [])
            got = _wrong_answer(mistake, case)
            if _shows(case, mistake.output, got, mistake.hint):
                found[mistake.hint].append((case, mistake.output, got))
        if case.shape_hint:
            found.setdefault(case.shape_hint, [])
            for output, expected in case.expected.items():
                if isinstance(expected, np.ndarray):
                    got = np.zeros((2,) + expected.shape, expected.dtype)  # one axis too many
                    if _shows(case, output, got, case.shape_hint):
                        found[case.shape_hint].append((case, output, got))
    return found


@pytest.mark.parametrize("name", exercises.names())
def test_every_hint_has_a_wrong_solution_that_fails_with_it(name, tmp_path):
    exercise = exercises.get(name)
    functions = _solution_functions(exercise)
    hints = _hints(exercise)
    assert hints, f"{name} has no hints"
    missing = []
    for hint, candidates in hints.items():
        shown = []
        for case, output, wrong in candidates[:2]:  # the first case that should show it, else the next
            calls = _drive(case, functions, {})
            table: dict = {}
            _drive(case, functions, table, _placing(case, output, wrong, calls))
            report = _grade(exercise, _file(exercise, table, "return function(*args, **kwargs)"), tmp_path)
            shown.append(report.hint)
            if not report.ok and report.hint == hint and report.failure[0].endswith(case.label):
                break
        else:
            missing.append((hint, shown))
    assert not missing, "\n".join(f"hint {h!r}: no wrong solution shows it (they showed {s!r})"
                                  for h, s in missing)


# ---- the hard-coded example cheat on every exercise ---------------------------------------------


@pytest.mark.parametrize("name", exercises.names())
def test_hard_coded_answers_of_the_documented_cases_fail(name, tmp_path):
    exercise = exercises.get(name)
    functions = _solution_functions(exercise)
    cases = exercise.cases(np.random.default_rng(0))
    fixed = [c for c in cases if isinstance(c, ValueCase) and not c.label.startswith(RANDOM)]
    assert any(c.label.startswith(RANDOM) for c in cases), f"{name} has no random case: a table would pass"
    table: dict = {}
    for case in fixed:
        _drive(case, functions, table)
    text = _file(exercise, table, "raise KeyError('no stored answer for this input')")
    report = _grade(exercise, text, tmp_path)
    assert not report.ok, report.text()
    rows = {r.label.split(": ", 1)[1]: r.status for r in report.rows if r.kind == "values"}
    assert all(rows[c.label] == "PASS" for c in fixed if c.label in rows), report.text()
    assert any(s == "FAIL" and label.startswith(RANDOM) for label, s in rows.items()), report.text()
    assert "no stored answer for this input" in report.text(), report.text()
