"""Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray 2015): a 3x3 convolution with fewer products.

A fast twin of the plain im2col convolution (`minicnn.functional.conv_im2col`) for 3x3 kernels, stride 1,
dilation 1, groups 1, any padding. The output is cut into 2x2 tiles; tile (a, b) needs the 4x4 patch d of
the padded input at (2a, 2b), and in one dimension

    y = A^T [ (G g) * (B^T d) ]      (* elementwise; g the 3 taps, d 4 inputs, y 2 outputs)

    B^T = [[1, 0, -1,  0],      G = [[  1,    0,   0],      A^T = [[1, 1,  1,  0],
           [0, 1,  1,  0],           [1/2,  1/2, 1/2],             [0, 1, -1, -1]]
           [0, -1, 1,  0],           [1/2, -1/2, 1/2],
           [0, 1,  0, -1]]           [  0,    0,   1]]

gives y0 = d0 g0 + d1 g1 + d2 g2 and y1 = d1 g0 + d2 g1 + d3 g2 (the correlation conv2d computes) from 4
products instead of 6. In 2-D, U = G g G^T and V = B^T d B are 4x4, and the sum over input channels c
makes each of the 16 positions (xi, nu) one matrix product over all tiles P:

    forward    M[xi nu] (P, T) = V[xi nu] (P, C) @ U[xi nu] (C, T);   y tile = A^T M A
    backward   E = A dy_tile A^T  (the adjoint of y = A^T M A, per 2x2 tile of dy)
               dU[xi nu] (C, T) = V[xi nu]^T @ E[xi nu]   summed over tiles;   dw = G^T dU G
               dV[xi nu] (P, C) = E[xi nu] @ U[xi nu]^T;  dd = B dV B^T, the 4x4 tiles added back
                                  where they overlap (stride 2): dx

The products hold 16/4 = 4 multiply-adds per output pixel and channel pair instead of im2col's 9: 2.25x
fewer. The transforms are additions, vectorised over all tiles, images and channels at once: each image
block is laid out channels-last by tile parity, X4[row parity, column parity, i, j, n, c] =
x_padded[n, c, 2i + parity, 2j + parity], so every transform step is one add of two contiguous
slices (tile i's rows 2 and 3 are tile i+1's rows 0 and 1). The price: the transposing copies in
(x, dy) and out (y, dx), and the transforms' passes over data 4x the size of the input.

Rounding: the transforms only add, subtract and halve, so float32 results differ from im2col's by float32
rounding (~1e-7 relative, tests/test_conv_winograd.py). An inf in x mixes into its tile's other outputs as
NaN (inf - inf), where im2col gives inf; the planner checks candidates against the default on the
operands it measures and drops one whose NaN/inf places differ.
Chosen only by the planner (`minicnn.kernels.conv`, candidate "winograd"), where it measures faster.
Measured 2026-12-03, AMD EPYC (1 MB L2 per core), batch 64, float32, 1 thread, `minicnn tune cifar_net`:
it came within 5-25% of the fastest candidate on cifar_net's 3x3 layers and won none (e.g. 64->64 on 16x16
forward 22.5 ms against 21.5, 32->32 on 32x32 backward 41.3 against 36.9). Its 16 products alone take
9 ms of that 64->64 layer's forward against ~13 for im2col's one product; the transforms and the
NCHW <-> channels-last copies, memory passes NumPy cannot fuse, take the rest. Where the matrix products
are slower relative to memory than here, it may win: the planner measures.
"""

from __future__ import annotations

import numpy as np

from minicnn.functional.checks import conv_output_size
from minicnn.threads import split_batch

from .depthwise import _bias_grad

Pair = tuple[int, int]

BLOCK_VALUES = 2**17  # V entries (16 * tiles * C) per block of images (512 KB of float32; 2**18 and 2**19 ran slower)
SUPPORT = ("winograd_applies",)  # public, not a kernel: the predicate of the case it computes (minicnn.kernels.conv)
G_MATRIX = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])  # (4, 3)


def winograd_applies(w_shape: tuple[int, ...], stride: Pair, dilation: Pair, groups: int) -> bool:
    """True for the convolutions F(2x2, 3x3) computes here: 3x3 kernel, stride 1, dilation 1, groups 1."""
    return tuple(w_shape[2:]) == (3, 3) and stride == (1, 1) and dilation == (1, 1) and groups == 1


def _check(x_shape, w_shape, stride: Pair, dilation: Pair, groups: int, who: str) -> None:
    if not winograd_applies(w_shape, stride, dilation, groups):
        raise ValueError(f"{who}: expected a 3x3 kernel, stride (1, 1), dilation (1, 1) and groups 1, got weight "
                         f"{tuple(w_shape)}, stride {stride}, dilation {dilation}, groups={groups} (input "
                         f"{tuple(x_shape)})")


class _Tiles:
    """Sizes and buffers of one call: OH x OW outputs in th x tw tiles of 2x2 (the last row or column of
    tiles half outside when OH or OW is odd), blocks of `block` images."""

    def __init__(self, x_shape, t: int, padding: Pair, dtype):
        n, c, h, wd = x_shape
        self.c, self.h, self.w, self.padding = c, h, wd, padding
        self.out = (conv_output_size(h, 3, 1, padding[0], 1, who="conv2d"),
                    conv_output_size(wd, 3, 1, padding[1], 1, who="conv2d"))
        self.th, self.tw = -(-self.out[0] // 2), -(-self.out[1] // 2)
        self.block = max(1, min(n, BLOCK_VALUES // (16 * self.th * self.tw * max(c, t))))
        th, tw, b = self.th, self.tw, self.block
        self.padded = _staging(b, c, 2 * th + 2, 2 * tw + 2, dtype)  # zero borders: the padding
        self.x4 = np.empty((2, 2, th + 1, tw + 1, b, c), dtype)  # the padded block by tile parity
        self.rows = np.empty((4, 2, th, tw + 1, b, c), dtype)  # after the transform along the rows
        self.v = np.empty((4, 4, th, tw, b, c), dtype)  # V, positions (xi, nu) first

    def tiles(self, nb: int) -> int:
        return self.th * self.tw * nb


def _staging(b: int, c: int, rows: int, cols: int, dtype) -> np.ndarray:
    """A zeroed (b, c, rows, cols) buffer whose maps lie rows*cols + 1 values apart. The copies between NCHW
    and the channels-last tiles go through it: maps H*W*4 bytes apart (a power of two) map one image's
    channels to one cache set, and the gather ran 4x slower (32x32 maps: 7.4 ms against 1.7)."""
    flat = np.zeros((b, c, rows * cols + 1), dtype)
    return flat[:, :, : rows * cols].reshape(b, c, rows, cols)


def _by_parity(a: np.ndarray) -> np.ndarray:
    """(Nb, K, 2 R, 2 S) -> the view (2, 2, R, S, Nb, K): [row parity, column parity, i, j, n, k]."""
    nb, k, rows, cols = a.shape
    return a.reshape(nb, k, rows // 2, 2, cols // 2, 2).transpose(3, 5, 2, 4, 0, 1)


def _bt(d0, d1, d2, d3, out) -> None:
    """out[0..3] = B^T [d0, d1, d2, d3] along the first axis of `out`."""
    np.subtract(d0, d2, out=out[0])
    np.add(d1, d2, out=out[1])
    np.subtract(d2, d1, out=out[2])
    np.subtract(d1, d3, out=out[3])


def _input_transform(xs: np.ndarray, s: _Tiles) -> np.ndarray:
    """V of a block xs (Nb, C, H, W) -> (16, Nb*th*tw, C)."""
    nb, _, h, wd = xs.shape
    (ph, pw), x4 = s.padding, s.x4[:, :, :, :, :nb]  # (2, 2, th+1, tw+1, Nb, C)
    padded = s.padded[:nb]  # (Nb, C, 2 th + 2, 2 tw + 2), zero borders
    padded[:, :, ph:ph + h, pw:pw + wd] = xs
    np.copyto(x4, _by_parity(padded))
    th, tw = s.th, s.tw
    rows = s.rows[:, :, :, :, :nb]  # (4, 2, th, tw+1, Nb, C): padded rows 2i..2i+3 are x4[0|1, :, i|i+1]
    _bt(x4[0, :, :th], x4[1, :, :th], x4[0, :, 1:], x4[1, :, 1:], rows)
    v = s.v[:, :, :, :, :nb]  # (4, 4, th, tw, Nb, C): the same along the columns, all four row positions at once
    _bt(rows[:, 0, :, :tw], rows[:, 1, :, :tw], rows[:, 0, :, 1:], rows[:, 1, :, 1:], v.transpose(1, 0, 2, 3, 4, 5))
    return v.reshape(16, s.tiles(nb), s.c)


def _at(a: np.ndarray, axis: int, index: slice) -> np.ndarray:
    return a[(slice(None),) * axis + (index,)]


def _added_back(g: np.ndarray, out: np.ndarray, axis: int, spare: np.ndarray) -> None:
    """The adjoint of `_bt` along one axis, overlapping tiles added back: g (4, ...) the gradient of the
    four transformed positions, out (2, ...) the gradient by parity, whose tile axis `axis` (of out[p])
    has one entry more than g[k]'s. With B = (B^T)^T:

        d0 = g0,  d1 = g1 - g2 + g3,  d2 = g1 + g2 - g0,  d3 = -g3
        out[0] tile i gets d0 of tile i and d2 of tile i-1;  out[1] tile i gets d1 of tile i and d3 of tile i-1
    `spare`: a buffer of g[0]'s shape."""
    count = g.shape[1 + axis]
    lo, hi, last = slice(0, count), slice(1, count + 1), slice(count, count + 1)
    _at(out[0], axis, lo)[...] = g[0]
    _at(out[0], axis, last)[...] = 0
    np.add(g[1], g[2], out=spare)
    spare -= g[0]
    _at(out[0], axis, hi)[...] += spare
    low = _at(out[1], axis, lo)
    np.subtract(g[1], g[2], out=low)
    low += g[3]
    _at(out[1], axis, last)[...] = 0
    _at(out[1], axis, hi)[...] -= g[3]


def _kernel_transform(w: np.ndarray) -> np.ndarray:
    """U = G g G^T of every (t, c) filter: w (T, C, 3, 3) -> (16, C, T)."""
    g = G_MATRIX.astype(w.dtype)
    return np.ascontiguousarray(np.einsum("ai,tcij,bj->abct", g, w, g).reshape(16, w.shape[1], w.shape[0]))


def conv2d_winograd(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Pair,
                    dilation: Pair, groups: int, *, parts: int = 1) -> np.ndarray:
    """Fast twin of `minicnn.functional.conv_im2col.conv2d_im2col` for 3x3, stride 1, dilation 1, groups 1:
    x (N, C, H, W), w (T, C, 3, 3), b (T,) or None -> y (N, T, OH, OW) by F(2x2, 3x3) (module docstring),
    a block of images at a time; `parts`: the batch cut into that many parts run side by side
    (`minicnn.threads.split_batch`). ValueError for any other convolution."""
    _check(x.shape, w.shape, stride, dilation, groups, "conv2d_winograd")
    dtype = np.result_type(x, w)
    u = _kernel_transform(w.astype(dtype, copy=False))  # (16, C, T)
    y = np.empty((x.shape[0], w.shape[0], conv_output_size(x.shape[2], 3, 1, padding[0], 1, who="conv2d"),
                  conv_output_size(x.shape[3], 3, 1, padding[1], 1, who="conv2d")), dtype)  # (N, T, OH, OW)
    split_batch(lambda lo, hi: _forward(x[lo:hi].astype(dtype, copy=False), u, b, padding, y[lo:hi]), x.shape[0],
                parts)
    return y


def _forward(x: np.ndarray, u: np.ndarray, b: np.ndarray | None, padding: Pair, y: np.ndarray) -> None:
    """y (N, T, OH, OW) of the images x from U (16, C, T), block by block."""
    n, t, dtype = x.shape[0], u.shape[2], y.dtype
    s = _Tiles(x.shape, t, padding, dtype)
    th, tw = s.th, s.tw
    m_buf = np.empty((16, s.tiles(s.block), t), dtype)
    half = np.empty((2, 4, th, tw, s.block, t), dtype)  # A^T M along the rows
    tile = np.empty((2, 2, th, tw, s.block, t), dtype)  # A^T M A: the 2x2 outputs of every tile
    y_stage = _staging(s.block, t, 2 * th, 2 * tw, dtype)
    for n0 in range(0, n, s.block):
        nb = min(s.block, n - n0)
        v = _input_transform(x[n0:n0 + nb], s)  # (16, P, C)
        m = np.matmul(v, u, out=m_buf[:, : s.tiles(nb)]).reshape(4, 4, th, tw, nb, t)
        hf, tl = half[:, :, :, :, :nb], tile[:, :, :, :, :nb]
        np.add(m[0], m[1], out=hf[0])
        hf[0] += m[2]
        np.subtract(m[1], m[2], out=hf[1])
        hf[1] -= m[3]
        np.add(hf[:, 0], hf[:, 1], out=tl[:, 0])
        tl[:, 0] += hf[:, 2]
        np.subtract(hf[:, 1], hf[:, 2], out=tl[:, 1])
        tl[:, 1] -= hf[:, 3]
        stage = _by_parity(y_stage[:nb])  # (2, 2, th, tw, Nb, T) view of (Nb, T, 2 th, 2 tw)
        if b is None:
            stage[...] = tl
        else:
            np.add(tl, b, out=stage)
        y[n0:n0 + nb] = y_stage[:nb, :, : s.out[0], : s.out[1]]


def conv2d_winograd_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: Pair, padding: Pair,
                             dilation: Pair, groups: int, *, input_grad: bool = True, parts: int = 1
                             ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Fast twin of `minicnn.functional.conv_im2col.conv2d_im2col_backward` for the case of `conv2d_winograd`:
    (dx (N, C, H, W) or None when not `input_grad`, dw (T, C, 3, 3), db (T,)); never modifies dy.
    V is rebuilt from x block by block (forward keeps nothing); `parts` as in `conv2d_winograd`."""
    _check(x.shape, w.shape, stride, dilation, groups, "conv2d_winograd_backward")
    dtype = np.result_type(dy, x)
    u_t = _kernel_transform(w.astype(dtype, copy=False)).transpose(0, 2, 1)  # (16, T, C)
    dx = np.empty(x.shape, dtype) if input_grad else None

    def part(lo: int, hi: int) -> np.ndarray:
        return _backward(dy[lo:hi].astype(dtype, copy=False), x[lo:hi].astype(dtype, copy=False), u_t, padding,
                         None if dx is None else dx[lo:hi])

    dus = split_batch(part, x.shape[0], parts)
    du = dus[0] if len(dus) == 1 else sum(dus)  # (16, C, T)
    g = G_MATRIX.astype(dtype)
    dw = np.einsum("ai,abct,bj->tcij", g, du.reshape(4, 4, *du.shape[1:]), g)  # G^T dU G: (T, C, 3, 3)
    return dx, np.ascontiguousarray(dw), _bias_grad(dy)


def _backward(dy: np.ndarray, x: np.ndarray, u_t: np.ndarray, padding: Pair, dx: np.ndarray | None) -> np.ndarray:
    """dU (16, C, T) of the images x, and their dx written into `dx` (None: not wanted), block by block."""
    n, c = x.shape[:2]
    t, dtype = u_t.shape[1], u_t.dtype
    s = _Tiles(x.shape, t, padding, dtype)
    th, tw = s.th, s.tw
    du = np.zeros((16, c, t), dtype)
    dy_stage = _staging(s.block, t, 2 * th, 2 * tw, dtype)
    d4 = np.empty((2, 2, th, tw, s.block, t), dtype)  # dy by tile parity
    half = np.empty((4, 2, th, tw, s.block, t), dtype)  # A dy along the rows
    e = np.empty((4, 4, th, tw, s.block, t), dtype)  # E = A dy A^T
    if dx is not None:
        dv_buf = np.empty((16, s.tiles(s.block), c), dtype)
        spare = np.empty((4, th, tw, s.block, c), dtype)  # one overlap term at a time (columns, then rows)
        spare_rows = np.empty((2, th, tw + 1, s.block, c), dtype)
        cols = np.empty((4, 2, th, tw + 1, s.block, c), dtype)  # B dV along the columns, tiles added back
        dx4 = np.empty((2, 2, th + 1, tw + 1, s.block, c), dtype)  # then along the rows: dx by parity
        dx_stage = _staging(s.block, c, 2 * th + 2, 2 * tw + 2, dtype)
        ph, pw = padding
    for n0 in range(0, n, s.block):
        nb = min(s.block, n - n0)
        v = _input_transform(x[n0:n0 + nb], s)  # (16, P, C)
        dy_stage[:nb, :, : s.out[0], : s.out[1]] = dy[n0:n0 + nb]  # zeros past an odd OH / OW stay
        dq = d4[:, :, :, :, :nb]
        np.copyto(dq, _by_parity(dy_stage[:nb]))
        hf, ee = half[:, :, :, :, :nb], e[:, :, :, :, :nb]
        hf[0] = dq[0]  # A = [[1, 0], [1, 1], [1, -1], [0, -1]]
        np.add(dq[0], dq[1], out=hf[1])
        np.subtract(dq[0], dq[1], out=hf[2])
        np.negative(dq[1], out=hf[3])
        ee[:, 0] = hf[:, 0]
        np.add(hf[:, 0], hf[:, 1], out=ee[:, 1])
        np.subtract(hf[:, 0], hf[:, 1], out=ee[:, 2])
        np.negative(hf[:, 1], out=ee[:, 3])
        e_mat = ee.reshape(16, s.tiles(nb), t)  # (16, P, T)
        du += np.matmul(v.transpose(0, 2, 1), e_mat)  # (16, C, T)
        if dx is not None:
            dv = np.matmul(e_mat, u_t, out=dv_buf[:, : s.tiles(nb)]).reshape(4, 4, th, tw, nb, c)
            cl = cols[:, :, :, :, :nb]  # (4, 2, th, tw+1, Nb, C): B dV along the columns, then the rows
            _added_back(dv.transpose(1, 0, 2, 3, 4, 5), cl.transpose(1, 0, 2, 3, 4, 5), 2, spare[:, :, :, :nb])
            dq4 = dx4[:, :, :, :, :nb]
            _added_back(cl, dq4, 1, spare_rows[:, :, :, :nb])
            _by_parity(dx_stage[:nb])[...] = dq4
            dx[n0:n0 + nb] = dx_stage[:nb, :, ph:ph + x.shape[2], pw:pw + x.shape[3]]
    return du
