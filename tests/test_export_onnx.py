"""`minicnn export FILE --onnx OUT` and `minicnn.app.onnx`: the exported graph, run in ONNX Runtime, computes
what minicnn computes (to float32 rounding) for LeNet-5 on real MNIST test images, cifar_net on real
CIFAR-10 test images, a ResNet basic block, MobileNet blocks, every mapped layer type, and a compressed
.fr.npz; a layer with no mapping is refused by name; the output file is never one it should not touch.

The graph tests need the optional extra (`pip install "minicnn[onnx]"` plus onnxruntime; CI installs both)
and skip, saying so, without it. The tests of the command's refusals run everywhere.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from minicnn import layers as L
from minicnn.app import load_model, save_checkpoint
from minicnn.app.frequency import describe, frequency_biases, save_compressed, to_frequency
from minicnn.cli import main
from minicnn.core import Sequential
from minicnn.data import load_dataset, standardize
from minicnn.losses import SoftmaxCrossEntropy
from minicnn.models import MODELS, build
from minicnn.models.resnet import basic_block
from minicnn.optim import SGD

EXTRA = 'the ONNX export tests need the optional extra: pip install "minicnn[onnx]" onnxruntime'
RELATIVE_TOLERANCE = 1e-5  # max |ORT - minicnn| <= this * max(1, max |y|): float32 rounding, with a margin
TEST_IMAGES = 1000


@pytest.fixture
def ort():
    pytest.importorskip("onnx", reason=EXTRA)
    return pytest.importorskip("onnxruntime", reason=EXTRA)


def _run(ort, proto_or_path, x: np.ndarray) -> np.ndarray:
    source = proto_or_path if isinstance(proto_or_path, str) else proto_or_path.SerializeToString()
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    return session.run(["output"], {"input": x})[0]


def _agree(theirs: np.ndarray, ours: np.ndarray) -> float:
    """Assert agreement to float32 rounding; return the max abs difference (printed with -s)."""
    assert theirs.shape == ours.shape and theirs.dtype == np.float32
    diff = float(np.max(np.abs(theirs - ours)))
    assert diff <= RELATIVE_TOLERANCE * max(1.0, float(np.max(np.abs(ours)))), diff
    return diff


def _train_briefly(model, x: np.ndarray, y: np.ndarray, steps: int, batch: int = 32, lr: float = 0.05):
    """A few SGD steps, so the weights and BatchNorm's running statistics are not the initial ones."""
    loss, opt = SoftmaxCrossEntropy(), SGD(model.parameters(), lr=lr, momentum=0.9)
    model.train()
    for step in range(steps):
        lo = step * batch % (len(x) - batch)
        loss.forward(model.forward(x[lo:lo + batch]), y[lo:lo + batch])
        model.zero_grad()
        model.backward(loss.backward())
        opt.step()
    return model.eval()


def _randomise_statistics(model, rng) -> None:
    """BatchNorm running statistics away from (0, 1), so a graph ignoring them would disagree."""
    for layer in model.modules():
        if isinstance(layer, (L.BatchNorm1D, L.BatchNorm2D)):
            c = layer.num_features
            layer.running_mean = rng.normal(0, 0.5, c).astype(np.float32)
            layer.running_var = rng.uniform(0.3, 3.0, c).astype(np.float32)
            layer.weight.data[...] = rng.uniform(0.5, 1.5, c)
            layer.bias.data[...] = rng.normal(0, 0.2, c)


def _checkpoint(path, model, name: str, shape, mean, std, class_names, dataset: str) -> None:
    save_checkpoint(path, model, meta={"model": name, "model_config": {}, "input_shape": list(shape),
                                       "mean": [float(v) for v in mean], "std": [float(v) for v in std],
                                       "class_names": class_names, "dataset": dataset})


def _real_data_agreement(ort, tmp_path, capsys, ds, name: str, steps: int) -> None:
    mean, std = ds.channel_stats()
    x_train = standardize(ds.x_train[:steps * 32 + 32], mean, std)
    model = _train_briefly(build(name), x_train, ds.y_train[:len(x_train)], steps)
    ckpt, out = tmp_path / "model.npz", tmp_path / "model.onnx"
    _checkpoint(ckpt, model, name, ds.input_shape, mean, std, ds.class_names, ds.name)
    assert main(["export", str(ckpt), "--onnx", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"input 'input' float32 (N, {', '.join(map(str, ds.input_shape))})" in printed
    assert printed.startswith(f"wrote {out}\n") and "checked in ONNX Runtime" in printed
    assert max(map(len, printed.splitlines()[1:])) <= 80
    loaded = load_model(ckpt)
    x = loaded.normalize(ds.x_test[:TEST_IMAGES])
    theirs, ours = _run(ort, str(out), x), loaded.model.forward(x)
    diff = _agree(theirs, ours)
    top2 = np.sort(ours, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-4  # the predicted class, wherever it is not a near tie
    assert np.array_equal(theirs.argmax(1)[clear], ours.argmax(1)[clear]) and clear.mean() > 0.99
    accuracy = float((ours.argmax(1) == ds.y_test[:TEST_IMAGES]).mean())
    print(f"{name} on {TEST_IMAGES} real {ds.name} test images: max |ORT - minicnn| {diff:.3g}, "
          f"max |y| {np.abs(ours).max():.3g}, accuracy {accuracy:.3f}")


def test_lenet5_on_real_mnist_test_images(ort, tmp_path, capsys, data_dir):
    ds = load_dataset("mnist", data_dir, download=False)
    _real_data_agreement(ort, tmp_path, capsys, ds, "lenet5", steps=150)


def test_cifar_net_on_real_cifar10_test_images(ort, tmp_path, capsys, data_dir):
    ds = load_dataset(data_dir / "cifar10" / "cifar10_partial.npz")
    _real_data_agreement(ort, tmp_path, capsys, ds, "cifar_net", steps=20)


def _to_onnx(model, shape, **kw):
    from minicnn.app.onnx import to_onnx
    return to_onnx(model, shape, **kw)


@pytest.mark.parametrize("block, shape", [
    (lambda: basic_block(16, 16), (16, 12, 12)),  # identity shortcut
    (lambda: basic_block(16, 32, stride=2), (16, 12, 12)),  # 1x1 stride-2 projection shortcut
    (lambda: L.InvertedResidual(16, 16, expand_ratio=6), (16, 10, 10)),  # MobileNet v2, with its Residual
    (lambda: L.InvertedResidual(16, 24, stride=2, expand_ratio=4), (16, 10, 10)),
    (lambda: L.DepthwiseSeparable(8, 16, stride=2), (8, 10, 10)),  # MobileNet v1
    (lambda: L.ShuffleV2Unit(16, 16), (16, 8, 8)),  # split, concat, channel shuffle
], ids=["resnet-basic", "resnet-basic-projection", "mobilenet-v2-inverted-residual", "mobilenet-v2-stride2",
        "mobilenet-v1-depthwise-separable", "shufflenet-v2-unit"])
def test_blocks_on_random_input(ort, rng, block, shape):
    model = block().eval()
    _randomise_statistics(model, rng)
    x = rng.standard_normal((5, *shape)).astype(np.float32)
    print("max |ORT - minicnn|", _agree(_run(ort, _to_onnx(model, shape), x), model.forward(x)))


def _every_mapped_layer() -> tuple[Sequential, tuple[int, int, int]]:
    """One network holding every layer type the exporter maps, in shapes that exercise their options."""
    net = Sequential(
        L.Conv2D(3, 8, 3, stride=2, padding=2, dilation=2, groups=1),  # (8, 8, 8)
        L.BatchNorm2D(8), L.LeakyReLU(0.2),
        L.Conv2D(8, 8, 3, padding="same", groups=4), L.Tanh(),
        L.DepthwiseConv2D(8, 3, padding=1), L.ReLU6(),
        L.PointwiseConv2D(8, 12), L.GELU(),
        L.ConvTranspose2D(12, 8, 3, stride=2, padding=1, output_padding=1),  # (8, 16, 16)
        L.Sigmoid(), L.Maxout(2),  # (4, 16, 16)
        L.Concat(L.Upsample(2, "nearest"), L.Upsample(2, "bilinear"), L.Upsample(2, "bicubic")),  # (12, 32, 32)
        L.AvgPool2D(3, stride=2, padding=1),  # (12, 16, 16)
        L.SumPool2D(2),  # (12, 8, 8)
        L.ChannelShuffle(3),
        L.Residual(Sequential(L.SliceDownsample(2), L.SliceUpsample(2)), L.ChannelSplit(0, 1)),
        L.SeparableConv2D(12, 16, 3, padding=1), L.ReLU(),
        L.MaxPool2D(3, stride=2, padding=1),  # (16, 4, 4)
        L.Subsample2D(2),  # (16, 2, 2)
        L.Concat(Sequential(L.Dropout(0.5), L.Flatten()), L.GlobalAvgPool2D(),
                 Sequential(L.GlobalAvgPool2D(keepdims=True), L.Flatten())),  # (64 + 16 + 16,)
        L.Linear(96, 20), L.BatchNorm1D(20), L.Maxout(2),
        L.Sequential(L.Linear(10, 6), L.Dropout(0.1)),
    )
    return net, (3, 16, 16)


def test_every_mapped_layer_type_agrees(ort, rng):
    from minicnn.app.onnx import EMITTERS

    net, shape = _every_mapped_layer()
    net.eval()
    _randomise_statistics(net, rng)
    used = {type(m) for m in net.modules()}
    missing = {t.__name__ for t in EMITTERS} - {t.__name__ for t in used} - {"DCTConv2D", "DCTConvTranspose2D", "DCTLinear",
                                                                              "FrequencyBias"}
    assert not missing  # the DCT layers have their own cases below
    x = rng.standard_normal((3, *shape)).astype(np.float32)
    proto = _to_onnx(net, shape)
    print("max |ORT - minicnn|", _agree(_run(ort, proto, x), net.forward(x)))
    assert "Dropout" not in {n.op_type for n in proto.graph.node}  # eval mode: left out
    assert {"DepthToSpace", "Resize", "ReduceMax", "ConvTranspose", "BatchNormalization"} <= \
        {n.op_type for n in proto.graph.node}


@pytest.mark.parametrize("make, shape", [
    (lambda: L.Conv2D(4, 6, (3, 5), stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2), (4, 11, 9)),
    (lambda: L.Conv2D(4, 6, 3, bias=False), (4, 5, 5)),
    (lambda: L.ConvTranspose2D(4, 6, 3, stride=2, padding=1, output_padding=1, dilation=2, groups=2), (4, 5, 6)),
    (lambda: L.ConvTranspose2D(3, 2, (2, 3), stride=(1, 2), bias=False), (3, 4, 4)),
    (lambda: L.MaxPool2D(3, stride=2, padding=1), (2, 7, 7)),  # signed input: padding must never win
    (lambda: L.AvgPool2D((3, 2), stride=1, padding=(1, 1)), (2, 5, 6)),  # padded zeros count
    (lambda: L.Upsample((2, 3), "nearest"), (2, 3, 4)),
    (lambda: L.Upsample((3, 2), "bilinear"), (2, 3, 4)),
    (lambda: L.Upsample(2, "bicubic"), (2, 4, 3)),
    (lambda: L.SliceDownsample(3), (2, 6, 9)),
    (lambda: L.SliceUpsample(3), (18, 2, 3)),
    (lambda: L.ChannelShuffle(4), (12, 2, 2)),
    (lambda: L.Maxout(3), (12,)),
    (lambda: L.Linear(12, 5, bias=False), (12,)),
    (lambda: L.DCTConv2D(3, 4, 3, padding=1, keep=0.3), (3, 6, 6)),
    (lambda: L.DCTLinear(12, 5, keep=7), (12,)),
    (lambda: L.DCTConvTranspose2D(4, 3, 2, stride=2, keep=0.4), (4, 3, 3)),
], ids=["conv-grouped-dilated-strided", "conv-no-bias", "conv-transpose-grouped-dilated", "conv-transpose-rect",
        "maxpool-padded", "avgpool-padded", "nearest-2x3", "bilinear-3x2", "bicubic", "space-to-depth-3",
        "depth-to-space-3", "channel-shuffle-4", "maxout-features", "linear-no-bias", "dct-conv", "dct-linear",
        "dct-conv-transpose"])
def test_one_layer_with_its_options(ort, rng, make, shape):
    layer = make().eval()
    x = rng.standard_normal((3, *shape)).astype(np.float32)
    _agree(_run(ort, _to_onnx(layer, shape), x), layer.forward(x))


def test_onnx_space_to_depth_would_be_wrong_and_the_export_is_not(ort, rng):
    """Why SliceDownsample is exported as Reshape-Transpose-Reshape: ONNX's SpaceToDepth puts the block
    offset first in the channel index ((i r + j) C + c), minicnn (and pixel_unshuffle) the channel
    (c r^2 + i r + j). The comparison used everywhere here sees the difference."""
    from onnx import TensorProto, helper

    from minicnn.app.onnx import MAX_IR_VERSION, OPSET

    shape = (3, 4, 4)
    node = helper.make_node("SpaceToDepth", ["input"], ["output"], blocksize=2)
    graph = helper.make_graph([node], "s2d", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", *shape])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 12, 2, 2])])
    plain = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    plain.ir_version = MAX_IR_VERSION
    layer = L.SliceDownsample(2)
    x = rng.standard_normal((2, *shape)).astype(np.float32)
    with pytest.raises(AssertionError):
        _agree(_run(ort, plain, x), layer.forward(x))
    assert _agree(_run(ort, _to_onnx(layer, shape), x), layer.forward(x)) == 0.0  # a permutation: exact


def test_the_batch_size_is_free(ort, rng):
    model = build("lenet5").eval()
    proto = _to_onnx(model, (1, 28, 28))
    assert proto.opset_import[0].version == 17 and proto.ir_version == 9
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    for n in (1, 7):
        x = rng.standard_normal((n, 1, 28, 28)).astype(np.float32)
        _agree(_run(ort, proto, x), model.forward(x))


def test_a_compressed_fr_file_exports_decompressed(ort, tmp_path, capsys, rng):
    """A small DCT model (weights and biases in the frequency domain, truncated) through save_compressed:
    the export's weights are the spatial ones its kept coefficients give."""
    model = frequency_biases(to_frequency(build("lenet5"), keep=0.25))
    for layer in model.modules():
        if isinstance(layer, L.FrequencyBias):
            layer.set_keep(3)
    path, out = tmp_path / "lenet5.fr.npz", tmp_path / "lenet5.onnx"
    save_compressed(model, path, meta=describe("lenet5", {}, model, input_shape=[1, 28, 28]))
    assert main(["export", str(path), "--onnx", str(out)]) == 0
    assert "from a compressed file" in capsys.readouterr().out
    loaded = load_model(path)
    x = rng.random((16, 1, 28, 28), dtype=np.float32)
    print("max |ORT - minicnn|", _agree(_run(ort, str(out), x), loaded.model.forward(x)))
    import onnx

    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    assert ops.count("Conv") == 2 and ops.count("Gemm") == 3 and ops.count("Add") == 5  # 5 frequency biases


def test_metadata_describes_the_input(ort, tmp_path, capsys):
    import onnx

    ckpt, out = tmp_path / "m.npz", tmp_path / "m.onnx"
    _checkpoint(ckpt, build("lenet5"), "lenet5", (1, 28, 28), [0.13], [0.31], list("0123456789"), "mnist")
    assert main(["export", str(ckpt), "--onnx", str(out), "--no-check"]) == 0
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["model"] == "lenet5" and meta["mean"] == "[0.13]" and meta["std"] == "[0.31]"
    assert meta["input"] == "float32 (N, 1, 28, 28), normalised (x - mean) / std per channel"
    assert meta["dataset"] == "mnist" and '"9"' in meta["class_names"]


# ---- refusals ---------------------------------------------------------------------------------------


def test_a_layer_without_mapping_is_refused_by_name(ort):
    from minicnn.app.onnx import ExportError

    net = Sequential(L.Conv2D(1, 2, 3), Sequential(L.ReLU(), L.LocallyConnected2D(2, 2, (6, 6), 3)))
    with pytest.raises(ExportError, match=r"layer '1\.1' \(LocallyConnected2D\)"):
        _to_onnx(net, (1, 8, 8))

    class Relu2(L.ReLU):  # a subclass may compute something else: exact types only
        pass

    with pytest.raises(ExportError, match=r"layer '0' \(Relu2\)"):
        _to_onnx(Sequential(Relu2()), (1, 4, 4))
    with pytest.raises(ExportError, match=r"the model itself \(SoftPool2D\)"):
        _to_onnx(L.SoftPool2D(2), (1, 4, 4))


def test_the_command_refuses_an_unmappable_model_by_layer(ort, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(MODELS, "untied", lambda: Sequential(L.LocallyConnected2D(1, 2, (6, 6), 3), L.Flatten()))
    ckpt, out = tmp_path / "untied.npz", tmp_path / "untied.onnx"
    save_checkpoint(ckpt, build("untied"), meta={"model": "untied", "model_config": {}, "input_shape": [1, 6, 6]})
    assert main(["export", str(ckpt), "--onnx", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cannot export layer '0' (LocallyConnected2D)" in err and "Traceback" not in err
    assert not out.exists()


@pytest.fixture
def lenet_file(tmp_path, monkeypatch):
    """A LeNet-5 checkpoint in the current folder (tmp_path), so that messages naming it fit one line."""
    monkeypatch.chdir(tmp_path)
    path = Path("lenet.npz")
    _checkpoint(path, build("lenet5"), "lenet5", (1, 28, 28), [0.1], [0.3], list("0123456789"), "mnist")
    return path


def test_a_plain_state_dict_needs_its_model_name(ort, tmp_path, capsys, monkeypatch, rng):
    monkeypatch.chdir(tmp_path)
    model = build("lenet5")
    model.save("plain.npz")
    assert main(["export", "plain.npz", "--onnx", "p.onnx"]) == 2
    assert capsys.readouterr().err.replace("\n  ", " ") == (
        "minicnn export: plain.npz is a plain state dict, which does not name its model; give --model NAME and "
        "--input C,H,W\n")
    assert main(["export", "plain.npz", "--onnx", "p.onnx", "--model", "lenet5", "--input", "1,28,28"]) == 0
    assert "lenet5 from a state-dict file" in capsys.readouterr().out
    x = rng.standard_normal((2, 1, 28, 28)).astype(np.float32)
    _agree(_run(ort, "p.onnx", x), model.eval().forward(x))


def test_without_onnx_the_command_says_how_to_install_it(lenet_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    assert main(["export", str(lenet_file), "--onnx", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.strip().replace("\n  ", " ") == ('minicnn export: exporting to ONNX needs the optional onnx package: '
                                                'pip install "minicnn[onnx]"')
    assert not (tmp_path / "x.onnx").exists()


def test_an_existing_file_is_kept_unless_overwrite(ort, lenet_file, tmp_path, capsys):
    out = Path("out.onnx")
    out.write_bytes(b"precious")
    assert main(["export", str(lenet_file), "--onnx", str(out)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err and out.read_bytes() == b"precious"
    assert main(["export", str(lenet_file), "--onnx", str(out), "--overwrite", "--no-check"]) == 0
    assert out.read_bytes() != b"precious" and out.stat().st_size > 200_000
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []  # no temporary left


@pytest.mark.parametrize("kind", ["folder", "symlink", "device", "the input itself", "missing folder"])
def test_paths_that_are_not_a_new_or_regular_file_are_refused(ort, lenet_file, tmp_path, capsys, kind):
    target = Path("target.onnx")
    target.write_bytes(b"keep")
    out = {"folder": Path("."), "symlink": Path("link.onnx"), "device": Path(os.devnull),
           "the input itself": lenet_file, "missing folder": Path("no") / "x.onnx"}[kind]
    if kind == "symlink":
        out.symlink_to(target)
    before = lenet_file.read_bytes()
    assert main(["export", str(lenet_file), "--onnx", str(out), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("minicnn export: --onnx") and err.count("minicnn export:") == 1, err  # one message
    assert "Traceback" not in err and max(map(len, err.splitlines())) <= 80
    assert target.read_bytes() == b"keep" and lenet_file.read_bytes() == before


def test_write_onnx_refuses_what_the_command_refuses(ort, tmp_path):
    from minicnn.app.onnx import write_onnx

    proto = _to_onnx(build("lenet5"), (1, 28, 28))
    out = tmp_path / "a.onnx"
    assert write_onnx(proto, out) == out.stat().st_size
    assert write_onnx(proto, out) == out.stat().st_size  # a file this process wrote may be written again
    theirs = tmp_path / "theirs.onnx"
    theirs.write_bytes(b"someone else's")
    with pytest.raises(FileExistsError, match="exists"):
        write_onnx(proto, theirs)
    assert theirs.read_bytes() == b"someone else's"
    with pytest.raises(ValueError, match="folder"):
        write_onnx(proto, tmp_path, overwrite=True)
    (tmp_path / "l.onnx").symlink_to(out)
    with pytest.raises(ValueError, match="symbolic link"):
        write_onnx(proto, tmp_path / "l.onnx", overwrite=True)
