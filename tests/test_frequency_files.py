"""A compressed `.fr.npz` is a model: `minicnn evaluate` and `minicnn predict` open it through the one
`load_model`, for every option the project writes (lenet5 / lenet5_caffe, C5-as-conv, no bias, biases in
the frequency domain, float16 / float32), reproducing the in-memory model's predictions exactly; a
damaged file gives one clear error, never a traceback."""

import json
import re

import numpy as np
import pytest

from minicnn.app import ModelFileError, load_model
from minicnn.app.frequency import (
    describe,
    frequency_biases,
    frequency_layers,
    read_compressed,
    save_compressed,
    stored_numbers,
    to_frequency,
)
from minicnn.app.train import predict_logits
from minicnn.cli import main
from minicnn.data import load_dataset, standardize
from minicnn.models import build

MEAN, STD = [0.13], [0.31]
N_TEST = 40
RIGHT = 24  # test labels are the model's own prediction for the first RIGHT images, wrong for the rest

# (model, config, bias_keep): every combination of options the frequency experiments write
COMBINATIONS = [(name, {**c5, **bias}, keep)
                for name in ("lenet5",)
                for c5 in ({}, {"c5_conv": True})
                for bias, keep in (({}, None), ({}, 3), ({"bias": False}, None))]
COMBINATIONS += [("lenet5_caffe", {"c5_conv": True, "width": 0.25}, 3), ("lenet5_caffe", {"width": 0.25}, None)]


def _compressed(name, config, bias_keep, rng):
    """build -> to_frequency (-> frequency_biases) -> a few random kept coefficients per layer."""
    model = to_frequency(build(name, **config))
    if bias_keep is not None:
        frequency_biases(model)
    for _, layer in frequency_layers(model):
        is_bias = layer.coeffs.data.ndim == 1
        layer.set_keep(min(layer.coeffs.size, bias_keep if is_bias else 40))
        layer.coeffs.data += (rng.standard_normal(layer.coeffs.shape) * 0.3 * layer.mask).astype(np.float32)
    return model.eval()


def _as_stored(model, float16: bool):
    """The model with every parameter rounded as the file stores it (float16 or exactly float32)."""
    if float16:
        for p in model.parameters():
            p.data = p.data.astype(np.float16).astype(np.float32)
    return model


def _dataset_for(model, path, rng):
    """A uint8 .npz dataset whose test labels make the model exactly RIGHT / N_TEST accurate."""
    images = rng.integers(0, 256, (N_TEST, 1, 28, 28), dtype=np.uint8)
    np.savez(path, x_train=images[:2], y_train=np.array([0, 1]), x_test=images, y_test=np.zeros(N_TEST, int))
    x = standardize(load_dataset(path).x_test, MEAN, STD)
    predicted = predict_logits(model, x).argmax(axis=1)
    labels = np.where(np.arange(N_TEST) < RIGHT, predicted, (predicted + 1) % 10)
    np.savez(path, x_train=images[:2], y_train=np.array([0, 1]), x_test=images, y_test=labels)
    return images, predicted


def _written(name, config, bias_keep, float16, rng, tmp_path):
    """A compressed file of a random truncated model -> (path, the model as stored, its counts)."""
    model = _compressed(name, config, bias_keep, rng)
    counts = stored_numbers(model)
    path = tmp_path / "m.fr.npz"
    meta = describe(name, config, model, dataset="mnist", mean=MEAN, std=STD, input_shape=[1, 28, 28],
                    class_names=[f"digit {k}" for k in range(10)])
    assert save_compressed(model, path, float16=float16, meta=meta)["numbers"] == counts["total"]
    return path, _as_stored(model, float16), counts  # float32 files: the very same numbers, nothing rounded


@pytest.mark.parametrize("float16", [True, False], ids=["float16", "float32"])
@pytest.mark.parametrize("name, config, bias_keep", COMBINATIONS)
def test_load_model_rebuilds_every_compressed_file_from_the_file_alone(name, config, bias_keep, float16, rng,
                                                                       tmp_path):
    path, stored, counts = _written(name, config, bias_keep, float16, rng, tmp_path)
    loaded = load_model(path)
    assert (loaded.name, loaded.config, loaded.kind) == (name, config, "compressed")
    assert loaded.frequency == {"biases": bias_keep is not None}
    assert (loaded.mean, loaded.std, loaded.input_shape) == (MEAN, STD, (1, 28, 28))
    assert stored_numbers(loaded.model) == counts
    x = rng.standard_normal((4, 1, 28, 28)).astype(np.float32)
    np.testing.assert_array_equal(loaded.model(x), stored(x))


# the commands on top of load_model: the experiment's best file, a bias-free float32 one, the paper's net
@pytest.mark.parametrize("name, config, bias_keep, float16", [("lenet5", {"c5_conv": True}, 8, True),
                                                              ("lenet5", {"bias": False}, None, False),
                                                              ("lenet5_caffe", {"c5_conv": True}, 3, True)])
def test_evaluate_and_predict_commands_open_a_compressed_file(name, config, bias_keep, float16, rng, tmp_path,
                                                              capsys):
    path, stored, _ = _written(name, config, bias_keep, float16, rng, tmp_path)
    images, predicted = _dataset_for(stored, tmp_path / "d.npz", rng)
    assert main(["evaluate", str(path), "--dataset", str(tmp_path / "d.npz"),
                 "--png", str(tmp_path / "c.png")]) == 0
    out = capsys.readouterr().out
    assert f"test accuracy {RIGHT / N_TEST:.2%} ({RIGHT}/{N_TEST})" in out, out
    np.save(tmp_path / "img.npy", images[0, 0])  # (28, 28) uint8
    assert main(["predict", str(path), str(tmp_path / "img.npy"), "--invert", "no"]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"img\.npy: digit {predicted[0]}\s+\(digit {predicted[0]} ", out), out  # wrapped at 80


def test_float16_file_of_a_c5_bias_keep_lenet5_reloads_to_the_rounded_weights(rng, tmp_path):
    """The deployable file of the experiment's best configuration (C5 as a convolution, biases as their
    8 lowest DCT coefficients): the reloaded spatial weights are exactly those of the in-memory model
    with its coefficients rounded to float16, layer by layer."""
    model = _compressed("lenet5", {"c5_conv": True}, 8, rng)
    save_compressed(model, tmp_path / "b.fr.npz", float16=True, meta=describe("lenet5", {"c5_conv": True}, model))
    loaded = load_model(tmp_path / "b.fr.npz").model
    stored = _as_stored(model, True)
    pairs = list(zip(frequency_layers(stored), frequency_layers(loaded), strict=True))
    assert [a for (a, _), _ in pairs] == ["0.0", "0.1", "3.0", "3.1", "6.0", "6.1", "9.0", "9.1", "11.0", "11.1"]
    for (_, a), (_, b) in pairs:
        assert a.keep == b.keep
        np.testing.assert_array_equal(a.spatial_weight(), b.spatial_weight())
    x = rng.standard_normal((3, 1, 28, 28)).astype(np.float32)
    np.testing.assert_array_equal(loaded(x), stored(x))


def _damage(path, tmp_path):
    """(label, damaged file, expected message) for several kinds of damage to a good file."""
    raw = path.read_bytes()
    with np.load(path) as f:
        manifest, payload = f["manifest"], f["payload"]
    text = json.loads(manifest.tobytes())

    def write(label, **arrays):
        p = tmp_path / f"{label}.fr.npz"
        np.savez(p, **arrays)
        return p

    def edited(change):
        m = json.loads(json.dumps(text))
        change(m)
        return np.frombuffer(json.dumps(m).encode(), np.uint8)

    flipped = bytearray(raw)
    flipped[raw.index(payload.tobytes()) + 1] ^= 0xFF  # one bit pattern inside the stored numbers
    (tmp_path / "flip.fr.npz").write_bytes(bytes(flipped))
    (tmp_path / "cut.fr.npz").write_bytes(raw[: len(raw) // 2])
    return [
        ("cut", tmp_path / "cut.fr.npz", "not a readable model file"),
        ("flip", tmp_path / "flip.fr.npz", "not a readable model file"),
        ("short", write("short", manifest=manifest, payload=payload[:-5]), "the payload holds"),
        ("long", write("long", manifest=manifest, payload=np.concatenate([payload, payload[:2]])),
         "the payload holds"),
        ("json", write("json", manifest=manifest[:-7], payload=payload), "manifest is not readable"),
        ("count", write("count", manifest=edited(lambda m: m["entries"][0].__setitem__(3, 10 ** 6)),
                        payload=payload), "its count says 1000000"),
        ("kind", write("kind", manifest=edited(lambda m: m["entries"][1].__setitem__(1, "zip")),
                       payload=payload), "expected entries"),
        ("entries", write("entries", manifest=edited(lambda m: m.pop("entries")), payload=payload),
         "list of entries"),
        ("nan", write("nan", manifest=manifest, payload=np.where(np.arange(payload.size) == 3, np.nan,
                                                                 payload).astype(payload.dtype)), "non-finite"),
        ("dtype", write("dtype", manifest=manifest, payload=payload.astype(np.int32)), "payload"),
        ("shape", write("shape", manifest=edited(lambda m: m["entries"][0].__setitem__(2, [7, 1, 5, 5])),
                        payload=payload), "do not fit lenet5"),
    ]


def test_a_damaged_compressed_file_gives_one_clear_error(rng, tmp_path, capsys):
    model = _compressed("lenet5", {"c5_conv": True}, 3, rng)
    good = tmp_path / "good.fr.npz"
    save_compressed(model, good, float16=True, meta=describe("lenet5", {"c5_conv": True}, model, dataset="mnist",
                                                            input_shape=[1, 28, 28], class_names=list("0123456789")))
    assert load_model(good).kind == "compressed"
    for label, path, message in _damage(good, tmp_path):
        with pytest.raises(ModelFileError, match=message):
            load_model(path)
        for command in (["evaluate", str(path)], ["predict", str(path), str(path)]):
            assert main(command) == 2, (label, command)
            err = " ".join(capsys.readouterr().err.split())  # the CLI wraps messages at 80 columns
            assert message in err and str(path) in err and "Traceback" not in err, (label, err)


def test_read_compressed_names_a_truncated_file(rng, tmp_path):
    model = _compressed("lenet5", {}, None, rng)
    save_compressed(model, tmp_path / "ok.fr.npz")
    raw = (tmp_path / "ok.fr.npz").read_bytes()
    (tmp_path / "cut.fr.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"cut\.fr\.npz: not a readable compressed model file"):
        read_compressed(tmp_path / "cut.fr.npz")


def test_lenet5_caffe_is_the_papers_431080_parameter_network_and_c5_is_the_same_function(rng):
    from minicnn.analysis import analyze
    from minicnn.losses import SoftmaxCrossEntropy

    model = build("lenet5_caffe")
    assert model.num_parameters() == 520 + 25_050 + 400_500 + 5_010 == 431_080
    summary = analyze(model, (1, 28, 28))
    assert summary.output_shape == (10,)
    c5 = build("lenet5_caffe", c5_conv=True)
    assert c5[4].weight.shape == (500, 50, 4, 4) and c5.num_parameters() == 431_080
    c5[4].weight.data = model[5].weight.data.reshape(500, 50, 4, 4).copy()  # (500, 800) unflattened
    for i, j in ((0, 0), (2, 2), (7, 7)):
        c5[i].load_state_dict(model[j].state_dict())
    c5[4].bias.data = model[5].bias.data.copy()
    x = rng.standard_normal((3, 1, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(c5(x), model(x), atol=1e-5)
    loss = SoftmaxCrossEntropy()
    before = loss.forward(model(x), np.array([1, 2, 3]))
    model.backward(loss.backward())
    for p in model.parameters():
        p.data -= 1e-3 * p.grad / np.sqrt(sum(float(np.sum(q.grad ** 2)) for q in model.parameters()))
    assert loss.forward(model(x), np.array([1, 2, 3])) < before
    assert build("lenet5_caffe", width=0.5, bias=False).num_parameters() == 10 * 25 + 25 * 250 + 400 * 250 + 250 * 10
    with pytest.raises(ValueError, match="lenet5_caffe"):
        build("lenet5_caffe", image_size=12)
