"""minicnn.files: round trips, atomic saves, a damaged file refused with one clear message, and every
file read (and opened) once, by `read_npz` and by `load_model`. (More damage cases, crafted headers and
the dataset readers: tests/test_reliability_data.py.)"""

from __future__ import annotations

import builtins
import io
import os
from pathlib import Path

import numpy as np
import pytest

from minicnn import layers as L
from minicnn.app.checkpoint import checkpoint_from_arrays, load_checkpoint, save_checkpoint
from minicnn.app.frequency import describe, save_compressed, to_frequency
from minicnn.app.loading import load_model
from minicnn.core import Sequential
from minicnn.files import FileFormatError, read_npy, read_npz, save_npz_atomic
from minicnn.models import build

ARRAYS = {
    "f32": np.arange(12, dtype=np.float32).reshape(3, 4),
    "f64": np.linspace(-1, 1, 7),
    "i64": np.array([-(2**40), 0, 2**40]),
    "u8": np.arange(256, dtype=np.uint8),
    "flags": np.array([True, False, True]),
    "text": np.array('{"a": 1}'),
    "empty": np.zeros((0, 3), np.float32),
    "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    "scalar": np.float64(2.5),
}


def _same(got: dict, want: dict) -> bool:
    return set(got) == set(want) and all(
        np.asarray(want[k]).dtype == got[k].dtype and np.array_equal(got[k], want[k]) for k in want)


def test_save_then_read_npz_gives_the_arrays_back(tmp_path):
    save_npz_atomic(tmp_path / "a.npz", ARRAYS)
    got = read_npz(tmp_path / "a.npz", keys=("f32", "text"))
    assert _same(got, ARRAYS)
    assert got["fortran"].flags.f_contiguous and got["f32"].flags.writeable


def test_read_npy_round_trip(tmp_path):
    for name, array in ARRAYS.items():
        np.save(tmp_path / f"{name}.npy", array)
        got = read_npy(tmp_path / f"{name}.npy")
        assert got.dtype == np.asarray(array).dtype and np.array_equal(got, array), name


def test_layer_save_and_load_round_trip_through_files(tmp_path):
    net = Sequential(L.Conv2D(1, 2, 3), L.BatchNorm2D(2), L.ReLU())
    net.save(tmp_path / "net.npz")
    other = Sequential(L.Conv2D(1, 2, 3), L.BatchNorm2D(2), L.ReLU())
    other.load(tmp_path / "net.npz")
    assert _same(other.state_dict(), net.state_dict())


def test_exact_refuses_other_arrays(tmp_path):
    save_npz_atomic(tmp_path / "m.npz", {"manifest": np.zeros(2, np.uint8), "payload": np.zeros(3), "x": np.ones(1)})
    keys = ("manifest", "payload")
    assert set(read_npz(tmp_path / "m.npz", keys=keys)) == {"manifest", "payload", "x"}
    with pytest.raises(FileFormatError, match=r"m\.npz: model file holds \['x'\] besides \['manifest', 'payload'\]$"):
        read_npz(tmp_path / "m.npz", what="model file", keys=keys, exact=True)
    with pytest.raises(FileFormatError, match=r"model file lacks \['meta'\]; it holds"):
        read_npz(tmp_path / "m.npz", what="model file", keys=("meta",), exact=True)


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "text"])
def test_a_damaged_file_is_refused_with_one_clear_message(tmp_path, damage):
    path = tmp_path / "d.npz"
    save_npz_atomic(path, {"w": np.arange(1000, dtype=np.float64)})
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[len(data) // 3] ^= 0x10  # inside the array's bytes: the zip CRC check finds it
    elif damage == "empty":
        data = bytearray()
    else:
        data = bytearray(b"not an archive at all")
    path.write_bytes(bytes(data))
    with pytest.raises(FileFormatError) as caught:
        read_npz(path, what="layer state")
    message = str(caught.value)
    assert message.startswith(f"{path}: not a readable layer state (") and "\n" not in message
    assert isinstance(caught.value, ValueError)


def test_atomic_save_leaves_old_file_when_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    save_npz_atomic(path, {"a": np.arange(3)})

    def broken_savez(f, **arrays):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        save_npz_atomic(path, {"a": np.arange(5)})
    monkeypatch.undo()
    assert np.array_equal(read_npz(path)["a"], np.arange(3))
    assert os.listdir(tmp_path) == ["ckpt.npz"]  # temporary file removed


def test_atomic_save_gives_normal_file_permissions(tmp_path):
    path = tmp_path / "w.npz"
    save_npz_atomic(path, {"a": np.zeros(1)})
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


# ---- each file opened once -----------------------------------------------------------------------------

@pytest.fixture
def opens(monkeypatch):
    """Paths opened through open() / io.open() (what zipfile and np.load use), counted per file name."""
    counts: dict[str, int] = {}
    real = builtins.open

    def counting(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)):
            name = Path(file).name
            counts[name] = counts.get(name, 0) + 1
        return real(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting)
    monkeypatch.setattr(io, "open", counting)
    return counts


def test_read_npz_opens_the_file_once(tmp_path, opens):
    save_npz_atomic(tmp_path / "a.npz", ARRAYS)
    opens.clear()
    read_npz(tmp_path / "a.npz")
    assert opens == {"a.npz": 1}


def test_load_model_opens_a_checkpoint_once(tmp_path, opens):
    model = build("lenet5")
    save_checkpoint(tmp_path / "c.npz", model, None, {"model": "lenet5", "model_config": {}})
    opens.clear()
    loaded = load_model(tmp_path / "c.npz")
    assert opens == {"c.npz": 1}
    assert loaded.kind == "checkpoint" and _same(loaded.model.state_dict(), model.state_dict())


def test_load_model_opens_a_state_dict_once(tmp_path, opens):
    model = build("lenet5")
    model.save(tmp_path / "s.npz")
    opens.clear()
    loaded = load_model(tmp_path / "s.npz", "lenet5")
    assert opens == {"s.npz": 1}
    assert loaded.kind == "state" and _same(loaded.model.state_dict(), model.state_dict())


def test_load_model_opens_a_compressed_file_once(tmp_path, opens):
    model = to_frequency(build("lenet5")).eval()
    save_compressed(model, tmp_path / "m.fr.npz", meta=describe("lenet5", {}, model))
    opens.clear()
    assert load_model(tmp_path / "m.fr.npz").kind == "compressed"
    assert opens == {"m.fr.npz": 1}


def test_checkpoint_from_arrays_is_load_checkpoint_without_the_read(tmp_path):
    model = build("lenet5")
    save_checkpoint(tmp_path / "c.npz", model, None, {"model": "lenet5", "epoch": 3})
    arrays = read_npz(tmp_path / "c.npz")
    kept = dict(arrays)
    from_arrays, loaded = checkpoint_from_arrays(arrays, tmp_path / "c.npz"), load_checkpoint(tmp_path / "c.npz")
    assert from_arrays.meta == loaded.meta and from_arrays.meta["epoch"] == 3
    assert _same(from_arrays.model_state, loaded.model_state)
    assert set(arrays) == set(kept)  # the caller's dict is not changed
