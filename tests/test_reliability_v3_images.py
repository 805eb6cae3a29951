"""Picture reading, each rule pinned by a test that a plausible wrong version fails (issue: reliability v3)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from minicnn.data.images import ImageError, load_image


def _png16(path, values: np.ndarray):
    Image.fromarray(values.astype(np.uint16)).save(path)  # mode I;16
    return path


def test_a_12_bit_scan_in_a_16_bit_png_is_scaled_by_its_real_range(tmp_path):
    values = np.zeros((28, 28), np.uint16)
    values[8:20, 12:16] = 4095  # 12 bits used: full white for a 12-bit sensor
    img, notes = load_image(_png16(tmp_path / "scan.png", values), invert="no")
    assert img.max() == pytest.approx(1.0) and img.min() == 0.0
    assert any("12-bit 0..4095" in n for n in notes), notes


def test_32_bit_integer_pixels_are_scaled_by_their_real_range(tmp_path):
    values = np.zeros((28, 28), np.int32)
    values[5:9, 5:9] = 1000  # 10 bits
    path = tmp_path / "deep.tif"
    Image.fromarray(values, mode="I").save(path)
    img, notes = load_image(path, invert="no")
    assert img.max() == pytest.approx(1000 / 1023)
    assert any("10-bit" in n for n in notes), notes


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.int32])
def test_an_integer_0_1_npy_is_black_and_white(tmp_path, dtype):
    mask = np.zeros((28, 28), dtype)
    mask[10:18, 10:18] = 1
    np.save(tmp_path / "mask.npy", mask)
    img, notes = load_image(tmp_path / "mask.npy", invert="no")
    assert img.max() == 1.0 and img[0, 12, 12] == 1.0 and img.sum() == 64
    assert any("0/1" in n for n in notes)


def test_colour_to_grey_uses_luma_weights_not_the_mean(tmp_path):
    red = np.zeros((28, 28, 3), np.uint8)
    red[..., 0] = 255
    Image.fromarray(red).save(tmp_path / "red.png")
    img, _ = load_image(tmp_path / "red.png", invert="no")
    assert img[0, 0, 0] == pytest.approx(0.299, abs=1e-6)  # a plain mean would give 1/3


def test_a_non_square_resize_keeps_its_orientation(tmp_path):
    wide = np.zeros((10, 40), np.uint8)  # 40 wide, 10 high
    wide[:, :20] = 255  # left half white
    Image.fromarray(wide).save(tmp_path / "wide.png")
    img, notes = load_image(tmp_path / "wide.png", shape=(1, 8, 16), invert="no")
    assert img.shape == (1, 8, 16)
    assert img[0, :, :6].min() > 0.9 and img[0, :, 10:].max() < 0.1  # white stays on the left
    assert any("resized from 40x10 to 16x8 (width x height)" in n for n in notes), notes


def test_fractional_values_above_one_are_refused(tmp_path):
    np.save(tmp_path / "odd.npy", np.full((28, 28), 37.5, np.float32))
    with pytest.raises(ImageError, match="fractional pixel values up to 37.5"):
        load_image(tmp_path / "odd.npy")


def test_whole_numbered_floats_up_to_255_are_read_as_0_255(tmp_path):
    np.save(tmp_path / "f.npy", np.full((28, 28), 51.0, np.float64))
    img, notes = load_image(tmp_path / "f.npy", invert="no")
    assert img.max() == pytest.approx(0.2) and any("0..255" in n for n in notes)
