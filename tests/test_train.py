"""The training loop, checkpoints (atomic, exact resume), Ctrl-C and NaN handling, the CLI, LeNet-5."""

from __future__ import annotations

import dataclasses
import json
import os
import signal

import numpy as np
import pytest

from minicnn import cli, core, optim
from minicnn import layers as L
from minicnn.app import load_model
from minicnn.app.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minicnn.app.train import (
    CHECKPOINT_NAME,
    Callback,
    EpochState,
    FitConfig,
    KeepBest,
    evaluate,
    first_layer,
    fit,
    train_epoch,
)
from minicnn.data import Dataset, crop_flip, load_dataset, standardize
from minicnn.data.batching import split_validation
from minicnn.losses import SoftmaxCrossEntropy
from minicnn.models import MODELS, build, config_for


def _toy_dataset(seed: int = 0, n: int = 192) -> Dataset:
    """Two classes told apart by which half of a 12x12 image is brighter, plus noise."""
    r = np.random.default_rng(seed)
    y = r.integers(0, 2, size=n + 64)
    x = r.random((n + 64, 1, 12, 12)).astype(np.float32) * 0.5
    x[y == 0, :, :6] += 0.5
    x[y == 1, :, 6:] += 0.5
    return Dataset("toy", x[:n], y[:n], x[n:], y[n:], ["top", "bottom"])


def _toy_model() -> core.Layer:
    """Conv + pool + dropout (the engine RNG) + linear: every kind of state a checkpoint must carry."""
    return core.Sequential(L.Conv2D(1, 4, 3, padding=1), L.ReLU(), L.MaxPool2D(2), L.Flatten(),
                           L.Dropout(0.25), L.Linear(4 * 6 * 6, 2))


def _weights(model) -> list[np.ndarray]:
    return [p.data.copy() for p in model.parameters()]


class InterruptingSGD(optim.SGD):
    """SGD that sends this process a real SIGINT (Ctrl-C) right after step `at`."""

    def __init__(self, params, lr, at: int, **kwargs):
        super().__init__(params, lr, **kwargs)
        self.at = at

    def step(self) -> None:
        super().step()
        if self.steps == self.at:
            os.kill(os.getpid(), signal.SIGINT)


def _run(tmp_path, name: str, epochs: int = 3, interrupt_at: int | None = None, resume: bool = False):
    core.manual_seed(7)
    model = _toy_model()
    ds = _toy_dataset()
    if interrupt_at is None:
        opt = optim.SGD(model.parameters(), 0.05, momentum=0.9)
    else:
        opt = InterruptingSGD(model.parameters(), 0.05, at=interrupt_at, momentum=0.9)
    schedule = optim.CosineLR(0.05, epochs * 6)
    config = FitConfig(epochs=epochs, batch_size=32, seed=3, out_dir=tmp_path / name, resume=resume, progress=False)
    result = fit(model, ds, opt, config, schedule=schedule, augment=crop_flip(1), log=None)
    return model, result


def test_resume_after_ctrl_c_mid_epoch_gives_identical_weights(tmp_path):
    reference, done = _run(tmp_path, "reference")
    assert done.status == "done"
    _, stopped = _run(tmp_path, "resumed", interrupt_at=8)  # epoch 2, after its second batch
    assert stopped.status == "interrupted"
    saved = load_checkpoint(tmp_path / "resumed" / CHECKPOINT_NAME).meta
    assert saved["epoch"] == 1 and saved["partial"]["batch"] == 2
    resumed, finished = _run(tmp_path, "resumed", resume=True)
    assert finished.status == "done"
    for a, b in zip(_weights(reference), _weights(resumed), strict=True):
        assert np.array_equal(a, b)
    assert [h["train_loss"] for h in done.history] == pytest.approx([h["train_loss"] for h in finished.history])


def test_resume_after_a_finished_epoch_gives_identical_weights(tmp_path):
    reference, _ = _run(tmp_path, "reference", epochs=3)
    core.manual_seed(7)
    model = _toy_model()
    opt = optim.SGD(model.parameters(), 0.05, momentum=0.9)
    config = FitConfig(epochs=2, batch_size=32, seed=3, out_dir=tmp_path / "two", progress=False)
    fit(model, _toy_dataset(), opt, config, schedule=optim.CosineLR(0.05, 18), augment=crop_flip(1), log=None)
    resumed, result = _run(tmp_path, "two", epochs=3, resume=True)
    assert result.status == "done" and len(result.history) == 3
    for a, b in zip(_weights(reference), _weights(resumed), strict=True):
        assert np.array_equal(a, b)


def test_resume_refuses_a_different_batch_size(tmp_path):
    _run(tmp_path, "run", epochs=1)
    model = _toy_model()
    with pytest.raises(CheckpointError, match="batch_size"):
        fit(model, _toy_dataset(), optim.SGD(model.parameters(), 0.1),
            FitConfig(epochs=2, batch_size=16, seed=3, out_dir=tmp_path / "run", resume=True, progress=False), log=None)


def test_checkpoint_write_interrupted_leaves_the_old_one_intact(tmp_path, monkeypatch):
    model = _toy_model()
    opt = optim.SGD(model.parameters(), 0.1, momentum=0.9)
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, model, opt, {"model": "toy", "epoch": 1})
    before = path.read_bytes()
    for p in model.parameters():
        p.data += 1.0

    def crash_midway(file, **arrays):
        file.write(b"PK\x03\x04 half a zip file")
        raise KeyboardInterrupt  # Ctrl-C (or a crash) in the middle of writing

    monkeypatch.setattr(np, "savez", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model, opt, {"model": "toy", "epoch": 2})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_checkpoint(path).meta["epoch"] == 1
    assert [f.name for f in tmp_path.iterdir()] == ["ckpt.npz"]  # no temporary file left behind


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    class NaNAfter(SoftmaxCrossEntropy):
        calls = 0

        def forward(self, logits, labels):
            NaNAfter.calls += 1
            loss = super().forward(logits, labels)
            return float("nan") if NaNAfter.calls == 9 else loss  # 6 batches + 1 validation call, then epoch 2 batch 2

    core.manual_seed(7)
    model = _toy_model()
    config = FitConfig(epochs=3, batch_size=32, seed=3, out_dir=tmp_path, progress=False)
    result = fit(model, _toy_dataset(), optim.SGD(model.parameters(), 0.05), config, log=None, loss_fn=NaNAfter())
    assert result.status == "diverged"
    assert "nan" in result.message and "epoch 2, batch 2" in result.message and "last good checkpoint" in result.message
    saved = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    assert saved.meta["epoch"] == 1 and saved.meta["partial"] is None
    assert all(np.isfinite(p.data).all() for p in model.parameters())


def test_train_epoch_and_evaluate_learn_the_toy_task():
    core.manual_seed(0)
    model = _toy_model()
    ds = _toy_dataset(n=512)
    opt = optim.Adam(model.parameters(), 0.01)
    config = FitConfig(epochs=3, batch_size=32, progress=False)
    for epoch in range(config.epochs):
        state = train_epoch(model, ds.x_train, ds.y_train, opt, config, EpochState(epoch))
    assert state.seen == 512 and state.batch == 16 and state.images_per_s > 0
    result = evaluate(model, ds.x_test, ds.y_test)
    assert result.accuracy > 0.9 and result.predictions.shape == (64,)
    assert model.training  # evaluate restores the mode


def test_fit_writes_metrics_and_curves(tmp_path):
    _, result = _run(tmp_path, "run", epochs=2)
    out = tmp_path / "run"
    assert {"checkpoint.npz", "metrics.csv", "metrics.json", "curves.png"} <= {f.name for f in out.iterdir()}
    header = (out / "metrics.csv").read_text().splitlines()[0]
    # no val split: the test split scored the epochs, and the columns say so (issue 25)
    assert header == "epoch,lr,train_loss,train_acc,test_loss,test_acc,train_seconds,images_per_s"
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["history"] == result.history and len(result.history) == 2
    assert "val_loss" not in json.dumps(saved) and saved["summary"]["scored_split"] == "test"
    assert "test accuracy" in result.message and "wall time" in result.message
    assert not (out / "run.lock").exists()  # released when fit returns


def test_lenet5_shapes_and_parameter_count():
    model = MODELS["lenet5"]()
    assert model.num_parameters() == 61706
    assert model(np.zeros((2, 1, 28, 28), np.float32)).shape == (2, 10)
    cifar = MODELS["lenet5"](in_channels=3, image_size=32)
    assert cifar.layers[7].in_features == 16 * 6 * 6
    with pytest.raises(ValueError, match="image_size"):
        MODELS["lenet5"](image_size=8)


def test_lenet5_on_real_mnist_reaches_90_percent(data_dir):
    """4,000 real MNIST training images, 2 epochs: > 90% on 1,000 test images."""
    ds = load_dataset("mnist", data_dir, download=False).subset(4000, 1000)
    mean, std = ds.channel_stats()
    ds.x_train, ds.x_test = standardize(ds.x_train, mean, std), standardize(ds.x_test, mean, std)
    core.manual_seed(0)
    model = MODELS["lenet5"]()
    opt = optim.SGD(model.parameters(), 0.05, momentum=0.9)
    result = fit(model, ds, opt, FitConfig(epochs=2, batch_size=64, progress=False),
                 schedule=optim.CosineLR(0.05, 2 * 63), log=None)
    assert result.test.accuracy > 0.90, result.message


def test_cli_train_evaluate_predict(data_dir, tmp_path, capsys):
    """A small real-MNIST .npz (HW uint8 images, as a user might save them) through the three commands."""
    ds = load_dataset("mnist", data_dir, download=False)
    small = tmp_path / "mnist_small.npz"
    to_u8 = lambda x: (x[:, 0] * 255).round().astype(np.uint8)  # noqa: E731
    np.savez(small, x_train=to_u8(ds.x_train[:640]), y_train=ds.y_train[:640], x_test=to_u8(ds.x_test[:300]),
             y_test=ds.y_test[:300])
    out = tmp_path / "run"
    code = cli.main(["train", "--dataset", str(small), "--epochs", "1", "--out", str(out), "--no-progress"])
    assert code == 0
    text = capsys.readouterr().out
    assert "test accuracy" in text and "wall time" in text
    loaded = load_model(out / CHECKPOINT_NAME)
    assert not loaded.model.training and loaded.kind == "checkpoint" and loaded.name == "lenet5"
    assert loaded.input_shape == (1, 28, 28) and loaded.class_names == [str(k) for k in range(10)]
    digit = tmp_path / "digit.npy"
    np.save(digit, (ds.x_test[0, 0] * 255).astype(np.uint8))
    assert cli.main(["evaluate", str(out / CHECKPOINT_NAME)]) == 0
    text = capsys.readouterr().out
    assert "recall" in text and (out / "confusion.png").is_file()
    assert cli.main(["predict", str(out / CHECKPOINT_NAME), str(digit)]) == 0
    line = capsys.readouterr().out
    assert line.startswith(f"{digit}: ") and "%" in line


def test_load_checkpoint_errors(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"nothing")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(junk)
    with pytest.raises(CheckpointError, match="no such"):
        load_checkpoint(tmp_path / "absent.npz")


def test_predict_load_image_png_grey_rgb_resize_invert(tmp_path, rng):
    import matplotlib.image

    from minicnn.data import load_image

    digit = np.zeros((56, 56), np.float32)
    digit[10:46, 26:30] = 1.0  # a light "1" on dark, twice MNIST's size
    png = tmp_path / "one.png"
    matplotlib.image.imsave(png, 1.0 - digit, cmap="gray")  # saved dark-on-light RGBA, as people draw
    img, notes = load_image(str(png), (1, 28, 28))
    assert img.shape == (1, 28, 28) and img.dtype == np.float32
    assert any(n.startswith("inverted") for n in notes) and any("56x56 to 28x28" in n for n in notes)
    assert img[0, 14, 14] > 0.8 and img[0, 2, 2] < 0.1  # the stroke, softened by the area-aware shrink
    chw = rng.random((3, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", chw)
    same, notes = load_image(str(tmp_path / "x.npy"), (3, 32, 32))
    assert np.allclose(same, chw) and notes == []


def test_load_model_reloads_a_frequency_regularised_checkpoint(tmp_path):
    from minicnn.app.frequency import to_frequency

    model = to_frequency(MODELS["lenet5"]())
    for layer in model.modules():
        if hasattr(layer, "set_keep"):
            layer.set_keep(0.1)
    path = tmp_path / "fr.ckpt.npz"
    save_checkpoint(path, model, meta={"model": "lenet5", "model_config": {}})
    loaded = load_model(path)
    rebuilt = loaded.model
    assert loaded.frequency == {"biases": False}
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    model.eval()
    assert np.array_equal(rebuilt(x), model(x))
    assert any(hasattr(m, "coeffs") for m in rebuilt.modules())


class _Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_batch_start(self, step, model):
        self.events.append(("start", step))

    def on_batch_end(self, step, model, state):
        self.events.append(("end", step, state.batch))

    def on_epoch_end(self, epoch, model, row):
        self.events.append(("epoch", epoch, row["epoch"]))


def test_fit_callbacks_eval_every_and_max_steps():
    core.manual_seed(0)
    model, ds = _toy_model(), _toy_dataset(n=192)  # 6 batches of 32 per epoch
    recorder = _Recorder()
    opt = optim.SGD(model.parameters(), 0.05)
    config = FitConfig(epochs=3, batch_size=32, eval_every=2, max_steps=9, progress=False)
    result = fit(model, ds, opt, config, callbacks=[recorder], log=None)
    assert result.status == "done" and opt.steps == 9
    starts = [e[1] for e in recorder.events if e[0] == "start"]
    assert starts == list(range(9))  # before each step, with the optimizer's step count
    assert [e[1:] for e in recorder.events if e[0] == "epoch"] == [(0, 1), (1, 1.5)]
    # rows after batches 2 and 4 of each epoch, at each epoch end; the budget ends epoch 2 after 3 batches
    assert [h["epoch"] for h in result.history] == pytest.approx([1 / 3, 2 / 3, 1, 1 + 1 / 3, 1.5])
    assert all(0 <= h["train_acc"] <= 1 and h["train_seconds"] > 0 for h in result.history)
    assert result.test is not None


def test_fit_input_grad_is_explicit_and_restored():
    core.manual_seed(0)
    model, ds = _toy_model(), _toy_dataset(n=64)
    seen = []

    class Spy(Callback):
        def on_batch_start(self, step, model):
            seen.append(first_layer(model).input_grad)

    for flag in (False, True):
        config = FitConfig(epochs=1, batch_size=32, input_grad=flag, progress=False)
        fit(model, ds, optim.SGD(model.parameters(), 0.01), config, callbacks=[Spy()], log=None)
        assert first_layer(model).input_grad is True  # restored
        train_epoch(model, ds.x_train, ds.y_train, optim.SGD(model.parameters(), 0.01), config, EpochState(0),
                    callbacks=[Spy()])
        assert first_layer(model).input_grad is True
    assert seen == [False, False, False, False, True, True, True, True]  # train_epoch follows the config too


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("epochs", 0, "epochs an integer >= 1"), ("epochs", 2.0, "epochs an integer >= 1"),
    ("epochs", True, "epochs an integer >= 1"), ("batch_size", -3, "batch_size an integer >= 1"),
    ("seed", -1, "seed an integer >= 0"), ("eval_every", 0, "eval_every an integer >= 1 or None"),
    ("max_steps", "5", "max_steps an integer >= 1 or None"), ("resume", 1, "resume True or False"),
    ("progress", None, "progress True or False"), ("input_grad", "no", "input_grad True or False"),
    ("out_dir", 3, "out_dir a path"),
])
def test_fit_config_refuses_bad_settings_naming_field_expected_and_received(field, value, expected):
    settings = {"epochs": 1, field: value}
    with pytest.raises(ValueError, match=f"FitConfig: expected {expected}.*got {value!r}"):
        FitConfig(**settings)


def test_fit_config_resume_needs_a_run_folder_and_is_frozen(tmp_path):
    with pytest.raises(ValueError, match="FitConfig: expected an out_dir .* got out_dir=None"):
        FitConfig(epochs=2, resume=True)
    config = FitConfig(epochs=2, out_dir=tmp_path, resume=True)
    with pytest.raises(AttributeError):
        config.epochs = 3  # a checked config stays checked
    assert dataclasses.replace(config, epochs=3).epochs == 3
    with pytest.raises(ValueError, match="fit: expected config a FitConfig, got dict"):
        fit(_toy_model(), _toy_dataset(), optim.SGD(_toy_model().parameters(), 0.1), {"epochs": 1})


def test_fit_history_is_the_by_hand_loop_of_train_epoch_and_evaluate():
    """fit's rows are exactly what the lecture's loop gives: train_epoch, then evaluate on the validation split,
    with the same config and objects (the data stream depends only on (seed, epoch, batch))."""
    ds = _toy_dataset()
    val = (ds.x_test[:32], ds.y_test[:32])
    config = FitConfig(epochs=3, batch_size=32, seed=5, progress=False)
    core.manual_seed(7)
    model = _toy_model()
    opt = optim.SGD(model.parameters(), 0.05, momentum=0.9)
    result = fit(model, ds, opt, config, schedule=optim.CosineLR(0.05, 18), augment=crop_flip(1), val=val, log=None)
    core.manual_seed(7)
    by_hand = _toy_model()
    opt_by_hand = optim.SGD(by_hand.parameters(), 0.05, momentum=0.9)
    for epoch, row in zip(range(config.epochs), result.history, strict=True):
        state = train_epoch(by_hand, ds.x_train, ds.y_train, opt_by_hand, config, EpochState(epoch),
                            schedule=optim.CosineLR(0.05, 18), augment=crop_flip(1))
        scored = evaluate(by_hand, *val)
        assert (row["epoch"], row["train_loss"], row["train_acc"]) == (epoch + 1, state.loss, state.accuracy)
        assert (row["val_loss"], row["val_acc"], row["lr"]) == (scored.loss, scored.accuracy, opt_by_hand.lr)
    for a, b in zip(_weights(model), _weights(by_hand), strict=True):
        assert np.array_equal(a, b)


def test_keep_best_keeps_the_weights_of_the_lowest_validation_loss():
    model = _toy_model()
    keep = KeepBest()
    for epoch, val_loss in enumerate([0.9, 0.5, 0.7]):
        for p in model.parameters():
            p.data[...] = epoch
        keep.on_epoch_end(epoch, model, {"val_loss": val_loss})
    assert (keep.epoch, keep.val_loss) == (2, 0.5)
    assert len(keep.state) == 4 and all(np.all(value == 1) for value in keep.state.values())
    assert model.parameters()[0].data.flat[0] == 2  # a copy: the model went on changing


def test_build_is_strict_and_config_for_picks_accepted_options():
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        build("nope")
    with pytest.raises(ValueError, match="unknown option"):
        build("resnet20", method="fft")
    assert build("lenet5").num_parameters() == 61706
    cfg = config_for("resnet20", (3, 32, 32), num_classes=10, width=None, method="fft")
    assert cfg == {"in_channels": 3, "image_size": 32, "num_classes": 10}


def test_load_model_errors(tmp_path):
    from minicnn.app import ModelFileError

    with pytest.raises(ModelFileError, match="no such file"):
        load_model(tmp_path / "absent.npz")
    plain = tmp_path / "plain.npz"
    model = build("lenet5")
    np.savez(plain, **model.state_dict())
    with pytest.raises(ModelFileError, match="does not name its model"):
        load_model(plain)
    loaded = load_model(plain, "lenet5")
    assert loaded.kind == "state" and loaded.input_shape is None
    x = np.zeros((1, 1, 28, 28), np.float32)
    assert np.array_equal(loaded.model(x), model.eval()(x))
    with pytest.raises(ModelFileError, match="do not fit"):
        load_model(plain, "lenet5", width=2.0)


@pytest.mark.parametrize(("n", "size", "seed"), [(10, 0, 0), (10, 3, 1), (50, 49, 7), (256, 64, 12345)])
def test_split_validation_is_disjoint_complete_and_seeded(n, size, seed):
    x = np.arange(n, dtype=np.float32).reshape(n, 1, 1, 1) * np.ones((1, 1, 2, 2), np.float32)
    y = np.arange(n) * 10  # each label names its example, so rows stay paired
    (x_train, y_train), (x_val, y_val) = split_validation(x, y, size, seed)
    assert len(x_val) == len(y_val) == size and len(x_train) == len(y_train) == n - size
    held, kept = x_val[:, 0, 0, 0].astype(int), x_train[:, 0, 0, 0].astype(int)
    assert np.array_equal(y_val, held * 10) and np.array_equal(y_train, kept * 10)
    assert not set(held) & set(kept) and sorted([*held, *kept]) == list(range(n))
    (x_again, _), (x_val_again, _) = split_validation(x, y, size, seed)
    assert np.array_equal(x_again, x_train) and np.array_equal(x_val_again, x_val)
    if 0 < size < n - 1:
        (_, _), (x_other, _) = split_validation(x, y, size, seed + 1)
        assert not np.array_equal(x_other, x_val)  # another seed, another split


@pytest.mark.parametrize(("size", "match"), [(-1, r"size an integer in \[0, 8\).*got -1"),
                                             (8, r"size an integer in \[0, 8\).*got 8"),
                                             (2.0, r".*got 2\.0"), (True, ".*got True")])
def test_split_validation_refuses_sizes_that_leave_nothing_to_train_on(size, match):
    with pytest.raises(ValueError, match=f"split_validation: expected {match}"):
        split_validation(np.zeros((8, 1, 2, 2)), np.zeros(8), size, 0)
    with pytest.raises(ValueError, match="split_validation: expected as many labels as examples"):
        split_validation(np.zeros((8, 1, 2, 2)), np.zeros(7), 2, 0)


def test_the_command_and_the_frequency_experiment_share_split_validation(data_dir, monkeypatch, tmp_path):
    """`minicnn train --val-size` and `experiment frequency --val` both hold out through split_validation."""
    from minicnn.data import batching
    from minicnn.experiments.frequency import SPLIT_SEED, load_split

    calls = []

    def spy(x, y, size, seed):
        calls.append((len(x), size, seed))
        return split(x, y, size, seed)

    split = batching.split_validation
    monkeypatch.setattr(batching, "split_validation", spy)
    rng = np.random.default_rng(0)
    npz = tmp_path / "noise.npz"
    np.savez(npz, x_train=rng.random((96, 28, 28)), y_train=rng.integers(0, 10, 96), x_test=rng.random((16, 28, 28)),
             y_test=rng.integers(0, 10, 16))
    code = cli.main(["train", "--dataset", str(npz), "--epochs", "1", "--val-size", "32", "--seed", "4",
                     "--out", str(tmp_path / "run"), "--no-progress"])
    assert code == 0 and calls == [(96, 32, 4)]
    held = load_split(500, 2000, data_dir, test_images=100)
    assert calls[1] == (60000, 500, SPLIT_SEED) and len(held.val[1]) == 500 and len(held.data.y_train) == 2000
