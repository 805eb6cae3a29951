"""Losses: stable softmax cross-entropy, gradients, input checks; the spiral demo learns."""

import numpy as np
import pytest

from minicnn.app.spiral import train_spiral
from minicnn.gradcheck import numeric_gradient
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
    numeric = numeric_gradient(lambda: np.array(loss(logits, target)), np.ones(()), logits, 1e-6)
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


# ---- label smoothing: PyTorch's numbers, gradients, the per-pixel path -------------------------------------------

# torch.nn.functional.cross_entropy(z, y, label_smoothing=0.1) in float64 (torch 2, /work/venv-torch), and z.grad
SMOOTH_LOGITS = np.array([[1.0, 2.0, 3.0, -1.0], [0.5, -0.5, 0.0, 2.0], [3.0, 0.0, 0.0, 0.0]])
SMOOTH_LABELS = np.array([2, 0, 3])
TORCH_SMOOTH_LOSS = 1.8413160841594505
TORCH_SMOOTH_GRAD = np.array([
    [0.02131560576580143, 0.07226083905293358, -0.08925565905604821, -0.0043207857626868474],
    [-0.2567025692305828, 0.010660563312041089, 0.022982308079375284, 0.22305969783916654],
    [0.2816828355204694, 0.006105721493176915, 0.006105721493176915, -0.2938942785068231]])
# per pixel: z = sin(arange(24)).reshape(2, 3, 2, 2), label_smoothing=0.25
PIXEL_LABELS = np.array([[[0, 1], [2, 0]], [[1, 1], [2, 2]]])
TORCH_PIXEL_LOSS = 1.6773384539774034
TORCH_PIXEL_GRAD_FIRST = np.array([[-0.07410899515770458, 0.058409716807527],
                                   [0.07083625496179696, -0.06242421854731337]])  # grad[0, 0]


def test_label_smoothing_reproduces_pytorch():
    loss = SoftmaxCrossEntropy(label_smoothing=0.1)
    assert loss(SMOOTH_LOGITS, SMOOTH_LABELS) == pytest.approx(TORCH_SMOOTH_LOSS, rel=1e-12)
    np.testing.assert_allclose(loss.backward(), TORCH_SMOOTH_GRAD, rtol=1e-10, atol=1e-15)


def test_label_smoothing_per_pixel_reproduces_pytorch():
    logits = np.sin(np.arange(24.0)).reshape(2, 3, 2, 2)
    loss = SoftmaxCrossEntropy(label_smoothing=0.25)
    assert loss(logits, PIXEL_LABELS) == pytest.approx(TORCH_PIXEL_LOSS, rel=1e-12)
    np.testing.assert_allclose(loss.backward()[0, 0], TORCH_PIXEL_GRAD_FIRST, rtol=1e-10)


def test_label_smoothing_is_cross_entropy_against_the_smoothed_target():
    """Independent of the code's algebra: -(1/N) sum t log p with t built by hand."""
    e, k = 0.3, SMOOTH_LOGITS.shape[1]
    t = np.full(SMOOTH_LOGITS.shape, e / k)
    t[np.arange(3), SMOOTH_LABELS] += 1 - e
    p = np.exp(SMOOTH_LOGITS) / np.exp(SMOOTH_LOGITS).sum(1, keepdims=True)
    expected = -(t * np.log(p)).sum(1).mean()
    assert SoftmaxCrossEntropy(label_smoothing=e)(SMOOTH_LOGITS, SMOOTH_LABELS) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("shape, labels", [((3, 4), np.array([0, 3, 1])),
                                           ((2, 3, 2, 2), PIXEL_LABELS)])
def test_label_smoothing_gradient_matches_central_differences(shape, labels):
    logits = np.random.default_rng(3).standard_normal(shape)
    loss = SoftmaxCrossEntropy(label_smoothing=0.2)
    loss(logits, labels)
    analytic = loss.backward()
    numeric = numeric_gradient(lambda: np.array(loss(logits, labels)), np.ones(()), logits, 1e-6)
    np.testing.assert_allclose(analytic, numeric, atol=1e-9)


def test_zero_smoothing_is_the_plain_loss():
    plain, zero = SoftmaxCrossEntropy(), SoftmaxCrossEntropy(label_smoothing=0.0)
    assert zero(SMOOTH_LOGITS, SMOOTH_LABELS) == plain(SMOOTH_LOGITS, SMOOTH_LABELS)
    np.testing.assert_array_equal(zero.backward(), plain.backward())
    onehot = np.eye(4)[SMOOTH_LABELS]
    p = np.exp(SMOOTH_LOGITS) / np.exp(SMOOTH_LOGITS).sum(1, keepdims=True)
    np.testing.assert_allclose(plain.backward(), (p - onehot) / 3, atol=1e-15)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan"), "0.1", None])
def test_label_smoothing_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match=r"SoftmaxCrossEntropy: expected label_smoothing in \[0, 1\), got"):
        SoftmaxCrossEntropy(label_smoothing=bad)
