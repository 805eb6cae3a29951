"""Two checkouts of minicnn timed against each other, alternating: did a change cost speed?

    python benchmarks/bench_checkouts.py OLD_DIR NEW_DIR [--rounds 9] [--threads 1]

Each round runs one fresh child process per checkout (the order swaps every round, so both see the same
machine load), with that checkout first on PYTHONPATH and the same thread settings (OPENBLAS_NUM_THREADS=1
and MINICNN_WORKERS=threads, what `minicnn --threads N` sets). A child times every case below through
the public API only (layers, models, loss, optimiser), so any two versions can be compared: each case
is repeated to last about ROUND_SECONDS and the time per call is kept. The table gives, per case, the
MEDIAN over the rounds for each checkout and new/old (below 1: the new checkout is faster).
Batch 64, float32, random inputs (speed does not depend on the values).

    conv ...        Conv2D forward + backward (dx, dw, db), bias, stride 1, padding (K-1)/2 or 0
    BatchNorm2D     training-mode forward + backward on (64, 32, 32, 32)
    ReLU, MaxPool   forward + backward on (64, 32, 32, 32)
    LeNet-5, cifar_net training step: forward, loss, backward, SGD with momentum (ms per step)
The CPU model and the load average before and after are printed with the table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROUND_SECONDS = 0.3  # a child repeats each case for about this long (--seconds)
BATCH = 64
CASES = ["conv 3x3 32->64 16x16", "conv 3x3 64->128 8x8", "conv 3x3 32->32 32x32", "LeNet C3 5x5 6->16",
         "depthwise 3x3 64ch 16x16", "BatchNorm2D", "ReLU", "MaxPool2D(2)", "LeNet-5 step", "cifar_net step"]
CONVS = {  # C, T, kernel, H (= W), padding, groups
    "conv 3x3 32->64 16x16": (32, 64, 3, 16, 1, 1),
    "conv 3x3 64->128 8x8": (64, 128, 3, 8, 1, 1),
    "conv 3x3 32->32 32x32": (32, 32, 3, 32, 1, 1),
    "LeNet C3 5x5 6->16": (6, 16, 5, 14, 0, 1),
    "depthwise 3x3 64ch 16x16": (64, 64, 3, 16, 1, 64),
}


def cpu_model() -> str:
    """The CPU's model name. The same reading as `minicnn.kernels.machine.cpu_model`, kept here on purpose:
    the parent process imports no minicnn, so it can compare any two versions (older ones lack it)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "?"


# ---- the child: every case once, in the checkout on PYTHONPATH ----------------------------------------------

def _per_call_ms(fn, seconds: float) -> float:
    import time

    fn()  # warm up: first-call allocations and caches
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return 1000.0 * elapsed / calls


def _layer_step(layer, x):
    import numpy as np

    dy = np.random.default_rng(1).standard_normal(layer(x).shape, dtype=np.float32)

    def step():
        layer(x)
        layer.backward(dy)
        for p in layer.parameters():
            p.zero_grad()

    return step


def _training_step(name: str, shape):
    import numpy as np

    from minicnn import models
    from minicnn.losses import SoftmaxCrossEntropy
    from minicnn.optim import SGD

    model = models.build(name)
    g = np.random.default_rng(0)
    x = g.standard_normal((BATCH, *shape), dtype=np.float32)
    y = g.integers(0, 10, BATCH)
    loss_fn, opt = SoftmaxCrossEntropy(), SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        loss_fn(model(x), y)
        opt.zero_grad()
        model.backward(loss_fn.backward())
        opt.step()

    return step


def child(seconds: float) -> None:
    import numpy as np

    from minicnn import layers as L

    g = np.random.default_rng(0)
    maps = g.standard_normal((BATCH, 32, 32, 32), dtype=np.float32)
    steps = {}
    for name, (c, t, k, h, pad, groups) in CONVS.items():
        steps[name] = _layer_step(L.Conv2D(c, t, k, padding=pad, groups=groups),
                                  g.standard_normal((BATCH, c, h, h), dtype=np.float32))
    steps["BatchNorm2D"] = _layer_step(L.BatchNorm2D(32), maps)
    steps["ReLU"] = _layer_step(L.ReLU(), maps)
    steps["MaxPool2D(2)"] = _layer_step(L.MaxPool2D(2), maps)
    steps["LeNet-5 step"] = _training_step("lenet5", (1, 28, 28))
    steps["cifar_net step"] = _training_step("cifar_net", (3, 32, 32))
    print(json.dumps({name: _per_call_ms(steps[name], seconds) for name in CASES}))


# ---- the parent: alternate the checkouts ------------------------------------------------------------------

def run_child(checkout: Path, threads: int, seconds: float) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(checkout), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MINICNN_WORKERS=str(threads))
    env.pop("MINICNN_PLAIN", None)
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(seconds)], cwd=checkout,
                         env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        sys.exit(f"bench_checkouts: the child in {checkout} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    if argv is None and sys.argv[1:2] == ["--child"]:
        child(float(sys.argv[2]))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("old", type=Path, help="checkout of the version before the change")
    p.add_argument("new", type=Path, help="checkout of the version after it")
    p.add_argument("--rounds", type=int, default=9, help="alternating rounds (median reported; default 9)")
    p.add_argument("--threads", type=int, default=1, help="minicnn workers (MINICNN_WORKERS; default 1)")
    p.add_argument("--seconds", type=float, default=ROUND_SECONDS,
                   help=f"time per case per child (default {ROUND_SECONDS})")
    args = p.parse_args(argv)
    for d in (args.old, args.new):
        if not (d / "minicnn" / "__init__.py").is_file():
            p.error(f"expected a minicnn checkout (a folder holding minicnn/__init__.py), got {d}")
    if args.rounds < 1 or args.threads < 1 or not args.seconds > 0:
        p.error("--rounds and --threads must be >= 1 and --seconds > 0")
    print(f"{cpu_model()}, {os.cpu_count()} cores; workers {args.threads}; load {load_average()}")
    times = {"old": {c: [] for c in CASES}, "new": {c: [] for c in CASES}}
    for r in range(args.rounds):
        order = ("old", "new") if r % 2 == 0 else ("new", "old")
        for side in order:
            for case, ms in run_child(getattr(args, side).resolve(), args.threads, args.seconds).items():
                times[side][case].append(ms)
        print(f"  round {r + 1}/{args.rounds} done", file=sys.stderr)
    print(f"{'case':<26}{'old ms':>10}{'new ms':>10}{'new/old':>9}")
    for case in CASES:
        old, new = statistics.median(times["old"][case]), statistics.median(times["new"][case])
        print(f"{case:<26}{old:>10.2f}{new:>10.2f}{new / old:>9.2f}")
    print(f"medians of {args.rounds} rounds; load {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
