"""`minicnn predict CHECKPOINT IMAGE...`: classify your own images (PNG or NPY) with a trained model."""

from __future__ import annotations

import sys

NAME = "predict"
HELP = "classify PNG/NPY images with a trained checkpoint (try your own handwritten digit)"
TOP_K = 3
BRIGHT_BACKGROUND = 0.5  # a 1-channel image whose mean exceeds this is dark-on-light, unlike MNIST


def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", help="a checkpoint.npz written by minicnn train, or a compressed .fr.npz")
    parser.add_argument("images", nargs="+", help="PNG or NPY files (NPY: (H, W), (H, W, C) or (C, H, W))")
    parser.add_argument("--invert", choices=("auto", "yes", "no"), default="auto",
                        help="invert grey images (MNIST digits are light on dark); auto inverts a mostly "
                             "light 1-channel image")


def load_image(path: str, input_shape: tuple[int, int, int], invert: str = "auto") -> tuple:
    """Read a PNG (matplotlib's reader) or NPY and turn it into (C, H, W) float32 in [0, 1] for the
    model: drops alpha, converts RGB to grey (mean of the channels) or grey to RGB as needed, resizes
    (bilinear, scipy.ndimage.zoom) to H x W, and inverts when asked. Returns (image, notes)."""
    from pathlib import Path

    import numpy as np

    c, h, w = input_shape
    notes = []
    if Path(path).suffix.lower() == ".npy":
        img = np.load(path, allow_pickle=False)
        img = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
        if img.ndim == 3 and img.shape[0] in (1, 3, 4) and img.shape[2] not in (1, 3, 4):
            img = img.transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
    else:
        import matplotlib.image

        img = np.asarray(matplotlib.image.imread(path), np.float32)  # PNG: floats in [0, 1]
    if img.ndim == 2:
        img = img[:, :, None]  # (H, W, 1)
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4):
        raise ValueError(f"{path}: expected an image (H, W), (H, W, C) or (C, H, W), got shape {img.shape}")
    if img.shape[2] == 4:
        img = img[:, :, :3]
    if img.shape[2] != c:
        img = img.mean(axis=2, keepdims=True) if c == 1 else np.repeat(img[:, :, :1], c, axis=2)
        notes.append("converted to grey" if c == 1 else f"grey copied to {c} channels")
    if img.shape[:2] != (h, w):
        from scipy.ndimage import zoom

        notes.append(f"resized from {img.shape[0]}x{img.shape[1]} to {h}x{w}")
        img = zoom(img, (h / img.shape[0], w / img.shape[1], 1), order=1)
    img = np.clip(img, 0.0, 1.0)
    if invert == "yes" or (invert == "auto" and c == 1 and img.mean() > BRIGHT_BACKGROUND):
        img = 1.0 - img
        notes.append("inverted (light background)")
    return np.ascontiguousarray(img.transpose(2, 0, 1)), notes  # (C, H, W)


def run(args) -> int:
    import numpy as np

    from minicnn.app import ModelFileError, load_model
    from minicnn.losses import log_softmax

    try:
        loaded = load_model(args.checkpoint)
        if loaded.input_shape is None or loaded.class_names is None:
            raise ModelFileError(f"{args.checkpoint} does not record its input shape and class names")
    except ModelFileError as e:
        print(f"minicnn predict: {e}", file=sys.stderr)
        return 2
    shape, names = loaded.input_shape, loaded.class_names
    code = 0
    for path in args.images:
        try:
            img, notes = load_image(path, shape, args.invert)
        except (OSError, ValueError) as e:
            print(f"{path}: cannot read ({e})", file=sys.stderr)
            code = 2
            continue
        x = loaded.normalize(img[None])  # (1, C, H, W)
        probs = np.exp(log_softmax(loaded.model.forward(x).astype(np.float64)))[0]
        top = np.argsort(probs)[::-1][:TOP_K]
        ranked = ", ".join(f"{names[k]} {probs[k]:.1%}" for k in top)
        print(f"{path}: {names[top[0]]}  ({ranked})" + (f"  [{'; '.join(notes)}]" if notes else ""))
    return code
