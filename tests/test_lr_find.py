"""The learning-rate range test: the schedule, the suggestion rule, a real sweep, the command's files."""

import numpy as np
import pytest

from minicnn import core, optim
from minicnn.app.lr_find import SKIP_START, LRFindConfig, lr_find, suggest
from minicnn.cli import main
from minicnn.data import load_dataset, standardize
from minicnn.models import build, config_for


def test_schedule_is_exponential_from_start_to_end():
    config = LRFindConfig(start_lr=1e-4, end_lr=1.0, steps=41)
    lrs = np.array([config.lr(i) for i in range(41)])
    assert lrs[0] == pytest.approx(1e-4) and lrs[-1] == pytest.approx(1.0)
    np.testing.assert_allclose(lrs[1:] / lrs[:-1], 10 ** (4 / 40))  # a constant ratio per step


def test_suggestion_is_the_steepest_descent_before_the_minimum():
    lrs = np.logspace(-5, 1, 61)
    log_lr = np.log10(lrs)
    loss = 2.3 - 2.0 / (1 + np.exp(-(log_lr + 2) * 4))  # steepest fall at lr = 1e-2
    loss[log_lr > 0] += 50 * log_lr[log_lr > 0]  # then an explosion, steeper upward, never chosen
    assert suggest(lrs, loss) == pytest.approx(1e-2, rel=0.05)
    assert suggest(lrs, np.linspace(1, 2, 61)) is None  # never falls: no suggestion
    assert suggest(lrs[:SKIP_START + 1], loss[:SKIP_START + 1]) is None


@pytest.mark.parametrize("bad", [dict(start_lr=1.0, end_lr=0.1), dict(steps=5), dict(beta=1.0),
                                 dict(diverge_factor=1.0)])
def test_config_refuses_bad_settings(bad):
    with pytest.raises(ValueError, match="LRFindConfig: expected"):
        LRFindConfig(**bad)


def test_sweep_on_mnist_stops_when_the_loss_explodes_and_restores_the_weights(data_dir):
    ds = load_dataset("mnist", data_dir, download=False).subset(train=2000)
    x = standardize(ds.x_train, *ds.channel_stats())
    core.manual_seed(0)
    model = build("lenet5", **config_for("lenet5", ds.input_shape, num_classes=10))
    before = model.state_dict()
    result = lr_find(model, x, ds.y_train, optim.SGD(model.parameters(), 1e-4, momentum=0.9),
                     config=LRFindConfig(start_lr=1e-4, end_lr=1e4, steps=120, batch_size=32))
    assert result.stopped in ("diverged", "non-finite loss") and len(result.lrs) < 120
    assert len(result.lrs) == len(result.losses) == len(result.smoothed)
    assert result.suggestion is not None and 1e-3 < result.suggestion < 10
    assert result.smoothed.min() < result.smoothed[0] - 0.05  # the loss did fall along the sweep
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_command_prints_within_80_columns_and_never_overwrites(data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lr_find.png").write_bytes(b"someone else's picture")
    args = ["lr-find", "--dataset", "mnist", "--model", "lenet5", "--steps", "40", "--data-dir", str(data_dir)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert all(len(line) <= 80 for line in printed.splitlines())
    assert "curve in lr_find-2.png" in printed and "suggested --lr" in printed or "no suggestion" in printed
    assert (tmp_path / "lr_find.png").read_bytes() == b"someone else's picture"
    assert (tmp_path / "lr_find-2.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(args + ["--out", "lr_find.png"]) == 2
    assert "exists; give another name or --overwrite" in capsys.readouterr().err
    assert (tmp_path / "lr_find.png").read_bytes() == b"someone else's picture"
    assert main(args + ["--out", "lr_find.png", "--overwrite"]) == 0
    assert (tmp_path / "lr_find.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
