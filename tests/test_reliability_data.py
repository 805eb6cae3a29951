"""Issue 13.3 / 13.11 probes for the data files: damaged .npz files, CIFAR pickles that try to make the
reader allocate, checksums on a file the test writes. Everything here runs without real data."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import tarfile

import numpy as np
import pytest

from minicnn.data import (
    ChecksumError,
    DataFormatError,
    DatasetError,
    DatasetFormatError,
    load_dataset,
    read_cifar10,
    verify_file,
)
from minicnn.data import datasets as datasets_module
from minicnn.data import readers as readers_module
from minicnn.files import FileFormatError, read_npy, read_npz, save_npz_atomic

ARRAYS = {
    "x": np.arange(12.0).reshape(3, 4),
    "fortran": np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3)),
    "meta": np.array('{"format": 1}'),
    "empty": np.zeros((0, 3), np.float32),
    "scalar": np.float64(3.5),
}


def rewrite(path, data: bytes) -> None:
    """Replace the file's bytes. Unlink first: truncating an existing file in place costs ~4 ms on ext4
    (auto_da_alloc flushes it), a fresh file ~0.1 ms."""
    path.unlink(missing_ok=True)
    path.write_bytes(bytes(data))


def same_arrays(got: dict, expected: dict) -> bool:
    return set(got) == set(expected) and all(
        np.array_equal(got[k], expected[k]) and got[k].dtype == np.asarray(expected[k]).dtype for k in expected)


@pytest.mark.parametrize("compressed", [False, True])
def test_read_npz_round_trip(tmp_path, compressed):
    path = tmp_path / "a.npz"
    (np.savez_compressed if compressed else np.savez)(path, **ARRAYS)
    got = read_npz(path, keys=("x", "meta"))
    assert same_arrays(got, ARRAYS)
    assert got["fortran"].flags.f_contiguous and got["x"].flags.writeable


@pytest.mark.parametrize("compressed", [False, True])
def test_every_truncation_and_a_bit_flip_in_every_byte_is_refused_or_harmless(tmp_path, compressed):
    """Cut the file at every byte and flip one bit in every byte (bit pos % 8, so every bit position
    is used): each outcome is either a FileFormatError naming the file or exactly the original arrays
    (e.g. a flip in a zip timestamp). All 8 bits of every byte were checked once offline, same result."""
    path = tmp_path / "a.npz"
    (np.savez_compressed if compressed else np.savez)(path, **ARRAYS)
    raw = path.read_bytes()
    refused = harmless = 0
    for cut in range(len(raw)):
        rewrite(path, raw[:cut])
        with pytest.raises(FileFormatError, match=str(path)):
            read_npz(path)
    for pos in range(len(raw)):
        damaged = bytearray(raw)
        damaged[pos] ^= 1 << (pos % 8)
        rewrite(path, damaged)
        try:
            got = read_npz(path)
        except FileFormatError as e:
            assert str(path) in str(e) and "not a readable .npz file" in str(e)
            refused += 1
        else:
            assert same_arrays(got, ARRAYS), pos
            harmless += 1
    assert refused > 0.6 * len(raw) and harmless > 0


def test_read_npz_refuses_objects_missing_keys_and_crafted_headers(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, a=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(FileFormatError, match="holds Python objects"):
        read_npz(path)
    np.savez(path, a=np.zeros(3))
    with pytest.raises(FileFormatError, match=r"checkpoint lacks \['meta'\]; it holds \['a'\]"):
        read_npz(path, what="checkpoint", keys=("meta",))
    with pytest.raises(FileFormatError, match="exceed the limit of 10 bytes"):
        read_npz(path, max_bytes=10)
    with pytest.raises(FileFormatError, match="no such file"):
        read_npz(tmp_path / "missing.npz")
    with pytest.raises(FileFormatError, match="not a regular file"):
        read_npz(tmp_path)
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(FileFormatError, match="damaged or not a zip archive"):
        read_npz(tmp_path / "text.npz")


def test_read_npz_refuses_a_header_larger_than_the_member(tmp_path):
    """Swap in a .npy header declaring (10**9,) float64 while the member holds 24 bytes."""
    import zipfile

    path = tmp_path / "big.npz"
    header = b"\x93NUMPY\x01\x00" + b"v\x00" + b"{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000,), }"
    header = header[:10] + header[10:].ljust(118 - 1) + b"\n"
    header = header[:8] + (len(header) - 10).to_bytes(2, "little") + header[10:]
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.npy", header + np.zeros(3).tobytes())
    with pytest.raises(FileFormatError, match=r"promises \(1000000000,\) float64 \(8,000,000,000 bytes\) but holds 24"):
        read_npz(path)


def test_read_npy_checks_like_read_npz(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.arange(10))
    assert np.array_equal(read_npy(path), np.arange(10))
    raw = path.read_bytes()
    for cut in range(len(raw)):
        rewrite(path, raw[:cut])
        with pytest.raises(FileFormatError, match="not a readable .npy file"):
            read_npy(path)


def test_layer_load_of_a_damaged_file_names_it(tmp_path):
    from minicnn.layers import Linear

    path = tmp_path / "w.npz"
    Linear(3, 2).save(path)
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(FileFormatError, match=f"{path}: not a readable layer state"):
        Linear(3, 2).load(path)


# ---- the user's dataset .npz through load_dataset ---------------------------------------------


def _dataset_file(path, rng):
    x = rng.integers(0, 256, (6, 8, 8), dtype=np.uint8)
    y = np.arange(6) % 3
    with open(path, "wb") as f:
        np.savez(f, x_train=x, y_train=y, x_test=x[:2], y_test=y[:2], class_names=np.array(["a", "b", "c"]))
    return path


@pytest.mark.parametrize("damage", ["truncated", "bitflip", "zipped_text"])
def test_damaged_dataset_npz_gives_one_clear_value_error(tmp_path, rng, damage):
    path = _dataset_file(tmp_path / "mine.npz", rng)
    raw = bytearray(path.read_bytes())
    if damage == "truncated":
        raw = raw[: len(raw) // 2]
    elif damage == "bitflip":
        raw[200] ^= 0x10  # inside the first member's data: the CRC no longer matches
    else:
        raw = bytearray(b"PK\x03\x04" + b"\x00" * 40)
    path.write_bytes(bytes(raw))
    with pytest.raises(DatasetFormatError, match=f"{path}: not a readable dataset .npz file") as err:
        load_dataset(path)
    assert isinstance(err.value, ValueError) and isinstance(err.value, DatasetError)


def test_intact_dataset_npz_still_loads(tmp_path, rng):
    ds = load_dataset(_dataset_file(tmp_path / "mine.npz", rng))
    assert ds.x_train.shape == (6, 1, 8, 8) and ds.class_names == ["a", "b", "c"]


# ---- CIFAR-10 pickles --------------------------------------------------------------------------


def _cifar_folder(tmp_path, batches: dict[str, object]):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir(exist_ok=True)
    good = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump(batches.get(name, good), f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(batches.get("batches.meta", {b"label_names": [b"a", b"b"]}), f, protocol=2)
    return folder


class _HugeArray:
    """Pickles as numpy's _reconstruct asking for 10**12 elements up front."""

    def __reduce__(self):
        return np.zeros(0).__reduce__()[0], (np.ndarray, (10**12,), b"b")


def test_cifar_reader_accepts_the_official_structure(tmp_path):
    out = read_cifar10(_cifar_folder(tmp_path, {}))
    assert out["x_train"].shape == (10, 3, 32, 32) and out["class_names"] == ["a", "b"]


@pytest.mark.parametrize("batch, match", [
    ({b"data": _HugeArray(), b"labels": [0]}, "NumPy's own pickles start from an empty ndarray"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [[[1] * 10_000] * 10_000] * 2}, "expected integer labels"),
    ({b"data": [[0] * 3072] * 2, b"labels": [0, 1]}, r"expected data \(n, 3072\) uint8, got list"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, -1]}, "non-negative integer labels"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": "ab"}, "expected 2 labels"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1, 2]}, "got 3 labels"),
    ({b"data": np.zeros((2, 3072), np.float64), b"labels": [0, 1]}, r"got \(2, 3072\) float64"),
    ({b"data": np.zeros(2, dtype="V100000"), b"labels": [0, 1]}, "only plain numeric arrays"),
    ({b"data": np.array([None, 1], dtype=object), b"labels": [0, 1]}, "only plain numeric arrays"),
])
def test_crafted_cifar_batches_are_refused_without_allocating(tmp_path, batch, match):
    folder = _cifar_folder(tmp_path, {"data_batch_3": batch})
    with pytest.raises(DataFormatError, match=match) as err:
        read_cifar10(folder)
    assert "data_batch_3" in str(err.value)


def test_crafted_label_names_are_refused(tmp_path):
    folder = _cifar_folder(tmp_path, {"batches.meta": {b"label_names": [[b"a"] * 1000] * 1000}})
    with pytest.raises(DataFormatError, match="label_names as a list of strings"):
        read_cifar10(folder)


@pytest.mark.parametrize("damage", ["truncated", "bitflip_opcode", "empty"])
def test_damaged_cifar_batch_files(tmp_path, damage):
    folder = _cifar_folder(tmp_path, {})
    target = folder / "test_batch"
    raw = bytearray(target.read_bytes())
    if damage == "truncated":
        raw = raw[: len(raw) // 2]
    elif damage == "bitflip_opcode":
        raw[1] ^= 0xFF  # the first opcode after PROTO
    else:
        raw = bytearray()
    target.write_bytes(bytes(raw))
    with pytest.raises(DataFormatError, match=f"{folder}:test_batch: not a CIFAR-10 python pickle"):
        read_cifar10(folder)


@pytest.mark.parametrize("kind", ["folder", "archive"])
def test_oversized_cifar_files_are_not_read(tmp_path, monkeypatch, kind):
    folder = _cifar_folder(tmp_path, {})
    archive = tmp_path / "c.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    monkeypatch.setattr(readers_module, "CIFAR_MAX_FILE_BYTES", 1000)  # the small batches are ~6 KB
    with pytest.raises(DataFormatError, match=r"larger than any CIFAR-10 batch \(1,000 bytes at most\)"):
        read_cifar10(folder if kind == "folder" else archive)


def test_damaged_cifar_archive(tmp_path):
    folder = _cifar_folder(tmp_path, {})
    archive = tmp_path / "c.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    raw = archive.read_bytes()
    archive.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataFormatError, match="not a readable tar.gz archive"):
        read_cifar10(archive)


# ---- checksums on files the test writes ---------------------------------------------------------


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch, rng):
    """A 5-image 'mnist' in the official IDX .gz format, with its own checksum table, so the whole
    fetch -> verify -> read path runs without the real files."""
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    monkeypatch.setattr(datasets_module, "cache_dir", lambda: tmp_path / "cache")
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], np.uint8)
    table = {}
    for name in datasets_module.MNIST_FILES:
        arr = images if "images" in name else labels
        head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(d.to_bytes(4, "big") for d in arr.shape)
        with gzip.open(folder / name, "wb") as f:
            f.write(head + arr.tobytes())
        raw = (folder / name).read_bytes()
        table[f"mnist/{name}"] = (len(raw), hashlib.md5(raw).hexdigest(), hashlib.sha256(raw).hexdigest())
    monkeypatch.setattr(datasets_module, "read_checksums", lambda: table)
    datasets_module._VERIFIED.clear()
    return folder, images, labels


def test_checksummed_load_of_a_written_dataset(tiny_mnist):
    folder, images, labels = tiny_mnist
    ds = load_dataset("mnist", folder.parent, download=False)
    assert np.array_equal(ds.x_train[:, 0] * 255, images) and np.array_equal(ds.y_train, labels)


@pytest.mark.parametrize("damage, match", [
    ("flip", "is corrupt: md5"),
    ("truncate", "is truncated"),
    ("extend", "is too long"),
])
def test_checksum_catches_damage_to_a_written_file(tiny_mnist, damage, match):
    folder, _, _ = tiny_mnist
    path = folder / "t10k-labels-idx1-ubyte.gz"
    verify_file(path, "mnist/t10k-labels-idx1-ubyte.gz")  # passes (and is remembered) before the damage
    raw = bytearray(path.read_bytes())
    if damage == "flip":
        raw[-5] ^= 0x01  # same size: only the digests can tell
    elif damage == "truncate":
        raw = raw[:-1]
    else:
        raw += b"\x00"
    path.write_bytes(bytes(raw))
    with pytest.raises(ChecksumError, match=match) as err:
        load_dataset("mnist", folder.parent, download=False)
    assert str(path) in str(err.value) and isinstance(err.value, ValueError)


def test_atomic_save_then_read_npz(tmp_path):
    save_npz_atomic(tmp_path / "s.npz", ARRAYS)
    assert same_arrays(read_npz(tmp_path / "s.npz"), ARRAYS)


# ---- limits and augmentation sizes (finding 8, the library half) ----------------------------------


def test_subset_refuses_counts_outside_what_exists(tmp_path, rng):
    ds = load_dataset(_dataset_file(tmp_path / "mine.npz", rng))  # 6 train, 2 test images
    assert len(ds.subset(train=3).x_train) == 3 and len(ds.subset(test=2).x_test) == 2
    for kwargs, match in [({"train": -5}, r"expected train between 1 and 6 \(mine has 6 train images\), got -5"),
                          ({"train": 0}, "got 0"), ({"train": 7}, "got 7"), ({"test": 3}, "test between 1 and 2"),
                          ({"train": 2.5}, "got 2.5")]:
        with pytest.raises(ValueError, match=match):
            ds.subset(**kwargs)


def test_augmentation_padding_is_checked(rng):
    from minicnn.data import crop_flip, random_crop, shift

    x = rng.random((2, 1, 8, 8)).astype(np.float32)
    for make, match in [(lambda: shift(-1), r"shift: expected padding \(pixels\) >= 0, got -1"),
                        (lambda: crop_flip(-2), "crop_flip: expected padding"),
                        (lambda: shift(1.5), "got 1.5"),
                        (lambda: shift(8)(x, rng), r"random_crop: expected padding < image size 8x8, got 8"),
                        (lambda: random_crop(x[0], 1, rng), r"expected images \(N, C, H, W\)")]:
        with pytest.raises(ValueError, match=match):
            make()
    assert shift(7)(x, rng).shape == x.shape and random_crop(x, 0, rng) is x
