"""Dataset loaders on the real files, the CIFAR-10 batch format, checksums, lookup, npz, batching."""

from __future__ import annotations

import gzip
import io
import pickle
import shutil
import tarfile

import numpy as np
import pytest

from minicnn import cli
from minicnn.data import (
    ChecksumError,
    DataFormatError,
    DatasetError,
    crop_flip,
    epoch_order,
    iterate_batches,
    load_dataset,
    random_crop,
    random_hflip,
    read_checksums,
    read_cifar10,
    read_idx,
    shift,
    verify_file,
)
from minicnn.data import datasets as datasets_module

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
CIFAR_PARTIAL_TRAIN_COUNTS = [396, 366, 420, 384, 422, 393, 414, 385, 407, 413]
CIFAR_PARTIAL_TEST_COUNTS = [103, 89, 100, 103, 90, 86, 112, 102, 106, 109]


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No MINICNN_DATA and an empty cache: only what a test puts in tmp_path exists."""
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setattr(datasets_module, "cache_dir", lambda: cache)
    return cache


# ---- the real files --------------------------------------------------------------------------


def test_mnist_real_files(data_dir):
    ds = load_dataset("mnist", data_dir, download=False)
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert np.bincount(ds.y_train).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(ds.y_test).tolist() == MNIST_TEST_COUNTS
    assert abs(ds.x_train.mean() * 255 - 33.318) < 1e-2  # the README's pixel mean
    assert ds.class_names == [str(i) for i in range(10)]


def test_fashion_mnist_real_files(data_dir):
    ds = load_dataset("fashion-mnist", data_dir, download=False)
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert np.bincount(ds.y_train).tolist() == [6000] * 10
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"


def test_cifar10_partial_npz_loads_through_the_npz_path(data_dir):
    ds = load_dataset(data_dir / "cifar10" / "cifar10_partial.npz")
    assert ds.x_train.shape == (4000, 3, 32, 32) and ds.x_test.shape == (1000, 3, 32, 32)
    assert ds.x_train.dtype == np.float32 and ds.y_test.dtype == np.int64
    assert np.bincount(ds.y_train).tolist() == CIFAR_PARTIAL_TRAIN_COUNTS
    assert np.bincount(ds.y_test).tolist() == CIFAR_PARTIAL_TEST_COUNTS
    # HWC uint8 -> CHW in [0, 1]: the README's first pixels
    assert np.allclose(ds.x_train[0, :, 0, 0] * 255, [59, 62, 63])
    assert np.allclose(ds.x_test[0, :, 0, 0] * 255, [158, 112, 49])
    assert ds.class_names[:3] == ["airplane", "automobile", "bird"]
    y_all = ds.extra["y_train_all"]
    assert y_all.shape == (50000,) and np.bincount(y_all).tolist() == [5000] * 10


def test_full_cifar10_missing_points_to_the_partial_copy(data_dir, isolated):
    with pytest.raises(DatasetError) as err:
        load_dataset("cifar10", data_dir, download=False)
    msg = str(err.value)
    assert "cifar-10-python.tar.gz" in msg and "cifar10_partial.npz" in msg


def test_checksums_table_matches_the_shared_sha256sums(data_dir):
    table = read_checksums()
    for line in (data_dir / "SHA256SUMS").read_text().splitlines():
        sha, rel = line.split()
        if rel in table:
            assert table[rel][2] == sha


# ---- checksums, missing files, download ------------------------------------------------------


def _copy_mnist(data_dir, dest):
    (dest / "mnist").mkdir(parents=True)
    for f in (data_dir / "mnist").glob("*.gz"):
        shutil.copy(f, dest / "mnist" / f.name)


def test_corrupted_copy_is_refused(data_dir, tmp_path, isolated):
    _copy_mnist(data_dir, tmp_path / "copy")
    bad = tmp_path / "copy" / "mnist" / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(bad.read_bytes())
    raw[100] ^= 0xFF  # same size, one byte changed
    bad.write_bytes(bytes(raw))
    with pytest.raises(ChecksumError, match="corrupt"):
        load_dataset("mnist", tmp_path / "copy", download=False)
    assert (data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz").stat().st_size == 4542  # original untouched


def test_truncated_copy_is_refused(data_dir, tmp_path, isolated):
    _copy_mnist(data_dir, tmp_path / "copy")
    bad = tmp_path / "copy" / "mnist" / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:1000])
    with pytest.raises(ChecksumError, match="truncated: 1,000 bytes"):
        load_dataset("mnist", tmp_path / "copy", download=False)


def test_verify_file_accepts_the_official_file(data_dir):
    verify_file(data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz")


def test_missing_file_message_offline(tmp_path, isolated):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError) as err:
        load_dataset("mnist", empty, download=False)
    msg = str(err.value)
    assert "missing file train-images-idx3-ubyte.gz" in msg
    assert str(empty / "mnist") in msg and str(isolated / "mnist") in msg
    assert "MINICNN_DATA" in msg and "https://" in msg


def test_failed_download_is_reported(tmp_path, isolated, monkeypatch):
    folder, files, _, names = datasets_module.SOURCES["mnist"]
    unreachable = (tmp_path / "no-such-mirror").as_uri() + "/"
    monkeypatch.setitem(datasets_module.SOURCES, "mnist", (folder, files, (unreachable,), names))
    with pytest.raises(DatasetError, match="Download failed"):
        load_dataset("mnist", tmp_path / "empty", download=True)
    assert not list(isolated.rglob("*.part"))


def test_download_from_a_mirror_fills_the_cache(data_dir, tmp_path, isolated, monkeypatch):
    folder, files, _, names = datasets_module.SOURCES["mnist"]
    mirror = (data_dir / "mnist").as_uri() + "/"  # a local file:// "mirror" of the official files
    monkeypatch.setitem(datasets_module.SOURCES, "mnist", (folder, files, (mirror,), names))
    ds = load_dataset("mnist", tmp_path / "empty", download=True)
    assert ds.x_train.shape == (60000, 1, 28, 28)
    assert sorted(p.name for p in (isolated / "mnist").iterdir()) == sorted(files)


def test_download_with_wrong_bytes_is_refused(data_dir, tmp_path, isolated, monkeypatch):
    fake = tmp_path / "fake"
    _copy_mnist(data_dir, fake)
    bad = fake / "mnist" / "train-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-10])
    folder, files, _, names = datasets_module.SOURCES["mnist"]
    monkeypatch.setitem(datasets_module.SOURCES, "mnist", (folder, files, ((fake / "mnist").as_uri() + "/",), names))
    with pytest.raises(DatasetError, match="truncated"):
        load_dataset("mnist", tmp_path / "empty", download=True)
    assert not (isolated / "mnist" / "train-images-idx3-ubyte.gz").exists()


def test_cli_train_prints_the_missing_file_without_traceback(tmp_path, isolated, capsys):
    code = cli.main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--no-download", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert "missing file train-images-idx3-ubyte.gz" in err and "Traceback" not in err


# ---- the format readers ----------------------------------------------------------------------


def test_read_idx_on_a_hand_written_file(tmp_path):
    data = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "x-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 0x08, 3]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") + (4).to_bytes(4, "big"))
        f.write(data.tobytes())
    assert np.array_equal(read_idx(path), data)
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 0x08, 1]) + (10).to_bytes(4, "big") + bytes(5))
    with pytest.raises(DataFormatError, match="promises shape"):
        read_idx(path)


def _write_cifar_batch(path, data: np.ndarray, labels: list[int], label: bytes) -> None:
    """One batch in the official format: a protocol-2 pickle of a dict with bytes keys."""
    d = {b"batch_label": label, b"labels": labels, b"data": data,
         b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))]}
    with open(path, "wb") as f:
        pickle.dump(d, f, protocol=2)


@pytest.fixture
def tiny_cifar(tmp_path, rng):
    """A 12-image CIFAR-10 python version (2 per batch) as a folder and as a tar.gz."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    expected_x, expected_y = [], []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(2, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=2).tolist()
        _write_cifar_batch(folder / name, data, labels, name.encode())
        expected_x.append(data)
        expected_y.append(labels)
    meta = {b"num_cases_per_batch": 10000, b"label_names": [n.encode() for n in "abcdefghij"], b"num_vis": 3072}
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    return folder, archive, expected_x, expected_y


@pytest.mark.parametrize("kind", ["folder", "archive"])
def test_read_cifar10_official_format(tiny_cifar, kind):
    folder, archive, xs, ys = tiny_cifar
    out = read_cifar10(folder if kind == "folder" else archive)
    assert out["x_train"].shape == (10, 3, 32, 32) and out["x_train"].dtype == np.uint8
    assert out["x_test"].shape == (2, 3, 32, 32)
    assert out["y_train"].tolist() == sum(ys[:5], []) and out["y_test"].tolist() == ys[5]
    # row = R plane, G plane, B plane, each 32x32 row-major
    k = 3
    row = xs[k // 2][k % 2]
    assert np.array_equal(out["x_train"][k, 1, 4, 5], row[1024 + 4 * 32 + 5])
    assert np.array_equal(out["x_train"][k], row.reshape(3, 32, 32))
    assert out["class_names"] == list("abcdefghij")


def test_unofficial_cifar_files_fail_the_checksum(tiny_cifar, isolated):
    folder, _, _, _ = tiny_cifar
    with pytest.raises(ChecksumError):
        load_dataset("cifar10", folder.parent, download=False)


def test_cifar_reader_refuses_pickled_code(tmp_path, tiny_cifar):
    folder, _, _, _ = tiny_cifar

    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    with open(folder / "data_batch_2", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": []}, f, protocol=2)
    with pytest.raises(DataFormatError, match="only numpy arrays"):
        read_cifar10(folder)


# ---- user .npz -------------------------------------------------------------------------------


def _save_npz(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def test_npz_hwc_uint8_and_chw_float_give_the_same_images(tmp_path, rng):
    hwc = rng.integers(0, 256, size=(6, 8, 9, 3), dtype=np.uint8)
    y = rng.integers(0, 4, size=6)
    a = load_dataset(_save_npz(tmp_path / "a.npz", x_train=hwc, y_train=y, x_test=hwc[:2], y_test=y[:2]))
    chw = hwc.transpose(0, 3, 1, 2).astype(np.float64) / 255
    b = load_dataset(_save_npz(tmp_path / "b.npz", x_train=chw, y_train=y, x_test=chw[:2], y_test=y[:2]))
    assert a.x_train.shape == (6, 3, 8, 9) and a.x_train.dtype == np.float32
    assert np.allclose(a.x_train, b.x_train) and np.array_equal(a.y_train, y)
    assert a.class_names == ["0", "1", "2", "3"][: int(y.max()) + 1]


def test_npz_grayscale_nhw_gets_a_channel_axis(tmp_path, rng):
    x = rng.random((5, 7, 7)).astype(np.float32)
    ds = load_dataset(_save_npz(tmp_path / "g.npz", x_train=x, y_train=np.arange(5), x_test=x, y_test=np.arange(5)))
    assert ds.x_train.shape == (5, 1, 7, 7)


@pytest.mark.parametrize("case, match", [
    ("missing", r"lacks \[.y_test.\]"),
    ("ambiguous", "cannot tell"),
    ("range", r"must lie in \[0, 1\]"),
    ("onehot", "not one-hot"),
    ("count", r"expected labels of shape \(4,\)"),
])
def test_npz_refuses_what_it_cannot_convert(tmp_path, rng, case, match):
    x = rng.random((4, 3, 8, 8))
    y = np.arange(4)
    arrays = {"x_train": x, "y_train": y, "x_test": x, "y_test": y}
    if case == "missing":
        del arrays["y_test"]
    elif case == "ambiguous":
        arrays["x_train"] = rng.random((4, 3, 8, 3))
    elif case == "range":
        arrays["x_train"] = x * 10 - 5
    elif case == "onehot":
        arrays["y_train"] = np.eye(4)
    else:
        arrays["y_train"] = np.arange(3)
    with pytest.raises(DatasetError, match=match):
        load_dataset(_save_npz(tmp_path / "bad.npz", **arrays))


@pytest.mark.parametrize("case, match", [
    ("empty train", r"bad\.npz: x_train holds no images; expected at least 1"),
    ("empty test", r"bad\.npz: x_test holds no images; expected at least 1"),
    ("negative", r"y_train: labels must be >= 0, got minimum -1"),
    ("train beyond names", r"bad\.npz: y_train has labels up to 3, but the 2 class_names make the classes 0\.\.1"),
    ("test beyond names", r"bad\.npz: y_test has labels up to 7, but the 5 class_names make the classes 0\.\.4"),
    ("huge", r"bad\.npz:y_train: labels up to 1,000,000,000 would make 1,000,000,001 classes; at most 4,096"),
])
def test_npz_refuses_labels_and_splits_that_cannot_train(tmp_path, rng, case, match):
    """Issue 26 #9/#10: a 64-image .npz whose labels are 10^9 would build a 10^9-way classifier."""
    x = rng.random((4, 3, 8, 8))
    y = np.arange(4)
    arrays = {"x_train": x, "y_train": y, "x_test": x, "y_test": y}
    if case == "empty train":
        arrays.update(x_train=x[:0], y_train=y[:0])
    elif case == "empty test":
        arrays.update(x_test=x[:0], y_test=y[:0])
    elif case == "negative":
        arrays["y_train"] = np.array([0, 1, -1, 2])
    elif case == "train beyond names":
        arrays["class_names"] = np.array(["a", "b"])
    elif case == "test beyond names":
        arrays.update(y_test=np.array([0, 1, 7, 2]), class_names=np.array(list("abcde")))
    else:
        arrays["y_train"] = np.array([0, 1, 10**9, 2])
    with pytest.raises(DatasetError, match=match):
        load_dataset(_save_npz(tmp_path / "bad.npz", **arrays))


def test_npz_without_class_names_counts_the_classes_of_both_splits(tmp_path, rng):
    """A file made to evaluate on may hold a token training split: its test labels set the classes."""
    x = rng.random((4, 3, 8, 8))
    ds = load_dataset(_save_npz(tmp_path / "ok.npz", x_train=x[:2], y_train=np.array([0, 1]), x_test=x,
                                y_test=np.array([0, 7, 1, 3])))
    assert ds.num_classes == 8


def test_npz_class_names_may_name_classes_absent_from_the_labels(tmp_path, rng):
    x = rng.random((4, 3, 8, 8))
    ds = load_dataset(_save_npz(tmp_path / "ok.npz", x_train=x, y_train=np.array([0, 1, 1, 0]), x_test=x,
                                y_test=np.array([0, 2, 1, 0]), class_names=np.array(["a", "b", "c"])))
    assert ds.class_names == ["a", "b", "c"] and ds.num_classes == 3


def test_npz_not_an_npz(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(DatasetError, match="not a readable"):
        load_dataset(path)


def test_unknown_dataset_name():
    with pytest.raises(DatasetError, match="unknown dataset"):
        load_dataset("imagenet")


# ---- batching and augmentation ---------------------------------------------------------------


def test_seeded_batches_cover_every_image_once_and_repeat_with_the_seed():
    x = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
    y = np.arange(10)
    batches = [(b, xb.ravel().tolist(), yb.tolist()) for b, xb, yb in iterate_batches(x, y, 4, seed=3, epoch=1)]
    assert [len(yb) for _, _, yb in batches] == [4, 4, 2]
    assert sorted(sum((yb for _, _, yb in batches), [])) == list(range(10))
    again = [(b, xb.ravel().tolist(), yb.tolist()) for b, xb, yb in iterate_batches(x, y, 4, seed=3, epoch=1)]
    assert batches == again
    assert not np.array_equal(epoch_order(10, 3, 1), epoch_order(10, 3, 2))
    assert [b for b, _, _ in iterate_batches(x, y, 4, seed=3, epoch=1, start=1)] == [1, 2]
    assert np.array_equal(epoch_order(10, 3, 1, shuffle=False), np.arange(10))


def test_random_crop_matches_a_per_image_crop(rng):
    x = rng.random((5, 2, 6, 7)).astype(np.float32)
    out = random_crop(x, 2, np.random.default_rng(0))
    check = np.random.default_rng(0)
    dy, dx = check.integers(0, 5, size=5), check.integers(0, 5, size=5)
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    for n in range(5):
        assert np.array_equal(out[n], padded[n, :, dy[n]:dy[n] + 6, dx[n]:dx[n] + 7])


def test_shift_repeats_the_border_and_moves_the_content():
    x = np.zeros((3, 1, 8, 8), np.float32) - 0.4  # a uniform (standardised) background ...
    x[:, :, 3:5, 3:5] = 2.0                       # ... with a bright 2x2 square in the middle
    out = shift(2)(x, np.random.default_rng(4))
    assert out.shape == x.shape
    assert set(np.unique(out)) == {np.float32(-0.4), np.float32(2.0)}  # no zero stripes from padding
    assert all((out[n] == 2.0).sum() == 4 for n in range(3))           # the square moved, uncut


def test_random_hflip_and_crop_flip(rng):
    x = rng.random((64, 3, 4, 4)).astype(np.float32)
    out = random_hflip(x, np.random.default_rng(5))
    flipped = np.random.default_rng(5).random(64) < 0.5
    assert np.array_equal(out[flipped], x[flipped][..., ::-1]) and np.array_equal(out[~flipped], x[~flipped])
    assert 10 < flipped.sum() < 54
    aug = crop_flip(1)(x, np.random.default_rng(1))
    assert aug.shape == x.shape and aug.dtype == x.dtype


def test_idx_reader_reports_a_broken_gzip(tmp_path):
    path = tmp_path / "broken.gz"
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as f:
        f.write(bytes(1000))
    path.write_bytes(buf.getvalue()[:15])
    with pytest.raises(DataFormatError, match="not a readable"):
        read_idx(path)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_channel_stats_over_blocks_equal_the_whole_set_formula(dtype, monkeypatch):
    """Block sums give the numbers of x.mean / x.std over (N, H, W), also across a ragged last block."""
    from minicnn.data import datasets as D

    monkeypatch.setattr(D, "STATS_BLOCK", 7)  # 50 images: 7 full blocks and one of 1
    x = (np.random.default_rng(3).random((50, 3, 5, 4)) * 255).astype(dtype)
    ds = D.Dataset("t", x, np.zeros(50, np.int64), x[:2], np.zeros(2, np.int64), ["a"])
    mean, std = ds.channel_stats()
    assert mean.dtype == std.dtype == np.float32 and mean.shape == std.shape == (3,)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2, 3), dtype=np.float64), rtol=1e-6)
    np.testing.assert_allclose(std, x.std(axis=(0, 2, 3), dtype=np.float64), rtol=1e-6)
