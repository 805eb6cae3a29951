"""Feature slicing (space-to-depth) and the orthonormal Haar wavelet downsampling, with exact inverses.

Slicing (the review's information-retaining downsampling): cut the map into r x r blocks and move
the r*r values of each block onto channels. Nothing is dropped: (N, C, H, W) -> (N, C*r*r, H/r, W/r).
Element order is that of `torch.nn.functional.pixel_unshuffle`:

    space_to_depth:  y[n, c*r*r + i*r + j, h, w] = x[n, c, h*r + i, w*r + j]     0 <= i, j < r
    depth_to_space:  the inverse (pixel_shuffle order), x[n, c, h*r + i, w*r + j] = y[n, c*r*r + i*r + j, h, w]

Both are permutations of the entries, so each one's backward is the other one.
Patch merging (Swin) = space_to_depth followed by a 1x1 convolution (a linear map of the r*r*C values
of each patch); together they equal an r x r convolution with stride r whose weight is the 1x1
weight reshaped to (OUT, C, r, r) (tests/test_slicing.py checks this).

Haar DWT (one level, orthonormal). For each 2x2 block [[a, b], [c, d]] (a = top-left):

    LL = (a + b + c + d) / 2     low-pass along H and W (a scaled 2x2 average)
    LH = (a - b + c - d) / 2     low along H, high along W  (responds to vertical edges)
    HL = (a + b - c - d) / 2     high along H, low along W  (responds to horizontal edges)
    HH = (a - b - c + d) / 2     high along both (diagonal detail)

The 4x4 matrix is a Hadamard matrix / 2: symmetric and orthogonal, so it is its own inverse and the
backward of the downsampling is the upsampling (the adjoint of an orthogonal map is its inverse).
Output channels are band-major: y[:, 0:C] = LL, y[:, C:2C] = LH, y[:, 2C:3C] = HL, y[:, 3C:4C] = HH.
Exactness: every sum and the halving are exact in float64 when the inputs are float32 values within a
2^28 dynamic range (e.g. 8-bit images / 255), so the round trip then has max error 0; for arbitrary
float64 inputs it is within a few ulps.
"""

from __future__ import annotations

import numpy as np

from .checks import check_array, positive_int

_LAYOUT = "(N, C, H, W)"


def space_to_depth(x: np.ndarray, factor: int = 2, who: str = "space_to_depth") -> np.ndarray:
    """(N, C, H, W) -> (N, C*r*r, H/r, W/r), pixel_unshuffle order; H and W must be multiples of r."""
    r = positive_int(factor, who, "factor")
    check_array(x, who, 4, _LAYOUT)
    N, C, H, W = x.shape
    if H % r or W % r:
        raise ValueError(f"{who}: expected input (N, C, H, W) with H and W divisible by factor {r}, "
                         f"got shape {x.shape}")
    x6 = x.reshape(N, C, H // r, r, W // r, r)  # (N, C, OH, i, OW, j)
    return x6.transpose(0, 1, 3, 5, 2, 4).reshape(N, C * r * r, H // r, W // r)  # (N, C*r*r, OH, OW)


def depth_to_space(x: np.ndarray, factor: int = 2, who: str = "depth_to_space") -> np.ndarray:
    """(N, C*r*r, H, W) -> (N, C, H*r, W*r), pixel_shuffle order; channels must be a multiple of r*r."""
    r = positive_int(factor, who, "factor")
    check_array(x, who, 4, "(N, C*r*r, H, W)")
    N, CRR, H, W = x.shape
    if CRR % (r * r):
        raise ValueError(f"{who}: expected input (N, C*{r * r}, H, W) with channels divisible by "
                         f"{r * r}, got shape {x.shape}")
    x6 = x.reshape(N, CRR // (r * r), r, r, H, W)  # (N, C, i, j, H, W)
    return x6.transpose(0, 1, 4, 2, 5, 3).reshape(N, CRR // (r * r), H * r, W * r)  # (N, C, H, i, W, j)


def haar_downsample(x: np.ndarray, who: str = "haar_downsample") -> np.ndarray:
    """One orthonormal Haar level: (N, C, H, W) -> (N, 4C, H/2, W/2), bands [LL, LH, HL, HH] on channels."""
    s = space_to_depth(x, 2, who)  # (N, C*4, OH, OW), channel c*4 + i*2 + j
    N, C4, OH, OW = s.shape
    s = s.reshape(N, C4 // 4, 4, OH, OW)
    a, b, c, d = s[:, :, 0], s[:, :, 1], s[:, :, 2], s[:, :, 3]  # (N, C, OH, OW) each
    bands = ((a + b) + (c + d), (a - b) + (c - d), (a + b) - (c + d), (a - b) - (c - d))
    return np.concatenate(bands, axis=1) * 0.5  # (N, 4C, OH, OW), band-major


def haar_upsample(y: np.ndarray, who: str = "haar_upsample") -> np.ndarray:
    """Exact inverse of `haar_downsample` (the same matrix again): (N, 4C, H, W) -> (N, C, 2H, 2W).
    Also its backward, because the transform is orthogonal."""
    check_array(y, who, 4, "(N, 4C, H, W)")
    N, C4, H, W = y.shape
    if C4 % 4:
        raise ValueError(f"{who}: expected input (N, 4C, H, W) with channels divisible by 4, got shape {y.shape}")
    C = C4 // 4
    ll, lh, hl, hh = y[:, :C], y[:, C:2 * C], y[:, 2 * C:3 * C], y[:, 3 * C:]
    blocks = ((ll + lh) + (hl + hh), (ll - lh) + (hl - hh), (ll + lh) - (hl + hh), (ll - lh) - (hl - hh))
    s = np.stack(blocks, axis=2) * 0.5  # (N, C, 4, H, W): block entries a, b, c, d
    return depth_to_space(s.reshape(N, C4, H, W), 2, who)
