"""`minicnn experiment downsampling_nets`: does slicing help? The same small net (`cifar_net`) with
max pooling, a stride-2 3x3 convolution, or SliceSamp at each of its two downsampling points,
trained with the same budget on real Fashion-MNIST and on the partial real CIFAR-10 copy.

Reports test accuracy (mean and spread over seeds), parameters and mult-adds per image. The budget
is small because this machine's two cores are shared: read the printed settings before comparing
with published figures. The claim of He and Wang ("A Promising Downsampling Alternative in a Neural
Network", 2023) is that keeping every value when downsampling (slicing) beats discarding them
(pooling, strides).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from minicnn.commands._options import integer, number

DESCRIPTION = "max-pool vs stride-2 conv vs SliceSamp in the same small net (Fashion-MNIST, partial CIFAR-10)"


def add_arguments(parser) -> None:
    parser.add_argument("--width", type=number(1 / 16, 8), default=0.5, help="cifar_net width (c = 32 * width)")
    parser.add_argument("--seeds", type=integer(1, 100), default=3)
    parser.add_argument("--fmnist-train", type=integer(1, 60000), default=4000,
                        help="first N Fashion-MNIST training images")
    parser.add_argument("--fmnist-epochs", type=integer(1, 1000), default=2)
    parser.add_argument("--cifar-epochs", type=integer(1, 1000), default=4)
    parser.add_argument("--batch-size", type=integer(1, 4096), default=64)
    parser.add_argument("--lr", type=number(0, 10, low_open=True), default=0.05)
    parser.add_argument("--datasets", default="fashion-mnist,cifar10", help="comma-separated subset")
    parser.add_argument("--npz", default=None,
                        help="CIFAR-10 .npz (default: $MINICNN_DATA/cifar10/cifar10_partial.npz)")
    parser.add_argument("--out", default=None, help=f"write {RESULTS} in this folder (an earlier one is kept "
                        f"unless --overwrite)")
    parser.add_argument("--overwrite", action="store_true", help=f"replace an earlier {RESULTS} in --out")


RESULTS = "results.json"


def results_path(out: str | None, overwrite: bool) -> Path | None:
    """Where results.json goes (None: nowhere), checked and its folder made before any training: an
    earlier file is refused without `overwrite`, a folder, link, FIFO or device always. ValueError."""
    from minicnn.experiments.downsampling import make_folder
    from minicnn.files import TargetError, safe_target

    if out is None:
        return None
    folder = Path(out)
    if not out.strip():
        raise ValueError(f"--out: expected a folder name, got {out!r}")
    make_folder(folder)
    try:
        return safe_target(folder / RESULTS, overwrite)
    except FileExistsError:
        raise ValueError(f"--out {folder} holds an earlier {RESULTS}; choose another --out, or --overwrite to "
                         f"replace it") from None
    except TargetError as e:
        raise ValueError(f"--out: {e}") from None
    except OSError as e:
        raise ValueError(f"--out: cannot check {folder / RESULTS}: {e.strerror or e}") from None


def run(args) -> int:
    from minicnn import core
    from minicnn.analysis import analyze
    from minicnn.data import crop_flip, load_dataset
    from minicnn.files import write_atomic
    from minicnn.models import build
    from minicnn.models.small import DOWNSAMPLING

    from .cifar import default_cifar_npz, prepare, train_and_test

    results = results_path(args.out, args.overwrite)
    rows = []
    for name in args.datasets.split(","):
        if name == "cifar10":
            ds = prepare(load_dataset(Path(args.npz) if args.npz else default_cifar_npz()))
            epochs, augment = args.cifar_epochs, crop_flip(4)
        else:
            ds = prepare(load_dataset(name).subset(train=args.fmnist_train))
            epochs, augment = args.fmnist_epochs, None
        c, h, _ = ds.input_shape
        print(f"{name}: {len(ds.x_train)} training / {len(ds.x_test)} test images, {epochs} epochs, batch "
              f"{args.batch_size}, SGD lr {args.lr} cosine, width {args.width}, "
              f"augment {'crop+flip' if augment else 'none'}, OPENBLAS_NUM_THREADS="
              f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}", flush=True)
        for kind in DOWNSAMPLING:
            accs, speeds = [], []
            for seed in range(args.seeds):
                core.manual_seed(seed)
                model = build("cifar_net", num_classes=ds.num_classes, in_channels=c, width=args.width,
                              image_size=h, downsample_kind=kind)
                r = train_and_test(model, ds, epochs=epochs, batch_size=args.batch_size, lr=args.lr, seed=seed,
                                   augment=augment)
                accs.append(r["test_accuracy"])
                speeds.append(r["images_per_s"])
                print(f"  {kind:<10} seed {seed}: test {r['test_accuracy']:.2%}  ({r['images_per_s']:.0f} img/s, "
                      f"{r['wall_seconds']:.0f} s)", flush=True)
            s = analyze(model, ds.input_shape)
            rows.append({"dataset": name, "downsampling": kind, "params": s.params, "macs": s.macs,
                         "accuracies": accs, "mean": float(np.mean(accs)), "std": float(np.std(accs, ddof=1))
                         if len(accs) > 1 else 0.0, "images_per_s": float(np.median(speeds)), "epochs": epochs,
                         "train_images": len(ds.x_train), "test_images": len(ds.x_test)})
    print("\n| dataset | downsampling | parameters | mult-adds | test accuracy (mean ± sd) | per seed | train img/s |")
    print("|---|---|---:|---:|---:|---|---:|")
    for r in rows:
        print(f"| {r['dataset']} | {r['downsampling']} | {r['params']:,} | {r['macs'] / 1e6:.2f}M | "
              f"{r['mean']:.2%} ± {r['std']:.2%} | {', '.join(f'{a:.2%}' for a in r['accuracies'])} | "
              f"{r['images_per_s']:.0f} |")
    if results is not None:
        text = json.dumps(rows, indent=1)
        try:
            write_atomic(results, lambda tmp: tmp.write_text(text), overwrite=args.overwrite)
        except FileExistsError:  # another run wrote it meanwhile: kept
            raise ValueError(f"--out: {results} appeared during this run (kept); choose another --out, or "
                             f"--overwrite to replace it") from None
        print(f"results written to {results}")
    return 0
