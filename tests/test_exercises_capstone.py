"""The capstone: the learner's own pieces train LeNet-5 on real MNIST, or the grader names the broken piece.

The official solution is trained on a small budget (CI has MNIST: `data_dir`), the grader's own
budget is stated in `catalog.CAPSTONE_BUDGET`; broken pieces fail before any training with a note
naming them. The child may not read the dataset folders (the test labels are there).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from minicnn import exercises
from minicnn.data import datasets as datasets_module
from minicnn.exercises import catalog
from minicnn.exercises.grading import WIDTH, grade
from minicnn.exercises.spec import Budget, TrainCase

SMALL = Budget(steps=150, batch=64, lr=0.05, momentum=0.9, seed=0, target=0.90)  # ~1/6 of an epoch
SMALL_TIMEOUT = 600.0  # the machine running the tests may be busy


def _with_budget(budget: Budget) -> exercises.Exercise:
    """The capstone with its training case on `budget` (every piece check unchanged)."""
    capstone = exercises.get("capstone")

    def cases(rng):
        return [dataclasses.replace(c, budget=budget) if isinstance(c, TrainCase) else c for c in capstone.cases(rng)]
    return dataclasses.replace(capstone, cases=cases)


def _grade(exercise, text: str, tmp_path: Path, timeout: float | None = None):
    path = tmp_path / "capstone.py"
    path.write_text(text)
    report = grade(exercise, path, shown="exercises/capstone.py", timeout=timeout)
    assert all(len(line) <= WIDTH for line in report.text().splitlines()), report.text()
    return report


def _solution_with(old: str, new: str) -> str:
    text = exercises.get("capstone").solution()
    before, found, after = text.rpartition(old)
    assert found, old
    return before + new + after


def test_capstone_is_listed_last_with_its_budget_and_time_limit():
    capstone = exercises.get("capstone")
    assert exercises.names()[-1] == "capstone" and len(exercises.names()) == 27
    assert set(capstone.functions) == {"linear_forward", "linear_backward", "conv_forward", "conv_backward",
                                       "max_pool_forward", "max_pool_backward", "relu_forward", "relu_backward",
                                       "softmax_cross_entropy", "sgd_step"}
    b = catalog.CAPSTONE_BUDGET
    assert (b.steps, b.batch, b.target) == (1500, 64, 0.97)
    assert capstone.timeout == catalog.CAPSTONE_TIMEOUT
    assert any(str(b.steps) in hint and str(b.batch) in hint for hint in capstone.hints)


def test_capstone_solution_trains_lenet5_on_real_mnist(data_dir, tmp_path):
    """The official solution, a small budget: every piece check passes, then training reaches SMALL.target."""
    report = _grade(_with_budget(SMALL), exercises.get("capstone").solution(), tmp_path, timeout=SMALL_TIMEOUT)
    assert report.ok, report.text()
    training = [r for r in report.rows if r.kind == "training"]
    assert len(training) == 1 and training[0].status == "PASS"
    assert sum(r.kind == "gradcheck" for r in report.rows) == 6
    note = next(n for n in report.notes if n.startswith("LeNet-5 of your pieces"))
    accuracy = float(re.search(r"test accuracy ([\d.]+)%", note).group(1)) / 100
    assert accuracy >= SMALL.target, note
    assert f"{SMALL.steps} steps" in note


def test_capstone_stub_fails_without_training(tmp_path):
    report = _grade(exercises.get("capstone"), exercises.get("capstone").stub(), tmp_path)
    assert not report.ok
    assert "not written yet" in report.text()
    assert [r.status for r in report.rows if r.kind == "training"] == ["skip"]


@pytest.mark.parametrize("old, new, piece, hint", [
    ('w[:, :, i, j])\n            dw[', 'w[:, :, kh - 1 - i, kw - 1 - j])\n            dw[', "conv_backward",
     "UNFLIPPED kernel"),
    ("return dy @ w, dy.T @ x, dy.sum(axis=0)", "return dy @ w, dy.T @ x / len(x), dy.sum(axis=0)",
     "linear_backward", "do not divide by N"),
    ("routed = (np.arange(4) == first[..., None]) * dy[..., None]", "routed = np.repeat(dy[..., None], 4, axis=-1)",
     "max_pool_backward", "not to every element"),
    ("return float(loss), dlogits / n", "return float(loss), dlogits", "softmax_cross_entropy", "divide the gradient"),
])
def test_a_broken_piece_is_named_and_nothing_is_trained(old, new, piece, hint, tmp_path):
    report = _grade(exercises.get("capstone"), _solution_with(old, new), tmp_path)
    assert not report.ok
    assert hint in report.hint, report.text()
    assert report.failure[0].startswith(f"first failure: {piece}:"), report.text()
    assert [r.status for r in report.rows if r.kind == "training"] == ["skip"]
    assert any(f"LeNet-5 was not trained: your {piece}() fails" in n for n in report.notes), report.notes


def test_a_backward_that_only_the_gradient_check_catches_is_named(tmp_path, monkeypatch):
    """With the value cases of conv_backward removed, a wrong dw is caught by the engine's gradient checker
    (run here, on the child's outputs) and the note names the piece and the gradient check."""
    capstone = exercises.get("capstone")

    def cases(rng):
        return [c for c in capstone.cases(rng) if getattr(c, "function", "") != "conv_backward"]
    text = _solution_with("dw[:, :, i, j] = np.einsum", "dw[:, :, i, j] = 0.5 * np.einsum")
    report = _grade(dataclasses.replace(capstone, cases=cases), text, tmp_path)
    assert not report.ok
    assert report.failure[0].startswith("first failure: conv_backward: x (2,2,5,4)"), report.text()
    assert "gradient of weight" in report.text()
    assert any("your conv_backward() fails its gradient check" in n for n in report.notes), report.notes


def test_the_child_may_not_read_the_datasets(tmp_path, monkeypatch):
    """The test labels sit in the dataset folders: the capstone's child refuses to open any file there."""
    data = tmp_path / "data"
    (data / "mnist").mkdir(parents=True)
    (data / "mnist" / "labels.txt").write_text("7 2 1 0")
    monkeypatch.setenv("MINICNN_DATA", str(data))
    text = exercises.get("capstone").solution() + f"\nLABELS = open({str(data / 'mnist' / 'labels.txt')!r}).read()\n"
    report = _grade(exercises.get("capstone"), text, tmp_path)
    assert not report.ok
    assert "may not read the datasets" in report.text(), report.text()


def test_missing_mnist_fails_the_training_row_with_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("MINICNN_DATA", str(tmp_path / "empty"))
    monkeypatch.setattr(datasets_module, "cache_dir", lambda: tmp_path / "no-cache")
    report = _grade(_with_budget(SMALL), exercises.get("capstone").solution(), tmp_path)
    assert not report.ok
    assert [r.status for r in report.rows if r.kind == "training"] == ["FAIL"]
    assert "MNIST is not there" in report.text() and "MINICNN_DATA" in report.hint
    assert all(r.status == "PASS" for r in report.rows if r.kind != "training")
