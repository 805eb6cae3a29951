"""Export a minicnn model to an ONNX graph, so that a model trained here runs in ONNX Runtime (a phone,
a browser, a server) without minicnn.

    to_onnx(model, (C, H, W))       -> onnx.ModelProto     one node (or a few) per layer, eval semantics
    write_onnx(graph, path)         the file, written beside `path` and renamed onto it (never over an
                                    existing file unless overwrite=True, never onto a folder or a link)

The graph has one input, "input", float32 (N, C, H, W) with N dynamic (a named dimension "N"), and one
output, "output" (for a classifier the logits, (N, classes)). The input is what the model itself takes:
images already normalised as in training; a file's mean and std go into the graph's metadata
(`metadata_props`: "mean", "std", "class_names", "model", "config"), not into the graph.

How the export works: `minicnn.layers.walk` folds over the model's containers (Sequential, Residual,
Concat and the blocks built from them) and asks every leaf for its output shape; the visitor below turns
each leaf into ONNX nodes, threading the name of the tensor computed so far through the walk, and turns
each join into an Add (Residual) or a Concat. Weights are taken as the layer computes them: a DCT layer's
`spatial_weight()` (W = idct(M * C), so a compressed `.fr.npz` exports as an ordinary network), BatchNorm's
running statistics (eval mode: y = gamma (x - running_mean) / sqrt(running_var + eps) + beta). Dropout is
the identity in eval mode and is left out.

Layer by layer (opset 17):

    Conv2D, DepthwiseConv2D, PointwiseConv2D, DCTConv2D   Conv (group, strides, pads, dilations)
    ConvTranspose2D                                       ConvTranspose (output_padding as given)
    Linear, DCTLinear                                     Gemm (transB = 1: y = x W^T + b)
    BatchNorm1D, BatchNorm2D                              BatchNormalization (running statistics)
    ReLU, LeakyReLU, Sigmoid, Tanh                        Relu, LeakyRelu (alpha), Sigmoid, Tanh
    ReLU6, GELU                                           Clip(0, 6); x 0.5 (1 + Erf(x / sqrt 2))
    Maxout(k)                                             Reshape (N, C/k, k, ...) -> ReduceMax over k
    MaxPool2D, AvgPool2D, SumPool2D                       MaxPool, AveragePool (count_include_pad = 1,
                                                          minicnn's rule), AveragePool * KH KW
    GlobalAvgPool2D                                       GlobalAveragePool (+ Flatten unless keepdims)
    Subsample2D                                           Slice with steps (x[:, :, ::SH, ::SW])
    Flatten                                               Flatten (axis 1: row-major, as NumPy's reshape)
    ChannelSplit, ChannelShuffle                          Slice on channels; Reshape-Transpose-Reshape
    SliceDownsample (space-to-depth)                      Reshape-Transpose-Reshape in pixel_unshuffle
                                                          order (ONNX SpaceToDepth orders channels
                                                          block-first, minicnn channel-first)
    SliceUpsample (depth-to-space)                        DepthToSpace, mode "CRD" (pixel_shuffle order)
    Upsample                                              Resize: nearest (asymmetric, floor), bilinear
                                                          (linear, half_pixel), bicubic (cubic, a = -0.75)
    FrequencyBias                                         Add of idct(M * C) along the channel axis
    Residual, Concat                                      Add, Concat (axis 1)

Every other layer (LocallyConnected2D, SoftPool2D, StochasticPool2D, MixedPool2D, the Haar layers, a
subclass of any layer above, a layer of your own) is refused with an ExportError naming the layer: an
exact type match only, because a subclass may compute something else, and a wrong graph is worse than
none. `onnx` is an optional dependency (`pip install "minicnn[onnx]"`), imported only when exporting.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from minicnn import __version__
from minicnn.core import Layer
from minicnn.files import write_atomic
from minicnn.functional.upsample import CUBIC_A
from minicnn.layers import (
    GELU,
    AvgPool2D,
    BatchNorm1D,
    BatchNorm2D,
    ChannelShuffle,
    ChannelSplit,
    Conv2D,
    ConvTranspose2D,
    DCTConv2D,
    DCTConvTranspose2D,
    DCTLinear,
    DepthwiseConv2D,
    Dropout,
    Flatten,
    FrequencyBias,
    GlobalAvgPool2D,
    LeakyReLU,
    Linear,
    Maxout,
    MaxPool2D,
    PointwiseConv2D,
    ReLU,
    ReLU6,
    Sigmoid,
    SliceDownsample,
    SliceUpsample,
    Subsample2D,
    SumPool2D,
    Tanh,
    Upsample,
    Visitor,
    walk,
)

OPSET = 17  # ONNX operator set (onnx 1.12+, 2022); in it ReduceMax still takes `axes` as an attribute
MAX_IR_VERSION = 9  # file format version: that of onnx 1.14, read by ONNX Runtime 1.15 and later
INPUT_NAME, OUTPUT_NAME, BATCH_DIM = "input", "output", "N"
INSTALL_HINT = 'pip install "minicnn[onnx]"'
RESIZE_MODES = {  # minicnn Upsample mode -> Resize attributes giving the same numbers (PyTorch semantics)
    "nearest": {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
    "bilinear": {"mode": "linear", "coordinate_transformation_mode": "half_pixel"},
    "bicubic": {"mode": "cubic", "coordinate_transformation_mode": "half_pixel", "cubic_coeff_a": CUBIC_A},
}
RELU6_MAX = 6.0  # ReLU6: min(max(x, 0), 6)


class ExportError(ValueError):
    """The model holds a layer with no ONNX equivalent here; the message names the layer."""


class OnnxMissingError(ImportError):
    """The optional `onnx` package is not installed; the message says how to install it."""


def import_onnx():
    """The `onnx` module, or OnnxMissingError saying `pip install "minicnn[onnx]"`."""
    try:
        import onnx
    except ImportError as e:
        raise OnnxMissingError(f"exporting to ONNX needs the optional onnx package: {INSTALL_HINT}") from e
    return onnx


class _GraphBuilder(Visitor):
    """Collects nodes and weights while `walk` goes through the model; the walk's state is the name of
    the tensor the layer reads (the input of the graph at first), and each leaf returns the one it writes."""

    def __init__(self, onnx) -> None:
        self.onnx, self.helper = onnx, onnx.helper
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0

    # ---- small helpers ------------------------------------------------------------------------
    def _fresh(self, name: str, what: str) -> str:
        self._count += 1
        return f"{name or 'model'}/{what}_{self._count}"

    def constant(self, name: str, what: str, array: np.ndarray) -> str:
        """Store `array` as a weight of the graph; returns its tensor name."""
        tensor_name = self._fresh(name, what)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), tensor_name))
        return tensor_name

    def node(self, op: str, inputs: list[str], name: str, **attributes: Any) -> str:
        """Append one node with one output; returns the output's tensor name."""
        out = self._fresh(name, op.lower())
        self.nodes.append(self.helper.make_node(op, inputs, [out], name=out, **attributes))
        return out

    def reshape(self, x: str, name: str, shape: tuple[int, ...]) -> str:
        """Reshape to (N,) + shape; 0 in the target copies the batch size from the input."""
        return self.node("Reshape", [x, self.constant(name, "shape", np.array((0,) + tuple(shape), np.int64))], name)

    # ---- the walk -----------------------------------------------------------------------------
    def leaf(self, name: str, layer: Layer, in_shape, out_shape, x: str) -> str:
        emit = EMITTERS.get(type(layer))
        if emit is None:
            where = f"layer {name!r}" if name else "the model itself"
            raise ExportError(f"to_onnx: cannot export {where} ({type(layer).__name__}): no ONNX mapping for "
                              f"this layer type (the mapped ones are listed in minicnn.app.onnx)")
        return emit(self, name, layer, tuple(in_shape), tuple(out_shape), x)

    def join(self, name: str, label: str, in_shape, out_shape, states: list[str]) -> str:
        if label == "Concat":
            return self.node("Concat", states, name, axis=1)
        if label == "Residual (+)":
            body, shortcut = states  # y = F(x) + x, or F(x) + P(x)
            return self.node("Add", [body, shortcut], name)
        raise ExportError(f"to_onnx: cannot export {name!r}: no ONNX mapping for a join of kind {label!r}")


# ---- one emitter per layer type: (builder, layer name, layer, in shape, out shape, input) -> output ----

def _float32(array: np.ndarray) -> np.ndarray:
    return np.asarray(array, dtype=np.float32)


def _weight(layer: Layer) -> np.ndarray:
    """The spatial weight the layer computes with (a DCT layer: W = idct(M * C))."""
    frequency = isinstance(layer, (DCTConv2D, DCTConvTranspose2D, DCTLinear))
    return _float32(layer.spatial_weight() if frequency else layer.weight.data)


def _weight_and_bias(g: _GraphBuilder, name: str, layer: Layer) -> list[str]:
    inputs = [g.constant(name, "weight", _weight(layer))]
    if layer.bias is not None:
        inputs.append(g.constant(name, "bias", _float32(layer.bias.data)))
    return inputs


def _pads(padding: tuple[int, int]) -> list[int]:
    """ONNX pads are [begin_H, begin_W, end_H, end_W]; minicnn pads both sides alike."""
    return [padding[0], padding[1], padding[0], padding[1]]


def _conv(g: _GraphBuilder, name, layer: Conv2D, in_shape, out_shape, x: str) -> str:
    return g.node("Conv", [x, *_weight_and_bias(g, name, layer)], name, kernel_shape=list(layer.kernel_size),
                  strides=list(layer.stride), pads=_pads(layer.padding), dilations=list(layer.dilation),
                  group=layer.groups)


def _conv_transpose(g: _GraphBuilder, name, layer: ConvTranspose2D, in_shape, out_shape, x: str) -> str:
    return g.node("ConvTranspose", [x, *_weight_and_bias(g, name, layer)], name,
                  kernel_shape=list(layer.kernel_size), strides=list(layer.stride), pads=_pads(layer.padding),
                  dilations=list(layer.dilation), group=layer.groups, output_padding=list(layer.output_padding))


def _gemm(g: _GraphBuilder, name, layer: Linear, in_shape, out_shape, x: str) -> str:
    return g.node("Gemm", [x, *_weight_and_bias(g, name, layer)], name, transB=1)


def _batch_norm(g: _GraphBuilder, name, layer, in_shape, out_shape, x: str) -> str:
    arrays = (layer.weight.data, layer.bias.data, layer.running_mean, layer.running_var)
    inputs = [g.constant(name, what, _float32(a)) for what, a in zip(("gamma", "beta", "mean", "var"), arrays,
                                                                      strict=True)]
    return g.node("BatchNormalization", [x, *inputs], name, epsilon=float(layer.eps))


def _simple(op: str) -> Callable[..., str]:
    def emit(g: _GraphBuilder, name, layer, in_shape, out_shape, x: str) -> str:
        return g.node(op, [x], name)
    return emit


def _leaky_relu(g: _GraphBuilder, name, layer: LeakyReLU, in_shape, out_shape, x: str) -> str:
    return g.node("LeakyRelu", [x], name, alpha=float(layer.alpha))


def _relu6(g: _GraphBuilder, name, layer, in_shape, out_shape, x: str) -> str:
    low = g.constant(name, "min", np.array(0.0, np.float32))
    high = g.constant(name, "max", np.array(RELU6_MAX, np.float32))
    return g.node("Clip", [x, low, high], name)


def _gelu(g: _GraphBuilder, name, layer, in_shape, out_shape, x: str) -> str:
    """x * 0.5 * (1 + erf(x / sqrt(2))): Gelu itself is an operator only from opset 20."""
    scaled = g.node("Mul", [x, g.constant(name, "inv_sqrt2", np.array(1 / math.sqrt(2), np.float32))], name)
    one_plus = g.node("Add", [g.node("Erf", [scaled], name), g.constant(name, "one", np.array(1.0, np.float32))],
                      name)
    half_x = g.node("Mul", [x, g.constant(name, "half", np.array(0.5, np.float32))], name)
    return g.node("Mul", [half_x, one_plus], name)


def _maxout(g: _GraphBuilder, name, layer: Maxout, in_shape, out_shape, x: str) -> str:
    k = layer.pieces
    grouped = g.reshape(x, name, (in_shape[0] // k, k) + in_shape[1:])  # (N, C/k, k, ...)
    return g.node("ReduceMax", [grouped], name, axes=[2], keepdims=0)  # (N, C/k, ...)


def _pool_attributes(layer) -> dict[str, list[int]]:
    return {"kernel_shape": list(layer.kernel_size), "strides": list(layer.stride), "pads": _pads(layer.padding)}


def _max_pool(g: _GraphBuilder, name, layer: MaxPool2D, in_shape, out_shape, x: str) -> str:
    return g.node("MaxPool", [x], name, **_pool_attributes(layer))


def _avg_pool(g: _GraphBuilder, name, layer: AvgPool2D, in_shape, out_shape, x: str) -> str:
    return g.node("AveragePool", [x], name, count_include_pad=1, **_pool_attributes(layer))


def _sum_pool(g: _GraphBuilder, name, layer: SumPool2D, in_shape, out_shape, x: str) -> str:
    mean = _avg_pool(g, name, layer, in_shape, out_shape, x)
    window = np.array(layer.kernel_size[0] * layer.kernel_size[1], np.float32)
    return g.node("Mul", [mean, g.constant(name, "window", window)], name)


def _global_avg_pool(g: _GraphBuilder, name, layer: GlobalAvgPool2D, in_shape, out_shape, x: str) -> str:
    y = g.node("GlobalAveragePool", [x], name)  # (N, C, 1, 1)
    return y if layer.keepdims else g.node("Flatten", [y], name, axis=1)  # (N, C)


def _slice(g: _GraphBuilder, name, x: str, starts, ends, axes, steps) -> str:
    arrays = {"starts": starts, "ends": ends, "axes": axes, "steps": steps}
    return g.node("Slice", [x] + [g.constant(name, k, np.array(v, np.int64)) for k, v in arrays.items()], name)


def _subsample(g: _GraphBuilder, name, layer: Subsample2D, in_shape, out_shape, x: str) -> str:
    return _slice(g, name, x, [0, 0], in_shape[1:3], [2, 3], list(layer.stride))


def _flatten(g: _GraphBuilder, name, layer, in_shape, out_shape, x: str) -> str:
    return g.node("Flatten", [x], name, axis=1)


def _dropout(g: _GraphBuilder, name, layer, in_shape, out_shape, x: str) -> str:
    return x  # eval mode: the identity


def _channel_split(g: _GraphBuilder, name, layer: ChannelSplit, in_shape, out_shape, x: str) -> str:
    c = in_shape[0] // layer.parts
    return _slice(g, name, x, [layer.part * c], [(layer.part + 1) * c], [1], [1])


def _channel_shuffle(g: _GraphBuilder, name, layer: ChannelShuffle, in_shape, out_shape, x: str) -> str:
    c, h, w = in_shape
    groups = layer.groups
    y = g.reshape(x, name, (groups, c // groups, h, w))  # (N, G, C/G, H, W)
    y = g.node("Transpose", [y], name, perm=[0, 2, 1, 3, 4])  # (N, C/G, G, H, W)
    return g.reshape(y, name, (c, h, w))  # (N, C, H, W)


def _space_to_depth(g: _GraphBuilder, name, layer: SliceDownsample, in_shape, out_shape, x: str) -> str:
    c, h, w = in_shape
    r = layer.factor
    y = g.reshape(x, name, (c, h // r, r, w // r, r))  # (N, C, OH, i, OW, j)
    y = g.node("Transpose", [y], name, perm=[0, 1, 3, 5, 2, 4])  # (N, C, i, j, OH, OW)
    return g.reshape(y, name, out_shape)  # (N, C*r*r, OH, OW): channel c*r*r + i*r + j


def _depth_to_space(g: _GraphBuilder, name, layer: SliceUpsample, in_shape, out_shape, x: str) -> str:
    return g.node("DepthToSpace", [x], name, blocksize=layer.factor, mode="CRD")  # channel c*r*r + i*r + j


def _upsample(g: _GraphBuilder, name, layer: Upsample, in_shape, out_shape, x: str) -> str:
    scales = g.constant(name, "scales", np.array([1, 1, *layer.scale_factor], np.float32))
    return g.node("Resize", [x, "", scales], name, **RESIZE_MODES[layer.mode])


def _frequency_bias(g: _GraphBuilder, name, layer: FrequencyBias, in_shape, out_shape, x: str) -> str:
    bias = _float32(layer.spatial_weight()).reshape((layer.channels,) + (1,) * (len(in_shape) - 1))  # (C, 1, 1)
    return g.node("Add", [x, g.constant(name, "bias", bias)], name)


EMITTERS: dict[type, Callable[..., str]] = {
    Conv2D: _conv, DepthwiseConv2D: _conv, PointwiseConv2D: _conv, DCTConv2D: _conv,
    ConvTranspose2D: _conv_transpose, DCTConvTranspose2D: _conv_transpose, Linear: _gemm, DCTLinear: _gemm,
    BatchNorm1D: _batch_norm, BatchNorm2D: _batch_norm,
    ReLU: _simple("Relu"), Sigmoid: _simple("Sigmoid"), Tanh: _simple("Tanh"), LeakyReLU: _leaky_relu,
    ReLU6: _relu6, GELU: _gelu, Maxout: _maxout,
    MaxPool2D: _max_pool, AvgPool2D: _avg_pool, SumPool2D: _sum_pool, GlobalAvgPool2D: _global_avg_pool,
    Subsample2D: _subsample, Flatten: _flatten, Dropout: _dropout,
    ChannelSplit: _channel_split, ChannelShuffle: _channel_shuffle,
    SliceDownsample: _space_to_depth, SliceUpsample: _depth_to_space, Upsample: _upsample,
    FrequencyBias: _frequency_bias,
}


def to_onnx(model: Layer, input_shape: tuple[int, ...], metadata: dict[str, Any] | None = None,
            graph_name: str = "minicnn") -> Any:
    """The ONNX model (an `onnx.ModelProto`, opset OPSET, checked by `onnx.checker`) computing what
    `model` computes in eval mode, for inputs (N,) + `input_shape` (N dynamic).

    `metadata` entries go into `metadata_props` (values not strings are stored as JSON).
    Raises ExportError naming the first layer that has no ONNX mapping, ValueError when `input_shape`
    does not fit the model (from the layers' own shape checks), OnnxMissingError without `onnx`.
    """
    onnx = import_onnx()
    helper = onnx.helper
    shape = tuple(int(v) for v in input_shape)
    builder = _GraphBuilder(onnx)
    out_shape, last = walk(model, shape, builder, state=INPUT_NAME)
    builder.nodes.append(helper.make_node("Identity", [last], [OUTPUT_NAME], name=OUTPUT_NAME))
    graph = helper.make_graph(
        builder.nodes, graph_name,
        [helper.make_tensor_value_info(INPUT_NAME, onnx.TensorProto.FLOAT, [BATCH_DIM, *shape])],
        [helper.make_tensor_value_info(OUTPUT_NAME, onnx.TensorProto.FLOAT, [BATCH_DIM, *out_shape])],
        builder.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="minicnn", producer_version=__version__)
    proto.ir_version = min(proto.ir_version, MAX_IR_VERSION)
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def write_onnx(proto: Any, path: str | os.PathLike, overwrite: bool = False) -> int:
    """Write `proto` to `path` -> bytes written, by `minicnn.files.write_atomic` (a temporary file in the
    same folder, then linked (a new file) or renamed (overwrite) onto `path`, so a crash never leaves
    half a file under its name).

    Refuses (FileExistsError) an existing `path` unless `overwrite`, and (`minicnn.files.TargetError`, a
    ValueError) a folder, device, FIFO or symbolic link, whatever `overwrite` says.
    """
    data = proto.SerializeToString()
    write_atomic(path, lambda tmp: Path(tmp).write_bytes(data), overwrite=overwrite)
    return len(data)
