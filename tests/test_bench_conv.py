"""`minicnn bench conv`: says up front how long it will take (from one timed call of every layer), fits 80
columns, shows a progress bar only on a terminal, and takes --rounds / --quick. Small cases stand in for
the real ones (the timings are never asserted: a benchmark, not a test)."""

from __future__ import annotations

import io
import re

import pytest

from minicnn.cli import main
from minicnn.commands import bench

TINY = [("tiny 2->4 3x3 8x8", 2, 2, 4, 3, 8, 1, 1, 1), ("tiny 5x5 6x6", 2, 2, 2, 5, 6, 1, 0, 1)]


@pytest.fixture()
def tiny_cases(monkeypatch):
    monkeypatch.setattr(bench, "CONV_CASES", TINY)
    monkeypatch.setattr(bench, "QUICK_CASES", {TINY[0][0]})
    monkeypatch.setattr(bench, "DIRECT_CASES", {TINY[1][0]})
    monkeypatch.setattr(bench, "SWEEP_KERNELS", (3, 5))
    monkeypatch.setattr(bench, "gemm_gflops", lambda repeats: 10.0)  # the 2048^3 product is not the point here
    monkeypatch.setenv("COLUMNS", "80")


def test_full_run_estimates_first_and_fits_80_columns(tiny_cases, capsys):
    assert main(["bench", "conv", "--rounds", "2", "--no-torch"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert max(map(len, lines)) <= 80, max(lines, key=len)
    estimate = next(i for i, line in enumerate(lines) if re.search(r"\d+ layers x 2 rounds: about \d", line))
    first_row = next(i for i, line in enumerate(lines) if line.startswith("  im2col"))
    assert estimate < first_row  # said before any timing is shown
    assert "9 layers x 2 rounds" in lines[estimate]  # 2 + 2 + direct for the tables, 2 x 2 for the sweep
    assert [line.split()[0] for line in lines if line.startswith("  ") and not line.startswith("  method")
            and "x" not in line.split()[0]] == ["im2col", "fft", "im2col", "fft", "direct"]
    assert any(line.startswith("FFT") for line in lines) and lines[-1].startswith("took ")
    assert err == ""  # stderr is not a terminal here: no bar


def test_quick_times_the_quick_cases_only(tiny_cases, capsys):
    assert main(["bench", "conv", "--quick", "--no-torch"]) == 0
    out = capsys.readouterr().out
    assert "2 layers x 3 rounds" in out and TINY[1][0] not in out and "crossover" not in out


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_shows_on_a_terminal(tiny_cases, monkeypatch, capsys):
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["bench", "conv", "--quick", "--rounds", "1", "--no-torch"]) == 0
    assert "timing" in terminal.getvalue() and "layer" in terminal.getvalue()
    assert max(map(len, capsys.readouterr().out.splitlines())) <= 80


def test_rounds_is_checked(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "conv", "--rounds", "0"])
    assert "0" in capsys.readouterr().err
