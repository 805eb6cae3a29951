"""The convolution kernels' entry points: the signatures of `minicnn.functional.conv`, the fast algorithms.

    conv2d / conv2d_backward                  method "im2col" -> `minicnn.kernels.conv_im2col` (blocked, and
                                              from there the depthwise and channels-last rows kernels),
                                              "fft" -> `minicnn.kernels.conv_fft` (keeps F(x) in a workspace),
                                              "direct" -> the plain reference loops (there is no fast twin)
    conv2d_input_grad                         dx alone, the lecture's flipped-kernel form, blocked
    conv_transpose2d / conv_transpose2d_backward

Arguments are checked by the plain module's own checks, so both paths refuse the same inputs with the
same messages. Extra keyword-only parameters: `workspace` (a layer's ConvWorkspace) and `input_grad`
(False: backward skips dx, returning None in its place).
"""

from __future__ import annotations

import numpy as np

from minicnn.functional import conv as plain
from minicnn.functional.checks import positive_pair
from minicnn.functional.conv_direct import conv2d_direct, conv2d_direct_backward

from .conv_fft import conv2d_fft, conv2d_fft_backward
from .conv_im2col import conv2d_im2col, conv2d_im2col_backward, conv2d_input_grad_flipped
from .workspace import ConvWorkspace, as_workspace


def conv2d(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride=1, padding=0, dilation=1, groups: int = 1,
    method: str = "im2col", *, who: str = "conv2d", workspace: ConvWorkspace | None = None,
) -> np.ndarray:
    """Fast twin of `minicnn.functional.conv.conv2d`: y (N, T, OH, OW), the same numbers, fast.

    `workspace`: the layer's ConvWorkspace, where "fft" keeps F(x) for backward."""
    stride, padding, dilation, groups, _ = plain.check_conv_args(x, w, b, stride, padding, dilation, groups, who)
    plain.check_method(method, who)
    workspace = as_workspace(workspace)
    w = w.astype(x.dtype, copy=False)
    b = None if b is None else b.astype(x.dtype, copy=False)
    if method == "fft":
        return conv2d_fft(x, w, b, stride, padding, dilation, groups, workspace=workspace)
    if method == "im2col":
        return conv2d_im2col(x, w, b, stride, padding, dilation, groups)
    return conv2d_direct(x, w, b, stride, padding, dilation, groups)


def conv2d_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride=1, padding=0, dilation=1, groups: int = 1,
    method: str = "im2col", *, who: str = "conv2d", workspace: ConvWorkspace | None = None,
    input_grad: bool = True,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Fast twin of `minicnn.functional.conv.conv2d_backward`: (dx, dw, db); never modifies dy.

    `input_grad=False` skips dx and returns None in its place (a network's first layer has no use for
    dL/dimage, and dx is the costliest part); `workspace`: F(x) from the forward pass ("fft")."""
    stride, padding, dilation, groups, out = plain.check_conv_args(x, w, None, stride, padding, dilation, groups, who)
    plain.check_dy(dy, x, w, out, who)
    plain.check_method(method, who)
    workspace = as_workspace(workspace)
    w = w.astype(x.dtype, copy=False)
    if method == "im2col":
        return conv2d_im2col_backward(dy, x, w, stride, padding, dilation, groups, input_grad=input_grad)
    if method == "fft":
        dx, dw, db = conv2d_fft_backward(dy, x, w, stride, padding, dilation, groups, workspace=workspace)
    else:
        dx, dw, db = conv2d_direct_backward(dy, x, w, stride, padding, dilation, groups)
    return (dx if input_grad else None), dw, db


def conv2d_input_grad(dy: np.ndarray, input_shape: tuple[int, int, int, int], w: np.ndarray, stride=1, padding=0,
                      dilation=1, groups: int = 1, method: str = "im2col") -> np.ndarray:
    """Fast twin of `minicnn.functional.conv.conv2d_input_grad`: dx alone, pad/dilate dy, then correlate
    with flip_kernel(w), by the blocked im2col kernel ("im2col") or the fast `conv2d` of `method`."""
    stride, dilation = positive_pair(stride, "conv2d", "stride"), positive_pair(dilation, "conv2d", "dilation")
    padding = plain.resolve_padding(padding, w.shape[2:], dilation, stride)
    if method == "im2col":
        return conv2d_input_grad_flipped(dy, input_shape, w, stride, padding, dilation, groups)
    pads = plain.full_correlation_pads(input_shape, w.shape[2:], stride, padding, dilation, dy.shape[2:])
    return conv2d(plain.dilate_and_pad(dy, stride, pads), plain.flip_kernel(w, groups), None, 1, 0, dilation, groups,
                  method)


def conv_transpose2d(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride=1, padding=0, output_padding=0,
    dilation=1, groups: int = 1, method: str = "im2col", who: str = "conv_transpose2d",
) -> np.ndarray:
    """Fast twin of `minicnn.functional.conv.conv_transpose2d`: y = W^T x by the fast `conv2d_input_grad`."""
    stride, padding, dilation, groups, y_shape = plain.check_transpose_args(
        x, w, b, stride, padding, output_padding, dilation, groups, who)
    y = conv2d_input_grad(x, y_shape, w.astype(x.dtype, copy=False), stride, padding, dilation, groups, method)
    if b is not None:
        y += b.astype(x.dtype, copy=False).reshape(1, y_shape[1], 1, 1)
    return y


def conv_transpose2d_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride=1, padding=0, output_padding=0, dilation=1,
    groups: int = 1, method: str = "im2col", who: str = "conv_transpose2d",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fast twin of `minicnn.functional.conv.conv_transpose2d_backward`: dx = conv2d(dy, w), dw = the conv
    weight gradient with the roles swapped, db = dy summed, each by the fast kernels."""
    stride, padding, dilation, groups, y_shape = plain.check_transpose_args(
        x, w, None, stride, padding, output_padding, dilation, groups, who)
    plain.check_transpose_dy(dy, y_shape, who)
    w = w.astype(dy.dtype, copy=False)
    dx = conv2d(dy, w, None, stride, padding, dilation, groups, method, who=who)
    _, dw, _ = conv2d_backward(x, dy, w, stride, padding, dilation, groups, method, who=who, input_grad=False)
    return dx, dw, dy.sum(axis=(0, 2, 3))
