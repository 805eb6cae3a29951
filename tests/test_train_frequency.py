"""`minicnn train --frequency BUDGET` (issue 25): dense training, then the FR fine-tuning of
`frequency_fine_tune`, a model.fr.npz in the run folder whose own count is BUDGET, its reloaded accuracy
printed; refusals before any training."""

from __future__ import annotations

import re

import numpy as np

from minicnn.app import evaluate, load_model
from minicnn.app.frequency import read_compressed
from minicnn.cli import main
from minicnn.data import load_dataset, standardize

BUDGET = 1000


def _train(data_dir, out, *extra: str) -> int:
    return main(["train", "--dataset", "mnist", "--model", "lenet5", "--epochs", "1", "--train-limit", "3000",
                 "--data-dir", str(data_dir), "--no-download", "--no-progress", "--out", str(out), *extra])


def test_train_frequency_writes_a_file_of_budget_numbers_and_scores_the_reloaded_file(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(data_dir, out, "--frequency", str(BUDGET), "--fr-epochs", "1") == 0
    printed = " ".join(capsys.readouterr().out.split())
    path = out / "model.fr.npz"
    manifest, _ = read_compressed(path)
    assert sum(entry[3] for entry in manifest["entries"]) == BUDGET  # the manifest's counts
    with np.load(path) as raw:
        assert raw["payload"].size == BUDGET and raw["payload"].dtype == np.float16  # the stored numbers themselves
    loaded = load_model(path)
    assert loaded.kind == "compressed" and loaded.config["c5_conv"] is True
    ds = load_dataset("mnist", data_dir, download=False)
    assert loaded.mean is not None and loaded.std is not None and loaded.dataset == "mnist"
    x = standardize(ds.x_test, np.asarray(loaded.mean), np.asarray(loaded.std))
    accuracy = evaluate(loaded.model, x, ds.y_test).accuracy
    said = re.search(r"1,000 stored numbers in ([\d,]+) bytes; test accuracy of the reloaded file ([\d.]+)%", printed)
    assert said, printed
    assert int(said.group(1).replace(",", "")) == path.stat().st_size
    assert abs(float(said.group(2)) - 100 * accuracy) < 0.005  # the printed figure is the file's own
    dense = float(re.search(r"\(dense ([\d.]+)%\)", printed).group(1)) / 100
    # one FR epoch on 3,000 images falls far below the dense model (its accuracy is not the point here:
    # the README's full run is): the note saying so, and what to do, must be there exactly then
    assert (dense - accuracy > 0.01) == ("scores" in printed and "more --fr-epochs" in printed)
    assert "model.fr.npz (frequency-regularised)" in printed


def test_a_budget_the_layers_cannot_meet_is_refused_before_training(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(data_dir, out, "--frequency", "5") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--frequency 5:" in err and "DCT coefficients" in err
    assert not (out / "checkpoint.npz").exists()


def test_fr_epochs_without_frequency_and_frequency_of_a_segmentation_model_are_refused(data_dir, tmp_path, capsys):
    assert _train(data_dir, tmp_path / "a", "--fr-epochs", "3") == 2
    assert "give both" in " ".join(capsys.readouterr().err.split())
    code = main(["train", "--dataset", "fashion-on-cifar-seg", "--model", "unet", "--width", "0.0625",
                 "--epochs", "1", "--train-limit", "16", "--batch-size", "8", "--data-dir", str(data_dir), "--no-download",
                 "--no-progress", "--out", str(tmp_path / "b"), "--frequency", "1000"])
    assert code == 2
    assert "minicnn experiment frequency --model unet" in " ".join(capsys.readouterr().err.split())
