"""Issue 13 probes below the command line: layer API (finding 9), damaged checkpoints and model files
(3, 11), orphaned temporary files (2), NaN checks in fit (6), library messages free of command-line
flags (10), and the missing mutant test for TailTruncation's floor."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from minicnn import core, files
from minicnn.app.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minicnn.app.loading import MAX_WIDTH, ModelFileError, load_model
from minicnn.core import Sequential
from minicnn.layers import Conv2D, Flatten, Linear, ReLU

ROOT = Path(__file__).resolve().parents[1]


# ---- 9. layer API ---------------------------------------------------------------------------------

def test_backward_refuses_a_broadcastable_dy():
    from minicnn.layers import BatchNorm2D, MaxPool2D

    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4))
    for layer in (MaxPool2D(2), BatchNorm2D(3), Flatten()):
        y = layer.forward(x)
        with pytest.raises(ValueError, match=type(layer).__name__):
            layer.backward(np.ones((1,) + y.shape[1:]))


def test_shape_errors_name_the_layer():
    from minicnn.layers import AvgPool2D, MaxPool2D

    with pytest.raises(ValueError, match=r"Linear.*expected.*5.*got.*4"):
        Linear(5, 2).forward(np.zeros((3, 4)))
    for layer in (MaxPool2D(5), AvgPool2D(5)):
        with pytest.raises(ValueError, match=type(layer).__name__):
            layer.forward(np.zeros((1, 1, 3, 3)))


@pytest.mark.parametrize("method", ["im2col", "direct", "fft"])
def test_conv_on_an_empty_batch(method):
    layer = Conv2D(2, 3, 3, method=method)
    y = layer.forward(np.zeros((0, 2, 5, 5)))
    assert y.shape == (0, 3, 3, 3)
    assert layer.backward(np.zeros((0, 3, 3, 3))).shape == (0, 2, 5, 5)
    assert not np.any(layer.weight.grad)


def test_flatten_on_an_empty_batch():
    layer = Flatten()
    assert layer.forward(np.zeros((0, 2, 3, 3))).shape == (0, 18)
    assert layer.backward(np.zeros((0, 18))).shape == (0, 2, 3, 3)


def test_nan_pixel_does_not_poison_running_mean():
    from minicnn.layers import BatchNorm2D

    bn = BatchNorm2D(2)
    x = np.ones((4, 2, 3, 3))
    x[0, 0, 0, 0] = np.nan
    with pytest.warns(RuntimeWarning, match="BatchNorm2D.*NaN"):
        y = bn.forward(x)
    assert np.isnan(y[:, 0]).all() and np.isfinite(y[:, 1]).all()  # the NaN reaches the loss, which stops fit
    assert np.all(np.isfinite(bn.running_mean)) and np.all(np.isfinite(bn.running_var))
    bn.eval()  # in eval mode the statistics are not updated: NaN in, NaN out, as in every other layer
    assert np.isnan(bn.forward(x)[0, 0, 0, 0])


def test_release_drops_every_cache_of_every_layer():
    from minicnn.gradcheck_cases import CASES

    for name, make in CASES.items():
        core.manual_seed(0)
        layer, x = make(np.random.default_rng(0))
        layer.backward(np.ones_like(layer.forward(x)))
        layer.release()
        for m in layer.modules():
            left = [k for k, v in vars(m).items() if k.startswith("_") and k not in ("_params", "_children",
                                                                                    "_buffers", "_data")
                    and not (isinstance(v, dict) and not v)]
            assert not left, (name, type(m).__name__, left)


# ---- 2. orphaned temporary files ---------------------------------------------------------------------

def test_remove_unfinished_deletes_only_this_files_temporaries(tmp_path):
    target = tmp_path / "checkpoint.npz"
    files.save_npz_atomic(target, {"a": np.arange(3)})
    orphans = [tmp_path / "checkpoint.npz.abc123.tmp", tmp_path / "checkpoint.npz.x.tmp"]
    keep = [tmp_path / "other.npz.abc.tmp", tmp_path / "checkpoint.npz", tmp_path / "checkpoint.npz.tmpx"]
    for p in orphans + keep[:1] + keep[2:]:
        p.write_bytes(b"x")
    assert sorted(files.remove_unfinished(target)) == sorted(orphans)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in orphans)
    assert files.remove_unfinished(tmp_path / "absent" / "c.npz") == []


# ---- 3/11. checkpoints and model files -----------------------------------------------------------------

def _net() -> Sequential:
    return Sequential(Conv2D(1, 2, 3), ReLU(), Flatten(), Linear(2 * 5 * 5, 3))


def _checkpoint(path: Path, **meta) -> Path:
    save_checkpoint(path, _net(), None, {"model": "lenet5", "model_config": {}, **meta})
    return path


@pytest.mark.parametrize("meta, words", [
    ("[1, 2]", "JSON object"), ("{not json", "not readable"), ('{"format": 99}', "format"),
])
def test_checkpoint_meta_must_be_a_json_object_of_this_format(tmp_path, meta, words):
    arrays = files.read_npz(_checkpoint(tmp_path / "c.npz"))
    arrays["meta"] = np.array(meta)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(CheckpointError, match=words) as e:
        load_checkpoint(tmp_path / "bad.npz")
    assert str(e.value).startswith(str(tmp_path / "bad.npz"))


@pytest.mark.parametrize("key, value", [("epoch", -1), ("epoch", "3"), ("partial", {"batch": 2}),
                                        ("input_shape", [1, 28]), ("std", [0.0]), ("class_names", "0123"),
                                        ("history", {"epoch": 1}), ("batch_size", 0), ("seconds", float("nan"))])
def test_checkpoint_meta_entries_of_the_wrong_type_are_named(tmp_path, key, value):
    path = _checkpoint(tmp_path / "c.npz", **{key: value})
    with pytest.raises(CheckpointError, match=key):
        load_checkpoint(path)


def test_a_damaged_checkpoint_is_a_value_error_naming_the_file(tmp_path):
    raw = _checkpoint(tmp_path / "c.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "cut.npz"))):
        load_checkpoint(tmp_path / "cut.npz")
    with pytest.raises(ModelFileError, match=re.escape(str(tmp_path / "cut.npz"))):
        load_model(tmp_path / "cut.npz")


@pytest.mark.parametrize("config, words", [({"width": 1e6}, "width"), ({"width": 0}, "width"),
                                           ({"num_classes": 10**9}, "num_classes"), ({"width": "wide"}, None),
                                           ([1, 2], "dict"), ({"width": float("inf")}, "width")])
def test_a_crafted_model_config_is_refused_before_building(tmp_path, config, words):
    path = tmp_path / "c.npz"
    save_checkpoint(path, _net(), None, {"model": "lenet5"})
    arrays = files.read_npz(path)
    meta = json.loads(str(arrays["meta"]))
    meta["model_config"] = config
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    with pytest.raises((ModelFileError, CheckpointError), match=words or "."):
        load_model(path)
    assert MAX_WIDTH == __import__("minicnn.commands.train", fromlist=["MAX_WIDTH"]).MAX_WIDTH


def test_no_np_load_outside_the_checked_readers():
    """Issue 13.11: every .npz/.npy a user hands us goes through files.read_npz / read_npy (no pickles,
    CRC checked, sizes checked before allocating), compressed models included (issue 21)."""
    offenders = []
    for path in (ROOT / "minicnn").rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if "np.load(" in line and not line.lstrip().startswith("#") and "`np.load" not in line:
                offenders.append(f"{rel}:{n}")
    assert not offenders, offenders


# ---- 6. fit never calls a broken model good ----------------------------------------------------------

# lr 1e30 makes the weights overflow on purpose: NumPy's overflow / invalid-value warnings of the matmul
# and the softmax are the expected symptom that fit must turn into a "diverged" stop
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")
def test_fit_stops_when_validation_goes_non_finite(tmp_path):
    from minicnn import optim
    from minicnn.app.train import FitConfig, fit
    from minicnn.data import Dataset

    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 1, 7, 7)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    model = _net()
    ds = Dataset("toy", x, y, x, y, ["a", "b", "c"])
    opt = optim.SGD(model.parameters(), 1e30, momentum=0.0)
    said, warned = [], []
    result = fit(model, ds, opt, FitConfig(epochs=2, batch_size=16, out_dir=tmp_path, progress=False),
                 log=said.append, warn=warned.append)
    assert result.status == "diverged"
    assert len(warned) == 1 and "no checkpoint was written" in warned[0]
    assert not any("stopped" in line for line in said)
    assert not (tmp_path / "checkpoint.npz").exists()


# ---- 10. library messages free of command-line flags ---------------------------------------------------

def test_library_messages_do_not_quote_command_line_flags():
    offenders = []
    for path in (ROOT / "minicnn").rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(("minicnn/commands/", "minicnn/experiments/")) or rel == "minicnn/cli.py":
            continue  # the front ends: their messages are about their own options
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"(raise|Error\(|f\").*[\"'].*\s--[a-z]", line):
                offenders.append(f"{rel}:{n}")
    assert not offenders, offenders


# ---- the missing mutant test: TailTruncation's floor ----------------------------------------------------

def test_tail_truncation_reaches_and_respects_its_floor():
    """Floor 10 with target 0.05: the 3x3 kernels (size 18) would go down to 1 coefficient, the floor
    holds them at 10 at every step; the Linear (size 50 x 10) ends at its own 5% (25), above the floor."""
    from minicnn.app.frequency import TailTruncation, frequency_layers, to_frequency

    net = to_frequency(Sequential(Conv2D(1, 2, 3), ReLU(), Flatten(), Linear(2 * 5 * 5, 10)))
    sched = TailTruncation(net, 0.05, steps=4, floor=10)
    assert {n: layer.coeffs.size for n, layer in frequency_layers(net)} == {"0": 18, "3": 500}
    for _ in range(6):
        sched.step()
        assert all(layer.keep >= 10 for _, layer in frequency_layers(net))
    assert sched.done
    assert {n: layer.keep for n, layer in frequency_layers(net)} == {"0": 10, "3": 25}
    for _, layer in frequency_layers(net):
        assert np.count_nonzero(layer.mask) == layer.keep
