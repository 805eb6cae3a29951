"""Segmentation metrics from one confusion matrix: Dice, IoU and pixel accuracy, per class and mean.

    C[i, j] = number of pixels of true class i predicted as class j          (K x K, summed over a whole set)
    TP_k = C[k, k],   FP_k = sum_i C[i, k] - TP_k,   FN_k = sum_j C[k, j] - TP_k

    Dice_k = 2 TP_k / (2 TP_k + FP_k + FN_k)        (= 2 |P ∩ T| / (|P| + |T|), the F1 score of class k)
    IoU_k  = TP_k / (TP_k + FP_k + FN_k)            (= |P ∩ T| / |P ∪ T|, Jaccard)
    pixel accuracy = sum_k TP_k / sum C;   per class: TP_k / (TP_k + FN_k)  (the class's recall)

Counts are summed over every pixel of every image first and the ratios taken once (micro over pixels):
a set's score does not depend on how it was cut into batches (add the batches' matrices). A class that
neither occurs nor is predicted has 0/0: its per-class score is NaN and the means skip it.
"foreground" means skip class 0 (the background): for a binary task it is the object's Dice / IoU,
the number the Carvana challenge and the Frequency Regularization paper quote.

Here, in the application tier, because the tier rules of tests/test_architecture.py place every
module; the functions use NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BACKGROUND = 0  # the class the "foreground" means leave out


def predict_classes(logits: np.ndarray) -> np.ndarray:
    """Per-pixel logits (N, K, H, W) -> predicted class per pixel (N, H, W), the argmax over K."""
    if not isinstance(logits, np.ndarray) or logits.ndim != 4:
        raise ValueError(f"predict_classes: expected logits (N, K, H, W), got shape {np.shape(logits)}")
    return logits.argmax(axis=1)


def confusion_matrix(pred: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
    """C[i, j] = count of pixels with target i and prediction j, (K, K) int64; pred and target are integer
    arrays of one shape (e.g. (N, H, W)) with values in [0, num_classes)."""
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"confusion_matrix: expected pred of the target's shape {target.shape}, got {pred.shape}")
    for name, a in (("pred", pred), ("target", target)):
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"confusion_matrix: expected integer class labels in {name}, got dtype {a.dtype}")
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"confusion_matrix: expected {name} in [0, {num_classes}), "
                             f"got values in [{a.min()}, {a.max()}]")
    flat = target.reshape(-1).astype(np.int64) * num_classes + pred.reshape(-1)  # (M,): row-major index of (i, j)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator per class, NaN where the denominator is 0 (a class absent everywhere)."""
    out = np.full(numerator.shape, np.nan)
    present = denominator > 0
    out[present] = numerator[present] / denominator[present]
    return out


def _nanmean(values: np.ndarray) -> float:
    """Mean of the entries that are not NaN; NaN when all are."""
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if kept.size else float("nan")


@dataclass(frozen=True)
class SegmentationScores:
    """The scores of one confusion matrix (see the module docstring). Per-class arrays are (K,) float64."""

    confusion: np.ndarray

    @property
    def num_classes(self) -> int:
        return self.confusion.shape[0]

    @property
    def _tp_fp_fn(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        tp = np.diag(self.confusion).astype(np.float64)
        return tp, self.confusion.sum(axis=0) - tp, self.confusion.sum(axis=1) - tp

    @property
    def dice(self) -> np.ndarray:
        tp, fp, fn = self._tp_fp_fn
        return _ratio(2 * tp, 2 * tp + fp + fn)

    @property
    def iou(self) -> np.ndarray:
        tp, fp, fn = self._tp_fp_fn
        return _ratio(tp, tp + fp + fn)

    @property
    def class_accuracy(self) -> np.ndarray:
        tp, _, fn = self._tp_fp_fn
        return _ratio(tp, tp + fn)

    @property
    def pixel_accuracy(self) -> float:
        total = self.confusion.sum()
        return float(np.trace(self.confusion) / total) if total else float("nan")

    @property
    def mean_dice(self) -> float:
        return _nanmean(self.dice)

    @property
    def mean_iou(self) -> float:
        return _nanmean(self.iou)

    @property
    def mean_class_accuracy(self) -> float:
        return _nanmean(self.class_accuracy)

    @property
    def foreground_dice(self) -> float:
        return _nanmean(self.dice[BACKGROUND + 1:])

    @property
    def foreground_iou(self) -> float:
        return _nanmean(self.iou[BACKGROUND + 1:])

    def __add__(self, other: SegmentationScores) -> SegmentationScores:
        """The scores of two sets together (their confusion matrices added)."""
        return SegmentationScores(self.confusion + other.confusion)


def segmentation_scores(pred: np.ndarray, target: np.ndarray, num_classes: int) -> SegmentationScores:
    """Scores of predicted classes `pred` against `target` (integer arrays of one shape, e.g. (N, H, W))."""
    return SegmentationScores(confusion_matrix(pred, target, num_classes))
