"""Convolution by im2col: unfold every receptive field into a column, then ONE matrix multiply.

The lecture's idea: "reduce all S*T convolutions to a single matrix multiplication". Each output
position (n, oh, ow) reads a window of C*KH*KW input values; lay those values out as one column and

    cols (C*KH*KW, N*OH*OW)                 the unfolded input (`im2col`)
    y    = w.reshape(T, C*KH*KW) @ cols     (T, N*OH*OW)  -> viewed as (N, T, OH, OW)

with one such product per group when groups > 1 (group g's rows of w times group g's rows of cols).
Backward is the same matrix multiply read the other way (the multiplicative layer's rules):

    dw    = dy_mat @ cols^T            (T, C*KH*KW)     dz/dW = dz/dy x^T
    dcols = w_mat^T @ dy_mat           (C*KH*KW, N*L)   dz/dx = W^T dz/dy, still in column form
    dx    = col2im(dcols)              every column entry is added back to the pixel it came from

The data gradient as the lecture writes it (`conv2d_input_grad_flipped`) gives the same dx: dilate dy
by the stride, pad it by E - 1 - p (`full_padding`), correlate with `flip_kernel(w)`.

Same signature as its siblings `conv_direct` and `conv_fft`:
    conv2d_im2col(x, w, b, stride, padding, dilation, groups) -> y
    conv2d_im2col_backward(dy, x, w, stride, padding, dilation, groups) -> (dx, dw, db)
with stride, padding, dilation already resolved to pairs (see `minicnn.functional.conv`).
These are the whole-batch versions: the batch's columns exist at once (C*KH*KW times the size of
the output maps). The layers' fast path cuts them into cache-sized blocks (`minicnn.kernels.conv_im2col`).
"""

from __future__ import annotations

import numpy as np

from .checks import conv_output_size

Pair = tuple[int, int]


def _tap(i: int, j: int, out: Pair, stride: Pair, dilation: Pair) -> tuple[slice, slice]:
    """Rows and columns of the padded input that kernel tap (i, j) reads for all OH x OW outputs."""
    (oh, ow), (sh, sw), (dil_h, dil_w) = out, stride, dilation
    return (slice(i * dil_h, i * dil_h + sh * (oh - 1) + 1, sh), slice(j * dil_w, j * dil_w + sw * (ow - 1) + 1, sw))


def _out_size(input_shape: tuple[int, ...], kernel_size: Pair, stride: Pair, padding: Pair, dilation: Pair,
              who: str) -> Pair:
    """(OH, OW) by `conv_output_size`."""
    return (conv_output_size(input_shape[2], kernel_size[0], stride[0], padding[0], dilation[0], who=who),
            conv_output_size(input_shape[3], kernel_size[1], stride[1], padding[1], dilation[1], who=who))


def im2col(
    x: np.ndarray, kernel_size: Pair, stride: Pair = (1, 1), padding: Pair = (0, 0), dilation: Pair = (1, 1),
) -> np.ndarray:
    """Unfold every receptive field of x into a column.

    x (N, C, H, W) -> cols (C*KH*KW, N*OH*OW), row index (c, i, j), column index (n, oh, ow):

        cols[(c, i, j), (n, oh, ow)] = x_pad[n, c, oh*sh + i*dil_h, ow*sw + j*dil_w]

    OH = floor((H + 2 ph - dil_h (KH - 1) - 1) / sh) + 1 (and OW alike; `conv_output_size`). The Python
    loop runs over the KH*KW kernel offsets only; each iteration copies one strided slice of the whole batch.
    """
    n, c, h, w = x.shape
    kh, kw = kernel_size
    (ph, pw), (oh, ow) = padding, _out_size(x.shape, kernel_size, stride, padding, dilation, "im2col")
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C, Hp, Wp)
    cols = np.empty((c, kh, kw, n, oh, ow), x.dtype)  # (C, KH, KW, N, OH, OW)
    for i in range(kh):
        for j in range(kw):
            rows, columns = _tap(i, j, (oh, ow), stride, dilation)
            cols[:, i, j] = xp[:, :, rows, columns].transpose(1, 0, 2, 3)  # (C, N, OH, OW)
    return cols.reshape(c * kh * kw, n * oh * ow)


def col2im(
    cols: np.ndarray, input_shape: tuple[int, int, int, int], kernel_size: Pair, stride: Pair = (1, 1),
    padding: Pair = (0, 0), dilation: Pair = (1, 1),
) -> np.ndarray:
    """The adjoint of `im2col`: add every column entry back onto the pixel it was read from.

    cols (C*KH*KW, N*OH*OW) -> dx (N, C, H, W). Overlapping windows *sum* (each input pixel feeds
    several outputs, so its gradient collects all of them). Loops over the KH*KW offsets only.
    """
    n, c, h, w = input_shape
    kh, kw = kernel_size
    (ph, pw), (oh, ow) = padding, _out_size(input_shape, kernel_size, stride, padding, dilation, "col2im")
    cols = cols.reshape(c, kh, kw, n, oh, ow)  # (C, KH, KW, N, OH, OW)
    dxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), cols.dtype)  # (N, C, Hp, Wp)
    for i in range(kh):
        for j in range(kw):
            rows, columns = _tap(i, j, (oh, ow), stride, dilation)
            dxp[:, :, rows, columns] += cols[:, i, j].transpose(1, 0, 2, 3)  # (N, C, OH, OW)
    return dxp[:, :, ph:ph + h, pw:pw + w]


def conv2d_im2col(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Pair, dilation: Pair, groups: int,
) -> np.ndarray:
    """y = conv2d(x, w, b) by im2col: x (N, C, H, W), w (T, C/G, KH, KW), b (T,) or None -> y (N, T, OH, OW).

        cols = im2col(x)                                   (C*KH*KW, N*OH*OW)
        y_g  = w_g.reshape(T/G, C/G*KH*KW) @ cols_g        one product per group g
    """
    n = x.shape[0]
    t, _, kh, kw = w.shape
    cols = im2col(x, (kh, kw), stride, padding, dilation)
    oh, ow = _out_size(x.shape, (kh, kw), stride, padding, dilation, "conv2d")
    cols_g = cols.reshape(groups, cols.shape[0] // groups, n * oh * ow)  # (G, C/G*KH*KW, N*OH*OW)
    w_mat = w.reshape(groups, t // groups, -1)  # (G, T/G, C/G*KH*KW)
    y = np.matmul(w_mat, cols_g).reshape(t, n, oh, ow).transpose(1, 0, 2, 3)  # (N, T, OH, OW)
    if b is not None:
        y = y + b.reshape(1, t, 1, 1)
    return np.ascontiguousarray(y)


def conv2d_im2col_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: Pair, padding: Pair, dilation: Pair, groups: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) for y = conv2d_im2col(x, w, b, ...), given dy (N, T, OH, OW); never modifies dy.

        dw (T, C/G, KH, KW) = dy_mat @ cols^T  per group          dz/dW = dz/dy x^T
        dx (N, C, H, W)     = col2im(w_mat^T @ dy_mat)           dz/dx = W^T dz/dy
        db (T,)             = dy summed over N, OH, OW
    """
    n = x.shape[0]
    t, _, kh, kw = w.shape
    cols = im2col(x, (kh, kw), stride, padding, dilation)
    cols_g = cols.reshape(groups, cols.shape[0] // groups, cols.shape[1])  # (G, C/G*KH*KW, N*OH*OW)
    dy_mat = dy.transpose(1, 0, 2, 3).reshape(groups, t // groups, cols.shape[1])  # (G, T/G, N*OH*OW)
    w_mat = w.reshape(groups, t // groups, -1)  # (G, T/G, C/G*KH*KW)
    dw = np.matmul(dy_mat, cols_g.transpose(0, 2, 1)).reshape(w.shape)  # (G, T/G, C/G*KH*KW) -> w's shape
    dcols = np.matmul(w_mat.transpose(0, 2, 1), dy_mat).reshape(cols.shape)  # (C*KH*KW, N*OH*OW)
    dx = col2im(dcols, (n, *x.shape[1:]), (kh, kw), stride, padding, dilation)
    return dx, dw, dy.sum(axis=(0, 2, 3))


def flip_kernel(w: np.ndarray, groups: int = 1) -> np.ndarray:
    """The lecture's backward kernel K_back(i, j, t, s) = K(2d+1-i, 2d+1-j, s, t).

    w (T, C/G, KH, KW) -> w_back (C, T/G, KH, KW): a spatial flip (both axes) and, within each group,
    a swap of the in- and out-channel axes. Correlating the (padded, dilated) dy with w_back gives dx.
    """
    t, cg, kh, kw = w.shape
    wg = w.reshape(groups, t // groups, cg, kh, kw)  # (G, T/G, C/G, KH, KW)
    return wg.transpose(0, 2, 1, 3, 4)[..., ::-1, ::-1].reshape(groups * cg, t // groups, kh, kw).copy()


def full_padding(kernel_size: Pair, padding: Pair, dilation: Pair) -> Pair:
    """E - 1 - p per axis (E = d (K - 1) + 1, the dilated kernel extent): the zeros before dy that turn
    dx into a 'valid' correlation with the flipped kernel. Negative when p > E - 1 (then dy is cropped)."""
    return (dilation[0] * (kernel_size[0] - 1) - padding[0], dilation[1] * (kernel_size[1] - 1) - padding[1])


def full_correlation_pads(input_shape: tuple[int, ...], kernel_size: Pair, stride: Pair, padding: Pair,
                          dilation: Pair, out_size: Pair) -> tuple[Pair, Pair]:
    """Zeros (before, after) per axis around the stride-dilated dy that turn dx into a 'valid' correlation.

    The forward window of extent E = d (K - 1) + 1 starts at -p; dx[i] collects dy[o] for every o whose
    window covers i: pad E - 1 - p before (`full_padding`) and E - 1 - p + r after, r = rows the last
    window leaves unread.
    """
    before = full_padding(kernel_size, padding, dilation)
    pads = []
    for axis in range(2):
        extent = dilation[axis] * (kernel_size[axis] - 1) + 1
        rest = input_shape[2 + axis] + 2 * padding[axis] - extent - stride[axis] * (out_size[axis] - 1)
        pads.append((before[axis], before[axis] + rest))
    return pads[0], pads[1]


def dilate_and_pad(dy: np.ndarray, stride: Pair, pads: tuple[Pair, Pair]) -> np.ndarray:
    """Insert (stride-1) zeros between the entries of dy, then zero-pad (before, after) per axis.

    A negative pad crops instead. dy (N, T, OH, OW) -> (N, T, (OH-1)*sh + 1 + pads, ...).
    """
    n, t, oh, ow = dy.shape
    (sh, sw), ((top, bottom), (left, right)) = stride, pads
    dilated_h, dilated_w = (oh - 1) * sh + 1, (ow - 1) * sw + 1
    grown = np.zeros((n, t, dilated_h + max(top, 0) + max(bottom, 0), dilated_w + max(left, 0) + max(right, 0)),
                     dy.dtype)  # (N, T, rows, columns) with the zeros
    grown[:, :, max(top, 0): max(top, 0) + dilated_h: sh, max(left, 0): max(left, 0) + dilated_w: sw] = dy
    return grown[:, :, max(-top, 0): grown.shape[2] - max(-bottom, 0), max(-left, 0): grown.shape[3] - max(-right, 0)]


def conv2d_input_grad_flipped(
    dy: np.ndarray, input_shape: tuple[int, int, int, int], w: np.ndarray, stride: Pair, padding: Pair,
    dilation: Pair, groups: int,
) -> np.ndarray:
    """dx as the lecture writes it: a full correlation of dy with the flipped kernel.

        dx = conv2d_im2col(dilate_and_pad(dy), flip_kernel(w), stride 1, padding 0, dilation d)

    dy is dilated by the stride (stride - 1 zeros between its entries) and padded by E - 1 - p
    (`full_correlation_pads`), then correlated with the flipped, channel-swapped kernel.
    """
    pads = full_correlation_pads(input_shape, w.shape[2:], stride, padding, dilation, dy.shape[2:])
    dyp = dilate_and_pad(dy, stride, pads)
    return conv2d_im2col(dyp, flip_kernel(w, groups), None, (1, 1), (0, 0), dilation, groups)
