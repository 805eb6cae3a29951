"""Per-pixel softmax cross-entropy and the soft Dice loss: values by hand and by brute force, gradients by
central differences, classification unchanged, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from minicnn.gradcheck import numeric_gradient
from minicnn.losses import SoftDiceLoss, SoftmaxCrossEntropy

EPS = 1e-6


def _pixels(rng, n=2, k=3, h=3, w=4):
    return rng.standard_normal((n, k, h, w)), rng.integers(0, k, (n, h, w))


def _numeric(loss, logits, labels):
    return numeric_gradient(lambda: np.array(loss(logits, labels)), np.ones(()), logits, EPS)


def test_per_pixel_cross_entropy_is_the_mean_over_every_pixel(rng):
    logits, labels = _pixels(rng)
    n, k, h, w = logits.shape
    total = 0.0
    for i in range(n):  # brute force: one softmax per pixel
        for r in range(h):
            for c in range(w):
                z = logits[i, :, r, c]
                total += np.log(np.exp(z).sum()) - z[labels[i, r, c]]
    assert SoftmaxCrossEntropy()(logits, labels) == pytest.approx(total / (n * h * w), rel=1e-12)


def test_per_pixel_cross_entropy_equals_classification_on_the_pixels_as_rows(rng):
    logits, labels = _pixels(rng)
    rows = logits.transpose(0, 2, 3, 1).reshape(-1, logits.shape[1])  # (N*H*W, K)
    flat = SoftmaxCrossEntropy()
    per_pixel = SoftmaxCrossEntropy()
    assert per_pixel(logits, labels) == flat(rows, labels.reshape(-1))
    np.testing.assert_array_equal(per_pixel.backward(), flat.backward().reshape(2, 3, 4, 3).transpose(0, 3, 1, 2))


def test_hand_worked_pixel_example():
    """Two pixels, two classes: logits (0, 0) label 0 -> log 2; logits (ln 3, 0) label 1 -> log 4."""
    logits = np.array([[[[0.0, np.log(3.0)]], [[0.0, 0.0]]]])  # (1, 2, 1, 2)
    labels = np.array([[[0, 1]]])
    loss = SoftmaxCrossEntropy()
    assert loss(logits, labels) == pytest.approx((np.log(2) + np.log(4)) / 2, rel=1e-14)
    expected = np.array([[[[0.5 - 1, 0.75]], [[0.5, 0.25 - 1]]]]) / 2
    np.testing.assert_allclose(loss.backward(), expected, rtol=1e-14)


@pytest.mark.parametrize("loss", [SoftmaxCrossEntropy(), SoftDiceLoss(), SoftDiceLoss(smooth=0.5)])
def test_gradients_match_central_differences(loss, rng):
    logits, labels = _pixels(rng)
    loss(logits, labels)
    analytic = loss.backward()
    np.testing.assert_allclose(analytic, _numeric(loss, logits, labels), atol=1e-9)
    assert analytic.shape == logits.shape and analytic.flags.c_contiguous


def test_dtype_follows_the_logits(rng):
    logits, labels = _pixels(rng)
    for loss in (SoftmaxCrossEntropy(), SoftDiceLoss()):
        loss(logits.astype(np.float32), labels)
        assert loss.backward().dtype == np.float32


def test_dice_loss_brute_force_and_limits(rng):
    logits, labels = _pixels(rng)
    k = logits.shape[1]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    dice = []
    for c in range(k):  # brute force over pixels
        inter = sum(p[i, c, r, q] for i, r, q in np.ndindex(labels.shape) if labels[i, r, q] == c)
        dice.append((2 * inter + 1) / (p[:, c].sum() + (labels == c).sum() + 1))
    assert SoftDiceLoss()(logits, labels) == pytest.approx(1 - np.mean(dice), rel=1e-12)
    perfect = 50.0 * (labels[:, None] == np.arange(k)[None, :, None, None])  # (N, K, H, W), confident and right
    assert SoftDiceLoss()(perfect, labels) == pytest.approx(0.0, abs=1e-12)
    assert SoftDiceLoss()(-perfect, labels) > 0.9


@pytest.mark.parametrize("logits, labels, message", [
    (np.zeros((2, 3, 4, 4)), np.zeros((2, 4, 5), int), r"expected labels of shape \(2, 4, 4\), got \(2, 4, 5\)"),
    (np.zeros((2, 3, 4, 4)), np.zeros((2, 4, 4)), r"expected integer class labels of shape \(2, 4, 4\), got dtype"),
    (np.zeros((2, 3, 4, 4)), np.full((2, 4, 4), 3), r"expected labels in \[0, 3\), got values in \[3, 3\]"),
    (np.zeros((2, 3, 4)), np.zeros((2, 4), int), r"expected logits \(N, K\), got shape \(2, 3, 4\); per-pixel"),
])
def test_bad_input(logits, labels, message):
    for loss in (SoftmaxCrossEntropy(), SoftDiceLoss()):
        with pytest.raises(ValueError, match=f"{type(loss).__name__}: {message}"):
            loss(logits, labels)


def test_dice_loss_wants_pixels_and_a_positive_smooth():
    with pytest.raises(ValueError, match=r"SoftDiceLoss: expected per-pixel logits \(N, K, H, W\), got shape \(2, 3\)"):
        SoftDiceLoss()(np.zeros((2, 3)), np.zeros(2, int))
    with pytest.raises(ValueError, match=r"SoftDiceLoss: expected smooth > 0, got 0"):
        SoftDiceLoss(smooth=0)


def test_cross_entropy_plus_dice_by_brute_force(rng):
    """CE + w Dice against an independent per-pixel loop (no call to the two losses it sums)."""
    from minicnn.losses import CrossEntropyDiceLoss

    logits, labels = _pixels(rng)
    n, k, h, w = logits.shape
    ce, inter, p_sum = 0.0, np.zeros(k), np.zeros(k)
    for i, r, c in np.ndindex(n, h, w):
        z = logits[i, :, r, c]
        p = np.exp(z) / np.exp(z).sum()
        ce -= np.log(p[labels[i, r, c]])
        inter[labels[i, r, c]] += p[labels[i, r, c]]
        p_sum += p
    t_sum = np.bincount(labels.ravel(), minlength=k)
    dice = 1 - np.mean((2 * inter + 1) / (p_sum + t_sum + 1))
    for weight in (1.0, 0.5):
        loss = CrossEntropyDiceLoss(dice_weight=weight)
        assert loss(logits, labels) == pytest.approx(ce / (n * h * w) + weight * dice, rel=1e-12)


@pytest.mark.parametrize("weight, smoothing", [(1.0, 0.0), (0.3, 0.1)])
def test_cross_entropy_plus_dice_gradient_float64(weight, smoothing, rng):
    from minicnn.losses import CrossEntropyDiceLoss

    logits, labels = _pixels(rng)
    loss = CrossEntropyDiceLoss(dice_weight=weight, label_smoothing=smoothing)
    loss(logits, labels)
    analytic = loss.backward()
    assert analytic.dtype == np.float64 and analytic.shape == logits.shape
    np.testing.assert_allclose(analytic, _numeric(loss, logits, labels), atol=1e-9)


def test_cross_entropy_plus_dice_refuses_bad_input(rng):
    from minicnn.losses import CrossEntropyDiceLoss

    with pytest.raises(ValueError, match="dice_weight a finite number > 0, got 0"):
        CrossEntropyDiceLoss(dice_weight=0)
    with pytest.raises(ValueError, match=r"per-pixel logits \(N, K, H, W\), got shape \(4, 3\)"):
        CrossEntropyDiceLoss()(rng.standard_normal((4, 3)), np.zeros(4, np.int64))
    logits, labels = _pixels(rng)
    with pytest.raises(ValueError, match="expected labels in"):
        CrossEntropyDiceLoss()(logits, labels + 5)
