"""The one gradient checker: analytic backward against central differences, float64 only.

For a layer y = f(x; w) and a random upstream gradient g (same shape as y), the scalar
L = sum(g * y) has dL/dy = g, so `layer.backward(g)` must return dL/dx and add dL/dw into w.grad.
Each entry is compared with the central difference

    dL/dx_i ~ (L(x + eps e_i) - L(x - eps e_i)) / (2 eps),   computed as sum(g * (y+ - y-)) / (2 eps)

and the relative error |analytic - numeric| / max(|analytic|, |numeric|, floor) is reported as a
*maximum* over entries, with the index where it occurs. Also checked, as PyTorch's gradcheck does:
backward is deterministic (two calls give the same result) and a zero upstream gradient gives zero
gradients. Random layers (Dropout) are made repeatable by restoring the engine RNG before every
forward.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from minicnn import core
from minicnn.core import Layer

DEFAULT_EPS = 1e-6
DEFAULT_TOL = 1e-6
ERROR_FLOOR = 1e-3  # denominators below this are treated as this: avoids dividing noise by ~0


@dataclass
class TensorReport:
    name: str
    shape: tuple[int, ...]
    max_rel_error: float
    worst_index: tuple[int, ...]
    analytic: float
    numeric: float


@dataclass
class GradcheckReport:
    layer: str
    tol: float
    tensors: list[TensorReport] = field(default_factory=list)
    deterministic: bool = True
    zero_upstream_ok: bool = True

    @property
    def max_rel_error(self) -> float:
        return max((t.max_rel_error for t in self.tensors), default=0.0)

    @property
    def ok(self) -> bool:
        return self.max_rel_error < self.tol and self.deterministic and self.zero_upstream_ok

    def table(self) -> str:
        """The report as lines of at most 80 columns: one row per tensor (shapes as 2x3x5x5, the worst
        element's index as 1,0,2,4), then the two consistency checks and the verdict."""
        heads = ("tensor", "shape", "max rel err", "at", "analytic", "numeric")
        rows = [(t.name, "x".join(map(str, t.shape)) or "scalar", f"{t.max_rel_error:.2e}",
                 ",".join(map(str, t.worst_index)) or "-", f"{t.analytic:.6g}", f"{t.numeric:.6g}")
                for t in self.tensors]
        widths = [max(len(r[i]) for r in [heads, *rows]) for i in range(len(heads))]
        align = "<<><>>"  # names, shapes and indices left; numbers right
        line = "  ".join(f"{{:{a}{w}}}" for a, w in zip(align, widths, strict=True))
        lines = [f"gradcheck {self.layer}  (float64, central differences, tol {self.tol:g})",
                 *(line.format(*r) for r in [heads, *rows])]
        yes = {True: "yes", False: "NO"}
        lines.append(f"backward deterministic: {yes[self.deterministic]};  "
                     f"zero upstream -> zero gradients: {yes[self.zero_upstream_ok]}")
        lines.append(f"result: {'PASS' if self.ok else 'FAIL'} (worst relative error {self.max_rel_error:.2e})")
        return "\n".join(lines)


def rel_errors(analytic: np.ndarray, numeric: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """Per element |a - n| / max(|a|, |n|, ERROR_FLOOR), and the index of the worst one (() when empty)."""
    err = np.abs(analytic - numeric) / np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), ERROR_FLOOR)
    i = np.unravel_index(int(np.argmax(err)), err.shape) if err.size else ()
    return err, i


def numeric_gradient(forward, g: np.ndarray, array: np.ndarray, eps: float) -> np.ndarray:
    """Central differences of L = sum(g * forward()) with respect to every entry of `array`
    (perturbed in place and restored). The two outputs are subtracted before the sum, which keeps
    the rounding error near 1e-10 instead of 1e-16 * |L| / eps."""
    grad = np.zeros_like(array)
    for i in np.ndindex(array.shape):  # indexing, not a reshape: a strided view is perturbed in place too
        old = array[i]
        array[i] = old + eps
        plus = forward().copy()
        array[i] = old - eps
        minus = forward().copy()
        array[i] = old
        grad[i] = np.sum(g * (plus - minus)) / (2 * eps)
    return grad


def gradcheck(layer: Layer, x: np.ndarray, eps: float = DEFAULT_EPS, tol: float = DEFAULT_TOL,
              seed: int = 0, raise_on_fail: bool = True, name: str | None = None) -> GradcheckReport:
    """Check `layer.backward` on input `x` (float64) and on every parameter of the layer.

    Returns a `GradcheckReport` (print `report.table()`); raises AssertionError when the worst
    relative error is >= tol or a consistency check fails, unless raise_on_fail=False.
    """
    who = name or type(layer).__name__
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        raise ValueError(
            f"gradcheck({who}): expected a float64 input (central differences in float32 are too "
            f"coarse to check anything), got {getattr(x, 'dtype', type(x).__name__)}; use x.astype(np.float64)"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError(f"gradcheck({who}): expected a finite input, got NaN or inf")
    params = list(layer.named_parameters())
    for pname, p in params:
        if p.data.dtype != np.float64:
            raise ValueError(
                f"gradcheck({who}): expected float64 parameters, got {pname} as {p.data.dtype}; "
                f"call layer.to(np.float64) first"
            )
    x = x.copy()
    rng_state = copy.deepcopy(core.rng().bit_generator.state)

    def forward() -> np.ndarray:
        core.rng().bit_generator.state = copy.deepcopy(rng_state)
        return layer.forward(x)

    y = forward()
    g = np.random.default_rng(seed).standard_normal(y.shape)

    def analytic(upstream: np.ndarray):
        layer.zero_grad()
        forward()
        dx = layer.backward(upstream.copy())
        return dx.copy(), [p.grad.copy() for _, p in params]

    dx, dps = analytic(g)
    dx2, dps2 = analytic(g)
    report = GradcheckReport(layer=who, tol=tol)
    report.deterministic = np.array_equal(dx, dx2) and all(np.array_equal(a, b) for a, b in zip(dps, dps2, strict=True))
    zx, zps = analytic(np.zeros_like(g))
    report.zero_upstream_ok = not np.any(zx) and not any(np.any(z) for z in zps)

    if dx.shape != x.shape:
        raise AssertionError(f"gradcheck({who}): backward returned dx of shape {dx.shape}, input is {x.shape}")
    targets = [("input", x, dx)] + [(pname, p.data, d) for (pname, p), d in zip(params, dps, strict=True)]
    for tname, array, a in targets:
        n = numeric_gradient(forward, g, array, eps)
        err, i = rel_errors(a, n)
        report.tensors.append(TensorReport(
            tname, array.shape, float(err[i]) if err.size else 0.0, tuple(int(j) for j in i),
            float(a[i]) if err.size else 0.0, float(n[i]) if err.size else 0.0))
    layer.zero_grad()
    if raise_on_fail and not report.ok:
        raise AssertionError(report.table())
    return report
