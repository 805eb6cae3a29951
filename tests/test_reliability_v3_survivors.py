"""Tests that kill mutants the reliability-v3 audit found surviving the suite: each asserts the rule a
plausible wrong version breaks."""

from __future__ import annotations

import numpy as np

from minicnn import functional as F
from minicnn.app.frequency import allocate_budget
from minicnn.core import Sequential
from minicnn.data.batching import iterate_batches
from minicnn.layers import DCTLinear, FrequencyBias


def test_frequency_bias_truncated_coefficients_stay_zero_when_keep_grows_again():
    bias = np.random.default_rng(0).standard_normal(5)
    layer = FrequencyBias(5, bias=bias).to(np.float64)
    layer.set_keep(2)
    assert np.all(layer.coeffs.data[2:] == 0) and np.any(layer.coeffs.data[:2] != 0)
    kept = layer.coeffs.data[:2].copy()
    layer.set_keep(5)  # more coefficients may train again, but they start at zero: nothing comes back
    assert np.all(layer.coeffs.data[2:] == 0) and np.array_equal(layer.coeffs.data[:2], kept)
    np.testing.assert_allclose(layer.spatial_weight(), F.idct(np.r_[kept, np.zeros(3)]), atol=1e-12)


def test_allocate_budget_gives_leftovers_to_the_largest_remainders():
    model = Sequential(DCTLinear(1, 2, bias=False), DCTLinear(1, 3, bias=False), DCTLinear(1, 5, bias=False))
    # floors 1/1/1, then 2 more in proportion to 2:3:5 -> 0.4/0.6/1.0: one whole to the third layer,
    # and the last one to the largest remainder (0.5 of the third; the first has 0.2, the second 0.3)
    assert allocate_budget(model, 5, floor=1, power=1.0) == {"0": 1, "1": 1, "2": 3}


def test_augmentation_differs_from_epoch_to_epoch():
    x, y = np.zeros((8, 1, 2, 2), np.float32), np.zeros(8, np.int64)
    draws = {}

    def record(xb, rng):
        draws.setdefault(epoch, []).append(rng.random())
        return xb

    for epoch in (0, 1):
        list(iterate_batches(x, y, 4, seed=3, epoch=epoch, augment=record))
    assert len(draws[0]) == 2 and draws[0] != draws[1]  # same batch index, another epoch: another draw
    again = []
    list(iterate_batches(x, y, 4, seed=3, epoch=0, augment=lambda xb, rng: again.append(rng.random()) or xb))
    assert again == draws[0]  # and the same (seed, epoch, batch) gives the same augmentation
