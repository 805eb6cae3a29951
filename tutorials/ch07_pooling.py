"""Chapter 7: pooling — max, average, sum; max-pool gradient routing; jitter invariance."""

from __future__ import annotations

import numpy as np

from minicnn import layers as L
from minicnn.functional import pool as P
from minicnn.gradcheck import gradcheck

from ._data import digits
from ._runner import Step

TITLE = "Pooling"
SUMMARY = "max / average / sum pooling, the max-pool gradient routed to the winners, jitter invariance measured"

X4 = np.array([[1.0, 3.0, 2.0, 0.5],
               [4.0, 2.5, 1.5, 6.0],
               [0.2, 0.7, 5.0, 3.5],
               [0.9, 0.1, 4.5, 2.0]])[None, None]  # (1, 1, 4, 4), no ties inside any 2x2 window


def _max(t):
    t.code(P.max_pool2d, start="g = _geometry", end="return y, argmax")
    t.say("_tap(xp, g, i, j) is entry (i, j) of every window at once: one strided slice of the padded input, "
          "so the loop runs over the 2x2 window offsets, never over the pixels.")
    y, argmax = P.max_pool2d(X4, 2)
    t.array("x", X4[0, 0])
    t.array("max_pool2d(x, 2)", y[0, 0])
    t.array("argmax (position inside each 2x2 window, row-major)", argmax[0, 0])
    t.check("by hand, the winners: 4 (bottom-left of its window), 6, 0.9, 5", y[0, 0].ravel(),
            [4.0, 6.0, 0.9, 5.0], tol=0)
    t.check("by hand, their places: 2 (row 1, col 0), 3, 2, 0", argmax[0, 0].ravel(), [2, 3, 2, 0], tol=0)


def _route(t):
    t.code(P.max_pool2d_backward, start="g = _geometry_dy", end="return dxp")
    y, argmax = P.max_pool2d(X4, 2)
    dy = np.array([[10.0, 20.0], [30.0, 40.0]])[None, None]
    dx = P.max_pool2d_backward(dy, argmax, X4.shape, 2)
    t.array("dz/dy", dy[0, 0])
    t.array("dz/dx: each dz/dy lands on its window's winner", dx[0, 0])
    t.print("where the gradient goes (█ = receives dz/dy, · = gets 0):")
    for row in dx[0, 0]:
        t.print("  " + " ".join("█" if v else "·" for v in row))
    t.print()
    t.check("by hand: 10 → the 4 at (1, 0), 20 → the 6 at (1, 3), 30 → the 0.9 at (3, 0), 40 → the 5 at (2, 2)",
            [dx[0, 0, 1, 0], dx[0, 0, 1, 3], dx[0, 0, 3, 0], dx[0, 0, 2, 2], np.count_nonzero(dx)],
            [10, 20, 30, 40, 4], tol=0)
    t.say("With overlapping windows (3x3, stride 1) a value that wins several windows collects the sum:")
    y3, a3 = P.max_pool2d(X4, 3, stride=1)
    dx3 = P.max_pool2d_backward(np.ones_like(y3), a3, X4.shape, 3, stride=1)
    t.array("max_pool2d(x, 3, stride=1)", y3[0, 0])
    t.array("dz/dx for dz/dy = 1", dx3[0, 0])
    t.check("the 6.0 and the 5.0 each win 2 of the 4 windows", [dx3[0, 0, 1, 3], dx3[0, 0, 2, 2]], [2, 2], tol=0)
    report = gradcheck(L.MaxPool2D(2), X4.copy())
    t.check_true(f"MaxPool2D passes the gradient check (worst rel. error {report.max_rel_error:.1e})", report.ok)
    t.say("Training runs the same math, fast (2x2 taps copied once, the routing in contiguous passes): "
          "minicnn.kernels.pool, tested against these functions; MINICNN_PLAIN=1 runs these instead.")


def _avg_sum(t):
    t.code(P.sum_pool2d, start="g = _geometry", end="return y")
    t.code(P.avg_pool2d, start="g = _geometry", end="return")
    s, a = P.sum_pool2d(X4, 2), P.avg_pool2d(X4, 2)
    t.array("sum_pool2d(x, 2)", s[0, 0])
    t.array("avg_pool2d(x, 2)", a[0, 0])
    t.check("by hand, the top-left window: 1 + 3 + 4 + 2.5 = 10.5", s[0, 0, 0, 0], 10.5, tol=0)
    t.check("sum pooling = the sum over each 2x2 block", s, X4.reshape(1, 1, 2, 2, 2, 2).sum(axis=(3, 5)))
    t.check("average = sum / (2·2)", a, s / 4)
    t.heading("Backward: every position of a window receives the window's dz/dy (divided by k² for the average)")
    t.code(P.avg_pool2d_backward, start="g = _geometry_dy", end="return")
    t.code(P.sum_pool2d_backward, start="g = _geometry_dy", end="return dxp")
    dx = P.avg_pool2d_backward(np.ones((1, 1, 2, 2)), X4.shape, 2)
    t.check("average-pool backward spreads dz/dy/4 to every window position", dx, 0.25)
    dx_pad = P.avg_pool2d_backward(np.ones((1, 1, 2, 2)), X4.shape, 3, stride=2, padding=1)
    t.array("avg_pool2d_backward, 3x3 windows, stride 2, padding 1, dz/dy = 1 (in ninths)", dx_pad[0, 0] * 9)
    t.check("row 1 and column 1 lie in two windows each: 2/9 or 4/9 there, 1/9 elsewhere (padding keeps its share)",
            dx_pad[0, 0] * 9, np.outer([1, 2, 1, 1], [1, 2, 1, 1]))
    report = gradcheck(L.AvgPool2D(3, stride=2, padding=1), np.random.default_rng(0).standard_normal((1, 2, 7, 7)))
    t.check_true(f"AvgPool2D(3, stride 2, pad 1) passes the gradient check ({report.max_rel_error:.1e})", report.ok)
    sizes, h = [], 224
    while h >= 7:
        sizes.append(h)
        h = P.max_pool2d(np.zeros((1, 1, h, h)), 2)[0].shape[2]
    t.say("Pooling with subsampling shrinks maps fast and has no parameters: " +
          " → ".join(f"{v}x{v}" for v in sizes) + ".")
    t.check("pooling layers own no parameters", [L.MaxPool2D(2).num_parameters(), L.AvgPool2D(2).num_parameters()],
            [0, 0], tol=0)


def _jitter(t):
    t.code(P.jitter_invariance, start="moved = shift_image", end="result[name] =")
    x, source = digits(60 if t.quick else 300)
    t.say(f"Measured on {source}: the fraction of pooled values (where the picture is not empty) that stay "
          "exactly the same when the picture moves.")
    rows, results = [], {}
    for shift in ((0, 1), (1, 1), (0, 2)):
        for levels in (1, 2):
            r = P.jitter_invariance(x, 2, shift, levels)
            results[shift, levels] = r
            rows.append([f"{shift[0]} down, {shift[1]} right", levels, r["max_pool"], r["subsample"]])
    t.table(["shift", "2x2 stages", "max pool unchanged", "subsample unchanged"], rows)
    t.check_true("max pooling keeps more values unchanged than plain subsampling, for every shift and depth",
                 all(r["max_pool"] > r["subsample"] for r in results.values()))
    t.check_true("two max-pool stages are more invariant than one, for every shift (invariance accumulates)",
                 all(results[s, 2]["max_pool"] > results[s, 1]["max_pool"] for s in ((0, 1), (1, 1), (0, 2))))
    moved = P.shift_image(x[:1], 0, 1)
    panels = (x[0, 0], P.max_pool2d(x[:1], 2)[0][0, 0], P.max_pool2d(moved, 2)[0][0, 0],
              P.subsample2d(x[:1], 2)[0, 0], P.subsample2d(moved, 2)[0, 0])
    t.save_images("jitter", panels, ("picture", "max pool 2x2", "max pool,\nshifted 1 px right", "subsample /2",
                                     "subsample,\nshifted 1 px right"), height=2.4)


STEPS = [
    Step("Max pooling", """
        Pooling reduces each window of a map to one number, channel by channel. Max pooling keeps the
        largest; it is almost always combined with subsampling (stride = window size).""",
         "y(x, y, c) = max_{0 ≤ i, j < k} U(x·s + i, y·s + j, c)", _max),
    Step("Backprop through max pooling: routing", """
        Only the winner of each window influenced the output, so the whole upstream gradient goes to it and
        everything else gets zero. The forward pass keeps just the argmax index of each window.""",
         "dz/dx = (dy/dx)ᵀ dz/dy:   dz/dx[winner(o)] += dz/dy[o],  0 elsewhere", _route),
    Step("Average and sum pooling", """
        The alternatives: sum pooling and average pooling. Their backward spreads the upstream gradient
        evenly over the window. All of them are parameter-free and shrink the map quickly.""",
         "sum: y = Σ_window U        avg: y = (1/k²) Σ_window U        dz/dU = dz/dy (sum),  dz/dy / k² (avg)",
         _avg_sum),
    Step("Max pooling and jitter invariance", """
        The usual motivation for max pooling: invariance to small shifts. If the maximum stays inside its
        window, the pooled value does not change. Several poolings accumulate invariance to larger shifts.""",
         "invariance = fraction of outputs o (non-empty) with pool(shift(x))[o] = pool(x)[o]", _jitter),
]
