"""`minicnn show CHECKPOINT [IMAGE] --out DIR`: pictures of what a trained model learned — the filters
of every convolution, and the feature maps of one image (see `minicnn.visualize`)."""

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


def run(args) -> int:
    from pathlib import Path

    from minicnn import visualize
    from minicnn.app import ModelFileError, load_model
    from minicnn.commands._options import printable
    from minicnn.data import ImageError, load_image

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
    for path in visualize.save_filters(model, out):
        print(f"filters:      {path}")
    if x is not None:
        path = visualize.save_feature_maps(model, x, out, title=f"{loaded.name}: {Path(args.image).name}",
                                           shown=shown)
        print(f"feature maps: {path}")
    return 0
