"""The floor under a GEMM-based convolution: its three matrix products alone, against PyTorch's whole layer.

    python benchmarks/bench_floor.py [--rounds 9] [--only TEXT]

minicnn computes a convolution's forward and backward as three matrix products (GEMMs) plus copies:

    forward   y  = W (T, C*K*K) @ cols (C*K*K, N*P)           P = OH*OW output pixels per image
    backward  dx = W_flip (C, T*K*K) @ dy_cols (T*K*K, N*Q)   Q = H*W input pixels (or col2im of W^T dy)
              dw = dy (T, N*P) @ cols^T (N*P, C*K*K)

For each convolution of `bench_vs_torch.py` (and cifar_net's two largest) this times the three products
ALONE, on operands built beforehand and kept hot in cache (no im2col, no copies, no wasted "wide"
columns, no memory traffic), each in the fastest of its forms (blocks of 1 to 64 images per product,
either orientation), and alternates them round by round with
minicnn's Conv2D forward + backward and PyTorch's (when installed), medians of `--rounds` rounds, at
the thread count the environment sets (OPENBLAS_NUM_THREADS; PyTorch gets the same). The "floor"
column is what NumPy's BLAS needs for the arithmetic alone: a layer built on these products cannot be
faster, and copies come on top of it.

It prints the CPU model and cache sizes first and, at the end, the plans minicnn's planner chose for each
layer (`minicnn tune`'s table; the first call of each layer plans it, outside the timed medians'
majority). With MINICNN_NO_TUNE=1 minicnn runs its fixed defaults.

Measured 2026-11-29, quiet 2-core machine, 1 thread, PyTorch 2.13 CPU: see the closing note of issue 15.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from minicnn import layers as L
from minicnn.commands.bench import alternate, layer_calls, repeated
from minicnn.threads import configured_threads

BATCH = 64
CASES = [  # label, C, T, kernel, H (= W), padding
    ("conv 3x3 32->64 16x16", 32, 64, 3, 16, 1),
    ("conv 3x3 64->128 8x8", 64, 128, 3, 8, 1),
    ("conv 3x3 32->32 32x32", 32, 32, 3, 32, 1),
    ("conv 3x3 64->64 16x16", 64, 64, 3, 16, 1),
    ("LeNet C3 5x5 6->16 14x14", 6, 16, 5, 14, 0),
]


BLOCKS = (1, 2, 4, 8, 16, 64)  # images per product tried: the layer picks its own; the floor takes the best


def _forms(m: int, k: int, per_image: int, rng) -> dict:
    """(m, k) @ (k, B*per_image) for B in BLOCKS, in both orientations, on operands made once and kept
    hot in cache: each callable runs BATCH/B products, i.e. one batch's worth of arithmetic."""
    forms = {}
    for b in BLOCKS:
        a = rng.standard_normal((m, k), dtype=np.float32)
        right = rng.standard_normal((k, b * per_image), dtype=np.float32)
        right_t = np.ascontiguousarray(right.T)  # (B*per_image, k)
        out, out_t = np.empty((m, b * per_image), np.float32), np.empty((b * per_image, m), np.float32)
        forms[f"{b} plain"] = repeated(lambda a=a, r=right, o=out: np.matmul(a, r, out=o), BATCH // b)
        forms[f"{b} transposed"] = repeated(lambda a=a, r=right_t, o=out_t: np.matmul(r, a.T, out=o), BATCH // b)
    return forms


def _dw_forms(t: int, ckk: int, per_image: int, rng) -> dict:
    """dw (T, C*K*K) += dy (T, B*P) @ cols^T (B*P, C*K*K) for B in BLOCKS, both orientations, hot in cache."""
    forms = {}
    for b in BLOCKS:
        dy = rng.standard_normal((t, b * per_image), dtype=np.float32)
        cols_t = rng.standard_normal((b * per_image, ckk), dtype=np.float32)
        cols = np.ascontiguousarray(cols_t.T)
        out, out_t = np.empty((t, ckk), np.float32), np.empty((ckk, t), np.float32)
        forms[f"{b} plain"] = repeated(lambda d=dy, c=cols_t, o=out: np.matmul(d, c, out=o), BATCH // b)
        forms[f"{b} transposed"] = repeated(lambda d=dy, c=cols, o=out_t: np.matmul(c, d.T, out=o), BATCH // b)
    return forms


def _fastest(forms: dict, rounds: int) -> float:
    times = alternate(forms, rounds)
    return min(float(np.median(v)) for v in times.values())


def floor_ms(c: int, t: int, k: int, h: int, pad: int, rounds: int) -> float:
    """The three products of one convolution (batch BATCH), each in its fastest form, ms in all."""
    rng = np.random.default_rng(0)
    p = (h + 2 * pad - k + 1) ** 2
    seconds = _fastest(_forms(t, c * k * k, p, rng), rounds)  # forward
    seconds += _fastest(_forms(c, t * k * k, h * h, rng), rounds)  # dx, the flipped-kernel form
    seconds += _fastest(_dw_forms(t, c * k * k, p, rng), rounds)  # dw
    return seconds * 1e3


def layer_ms(c: int, t: int, k: int, h: int, pad: int, rounds: int, torch) -> dict[str, float]:
    """minicnn's Conv2D (and PyTorch's) forward + backward, alternating, medians in ms."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((BATCH, c, h, h), dtype=np.float32)
    layer = L.Conv2D(c, t, k, padding=pad, bias=False)
    dy = rng.standard_normal(layer(x).shape, dtype=np.float32)
    engines = {"minicnn": repeated(layer_calls(layer, x, dy)[1], 3)}
    if torch is not None:
        conv = torch.nn.Conv2d(c, t, k, padding=pad, bias=False)
        tx, tdy = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dy)

        def theirs():
            conv(tx).backward(tdy)
            tx.grad = conv.weight.grad = None

        engines["pytorch"] = repeated(theirs, 3)
    return {name: float(np.median(v)) / 3 * 1e3 for name, v in alternate(engines, rounds).items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=9, help="alternating rounds per measurement (default 9)")
    p.add_argument("--only", default="", metavar="TEXT", help="only the convolutions whose label holds TEXT")
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error(f"--rounds: expected a whole number >= 1, got {args.rounds}")
    cases = [case for case in CASES if args.only in case[0]]
    if not cases:
        p.error(f"--only: no convolution label holds {args.only!r}")
    try:
        import torch

        torch.set_num_threads(configured_threads())
    except ImportError:
        torch = None
    from minicnn.commands.tune import header, used_plans_table

    print("\n".join(header()))
    print(f"batch {BATCH}, float32, {configured_threads()} BLAS thread(s), ms per forward + backward")
    if torch is None:
        print("PyTorch is not installed: its columns stay empty")
    print(f"{'convolution':<26}{'floor':>8}{'minicnn':>9}{'pytorch':>9}{'floor/pt':>10}{'ours/pt':>9}")
    for label, *shape in cases:
        floor = floor_ms(*shape, args.rounds)
        times = layer_ms(*shape, args.rounds, torch)
        theirs = times.get("pytorch", float("nan"))
        ratios = f"{floor / theirs:>9.2f}x{times['minicnn'] / theirs:>8.2f}x" if torch else f"{'-':>10}{'-':>9}"
        print(f"{label:<26}{floor:>8.2f}{times['minicnn']:>9.2f}{theirs:>9.2f}{ratios}")
    print("floor: the three matrix products alone, each in its fastest form (no copies);")
    print("a GEMM-based layer cannot beat it. Ratios: time / PyTorch's time.")
    print("\nplans chosen by minicnn's planner (layer: weight @ H x W, ms per call):")
    print("\n".join(used_plans_table()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
