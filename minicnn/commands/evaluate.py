"""`minicnn evaluate CHECKPOINT`: test accuracy and the confusion matrix of a trained model; for a
segmentation model (unet on mnist-seg, fashion-on-cifar-seg) Dice, IoU and pixel accuracy per class."""

from __future__ import annotations

NAME = "evaluate"
HELP = "test accuracy of a checkpoint and its confusion matrix (segmentation: Dice/IoU), printed and as PNG"


PNG_NAME = "confusion.png"  # the default figure, beside the checkpoint
NAME_CUT = 24  # class names shown in the segmentation table: 5 + 24 + 39 columns <= 80


def add_arguments(parser) -> None:
    from minicnn.commands._options import integer

    parser.add_argument("checkpoint", help="a checkpoint.npz written by minicnn train, or a compressed .fr.npz")
    parser.add_argument("--dataset", default=None, help="evaluate on this dataset instead of the training one")
    parser.add_argument("--data-dir", default=None, help="folder searched first for the dataset files")
    parser.add_argument("--test-limit", type=integer(1), default=None, metavar="N",
                        help="score only the first N test images (default: all)")
    parser.add_argument("--png", default=None, metavar="FILE.png",
                        help=f"where to save the confusion matrix; unset: {PNG_NAME} beside the checkpoint, "
                             f"or confusion-2.png, -3, ... when that holds an earlier one")
    parser.add_argument("--overwrite", action="store_true",
                        help=f"replace an existing --png (unset: {PNG_NAME}) instead of refusing or choosing "
                             f"a new name")


def figure_path(checkpoint: str, png: str | None, overwrite: bool = False):
    """Where the confusion matrix goes; an earlier file is never replaced unless `overwrite`.

    `png` given: that path, refused (ValueError) when it exists, does not end in .png or its folder
    does not exist. `png` None: confusion.png beside the checkpoint, or the first of confusion-2.png,
    -3, ... that does not exist yet (as `minicnn train` picks runs/NAME-2 for a new run). A dangling
    link counts as existing; the write itself (`write_atomic`) refuses links, FIFOs and folders."""
    import os
    from pathlib import Path

    from minicnn.commands._options import free_path

    if png is not None:
        path = Path(png)
        if path.suffix.lower() != ".png":
            raise ValueError(f"--png {png}: expected a file name ending in .png")
        if os.path.lexists(path) and not overwrite:
            raise ValueError(f"{path} already exists; choose another --png, or add --overwrite to replace it")
        if not path.parent.is_dir():
            raise ValueError(f"--png {png}: there is no folder {path.parent}")
        return path
    first = Path(checkpoint).with_name(PNG_NAME)
    return first if overwrite else free_path(first)


def confusion_matrix(labels, predictions, num_classes: int):
    """C[i, j] = number of test images of class i predicted as class j."""
    import numpy as np

    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def format_confusion(matrix, class_names: list[str]) -> str:
    """The matrix as text: rows = true class, columns = predicted class, both by class number, the
    recall of each class at the end of its row; then the class names, when they are not the numbers.
    When the matrix is wider than the terminal's 80 columns (many classes), each class's recall on a
    line of its own instead (the whole matrix is in the PNG)."""
    from minicnn.commands._options import COLUMNS, printable, wrap

    class_names = [printable(name) for name in class_names]  # names from a file: escape sequences shown, not run
    k = len(class_names)
    width = max(len(str(k - 1)), len(str(matrix.max())))
    head = "true\\pred"
    recalls = [row[i] / max(row.sum(), 1) for i, row in enumerate(matrix)]
    named = class_names != [str(i) for i in range(k)]
    if len(head) + k * (width + 1) + len("  recall") > COLUMNS:
        lines = [f"the {k}x{k} confusion matrix is too wide for {COLUMNS} columns (see the PNG); recall per class:"]
        lines += [f"{i:>{len(str(k - 1))}} {name}: {recall:.1%} ({row[i]}/{row.sum()})"
                  for i, (name, row, recall) in enumerate(zip(class_names, matrix, recalls, strict=True))]
        return wrap("\n".join(lines))
    lines = [head + "".join(f" {j:>{width}}" for j in range(k)) + "  recall"]
    lines += [f"{i:<{len(head)}}" + "".join(f" {v:>{width}}" for v in row) + f"  {recall:6.1%}"
              for i, (row, recall) in enumerate(zip(matrix, recalls, strict=True))]
    if named:
        lines.append(wrap("classes: " + ", ".join(f"{i} {name}" for i, name in enumerate(class_names))))
    return "\n".join(lines)


def plot_confusion(matrix, class_names: list[str], path, title: str, overwrite: bool = False) -> None:
    """The confusion matrix with its counts, written by `write_atomic` (`overwrite`: may replace a file)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from minicnn.files import write_atomic

    k = len(class_names)
    fig = Figure(figsize=(1.0 + 0.6 * k, 0.8 + 0.6 * k))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(k), class_names, rotation=45, ha="right")
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100), overwrite=overwrite)


def format_segmentation(scores, class_names: list[str]) -> str:
    """Dice, IoU and accuracy (recall: TP / pixels of the class) per class, then their means over the
    classes present, the foreground means (without class 0) and the pixel accuracy; <= 80 columns."""
    from minicnn.commands._options import printable

    names = [printable(name)[:NAME_CUT] for name in class_names]
    side = max(len("class"), *(len(name) for name in names)) + 5
    pixels = scores.confusion.sum(axis=1)
    lines = [f"{'class':<{side}}{'Dice':>8}{'IoU':>8}{'accuracy':>10}{'pixels':>13}"]
    for k, name in enumerate(names):
        values = (scores.dice[k], scores.iou[k], scores.class_accuracy[k])
        dice, iou, acc = ("-" if v != v else f"{v:.4f}" for v in values)  # NaN: neither present nor predicted
        lines.append(f"{f'{k:>2} {name}':<{side}}{dice:>8}{iou:>8}{acc:>10}{pixels[k]:>13,}")
    lines.append(f"{'mean':<{side}}{scores.mean_dice:>8.4f}{scores.mean_iou:>8.4f}{scores.mean_class_accuracy:>10.4f}")
    lines.append(f"{'mean without 0':<{side}}{scores.foreground_dice:>8.4f}{scores.foreground_iou:>8.4f}")
    lines.append(f"pixel accuracy {scores.pixel_accuracy:.2%} ({int(scores.confusion.trace()):,}/"
                 f"{int(scores.confusion.sum()):,} pixels)")
    return "\n".join(lines)


def plot_segmentation(scores, class_names: list[str], path, title: str, overwrite: bool = False) -> None:
    """Two panels: the per-pixel confusion matrix as row fractions (each true class's pixels, where they
    went), and Dice and IoU per class as bars. Written by `write_atomic`."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from minicnn.files import write_atomic

    k = len(class_names)
    rows = scores.confusion / np.maximum(scores.confusion.sum(axis=1, keepdims=True), 1)  # (K, K) fractions
    fig = Figure(figsize=(3.0 + 0.8 * k, 1.5 + 0.4 * k))
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    image = left.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=left, fraction=0.046, label="fraction of the true class's pixels")
    left.set_xticks(range(k), class_names, rotation=45, ha="right", fontsize=7)
    left.set_yticks(range(k), class_names, fontsize=7)
    left.set_xlabel("predicted")
    left.set_ylabel("true")
    left.set_title("per-pixel confusion (row fractions)", fontsize=9)
    at = np.arange(k)
    right.bar(at - 0.2, np.nan_to_num(scores.dice), 0.4, label=f"Dice (mean {scores.mean_dice:.3f})")
    right.bar(at + 0.2, np.nan_to_num(scores.iou), 0.4, label=f"IoU (mean {scores.mean_iou:.3f})")
    right.set_xticks(at, class_names, rotation=45, ha="right", fontsize=7)
    right.set_ylim(0, 1.05)
    right.set_title("per class", fontsize=9)
    right.legend(fontsize=7, loc="lower right")
    right.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100), overwrite=overwrite)


def run(args) -> int:
    import math

    from minicnn.app import ModelFileError, evaluate, load_model
    from minicnn.app.train import non_finite_parameters
    from minicnn.commands._options import EXIT_FAILED, SEGMENTATION_MODELS, fail, printable, wrap
    from minicnn.data import DatasetError, load_dataset
    from minicnn.data.readers import MAX_CLASSES
    from minicnn.files import TargetError

    try:
        png = figure_path(args.checkpoint, args.png, args.overwrite)
    except ValueError as e:
        return fail(NAME, str(e))
    try:
        loaded = load_model(args.checkpoint)
        if not (args.dataset or loaded.dataset):
            raise ModelFileError(f"{args.checkpoint} does not say which dataset it was trained on; "
                                 f"pass --dataset")
        bad = non_finite_parameters(loaded.model)
        if bad:
            raise ModelFileError(f"{args.checkpoint}: the weights hold NaN or infinity ({', '.join(bad[:3])}); "
                                 f"this model is broken")
        ds = load_dataset(args.dataset or loaded.dataset, args.data_dir)
        if args.test_limit is not None:
            ds = ds.subset(test=min(args.test_limit, len(ds.x_test)))
    except (ModelFileError, DatasetError) as e:
        return fail(NAME, str(e))
    x_test = loaded.normalize(ds.x_test)
    if loaded.input_shape is not None and x_test.shape[1:] != loaded.input_shape:
        return fail(NAME, f"the model expects images {loaded.input_shape}, {ds.name} has {x_test.shape[1:]}")
    if len(ds.y_test) == 0:
        return fail(NAME, f"{ds.name} has no test images")
    if (ds.y_test.ndim == 3) != (loaded.name in SEGMENTATION_MODELS):
        kind = "a segmentation task (a class per pixel)" if ds.y_test.ndim == 3 else "a classification task"
        return fail(NAME, f"{ds.name} is {kind}; {printable(loaded.name)} is "
                          f"{'a segmentation model' if loaded.name in SEGMENTATION_MODELS else 'a classifier'}")
    classes = len(loaded.class_names) if loaded.class_names else ds.num_classes
    if ds.y_test.min() < 0 or ds.y_test.max() >= classes or ds.num_classes > MAX_CLASSES:
        return fail(NAME, f"{ds.name}: test labels range over [{ds.y_test.min()}, {ds.y_test.max()}], the model "
                          f"has {classes} classes (at most {MAX_CLASSES:,} are allowed)")
    result = evaluate(loaded.model, x_test, ds.y_test)
    if not math.isfinite(result.loss):
        return fail(NAME, f"the test loss is {result.loss}: the model's outputs are not finite", EXIT_FAILED)
    names = [printable(name) for name in loaded.class_names or ds.class_names]  # also in the PNG: no control glyphs
    if loaded.class_names and list(ds.class_names) != list(loaded.class_names):
        print(wrap(f"note: the model's classes ({', '.join(map(printable, loaded.class_names[:4]))}, ...) are not "
                   f"{ds.name}'s ({', '.join(map(printable, ds.class_names[:4]))}, ...); rows and columns below use "
                   f"the model's names"))
    if loaded.dataset and args.dataset and loaded.dataset != args.dataset:
        print(wrap(f"note: the model was trained on {loaded.dataset}, evaluated here on {args.dataset}"))
    names += [str(i) for i in range(len(names), int(ds.y_test.max()) + 1)]
    if result.scores is not None:
        print(format_segmentation(result.scores, names))
        title = (f"{printable(loaded.name)} on {ds.name}: mean Dice {result.scores.mean_dice:.4f}, "
                 f"mean IoU {result.scores.mean_iou:.4f}, pixel accuracy {result.accuracy:.2%}")
        draw = plot_segmentation
        matrix = result.scores
    else:
        matrix = confusion_matrix(ds.y_test, result.predictions, len(names))
        print(format_confusion(matrix, names))
        title = f"{loaded.name} on {ds.name}: test accuracy {result.accuracy:.2%}"
        draw = plot_confusion
    try:
        draw(matrix, names, png, title, overwrite=args.overwrite)
    except (OSError, TargetError) as e:
        return fail(NAME, f"cannot write the figure {png}: {getattr(e, 'strerror', None) or e}", EXIT_FAILED)
    if result.scores is not None:
        print(wrap(f"{title}, per-pixel cross-entropy {result.loss:.4f} ({len(ds.y_test):,} test images)"))
        print(wrap(f"per-class scores saved to {png}"))
        return 0
    print(wrap(f"{title} ({result.correct}/{len(ds.y_test)}), test loss {result.loss:.4f}"))
    kept = "" if png.name == PNG_NAME or args.png else f" ({png.with_name(PNG_NAME)} is an earlier one, kept)"
    print(wrap(f"confusion matrix saved to {png}{kept}"))
    return 0
