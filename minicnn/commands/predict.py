"""`minicnn predict CHECKPOINT IMAGE...`: classify your own images with a trained model.

Each picture goes through `minicnn.data.load_image` (any format Pillow reads, or `.npy`; scaled by
the file's real range, alpha drawings, colour/grey, resize and inversion, each change noted). A file
that cannot be read is reported on stderr and the others still run (exit code 2 at the end).

A segmentation model (unet) writes, beside each input IMAGE.EXT, IMAGE.mask.png (each pixel coloured
by its predicted class, background black, at the model's input size) and IMAGE.overlay.png (the
picture as the model saw it, the predicted classes blended over it). An existing file is never
replaced: the next free name (IMAGE.mask-2.png, ...) is taken with a note, unless --overwrite.
"""

from __future__ import annotations

import sys

NAME = "predict"
HELP = "classify pictures (PNG, JPEG, ... or NPY) with a trained checkpoint, or segment them with a UNet"
TOP_K = 3
OVERLAY_ALPHA = 0.5  # weight of the class colour over the picture in IMAGE.overlay.png


def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", help="a checkpoint.npz written by minicnn train, or a compressed .fr.npz")
    parser.add_argument("images", nargs="+",
                        help="picture files (any format Pillow reads) or NPY arrays ((H, W), (H, W, C) or (C, H, W))")
    parser.add_argument("--invert", choices=("auto", "yes", "no"), default="auto",
                        help="invert grey images (MNIST digits are light on dark); auto inverts a 1-channel "
                             "picture whose border is mostly light")
    parser.add_argument("--overwrite", action="store_true",
                        help="segmentation: replace an existing IMAGE.mask.png / IMAGE.overlay.png instead of "
                             "writing IMAGE.mask-2.png, ...")


def class_colours(k: int):
    """(K, 3) uint8 colours of the K classes: class 0 (background) black, the others from the tab20 map."""
    import numpy as np
    from matplotlib import colormaps

    table = (np.asarray(colormaps["tab20"].colors)[:, :3] * 255).round().astype(np.uint8)  # (20, 3)
    return np.concatenate([np.zeros((1, 3), np.uint8), table[np.arange(k - 1) % len(table)]])


def mask_pictures(classes, picture, k: int):
    """Predicted classes (H, W) and the picture (C, H, W) in [0, 1] -> (mask, overlay), (H, W, 3) uint8
    each: the class colours, and the picture with OVERLAY_ALPHA of its class colour where the class is
    not the background."""
    import numpy as np

    colours = class_colours(k)
    mask = colours[classes]  # (H, W, 3)
    grey = np.repeat(picture[:1], 3, axis=0) if picture.shape[0] == 1 else picture  # (3, H, W)
    base = (np.clip(grey.transpose(1, 2, 0), 0, 1) * 255).astype(np.float64)  # (H, W, 3)
    blend = np.where((classes > 0)[..., None], (1 - OVERLAY_ALPHA) * base + OVERLAY_ALPHA * mask, base)
    return mask, blend.round().astype(np.uint8)


def _write_png(path, rgb, overwrite: bool):
    """`rgb` (H, W, 3) uint8 to `path`, or to the next free name (unless `overwrite`) -> (path written,
    the note saying a new name was taken, or "")."""
    from PIL import Image

    from minicnn.commands._options import free_path
    from minicnn.files import write_atomic

    target = path if overwrite else free_path(path)
    write_atomic(target, lambda tmp: Image.fromarray(rgb).save(tmp, format="PNG"), overwrite=overwrite)
    return target, ("" if target == path else f"{path.name} exists, kept")


def _segment(path: str, loaded, img, names: list[str], overwrite: bool) -> list[str]:
    """Segment one picture: write IMAGE.mask.png and IMAGE.overlay.png beside it -> lines to print.
    Raises ValueError (a non-finite or misshaped output) and OSError/TargetError (a write refused)."""
    from pathlib import Path

    import numpy as np

    logits = loaded.model.forward(loaded.normalize(img[None]))  # (1, K, H, W)
    k, size = len(names), img.shape[1:]
    if logits.shape != (1, k, *size) or not np.all(np.isfinite(logits)):
        raise ValueError(f"{path}: the model's output is not {k} finite maps of {size[0]}x{size[1]} (got "
                         f"{logits.shape}); the model file may be damaged")
    classes = logits[0].argmax(axis=0)  # (H, W)
    mask, overlay = mask_pictures(classes, img, k)
    source = Path(path)
    written, notes = [], []
    for what, rgb in (("mask", mask), ("overlay", overlay)):
        target, note = _write_png(source.with_name(f"{source.stem}.{what}.png"), rgb, overwrite)
        written.append(f"{what} {target}")
        notes += [note] if note else []
    counts = np.bincount(classes.ravel(), minlength=k)
    found = [f"{names[c]} {counts[c] / classes.size:.1%}" for c in np.argsort(counts)[::-1] if c and counts[c]]
    lines = [f"{path}: {', '.join(found[:TOP_K]) if found else 'background only'} of the pixels "
             f"({size[0]}x{size[1]})", "  " + "; ".join(written)]
    return lines + ([f"  note: {'; '.join(notes)}; a new name was taken (--overwrite replaces)"] if notes else [])


def run(args) -> int:
    import textwrap

    import numpy as np

    from minicnn.app import ModelFileError, load_model
    from minicnn.commands._options import (
        COLUMNS,
        EXIT_BAD_INPUT,
        EXIT_FAILED,
        EXIT_OK,
        SEGMENTATION_MODELS,
        fail,
        printable,
        wrap,
    )
    from minicnn.data import ImageError, load_image
    from minicnn.files import TargetError
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
        if loaded.name in SEGMENTATION_MODELS:
            try:
                lines = _segment(path, loaded, img, names, args.overwrite)
            except (ValueError, OSError) as e:  # also TargetError: a link, FIFO or folder at the PNG's name
                print(wrap(printable(str(e)) if not isinstance(e, OSError) or isinstance(e, TargetError)
                           else f"{path}: cannot write its mask: {e}"), file=sys.stderr)
                code = max(code, EXIT_FAILED)
                continue
            print("\n".join(wrap(line) for line in lines))
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
