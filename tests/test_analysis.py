"""minicnn.analysis: shapes, parameters, multiply-adds and receptive fields, checked against hand
counts, against a real forward pass, and against the papers' published figures."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from minicnn import layers as L
from minicnn.analysis import GLOBAL, RF, analyze, connectivity_weights, receptive_field, receptive_field_of
from minicnn.core import Layer, Sequential
from minicnn.models import MODELS


def _convs(*specs):
    return Sequential(*[L.Conv2D(1, 1, k, stride=s) for k, s in specs])


# ---- receptive fields: the lecture's examples ------------------------------------------------------

@pytest.mark.parametrize("specs, size", [
    ([(3, 1), (3, 1)], 5),      # two 3x3 -> 5x5
    ([(5, 1), (5, 1)], 9),      # two 5x5 -> 9x9
    ([(3, 2), (3, 1)], 7),      # 3x3 stride 2 then 3x3 -> 7x7 (not 5x5)
    ([(5, 2), (5, 1)], 13),     # the lecture's question: [5x5 s2] then [5x5 s1] -> 13x13
])
def test_lecture_receptive_fields(specs, size):
    assert receptive_field_of(specs) == size
    rf = receptive_field(_convs(*specs), (1, 32, 32))
    assert rf.size == (size, size)
    assert rf.jump == (specs[0][1], specs[0][1])


def test_receptive_field_by_backprop(rng):
    """Independent check: the input pixels that influence output (0, 0) span exactly `size`."""
    model = _convs((5, 2), (5, 1), (3, 2)).to(np.float64)
    for m in model:
        m.weight.data[:] = 1.0
    x = rng.standard_normal((1, 1, 40, 40))
    y = model(x)
    dy = np.zeros_like(y)
    dy[0, 0, 0, 0] = 1.0
    hits = np.argwhere(model.backward(dy)[0, 0] != 0)
    rf = receptive_field(model, (1, 40, 40))
    assert tuple(hits.max(0) - hits.min(0) + 1) == rf.size == (17, 17)
    assert rf.start == (8.0, 8.0)  # centre of output (0, 0) in input pixels (valid padding)


def test_receptive_field_padding_dilation_and_pooling():
    model = Sequential(L.Conv2D(1, 1, 3, padding=1, dilation=2), L.MaxPool2D(2), L.Conv2D(1, 1, 3))
    rf = receptive_field(model, (1, 16, 16))
    # dilated 3x3: extent 5; pool 2: 5 + 1 = 6, jump 2; 3x3: 6 + 2 * 2 = 10
    assert rf.size == (10, 10) and rf.jump == (2, 2)
    assert rf.start == (2.0 - 1 + 0.5 + 2, 2.0 - 1 + 0.5 + 2)  # (2 - 1) + (0.5 - 0) + (1 - 0) * 2


def test_receptive_field_after_flatten_is_everything():
    assert receptive_field(Sequential(L.Conv2D(1, 2, 3), L.Flatten(), L.Linear(8, 2)), (1, 4, 4)) == GLOBAL


# ---- counting a layer by hand -----------------------------------------------------------------------

def test_conv_counts_by_hand():
    s = analyze(Sequential(L.Conv2D(3, 8, 3, stride=2, padding=1), L.DepthwiseConv2D(8, 3, padding=1),
                           L.PointwiseConv2D(8, 16), L.Conv2D(16, 16, 3, padding=1, groups=4),
                           L.GlobalAvgPool2D(), L.Linear(16, 10)), (3, 32, 32))
    conv, dw, pw, grouped, gap, fc = s.rows
    assert conv.output_shape == (8, 16, 16) and conv.macs == 16 * 16 * 8 * 3 * 9 and conv.kind == "Conv 3x3"
    assert dw.macs == 16 * 16 * 8 * 9 and dw.kind == "Conv DW 3x3"   # depthwise at output size
    assert pw.macs == 16 * 16 * 8 * 16 and pw.kind == "Conv 1x1"
    assert grouped.macs == 16 * 16 * 16 * 4 * 9 and grouped.weights == 16 * 4 * 9
    assert gap.output_shape == (16,) and gap.macs == 0
    assert fc.macs == 160 and fc.weights == 160 and fc.params == 170 and fc.kind == "Fully connected"
    assert s.weights == 216 + 72 + 128 + 576 + 160
    assert s.params == s.weights + 8 + 8 + 16 + 16 + 10  # plus the biases


@pytest.mark.parametrize("name, kwargs, shape", [
    ("cifar_net", {}, (3, 32, 32)),
    ("cifar_net", {"in_channels": 1, "image_size": 28, "downsample_kind": "slicesamp"}, (1, 28, 28)),
    ("mobilenet_v2", {"width": 0.25, "image_size": 32, "num_classes": 7}, (3, 32, 32)),
    ("shufflenet_v2", {"width": 0.5, "image_size": 32}, (3, 32, 32)),
    ("inception", {"width": 0.125, "image_size": 32}, (3, 32, 32)),
    ("xception", {"width": 0.0625, "image_size": 32, "middle_repeats": 1}, (3, 32, 32)),
])
def test_rule_shapes_agree_with_a_forward_pass(name, kwargs, shape):
    model = MODELS[name](**kwargs)
    rows = analyze(model, shape).rows
    record = []
    for row in rows:  # every leaf layer: run it on zeros of the analysed input shape
        layer = model
        for part in row.name.split("."):
            layer = getattr(layer, part, None)
        if isinstance(layer, Layer) and not list(layer.named_children()):
            layer.eval()
            out = layer.forward(np.zeros((2,) + row.input_shape, np.float32))
            record.append(out.shape[1:] == row.output_shape)
    assert record and all(record)
    model.eval()
    assert model(np.zeros((2,) + shape, np.float32)).shape[1:] == analyze(model, shape).output_shape


def test_channel_mismatch_is_an_error():
    with pytest.raises(ValueError, match=r"Conv2D: expected input \(3, H, W\), got \(1, 8, 8\)"):
        analyze(L.Conv2D(3, 4, 3), (1, 8, 8))


# ---- the lecture's parameter reductions -------------------------------------------------------------

def test_fully_vs_locally_connected_vs_convolution():
    counts = connectivity_weights(3, 4, 8, 3)
    assert counts == {
        "fully connected": L.Linear(8 * 8 * 3, 8 * 8 * 4, bias=False).weight.size,
        "locally connected": L.LocallyConnected2D(3, 4, 8, 3, padding=1, bias=False).weight.size,
        "convolution": L.Conv2D(3, 4, 3, padding=1, bias=False).weight.size,
    }
    assert counts["fully connected"] // counts["locally connected"] == 8 * 8 // 9   # O((W / 2 delta)^2)
    assert counts["locally connected"] // counts["convolution"] == 8 * 8             # O(W^2)


# ---- the papers' figures -----------------------------------------------------------------------------

def _share(part, total):
    return round(100 * part / total, 2)


def test_mobilenet_v1_matches_the_paper():
    s = analyze(MODELS["mobilenet_v1"](), (3, 224, 224))
    assert s.weights == 4_209_088
    assert s.macs == 568_740_352
    table = {k: (_share(m, s.macs), _share(w, s.weights)) for k, (m, w) in s.breakdown().items()}
    assert table["Conv 1x1"] == (94.86, 74.59)
    assert table["Conv DW 3x3"] == (3.06, 1.06)
    assert table["Fully connected"] == (0.18, 24.33)
    # the first 3x3 conv: the paper prints 1.19% of mult-adds; the true share is 1.91% (digits swapped)
    assert table["Conv 3x3"] == (1.91, 0.02)
    assert s.breakdown()["Conv 3x3"][0] == 112 * 112 * 32 * 3 * 9


def test_mobilenet_v2_matches_the_paper():
    s = analyze(MODELS["mobilenet_v2"](), (3, 224, 224))
    assert round(s.macs / 1e6) == 301           # paper: "300M" mult-adds
    assert 3.4e6 <= s.weights < 3.5e6           # paper: "3.4M" parameters
    assert s.params == 3_504_872                # every learnable number (the reference implementations' count)


@pytest.mark.parametrize("width, macs, weights", [(0.5, 41, 1.4), (1.0, 146, 2.3), (1.5, 299, 3.5), (2.0, 591, 7.4)])
def test_shufflenet_v2_matches_the_paper(width, macs, weights):
    s = analyze(MODELS["shufflenet_v2"](width=width), (3, 224, 224))
    assert round(s.weights / 1e6, 1) == weights
    # conv + FC mult-adds: 40,476,448 / 145,814,296 / 298,970,656 / 590,783,000 -- the paper's column
    # is these numbers rounded *up* to millions
    assert math.ceil(s.macs / 1e6) == macs


def test_resnet18_and_xception_match_reference_counts():
    s = analyze(MODELS["resnet18"](), (3, 224, 224))
    assert s.params == 11_689_512 and s.macs == 1_814_073_344  # the ResNet-18 figures (1.8 GFLOPs in the paper)
    assert analyze(MODELS["xception"](), (3, 299, 299)).params == 22_855_952  # Keras Xception, trainable


def test_summary_table_prints_totals():
    s = analyze(MODELS["mobilenet_v1"](), (3, 224, 224))
    text = s.table() + s.breakdown_table()
    assert "4,209,088" in text and "568,740,352" in text and "94.86%" in text
    assert isinstance(s.rows[0].rf, RF) and str(s.rows[0].rf) == "3x3"


def test_receptive_field_of_parallel_branches_is_the_largest():
    concat = L.Concat(L.PointwiseConv2D(2, 2), L.Sequential(L.Conv2D(2, 2, 3, padding=1), L.Conv2D(2, 2, 3, padding=1)))
    s = analyze(concat, (2, 8, 8))
    assert s.output_shape == (4, 8, 8) and s.rf.size == (5, 5)
    residual = L.Residual(L.Sequential(L.Conv2D(2, 2, 3, stride=2, padding=1), L.Conv2D(2, 2, 3, padding=1)),
                          L.Conv2D(2, 2, 1, stride=2))
    s = analyze(residual, (2, 8, 8))
    assert s.output_shape == (2, 4, 4) and s.rf.size == (7, 7) and s.rf.jump == (2, 2)
    assert [r.type for r in s.rows][-1] == "Residual (+)"


GOLDEN = Path(__file__).parent / "data" / "summary"


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.txt")), ids=lambda p: p.stem)
def test_summary_tables_are_unchanged(path):
    """`minicnn summary`, byte for byte: every layer type of the registered models (Residual, Concat,
    separable, SliceSamp, shuffle units). The numbers are those printed before the layers counted
    themselves (issue 11); the layout is the 80-column one (names too long for their column on a line
    of their own, as in xception)."""
    from minicnn.commands.summary import report

    name, shape = path.stem.rsplit("_", 1)
    assert report(name, tuple(int(v) for v in shape.split("x"))) + "\n" == path.read_text()


@pytest.mark.parametrize("layer, shape", [
    (L.Conv2D(3, 4, 3, stride=2, padding=1, dilation=2), (3, 11, 9)),
    (L.DepthwiseConv2D(4, 5, padding=2), (4, 7, 7)),
    (L.PointwiseConv2D(4, 6), (4, 5, 3)),
    (L.ConvTranspose2D(3, 2, 3, stride=2, padding=1, output_padding=1), (3, 5, 4)),
    (L.LocallyConnected2D(2, 3, (6, 5), 3, stride=2, padding=1), (2, 6, 5)),
    (L.DCTConv2D(2, 3, 3, stride=2), (2, 9, 9)),
    (L.Linear(6, 4), (6,)),
    (L.DCTLinear(6, 4, keep=5), (6,)),
    (L.Flatten(), (3, 4, 5)),
    (L.Dropout(0.5), (3, 4, 5)),
    (L.ChannelSplit(1, 3), (6, 4, 4)),
    (L.ChannelShuffle(2), (6, 4, 4)),
    (L.SliceDownsample(2), (3, 6, 4)),
    (L.SliceUpsample(2), (8, 3, 2)),
    (L.HaarDownsample(), (2, 4, 6)),
    (L.HaarUpsample(), (8, 2, 3)),
    (L.Upsample((2, 3), mode="bilinear"), (2, 3, 4)),
    (L.FrequencyBias(3, keep=2), (3, 4, 4)),
])
def test_layers_answer_their_output_shape(layer, shape, rng):
    """Each layer's own output_shape agrees with what its forward pass returns."""
    layer.eval()
    y = layer.forward(rng.standard_normal((2,) + shape).astype(np.float32))
    assert layer.output_shape(shape) == y.shape[1:]
    assert analyze(layer, shape).output_shape == y.shape[1:]


def test_layers_refuse_a_shape_that_does_not_fit():
    for layer, shape, message in [(L.Linear(6, 4), (5,), r"Linear: expected input \(6,\), got \(5,\)"),
                                  (L.SliceDownsample(2), (3, 5, 4), "divisible by 2"),
                                  (L.ChannelShuffle(4), (6, 4, 4), "divisible by 4"),
                                  (L.ConvTranspose2D(3, 2, 3), (2, 5, 5), r"expected input \(3, H, W\)"),
                                  (L.LocallyConnected2D(2, 3, 6, 3), (2, 5, 6), r"\(2, 6, 6\)")]:
        with pytest.raises(ValueError, match=message):
            layer.output_shape(shape)


def test_costs_by_hand_for_transposed_and_locally_connected_layers():
    t = L.ConvTranspose2D(3, 2, 3, stride=2)
    s = analyze(t, (3, 5, 4))
    assert s.macs == 5 * 4 * 3 * 2 * 9 and s.rows[0].kind == "Conv transpose" and s.rf is None
    lc = L.LocallyConnected2D(2, 3, 6, 3, padding=1, bias=False)
    s = analyze(lc, (2, 6, 6))
    assert s.macs == s.weights == 6 * 6 * 3 * 2 * 9 and s.rf.size == (3, 3)


def test_a_composite_layer_must_be_a_container_or_answer_itself():
    class Pair(Layer):
        def __init__(self):
            super().__init__()
            self.a, self.b = L.Conv2D(1, 2, 3), L.ReLU()

        def forward(self, x):
            return self.b.forward(self.a.forward(x))

    with pytest.raises(ValueError, match=r"Pair: expected a layer that answers output_shape\(\) and window\(\)"):
        analyze(Pair(), (1, 8, 8))
