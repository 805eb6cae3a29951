"""The exercises, in course order: goals, hints, and the graded cases.

Every expected value comes from the engine itself (`minicnn.functional`, `layers`, `losses`, `optim`,
`analysis`, `app.frequency`); the backward passes are also checked by `minicnn.gradcheck`. Two have no
engine function to ask: receptive_window's windows are found by brute force (walking positions down
the stack) and early_stopping's by the rule as chapter 15 states it (`_early_stopping_reference`).
The `Mistake`s are known wrong answers (the unflipped kernel, a missing transpose, ...), computed from
the engine's pieces, so that a learner's wrong output can be recognised and the hint can name it. The documented cases
come from fixed seeds; every exercise adds random cases (shapes, strides, paddings within its contract,
values) drawn from the grader's generator, fresh on every run, and a float32 twin of each case that
takes float arrays (the dtype must be preserved).

The capstone (last) checks the learner's six pieces this way, then plugs them into LeNet-5
(`lenet_child.py`, run in the child) and trains on MNIST within CAPSTONE_BUDGET; the parent scores the
predictions on the test images, whose labels never reach the child.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from minicnn import functional as F
from minicnn.core import Layer, Parameter
from minicnn.exercises.spec import Budget, Exercise, GradCase, Mistake, TrainCase, ValueCase


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


RANDOM = "random "  # the label prefix of a case drawn fresh on every run
FLOAT32_TOL = 1e-4  # float32 cases: relative and absolute tolerance (float32 has ~7 digits)


def _pick(k: int, fixed: int, seed: int, rng: np.random.Generator) -> tuple[np.random.Generator, str]:
    """Case k's value generator and label prefix: a fixed seed for the first `fixed` cases, `rng` after."""
    return (_rng(seed + k), "") if k < fixed else (rng, RANDOM)


def _random_convs(rng: np.random.Generator, count: int, max_pad: int | None = None) -> list:
    """`count` random (x shape, w shape, stride, padding) within conv2d's contract (the kernel fits the
    padded input); padding up to KH-1, or up to `max_pad` when given."""
    out = []
    while len(out) < count:
        n, c, t = (int(v) for v in rng.integers(1, 4, 3))
        kh, kw = (int(v) for v in rng.integers(1, 5, 2))
        s = int(rng.integers(1, 4))
        p = int(rng.integers(0, (max_pad if max_pad is not None else min(kh, kw) - 1) + 1))
        h, w = (int(v) for v in rng.integers(max(kh, kw), 10, 2))
        if h + 2 * p >= kh and w + 2 * p >= kw:
            out.append(((n, c, h, w), (t, c, kh, kw), s, p))
    return out


def _to32(v):
    """float64 arrays (also inside tuples and lists) as float32; everything else unchanged."""
    if isinstance(v, np.ndarray) and v.dtype == np.float64:
        return v.astype(np.float32)
    if isinstance(v, tuple):
        return tuple(_to32(a) for a in v)
    if isinstance(v, list):
        return [_to32(a) for a in v]
    return v


def _has_float64(v) -> bool:
    if isinstance(v, np.ndarray):
        return v.dtype == np.float64
    return isinstance(v, (tuple, list)) and any(_has_float64(a) for a in v)


def _with_float32(cases: list) -> list:
    """The cases, then a float32 twin of every plain value case that takes float64 arrays and returns
    some: the same inputs in float32, the expected values rounded to float32 (so a float64 result fails
    on its dtype), compared to FLOAT32_TOL; the Mistakes match to the same tolerance."""
    twins = []
    for case in cases:
        if not isinstance(case, ValueCase) or case.run is not None or not _has_float64(case.args):
            continue
        if not any(_has_float64(v) for v in case.expected.values()):
            continue
        twins.append(ValueCase(
            case.label + " float32", case.function, _to32(case.args),
            {k: _to32(v) for k, v in case.expected.items()}, case.mistakes, case.kwargs,
            tol=max(case.tol, FLOAT32_TOL), exact=case.exact, shape_hint=case.shape_hint,
            match_rtol=FLOAT32_TOL))
    return cases + twins


def _shape(a: np.ndarray) -> str:
    return "(" + ",".join(str(s) for s in a.shape) + ")"


class _Wrapped(Layer):
    """A Layer from closures: forward(layer, x) and backward(layer, x, dy), parameters by keyword.

    The gradient cases use it to put the learner's function into the engine's gradient checker."""

    def __init__(self, forward: Callable, backward: Callable, **params: np.ndarray):
        super().__init__()
        for name, value in params.items():
            setattr(self, name, Parameter(value))
        self._forward, self._backward = forward, backward

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x  # cache: x
        return self._forward(self, x)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return self._backward(self, self._x, dy)


# ---- 1 linear ------------------------------------------------------------------------------


def _linear_cases(rng: np.random.Generator) -> list:
    cases = []
    shapes = [(4, 3, 3), (5, 3, 2), (1, 7, 4)]  # (N, IN, OUT); the first is square so dy @ w.T fits
    shapes += [tuple(int(v) for v in rng.integers(1, 8, 3)) for _ in range(2)]
    for k, (n, i, o) in enumerate(shapes):
        r, tag = _pick(k, 3, 10, rng)
        x, w, b = r.standard_normal((n, i)), r.standard_normal((o, i)), r.standard_normal(o)
        cases.append(ValueCase(
            f"{tag}x {_shape(x)} w {_shape(w)}", "linear_forward", (x, w, b), {"y": F.linear(x, w, b)},
            [Mistake("y", lambda x=x, w=w: x @ w.T, "add the bias b (broadcast over the batch rows)"),
             Mistake("y", lambda x=x, w=w, b=b: x @ w + b, "y = x @ w.T + b: w is (OUT, IN)")]))
    for k, (n, i, o) in enumerate(shapes):
        r, tag = _pick(k, 3, 20, rng)
        x, w, dy = r.standard_normal((n, i)), r.standard_normal((o, i)), r.standard_normal((n, o))
        dx, dw, db = F.linear_backward(dy, x, w)
        cases.append(ValueCase(
            f"{tag}dy {_shape(dy)} x {_shape(x)} w {_shape(w)}", "linear_backward", (dy, x, w),
            {"dx": dx, "dw": dw, "db": db},
            [Mistake("dx", lambda dy=dy, w=w: dy @ w.T, "dx = dy @ w: W^T dL/dy per row is dy @ w (no .T)"),
             Mistake("dw", lambda dy=dy, x=x: x.T @ dy, "dw has shape (OUT, IN): dw = dy.T @ x, not x.T @ dy"),
             Mistake("dw", lambda dy=dy, x=x: dy.T @ x / len(x), "dw is a SUM over the batch; do not divide by N"),
             Mistake("db", lambda dy=dy: dy.mean(axis=0), "db sums dy over the batch (axis 0); you took the mean"),
             Mistake("db", lambda dy=dy: dy.sum(axis=1), "db sums over the batch axis 0, giving shape (OUT,)")]))

    wg, bg = _rng(30).standard_normal((3, 4)), _rng(31).standard_normal(3)

    def grad_layer(fns):
        def forward(layer, x):
            return fns["linear_forward"](x, layer.weight.data, layer.bias.data)

        def backward(layer, x, dy):
            dx, dw, db = fns["linear_backward"](dy, x, layer.weight.data)
            layer.weight.grad += dw
            layer.bias.grad += db
            return dx
        return _Wrapped(forward, backward, weight=wg.copy(), bias=bg.copy())

    cases.append(GradCase("x (5,4), weight, bias", "linear_backward", grad_layer, _rng(32).standard_normal((5, 4))))
    return _with_float32(cases)


# ---- 2 activations -------------------------------------------------------------------------


def _activation_cases(rng: np.random.Generator) -> list:
    cases = []
    r = _rng(40)
    x1 = r.standard_normal((3, 4))
    x1[0, 1] = x1[2, 3] = 0.0  # exact zeros: the subgradient at 0 is 0
    x2 = r.standard_normal((2, 3, 4, 5))
    x3 = rng.standard_normal(tuple(int(v) for v in rng.integers(1, 5, 4)))
    for x in (x1, x2, x3):
        dy = r.standard_normal(x.shape)
        cases.append(ValueCase(
            (RANDOM if x is x3 else "") + f"x {_shape(x)}" + (" with zeros" if x is x1 else ""), "relu_backward",
            (dy, x),
            {"dx": F.relu_backward(dy, x)},
            [Mistake("dx", lambda dy=dy, x=x: dy * (x >= 0), "at x == 0 ReLU's gradient is taken as 0: use x > 0"),
             Mistake("dx", lambda x=x: (x > 0).astype(float), "multiply the 0/1 mask by dy"),
             Mistake("dx", lambda dy=dy, x=x: dy * np.maximum(x, 0),
                     "the derivative is the step 1[x > 0], not relu(x) itself")]))
    for alpha, x in ((0.1, x2), (0.01, r.standard_normal((5, 3))), (round(float(rng.uniform(0.01, 0.5)), 3), x3)):
        dy = r.standard_normal(x.shape)
        cases.append(ValueCase(
            (RANDOM if x is x3 else "") + f"x {_shape(x)} alpha {alpha}", "leaky_relu_backward", (dy, x, alpha),
            {"dx": F.leaky_relu_backward(dy, x, alpha)},
            [Mistake("dx", lambda dy=dy, x=x: dy * (x > 0),
                     "for x <= 0 the slope is alpha, not 0: dx = alpha * dy there"),
             Mistake("dx", lambda dy=dy, x=x, a=alpha: dy * np.where(x > 0, a, 1.0),
                     "slopes swapped: 1 for x > 0, alpha for x <= 0")]))
    random_pieces = int(rng.integers(2, 5))
    random_shape = (int(rng.integers(1, 4)), random_pieces * int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    for pieces, shape in ((2, (2, 6)), (3, (2, 6, 3, 2)), (random_pieces, random_shape)):
        x = r.standard_normal(shape)
        y, idx = F.maxout(x, pieces)
        dy = r.standard_normal(y.shape)
        cases.append(ValueCase(
            (RANDOM if shape is random_shape else "") + f"x {_shape(x)} pieces {pieces}", "maxout_backward",
            (dy, x, pieces),
            {"dx": F.maxout_backward(dy, idx, pieces)},
            [Mistake("dx", lambda dy=dy, p=pieces: np.repeat(dy, p, axis=1),
                     "route dy only to the winning channel of each group, not to all of them"),
             Mistake("dx", lambda dy=dy, p=pieces: np.repeat(dy, p, axis=1) / p,
                     "that spreads dy evenly; route all of it to the winning channel"),
             Mistake("dx", lambda x=x, dy=dy, p=pieces: _maxout_strided(x, dy, p),
                     "groups are CONSECUTIVE channels: group g is channels g*pieces .. g*pieces+pieces-1")]))
    rg = _rng(41)
    xg = rg.standard_normal((4, 6))
    xg += np.sign(xg) * 0.1  # keep away from the kink at 0

    def act_layer(name, fwd, bwd):
        def make(fns):
            return _Wrapped(lambda layer, x: fwd(x), lambda layer, x, dy: bwd(fns[name], x, dy))
        return make

    cases.append(GradCase("x (4,6)", "relu_backward",
                          act_layer("relu_backward", F.relu, lambda f, x, dy: f(dy, x)), xg))
    cases.append(GradCase("x (4,6), alpha 0.2", "leaky_relu_backward",
                          act_layer("leaky_relu_backward", lambda x: F.leaky_relu(x, 0.2),
                                    lambda f, x, dy: f(dy, x, 0.2)), xg))
    cases.append(GradCase("x (3,6), pieces 3", "maxout_backward",
                          act_layer("maxout_backward", lambda x: F.maxout(x, 3)[0],
                                    lambda f, x, dy: f(dy, x, 3)), rg.standard_normal((3, 6))))
    return _with_float32(cases)


def _maxout_strided(x: np.ndarray, dy: np.ndarray, pieces: int) -> np.ndarray:
    """The wrong grouping: channels g, g + G, g + 2G, ... (G = C // pieces) instead of consecutive ones."""
    n, c = x.shape[:2]
    g = c // pieces
    xs = x.reshape(n, pieces, g, *x.shape[2:]).swapaxes(1, 2).reshape(x.shape)  # strided -> consecutive
    _, idx = F.maxout(xs, pieces)
    dxs = F.maxout_backward(dy, idx, pieces)
    return dxs.reshape(n, g, pieces, *x.shape[2:]).swapaxes(1, 2).reshape(x.shape)  # back to strided order


# ---- 3 softmax cross-entropy ---------------------------------------------------------------


def _not_finite(value) -> bool:
    return not np.all(np.isfinite(np.asarray(value, dtype=float)))


def _softmax_cases(rng: np.random.Generator) -> list:
    from minicnn.losses import SoftmaxCrossEntropy

    cases = []
    r = _rng(50)
    geometry = [(4, 3, 1.0), (1, 5, 2.0), (6, 10, 1.0), (3, 4, 1000.0),
                (int(rng.integers(2, 7)), int(rng.integers(2, 8)), float(rng.choice([1.0, 3.0, 500.0])))]
    overflow = "overflow: exp of a large logit is inf. Subtract each row's max before exp (softmax is unchanged)"
    underflow = ("the loss is not finite. Without the shift, exp of a large logit overflows: subtract each "
                 "row's max first. With it, log(p) is -inf where p underflowed to 0 (a logit far below its "
                 "row's max): never take log(softmax); use log-sum-exp, log p = shifted - "
                 "log(sum(exp(shifted))) with shifted = z - max")
    for k, (n, c, scale) in enumerate(geometry):
        z = (r if k < 4 else rng).standard_normal((n, c)) * scale
        labels = (r if k < 4 else rng).integers(0, c, n)
        if scale > 100:  # a label far below its row's max: its probability underflows to 0
            labels[0] = int(np.argmin(z[0]))
        ce = SoftmaxCrossEntropy()
        loss = ce.forward(z, labels)
        d = ce.backward()
        label = ("" if k < 4 else RANDOM) + f"logits {_shape(z)}" + (f" large (|z| ~ {scale:g})" if scale > 100 else "")
        cases.append(ValueCase(
            label, "softmax_cross_entropy", (z, labels), {"loss": loss, "dlogits": d},
            [Mistake("loss", None, underflow, when=_not_finite),
             Mistake("dlogits", None, overflow, when=_not_finite),
             Mistake("loss", lambda z=z, y=labels: _softmax_axis0(z, y)[0],
                     "take each ROW's max (axis=1, keepdims=True): one sample per row, classes along axis 1"),
             Mistake("dlogits", lambda z=z, y=labels: _softmax_axis0(z, y)[1],
                     "take each ROW's max (axis=1, keepdims=True): one sample per row, classes along axis 1"),
             Mistake("loss", lambda loss=loss, n=n: loss * n, "the loss is the MEAN over the batch, not the sum"),
             Mistake("dlogits", lambda d=d, n=n: d * n,
                     "the loss is a mean over N rows, so divide the gradient by N too"),
             Mistake("dlogits", lambda z=z: np.exp(z - z.max(1, keepdims=True)) /
                     np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True) / len(z),
                     "subtract 1 at the true class: dL/dz = (softmax(z) - onehot(y)) / N")]))
    rg = _rng(51)
    zg, yg = rg.standard_normal((4, 5)), rg.integers(0, 5, 4)

    def layer(fns):
        f = fns["softmax_cross_entropy"]
        return _Wrapped(lambda lay, z: np.array([f(z, yg)[0]]), lambda lay, z, dy: dy[0] * f(z, yg)[1])

    cases.append(GradCase("logits (4,5)", "softmax_cross_entropy", layer, zg))
    return _with_float32(cases)


def _softmax_axis0(z: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """The wrong shift: each COLUMN's max subtracted (axis 0), then the softmax over the rows' classes."""
    shifted = z - z.max(axis=0, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = len(z)
    d = np.exp(log_p)
    d[np.arange(n), labels] -= 1
    return float(-log_p[np.arange(n), labels].mean()), d / n


# ---- 4 conv2d by direct loops --------------------------------------------------------------

_CONV_SHAPES = [  # (x shape, w shape, stride, padding)
    ((1, 1, 5, 5), (1, 1, 3, 3), 1, 0),
    ((2, 3, 7, 6), (4, 3, 3, 2), 1, 0),
    ((2, 2, 7, 7), (3, 2, 3, 3), 2, 1),
    ((1, 2, 6, 5), (2, 2, 2, 3), 2, 2),
    ((2, 3, 8, 9), (2, 3, 5, 3), 3, 1),
]


_SIZE_HINT = "the output size is OH = (H + 2*padding - KH) // stride + 1 (and OW alike)"


def _conv_label(x, w, s, p) -> str:
    return f"x {_shape(x)} w {_shape(w)} stride {s} pad {p}"


def _conv2d_direct_cases(rng: np.random.Generator) -> list:
    cases = []
    for k, (xs, ws, s, p) in enumerate(_CONV_SHAPES + _random_convs(rng, 3)):
        r, tag = _pick(k, len(_CONV_SHAPES), 60, rng)
        x, w, b = r.standard_normal(xs), r.standard_normal(ws), r.standard_normal(ws[0])
        cases.append(ValueCase(
            tag + _conv_label(x, w, s, p), "conv2d", (x, w, b, s, p), {"y": F.conv2d(x, w, b, s, p, method="direct")},
            [Mistake("y", lambda x=x, w=w, b=b, s=s, p=p: F.conv2d(x, w[:, :, ::-1, ::-1].copy(), b, s, p),
                     "you flipped the kernel: a CNN 'convolution' is a cross-correlation, w[t, s, i, j] "
                     "multiplies x_pad[n, s, oh*stride + i, ow*stride + j]"),
             Mistake("y", lambda x=x, w=w, s=s, p=p: F.conv2d(x, w, None, s, p), "add the bias b[t] to output map t"),
             Mistake("y", lambda x=x, w=w, b=b, s=s: F.conv2d(x, w, b, s, 0),
                     "pad x with `padding` zeros on every side first (np.pad), then slide the window"),
             Mistake("y", lambda x=x, w=w, b=b, p=p: F.conv2d(x, w, b, 1, p),
                     "stride: output (oh, ow) starts at x_pad[oh*stride, ow*stride]; OH = (H+2P-KH)//stride + 1"),
             Mistake("y", lambda x=x, w=w, b=b, s=s, p=p: _stride_ignored(F.conv2d(x, w, b, 1, p), s),
                     _STRIDE_HINT)],
            shape_hint=_SIZE_HINT))
    return _with_float32(cases)


_STRIDE_HINT = ("the stride is ignored: output (oh, ow) reads the window that starts at x_pad[oh*stride, "
                "ow*stride], not at x_pad[oh, ow]")


def _stride_ignored(stride1: np.ndarray, s: int) -> np.ndarray | None:
    """The wrong answer of a loop that gets OH right but steps 1 pixel: the stride-1 result's corner."""
    oh, ow = -(-(stride1.shape[2]) // s), -(-(stride1.shape[3]) // s)  # the strided output's size
    return None if s == 1 else stride1[:, :, :oh, :ow]


# ---- 5 dx as a correlation with the flipped kernel ------------------------------------------

_DX_SHAPES = [  # (x shape, w shape, padding); stride 1
    ((1, 1, 3, 3), (1, 1, 2, 2), 0),
    ((2, 3, 7, 6), (4, 3, 3, 3), 0),
    ((2, 2, 6, 5), (2, 2, 3, 3), 1),
    ((1, 3, 5, 5), (2, 3, 3, 3), 2),
    ((2, 2, 5, 6), (3, 2, 3, 2), 1),
    ((1, 2, 6, 5), (2, 2, 2, 2), 3),  # padding > KH-1: the padded dy is cut, not padded
]


def _pad(a: np.ndarray, ph: int, pw: int) -> np.ndarray:
    return np.pad(a, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def _dx_cases(rng: np.random.Generator) -> list:
    cases = []
    randoms = [(xs, ws, p) for xs, ws, _, p in _random_convs(rng, 3, max_pad=4)]
    for k, (xs, ws, p) in enumerate(_DX_SHAPES + randoms):
        r, tag = _pick(k, len(_DX_SHAPES), 70, rng)
        x, w = r.standard_normal(xs), r.standard_normal(ws)
        dy = r.standard_normal(F.conv2d(x, w, padding=p).shape)
        dx = F.conv2d_backward(dy, x, w, padding=p)[0]
        kh, kw = ws[2:]
        swap = w.transpose(1, 0, 2, 3).copy()  # (C, T, KH, KW) not flipped
        flip = swap[:, :, ::-1, ::-1].copy()
        mistakes = [
            Mistake("dx", lambda dy=dy, swap=swap, p=p: _full_cut(dy, swap, p),
                    "dx looks like a correlation with the UNFLIPPED kernel: flip both spatial axes, "
                    "w_back = w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]"),
            Mistake("dx", lambda dy=dy, flip=flip: _full_cut(dy, flip, 0),
                    "pad dy by KH-1-padding (not KH-1): the forward's padding rows are not part of x"),
            Mistake("dx", lambda dy=dy, flip=flip, p=p: F.conv2d(dy, flip, padding=p),
                    "pad dy by KH-1-padding for the FULL correlation, not by the forward's padding"),
        ]
        if ws[0] == ws[1]:
            flip_only = w[:, :, ::-1, ::-1].copy()
            mistakes.append(Mistake(
                "dx", lambda dy=dy, f=flip_only, p=p: _full_cut(dy, f, p),
                "swap the channel axes too: w_back[s, t] = flipped w[t, s], i.e. w.transpose(1, 0, 2, 3)"))
        cases.append(ValueCase(f"{tag}dy {_shape(dy)} w {_shape(w)} pad {p}", "conv2d_input_grad", (dy, w),
                               {"dx": dx}, mistakes, kwargs={"padding": p}))
    rg = _rng(79)
    wg = rg.standard_normal((3, 2, 3, 3))

    def layer(fns):
        return _Wrapped(lambda lay, x: F.conv2d(x, wg, padding=1),
                        lambda lay, x, dy: fns["conv2d_input_grad"](dy, wg, padding=1))

    cases.append(GradCase("x (2,2,5,4), w (3,2,3,3), pad 1", "conv2d_input_grad", layer,
                          rg.standard_normal((2, 2, 5, 4))))
    return _with_float32(cases)


def _full_cut(dy: np.ndarray, w_back: np.ndarray, p: int) -> np.ndarray:
    """The full correlation of dy with w_back (padded by KH-1, KW-1), cut by p on every side."""
    kh, kw = w_back.shape[2:]
    full = F.conv2d(_pad(dy, kh - 1, kw - 1), w_back)
    return full[:, :, p:full.shape[2] - p, p:full.shape[3] - p]


# ---- 6 dK as the correlation of x and dy ------------------------------------------------------


def _dw_cases(rng: np.random.Generator) -> list:
    cases = []
    for k, (xs, ws, s, p) in enumerate(_CONV_SHAPES + _random_convs(rng, 3)):
        r, tag = _pick(k, len(_CONV_SHAPES), 80, rng)
        x, w = r.standard_normal(xs), r.standard_normal(ws)
        dy = r.standard_normal(F.conv2d(x, w, stride=s, padding=p).shape)
        dw = F.conv2d_backward(dy, x, w, stride=s, padding=p)[1]
        mistakes = [
            Mistake("dw", lambda dw=dw: dw[:, :, ::-1, ::-1],
                    "dw is flipped: correlate x with dy, dw[t, s, i, j] = sum dy[n, t, oh, ow] * "
                    "x_pad[n, s, oh*stride + i, ow*stride + j], i.e. offset (i, j) from the window start"),
            Mistake("dw", lambda dw=dw, n=xs[0]: dw / n, "sum over the batch; do not average (no division by N)"),
            Mistake("dw", lambda dy=dy, x=x, w=w, s=s, p=p: F.conv2d_backward(dy[:1], x[:1], w, stride=s, padding=p)[1]
                    if len(x) > 1 else None,
                    "that is image 0's gradient only: sum dy * window over EVERY image n of the batch"),
            Mistake("dw", lambda dy=dy, x=x, ws=ws, s=s, p=p: _dw_stride_ignored(dy, x, ws, s, p), _STRIDE_HINT +
                    ": the inputs offset (i, j) met are xp[:, :, i::stride, j::stride], cut to OH x OW"),
        ]
        if ws[0] == ws[1]:
            mistakes.append(Mistake("dw", lambda dw=dw: dw.transpose(1, 0, 2, 3),
                                    "dw is (T, C, KH, KW): output channel first, like w"))
        cases.append(ValueCase(f"{tag}x {_shape(x)} dy {_shape(dy)} stride {s} pad {p}", "conv2d_weight_grad",
                               (dy, x, ws[2:]), {"dw": dw}, mistakes, kwargs={"stride": s, "padding": p}))
    rg = _rng(89)

    def layer(fns):
        def backward(lay, x, dy):
            lay.weight.grad += fns["conv2d_weight_grad"](dy, x, (3, 2), stride=2, padding=1)
            return F.conv2d_backward(dy, x, lay.weight.data, stride=2, padding=1)[0]
        return _Wrapped(lambda lay, x: F.conv2d(x, lay.weight.data, stride=2, padding=1), backward,
                        weight=rg.standard_normal((3, 2, 3, 2)))

    cases.append(GradCase("x (2,2,6,5), w (3,2,3,2), stride 2, pad 1", "conv2d_weight_grad", layer,
                          rg.standard_normal((2, 2, 6, 5))))
    return _with_float32(cases)


def _dw_stride_ignored(dy: np.ndarray, x: np.ndarray, ws: tuple, s: int, p: int) -> np.ndarray | None:
    """The wrong dw of a loop that steps 1 pixel: offset (i, j) meets xp[:, :, i:i+OH, j:j+OW]."""
    if s == 1:
        return None
    kh, kw = ws[2:]
    oh, ow = dy.shape[2:]
    xp = _pad(x, p, p)
    dw = np.zeros(ws)
    for i in range(kh):
        for j in range(kw):
            window = xp[:, :, i:i + oh, j:j + ow]
            if window.shape[2:] != (oh, ow):
                return None
            dw[:, :, i, j] = np.einsum("ntpq,nspq->ts", dy, window)
    return dw


# ---- 7 im2col + one matrix multiply ----------------------------------------------------------


def _im2col_cases(rng: np.random.Generator) -> list:
    cases = []
    for k, (xs, ws, s, p) in enumerate(_CONV_SHAPES + _random_convs(rng, 2)):
        r, tag = _pick(k, len(_CONV_SHAPES), 90, rng)
        x = r.standard_normal(xs)
        kh, kw = ws[2:]
        cols = F.im2col(x, (kh, kw), (s, s), (p, p))
        c = xs[1]
        cases.append(ValueCase(
            f"{tag}x {_shape(x)} kernel {kh}x{kw} stride {s} pad {p}", "im2col", (x, kh, kw, s, p), {"cols": cols},
            [Mistake("cols", lambda cols=cols: cols.T,
                     "one COLUMN per output position: shape (C*KH*KW, N*OH*OW); you returned the transpose"),
             Mistake("cols", lambda cols=cols, c=c, kh=kh, kw=kw:
                     cols.reshape(c, kh, kw, -1).transpose(1, 2, 0, 3).reshape(cols.shape),  # rows (i, j, c)
                     "rows are ordered (c, i, j) with the channel slowest: row c*KH*KW + i*KW + j"),
             Mistake("cols", lambda cols=cols, n=xs[0]:
                     cols.reshape(cols.shape[0], n, -1).transpose(0, 2, 1).reshape(cols.shape),  # (oh, ow, n)
                     "columns are ordered (n, oh, ow) with the image slowest: column n*OH*OW + oh*OW + ow"),
             Mistake("cols", lambda x=x, kh=kh, kw=kw, s=s, p=p, cols=cols: _cols_stride_ignored(x, kh, kw, s, p, cols),
                     _STRIDE_HINT + ": take xp[:, :, i::stride, j::stride] for offset (i, j)")],
            exact=True, shape_hint="cols is (C*KH*KW, N*OH*OW) with " + _SIZE_HINT))
    for k, (xs, ws, s, p) in enumerate(_CONV_SHAPES[1:] + _random_convs(rng, 2)):
        r, tag = _pick(k, len(_CONV_SHAPES) - 1, 95, rng)
        x, w, b = r.standard_normal(xs), r.standard_normal(ws), r.standard_normal(ws[0])
        y = F.conv2d(x, w, b, s, p)
        cases.append(ValueCase(
            tag + _conv_label(x, w, s, p), "conv2d_im2col", (x, w, b, s, p), {"y": y},
            [Mistake("y", lambda y=y, b=b: (y - b.reshape(1, -1, 1, 1)).transpose(1, 0, 2, 3).reshape(y.shape)
                     + b.reshape(1, -1, 1, 1),
                     "the product is (T, N*OH*OW): reshape it to (T, N, OH, OW), then transpose(1, 0, 2, 3)"),
             Mistake("y", lambda y=y, b=b: y - b.reshape(1, -1, 1, 1), "add the bias b[t] to output map t")],
            shape_hint=_SIZE_HINT))
    return _with_float32(cases)


def _cols_stride_ignored(x, kh, kw, s, p, cols) -> np.ndarray | None:
    """The wrong columns of a loop that steps 1 pixel: the stride-1 windows, cut to OH x OW."""
    if s == 1:
        return None
    n = x.shape[0]
    one = F.im2col(x, (kh, kw), (1, 1), (p, p))
    oh1, ow1 = x.shape[2] + 2 * p - kh + 1, x.shape[3] + 2 * p - kw + 1
    oh = (x.shape[2] + 2 * p - kh) // s + 1
    ow = (x.shape[3] + 2 * p - kw) // s + 1
    return one.reshape(-1, n, oh1, ow1)[:, :, :oh, :ow].reshape(cols.shape)  # (C*KH*KW, N, OH, OW)


# ---- 8 max pooling ---------------------------------------------------------------------------

_POOL_SHAPES = [  # (x shape, kernel, stride)
    ((1, 1, 4, 4), 2, 2),
    ((2, 3, 5, 7), 2, 2),
    ((2, 2, 7, 7), 3, 2),
    ((1, 2, 5, 6), 3, 1),
]


def _distinct(r: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Values with no ties and gaps >= 0.01 (the gradient check's steps never change a window's max)."""
    return (r.permutation(int(np.prod(shape))).reshape(shape) * 0.01 + 0.001 * r.random(shape)) - 0.5


def _route_assign(dy: np.ndarray, x: np.ndarray, k: int, s: int) -> np.ndarray:
    """Wrong routing: dx[winner] = dy (assigned), so overlapping windows overwrite each other."""
    _, idx = F.max_pool2d(x, k, s)
    dx = np.zeros(x.shape)
    n, c, oh, ow = dy.shape
    for p in range(oh):
        for q in range(ow):
            i, j = np.divmod(idx[:, :, p, q].astype(int), k)
            nn, cc = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
            dx[nn, cc, p * s + i, q * s + j] = dy[:, :, p, q]
    return dx


def _route_ties(dy: np.ndarray, x: np.ndarray, k: int, s: int) -> np.ndarray:
    """Wrong routing: dy to every position equal to the window max (all tied winners)."""
    y, _ = F.max_pool2d(x, k, s)
    dx = np.zeros(x.shape)
    for p in range(dy.shape[2]):
        for q in range(dy.shape[3]):
            win = x[:, :, p * s:p * s + k, q * s:q * s + k]
            tied = win == y[:, :, p:p + 1, q:q + 1]  # (N, C, k, k): every position equal to the max
            dx[:, :, p * s:p * s + k, q * s:q * s + k] += tied * dy[:, :, p:p + 1, q:q + 1]
    return dx


def _max_pool_cases(rng: np.random.Generator) -> list:
    cases = []
    randoms = []
    for _ in range(2):
        kk, st = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        randoms.append(((int(rng.integers(1, 3)), int(rng.integers(1, 3)), int(rng.integers(kk, 9)),
                         int(rng.integers(kk, 9))), kk, st))
    for k, (xs, kk, s) in enumerate(_POOL_SHAPES + randoms):
        r, tag = _pick(k, len(_POOL_SHAPES), 100, rng)
        x = _distinct(r, xs)
        cases.append(ValueCase(f"{tag}x {_shape(x)} kernel {kk} stride {s}", "max_pool2d", (x, kk, s),
                               {"y": F.max_pool2d(x, kk, s)[0]},
                               [Mistake("y", lambda x=x, kk=kk, s=s: F.avg_pool2d(x, kk, s),
                                        "that is the average; take the max of each window")],
                               shape_hint="OH = (H - K) // stride + 1: windows that would stick out are dropped"))
    ties = np.array([[[[1, 3, 3, 0, 2], [3, 1, 0, 3, 2], [2, 2, 1, 1, 0], [0, 2, 2, 1, 1]]]], float)
    geometry = _POOL_SHAPES + [((1, 1, 4, 5), 2, 2)] + randoms
    for k, (xs, kk, s) in enumerate(geometry):
        r, tag = _pick(k, len(_POOL_SHAPES) + 1, 110, rng)
        x = ties if k == len(_POOL_SHAPES) else _distinct(r, xs)
        y, idx = F.max_pool2d(x, kk, s)
        dy = r.standard_normal(y.shape)
        dx = F.max_pool2d_backward(dy, idx, x.shape, kk, s)
        label = tag + f"x {_shape(x)} kernel {kk} stride {s}" + (" ties" if x is ties else "")
        cases.append(ValueCase(label, "max_pool2d_backward", (dy, x, kk, s), {"dx": dx}, [
            Mistake("dx", lambda dy=dy, x=x, kk=kk, s=s: F.sum_pool2d_backward(dy, x.shape, kk, s),
                    "route dy only to the max of its window, not to every element of the window"),
            Mistake("dx", lambda dy=dy, x=x, kk=kk, s=s: F.avg_pool2d_backward(dy, x.shape, kk, s),
                    "that is average pooling's backward; route all of dy to the window's max"),
            Mistake("dx", lambda dy=dy, x=x, kk=kk, s=s: _route_assign(dy, x, kk, s),
                    "windows overlap (stride < kernel): ADD (+=) into dx; an input that wins two windows "
                    "gets both gradients"),
            Mistake("dx", lambda dy=dy, x=x, kk=kk, s=s: _route_ties(dy, x, kk, s),
                    "on a tie route dy to the FIRST maximum only (np.argmax of the flattened window)")]))
    rg = _rng(119)

    def layer(fns):
        return _Wrapped(lambda lay, x: F.max_pool2d(x, 3, 2)[0],
                        lambda lay, x, dy: fns["max_pool2d_backward"](dy, x, 3, 2))

    cases.append(GradCase("x (2,2,7,7), kernel 3, stride 2", "max_pool2d_backward", layer,
                          _distinct(rg, (2, 2, 7, 7))))
    return _with_float32(cases)


# ---- 9 average pooling backward --------------------------------------------------------------


def _avg_assign(dy: np.ndarray, x_shape: tuple[int, ...], k: int, s: int, p: int) -> np.ndarray:
    """Wrong: each window's share assigned (=), so overlapping windows overwrite each other."""
    n, c, h, w = x_shape
    dxp = np.zeros((n, c, h + 2 * p, w + 2 * p))
    for a in range(dy.shape[2]):
        for b in range(dy.shape[3]):
            dxp[:, :, a * s:a * s + k, b * s:b * s + k] = dy[:, :, a:a + 1, b:b + 1] / (k * k)
    return dxp[:, :, p:p + h, p:p + w]


def _avg_assign_taps(dy: np.ndarray, x_shape: tuple[int, ...], k: int, s: int, p: int) -> np.ndarray:
    """Wrong: the share assigned (=) once per window offset (i, j), so the last offset overwrites."""
    n, c, h, w = x_shape
    oh, ow = dy.shape[2:]
    dxp = np.zeros((n, c, h + 2 * p, w + 2 * p))
    for i in range(k):
        for j in range(k):
            dxp[:, :, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s] = dy / (k * k)
    return dxp[:, :, p:p + h, p:p + w]


def _avg_pool_cases(rng: np.random.Generator) -> list:
    cases = []
    geometry = [((1, 1, 4, 4), 2, 2, 0), ((2, 2, 5, 5), 2, 2, 0), ((1, 2, 5, 6), 3, 1, 0), ((2, 1, 7, 7), 3, 2, 1),
                ((1, 1, 5, 5), 3, 2, 1)]
    for _ in range(2):
        kk = int(rng.integers(2, 4))
        geometry.append(((int(rng.integers(1, 3)), int(rng.integers(1, 3)), int(rng.integers(kk, 9)),
                          int(rng.integers(kk, 9))), kk, int(rng.integers(1, 4)), int(rng.integers(0, kk // 2 + 1))))
    for k, (xs, kk, s, p) in enumerate(geometry):
        r, tag = _pick(k, 5, 120, rng)
        x = r.standard_normal(xs)
        dy = r.standard_normal(F.avg_pool2d(x, kk, s, p).shape)
        cases.append(ValueCase(
            f"{tag}x {_shape(x)} kernel {kk} stride {s} pad {p}", "avg_pool2d_backward", (dy, xs, kk, s),
            {"dx": F.avg_pool2d_backward(dy, xs, kk, s, p)},
            [Mistake("dx", lambda dy=dy, xs=xs, kk=kk, s=s, p=p: F.sum_pool2d_backward(dy, xs, kk, s, p),
                     "divide by K*K: each value of a window counts 1/(K*K) in its mean"),
             Mistake("dx", lambda dy=dy, xs=xs, kk=kk, s=s, p=p: F.sum_pool2d_backward(dy, xs, kk, s, p) / kk,
                     "divide by K*K (the window's area), not by K"),
             Mistake("dx", lambda dy=dy, xs=xs, kk=kk, s=s, p=p: _avg_assign(dy, xs, kk, s, p),
                     "windows overlap (stride < kernel): ADD (+=) every window's share, do not assign"),
             Mistake("dx", lambda dy=dy, xs=xs, kk=kk, s=s, p=p: _avg_assign_taps(dy, xs, kk, s, p),
                     "windows overlap (stride < kernel): ADD (+=) every window's share, do not assign"),
             Mistake("dx", lambda dy=dy, xs=xs, kk=kk, s=s, p=p: F.avg_pool2d_backward(
                 dy, (xs[0], xs[1], xs[2] + 2 * p, xs[3] + 2 * p), kk, s, 0),
                     "cut the padding off: dx has the shape of x, dx = dx_pad[:, :, P:P+H, P:P+W]"),
             Mistake("dx", lambda dy=dy, xs=xs, kk=kk, s=s, p=p: _avg_real_count(dy, xs, kk, s, p) if p else None,
                     "divide by K*K, the whole window, padding zeros included (as the forward does), not by "
                     "the number of real pixels in the window"),
             Mistake("dx", lambda dy=dy, xs=xs, kk=kk, s=s, p=p: F.avg_pool2d_backward(
                 dy, (xs[0], xs[1], xs[2] + 2 * p, xs[3] + 2 * p), kk, s, 0)[:, :, :xs[2], :xs[3]] if p else None,
                     "the padding offset is missing: window (oh, ow) covers x_pad rows oh*stride .. oh*stride+K-1, "
                     "which are x rows oh*stride - P ..; accumulate into the padded buffer, then cut P off")],
            kwargs={"padding": p}))
    rg = _rng(129)

    def layer(fns):
        return _Wrapped(lambda lay, x: F.avg_pool2d(x, 3, 2, 1),
                        lambda lay, x, dy: fns["avg_pool2d_backward"](dy, x.shape, 3, 2, padding=1))

    cases.append(GradCase("x (2,2,7,6), kernel 3, stride 2, pad 1", "avg_pool2d_backward", layer,
                          rg.standard_normal((2, 2, 7, 6))))
    return _with_float32(cases)


def _avg_real_count(dy: np.ndarray, x_shape: tuple, k: int, s: int, p: int) -> np.ndarray:
    """Wrong: each window's dy divided by the number of REAL (not padding) pixels it covers."""
    n, c, h, w = x_shape
    real = np.zeros((1, 1, h + 2 * p, w + 2 * p))
    real[:, :, p:p + h, p:p + w] = 1
    count = np.rint(F.avg_pool2d(real, k, s) * (k * k))  # (1, 1, OH, OW): real pixels per window
    return F.sum_pool2d_backward(dy / count, x_shape, k, s, p)


# ---- 10 receptive field, 11 output size ----------------------------------------------------


def _rf_cases(rng: np.random.Generator) -> list:
    from minicnn.analysis import receptive_field_of

    stacks = [[(3, 1), (3, 1)], [(5, 1), (5, 1)], [(3, 2), (3, 1)], [(5, 2), (5, 1)],
              [(3, 2), (3, 2), (3, 1)], [(7, 2), (3, 2), (3, 1), (3, 1)], [(1, 1)], [(2, 2), (2, 2), (2, 2)]]
    stacks += [[(int(rng.integers(1, 8)), int(rng.integers(1, 4))) for _ in range(int(rng.integers(2, 6)))]
               for _ in range(2)]
    cases = []
    for index, layers in enumerate(stacks):
        strides = [s for _, s in layers]
        cases.append(ValueCase(
            (RANDOM if index >= len(stacks) - 2 else "") + " ".join(f"{k}/{s}" for k, s in layers)
            + "  (kernel/stride)", "receptive_field", (list(layers),),
            {"r": receptive_field_of(layers)},
            [Mistake("r", lambda L=layers: 1 + sum(k - 1 for k, _ in L),
                     "strides matter: a layer after a stride-s layer steps s input pixels per position; "
                     "add (k - 1) * jump, jump = product of the EARLIER strides"),
             Mistake("r", lambda L=layers, st=strides: 1 + sum((k - 1) * int(np.prod(st[:i + 1]))
                                                   for i, (k, _) in enumerate(L)),
                     "use the strides of the layers BEFORE this one: update jump after adding (k - 1) * jump"),
             Mistake("r", lambda L=layers: sum(k for k, _ in L),
                     "stacked windows overlap: each layer adds k - 1 (times the jump), starting from 1")]))
    return cases


def _output_size_cases(rng: np.random.Generator) -> list:
    args = [(28, 5, 1, 0, 1), (7, 3, 2, 1, 1), (6, 3, 2, 0, 1), (10, 3, 1, 2, 2), (5, 2, 3, 0, 1),
            (32, 3, 1, 1, 1), (9, 3, 2, 0, 3), (11, 4, 3, 2, 2)]
    for _ in range(2):
        k, d = int(rng.integers(1, 6)), int(rng.integers(1, 4))
        p = int(rng.integers(0, 4))
        args.append((int(rng.integers(max(d * (k - 1) + 1 - 2 * p, 1), 40)), k, int(rng.integers(1, 4)), p, d))
    cases = []
    for index, (size, k, s, p, d) in enumerate(args):
        cases.append(ValueCase(
            (RANDOM if index >= len(args) - 2 else "") + f"size {size} kernel {k} stride {s} pad {p} dilation {d}",
            "conv_output_size", (size, k, s, p, d),
            {"out": F.conv_output_size(size, k, s, p, d)},
            [Mistake("out", lambda size=size, k=k, s=s, p=p: (size + 2 * p - k) // s + 1,
                     "dilation spreads the taps: the window spans dilation*(kernel-1)+1 positions"),
             Mistake("out", lambda size=size, k=k, s=s, p=p, d=d: (size + p - d * (k - 1) - 1) // s + 1,
                     "padding is added on BOTH sides: 2*padding"),
             Mistake("out", lambda size=size, k=k, s=s, p=p, d=d: -(-(size + 2 * p - d * (k - 1) - 1) // s) + 1,
                     "floor, not ceil: a last window that would stick out is dropped (use //)"),
             Mistake("out", lambda size=size, k=k, s=s, p=p, d=d: (size + 2 * p - d * (k - 1) - 1) // s,
                     "count the first position too: + 1 at the end")]))
    return cases


# ---- 12 space-to-depth -----------------------------------------------------------------------


def _s2d_channel_minor(y: np.ndarray, r: int) -> np.ndarray:
    """Wrong order for space_to_depth's output: channel (i*r + j)*C + c instead of c*r*r + i*r + j."""
    n, crr, h, w = y.shape
    return y.reshape(n, crr // (r * r), r * r, h, w).swapaxes(1, 2).reshape(y.shape)  # (N, r*r, C, H, W) order


def _s2d_ij_swapped(y: np.ndarray, r: int) -> np.ndarray:
    n, crr, h, w = y.shape
    return y.reshape(n, crr // (r * r), r, r, h, w).swapaxes(2, 3).reshape(y.shape)  # (N, C, j, i, H, W) order


def _s2d_cases(rng: np.random.Generator) -> list:
    cases = []
    f = int(rng.integers(2, 4))
    shape = (int(rng.integers(1, 3)), int(rng.integers(1, 4)), f * int(rng.integers(1, 4)), f * int(rng.integers(1, 4)))
    for k, (xs, r) in enumerate([((1, 1, 4, 4), 2), ((2, 3, 6, 4), 2), ((1, 2, 6, 9), 3), (shape, f)]):
        x = _pick(k, 3, 130, rng)[0].standard_normal(xs)
        y = F.space_to_depth(x, r)
        cases.append(ValueCase(f"{_pick(k, 3, 130, rng)[1]}x {_shape(x)} r {r}", "space_to_depth", (x, r), {"y": y}, [
            Mistake("y", lambda y=y, r=r: _s2d_channel_minor(y, r),
                    "channel order: the r*r values of input channel c go to channels c*r*r .. c*r*r + r*r - 1 "
                    "(channel c slowest)"),
            Mistake("y", lambda y=y, r=r: _s2d_ij_swapped(y, r),
                    "within a block, the row offset i varies slower than the column offset j: channel "
                    "c*r*r + i*r + j")], exact=True))
    shape = (shape[0], shape[1] * f * f, shape[2] // f, shape[3] // f)
    for k, (xs, r) in enumerate([((1, 4, 2, 2), 2), ((2, 12, 2, 3), 2), ((1, 18, 2, 1), 3), (shape, f)]):
        y = _pick(k, 3, 135, rng)[0].standard_normal(xs)
        x = F.depth_to_space(y, r)
        cases.append(ValueCase(f"{_pick(k, 3, 135, rng)[1]}y {_shape(y)} r {r}", "depth_to_space", (y, r), {"x": x}, [
            Mistake("x", lambda y=y, r=r: F.depth_to_space(_s2d_channel_minor(y, r), r),
                    "channel order: channels c*r*r .. c*r*r + r*r - 1 hold the block of output channel c"),
            Mistake("x", lambda y=y, r=r: F.depth_to_space(_s2d_ij_swapped(y, r), r),
                    "channel c*r*r + i*r + j holds row offset i, column offset j (i slower)")], exact=True))
    x = _rng(139).standard_normal((2, 2, 6, 6))
    cases.append(ValueCase("depth_to_space(space_to_depth(x, 3), 3) == x", "depth_to_space",
                           expected={"x": x}, exact=True,
                           run=lambda fns: fns["depth_to_space"](fns["space_to_depth"](x.copy(), 3), 3)))
    return _with_float32(cases)


# ---- 13 batch norm ---------------------------------------------------------------------------


def _bn_cases(rng: np.random.Generator) -> list:
    cases = []
    random_shape = tuple(int(v) for v in rng.integers(2, 5, int(rng.choice([2, 4]))))
    for k, shape in enumerate([(6, 3), (4, 2, 3, 3), (2, 3, 4, 5), random_shape]):
        r, tag = _pick(k, 3, 140, rng)
        x = r.standard_normal(shape) * 2 + 1
        gamma, eps = r.standard_normal(shape[1]), 1e-5
        dy = r.standard_normal(shape)
        _, x_hat, inv_std, _, _ = F.batch_norm_train(x, gamma, np.zeros(shape[1]), eps)
        dx, dgamma, dbeta = F.batch_norm_backward(dy, x_hat, inv_std, gamma)
        per = (1, -1) + (1,) * (len(shape) - 2)
        axes = (0,) + tuple(range(2, len(shape)))
        cases.append(ValueCase(
            f"{tag}x {_shape(x)}", "batch_norm_backward", (dy, x, gamma, eps),
            {"dx": dx, "dgamma": dgamma, "dbeta": dbeta},
            [Mistake("dx", lambda dy=dy, g=gamma, s=inv_std, per=per: (g * s).reshape(per) * dy,
                     "mu and var depend on x too: dx = gamma/sqrt(var+eps) * (dy - mean(dy) - x_hat*mean(dy*x_hat))"),
             Mistake("dx", lambda dy=dy, g=gamma, s=inv_std, per=per, axes=axes:
                     (g * s).reshape(per) * (dy - dy.mean(axis=axes, keepdims=True)),
                     "the variance term is missing: also subtract x_hat * mean(dy * x_hat)"),
             Mistake("dgamma", lambda dy=dy, xh=x_hat: (dy * xh).sum(axis=0),
                     "sum over every axis except the channels: axis (0, 2, 3) for 4-D input"),
             Mistake("dbeta", lambda dy=dy: dy.sum(axis=0),
                     "sum over every axis except the channels: axis (0, 2, 3) for 4-D input"),
             Mistake("dgamma", lambda dy=dy, x=x, axes=axes: (dy * x).sum(axis=axes),
                     "dgamma = sum dy * x_hat (the normalised input), not dy * x"),
             Mistake("dx", lambda dy=dy, x=x, g=gamma, per=per, eps=eps: _bn_backward(dy, x, g, eps, (0,), per)[0]
                     if x.ndim > 2 else None,
                     "mu and var are over every axis but the channels, (0, 2, 3) for 4-D input, not axis 0 only"),
             Mistake("dx", lambda dy=dy, x=x, g=gamma, per=per, axes=axes, eps=eps: _bn_backward(
                 dy, x, g, eps, axes, per, unbiased=True)[0],
                     "training mode normalises with the BIASED variance (divide by M, ddof=0), not M - 1"),
             Mistake("dgamma", lambda dy=dy, xh=x_hat, axes=axes: (dy * xh).mean(axis=axes),
                     "dgamma and dbeta are SUMS over the batch and the positions, not means"),
             Mistake("dbeta", lambda dy=dy, axes=axes: dy.mean(axis=axes),
                     "dgamma and dbeta are SUMS over the batch and the positions, not means")]))
    rg = _rng(149)

    def layer(fns):
        def forward(lay, x):
            return F.batch_norm_train(x, lay.weight.data, lay.bias.data, 1e-5)[0]

        def backward(lay, x, dy):
            dx, dgamma, dbeta = fns["batch_norm_backward"](dy, x, lay.weight.data, 1e-5)
            lay.weight.grad += dgamma
            lay.bias.grad += dbeta
            return dx
        return _Wrapped(forward, backward, weight=rg.standard_normal(2), bias=rg.standard_normal(2))

    cases.append(GradCase("x (3,2,2,3), gamma, beta", "batch_norm_backward", layer, rg.standard_normal((3, 2, 2, 3))))
    return _with_float32(cases)


def _bn_backward(dy: np.ndarray, x: np.ndarray, gamma: np.ndarray, eps: float, axes: tuple, per: tuple,
                 unbiased: bool = False) -> tuple:
    """Batch norm's backward with the statistics over `axes` (and the unbiased variance if asked): the
    right rule when axes are all but the channels, a known wrong answer otherwise."""
    m = int(np.prod([x.shape[a] for a in axes]))
    mu = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True, ddof=1 if unbiased else 0)
    inv_std = 1 / np.sqrt(var + eps)
    x_hat = (x - mu) * inv_std
    dbeta = dy.sum(axis=axes, keepdims=True)
    dgamma = (dy * x_hat).sum(axis=axes, keepdims=True)
    dx = gamma.reshape(per) * inv_std * (dy - dbeta / m - x_hat * dgamma / m)
    return dx, dgamma, dbeta


# ---- 14 DCT-domain weight, 15 zigzag mask ----------------------------------------------------


def _dct_cases(rng: np.random.Generator) -> list:
    from minicnn.layers import DCTConv2D, DCTLinear

    cases = []
    import scipy.fft

    ci, co, kh = (int(v) for v in rng.integers(1, 4, 3))
    random_layer = DCTConv2D(ci, co, kh, bias=False, keep=int(rng.integers(1, ci * co * kh * kh + 1)))
    layers = [DCTLinear(4, 3, bias=False, keep=7), DCTConv2D(2, 3, 3, bias=False, keep=20),
              DCTConv2D(3, 2, (3, 2), bias=False, keep=1.0), random_layer]
    for k, lay in enumerate(layers):
        lay.to(np.float64)
        r, tag = _pick(k, 3, 150, rng)
        c = r.standard_normal(lay.coeffs.shape)
        lay.coeffs.data[...] = c
        mask = lay.mask.astype(np.float64)
        w = lay.spatial_weight()
        cases.append(ValueCase(
            f"{tag}coeffs {_shape(c)} keep {lay.keep}", "dct_weight", (c, mask), {"W": w},
            [Mistake("W", lambda c=c: F.idct(c), "multiply by the mask first: W = idct(mask * coeffs)"),
             Mistake("W", lambda c=c, m=mask: F.dct(m * c), "W = IDCT of the masked coefficients (idct, not dct)"),
             Mistake("W", lambda c=c, m=mask: F.idct(m * c, axes=(-2, -1)),
                     "transform over EVERY axis of the tensor (the default axes=None), not only the last two"),
             Mistake("W", lambda c=c, m=mask: m * F.idct(c),
                     "mask the COEFFICIENTS before the inverse DCT: W = idct(mask * coeffs); masking W after "
                     "the IDCT zeroes weights, not frequencies"),
             Mistake("W", lambda c=c, m=mask: scipy.fft.idctn(m * c),
                     "use the orthonormal transform: idctn(..., norm=\"ortho\"); without it the scale is wrong "
                     "and the DCT's adjoint is no longer the inverse")]))
        dw = r.standard_normal(c.shape)
        lay.zero_grad()
        lay._add_weight_grad(dw)  # the engine's dL/dC, as the layer's backward computes it
        cases.append(ValueCase(
            f"{tag}dw {_shape(dw)} keep {lay.keep}", "dct_weight_backward", (dw, mask),
            {"dcoeffs": lay.coeffs.grad.copy()},
            [Mistake("dcoeffs", lambda dw=dw: F.dct(dw),
                     "truncated coefficients get no gradient: multiply by the mask, dC = mask * dct(dW)"),
             Mistake("dcoeffs", lambda dw=dw, m=mask: m * F.idct(dw),
                     "the adjoint of the orthonormal idct is the dct: dC = mask * dct(dW), not idct"),
             Mistake("dcoeffs", lambda dw=dw, m=mask: m * F.dct(dw, axes=(-2, -1)),
                     "transform over EVERY axis of the tensor (the default axes=None), not only the last two"),
             Mistake("dcoeffs", lambda dw=dw, m=mask: m * scipy.fft.dctn(dw),
                     "use the orthonormal transform: dctn(..., norm=\"ortho\"); only then is the DCT the "
                     "adjoint of the inverse DCT")]))
    rg = _rng(159)
    mask_g = F.zigzag_mask((3, 2, 3, 3), 25).astype(np.float64)

    def layer(fns):
        def forward(lay, x):
            return F.conv2d(x, fns["dct_weight"](lay.coeffs.data, mask_g), padding=1)

        def backward(lay, x, dy):
            w = fns["dct_weight"](lay.coeffs.data, mask_g)
            dx, dw, _ = F.conv2d_backward(dy, x, w, padding=1)
            lay.coeffs.grad += fns["dct_weight_backward"](dw, mask_g)
            return dx
        return _Wrapped(forward, backward, coeffs=rg.standard_normal((3, 2, 3, 3)) * mask_g)

    cases.append(GradCase("x (1,2,4,4) coeffs (3,2,3,3) keep 25", "dct_weight_backward", layer,
                          rg.standard_normal((1, 2, 4, 4))))
    return _with_float32(cases)


def _jpeg_mask(shape: tuple[int, ...], k: int) -> np.ndarray | None:
    """JPEG's zigzag (direction alternates on every diagonal), 2-D only: a wrong answer here."""
    if len(shape) != 2:
        return None
    idx = np.indices(shape).reshape(2, -1)  # (2, size): the index of every entry
    diag = idx.sum(axis=0)
    along = np.where(diag % 2 == 0, -idx[0], idx[0])  # even diagonals walk up (first axis decreasing)
    order = np.lexsort((along, diag))
    rank = np.empty(idx.shape[1], dtype=np.int64)
    rank[order] = np.arange(idx.shape[1])
    return rank.reshape(shape) < k


def _last_axis_first(shape: tuple[int, ...], k: int) -> np.ndarray:
    """Ties broken with the LAST axis most significant: a wrong answer."""
    idx = np.indices(shape).reshape(len(shape), -1)  # (D, size)
    order = np.lexsort(tuple(idx) + (idx.sum(axis=0),))
    rank = np.empty(idx.shape[1], dtype=np.int64)
    rank[order] = np.arange(idx.shape[1])
    return rank.reshape(shape) < k


def _zigzag_cases(rng: np.random.Generator) -> list:
    cases = []
    random_shape = tuple(int(v) for v in rng.integers(1, 7, int(rng.integers(1, 4))))
    geometry = [((4, 4), 6), ((8, 8), 10), ((3, 5), 7), ((5,), 2), ((2, 3, 3, 3), 20), ((4, 4), 0),
                ((3, 3), 9), ((6, 4), 13), (random_shape, int(rng.integers(0, int(np.prod(random_shape)) + 1)))]
    for index, (shape, k) in enumerate(geometry):
        cases.append(ValueCase(
            (RANDOM if index == len(geometry) - 1 else "") + f"shape {shape} k {k}", "zigzag_mask", (shape, k),
            {"mask": F.zigzag_mask(shape, k)},
            [Mistake("mask", lambda s=shape, k=k: _jpeg_mask(s, k),
                     "ties: walk every diagonal the same way, first axis increasing (not JPEG's alternation)"),
             Mistake("mask", lambda s=shape, k=k: _last_axis_first(s, k),
                     "within a diagonal, the FIRST axis is the most significant (row 0 before row 1)"),
             Mistake("mask", lambda s=shape, k=k: F.zigzag_mask(s, min(k + 1, int(np.prod(s)))),
                     "keep exactly k entries: rank < k (ranks count from 0)"),
             Mistake("mask", lambda s=shape, k=k: F.zigzag_mask(s, max(k - 1, 0)),
                     "keep exactly k entries: rank < k (ranks count from 0)")], exact=True))
    return cases


# ---- 16 optimizers ---------------------------------------------------------------------------

_STEPS = 4


def _engine_run(opt_factory, p0: np.ndarray, grads: list[np.ndarray]) -> np.ndarray:
    """Parameter values after each step of the engine's optimizer: (steps, *p.shape)."""
    p = Parameter(p0.copy())
    opt = opt_factory([p])
    out = []
    for g in grads:
        p.grad[...] = g
        opt.step()
        out.append(p.data.copy())
    return np.stack(out)


def _sgd_driver(p0, grads, lr, momentum, wd):
    def run(fns):
        step = fns["sgd_momentum_step"]
        p, v, out = p0.copy(), None, []
        for g in grads:
            p, v = step(p, g.copy(), None if v is None else v.copy(), lr, momentum, wd)
            out.append(p)
        return _stack(out)
    return run


def _stack(steps: list):
    """The learner's parameter after each step, stacked (steps, *shape) when every step gave an array."""
    if all(isinstance(p, np.ndarray) for p in steps) and len({p.shape for p in steps}) == 1:
        return np.stack(steps)
    return steps[-1]


def _sgd_variant(p0, grads, lr, momentum, wd, kind):
    p, v, out = p0.copy(), None, []
    for g in grads:
        g = g + (0 if kind == "no_wd" else wd) * p
        if kind == "dampening":  # as PyTorch with dampening = momentum: the first step is v = g
            v = g if v is None else momentum * v + (1 - momentum) * g
        elif kind == "dampening_first":  # dampening on the first step too (v starting from zeros)
            v = (1 - momentum) * g if v is None else momentum * v + (1 - momentum) * g
        elif kind == "plain":
            v = g
        else:
            v = g if v is None else momentum * v + g
        p = p - lr * v
        out.append(p)
    return np.stack(out)


def _adam_driver(p0, grads, lr, betas, eps):
    def run(fns):
        step = fns["adam_step"]
        p, m, v, out = p0.copy(), np.zeros_like(p0), np.zeros_like(p0), []
        for t, g in enumerate(grads, start=1):
            p, m, v = step(p, g.copy(), m.copy(), v.copy(), t, lr, betas, eps)
            out.append(p)
        return _stack(out)
    return run


def _adam_variant(p0, grads, lr, betas, eps, kind):
    b1, b2 = betas
    p, m, v, out = p0.copy(), np.zeros_like(p0), np.zeros_like(p0), []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        if kind == "no_correction":
            p = p - lr * m / (np.sqrt(v) + eps)
        elif kind == "eps_inside":
            p = p - lr * (m / (1 - b1**t)) / np.sqrt(v / (1 - b2**t) + eps)
        elif kind == "t_from_0":
            p = p - lr * (m / (1 - b1 ** (t - 1))) / (np.sqrt(v / (1 - b2 ** (t - 1))) + eps)
        out.append(p)
    return np.stack(out)


def _optimizer_cases(rng: np.random.Generator) -> list:
    from minicnn.optim import SGD, Adam

    cases = []
    sgd_settings = [(0.1, 0.9, 0.0, np.float64), (0.05, 0.5, 0.01, np.float64), (0.1, 0.9, 0.01, np.float32),
                    (round(float(rng.uniform(0.01, 0.3)), 3), round(float(rng.uniform(0.1, 0.95)), 2),
                     float(rng.choice([0.0, 0.01])), np.float64)]
    for k, (lr, mom, wd, dtype) in enumerate(sgd_settings):
        r, tag = _pick(k, 3, 160, rng)
        p0 = r.standard_normal((3, 2)).astype(dtype)
        grads = [r.standard_normal(p0.shape).astype(dtype) for _ in range(_STEPS)]
        expected = _engine_run(lambda ps, lr=lr, mom=mom, wd=wd: SGD(ps, lr, momentum=mom, weight_decay=wd), p0, grads)
        args = (p0, grads, lr, mom, wd)
        cases.append(ValueCase(
            f"{tag}{_STEPS} steps, lr {lr}, momentum {mom}, decay {wd}" + (" float32" if dtype == np.float32 else ""),
            "sgd_momentum_step", expected={"p": expected}, run=_sgd_driver(*args),
            tol=FLOAT32_TOL if dtype == np.float32 else 1e-8, match_rtol=FLOAT32_TOL if dtype == np.float32 else 1e-6,
            mistakes=[Mistake("p", lambda a=args: _sgd_variant(*a, "dampening"),
                              "no dampening: v = momentum * v + g (PyTorch's form, no (1 - momentum) factor)"),
                      Mistake("p", lambda a=args: _sgd_variant(*a, "dampening_first"),
                              "no dampening: v = g on the first step, then v = momentum * v + g (PyTorch's "
                              "default dampening=0: no (1 - momentum) factor on g, not even on the first step)"),
                      Mistake("p", lambda a=args: _sgd_variant(*a, "plain"),
                              "keep the velocity: v = momentum * v + g, then step along v"),
                      Mistake("p", lambda a=args: _sgd_variant(*a, "no_wd"),
                              "add the weight decay to the gradient first: g = grad + weight_decay * p")]))
    adam_settings = [(0.01, (0.9, 0.999), 1e-8, np.float64), (0.1, (0.8, 0.99), 1e-3, np.float64),
                     (0.01, (0.9, 0.999), 1e-8, np.float32),
                     (round(float(rng.uniform(0.001, 0.1)), 4), (0.9, 0.999), 1e-8, np.float64)]
    for k, (lr, betas, eps, dtype) in enumerate(adam_settings):
        r, tag = _pick(k, 3, 165, rng)
        p0 = r.standard_normal((4,)).astype(dtype)
        grads = [(r.standard_normal(p0.shape) * 0.1).astype(dtype) for _ in range(_STEPS)]
        expected = _engine_run(lambda ps, lr=lr, betas=betas, eps=eps: Adam(ps, lr, betas, eps), p0, grads)
        args = (p0, grads, lr, betas, eps)
        cases.append(ValueCase(
            f"{tag}{_STEPS} steps, lr {lr}, betas {betas}, eps {eps:g}" + (" float32" if dtype == np.float32 else ""),
            "adam_step", expected={"p": expected}, run=_adam_driver(*args),
            tol=FLOAT32_TOL if dtype == np.float32 else 1e-8, match_rtol=FLOAT32_TOL if dtype == np.float32 else 1e-6,
            mistakes=[Mistake("p", lambda a=args: _adam_variant(*a, "no_correction"),
                              "bias correction: divide m by 1 - b1**t and v by 1 - b2**t"),
                      Mistake("p", lambda a=args: _adam_variant(*a, "eps_inside"),
                              "eps goes outside the square root: sqrt(v_hat) + eps"),
                      Mistake("p", lambda a=args: _adam_variant(*a, "t_from_0"),
                              "t counts from 1 on the first step (1 - b**0 = 0 divides by zero)")]))
    return cases


# ---- the later exercises, in course order ----------------------------------------------


def _locally_connected_cases(rng: np.random.Generator) -> list:
    from minicnn.functional.locally_connected import locally_connected2d

    cases = []
    fixed = [((1, 1, 3, 3), (1, 1, 2, 2), 1, 0), ((2, 2, 5, 4), (3, 2, 3, 2), 1, 1), ((1, 3, 7, 6), (2, 3, 3, 3), 2, 1),
             ((1, 1, 5, 5), (2, 1, 2, 2), 3, 1)]  # the last: padding 1 or 0 gives the same output size
    for k, (xs, ws, st, p) in enumerate(fixed + _random_convs(rng, 3)):
        r, tag = _pick(k, len(fixed), 170, rng)
        oh, ow = F.conv_output_size(xs[2], ws[2], st, p), F.conv_output_size(xs[3], ws[3], st, p)
        x = r.standard_normal(xs)
        w = r.standard_normal((oh, ow) + ws)  # (OH, OW, T, C, KH, KW)
        b = r.standard_normal((ws[0], oh, ow))
        y = locally_connected2d(x, w, b, (st, st), (p, p))
        cases.append(ValueCase(
            f"{tag}x {_shape(x)} w {_shape(w)} stride {st} pad {p}", "locally_connected2d", (x, w, b, st, p), {"y": y},
            [Mistake("y", lambda x=x, w=w, b=b, st=st, p=p: F.conv2d(x, w[0, 0], None, st, p) + b
                     if w.shape[0] * w.shape[1] > 1
                     else None, "the weights are UNTIED: output (oh, ow) uses its own kernel w[oh, ow], not w[0, 0]"),
             Mistake("y", lambda y=y, b=b: y - b, "add the bias b[t, oh, ow] (one per output position and map)"),
             Mistake("y", lambda x=x, w=w, b=b, st=st: locally_connected2d(x, w, b, (st, st), (0, 0))
                     if F.conv_output_size(x.shape[2], w.shape[4], st, 0) == w.shape[0] and
                     F.conv_output_size(x.shape[3], w.shape[5], st, 0) == w.shape[1] else None,
                     "pad x with `padding` zeros on every side first (np.pad)")],
            shape_hint=_SIZE_HINT))
    return _with_float32(cases)


def _window_brute_force(layers: list[tuple[int, int]], i: int) -> tuple[int, int]:
    """The input pixels output i depends on, found by walking the positions down the stack one layer at
    a time (position p of a (k, s) layer reads positions p*s .. p*s + k - 1 below it)."""
    positions = {i}
    for k, s in reversed(layers):
        positions = {p * s + j for p in positions for j in range(k)}
    return min(positions), max(positions)


def _receptive_window_cases(rng: np.random.Generator) -> list:
    fixed = [([(3, 1), (3, 1)], 0), ([(3, 1), (3, 1)], 4), ([(2, 2), (3, 1)], 1), ([(3, 2), (3, 2), (3, 1)], 3),
             ([(7, 2), (3, 2), (3, 1)], 2), ([(5, 1)], 6)]
    randoms = [([(int(rng.integers(1, 6)), int(rng.integers(1, 4))) for _ in range(int(rng.integers(1, 5)))],
                int(rng.integers(0, 8))) for _ in range(3)]
    cases = []
    for index, (layers, i) in enumerate(fixed + randoms):
        strides = [s for _, s in layers]
        first, last = _window_brute_force(layers, i)
        r = last - first + 1
        cases.append(ValueCase(
            ("" if index < len(fixed) else RANDOM) + " ".join(f"{k}/{s}" for k, s in layers) + f"  output {i}",
            "receptive_window", (list(layers), i), {"first": first, "last": last},
            [Mistake("first", lambda i=i, st=strides: i * st[-1],
                     "one step of the last layer is jump_total = the product of ALL the strides input pixels"),
             Mistake("first", lambda i=i: i,
                     "neighbouring outputs are jump_total input pixels apart: first = i * jump"),
             Mistake("last", lambda f=first, r=r: f + r, "last is inclusive: first + r - 1"),
             Mistake("last", lambda f=first, L=layers: f + sum(k - 1 for k, _ in L),
                     "strides below a layer widen its reach: r = 1 + sum (k - 1) * jump")]))
    return cases


def _conv_matrix_cases(rng: np.random.Generator) -> list:
    fixed = [((1, 1, 1, 2), (1, 1, 3)), ((1, 1, 2, 2), (1, 3, 3)), ((2, 3, 2, 1), (3, 4, 3)), ((3, 2, 3, 3), (2, 4, 5))]
    randoms = []
    for _ in range(2):
        kh, kw = (int(v) for v in rng.integers(1, 4, 2))
        c, t = (int(v) for v in rng.integers(1, 4, 2))
        randoms.append(((t, c, kh, kw), (c, int(rng.integers(kh, 7)), int(rng.integers(kw, 7)))))
    cases = []
    for k, (ws, shape) in enumerate(fixed + randoms):
        r, tag = _pick(k, len(fixed), 180, rng)
        w = r.standard_normal(ws)
        m = F.conv_as_matrix(w, shape)
        cases.append(ValueCase(
            f"{tag}w {_shape(w)} input {shape}", "conv_matrix", (w, shape), {"M": m},
            [Mistake("M", lambda w=w, shape=shape: F.conv_as_matrix(w[:, :, ::-1, ::-1].copy(), shape)
                     if w.shape[2] * w.shape[3] > 1 else None,
                     "you flipped the kernel: row (t, oh, ow) holds w[t, s, i, j] at column (s, oh + i, ow + j)")],
            exact=True, shape_hint="M is (T*OH*OW, C*H*W): one ROW per output value, one column per input value"))
    return _with_float32(cases)


def _dx_by_recipe(dy: np.ndarray, w_back: np.ndarray, x_shape: tuple, s: int, p: int, dilate: bool = True):
    """dx by the dilate-pad-correlate-cut recipe with a given back kernel (C, T, KH, KW); with
    dilate=False dy is put down contiguously (a known wrong answer)."""
    n, c, h, wd = x_shape
    t, kh, kw = w_back.shape[1], w_back.shape[2], w_back.shape[3]
    oh, ow = dy.shape[2:]
    d = np.zeros((n, t, h + 2 * p - kh + 1, wd + 2 * p - kw + 1))
    if dilate:
        d[:, :, :s * (oh - 1) + 1:s, :s * (ow - 1) + 1:s] = dy
    else:
        d[:, :, :oh, :ow] = dy
    full = F.conv2d(_pad(d, kh - 1, kw - 1), w_back)  # (N, C, H + 2P, W + 2P)
    return full[:, :, p:p + h, p:p + wd]


def _dx_strided_cases(rng: np.random.Generator) -> list:
    fixed = [((1, 1, 3, 3), (1, 1, 1, 1), 2, 0), ((1, 1, 5, 5), (1, 1, 3, 3), 2, 0), ((2, 2, 6, 5), (3, 2, 3, 3), 2, 1),
             ((1, 3, 8, 7), (2, 3, 2, 3), 3, 1), ((2, 2, 7, 7), (2, 2, 3, 3), 2, 2)]
    randoms = [g for g in _random_convs(rng, 12) if g[2] > 1][:3]
    cases = []
    for k, (xs, ws, st, p) in enumerate(fixed + randoms):
        r, tag = _pick(k, len(fixed), 190, rng)
        x, w = r.standard_normal(xs), r.standard_normal(ws)
        dy = r.standard_normal(F.conv2d(x, w, stride=st, padding=p).shape)
        dx = F.conv2d_backward(dy, x, w, stride=st, padding=p)[0]
        swap = w.transpose(1, 0, 2, 3).copy()  # (C, T, KH, KW)
        flip = swap[:, :, ::-1, ::-1].copy()
        cases.append(ValueCase(
            f"{tag}dy {_shape(dy)} w {_shape(w)} stride {st} pad {p}", "conv2d_input_grad_strided",
            (dy, w, xs, st, p), {"dx": dx},
            [Mistake("dx", lambda dy=dy, f=flip, xs=xs, st=st, p=p: _dx_by_recipe(dy, f, xs, st, p, dilate=False),
                     "dilate dy first: dy[:, :, oh, ow] goes to d[:, :, oh*stride, ow*stride], zeros between"),
             Mistake("dx", lambda dy=dy, sw=swap, xs=xs, st=st, p=p: _dx_by_recipe(dy, sw, xs, st, p)
                     if sw.shape[2] * sw.shape[3] > 1 else None,
                     "flip the kernel: w_back = w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]")],
            shape_hint="dx has the shape x_shape: pad the dilated dy at the bottom/right to H + 2P - KH + 1 rows "
                       "(the rows the last stride skipped), correlate fully, then cut P off each side"))
    rg = _rng(199)
    wg = rg.standard_normal((2, 2, 3, 3))

    def layer(fns):
        return _Wrapped(lambda lay, x: F.conv2d(x, wg, stride=2, padding=1),
                        lambda lay, x, dy: fns["conv2d_input_grad_strided"](dy, wg, x.shape, 2, 1))

    cases.append(GradCase("x (2,2,6,7), w (2,2,3,3), stride 2, pad 1", "conv2d_input_grad_strided", layer,
                          rg.standard_normal((2, 2, 6, 7))))
    return _with_float32(cases)


def _zero_padded_routing(dy: np.ndarray, x: np.ndarray, k: int, s: int, p: int) -> np.ndarray:
    """Wrong: max pooling over ZERO padding (a padding zero beats negative inputs and takes their dy)."""
    xp = _pad(x, p, p)
    _, idx = F.max_pool2d(xp, k, s)
    dxp = F.max_pool2d_backward(dy, idx, xp.shape, k, s)
    return dxp[:, :, p:p + x.shape[2], p:p + x.shape[3]]


def _max_pool_padded_cases(rng: np.random.Generator) -> list:
    fixed = [((1, 1, 2, 2), 2, 1, 1), ((1, 2, 5, 5), 3, 2, 1), ((2, 2, 6, 7), 2, 2, 1), ((1, 1, 7, 6), 3, 1, 1),
             ((2, 1, 8, 8), 4, 3, 2)]
    randoms = []
    for _ in range(2):
        kk = int(rng.integers(2, 5))
        randoms.append(((int(rng.integers(1, 3)), int(rng.integers(1, 3)), int(rng.integers(kk, 9)),
                         int(rng.integers(kk, 9))), kk, int(rng.integers(1, 4)), int(rng.integers(0, kk // 2 + 1))))
    cases = []
    for k, (xs, kk, st, p) in enumerate(fixed + randoms):
        r, tag = _pick(k, len(fixed), 200, rng)
        x = _distinct(r, xs) - (1.0 if k == 0 else 0.0)  # case 0: every value negative
        y, idx = F.max_pool2d(x, kk, st, p)
        dy = r.standard_normal(y.shape)
        dx = F.max_pool2d_backward(dy, idx, x.shape, kk, st, p)
        cases.append(ValueCase(
            f"{tag}x {_shape(x)} kernel {kk} stride {st} pad {p}", "max_pool2d_backward", (dy, x, kk, st, p),
            {"dx": dx},
            [Mistake("dx", lambda dy=dy, x=x, kk=kk, st=st, p=p: _zero_padded_routing(dy, x, kk, st, p) if p else None,
                     "pad with -inf, not 0 (np.pad(..., constant_values=-np.inf)): a padding zero must never win a "
                     "window of negative values"),
             Mistake("dx", lambda dy=dy, x=x, kk=kk, st=st, p=p: F.sum_pool2d_backward(dy, x.shape, kk, st, p),
                     "route dy only to the max of its window, not to every element of the window")]))
    return _with_float32(cases)


def _conv_cost_cases(rng: np.random.Generator) -> list:
    from minicnn.layers import Conv2D, DepthwiseConv2D, PointwiseConv2D

    def engine(kind, c, t, k, oh, ow):
        shape = (c, oh, ow)
        if kind == "standard":
            cost = Conv2D(c, t, k, padding=k // 2, bias=False).cost(shape)
            return cost.weights, cost.macs
        if kind == "pointwise":
            cost = PointwiseConv2D(c, t, bias=False).cost(shape)
            return cost.weights, cost.macs
        dw = DepthwiseConv2D(c, k, padding=k // 2, bias=False).cost(shape)
        if kind == "depthwise":
            return dw.weights, dw.macs
        pw = PointwiseConv2D(c, t, bias=False).cost(shape)
        return dw.weights + pw.weights, dw.macs + pw.macs

    settings = [(3, 8, 3, 4, 4), (32, 64, 3, 56, 56), (16, 16, 5, 7, 7), (
        int(rng.integers(1, 65)), int(rng.integers(1, 65)), int(rng.choice([1, 3, 5, 7])), int(rng.integers(1, 33)),
        int(rng.integers(1, 33)))]
    cases = []
    for index, (c, t, k, oh, ow) in enumerate(settings):
        for kind in ("standard", "pointwise", "depthwise", "separable"):
            tt = c if kind == "depthwise" else t
            weights, macs = engine(kind, c, tt, k, oh, ow)
            cases.append(ValueCase(
                ("" if index < 3 else RANDOM) + f"{kind} C {c} T {tt} K {k} out {oh}x{ow}", "conv_cost",
                (kind, c, tt, k, oh, ow), {"weights": weights, "macs": macs},
                [Mistake("weights", lambda c=c, tt=tt, k=k, kind=kind: tt * c * k * k if kind == "depthwise" else None,
                         "a depthwise conv has ONE K x K kernel per channel: C*K*K weights, no sum over channels"),
                 Mistake("weights", lambda c=c, k=k, kind=kind: c * k * k if kind == "separable" else None,
                         "separable = depthwise K x K PLUS pointwise 1 x 1: add the T*C pointwise weights"),
                 Mistake("macs", lambda w=weights: w, "every weight is used once per output position: "
                                                      "MACs = weights * OH * OW")]))
    return cases


def _haar_cases(rng: np.random.Generator) -> list:
    fixed = [(1, 1, 2, 2), (1, 1, 4, 4), (2, 3, 4, 6), (1, 2, 6, 2)]
    randoms = [(int(rng.integers(1, 3)), int(rng.integers(1, 4)), 2 * int(rng.integers(1, 5)),
                2 * int(rng.integers(1, 5)))]
    cases = []
    for k, xs in enumerate(fixed + randoms):
        r, tag = _pick(k, len(fixed), 210, rng)
        x = r.standard_normal(xs)
        y = F.haar_downsample(x)
        c = xs[1]
        cases.append(ValueCase(
            f"{tag}x {_shape(x)}", "haar_downsample", (x,), {"y": y},
            [Mistake("y", lambda y=y: y / 2, "divide by 2, not 4: the orthonormal Haar keeps the energy (the sum "
                                             "of squares), the plain average does not"),
             Mistake("y", lambda y=y: y * 2, "divide by 2: the orthonormal Haar scales each band by 1/2"),
             Mistake("y", lambda y=y, c=c: y.reshape(y.shape[0], 4, c, *y.shape[2:]).swapaxes(1, 2).reshape(y.shape)
                     if c > 1 else None,
                     "band-major order: first the LL band of every channel, then LH, HL, HH (np.concatenate "
                     "over axis 1), not the four bands of channel 0 first")]))
    return _with_float32(cases)


def _slicesamp_cases(rng: np.random.Generator) -> list:
    fixed = [((1, 1, 2, 2), 2, 1, 1), ((1, 2, 4, 4), 2, 3, 3), ((2, 1, 6, 6), 3, 3, 2), ((1, 3, 4, 6), 2, 1, 4)]
    f = int(rng.integers(2, 4))
    randoms = [((int(rng.integers(1, 3)), int(rng.integers(1, 4)), f * int(rng.integers(1, 4)),
                 f * int(rng.integers(1, 4))),
                f, int(rng.choice([1, 3, 5])), int(rng.integers(1, 5)))]
    cases = []

    def engine(x, w_dw, w_pw, rr, order=None):
        """The engine's pieces in SliceSamp's order; `order` reorders the sliced channels (a wrong answer)."""
        s = F.space_to_depth(x, rr)
        if order is not None:
            s = order(s, rr)
        z = F.conv2d(s, w_dw, padding=w_dw.shape[2] // 2, groups=s.shape[1])
        return F.conv2d(z, w_pw)

    for k, (xs, rr, kk, t) in enumerate(fixed + randoms):
        r, tag = _pick(k, len(fixed), 220, rng)
        g = xs[1] * rr * rr
        x = r.standard_normal(xs)
        w_dw, w_pw = r.standard_normal((g, 1, kk, kk)), r.standard_normal((t, g, 1, 1))
        y = engine(x, w_dw, w_pw, rr)
        cases.append(ValueCase(
            f"{tag}x {_shape(x)} r {rr} kernel {kk} T {t}", "slice_samp", (x, w_dw, w_pw, rr), {"y": y},
            [Mistake("y", lambda x=x, a=w_dw, b=w_pw, rr=rr: engine(x, a, b, rr, _s2d_channel_minor) if x.shape[1] > 1
                     else None,
                     "slice channel order: the r*r values of input channel c go to channels c*r*r .. c*r*r + r*r - 1"),
             Mistake("y", lambda x=x, a=w_dw, b=w_pw, rr=rr: engine(x, a, b, rr, _s2d_ij_swapped),
                     "within a block, the row offset i varies slower than the column offset j: channel "
                     "c*r*r + i*r + j")],
            shape_hint="'same' padding: pad the sliced map by K // 2 so the depthwise conv keeps H/r x W/r"))
    return _with_float32(cases)


def _fr_schedule_cases(rng: np.random.Generator) -> list:
    from minicnn.app.frequency import TailTruncation
    from minicnn.layers import DCTLinear

    def engine(t, steps, k0, kt, decay):
        layer = DCTLinear(k0, 1, bias=False, keep=k0)  # k0 coefficients, all kept at the start
        return TailTruncation(layer, target=kt, steps=steps, decay=decay).counts(t)[""]

    settings = [(0, 4, 100, 20, "linear"), (1, 4, 100, 20, "linear"), (3, 7, 50, 9, "linear"),
                (9, 4, 100, 20, "linear"),
                (1, 2, 100, 1, "geometric"), (2, 5, 64, 4, "geometric"), (5, 5, 64, 4, "geometric"),
                (3, 10, 90, 10, "geometric")]
    for _ in range(3):
        steps = int(rng.integers(1, 20))
        k0 = int(rng.integers(2, 200))
        settings.append((int(rng.integers(0, steps + 3)), steps, k0, int(rng.integers(1, k0 + 1)),
                         str(rng.choice(["linear", "geometric"]))))
    cases = []
    for index, (t, steps, k0, kt, decay) in enumerate(settings):
        k = engine(t, steps, k0, kt, decay)
        frac = min(t, steps) / steps
        lin = k0 + (kt - k0) * frac
        geo = k0 * (kt / k0) ** frac
        raw = lin if decay == "linear" else geo
        cases.append(ValueCase(
            ("" if index < 8 else RANDOM) + f"t {t} of {steps}, k {k0} -> {kt}, {decay}", "kept_count",
            (t, steps, k0, kt, decay), {"k": k},
            [Mistake("k", lambda raw=raw, kt=kt, k0=k0: min(k0, max(kt, int(raw))) if int(raw) != round(raw) else None,
                     "round to the NEAREST count (round(k)), do not truncate with int()"),
             Mistake("k", lambda other=(geo if decay == "linear" else lin), kt=kt, k0=k0:
                     min(k0, max(kt, round(other))),
                     "linear moves k by equal steps, k0 + (kT - k0) * t / T; geometric by equal RATIOS, "
                     "k0 * (kT / k0) ** (t / T)")]))
    return cases


def _early_stopping_reference(losses: list[float], patience: int, improves=lambda a, b: a < b,
                              waited=lambda epoch, best, patience: epoch - best >= patience) -> tuple[int, int]:
    """(best, stop) of early stopping, read off the rule as the chapter states it; `improves` and `waited`
    swapped for other comparisons give the known wrong answers."""
    best, best_loss = 0, float("inf")
    for epoch, loss in enumerate(losses, start=1):
        if improves(loss, best_loss):
            best, best_loss = epoch, loss
        elif waited(epoch, best, patience):
            return best, epoch
    return best, len(losses)


def _early_stopping_cases(rng: np.random.Generator) -> list:
    fixed = [([0.9, 0.7, 0.8, 0.75, 0.72, 0.6], 3), ([0.9, 0.7, 0.6], 2), ([0.5, 0.5, 0.5, 0.5], 2),
             ([1.0, 0.8, 0.8, 0.9, 0.7, 0.7, 0.7, 0.7], 2), ([0.4, 0.5, 0.6], 1), ([0.3], 1),
             ([1.0, 0.9, 0.95, 0.85, 0.9, 0.91, 0.92, 0.8], 3)]
    randoms = [([round(float(v), 1) for v in rng.uniform(0.2, 1.0, int(rng.integers(1, 15)))], int(rng.integers(1, 5)))
               for _ in range(3)]
    cases = []
    for index, (losses, patience) in enumerate(fixed + randoms):
        best, stop = _early_stopping_reference(losses, patience)
        cases.append(ValueCase(
            ("" if index < len(fixed) else RANDOM) + f"{len(losses)} epochs, patience {patience}", "early_stopping",
            (list(losses), patience), {"best": best, "stop": stop},
            [Mistake("best", lambda L=losses, p=patience: _early_stopping_reference(L, p, lambda a, b: a <= b)[0],
                     "an equal loss is no improvement: keep the EARLIEST epoch of a tie (loss < best_loss)"),
             Mistake("best", lambda b=best: b - 1, "epochs count from 1: enumerate(val_losses, start=1)"),
             Mistake("best", lambda L=losses, p=patience: _early_stopping_reference(
                 L, p, waited=lambda e, b, q: e - b > q)[0],
                     "stop as soon as `patience` epochs passed without improvement: epoch - best >= patience "
                     "(one epoch more let a later, better epoch in)"),
             Mistake("stop", lambda L=losses, p=patience: _early_stopping_reference(L, p, lambda a, b: a <= b)[1],
                     "an equal loss is no improvement: it does not restart the patience count"),
             Mistake("stop", lambda L=losses, p=patience: _early_stopping_reference(
                 L, p, waited=lambda e, b, q: e - b > q)[1],
                     "stop as soon as `patience` epochs passed without improvement: epoch - best >= patience")]))
    return cases


# ---- the capstone: the learner's pieces train LeNet-5 -----------------------------------------

CAPSTONE_BUDGET = Budget(steps=1500, batch=64, lr=0.05, momentum=0.9, seed=0, target=0.97)
# 1500 steps of 64 images (1.6 epochs of MNIST's 60,000), on a busy 2-core x86-64 machine, one core
# (OPENBLAS_NUM_THREADS=1, what the child sets): `minicnn exercise solution capstone --write`, then
# `/usr/bin/time -v minicnn exercise check capstone` gave 98.00% test accuracy and 57.6 s of CPU time for
# the whole check (parent and child: loading MNIST, the piece checks, training, predicting 10,000 images);
# wall time was 9.6 min only because eight processes shared the two cores. 1000 steps gave 97.75%, too
# close to the target. A conv looping over every pixel needs hours: the check stops after
# CAPSTONE_TIMEOUT seconds of wall time, room for a slower machine or a slower (but vectorised) conv.
CAPSTONE_TIMEOUT = 900.0
CAPSTONE_DRIVER = Path(__file__).with_name("lenet_child.py")


def _capstone_conv(r: np.random.Generator, xs: tuple, ws: tuple, p: int) -> list:
    x, w, b = r.standard_normal(xs), r.standard_normal(ws), r.standard_normal(ws[0])
    y = F.conv2d(x, w, b, padding=p)
    dy = r.standard_normal(y.shape)
    dx, dw, db = F.conv2d_backward(dy, x, w, padding=p)
    swap = w.transpose(1, 0, 2, 3).copy()  # (C, T, KH, KW), not flipped
    label = f"x {_shape(x)} w {_shape(w)} pad {p}"
    return [
        ValueCase(label, "conv_forward", (x, w, b, p), {"y": y},
                  [Mistake("y", lambda x=x, w=w, b=b, p=p: F.conv2d(x, w[:, :, ::-1, ::-1], b, padding=p),
                           "you flipped the kernel: the forward is a correlation, w is used as it is"),
                   Mistake("y", lambda x=x, w=w, p=p: F.conv2d(x, w, padding=p), "add the bias b[t] to map t")],
                  shape_hint="OH = H + 2*padding - KH + 1 (stride 1): pad x first"),
        ValueCase(f"dy {_shape(dy)} " + label, "conv_backward", (dy, x, w, p), {"dx": dx, "dw": dw, "db": db},
                  [Mistake("dx", lambda dy=dy, swap=swap, p=p: _full_cut(dy, swap, p),
                           "dx looks like a correlation with the UNFLIPPED kernel: flip both spatial axes, "
                           "w_back = w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]"),
                   Mistake("dw", lambda dw=dw: dw[:, :, ::-1, ::-1], "dw is flipped: dw[t, s, a, c] pairs dy "
                           "with xp[n, s, i + a, j + c], offset (a, c) as in the forward"),
                   Mistake("dw", lambda dw=dw, n=xs[0]: dw / n, "dw is a SUM over the batch; do not average"),
                   Mistake("db", lambda dy=dy: dy.sum(axis=(2, 3)).mean(axis=0),
                           "db sums dy over the batch and both spatial axes (axis=(0, 2, 3)); no mean")]),
    ]


def _capstone_sgd_run(p0, grads, lr, momentum):
    def run(fns):
        p, v, out = p0.copy(), np.zeros_like(p0), []
        for g in grads:
            p, v = fns["sgd_step"](p, g.copy(), v.copy(), lr, momentum)
            out.append(p)
        return _stack(out)
    return run


def _capstone_cases(rng: np.random.Generator) -> list:
    from minicnn.optim import SGD

    cases = []
    for k, (n, i, o) in enumerate([(4, 3, 5), (2, 400, 120)] + [tuple(int(v) for v in rng.integers(1, 9, 3))]):
        r, tag = _pick(k, 2, 400, rng)
        x, w, b, dy = r.standard_normal((n, i)), r.standard_normal((o, i)), r.standard_normal(o), \
            r.standard_normal((n, o))
        cases.append(ValueCase(f"{tag}x {_shape(x)} w {_shape(w)}", "linear_forward", (x, w, b),
                               {"y": F.linear(x, w, b)},
                               [Mistake("y", lambda x=x, w=w: x @ w.T, "add the bias b (broadcast over the rows)")]))
        dx, dw, db = F.linear_backward(dy, x, w)
        cases.append(ValueCase(f"{tag}dy {_shape(dy)} x {_shape(x)}", "linear_backward", (dy, x, w),
                               {"dx": dx, "dw": dw, "db": db},
                               [Mistake("dw", lambda dw=dw, n=n: dw / n, "dw is a SUM over the batch; do not "
                                        "divide by N"),
                                Mistake("db", lambda dy=dy: dy.mean(axis=0), "db sums dy over the batch (axis 0); "
                                        "you took the mean")]))
    convs = [((2, 1, 6, 6), (3, 1, 5, 5), 2), ((2, 3, 7, 6), (4, 3, 3, 3), 0)]
    randoms = [(xs, ws, p) for xs, ws, s, p in _random_convs(rng, 4) if s == 1][:2]
    for k, (xs, ws, p) in enumerate(convs + randoms):
        r, tag = _pick(k, len(convs), 410, rng)
        for case in _capstone_conv(r, xs, ws, p):
            case.label = tag + case.label
            cases.append(case)
    for k, xs in enumerate([(2, 3, 4, 6), (1, 2, 2, 2)] + [(int(rng.integers(1, 3)), int(rng.integers(1, 4)),
                                                            2 * int(rng.integers(1, 5)), 2 * int(rng.integers(1, 5)))]):
        r, tag = _pick(k, 2, 420, rng)
        x = _distinct(r, xs)
        y, idx = F.max_pool2d(x, 2, 2)
        dy = r.standard_normal(y.shape)
        cases.append(ValueCase(f"{tag}x {_shape(x)}", "max_pool_forward", (x,), {"y": y},
                               [Mistake("y", lambda x=x: F.avg_pool2d(x, 2, 2), "that is the average; take the "
                                        "max of each 2x2 window")]))
        cases.append(ValueCase(f"{tag}dy {_shape(dy)} x {_shape(x)}", "max_pool_backward", (dy, x),
                               {"dx": F.max_pool2d_backward(dy, idx, x.shape, 2, 2)},
                               [Mistake("dx", lambda dy=dy, x=x: F.sum_pool2d_backward(dy, x.shape, 2, 2),
                                        "route dy only to the max of its window, not to every element")]))
    ties = np.array([[[[1.0, 3.0, 0.0, 0.0], [3.0, 2.0, 0.0, 0.0]]]])  # ReLU outputs tie at 0 all the time
    dt = np.array([[[[1.5, -2.0]]]])
    cases.append(ValueCase("ties (1,1,2,4)", "max_pool_backward", (dt, ties),
                           {"dx": F.max_pool2d_backward(dt, F.max_pool2d(ties, 2, 2)[1], ties.shape, 2, 2)},
                           [Mistake("dx", lambda: _route_ties(dt, ties, 2, 2),
                                    "on a tie route dy to the FIRST maximum only (np.argmax of the window)")]))
    for k, shape in enumerate([(3, 4), (2, 3, 4, 4)]):
        r = _rng(430 + k)
        x = r.standard_normal(shape)
        x.flat[0] = 0.0  # the gradient at exactly 0 is 0
        dy = r.standard_normal(shape)
        cases.append(ValueCase(f"x {_shape(x)}", "relu_forward", (x,), {"y": F.relu(x)}))
        cases.append(ValueCase(f"dy, x {_shape(x)} (one x = 0)", "relu_backward", (dy, x),
                               {"dx": F.relu_backward(dy, x)},
                               [Mistake("dx", lambda dy=dy, x=x: dy * (x >= 0), "use x > 0: at x = 0 the gradient "
                                        "is 0")]))
    cases += [c for c in _softmax_cases(rng) if isinstance(c, ValueCase) and not c.label.endswith("float32")]
    for k, (lr, mom) in enumerate([(0.05, 0.9), (0.1, 0.0), (round(float(rng.uniform(0.01, 0.3)), 3),
                                                           round(float(rng.uniform(0.1, 0.95)), 2))]):
        r, tag = _pick(k, 2, 440, rng)
        p0 = r.standard_normal((3, 2))
        grads = [r.standard_normal(p0.shape) for _ in range(_STEPS)]
        expected = _engine_run(lambda ps, lr=lr, mom=mom: SGD(ps, lr, momentum=mom), p0, grads)
        cases.append(ValueCase(
            f"{tag}{_STEPS} steps, lr {lr}, momentum {mom}", "sgd_step", expected={"p": expected},
            run=_capstone_sgd_run(p0, grads, lr, mom),
            mistakes=[Mistake("p", lambda a=(p0, grads, lr, mom, 0.0): _sgd_variant(*a, "plain"),
                              "keep the velocity: velocity = momentum * velocity + grad, then step along it"),
                      Mistake("p", lambda a=(p0, grads, lr, mom, 0.0): _sgd_variant(*a, "dampening_first"),
                              "no dampening: velocity = momentum * velocity + grad, no (1 - momentum) factor")]))
    cases = _with_float32(cases)
    cases += _capstone_grad_cases()
    cases.append(TrainCase(CAPSTONE_DRIVER.read_text(), CAPSTONE_BUDGET))
    return cases


def _capstone_grad_cases() -> list:
    """Every backward piece through the engine's gradient checker, the learner's forward beside it."""
    r = _rng(450)
    wl, bl = r.standard_normal((3, 4)), r.standard_normal(3)
    wc, bc = r.standard_normal((3, 2, 3, 3)), r.standard_normal(3)
    z, labels = r.standard_normal((4, 5)), r.integers(0, 5, 4)

    def linear(fns):
        def backward(layer, x, dy):
            dx, dw, db = fns["linear_backward"](dy, x, layer.weight.data)
            layer.weight.grad += dw
            layer.bias.grad += db
            return dx
        return _Wrapped(lambda lay, x: fns["linear_forward"](x, lay.weight.data, lay.bias.data), backward,
                        weight=wl.copy(), bias=bl.copy())

    def conv(padding):
        def make(fns):
            def backward(layer, x, dy):
                dx, dw, db = fns["conv_backward"](dy, x, layer.weight.data, padding)
                layer.weight.grad += dw
                layer.bias.grad += db
                return dx
            return _Wrapped(lambda lay, x: fns["conv_forward"](x, lay.weight.data, lay.bias.data, padding), backward,
                            weight=wc.copy(), bias=bc.copy())
        return make

    def pool(fns):
        return _Wrapped(lambda lay, x: fns["max_pool_forward"](x), lambda lay, x, dy: fns["max_pool_backward"](dy, x))

    def relu(fns):
        return _Wrapped(lambda lay, x: fns["relu_forward"](x), lambda lay, x, dy: fns["relu_backward"](dy, x))

    def softmax(fns):
        f = fns["softmax_cross_entropy"]
        return _Wrapped(lambda lay, z: np.array([f(z, labels)[0]]), lambda lay, z, dy: dy[0] * f(z, labels)[1])

    away_from_zero = r.standard_normal((2, 3, 4)) + np.sign(r.standard_normal((2, 3, 4))) * 0.5
    return [GradCase("x (5,4), weight, bias", "linear_backward", linear, r.standard_normal((5, 4))),
            GradCase("x (2,2,5,4), weight, bias, pad 1", "conv_backward", conv(1), r.standard_normal((2, 2, 5, 4))),
            GradCase("x (1,2,4,5), weight, bias, pad 0", "conv_backward", conv(0), r.standard_normal((1, 2, 4, 5))),
            GradCase("x (2,2,4,6)", "max_pool_backward", pool, _distinct(r, (2, 2, 4, 6))),
            GradCase("x (2,3,4), away from 0", "relu_backward", relu, away_from_zero),
            GradCase("logits (4,5)", "softmax_cross_entropy", softmax, z)]


# ---- the rules: what the learner's code may not call ------------------------------------------


def _conv_rules(name: str) -> dict:
    rule = (f"exercise rules: {name} may not use scipy.signal or scipy.ndimage (their correlate and "
            f"convolve compute the answer)")
    return {"forbidden": {"scipy.signal": rule, "scipy.ndimage": rule},
            "numpy_forbidden": {"convolve": rule, "correlate": rule}}


def _pool_rules(name: str) -> dict:
    rule = f"exercise rules: {name} may not use scipy.ndimage (its filters compute the answer)"
    return {"forbidden": {"scipy.ndimage": rule}}


# ---- the list, in course order ---------------------------------------------------------------

EXERCISES: list[Exercise] = [
    Exercise("linear", 1, "Linear layer: y = x W^T + b; dx, dw, db",
             ("dw is (OUT, IN) like w: dw = dy.T @ x, a sum over the batch.",
              "dx = dy @ w: the transpose W^T acts on each row of dy.",
              "db = dy.sum(axis=0): the bias is added to every row, so its gradient sums them."),
             ("minicnn.functional.dense:linear", "minicnn.functional.dense:linear_backward"), _linear_cases),
    Exercise("locally_connected", 2, "Locally connected: one kernel per position",
             ("Output (oh, ow) reads the window xp[:, :, oh*stride : oh*stride + KH, ow*stride : ow*stride + KW].",
              "Its kernel is w[oh, ow], shape (T, C, KH, KW): np.einsum('nsij,tsij->nt', window, w[oh, ow]).",
              "Add the bias b (T, OH, OW): it too has one value per output position."),
             ("minicnn.functional.locally_connected:locally_connected2d",), _locally_connected_cases,
             **_conv_rules("locally_connected")),
    Exercise("conv2d_direct", 2, "conv2d by direct loops (stride, padding)",
             ("First the output size: OH = (H + 2*padding - KH) // stride + 1.",
              "Pad once: xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))).",
              "Output (oh, ow) reads xp[:, :, oh*stride : oh*stride + KH, ow*stride : ow*stride + KW].",
              "Do not flip w: y[:, t, oh, ow] = (window * w[t]).sum(axis=(1, 2, 3)) + b[t]."),
             ("minicnn.functional.conv_direct:conv2d_direct",), _conv2d_direct_cases, **_conv_rules("conv2d_direct")),
    Exercise("receptive_field", 3, "Receptive field of a stack of layers",
             ("Keep two numbers while walking up the stack: the field r and the jump.",
              "Each layer adds (k - 1) * jump, where jump is the product of the strides below it.",
              "Update jump AFTER adding: r += (k - 1) * jump; jump *= s."),
             ("minicnn.analysis:receptive_field_of",), _rf_cases),
    Exercise("receptive_window", 3, "Which input pixels one output position sees",
             ("First the receptive field r and the total jump (the product of all the strides).",
              "Neighbouring outputs of the last layer are jump input pixels apart: first = i * jump.",
              "last = first + r - 1 (inclusive)."),
             ("minicnn.analysis:receptive_field_of",), _receptive_window_cases),
    Exercise("output_size", 4, "Output size: stride, padding, dilation",
             ("The dilated kernel spans dilation*(kernel-1)+1 input positions.",
              "Padding is added on both sides: size + 2*padding.",
              "Floor division, then + 1 for the first position."),
             ("minicnn.functional.checks:conv_output_size",), _output_size_cases),
    Exercise("conv_matrix", 5, "Convolution as a banded matrix: y = M x",
             ("M has one row per output value (t, oh, ow) and one column per input value (s, h, w).",
              "View M as (T, OH, OW, C, H, W); the window of (oh, ow) is [:, oh, ow, :, oh:oh+KH, ow:ow+KW].",
              "Put w there unflipped, then reshape to (T*OH*OW, C*H*W)."),
             ("minicnn.functional.conv:conv_as_matrix",), _conv_matrix_cases, **_conv_rules("conv_matrix")),
    Exercise("conv2d_dx", 6, "dx: correlate dy with the flipped kernel",
             ("w_back = w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]: swap channels, flip both axes.",
              "Pad dy by KH-1-padding rows and KW-1-padding columns on each side.",
              "Then a plain 'valid' correlation: dx = conv2d(dy_pad, w_back)."),
             ("minicnn.functional.conv_im2col:flip_kernel", "minicnn.functional.conv_im2col:conv2d_im2col_backward",
              "minicnn.functional.conv_direct:conv2d_direct_backward"), _dx_cases, **_conv_rules("conv2d_dx")),
    Exercise("conv2d_dw", 6, "dK: correlate x with dy",
             ("dw has the shape of w: (T, C, KH, KW).",
              "For a kernel offset (i, j), the inputs it met are xp[:, :, i::stride, j::stride], cut to OH x OW.",
              "dw[:, :, i, j] = np.einsum('ntpq,nspq->ts', dy, that slice): summed over n, oh, ow."),
             ("minicnn.functional.conv_direct:conv2d_direct_backward",), _dw_cases, **_conv_rules("conv2d_dw")),
    Exercise("conv2d_dx_strided", 6, "dx, stride > 1: dilate dy, then correlate",
             ("Make d = zeros (N, T, H + 2P - KH + 1, W + 2P - KW + 1) and set d[:, :, ::S, ::S] (first OH x OW).",
              "Pad d by KH-1, KW-1 and correlate with w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1].",
              "That is dx_pad (N, C, H + 2P, W + 2P): cut P off every side."),
             ("minicnn.functional.conv:conv2d_backward", "minicnn.functional.conv_direct:conv2d_direct_backward"),
             _dx_strided_cases, **_conv_rules("conv2d_dx_strided")),
    Exercise("max_pool", 7, "Max pooling and its routing backward",
             ("Forward: the max over the K*K offsets (i, j) of strided slices of x.",
              "Backward: for each window find the position of its max (np.argmax of the flattened window).",
              "Add (+=) dy there; with overlapping windows a position can win several times."),
             ("minicnn.functional.pool:max_pool2d", "minicnn.functional.pool:max_pool2d_backward"),
             _max_pool_cases, **_pool_rules("max_pool")),
    Exercise("max_pool_padded", 7, "Max-pool routing with stride and padding",
             ("Pad x with -inf (np.pad(..., constant_values=-np.inf)): padding never wins.",
              "Window (oh, ow) starts at xp[oh*stride, ow*stride]; find its first max (argmax of the flat window).",
              "np.add.at the dy into a padded buffer, then cut the padding off."),
             ("minicnn.functional.pool:max_pool2d", "minicnn.functional.pool:max_pool2d_backward"),
             _max_pool_padded_cases, **_pool_rules("max_pool_padded")),
    Exercise("avg_pool_backward", 7, "Average pooling backward",
             ("Every value of a window gets dy / (K*K) from it.",
              "Accumulate into a zero, padded buffer: one strided slice per offset (i, j), with +=.",
              "Return the buffer without its padding border."),
             ("minicnn.functional.pool:avg_pool2d_backward",), _avg_pool_cases, **_pool_rules("avg_pool_backward")),
    Exercise("activations", 8, "ReLU, leaky ReLU and maxout backward",
             ("ReLU: dx = dy * (x > 0); the gradient at exactly 0 is 0.",
              "Leaky ReLU: np.where(x > 0, dy, alpha * dy) (a Python float alpha keeps dy's dtype).",
              "Maxout: reshape x to (N, C//k, k, ...), argmax over axis 2, put dy there (np.put_along_axis)."),
             ("minicnn.functional.dense:relu_backward", "minicnn.functional.dense:leaky_relu_backward",
              "minicnn.functional.dense:maxout", "minicnn.functional.dense:maxout_backward"), _activation_cases),
    Exercise("im2col", 9, "im2col, then conv as one matrix multiply",
             ("cols has one column per output position (n, oh, ow) and one row per (c, i, j).",
              "For each (i, j): win = xp[:, :, i::stride, j::stride] cut to OH x OW, shape (N, C, OH, OW); "
              "store win.transpose(1, 0, 2, 3) into cols viewed as (C, KH, KW, N, OH, OW).",
              "y = (w.reshape(T, -1) @ cols).reshape(T, N, OH, OW).transpose(1, 0, 2, 3) + bias."),
             ("minicnn.functional.conv_im2col:im2col", "minicnn.functional.conv_im2col:conv2d_im2col"),
             _im2col_cases, **_conv_rules("im2col")),
    Exercise("conv_costs", 10, "Weights and MACs: 1x1, depthwise, separable",
             ("Every weight is used once per output position: MACs = weights * OH * OW.",
              "Depthwise: one K x K kernel per channel, C*K*K weights; pointwise: T*C.",
              "Separable = depthwise + pointwise: compare its weights with T*C*K*K."),
             ("minicnn.layers.conv:Conv2D.cost",), _conv_cost_cases),
    Exercise("batch_norm", 11, "Batch-norm backward (training mode)",
             ("Recompute mu, var (biased), inv_std = 1/sqrt(var + eps) and x_hat over every axis but 1.",
              "dbeta = dy.sum(axes); dgamma = (dy * x_hat).sum(axes).",
              "dx = gamma*inv_std * (dy - dbeta/M - x_hat * dgamma/M), M = values per channel."),
             ("minicnn.functional.norm:batch_norm_train", "minicnn.functional.norm:batch_norm_backward"), _bn_cases),
    Exercise("space_to_depth", 12, "Space-to-depth slicing and its inverse",
             ("x.reshape(N, C, H/r, r, W/r, r): axes (n, c, h, i, w, j).",
              "Transpose to (n, c, i, j, h, w), then reshape to (N, C*r*r, H/r, W/r).",
              "depth_to_space undoes it: reshape (N, C, r, r, H, W), transpose (0, 1, 4, 2, 5, 3)."),
             ("minicnn.functional.slicing:space_to_depth", "minicnn.functional.slicing:depth_to_space"), _s2d_cases),
    Exercise("haar", 12, "Haar downsampling: four frequency bands",
             ("Take the four corners of every 2 x 2 block: x[:, :, 0::2, 0::2], [0::2, 1::2], [1::2, 0::2], "
              "[1::2, 1::2].",
              "LL = (a+b+c+d)/2, LH = (a-b+c-d)/2, HL = (a+b-c-d)/2, HH = (a-b-c+d)/2.",
              "np.concatenate((LL, LH, HL, HH), axis=1): band-major channels."),
             ("minicnn.functional.slicing:haar_downsample",), _haar_cases),
    Exercise("slicesamp", 12, "SliceSamp: slice, depthwise, pointwise",
             ("Slice first: reshape (N, C, H/r, r, W/r, r), transpose (0, 1, 3, 5, 2, 4), reshape (N, C*r*r, ...).",
              "Depthwise: pad by K // 2, then per tap (i, j) add shifted slices times w_dw[:, 0, i, j].",
              "Pointwise: np.einsum('tg,nghw->nthw', w_pw[:, :, 0, 0], z)."),
             ("minicnn.layers.slicing:SliceSamp", "minicnn.functional.slicing:space_to_depth"), _slicesamp_cases,
             **_conv_rules("slicesamp")),
    Exercise("dct_weight", 13, "DCT weight W = idct(M*C), masked gradient",
             ("Forward: idct(mask * coeffs) over every axis.",
              "Backward: the adjoint of the orthonormal idct is dct.",
              "dC = mask * dct(dW): truncated coefficients get exactly zero gradient."),
             ("minicnn.layers.dct:_FrequencyWeight.spatial_weight",
              "minicnn.layers.dct:_FrequencyWeight._add_weight_grad"), _dct_cases),
    Exercise("zigzag_mask", 13, "Zigzag mask: the k lowest frequencies",
             ("np.indices(shape).reshape(len(shape), -1) lists every index.",
              "Sort by (sum of indices, then axis 0, axis 1, ...): np.lexsort takes its LAST key as primary.",
              "rank[order] = arange(size); the mask is rank < k."),
             ("minicnn.functional.dct:zigzag_order", "minicnn.functional.dct:zigzag_mask"), _zigzag_cases),
    Exercise("fr_schedule", 13, "FR's dynamic truncation schedule k(t)",
             ("frac = min(t, T) / T; the schedule ends at t = T with k = kT.",
              "linear: k0 + (kT - k0) * frac; geometric: k0 * (kT / k0) ** frac.",
              "round() to the nearest int, then clamp to kT <= k <= k0."),
             ("minicnn.app.frequency:TailTruncation.counts",), _fr_schedule_cases),
    Exercise("softmax_ce", 14, "Stable softmax cross-entropy + gradient",
             ("Subtract each row's max before exp: softmax does not change, exp cannot overflow.",
              "log p = shifted - log(sum(exp(shifted))); the loss is the mean of -log p at the labels.",
              "dlogits = (p - onehot(labels)) / N."),
             ("minicnn.losses:log_softmax", "minicnn.losses:SoftmaxCrossEntropy"), _softmax_cases),
    Exercise("optimizers", 14, "SGD with momentum and Adam steps",
             ("SGD: g = grad + weight_decay * p; v = g on the first step, then momentum * v + g; p - lr * v.",
              "Adam: m and v are running means of g and g**2; divide by 1 - b**t (t from 1).",
              "Adam's step: lr * m_hat / (sqrt(v_hat) + eps), eps outside the root."),
             ("minicnn.optim:SGD", "minicnn.optim:Adam"), _optimizer_cases),
    Exercise("early_stopping", 15, "Early stopping: best epoch, when to stop",
             ("Walk the epochs from 1, keeping the lowest loss so far and its epoch.",
              "Only a strictly lower loss is an improvement (ties keep the earlier epoch).",
              "Stop after the first epoch with epoch - best >= patience; else at the last epoch."),
             ("minicnn.app.train:KeepBest",), _early_stopping_cases),
    Exercise("capstone", 15, "Capstone: your pieces train LeNet-5, MNIST",
             ("The grader checks every piece first and names the one that fails; fix that one.",
              f"The budget: {CAPSTONE_BUDGET.steps} SGD steps of {CAPSTONE_BUDGET.batch} images, lr "
              f"{CAPSTONE_BUDGET.lr}, momentum {CAPSTONE_BUDGET.momentum}, about a minute with a fast conv.",
              "A fast conv loops over the KH*KW kernel offsets only: "
              "y += np.einsum('nshw,ts->nthw', xp[:, :, i:i + OH, j:j + OW], w[:, :, i, j])."),
             ("minicnn.models.lenet:lenet5", "minicnn.functional.conv:conv2d_backward", "minicnn.optim:SGD"),
             _capstone_cases, timeout=CAPSTONE_TIMEOUT, **_conv_rules("capstone")),
]
