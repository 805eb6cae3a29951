"""LeNet-5 training speed on MNIST: minicnn vs PyTorch (when installed), in the same run.

    python benchmarks/bench_train.py [--threads 2] [--batches 150] [--rounds 3] [--batch-size 64]

Both engines train the same LeNet-5 (conv5x5(6) pad 2 - ReLU - maxpool 2 - conv5x5(16) - ReLU -
maxpool 2 - fc 120 - fc 84 - fc 10) with SGD (lr 0.05, momentum 0.9), batch 64, softmax cross-entropy,
on real MNIST batches (MINICNN_DATA or --data-dir; random images if MNIST is absent, said so),
with the same number of BLAS/intra-op threads. The engines alternate in `--rounds` rounds of
`--batches` steps so both see the same machine load; the median images/s of each is reported, and
their ratio. Timing covers forward, backward and the update (not data loading).
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2, help="BLAS / torch threads for both engines")
    p.add_argument("--batches", type=int, default=150, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds per engine (median reported)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--warmup", type=int, default=10, help="untimed steps before timing")
    p.add_argument("--data-dir", default=None)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before NumPy is imported: fixes its BLAS thread count
    import numpy as np

    from minicnn import core, optim
    from minicnn.data import DatasetError, iterate_batches, load_dataset, standardize
    from minicnn.losses import SoftmaxCrossEntropy
    from minicnn.models import MODELS

    try:
        ds = load_dataset("mnist", args.data_dir, download=False)
        x, y = standardize(ds.x_train, *ds.channel_stats()), ds.y_train
        source = "real MNIST"
    except DatasetError as e:
        print(f"note: {e.__class__.__name__}: MNIST not found, timing on random images", file=sys.stderr)
        r = np.random.default_rng(0)
        x, y = r.standard_normal((6400, 1, 28, 28)).astype(np.float32), r.integers(0, 10, 6400)
        source = "random images"
    bs = args.batch_size
    steps_needed = args.warmup + args.batches * args.rounds
    batches = []
    epoch = 0
    while len(batches) < steps_needed:
        batches += [(xb, yb) for _, xb, yb in iterate_batches(x, y, bs, seed=0, epoch=epoch, drop_last=True)]
        epoch += 1

    core.manual_seed(0)
    model = MODELS["lenet5"]()
    model[0].input_grad = False  # as train_epoch does; PyTorch skips it too (the images do not require grad)
    opt = optim.SGD(model.parameters(), 0.05, momentum=0.9)
    loss_fn = SoftmaxCrossEntropy()

    def ours(chunk) -> float:
        t0 = time.perf_counter()
        for xb, yb in chunk:
            loss_fn.forward(model.forward(xb), yb)
            model.backward(loss_fn.backward())
            opt.step()
            opt.zero_grad()
        return len(chunk) * bs / (time.perf_counter() - t0)

    engines = {"minicnn": ours}
    try:
        import torch
        from torch import nn

        torch.set_num_threads(args.threads)
        torch.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                            nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                            nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
        t_opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
        t_loss = nn.CrossEntropyLoss()
        t_batches = [(torch.from_numpy(xb), torch.from_numpy(yb)) for xb, yb in batches]

        def theirs(chunk) -> float:
            t0 = time.perf_counter()
            for xb, yb in chunk:
                t_opt.zero_grad()
                t_loss(net(xb), yb).backward()
                t_opt.step()
            return len(chunk) * bs / (time.perf_counter() - t0)

        engines["pytorch"] = theirs
    except ImportError:
        t_batches = None
        print("note: PyTorch is not installed; reporting minicnn alone", file=sys.stderr)

    speeds: dict[str, list[float]] = {name: [] for name in engines}
    for name, run in engines.items():
        run((t_batches if name == "pytorch" else batches)[:args.warmup])
    for r in range(args.rounds):
        lo = args.warmup + r * args.batches
        for name, run in engines.items():
            chunk = (t_batches if name == "pytorch" else batches)[lo:lo + args.batches]
            speeds[name].append(run(chunk))
    medians = {name: float(np.median(v)) for name, v in speeds.items()}
    print(f"LeNet-5 training on {source}, batch {bs}, SGD momentum 0.9, {args.threads} thread(s), "
          f"{args.rounds} alternating rounds of {args.batches} steps (median images/s):")
    for name, v in speeds.items():
        print(f"  {name:8s} {medians[name]:9,.0f} img/s   (rounds: {', '.join(f'{s:,.0f}' for s in v)})")
    if "pytorch" in medians:
        print(f"  minicnn / pytorch = {medians['minicnn'] / medians['pytorch']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
