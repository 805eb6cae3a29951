"""The shape protocol (`minicnn.layers.shapes`): every layer's own `output_shape` agrees with its real
forward pass, and refuses exactly the inputs its forward refuses, with a ValueError naming the layer."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from minicnn import core
from minicnn import layers as L
from minicnn.analysis import analyze
from minicnn.core import Layer, Sequential
from minicnn.gradcheck_cases import CASES


def _case(name):
    core.manual_seed(0)
    return CASES[name](np.random.default_rng(0))


def _leaves(layer):
    return [m for m in layer.modules() if not list(m.named_children())]


def _leaf_classes():
    """Every layer class `minicnn.layers` exports that is not a container."""
    return {c for c in vars(L).values() if inspect.isclass(c) and issubclass(c, Layer)
            and not issubclass(c, (Sequential, L.Residual, L.Concat)) and c is not Layer
            and not getattr(c, "runs_children_in_order", False)}


def test_the_cases_cover_every_layer_class():
    seen = {type(m) for name in CASES for m in _leaves(_case(name)[0])}
    assert _leaf_classes() - seen == set()


@pytest.mark.parametrize("name", sorted(CASES))
def test_output_shape_is_the_shape_forward_returns(name):
    """For every layer inside the case, the (input, output) shapes of its real forward pass on the case's
    random input are those `walk` predicts through the layers' own `output_shape`."""
    layer, x = _case(name)
    seen = []
    for leaf in _leaves(layer):
        def record(v, leaf=leaf, forward=leaf.forward):
            y = forward(v)
            seen.append((leaf, v.shape[1:], y.shape[1:]))
            return y
        leaf.forward = record  # instance attribute: the containers call leaf.forward
    y = layer.forward(x)

    predicted = []

    class Record(L.Visitor):
        def leaf(self, name, leaf, in_shape, out_shape, state):
            predicted.append((leaf, in_shape, out_shape))

    assert L.walk(layer, x.shape[1:], Record())[0] == y.shape[1:]
    assert L.output_shape(layer, x.shape[1:]) == y.shape[1:]
    by_layer = lambda rows: sorted((id(m), i, o) for m, i, o in rows)  # noqa: E731  (branch order may differ)
    assert seen and by_layer(predicted) == by_layer(seen)
    for leaf, in_shape, out_shape in seen:
        assert leaf.output_shape(in_shape) == out_shape


ANY_SHAPE = (L.ReLU, L.ReLU6, L.LeakyReLU, L.Sigmoid, L.Tanh, L.GELU, L.Flatten, L.Dropout)


def _deformed(shape):
    """Shapes near a good one: one channel more, one axis more or less, a 1x1 or 2x2 map."""
    out = [(shape[0] + 1,) + shape[1:], shape + (2,)]
    if len(shape) > 1:
        out.append(shape[:-1])
    if len(shape) == 3:
        out += [(shape[0], 1, 1), (shape[0], 2, 2)]
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_output_shape_refuses_what_forward_refuses(name):
    """On shapes near the case's, output_shape raises a ValueError naming a layer exactly when the real
    forward pass raises one, and otherwise gives forward's shape."""
    layer, x = _case(name)
    names = {type(m).__name__ for m in layer.modules()}
    refused = 0
    for shape in _deformed(x.shape[1:]):
        v = np.random.default_rng(1).uniform(0.1, 1.0, (2,) + shape)  # positive: stochastic pooling takes it
        try:
            expected = layer.forward(v).shape[1:]
        except ValueError:
            expected = None
        if expected is not None:
            assert L.output_shape(layer, shape) == expected, shape
            continue
        refused += 1
        with pytest.raises(ValueError) as error:
            L.output_shape(layer, shape)
        said = str(error.value).split(":")[0].split()[0]
        assert said in names, (shape, str(error.value))
    if not all(isinstance(m, ANY_SHAPE) for m in _leaves(layer)):
        assert refused, "no deformed shape was refused: the refusal was not tested"


@pytest.mark.parametrize("layer, shape, message", [
    (L.MaxPool2D(3), (2, 2, 5), r"MaxPool2D: window of extent 3 .* larger than the padded input 2"),
    (L.AvgPool2D(5, padding=1), (2, 5, 2), r"AvgPool2D: window of extent 5 .* padded input 4 \(size 2 \+ padding 1\+1\)"),
    (L.SumPool2D(2), (2, 5), r"SumPool2D: expected input \(C, H, W\), got \(2, 5\)"),
    (L.SoftPool2D(4), (1, 3, 8), "SoftPool2D: window of extent 4"),
    (L.MixedPool2D(2), (1, 1, 8), "MixedPool2D: window of extent 2"),
    (L.StochasticPool2D(2), (4, 8, 8, 1), r"StochasticPool2D: expected input \(C, H, W\)"),
    (L.Subsample2D(2), (4, 8), r"Subsample2D: expected input \(C, H, W\)"),
    (L.GlobalAvgPool2D(), (8,), r"GlobalAvgPool2D: expected input \(C, H, W\), got \(8,\)"),
    (L.BatchNorm2D(3), (4, 5, 5), r"BatchNorm2D: expected input \(3, H, W\), got \(4, 5, 5\)"),
    (L.BatchNorm1D(3), (3, 1, 1), r"BatchNorm1D: expected input \(3,\), got \(3, 1, 1\)"),
    (L.Maxout(2), (5, 4, 4), r"Maxout: expected input \(C, ...\) with C divisible by pieces=2, got \(5, 4, 4\)"),
])
def test_bad_shapes_are_refused_by_name(layer, shape, message):
    with pytest.raises(ValueError, match=message):
        layer.output_shape(shape)
    with pytest.raises(ValueError, match=type(layer).__name__):
        layer.eval().forward(np.ones((2,) + shape))  # the real forward refuses the same input


@pytest.mark.parametrize("layer, shape, out, window", [
    (L.MaxPool2D(3, stride=2, padding=1), (4, 9, 8), (4, 5, 4), L.Window((3, 3), (2, 2), (1, 1))),
    (L.AvgPool2D((3, 2), stride=(2, 1)), (2, 7, 6), (2, 3, 5), L.Window((3, 2), (2, 1))),
    (L.Subsample2D((2, 3)), (2, 5, 7), (2, 3, 3), L.Window((1, 1), (2, 3))),
    (L.GlobalAvgPool2D(), (5, 3, 4), (5,), L.WHOLE_MAP),
    (L.GlobalAvgPool2D(keepdims=True), (5, 3, 4), (5, 1, 1), L.WHOLE_MAP),
    (L.BatchNorm2D(3), (3, 4, 4), (3, 4, 4), None),
    (L.GELU(), (7,), (7,), None),
    (L.Maxout(3), (6, 2, 2), (2, 2, 2), None),
])
def test_shapes_and_windows_by_hand(layer, shape, out, window):
    assert layer.output_shape(shape) == out and layer.window() == window


def test_global_pooling_is_one_window_over_the_whole_map():
    s = analyze(Sequential(L.Conv2D(1, 2, 3, padding=1), L.GlobalAvgPool2D()), (1, 6, 4))
    assert s.rf.size == (8, 6) and s.rf.jump == (6, 4)  # 3x3, then a (6, 4) window of stride (6, 4)


def test_a_layer_that_does_not_answer_is_refused_by_name():
    class HalveWidth(Layer):
        def forward(self, x):
            return x[:, :, :, ::2]

    with pytest.raises(ValueError, match=r"HalveWidth 1: expected a layer that answers output_shape\(\) and "
                                         r"window\(\)"):
        analyze(Sequential(L.Conv2D(1, 2, 3), HalveWidth()), (1, 8, 8))


def test_analysis_never_runs_a_layer():
    model = core.Sequential(L.Conv2D(3, 4, 3), L.BatchNorm2D(4), L.ReLU(), L.MaxPool2D(2), L.Maxout(2),
                            L.GlobalAvgPool2D(), L.Dropout(0.5), L.Linear(2, 3), L.Tanh())

    def refuse(x):
        raise AssertionError("forward was called")

    for m in model.modules():
        m.forward = refuse
    assert analyze(model, (3, 10, 10)).output_shape == (3,)
