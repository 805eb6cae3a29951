"""`minicnn lr-find`: the learning-rate range test (`minicnn.app.lr_find`): loss against learning rate over
an exponential sweep, a PNG of the curve and a suggested `--lr` for `minicnn train`.

The images are standardised as `minicnn train` does (training-set channel mean and std), without
augmentation. The PNG never replaces a file this run did not make: the default name moves on to
lr_find-2.png, ...; an existing --out is refused unless --overwrite."""

from __future__ import annotations

import os
from pathlib import Path

NAME = "lr-find"
HELP = "learning-rate range test: loss against lr, a PNG and a suggested --lr"
DEFAULT_OUT = "lr_find.png"
TABLE_ROWS = 12  # rows of the printed curve (every k-th step)
MAX_BATCH_SIZE = 4_096  # as `minicnn train`'s limit
MAX_LR = 1e3  # a sweep's end: far past where any net here diverges (the default ends at 10)
MAX_WEIGHT_DECAY = 1.0  # an L2 term as large as the loss itself; more only ever diverges


def add_arguments(parser) -> None:
    from minicnn.app.lr_find import END_LR, START_LR, STEPS
    from minicnn.commands._options import MAX_SEED, integer, number

    parser.add_argument("--dataset", default="mnist", help="mnist, fashion-mnist, cifar10, FILE.npz or FOLDER/")
    parser.add_argument("--model", default="lenet5", help="a registered model name (minicnn models)")
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd", help="update rule")
    parser.add_argument("--momentum", type=number(0, 1, high_open=True), default=0.9, help="SGD momentum")
    parser.add_argument("--weight-decay", type=number(0, MAX_WEIGHT_DECAY), default=5e-4, help="L2 weight decay")
    parser.add_argument("--batch-size", type=integer(1, MAX_BATCH_SIZE), default=64, help="images per step")
    parser.add_argument("--steps", type=integer(12, 10_000), default=STEPS, help="steps of the sweep at most")
    parser.add_argument("--start-lr", type=number(0, MAX_LR, low_open=True), default=START_LR,
                        help="first learning rate")
    parser.add_argument("--end-lr", type=number(0, MAX_LR, low_open=True), default=END_LR,
                        help="last learning rate")
    parser.add_argument("--width", type=number(1 / 16, 8.0), default=1.0, help="channel-width multiplier")
    parser.add_argument("--label-smoothing", type=number(0, 1, high_open=True), default=0.0,
                        help="the loss's label smoothing e (target (1-e) one-hot + e/K), as train's")
    parser.add_argument("--seed", type=integer(0, MAX_SEED), default=0, help="seed for weights and batch order")
    parser.add_argument("--out", default=None,
                        help=f"PNG of the curve (default {DEFAULT_OUT}, or lr_find-2.png, ... when that exists; a "
                             f"name without a suffix gets .png)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--data-dir", default=None, help="folder searched first for the dataset files")
    parser.add_argument("--no-download", action="store_true", help="never download; fail if files are missing")


def _out(args) -> Path:
    """The PNG to write, checked before the sweep: never a file this run did not create unless
    --overwrite (the default name moves on to lr_find-2.png, ..., with a note), never a folder, device,
    FIFO or link. ValueError with one line when it cannot be written."""
    from minicnn.commands._options import wrap
    from minicnn.files import TargetError, next_free, safe_target

    if args.out is None:
        out = Path(DEFAULT_OUT) if args.overwrite else next_free(DEFAULT_OUT)
        if out != Path(DEFAULT_OUT):
            print(wrap(f"note: {DEFAULT_OUT} exists (kept); this curve goes to {out}"))
    else:
        out = Path(args.out)
        if not args.out.strip() or out.name in ("", ".", ".."):
            raise ValueError(f"--out: expected a file name ending in .png, got {args.out!r}")
        if out.suffix == "":
            if not os.path.lexists(out):  # an existing name is judged as given (/dev/null, a folder)
                out = out.with_suffix(".png")
        elif out.suffix.lower() != ".png":
            raise ValueError(f"--out: expected a .png file, got {args.out!r} (suffix {out.suffix})")
    try:
        return safe_target(out, args.overwrite)
    except FileExistsError:
        raise ValueError(f"--out {out} exists; give another name or --overwrite to replace it") from None
    except TargetError as e:
        raise ValueError(f"--out: {e}") from None


def curve_lines(result) -> list[str]:
    """A short table of the sweep (TABLE_ROWS rows), the stop reason and the suggestion; each <= 80 columns."""
    step = max(1, len(result.lrs) // TABLE_ROWS)
    lines = [f"{'step':>5}  {'learning rate':>13}  {'batch loss':>10}  {'smoothed':>9}"]
    shown = list(range(0, len(result.lrs), step))
    if shown and shown[-1] != len(result.lrs) - 1:
        shown.append(len(result.lrs) - 1)
    for i in shown:
        lines.append(f"{i + 1:>5}  {result.lrs[i]:>13.3g}  {result.losses[i]:>10.4f}  {result.smoothed[i]:>9.4f}")
    why = {"done": "all steps run", "diverged": "the loss exploded", "non-finite loss": "the loss became NaN/inf"}
    lines.append(f"stopped after {len(result.lrs)} steps: {why[result.stopped]}")
    if result.suggestion is None:
        lines.append("no suggestion: the smoothed loss never fell (try a lower --start-lr or more --steps)")
    else:
        lines.append(f"suggested --lr {result.suggestion:.3g} (steepest descent of the smoothed loss)")
    return lines


def run(args) -> int:
    from minicnn import core, optim
    from minicnn.app.lr_find import LRFindConfig, lr_find, plot_lr_find
    from minicnn.commands._options import EXIT_FAILED, fail
    from minicnn.data import DatasetError, load_dataset, standardize
    from minicnn.losses import SoftmaxCrossEntropy
    from minicnn.models import build, check_name, config_for

    try:
        out = _out(args)
        config = LRFindConfig(start_lr=args.start_lr, end_lr=args.end_lr, steps=args.steps,
                              batch_size=args.batch_size, seed=args.seed)
        check_name(args.model)
        ds = load_dataset(args.dataset, args.data_dir, download=not args.no_download)
        core.manual_seed(args.seed)
        model = build(args.model, **config_for(args.model, ds.input_shape, num_classes=ds.num_classes,
                                               width=args.width))
    except (ValueError, DatasetError) as e:
        return fail(NAME, str(e))
    mean, std = ds.channel_stats()
    x = standardize(ds.x_train, mean, std)  # as `minicnn train` feeds the images
    if args.optimizer == "sgd":
        optimizer = optim.SGD(model.parameters(), config.start_lr, momentum=args.momentum,
                              weight_decay=args.weight_decay)
    else:
        optimizer = optim.Adam(model.parameters(), config.start_lr, weight_decay=args.weight_decay)
    print(f"{args.model} on {Path(args.dataset).name or args.dataset}: {args.optimizer}, lr {config.start_lr:g} "
          f"to {config.end_lr:g} over at most {config.steps} steps of {config.batch_size}")
    result = lr_find(model, x, ds.y_train, optimizer, SoftmaxCrossEntropy(args.label_smoothing), config)
    for line in curve_lines(result):
        print(line)
    try:
        plot_lr_find(result, out, args.overwrite)
    except FileExistsError:
        return fail(NAME, f"--out {out} appeared during the sweep; give another name or --overwrite to replace it")
    except ValueError as e:  # TargetError: it became a folder, a link, ... meanwhile
        return fail(NAME, f"--out: {e}")
    except OSError as e:
        return fail(NAME, f"cannot write {out}: {e.strerror or e}", EXIT_FAILED)
    print(f"curve in {out}")
    return 0
