"""Model zoo: every registered model builds, runs forward and backward at a small size, and learns
from its gradient; SliceSamp variants have no max-pool or stride-2 conv left; `minicnn summary` works."""

from __future__ import annotations

import numpy as np
import pytest

from minicnn import core
from minicnn import layers as L
from minicnn.analysis import analyze
from minicnn.cli import main
from minicnn.losses import SoftmaxCrossEntropy
from minicnn.models import MODELS, default_input

# small builds: (options, input shape) — channel widths cut so each smoke test takes well under a second
SMALL = {
    "alexnet": ({"width": 0.125, "image_size": 32}, (3, 32, 32)),
    "vgg11": ({"width": 0.0625, "image_size": 32}, (3, 32, 32)),
    "vgg16": ({"width": 0.0625, "image_size": 32}, (3, 32, 32)),
    "vgg19": ({"width": 0.0625, "image_size": 32}, (3, 32, 32)),
    "vgg_cifar": ({"width": 0.125}, (3, 32, 32)),
    "inception": ({"width": 0.0625, "image_size": 32}, (3, 32, 32)),
    "resnet20": ({"width": 0.5, "blocks": 1}, (3, 32, 32)),
    "resnet18": ({"width": 0.125, "image_size": 32}, (3, 32, 32)),
    "mobilenet_v1": ({"width": 0.25, "image_size": 32}, (3, 32, 32)),
    "mobilenet_v2": ({"width": 0.25, "image_size": 32}, (3, 32, 32)),
    "shufflenet_v2": ({"width": 0.5, "image_size": 32}, (3, 32, 32)),
    "xception": ({"width": 0.0625, "image_size": 32, "middle_repeats": 1}, (3, 32, 32)),
    "cifar_net": ({"width": 0.25}, (3, 32, 32)),
    "lenet5": ({}, (1, 28, 28)),
}
MINE = sorted(n for n in MODELS if n.removesuffix("_slicesamp") in SMALL and n != "lenet5")


def _build(name):
    options, shape = SMALL[name.removesuffix("_slicesamp")]
    return MODELS[name](num_classes=5, in_channels=shape[0], **options), shape


@pytest.mark.parametrize("name", MINE)
def test_forward_backward_smoke(name, rng):
    model, shape = _build(name)
    x = rng.standard_normal((2,) + shape).astype(np.float32)
    labels = np.array([1, 3])
    core.manual_seed(0)  # the same dropout masks in both forward passes
    logits = model(x)
    # float32 in, float32 out -- except after GELU (inside SliceSamp): minicnn.functional.gelu divides by
    # the float64 scalar np.sqrt(2), which NumPy 2 promotes to float64 (reported to the owner of dense.py)
    has_gelu = any(isinstance(m, L.GELU) for m in model.modules())
    assert logits.shape == (2, 5) and np.all(np.isfinite(logits))
    assert logits.dtype == np.float32 or has_gelu
    loss = SoftmaxCrossEntropy()
    before = loss.forward(logits, labels)
    model.zero_grad()
    dx = model.backward(loss.backward())
    assert dx.shape == x.shape and np.all(np.isfinite(dx))
    grads = [p.grad for p in model.parameters()]
    assert all(np.all(np.isfinite(g)) for g in grads) and any(np.any(g != 0) for g in grads)
    norm = np.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads))
    for p in model.parameters():  # a small step (length 1e-3) down the gradient lowers the loss on this batch
        p.data -= (1e-3 / norm) * p.grad
    core.manual_seed(0)
    assert loss.forward(model(x), labels) < before


@pytest.mark.parametrize("name", [n for n in MINE if n.endswith("_slicesamp")])
def test_slicesamp_variants_replace_every_downsampling_layer(name):
    model, shape = _build(name)
    kinds = [(type(m).__name__, getattr(m, "stride", None)) for m in model.modules()]
    assert any(k == "SliceSamp" for k, _ in kinds)
    assert not any(k in ("MaxPool2D", "Conv2D", "DepthwiseConv2D") and s == (2, 2) for k, s in kinds)
    base, _ = _build(name.removesuffix("_slicesamp"))
    assert analyze(model, shape).output_shape == analyze(base, shape).output_shape


def test_slicesamp_keeps_layer_order():
    model = MODELS["vgg_cifar_slicesamp"](width=0.125)
    types = [type(m).__name__ for m in model]
    assert types[6] == "SliceSamp" and types[7] == "Conv2D"  # in the max-pool's place, not appended


def test_cifar_net_downsampling_variants_differ_only_at_the_two_points():
    for kind, layer in [("maxpool", "MaxPool2D"), ("stride", "Conv2D"), ("slicesamp", "SliceSamp")]:
        model = MODELS["cifar_net"](downsample_kind=kind)
        s = analyze(model, (3, 32, 32))
        assert s.output_shape == (10,)
        assert sum(type(m).__name__ == layer for m in model) == (2 if layer != "Conv2D" else 7)
    with pytest.raises(ValueError, match="expected one of"):
        MODELS["cifar_net"](downsample_kind="avg")


def test_shufflenet_rejects_unknown_width():
    with pytest.raises(ValueError, match="expected width in"):
        MODELS["shufflenet_v2"](width=0.75)


def test_summary_command(capsys):
    assert main(["summary", "mobilenet_v1", "--input", "3,224,224"]) == 0
    out = capsys.readouterr().out
    assert "4,209,088" in out and "568,740,352" in out and "Conv DW 3x3" in out and "74.59%" in out
    assert main(["summary", "cifar_net", "--input", "1,28,28", "--num-classes", "7"]) == 0
    assert "1x28x28 -> output 7" in capsys.readouterr().out


def test_summary_command_bad_input(capsys):
    assert main(["summary", "mobilenet_v1", "--input", "3,224"]) == 2
    assert "expected --input as C,H,W" in capsys.readouterr().err  # errors go to stderr
    assert main(["summary", "no_such_model"]) == 2
    assert main(["summary", "resnet20_slicesamp", "--input", "3,30,30"]) == 2  # 15x15 cannot be sliced by 2
    assert "SliceSamp needs an even size" in capsys.readouterr().err


@pytest.mark.parametrize("name, shape", [("lenet5", (1, 28, 28)), ("lenet5_caffe", (1, 28, 28)),
                                         ("cifar_net", (3, 32, 32)), ("resnet20_slicesamp", (3, 32, 32)),
                                         ("mobilenet_v1", (3, 224, 224)), ("xception", (3, 299, 299))])
def test_default_input_is_the_models_own(name, shape):
    assert default_input(name) == shape


def test_every_registered_model_has_a_natural_input():
    shapes = {name: default_input(name) for name in MODELS}
    assert all(c in (1, 3) and h == w and h in (28, 32, 224, 299) for c, h, w in shapes.values()), shapes


def test_slicesamp_variants_report_the_size_they_are_built_at():
    """to_slicesamp builds AlexNet and Xception at 32x32 by default: their signature says so too."""
    assert default_input("alexnet_slicesamp") == (3, 32, 32)
    assert default_input("xception_slicesamp") == (3, 32, 32)
    assert default_input("alexnet") == (3, 224, 224)


@pytest.mark.parametrize("name", ["lenet5", "cifar_net_slicesamp", "resnet20", "alexnet_slicesamp"])
def test_summary_without_input_uses_the_models_own(name):
    """No --input: the table of --input C,H,W with the model's default_input."""
    from minicnn.commands.summary import report

    c, h, w = default_input(name)
    assert report(name) == report(name, (c, h, w))
    assert report(name).startswith(f"{name}  input {c}x{h}x{w}\n")


def test_summary_command_default_input(capsys):
    assert main(["summary", "lenet5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("lenet5  input 1x28x28\n") and "input 1x28x28 -> output 10" in out
    assert main(["summary", "lenet5", "--input", "3,32,32"]) == 0  # an explicit --input still wins
    assert "input 3x32x32 -> output 10" in capsys.readouterr().out


def test_a_model_without_a_natural_input_asks_for_one(capsys, monkeypatch):
    monkeypatch.setitem(MODELS, "bare", lambda num_classes=10: L.Sequential(L.Flatten(), L.Linear(12, num_classes)))
    with pytest.raises(ValueError, match="model 'bare': its constructor has no default in_channels and image_size"):
        default_input("bare")
    assert main(["summary", "bare"]) == 2
    assert "no natural input shape; give one" in capsys.readouterr().err
    assert main(["summary", "bare", "--input", "3,2,2"]) == 0



    a = [type(m).__name__ for m in MODELS["cifar_net_slicesamp"](width=0.25)]
    b = [type(m).__name__ for m in MODELS["cifar_net"](width=0.25, downsample_kind="slicesamp")]
    assert a == b


def test_experiment_plumbing_on_synthetic_data(rng):
    """The experiments' training helper on 64 random 8x8 images (real runs: `minicnn experiment ...`)."""
    from minicnn.data import Dataset
    from minicnn.experiments.cifar import prepare, train_and_test

    ds = prepare(Dataset("synthetic", rng.random((64, 3, 8, 8), dtype=np.float32), rng.integers(0, 3, 64),
                         rng.random((32, 3, 8, 8), dtype=np.float32), rng.integers(0, 3, 32), ["a", "b", "c"]))
    model = MODELS["cifar_net"](num_classes=3, width=0.125, image_size=8, downsample_kind="slicesamp")
    assert model(ds.x_test[:4]).dtype == np.float32  # GELU keeps float32 (no float64 detour)
    r = train_and_test(model, ds, epochs=1, batch_size=32, lr=0.05, seed=0)
    assert 0.0 <= r["test_accuracy"] <= 1.0 and r["images_per_s"] > 0


def test_vgg_builds_the_registered_vggs():
    from minicnn.models import build
    from minicnn.models.classic import vgg

    core.manual_seed(0)
    direct = vgg(11, 10, 3, 1 / 16, 32)
    core.manual_seed(0)
    registered = build("vgg11", num_classes=10, width=1 / 16, image_size=32)
    assert [(n, p.shape) for n, p in direct.named_parameters()] == [(n, p.shape) for n, p in registered.named_parameters()]
    assert all(np.array_equal(a.data, b.data) for a, b in zip(direct.parameters(), registered.parameters(), strict=True))
