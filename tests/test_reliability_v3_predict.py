"""predict and evaluate tell the user what they did not ask for (issue: your own pictures in): notes on their
own wrapped lines within 80 columns; a model evaluated on another dataset than its own is named."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from minicnn.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A one-epoch LeNet-5 run on 64 random 28x28 images (named digits), and a second dataset file whose
    classes have other names."""
    folder = tmp_path_factory.mktemp("v3predict")
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (96, 28, 28), dtype=np.uint8), rng.integers(0, 10, 96)
    np.savez(folder / "tiny.npz", x_train=x[:64], y_train=y[:64], x_test=x[64:], y_test=y[64:])
    np.savez(folder / "other.npz", x_train=x[:64], y_train=y[:64], x_test=x[64:], y_test=y[64:],
             class_names=np.array([f"thing{i}" for i in range(10)]))
    assert main(["train", "--dataset", str(folder / "tiny.npz"), "--epochs", "1", "--batch-size", "32",
                 "--no-progress", "--out", str(folder / "run")]) == 0
    return folder


def test_predict_notes_wrap_within_80_columns(trained, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a short relative path: a path longer than 80 columns is never broken
    wide = np.zeros((150, 600, 4), np.uint8)  # a wide RGBA picture: alpha, colour, resize and inversion notes
    wide[..., :3] = 255
    wide[40:110, 280:320, 3] = 255
    Image.fromarray(wide).save("wide_drawing_with_a_long_name.png")
    capsys.readouterr()
    assert main(["predict", str(trained / "run" / "checkpoint.npz"), "wide_drawing_with_a_long_name.png"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) <= 80, lines
    text = " ".join(" ".join(lines).split())
    assert "notes:" in text and "resized from 600x150 to 28x28 (width x height)" in text


def test_evaluate_names_another_dataset_and_other_class_names(trained, capsys):
    capsys.readouterr()
    code = main(["evaluate", str(trained / "run" / "checkpoint.npz"), "--dataset", str(trained / "other.npz"),
                 "--png", str(trained / "c.png")])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 0
    assert "note: the model's classes (0, 1, 2, 3, ...) are not other's (thing0, thing1, thing2, thing3, ...)" in out
    assert "note: the model was trained on" in out and "evaluated here on" in out
