"""`minicnn compress` warnings (issue 25): a checkpoint that is not frequency-regularised, and a
one-shot --keep truncation evaluated against the dense model on the checkpoint's own dataset."""

import dataclasses
import os
import re

import pytest

from minicnn import core
from minicnn.app import FitConfig, fit
from minicnn.cli import main
from minicnn.commands.compress import ACCURACY_LOSS_WARN
from minicnn.models import build
from minicnn.optim import Adam


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A LeNet-5 trained 1 epoch on 4,000 real MNIST images, saved by `fit` with the meta `train` writes."""
    from minicnn.data import load_dataset, standardize

    data_dir = os.environ.get("MINICNN_DATA")
    if not data_dir or not os.path.isdir(data_dir):  # as conftest's data_dir fixture (function-scoped) does
        pytest.skip("real-data test: set MINICNN_DATA to the dataset folder (CI sets it to shared/datasets)")
    ds = load_dataset("mnist", data_dir, download=False)
    mean, std = ds.channel_stats()
    part = dataclasses.replace(ds, x_train=standardize(ds.x_train[:4000], mean, std), y_train=ds.y_train[:4000],
                               x_test=standardize(ds.x_test[:500], mean, std), y_test=ds.y_test[:500])
    core.manual_seed(0)
    model = build("lenet5")
    out = tmp_path_factory.mktemp("run")
    meta = {"model": "lenet5", "model_config": {}, "dataset": "mnist", "class_names": ds.class_names,
            "mean": mean.tolist(), "std": std.tolist(), "input_shape": list(ds.input_shape)}
    fit(model, part, Adam(model.parameters(), lr=1e-3), FitConfig(epochs=1, out_dir=out, progress=False),
        meta=meta, log=None)
    return out / "checkpoint.npz", data_dir


def _compress(capsys, *args) -> tuple[int, str]:
    code = main(["compress", *map(str, args)])
    return code, capsys.readouterr().out


def test_dense_checkpoint_warns_that_it_is_not_frequency_regularised(checkpoint, tmp_path, capsys):
    path, _ = checkpoint
    code, out = _compress(capsys, path, "--out", tmp_path / "m.fr.npz")
    assert code == 0
    text = " ".join(out.split())
    assert text.count("warning:") == 1 and "is not frequency-regularised: ratio 1.0x in stored numbers" in text
    warning = out[out.index("warning:"):].splitlines()
    assert all(len(line) <= 80 for line in warning)


def test_keep_without_fine_tuning_prints_both_accuracies_and_warns(checkpoint, tmp_path, capsys):
    path, data_dir = checkpoint
    code, out = _compress(capsys, path, "--out", tmp_path / "m.fr.npz", "--keep", "0.05", "--eval-images", 1000,
                          "--data-dir", data_dir)
    assert code == 0
    text = " ".join(out.split())
    found = re.search(r"test accuracy ([\d.]+)% before, ([\d.]+)% after \(1000 mnist test images\)", text)
    assert found, out
    before, after = (float(v) / 100 for v in found.groups())
    assert before > 0.8 and before - after > ACCURACY_LOSS_WARN
    assert "warning: --keep 0.05 costs" in text
    assert "not frequency-regularised" not in text  # --keep was given: the truncation is what is judged


def test_keep_everything_costs_nothing_and_does_not_warn(checkpoint, tmp_path, capsys):
    path, data_dir = checkpoint
    code, out = _compress(capsys, path, "--out", tmp_path / "m.fr.npz", "--keep", "1.0", "--eval-images", 500,
                          "--data-dir", data_dir)
    assert code == 0
    found = re.search(r"([\d.]+)% before, ([\d.]+)% after", " ".join(out.split()))
    assert found and found.group(1) == found.group(2)
    assert "warning" not in out


def test_eval_images_must_be_positive(checkpoint, tmp_path, capsys):
    path, _ = checkpoint
    code = main(["compress", str(path), "--out", str(tmp_path / "m.fr.npz"), "--keep", "0.5", "--eval-images", "0"])
    assert code == 2 and "--eval-images" in capsys.readouterr().err
    assert not (tmp_path / "m.fr.npz").exists()
