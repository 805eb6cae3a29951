"""The one switch: the whole engine on the plain course math gives the kernels' numbers.

`minicnn.runtime.plain()` (also MINICNN_PLAIN=1 and `minicnn --plain`) makes every layer take the plain
functions of `minicnn.functional` instead of `minicnn.kernels`. LeNet-5 trained on real MNIST with and
without the kernels must agree: in float64 the same losses to 1e-8 relative, in float32 the same test
accuracy within 0.3 points. A tracer proves that the plain run never entered a kernel and the fast run did.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from minicnn import core, models, runtime
from minicnn.data import load_dataset
from minicnn.losses import SoftmaxCrossEntropy
from minicnn.optim import SGD, CosineLR

BATCH = 32
LR = 0.02


def _kernel_calls():
    """A profiler that collects the names of minicnn.kernels functions called while it is set."""
    seen: set[str] = set()

    def profile(frame, event, arg):
        if event == "call":
            module = frame.f_globals.get("__name__", "")
            if module.startswith("minicnn.kernels"):
                seen.add(f"{module}.{frame.f_code.co_name}")

    return seen, profile


def _train(x, y, dtype, steps: int, kernels: bool):
    """LeNet-5 from seed 0, `steps` SGD steps on x, y; returns (losses, model, kernel functions called)."""
    core.manual_seed(0)
    model = models.build("lenet5").to(dtype)
    loss_fn = SoftmaxCrossEntropy()
    opt = SGD(model.parameters(), lr=LR, momentum=0.9)
    schedule = CosineLR(LR, steps)  # decays to 0: the end of the run is settled, not a point on a noisy walk
    losses = []
    seen, profile = _kernel_calls()
    runtime.use_kernels(kernels)
    runtime.use_tuning(False)  # the kernels' fixed defaults: the same float32 rounding on every run
    sys.setprofile(profile)
    try:
        for step in range(steps):
            lo = (step * BATCH) % len(x)
            xb, yb = x[lo:lo + BATCH].astype(dtype), y[lo:lo + BATCH]
            opt.lr = schedule(step)
            losses.append(loss_fn(model(xb), yb))
            opt.zero_grad()
            model.backward(loss_fn.backward())
            opt.step()
    finally:
        sys.setprofile(None)
        runtime.use_kernels(None)
        runtime.use_tuning(None)
    return np.array(losses), model, seen


def _accuracy(model, x, y, dtype) -> float:
    model.eval()
    right = 0
    for lo in range(0, len(x), 500):
        right += int((model(x[lo:lo + 500].astype(dtype)).argmax(1) == y[lo:lo + 500]).sum())
    model.train()
    return 100.0 * right / len(x)


@pytest.fixture(scope="module")
def mnist():
    import os

    if not os.environ.get("MINICNN_DATA"):
        pytest.skip("real-data test: set MINICNN_DATA to the dataset folder (CI sets it to shared/datasets)")
    data = load_dataset("mnist", data_dir=os.environ["MINICNN_DATA"], download=False)
    mean, std = data.x_train.mean(), data.x_train.std()
    return ((data.x_train - mean) / std, data.y_train, (data.x_test - mean) / std, data.y_test)


@pytest.mark.slow
def test_float64_losses_agree_with_and_without_kernels(mnist):
    x, y, _, _ = mnist
    fast, _, fast_seen = _train(x[:640], y[:640], np.float64, 20, kernels=True)
    plain, _, plain_seen = _train(x[:640], y[:640], np.float64, 20, kernels=False)
    assert fast_seen, "the fast run called no kernel: the switch or the tracer is broken"
    assert not plain_seen, f"the plain run called kernels: {sorted(plain_seen)}"
    np.testing.assert_allclose(plain, fast, rtol=1e-8)
    assert plain[-1] < plain[0]  # it trained


@pytest.mark.slow
def test_float32_accuracy_agrees_with_and_without_kernels(mnist):
    x, y, xt, yt = mnist
    steps = 1875  # one epoch of 60,000 images (~98% at lr 0.01, momentum 0.9); shorter runs sit on the
    #               steep part of the curve, where float32 rounding alone moves accuracy by more than 0.3
    _, fast_model, _ = _train(x, y, np.float32, steps, kernels=True)
    _, plain_model, plain_seen = _train(x, y, np.float32, steps, kernels=False)
    assert not plain_seen
    fast_acc = _accuracy(fast_model, xt, yt, np.float32)  # all 10,000 test images
    plain_acc = _accuracy(plain_model, xt, yt, np.float32)
    assert fast_acc > 97.0, fast_acc
    assert abs(fast_acc - plain_acc) <= 0.3, (fast_acc, plain_acc)


def test_the_switch_is_read_when_used(monkeypatch):
    monkeypatch.setenv(runtime.PLAIN_VARIABLE, "1")
    assert not runtime.kernels_enabled()
    monkeypatch.setenv(runtime.PLAIN_VARIABLE, "0")
    assert runtime.kernels_enabled()
    with runtime.plain():
        assert not runtime.kernels_enabled()
    assert runtime.kernels_enabled()
    monkeypatch.setenv(runtime.PLAIN_VARIABLE, "maybe")
    with pytest.raises(ValueError, match="MINICNN_PLAIN"):
        runtime.kernels_enabled()
