"""`minicnn show CHECKPOINT [IMAGE] --out DIR`: pictures of what a trained model learned — the filters
of every convolution, and the feature maps of one image (see `minicnn.visualize`); for a segmentation
model (unet) with an image also mask.png: the picture, its predicted mask and the overlay.
A PNG already in DIR that this run did not write is never replaced without --overwrite (one line,
exit code 2); a link, FIFO or folder at a PNG's name is refused."""

from __future__ import annotations

import sys

NAME = "show"
HELP = "draw a trained model's convolution filters (and one image's feature maps) as PNG files"


def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", help="a checkpoint.npz written by minicnn train, or a compressed .fr.npz")
    parser.add_argument("image", nargs="?", help="a PNG or NPY image: also draw its feature maps "
                        "(converted and resized to the model's input as `minicnn predict` does)")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the PNG files (created)")
    parser.add_argument("--invert", choices=("auto", "yes", "no"), default="auto",
                        help="invert a grey image (MNIST digits are light on dark); auto inverts a mostly "
                             "light 1-channel image")
    parser.add_argument("--overwrite", action="store_true", help="replace PNG files already in --out")


def save_mask(loaded, x, shown, out, title: str, overwrite: bool):
    """mask.png in `out`: the picture `shown` (C, H, W), the predicted classes of the normalised x
    (1, C, H, W) in the class colours of `minicnn predict`, and the overlay; a legend of the classes
    present. Written by `write_atomic` -> the path."""
    from pathlib import Path

    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from minicnn.commands._options import printable
    from minicnn.commands.predict import class_colours, mask_pictures
    from minicnn.files import write_atomic

    classes = loaded.model.forward(x)[0].argmax(axis=0)  # (H, W)
    names = [printable(n) for n in loaded.class_names] if loaded.class_names else []
    k = max(len(names), int(classes.max()) + 1)
    names += [str(c) for c in range(len(names), k)]
    mask, overlay = mask_pictures(classes, shown, k)
    fig = Figure(figsize=(9, 3.4))
    FigureCanvasAgg(fig)
    for ax, picture, what in zip(fig.subplots(1, 3), (shown, mask, overlay), ("input", "predicted mask", "overlay"),
                                 strict=True):
        if what == "input":
            ax.imshow(picture[0] if picture.shape[0] == 1 else picture.transpose(1, 2, 0),
                      cmap="gray" if picture.shape[0] == 1 else None, vmin=0, vmax=1)
        else:
            ax.imshow(picture)
        ax.set_title(what, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    colours = class_colours(k) / 255
    present = [c for c in range(k) if np.any(classes == c)]
    fig.legend(handles=[Patch(color=colours[c], label=names[c]) for c in present], loc="center right", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0, 0.85, 1))
    path = Path(out) / "mask.png"
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100), overwrite=overwrite)
    return path


def run(args) -> int:
    from pathlib import Path

    from minicnn import visualize
    from minicnn.app import ModelFileError, load_model
    from minicnn.commands._options import SEGMENTATION_MODELS, printable, wrap
    from minicnn.data import ImageError, load_image
    from minicnn.files import TargetError

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"minicnn show: --out {out} exists and is not a folder", file=sys.stderr)
        return 2
    try:
        loaded = load_model(args.checkpoint)
    except (OSError, ModelFileError) as e:
        print(f"minicnn show: cannot load {args.checkpoint}: {printable(e)}", file=sys.stderr)
        return 2
    model = loaded.model
    if not visualize.conv_layers(model):
        print(f"minicnn show: {printable(loaded.name)} has no convolution layer to draw", file=sys.stderr)
        return 2
    x = shown = None
    if args.image is not None:
        if loaded.input_shape is None or loaded.mean is None:
            print(f"minicnn show: {args.checkpoint} does not record its input shape and normalisation; "
                  "feature maps need a checkpoint written by `minicnn train`", file=sys.stderr)
            return 2
        try:
            shown, notes = load_image(args.image, tuple(loaded.input_shape), args.invert)
        except ImageError as e:  # a file that is no readable picture, or NaN/empty/... (names the file)
            print(f"minicnn show: {printable(e)}", file=sys.stderr)  # the message names the file
            return 2
        x = loaded.normalize(shown[None])  # (1, C, H, W), normalised as the model was trained
        if notes:
            print(f"{args.image}: {printable('; '.join(notes))}")
    try:
        for path in visualize.save_filters(model, out, overwrite=args.overwrite):
            print(f"filters:      {path}")
        if x is not None:
            title = f"{printable(loaded.name)}: {printable(Path(args.image).name)}"
            path = visualize.save_feature_maps(model, x, out, title=title, shown=shown, overwrite=args.overwrite)
            print(f"feature maps: {path}")
            if loaded.name in SEGMENTATION_MODELS:
                print(f"mask:         {save_mask(loaded, x, shown, out, title, args.overwrite)}")
    except FileExistsError:
        print(wrap(f"minicnn show: {out} holds PNG files this run did not write; add --overwrite to replace "
                   f"them, or choose another --out"), file=sys.stderr)
        return 2
    except (TargetError, OSError) as e:
        print(f"minicnn show: cannot write into {out}: {printable(e)}", file=sys.stderr)
        return 2
    return 0
