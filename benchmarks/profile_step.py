"""Where a training step's time goes, layer by layer: `python benchmarks/profile_step.py [MODEL] [--steps 10]`.

Builds a registered model (default cifar_net) at its natural input, batch 64, float32, and times every
top-level layer's forward and backward (wall ms per step, summed over `--steps` steps after one warm-up),
plus the optimiser (SGD, momentum 0.9, weight decay 5e-4), as `bench_vs_torch.py` trains it. The first
layer skips d(loss)/d(image), as the training loop does. Freed memory is kept for reuse, as the `minicnn`
command does (`minicnn.threads.keep_freed_memory`); set OPENBLAS_NUM_THREADS / MINICNN_WORKERS to choose
threads. Output fits 80 columns.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from collections import defaultdict

import numpy as np

from minicnn import core, optim
from minicnn.losses import SoftmaxCrossEntropy
from minicnn.models import MODELS, build, default_input
from minicnn.threads import keep_freed_memory


def _timed(layer, key: str, totals: dict) -> None:
    """Wrap layer.forward / layer.backward so each call adds its wall seconds to totals[key]."""
    forward, backward = layer.forward, layer.backward

    def timed_forward(*args, **kwargs):
        t0 = time.perf_counter()
        out = forward(*args, **kwargs)
        totals[key][0] += time.perf_counter() - t0
        return out

    def timed_backward(*args, **kwargs):
        t0 = time.perf_counter()
        out = backward(*args, **kwargs)
        totals[key][1] += time.perf_counter() - t0
        return out

    layer.forward, layer.backward = timed_forward, timed_backward


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", nargs="?", default="cifar_net", metavar="MODEL",
                   help="a registered model (default cifar_net)")
    p.add_argument("--steps", type=int, default=10, help="timed training steps (default 10)")
    args = p.parse_args(argv)
    if args.model not in MODELS:
        p.error(f"unknown model {args.model!r}; the registered ones:\n"
                + textwrap.fill(", ".join(sorted(MODELS)), 78, initial_indent="  ", subsequent_indent="  "))
    if args.steps < 1:
        p.error(f"--steps: expected a whole number >= 1, got {args.steps}")
    keep_freed_memory()
    g = np.random.default_rng(0)
    x = g.standard_normal((64, *default_input(args.model)), dtype=np.float32)
    labels = g.integers(0, 10, 64)
    core.manual_seed(0)
    model = build(args.model)
    model[0].input_grad = False
    opt = optim.SGD(model.parameters(), 0.05, momentum=0.9, weight_decay=5e-4)
    loss_fn = SoftmaxCrossEntropy()
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    keys = [f"{i:02d} {type(layer).__name__}" for i, layer in enumerate(model)]
    for layer, key in zip(model, keys, strict=True):
        _timed(layer, key, totals)

    def step() -> float:
        t0 = time.perf_counter()
        loss_fn.forward(model(x), labels)
        model.backward(loss_fn.backward())
        t1 = time.perf_counter()
        opt.step()
        opt.zero_grad()
        totals["optimiser"][0] += time.perf_counter() - t1
        return time.perf_counter() - t0

    step()
    totals.clear()
    seconds = sum(step() for _ in range(args.steps))
    ms = 1e3 / args.steps
    print(f"{args.model}, batch 64: {seconds * ms:.1f} ms per step, {64 * args.steps / seconds:,.0f} images/s")
    print(f"{'layer':<28}{'forward ms':>12}{'backward ms':>13}{'share':>8}")
    for key in [*keys, "optimiser"]:
        f, b = totals[key]
        print(f"{key:<28}{f * ms:>12.2f}{b * ms:>13.2f}{(f + b) / seconds:>8.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
