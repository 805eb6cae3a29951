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
from tutorials._runner import UNAVAILABLE, CheckFailed, Tutorial, run_steps

ROOT = Path(minicnn.__file__).resolve().parent.parent
CHAPTERS = tutorials.chapter_modules()
HEADER = re.compile(r"^┌─ source: (\S+):(\d+)-(\d+)$")
LABEL = re.compile(r"^│ (\S+)$")
LINE = re.compile(r"^ *(\d+) │ ?(.*)$")
FOLDED = re.compile(r"^ +┆ (.*)$")
ANSI = re.compile(r"\x1b\[")
WIDTH = 80


def _run(number: int, tmp_path: Path, **kw) -> tuple[int, str]:
    out = io.StringIO()
    kw.setdefault("pause", False)
    kw.setdefault("width", WIDTH)  # deterministic layout; the chapter test reads $COLUMNS instead (width=None)
    rc = run_steps(importlib.import_module(CHAPTERS[number]), number, quick=True, fig_dir=tmp_path,
                   out=out, **kw)
    if rc == UNAVAILABLE and not os.environ.get("MINICNN_DATA"):  # only without data; with it, a failure
        reason = out.getvalue().strip().splitlines()[-2:]
        pytest.skip(f"chapter {number} needs real data (set MINICNN_DATA): {' '.join(reason)}")
    return rc, out.getvalue()


def _source_blocks(text: str) -> list[tuple[str, int, int, str, list[str]]]:
    """Every `┌─ source:` block: (path, first, last, object name, printed code lines), a folded line's
    continuation rows (`┆`) joined back onto it."""
    blocks, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        m = HEADER.match(line)
        if not m:
            continue
        label = LABEL.match(lines[i + 1])
        assert label, f"no object name under {line!r}"
        body: list[list] = []
        for follow in lines[i + 2:]:
            if follow.startswith("└─"):
                break
            lm, fm = LINE.match(follow), FOLDED.match(follow)
            assert lm or (fm and body), f"unexpected line inside a source block: {follow!r}"
            if lm:
                body.append([int(lm.group(1)), lm.group(2)])
            else:
                body[-1][1] += " " + fm.group(1)
        first, last = int(m.group(2)), int(m.group(3))
        assert [n for n, _ in body] == list(range(first, last + 1)), f"line numbers of {label.group(1)}"
        blocks.append((m.group(1), first, last, label.group(1), [code for _, code in body]))
    return blocks


def _indent(line: str) -> int:
    return len(line.rstrip()) - len(line.strip())


def _squeeze(line: str) -> str:
    """A line without any whitespace: folding may move spaces, never other characters."""
    return "".join(line.split())


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
    assert min(CHAPTERS) == 1 and list(CHAPTERS) == list(range(1, len(CHAPTERS) + 1))


@pytest.mark.parametrize("number", list(CHAPTERS))
def test_chapter_runs_and_shows_minicnn_source(number, tmp_path, monkeypatch):
    if number == 14 and not os.environ.get("MINICNN_DATA"):
        pytest.skip("chapter 14 trains on MNIST: set MINICNN_DATA to the dataset folder")
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    rc, text = _run(number, tmp_path, width=None)  # the width comes from $COLUMNS, as on the command line
    too_wide = [line for line in text.splitlines() if len(line) > WIDTH]
    assert not too_wide, f"chapter {number}: {len(too_wide)} lines wider than {WIDTH}, e.g. {too_wide[0]!r}"
    assert rc == 0, text[-2000:]
    assert "check FAILED" not in text and f"Chapter {number} done" in text
    assert "moved; showing the whole source" not in text, "a t.code(start=, end=) no longer matches the engine"
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
        assert [_squeeze(c) for c in code] == [_squeeze(c) for c in on_disk], f"{name}: printed code is not the file's"
        assert [_indent(c) for c in code] == [_indent(c) for c in on_disk], f"{name}: indentation changed"
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
    for bad in (99, 0, -1):
        err = io.StringIO()
        rc, text = _run(1, tmp_path, start=bad, err=err)
        assert rc == 2 and text == ""
        n = len(importlib.import_module(CHAPTERS[1]).STEPS)
        assert err.getvalue() == f"minicnn tutorial: chapter 1 has steps 1..{n}; got --step {bad} (try --step 1)\n"


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


def test_listing_and_unknown_chapter(capsys, monkeypatch):
    from minicnn.cli import main

    monkeypatch.setenv("COLUMNS", str(WIDTH))
    assert main(["tutorial"]) == 0
    listing = capsys.readouterr().out
    assert max(len(line) for line in listing.splitlines()) <= WIDTH
    for number in CHAPTERS:
        assert re.search(rf"^ *{number}\. ", listing, flags=re.M)
    assert "unavailable" not in listing
    assert main(["tutorial", "99"]) == 2
    err = capsys.readouterr().err
    assert f"no chapter 99; chapters are {min(CHAPTERS)}-{max(CHAPTERS)}" in err
    assert max(len(line) for line in err.splitlines()) <= WIDTH
    assert not any(line.startswith(" " * 7) for line in listing.splitlines())  # summaries: one indent of 6


def test_command_line_ends_with_the_chapters_exercises_and_the_next_chapter(tmp_path):
    from minicnn.exercises import for_chapter

    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", MINICNN_TUTORIAL_OUT=str(tmp_path), COLUMNS=str(WIDTH))
    run = subprocess.run([sys.executable, "-m", "tutorials", "1", "--no-pause", "--step", "6"], capture_output=True,
                         text=True, env=env, timeout=60, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert for_chapter(1), "chapter 1 has an exercise"
    assert f"Exercises: {', '.join(for_chapter(1))}\n    start one with `minicnn exercise start" in run.stdout
    assert "Next: `minicnn tutorial 2`, chapter 2: From fully connected to convolution" in run.stdout


def test_command_line_piped_is_plain_and_q_quits(tmp_path):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", MINICNN_TUTORIAL_OUT=str(tmp_path))
    env.pop("NO_COLOR", None)
    run = subprocess.run([sys.executable, "-m", "tutorials", "1"], input="q\n", capture_output=True, text=True,
                         env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "Step 1/" in run.stdout and "Step 2/" not in run.stdout and "stopped after step 1" in run.stdout
    assert not ANSI.search(run.stdout)


def _pty_run(args: list[str], answer, rows: int = 24, cols: int = WIDTH, timeout: float = 120,
             prompt: re.Pattern | None = None) -> tuple[int, str]:
    """Run `python -m tutorials ARGS` on a pseudo-terminal of rows x cols, as a person would see it.
    `answer(output_so_far)` returns what to type once the output stops at a prompt (`prompt`, by
    default PAUSE) or None."""
    prompt = prompt or PAUSE
    import fcntl
    import pty
    import select
    import struct
    import termios
    import time

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(NO_COLOR="1", OPENBLAS_NUM_THREADS="1", PYTHONIOENCODING="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "tutorials", *args], stdin=slave, stdout=slave, stderr=slave,
                            env=env, cwd=ROOT, close_fds=True)
    os.close(slave)
    chunks, deadline, quiet = [], time.monotonic() + timeout, 0
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
                quiet = 0
                continue
            if proc.poll() is not None:
                break
            quiet += 1
            out = b"".join(chunks).decode("utf-8", "replace")
            if quiet == 4 and prompt.search(_screen_rows(out)[-1]):  # silent at a prompt: it waits for us
                typed = answer(out)
                if typed is not None:
                    os.write(master, typed.encode())
        rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return rc, b"".join(chunks).decode("utf-8", "replace")


PAUSE = re.compile(r"-- more --| q: quit > ")


def _screen_rows(text: str) -> list[str]:
    """The rows as the terminal shows them: an erased `-- more --` prompt is overwritten in place."""
    return text.replace("\r\x1b[K", "\n").replace("\r", "").split("\n")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pseudo-terminal test written for Linux")
@pytest.mark.parametrize("number", [4, 13])  # chapters with the longest steps
def test_interactive_pages_fit_an_80x24_terminal(number):
    rc, text = _pty_run([str(number), "--quick"], answer=lambda _out: "\n")
    if rc == UNAVAILABLE and not os.environ.get("MINICNN_DATA"):
        pytest.skip(f"chapter {number} needs real data for its last step (set MINICNN_DATA)")
    assert rc == 0, text[-2000:]
    rows = _screen_rows(text)
    assert f"Chapter {number} done: ran step(s) all" in text
    assert max(len(r) for r in rows) <= WIDTH
    run, longest, pauses = 0, 0, 0
    for row in rows:
        if PAUSE.search(row):
            pauses, run = pauses + 1, 0
        else:
            run += 1
            longest = max(longest, run)
    assert longest <= 22, f"{longest} rows without a pause"
    assert "-- more -- chapter" in text, "a long step must page"
    n = len(importlib.import_module(CHAPTERS[number]).STEPS)
    for k in range(1, n):  # every end-of-step prompt names the chapter, the step and its title
        title = importlib.import_module(CHAPTERS[number]).STEPS[k - 1].title
        assert f"ch {number} · step {k}/{n} · {title.split()[0]}" in text


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pseudo-terminal test written for Linux")
def test_interactive_q_at_more_quits():
    rc, text = _pty_run(["13", "--quick"], answer=lambda out: "q" if "-- more --" in _screen_rows(out)[-1] else "\n")
    assert rc == 0 and "stopped in step 1 of" in text and "Step 2/" not in text


def test_invalid_answers_are_refused_with_a_hint(tmp_path):
    n = len(importlib.import_module(CHAPTERS[1]).STEPS)
    rc, text = _run(1, tmp_path, pause=True, inp=io.StringIO("x\n99\n\nq\n"))
    assert rc == 0
    assert "'x' is not a step of chapter 1: press Enter, type 1-" in text
    assert "'99' is not a step of chapter 1" in text
    assert "Step 2/" in text and "Step 3/" not in text and "stopped after step 2" in text
    hints = [line for line in text.splitlines() if "is not a step" in line]
    assert len(hints) == 2 and all(len(h) <= WIDTH for h in hints)
    assert text.count(f"ch 1 · step 1/{n} · ") == 3  # asked again after each refusal


def test_end_of_chapter_says_which_steps_ran_and_what_comes_next(tmp_path):
    n = len(importlib.import_module(CHAPTERS[1]).STEPS)
    rc, text = _run(1, tmp_path, pause=True, inp=io.StringIO(f"\n{n}\n"), next_chapter=(2, "From FC to conv"))
    assert rc == 0
    assert f"Chapter 1 done: ran step(s) 1, 2, {n} of {n}" in text
    assert f"Not run: step(s) {', '.join(map(str, range(3, n)))}" in text
    assert "Next: `minicnn tutorial 2`, chapter 2: From FC to conv" in text
    rc, text = _run(1, tmp_path, exercises=["linear", "other"])
    assert "Exercises: linear, other\n    start one with `minicnn exercise start linear`" in text
    rc, text = _run(1, tmp_path)
    assert "ran step(s) all" in text and "Not run" not in text


def test_repeated_checks_fold_into_one_line_unless_verbose(tmp_path):
    for verbose in (False, True):
        out = io.StringIO()
        t = Tutorial(1, out=out, fig_dir=tmp_path, verbose=verbose, width=WIDTH)
        for k in range(5):
            t.check(f"claim {k}", k, k)
        t.check_true("single", True)
        t.print("after")
        lines = out.getvalue().splitlines()
        if verbose:
            assert lines[:5] == [f"✓ check: claim {k}: max diff 0 (tolerance 1e-12)" for k in range(5)]
            assert lines[5] == "✓ check: single"
        else:
            assert lines == ["✓ 6 checks passed: claim 0; claim 1; claim 2; claim 3; claim 4; "
                             "single", "after"]
    out = io.StringIO()
    t = Tutorial(1, out=out, fig_dir=tmp_path, width=WIDTH)
    t.check("one", 1, 1)
    t.check("two", 1, 1)
    with pytest.raises(CheckFailed):
        t.check("three", 1, 2)
    lines = out.getvalue().splitlines()  # before a failure, the claims that held are printed in full
    assert lines[0].startswith("✓ check: one") and lines[2].startswith("✗ check FAILED: three")


def test_long_lines_are_wrapped_at_words_and_tables_fold(tmp_path):
    from tutorials._runner import fold_code, wrap_line

    words = "the quick brown fox jumps over the lazy dog " * 6
    rows = wrap_line(words.strip(), 30)
    assert all(len(r) <= 30 for r in rows) and " ".join(r.strip() for r in rows) == words.strip()
    rows = wrap_line("      " + words.strip(), 30, indent="      ")  # an indented line keeps ONE indent
    assert all(r.startswith("      ") and r[6] != " " and len(r) <= 30 for r in rows)
    code = "    result = some_function(first_argument, second_argument, third_argument)  # (N, C, H, W)"
    pieces = fold_code(code, 40)
    assert all(len(p) <= 40 for p in pieces) and pieces[0].startswith("    result")
    assert "".join("".join(p.split()) for p in pieces) == "".join(code.split())
    assert not any(p[-1:].isalnum() and q[:1].isalnum() for p, q in zip(pieces[:-1], pieces[1:], strict=True))
    out = io.StringIO()
    t = Tutorial(1, out=out, fig_dir=tmp_path, width=40)
    t.table(["layer", "weights", "multiply-adds", "share of all"], [["Conv2D(32, 64, 3)", 18432, 4718592, "99%"]])
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 40 for line in lines)
    assert lines[0] == "Conv2D(32, 64, 3)" and "weights: 18,432" in out.getvalue()


def test_ascii_fallback_when_the_terminal_cannot_print_unicode(tmp_path):
    env = dict(os.environ, PYTHONIOENCODING="ascii", OPENBLAS_NUM_THREADS="1", MINICNN_TUTORIAL_OUT=str(tmp_path),
               COLUMNS=str(WIDTH))
    run = subprocess.run([sys.executable, "-m", "tutorials", "3", "--no-pause", "--quick"], capture_output=True,
                         env=env, timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr.decode(errors="replace")[-2000:]
    text = run.stdout.decode("ascii")  # raises if any byte is not ASCII
    assert "Chapter 3 done" in text and "+- source: minicnn/" in text and "Step 1/4 . " in text
    assert all(len(line) <= WIDTH for line in text.splitlines())
    listing = subprocess.run([sys.executable, "-m", "tutorials"], capture_output=True, env=env, timeout=60, cwd=ROOT)
    assert listing.returncode == 0 and listing.stdout.decode("ascii")
    bad = subprocess.run([sys.executable, "-m", "tutorials", "99"], capture_output=True, env=env, timeout=60, cwd=ROOT)
    assert bad.returncode == 2 and b"no chapter 99" in bad.stderr
