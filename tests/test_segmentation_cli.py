"""Segmentation through the command line on the real data (MINICNN_DATA): `minicnn train` of a tiny UNet
(mnist-seg, fashion-on-cifar-seg), `evaluate` (Dice/IoU per class, a PNG), `predict` (mask and overlay
beside the image, never over a file) and `show` (mask.png); the refusals of a model that does not fit
the task, each one line."""

from __future__ import annotations

import json
import os

import matplotlib.image
import numpy as np
import pytest

from minicnn.app import load_model
from minicnn.cli import main
from minicnn.data.segmentation import load_segmentation, with_sizes

TINY = ["--model", "unet", "--width", "0.0625", "--train-limit", "16", "--test-limit", "8", "--batch-size", "8",
        "--epochs", "1", "--no-progress", "--no-download"]


def _lines_fit(text: str) -> None:
    """Every line fits 80 columns, but for one that is a single path (`wrap` never breaks a path)."""
    long = [line for line in text.splitlines() if len(line) > 80 and " " in line.strip()]
    assert not long, long


@pytest.fixture(scope="module")
def mnist_seg_run(tmp_path_factory):
    """One trained tiny UNet on mnist-seg (1 epoch, 16 canvases), shared by the tests of this module: its
    run folder. (conftest's data_dir is per test; its rule, skip without MINICNN_DATA, is repeated here.)"""
    data_dir = os.environ.get("MINICNN_DATA")
    if not data_dir or not os.path.isdir(data_dir):
        pytest.skip("real-data test: set MINICNN_DATA to the dataset folder (CI sets it to shared/datasets)")
    out = tmp_path_factory.mktemp("seg") / "run"
    assert main(["train", "--dataset", "mnist-seg", *TINY, "--out", str(out), "--data-dir", str(data_dir)]) == 0
    return out


def test_train_writes_segmentation_scores_in_rows_metrics_and_curves(mnist_seg_run, capsys):
    saved = json.loads((mnist_seg_run / "metrics.json").read_text())
    row, summary = saved["history"][0], saved["summary"]
    assert list(row) == ["epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "test_dice", "test_iou",
                         "train_seconds", "images_per_s"]
    assert 0 <= row["test_dice"] <= 1 and 0 <= row["test_iou"] <= row["test_dice"]  # IoU <= Dice per class
    assert summary["test_dice"] == row["test_dice"] and summary["test_accuracy"] == row["test_acc"]
    header = (mnist_seg_run / "metrics.csv").read_text().splitlines()[0]
    assert header.split(",") == list(row)
    assert matplotlib.image.imread(mnist_seg_run / "curves.png").shape[1] > 1000  # three panels
    ckpt = load_model(mnist_seg_run / "checkpoint.npz")
    assert ckpt.name == "unet" and ckpt.config["num_classes"] == 11 and ckpt.input_shape == (1, 64, 64)


def test_evaluate_prints_dice_iou_accuracy_per_class_and_writes_a_png(mnist_seg_run, data_dir, capsys):
    capsys.readouterr()
    ckpt = str(mnist_seg_run / "checkpoint.npz")
    assert main(["evaluate", ckpt, "--test-limit", "8", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    _lines_fit(out)
    table = out.splitlines()
    assert table[0].split() == ["class", "Dice", "IoU", "accuracy", "pixels"]
    assert table[1].split()[:2] == ["0", "background"] and table[11].split()[:3] == ["10", "digit", "9"]
    assert table[12].startswith("mean") and "pixel accuracy" in out
    # the mean read back agrees with the run's own test row (same 8 canvases, same weights)
    row = json.loads((mnist_seg_run / "metrics.json").read_text())["history"][0]
    assert float(table[12].split()[1]) == pytest.approx(row["test_dice"], abs=5e-5)
    assert (mnist_seg_run / "confusion.png").is_file()
    # a dangling link at confusion.png is not written through: the figure takes confusion-2.png
    (mnist_seg_run / "confusion.png").unlink()
    os.symlink(mnist_seg_run / "nowhere.png", mnist_seg_run / "confusion.png")
    assert main(["evaluate", ckpt, "--test-limit", "8", "--data-dir", str(data_dir)]) == 0
    assert not (mnist_seg_run / "nowhere.png").exists() and (mnist_seg_run / "confusion-2.png").is_file()
    assert main(["evaluate", ckpt, "--test-limit", "8", "--overwrite", "--data-dir", str(data_dir)]) == 1
    assert "symbolic link" in capsys.readouterr().err


def test_evaluate_refuses_a_classifier_on_a_segmentation_task(tmp_path, data_dir, capsys):
    from minicnn.app.checkpoint import save_checkpoint
    from minicnn.models import build

    path = tmp_path / "lenet.npz"
    save_checkpoint(path, build("lenet5"), meta={"model": "lenet5", "model_config": {}, "input_shape": [1, 28, 28]})
    assert main(["evaluate", str(path), "--dataset", "mnist-seg", "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err
    assert "the model expects images" in err or "segmentation task" in err


def test_predict_writes_mask_and_overlay_beside_the_image_never_over_a_file(mnist_seg_run, data_dir, tmp_path,
                                                                            capsys):
    canvas = load_segmentation("mnist-seg", with_sizes("mnist-seg", train=1, test=1), data_dir=data_dir,
                               download=False).x_test[0, 0]
    image = tmp_path / "digits.png"
    matplotlib.image.imsave(image, canvas, cmap="gray", vmin=0, vmax=1)
    ckpt = str(mnist_seg_run / "checkpoint.npz")
    assert main(["predict", ckpt, str(image)]) == 0
    out = capsys.readouterr().out
    _lines_fit(out)
    mask = matplotlib.image.imread(tmp_path / "digits.mask.png")
    assert mask.shape[:2] == (64, 64) and (tmp_path / "digits.overlay.png").is_file()
    first = (tmp_path / "digits.mask.png").read_bytes()
    assert main(["predict", ckpt, str(image)]) == 0  # again: new names, the first files kept
    assert "a new name was taken" in " ".join(capsys.readouterr().out.split())
    assert (tmp_path / "digits.mask-2.png").read_bytes() == first  # the same weights, the same mask
    os.mkfifo(tmp_path / "digits.overlay.png.fifo")
    (tmp_path / "digits.overlay.png").unlink()
    os.rename(tmp_path / "digits.overlay.png.fifo", tmp_path / "digits.overlay.png")
    assert main(["predict", ckpt, str(image), "--overwrite"]) == 1  # a FIFO is never a place for a PNG
    assert "FIFO" in capsys.readouterr().err


def test_show_draws_a_unets_filters_feature_maps_and_mask(mnist_seg_run, tmp_path, capsys):
    image = tmp_path / "blank.npy"
    np.save(image, np.zeros((64, 64), np.float32))
    out = tmp_path / "show"
    ckpt = str(mnist_seg_run / "checkpoint.npz")
    assert main(["show", ckpt, str(image), "--out", str(out)]) == 0
    assert (out / "mask.png").is_file() and (out / "feature_maps.png").is_file()
    assert len(list(out.glob("filters_*.png"))) == 23  # 2 per DoubleConv (9), 4 up-convolutions, the 1x1 head
    earlier = (out / "filters_1.png").read_bytes()
    (out / "filters_1.png").unlink()
    (out / "filters_1.png").write_bytes(earlier)  # now a file this process did not write: another run's
    assert main(["show", ckpt, "--out", str(out)]) == 2  # the PNGs of another run are not replaced unseen...
    assert "--overwrite" in capsys.readouterr().err
    assert main(["show", ckpt, "--out", str(out), "--overwrite"]) == 0  # ...unless asked


def test_binary_task_with_dice_loss_best_checkpoint_by_iou_and_resume(tmp_path, data_dir, capsys):
    out = tmp_path / "run"
    common = ["train", "--dataset", "fashion-on-cifar-seg", *TINY, "--loss", "dice", "--val-size", "8",
              "--out", str(out), "--data-dir", str(data_dir)]
    assert main(common) == 0
    text = capsys.readouterr().out
    _lines_fit(text)
    assert "soft Dice loss" in text and "no augmentation" in text
    best = load_model(out / "best.npz")
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert best.meta["best_epoch"] == 1 and best.meta["val_iou"] == history[0]["val_iou"]
    assert main([*common[:-4], "--epochs", "2", "--resume", "--out", str(out), "--data-dir", str(data_dir)]) == 0
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert [row["epoch"] for row in history] == [1, 2]
    better = max(history, key=lambda row: row["val_iou"])
    assert load_model(out / "best.npz").meta["best_epoch"] == better["epoch"]


@pytest.mark.parametrize("argv, words", [
    (["--dataset", "mnist-seg", "--model", "lenet5"], "is a classifier: use --model unet"),
    (["--dataset", "mnist", "--model", "unet"], "is a segmentation model"),
    (["--dataset", "mnist", "--loss", "dice"], "--loss dice is a segmentation loss"),
    (["--dataset", "mnist", "--loss", "ce+dice"], "--loss ce+dice is a segmentation loss"),
    (["--dataset", "mnist-seg", "--model", "unet", "--augment", "shift"], "but not their masks"),
    (["--dataset", "mnist-seg", "--model", "unet", "--loss", "dice", "--label-smoothing", "0.1"], "the Dice loss has none"),
])
def test_a_model_that_does_not_fit_the_task_is_refused_in_one_line(argv, words, tmp_path, data_dir, capsys):
    assert main(["train", *argv, "--out", str(tmp_path / "r"), "--data-dir", str(data_dir), "--no-download"]) == 2
    err = capsys.readouterr().err
    assert words in " ".join(err.split()) and "Traceback" not in err
    assert not (tmp_path / "r" / "checkpoint.npz").exists()


def test_ce_plus_dice_loss_trains_and_says_so_in_the_plan(tmp_path, data_dir, capsys):
    """--loss ce+dice reaches fit as CrossEntropyDiceLoss: the plan names it and the run records it."""
    out = tmp_path / "cd"
    assert main(["train", "--dataset", "mnist-seg", *TINY, "--loss", "ce+dice", "--out", str(out),
                 "--data-dir", str(data_dir), "--no-download"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "per-pixel cross-entropy + soft Dice" in said
    assert load_model(out / "checkpoint.npz").meta["run"]["--loss"] == "ce+dice"
