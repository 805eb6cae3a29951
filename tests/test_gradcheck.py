"""The gradient checker itself must be able to fail."""

import numpy as np
import pytest

from minicnn.core import Layer, Parameter
from minicnn.gradcheck import gradcheck, numeric_gradient, rel_errors
from minicnn.gradcheck_cases import CASES, run_case
from minicnn.layers import Linear


class WrongBackward(Layer):
    """y = x^2 with a backward that forgets the factor 2."""

    def forward(self, x):
        self._x = x
        return x * x

    def backward(self, dy):
        return dy * self._x


class WrongParamGrad(Layer):
    """y = w * x; dx right, dw wrong sign."""

    def __init__(self):
        super().__init__()
        self.w = Parameter(np.array([1.5, -0.5]))

    def forward(self, x):
        self._x = x
        return x * self.w.data

    def backward(self, dy):
        self.w.grad -= (dy * self._x).sum(0)
        return dy * self.w.data


class NoisyBackward(Layer):
    def forward(self, x):
        return 2 * x

    def backward(self, dy):
        return 2 * dy + np.random.default_rng().normal(0, 1e-3, dy.shape) * (dy != 0)


class LeakyZeroUpstream(Layer):
    def forward(self, x):
        return 2 * x

    def backward(self, dy):
        return 2 * dy + 1e-3


def test_passes_a_correct_layer_and_reports_worst_entry():
    report = gradcheck(Linear(3, 2).to(np.float64), np.random.default_rng(0).standard_normal((4, 3)))
    assert report.ok
    assert [t.name for t in report.tensors] == ["input", "weight", "bias"]
    assert report.max_rel_error < 1e-7
    assert "PASS" in report.table()


def test_detects_wrong_input_gradient():
    with pytest.raises(AssertionError, match="FAIL"):
        gradcheck(WrongBackward(), np.random.default_rng(0).standard_normal((3, 3)) + 2)
    report = gradcheck(WrongBackward(), np.full((2, 2), 1.0), raise_on_fail=False)
    assert not report.ok
    assert report.tensors[0].max_rel_error == pytest.approx(0.5)


def test_detects_wrong_parameter_gradient():
    report = gradcheck(WrongParamGrad(), np.random.default_rng(0).standard_normal((3, 2)), raise_on_fail=False)
    assert report.tensors[0].max_rel_error < 1e-8  # input part is right
    assert report.tensors[1].name == "w" and report.tensors[1].max_rel_error == pytest.approx(2.0)  # |a - (-a)| / |a|
    assert not report.ok


def test_detects_nondeterministic_backward():
    report = gradcheck(NoisyBackward(), np.ones((2, 3)), raise_on_fail=False)
    assert not report.deterministic and not report.ok


def test_detects_nonzero_gradient_for_zero_upstream():
    report = gradcheck(LeakyZeroUpstream(), np.ones((2, 3)), raise_on_fail=False)
    assert not report.zero_upstream_ok and not report.ok


class WrongOnlyForZeroUpstream(Layer):
    """Right gradients for every non-zero dy, but a non-zero dx for dy = 0: only the zero-upstream check
    can see it (the central differences agree)."""

    def forward(self, x):
        return 2 * x

    def backward(self, dy):
        return 2 * dy if np.any(dy) else np.ones_like(dy)


def test_the_zero_upstream_check_alone_fails_a_layer():
    report = gradcheck(WrongOnlyForZeroUpstream(), np.ones((2, 3)), raise_on_fail=False)
    assert report.max_rel_error < 1e-8 and report.deterministic
    assert not report.zero_upstream_ok and not report.ok
    assert "zero upstream -> zero gradients: NO" in report.table() and "FAIL" in report.table()


def test_refuses_float32_input_and_parameters():
    with pytest.raises(ValueError, match=r"gradcheck\(Linear\): expected a float64 input .* got float32"):
        gradcheck(Linear(3, 2).to(np.float64), np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"expected float64 parameters, got weight as float32; call layer.to\(np.float64\)"):
        gradcheck(Linear(3, 2), np.zeros((2, 3)))


def test_refuses_nan_input():
    x = np.zeros((2, 3))
    x[1, 1] = np.nan
    with pytest.raises(ValueError, match="expected a finite input"):
        gradcheck(Linear(3, 2).to(np.float64), x)


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_registered_layer_passes_gradcheck(name):
    report = run_case(name, seed=3)
    assert report.ok, report.table()
    assert report.max_rel_error < 1e-6


def test_the_command_fits_80_columns_and_ends_with_a_total(capsys):
    from minicnn.cli import main
    from minicnn.gradcheck_cases import CASES

    assert main(["gradcheck", "all"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) <= 80
    assert lines[-1] == f"checked {len(CASES)} layers: {len(CASES)} passed, 0 failed"
    assert sum(line.startswith("result: PASS") for line in lines) == len(CASES)


def test_numeric_gradient_and_rel_errors_are_public_and_correct():
    a = np.array([[1.0, -2.0], [0.5, 3.0]])
    g = np.array([[1.0, 2.0], [-1.0, 0.5]])
    numeric = numeric_gradient(lambda: a**3, g, a, 1e-5)  # d/da sum(g a^3) = 3 g a^2
    np.testing.assert_allclose(numeric, 3 * g * a**2, rtol=1e-8)
    assert np.array_equal(a, [[1.0, -2.0], [0.5, 3.0]])  # every entry put back
    err, worst = rel_errors(np.array([1.0, 2.0, 0.0]), np.array([1.0, 1.0, 0.0]))
    np.testing.assert_allclose(err, [0.0, 0.5, 0.0])
    assert worst == (1,)


def test_numeric_gradient_perturbs_a_strided_view_in_place():
    """A transposed (non-contiguous) array: reshape(-1) would perturb a copy and report a zero gradient."""
    from minicnn.gradcheck import numeric_gradient

    a = np.arange(6.0).reshape(2, 3).T  # (3, 2), not C-contiguous
    g = np.ones((3, 2))
    grad = numeric_gradient(lambda: a ** 2, g, a, 1e-6)
    assert np.allclose(grad, 2 * a, atol=1e-6)
    assert np.array_equal(a, np.arange(6.0).reshape(2, 3).T)  # restored
