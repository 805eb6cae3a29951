"""Optimizers reproduce hand-computed updates (PyTorch's rules); schedules; masks keep zeros."""

import math

import numpy as np
import pytest

from minicnn.core import Parameter
from minicnn.optim import SGD, Adam, CosineLR, LinearWarmup, StepLR


def param(values, grads=None):
    p = Parameter(np.array(values, dtype=np.float64))
    return p


def run_steps(opt, p, grads):
    out = []
    for g in grads:
        p.grad[...] = g
        opt.step()
        out.append(p.data.copy())
    return out


GRADS = [np.array([1.0, -2.0]), np.array([0.5, 0.5]), np.array([-1.0, 3.0])]


def test_sgd_plain_and_weight_decay():
    p = param([1.0, 2.0])
    steps = run_steps(SGD([p], lr=0.1, weight_decay=0.01), p, GRADS[:1])
    # p - lr * (g + wd p) = [1 - 0.1*(1 + 0.01), 2 - 0.1*(-2 + 0.02)]
    np.testing.assert_allclose(steps[0], [0.899, 2.198])


def test_sgd_momentum_by_hand():
    p = param([1.0, 2.0])
    steps = run_steps(SGD([p], lr=0.1, momentum=0.9), p, GRADS)
    v1 = GRADS[0]
    v2 = 0.9 * v1 + GRADS[1]
    v3 = 0.9 * v2 + GRADS[2]
    np.testing.assert_allclose(steps[0], [1.0, 2.0] - 0.1 * v1)
    np.testing.assert_allclose(steps[1], steps[0] - 0.1 * v2)
    np.testing.assert_allclose(steps[2], steps[1] - 0.1 * v3)


def test_sgd_nesterov_by_hand():
    p = param([1.0, 2.0])
    steps = run_steps(SGD([p], lr=0.1, momentum=0.9, nesterov=True), p, GRADS[:2])
    v1 = GRADS[0]
    v2 = 0.9 * v1 + GRADS[1]
    np.testing.assert_allclose(steps[0], [1.0, 2.0] - 0.1 * (GRADS[0] + 0.9 * v1))
    np.testing.assert_allclose(steps[1], steps[0] - 0.1 * (GRADS[1] + 0.9 * v2))


def test_adam_by_hand():
    p = param([1.0, 2.0])
    steps = run_steps(Adam([p], lr=0.01, weight_decay=0.1), p, GRADS)
    m = v = np.zeros(2)
    x = np.array([1.0, 2.0])
    for t, g in enumerate(GRADS, start=1):
        g = g + 0.1 * x
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        x = x - 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        np.testing.assert_allclose(steps[t - 1], x, rtol=1e-12)


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1, nesterov=True),
    lambda ps: Adam(ps, lr=0.1, weight_decay=0.1),
])
def test_masked_entries_stay_exactly_zero_even_when_mask_shrinks(make):
    g = np.random.default_rng(0)
    p = Parameter(g.standard_normal(6))
    p.mask = np.ones(6)
    opt = make([p])
    for step in range(50):
        if step == 20:  # truncate two more entries mid-run: momentum buffers must not revive them
            p.mask = np.array([1, 1, 1, 1, 0, 0.0])
            p.data *= p.mask
        p.grad[...] = g.standard_normal(6)
        opt.step()
        if step >= 20:
            assert np.all(p.data[4:] == 0)
    assert np.all(p.data[:4] != 0)


def test_optimizer_state_round_trip():
    p, q = param([1.0, 2.0]), param([1.0, 2.0])
    a = Adam([p], lr=0.01)
    run_steps(a, p, GRADS[:2])
    b = Adam([q], lr=0.5)
    q.data[...] = p.data
    b.load_state_dict(a.state_dict())
    assert b.lr == 0.01 and b.steps == 2
    assert np.array_equal(run_steps(a, p, GRADS[2:])[0], run_steps(b, q, GRADS[2:])[0])


def test_bad_optimizer_arguments():
    with pytest.raises(ValueError, match="SGD: expected a non-empty list of Parameters"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="SGD: nesterov needs momentum > 0"):
        SGD([param([1.0])], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Adam: expected lr >= 0, got -1"):
        Adam([param([1.0])], lr=-1)


def test_schedules():
    step = StepLR(0.1, step_size=10, gamma=0.5)
    assert [step(t) for t in (0, 9, 10, 25)] == [0.1, 0.1, 0.05, 0.025]
    cos = CosineLR(1.0, total=100, min_lr=0.1)
    assert cos(0) == 1.0 and cos(100) == pytest.approx(0.1) and cos(50) == pytest.approx(0.55)
    assert cos(200) == pytest.approx(0.1)
    warm = LinearWarmup(cos, warmup=4)
    assert [warm(t) for t in range(4)] == pytest.approx([cos(t) * (t + 1) / 4 for t in range(4)])
    assert warm(10) == cos(10)
    assert LinearWarmup(0.3, 2)(0) == pytest.approx(0.15)
    assert math.isclose(LinearWarmup(0.3, 2)(5), 0.3)


def _reopen_after_truncation(make_opt):
    """DCTLinear trained a few steps, truncated to 3 coefficients (set_keep), trained on, then re-opened
    to all coefficients; returns how far the re-opened entries move on one step with zero gradient."""
    from minicnn.layers import DCTLinear

    layer = DCTLinear(4, 3).to(np.float64)
    p = layer.coeffs
    opt = make_opt([p])
    g = np.random.default_rng(3)
    for step in range(6):
        if step == 3:
            layer.set_keep(3)
        p.grad[...] = g.standard_normal(p.shape) * p.mask  # what backward gives: dL/dC = M * dct(dL/dW)
        opt.step()
    truncated = ~p.mask
    layer.set_keep(p.size)  # re-open every entry
    before = p.data.copy()
    p.grad[...] = 0.0
    opt.step()
    return np.abs(p.data - before)[truncated]


OPTIMIZERS_WITH_STATE = [
    lambda ps: SGD(ps, lr=0.1, momentum=0.9),
    lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    lambda ps: Adam(ps, lr=0.1),
]


@pytest.mark.parametrize("make", OPTIMIZERS_WITH_STATE)
def test_reopened_entries_do_not_move_on_a_zero_gradient_step(make):
    moved = _reopen_after_truncation(make)
    assert moved.size == 9 and np.all(moved == 0)


@pytest.mark.parametrize("make", OPTIMIZERS_WITH_STATE)
def test_reopen_check_fails_when_buffers_are_not_masked(make, monkeypatch):
    """The test above can fail: with the buffer masking switched off, stale momentum moves the entries."""
    from minicnn import optim

    monkeypatch.setattr(optim.Optimizer, "_masked", lambda self, p, buf: buf)
    assert np.any(_reopen_after_truncation(make) > 1e-3)


@pytest.mark.parametrize("make, match", [
    (lambda ps: SGD(ps, lr=float("nan")), r"SGD: expected lr >= 0, got nan"),
    (lambda ps: SGD(ps, lr=0.1, momentum=2.0), r"SGD: expected momentum >= 0 and < 1, got 2.0"),
    (lambda ps: SGD(ps, lr=0.1, momentum=-0.1), r"expected momentum >= 0"),
    (lambda ps: SGD(ps, lr=0.1, weight_decay=-1.0), r"SGD: expected weight_decay >= 0, got -1.0"),
    (lambda ps: Adam(ps, betas=(0.9, 1.0)), r"Adam: expected betas\[1\] >= 0 and < 1, got 1.0"),
    (lambda ps: Adam(ps, betas=(0.9,)), r"Adam: expected betas \(beta1, beta2\)"),
    (lambda ps: Adam(ps, eps=0.0), r"Adam: expected eps > 0, got 0.0"),
    (lambda ps: Adam(ps, weight_decay=float("inf")), r"Adam: expected weight_decay >= 0, got inf"),
])
def test_out_of_range_hyperparameters_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make([param([1.0])])


def test_damaged_optimizer_state_is_refused_and_changes_nothing():
    p = param([1.0, 2.0])
    opt = SGD([p], lr=0.1, momentum=0.9)
    run_steps(opt, p, GRADS[:2])
    good = opt.state_dict()
    for damage, match in [
        ({"velocity.0": np.zeros(3)}, r"'velocity.0' expected finite values of shape \(2,\), got \(3,\)"),
        ({"velocity.0": np.array([np.nan, 0.0])}, "expected finite values"),
        ({"velocity.5": np.zeros(2)}, "unexpected entry 'velocity.5' for 1 parameters"),
        ({"m.0": np.zeros(2)}, "unexpected entry 'm.0'"),
        ({"lr": np.array(-1.0)}, "expected lr >= 0"),
        ({"steps": np.array(-3)}, "expected steps >= 0"),
    ]:
        other = SGD([param([1.0, 2.0])], lr=0.5, momentum=0.9)
        with pytest.raises(ValueError, match=match):
            other.load_state_dict({**good, **damage})
        assert other.lr == 0.5 and other.steps == 0 and other.velocity == {}
    del good["steps"]
    with pytest.raises(ValueError, match=r"missing \['steps'\]"):
        SGD([param([1.0, 2.0])], lr=0.5, momentum=0.9).load_state_dict(good)


def test_update_is_the_rule_alone_and_step_applies_it():
    p = Parameter(np.array([1.0, -2.0]))
    p.grad[...] = [0.5, 1.0]
    sgd = SGD([p], lr=0.1, momentum=0.9)
    np.testing.assert_allclose(sgd.update(0, p), [0.05, 0.1])  # first step: v = g
    np.testing.assert_allclose(p.data, [1.0, -2.0])  # update does not touch the weights
    np.testing.assert_allclose(sgd.update(0, p), 0.1 * (0.9 * np.array([0.5, 1.0]) + [0.5, 1.0]))
    q = Parameter(np.array([1.0, -2.0]))
    q.grad[...] = [0.5, -1.0]
    adam = Adam([q], lr=0.01)
    adam.steps = 1  # as `step` counts the step t before it calls update
    np.testing.assert_allclose(adam.update(0, q), 0.01 * np.sign([0.5, -1.0]), rtol=1e-6)  # m_hat/sqrt(v_hat) = sign
    np.testing.assert_allclose(q.data, [1.0, -2.0])
