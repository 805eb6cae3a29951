"""cifar_net's BatchNorm2D, ReLU and MaxPool2D layers against PyTorch, one thread, float32, batch 64.

    python benchmarks/bench_norm.py [--rounds 9] [--plain]

Each case is timed with `minicnn.commands.bench.alternate` (minicnn, PyTorch, minicnn, ... round by
round, so both see the same machine load); a round repeats the work to last about 50 ms and the MEDIAN
round is reported, with the load average before and after. Cases: training-mode forward alone and
forward + backward (d input and the layer's parameters) of BatchNorm2D at the three shapes cifar_net
normalises, of ReLU and MaxPool2D(2) on (64, 32, 32, 32), and of MaxPool2D(2) on (64, 64, 16, 16)
(cifar_net's two poolings). dy is random. PyTorch is optional (never a minicnn dependency): without
it only minicnn's times are printed. The layers run the fast kernels (`minicnn.kernels`); --plain times
the plain course math (`minicnn.functional`, `minicnn.runtime.use_kernels(False)`) instead.

Measured 2026-11-29 (PyTorch 2.13 CPU, 2-core machine shared with other jobs, load average 0.96),
median ms minicnn / PyTorch: BatchNorm2D (32, 32, 32) fwd 1.64 / 4.13, fwd+bwd 4.70 / 6.83;
(64, 16, 16) 0.68 / 2.00, 1.61 / 3.25; (128, 8, 8) 0.41 / 1.02, 0.88 / 1.50; ReLU 0.71 / 0.39,
1.82 / 1.41; MaxPool2D(2) 2.25 / 11.75, 4.51 / 13.05. MaxPool2D(2) after its contiguous 2x2 taps (same
day, load average 1.3, the second of two runs; the first, busier, gave 4.07 and 6.18 for the first
line): (32, 32, 32) 1.83 / 11.49, 4.07 / 12.58; (64, 16, 16) 0.96 / 5.97, 1.94 / 6.59.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from minicnn.commands._options import integer

ROUND_SECONDS = 0.05  # each timed round repeats the work to last about this long
BATCH = 64
BN_SHAPES = [(BATCH, 32, 32, 32), (BATCH, 64, 16, 16), (BATCH, 128, 8, 8)]
MAP_SHAPE = (BATCH, 32, 32, 32)
POOL2_SHAPE = (BATCH, 64, 16, 16)  # cifar_net's second MaxPool2D(2)


def _cases(torch):
    """(label, minicnn fn, PyTorch fn or None) for every case."""
    from minicnn import layers as L
    from minicnn.commands.bench import layer_calls

    g = np.random.default_rng(0)
    out = []
    specs = [(f"BatchNorm2D {s[1:]}", lambda s=s: L.BatchNorm2D(s[1]), s,
              (lambda s=s: torch.nn.BatchNorm2d(s[1])) if torch else None) for s in BN_SHAPES]
    specs += [("ReLU (32, 32, 32)", L.ReLU, MAP_SHAPE, (lambda: torch.nn.ReLU()) if torch else None),
              ("MaxPool2D(2) (32, 32, 32)", lambda: L.MaxPool2D(2), MAP_SHAPE,
               (lambda: torch.nn.MaxPool2d(2)) if torch else None),
              ("MaxPool2D(2) (64, 16, 16)", lambda: L.MaxPool2D(2), POOL2_SHAPE,
               (lambda: torch.nn.MaxPool2d(2)) if torch else None)]
    for label, make, shape, make_torch in specs:
        layer = make()
        x = g.standard_normal(shape, dtype=np.float32)
        dy = g.standard_normal(layer(x).shape, dtype=np.float32)

        ours_f, ours_fb = layer_calls(layer, x, dy)

        theirs_f = theirs_fb = None
        if make_torch is not None:
            module = make_torch()
            tx, tdy = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dy)

            def theirs_f(module=module, tx=tx):
                module(tx)

            def theirs_fb(module=module, tx=tx, tdy=tdy):
                module(tx).backward(tdy)
                tx.grad = None
                for p in module.parameters():
                    p.grad = None

        out += [(f"{label} fwd", ours_f, theirs_f), (f"{label} fwd+bwd", ours_fb, theirs_fb)]
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=integer(1), default=9, help="alternating rounds per case (median reported)")
    p.add_argument("--plain", action="store_true", help="time the plain math (minicnn.functional), not the kernels")
    args = p.parse_args(argv)
    os.environ["OPENBLAS_NUM_THREADS"] = "1"  # before NumPy's BLAS starts (no effect once loaded)
    from minicnn import runtime
    from minicnn.commands.bench import alternate, calls_per_round, repeated
    from minicnn.threads import keep_freed_memory

    keep_freed_memory()  # as the `minicnn` command does
    if args.plain:
        runtime.use_kernels(False)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        torch = None
    math = "plain math" if args.plain else "kernels"
    print(f"1 thread, float32, batch {BATCH}, {math}; load average {os.getloadavg()[0]:.2f}")
    print(f"{'case (median ms)':<40}{'minicnn':>9}{'pytorch':>9}{'ratio':>7}")
    for label, ours, theirs in _cases(torch):
        inner = calls_per_round(ours, ROUND_SECONDS)
        engines = {"ours": repeated(ours, inner)}
        if theirs is not None:
            engines["torch"] = repeated(theirs, inner)
        times = {k: float(np.median(v)) / inner * 1e3 for k, v in alternate(engines, args.rounds).items()}
        if "torch" in times:
            print(f"{label:<40}{times['ours']:>9.2f}{times['torch']:>9.2f}{times['ours'] / times['torch']:>7.2f}")
        else:
            print(f"{label:<40}{times['ours']:>9.2f}{'-':>9}{'-':>7}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
