"""The shared argument checks and output-size formulas of `minicnn.functional.checks` and
`minicnn.functional.conv`: one `positive_int`, one `conv_output_size`, one `transpose_output_size`."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicnn import layers as L
from minicnn.functional import conv_output_size, positive_int
from minicnn.functional.conv import (
    check_conv_args,
    conv_transpose2d,
    conv_transpose2d_backward,
    transpose_output_size,
)
from minicnn.functional.slicing import space_to_depth


@pytest.mark.parametrize("value", [0, -3, 2.0, True, "2", None, (2,)])
def test_positive_int_refuses_by_name(value):
    with pytest.raises(ValueError, match=re.escape(f"myfn: expected count as an int >= 1, got {value!r}")):
        positive_int(value, "myfn", "count")


def test_positive_int_accepts_numpy_ints_and_returns_a_python_int():
    assert positive_int(np.int64(3), "f", "n") == 3 and type(positive_int(np.int64(3), "f", "n")) is int


@pytest.mark.parametrize("call, message", [
    (lambda: check_conv_args(np.zeros((1, 2, 5, 5)), np.zeros((2, 2, 3, 3)), None, 1, 0, 1, 0, "conv2d"),
     "conv2d: expected groups as an int >= 1, got 0"),
    (lambda: space_to_depth(np.zeros((1, 1, 4, 4)), 1.5), "space_to_depth: expected factor as an int >= 1, got 1.5"),
    (lambda: L.Maxout(0), "Maxout: expected pieces as an int >= 1, got 0"),
    (lambda: L.Maxout(2.0), "Maxout: expected pieces as an int >= 1, got 2.0"),
    (lambda: L.Conv2D(3, True, 3), "Conv2D: expected out_channels as an int >= 1, got True"),
    (lambda: L.ChannelShuffle(0), "ChannelShuffle: expected groups as an int >= 1, got 0"),
])
def test_every_int_check_is_the_one_positive_int(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 12), kernel=st.integers(1, 5), stride=st.integers(1, 4), dilation=st.integers(1, 3),
       data=st.data())
def test_transpose_output_size_inverts_conv_output_size(size, kernel, stride, dilation, data):
    """The transposed convolution restores the convolution's input length: every output_padding < stride
    gives a length that a convolution maps back to `size`."""
    padding = data.draw(st.integers(0, dilation * (kernel - 1) // 2))
    output_padding = data.draw(st.integers(0, stride - 1))
    out = transpose_output_size(size, kernel, stride, padding, dilation, output_padding)
    assert out >= 1 and conv_output_size(out, kernel, stride, padding, dilation) == size


def test_transpose_layer_function_and_formula_agree(rng):
    layer = L.ConvTranspose2D(2, 3, (3, 2), stride=(2, 3), padding=(1, 0), output_padding=(1, 2), dilation=(1, 2))
    x = rng.standard_normal((2, 2, 4, 5)).astype(np.float32)
    expected = (3, transpose_output_size(4, 3, 2, 1, 1, 1), transpose_output_size(5, 2, 3, 0, 2, 2))
    assert layer(x).shape[1:] == layer.output_shape((2, 4, 5)) == expected == (3, 8, 17)


def test_transpose_backward_checks_dy_against_output_padding(rng):
    w = rng.standard_normal((4, 3, 3, 3))
    x = rng.standard_normal((2, 4, 5, 5))
    y = conv_transpose2d(x, w, None, 2, 1, output_padding=1)  # (2, 3, 10, 10); output_padding 0 gives 9x9
    dy = rng.standard_normal(y.shape)
    dx, dw, db = conv_transpose2d_backward(dy, x, w, 2, 1, output_padding=1)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == (3,)
    with pytest.raises(ValueError, match=r"conv_transpose2d: expected upstream gradient dy of shape "
                                         r"\(2, 3, 9, 9\) \(the output\), got shape \(2, 3, 10, 10\)"):
        conv_transpose2d_backward(dy, x, w, 2, 1, output_padding=0)
    layer = L.ConvTranspose2D(4, 3, 3, stride=2, padding=1).to(np.float64)
    layer(x)
    with pytest.raises(ValueError, match=r"ConvTranspose2D: expected upstream gradient dy of shape \(2, 3, 9, 9\)"):
        layer.backward(dy)
