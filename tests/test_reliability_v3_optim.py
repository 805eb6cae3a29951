"""Optimizer edges (issue: reliability v3): each parameter once, Parameters only, no gradient = no step."""

from __future__ import annotations

import numpy as np
import pytest

from minicnn.core import Parameter
from minicnn.optim import SGD, Adam


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1), lambda ps: Adam(ps, lr=0.1)])
def test_a_parameter_listed_twice_is_refused(make):
    p = Parameter(np.ones(3))
    with pytest.raises(ValueError, match="position 1 is the one at position 0"):
        make([p, p])


def test_arrays_instead_of_parameters_get_a_clear_error():
    with pytest.raises(ValueError, match=r"got a ndarray at position 0; wrap arrays as Parameter\(array\)"):
        SGD([np.ones(3)], lr=0.1)
    with pytest.raises(ValueError, match="got a single ndarray"):
        SGD(np.ones(3), lr=0.1)
    with pytest.raises(ValueError, match="got a single Parameter"):
        Adam(Parameter(np.ones(3)))


@pytest.mark.parametrize("cls", [SGD, Adam])
def test_a_parameter_without_a_gradient_is_skipped(cls):
    used, unused = Parameter(np.ones(3)), Parameter(np.ones(2))
    opt = cls([used, unused], lr=0.1)
    unused.grad = None
    used.grad[...] = 1.0
    opt.step()
    opt.zero_grad()
    assert np.all(used.data < 1.0) and np.array_equal(unused.data, np.ones(2))
    assert unused.grad is None and not np.any(used.grad)


def test_one_sgd_step_moves_a_parameter_once():
    p = Parameter(np.ones(1))
    opt = SGD([p], lr=0.1)
    p.grad[...] = 1.0
    opt.step()
    assert p.data[0] == pytest.approx(0.9)
