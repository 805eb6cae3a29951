"""2-D convolution: the public entry points, argument checks, and the lecture's matrix view.

The lecture's tied-weight layer (delta = half the kernel width, U the input maps, V the output maps)

    V(x, y, t) = sum_{i=x-d}^{x+d} sum_{j=y-d}^{y+d} sum_{s=1}^{S} K(i - x + d, j - y + d, s, t) U(i, j, s)

is, in NCHW code with x = U, w = K, y = V (a cross-correlation, as in every deep-learning library),

    y[n, t, oh, ow] = b[t] + sum_{s, i, j} w[t, s, i, j] * x_pad[n, s, oh*sh + i*dil_h, ow*sw + j*dil_w]

    x (N, C, H, W), w (T, C/groups, KH, KW), b (T,)  ->  y (N, T, OH, OW)
    OH = floor((H + 2 ph - dil_h (KH - 1) - 1) / sh) + 1      (and OW alike; `conv_output_size`)

Stride s computes every s-th output only; padding adds zeros around the input ("valid" = none,
"same" = enough for OH = H at stride 1); dilation spaces the kernel taps; groups splits the channels
into independent convolutions (groups = C is depthwise).

Backward (`conv2d_backward`), the multiplicative layer's rules with tied weights:
    dx: dz/dx = W^T dz/dy — a full correlation of dy with the flipped, channel-swapped kernel
        K_back(i, j, t, s) = K(2d+1-i, 2d+1-j, s, t)   (`flip_kernel`)
    dw: dz/dK(m, n, s, t) = sum_{k,l} dz/dy(k, l, t) x(k - m, l - n, s) — a correlation of x with dy
    db: sum of dy over N, OH, OW

Three algorithms with one signature, chosen by `method`:
    "direct"  loops as the equation reads (`conv_direct`, the slow reference)
    "im2col"  unfold patches + one matrix multiply (`conv_im2col`, the default)
    "fft"     F^-1(F(x) . F(w)) with real FFTs (`conv_fft`, wins for large kernels)
These are the plain, whole-batch versions. The layers train on their fast twins in
`minicnn.kernels.conv` (the same signatures, the same numbers), unless `minicnn.runtime.plain()`.
"""

from __future__ import annotations

import numpy as np

from .checks import check_array, conv_output_size, pair, positive_int, positive_pair
from .conv_direct import conv2d_direct, conv2d_direct_backward
from .conv_fft import conv2d_fft, conv2d_fft_backward
from .conv_im2col import (
    col2im,
    conv2d_im2col,
    conv2d_im2col_backward,
    conv2d_input_grad_flipped,
    dilate_and_pad,
    flip_kernel,
    full_correlation_pads,
    im2col,
)

Pair = tuple[int, int]

METHODS = {
    "direct": (conv2d_direct, conv2d_direct_backward),
    "im2col": (conv2d_im2col, conv2d_im2col_backward),
    "fft": (conv2d_fft, conv2d_fft_backward),
}

__all__ = [
    "METHODS", "col2im", "conv2d", "conv2d_backward", "conv_as_matrix", "conv_transpose2d",
    "conv_transpose2d_backward", "flip_kernel", "im2col", "resolve_padding", "check_conv_args",
    "check_method", "check_transpose_args", "check_transpose_dy", "check_dy", "conv2d_input_grad",
    "transpose_output_size",
]


def resolve_padding(padding, kernel_size: Pair, dilation: Pair = (1, 1), stride: Pair = (1, 1),
                    who: str = "conv2d") -> Pair:
    """`"valid"` -> (0, 0); `"same"` -> (dil_h (KH-1) / 2, dil_w (KW-1) / 2) so that OH = H (stride 1 only,
    odd dilated kernel extent, so the zeros split evenly); an int or a pair of ints >= 0 -> a pair."""
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"{who}: padding='same' needs stride 1, got stride {stride}")
            extents = [d * (k - 1) for k, d in zip(kernel_size, dilation, strict=True)]
            if any(e % 2 for e in extents):
                raise ValueError(
                    f"{who}: padding='same' needs an odd dilated kernel extent (symmetric zeros), got kernel "
                    f"{kernel_size} with dilation {dilation}")
            return extents[0] // 2, extents[1] // 2
        raise ValueError(f"{who}: expected padding 'valid', 'same', an int or a pair, got {padding!r}")
    ph, pw = pair(padding, who, "padding")
    if ph < 0 or pw < 0:
        raise ValueError(f"{who}: expected padding >= 0, got {padding!r}")
    return ph, pw


def check_conv_args(x, w, b, stride, padding, dilation, groups, who: str = "conv2d"):
    """Validate a convolution call and resolve its hyper-parameters to pairs.

    Returns (stride, padding, dilation, groups, (OH, OW)). Raises ValueError naming `who`, what was
    expected and what was received: non-4-D input, channel mismatch, groups not dividing the channels,
    stride or dilation < 1, kernel (dilated) larger than the padded input, bias of the wrong shape.
    """
    check_array(x, who, 4, "(N, C, H, W)")
    if not isinstance(w, np.ndarray) or w.ndim != 4:
        raise ValueError(f"{who}: expected a 4-D weight (T, C/groups, KH, KW), got shape {np.shape(w)}")
    groups = positive_int(groups, who, "groups")
    t, cg, kh, kw = w.shape
    c = x.shape[1]
    if c % groups or t % groups:
        raise ValueError(
            f"{who}: groups={groups} must divide the input channels and the output channels; got input shape "
            f"{x.shape} and weight shape {w.shape}")
    if c != cg * groups:
        raise ValueError(
            f"{who}: expected input (N, {cg * groups}, H, W) for weight {w.shape} with groups={groups}, "
            f"got shape {x.shape}")
    if b is not None and (not isinstance(b, np.ndarray) or b.shape != (t,)):
        raise ValueError(f"{who}: expected bias of shape ({t},), got shape {np.shape(b)}")
    stride = positive_pair(stride, who, "stride")
    dilation = positive_pair(dilation, who, "dilation")
    padding = resolve_padding(padding, (kh, kw), dilation, stride, who)
    ext = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    padded = (x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1])
    if ext[0] > padded[0] or ext[1] > padded[1]:
        raise ValueError(
            f"{who}: expected a padded input of at least {ext[0]}x{ext[1]} for kernel {kh}x{kw} with dilation "
            f"{dilation}, got input shape {x.shape} with padding {padding} ({padded[0]}x{padded[1]})")
    out = (conv_output_size(x.shape[2], kh, stride[0], padding[0], dilation[0], who=who),
           conv_output_size(x.shape[3], kw, stride[1], padding[1], dilation[1], who=who))
    return stride, padding, dilation, groups, out


def check_method(method: str, who: str):
    """(forward, backward) of the plain algorithm `method`, or a ValueError naming `who`."""
    if method not in METHODS:
        raise ValueError(f"{who}: expected method one of {sorted(METHODS)}, got {method!r}")
    return METHODS[method]


def check_dy(dy: np.ndarray, x: np.ndarray, w: np.ndarray, out: Pair, who: str) -> None:
    """dy must be (N, T, OH, OW) for input x and weight w (out = (OH, OW))."""
    check_array(dy, who, 4, "(N, T, OH, OW)")
    expected = (x.shape[0], w.shape[0], *out)
    if dy.shape != expected:
        raise ValueError(f"{who}: expected upstream gradient dy of shape {expected}, got shape {dy.shape}")


def conv2d(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride=1, padding=0, dilation=1, groups: int = 1,
    method: str = "im2col", *, who: str = "conv2d",
) -> np.ndarray:
    """y = conv2d(x, w, b): x (N, C, H, W), w (T, C/groups, KH, KW), b (T,) -> y (N, T, OH, OW).

    stride, dilation: int or pair >= 1; padding: int, pair, "valid" or "same". `method` picks the
    algorithm ("direct", "im2col", "fft"); all give the same numbers. `who` names the caller in errors.
    """
    stride, padding, dilation, groups, _ = check_conv_args(x, w, b, stride, padding, dilation, groups, who)
    forward, _ = check_method(method, who)
    w = w.astype(x.dtype, copy=False)
    b = None if b is None else b.astype(x.dtype, copy=False)
    return forward(x, w, b, stride, padding, dilation, groups)


def conv2d_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride=1, padding=0, dilation=1, groups: int = 1,
    method: str = "im2col", *, who: str = "conv2d",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) for y = conv2d(x, w, b, ...) given dy (N, T, OH, OW); never modifies dy.

    dx (N, C, H, W): W^T dy, a full correlation of dy with flip_kernel(w);
    dw (T, C/groups, KH, KW): the correlation of x with dy; db (T,): dy summed over N, OH, OW.
    """
    stride, padding, dilation, groups, out = check_conv_args(x, w, None, stride, padding, dilation, groups, who)
    check_dy(dy, x, w, out, who)
    _, backward = check_method(method, who)
    return backward(dy, x, w.astype(x.dtype, copy=False), stride, padding, dilation, groups)


def conv2d_input_grad(dy: np.ndarray, input_shape: tuple[int, int, int, int], w: np.ndarray, stride=1, padding=0,
                      dilation=1, groups: int = 1, method: str = "im2col") -> np.ndarray:
    """dx alone, in the lecture's form: pad/dilate dy, then correlate with flip_kernel(w) by `method`."""
    stride, dilation = positive_pair(stride, "conv2d", "stride"), positive_pair(dilation, "conv2d", "dilation")
    padding = resolve_padding(padding, w.shape[2:], dilation, stride)
    if method == "im2col":
        return conv2d_input_grad_flipped(dy, input_shape, w, stride, padding, dilation, groups)
    pads = full_correlation_pads(input_shape, w.shape[2:], stride, padding, dilation, dy.shape[2:])
    return conv2d(dilate_and_pad(dy, stride, pads), flip_kernel(w, groups), None, 1, 0, dilation, groups, method)


def conv_as_matrix(w: np.ndarray, input_shape: tuple[int, int, int], stride=1, padding=0, dilation=1,
                   groups: int = 1) -> np.ndarray:
    """The lecture's "conv layer is still multiplicative": the explicit matrix W with y = W x.

    w (T, C/groups, KH, KW), input_shape (C, H, W) -> W (T*OH*OW, C*H*W), so that for one image
    conv2d(x[None], w)[0].ravel() == W @ x.ravel(). Row (t, oh, ow) holds w[t] placed at the window
    of output (oh, ow): a banded (block-Toeplitz) matrix, mostly zeros. W.T @ dy.ravel() is dx.
    Memory: T*OH*OW*C*H*W entries — for teaching-size inputs only.
    """
    c, h, wd = input_shape
    t, cg, kh, kw = w.shape
    stride, padding, dilation, groups, (oh, ow) = check_conv_args(
        np.zeros((1, c, h, wd)), w, None, stride, padding, dilation, groups, "conv_as_matrix")
    (sh, sw), (ph, pw), (dil_h, dil_w) = stride, padding, dilation
    tg = t // groups
    mat = np.zeros((t, oh, ow, c, h, wd), w.dtype)  # (T, OH, OW, C, H, W)
    to, s, a, bb = np.meshgrid(np.arange(t), np.arange(cg), np.arange(oh), np.arange(ow), indexing="ij")
    cin = (to // tg) * cg + s  # input channel of (t, s)
    for i in range(kh):
        for j in range(kw):
            r, q = a * sh + i * dil_h - ph, bb * sw + j * dil_w - pw  # input pixel read by tap (i, j)
            ok = (r >= 0) & (r < h) & (q >= 0) & (q < wd)  # taps on padding zeros leave no entry
            mat[to[ok], a[ok], bb[ok], cin[ok], r[ok], q[ok]] = w[to[ok], s[ok], i, j]
    return mat.reshape(t * oh * ow, c * h * wd)


def transpose_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1,
                          output_padding: int = 0) -> int:
    """Output length of a transposed convolution along one axis (the input length of the convolution
    it transposes, which `output_padding` picks when several map to the same `conv_output_size`):

        OUT = (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
    """
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def check_transpose_args(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride, padding, output_padding,
                         dilation, groups, who: str):
    """Check a transposed convolution's arguments -> (stride, padding, dilation, groups, (N, T, OH, OW))."""
    check_array(x, who, 4, "(N, C, H, W)")
    if not isinstance(w, np.ndarray) or w.ndim != 4:
        raise ValueError(f"{who}: expected a 4-D weight (C, T/groups, KH, KW), got shape {np.shape(w)}")
    stride, dilation = positive_pair(stride, who, "stride"), positive_pair(dilation, who, "dilation")
    groups = positive_int(groups, who, "groups")
    padding = resolve_padding(padding, w.shape[2:], dilation, (1, 1), who)
    op = pair(output_padding, who, "output_padding")
    if not (0 <= op[0] < stride[0] and 0 <= op[1] < stride[1]):
        raise ValueError(f"{who}: expected 0 <= output_padding < stride {stride}, got {op}")
    if x.shape[1] != w.shape[0]:
        raise ValueError(f"{who}: expected input (N, {w.shape[0]}, H, W) for weight {w.shape}, got shape {x.shape}")
    out = tuple(transpose_output_size(x.shape[2 + a], w.shape[2 + a], stride[a], padding[a], dilation[a], op[a])
                for a in range(2))
    if out[0] < 1 or out[1] < 1:
        raise ValueError(f"{who}: padding {padding} leaves an empty output {out} for input shape {x.shape}")
    t = w.shape[1] * groups
    if b is not None and (not isinstance(b, np.ndarray) or b.shape != (t,)):
        raise ValueError(f"{who}: expected bias of shape ({t},), got shape {np.shape(b)}")
    return stride, padding, dilation, groups, (x.shape[0], t, *out)


def check_transpose_dy(dy: np.ndarray, y_shape: tuple[int, ...], who: str) -> None:
    """dy must have the transposed convolution's output shape y_shape (which `output_padding` fixed)."""
    check_array(dy, who, 4, "(N, T, OH, OW)")
    if dy.shape != y_shape:
        raise ValueError(f"{who}: expected upstream gradient dy of shape {y_shape} (the output), got shape {dy.shape}")


def conv_transpose2d(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride=1, padding=0, output_padding=0,
    dilation=1, groups: int = 1, method: str = "im2col", who: str = "conv_transpose2d",
) -> np.ndarray:
    """Transposed convolution: the data-gradient of a convolution, used as a forward pass.

    x (N, C, H, W), w (C, T/groups, KH, KW) (PyTorch's layout) -> y (N, T, OH, OW) with
        OH = (H - 1) sh - 2 ph + dil_h (KH - 1) + output_padding + 1.
    y = W^T x where W is the matrix of conv2d(., w, stride, padding, dilation, groups) mapping
    (N, T, OH, OW) -> (N, C, H, W): computed as the lecture's flipped-kernel form, "dilate x by the
    stride, pad it, correlate with flip_kernel(w)". Backward is a plain convolution (see below).
    """
    stride, padding, dilation, groups, y_shape = check_transpose_args(x, w, b, stride, padding, output_padding,
                                                                      dilation, groups, who)
    y = conv2d_input_grad(x, y_shape, w.astype(x.dtype, copy=False), stride, padding, dilation, groups, method)
    if b is not None:
        y = y + b.astype(x.dtype, copy=False).reshape(1, y_shape[1], 1, 1)
    return y


def conv_transpose2d_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride=1, padding=0, output_padding=0, dilation=1,
    groups: int = 1, method: str = "im2col", who: str = "conv_transpose2d",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) of conv_transpose2d. Since y = W^T x:  dx = W dy = conv2d(dy, w) (a convolution),
    dw = the conv weight-gradient with the roles swapped (dy as conv input, x as conv upstream), db =
    sum of dy over N, OH, OW. dy must have the forward's output shape, which `output_padding` fixed."""
    stride, padding, dilation, groups, y_shape = check_transpose_args(x, w, None, stride, padding, output_padding,
                                                                      dilation, groups, who)
    check_transpose_dy(dy, y_shape, who)
    w = w.astype(dy.dtype, copy=False)
    dx = conv2d(dy, w, None, stride, padding, dilation, groups, method, who=who)
    _, dw, _ = conv2d_backward(x, dy, w, stride, padding, dilation, groups, method, who=who)
    return dx, dw, dy.sum(axis=(0, 2, 3))
