"""Grade a learner's file in a child process, with a time limit.

    check_file(exercise, path, timeout) -> Report

The child (`python -m minicnn.exercises.runner NAME PATH SHOWN OUT`) runs `grading.grade` and writes
the report as JSON to the file OUT (not to stdout, which the learner's code may print to). A file
that does not finish within `timeout` seconds is stopped and reported as such.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from minicnn.exercises.grading import Report
from minicnn.exercises.spec import Exercise


def check_file(exercise: Exercise, path: Path, timeout: float, shown: str | None = None) -> Report:
    """Grade `path` in a child process; a child still running after `timeout` seconds is killed."""
    shown = shown or str(path)
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([package_root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix="minicnn-check-") as tmp:
        out = Path(tmp) / "report.json"
        command = [sys.executable, "-m", "minicnn.exercises.runner", exercise.name, str(path), shown, str(out)]
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return Report(exercise.name, shown, failure=[
                f"{shown} was still running after {timeout:g} s and was stopped."],
                hint="look for a loop that never ends (a `while` whose condition never changes, a range that "
                     "grows inside the loop); the solution takes well under a second")
        if not out.exists():
            tail = (done.stderr or "").strip().splitlines()[-3:]
            return Report(exercise.name, shown, failure=[
                f"checking {shown} stopped without a result (exit code {done.returncode})"] + tail,
                hint="did your code end the program (os._exit, a crash in a C extension)?")
        return Report.from_dict(json.loads(out.read_text()))


def main(argv: list[str]) -> int:
    from minicnn.exercises import get
    from minicnn.exercises.grading import grade

    name, path, shown, out = argv
    report = grade(get(name), Path(path), shown)
    Path(out).write_text(json.dumps(report.to_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
