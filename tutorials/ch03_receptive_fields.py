"""Chapter 3: stacking layers, growing receptive fields, and strides."""

from __future__ import annotations

import numpy as np

from minicnn import analysis, core
from minicnn import layers as L

from ._runner import Step

TITLE = "Stacking, receptive fields and strides"
SUMMARY = "5x5 → 9x9, 3x3 → 5x5 → 7x7, strides grow fields faster; the lecture's question answered"


def _stack(specs):
    """Conv2D layers (1 map each, positive weights, no padding) from (kernel, stride) pairs, ReLU between."""
    core.manual_seed(0)
    layers = []
    for k, s in specs:
        conv = L.Conv2D(1, 1, k, stride=s, bias=False).to(np.float64)
        conv.weight.data[:] = 1.0  # positive weights: no cancellation, every path shows up in the gradient
        layers += [conv, L.ReLU()]
    return core.Sequential(*layers[:-1])


def measured_field(specs, size: int = 41) -> int:
    """Width of the input region that moves the central output: backprop a one-hot dz/dy, count rows of dx ≠ 0."""
    net = _stack(specs)
    x = np.ones((1, 1, size, size))
    y = net(x)
    dy = np.zeros_like(y)
    dy[0, 0, y.shape[2] // 2, y.shape[3] // 2] = 1.0
    dx = net.backward(dy)[0, 0]
    rows = np.flatnonzero(np.abs(dx).sum(axis=1))
    return int(rows[-1] - rows[0] + 1)


def _check_chain(t, specs, expected: int) -> None:
    name = " → ".join(f"[{k}x{k} stride {s}]" for k, s in specs)
    by_rule = analysis.receptive_field_of(specs)
    by_gradient = measured_field(specs)
    t.check(f"{name}: field {expected}x{expected} by the rule ({by_rule}) and measured by backprop ({by_gradient})",
            [by_rule, by_gradient], [expected, expected], tol=0)


def _five(t):
    t.code(analysis.RF.through)
    _check_chain(t, [(5, 1)], 5)
    _check_chain(t, [(5, 1), (5, 1)], 9)
    net = _stack([(5, 1), (5, 1)])
    dy = np.zeros((1, 1, 5, 5))
    dy[0, 0, 2, 2] = 1.0
    net(np.ones((1, 1, 13, 13)))
    dx = net.backward(dy)[0, 0]
    t.array("dz/dx for the central output of two 5x5 layers (13x13 input)", dx.astype(int))
    t.say("Each number counts the paths from that pixel to the output: 25 in the middle, 1 at the field's "
          "corners. On a linear shade scale the corners would vanish; the log scale keeps every nonzero "
          "entry visible, so the whole 9x9 field shows:")
    t.blocks("log(1 + dz/dx): the 9x9 field, corners included", np.log1p(dx))
    t.check("corners of the 9x9 field get 1 path, the centre 25; outside it 0",
            [dx[2, 2], dx[2, 10], dx[10, 2], dx[10, 10], dx[6, 6], dx[1, 1]], [1, 1, 1, 1, 25, 0], tol=0)


def _three(t):
    t.code(analysis.receptive_field_of)
    rows = []
    for n in (1, 2, 3, 4):
        rf = analysis.receptive_field_of([(3, 1)] * n)
        rows.append([f"{n} layer(s) of 3x3", f"{rf}x{rf}"])
        t.check(f"n = {n} layer(s) of 3x3: field 2n + 1 = {2 * n + 1}", rf, 2 * n + 1, tol=0)
    t.table(["stack", "receptive field"], rows)
    _check_chain(t, [(3, 1), (3, 1)], 5)
    t.say("Three 3x3 layers see as far as one 7x7 layer, with 27 weights per map pair instead of 49, and two "
          "more nonlinearities on the way — VGG's argument.")


def _stride(t):
    t.code(analysis.RF.through, start="for a in range(2)", end="jump.append")
    _check_chain(t, [(3, 2), (3, 1)], 7)
    t.say("The lecture's question: the receptive field after [5x5 stride 2] followed by [5x5 stride 1].")
    _check_chain(t, [(5, 2), (5, 1)], 13)
    t.check("answer: 5 + (5 − 1)·2 = 13", analysis.receptive_field_of([(5, 2), (5, 1)]), 5 + 4 * 2, tol=0)


def _network(t):
    t.code(analysis.analyze)
    core.manual_seed(0)
    net = core.Sequential(L.Conv2D(1, 8, 5, padding=2), L.ReLU(), L.MaxPool2D(2),
                          L.Conv2D(8, 16, 3, padding=1), L.ReLU(), L.MaxPool2D(2),
                          L.Conv2D(16, 16, 3, padding=1), L.ReLU())
    summary = analysis.analyze(net, (1, 28, 28))
    t.summary_table(summary)
    t.print()
    rf = summary.rf
    t.check("5x5 conv, pool 2, 3x3 conv, pool 2, 3x3 conv: field 5 + 1·1 + 2·2 + 1·2 + 2·4 = 20 pixels, jump 4",
            [rf.size[0], rf.jump[0]], [5 + 1 * 1 + 2 * 2 + 1 * 2 + 2 * 4, 4], tol=0)
    t.check("receptive_field_of gives the same for the (kernel, stride) chain",
            analysis.receptive_field_of([(5, 1), (2, 2), (3, 1), (2, 2), (3, 1)]), rf.size[0], tol=0)


STEPS = [
    Step("Growing receptive field: 5x5 filters", """
        Stacked convolutions see more of the input the deeper they are. With 5x5 filters the field is 5x5
        after one layer and 9x9 after two. Each field is computed twice: by the rule the analysis module
        uses, and by back-propagating a single output's gradient and measuring where it lands.""",
         "size' = size + (k − 1)·jump        jump' = jump·stride        (start: size 1, jump 1)", _five),
    Step("3x3 filters", """
        With 3x3 filters each layer adds 2 pixels: 3x3, 5x5, 7x7, …""",
         "n layers of k x k, stride 1:  field = n(k − 1) + 1", _three),
    Step("Strides accelerate the growth", """
        A stride > 1 downsamples the map, so every later layer's kernel steps over several input pixels at
        once: the 'jump' multiplies.""",
         "[3x3 s2] → [3x3 s1]:  3 + (3 − 1)·2 = 7        [5x5 s2] → [5x5 s1]:  5 + (5 − 1)·2 = 13", _stride),
    Step("A whole network", """
        minicnn.analysis tracks output shape, parameters, multiply-adds and the receptive field through any
        stack — pooling layers included (they are sliding windows too).""",
         "per layer:  size' = size + (k_eff − 1)·jump,  jump' = jump·s,  k_eff = d(k − 1) + 1", _network),
]
