"""Losses: stable softmax cross-entropy, gradients, input checks; the spiral demo learns."""

import numpy as np
import pytest

from minicnn.app.spiral import train_spiral
from minicnn.gradcheck import _numeric_gradient
from minicnn.losses import MSELoss, SoftmaxCrossEntropy


def test_cross_entropy_value_and_extreme_logits():
    loss = SoftmaxCrossEntropy()
    logits = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert loss(logits, np.array([2, 0])) == pytest.approx(-(np.log(p[0, 2]) + np.log(p[1, 0])) / 2)
    extreme = np.array([[1000.0, -1000.0], [-1000.0, 1000.0]])
    assert loss(extreme, np.array([0, 1])) == pytest.approx(0.0, abs=1e-12)
    assert loss(extreme, np.array([1, 0])) == pytest.approx(2000.0)
    assert np.all(np.isfinite(loss.backward()))


@pytest.mark.parametrize("loss, target", [
    (SoftmaxCrossEntropy(), np.array([0, 3, 1])),
    (MSELoss(), np.random.default_rng(2).standard_normal((3, 4))),
])
def test_loss_gradients_match_central_differences(loss, target):
    logits = np.random.default_rng(1).standard_normal((3, 4))
    loss(logits, target)
    analytic = loss.backward()
    numeric = _numeric_gradient(lambda: np.array(loss(logits, target)), np.ones(()), logits, 1e-6)
    np.testing.assert_allclose(analytic, numeric, atol=1e-9)


@pytest.mark.parametrize("logits, labels, message", [
    (np.zeros((2, 3)), np.array([0.0, 1.0]), r"expected integer class labels of shape \(2,\), got dtype float64"),
    (np.zeros((2, 3)), np.array([0, 3]), r"expected labels in \[0, 3\), got values in \[0, 3\]"),
    (np.zeros((2, 3)), np.array([0, -1]), r"expected labels in \[0, 3\), got values in \[-1, 0\]"),
    (np.zeros((2, 3)), np.array([0, 1, 2]), r"expected labels of shape \(2,\), got \(3,\)"),
    (np.zeros(3), np.array([0]), r"expected logits \(N, K\), got shape \(3,\)"),
])
def test_cross_entropy_bad_input(logits, labels, message):
    with pytest.raises(ValueError, match="SoftmaxCrossEntropy: " + message):
        SoftmaxCrossEntropy()(logits, labels)


def test_mse_shape_mismatch():
    with pytest.raises(ValueError, match=r"MSELoss: expected target of shape \(2, 2\), got \(4,\)"):
        MSELoss()(np.zeros((2, 2)), np.zeros(4))


def test_mlp_learns_the_spiral_within_seconds():
    _, history, seconds = train_spiral(steps=600)
    assert history[-1][2] > 0.95
    assert seconds < 30
