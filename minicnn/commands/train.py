"""`minicnn train`: train a registered model on MNIST, Fashion-MNIST, CIFAR-10 or your own .npz."""

from __future__ import annotations

import sys

NAME = "train"
HELP = "train a model (default LeNet-5) on mnist, fashion-mnist, cifar10 or FILE.npz, with checkpoints"

DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3}
EXIT_DIVERGED, EXIT_DATA, EXIT_INTERRUPTED = 1, 2, 130


def add_arguments(parser) -> None:
    parser.add_argument("--dataset", default="mnist", help="mnist, fashion-mnist, cifar10, or a path to a .npz")
    parser.add_argument("--model", default="lenet5", help="a registered model name (see minicnn.models.MODELS)")
    parser.add_argument("--epochs", type=int, default=3, help="passes over the training set")
    parser.add_argument("--batch-size", type=int, default=64, help="images per gradient step")
    parser.add_argument("--optimizer", choices=sorted(DEFAULT_LR), default="sgd", help="update rule")
    parser.add_argument("--lr", type=float, default=None,
                        help="peak learning rate; None = 0.05 for sgd, 0.001 for adam")
    parser.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    parser.add_argument("--weight-decay", type=float, default=5e-4, help="L2 weight decay")
    parser.add_argument("--schedule", choices=("cosine", "constant"), default="cosine",
                        help="learning rate over the run: cosine decay to 0, or constant")
    parser.add_argument("--warmup", type=int, default=0, help="steps of linear learning-rate warm-up")
    parser.add_argument("--method", choices=("im2col", "direct", "fft"), default="im2col",
                        help="convolution algorithm (for models that take one)")
    parser.add_argument("--width", type=float, default=1.0, help="channel-width multiplier of the model")
    parser.add_argument("--augment", choices=("auto", "none", "shift", "crop-flip"), default="auto",
                        help="training augmentation: shift = random translation by up to --shift pixels; crop-flip = "
                             "4-pixel random crop and horizontal flip; auto = crop-flip for 3-channel images, "
                             "shift otherwise")
    parser.add_argument("--shift", type=int, default=1, help="largest translation (pixels) of --augment shift")
    parser.add_argument("--train-limit", type=int, default=None,
                        help="use only the first N training images (None = all)")
    parser.add_argument("--val-size", type=int, default=0,
                        help="hold out N training images for validation (0: validate on the test split)")
    parser.add_argument("--seed", type=int, default=0, help="seed for weights, shuffling and augmentation")
    parser.add_argument("--out", default=None, help="run folder for checkpoint and metrics; "
                                                    "None = runs/DATASET-MODEL-seedSEED")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    parser.add_argument("--data-dir", default=None, help="folder searched first for the dataset files")
    parser.add_argument("--no-download", action="store_true", help="never download; fail if files are missing")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (one line per epoch)")


def run(args) -> int:
    from pathlib import Path

    import numpy as np

    from minicnn import core, optim
    from minicnn.app.checkpoint import CheckpointError, load_checkpoint
    from minicnn.app.train import CHECKPOINT_NAME, fit
    from minicnn.data import DatasetError, crop_flip, load_dataset, shift, standardize
    from minicnn.models import build, config_for

    def fail(message: str, code: int = EXIT_DATA) -> int:
        print(f"minicnn train: {message}", file=sys.stderr)
        return code

    if args.epochs < 1 or args.batch_size < 1:
        return fail(f"expected --epochs >= 1 and --batch-size >= 1, got {args.epochs} and {args.batch_size}")
    try:
        ds = load_dataset(args.dataset, args.data_dir, download=not args.no_download)
    except DatasetError as e:
        return fail(str(e))
    if args.train_limit is not None:
        ds = ds.subset(train=args.train_limit)
    mean, std = ds.channel_stats()
    ds.x_train, ds.x_test = standardize(ds.x_train, mean, std), standardize(ds.x_test, mean, std)
    val = None
    if args.val_size > 0:
        if args.val_size >= len(ds.x_train):
            return fail(f"--val-size {args.val_size} leaves no training images (have {len(ds.x_train)})")
        order = np.random.default_rng(args.seed).permutation(len(ds.x_train))
        held, kept = order[:args.val_size], order[args.val_size:]
        val = (ds.x_train[held], ds.y_train[held])
        ds.x_train, ds.y_train = ds.x_train[kept], ds.y_train[kept]

    core.manual_seed(args.seed)
    try:
        config = config_for(args.model, ds.input_shape, num_classes=ds.num_classes, width=args.width,
                            method=args.method)
        model = build(args.model, **config)
    except ValueError as e:
        return fail(str(e))
    out = Path(args.out or f"runs/{Path(args.dataset).stem}-{args.model}-seed{args.seed}")
    if args.resume and (out / CHECKPOINT_NAME).is_file():
        try:
            saved = load_checkpoint(out / CHECKPOINT_NAME).meta
        except CheckpointError as e:
            return fail(str(e))
        if saved.get("model") != args.model or saved.get("model_config") != config:
            return fail(f"{out / CHECKPOINT_NAME} holds {saved.get('model')} {saved.get('model_config')}, "
                        f"not {args.model} {config}; use another --out or the same options")
    elif not args.resume and (out / CHECKPOINT_NAME).is_file():
        print(f"note: {out / CHECKPOINT_NAME} exists and will be overwritten (use --resume to continue it)")

    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    if args.optimizer == "sgd":
        opt = optim.SGD(model.parameters(), lr, momentum=args.momentum, weight_decay=args.weight_decay)
    else:
        opt = optim.Adam(model.parameters(), lr, weight_decay=args.weight_decay)
    steps = args.epochs * -(-len(ds.x_train) // args.batch_size)
    schedule = optim.CosineLR(lr, steps) if args.schedule == "cosine" else (lambda t: lr)
    if args.warmup:
        schedule = optim.LinearWarmup(schedule, args.warmup)
    augmenters = {"none": lambda: None, "shift": lambda: shift(args.shift), "crop-flip": lambda: crop_flip(4)}
    augment = args.augment
    if augment == "auto":
        augment = "crop-flip" if ds.input_shape[0] == 3 else "shift"
    dataset_ref = str(Path(args.dataset).resolve()) if Path(args.dataset).suffix == ".npz" else args.dataset
    meta = {"model": args.model, "model_config": config, "dataset": dataset_ref,
            "class_names": ds.class_names, "mean": mean, "std": std, "input_shape": list(ds.input_shape),
            "optimizer": args.optimizer, "lr": lr, "schedule": args.schedule, "warmup": args.warmup,
            "epochs": args.epochs, "augment": augment}
    print(f"{args.model} ({model.num_parameters():,} parameters) on {ds.name}: {len(ds.x_train):,} training, "
          f"{len(ds.x_test):,} test images {ds.input_shape}; {args.optimizer} lr {lr:g} ({args.schedule}), "
          f"batch {args.batch_size}, {args.epochs} epochs, augment {augment}, seed {args.seed}; run folder {out}")
    try:
        result = fit(model, ds, opt, epochs=args.epochs, batch_size=args.batch_size, schedule=schedule,
                     seed=args.seed, out_dir=out, resume=args.resume,
                     augment=augmenters[augment](), val=val, meta=meta,
                     progress=not args.no_progress)
    except CheckpointError as e:
        return fail(str(e))
    if result.status == "interrupted":
        return EXIT_INTERRUPTED
    if result.status == "diverged":
        return EXIT_DIVERGED
    print(f"checkpoint, metrics.csv/json and curves.png in {out}")
    return 0
