"""Argument checks the layer constructors share (array checks are in `minicnn.functional.checks`)."""

from __future__ import annotations

import numpy as np


def positive_int(value, who: str, name: str) -> int:
    """`value` as an int >= 1 (bools and floats refused), else ValueError naming `who` and `name`."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{who}: expected {name} as an int >= 1, got {value!r}")
    return int(value)
