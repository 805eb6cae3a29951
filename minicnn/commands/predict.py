"""`minicnn predict CHECKPOINT IMAGE...`: classify your own images with a trained model.

Each picture goes through `minicnn.data.load_image` (any format Pillow reads, or `.npy`; scaled by
the file's real range, alpha drawings, colour/grey, resize and inversion, each change noted). A file
that cannot be read is reported on stderr and the others still run (exit code 2 at the end).
"""

from __future__ import annotations

import sys

NAME = "predict"
HELP = "classify pictures (PNG, JPEG, ... or NPY) with a trained checkpoint (try your own handwritten digit)"
TOP_K = 3


def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", help="a checkpoint.npz written by minicnn train, or a compressed .fr.npz")
    parser.add_argument("images", nargs="+",
                        help="picture files (any format Pillow reads) or NPY arrays ((H, W), (H, W, C) or (C, H, W))")
    parser.add_argument("--invert", choices=("auto", "yes", "no"), default="auto",
                        help="invert grey images (MNIST digits are light on dark); auto inverts a 1-channel "
                             "picture whose border is mostly light")


def run(args) -> int:
    import textwrap

    import numpy as np

    from minicnn.app import ModelFileError, load_model
    from minicnn.commands._options import COLUMNS, EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, fail, printable, wrap
    from minicnn.data import ImageError, load_image
    from minicnn.losses import log_softmax

    try:
        loaded = load_model(args.checkpoint)
        if loaded.input_shape is None or loaded.class_names is None:
            raise ModelFileError(f"{args.checkpoint} does not record its input shape and class names")
        if len(loaded.input_shape) != 3 or loaded.input_shape[0] not in (1, 3):
            raise ModelFileError(f"{args.checkpoint}: expected input images (1 or 3, H, W), the file says "
                                 f"{loaded.input_shape}")
    except ModelFileError as e:
        return fail(NAME, str(e))
    shape, names = loaded.input_shape, [printable(name) for name in loaded.class_names]  # escape sequences shown
    code = EXIT_OK
    for path in args.images:
        try:
            img, notes = load_image(path, shape, args.invert)
        except ImageError as e:  # the message starts with the path
            print(wrap(str(e)), file=sys.stderr)
            code = EXIT_BAD_INPUT
            continue
        x = loaded.normalize(img[None])  # (1, C, H, W)
        logits = loaded.model.forward(x).astype(np.float64)[0]  # (K,)
        if logits.shape != (len(names),) or not np.all(np.isfinite(logits)):
            print(wrap(f"{path}: the model's output is not {len(names)} finite scores "
                       f"(got {logits.shape}, {int(np.sum(~np.isfinite(logits)))} not finite); "
                       f"the model file may be damaged"), file=sys.stderr)
            code = max(code, EXIT_FAILED)
            continue
        probs = np.exp(log_softmax(logits[None]))[0]
        top = np.argsort(probs)[::-1][:TOP_K]
        ranked = ", ".join(f"{names[k]} {probs[k]:.1%}" for k in top)
        print(wrap(f"{path}: {names[top[0]]}  ({ranked})"))
        if notes:
            print(textwrap.fill(printable("; ".join(notes)), COLUMNS, initial_indent="  notes: ",
                                subsequent_indent=" " * 4, break_long_words=False, break_on_hyphens=False))
    return code
