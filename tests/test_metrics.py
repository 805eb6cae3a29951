"""Segmentation metrics: hand-made examples, a brute-force count, batches adding up, absent classes."""

from __future__ import annotations

import numpy as np
import pytest

from minicnn.app.segmentation import (
    SegmentationScores,
    confusion_matrix,
    predict_classes,
    segmentation_scores,
)


def test_hand_made_binary_example():
    target = np.array([[[0, 1, 1, 0]]])  # object: 2 pixels
    pred = np.array([[[1, 1, 0, 0]]])    # predicted object: 2 pixels, 1 right
    s = segmentation_scores(pred, target, 2)
    np.testing.assert_array_equal(s.confusion, [[1, 1], [1, 1]])
    np.testing.assert_allclose(s.dice, [0.5, 0.5])            # 2*1 / (2 + 2)
    np.testing.assert_allclose(s.iou, [1 / 3, 1 / 3])          # 1 / 3 in the union
    assert s.pixel_accuracy == 0.5 and s.foreground_dice == 0.5 and s.foreground_iou == pytest.approx(1 / 3)


def test_hand_made_three_class_example():
    target = np.array([[0, 0, 1, 2], [2, 2, 0, 1]])
    pred = np.array([[0, 1, 1, 2], [2, 0, 0, 1]])
    s = segmentation_scores(pred, target, 3)
    # class 0: TP 2 (3 true, 3 predicted); class 1: TP 2 (2 true, 3 predicted); class 2: TP 2 (3 true, 2 predicted)
    np.testing.assert_allclose(s.dice, [4 / 6, 4 / 5, 4 / 5])
    np.testing.assert_allclose(s.iou, [2 / 4, 2 / 3, 2 / 3])
    np.testing.assert_allclose(s.class_accuracy, [2 / 3, 1, 2 / 3])
    assert s.pixel_accuracy == 6 / 8
    assert s.mean_dice == pytest.approx((4 / 6 + 0.8 + 0.8) / 3)
    assert s.foreground_iou == pytest.approx(2 / 3)


def test_against_a_brute_force_count(rng):
    k = 4
    target, pred = rng.integers(0, k, (3, 7, 5)), rng.integers(0, k, (3, 7, 5))
    s = segmentation_scores(pred, target, k)
    for c in range(k):
        tp = fp = fn = 0
        for t, p in zip(target.ravel(), pred.ravel(), strict=True):  # pixel by pixel
            tp += t == c and p == c
            fp += t != c and p == c
            fn += t == c and p != c
        assert s.dice[c] == pytest.approx(2 * tp / (2 * tp + fp + fn))
        assert s.iou[c] == pytest.approx(tp / (tp + fp + fn))
        assert s.class_accuracy[c] == pytest.approx(tp / (tp + fn))
    assert s.pixel_accuracy == pytest.approx(np.mean(target == pred))
    assert s.confusion.sum() == target.size


def test_batches_add_up_to_the_whole_set(rng):
    target, pred = rng.integers(0, 3, (6, 4, 4)), rng.integers(0, 3, (6, 4, 4))
    whole = segmentation_scores(pred, target, 3)
    parts = segmentation_scores(pred[:2], target[:2], 3) + segmentation_scores(pred[2:], target[2:], 3)
    np.testing.assert_array_equal(parts.confusion, whole.confusion)
    assert parts.mean_iou == whole.mean_iou


def test_an_absent_class_is_nan_and_skipped_by_the_means():
    s = segmentation_scores(np.array([0, 0, 1]), np.array([0, 0, 1]), 3)
    assert np.isnan(s.dice[2]) and np.isnan(s.iou[2])
    assert s.mean_dice == 1.0 and s.mean_iou == 1.0
    empty = SegmentationScores(np.zeros((2, 2), np.int64))
    assert np.isnan(empty.pixel_accuracy) and np.isnan(empty.mean_dice)


def test_predict_classes_is_the_argmax_over_classes(rng):
    logits = rng.standard_normal((2, 3, 4, 5))
    pred = predict_classes(logits)
    assert pred.shape == (2, 4, 5)
    for i, r, c in np.ndindex(pred.shape):
        assert pred[i, r, c] == np.argmax(logits[i, :, r, c])


@pytest.mark.parametrize("pred, target, message", [
    (np.zeros((2, 3), int), np.zeros((2, 4), int), r"expected pred of the target's shape \(2, 4\), got \(2, 3\)"),
    (np.zeros(3), np.zeros(3, int), r"expected integer class labels in pred, got dtype float64"),
    (np.array([0, 2]), np.array([0, 1]), r"expected pred in \[0, 2\), got values in \[0, 2\]"),
])
def test_bad_input(pred, target, message):
    with pytest.raises(ValueError, match="confusion_matrix: " + message):
        confusion_matrix(pred, target, 2)
    with pytest.raises(ValueError, match=r"predict_classes: expected logits \(N, K, H, W\), got shape \(2, 3\)"):
        predict_classes(np.zeros((2, 3)))
