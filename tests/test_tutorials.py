"""The terminal tutorials: every chapter runs to the end, every step prints the engine's own source,
piped output is plain, and paging (Enter, a step number, q, --step) behaves."""

from __future__ import annotations

import importlib
import inspect
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import minicnn
import tutorials
from tutorials._runner import CheckFailed, Tutorial, run_steps

ROOT = Path(minicnn.__file__).resolve().parent.parent
CHAPTERS = tutorials.chapter_modules()
HEADER = re.compile(r"^┌─ source: (\S+):(\d+)-(\d+)  \((\S+)\)$")
LINE = re.compile(r"^ *(\d+) │ ?(.*)$")
ANSI = re.compile(r"\x1b\[")


def _run(number: int, tmp_path: Path, **kw) -> tuple[int, str]:
    out = io.StringIO()
    kw.setdefault("pause", False)
    rc = run_steps(importlib.import_module(CHAPTERS[number]), number, quick=True, fig_dir=tmp_path,
                   out=out, **kw)
    return rc, out.getvalue()


def _source_blocks(text: str) -> list[tuple[str, int, int, str, list[str]]]:
    """Every `┌─ source:` block: (path, first, last, object name, printed code lines)."""
    blocks, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        m = HEADER.match(line)
        if not m:
            continue
        body = []
        for follow in lines[i + 1:]:
            if follow.startswith("└─"):
                break
            lm = LINE.match(follow)
            assert lm, f"unexpected line inside a source block: {follow!r}"
            body.append((int(lm.group(1)), lm.group(2)))
        first, last = int(m.group(2)), int(m.group(3))
        assert [n for n, _ in body] == list(range(first, last + 1)), f"line numbers of {m.group(4)}"
        blocks.append((m.group(1), first, last, m.group(4), [code for _, code in body]))
    return blocks


def _resolve(qualified: str):
    """'minicnn.functional.dense.linear' or 'minicnn.core.Layer.forward' -> the object."""
    parts = qualified.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        for attr in parts[k:]:
            obj = getattr(obj, attr)
        return obj
    raise AssertionError(f"cannot import {qualified}")


def test_there_are_chapters():
    assert min(CHAPTERS) == 1 and all(1 <= n <= 14 for n in CHAPTERS)


@pytest.mark.parametrize("number", list(CHAPTERS))
def test_chapter_runs_and_shows_minicnn_source(number, tmp_path, monkeypatch):
    if number == 14 and not os.environ.get("MINICNN_DATA"):
        pytest.skip("chapter 14 trains on MNIST: set MINICNN_DATA to the dataset folder")
    rc, text = _run(number, tmp_path)
    assert rc == 0, text[-2000:]
    assert "check FAILED" not in text and f"Chapter {number} done" in text
    assert not ANSI.search(text), "output to a non-terminal must carry no colour codes"
    module = importlib.import_module(CHAPTERS[number])
    # every step shows at least one block of the engine's own source
    per_step = re.split(r"^Step \d+/\d+ · ", text, flags=re.M)[1:]
    assert len(per_step) == len(module.STEPS)
    for k, chunk in enumerate(per_step, 1):
        assert _source_blocks(chunk), f"chapter {number} step {k} prints no minicnn source"
    for path, first, last, name, code in _source_blocks(text):
        assert path.startswith("minicnn/"), f"{name}: source from outside the package: {path}"
        on_disk = (ROOT / path).read_text().splitlines()[first - 1:last]
        assert [c.rstrip() for c in code] == [c.rstrip() for c in on_disk], f"{name}: printed code is not the file's"
        obj = _resolve(name)
        assert Path(inspect.getsourcefile(obj)).resolve() == (ROOT / path).resolve()
        src, start = inspect.getsourcelines(obj)
        start = max(start, 1)
        assert start <= first and last <= start + len(src) - 1, f"{name}: lines outside the object's source"


@pytest.mark.parametrize("number", [n for n in CHAPTERS if n != 14])  # 14's last step would retrain
def test_last_step_runs_on_its_own(number, tmp_path):
    """Steps are self-contained, so --step K works for any K; the last step is the hardest case."""
    n = len(importlib.import_module(CHAPTERS[number]).STEPS)
    rc, text = _run(number, tmp_path, start=n)
    assert rc == 0 and f"Step {n}/{n}" in text and "Step 1/" not in text, text[-2000:]


def test_checks_are_assertions(tmp_path):
    t = Tutorial(1, out=io.StringIO(), fig_dir=tmp_path)
    assert t.check("equal", [1.0, 2.0], [1.0, 2.0]) == 0.0
    with pytest.raises(CheckFailed):
        t.check("not equal", [1.0, 2.0], [1.0, 2.5])
    with pytest.raises(CheckFailed):
        t.check("shape", [1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(CheckFailed):
        t.check_true("false claim", False)


def test_code_refuses_objects_outside_minicnn(tmp_path):
    t = Tutorial(1, out=io.StringIO(), fig_dir=tmp_path)
    with pytest.raises(ValueError, match="minicnn"):
        t.code(run_steps)


def test_step_option_starts_at_step_k(tmp_path):
    rc, text = _run(1, tmp_path, start=3)
    assert rc == 0
    assert "Step 1/" not in text and "Step 2/" not in text and "Step 3/" in text
    rc, text = _run(1, tmp_path, start=99)
    assert rc == 2 and "has steps 1.." in text


def test_paging_enter_jump_and_quit(tmp_path):
    n = len(importlib.import_module(CHAPTERS[1]).STEPS)
    rc, text = _run(1, tmp_path, pause=True, inp=io.StringIO("\nq\n"))
    assert rc == 0
    assert "Step 1/" in text and "Step 2/" in text and "Step 3/" not in text
    assert "stopped after step 2" in text and "--step 3" in text
    rc, text = _run(1, tmp_path, pause=True, inp=io.StringIO(f"{n}\n"))
    assert rc == 0 and "Step 2/" not in text and f"Step {n}/{n}" in text
    # end of input: nobody is there to press Enter, so the chapter runs straight to the end
    rc, text = _run(1, tmp_path, pause=True, inp=io.StringIO(""))
    assert rc == 0 and f"Step {n}/{n}" in text and "Chapter 1 done" in text


def test_colour_only_when_asked(tmp_path):
    rc, text = _run(1, tmp_path, color=True, start=len(importlib.import_module(CHAPTERS[1]).STEPS))
    assert rc == 0 and ANSI.search(text)


def test_listing_and_unknown_chapter(capsys):
    from minicnn.cli import main

    assert main(["tutorial"]) == 0
    listing = capsys.readouterr().out
    for number in CHAPTERS:
        assert re.search(rf"^ *{number}\. ", listing, flags=re.M)
    assert "unavailable" not in listing
    assert main(["tutorial", "99"]) == 2
    assert "no chapter 99" in capsys.readouterr().out


def test_command_line_piped_is_plain_and_q_quits(tmp_path):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", MINICNN_TUTORIAL_OUT=str(tmp_path))
    env.pop("NO_COLOR", None)
    run = subprocess.run([sys.executable, "-m", "tutorials", "1"], input="q\n", capture_output=True, text=True,
                         env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "Step 1/" in run.stdout and "Step 2/" not in run.stdout and "stopped after step 1" in run.stdout
    assert not ANSI.search(run.stdout)
