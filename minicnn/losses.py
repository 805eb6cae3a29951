"""Loss functions: forward(prediction, target) -> float (mean over the batch); backward() -> dL/dprediction."""

from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log p_k = z_k - log sum_j e^{z_j}, with the max subtracted first (log-sum-exp) so that
    logits of +/-1000 neither overflow nor underflow."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _check_logits_labels(logits: np.ndarray, labels, who: str) -> np.ndarray:
    """Logits (N, K) or per pixel (N, K, H, W), floating; labels (N,) or (N, H, W), integers in [0, K).
    Returns the labels as an array; ValueError naming `who`, the expected and the received otherwise."""
    if not isinstance(logits, np.ndarray) or logits.ndim not in (2, 4):
        raise ValueError(f"{who}: expected logits (N, K), got shape {np.shape(logits)}; "
                         f"per-pixel logits are (N, K, H, W)")
    if not np.issubdtype(logits.dtype, np.floating):
        raise ValueError(f"{who}: expected floating logits, got dtype {logits.dtype}")
    labels = np.asarray(labels)
    k = logits.shape[1]
    expected = logits.shape[:1] + logits.shape[2:]  # (N,) or (N, H, W)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{who}: expected integer class labels of shape {expected}, got dtype {labels.dtype}")
    if labels.shape != expected:
        raise ValueError(f"{who}: expected labels of shape {expected}, got {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"{who}: expected labels in [0, {k}), got values in [{labels.min()}, {labels.max()}]")
    return labels


class SoftmaxCrossEntropy:
    """L = -(1/N) sum_n sum_k t_nk log softmax(z_n)_k;   dL/dz = (softmax(z) - t) / N.

    Cross-entropy of softmax(z) against a target distribution t, mean over the batch. t = onehot(y) by
    default (then L = -(1/N) sum_n log softmax(z_n)[y_n]). With `label_smoothing` e in [0, 1),
    t = (1 - e) onehot(y) + e/K, as `torch.nn.CrossEntropyLoss(label_smoothing=e)` (Szegedy et al. 2016,
    "Rethinking the Inception architecture"): the right class gets 1 - e + e/K, every other class e/K,
    so the network is never asked for an infinitely confident logit. Written out,
    L = (1 - e) NLL + e * mean_k(-log p_k).

    logits (N, K) floating; labels (N,) integers in [0, K).
    Per pixel (segmentation): logits (N, K, H, W), labels (N, H, W); every pixel is one example, so
    the mean runs over M = N*H*W pixels and dL/dz = (softmax over K - t) / M.
    """

    def __init__(self, label_smoothing: float = 0.0):
        if not (isinstance(label_smoothing, int | float) and 0.0 <= label_smoothing < 1.0):
            raise ValueError(f"SoftmaxCrossEntropy: expected label_smoothing in [0, 1), got {label_smoothing!r}")
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        labels = _check_logits_labels(logits, labels, "SoftmaxCrossEntropy")
        k = logits.shape[1]
        rows = np.moveaxis(logits, 1, -1).reshape(-1, k)  # (M, K): one row per example (or pixel)
        targets = labels.reshape(-1)  # (M,)
        logp = log_softmax(rows)
        self._cache = (np.exp(logp), targets, logits.shape)  # cache: softmax probabilities, labels, input shape
        nll = -logp[np.arange(len(targets)), targets].mean()
        if self.label_smoothing == 0.0:
            return float(nll)
        e = self.label_smoothing
        return float((1 - e) * nll + e * -logp.mean())  # logp.mean(): over the M rows and the K classes

    __call__ = forward

    def backward(self) -> np.ndarray:
        probs, labels, shape = self._cache
        m, k = probs.shape
        e = self.label_smoothing
        dlogits = probs - e / k  # the e/K every class gets in t
        dlogits[np.arange(m), labels] -= 1 - e
        n, _, *spatial = shape
        dlogits = dlogits.reshape(n, *spatial, k) / m  # (N, H, W, K) per pixel; (N, K) for classification
        return np.ascontiguousarray(np.moveaxis(dlogits, -1, 1))  # (N, K, H, W)


DICE_SMOOTH = 1.0  # added to the numerator and denominator of each class's Dice: an absent class scores 1


class SoftDiceLoss:
    """Soft Dice loss on per-pixel logits (Milletari et al. 2016, V-Net), mean over the K classes:

        p = softmax(z) over K,  t = onehot(y),  sums over n, h, w:
        D_k = (2 sum p_k t_k + s) / (sum p_k + sum t_k + s),     L = 1 - (1/K) sum_k D_k

    logits (N, K, H, W) floating, labels (N, H, W) integers in [0, K); s = `smooth` (DICE_SMOOTH).
    Backward: dL/dp_k = -(2 t_k - D_k) / (K (sum p_k + sum t_k + s)), then through the softmax:
    dL/dz = p * (dL/dp - sum_k p_k dL/dp_k).
    """

    def __init__(self, smooth: float = DICE_SMOOTH):
        if not smooth > 0:
            raise ValueError(f"SoftDiceLoss: expected smooth > 0, got {smooth!r}")
        self.smooth = float(smooth)

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        labels = _check_logits_labels(logits, labels, "SoftDiceLoss")
        if logits.ndim != 4:
            raise ValueError(f"SoftDiceLoss: expected per-pixel logits (N, K, H, W), got shape {logits.shape}")
        k = logits.shape[1]
        p = np.exp(log_softmax(logits))  # (N, K, H, W)
        t = (labels[:, None] == np.arange(k)[None, :, None, None]).astype(p.dtype)  # (N, K, H, W) one-hot
        axes = (0, 2, 3)
        denominator = p.sum(axes) + t.sum(axes) + self.smooth  # (K,)
        dice = (2 * (p * t).sum(axes) + self.smooth) / denominator  # (K,)
        self._cache = (p, t, dice, denominator)  # cache: probabilities, one-hot, D_k, denominators
        return float(1 - dice.mean())

    __call__ = forward

    def backward(self) -> np.ndarray:
        p, t, dice, denominator = self._cache
        k = p.shape[1]
        per_class = (dice / denominator)[None, :, None, None]  # (1, K, 1, 1)
        dp = -(2 * t / denominator[None, :, None, None] - per_class) / k  # (N, K, H, W)
        return p * (dp - (p * dp).sum(axis=1, keepdims=True))


DICE_WEIGHT = 1.0  # CrossEntropyDiceLoss's default weight w of the Dice term (CE + Dice, as nnU-Net trains)


class CrossEntropyDiceLoss:
    """Per-pixel softmax cross-entropy plus a weighted soft Dice loss, on the same logits:

        L = CE(z, y) + w * Dice(z, y)            (SoftmaxCrossEntropy and SoftDiceLoss above, w = dice_weight)
        dL/dz = dCE/dz + w * dDice/dz

    Why both: with a rare class (mnist-seg: 95% background, each digit ~0.5% of the pixels) the mean over
    pixels of the cross-entropy is dominated by the background, so a short run predicts background almost
    everywhere; the Dice term is a mean over the classes, each class counting the same whatever its size,
    and the cross-entropy keeps per-pixel gradients well scaled where Dice alone is slow to start.
    logits (N, K, H, W) floating, labels (N, H, W) integers in [0, K); `label_smoothing` goes to the
    cross-entropy term.
    """

    def __init__(self, dice_weight: float = DICE_WEIGHT, label_smoothing: float = 0.0, smooth: float = DICE_SMOOTH):
        if isinstance(dice_weight, bool) or not isinstance(dice_weight, int | float) or not 0 < dice_weight < np.inf:
            raise ValueError(f"CrossEntropyDiceLoss: expected dice_weight a finite number > 0, got {dice_weight!r}")
        self.dice_weight = float(dice_weight)
        self.cross_entropy = SoftmaxCrossEntropy(label_smoothing)
        self.dice = SoftDiceLoss(smooth)

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        if not isinstance(logits, np.ndarray) or logits.ndim != 4:
            raise ValueError(f"CrossEntropyDiceLoss: expected per-pixel logits (N, K, H, W), got shape "
                             f"{np.shape(logits)}")
        return self.cross_entropy.forward(logits, labels) + self.dice_weight * self.dice.forward(logits, labels)

    __call__ = forward

    def backward(self) -> np.ndarray:
        return self.cross_entropy.backward() + self.dice_weight * self.dice.backward()


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
