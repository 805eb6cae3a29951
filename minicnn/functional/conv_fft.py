"""Convolution by the Fourier transform:  A * K = F^-1( F(A) . F(K) ).

A correlation (what conv layers compute) is a convolution with the kernel flipped, which in the
frequency domain is a complex conjugate:

    corr(x, k)[p] = sum_m x[p + m] k[m] = F^-1( F(x) . conj(F(k)) )[p]

computed circularly on an FFT grid of at least the padded input size Hp x Wp; every "valid" output
p = 0 .. Hp - E (E = dilated kernel extent) then reads x[p + m] with p + m <= Hp - 1, so nothing wraps.

    X[n, s, f]  = rfft2(x_pad[n, s])                 each input map transformed ONCE
    Kc[t, s, f] = conj(rfft2(w_dilated[t, s]))       each kernel transformed once per call
    Y[n, t, f]  = sum_s X[n, s, f] Kc[t, s, f]       channel contraction: one small complex GEMM per frequency
    y           = irfft2(Y)[:, :, ::sh, ::sw]        crop the valid part; stride = subsample it

Backward by FFT too, on the same grid (dy1 = dy with stride-1 zeros re-inserted, `_upsample`):
    dw[t, s] = corr(x_pad[n, s], dy1[n, t]) summed over n  -> F^-1( sum_n conj(DY1[n, t]) X[n, s] ), taps [::d]
    dx_pad[n, s] = sum_t conv(dy1[n, t], w_dilated[t, s])  -> F^-1( sum_t DY1[n, t] W[t, s] ), a true convolution
    db[t] = sum of dy

Cost model (F = Fh * (Fw/2 + 1) complex frequencies, Fh >= Hp, Fw >= Wp):
    transforms  ~ (N C + T C/G + N T) * 2.5 Hp Wp log2(Hp Wp) flops
    contraction ~ 8 N T (C/G) F flops (a complex multiply-add is 8 real flops)
    direct/im2col: 2 N T (C/G) OH OW KH KW flops.
So the contraction alone beats the direct product when KH KW > ~ 4 F / (OH OW) ~ 2 Hp Wp / (OH OW), i.e.
from about 3x3 on, but the transforms, the complex arithmetic running below the real GEMM rate and
the copies make the real crossover larger. Measured (`OPENBLAS_NUM_THREADS=1 minicnn bench conv`, 16->16
channels, 64x64 maps, batch 64, float32, machine shared with other jobs): 3x3 im2col 442 ms vs FFT 823 ms
forward+backward; from 5x5 on FFT wins (5x5: 2000 vs 766 ms; 11x11: 4376 vs 941 ms) — FFT cost barely
grows with the kernel. The crossover moves with the channel counts and the map size. For 3x3 kernels
FFT does not help (the lecture's "does not help for very small filters").
Memory hungry: X, DY and the kernel spectra are complex arrays the size of the padded maps (per map
and per kernel), versus the tiny KH x KW kernels of the spatial methods.

Same signature as its siblings `conv_direct` and `conv_im2col`:
    conv2d_fft(x, w, b, stride, padding, dilation, groups) -> y
    conv2d_fft_backward(dy, x, w, stride, padding, dilation, groups) -> (dx, dw, db)
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

from .checks import conv_output_size

Pair = tuple[int, int]


def _dilate_kernel(w: np.ndarray, dilation: Pair) -> np.ndarray:
    """w (T, C/G, KH, KW) -> (T, C/G, dh (KH-1) + 1, dw (KW-1) + 1) with zeros between the taps."""
    t, cg, kh, kw = w.shape
    dil_h, dil_w = dilation
    if (dil_h, dil_w) == (1, 1):
        return w
    out = np.zeros((t, cg, dil_h * (kh - 1) + 1, dil_w * (kw - 1) + 1), w.dtype)
    out[:, :, ::dil_h, ::dil_w] = w
    return out


def fft_grid(padded: Pair) -> Pair:
    """FFT sizes >= the padded input: the next 2,3,5-smooth even length (even sizes ran faster here)."""
    sizes = []
    for size in padded:
        g = sfft.next_fast_len(size, real=True)
        sizes.append(g if g % 2 == 0 else sfft.next_fast_len(g + 1, real=True))
    return sizes[0], sizes[1]


def _contract(a: np.ndarray, b: np.ndarray, groups: int, spec: str) -> np.ndarray:
    """Per-frequency, per-group channel contraction, as batched complex GEMMs over frequencies.

    spec "nsf,tsf->ntf" (forward / dx-like) or "ntf,nsf->tsf" (dw), with channel axes split in groups.
    """
    f = a.shape[-1]
    if spec == "nsf,tsf->ntf":  # a = X (N, C, F), b = K (T, C/G, F)  -> (N, T, F)
        n, c = a.shape[:2]
        t, cg = b.shape[:2]
        ag = a.reshape(n, groups, cg, f).transpose(1, 3, 0, 2)  # (G, F, N, C/G)
        bg = b.reshape(groups, t // groups, cg, f).transpose(0, 3, 2, 1)  # (G, F, C/G, T/G)
        return np.matmul(ag, bg).transpose(2, 0, 3, 1).reshape(n, t, f)  # (N, T, F)
    # spec "ntf,nsf->tsf": a = DY (N, T, F), b = X (N, C, F) -> (T, C/G, F)
    n, t = a.shape[:2]
    c = b.shape[1]
    ag = a.reshape(n, groups, t // groups, f).transpose(1, 3, 2, 0)  # (G, F, T/G, N)
    bg = b.reshape(n, groups, c // groups, f).transpose(1, 3, 0, 2)  # (G, F, N, C/G)
    return np.matmul(ag, bg).transpose(0, 2, 3, 1).reshape(t, c // groups, f)  # (T, C/G, F)


def spectrum_and_grid(x: np.ndarray, padding: Pair) -> tuple[np.ndarray, Pair]:
    """X = rfft2(x_pad) (N, C, Fh, Fw/2+1), each padded input map transformed once, and its grid (Fh, Fw)."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))  # (N, C, Hp, Wp)
    grid = fft_grid(xp.shape[2:])
    return sfft.rfft2(xp, s=grid), grid


def conv2d_fft(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Pair, dilation: Pair, groups: int,
) -> np.ndarray:
    """x (N, C, H, W), w (T, C/G, KH, KW), b (T,) or None -> y (N, T, OH, OW), by real FFTs:
    y = F^-1( sum_s F(x_pad)[n, s] conj(F(w_dilated))[t, s] ), cropped to the valid part and subsampled."""
    xf, grid = spectrum_and_grid(x, padding)
    return conv2d_fft_from_spectrum(xf, grid, x.shape, w, b, stride, padding, dilation, groups)


def conv2d_fft_from_spectrum(xf: np.ndarray, grid: Pair, x_shape: tuple[int, ...], w: np.ndarray,
                             b: np.ndarray | None, stride: Pair, padding: Pair, dilation: Pair,
                             groups: int) -> np.ndarray:
    """`conv2d_fft` given X = F(x_pad) (`spectrum_and_grid`) of an input of shape x_shape."""
    n, c, h, wd = x_shape
    t, cg, kh, kw = w.shape
    oh = conv_output_size(h, kh, stride[0], padding[0], dilation[0], who="conv2d")
    ow = conv_output_size(wd, kw, stride[1], padding[1], dilation[1], who="conv2d")
    kf = np.conj(sfft.rfft2(_dilate_kernel(w, dilation), s=grid))  # (T, C/G, Fh, Fw/2+1), kernels once
    fshape = xf.shape[2:]
    f = fshape[0] * fshape[1]  # named, not -1: an empty batch (N = 0) reshapes too
    yf = _contract(xf.reshape(n, c, f), kf.reshape(t, cg, f), groups, "nsf,tsf->ntf")  # (N, T, F)
    full = sfft.irfft2(yf.reshape(n, t, *fshape), s=grid)  # (N, T, Fh, Fw)
    y = full[:, :, : stride[0] * (oh - 1) + 1: stride[0], : stride[1] * (ow - 1) + 1: stride[1]]
    y = np.ascontiguousarray(y, dtype=np.result_type(xf.real, w))
    if b is not None:
        y += b.reshape(1, t, 1, 1)
    return y


def _upsample(dy: np.ndarray, stride: Pair, size: Pair) -> np.ndarray:
    """dy (N, T, OH, OW) -> (N, T, size) with dy at every stride-th position and zeros elsewhere."""
    n, t = dy.shape[:2]
    out = np.zeros((n, t, *size), dy.dtype)
    out[:, :, : stride[0] * (dy.shape[2] - 1) + 1: stride[0], : stride[1] * (dy.shape[3] - 1) + 1: stride[1]] = dy
    return out


def conv2d_fft_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: Pair, padding: Pair, dilation: Pair, groups: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) of conv2d_fft, every correlation done in the frequency domain (see module docstring)."""
    xf, grid = spectrum_and_grid(x, padding)
    return conv2d_fft_backward_from_spectrum(dy, xf, grid, x.shape, w, stride, padding, dilation, groups)


def conv2d_fft_backward_from_spectrum(
    dy: np.ndarray, xf: np.ndarray, grid: Pair, x_shape: tuple[int, ...], w: np.ndarray, stride: Pair,
    padding: Pair, dilation: Pair, groups: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`conv2d_fft_backward` given X = F(x_pad) (`spectrum_and_grid`) of an input of shape x_shape."""
    n, c, h, wd = x_shape
    t, cg = w.shape[:2]
    wdil = _dilate_kernel(w, dilation)
    eh, ew = wdil.shape[2:]
    grid1 = (conv_output_size(h, w.shape[2], 1, padding[0], dilation[0], who="conv2d"),
             conv_output_size(wd, w.shape[3], 1, padding[1], dilation[1], who="conv2d"))
    dy1 = _upsample(dy, stride, grid1)  # dy on the stride-1 output grid
    fshape = xf.shape[2:]
    f = fshape[0] * fshape[1]  # named, not -1: an empty batch (N = 0) reshapes too
    xf = xf.reshape(n, c, f)  # (N, C, F)
    dyf = sfft.rfft2(dy1, s=grid).reshape(n, t, f)  # (N, T, F)
    wf = sfft.rfft2(wdil, s=grid).reshape(t, cg, f)  # (T, C/G, F)
    # dx_pad[n, s] = sum_t dy1[n, t] (*) w_dil[t, s]: a true convolution, contracted over t within each group
    dxf = _contract(dyf, _swap_in_out(wf, groups), groups, "nsf,tsf->ntf")  # (N, C, F)
    dxp = sfft.irfft2(dxf.reshape(n, c, *fshape), s=grid)  # (N, C, Fh, Fw)
    # dw[t, s] = sum_n corr(x_pad[n, s], dy1[n, t]) = F^-1(sum_n conj(DY) X)
    dwf = _contract(np.conjugate(dyf, out=dyf), xf, groups, "ntf,nsf->tsf")  # (T, C/G, F)
    dw_full = sfft.irfft2(dwf.reshape(t, cg, *fshape), s=grid)
    dw = np.ascontiguousarray(dw_full[:, :, :eh:dilation[0], :ew:dilation[1]], dtype=np.result_type(dy, xf.real))
    dx = np.ascontiguousarray(dxp[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + wd],
                              dtype=np.result_type(dy, w))
    return dx, dw, dy.sum(axis=(0, 2, 3))


def _swap_in_out(wf: np.ndarray, groups: int) -> np.ndarray:
    """(T, C/G, F) -> (C, T/G, F): within each group, out-channels become in-channels (as flip_kernel)."""
    t, cg, f = wf.shape
    return wf.reshape(groups, t // groups, cg, f).transpose(0, 2, 1, 3).reshape(groups * cg, t // groups, f)
