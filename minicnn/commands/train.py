"""`minicnn train`: train a registered model on MNIST, Fashion-MNIST, CIFAR-10 or your own .npz."""

from __future__ import annotations

NAME = "train"
HELP = "train a model (default LeNet-5) on mnist, fashion-mnist, cifar10 or FILE.npz, with checkpoints"

DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3}
DEFAULT_METHOD = "im2col"
EXIT_DIVERGED, EXIT_DATA, EXIT_INTERRUPTED = 1, 2, 130
MIN_WIDTH, MAX_WIDTH = 1 / 16, 8.0  # channel multipliers a run may ask for (MAX = app.loading.MAX_WIDTH)


def add_arguments(parser) -> None:
    from minicnn.commands._options import integer, number

    parser.add_argument("--dataset", default="mnist", help="mnist, fashion-mnist, cifar10, or a path to a .npz")
    parser.add_argument("--model", default="lenet5", help="a registered model name (see minicnn.models.MODELS)")
    parser.add_argument("--epochs", type=integer(1), default=3,
                        help="passes over the training set (with --resume: may be raised to extend the run)")
    parser.add_argument("--batch-size", type=integer(1), default=64, help="images per gradient step")
    parser.add_argument("--optimizer", choices=sorted(DEFAULT_LR), default="sgd", help="update rule")
    parser.add_argument("--lr", type=number(0, low_open=True), default=None,
                        help="peak learning rate (default: 0.05 for sgd, 0.001 for adam)")
    parser.add_argument("--momentum", type=number(0, 1, high_open=True), default=0.9, help="SGD momentum")
    parser.add_argument("--weight-decay", type=number(0), default=5e-4, help="L2 weight decay")
    parser.add_argument("--schedule", choices=("cosine", "constant"), default="cosine",
                        help="learning rate over the run: cosine decay to 0, or constant")
    parser.add_argument("--warmup", type=integer(0), default=0, help="steps of linear learning-rate warm-up")
    parser.add_argument("--method", choices=("im2col", "direct", "fft"), default=DEFAULT_METHOD,
                        help="convolution algorithm (for models that take one)")
    parser.add_argument("--width", type=number(MIN_WIDTH, MAX_WIDTH), default=1.0,
                        help="channel-width multiplier of the model")
    parser.add_argument("--augment", choices=("auto", "none", "shift", "crop-flip"), default="auto",
                        help="training augmentation: shift = random translation by up to --shift pixels; crop-flip = "
                             "4-pixel random crop and horizontal flip; auto = crop-flip for 3-channel images, "
                             "shift otherwise")
    parser.add_argument("--shift", type=integer(0), default=1,
                        help="largest translation (pixels) of --augment shift; less than the image size")
    parser.add_argument("--train-limit", type=integer(1), default=None,
                        help="use only the first N training images (default: all)")
    parser.add_argument("--val-size", type=integer(0), default=0,
                        help="hold out N training images to score each epoch on (0: the test split is scored "
                             "instead, and the epoch table says so)")
    parser.add_argument("--seed", type=integer(0), default=0,
                        help="seed for weights, shuffling and augmentation")
    parser.add_argument("--out", default=None, help="run folder for checkpoint and metrics; "
                                                    "default: runs/DATASET-MODEL-seedSEED (a new -2, -3... "
                                                    "folder when that one holds an earlier run)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out (every option must be as before, except a larger "
                             "--epochs)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run already in --out (its checkpoint, metrics and figures are lost)")
    parser.add_argument("--data-dir", default=None, help="folder searched first for the dataset files")
    parser.add_argument("--no-download", action="store_true", help="never download; fail if files are missing")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (one line per epoch)")


def run(args) -> int:
    from pathlib import Path

    import numpy as np

    from minicnn import core, optim
    from minicnn.app.checkpoint import CheckpointError, load_checkpoint
    from minicnn.app.train import CHECKPOINT_NAME, fit
    from minicnn.commands._options import fail as report
    from minicnn.commands._options import wrap
    from minicnn.data import DatasetError, crop_flip, load_dataset, shift, standardize
    from minicnn.models import MODELS, build, check_name, config_for

    def fail(message: str, code: int = EXIT_DATA) -> int:
        return report(NAME, message, code)

    if args.resume and args.overwrite:
        return fail("--resume continues the run in --out, --overwrite replaces it: give one of them")
    out = Path(args.out) if args.out else _free_folder(Path(f"runs/{Path(args.dataset).stem}-{args.model}-"
                                                            f"seed{args.seed}"), args.resume or args.overwrite)
    problem = _unwritable(out) or (None if args.resume or args.overwrite else _earlier_run(out))
    if problem:
        return fail(problem)
    try:
        check_name(args.model)  # reported before any data is read or downloaded
    except ValueError as e:
        return fail(str(e))
    try:
        ds = load_dataset(args.dataset, args.data_dir, download=not args.no_download)
        if args.train_limit is not None:
            ds = ds.subset(train=args.train_limit)
    except DatasetError as e:
        return fail(str(e))
    except ValueError as e:
        return fail(f"--train-limit {args.train_limit}: {e}")
    augment = args.augment
    if augment == "auto":
        augment = "crop-flip" if ds.input_shape[0] == 3 else "shift"
    if augment == "shift" and args.shift >= min(ds.input_shape[1:]):
        return fail(f"--shift {args.shift}: expected fewer pixels than the image size "
                    f"{ds.input_shape[1]}x{ds.input_shape[2]}")
    data_crc = _fingerprint(ds.x_train, ds.y_train)
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
    if args.method != DEFAULT_METHOD and "method" not in config:
        takers = [name for name in sorted(MODELS)
                  if "method" in config_for(name, ds.input_shape, method=DEFAULT_METHOD)]
        return fail(f"--method {args.method}: {args.model} has no choice of convolution algorithm; "
                    f"{', '.join(takers)} take one")
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    dataset_ref = str(Path(args.dataset).resolve()) if Path(args.dataset).suffix == ".npz" else args.dataset
    defining = {"--dataset": dataset_ref, "--train-limit": args.train_limit, "--val-size": args.val_size,
                "training images (CRC-32)": data_crc, "--model": args.model,
                **{f"--{k}" if k in ("width", "method") else f"model option {k}": v for k, v in config.items()},
                "--optimizer": args.optimizer, "--lr": lr,
                "--momentum": args.momentum if args.optimizer == "sgd" else None,
                "--weight-decay": args.weight_decay, "--schedule": args.schedule, "--warmup": args.warmup,
                "--augment": augment, "--shift": args.shift if augment == "shift" else None,
                "--seed": args.seed, "--batch-size": args.batch_size}
    if args.resume and (out / CHECKPOINT_NAME).is_file():
        try:
            saved = load_checkpoint(out / CHECKPOINT_NAME).meta
        except CheckpointError as e:
            return fail(str(e))
        problem = _changed(out, saved, defining, config, args.epochs)
        if problem:
            return fail(problem)
        if saved.get("epochs") not in (None, args.epochs):
            print(wrap(f"note: the run is extended from {saved['epochs']} to {args.epochs} epochs"
                       + ("; the cosine schedule is recomputed over the new length" if args.schedule == "cosine"
                          else "")))

    if args.optimizer == "sgd":
        opt = optim.SGD(model.parameters(), lr, momentum=args.momentum, weight_decay=args.weight_decay)
    else:
        opt = optim.Adam(model.parameters(), lr, weight_decay=args.weight_decay)
    steps = args.epochs * -(-len(ds.x_train) // args.batch_size)
    schedule = optim.CosineLR(lr, steps) if args.schedule == "cosine" else (lambda t: lr)
    if args.warmup:
        schedule = optim.LinearWarmup(schedule, args.warmup)
    augmenters = {"none": lambda: None, "shift": lambda: shift(args.shift), "crop-flip": lambda: crop_flip(4)}
    meta = {"model": args.model, "model_config": config, "dataset": dataset_ref,
            "class_names": ds.class_names, "mean": mean, "std": std, "input_shape": list(ds.input_shape),
            "optimizer": args.optimizer, "lr": lr, "schedule": args.schedule, "warmup": args.warmup,
            "epochs": args.epochs, "augment": augment, "run": defining}
    if args.overwrite:
        for path in [out / name for name in (CHECKPOINT_NAME, *RUN_FILES)] + sorted(out.glob("confusion-*.png")):
            path.unlink(missing_ok=True)
    print("\n".join(wrap(line) for line in _plan(args, model, ds, val, lr, augment, out)))
    try:
        result = fit(model, ds, opt, epochs=args.epochs, batch_size=args.batch_size, schedule=schedule,
                     seed=args.seed, out_dir=out, resume=args.resume,
                     augment=augmenters[augment](), val=val, meta=meta,
                     progress=not args.no_progress, log=lambda message: print(wrap(message)),
                     warn=lambda message: report(NAME, message))
    except CheckpointError as e:
        return fail(str(e))
    except BrokenPipeError:  # stdout's reader went away (`minicnn train | head`): not the run folder
        raise
    except OSError as e:
        return fail(f"cannot write the run folder {out}: {e}", EXIT_DIVERGED)
    if result.status == "interrupted":
        return fail("to continue, run the same command with --resume", EXIT_INTERRUPTED)
    if result.status == "diverged":
        return EXIT_DIVERGED
    print(wrap(f"checkpoint, metrics.csv/json and curves.png in {out}"))
    return 0


RUN_FILES = ("metrics.json", "metrics.csv", "curves.png", "confusion.png")  # besides the checkpoint


def _plan(args, model, ds, val, lr: float, augment: str, out) -> list[str]:
    """What the run will do, before it starts: model, data splits (and which one scores the epochs),
    training settings, run folder."""
    c, h, w = ds.input_shape
    splits = (f"{len(ds.x_train):,} training, {len(val[1]):,} validation (held out from training), "
              f"{len(ds.x_test):,} test images" if val is not None else
              f"{len(ds.x_train):,} training, {len(ds.x_test):,} test images (no --val-size: epochs scored on "
              f"test)")
    return [f"{args.model} ({model.num_parameters():,} parameters) on {ds.name}, images {c}x{h}x{w}", splits,
            f"{args.optimizer} lr {lr:g} ({args.schedule}), batch {args.batch_size}, {args.epochs} "
            f"epoch{'s' if args.epochs > 1 else ''}, "
            f"augment {augment}, seed {args.seed}", f"run folder {out}"]


def _earlier_run(out) -> str | None:
    """Why `out` cannot take a new run without --resume or --overwrite (None: it can)."""
    from minicnn.app.train import CHECKPOINT_NAME

    found = [name for name in (CHECKPOINT_NAME, RUN_FILES[0]) if (out / name).exists()]
    if not found:
        return None
    return (f"{out} holds an earlier run ({', '.join(found)}); continue it with --resume, replace it with "
            f"--overwrite, or choose another --out")


def _free_folder(out, reuse: bool):
    """The default run folder `out`, or (when it holds an earlier run and is not to be resumed or
    replaced) the first of out-2, out-3, ... that does not."""
    from pathlib import Path

    from minicnn.commands._options import wrap

    candidate, n = Path(out), 1
    while not reuse and _earlier_run(candidate):
        n += 1
        candidate = out.with_name(f"{out.name}-{n}")
    if candidate != out:
        print(wrap(f"note: {out} holds an earlier run; this one goes to {candidate}"))
    return candidate


def _unwritable(out) -> str | None:
    """Why no run folder can be written at `out` (None: it can), found before any training."""
    import os

    if out.exists() and not out.is_dir():
        return f"{out} is a file, not a folder; choose another --out"
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir():
        return f"cannot create {out}: {existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"cannot create {out}: {existing} is not writable" if existing != out else f"{out} is not writable"
    return None


def _fingerprint(x, y) -> int:
    """CRC-32 of the training images and labels: a changed dataset file under the same name is found."""
    import zlib

    import numpy as np

    return zlib.crc32(np.ascontiguousarray(y), zlib.crc32(np.ascontiguousarray(x)))


def _changed(out, saved: dict, defining: dict, config: dict, epochs: int) -> str | None:
    """What differs between the run saved in `out` and this command (None: nothing that matters).
    Every defining option must be as before; --epochs may be raised (the run is extended)."""
    before = saved.get("run") if isinstance(saved.get("run"), dict) else {
        "--model": saved.get("model"), "model config": saved.get("model_config")}  # older checkpoints
    now = {**defining, "model config": config}
    lines = [f"  {key}: {before[key]} then, {value} now" for key, value in now.items()
             if key in before and before[key] != value]
    done = saved.get("epoch")
    if isinstance(done, int) and epochs < done:
        lines.append(f"  --epochs: {done} already trained, {epochs} asked")
    if not lines:
        return None
    return "\n".join([f"the run in {out} was made with other options; resume with the same ones "
                      f"(--epochs may grow) or choose another --out:", *lines])
