"""The capstone's wiring: LeNet-5 built from the learner's own pieces, run in the child process.

The grading parent reads this file's source and hands it to the child (`child.py`, config "driver"),
which runs it after the learner's file, then points `pieces` at the learner's namespace. It imports
nothing but NumPy and holds no labels of the test images: the parent sends training batches
(uint8 images and their labels, in the order it chose) to `train`, then the test images alone to
`predict`, and scores the predictions itself.

    x (N, 1, 28, 28) -> conv1 5x5 (6), padding 2 -> relu -> pool 2x2     # (N, 6, 14, 14)
                     -> conv2 5x5 (16)           -> relu -> pool 2x2     # (N, 16, 5, 5)
                     -> flatten (N, 400) -> fc1 120 -> relu -> fc2 84 -> relu -> fc3 10

The layout of `minicnn.models.lenet.lenet5` (ReLU, max pooling), with He-normal weights and zero
biases. Every forward and backward is one of the learner's functions; this file only calls them in
order and keeps the parameters and the SGD velocities (float32).
"""

import numpy as np

pieces: dict = {}  # the learner's namespace (name -> their function): set by the child after this file ran

CONVS = {"conv1": (6, 1, 5, 2), "conv2": (16, 6, 5, 0)}  # name: (T, C, K, padding)
FCS = {"fc1": (120, 400), "fc2": (84, 120), "fc3": (10, 84)}  # name: (OUT, IN)
PIXEL_SCALE = 255.0  # uint8 images -> [0, 1]

params: dict[str, np.ndarray] = {}
velocity: dict[str, np.ndarray] = {}


def init(seed: int) -> int:
    """Fresh He-normal weights (std sqrt(2 / fan_in)), zero biases and velocities; the parameter count."""
    rng = np.random.default_rng(seed)
    params.clear()
    for name, (t, c, k, _) in CONVS.items():
        params[name + ".w"] = (rng.standard_normal((t, c, k, k)) * np.sqrt(2.0 / (c * k * k))).astype(np.float32)
        params[name + ".b"] = np.zeros(t, dtype=np.float32)
    for name, (out, inp) in FCS.items():
        params[name + ".w"] = (rng.standard_normal((out, inp)) * np.sqrt(2.0 / inp)).astype(np.float32)
        params[name + ".b"] = np.zeros(out, dtype=np.float32)
    velocity.clear()
    velocity.update({k: np.zeros_like(v) for k, v in params.items()})
    return int(sum(v.size for v in params.values()))


def _forward(x: np.ndarray) -> tuple[np.ndarray, list]:
    """The logits (N, 10) and what backward needs: one (kind, name, input) per layer, in order."""
    tape = []
    for name, (_, _, _, padding) in CONVS.items():
        tape.append(("conv", name, x))
        x = pieces["conv_forward"](x, params[name + ".w"], params[name + ".b"], padding)
        tape.append(("relu", name, x))
        x = pieces["relu_forward"](x)
        tape.append(("pool", name, x))
        x = pieces["max_pool_forward"](x)
    tape.append(("flatten", "", x.shape))
    x = x.reshape(len(x), -1)  # (N, 16*5*5)
    for name in FCS:
        tape.append(("linear", name, x))
        x = pieces["linear_forward"](x, params[name + ".w"], params[name + ".b"])
        if name != "fc3":
            tape.append(("relu", name, x))
            x = pieces["relu_forward"](x)
    return x, tape


def _backward(dy: np.ndarray, tape: list) -> dict[str, np.ndarray]:
    """The parameter gradients, walking the tape backwards with the learner's backward functions."""
    grads = {}
    for kind, name, saved in reversed(tape):
        if kind == "linear":
            dy, grads[name + ".w"], grads[name + ".b"] = pieces["linear_backward"](dy, saved, params[name + ".w"])
        elif kind == "relu":
            dy = pieces["relu_backward"](dy, saved)
        elif kind == "flatten":
            dy = dy.reshape(saved)  # (N, 16, 5, 5)
        elif kind == "pool":
            dy = pieces["max_pool_backward"](dy, saved)
        else:
            dy, grads[name + ".w"], grads[name + ".b"] = pieces["conv_backward"](
                dy, saved, params[name + ".w"], CONVS[name][3])
    return grads


def train(images: np.ndarray, labels: np.ndarray, batch: int, lr: float, momentum: float) -> list[float]:
    """One SGD step per `batch` consecutive images (uint8 (M, 1, 28, 28), M a multiple of batch);
    the loss of every step."""
    losses = []
    for start in range(0, len(images), batch):
        x = images[start:start + batch].astype(np.float32) / np.float32(PIXEL_SCALE)
        logits, tape = _forward(x)
        loss, dlogits = pieces["softmax_cross_entropy"](logits, labels[start:start + batch])
        for name, grad in _backward(dlogits, tape).items():
            params[name], velocity[name] = pieces["sgd_step"](params[name], grad, velocity[name], lr, momentum)
        losses.append(float(loss))
    return losses


def predict(images: np.ndarray) -> np.ndarray:
    """The predicted class (argmax of the logits) of every uint8 image (M, 1, 28, 28): int64 (M,)."""
    logits, _ = _forward(images.astype(np.float32) / np.float32(PIXEL_SCALE))
    return np.asarray(logits).argmax(axis=1).astype(np.int64)
