"""Fast twin of the plain FFT convolution (`minicnn.functional.conv_fft`): the same transforms and products.

Optimisations over the plain version:
- the forward pass keeps F(x_pad) in the layer's `ConvWorkspace`, and backward reuses it instead of
  transforming x again (one of the three input-sized transforms of a training step);
- `scipy.fft` runs on `minicnn.threads.own_threads()` workers (read at each call), where the plain
  version takes scipy's default of one.
Measured figures: the module docstring of `minicnn.functional.conv_fft` (`minicnn bench conv`).
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

from minicnn.functional import conv_fft as plain
from minicnn.threads import own_threads

from .workspace import ConvWorkspace

Pair = tuple[int, int]


def conv2d_fft(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Pair, dilation: Pair, groups: int,
    *, workspace: ConvWorkspace | None = None,
) -> np.ndarray:
    """Fast twin of `minicnn.functional.conv_fft.conv2d_fft`: y (N, T, OH, OW) by real FFTs on
    own_threads() workers; `workspace` (a layer's ConvWorkspace) keeps F(x_pad) for the backward pass."""
    with sfft.set_workers(own_threads()):
        xf, grid = plain.spectrum_and_grid(x, padding)  # (N, C, Fh, Fw/2+1)
        if workspace is not None:
            workspace.keep_spectrum(x, xf)  # cache: F(x_pad), reused by backward
        return plain.conv2d_fft_from_spectrum(xf, grid, x.shape, w, b, stride, padding, dilation, groups)


def conv2d_fft_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: Pair, padding: Pair, dilation: Pair, groups: int,
    *, workspace: ConvWorkspace | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fast twin of `minicnn.functional.conv_fft.conv2d_fft_backward`: (dx, dw, db), with F(x_pad) from
    `workspace` when the forward pass left it there for this very x."""
    with sfft.set_workers(own_threads()):
        xf = None if workspace is None else workspace.spectrum_of(x)
        if xf is None:
            xf, grid = plain.spectrum_and_grid(x, padding)
        else:
            grid = plain.fft_grid((x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1]))
        return plain.conv2d_fft_backward_from_spectrum(dy, xf, grid, x.shape, w, stride, padding, dilation, groups)
