"""The planned convolution kernels: every candidate of every planned operation computes the plain math,
a wrong candidate is caught through the entry point, plans round-trip through the file, `--no-tune` runs
the default alone, and `minicnn tune` plans, shows and clears."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicnn import runtime
from minicnn.cli import main
from minicnn.functional import conv_im2col as plain
from minicnn.kernels import conv as K
from minicnn.kernels import planner as planner_module
from minicnn.kernels.planner import Planner

TOL = {np.float32: 2e-4, np.float64: 1e-10}


@pytest.fixture
def fresh_planner(tmp_path, monkeypatch):
    """A planner of its own, with its own plan folder, tuning on."""
    monkeypatch.setenv(planner_module.CACHE_VARIABLE, str(tmp_path / "plans"))
    monkeypatch.delenv(planner_module.PLANS_VARIABLE, raising=False)
    monkeypatch.delenv(runtime.NO_TUNE_VARIABLE, raising=False)
    p = Planner()
    monkeypatch.setattr(planner_module, "_PLANNER", p)
    return p


def _close(a, b, dtype) -> bool:
    scale = max(1.0, float(np.max(np.abs(b))))
    return a.shape == b.shape and float(np.max(np.abs(a - b), initial=0.0)) <= TOL[dtype] * scale


@st.composite
def conv_cases(draw):
    groups_kind = draw(st.sampled_from(["one", "grouped", "depthwise"]))
    g = 1 if groups_kind == "one" else draw(st.integers(2, 3))
    c = g * draw(st.integers(1, 3)) if groups_kind != "depthwise" else g
    c = draw(st.sampled_from([c, 16 * g])) if groups_kind == "one" else c  # 16+ channels: the rows candidate
    t = g * draw(st.integers(1, 3)) if groups_kind != "depthwise" else g
    k = draw(st.sampled_from([1, 2, 3, 5]))
    dil = draw(st.integers(1, 2))
    stride = draw(st.integers(1, 2))
    pad = draw(st.integers(0, dil * (k - 1)))
    side = draw(st.integers(dil * (k - 1) + 1, 9))
    n = draw(st.integers(1, 5))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return n, c, side, t, k, stride, pad, dil, g, dtype


@settings(max_examples=40, deadline=None)
@given(conv_cases(), st.integers(0, 2**31 - 1), st.booleans())
def test_every_candidate_computes_the_plain_math(case, seed, input_grad):
    n, c, side, t, k, stride, pad, dil, g, dtype = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, side, side)).astype(dtype)
    w = rng.standard_normal((t, c // g, k, k)).astype(dtype)
    b = rng.standard_normal(t).astype(dtype)
    args = ((stride, stride), (pad, pad), (dil, dil), g)
    y = plain.conv2d_im2col(x, w, b, *args)
    for name, fn in K.forward_candidates(x, w, b, *args).items():
        got = fn()
        assert got.dtype == dtype and _close(got, y, dtype), name
    dy = rng.standard_normal(y.shape).astype(dtype)
    dy_before = dy.copy()
    dx, dw, db = plain.conv2d_im2col_backward(dy, x, w, *args)
    for name, fn in K.backward_candidates(dy, x, w, *args, input_grad).items():
        got_dx, got_dw, got_db = fn()
        assert (got_dx is None) != input_grad, name
        if input_grad:
            assert _close(got_dx, dx, dtype), name
        assert _close(got_dw, dw, dtype) and _close(got_db, db, dtype), name
    assert np.array_equal(dy, dy_before)


def test_the_candidates_include_what_the_issue_lists():
    x, w = np.zeros((1, 8, 16, 16), np.float32), np.zeros((32, 8, 3, 3), np.float32)
    names = set(K.forward_candidates(x, w, None, (1, 1), (1, 1), (1, 1), 1))
    assert {"default", "plain", "columns narrow"} <= names and any(n.startswith("columns ") for n in names)
    lenet = K.backward_candidates(np.zeros((2, 16, 10, 10)), np.zeros((2, 6, 14, 14)), np.zeros((16, 6, 5, 5)),
                                  (1, 1), (0, 0), (1, 1), 1, True)
    assert {"default", "flipped", "fft", "plain"} <= set(lenet)
    dw = K.forward_candidates(np.zeros((4, 8, 8, 8)), np.zeros((8, 1, 3, 3)), None, (1, 1), (1, 1), (1, 1), 8)
    assert {"default", "columns", "depthwise taps"} <= set(dw)
    tiny = K.forward_candidates(np.zeros((4, 3, 3, 3)), np.zeros((2, 3, 3, 3)), None, (1, 1), (0, 0), (1, 1), 1)
    assert "direct" in tiny and "fft" not in tiny


def test_plain_only_where_the_whole_batch_is_one_block_and_no_l3_block():
    w = np.zeros((64, 32, 3, 3), np.float32)
    big = K.forward_candidates(np.zeros((64, 32, 16, 16), np.float32), w, None, (1, 1), (1, 1), (1, 1), 1)
    columns = 64 * 32 * 9 * 16 * 16  # entries of the whole batch's columns
    assert ("plain" in big) == (columns <= max(K.block_sizes(4).values()))
    assert not any("L3" in name for name in big)


def test_a_wrong_candidate_is_caught_through_the_entry_point(fresh_planner, monkeypatch, capsys):
    real = K.forward_candidates

    def with_a_wrong_one(x, w, b, *args):
        candidates = dict(real(x, w, b, *args))
        default = candidates.pop("default")
        return {"default": default, "wrong": lambda: np.zeros((x.shape[0], w.shape[0], 6, 6), x.dtype),
                **candidates}

    monkeypatch.setattr(K, "forward_candidates", with_a_wrong_one)
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((4, 3, 8, 8)), rng.standard_normal((5, 3, 3, 3))
    y = K.conv2d(x, w, None)
    assert np.allclose(y, plain.conv2d_im2col(x, w, None, (1, 1), (0, 0), (1, 1), 1), atol=1e-12)
    (plan,) = fresh_planner.plans.values()
    assert plan.choice != "wrong" and "wrong" not in plan.seconds
    assert "candidate 'wrong'" in capsys.readouterr().err
    assert np.allclose(K.conv2d(x, w, None), y, atol=1e-12)  # planned: the chosen one runs, still right


def test_plans_round_trip_through_the_file(fresh_planner, monkeypatch):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((6, 4, 9, 9)).astype(np.float32), rng.standard_normal((8, 4, 3, 3)).astype(np.float32)
    y = K.conv2d(x, w, None, 1, 1)
    K.conv2d_backward(np.ones_like(y), x, w, 1, 1)
    chosen = {k: p.choice for k, p in fresh_planner.plans.items()}
    assert len(chosen) == 2 and fresh_planner.save().is_file()
    second = Planner()
    monkeypatch.setattr(planner_module, "_PLANNER", second)
    y2 = K.conv2d(x[:5], w, None, 1, 1)  # 5 images: the same batch class (8) as 6, the stored plan
    K.conv2d_backward(np.ones_like(y2), x[:5], w, 1, 1)
    assert second.measured == 0 and {k: p.choice for k, p in second.plans.items()} == chosen
    assert all(p.stored for p in second.plans.values()) and list(second.used.values()) == [False, False]


def test_no_tune_runs_only_the_default(fresh_planner, monkeypatch):
    calls = []
    real = K.forward_candidates

    def recorded(*args):
        return {name: (lambda name=name, fn=fn: calls.append(name) or fn()) for name, fn in dict(real(*args)).items()}

    monkeypatch.setattr(K, "forward_candidates", recorded)
    x, w = np.ones((4, 32, 8, 8), np.float32), np.ones((32, 32, 3, 3), np.float32)
    with runtime.temporarily(tune=False):
        K.conv2d(x, w, None, 1, 1)
    assert calls == ["default"] and not fresh_planner.plans
    K.conv2d(x, w, None, 1, 1)
    assert len(calls) > 2 and len(fresh_planner.plans) == 1


def test_batch_class_rounds_up_to_a_power_of_two():
    assert [K.batch_class(n) for n in (1, 2, 3, 50, 64, 65)] == [1, 2, 4, 64, 64, 128]


def test_block_sizes_come_from_the_caches(monkeypatch):
    from minicnn.kernels import machine

    monkeypatch.setattr(machine, "cache_sizes", lambda: machine.CacheSizes(2**15, 2**21, 2**25, "test"))
    K.block_sizes.cache_clear()
    sizes = K.block_sizes(4)
    K.block_sizes.cache_clear()  # the next caller reads the real caches
    assert sizes["L2"] == 2**19 and sizes["L2/2"] == 2**18 and sizes["2L2"] == 2**20


def test_the_no_tune_flag_reaches_the_runtime(capsys):
    assert main(["--no-tune", "tune", "lenet5"]) == 2
    assert "tuning is off" in capsys.readouterr().err
    assert runtime.tuning_enabled()  # the flag held for that run only


def test_tune_plans_shows_and_clears(fresh_planner, capsys):
    assert main(["tune", "lenet5", "--batch-size", "4"]) == 0
    out = capsys.readouterr().out
    assert "CPU:" in out and "caches: L1d" in out and "6 plans, 6 measured" in out and "6x2x2@28x28     pool" in out
    assert "0:Conv2D" in out and "3:Conv2D" in out
    assert all(len(line) <= 80 for line in out.splitlines() if not line.startswith(("plan file", "saved:")))
    assert main(["tune", "--show"]) == 0
    assert "6 stored plans" in capsys.readouterr().out
    assert main(["tune", "--clear"]) == 0
    assert "removed 1 plan file" in capsys.readouterr().out
    assert not planner_module.plan_file().exists()


def test_a_folder_where_the_plan_file_goes_is_refused_in_one_line(fresh_planner, capsys):
    """The plan file is written by minicnn.files.write_atomic: a folder (or a link) standing at its path is
    never written through; `tune` says so in one line, and the save at exit only notes it."""
    planner_module.plan_file().mkdir(parents=True)
    assert main(["tune", "lenet5", "--batch-size", "4"]) == 2
    err = capsys.readouterr().err
    assert "could not be saved" in err and "Traceback" not in err
    assert planner_module.plan_file().is_dir()
    fresh_planner.save_if_changed()
    assert "could not save the plans" in capsys.readouterr().err


@pytest.mark.parametrize("shape, expected", [((16, 32, 16, 16), "whole"), ((4, 3, 8, 8), "split")])
def test_with_two_workers_the_other_side_of_the_split_rule_is_a_candidate(shape, expected):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((64, shape[1], 3, 3)).astype(np.float32)
    args = ((1, 1), (1, 1), (1, 1), 1)
    y = plain.conv2d_im2col(x, w, None, *args)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dw, _ = plain.conv2d_im2col_backward(dy, x, w, *args)
    with runtime.temporarily(workers=2):
        forward, backward = K.forward_candidates(x, w, None, *args), K.backward_candidates(dy, x, w, *args, True)
        assert expected in forward and expected in backward
        assert _close(forward[expected](), y, np.float32)
        got_dx, got_dw, _ = backward[expected]()
    assert _close(got_dx, dx, np.float32) and _close(got_dw, dw, np.float32)


def test_plan_keys_share_a_batch_class():
    w = np.zeros((8, 4, 3, 3), np.float32)
    key = {n: K.plan_key("conv2d", np.zeros((n, 4, 9, 9), np.float32), w, (1, 1), (1, 1), (1, 1), 1)
           for n in (50, 64, 32)}
    assert key[50] == key[64] != key[32] and "batch=64" in key[50] and "image=4x9x9" in key[50]
    assert K.plan_key("conv2d", np.zeros((64, 4, 9, 9)), w.astype(np.float64), (1, 1), (1, 1), (1, 1), 1) != key[64]


def test_flippable_and_block_sizes_of_the_columns_path():
    from minicnn.kernels.conv_im2col import Variant, block_values, flippable, images_per_block

    assert flippable((8, 4, 3, 3), (1, 1), (1, 1), (1, 1)) and not flippable((8, 4, 3, 3), (2, 2), (1, 1), (1, 1))
    assert not flippable((8, 4, 3, 3), (1, 1), (3, 3), (1, 1))  # padding > E - 1: dy would be cropped
    shape = ((64, 8, 16, 16), (8, 8, 3, 3), (1, 1), (1, 1), (1, 1), 1)
    per_image = 8 * 9 * 16 * 18  # C*KH*KW * OH * Wp (wide rows)
    assert block_values(Variant(block_values=10 * per_image)) == 10 * per_image
    assert images_per_block(*shape, Variant(block_values=10 * per_image)) == 10
    assert images_per_block(*shape, Variant(block_values=1)) == 1  # at least one image


def test_the_table_marks_a_plan_measured_while_the_machine_was_busy():
    from minicnn.commands.tune import table
    from minicnn.kernels.planner import Plan

    key = "conv2d_backward|64x64x3x3:float32|batch=64|dx=True|image=64x16x16|workers=2"
    lines = table([("3:Conv2D", key)], {key: Plan("whole", {"default": 0.026, "whole": 0.025}, busy=True)})
    assert lines[1].startswith("3:Conv2D        bwd  whole!            25.00   26.00")
    assert lines[-1] == "(!: measured while other programs used the CPU: kept for this run, not stored)"
    quiet = table([("3:Conv2D", key)], {key: Plan("whole", {"default": 0.026, "whole": 0.025})})
    assert "bwd  whole" in quiet[1] and not quiet[-1].startswith("(!")


def test_the_table_shows_a_lent_plan_without_times():
    """A plan lent from another batch size has no seconds of its own: the table said so with a KeyError."""
    from minicnn.commands.tune import table
    from minicnn.kernels.planner import Plan

    key = "max_pool2d|16x2x2:float32|batch=64|image=16x10x10|workers=1"
    lines = table([("16x2x2@10x10", key)], {key: Plan("block 2L2", {}, True, lent=True)})
    assert lines[1].split()[:5] == ["16x2x2@10x10", "pool", "block", "2L2", "-"]
    assert "lent: the choice measured for another batch size" in " ".join(" ".join(lines).split())
