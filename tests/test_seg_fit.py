"""`fit`, `train_epoch` and `evaluate` on per-pixel labels against hand computations; the write rule of
the files `fit` writes (metrics.csv/json, curves.png, checkpoints) and of `save_checkpoint`'s default."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from minicnn import layers as L
from minicnn import optim
from minicnn.app.checkpoint import save_checkpoint
from minicnn.app.train import (
    BestCheckpoint,
    EarlyStopping,
    EpochState,
    FitConfig,
    evaluate,
    fit,
    train_epoch,
    write_metrics,
)
from minicnn.core import Sequential
from minicnn.data import Dataset
from minicnn.files import TargetError


def _pixel_model() -> Sequential:
    """A 1x1 convolution, 1 -> 2 classes: logits[n, k, i, j] = w_k x[n, 0, i, j] + b_k (fixed by hand)."""
    conv = L.Conv2D(1, 2, 1)
    conv.weight.data[...] = np.array([1.0, -1.0], np.float32).reshape(2, 1, 1, 1)
    conv.bias.data[...] = np.array([0.0, 0.5], np.float32)
    return Sequential(conv)


X = np.array([[[[1.0, -1.0], [0.0, 2.0]]], [[[-2.0, 0.5], [1.0, -0.5]]]], np.float32)  # (2, 1, 2, 2)
Y = np.array([[[0, 1], [1, 0]], [[1, 0], [0, 1]]], np.int64)  # (2, 2, 2) a class per pixel


def _by_hand() -> tuple[float, np.ndarray, np.ndarray]:
    """Mean per-pixel cross-entropy, predicted classes and the confusion matrix, pixel by pixel."""
    losses, predicted, confusion = [], np.zeros(Y.shape, np.int64), np.zeros((2, 2), np.int64)
    for n in range(2):
        for i in range(2):
            for j in range(2):
                v = float(X[n, 0, i, j])
                z = [v, -v + 0.5]
                log_z = math.log(math.exp(z[0]) + math.exp(z[1]))
                losses.append(log_z - z[Y[n, i, j]])
                predicted[n, i, j] = 0 if z[0] >= z[1] else 1
                confusion[Y[n, i, j], predicted[n, i, j]] += 1
    return sum(losses) / len(losses), predicted, confusion


def test_evaluate_per_pixel_loss_accuracy_and_scores_match_a_hand_computation():
    loss, predicted, confusion = _by_hand()
    result = evaluate(_pixel_model(), X, Y, batch_size=1)  # batch by batch: the same numbers as all at once
    assert result.loss == pytest.approx(loss, rel=1e-6)
    np.testing.assert_array_equal(result.predictions, predicted)
    np.testing.assert_array_equal(result.scores.confusion, confusion)
    assert result.accuracy == np.trace(confusion) / 8 and result.correct == np.trace(confusion)
    tp, fp, fn = confusion[1, 1], confusion[0, 1], confusion[1, 0]
    assert result.scores.dice[1] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert result.scores.iou[1] == pytest.approx(tp / (tp + fp + fn))


def test_train_epoch_counts_pixels_not_images():
    loss, predicted, _ = _by_hand()
    model = _pixel_model()
    state = train_epoch(model, X, Y, optim.SGD(model.parameters(), 0.0), FitConfig(epochs=1, batch_size=2,
                        progress=False), EpochState(0))  # lr 0: the weights stay those of the hand computation
    assert state.seen == 2 and state.pixels == 4
    assert state.loss == pytest.approx(loss, rel=1e-6)
    assert state.accuracy == (predicted == Y).sum() / 8  # right pixels / all 8 pixels


def test_fit_rows_metrics_and_best_checkpoint_of_a_segmentation(tmp_path):
    ds = Dataset("toy-seg", X, Y, X, Y, ["background", "object"])
    model = _pixel_model()
    best = BestCheckpoint(tmp_path / "best.npz", {"model": "toy"}, monitor="val_iou")
    stop = EarlyStopping(1, monitor="val_iou")
    result = fit(model, ds, optim.SGD(model.parameters(), 0.0), FitConfig(epochs=3, batch_size=2, out_dir=tmp_path,
                 progress=False), val=(X, Y), callbacks=[best, stop], log=None)
    row = result.history[0]
    hand = evaluate(_pixel_model(), X, Y)
    assert row["val_loss"] == pytest.approx(hand.loss) and row["val_acc"] == hand.accuracy
    assert row["val_dice"] == hand.scores.mean_dice and row["val_iou"] == hand.scores.mean_iou
    # lr 0: the IoU never rises again, so the run stops after epoch 2 and the best stays epoch 1
    assert result.status == "stopped early" and len(result.history) == 2 and best.best_epoch == 1
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["summary"]["test_iou"] == hand.scores.mean_iou
    assert (tmp_path / "metrics.csv").read_text().splitlines()[0].split(",")[6:8] == ["val_dice", "val_iou"]


def test_metrics_files_follow_the_write_rule(tmp_path):
    rows = [{"epoch": 1, "lr": 0.1, "train_loss": 1.0, "train_acc": 0.5, "test_loss": 1.0, "test_acc": 0.5,
             "train_seconds": 1.0, "images_per_s": 1.0}]
    (tmp_path / "metrics.csv").write_text("an earlier run's\n")  # not written by this process
    with pytest.raises(FileExistsError):
        write_metrics(tmp_path, rows)
    assert (tmp_path / "metrics.csv").read_text() == "an earlier run's\n"
    write_metrics(tmp_path, rows, overwrite=True)  # a resumed run replaces its own earlier files
    assert (tmp_path / "metrics.csv").read_text().startswith("epoch,lr")
    write_metrics(tmp_path, rows)  # files this process wrote: replaced without asking
    target = tmp_path / "elsewhere.json"
    target.write_text("{}")
    other = tmp_path / "other"
    other.mkdir()
    os.symlink(target, other / "metrics.json")
    with pytest.raises(TargetError, match="symbolic link"):
        write_metrics(other, rows, overwrite=True)
    assert target.read_text() == "{}"
    os.mkfifo(other / "curves.png")
    os.unlink(other / "metrics.json")
    with pytest.raises(TargetError, match="FIFO"):
        write_metrics(other, rows, overwrite=True)


def test_save_checkpoint_refuses_another_processes_file_by_default(tmp_path):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(b"another run's checkpoint")
    with pytest.raises(FileExistsError):
        save_checkpoint(path, _pixel_model(), None, {"model": "toy"})
    assert path.read_bytes() == b"another run's checkpoint"
    save_checkpoint(path, _pixel_model(), None, {"model": "toy"}, overwrite=True)  # said to replace it
    save_checkpoint(path, _pixel_model(), None, {"model": "toy"})  # now this process's own file


def test_fit_without_resume_does_not_replace_a_checkpoint_it_did_not_write(tmp_path):
    ds = Dataset("toy-seg", X, Y, X, Y, ["background", "object"])
    (tmp_path / "checkpoint.npz").write_bytes(b"another run")
    model = _pixel_model()
    with pytest.raises(FileExistsError):
        fit(model, ds, optim.SGD(model.parameters(), 0.1), FitConfig(epochs=1, batch_size=2, out_dir=tmp_path,
            progress=False), log=None)
    assert (tmp_path / "checkpoint.npz").read_bytes() == b"another run"
