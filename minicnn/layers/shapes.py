"""The shape-and-cost protocol: what a layer says about itself without being run.

Shapes here are per example (no batch axis): (C, H, W) for maps, (features,) for vectors.
A layer class answers, for one input shape:

    output_shape(input_shape) -> Shape      its output shape; ValueError naming the layer, the expected
                                            and the received shape when the input does not fit
    cost(input_shape) -> Cost               multiply-adds and multiplicative weights (see `Cost`), and
                                            the category it counts under ("Conv 3x3", "Fully connected")
    window() -> Window | ALL | UNKNOWN | None
                                            how one output position sees the input (receptive fields):
                                            a sliding `Window`; ALL (every output sees the whole input:
                                            Flatten, Linear); UNKNOWN; None = position by position

The containers are walked instead (`minicnn.layers.walk`): `Sequential` (and its subclasses, and any
layer with `runs_children_in_order = True`, e.g. SeparableConv2D) runs its children one after the
other; `Residual` adds two branches, `Concat` stacks branches on channels.

A layer that does not (yet) answer is still handled, by a documented fallback (cost zero):
- with `kernel_size` and `stride` attributes (pairs; `padding` and `dilation` too if not 0 / 1) it is
  a sliding window over each channel, like pooling: the window gives its output shape and field;
- otherwise its output shape comes from ONE forward pass of a zero batch of one in eval mode, and its
  field is "the whole input" when it removes the spatial axes (global pooling), position by position
  when it keeps the spatial size, else UNKNOWN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from minicnn.core import Layer
from minicnn.functional.checks import conv_output_size

Shape = tuple[int, ...]
Pair = tuple[int, int]

ALL = "all"          # window(): every output sees the whole input
UNKNOWN = "unknown"  # window(): the geometry is not a sliding window (e.g. upsampling)


@dataclass(frozen=True)
class Cost:
    """What one example costs in a layer, by the MobileNet / ShuffleNet papers' convention: `macs`
    multiply-accumulates of the multiplicative weights only (no bias, BatchNorm, activation, pooling,
    addition), `weights` the multiplicative weight count (no biases), `kind` the breakdown category
    ("" for a layer that is not counted: pooling, activations, normalisation...)."""

    macs: int = 0
    weights: int = 0
    kind: str = ""


class Window(NamedTuple):
    """A sliding window per axis (H, W): kernel size, stride, zeros padded before position 0, dilation."""

    kernel: Pair
    stride: Pair
    padding: Pair = (0, 0)
    dilation: Pair = (1, 1)


def expect_map(shape: Shape, channels: int, who: str) -> None:
    """`shape` must be (channels, H, W)."""
    if len(shape) != 3 or shape[0] != channels:
        raise ValueError(f"{who}: expected input ({channels}, H, W), got {tuple(shape)}")


# ---- one leaf: the protocol, or the fallback -------------------------------------------------------


def _run_zeros(layer: Layer, shape: Shape) -> Shape:
    """Forward a batch of one zero input in eval mode; every module's training flag is restored."""
    modes = [(m, m.training) for m in layer.modules()]
    try:
        layer.eval()
        y = layer.forward(np.zeros((1,) + tuple(shape), dtype=np.float32))
    finally:
        for m, mode in modes:
            object.__setattr__(m, "training", mode)  # each module's own flag (train() would recurse)
    return tuple(y.shape[1:])


def window_output_shape(window: Window, shape: Shape, channels: int, who: str) -> Shape:
    """(channels, OH, OW) of a sliding window over a (C, H, W) input, OH by `conv_output_size`."""
    kernel, stride, padding, dilation = window
    return (channels,) + tuple(conv_output_size(shape[1 + a], kernel[a], stride[a], padding[a], dilation[a], who=who)
                               for a in range(2))


def _attribute_window(layer: Layer) -> Window | None:
    """A Window from the layer's kernel_size / stride / padding / dilation attributes, if it has them."""
    if not (hasattr(layer, "kernel_size") and hasattr(layer, "stride")):
        return None
    return Window(tuple(layer.kernel_size), tuple(layer.stride), tuple(getattr(layer, "padding", (0, 0))),
                  tuple(getattr(layer, "dilation", (1, 1))))


def leaf_output_shape(layer: Layer, shape: Shape) -> Shape:
    """The output shape of one (non-container) layer: its `output_shape`, else the fallback."""
    if hasattr(layer, "output_shape"):
        return tuple(layer.output_shape(tuple(shape)))
    window = _attribute_window(layer)
    if window is not None and len(shape) == 3:
        return window_output_shape(window, shape, shape[0], type(layer).__name__)
    return _run_zeros(layer, shape)


def leaf_cost(layer: Layer, shape: Shape) -> Cost:
    """The layer's `cost(shape)`, or zero for a layer that does not say."""
    return layer.cost(tuple(shape)) if hasattr(layer, "cost") else Cost()


def leaf_window(layer: Layer, in_shape: Shape, out_shape: Shape) -> Window | str | None:
    """The layer's `window()`, else the fallback of the module docstring."""
    if hasattr(layer, "window"):
        return layer.window()
    window = _attribute_window(layer)
    if window is not None:
        return window
    if len(in_shape) == 3 and (len(out_shape) == 1 or tuple(out_shape[1:]) == (1, 1)):
        return Window(tuple(in_shape[1:]), tuple(in_shape[1:]))  # global pooling: one window, the whole map
    return None if tuple(in_shape[1:]) == tuple(out_shape[1:]) else UNKNOWN
