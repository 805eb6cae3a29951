"""The grader's own rules: types are strict (a bool is not an int), nothing checked is not a pass,
a failing random case names the seed that replays it, and `exercise list` fits a 24-row terminal.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np

from minicnn import exercises
from minicnn.cli import main
from minicnn.commands import exercise as command
from minicnn.exercises import grading
from minicnn.exercises.grading import WIDTH, Report, Row, grade
from minicnn.exercises.spec import Mistake, ValueCase


class _NoSession:
    """What _run_value_case needs of a Session when the function runs here: the in-place record."""

    changed: list = []


def _one(expected, returned) -> list[str]:
    case = ValueCase("case", "f", (), {"out": expected})
    lines, _ = grading._run_value_case(case, {"f": lambda: returned}, _NoSession())
    return lines


def test_a_bool_is_not_an_int_even_when_it_equals_one():
    assert _one(1, 1) == [] and _one(1, np.int64(1)) == []
    for returned in (True, np.True_):
        lines = _one(1, returned)
        assert lines and "expected an int, got bool" in lines[0], lines
    assert "expected dtype int64, got bool" in _one(np.array([1, 0]), np.array([True, False]))[0]
    assert "expected a float" in _one(1.0, True)[0]
    assert "expected a bool, got int" in _one(True, 1)[0]


def test_a_bool_returned_for_an_int_fails_the_whole_check(tmp_path):
    """output_size returning True where the answer is 1 (a comparison left in) is rejected."""
    path = tmp_path / "output_size.py"
    solution = exercises.get("output_size").solution()
    before, found, after = solution.rpartition("    return ")
    assert found
    path.write_text(before + "    out = " + after.rstrip() + "\n    return True if out == 1 else out\n")
    exercise = exercises.get("output_size")

    def cases(rng):
        return [ValueCase("size 3, kernel 3", "conv_output_size", (3, 3, 1, 0, 1), {"out": 1})]
    report = grade(dataclasses.replace(exercise, cases=cases), path)
    assert not report.ok and "expected an int, got bool" in report.text(), report.text()


def test_a_mistake_that_cannot_happen_with_these_shapes_is_skipped():
    """x @ w + b has no meaning for a non-square w: the grader goes on to the next known mistake."""
    x, w, b = np.ones((2, 3)), np.ones((4, 3)), np.zeros(4)
    mistakes = [Mistake("y", lambda: x @ w + b, "w is (OUT, IN)"), Mistake("y", lambda: x @ w.T, "add the bias")]
    assert grading._diagnose("y", x @ w.T, mistakes) == "add the bias"


def test_an_empty_report_is_not_a_pass(tmp_path):
    assert not Report("x", "x.py").ok
    assert "PASSED" not in Report("x", "x.py").text()
    assert not Report("x", "x.py", rows=[Row("skip", "values", "a")]).ok
    assert Report("x", "x.py", rows=[Row("PASS", "values", "a")]).ok
    exercise = exercises.get("linear")
    path = tmp_path / "linear.py"
    path.write_text(exercise.solution())
    report = grade(dataclasses.replace(exercise, cases=lambda rng: []), path)
    assert not report.ok and "PASSED" not in report.text()


def _hard_coded_linear(tmp_path: Path) -> Path:
    """Passes the fixed cases (their seeds are documented) and fails every random one: y is wrong
    for any x that is not one of the fixed inputs."""
    path = tmp_path / "linear.py"
    text = exercises.get("linear").solution()
    path.write_text(text.replace("    return x @ w.T + b\n", "    return x @ w.T + b if x.shape[0] in (4, 5, 1) "
                                 "else x @ w.T\n"))
    return path


def test_a_failing_random_case_prints_the_seed_that_replays_it(tmp_path, capsys):
    path = _hard_coded_linear(tmp_path)
    seeds = range(40)
    failing = next(s for s in seeds if not grade(exercises.get("linear"), path, seed=s).ok)
    report = grade(exercises.get("linear"), path, seed=failing)
    text = report.text()
    assert f"minicnn exercise check linear --seed {failing}" in text.replace("\n  ", " "), text
    assert any(r.status == "FAIL" and ": random " in r.label for r in report.rows)
    assert main(["exercise", "check", "linear", "--dir", str(tmp_path), "--seed", str(failing)]) == 1
    out = capsys.readouterr().out
    assert report.failure[0] in out and "\n".join(report.failure) in out  # the same case, the same values


def test_fresh_seeds_differ_and_a_passing_check_prints_none(tmp_path):
    path = tmp_path / "linear.py"
    path.write_text(exercises.get("linear").solution())
    reports = [grade(exercises.get("linear"), path) for _ in range(2)]
    assert all(r.ok for r in reports)
    assert reports[0].seed != reports[1].seed
    assert "--seed" not in reports[0].text()


def test_timeout_has_one_home():
    assert not hasattr(command, "TIMEOUT_SECONDS")
    assert grading.TIMEOUT_SECONDS > 0
    source = Path(command.__file__).read_text()
    assert not re.search(r"^TIMEOUT_SECONDS\s*=", source, re.M)


def test_list_pages_at_a_terminal_and_stays_plain_when_piped(tmp_path, capsys):
    assert main(["exercise", "list", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = out.rstrip("\n").split("\n")
    assert command.MORE not in out and len(lines) > 24  # piped (pytest captures): the whole list
    assert all(len(line) <= WIDTH for line in lines)
    assert "capstone" in out and re.search(r"0/27 done", out)
    shown, asked = [], []
    command.page(out.rstrip("\n"), rows=24, read=lambda prompt: asked.append(prompt) or "", write=shown.append)
    assert all(len(chunk.split("\n")) <= 23 for chunk in shown) and len(asked) == len(shown) - 1 >= 1
    assert "\n".join(shown).split("\n") == lines  # every line once, in order
    shown.clear()
    command.page(out.rstrip("\n"), rows=24, read=lambda prompt: "q", write=shown.append)
    assert len(shown) == 1  # q stops after the first page


def test_pager_prints_short_text_at_once():
    shown = []
    command.page("a\nb", rows=24, read=lambda prompt: (_ for _ in ()).throw(AssertionError), write=shown.append)
    assert shown == ["a\nb"]


def test_list_at_a_24_row_pseudo_terminal_pages(tmp_path):
    """`minicnn exercise list` at a real (pseudo-)terminal of 24 x 80: each screen holds at most 23 lines
    and the prompt; Enter shows the rest."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import subprocess
    import sys
    import termios
    import time

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("LINES", "COLUMNS")}
    env["PYTHONPATH"] = str(Path(command.__file__).resolve().parents[2])
    proc = subprocess.Popen([sys.executable, "-m", "minicnn", "exercise", "list", "--dir", str(tmp_path)],
                            stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True)
    os.close(follower)

    def read_until(marker: str, seconds: float = 60.0) -> str:
        text, deadline = "", time.monotonic() + seconds
        while marker not in text and time.monotonic() < deadline:
            if select.select([leader], [], [], 0.5)[0]:
                try:
                    chunk = os.read(leader, 4096).decode()
                except OSError:  # the program ended
                    break
                text += chunk
        return text

    first = read_until(command.MORE)
    assert command.MORE in first, first
    screen = first.replace("\r\n", "\n").split("\n")
    assert len(screen) <= 24 and all(len(line) <= WIDTH for line in screen), screen
    os.write(leader, b"\n")
    rest = read_until("start one with")
    assert proc.wait(timeout=60) == 0
    os.close(leader)
    assert "capstone" in first + rest and "start one with" in rest
