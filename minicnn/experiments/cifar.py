"""`minicnn experiment cifar`: how fast the small CIFAR-10 net trains here, and how well it does on
the partial real copy.

What is measured (and what is not):
- training images/s of `cifar_net` on 32x32x3 input (batch 64, SGD + Nesterov momentum, crop/flip
  augmentation, all inside `minicnn.app.fit`), hence minutes per full 50,000-image epoch and
  the number of full epochs that fit in 60 minutes;
- test accuracy after a few epochs on the PARTIAL copy (4,000 training / 1,000 test images, see
  datasets/README), with augmentation.
The issue's target (>= 80% test accuracy on the full CIFAR-10 within 60 minutes on 2 cores) needs the
full 50,000 training images, which are not on this machine: it is NOT measured here. The command a
user with the full data would run is printed at the end.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from minicnn.commands._options import integer, number

DESCRIPTION = "small CIFAR-10 net: training images/s, minutes per full epoch, accuracy on the partial copy"
FULL_EPOCH = 50_000  # training images in the full CIFAR-10
GEMM_REPEATS = 5  # float32 2048^3 products timed (median) for the matmul rate, before and after training
MOMENTUM, WEIGHT_DECAY = 0.9, 5e-4  # SGD's (Nesterov) momentum and L2 weight decay
CROP_PADDING = 4  # pixels of the random crop (the standard CIFAR augmentation)


def add_arguments(parser) -> None:
    parser.add_argument("--npz", default=None,
                        help="CIFAR-10 .npz (default: $MINICNN_DATA/cifar10/cifar10_partial.npz)")
    parser.add_argument("--width", type=number(1 / 16, 8), default=1.0, help="cifar_net width (c = 32 * width)")
    parser.add_argument("--epochs", type=integer(1, 1000), default=5, help="epochs over the partial training set")
    parser.add_argument("--batch-size", type=integer(1, 4096), default=64)
    parser.add_argument("--lr", type=number(0, 10, low_open=True), default=0.05,
                        help="peak SGD learning rate (cosine to 0)")
    parser.add_argument("--seed", type=integer(0, 2**32 - 1), default=0)


def default_cifar_npz() -> Path:
    return Path(os.environ.get("MINICNN_DATA", "datasets")) / "cifar10" / "cifar10_partial.npz"


def prepare(ds):
    """Per-channel standardisation with the training images' statistics."""
    from minicnn.data import standardize

    mean, std = ds.channel_stats()
    ds.x_train, ds.x_test = standardize(ds.x_train, mean, std), standardize(ds.x_test, mean, std)
    return ds


def train_and_test(model, ds, *, epochs: int, batch_size: int, lr: float, seed: int, augment=None) -> dict:
    """`fit` with SGD (Nesterov momentum MOMENTUM, weight decay WEIGHT_DECAY), cosine learning rate to 0 over the run,
    quietly. Returns test accuracy, the last epoch's training accuracy, training images/s (time inside
    training steps) and wall seconds."""
    from minicnn.app import FitConfig, fit
    from minicnn.data.batching import num_batches
    from minicnn.optim import SGD, CosineLR

    steps = epochs * num_batches(len(ds.x_train), batch_size)
    opt = SGD(model.parameters(), lr=lr, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY, nesterov=True)
    config = FitConfig(epochs=epochs, batch_size=batch_size, seed=seed, progress=False)
    result = fit(model, ds, opt, config, schedule=CosineLR(lr, steps), augment=augment, log=None)
    return {"test_accuracy": result.test.accuracy, "train_accuracy": result.history[-1]["train_acc"],
            "images_per_s": result.images_per_s, "wall_seconds": result.seconds}


def run(args) -> int:
    from minicnn import core
    from minicnn.analysis import analyze
    from minicnn.commands.bench import gemm_gflops
    from minicnn.data import crop_flip, load_dataset
    from minicnn.models import build

    path = Path(args.npz) if args.npz else default_cifar_npz()
    if not path.is_file():
        print(f"minicnn experiment cifar: {path} not found; pass --npz or set MINICNN_DATA", file=sys.stderr)
        return 2
    ds = prepare(load_dataset(path))
    core.manual_seed(args.seed)
    model = build("cifar_net", num_classes=10, in_channels=3, width=args.width)
    s = analyze(model, ds.input_shape)
    print(f"cifar_net width {args.width}: {s.params:,} parameters, {s.macs / 1e6:.1f}M mult-adds per image; "
          f"data {ds}; OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    gemm_before = gemm_gflops(GEMM_REPEATS)
    r = train_and_test(model, ds, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                       augment=crop_flip(CROP_PADDING))
    gemm = max(gemm_before, gemm_gflops(GEMM_REPEATS))  # before and after: the better of two busy-machine readings
    minutes = FULL_EPOCH / r["images_per_s"] / 60
    train_gflops = 3 * 2 * s.macs * r["images_per_s"] / 1e9  # forward 2 MACs-worth of flops, backward twice that
    print(f"| training images/s (32x32x3, batch {args.batch_size}, crop+flip) | {r['images_per_s']:.0f} |")
    print(f"| minutes per full 50,000-image epoch (projected) | {minutes:.1f} |")
    print(f"| full epochs in 60 minutes (projected) | {60 / minutes:.1f} |")
    print(f"| training GFLOP/s (6 x MACs x images/s) / float32 matmul GFLOP/s, same run | "
          f"{train_gflops:.1f} / {gemm:.1f} = {train_gflops / gemm:.0%} |")
    print(f"| test accuracy on the partial copy ({len(ds.x_train)} train / {len(ds.x_test)} test, "
          f"{args.epochs} epochs) | {r['test_accuracy']:.2%} |")
    print(f"| final-epoch training accuracy | {r['train_accuracy']:.2%} |")
    print(f"| wall time | {r['wall_seconds']:.0f} s |")
    print("NOT measured here: >= 80% test accuracy on the full CIFAR-10 (only 4,000 training images are on "
          "this machine), nor how many epochs it takes. With the full data, the epochs that fit in 60 minutes "
          "at the speed measured above:\n  minicnn train --dataset cifar10 --model cifar_net "
          f"--epochs {max(1, int(60 / minutes))} --optimizer sgd --lr {args.lr} --weight-decay {WEIGHT_DECAY:g} "
          "--augment crop-flip")
    return 0
