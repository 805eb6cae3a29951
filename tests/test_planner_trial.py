"""A planner trial: a new plan is measured on part of the batch, and only the chosen candidate runs on the
whole. The losers never see the whole batch, the result is the whole batch's, the planning seconds count
the trial's calls, and through the conv entry points the numbers stay the plain math's."""

from __future__ import annotations

import time

import numpy as np
import pytest

from minicnn import runtime
from minicnn.functional import conv_im2col as plain
from minicnn.kernels import conv as K
from minicnn.kernels import planner as planner_module
from minicnn.kernels.planner import Planner


@pytest.fixture()
def fresh_planner(tmp_path, monkeypatch):
    monkeypatch.setenv(planner_module.CACHE_VARIABLE, str(tmp_path / "plans"))
    monkeypatch.delenv(planner_module.PLANS_VARIABLE, raising=False)
    monkeypatch.delenv(runtime.NO_TUNE_VARIABLE, raising=False)
    p = Planner()
    monkeypatch.setattr(planner_module, "_PLANNER", p)
    return p


def _calls(log: list, size: int, delays: dict[str, float]):
    def make(name, delay):
        def fn():
            log.append((name, size))
            time.sleep(delay * size)
            return np.arange(float(size))
        return fn
    return {name: make(name, delay) for name, delay in delays.items()}


def test_the_losers_run_only_on_the_trial_and_the_winner_once_on_the_whole(fresh_planner):
    log = []
    delays = {"default": 0.002, "fast": 0.0, "slow": 0.004}
    result = fresh_planner.run("op|t", _calls(log, 40, delays), (1, 1), lambda: _calls(log, 10, delays))
    assert np.array_equal(result, np.arange(40.0))  # the whole batch's result
    assert [call for call in log if call[1] == 40] == [("fast", 40)]
    assert {name for name, size in log if size == 10} == set(delays)
    assert fresh_planner.plans["op|t"].choice == "fast"
    assert fresh_planner.planning_seconds >= 10 * (0.002 + 0.004)  # the trial's calls, all of them
    log.clear()
    fresh_planner.run("op|t", _calls(log, 40, delays), (1, 1), lambda: pytest.fail("no trial once planned"))
    assert log == [("fast", 40)]


def test_a_trial_of_none_measures_the_whole(fresh_planner):
    log = []
    fresh_planner.run("op|n", _calls(log, 8, {"default": 0.001, "fast": 0.0}), (1, 1), lambda: None)
    assert {size for _, size in log} == {8} and fresh_planner.plans["op|n"].choice == "fast"


def test_trial_images_cover_the_largest_block_and_never_more_than_half():
    x_shape, w_shape, args = (64, 32, 16, 16), (64, 32, 3, 3), ((1, 1), (1, 1), (1, 1), 1)
    specs = K.forward_specs(x_shape, w_shape, 4, *args, 1, 1)
    part = K.trial_images(x_shape, w_shape, *args, specs, 1)
    blocks = [K.images_per_block(x_shape, w_shape, *args, s) for _, s in specs if isinstance(s, K.Variant)]
    assert part is None or (max(blocks) <= part <= 32 and part >= 64 // K.TRIAL_FRACTION)
    assert K.trial_images((3, 32, 16, 16), w_shape, *args, specs, 1) is None  # too small to part


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_convolutions_planned_on_a_trial_give_the_plain_numbers(fresh_planner, dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 16, 24, 24)).astype(dtype)
    w = rng.standard_normal((16, 16, 3, 3)).astype(dtype)
    args = (1, 1, 1, 1)
    specs = K.forward_specs(x.shape, w.shape, x.itemsize, (1, 1), (1, 1), (1, 1), 1, 1, 1)
    assert K.trial_images(x.shape, w.shape, (1, 1), (1, 1), (1, 1), 1, specs, 1) is not None  # a trial runs
    with runtime.temporarily(workers=1, blas_threads=1):
        y = K.conv2d(x, w, None, *args)
        dy = rng.standard_normal(y.shape).astype(dtype)
        dx, dw, db = K.conv2d_backward(dy, x, w, *args)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(y, plain.conv2d_im2col(x, w, None, (1, 1), (1, 1), (1, 1), 1), rtol=tol, atol=tol)
    for got, want in zip((dx, dw, db), plain.conv2d_im2col_backward(dy, x, w, (1, 1), (1, 1), (1, 1), 1),
                         strict=True):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * 10)
    assert fresh_planner.measured == 2
    part = K.trial_images(x.shape, w.shape, (1, 1), (1, 1), (1, 1), 1, specs, 1)
    trial = K.forward_candidates(x, w, None, (1, 1), (1, 1), (1, 1), 1, (1, 1), part)
    assert trial.scale == 64 / part and trial.args[1].shape[0] == part


def test_a_trials_candidates_split_the_images_as_the_whole_call_splits_the_batch(monkeypatch):
    """A first layer's trial (8 of 64 images) is too small to split by itself; with 2 workers the whole
    call is split, so its candidates must run split in the trial too, or the trial measures another call."""
    seen = []
    real = K.conv2d_im2col

    def spy(*args, variant, **kwargs):
        seen.append(variant.parts)
        return real(*args, variant=variant, **kwargs)

    real_backward = K.conv2d_im2col_backward

    def spy_backward(*args, variant, **kwargs):
        seen.append(("backward", variant.parts))
        return real_backward(*args, variant=variant, **kwargs)

    monkeypatch.setattr(K, "conv2d_im2col", spy)
    monkeypatch.setattr(K, "conv2d_im2col_backward", spy_backward)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((64, 3, 32, 32)).astype(np.float32)
    w = rng.standard_normal((32, 3, 3, 3)).astype(np.float32)
    geometry = ((1, 1), (1, 1), (1, 1))
    with runtime.temporarily(workers=2, blas_threads=1):
        specs = K.forward_specs(x.shape, w.shape, x.itemsize, *geometry, 1, 2, 1)
        part = K.trial_images(x.shape, w.shape, *geometry, 1, specs, 2)
        assert part is not None and K._parts(K._macs((part, *x.shape[1:]), w.shape, *geometry)) == 1
        assert K._parts(K._macs(x.shape, w.shape, *geometry)) == 2
        trial = K.forward_candidates(x, w, None, *geometry, 1, (2, 1), part)
        y = trial["default"]()
        dy = rng.standard_normal(y.shape).astype(np.float32)
        dx, dw, db = K.backward_candidates(np.concatenate([dy] * (64 // part)), x, w, *geometry, 1, True, (2, 1),
                                           part)["default"]()
    assert seen == [2, ("backward", 2)]  # the whole call's split, not the trial's own (1)
    np.testing.assert_allclose(y, plain.conv2d_im2col(x[:part], w, None, *geometry, 1), rtol=1e-4, atol=1e-4)
    want = plain.conv2d_im2col_backward(dy, x[:part], w, *geometry, 1)
    for got, expected in zip((dx, dw, db), want, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)


def test_a_trials_seconds_are_scaled_to_the_whole_batch(fresh_planner):
    class Part(dict):
        scale = 4.0

    log = []
    trial = Part(_calls(log, 10, {"default": 0.002, "fast": 0.0}))
    fresh_planner.run("op|s", _calls(log, 40, {"default": 0.002, "fast": 0.0}), (1, 1), lambda: trial)
    assert fresh_planner.plans["op|s"].seconds["default"] >= 4 * 10 * 0.002
