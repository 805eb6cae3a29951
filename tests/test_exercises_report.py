"""A report fits one 80x24 terminal page: the capstone's ~70 checks are shown per piece, with the
failing pieces named, the first failure (cut to fit, --all for the rest), the hint and the notes."""

from __future__ import annotations

import numpy as np

from minicnn import exercises
from minicnn.cli import main
from minicnn.exercises.grading import PAGE_ROWS, WIDTH, Report, Row, grade


def _capstone(text: str, tmp_path) -> Report:
    path = tmp_path / "capstone.py"
    path.write_text(text)
    return grade(exercises.get("capstone"), path, shown="exercises/capstone.py", rng=np.random.default_rng(0))


def _fits(text: str) -> None:
    lines = text.splitlines()
    assert len(lines) <= PAGE_ROWS and max(len(line) for line in lines) <= WIDTH, "\n".join(lines)


def test_capstone_stub_report_fits_a_page_and_names_every_failing_piece(tmp_path):
    report = _capstone(exercises.get("capstone").stub(), tmp_path)
    text = report.text()
    _fits(text)
    assert len(report.rows) > PAGE_ROWS  # the table itself would not fit
    for piece in exercises.get("capstone").functions:
        assert any(line.startswith("  FAIL") and f" {piece} " in line for line in text.splitlines()), text
    assert "first failure: linear_forward" in text and "hint: write the body" in text
    assert "minicnn exercise check capstone --all" in text


def test_capstone_one_wrong_piece_is_named_and_the_failure_cut_to_fit(tmp_path):
    text = exercises.get("capstone").solution().replace("return dy * (x > 0)", "return dy * (x >= 0)")
    report = _capstone(text, tmp_path)
    shown = report.text()
    _fits(shown)
    fails = [line for line in shown.splitlines() if line.startswith("  FAIL")]
    assert len(fails) == 1 and " relu_backward " in fails[0], shown
    assert "use x > 0" in shown and "expected 0, got" in shown
    full = report.text(details=True)
    assert len(full.splitlines()) > PAGE_ROWS and "FAIL  values     relu_backward: dy, x (3,4)" in full
    assert max(len(line) for line in full.splitlines()) <= WIDTH


def test_a_passed_capstone_report_fits_with_its_training_note():
    rows = [Row("PASS", "values", f"piece{k % 9}: case {k}") for k in range(66)] + \
        [Row("PASS", "training", "LeNet-5 on MNIST, 1500 steps of 64, lr 0.05: >= 97%")]
    report = Report("capstone", "exercises/capstone.py", rows,
                    notes=["LeNet-5 of your pieces: 1500 steps in 60 s, loss 2.301 -> 0.101; test accuracy "
                           "98.10% on 10000 images"])
    text = report.text()
    _fits(text)
    assert text.endswith("PASSED: capstone") and "98.10%" in text and "67/67 checks passed" in text


def test_a_report_that_fits_keeps_one_row_per_check(tmp_path):
    path = tmp_path / "output_size.py"
    path.write_text(exercises.get("output_size").solution())
    report = grade(exercises.get("output_size"), path, shown="exercises/output_size.py", seed=0)
    assert report.text() == report.text(details=True) and len(report.text().splitlines()) <= PAGE_ROWS


def test_check_all_prints_every_row(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["exercise", "start", "capstone", "--dir", "ex"]) == 0
    capsys.readouterr()
    assert main(["exercise", "check", "capstone", "--dir", "ex"]) == 1
    short = capsys.readouterr().out
    _fits(short.rstrip("\n"))
    assert main(["exercise", "check", "capstone", "--dir", "ex", "--all"]) == 1
    full = capsys.readouterr().out
    assert full.count("FAIL  values") > PAGE_ROWS and "skip  training" in full
