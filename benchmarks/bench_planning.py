"""What the planner's measuring costs a first epoch: `python benchmarks/bench_planning.py [--rounds 3]`.

    python benchmarks/bench_planning.py [--model lenet5] [--dataset mnist|cifar10|FILE.npz] [--images N]
                                        [--test-images N] [--rounds 3]

Each round runs two fresh child processes, the order swapped every round (so both see the same machine
load): COLD, with an empty plan folder (MINICNN_CACHE_DIR), so every planned kernel call measures its
candidates on first use, and WARM, with a folder a preparatory child planned before the first round, so
nothing is measured. A child trains one epoch as `minicnn train` does (SGD, momentum 0.9, batch 64, the
first layer skipping dL/d(image), freed memory kept, one thread: OPENBLAS_NUM_THREADS=1, MINICNN_WORKERS=1)
on the first `--images` training images (default: all), then scores `--test-images` of the test split
(default: all, as `minicnn train` does after each epoch), and reports
the epoch's wall seconds and the planner's own count of the seconds it spent measuring
(`Planner.planning_seconds`: every candidate call but the one whose result was kept). That count is the
cost measured directly; the wall-time ratio cold/warm is the same cost seen through two noisy wall times.
The table gives the median over the rounds of each. The issue's target: planning <= 3% of the epoch.
CPU model and load average are printed with it. Output fits 80 columns.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_checkouts import cpu_model, load_average  # beside this script; the parent imports no minicnn

ROOT = Path(__file__).resolve().parent.parent
CHILD = """
import json, sys, time
import numpy as np
from minicnn import optim, runtime
from minicnn.app.train import EpochState, FitConfig, evaluate, train_epoch
from minicnn.data.datasets import load_dataset
from minicnn.kernels.planner import planner
from minicnn.models import build

model_name, dataset_name, images, tests = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
planner().store_busy = True  # the warm rounds need every plan in the file, even one measured while busy
runtime.configure(keep_freed_memory=True)
data = load_dataset(dataset_name, download=False)
x, y = data.x_train[:images or None], data.y_train[:images or None]
model = build(model_name, in_channels=x.shape[1], num_classes=len(data.class_names))
sgd = optim.SGD(model.parameters(), 0.01, momentum=0.9)
config = FitConfig(epochs=1, progress=False)
began = time.perf_counter()
train_epoch(model, x, y, sgd, config, EpochState(0))
evaluate(model, data.x_test[:tests or None], data.y_test[:tests or None])
seconds = time.perf_counter() - began
p = planner()
p.save_if_changed()
print(json.dumps({"epoch": seconds, "planning": p.planning_seconds, "measured": p.measured}))
"""


def run_child(args: argparse.Namespace, cache: str) -> dict[str, float]:
    """One epoch in a fresh process with plan folder `cache`: {"epoch", "planning", "measured"}."""
    env = {**os.environ, "MINICNN_CACHE_DIR": cache, "OPENBLAS_NUM_THREADS": "1", "MINICNN_WORKERS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("MINICNN_PLANS", None)
    env.pop("MINICNN_NO_TUNE", None)
    done = subprocess.run([sys.executable, "-c", CHILD, args.model, args.dataset, str(args.images),
                           str(args.test_images)],
                          capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        sys.exit(f"bench_planning: the child failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="lenet5", help="a registered model (default lenet5)")
    p.add_argument("--dataset", default="mnist", help="mnist, fashion-mnist or cifar10 (default mnist)")
    p.add_argument("--images", type=int, default=0, help="training images of the epoch (default 0: all)")
    p.add_argument("--test-images", type=int, default=0, help="test images scored (default 0: all)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (median reported; default 3)")
    args = p.parse_args(argv)
    if args.rounds < 1 or min(args.images, args.test_images) < 0:
        p.error(f"expected --rounds >= 1, --images and --test-images >= 0, got {args.rounds}, {args.images} "
                f"and {args.test_images}")
    print(f"{cpu_model()}, {os.cpu_count()} cores; 1 thread; load {load_average()}")
    print(f"{args.model} on {Path(args.dataset).name}: {args.images or 'all'} training images, "
          f"{args.test_images or 'all'} test images")
    with tempfile.TemporaryDirectory() as planned, tempfile.TemporaryDirectory() as scratch:
        run_child(args, planned)  # plans the warm folder
        cold, warm = [], []
        for r in range(args.rounds):
            order = ("cold", "warm") if r % 2 == 0 else ("warm", "cold")
            for kind in order:
                if kind == "cold":
                    folder = tempfile.mkdtemp(dir=scratch)
                    cold.append(run_child(args, folder))
                else:
                    warm.append(run_child(args, planned))
            print(f"  round {r + 1}/{args.rounds}: cold {cold[-1]['epoch']:.2f} s "
                  f"({cold[-1]['planning']:.2f} s planning), warm {warm[-1]['epoch']:.2f} s", file=sys.stderr)
    med = {k: statistics.median(run[k] for run in cold) for k in ("epoch", "planning", "measured")}
    warm_epoch = statistics.median(run["epoch"] for run in warm)
    warm_planning = statistics.median(run["planning"] for run in warm)
    print(f"cold epoch          {med['epoch']:8.2f} s   ({med['measured']:.0f} plans measured)")
    print(f"warm epoch          {warm_epoch:8.2f} s   ({warm_planning:.2f} s planning)")
    print(f"planning / epoch    {med['planning'] / med['epoch']:8.1%}     (the planner's own count)")
    print(f"cold / warm wall    {med['epoch'] / warm_epoch:8.3f}     (medians of {args.rounds} rounds)")
    print(f"load {load_average()}")


if __name__ == "__main__":
    main()
