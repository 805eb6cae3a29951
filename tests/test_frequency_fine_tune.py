"""`frequency_fine_tune` / `FrequencySchedule`: the library call behind `minicnn train --frequency BUDGET`
(issue 25), on real MNIST, with the file's own count and the reloaded file's accuracy."""

import dataclasses
import os

import numpy as np
import pytest

from minicnn import core
from minicnn.app import FitConfig, evaluate, fit, load_model
from minicnn.app.frequency import (
    FrequencySchedule,
    describe,
    frequency_fine_tune,
    frequency_layers,
    save_compressed,
)
from minicnn.models import build
from minicnn.optim import Adam

BUDGET = 1000


@pytest.fixture(scope="module")
def mnist_part():
    from minicnn.data import load_dataset, standardize

    data_dir = os.environ.get("MINICNN_DATA")
    if not data_dir or not os.path.isdir(data_dir):  # as conftest's data_dir fixture (function-scoped) does
        pytest.skip("real-data test: set MINICNN_DATA to the dataset folder (CI sets it to shared/datasets)")
    ds = load_dataset("mnist", data_dir, download=False)
    mean, std = ds.channel_stats()
    part = dataclasses.replace(ds, x_train=standardize(ds.x_train[:8000], mean, std), y_train=ds.y_train[:8000],
                               x_test=standardize(ds.x_test[:2000], mean, std), y_test=ds.y_test[:2000])
    core.manual_seed(0)
    dense = build("lenet5", c5_conv=True)  # fc1 as a conv: its DCT runs over space (experiment frequency)
    fit(dense, part, Adam(dense.parameters(), lr=1e-3), FitConfig(epochs=1, progress=False), log=None)
    return part, dense, {"dataset": "mnist", "mean": mean.tolist(), "std": std.tolist()}


def test_fine_tune_to_a_budget_gives_a_file_of_that_many_numbers(mnist_part, tmp_path):
    part, dense, described = mnist_part
    before = {n: p.data.copy() for n, p in dense.named_parameters()}
    lines = []
    schedule = FrequencySchedule(epochs=2, truncate_epochs=1.0, lr=1e-2, final_lr=1e-3)  # short: a lower lr
    model = frequency_fine_tune(dense, part, BUDGET, schedule, log=lines.append)
    for n, p in dense.named_parameters():  # the dense model is left as it was
        np.testing.assert_array_equal(p.data, before[n])
    assert lines, "fit's table lines reach the log"
    info = save_compressed(model, tmp_path / "m.fr.npz", float16=True, meta=describe("lenet5", {"c5_conv": True}, model,
                                                                                  **described))
    assert info["numbers"] == BUDGET
    loaded = load_model(tmp_path / "m.fr.npz")
    assert sum(layer.keep for _, layer in frequency_layers(loaded.model)) == BUDGET
    accuracy = evaluate(loaded.model, part.x_test, part.y_test).accuracy
    # measured 85.7% (dense after 1 epoch: 90.8%); one-shot truncation to 1,000 numbers gives ~10-30%
    assert accuracy > 0.8, f"1,000 stored numbers after 2 FR epochs on 8,000 images: {accuracy:.2%}"


def test_fine_tune_refuses_a_budget_below_the_other_numbers(mnist_part):
    part, dense, _ = mnist_part
    with pytest.raises(ValueError, match="leaves"):
        frequency_fine_tune(dense, part, 200, FrequencySchedule(epochs=1, truncate_epochs=1.0, bias_keep=None),
                            log=None)


@pytest.mark.parametrize("bad", [{"epochs": 0}, {"truncate_epochs": 3.0, "epochs": 2}, {"final_lr": 1.0},
                                 {"bias_keep": 0}])
def test_schedule_refuses_bad_settings(bad):
    with pytest.raises(ValueError, match="FrequencySchedule"):
        FrequencySchedule(**bad)
