"""Depthwise 3x3 convolution (64 channels, 16x16, batch 64, float32), forward + backward:
minicnn's shift-and-accumulate against PyTorch's grouped convolution, timed in ALTERNATING
iterations of one loop so both see the same machine load (medians reported).

    python benchmarks/bench_depthwise.py [--threads 1] [--repeats 15]

Measured 2026-11-22 on the 2-core machine, nearly idle: 1 thread 28.5 ms vs 19.2 ms (ratio 1.48);
2 threads 41.0 ms vs 16.6 ms (ratio 2.48). Needs PyTorch (not a minicnn dependency).
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args(argv)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before NumPy is imported
    import numpy as np

    from minicnn import layers as L

    try:
        import torch
    except ImportError:
        print("bench_depthwise: PyTorch is not installed; nothing to compare against", file=sys.stderr)
        return 1
    torch.set_num_threads(args.threads)
    x = np.random.default_rng(0).standard_normal((64, 64, 16, 16)).astype(np.float32)
    ours = L.DepthwiseConv2D(64, 3, padding=1)
    tx = torch.from_numpy(x).requires_grad_(True)
    theirs = torch.nn.Conv2d(64, 64, 3, padding=1, groups=64)

    def run_ours():
        y = ours(x)
        ours.backward(np.ones_like(y))

    def run_theirs():
        y = theirs(tx)
        y.backward(torch.ones_like(y))

    times: dict[str, list[float]] = {"minicnn": [], "pytorch": []}
    for _ in range(args.repeats):
        for name, run in (("minicnn", run_ours), ("pytorch", run_theirs)):
            t0 = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)
    med = {k: 1000 * float(np.median(v)) for k, v in times.items()}
    print(f"depthwise 3x3, 64 ch, 16x16, batch 64, fwd+bwd, {args.threads} thread(s): minicnn {med['minicnn']:.2f} ms,"
          f" pytorch {med['pytorch']:.2f} ms, ratio {med['minicnn'] / med['pytorch']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
