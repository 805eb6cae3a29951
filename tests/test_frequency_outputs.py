"""Issue 24 item 4 / issue 25: `experiment frequency --model unet`, BatchNorm folding for FR, and the
experiments' files (through write_atomic; an earlier run's results never silently replaced)."""

from __future__ import annotations

import argparse
import csv

import numpy as np
import pytest

from minicnn.app.frequency import (
    describe,
    fold_batchnorm,
    load_compressed,
    read_compressed,
    save_compressed,
    stored_numbers,
    to_frequency,
)
from minicnn.cli import main
from minicnn.experiments import frequency, frequency_unet
from minicnn.layers.dct import FoldedBatchNorm
from minicnn.models import build

UNET = {"width": 1 / 16, "depth": 2, "in_channels": 3, "num_classes": 2, "image_size": 32}


def _unet_with_statistics(rng):
    model = build("unet", **UNET)
    for name, b in model.named_buffers():  # BatchNorm statistics far from the initial 0 / 1
        if name.endswith("running_mean"):
            b[...] = rng.normal(size=b.shape)
        elif name.endswith("running_var"):
            b[...] = rng.uniform(0.5, 2.0, size=b.shape)
    for _, p in model.named_parameters():
        p.data = (p.data + 0.1 * rng.normal(size=p.data.shape)).astype(np.float32)
    return model.eval()


def test_fold_batchnorm_keeps_the_eval_function_and_drops_three_numbers_per_channel(rng):
    model = _unet_with_statistics(rng)
    x = rng.normal(size=(2, 3, 32, 32)).astype(np.float32)
    before, counted = model(x), stored_numbers(to_frequency(build("unet", **UNET)))
    fold_batchnorm(model)
    np.testing.assert_allclose(model(x), before, rtol=1e-5, atol=1e-5)
    folds = sum(isinstance(layer, FoldedBatchNorm) for layer in model.modules())
    channels = sum(layer.weight.shape[0] for layer in model.modules() if type(layer).__name__ == "Conv2D"
                   and layer.kernel_size == (3, 3))
    assert folds == 2 * 5 and not any(type(layer).__name__ == "BatchNorm2D" for layer in model.modules())
    after = stored_numbers(to_frequency(model))
    assert after["coefficients"] == counted["coefficients"]
    assert counted["other"] - after["other"] == 3 * channels  # 4 BatchNorm numbers -> 1 bias per channel
    np.testing.assert_allclose(model(x), before, rtol=1e-4, atol=1e-5)


def test_a_folded_file_says_so_and_reloads_to_the_same_outputs(rng, tmp_path):
    model = to_frequency(fold_batchnorm(_unet_with_statistics(rng)))
    path = tmp_path / "folded.fr.npz"
    save_compressed(model, path, meta=describe("unet", UNET, model))
    manifest, _ = read_compressed(path)
    assert manifest["meta"]["frequency"] == {"biases": False, "batchnorm_folded": True}
    loaded = load_compressed(path, build("unet", **UNET)).eval()
    x = rng.normal(size=(2, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(loaded(x), model(x))


def test_default_folder_holding_an_earlier_run_gets_a_new_name(tmp_path, capsys):
    default = tmp_path / "runs" / "frequency"
    assert frequency.result_folder(None, str(default), False) == default  # missing: made
    (default / "frequency_table.txt").write_text("an earlier run\n")
    second = frequency.result_folder(None, str(default), False)
    assert second == tmp_path / "runs" / "frequency-2" and second.is_dir()
    assert "holds an earlier run" in capsys.readouterr().out
    assert (default / "frequency_table.txt").read_text() == "an earlier run\n"


def test_given_folder_holding_results_is_refused_unless_overwrite(tmp_path):
    (tmp_path / "frequency_unet.csv").write_text("earlier\n")
    with pytest.raises(ValueError, match="--overwrite"):
        frequency.result_folder(str(tmp_path), "unused", False)
    assert frequency.result_folder(str(tmp_path), "unused", True) == tmp_path
    with pytest.raises(FileExistsError):  # write_atomic: not a file this run wrote
        frequency.write_text(tmp_path / "frequency_unet.csv", "new\n", False)
    frequency.write_text(tmp_path / "frequency_unet.csv", "new\n", True)
    assert (tmp_path / "frequency_unet.csv").read_text() == "new\n"


def test_model_unet_passes_the_options_it_shares():
    parser = argparse.ArgumentParser()
    frequency.add_arguments(parser)
    args = parser.parse_args(["--model", "unet", "--dataset", "fashion-on-cifar-seg", "--budgets", "900",
                              "--seeds", "3,4", "--fr-epochs", "2", "--out", "x", "--train-images", "64"])
    unet = frequency.unet_arguments(args)
    assert (unet.task, unet.budgets, unet.seed, unet.fr_epochs, unet.out, unet.train) == \
        ("fashion-on-cifar-seg", "900", 3, 2, "x", 64)
    assert unet.epochs == 6 and unet.lr == frequency_unet.LEARNING_RATE  # not given: frequency_unet's defaults
    assert unet.allocation == "energy" and unet.power is None
    powered = frequency.unet_arguments(parser.parse_args(["--model", "unet", "--power", "0.5"]))
    assert (powered.allocation, powered.power) == ("power", 0.5)  # a power means the fixed shares


def test_experiment_frequency_model_unet_runs_and_never_replaces_an_earlier_run(data_dir, tmp_path, capsys):
    out = tmp_path / "unet"
    common = ["experiment", "frequency", "--model", "unet", "--dataset", "fashion-on-cifar-seg", "--budgets",
              "900", "--train-images", "64", "--test-images", "16", "--dense-epochs", "1", "--fr-epochs", "1",
              "--batch-size", "16", "--out", str(out), "--data-dir", str(data_dir)]
    assert main(common) == 0
    with open(out / "frequency_unet.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["budget"], r["dtype"]) for r in rows] == [(b, d) for b in ("dense", "900") for d in ("float16", "int8")]
    assert {int(r["stored_numbers"]) for r in rows if r["budget"] == "900"} == {900}
    table = (out / "frequency_unet.csv").read_bytes()
    capsys.readouterr()
    assert main(common) == 2  # the same --out again: refused, nothing replaced
    assert "--overwrite" in " ".join(capsys.readouterr().err.split())
    assert (out / "frequency_unet.csv").read_bytes() == table
    assert main([*common, "--overwrite"]) == 0


def test_fold_batchnorm_experiment_files_hold_the_budget_and_reload(data_dir, tmp_path, capsys):
    out = tmp_path / "fold"
    assert main(["experiment", "frequency_unet", "--fold-batchnorm", "--train", "64", "--test", "16", "--epochs",
                 "1", "--fr-epochs", "1", "--budgets", "400", "--batch", "16", "--out", str(out),
                 "--data-dir", str(data_dir)]) == 0  # unfolded, 334 of the 400 would be BatchNorm and biases
    with open(out / "frequency_unet.csv") as f:
        rows = {(r["budget"], r["dtype"]): r for r in csv.DictReader(f)}
    manifest, _ = read_compressed(out / "fr_400.f16.fr.npz")
    assert manifest["meta"]["frequency"]["batchnorm_folded"] and int(rows["400", "float16"]["stored_numbers"]) == 400
    assert int(rows["dense", "float16"]["stored_numbers"]) == 7474


def test_folded_batchnorm_is_the_identity_forward_and_backward(rng):
    """The placeholder a fold leaves: y = x (checked against x itself), dx = dy (float64 gradient check;
    it has no parameters)."""
    from minicnn.gradcheck import gradcheck

    layer = FoldedBatchNorm()
    x = rng.standard_normal((2, 3, 4, 5))
    np.testing.assert_array_equal(layer(x), x)
    assert list(layer.parameters()) == []
    gradcheck(layer, x)
