"""`minicnn train`: train a registered model on MNIST, Fashion-MNIST, CIFAR-10, your own .npz, or a
segmentation task (mnist-seg, fashion-on-cifar-seg) with a segmentation model (unet)."""

from __future__ import annotations

import copy
from contextlib import contextmanager
from pathlib import Path

from minicnn.commands._options import SEGMENTATION_MODELS

NAME = "train"
HELP = "train a model (default LeNet-5) on mnist, fashion-mnist, cifar10, FILE.npz or a segmentation task"

DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3}
DEFAULT_METHOD = "im2col"
EXIT_DIVERGED, EXIT_DATA, EXIT_INTERRUPTED = 1, 2, 130
CROP_PADDING = 4  # pixels of --augment crop-flip's random crop (the standard CIFAR augmentation)
FR_NAME = "model.fr.npz"  # the frequency-regularised model of --frequency, in the run folder
RUN_FILES = ("metrics.json", "metrics.csv", "curves.png", "confusion.png", "best.npz", FR_NAME)  # + checkpoint
MIN_WIDTH, MAX_WIDTH = 1 / 16, 8.0  # channel multipliers a run may ask for (MAX = app.loading.MAX_WIDTH)
# Sane limits, checked before anything is read or allocated (the help states them):
MAX_EPOCHS = 10_000  # 10,000 passes: far beyond any run of this engine (MNIST converges in ~10)
MAX_BATCH_SIZE = 4_096  # a CIFAR batch of 4,096 is ~50 MB of input and GBs of activations
MAX_WARMUP = 10_000_000  # warm-up steps; also at most the run's own number of steps (checked with the data)
MAX_FREQUENCY_BUDGET = 10_000_000  # --frequency: stored numbers, far above any model this engine trains
LOSSES = ("ce", "dice", "ce+dice")  # --loss; the last two are segmentation losses
SEGMENTATION_LOSSES = ("dice", "ce+dice")
HEAD_BIASES = ("prior", "default")  # --head-bias, segmentation models only
SEGMENTATION_MONITOR = "val_iou"  # what best.npz and --early-stop choose by on a segmentation task (higher is better)


def add_arguments(parser) -> None:
    from minicnn.commands._options import MAX_SEED, integer, number

    parser.add_argument("--dataset", default="mnist",
                        help="mnist, fashion-mnist, cifar10, a path to a .npz, a FOLDER/ of class folders, or a "
                             "segmentation task for --model unet: mnist-seg (1x64x64 canvases of 1-3 MNIST digits, "
                             "11 pixel classes, 6,000 train / 1,000 test) or fashion-on-cifar-seg (3x32x32, a "
                             "Fashion-MNIST object on a CIFAR-10 photo, 2 classes, 4,000 / 1,000)")
    parser.add_argument("--model", default="lenet5", help="a registered model name (see minicnn.models.MODELS)")
    parser.add_argument("--epochs", type=integer(1, MAX_EPOCHS), default=3,
                        help=f"passes over the training set, at most {MAX_EPOCHS:,} (with --resume: may be raised to "
                             f"extend the run)")
    parser.add_argument("--batch-size", type=integer(1, MAX_BATCH_SIZE), default=64,
                        help=f"images per gradient step, at most {MAX_BATCH_SIZE:,} and the number of training images")
    parser.add_argument("--optimizer", choices=sorted(DEFAULT_LR), default="sgd", help="update rule")
    parser.add_argument("--lr", type=number(0, low_open=True), default=None,
                        help="peak learning rate (default: 0.05 for sgd, 0.001 for adam)")
    parser.add_argument("--momentum", type=number(0, 1, high_open=True), default=0.9, help="SGD momentum")
    parser.add_argument("--weight-decay", type=number(0), default=5e-4, help="L2 weight decay")
    parser.add_argument("--label-smoothing", type=number(0, 1, high_open=True), default=0.0,
                        help="targets (1-e) one-hot + e/K instead of one-hot, as PyTorch's "
                             "CrossEntropyLoss(label_smoothing=e); 0.1 is the usual value (default 0)")
    parser.add_argument("--loss", choices=LOSSES, default="ce",
                        help="ce = softmax cross-entropy (per pixel on a segmentation task); dice = soft Dice loss; "
                             "ce+dice = their sum, each class counting the same in the Dice term (for rare "
                             "classes: mnist-seg's digits are ~0.5%% of the pixels each); dice and ce+dice are "
                             "for segmentation tasks only")
    parser.add_argument("--head-bias", choices=HEAD_BIASES, default=None,
                        help="segmentation models: start the 1x1 head's bias at the log of each class's share of "
                             "the training pixels (prior, the default: without it a 14-epoch mnist-seg run tells "
                             "no digit from another, mean IoU 0.10) or as PyTorch initialises it (default)")
    parser.add_argument("--schedule", choices=("cosine", "constant"), default="cosine",
                        help="learning rate over the run: cosine decay to 0, or constant")
    parser.add_argument("--warmup", type=integer(0, MAX_WARMUP), default=0,
                        help="steps of linear learning-rate warm-up (at most the run's steps)")
    parser.add_argument("--method", choices=("im2col", "direct", "fft"), default=DEFAULT_METHOD,
                        help="convolution algorithm (for models that take one)")
    parser.add_argument("--width", type=number(MIN_WIDTH, MAX_WIDTH), default=1.0,
                        help="channel-width multiplier of the model")
    parser.add_argument("--augment", choices=("auto", "none", "shift", "crop-flip"), default="auto",
                        help="training augmentation: shift = random translation by up to --shift pixels; crop-flip = "
                             f"{CROP_PADDING}-pixel random crop and horizontal flip; auto = crop-flip for 3-channel "
                             "images, shift otherwise; a segmentation task is trained without augmentation (a "
                             "note says so)")
    parser.add_argument("--shift", type=integer(0), default=1,
                        help="largest translation (pixels) of --augment shift; less than the image size")
    parser.add_argument("--train-limit", type=integer(1), default=None,
                        help="use only the first N training images (default: all)")
    parser.add_argument("--test-limit", type=integer(1), default=None,
                        help="score only the first N test images (default: all)")
    parser.add_argument("--val-size", type=integer(0), default=0,
                        help="hold out N training images to score each epoch on, and keep the best epoch's model "
                             "in best.npz (0: the test split is scored instead, the table and metrics say "
                             "test, and no best.npz is chosen on it)")
    parser.add_argument("--early-stop", type=integer(1, MAX_EPOCHS), default=None, metavar="N",
                        help="stop when the validation loss (segmentation: mean IoU) has not improved for N "
                             "epochs (needs --val-size); best.npz in the run folder holds the best epoch's model "
                             "either way")
    parser.add_argument("--seed", type=integer(0, MAX_SEED), default=0,
                        help="seed for weights, shuffling and augmentation")
    parser.add_argument("--frequency", type=integer(1, MAX_FREQUENCY_BUDGET), default=None, metavar="BUDGET",
                        help="after dense training, fine-tune a frequency-regularised copy (weights as DCT "
                             "coefficients, zigzag tail truncation) until its file stores BUDGET numbers, with the "
                             "schedule `minicnn experiment frequency` found best; writes model.fr.npz (float16) in "
                             "the run folder and scores the reloaded file; LeNet-5 is then built with C5 as a 5x5 "
                             "convolution (c5_conv), as measured there (classification models only)")
    parser.add_argument("--fr-epochs", type=integer(1, MAX_EPOCHS), default=None, metavar="N",
                        help="epochs of the --frequency fine-tuning (default 10; truncation over the first 2)")
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


class _Refused(Exception):
    """A step found that the run cannot go on: `message` for stderr, `code` the exit code."""

    def __init__(self, message: str, code: int = EXIT_DATA):
        super().__init__(message)
        self.message, self.code = message, code


def run(args) -> int:
    """The steps of `minicnn train`, in order; a refused step ends the command with its message and code."""
    from minicnn.commands._options import fail

    try:
        out = _run_folder(args)
        with _owned(out):
            _folder_state(args, out)
            ds, augment = _data(args)
            data_crc = _fingerprint(ds.x_train, ds.y_train)  # of the images as read, before normalisation
            mean, std = _normalise(ds)
            val = _validation_split(args, ds)
            _check_sizes(args, ds)
            model, config = _model(args, ds)
            _check_frequency(args, model)
            lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
            defining = _defining_options(args, config, lr, augment, data_crc)
            _check_resume(args, out, defining, config, val)
            optimizer = _optimizer(args, model, lr)
            schedule = _schedule(args, lr, len(ds.x_train))
            meta = {"model": args.model, "model_config": config, "dataset": _dataset_ref(args),
                    "class_names": ds.class_names, "mean": mean, "std": std, "input_shape": list(ds.input_shape),
                    "optimizer": args.optimizer, "lr": lr, "schedule": args.schedule, "warmup": args.warmup,
                    "epochs": args.epochs, "augment": augment, "run": defining}
            result = _train(args, out, model, ds, val, optimizer, schedule, _augmenter(args, augment), meta, lr)
            if args.frequency is not None and result.status in ("done", "stopped early"):
                _frequency(args, out, model, ds, val, meta)
    except _Refused as refused:
        return fail(NAME, refused.message, refused.code)
    return _exit_code(result, out)


def _run_folder(args) -> Path:
    """Step 1, conflicts and the run folder: --resume against --overwrite, --early-stop without
    --val-size, an empty --out, the default folder (a new -2, -3, ... when it holds an earlier run),
    a folder that cannot be written."""
    if args.resume and args.overwrite:
        raise _Refused("--resume continues the run in --out, --overwrite replaces it: give one of them")
    if args.early_stop is not None and not args.val_size:
        raise _Refused(f"--early-stop {args.early_stop} chooses when to stop on held-out images: give --val-size N "
                       f"too (the test split must not choose the model)")
    if args.out is not None and not args.out.strip():
        raise _Refused(f"--out {args.out!r}: expected a folder name")
    out = Path(args.out) if args.out else _free_folder(Path(f"runs/{Path(args.dataset).stem}-{args.model}-"
                                                            f"seed{args.seed}"), args.resume or args.overwrite)
    problem = _unwritable(out)
    if problem:
        raise _Refused(problem)
    return out


@contextmanager
def _owned(out: Path):
    """Step 2, the lock: the run folder is this run's alone until the command ends (a second
    `minicnn train` into it is refused, see `minicnn.app.RunLock`); a stale lock is reported."""
    from minicnn.app.runlock import RunLock, RunLockError
    from minicnn.commands._options import wrap

    lock = RunLock(out)
    try:
        lock.acquire()
    except (RunLockError, OSError) as e:
        raise _Refused(str(e) if isinstance(e, RunLockError) else f"cannot lock the run folder {out}: {e}") from None
    try:
        if lock.took_over:
            print(wrap(f"note: {out} was locked by {lock.took_over}, which is no longer running; "
                       f"this run takes it over"))
        yield
    finally:
        lock.release()


def _folder_state(args, out: Path) -> None:
    """Step 3, what is in the folder (read under the lock): an earlier run is refused without --resume
    or --overwrite; --resume with nothing to resume is refused."""
    from minicnn.app.train import CHECKPOINT_NAME

    if args.resume and not (out / CHECKPOINT_NAME).is_file():
        raise _Refused(f"--resume: there is no run to resume in {out} (no {CHECKPOINT_NAME}); leave out --resume to "
                       f"start a new run there")
    problem = None if args.resume or args.overwrite else _earlier_run(out)
    if problem:
        raise _Refused(problem)


def _data(args):
    """Step 4, the data: the model name is checked first (before anything is read or downloaded), then
    the dataset (--train-limit), the kind of task against the model and --loss (`_task_kind`), and the
    augmentation ("auto" resolved; --shift fits the images; none for a segmentation task)."""
    from minicnn.data import SEGMENTATION_TASKS, DatasetError, load_dataset
    from minicnn.models import check_name

    try:
        check_name(args.model)
    except ValueError as e:
        raise _Refused(str(e)) from None
    if args.dataset in SEGMENTATION_TASKS or args.model in SEGMENTATION_MODELS:  # before the data is made
        _task_kind(args, args.dataset in SEGMENTATION_TASKS)
    try:
        ds = load_dataset(args.dataset, args.data_dir, download=not args.no_download)
        if args.train_limit is not None:
            ds = ds.subset(train=args.train_limit)
    except DatasetError as e:
        raise _Refused(str(e)) from None
    except ValueError as e:
        raise _Refused(f"--train-limit {args.train_limit}: {e}") from None
    if args.test_limit is not None:
        ds = ds.subset(test=min(args.test_limit, len(ds.x_test)))
    segmentation = _task_kind(args, ds.y_train.ndim == 3)
    if segmentation:
        return ds, _no_augmentation(args)
    augment = args.augment
    if augment == "auto":
        augment = "crop-flip" if ds.input_shape[0] == 3 else "shift"
    if augment == "shift" and args.shift >= min(ds.input_shape[1:]):
        raise _Refused(f"--shift {args.shift}: expected fewer pixels than the image size "
                       f"{ds.input_shape[1]}x{ds.input_shape[2]}")
    return ds, augment


def _task_kind(args, segmentation: bool) -> bool:
    """A segmentation task (labels per pixel) needs a segmentation model and a classification task a
    classifier; --loss dice is for segmentation only. -> `segmentation`; refused otherwise."""
    if segmentation and args.model not in SEGMENTATION_MODELS:
        raise _Refused(f"{args.dataset} is a segmentation task (a class per pixel); --model {args.model} is a "
                       f"classifier: use --model {' or '.join(SEGMENTATION_MODELS)}")
    if not segmentation and args.model in SEGMENTATION_MODELS:
        raise _Refused(f"--model {args.model} is a segmentation model (a class per pixel); {args.dataset} has one "
                       f"label per image: use a segmentation task (mnist-seg, fashion-on-cifar-seg)")
    if args.loss in SEGMENTATION_LOSSES and not segmentation:
        raise _Refused(f"--loss {args.loss} is a segmentation loss; {args.dataset} is a classification task: use "
                       f"--loss ce")
    if args.head_bias is not None and not segmentation:
        raise _Refused(f"--head-bias {args.head_bias} sets a segmentation model's head; {args.dataset} is a "
                       f"classification task: leave it out")
    if args.loss == "dice" and args.label_smoothing:
        raise _Refused(f"--label-smoothing {args.label_smoothing:g} smooths the cross-entropy's targets; the Dice "
                       f"loss has none: leave it out, or use --loss ce")
    return segmentation


def _no_augmentation(args) -> str:
    """A segmentation task trains without augmentation: shift and crop-flip move the image but not its
    mask. "auto" becomes "none" with a note; an explicit shift or crop-flip is refused."""
    from minicnn.commands._options import wrap

    if args.augment in ("shift", "crop-flip"):
        raise _Refused(f"--augment {args.augment} would move the images but not their masks; a segmentation "
                       f"task trains with --augment none (or auto)")
    if args.augment == "auto":
        print(wrap("note: segmentation task: no augmentation (shift and crop-flip would move the images "
                   "but not their masks)"))
    return "none"


def _normalise(ds):
    """Step 5, normalisation: both splits standardised in place with the training images' per-channel
    mean and std -> (mean, std), stored in the checkpoint for prediction."""
    from minicnn.data import standardize

    mean, std = ds.channel_stats()
    ds.x_train, ds.x_test = standardize(ds.x_train, mean, std), standardize(ds.x_test, mean, std)
    return mean, std


def _validation_split(args, ds):
    """Step 6, the validation split: --val-size training images held out (seeded by --seed, see
    `split_validation`) -> (x_val, y_val), or None without --val-size (the test split scores the epochs)."""
    from minicnn.data.batching import split_validation

    if args.val_size == 0:
        return None
    if args.val_size >= len(ds.x_train):
        raise _Refused(f"--val-size {args.val_size} leaves no training images (have {len(ds.x_train)})")
    (ds.x_train, ds.y_train), val = split_validation(ds.x_train, ds.y_train, args.val_size, args.seed)
    return val


def _check_sizes(args, ds) -> None:
    """Step 7, the data against the limits, before the model is built: both splits non-empty, labels in
    [0, classes) with at most MAX_CLASSES classes, --batch-size at most the training images,
    --warmup at most the run's steps."""
    from minicnn.data.batching import num_batches

    if len(ds.x_train) == 0 or len(ds.x_test) == 0:
        raise _Refused(f"{ds.name}: expected training and test images, got {len(ds.x_train)} training and "
                       f"{len(ds.x_test)} test images")
    from minicnn.data.readers import MAX_CLASSES  # the one limit of dataset files (imported here: --help stays fast)

    if ds.num_classes > MAX_CLASSES:
        raise _Refused(f"{ds.name}: {ds.num_classes:,} classes, expected at most {MAX_CLASSES:,} (are the labels "
                       f"class numbers 0, 1, 2, ...?)")
    for split, y in (("training", ds.y_train), ("test", ds.y_test)):
        if y.min() < 0 or y.max() >= ds.num_classes:
            raise _Refused(f"{ds.name}: {split} labels range over [{y.min()}, {y.max()}], expected class numbers "
                           f"in [0, {ds.num_classes - 1}]")
    if args.batch_size > len(ds.x_train):
        raise _Refused(f"--batch-size {args.batch_size}: expected at most the {len(ds.x_train):,} training images")
    steps = args.epochs * num_batches(len(ds.x_train), args.batch_size)
    if args.warmup > steps:
        raise _Refused(f"--warmup {args.warmup}: expected at most the run's {steps:,} steps ({args.epochs} epochs "
                       f"of {num_batches(len(ds.x_train), args.batch_size):,} batches)")


def _model(args, ds):
    """Step 8, the model: built from --seed with --width and --method -> (model, its config); a --method
    for a model that takes none is refused, naming those that do. A segmentation model's head bias then
    starts at the log class prior of the training pixels (--head-bias prior, the default; see
    `minicnn.app.segmentation.init_prior_bias` for why)."""
    from minicnn import core
    from minicnn.models import MODELS, build, config_for

    core.manual_seed(args.seed)
    try:
        config = config_for(args.model, ds.input_shape, num_classes=ds.num_classes, width=args.width,
                            method=args.method, c5_conv=True if args.frequency is not None else None)
        model = build(args.model, **config)
    except ValueError as e:
        raise _Refused(str(e)) from None
    if _head_bias(args) == "prior":
        from minicnn.app.segmentation import init_prior_bias

        init_prior_bias(model, ds.y_train)  # the training pixels only (after --val-size's hold-out)
    if args.method != DEFAULT_METHOD and "method" not in config:
        takers = [name for name in sorted(MODELS)
                  if "method" in config_for(name, ds.input_shape, method=DEFAULT_METHOD)]
        raise _Refused(f"--method {args.method}: {args.model} has no choice of convolution algorithm; "
                       f"{', '.join(takers)} take one")
    return model, config


def _check_frequency(args, model) -> None:
    """Step 8b, --frequency before any training: a classifier, and a budget its layers can meet (the
    biases and normalisation numbers are stored first, every layer keeps at least one coefficient)."""
    from minicnn.app.frequency import FrequencySchedule, budget_targets, frequency_layers, to_frequency

    if args.frequency is None:
        if args.fr_epochs is not None:
            raise _Refused(f"--fr-epochs {args.fr_epochs} sets the fine-tuning of --frequency BUDGET: give both")
        return
    if args.model in SEGMENTATION_MODELS:
        raise _Refused(f"--frequency: {args.model} is trained for segmentation; its frequency-regularised version "
                       f"is made by `minicnn experiment frequency --model {args.model}`")
    probe = to_frequency(copy.deepcopy(model))
    if not dict(frequency_layers(probe)):
        raise _Refused(f"--frequency: {args.model} has no convolution or linear layer to store as DCT coefficients")
    schedule = FrequencySchedule()
    try:
        budget_targets(probe, args.frequency, schedule.floor, schedule.power, schedule.bias_keep)
    except ValueError as e:
        raise _Refused(f"--frequency {args.frequency}: {e}") from None


def _frequency(args, out: Path, model, ds, val, meta: dict) -> None:
    """Step 12b, --frequency: the densely trained model fine-tuned in the DCT domain down to BUDGET stored
    numbers (`frequency_fine_tune`, through `fit`), written as model.fr.npz by the write rule, reloaded
    and scored on the test split beside the dense model."""
    import numpy as np

    from minicnn.app import evaluate, load_model
    from minicnn.app.frequency import FrequencySchedule, describe, frequency_fine_tune, save_compressed
    from minicnn.commands._options import wrap
    from minicnn.commands.compress import ACCURACY_LOSS_WARN
    from minicnn.files import TargetError

    epochs = args.fr_epochs or FrequencySchedule().epochs
    schedule = FrequencySchedule(epochs=epochs, truncate_epochs=min(FrequencySchedule().truncate_epochs, epochs))
    print(wrap(f"frequency regularisation: {epochs} epochs of fine-tuning down to {args.frequency:,} stored numbers"))
    fr = frequency_fine_tune(model, ds, args.frequency, schedule, val=val, seed=args.seed,
                             log=lambda message: print(wrap(message)))
    path = out / FR_NAME
    extra = {key: meta[key] for key in ("dataset", "class_names", "input_shape")}
    extra.update({key: np.asarray(meta[key]).tolist() for key in ("mean", "std")})  # per channel, as JSON
    try:
        info = save_compressed(fr, path, float16=True, meta=describe(args.model, meta["model_config"], fr, **extra),
                               overwrite=args.resume or args.overwrite)
    except (TargetError, FileExistsError) as e:
        raise _Refused(str(e)) from None
    reloaded = evaluate(load_model(path).model, ds.x_test, ds.y_test).accuracy
    dense = evaluate(model, ds.x_test, ds.y_test).accuracy
    print(wrap(f"{path}: {info['numbers']:,} stored numbers in {info['bytes']:,} bytes; test accuracy of "
               f"the reloaded file {reloaded:.2%} (dense {dense:.2%})"))
    if dense - reloaded > ACCURACY_LOSS_WARN:
        print(wrap(f"note: the frequency-regularised file scores {100 * (dense - reloaded):.1f} points below the "
                   f"dense model: a larger BUDGET or more --fr-epochs keeps more (`minicnn experiment frequency` "
                   f"measures the trade-off)"))


def _dataset_ref(args) -> str:
    """The dataset as the checkpoint names it: a registered name, or the absolute path of a .npz or folder."""
    path = Path(args.dataset)
    return str(path.resolve()) if path.suffix == ".npz" or path.is_dir() else args.dataset


def _defining_options(args, config: dict, lr: float, augment: str, data_crc: int) -> dict:
    """Every option that makes the run what it is (a resumed run must repeat them), keyed as the user
    would write them; options that do not apply (--momentum for adam, --shift for crop-flip) are None."""
    return {"--dataset": _dataset_ref(args), "--train-limit": args.train_limit, "--val-size": args.val_size,
            **({"--test-limit": args.test_limit} if args.test_limit is not None else {}),  # absent: old runs resume
            "training images (CRC-32)": data_crc, "--model": args.model,
            **{f"--{k}" if k in ("width", "method") else f"model option {k}": v for k, v in config.items()},
            "--optimizer": args.optimizer, "--lr": lr,
            "--momentum": args.momentum if args.optimizer == "sgd" else None,
            "--weight-decay": args.weight_decay, "--schedule": args.schedule, "--warmup": args.warmup,
            "--augment": augment, "--shift": args.shift if augment == "shift" else None,
            "--seed": args.seed, "--batch-size": args.batch_size,
            **({"--label-smoothing": args.label_smoothing} if args.label_smoothing else {}),  # absent: old runs resume
            **({"--loss": args.loss} if args.loss != "ce" else {}),
            **({"--head-bias": _head_bias(args)} if args.model in SEGMENTATION_MODELS else {})}


def _head_bias(args) -> str | None:
    """The resolved --head-bias: "prior" by default for a segmentation model, None for a classifier."""
    if args.model not in SEGMENTATION_MODELS:
        return None
    return args.head_bias or "prior"


def _check_resume(args, out: Path, defining: dict, config: dict, val) -> None:
    """Step 9, resume: the saved checkpoint is checked as strictly as `evaluate` checks a model file
    (its model config within the limits of `load_model`, every history row well formed) and must
    have been made with the same options (a larger --epochs extends it, said in a note)."""
    from minicnn.app.checkpoint import CheckpointError, load_checkpoint
    from minicnn.app.loading import ModelFileError, check_config
    from minicnn.app.train import CHECKPOINT_NAME, TEST, VAL, check_history
    from minicnn.commands._options import wrap

    if not args.resume:
        return
    path = out / CHECKPOINT_NAME
    try:
        saved = load_checkpoint(path).meta
        check_config(saved.get("model"), saved.get("model_config"), path)
        problem = _changed(out, saved, defining, config, args.epochs)
        if problem:
            raise _Refused(problem)
        check_history(saved.get("history"), VAL if val is not None else TEST, path, args.model in SEGMENTATION_MODELS)
    except (CheckpointError, ModelFileError) as e:
        raise _Refused(str(e)) from None
    if saved.get("epochs") not in (None, args.epochs):
        print(wrap(f"note: the run is extended from {saved['epochs']} to {args.epochs} epochs"
                   + ("; the cosine schedule is recomputed over the new length" if args.schedule == "cosine"
                      else "")))


def _optimizer(args, model, lr: float):
    """Step 10, the optimiser: SGD (with --momentum) or Adam, both with --weight-decay."""
    from minicnn import optim

    if args.optimizer == "sgd":
        return optim.SGD(model.parameters(), lr, momentum=args.momentum, weight_decay=args.weight_decay)
    return optim.Adam(model.parameters(), lr, weight_decay=args.weight_decay)


def _schedule(args, lr: float, train_images: int):
    """Step 11, the schedule: cosine decay to 0 over all the run's steps, or constant; then --warmup
    steps of linear warm-up."""
    from minicnn import optim
    from minicnn.data.batching import num_batches

    steps = args.epochs * num_batches(train_images, args.batch_size)
    schedule = optim.CosineLR(lr, steps) if args.schedule == "cosine" else (lambda _step: lr)
    return optim.LinearWarmup(schedule, args.warmup) if args.warmup else schedule


def _augmenter(args, augment: str):
    """The augmentation function of the resolved --augment (None for "none")."""
    from minicnn.data import crop_flip, shift

    if augment == "shift":
        return shift(args.shift)
    return crop_flip(CROP_PADDING) if augment == "crop-flip" else None


def _train(args, out: Path, model, ds, val, optimizer, schedule, augment, meta: dict, lr: float):
    """Step 12, the run: --overwrite clears the folder, the plan is printed, then `fit` -> its FitResult.
    A damaged checkpoint and an unwritable folder are refused; a closed stdout is not ours to report."""
    from minicnn.app.checkpoint import CheckpointError
    from minicnn.app.train import BEST_NAME, CHECKPOINT_NAME, BestCheckpoint, EarlyStopping, FitConfig, fit
    from minicnn.commands._options import fail, wrap
    from minicnn.files import TargetError, safe_target

    monitor = SEGMENTATION_MONITOR if args.model in SEGMENTATION_MODELS else "val_loss"
    callbacks = [BestCheckpoint(out / BEST_NAME, meta, monitor=monitor)] if val is not None else []
    if args.early_stop is not None:
        callbacks.append(EarlyStopping(args.early_stop, monitor=monitor))
    if args.overwrite:
        paths = [out / name for name in (CHECKPOINT_NAME, *RUN_FILES)] + sorted(out.glob("confusion-*.png"))
        try:  # --overwrite replaces the earlier run's files, never a link, FIFO, device or folder in their place
            for path in paths:
                safe_target(path, overwrite=True)
        except TargetError as e:
            raise _Refused(f"--overwrite: {e}") from None
        for path in paths:
            path.unlink(missing_ok=True)
    print("\n".join(wrap(line) for line in _plan(args, model, ds, val, lr, meta["augment"], out)))
    config = FitConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, out_dir=out,
                       resume=args.resume, progress=not args.no_progress)
    try:
        return fit(model, ds, optimizer, config, schedule=schedule, augment=augment, val=val, meta=meta,
                   loss_fn=_loss(args), callbacks=callbacks,
                   log=lambda message: print(wrap(message)),
                   warn=lambda message: fail(NAME, message))
    except (CheckpointError, TargetError) as e:  # TargetError: a link, FIFO or folder where a file goes
        raise _Refused(str(e)) from None
    except BrokenPipeError:  # stdout's reader went away (`minicnn train | head`): not the run folder
        raise
    except OSError as e:
        raise _Refused(f"cannot write the run folder {out}: {e}", EXIT_DIVERGED) from None


def _loss(args):
    """The --loss: softmax cross-entropy (with --label-smoothing; per pixel for a segmentation), the
    soft Dice loss, or their sum (--label-smoothing goes to its cross-entropy term)."""
    from minicnn.losses import CrossEntropyDiceLoss, SoftDiceLoss, SoftmaxCrossEntropy

    if args.loss == "dice":
        return SoftDiceLoss()
    if args.loss == "ce+dice":
        return CrossEntropyDiceLoss(label_smoothing=args.label_smoothing)
    return SoftmaxCrossEntropy(label_smoothing=args.label_smoothing)


def _exit_code(result, out: Path) -> int:
    """Step 13, the exit code: 0 done or stopped early (where the files are), 130 interrupted (how to
    continue), 1 diverged."""
    from minicnn.commands._options import fail, wrap

    if result.status == "interrupted":
        return fail(NAME, "to continue, run the same command with --resume", EXIT_INTERRUPTED)
    if result.status == "diverged":
        return EXIT_DIVERGED
    best = ", best.npz (the best validation epoch)" if (out / "best.npz").is_file() else ""
    best += f", {FR_NAME} (frequency-regularised)" if (out / FR_NAME).is_file() else ""
    print(wrap(f"checkpoint{best}, metrics.csv/json and curves.png in {out}"))
    return 0


def _plan(args, model, ds, val, lr: float, augment: str, out) -> list[str]:
    """What the run will do, before it starts: model, data splits (and which one scores the epochs),
    training settings, run folder."""
    c, h, w = ds.input_shape
    splits = (f"{len(ds.x_train):,} training, {len(val[1]):,} validation (held out from training), "
              f"{len(ds.x_test):,} test images" if val is not None else
              f"{len(ds.x_train):,} training, {len(ds.x_test):,} test images (no --val-size: epochs scored on "
              f"test)")
    return [f"{args.model} ({model.num_parameters():,} parameters) on {ds.name}, images {c}x{h}x{w}", splits,
            f"{args.optimizer} lr {lr:g} ({args.schedule}), {_loss_name(args)}batch {args.batch_size}, "
            f"{args.epochs} "
            f"epoch{'s' if args.epochs > 1 else ''}, "
            f"augment {augment}, seed {args.seed}", f"run folder {out}"]


def _loss_name(args) -> str:
    """The plan's words for a segmentation's loss ("" for a classifier: its plan reads as before)."""
    if args.model not in SEGMENTATION_MODELS:
        return ""
    loss = {"dice": "soft Dice loss, ", "ce+dice": "per-pixel cross-entropy + soft Dice, "}.get(
        args.loss, "per-pixel cross-entropy, ")
    return loss + ("head bias log class prior, " if _head_bias(args) == "prior" else "")


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
    before = {**(saved["run"] if isinstance(saved.get("run"), dict) else {"--model": saved.get("model")}),
              "model config": saved.get("model_config")}  # older checkpoints have no "run"
    now = {**defining, "model config": config}
    lines = [f"  {key}: {before[key]} then, {value} now" for key, value in now.items()
             if key in before and before[key] != value]
    lines += [f"  {key}: {before[key]} then, not given now" for key in before if key not in now]  # e.g. smoothing
    done = saved.get("epoch")
    if isinstance(done, int) and epochs < done:
        lines.append(f"  --epochs: {done} already trained, {epochs} asked")
    if not lines:
        return None
    return "\n".join([f"the run in {out} was made with other options; resume with the same ones "
                      f"(--epochs may grow) or choose another --out:", *lines])
