"""What a convolution layer keeps between its forward and its backward call on the fast path.

A layer creates one `ConvWorkspace` and passes it to `minicnn.kernels.conv.conv2d` and
`conv2d_backward`. Only what backward needs is kept, and only for the input it belongs to. (The
plain math in `minicnn.functional` keeps nothing: its backward recomputes from x.)
"""

from __future__ import annotations

import numpy as np


class ConvWorkspace:
    """Per-layer state of the convolution algorithms, between forward and backward.

    Fields
      source    the input x that `spectrum` was computed from (compared by identity: a backward for
                another x recomputes instead of reading stale data), or None
      spectrum  F(x_pad), the real FFT of the padded input (N, C, Fh, Fw/2+1), complex: the "fft"
                method's forward leaves it for its backward (`minicnn.kernels.conv_fft`); or None
    The "im2col" method keeps nothing here: its backward rebuilds each block's columns from x (cheaper
    than storing them, which would be KH*KW times the size of x); "direct" keeps nothing either.
    """

    __slots__ = ("source", "spectrum")

    def __init__(self) -> None:
        self.source: np.ndarray | None = None
        self.spectrum: np.ndarray | None = None

    def keep_spectrum(self, x: np.ndarray, spectrum: np.ndarray) -> None:
        """Remember F(x_pad) of input x for the backward pass."""
        self.source, self.spectrum = x, spectrum

    def spectrum_of(self, x: np.ndarray) -> np.ndarray | None:
        """F(x_pad) if it was kept for this very x, else None."""
        return self.spectrum if self.source is x else None

    def release(self) -> None:
        """Drop everything held (e.g. after evaluation, when no backward will follow)."""
        self.source = self.spectrum = None

    @property
    def nbytes(self) -> int:
        """Bytes held besides the input itself."""
        return 0 if self.spectrum is None else self.spectrum.nbytes

    def __repr__(self) -> str:
        return f"ConvWorkspace(holds {self.nbytes:,} bytes)"


def as_workspace(workspace: ConvWorkspace | None) -> ConvWorkspace | None:
    """`workspace` itself, checked: a ConvWorkspace or None."""
    if workspace is not None and not isinstance(workspace, ConvWorkspace):
        raise ValueError(f"conv2d: expected workspace as a ConvWorkspace or None, got {type(workspace).__name__}")
    return workspace
