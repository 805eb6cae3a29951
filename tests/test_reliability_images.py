"""Issue 13.4: a user's picture (JPEG, PNG with alpha, 16-bit, .npy in 0..255, dark-on-light) becomes
model input in [0, 1] like the training images; broken files give one clear ImageError.

Every file is written by the test. The digit is the first MNIST test image when MINICNN_DATA holds
MNIST, otherwise a synthesised 7."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from minicnn.data.images import ImageError, load_image


@pytest.fixture(scope="module")
def digit() -> np.ndarray:
    """(28, 28) uint8, light ink on black, as MNIST."""
    mnist = Path(os.environ.get("MINICNN_DATA", "/nonexistent")) / "mnist" / "t10k-images-idx3-ubyte.gz"
    if mnist.is_file():
        from minicnn.data import read_idx

        return read_idx(mnist)[0].copy()  # a 7
    img = np.zeros((28, 28), np.float32)
    img[5:8, 6:22] = 1.0  # the bar of a 7
    for r in range(8, 24):  # its stroke, 3 pixels wide, down to the left
        c = int(round(21 - (r - 8) * 0.7))
        img[r, c - 1:c + 2] = 1.0
    return (img * 255).astype(np.uint8)


def unit(d: np.ndarray) -> np.ndarray:
    return d.astype(np.float32) / 255


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_jpeg_is_scaled_to_unit_range(tmp_path, digit):
    path = tmp_path / "seven.jpg"
    Image.fromarray(digit).save(path, quality=95)
    img, notes = load_image(path, (1, 28, 28))
    assert img.shape == (1, 28, 28) and img.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0 and img.max() > 0.8  # not 0..255, not squashed
    assert np.abs(img[0] - unit(digit)).mean() < 0.03  # JPEG loses a little
    assert notes == []


def test_dark_on_light_colour_photo_is_converted_resized_and_inverted(tmp_path, digit):
    big = np.asarray(Image.fromarray(255 - digit).resize((84, 84), Image.BILINEAR))  # black ink on white paper
    rgb = np.stack([big, big, np.clip(big.astype(int) - 20, 0, 255).astype(np.uint8)], axis=2)  # slightly yellow paper
    path = tmp_path / "photo.jpg"
    Image.fromarray(rgb).save(path, quality=90)
    img, notes = load_image(path, (1, 28, 28))
    assert any("resized from 84x84 to 28x28 (width x height)" in n for n in notes)
    assert any("converted colour to grey" in n for n in notes)
    assert any(n.startswith("inverted: light background") for n in notes)
    assert img[0, 0, 0] < 0.1 and corr(img[0], unit(digit)) > 0.9


def test_digit_drawn_in_the_alpha_channel(tmp_path, digit):
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[:, :, 3] = digit  # black colour everywhere; the drawing is in alpha only
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, "RGBA").save(path)
    img, notes = load_image(path, (1, 28, 28))
    assert any("alpha channel" in n for n in notes)
    np.testing.assert_allclose(img[0], unit(digit), atol=1e-6)


def test_coloured_ink_on_transparent_background_is_laid_on_white_then_inverted(tmp_path, digit):
    rng = np.random.default_rng(0)
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[:, :, 0] = rng.integers(0, 60, (28, 28))  # dark, uneven red ink
    rgba[:, :, 3] = digit
    path = tmp_path / "ink.png"
    Image.fromarray(rgba, "RGBA").save(path)
    img, notes = load_image(path, (1, 28, 28))
    assert any("filled with white" in n for n in notes) and any(n.startswith("inverted") for n in notes)
    assert corr(img[0], unit(digit)) > 0.95


def test_opaque_alpha_is_dropped_and_grey_copied_to_three_channels(tmp_path, digit):
    path = tmp_path / "la.png"
    Image.fromarray(np.stack([digit, np.full_like(digit, 255)], axis=2), "LA").save(path)
    img, notes = load_image(path, (3, 28, 28))
    assert img.shape == (3, 28, 28) and notes == ["dropped an opaque alpha channel"]
    np.testing.assert_allclose(img, np.repeat(unit(digit)[None], 3, axis=0), atol=1e-6)
    np.save(tmp_path / "grey.npy", digit)
    img, notes = load_image(tmp_path / "grey.npy", (3, 28, 28))
    assert notes == ["grey copied to 3 channels"]
    np.testing.assert_allclose(img, np.repeat(unit(digit)[None], 3, axis=0), atol=1e-6)


def test_sixteen_bit_png(tmp_path, digit):
    path = tmp_path / "deep.png"
    Image.fromarray(digit.astype(np.uint16) * 257).save(path)  # 0..65535
    img, _ = load_image(path, (1, 28, 28))
    np.testing.assert_allclose(img[0], unit(digit), atol=1e-6)


@pytest.mark.parametrize("layout", ["hw", "hwc", "chw", "nchw"])
def test_float_npy_in_0_255_is_scaled_not_clipped(tmp_path, digit, layout):
    x = digit.astype(np.float64)  # 0..255 floats
    arr = {"hw": x, "hwc": x[:, :, None], "chw": x[None], "nchw": x[None, None]}[layout]
    path = tmp_path / "x.npy"
    np.save(path, arr)
    img, notes = load_image(path, (1, 28, 28))
    np.testing.assert_allclose(img[0], unit(digit), atol=1e-6)
    assert any("read as 0..255" in n for n in notes)


def test_npy_in_unit_range_and_bool_are_kept(tmp_path, digit):
    np.save(tmp_path / "f.npy", unit(digit))
    np.save(tmp_path / "b.npy", digit > 127)
    assert np.array_equal(load_image(tmp_path / "f.npy")[0][0], unit(digit))
    assert np.array_equal(load_image(tmp_path / "b.npy")[0][0], (digit > 127).astype(np.float32))


@pytest.mark.parametrize("case, match", [
    ("nan", "1 pixels are NaN or infinite"),
    ("inf", "NaN or infinite"),
    ("empty", "empty image"),
    ("negative", "negative pixel values"),
    ("huge_range", "values up to 1e"),
    ("rank", r"got shape \(2, 2, 2, 2, 2\)"),
    ("pickle", "Python objects"),
    ("truncated_npy", "not a readable .npy image"),
    ("text_as_png", "not an image file Pillow can read"),
    ("truncated_png", "damaged or unsupported image"),
    ("missing", "no such file"),
    ("transparent", "fully transparent"),
])
def test_bad_pictures_give_one_clear_error(tmp_path, digit, case, match):
    path = tmp_path / ("bad.png" if case in ("text_as_png", "truncated_png", "missing", "transparent") else "bad.npy")
    x = unit(digit)
    if case == "nan":
        x[3, 3] = np.nan
        np.save(path, x)
    elif case == "inf":
        x[3, 3] = np.inf
        np.save(path, x)
    elif case == "empty":
        np.save(path, np.zeros((0, 0), np.float32))
    elif case == "negative":
        np.save(path, x - 0.5)
    elif case == "huge_range":
        np.save(path, x * 1e6)
    elif case == "rank":
        np.save(path, np.zeros((2, 2, 2, 2, 2)))
    elif case == "pickle":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif case == "truncated_npy":
        np.save(path, x)
        path.write_bytes(path.read_bytes()[:-100])
    elif case == "text_as_png":
        path.write_text("this is not a picture\n")
    elif case == "truncated_png":
        Image.fromarray(digit).save(path)
        path.write_bytes(path.read_bytes()[:60])
    elif case == "transparent":
        Image.fromarray(np.zeros((28, 28, 4), np.uint8), "RGBA").save(path)
    with pytest.raises(ImageError, match=match) as err:
        load_image(path, (1, 28, 28))
    assert str(path) in str(err.value)
    assert isinstance(err.value, ValueError)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"load_image: expected shape \(1 or 3"):
        load_image("x.png", (2, 28, 28))
    with pytest.raises(ValueError, match="load_image: expected invert in"):
        load_image("x.png", (1, 28, 28), invert="maybe")


def test_invert_yes_and_no(tmp_path, digit):
    path = tmp_path / "d.png"
    Image.fromarray(255 - digit).save(path)
    assert np.allclose(load_image(path, invert="no")[0][0], 1 - unit(digit), atol=1e-6)
    assert np.allclose(load_image(path, invert="yes")[0][0], unit(digit), atol=1e-6)
    assert np.allclose(load_image(path)[0][0], unit(digit), atol=1e-6)  # auto: light border
