"""Fast paths of the speed work against their plain versions: the fast convolution's ConvWorkspace
(`minicnn.kernels.conv`, against the plain direct loops of `minicnn.functional.conv`). ReLU's mask:
test_kernels_activations.py."""

import numpy as np
import pytest

from minicnn import layers as L
from minicnn import runtime
from minicnn.functional.conv import conv2d as plain_conv2d
from minicnn.functional.conv import conv2d_backward as plain_conv2d_backward
from minicnn.kernels.conv import conv2d, conv2d_backward
from minicnn.kernels.workspace import ConvWorkspace, as_workspace


def _case(seed=2):
    g = np.random.default_rng(seed)
    x, w = g.standard_normal((3, 2, 9, 9)), g.standard_normal((4, 2, 3, 3))
    return x, w, g.standard_normal((3, 4, 9, 9))


def test_fft_keeps_the_input_spectrum_for_backward_and_only_for_that_input():
    x, w, dy = _case()
    ws = ConvWorkspace()
    y = conv2d(x, w, None, 1, 1, method="fft", workspace=ws)
    assert ws.spectrum_of(x) is not None and ws.nbytes == ws.spectrum.nbytes > 0
    assert ws.spectrum_of(x.copy()) is None  # identity, not equality: never stale data
    want = plain_conv2d_backward(dy, x, w, 1, 1, method="direct")
    np.testing.assert_allclose(y, plain_conv2d(x, w, None, 1, 1, method="direct"), atol=1e-10)
    for got, ref in zip(conv2d_backward(dy, x, w, 1, 1, method="fft", workspace=ws), want, strict=True):
        np.testing.assert_allclose(got, ref, atol=1e-10)
    ws.release()
    assert ws.nbytes == 0 and ws.spectrum_of(x) is None


def test_im2col_keeps_nothing_between_calls():
    x, w, dy = _case(3)
    ws = ConvWorkspace()
    conv2d(x, w, None, 1, 1, workspace=ws)
    conv2d_backward(dy, x, w, 1, 1, workspace=ws)
    assert ws.nbytes == 0 and ws.source is None


def test_a_workspace_must_be_a_conv_workspace():
    x, w, _ = _case(4)
    ws = ConvWorkspace()
    conv2d(x, w, None, 1, 1, method="fft", workspace=ws)
    assert as_workspace(ws) is ws and ws.spectrum_of(x) is not None  # fft keeps F(x) for its backward
    for wrong in ({}, [1]):
        with pytest.raises(ValueError, match="ConvWorkspace"):
            conv2d(x, w, None, 1, 1, method="fft", workspace=wrong)


def test_a_layer_keeps_its_workspace_only_until_release(monkeypatch):
    monkeypatch.setattr(runtime, "_kernels", True)  # the fast path keeps F(x); the plain math keeps nothing
    layer = L.Conv2D(2, 3, 3, padding=1, method="fft").to(np.float64)
    x = np.random.default_rng(0).standard_normal((2, 2, 6, 6))
    y = layer(x)
    assert layer._workspace.nbytes > 0  # the fft method left F(x) for backward
    layer.release()
    assert "_workspace" not in layer.__dict__ and "_cache" not in layer.__dict__
    with pytest.raises(AttributeError, match="forward"):  # backward after release needs a forward first
        layer.backward(np.ones_like(y))
    layer(x)
    assert layer.backward(np.ones_like(y)).shape == x.shape
