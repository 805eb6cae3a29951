"""Loss functions: forward(prediction, target) -> float (mean over the batch); backward() -> dL/dprediction."""

from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log p_k = z_k - log sum_j e^{z_j}, with the max subtracted first (log-sum-exp) so that
    logits of +/-1000 neither overflow nor underflow."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


class SoftmaxCrossEntropy:
    """L = -(1/N) sum_n log softmax(z_n)[y_n];   dL/dz = (softmax(z) - onehot(y)) / N.

    logits (N, K) floating; labels (N,) integers in [0, K).
    """

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        if not isinstance(logits, np.ndarray) or logits.ndim != 2:
            raise ValueError(f"SoftmaxCrossEntropy: expected logits (N, K), got shape {np.shape(logits)}")
        if not np.issubdtype(logits.dtype, np.floating):
            raise ValueError(f"SoftmaxCrossEntropy: expected floating logits, got dtype {logits.dtype}")
        labels = np.asarray(labels)
        n, k = logits.shape
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"SoftmaxCrossEntropy: expected integer class labels of shape ({n},), got dtype {labels.dtype}"
            )
        if labels.shape != (n,):
            raise ValueError(f"SoftmaxCrossEntropy: expected labels of shape ({n},), got {labels.shape}")
        if labels.size and (labels.min() < 0 or labels.max() >= k):
            raise ValueError(
                f"SoftmaxCrossEntropy: expected labels in [0, {k}), got values in "
                f"[{labels.min()}, {labels.max()}]"
            )
        logp = log_softmax(logits)
        self._cache = (np.exp(logp), labels)  # cache: softmax probabilities, labels
        return float(-logp[np.arange(n), labels].mean())

    __call__ = forward

    def backward(self) -> np.ndarray:
        probs, labels = self._cache
        n = probs.shape[0]
        dlogits = probs.copy()
        dlogits[np.arange(n), labels] -= 1
        return dlogits / n


class MSELoss:
    """L = (1/M) sum (pred - target)^2 over all M entries;   dL/dpred = 2 (pred - target) / M."""

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        target = np.asarray(target)
        if np.shape(pred) != target.shape:
            raise ValueError(f"MSELoss: expected target of shape {np.shape(pred)}, got {target.shape}")
        self._diff = pred - target  # cache: pred - target
        return float(np.mean(self._diff ** 2))

    __call__ = forward

    def backward(self) -> np.ndarray:
        return 2 * self._diff / self._diff.size
