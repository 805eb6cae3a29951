"""The course shows the code that runs: every function a tutorial step prints with `t.code` is
executed in that step, and at least one executable line of each excerpt runs there (the rule is in
`tutorials/_trace.py`; a class or module shown only for its docstring is text and exempt).

Each chapter runs in a fresh process (`python -m tutorials._trace N --json`) so that the tracer is
installed before minicnn's worker threads start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import minicnn
import tutorials
from minicnn.functional import checks
from tutorials._runner import UNAVAILABLE, Step
from tutorials._trace import executable_lines, function_code, trace_steps

ROOT = Path(minicnn.__file__).resolve().parent.parent
CHAPTERS = tutorials.chapter_modules()


@pytest.mark.parametrize("number", list(CHAPTERS))
def test_every_excerpt_runs_in_its_step(number, tmp_path):
    if number == 14 and not os.environ.get("MINICNN_DATA"):
        pytest.skip("chapter 14 trains on MNIST: set MINICNN_DATA to the dataset folder")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", MINICNN_TUTORIAL_OUT=str(tmp_path))
    run = subprocess.run([sys.executable, "-m", "tutorials._trace", str(number), "--json"],
                         capture_output=True, text=True, env=env, timeout=900, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)
    if report["rc"] == UNAVAILABLE and not os.environ.get("MINICNN_DATA"):
        pytest.skip(f"chapter {number} needs real data (set MINICNN_DATA)")
    assert report["rc"] == 0, report["output"][-2000:]
    lines = [f"step {m['step']}: {m['label']} ({m['lines']}): {m['reason']}; ran instead: "
             f"{', '.join(m['instead']) or 'nothing from that file'}" for m in report["misses"]]
    assert not lines, f"chapter {number} shows code that did not run:\n" + "\n".join(lines)


# --- the rule itself, on a made-up chapter ----------------------------------------------------------

def _chapter(*runs) -> types.SimpleNamespace:
    steps = [Step(f"step {k}", "text", "eq", run) for k, run in enumerate(runs, 1)]
    return types.SimpleNamespace(TITLE="made up", SUMMARY="for the tracer's test", STEPS=steps)


def _shows_and_calls(t):
    t.code(checks.conv_output_size)
    checks.conv_output_size(5, 3)


def _shows_only(t):
    t.code(checks.conv_output_size)


def _calls_in_another_step(t):
    checks.conv_output_size(5, 3)


def _branch_not_taken(t):  # the stride check's raise does not run for stride 1
    t.code(checks.conv_output_size, start="expected stride >= 1", end="expected stride >= 1")
    checks.conv_output_size(5, 3)


def _docstring_only(t):
    t.code(minicnn.core, end='"""')  # a module's docstring: text
    t.code(checks.conv_output_size, start='"""Output length', end="OUT = floor")
    checks.conv_output_size(5, 3, padding=np.int64(1))


def test_the_rule_on_a_made_up_chapter(tmp_path):
    chapter = _chapter(_shows_and_calls, _shows_only, _calls_in_another_step, _branch_not_taken,
                       _docstring_only)
    rc, _, found = trace_steps(chapter, 1, tmp_path)
    assert rc == 0
    assert [(m.step, m.label) for m in found] == [(2, "minicnn.functional.checks.conv_output_size"),
                                                  (4, "minicnn.functional.checks.conv_output_size")]
    assert found[0].reason == "the function was not called in this step"
    assert found[1].reason == "none of the excerpt's lines executed in this step"
    assert "conv_output_size" in found[1].instead and found[0].instead == []
    assert found[1].lines.startswith("minicnn/functional/checks.py:")


def test_executable_lines_leave_out_docstrings_and_def_lines():
    path = str(Path(checks.__file__).resolve())
    text = Path(path).read_text().splitlines()

    def line_of(needle: str) -> int:
        return next(k for k, line in enumerate(text, 1) if needle in line)

    lines = executable_lines(path)
    assert line_of("def conv_output_size(") not in lines
    assert line_of('"""Output length') not in lines and line_of("OUT = floor") not in lines
    assert line_of("return (padded - span)") in lines
    assert function_code(minicnn.core.Layer) is None and function_code(minicnn.core) is None
    assert function_code(minicnn.core.Layer.forward) is minicnn.core.Layer.forward.__code__


THREADED = """
import sys, tempfile, types
from minicnn import threads
from minicnn.functional import checks
from tutorials._runner import UNAVAILABLE, Step
from tutorials._trace import trace_steps

def step(t):  # the shown function runs only on the pool's threads
    t.code(checks.conv_output_size)
    threads.split_batch(lambda lo, hi: checks.conv_output_size(5, 3), 2, 2)

chapter = types.SimpleNamespace(TITLE="t", SUMMARY="s", STEPS=[Step("a", "b", "c", step)])
if sys.argv[1] == "pool-before":
    threads.pool().submit(int).result()  # its one thread starts before the tracer: not traced
rc, _, found = trace_steps(chapter, 1, tempfile.mkdtemp())
print(rc, len(found))
"""


def test_worker_threads_started_by_the_chapter_are_traced():
    """Why each chapter runs in a fresh process: the tracer sees minicnn's worker threads only when
    they start after it (Python 3.11 cannot trace threads that already run)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", MINICNN_WORKERS="1")  # a pool of one thread

    def found(when: str) -> str:
        run = subprocess.run([sys.executable, "-c", THREADED, when], capture_output=True, text=True, env=env,
                             timeout=120, cwd=ROOT)
        assert run.returncode == 0, run.stderr[-2000:]
        return run.stdout.split()

    assert found("fresh") == ["0", "0"]
    assert found("pool-before") == ["0", "1"]
