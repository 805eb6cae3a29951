"""The shape-and-cost protocol: what a layer says about itself without being run.

Shapes here are per example (no batch axis): (C, H, W) for maps, (features,) for vectors.
A layer class answers, for one input shape:

    output_shape(input_shape) -> Shape      its output shape; ValueError naming the layer, the expected
                                            and the received shape when the input does not fit
    cost(input_shape) -> Cost               multiply-adds and multiplicative weights (see `Cost`), and
                                            the category it counts under ("Conv 3x3", "Fully connected")
    window() -> Window | ALL | WHOLE_MAP | UNKNOWN | None
                                            how one output position sees the input (receptive fields):
                                            a sliding `Window`; ALL (every output sees the whole input:
                                            Flatten, Linear); WHOLE_MAP (one window as large as the
                                            input map: global pooling); UNKNOWN; None = position by
                                            position

The containers are walked instead (`minicnn.layers.walk`): `Sequential` (and its subclasses, and any
layer with `runs_children_in_order = True`, e.g. SeparableConv2D) runs its children one after the
other; `Residual` adds two branches, `Concat` stacks branches on channels.

Every other layer answers output_shape and window; cost is optional (a layer without it costs zero:
pooling, activations, normalisation). Nothing is ever run to learn a shape: `walk` refuses, by name,
a layer that does not answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from minicnn.core import Layer
from minicnn.functional.checks import conv_output_size

Shape = tuple[int, ...]
Pair = tuple[int, int]

ALL = "all"          # window(): every output sees the whole input
UNKNOWN = "unknown"  # window(): the geometry is not a sliding window (e.g. upsampling)
WHOLE_MAP = "whole map"  # window(): one window of the input's (H, W), stride (H, W) (global pooling)


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


def expect_map(shape: Shape, channels: int | None, who: str) -> None:
    """`shape` must be (channels, H, W) (any number of channels when `channels` is None)."""
    if len(shape) != 3 or channels not in (None, shape[0]):
        raise ValueError(f"{who}: expected input ({'C' if channels is None else channels}, H, W), "
                         f"got {tuple(shape)}")


def window_output_shape(window: Window, shape: Shape, channels: int, who: str) -> Shape:
    """(channels, OH, OW) of a sliding window over a (C, H, W) input, OH by `conv_output_size`."""
    kernel, stride, padding, dilation = window
    return (channels,) + tuple(conv_output_size(shape[1 + a], kernel[a], stride[a], padding[a], dilation[a], who=who)
                               for a in range(2))


# ---- one leaf, as `walk` and `minicnn.analysis` ask it ------------------------------------------------


def answers(layer: Layer) -> bool:
    """True when `layer` answers the protocol itself (output_shape and window)."""
    return hasattr(layer, "output_shape") and hasattr(layer, "window")


def leaf_cost(layer: Layer, shape: Shape) -> Cost:
    """The layer's `cost(shape)`, or zero for a layer that does not say."""
    return layer.cost(tuple(shape)) if hasattr(layer, "cost") else Cost()


def leaf_window(layer: Layer, in_shape: Shape) -> Window | str | None:
    """The layer's `window()` for an input of `in_shape`: WHOLE_MAP becomes Window((H, W), (H, W))."""
    window = layer.window()
    if window == WHOLE_MAP:
        return Window(tuple(in_shape[1:]), tuple(in_shape[1:]))
    return window
