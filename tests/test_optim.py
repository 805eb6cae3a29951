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
