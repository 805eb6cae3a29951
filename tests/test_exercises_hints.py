"""Every hint can be reached, and every cheat class fails in every exercise it applies to.

Hints: for each exercise, every known mistake (`Mistake`) is taken as the learner's answer on the
cases (the seed-0 draw): returned instead of the engine's value, it must fail the comparison and get
its own hint from the grader's matching (`grading._diagnose`), not an earlier mistake's. The wrong
*solution files* for the usual mistakes are in tests/test_exercises.py (WRONG) and
tests/test_exercises_capstone.py; this test proves no hint is dead or shadowed.

Cheats, for every exercise: importing minicnn, importing each SciPy module and calling each NumPy
routine an exercise forbids, looking for the expected values in the child's memory (gc), in its
callers' frames and in the grading process (/proc/PPID/mem), returning float64 for float32 input,
changing an argument in place. Each is made by wrapping the official solution, so the rest of the file
is right. The hard-coded-example cheat on every exercise: tests/test_exercises_generated.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from minicnn import exercises
from minicnn.exercises import grading
from minicnn.exercises.spec import ValueCase

TRAINS = {"capstone"}  # its cheats are graded before training, so they stay fast too


def _as_answer(mistake, case: ValueCase):
    """The mistake's value as the learner would return it for `case` (None: it does not apply here)."""
    expected = case.expected[mistake.output]
    if mistake.when is not None:  # a kind of answer: a non-finite one
        return np.full_like(expected, np.inf) if isinstance(expected, np.ndarray) else float("inf")
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            wrong = mistake.wrong()
        except (ValueError, IndexError):
            return None
    if isinstance(wrong, np.ndarray) and isinstance(expected, np.ndarray):
        wrong = wrong.astype(expected.dtype)  # the learner keeps the dtype; the values are wrong
    return wrong


@pytest.mark.parametrize("name", exercises.names())
def test_every_hint_is_reached_by_its_own_wrong_answer(name):
    exercise = exercises.get(name)
    hints, reached = set(), set()
    for case in exercise.cases(np.random.default_rng(0)):
        if not isinstance(case, ValueCase):
            continue
        for mistake in case.mistakes:
            hints.add(mistake.hint)
            got = _as_answer(mistake, case)
            if got is None:
                continue
            expected = case.expected[mistake.output]
            same_shape = not isinstance(expected, np.ndarray) or np.shape(got) == expected.shape
            if same_shape and not grading._value_problem(mistake.output, got, expected, case.tol, case.exact):
                continue  # in this case the mistake gives the right answer
            if grading._diagnose(mistake.output, got, case.mistakes, case.match_rtol) == mistake.hint:
                reached.add(mistake.hint)
    assert hints, f"{name} has no known mistakes"
    assert hints == reached, sorted(hints - reached)


def _wrapped(name: str, wrapper: str) -> str:
    """The solution with every exercise function replaced by `wrapper(function)` at the end of the file."""
    exercise = exercises.get(name)
    lines = [exercise.solution(), "", wrapper]
    lines += [f"{f} = _cheat({f})" for f in exercise.functions]
    return "\n".join(lines) + "\n"


def _grade(name: str, text: str, tmp_path):
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    report = grading.grade(exercises.get(name), path, shown=f"exercises/{name}.py")
    assert all(len(line) <= grading.WIDTH for line in report.text().splitlines()), report.text()
    return report


@pytest.mark.parametrize("name", exercises.names())
def test_importing_the_engine_fails_in_every_exercise(name, tmp_path):
    text = "from minicnn.functional import conv2d  # noqa\n" + exercises.get(name).solution()
    report = _grade(name, text, tmp_path)
    assert not report.ok and "may not use minicnn" in report.hint, report.text()


@pytest.mark.parametrize("name, module", [(e.name, m) for e in exercises.EXERCISES for m in sorted(e.forbidden)])
def test_importing_each_forbidden_scipy_module_fails(name, module, tmp_path):
    report = _grade(name, f"import {module}  # noqa\n" + exercises.get(name).solution(), tmp_path)
    assert not report.ok and f"(import {module} refused)" in report.hint and "exercise rules" in report.hint, \
        report.text()


NUMPY_ANSWER = '''
def _cheat(function):
    def answer(*args, **kwargs):
        getattr(np, {name!r})(np.ones(3), np.ones(3))  # the routine that is the answer
        return function(*args, **kwargs)
    answer.__name__ = function.__name__
    return answer
'''


@pytest.mark.parametrize("name, routine", [(e.name, f) for e in exercises.EXERCISES for f in sorted(e.numpy_forbidden)])
def test_calling_each_forbidden_numpy_routine_fails(name, routine, tmp_path):
    text = _wrapped(name, NUMPY_ANSWER.format(name=routine))
    if "import numpy as np" not in text.split("def ")[0]:
        text = "import numpy as np\n" + text
    report = _grade(name, text, tmp_path)
    assert not report.ok and f"(numpy.{routine} refused)" in report.text() and "exercise rules" in report.hint, \
        report.text()


LOOK_UP = '''
import gc


def _cheat(function):
    def look(*args, **kwargs):
        for o in gc.get_objects():
            try:
                fields = vars(o)
            except TypeError:  # no __dict__
                continue
            if isinstance(fields, dict) and ("expected" in fields or "mistakes" in fields):
                return fields.get("expected")
        return None
    look.__name__ = function.__name__
    return look
'''


@pytest.mark.parametrize("name", exercises.names())
def test_no_expected_values_in_the_childs_memory(name, tmp_path):
    report = _grade(name, _wrapped(name, LOOK_UP), tmp_path)
    text = report.text()
    assert not report.ok and ("got None" in text or "could not use what your function returned" in text), text


FRAMES = '''
import sys


def _cheat(function):
    def look(*args, **kwargs):
        frame = sys._getframe(1)
        while frame is not None:  # every caller's locals: the grader's cases would be here
            for value in frame.f_locals.values():
                found = getattr(value, "expected", None)
                if isinstance(found, dict):
                    return next(iter(found.values()))
            frame = frame.f_back
        return None
    look.__name__ = function.__name__
    return look
'''


@pytest.mark.parametrize("name", exercises.names())
def test_no_expected_values_in_the_callers_frames(name, tmp_path):
    report = _grade(name, _wrapped(name, FRAMES), tmp_path)
    text = report.text()
    assert not report.ok and ("got None" in text or "could not use what your function returned" in text), text


PARENT = '''
import os


def _cheat(function):
    def read(*args, **kwargs):
        with open(f"/proc/{os.getppid()}/mem", "rb") as memory:  # the grading process's memory
            memory.read(1)
        return function(*args, **kwargs)
    read.__name__ = function.__name__
    return read
'''


@pytest.mark.parametrize("name", exercises.names())
def test_reading_the_grading_process_is_refused(name, tmp_path):
    report = _grade(name, _wrapped(name, PARENT), tmp_path)
    assert not report.ok and "/mem refused" in report.text() and "exercise rules" in report.hint, report.text()


FLOAT64 = '''
def _cheat(function):
    def as_float64(*args, **kwargs):
        out = function(*args, **kwargs)
        if isinstance(out, tuple):
            return tuple(o.astype(np.float64) if isinstance(o, np.ndarray) and o.dtype == np.float32 else o
                         for o in out)
        return out.astype(np.float64) if isinstance(out, np.ndarray) and out.dtype == np.float32 else out
    as_float64.__name__ = function.__name__
    return as_float64
'''


def _takes_float32(name: str) -> bool:
    cases = exercises.get(name).cases(np.random.default_rng(0))
    return any(isinstance(c, ValueCase) and c.label.endswith("float32") for c in cases)


@pytest.mark.parametrize("name", [n for n in exercises.names() if _takes_float32(n)])
def test_float64_output_for_float32_input_fails(name, tmp_path):
    report = _grade(name, _wrapped(name, FLOAT64), tmp_path)
    assert not report.ok and "expected dtype float32, got float64" in report.text(), report.text()


IN_PLACE = '''
def _cheat(function):
    def scribble(*args, **kwargs):
        out = function(*args, **kwargs)
        for a in args:
            if isinstance(a, np.ndarray) and a.size and a.flags.writeable:
                a.flat[0] = 1 - a.flat[0] if a.dtype != bool else not a.flat[0]
                break
        return out
    scribble.__name__ = function.__name__
    return scribble
'''


def _takes_arrays(name: str) -> bool:
    cases = exercises.get(name).cases(np.random.default_rng(0))
    return any(isinstance(c, ValueCase) and any(isinstance(a, np.ndarray) for a in c.args) for c in cases)


@pytest.mark.parametrize("name", [n for n in exercises.names() if _takes_arrays(n)])
def test_changing_an_argument_in_place_fails(name, tmp_path):
    report = _grade(name, _wrapped(name, IN_PLACE), tmp_path)
    assert not report.ok and "(in place)" in report.text(), report.text()
