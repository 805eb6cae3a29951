"""Input checks and the one output-size formula, shared by every function and layer.

Every check raises `ValueError` with a message that names the caller (`who`), what was expected
and what was received, e.g. ``Conv2D: expected input (N, 3, H, W), got shape (8, 1, 28, 28)``.
"""

from __future__ import annotations

import numpy as np

from minicnn.core import check_grad  # noqa: F401  (re-exported: the checks of minicnn.functional are all here)


def pair(value, who: str, name: str) -> tuple[int, int]:
    """An int or a pair of ints -> (h, w). Refuses anything else by name."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value), int(value)
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
    ):
        return int(value[0]), int(value[1])
    raise ValueError(f"{who}: expected {name} as an int or a pair of ints, got {value!r}")


def positive_int(value, who: str, name: str) -> int:
    """`value` as an int >= 1 (bools and floats refused), else ValueError naming `who` and `name`."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{who}: expected {name} as an int >= 1, got {value!r}")
    return int(value)


def positive_pair(value, who: str, name: str) -> tuple[int, int]:
    """An int or a pair of ints, each >= 1 -> (h, w)."""
    h, w = pair(value, who, name)
    if h < 1 or w < 1:
        raise ValueError(f"{who}: expected {name} >= 1, got {value!r}")
    return h, w


def check_array(x, who: str, ndim: int, layout: str) -> np.ndarray:
    """x must be a floating ndarray of rank `ndim`; `layout` (e.g. "(N, C, H, W)") goes in the message."""
    if not isinstance(x, np.ndarray):
        raise ValueError(f"{who}: expected a NumPy array {layout}, got {type(x).__name__}")
    if x.ndim != ndim:
        raise ValueError(f"{who}: expected a {ndim}-D input {layout}, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{who}: expected a floating-point input {layout}, got dtype {x.dtype}")
    return x


def check_float(x, who: str) -> None:
    """x must be a floating-point ndarray, of any shape (the value-by-value layers take every rank)."""
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{who}: expected a floating-point ndarray, got {type(x).__name__} "
                         f"{getattr(x, 'dtype', '')}")


def check_size(x: np.ndarray, axis: int, expected: int, who: str, layout: str) -> None:
    """x.shape[axis] must equal `expected`."""
    if x.shape[axis] != expected:
        want = layout
        raise ValueError(
            f"{who}: expected input {want} with size {expected} on axis {axis}, got shape {x.shape}"
        )


def check_finite(x: np.ndarray, who: str) -> None:
    if not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(f"{who}: expected a finite input, got {x[tuple(bad)]} at index {tuple(bad)}")


def conv_output_size(
    size: int, kernel: int, stride: int = 1, padding: int | tuple[int, int] = 0, dilation: int = 1,
    *, who: str = "conv",
) -> int:
    """Output length of a sliding window along one axis.

        OUT = floor((size + pad_before + pad_after - dilation*(kernel-1) - 1) / stride) + 1

    `padding` is an int (both sides) or (before, after). Raises if the (dilated) window does not fit
    in the padded input.
    """
    before, after = (padding, padding) if isinstance(padding, (int, np.integer)) else padding
    span = dilation * (kernel - 1) + 1
    padded = size + before + after
    if span > padded:
        raise ValueError(
            f"{who}: window of extent {span} (kernel {kernel}, dilation {dilation}) is larger than the "
            f"padded input {padded} (size {size} + padding {before}+{after})"
        )
    if stride < 1:
        raise ValueError(f"{who}: expected stride >= 1, got {stride}")
    return (padded - span) // stride + 1
