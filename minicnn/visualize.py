"""Pictures of what a trained network learned: the filters of every convolution, and the feature
maps one image produces in each of them (the lecture's "learned AlexNet filters" slide, for any
minicnn model). Used by `minicnn show` and by tutorial chapter 14.

    conv_layers(model)              -> [(name, layer)] every 2-D convolution, in forward order
    filters(layer)                  -> the spatial kernel (T, C, KH, KW) (DCT layers: W = idct(M ⊙ C))
    feature_maps(model, x)          -> [(name, y)] each convolution's output for the batch x
    save_filters(model, out_dir)    -> one PNG per convolution: rows = output maps, columns = input maps
    save_feature_maps(model, x, out_dir) -> one PNG: the image, then each convolution's maps

Names are the layers' paths in the model ("0", "3", "features.2.conv" ...), as in `state_dict`.
A first layer with 3 input maps is drawn in colour (one RGB picture per filter, as the slide does);
otherwise every kernel slice is a grey square, all on one symmetric scale per layer (mid-grey = 0),
so strong and weak filters can be compared. Large layers are cut to MAX_ROWS x MAX_COLS kernels, and
the figure title says so.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from minicnn.core import Layer
from minicnn.files import write_atomic

MAX_ROWS = 32  # output maps drawn per layer
MAX_COLS = 16  # input maps drawn per output map
MAX_MAPS = 32  # feature maps drawn per layer
MAPS_PER_ROW = 8


def _is_conv(layer: Layer) -> bool:
    """A 2-D convolution: a layer whose kernel is 4-D (Conv2D and its relatives, DCTConv2D, ConvTranspose2D)."""
    if hasattr(layer, "spatial_weight") and getattr(layer, "coeffs", None) is not None:
        return layer.coeffs.data.ndim == 4
    weight = getattr(layer, "weight", None)
    return weight is not None and getattr(weight, "data", None) is not None and weight.data.ndim == 4


def _walk(layer: Layer, prefix: str = ""):
    yield prefix, layer
    for name, child in layer.named_children():
        yield from _walk(child, f"{prefix}.{name}" if prefix else name)


def conv_layers(model: Layer) -> list[tuple[str, Layer]]:
    """(name, layer) of every 2-D convolution in `model`, in the order the model lists them."""
    return [(name or type(layer).__name__, layer) for name, layer in _walk(model) if _is_conv(layer)]


def filters(layer: Layer) -> np.ndarray:
    """The kernel a convolution computes with, (T, C, KH, KW) as float64 (a frequency-domain layer's
    spatial weight W = idct(M ⊙ C); a transposed convolution's (C_in, C_out, KH, KW) as stored)."""
    if not _is_conv(layer):
        raise ValueError(f"filters: expected a 2-D convolution layer, got {type(layer).__name__}")
    w = layer.spatial_weight() if hasattr(layer, "spatial_weight") else layer.weight.data
    return np.asarray(w, dtype=np.float64)


def feature_maps(model: Layer, x: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Run `model` (in eval mode) on x (N, C, H, W) and return the output of every convolution, in the order
    they ran, (name, y (N, T, OH, OW)): every 2-D convolution anywhere inside the model is listed, those
    inside a Residual block or a UNet's skip connections (`SkipConcat`) included. Each convolution's own
    forward is wrapped for the call to record what it returns, then restored."""
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"feature_maps: expected images (N, C, H, W), got shape {x.shape}")
    was_training = model.training
    found: list[tuple[str, np.ndarray]] = []

    def recorder(name: str, forward):
        def recorded(h: np.ndarray) -> np.ndarray:
            y = forward(h)
            found.append((name, y))
            return y
        return recorded

    convs = list({id(layer): (name, layer) for name, layer in reversed(conv_layers(model))}.values())[::-1]
    for name, layer in convs:  # (a layer met twice is wrapped once, under its first name)
        layer.forward = recorder(name, layer.forward)  # an instance attribute: shadows the class's method
    model.eval()
    try:
        model(x)
    finally:
        for _, layer in convs:
            del layer.forward
        model.train(was_training)
    return found


MAX_LABEL = 12  # longest layer name written beside its maps in feature_maps.png


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _tiles(w: np.ndarray) -> np.ndarray:
    """Kernels w (R, C, KH, KW) as one picture (R*(KH+1) - 1, C*(KW+1) - 1): kernel [i, j] at row block i,
    column block j, NaN (drawn blank) between blocks."""
    r, c, kh, kw = w.shape
    grid = np.full((r, kh + 1, c, kw + 1), np.nan)  # (R, KH+1, C, KW+1)
    grid[:, :kh, :, :kw] = w.transpose(0, 2, 1, 3)  # (R, KH, C, KW)
    return grid.reshape(r * (kh + 1), c * (kw + 1))[:-1, :-1]


def _gray_with_gaps(plt):
    """The grey colour map with NaN drawn white (the gaps between kernels)."""
    return plt.get_cmap("gray").with_extremes(bad="white")


def save_filters(model: Layer, out_dir: str | os.PathLike, dpi: int = 110, overwrite: bool = False) -> list[Path]:
    """One PNG per convolution, `filters_<name>.png`, in `out_dir` (created). Returns the paths.
    Each by `minicnn.files.write_atomic`: an existing file this process did not write is refused
    (FileExistsError) unless `overwrite`; a link, FIFO or folder always (TargetError)."""
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, layer in conv_layers(model):
        w = filters(layer)
        t, c = w.shape[:2]
        rows, cols = min(t, MAX_ROWS), min(c, MAX_COLS)
        colour = c == 3
        cut = "" if (rows, cols) == (t, c) or c in (1, 3) else f", first {rows} x {cols} shown"
        scale = float(np.abs(w).max()) or 1.0
        if c in (1, 3):  # one picture per output map (RGB for 3 inputs, like the lecture's AlexNet slide)
            ncols = min(rows, MAPS_PER_ROW)
            nrows = -(-rows // ncols)
            fig, axes = plt.subplots(nrows, ncols, figsize=(1.1 * ncols + 0.4, 1.1 * nrows + 0.9), squeeze=False)
            for k, ax in enumerate(axes.ravel()):
                if k < rows and colour:
                    ax.imshow(np.clip(w[k].transpose(1, 2, 0) / (2 * scale) + 0.5, 0, 1))  # (KH, KW, 3)
                elif k < rows:
                    ax.imshow(w[k, 0], cmap="gray", vmin=-scale, vmax=scale)
                if k < rows:
                    ax.set_title(str(k), fontsize=7)
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_frame_on(k < rows)
        else:  # one picture of the rows x cols kernels, each (KH, KW), a blank pixel between them
            fig, ax = plt.subplots(figsize=(0.55 * cols + 1.0, 0.55 * rows + 0.8))
            ax.imshow(_tiles(w[:rows, :cols]), cmap=_gray_with_gaps(plt), vmin=-scale, vmax=scale)
            kh, kw = w.shape[2:]
            ax.set_yticks([i * (kh + 1) + (kh - 1) / 2 for i in range(rows)], [str(i) for i in range(rows)],
                          fontsize=6)
            ax.set_xticks([j * (kw + 1) + (kw - 1) / 2 for j in range(cols)], [str(j) for j in range(cols)],
                          fontsize=6)
            ax.tick_params(length=0)
            ax.set_frame_on(False)
        fig.suptitle(f"layer {name}: {t} filters of {c} x {w.shape[2]} x {w.shape[3]}{cut}\n"
                     + ("RGB, mid-grey = 0" if colour else ("one per output map" if c == 1 else
                        "rows = output maps, columns = input maps") + f"; grey scale ±{scale:.3g}, mid-grey = 0"),
                     fontsize=8)
        path = out / f"filters_{_file_name(name)}.png"
        try:
            write_atomic(path, lambda tmp, fig=fig: fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight"),
                         overwrite=overwrite)
        finally:
            plt.close(fig)
        paths.append(path)
    if not paths:
        raise ValueError(f"save_filters: the model has no 2-D convolution ({type(model).__name__})")
    return paths


def save_feature_maps(model: Layer, x: np.ndarray, out_dir: str | os.PathLike, title: str = "",
                      shown: np.ndarray | None = None, dpi: int = 110, overwrite: bool = False) -> Path:
    """`feature_maps.png` in `out_dir`: the input image (`shown`, (C, H, W) in [0, 1], or x itself),
    then, for each convolution, its output maps for x (1, C, H, W), each on its own scale. Written by
    `write_atomic` (`overwrite` as in `save_filters`)."""
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"save_feature_maps: expected one image (1, C, H, W), got shape {x.shape}")
    maps = feature_maps(model, x)
    if not maps:
        raise ValueError(f"save_feature_maps: the model has no 2-D convolution ({type(model).__name__})")
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    blocks = [-(-min(y.shape[1], MAX_MAPS) // MAPS_PER_ROW) for _, y in maps]
    fig = plt.figure(figsize=(1.25 * MAPS_PER_ROW + 1.6, 1.35 * sum(blocks) + 0.8), layout="constrained")
    grid = fig.add_gridspec(sum(blocks), MAPS_PER_ROW + 1)
    picture = x[0] if shown is None else np.asarray(shown)
    ax = fig.add_subplot(grid[0, 0])
    ax.imshow(picture[0] if picture.shape[0] == 1 else picture.transpose(1, 2, 0),
              cmap="gray" if picture.shape[0] == 1 else None)
    ax.set_title("input", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    row = 0
    # a deep path (a UNet's "0.1.inner.1.1.inner.1.0.3") does not fit beside a row: its number and size instead
    labels = [f"layer {name}" if len(name) <= MAX_LABEL else f"conv {number}, {y.shape[2]}x{y.shape[3]}"
              for number, (name, y) in enumerate(maps, start=1)]
    for (_, y), height, label in zip(maps, blocks, labels, strict=True):
        n_maps = min(y.shape[1], MAX_MAPS)
        for k in range(n_maps):
            ax = fig.add_subplot(grid[row + k // MAPS_PER_ROW, 1 + k % MAPS_PER_ROW])
            ax.imshow(y[0, k], cmap="gray")
            ax.set_xticks([])
            ax.set_yticks([])
            if k % MAPS_PER_ROW == 0:
                ax.set_ylabel(f"{label}\nmap {k}", fontsize=7)
            else:
                ax.set_title(str(k), fontsize=6)
        row += height
    more = [f"{label}: first {MAX_MAPS} of {y.shape[1]}" for (_, y), label in zip(maps, labels, strict=True)
            if y.shape[1] > MAX_MAPS]
    if len(more) > 2:  # many wide layers (a UNet): one short note instead of a line per layer
        more = [f"{len(more)} layers show their first {MAX_MAPS} maps"]
    fig.suptitle((title + "\n" if title else "") + "each convolution's output maps (before the nonlinearity), "
                 "each map on its own grey scale" + (f";\n{', '.join(more)}" if more else ""), fontsize=8)
    path = out / "feature_maps.png"
    try:
        write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi), overwrite=overwrite)
    finally:
        plt.close(fig)
    return path
