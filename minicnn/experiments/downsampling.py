"""How much information does each downsampling keep? (the review's Figure 1, measured)

On real images (MNIST digits and CIFAR-10 pictures, test split, float64) every method halves the
height and width; the result is then brought back to full size with the method's exact inverse when
it has one (Haar: inverse DWT; slicing: depth-to-space) or else with the best of the simple
upsamplers nearest / bilinear / bicubic (the one with the lowest MSE on that dataset). The table
reports the reconstruction error against the original:

    MSE  = mean over images, channels and pixels of (x_hat - x)^2
    PSNR = 10 log10(1 / MSE) dB   (pixels in [0, 1]; infinite when the reconstruction is exact)

Methods: max pooling 2x2, average pooling 2x2, subsampling (every 2nd value), a strided convolution
with a fixed averaging kernel (3x3, stride 2, padding 1, weights 1/9, per channel), SoftPool 2x2,
the orthonormal Haar DWT (4 bands on channels) and slicing (space-to-depth). The last two keep every
value (4 numbers per 2x2 block) and must reconstruct exactly: max error 0 in float64.
Note: the 3x3/2 convolution's outputs sit on the even pixels (2i), while the upsamplers assume the
2x2 block centres (2i + 0.5); that half-pixel offset is part of why it scores below 2x2 averaging.
Also printed: the lecture's jitter invariance on MNIST (max pooling vs subsampling, 1-pixel shift).

Outputs in --out: downsampling_table.txt (the printed table), downsampling.csv, downsampling.png
(originals, downsampled maps, reconstructions), each written atomically (`minicnn.files.write_atomic`).
An earlier run's files are never replaced without --overwrite: the default folder runs/downsampling
moves on to runs/downsampling-2, ... (with a note); a given --out that holds them is refused.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minicnn import functional as F
from minicnn.commands._options import COLUMNS, integer, wrap
from minicnn.files import TargetError, next_free, safe_target, write_atomic

DESCRIPTION = "information retained by max/avg pooling, subsampling, strided conv, SoftPool, Haar, slicing"
UPSAMPLERS = ("nearest", "bilinear", "bicubic")
FACTOR = 2
PEAK = 1.0  # pixel range is [0, 1]


def strided_average_conv(x: np.ndarray) -> np.ndarray:
    """3x3 stride-2 convolution, padding 1, fixed weights 1/9, each channel on its own (groups = C)."""
    C = x.shape[1]
    w = np.full((C, 1, 3, 3), 1.0 / 9.0)
    return F.conv2d(x, w, stride=2, padding=1, groups=C)


@dataclass(frozen=True)
class Method:
    name: str
    down: Callable[[np.ndarray], np.ndarray]
    inverse: Callable[[np.ndarray], np.ndarray] | None  # exact inverse, or None -> best simple upsampler
    inverse_name: str = ""


METHODS = (
    Method("max pool 2x2", lambda x: F.max_pool2d(x, FACTOR)[0], None),
    Method("avg pool 2x2", lambda x: F.avg_pool2d(x, FACTOR), None),
    Method("subsample /2", lambda x: F.subsample2d(x, FACTOR), None),
    Method("strided conv 3x3/2 (1/9)", strided_average_conv, None),
    Method("SoftPool 2x2", lambda x: F.soft_pool2d(x, FACTOR)[0], None),
    Method("Haar DWT (4 bands)", F.haar_downsample, F.haar_upsample, "inverse DWT"),
    Method("slicing (space-to-depth)", lambda x: F.space_to_depth(x, FACTOR), lambda y: F.depth_to_space(y, FACTOR),
           "depth-to-space"),
)


@dataclass
class Row:
    dataset: str
    method: str
    kept: float  # downsampled values / input values
    reconstruction: str
    mse: float
    psnr: float
    max_abs_error: float


def psnr(mse: float) -> float:
    return float("inf") if mse == 0 else 10.0 * np.log10(PEAK**2 / mse)


def reconstruct(method: Method, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """(downsampled, reconstruction at full size, how it was reconstructed)."""
    y = method.down(x)
    if method.inverse is not None:
        return y, method.inverse(y), method.inverse_name
    best = None
    for mode in UPSAMPLERS:
        x_hat = F.upsample2d(y, FACTOR, mode)
        mse = float(np.mean((x_hat - x) ** 2))
        if best is None or mse < best[0]:
            best = (mse, x_hat, mode)
    return y, best[1], f"{best[2]} upsampling"


def study(name: str, x: np.ndarray) -> tuple[list[Row], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Run every method on images x (N, C, H, W) float64. Returns the rows and, per method, the
    (downsampled, reconstructed) maps of the first image for the figure."""
    if x.dtype != np.float64:
        raise ValueError(f"downsampling study: expected float64 images, got {x.dtype}")
    rows, examples = [], {}
    for m in METHODS:
        y, x_hat, how = reconstruct(m, x)
        err = x_hat - x
        mse = float(np.mean(err**2))
        rows.append(Row(name, m.name, y.size / x.size, how, mse, psnr(mse), float(np.max(np.abs(err)))))
        examples[m.name] = (y[0], x_hat[0])
    return rows, examples


UPSAMPLING_SUFFIX = " upsampling"  # "bilinear upsampling" is shown as "bilinear" under "rebuilt by"


def format_table(rows: list[Row]) -> str:
    """One block per dataset (its name as a heading), each line within COLUMNS."""
    head = f"{'method':<25}{'kept':>5}  {'rebuilt by':<15}{'MSE':>10}{'PSNR dB':>9}{'max err':>10}"
    lines = [head, "-" * len(head)]
    for dataset in dict.fromkeys(r.dataset for r in rows):
        lines.append(f"{dataset}:")
        for r in rows:
            if r.dataset == dataset:
                rebuilt = r.reconstruction.removesuffix(UPSAMPLING_SUFFIX)
                lines.append(f"{r.method:<25}{r.kept:>5.2f}  {rebuilt:<15}{r.mse:>10.3e}{r.psnr:>9.2f}"
                             f"{r.max_abs_error:>10.3g}")
    return "\n".join(lines)


# ---- the figure --------------------------------------------------------------------------------


def _to_image(chw: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (H, W) gray or (H, W, 3) RGB, clipped to [0, 1] for display."""
    img = np.clip(chw, 0.0, 1.0)
    return img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)


def _mosaic(parts: list[np.ndarray]) -> np.ndarray:
    """Four (C, h, w) maps tiled 2x2 with a 1-pixel white gap -> (C, 2h+1, 2w+1)."""
    C, h, w = parts[0].shape
    out = np.ones((C, 2 * h + 1, 2 * w + 1))
    for k, p in enumerate(parts):
        i, j = divmod(k, 2)
        out[:, i * (h + 1):i * (h + 1) + h, j * (w + 1):j * (w + 1) + w] = p
    return out


def display_map(method: str, y: np.ndarray, channels: int) -> np.ndarray:
    """What to draw for a downsampled map y (C', h, w): the 4 Haar bands or 4 slices as a mosaic
    (Haar: LL / 2, details + 0.5), otherwise the map itself."""
    if method.startswith("Haar"):
        bands = [y[b * channels:(b + 1) * channels] for b in range(4)]
        return _mosaic([bands[0] / 2] + [d + 0.5 for d in bands[1:]])
    if method.startswith("slicing"):
        return _mosaic([y[k::FACTOR * FACTOR] for k in range(FACTOR * FACTOR)])
    return y


def save_figure(path: Path, originals: dict[str, np.ndarray], examples: dict[str, dict],
                overwrite: bool = False) -> None:
    """The PNG of the module docstring, by `write_atomic` (an existing file only with `overwrite`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [m.name for m in METHODS]
    fig, axes = plt.subplots(2 * len(originals), len(names) + 1, layout="constrained",
                             figsize=(1.7 * (len(names) + 1), 2.0 * 2 * len(originals)), squeeze=False)
    for d, (dataset, x0) in enumerate(originals.items()):
        cmap = "gray" if x0.shape[0] == 1 else None
        top, bottom = axes[2 * d], axes[2 * d + 1]
        top[0].imshow(_to_image(x0), cmap=cmap, vmin=0, vmax=1)
        top[0].set_title(f"{dataset}\noriginal", fontsize=7)
        bottom[0].imshow(_to_image(x0), cmap=cmap, vmin=0, vmax=1)
        bottom[0].set_title("original", fontsize=7)
        for k, name in enumerate(names, start=1):
            y, x_hat = examples[dataset][name]
            top[k].imshow(_to_image(display_map(name, y, x0.shape[0])), cmap=cmap, vmin=0, vmax=1)
            top[k].set_title(f"{name}\n{tuple(y.shape)}", fontsize=6)
            bottom[k].imshow(_to_image(x_hat), cmap=cmap, vmin=0, vmax=1)
            value = psnr(float(np.mean((x_hat - x0) ** 2)))  # this image's PSNR (the table: the whole set)
            bottom[k].set_title("exact (PSNR inf)" if np.isinf(value) else f"PSNR {value:.1f} dB", fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    down = ", ".join(str(2 * d + 1) for d in range(len(originals)))  # the rows that exist: one pair per dataset
    up = ", ".join(str(2 * d + 2) for d in range(len(originals)))
    plural = "s" if len(originals) > 1 else ""
    fig.suptitle(f"downsample by 2 (row{plural} {down}), then reconstruct at full size (row{plural} {up})",
                 fontsize=9)
    try:
        write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=130, format="png"), overwrite=overwrite)
    finally:
        plt.close(fig)


# ---- data and command --------------------------------------------------------------------------


def load_images(dataset: str, data_dir: str | None, count: int) -> np.ndarray:
    """The first `count` test images of "mnist" or "cifar10", as float64 (N, C, H, W) in [0, 1].

    CIFAR-10: the full official files if present, else the partial copy `cifar10/cifar10_partial.npz`
    found in the same folders (its 1,000 test images are the first 1,000 of the official test set).
    """
    from minicnn.data import DatasetError, load_dataset, search_roots

    try:
        ds = load_dataset(dataset, data_dir=data_dir, download=False)
    except DatasetError:
        if dataset != "cifar10":
            raise
        partial = [root / "cifar10" / "cifar10_partial.npz" for root, _ in search_roots(data_dir)]
        found = [p for p in partial if p.is_file()]
        if not found:
            raise
        ds = load_dataset(found[0])
    return ds.x_test[:count].astype(np.float64)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None, help=f"folder for the table, CSV and PNG (default {DEFAULT_OUT}, "
                        f"or {DEFAULT_OUT}-2, ... when that holds an earlier run)")
    parser.add_argument("--overwrite", action="store_true", help="replace the files of an earlier run in --out")
    parser.add_argument("--data-dir", default=None, help="dataset folder (else $MINICNN_DATA, then the cache)")
    parser.add_argument("--num-images", type=integer(1, 10000), default=1000, help="test images per dataset")
    parser.add_argument("--datasets", nargs="+", default=["mnist", "cifar10"], choices=["mnist", "cifar10"],
                        metavar="DATASET", help="mnist, cifar10 or both")


DEFAULT_OUT = "runs/downsampling"
OUTPUTS = ("downsampling_table.txt", "downsampling.csv", "downsampling.png")


def _taken(folder: Path) -> bool:
    """Does `folder` hold an earlier run's outputs (or is it something other than a folder)?"""
    return (os.path.lexists(folder) and not folder.is_dir()) or any(os.path.lexists(folder / n) for n in OUTPUTS)


def make_folder(folder: Path) -> None:
    """--out's folder, made if missing; ValueError (one line) when its name is taken by a file, link,
    FIFO or device, or it cannot be made. Shared with `downsampling_nets`."""
    if os.path.lexists(folder) and not folder.is_dir():
        raise ValueError(f"--out {folder} is not a folder; choose another --out")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--out: cannot create the folder {folder}: {e.strerror or e}") from None


def output_folder(out: str | None, overwrite: bool) -> Path:
    """The folder to write into, checked (and made) before any work: the default moves on past folders
    holding an earlier run (a note says so), a given --out holding one is refused without --overwrite,
    and a file, link, FIFO or device under an output's name is always refused. ValueError: one line."""
    if out is None:
        folder = Path(DEFAULT_OUT) if overwrite else next_free(DEFAULT_OUT, _taken)
        if folder != Path(DEFAULT_OUT):
            print(wrap(f"note: {DEFAULT_OUT} holds an earlier run (kept); this one goes to {folder}"))
    else:
        folder = Path(out)
        if not out.strip():
            raise ValueError(f"--out: expected a folder name, got {out!r}")
    make_folder(folder)
    found = [name for name in OUTPUTS if os.path.lexists(folder / name)]
    try:
        for name in OUTPUTS:
            safe_target(folder / name, overwrite)
    except FileExistsError:
        raise ValueError(f"--out {folder} holds an earlier run ({', '.join(found)}); choose another --out, or "
                         f"--overwrite to replace it") from None
    except TargetError as e:
        raise ValueError(f"--out: {e}") from None
    return folder


def _csv_text(rows: list[Row]) -> str:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["dataset", "method", "kept", "reconstruction", "mse", "psnr_db", "max_abs_error"])
    for r in rows:
        writer.writerow([r.dataset, r.method, r.kept, r.reconstruction, repr(r.mse), repr(r.psnr),
                         repr(r.max_abs_error)])
    return buffer.getvalue()


def _write_text(path: Path, text: str, overwrite: bool) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            f.write(text)

    write_atomic(path, write, overwrite=overwrite)


def run(args) -> int:
    out = output_folder(args.out, args.overwrite)
    rows: list[Row] = []
    originals, examples = {}, {}
    jitter = None
    for dataset in args.datasets:
        x = load_images(dataset, args.data_dir, args.num_images)
        label = f"{dataset} ({x.shape[0]})"
        r, ex = study(label, x)
        rows += r
        originals[label], examples[label] = x[0], ex
        if dataset == "mnist":
            jitter = F.jitter_invariance(x, 2, shift=(0, 1))
    table = format_table(rows)
    lines = [table, ""]
    exact = [r for r in rows if r.method.startswith(("Haar", "slicing"))]
    lines.append("exact methods, max |error| in float64: "
                 + ", ".join(f"{r.dataset} {r.method.split(' ')[0]} {r.max_abs_error:g}" for r in exact))
    if jitter is not None:
        lines.append(f"jitter invariance on MNIST (1-pixel shift right, 2x2, non-zero outputs): max pool "
                     f"{jitter['max_pool']:.1%} unchanged, subsampling {jitter['subsample']:.1%} unchanged")
    text = "\n".join(textwrap.fill(line, COLUMNS, subsequent_indent="  ") if len(line) > COLUMNS else line
                     for line in "\n".join(lines).splitlines())
    print(text)
    try:
        _write_text(out / OUTPUTS[0], text + "\n", args.overwrite)
        _write_text(out / OUTPUTS[1], _csv_text(rows), args.overwrite)
        save_figure(out / OUTPUTS[2], originals, examples, args.overwrite)
    except FileExistsError:  # another run wrote there meanwhile: its file is kept
        raise ValueError(f"--out {out}: another run wrote its files there meanwhile (kept); choose another "
                         f"--out, or --overwrite to replace them") from None
    print(f"wrote in {out}/:\n  downsampling_table.txt, downsampling.csv, downsampling.png")
    if any(r.max_abs_error != 0 for r in exact):
        print("ERROR: an exact method did not reconstruct exactly")
        return 1
    return 0
