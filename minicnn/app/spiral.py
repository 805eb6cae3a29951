"""A 2-D spiral classification problem and a small MLP that learns it: the foundation's demo.

Classic toy data: K interleaved arms, not linearly separable, so a model needs hidden layers
and nonlinearities to reach high accuracy. Runs in a few seconds on a CPU.
"""

from __future__ import annotations

import time

import numpy as np

from minicnn import core
from minicnn.core import Sequential
from minicnn.layers import Linear, ReLU
from minicnn.losses import SoftmaxCrossEntropy
from minicnn.optim import Adam


def make_spiral(points_per_class: int = 200, classes: int = 3, noise: float = 0.2, seed: int = 0):
    """Returns x (N, 2) float64 and labels (N,) int64 with N = points_per_class * classes.

    Arm k: radius r in [0, 1], angle 4 r + 2 pi k / K, plus Gaussian angle noise.
    """
    g = np.random.default_rng(seed)
    r = np.tile(np.linspace(0.0, 1.0, points_per_class), classes)
    labels = np.repeat(np.arange(classes), points_per_class)
    theta = 4.0 * r + 2 * np.pi * labels / classes + g.normal(0.0, noise, r.shape)
    x = np.stack([r * np.sin(theta), r * np.cos(theta)], axis=1)
    return x, labels.astype(np.int64)


def spiral_mlp(classes: int = 3, hidden: int = 64) -> Sequential:
    return Sequential(Linear(2, hidden), ReLU(), Linear(hidden, hidden), ReLU(), Linear(hidden, classes))


def train_spiral(steps: int = 1000, lr: float = 0.01, seed: int = 0, log_every: int = 0, classes: int = 3):
    """Full-batch Adam on the spiral. Returns (model, history of (step, loss, accuracy), seconds).
    A NaN/inf loss ends the run at once; its row (step, loss, nan) is the history's last.

    The lecture's four-line step written out, on purpose: with the whole data set as one batch, `fit`'s
    epochs, shuffling and per-epoch validation would cost more than the step itself (measured: 600 steps
    0.9 s here, 2.7 s through fit, OPENBLAS_NUM_THREADS=1)."""
    core.manual_seed(seed)
    x, labels = make_spiral(classes=classes, seed=seed)
    model = spiral_mlp(classes)
    loss_fn = SoftmaxCrossEntropy()
    opt = Adam(model.parameters(), lr=lr)
    history = []
    start = time.perf_counter()
    for step in range(1, steps + 1):
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging run overflows: reported just below
            logits = model(x.astype(np.float32))
            loss = loss_fn(logits, labels)
        if not np.isfinite(loss):  # diverged: stop before the step spreads NaN into the weights
            history.append((step, loss, float("nan")))
            break
        opt.zero_grad()
        model.backward(loss_fn.backward())
        opt.step()
        if step == steps or (log_every and step % log_every == 0):
            acc = float((logits.argmax(axis=1) == labels).mean())
            history.append((step, loss, acc))
            if log_every:
                print(f"step {step:5d}  loss {loss:.4f}  train accuracy {acc:.1%}")
    return model, history, time.perf_counter() - start
