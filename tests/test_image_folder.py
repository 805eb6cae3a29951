"""A folder of class folders as a dataset, made in tmp from real MNIST digits and CIFAR-10 pictures."""

import os

import numpy as np
import pytest
from PIL import Image

from minicnn.data import DatasetError, FolderError, load_dataset, load_image_folder
from minicnn.data import folder as folder_module
from minicnn.data.datasets import SOURCES

PER_CLASS = 6


@pytest.fixture
def mnist(data_dir):
    return load_dataset("mnist", data_dir, download=False).subset(train=400, test=10)


@pytest.fixture
def cifar(data_dir):
    return load_dataset(data_dir / "cifar10" / "cifar10_partial.npz").subset(train=200, test=10)


def _uint8(image):  # (C, H, W) float in [0, 1] -> (H, W) or (H, W, C) uint8
    pixels = np.round(image * 255).astype(np.uint8).transpose(1, 2, 0)
    return pixels[:, :, 0] if pixels.shape[2] == 1 else pixels


def _write_digits(root, ds, classes=(0, 1, 2), per_class=PER_CLASS, fmt="PNG"):
    """PER_CLASS real digits of each class as files root/CLASS/i.png; returns {path: uint8 pixels}."""
    written = {}
    for k in classes:
        (root / str(k)).mkdir(parents=True)
        for i, index in enumerate(np.flatnonzero(ds.y_train == k)[:per_class]):
            path = root / str(k) / f"{i}.{'png' if fmt == 'PNG' else 'jpg'}"
            Image.fromarray(_uint8(ds.x_train[index])).save(path, fmt)
            written[path] = _uint8(ds.x_train[index])
    return written


def _load(root, **kw):
    notes = []
    return load_image_folder(root, log=notes.append, **kw), notes


def test_digits_folder_gives_the_real_pixels_grey_and_the_class_names(tmp_path, mnist):
    written = _write_digits(tmp_path / "digits", mnist)
    ds, notes = _load(tmp_path / "digits")
    assert ds.class_names == ["0", "1", "2"] and ds.num_classes == 3
    assert ds.input_shape == (1, 28, 28) and ds.x_train.dtype == np.float32
    assert len(ds.y_train) + len(ds.y_test) == 3 * PER_CLASS
    assert np.bincount(ds.y_test).tolist() == [round(0.2 * PER_CLASS)] * 3  # the documented split, per class
    stored = {tuple(np.round(x[0] * 255).astype(np.uint8).ravel()) for x in np.concatenate([ds.x_train, ds.x_test])}
    assert stored == {tuple(p.ravel()) for p in written.values()}  # PNG is lossless: every digit exactly
    assert "every image is grey: 1 channel" in notes
    assert all(len(line) <= 80 for line in notes if "/" not in line)


def test_split_is_seeded(tmp_path, mnist):
    _write_digits(tmp_path / "d", mnist)
    a, _ = _load(tmp_path / "d", seed=1)
    b, _ = _load(tmp_path / "d", seed=1)
    c, _ = _load(tmp_path / "d", seed=2)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert not np.array_equal(a.x_test, c.x_test)


def test_colour_pictures_mixed_sizes_and_a_given_split(tmp_path, cifar, mnist):
    for split, lo in (("train", 0), ("test", 100)):
        for k in (3, 5):  # cat, dog
            folder = tmp_path / "pets" / split / SOURCES["cifar10"][3][k]
            folder.mkdir(parents=True)
            for i, index in enumerate(np.flatnonzero(cifar.y_train[lo:] == k)[:4] + lo):
                Image.fromarray(_uint8(cifar.x_train[index])).save(folder / f"{i}.jpg", "JPEG", quality=95)
    big = tmp_path / "pets" / "train" / "cat" / "big.png"
    Image.fromarray(_uint8(cifar.x_train[0])).resize((64, 48)).save(big)
    grey = tmp_path / "pets" / "train" / "dog" / "grey.png"
    Image.fromarray(_uint8(mnist.x_train[0])).resize((32, 32)).save(grey)
    ds, notes = _load(tmp_path / "pets")
    assert ds.class_names == ["cat", "dog"] and ds.input_shape == (3, 32, 32)
    assert len(ds.y_train) == 10 and len(ds.y_test) == 8
    assert "resized 1 of 18 images to 32x32 (width x height, the most common size)" in notes
    assert "colour: 3 channels (1 grey images copied to R, G and B)" in notes


def test_a_broken_file_is_listed_and_skipped(tmp_path, mnist):
    _write_digits(tmp_path / "d", mnist)
    (tmp_path / "d" / "1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    (tmp_path / "d" / "2" / "notes.txt").write_text("not a picture")
    good = tmp_path / "d" / "0" / "0.png"
    (tmp_path / "d" / "0" / "cut.png").write_bytes(good.read_bytes()[:60])  # a truncated PNG: header reads
    ds, notes = _load(tmp_path / "d")
    assert len(ds.y_train) + len(ds.y_test) == 3 * PER_CLASS
    assert "skipped 3 unreadable files:" in notes
    listed = [n for n in notes if n.startswith("  ")]
    assert sorted(n.split()[0] for n in listed) == ["0/cut.png", "1/broken.png", "2/notes.txt"]


def test_an_empty_class_is_an_error(tmp_path, mnist):
    _write_digits(tmp_path / "d", mnist)
    (tmp_path / "d" / "7").mkdir()
    with pytest.raises(FolderError, match=r"class folder .*d/7 is empty"):
        _load(tmp_path / "d")
    with pytest.raises(DatasetError, match=r"d/7 is empty"):  # through load_dataset, as `train` sees it
        load_dataset(tmp_path / "d")


def test_a_class_of_unreadable_files_only_is_an_error(tmp_path, mnist):
    _write_digits(tmp_path / "d", mnist)
    (tmp_path / "d" / "9").mkdir()
    (tmp_path / "d" / "9" / "a.png").write_bytes(b"junk")
    with pytest.raises(FolderError, match=r"class 9 has no readable training image \(1 unreadable files skipped"):
        _load(tmp_path / "d")


def test_second_run_reads_the_cache_and_a_changed_folder_rebuilds(tmp_path, mnist, monkeypatch):
    _write_digits(tmp_path / "d", mnist)
    first, notes = _load(tmp_path / "d")
    assert any(n.startswith("cached as ") for n in notes)
    assert (tmp_path / "d" / ".minicnn" / "dataset.npz").is_file()
    assert (tmp_path / "d" / ".minicnn" / "manifest.json").is_file()

    def no_decoding(*args, **kw):
        raise AssertionError("a cached folder decoded an image")

    monkeypatch.setattr(folder_module, "load_image", no_decoding)
    again, notes = _load(tmp_path / "d")
    assert any(n.startswith("read from the cache") for n in notes)
    np.testing.assert_array_equal(again.x_train, first.x_train)
    np.testing.assert_array_equal(again.y_test, first.y_test)
    monkeypatch.undo()

    changed = tmp_path / "d" / "2" / "0.png"
    Image.fromarray(255 - _uint8(mnist.x_train[0])).save(changed)
    os.utime(changed, ns=(1, 1))  # a new mtime and size even on a coarse clock
    rebuilt, notes = _load(tmp_path / "d")
    assert any(n.startswith("cached as ") for n in notes)
    assert not np.array_equal(np.concatenate([rebuilt.x_train, rebuilt.x_test]).sum(),
                              np.concatenate([first.x_train, first.x_test]).sum())

    (tmp_path / "d" / "2" / "extra.png").write_bytes(changed.read_bytes())
    more, _ = _load(tmp_path / "d")
    assert len(more.y_train) + len(more.y_test) == 3 * PER_CLASS + 1


def test_a_damaged_cache_is_rebuilt(tmp_path, mnist):
    _write_digits(tmp_path / "d", mnist)
    first, _ = _load(tmp_path / "d")
    npz = tmp_path / "d" / ".minicnn" / "dataset.npz"
    raw = bytearray(npz.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    npz.write_bytes(bytes(raw))
    again, notes = _load(tmp_path / "d")
    assert any(n.startswith("cached as ") for n in notes)
    np.testing.assert_array_equal(again.x_train, first.x_train)


def test_bounds_are_checked_before_decoding(tmp_path, mnist, monkeypatch):
    _write_digits(tmp_path / "d", mnist)
    monkeypatch.setattr(folder_module, "MAX_IMAGES", 10)
    with pytest.raises(FolderError, match=r"holds 18 files, more than 10"):
        _load(tmp_path / "d")
    monkeypatch.setattr(folder_module, "MAX_IMAGES", 100)
    monkeypatch.setattr(folder_module, "MAX_CLASSES", 2)
    with pytest.raises(FolderError, match=r"has 3 class folders, more than 2"):
        _load(tmp_path / "d")
    monkeypatch.setattr(folder_module, "MAX_CLASSES", 100)
    monkeypatch.setattr(folder_module, "MAX_DATASET_BYTES", 1000)
    monkeypatch.setattr(folder_module, "load_image", lambda *a, **k: pytest.fail("decoded before the check"))
    with pytest.raises(FolderError, match=r"18 images of 28x28 need 0\.0 GiB"):
        _load(tmp_path / "d")


def test_class_names_with_control_characters_are_printed_escaped(tmp_path, mnist):
    (tmp_path / "d").mkdir()
    for name in ("ok", "bad\x1b[2Jname"):
        (tmp_path / "d" / name).mkdir()
        for i in range(2):
            Image.fromarray(_uint8(mnist.x_train[i])).save(tmp_path / "d" / name / f"{i}.png")
    ds, notes = _load(tmp_path / "d")
    assert ds.class_names == ["bad\x1b[2Jname", "ok"]  # the real name, for the checkpoint
    assert "2 classes: bad\\x1b[2Jname, ok" in notes and not any("\x1b" in n for n in notes)


def test_not_a_class_folder(tmp_path):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(b"")
    with pytest.raises(FolderError, match="has no class folders"):
        _load(tmp_path / "flat")
