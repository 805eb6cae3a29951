"""`minicnn show` and `minicnn.visualize`: the filters are the layer's own kernels, the feature maps are
its own outputs, the PNG files are written for a LeNet-5 checkpoint and a compressed file, and a user's
mistake is one line on stderr with exit code 2, never a traceback."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest

from minicnn import core, visualize
from minicnn import functional as F
from minicnn import layers as L
from minicnn.app import frequency
from minicnn.app.checkpoint import save_checkpoint
from minicnn.cli import main
from minicnn.models import build

META = {"model": "lenet5", "model_config": {}, "input_shape": [1, 28, 28], "mean": [0.13], "std": [0.31],
        "class_names": [str(k) for k in range(10)], "dataset": "mnist"}


@pytest.fixture
def lenet_checkpoint(tmp_path):
    core.manual_seed(0)
    model = build("lenet5")
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, model, meta=META)
    return path, model


@pytest.fixture
def digit_png(tmp_path):
    img = np.zeros((28, 28))
    img[6:22, 13:16] = 1.0  # a light "1" on a dark background, like MNIST
    path = tmp_path / "one.png"
    matplotlib.image.imsave(path, img, cmap="gray", vmin=0, vmax=1)
    return path, img


def _png_shape(path) -> tuple[int, ...]:
    return matplotlib.image.imread(path).shape


def test_conv_layers_filters_and_feature_maps_are_the_models_own(lenet_checkpoint):
    _, model = lenet_checkpoint
    convs = visualize.conv_layers(model)
    assert [name for name, _ in convs] == ["0", "3"]  # LeNet-5: conv, act, pool, conv, ...
    assert visualize.filters(convs[0][1]).shape == (6, 1, 5, 5)
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    maps = visualize.feature_maps(model, x)
    assert [name for name, _ in maps] == ["0", "3"]
    conv0 = model[0]
    np.testing.assert_allclose(maps[0][1], F.conv2d(x, conv0.weight.data, conv0.bias.data, padding=2),
                               rtol=1e-5, atol=1e-5)
    assert maps[1][1].shape == (2, 16, 10, 10)
    model.train()
    visualize.feature_maps(model, x)
    assert model.training, "feature_maps must put the model back in the mode it found"


def test_filters_of_a_frequency_layer_are_its_spatial_weight():
    core.manual_seed(0)
    layer = L.DCTConv2D(2, 3, 3, keep=5)
    np.testing.assert_array_equal(visualize.filters(layer), layer.spatial_weight().astype(np.float64))
    with pytest.raises(ValueError, match="filters: expected a 2-D convolution layer, got Linear"):
        visualize.filters(L.Linear(3, 2))
    with pytest.raises(ValueError, match=r"feature_maps: expected images \(N, C, H, W\), got shape \(28, 28\)"):
        visualize.feature_maps(core.Sequential(L.Conv2D(1, 2, 3)), np.zeros((28, 28)))


def test_show_writes_filters_and_feature_maps_for_a_lenet5_checkpoint(lenet_checkpoint, digit_png, tmp_path,
                                                                        capsys):
    path, _ = lenet_checkpoint
    image, _ = digit_png
    out = tmp_path / "pictures"
    assert main(["show", str(path), str(image), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    names = sorted(p.name for p in out.iterdir())
    assert names == ["feature_maps.png", "filters_0.png", "filters_3.png"]
    for name in names:
        assert name in printed
        shape = _png_shape(out / name)
        assert shape[0] > 100 and shape[1] > 100 and shape[2] in (3, 4)
    # the 16 x 6 grid of layer 3 is drawn taller than the single row of layer 0's 6 filters
    assert _png_shape(out / "filters_3.png")[0] > 2 * _png_shape(out / "filters_0.png")[0]
    assert main(["show", str(path), "--out", str(tmp_path / "only_filters")]) == 0
    assert sorted(p.name for p in (tmp_path / "only_filters").iterdir()) == ["filters_0.png", "filters_3.png"]


def test_show_reads_a_compressed_frequency_file(tmp_path, digit_png, capsys):
    core.manual_seed(0)
    model = frequency.to_frequency(build("lenet5"), keep=0.5)
    path = tmp_path / "lenet5.fr.npz"
    frequency.save_compressed(model, path, meta=frequency.describe("lenet5", {}, model))
    assert main(["show", str(path), "--out", str(tmp_path / "fr")]) == 0
    assert (tmp_path / "fr" / "filters_0.png").is_file()
    # a compressed file records no input normalisation: feature maps are refused with the reason
    assert main(["show", str(path), str(digit_png[0]), "--out", str(tmp_path / "fr2")]) == 2
    assert "does not record its input shape and normalisation" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["missing checkpoint", "not a checkpoint", "bad image", "out is a file"])
def test_show_mistakes_are_one_line_on_stderr(case, lenet_checkpoint, tmp_path, capsys):
    path, _ = lenet_checkpoint
    args = {"missing checkpoint": [str(tmp_path / "nope.npz"), "--out", str(tmp_path / "o")],
            "not a checkpoint": [str(_write(tmp_path / "text.npz", b"hello")), "--out", str(tmp_path / "o")],
            "bad image": [str(path), str(_write(tmp_path / "bad.png", b"not a png")), "--out", str(tmp_path / "o")],
            "out is a file": [str(path), "--out", str(_write(tmp_path / "file", b"x"))]}[case]
    assert main(["show", *args]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("minicnn show: ") and captured.err.count("\n") == 1
    assert "Traceback" not in captured.err + captured.out
    if case != "out is a file":
        assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def _write(path, content: bytes):
    path.write_bytes(content)
    return path


def test_feature_maps_lists_every_convolution_of_a_unet_in_the_order_they_ran():
    """A UNet's convolutions sit inside SkipConcat (not a Sequential): every one is listed, encoder before
    decoder, each with the output the layer itself returns, and the model is left as it was."""
    import numpy as np

    from minicnn import models
    from minicnn.visualize import conv_layers, feature_maps

    net = models.build("unet", width=1 / 16, depth=2, in_channels=1, num_classes=3)
    x = np.random.default_rng(0).standard_normal((1, 1, 16, 16))
    maps = feature_maps(net, x)
    names = [name for name, _ in maps]
    assert sorted(names) == sorted(name for name, _ in conv_layers(net)) and len(names) == 13  # 6 encoder, 2 up, 4 decoder, head
    assert names[-1] == "1"  # the 1x1 head runs last
    assert [y.shape[2] for _, y in maps[:2]] == [16, 16] and min(y.shape[2] for _, y in maps) == 4
    assert np.array_equal(maps[-1][1], net.eval()(x))  # the head's recorded output is the model's output
    assert all("forward" not in vars(layer) for _, layer in conv_layers(net))  # the wrappers are gone
