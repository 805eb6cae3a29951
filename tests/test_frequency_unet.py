"""FR on the UNet (issue 24): DCTConvTranspose2D, to_frequency on a UNet, its compressed file (float32, float16,
int8) reloading bit-identically through load_model, int8 files for LeNet-5 too, and the reader's checks."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

from minicnn import functional as F
from minicnn import layers as L
from minicnn import models
from minicnn.app import ModelFileError, load_model
from minicnn.app.frequency import (
    INT8_LEVELS,
    allocate_budget,
    dequantize_int8,
    describe,
    fold_batchnorm,
    frequency_layers,
    quantize_int8,
    read_compressed,
    save_compressed,
    stored_numbers,
    to_frequency,
)
from minicnn.cli import main
from minicnn.gradcheck import gradcheck
from minicnn.layers.dct import DCTConvTranspose2D

UNET_CONFIG = {"width": 1 / 16, "depth": 2, "image_size": 16, "in_channels": 3, "num_classes": 2}


# ---- DCTConvTranspose2D ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("keep", [1.0, 7, 0.3])
@pytest.mark.parametrize("stride,padding,output_padding", [(2, 0, 0), (1, 1, 0), (2, 1, 1)])
def test_dct_conv_transpose2d_gradcheck(keep, stride, padding, output_padding, rng):
    layer = DCTConvTranspose2D(2, 3, (3, 2), stride=stride, padding=padding, output_padding=output_padding,
                               keep=keep).to(np.float64)
    report = gradcheck(layer, rng.standard_normal((2, 2, 4, 3)))
    assert report.max_rel_error < 1e-6
    assert {t.name for t in report.tensors} == {"input", "coeffs", "bias"}


@pytest.mark.parametrize("keep", [1.0, 5, 0.5])
def test_dct_conv_transpose2d_forward_is_conv_transpose2d_with_the_idct_weight(keep, rng):
    layer = DCTConvTranspose2D(3, 2, 2, stride=2, keep=keep).to(np.float64)
    layer.coeffs.data = rng.standard_normal(layer.coeffs.shape) * layer.mask
    x = rng.standard_normal((2, 3, 4, 5))
    dense = L.ConvTranspose2D(3, 2, 2, stride=2, method="direct").to(np.float64)
    dense.weight.data[...] = F.idct(layer.mask * layer.coeffs.data)
    dense.bias.data[...] = layer.bias.data
    np.testing.assert_allclose(layer(x), dense(x), rtol=0, atol=1e-12)
    assert layer.keep == (layer.coeffs.size if keep == 1.0 else int(np.ceil(keep * 24)) if isinstance(keep, float)
                          else keep)


def test_truncated_transpose_coefficients_get_zero_gradient_and_the_layer_has_no_weight(rng):
    layer = DCTConvTranspose2D(2, 2, 2, stride=2, keep=3).to(np.float64)
    layer.backward(rng.standard_normal(layer(rng.standard_normal((1, 2, 3, 3))).shape))
    assert np.all(layer.coeffs.grad[~layer.mask] == 0) and np.any(layer.coeffs.grad[layer.mask] != 0)
    assert [n for n, _ in layer.named_parameters()] == ["coeffs", "bias"]
    with pytest.raises(AttributeError):
        layer.weight  # noqa: B018  (the coefficients replace it)
    assert layer.cost((2, 3, 3)).weights == 16 and layer.output_shape((2, 3, 3)) == (2, 6, 6)


# ---- the UNet in the frequency domain --------------------------------------------------------------------------


def _frequency_unet(rng, budget: int | None = None):
    """A small UNet in the DCT domain with random (non-default) BatchNorm statistics, truncated to `budget`."""
    model = to_frequency(models.build("unet", **UNET_CONFIG))
    for layer in model.modules():
        if isinstance(layer, L.BatchNorm2D):
            layer.running_mean[...] = rng.standard_normal(layer.running_mean.shape)
            layer.running_var[...] = rng.uniform(0.5, 2.0, layer.running_var.shape)
    if budget is not None:
        for name, k in allocate_budget(model, budget).items():
            dict(frequency_layers(model))[name].set_keep(k)
    return model.eval()


def test_to_frequency_converts_every_convolution_of_a_unet_and_keeps_its_function(rng):
    dense = models.build("unet", **UNET_CONFIG).eval()
    x = rng.standard_normal((2, 3, 16, 16)).astype(np.float32)
    before = dense(x)
    model = to_frequency(dense)
    kinds = [type(m) for m in model.modules()]
    assert L.Conv2D not in kinds and L.ConvTranspose2D not in kinds
    assert kinds.count(DCTConvTranspose2D) == UNET_CONFIG["depth"] and kinds.count(L.DCTConv2D) == 2 * (2 * UNET_CONFIG["depth"] + 1) + 1  # 2 per DoubleConv + head
    np.testing.assert_allclose(model(x), before, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_a_compressed_unet_reloads_bit_identically_through_load_model(dtype, rng, tmp_path):
    model = _frequency_unet(rng, budget=300)
    path = tmp_path / f"unet.{dtype}.fr.npz"
    info = save_compressed(model, path, float16=dtype == "float16", int8=dtype == "int8",
                           meta=describe("unet", UNET_CONFIG, model, input_shape=[3, 16, 16]))
    counts = stored_numbers(model)
    assert info["numbers"] == counts["total"] and counts["coefficients"] == 300
    loaded = load_model(path)
    assert loaded.kind == "compressed" and loaded.name == "unet"
    _, state = read_compressed(path)
    for name, value in loaded.model.state_dict().items():
        np.testing.assert_array_equal(value, state[name])  # the model holds exactly what the file says
    x = rng.standard_normal((2, 3, 16, 16)).astype(np.float32)
    again = load_model(path).model
    np.testing.assert_array_equal(loaded.model(x), again(x))
    if dtype == "float32":  # nothing rounded: the reloaded model is the saved one
        np.testing.assert_array_equal(loaded.model(x), model(x))
    else:
        np.testing.assert_allclose(loaded.model(x), model(x), atol=0.15)


def test_a_damaged_compressed_unet_gives_one_clear_error(rng, tmp_path):
    model = _frequency_unet(rng, budget=200)
    good = tmp_path / "good.fr.npz"
    save_compressed(model, good, int8=True, meta=describe("unet", UNET_CONFIG, model))
    with np.load(good) as f:
        manifest, payload = json.loads(f["manifest"].tobytes()), f["payload"]

    def write(label, change=None, data=payload):
        m = json.loads(json.dumps(manifest))
        if change:
            change(m)
        path = tmp_path / f"{label}.fr.npz"
        np.savez(path, manifest=np.frombuffer(json.dumps(m).encode(), np.uint8), payload=data)
        return path

    raw = good.read_bytes()
    (tmp_path / "cut.fr.npz").write_bytes(raw[: len(raw) // 2])
    cases = [
        (tmp_path / "cut.fr.npz", "not a readable model file"),
        (write("short", data=payload[:-3]), "the payload holds"),
        (write("config", lambda m: m["meta"]["config"].__setitem__("width", 1 / 8)), "do not fit unet"),
        (write("scales", lambda m: m.pop("scales")), "int8 scales"),
        (write("nscales", lambda m: m["scales"].pop()), "int8 scales"),
        (write("negscale", lambda m: m["scales"].__setitem__(0, -1.0)), "int8 scales"),
        (write("f64scale", lambda m: m["scales"].__setitem__(0, 0.1)), "int8 scales"),
        (write("low", data=np.where(np.arange(payload.size) == 2, -128, payload).astype(np.int8)),
         "in [-127, 127]"),
        (write("dense", lambda m: m["entries"][-1].__setitem__(3, m["entries"][-1][3] - 1)),
         f"dense entry {manifest['entries'][-1][0]!r}"),
    ]
    for path, message in cases:
        with pytest.raises(ModelFileError, match=re.escape(message)) as caught:
            load_model(path)
        assert str(path) in str(caught.value) and "\n" not in str(caught.value), path


# ---- int8 files ------------------------------------------------------------------------------------------------


def test_quantize_int8_is_one_scale_per_tensor_and_exact_on_its_own_values(rng):
    values = rng.standard_normal(50).astype(np.float32)
    q, scale = quantize_int8(values)
    assert q.dtype == np.int8 and int(np.max(np.abs(q))) == INT8_LEVELS
    assert np.max(np.abs(dequantize_int8(q, scale) - values)) <= scale / 2 * (1 + 1e-6)
    again, scale2 = quantize_int8(dequantize_int8(q, scale))
    np.testing.assert_array_equal(again, q)
    assert scale2 == scale
    zeros, s0 = quantize_int8(np.zeros(4, np.float32))
    assert not np.any(zeros) and s0 == 1.0


@pytest.mark.parametrize("name, config", [("lenet5", {"c5_conv": True}), ("unet", UNET_CONFIG)])
def test_int8_file_round_trip_is_exact_to_the_stored_int8_values(name, config, rng, tmp_path):
    model = to_frequency(models.build(name, **config))
    for layer_name, k in allocate_budget(model, 250).items():
        dict(frequency_layers(model))[layer_name].set_keep(k)
    first, second = tmp_path / "a.fr.npz", tmp_path / "b.fr.npz"
    info = save_compressed(model, first, int8=True, meta=describe(name, config, model))
    entries = json.loads(np.load(first)["manifest"].tobytes())["entries"]
    assert info["payload_bytes"] == info["numbers"] + 4 * len(entries)
    loaded = load_model(first).model
    save_compressed(loaded, second, int8=True, meta=describe(name, config, loaded))
    with np.load(first) as a, np.load(second) as b:
        assert a["payload"].dtype == np.int8
        np.testing.assert_array_equal(a["payload"], b["payload"])  # the same int8 values ...
        assert json.loads(a["manifest"].tobytes())["scales"] == json.loads(b["manifest"].tobytes())["scales"]
    for (n1, v1), (n2, v2) in zip(loaded.state_dict().items(), load_model(second).model.state_dict().items(),
                                  strict=True):
        assert n1 == n2
        np.testing.assert_array_equal(v1, v2)  # ... and so the very same model


def test_float16_file_refuses_values_beyond_its_range(rng, tmp_path):
    model = to_frequency(models.build("lenet5"))
    model.parameters()[1].data[0] = 7e4  # a bias beyond float16's largest finite value, 65504
    with pytest.raises(ValueError, match=r"save_compressed: '0.bias' has values beyond the float16 range"):
        save_compressed(model, tmp_path / "x.fr.npz", float16=True)
    assert not (tmp_path / "x.fr.npz").exists()
    save_compressed(model, tmp_path / "x.fr.npz", int8=True)  # int8 has a scale: any finite value fits
    with pytest.raises(ValueError, match="float16 or int8, not both"):
        save_compressed(model, tmp_path / "y.fr.npz", float16=True, int8=True)


def test_a_dense_entry_with_a_wrong_count_is_named(tmp_path):
    model = to_frequency(models.build("lenet5"))
    save_compressed(model, tmp_path / "ok.fr.npz")
    with np.load(tmp_path / "ok.fr.npz") as f:
        manifest, payload = json.loads(f["manifest"].tobytes()), f["payload"]
    manifest["entries"][1][3] = 5  # '0.bias', shape (6,), dense
    np.savez(tmp_path / "bad.fr.npz", manifest=np.frombuffer(json.dumps(manifest).encode(), np.uint8),
             payload=payload[:-1])
    with pytest.raises(ValueError, match=r"dense entry '0.bias' of shape \(6,\) must store all 6 numbers, "
                                         r"its count says 5"):
        read_compressed(tmp_path / "bad.fr.npz")


# ---- the experiment --------------------------------------------------------------------------------------------


def test_frequency_unet_experiment_table_is_that_of_its_reloaded_files(data_dir, tmp_path, capsys):
    from minicnn.app.segmentation import predict_classes, segmentation_scores
    from minicnn.data.segmentation import load_segmentation, with_sizes

    out = tmp_path / "unet"
    assert main(["experiment", "frequency_unet", "--train", "64", "--test", "16", "--epochs", "1", "--fr-epochs",
                 "1", "--budgets", "1000,759", "--batch", "16", "--out", str(out), "--data-dir", str(data_dir)]) == 0
    printed = capsys.readouterr().out
    assert "per epoch (64 canvases): dense" in printed
    assert max(len(line) for line in printed.splitlines() if str(out) not in line) <= 80
    with open(out / "frequency_unet.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["budget"], r["dtype"]) for r in rows] == [(b, d) for b in ("dense", "1000", "759")
                                                         for d in ("float16", "int8")]
    task = load_segmentation("fashion-on-cifar-seg", with_sizes("fashion-on-cifar-seg", train=64, test=16), data_dir)
    for r in rows:
        path = out / r["file"]
        manifest, _ = read_compressed(path)
        with np.load(path) as f:
            payload = f["payload"]
        assert int(r["stored_numbers"]) == payload.size and payload.dtype.name == r["dtype"]
        assert int(r["payload_bytes"]) == payload.nbytes + 4 * len(manifest.get("scales", []))
        assert int(r["file_bytes"]) == path.stat().st_size
        if r["budget"] != "dense":
            assert payload.size == int(r["budget"])
        loaded = load_model(path).model
        meta = manifest["meta"]
        mean, std = np.array(meta["mean"], np.float32), np.array(meta["std"], np.float32)
        x = (task.x_test - mean[None, :, None, None]) / std[None, :, None, None]
        dice = segmentation_scores(predict_classes(loaded(x)), task.y_test, 2).foreground_dice
        assert abs(dice - float(r["dice"])) < 1e-12, r
    for picture in ("frequency_unet_pareto.png", "frequency_unet_masks.png"):
        assert (out / picture).stat().st_size > 1000


def test_frequency_unet_experiment_refuses_budgets_it_cannot_meet(data_dir, tmp_path, capsys):
    common = ["--train", "16", "--test", "4", "--epochs", "1", "--fr-epochs", "1", "--out", str(tmp_path),
              "--data-dir", str(data_dir)]
    assert main(["experiment", "frequency_unet", "--budgets", "0", *common]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert err.startswith("minicnn experiment frequency_unet: expected budgets like")
    assert main(["experiment", "frequency_unet", "--budgets", "300", *common]) == 2  # BN etc. are 334 numbers
    assert "leaves no coefficients" in " ".join(capsys.readouterr().err.split())


def test_a_batchnorm_folded_unet_file_opens_through_load_model_as_the_saved_model(rng, tmp_path):
    """`fold_batchnorm` before `to_frequency` (the experiment's --fold-batchnorm): the file's meta says so,
    and `load_model` (evaluate, predict, summary, export) folds the rebuilt UNet the same way."""
    from minicnn.app.frequency import fold_batchnorm

    dense = models.build("unet", **UNET_CONFIG)
    for layer in dense.modules():
        if isinstance(layer, L.BatchNorm2D):
            layer.running_mean[...] = rng.standard_normal(layer.running_mean.shape)
            layer.running_var[...] = rng.uniform(0.5, 2.0, layer.running_var.shape)
    dense.eval()
    x = rng.standard_normal((2, 3, 16, 16)).astype(np.float32)
    model = to_frequency(fold_batchnorm(dense)).eval()
    path = tmp_path / "folded.fr.npz"
    save_compressed(model, path, meta=describe("unet", UNET_CONFIG, model, input_shape=[3, 16, 16]))
    loaded = load_model(path)
    assert loaded.meta["frequency"]["batchnorm_folded"] is True
    np.testing.assert_array_equal(loaded.model(x), model(x))


def test_frequency_unet_bias_keep_stores_dct_biases_within_the_budget(data_dir, tmp_path, capsys):
    """--bias-keep K: every bias vector of the FR files is its K lowest DCT coefficients (FrequencyBias), the
    file still stores exactly the budget, and the table's Dice is that of the file reloaded by load_model."""
    from minicnn.app.segmentation import predict_classes, segmentation_scores
    from minicnn.data.segmentation import load_segmentation, with_sizes

    out = tmp_path / "unet"
    assert main(["experiment", "frequency_unet", "--train", "32", "--test", "8", "--epochs", "1", "--fr-epochs", "2",
                 "--budgets", "200", "--batch", "16", "--fold-batchnorm", "--allocation", "power", "--bias-keep", "2",
                 "--fr-final-lr", "1e-4",
                 "--out", str(out), "--data-dir", str(data_dir)]) == 0
    capsys.readouterr()
    with open(out / "frequency_unet.csv") as f:
        rows = {(r["budget"], r["dtype"]): r for r in csv.DictReader(f)}
    task = load_segmentation("fashion-on-cifar-seg", with_sizes("fashion-on-cifar-seg", train=32, test=8), data_dir)
    for dtype in ("float16", "int8"):
        r = rows[("200", dtype)]
        loaded = load_model(out / r["file"])
        assert loaded.meta["frequency"] == {"biases": True, "batchnorm_folded": True}
        biases = [layer for layer in loaded.model.modules() if isinstance(layer, L.FrequencyBias)]
        assert len(biases) == 13 and all(b.keep == min(2, b.coeffs.size) for b in biases)  # 12 convs + the head
        assert stored_numbers(loaded.model)["total"] == 200 == int(r["stored_numbers"])
        meta = read_compressed(out / r["file"])[0]["meta"]
        mean, std = np.array(meta["mean"], np.float32), np.array(meta["std"], np.float32)
        x = (task.x_test - mean[None, :, None, None]) / std[None, :, None, None]
        dice = segmentation_scores(predict_classes(loaded.model(x)), task.y_test, 2).foreground_dice
        assert abs(dice - float(r["dice"])) < 1e-12
    # the dense file keeps its biases whole
    assert load_model(out / rows[("dense", "float16")]["file"]).meta["frequency"]["biases"] is False


def test_frequency_unet_energy_allocation_meets_the_budget_exactly(data_dir, tmp_path, capsys):
    """--allocation energy: the FR file stores exactly the budget (coefficients split by EnergyTruncation,
    not by the --power shares), and the combination with --bias-keep is refused with one line."""
    out = tmp_path / "unet"
    common = ["--train", "32", "--test", "8", "--epochs", "1", "--fr-epochs", "2", "--batch", "16", "--budgets",
              "300", "--fold-batchnorm", "--data-dir", str(data_dir)]
    assert main(["experiment", "frequency_unet", "--out", str(out), *common]) == 0  # energy: the default
    capsys.readouterr()
    loaded = load_model(out / "fr_300.f16.fr.npz").model
    assert stored_numbers(loaded)["total"] == 300
    kept = {n: layer.keep for n, layer in frequency_layers(loaded)}
    shares = allocate_budget(to_frequency(fold_batchnorm(models.build("unet", **UNET_CONFIG))), sum(kept.values()),
                             power=-0.5)
    assert kept != shares  # the split is the energy rule's, not the fixed shares'
    for wrong, words in ((["--bias-keep", "2"], "need --allocation power"), (["--power", "0.5"], "need --allocation power"),
                         (["--allocation", "power", "--energy-window", "2"], "not of --allocation power"),
                         (["--fr-dice-weight", "-1"], "expected --fr-dice-weight >= 0"),
                         (["--val", "-1"], "expected --val >= 0")):
        assert main(["experiment", "frequency_unet", *wrong, "--out", str(tmp_path / "b"), *common]) == 2
        err = capsys.readouterr().err
        assert words in " ".join(err.split()) and "Traceback" not in err
        assert not (tmp_path / "b").exists()  # refused before any folder is made


def test_frequency_unet_val_canvases_follow_the_training_ones_and_are_scored(data_dir, tmp_path, capsys):
    """--val N: canvases N after the --train ones (the training canvases unchanged), each file's Dice on them
    in the table and the CSV's val_dice, as the reloaded file scores them."""
    from minicnn.app.segmentation import predict_classes, segmentation_scores
    from minicnn.data.segmentation import load_segmentation, with_sizes

    out = tmp_path / "unet"
    assert main(["experiment", "frequency_unet", "--train", "32", "--val", "16", "--test", "8", "--epochs", "2",
                 "--fr-epochs", "1", "--batch", "16", "--budgets", "300", "--fold-batchnorm", "--out", str(out),
                 "--data-dir", str(data_dir)]) == 0
    assert "val Dice" in capsys.readouterr().out
    with open(out / "frequency_unet.csv") as f:
        rows = list(csv.DictReader(f))
    task = load_segmentation("fashion-on-cifar-seg", with_sizes("fashion-on-cifar-seg", train=48, test=8), data_dir)
    alone = load_segmentation("fashion-on-cifar-seg", with_sizes("fashion-on-cifar-seg", train=32, test=8), data_dir)
    np.testing.assert_array_equal(task.x_train[:32], alone.x_train)
    for r in rows:
        loaded = load_model(out / r["file"])
        meta = read_compressed(out / r["file"])[0]["meta"]
        mean, std = np.array(meta["mean"], np.float32), np.array(meta["std"], np.float32)
        assert np.allclose(mean, alone.x_train.mean(axis=(0, 2, 3)), atol=1e-6)  # statistics of the 32 only
        x = (task.x_train[32:] - mean[None, :, None, None]) / std[None, :, None, None]
        dice = segmentation_scores(predict_classes(loaded.model(x)), task.y_train[32:], 2).foreground_dice
        assert abs(dice - float(r["val_dice"])) < 1e-12


def test_frequency_unet_dense_file_must_match_fold_batchnorm(data_dir, tmp_path, capsys):
    """--dense FILE with --fold-batchnorm takes a folded run's dense file (and refuses an unfolded one, and
    the other way round), so FR variants can start from one trained dense model."""
    common = ["--train", "16", "--test", "4", "--epochs", "1", "--fr-epochs", "1", "--batch", "16",
              "--data-dir", str(data_dir)]
    assert main(["experiment", "frequency_unet", "--budgets", "500", "--out", str(tmp_path / "a"), *common]) == 0
    assert main(["experiment", "frequency_unet", "--budgets", "500", "--fold-batchnorm", "--out",
                 str(tmp_path / "b"), *common]) == 0
    capsys.readouterr()
    assert main(["experiment", "frequency_unet", "--budgets", "500", "--fold-batchnorm", "--dense",
                 str(tmp_path / "a" / "dense.f16.fr.npz"), "--out", str(tmp_path / "c"), *common]) == 2
    assert "expected a file with folded BatchNorms" in " ".join(capsys.readouterr().err.split())
    assert main(["experiment", "frequency_unet", "--budgets", "500", "--dense",
                 str(tmp_path / "b" / "dense.f16.fr.npz"), "--out", str(tmp_path / "d"), *common]) == 2
    assert "expected a file without folded BatchNorms" in " ".join(capsys.readouterr().err.split())
    assert main(["experiment", "frequency_unet", "--budgets", "500", "--fold-batchnorm", "--dense",
                 str(tmp_path / "b" / "dense.f16.fr.npz"), "--out", str(tmp_path / "e"), *common]) == 0
    with open(tmp_path / "e" / "frequency_unet.csv") as f:
        assert [int(r["stored_numbers"]) for r in csv.DictReader(f)][2:] == [500, 500]


def test_frequency_unet_fr_final_lr_decays_the_learning_rate_geometrically(monkeypatch):
    """train_epochs(final_lr=...): batch t of T runs at lr * (final_lr / lr) ** (t / T)."""
    import types

    from minicnn import optim
    from minicnn.experiments import frequency_unet

    seen = []
    original = optim.Adam.step

    def step(self):
        seen.append(self.lr)
        return original(self)

    monkeypatch.setattr(optim.Adam, "step", step)
    model = models.build("unet", **{**UNET_CONFIG, "image_size": 8})
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3, 8, 8)).astype(np.float32)
    y = rng.integers(0, 2, (8, 8, 8))
    args = types.SimpleNamespace(batch=4, seed=0)
    frequency_unet.train_epochs(model, x, y, 2, args, 1e-2, final_lr=1e-4)
    np.testing.assert_allclose(seen, [1e-2 * (1e-2) ** (t / 4) for t in range(4)], rtol=1e-12)
    seen.clear()
    frequency_unet.train_epochs(model, x, y, 1, args, 1e-2)
    assert seen == [1e-2, 1e-2]


def test_frequency_unet_from_start_does_not_start_from_the_dense_model(data_dir, tmp_path, capsys):
    """--from-start: the FR files come from fresh weights trained in the DCT domain, so two runs of one seed
    from different dense models (--dense) give the same FR file (and different dense files), of the budget."""
    common = ["--train", "32", "--test", "4", "--epochs", "1", "--fr-epochs", "2", "--batch", "16", "--budgets",
              "400", "--fold-batchnorm", "--data-dir", str(data_dir)]
    for seed in ("0", "1"):
        assert main(["experiment", "frequency_unet", "--seed", seed, "--out", str(tmp_path / f"dense{seed}"),
                     *common]) == 0
    payloads = {}
    for seed in ("0", "1"):
        out = tmp_path / f"start{seed}"
        assert main(["experiment", "frequency_unet", "--from-start", "--dense", str(tmp_path / f"dense{seed}" /
                     "dense.f16.fr.npz"), "--out", str(out), *common]) == 0
        with np.load(out / "fr_400.f16.fr.npz") as f, np.load(out / "dense.f16.fr.npz") as g:
            payloads[seed] = f["payload"], g["payload"]
    capsys.readouterr()
    assert payloads["0"][0].size == 400
    np.testing.assert_array_equal(payloads["0"][0], payloads["1"][0])
    assert not np.array_equal(payloads["0"][1], payloads["1"][1])
