"""`minicnn evaluate CHECKPOINT`: test accuracy and the confusion matrix of a trained model."""

from __future__ import annotations

NAME = "evaluate"
HELP = "test accuracy of a checkpoint, with its confusion matrix (printed and saved as PNG)"


def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", help="a checkpoint.npz written by minicnn train, or a compressed .fr.npz")
    parser.add_argument("--dataset", default=None, help="evaluate on this dataset instead of the training one")
    parser.add_argument("--data-dir", default=None, help="folder searched first for the dataset files")
    parser.add_argument("--png", default=None, help="where to save the confusion matrix "
                                                    "(default: confusion.png beside the checkpoint)")


def confusion_matrix(labels, predictions, num_classes: int):
    """C[i, j] = number of test images of class i predicted as class j."""
    import numpy as np

    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def format_confusion(matrix, class_names: list[str]) -> str:
    """The matrix as text: rows = true class, columns = predicted class, per-class recall at the end."""
    short = [n[:6] for n in class_names]
    width = max(6, len(str(matrix.max())))
    lines = ["true\\pred".ljust(10) + " ".join(s.rjust(width) for s in short) + "  recall"]
    for i, (name, row) in enumerate(zip(short, matrix, strict=True)):
        recall = row[i] / max(row.sum(), 1)
        lines.append(name.ljust(10) + " ".join(str(v).rjust(width) for v in row) + f"  {recall:6.1%}")
    return "\n".join(lines)


def plot_confusion(matrix, class_names: list[str], path, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

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
    fig.savefig(path, dpi=100)


def run(args) -> int:
    import math
    from pathlib import Path

    from minicnn.app import ModelFileError, evaluate, load_model
    from minicnn.app.train import non_finite_parameters
    from minicnn.commands._options import EXIT_FAILED, fail
    from minicnn.data import DatasetError, load_dataset

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
    except (ModelFileError, DatasetError) as e:
        return fail(NAME, str(e))
    x_test = loaded.normalize(ds.x_test)
    if loaded.input_shape is not None and x_test.shape[1:] != loaded.input_shape:
        return fail(NAME, f"the model expects images {loaded.input_shape}, {ds.name} has {x_test.shape[1:]}")
    result = evaluate(loaded.model, x_test, ds.y_test)
    if not math.isfinite(result.loss):
        return fail(NAME, f"the test loss is {result.loss}: the model's outputs are not finite", EXIT_FAILED)
    names = list(loaded.class_names or ds.class_names)
    names += [str(i) for i in range(len(names), int(ds.y_test.max()) + 1)]
    matrix = confusion_matrix(ds.y_test, result.predictions, len(names))
    print(format_confusion(matrix, names))
    title = f"{loaded.name} on {ds.name}: test accuracy {result.accuracy:.2%}"
    png = Path(args.png) if args.png else Path(args.checkpoint).with_name("confusion.png")
    try:
        plot_confusion(matrix, names, png, title)
    except OSError as e:
        return fail(NAME, f"cannot write the confusion matrix {png}: {e.strerror or e}", EXIT_FAILED)
    print(f"{title} ({result.correct}/{len(ds.y_test)}), test loss {result.loss:.4f}; confusion matrix saved to {png}")
    return 0
