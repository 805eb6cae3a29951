"""What `summary FILE` and `export FILE` share: open a model file and find the input it takes."""

from __future__ import annotations

from pathlib import Path

MAX_SIDE = 4096  # the largest C, H or W an --input may ask for


def parse_shape(text: str) -> tuple[int, int, int]:
    """"C,H,W" -> (C, H, W), each an int from 1 to MAX_SIDE; ValueError otherwise."""
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1 or max(shape) > MAX_SIDE:
        raise ValueError(f"expected --input as C,H,W (three ints from 1 to {MAX_SIDE}), got {text!r}")
    return shape


def looks_like_file(text: str) -> bool:
    """A command-line MODEL that names a file rather than a registered model: it exists, or ends in .npz."""
    return text.endswith(".npz") or Path(text).exists()


def open_model_file(path: str, input_text: str | None, name: str | None = None):
    """`minicnn.app.load_model(path, name)` and the (C, H, W) its model takes -> (LoadedModel, shape).

    The shape is `input_text` ("C,H,W") when given, else the file's own `input_shape` (minicnn train and
    the experiments record it); a file without one needs --input. `name` (a registered model) is needed
    for a plain state dict, which does not name its model. Raises ValueError (ModelFileError for a file
    that cannot be opened, UnnamedModelError for a plain state dict without `name`) with a message for
    the user.
    """
    from minicnn.app import load_model

    loaded = load_model(path, name)
    if input_text is not None:
        return loaded, parse_shape(input_text)
    if loaded.input_shape is None:
        raise ValueError(f"{path} does not record the input shape of its model ({loaded.name}); "
                         f"give it as --input C,H,W")
    return loaded, tuple(int(v) for v in loaded.input_shape)
