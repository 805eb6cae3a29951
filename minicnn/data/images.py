"""Reading a user's own picture for a trained model: any format Pillow reads (PNG, JPEG, GIF, BMP,
TIFF, WebP, ...) or a NumPy `.npy` array, turned into (C, H, W) float32 in [0, 1] like the training
images, with a message for every change made on the way.

    img, notes = load_image("seven.jpg", shape=(1, 28, 28))
    # img (1, 28, 28) float32 in [0, 1];  notes e.g. ["converted colour to grey", "resized from 120x96 to 28x28",
    #                                                  "inverted: light background (border mean 0.91)"]

The steps, in order:
1. Decode. Pillow for images (EXIF rotation applied, first frame of an animation); `.npy` through
   `minicnn.files.read_npy` (no pickles). Layout (H, W), (H, W, C) or (C, H, W), C in 1..4.
2. Scale by the file's real range: uint8 / 255; 16-bit and 32-bit integer pixels by the smallest
   common bit depth that holds their largest value (8, 10, 12, 14 or 16 bits: a 12-bit scan stored in a
   16-bit PNG is divided by 4095, not 65535); bool and integer 0/1 arrays as 0/1; floats in [0, 1] are
   kept, whole-numbered floats up to 255 are divided by 255. NaN/Inf, negative values, fractional values
   above 1 and empty images are refused.
3. Alpha. Opaque alpha is dropped. If the colour is uniform and only alpha varies (a digit drawn in the
   alpha channel), alpha *is* the picture. Otherwise the picture is laid over a background that contrasts
   with its ink (white under dark ink, black under light ink), as a viewer would show it.
4. Channels: colour to grey by luminance (0.299 R + 0.587 G + 0.114 B) or grey copied to 3 channels.
5. Resize (bilinear, Pillow) to H x W. Sizes in notes and messages are width x height, as image tools
   print them.
6. Invert (1-channel only): MNIST-style data is light ink on a dark background; with invert="auto" a
   picture whose border is mostly light (mean > 0.5) is inverted.
Errors: `ImageError` (a ValueError) naming the file and what is wrong.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from minicnn.files import FileFormatError, read_npy

MAX_PIXELS = 40_000_000  # refuse anything larger before decoding it (a digit photo is far smaller)
UINT8_MAX = 255.0
UINT16_MAX = 65535.0
BIT_DEPTHS = (8, 10, 12, 14, 16)  # integer pixels are scaled by 2**bits - 1 of the smallest depth that holds them
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601, as Pillow's "L" conversion
OPAQUE = 1.0 - 1e-6
UNIFORM_COLOUR = 1e-3  # colour std (where alpha > 0) below this: the picture is in the alpha channel
LIGHT_BORDER = 0.5  # border mean above this: dark ink on a light background
INVERT_CHOICES = ("auto", "yes", "no")
EXIF_ORIENTATION = 0x0112


class ImageError(FileFormatError):
    """A picture that cannot be turned into model input; the message names the file and the reason."""


def load_image(path: str | os.PathLike, shape: tuple[int, int, int] = (1, 28, 28),
               invert: str = "auto") -> tuple[np.ndarray, list[str]]:
    """Read `path` and return (image (C, H, W) float32 in [0, 1], notes), C, H, W = `shape`.

    `invert`: "auto" (1-channel pictures with a light border are inverted), "yes" or "no".
    `notes` lists, in plain words, every conversion applied (scaling, alpha, channels, resize, invert).
    Raises ImageError for an unreadable, empty, non-finite or oddly shaped picture.
    """
    path = Path(path)
    c, h, w = shape
    if c not in (1, 3) or h < 1 or w < 1:
        raise ValueError(f"load_image: expected shape (1 or 3, H >= 1, W >= 1), got {shape}")
    if invert not in INVERT_CHOICES:
        raise ValueError(f"load_image: expected invert in {INVERT_CHOICES}, got {invert!r}")
    notes: list[str] = []
    raw = _read_npy(path, notes) if path.suffix.lower() == ".npy" else _read_with_pillow(path, notes)
    img = _to_unit_range(raw, path, notes)  # (H, W, K) float32 in [0, 1]
    img = _resolve_alpha(img, path, notes)  # (H, W, 1 or 3)
    img = _match_channels(img, c, notes)  # (H, W, C)
    if img.shape[:2] != (h, w):
        img = _resize(img, h, w, notes)
    if c == 1 and invert != "no":
        border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]]).mean()
        if invert == "yes" or border > LIGHT_BORDER:
            img = 1.0 - img
            notes.append("inverted" + (f": light background (border mean {border:.2f})" if invert == "auto" else ""))
    return np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32), notes  # (H, W, C) -> (C, H, W)


# ---- 1. decoding -------------------------------------------------------------------------------


def _read_npy(path: Path, notes: list[str]) -> np.ndarray:
    """An .npy picture as (H, W, K): accepts (H, W), (H, W, K), (K, H, W) and a leading batch axis of 1."""
    try:
        arr = read_npy(path, what=".npy image")
    except FileFormatError as e:
        raise ImageError(str(e)) from e
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
        notes.append("dropped a batch axis of size 1")
    if arr.ndim == 2:
        arr = arr[:, :, None]  # (H, W, 1)
    elif arr.ndim == 3:
        hwc, chw = 1 <= arr.shape[2] <= 4, 1 <= arr.shape[0] <= 4
        if chw and not hwc:
            arr = arr.transpose(1, 2, 0)  # (K, H, W) -> (H, W, K)
        elif chw and hwc and arr.shape[0] != arr.shape[2]:
            raise ImageError(f"{path}: cannot tell whether {arr.shape} is (C, H, W) or (H, W, C); "
                             f"save it as (H, W) or (H, W, C) with H, W > 4")
    else:
        raise ImageError(f"{path}: expected an image (H, W), (H, W, C) or (C, H, W), got shape {arr.shape}")
    if arr.shape[2] > 4 or arr.shape[2] < 1:
        raise ImageError(f"{path}: expected 1 to 4 channels, got shape {arr.shape}")
    if arr.size == 0:
        raise ImageError(f"{path}: empty image, shape {arr.shape}")
    if arr.shape[0] * arr.shape[1] > MAX_PIXELS:
        raise ImageError(f"{path}: {arr.shape[1]}x{arr.shape[0]} pixels, more than {MAX_PIXELS:,}")
    if np.issubdtype(arr.dtype, np.integer) and arr.min() >= 0 and arr.max() <= 1:
        notes.append("integer values 0/1: read as black and white")
        return arr.astype(np.bool_)  # a saved 0/1 mask, even as uint8, is not a near-black 0..255 picture
    return arr


def _read_with_pillow(path: Path, notes: list[str]) -> np.ndarray:
    """Decode with Pillow into (H, W, K): 8-bit RGB/RGBA, or the raw 16-bit / float values of grey files."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not path.is_file():
        raise ImageError(f"{path}: {'no such file' if not path.exists() else 'not a regular file'}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise ImageError(f"{path}: {im.width}x{im.height} pixels, more than {MAX_PIXELS:,}")
                if im.width * im.height == 0:
                    raise ImageError(f"{path}: empty image ({im.width}x{im.height} pixels)")
                if getattr(im, "n_frames", 1) > 1:
                    notes.append(f"used the first of {im.n_frames} frames")
                im.load()
                if im.getexif().get(EXIF_ORIENTATION, 1) != 1:
                    notes.append("rotated as its EXIF orientation says")
                    im = ImageOps.exif_transpose(im)
                return _pillow_pixels(im)
    except ImageError:
        raise
    except UnidentifiedImageError as e:
        raise ImageError(f"{path}: not an image file Pillow can read (PNG, JPEG, BMP, GIF, TIFF, WebP, ...) "
                         f"nor a .npy array") from e
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as e:  # SyntaxError: how some Pillow plugins report bad files
        raise ImageError(f"{path}: damaged or unsupported image ({type(e).__name__}: {e})") from e


def _pillow_pixels(im) -> np.ndarray:
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(im)
        if im.mode == "I" and arr.size and (arr.min() < 0 or arr.max() > UINT16_MAX):
            raise ValueError(f"32-bit integer pixels in [{arr.min()}, {arr.max()}], not a 16-bit range")
        return (arr.astype(np.uint16) if im.mode != "F" else arr)[:, :, None]  # (H, W, 1)
    has_alpha = im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info
    return np.asarray(im.convert("RGBA" if has_alpha else "RGB"))  # (H, W, 4 or 3) uint8


# ---- 2. range ----------------------------------------------------------------------------------


def _to_unit_range(arr: np.ndarray, path: Path, notes: list[str]) -> np.ndarray:
    """(H, W, K) of any numeric dtype -> float32 in [0, 1], by the range the values really have."""
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(UINT8_MAX)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ImageError(f"{path}: expected numeric pixels, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise ImageError(f"{path}: {int(np.sum(~np.isfinite(arr)))} pixels are NaN or infinite")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0:
        raise ImageError(f"{path}: negative pixel values (min {lo:g}); expected 0..1, 0..255 or 0..65535")
    if np.issubdtype(arr.dtype, np.floating):
        if hi <= 1.0:
            return arr.astype(np.float32)
        if not np.all(arr == np.round(arr)):
            raise ImageError(f"{path}: fractional pixel values up to {hi:g}; expected floats in 0..1 or whole "
                             f"numbers 0..255 / 0..65535")
        if hi <= UINT8_MAX:
            notes.append(f"values up to {hi:g}: read as 0..255")
            return (arr / UINT8_MAX).astype(np.float32)
    if hi <= 1.0:  # integers: a 0/1 array is black and white, not 0..255
        notes.append("integer values 0/1: read as black and white")
        return arr.astype(np.float32)
    bits = next((b for b in BIT_DEPTHS if hi <= 2**b - 1), None)
    if bits is None:
        raise ImageError(f"{path}: pixel values up to {hi:g}; expected 0..1, 0..255 or 0..65535")
    if bits > 8 or arr.dtype != np.uint8:
        notes.append(f"values up to {hi:g}: read as {bits}-bit 0..{2**bits - 1}")
    return (arr / np.float64(2**bits - 1)).astype(np.float32)


# ---- 3. alpha, 4. channels, 5. size ------------------------------------------------------------


def _resolve_alpha(img: np.ndarray, path: Path, notes: list[str]) -> np.ndarray:
    """(H, W, 2 or 4) with alpha last -> (H, W, 1 or 3); other inputs unchanged."""
    if img.shape[2] not in (2, 4):
        return img
    colour, alpha = img[:, :, :-1], img[:, :, -1:]
    if alpha.min() >= OPAQUE:
        notes.append("dropped an opaque alpha channel")
        return colour
    seen = alpha[:, :, 0] > 0
    if not seen.any():
        raise ImageError(f"{path}: the image is fully transparent")
    if colour[seen].std(axis=0).max() < UNIFORM_COLOUR:
        notes.append("the drawing is in the alpha channel (uniform colour): used alpha as the picture")
        return np.repeat(alpha, colour.shape[2], axis=2)
    ink = float((colour.mean(axis=2, keepdims=True) * alpha).sum() / alpha.sum())
    background = 1.0 if ink < LIGHT_BORDER else 0.0
    notes.append(f"transparent areas filled with {'white' if background else 'black'} (contrast with the drawing)")
    return colour * alpha + background * (1.0 - alpha)


def _match_channels(img: np.ndarray, c: int, notes: list[str]) -> np.ndarray:
    k = img.shape[2]
    if k == c:
        return img
    if c == 1:
        if np.ptp(img, axis=2).max() > 0:
            notes.append("converted colour to grey")
        return (img @ LUMA)[:, :, None]  # (H, W, 3) -> (H, W, 1)
    notes.append(f"grey copied to {c} channels")
    return np.repeat(img, c, axis=2)  # (H, W, 1) -> (H, W, C)


def _resize(img: np.ndarray, h: int, w: int, notes: list[str]) -> np.ndarray:
    """Bilinear resize of (H0, W0, C) floats with Pillow (area-aware when shrinking; stays in [0, 1])."""
    from PIL import Image

    h0, w0 = img.shape[:2]
    note = f"resized from {w0}x{h0} to {w}x{h} (width x height)"
    if abs(h0 / w0 - h / w) > 0.1 * (h / w):
        note += " (aspect ratio not kept)"
    notes.append(note)
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(img[:, :, i], np.float32))  # mode "F"
                           .resize((w, h), Image.BILINEAR)) for i in range(img.shape[2])]
    return np.clip(np.stack(channels, axis=2), 0.0, 1.0)  # clip: float rounding only; weights are convex
