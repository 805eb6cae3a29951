"""Issue 13.9 probes for the layer abstraction: backward before forward, release(), Parameter.data
assignments keeping .grad in step."""

from __future__ import annotations

import numpy as np
import pytest

from minicnn import core
from minicnn.core import Layer, NotReadyError, Parameter, Sequential
from minicnn.gradcheck_cases import CASES
from minicnn.layers import BatchNorm2D, Conv2D, Linear, MaxPool2D, ReLU


def _build(name: str):
    core.manual_seed(0)
    return CASES[name](np.random.default_rng(0))


@pytest.mark.parametrize("name", sorted(CASES))
def test_backward_before_forward_is_a_clear_error_or_needs_no_cache(name):
    """Every registered layer: backward on a fresh layer either raises NotReadyError naming a layer
    class inside it, or (layers whose backward needs nothing from forward, e.g. ChannelShuffle) gives
    exactly what it gives after a forward."""
    layer, x = _build(name)
    dy = np.random.default_rng(1).standard_normal(layer.forward(x.copy()).shape)
    layer.zero_grad()
    expected_dx = layer.backward(dy.copy())
    expected_grads = [p.grad.copy() for p in layer.parameters()]
    fresh, _ = _build(name)
    classes = {type(m).__name__ for m in fresh.modules()}
    try:
        dx = fresh.backward(dy.copy())
    except NotReadyError as e:
        message = str(e)
        assert message.split(":")[0] in classes and "call forward before backward" in message
    else:
        assert np.array_equal(dx, expected_dx)
        assert all(np.array_equal(p.grad, g) for p, g in zip(fresh.parameters(), expected_grads, strict=True))


def test_not_ready_error_is_an_attribute_error_so_hasattr_still_works():
    lin = Linear(2, 3)
    assert not hasattr(lin, "_cache")
    assert getattr(lin, "_cache", None) is None
    with pytest.raises(AttributeError, match="'Linear' object has no attribute 'weights'"):
        lin.weights  # noqa: B018 - a public typo keeps Python's own message


@pytest.mark.parametrize("make, shape", [
    (lambda: Linear(4, 3), (2, 4)),
    (lambda: Conv2D(2, 3, 3, padding=1), (2, 2, 5, 5)),
    (lambda: BatchNorm2D(2), (3, 2, 4, 4)),
    (lambda: MaxPool2D(2), (2, 2, 4, 4)),
    (lambda: Sequential(Conv2D(2, 3, 3), ReLU(), Sequential(Conv2D(3, 2, 1))), (2, 2, 5, 5)),
])
def test_release_drops_the_cache_and_forward_rebuilds_it(make, shape, rng):
    layer = make()
    x = rng.standard_normal(shape).astype(np.float32)
    y = layer.forward(x)
    dy = np.ones_like(y)
    dx = layer.backward(dy)
    assert any("_cache" in m.__dict__ for m in layer.modules())  # the probe needs a layer caching under _cache
    assert layer.release() is layer
    assert not any("_cache" in m.__dict__ for m in layer.modules())
    with pytest.raises(NotReadyError, match="call forward before backward"):
        layer.backward(dy)
    assert np.array_equal(layer.forward(x), y)
    layer.zero_grad()
    assert np.allclose(layer.backward(dy), dx)


def test_release_follows_each_class_transient_names():
    class Scratchy(Layer):
        TRANSIENT = Layer.TRANSIENT + ("_workspace", "_x")

        def __init__(self):
            super().__init__()
            self._workspace = {}
            self.scale = 2.0

        def forward(self, x):
            self._workspace["buf"] = np.empty(1000)
            self._x = x  # cache: x
            return x * self.scale

        def backward(self, dy):
            return dy * self.scale + 0 * self._x

    inner = Scratchy()
    net = Sequential(inner, Sequential(Scratchy()))
    net.forward(np.ones(3))
    workspace = inner._workspace
    net.release()
    for m in net.modules():
        if isinstance(m, Scratchy):
            assert m._workspace == {} and "_x" not in m.__dict__ and m.scale == 2.0
    assert inner._workspace is workspace  # emptied in place: whoever holds it sees it empty
    with pytest.raises(NotReadyError, match="Scratchy: '_x' is not set"):
        net.backward(np.ones(3))


def test_parameter_data_assignment_keeps_grad_in_step():
    p = Parameter(np.ones((2, 3), np.float32))
    p.grad[...] = 0.5
    p.data = np.zeros((2, 3), np.float64)  # another dtype: grad converted, values kept
    assert p.grad.dtype == np.float64 and np.all(p.grad == 0.5)
    p.data = np.zeros((4,), np.float64)  # another shape: a fresh zero gradient
    assert p.grad.shape == (4,) and p.grad.dtype == np.float64 and not p.grad.any()
    p.data = np.arange(3)  # integers become the default float dtype, as in the constructor
    assert p.data.dtype == core.DEFAULT_DTYPE and p.grad.dtype == core.DEFAULT_DTYPE


def test_float64_work_after_assigning_data_accumulates_in_float64(rng):
    """The issue's case: weights replaced by float64 arrays; backward must not round into float32."""
    lin = Linear(3, 2)
    lin.weight.data = lin.weight.data.astype(np.float64)
    lin.bias.data = lin.bias.data.astype(np.float64)
    x = rng.standard_normal((4, 3))
    lin.forward(x)
    lin.backward(np.full((4, 2), 1.0 + 1e-12))
    assert lin.weight.grad.dtype == np.float64
    np.testing.assert_allclose(lin.weight.grad, (np.full((4, 2), 1.0 + 1e-12).T @ x), rtol=1e-15)
