"""Chapter 2: from fully connected to locally connected to convolution."""

from __future__ import annotations

import numpy as np
from scipy.signal import correlate2d

from minicnn import analysis, core
from minicnn.functional import checks, conv_direct
from minicnn.functional import conv as FC
from minicnn.functional import locally_connected as FLC
from minicnn.layers import conv as LC
from minicnn.layers.dense import Linear

from ._runner import Step

TITLE = "From fully connected to convolution"
SUMMARY = "parameter counts FC → locally connected → convolution, the reductions O((W/2δ)²) and O(W²)"


def _overdose(t):
    t.code(analysis.connectivity_weights, start="n_in, n_out")
    rows = []
    for size, c_in, c_out, k in ((8, 3, 16, 3), (32, 3, 16, 3), (224, 64, 64, 3)):
        n = analysis.connectivity_weights(c_in, c_out, size, k)
        fc, lc, cv = n["fully connected"], n["locally connected"], n["convolution"]
        rows.append([f"{size}x{size}x{c_in} → {size}x{size}x{c_out}, k={k}", fc, lc, cv, fc / lc, lc / cv])
        t.check(f"{size}x{size}: FC/LC = (W/k)² = {(size / k) ** 2:.4g}", fc / lc, (size / k) ** 2, tol=1e-9)
        t.check(f"{size}x{size}: LC/conv = W² = {size * size}", lc / cv, size * size, tol=1e-9)
    t.table(["layer", "fully connected", "locally conn.", "convolution", "FC/LC", "LC/conv"], rows)
    t.say("Those formulas are not just arithmetic: build the three layers for the 8x8 case and count their "
          "weight tensors.")
    core.manual_seed(0)
    n = analysis.connectivity_weights(3, 16, 8, 3)
    fc = Linear(8 * 8 * 3, 8 * 8 * 16, bias=False)
    lc = LC.LocallyConnected2D(3, 16, input_size=8, kernel_size=3, padding=1, bias=False)
    cv = LC.Conv2D(3, 16, 3, padding=1, bias=False)
    t.table(["layer", "weight shape", "weights"],
            [["Linear(192, 1024)", fc.weight.shape, fc.weight.size],
             ["LocallyConnected2D(3, 16, 8, 3, padding=1)", lc.weight.shape, lc.weight.size],
             ["Conv2D(3, 16, 3, padding=1)", cv.weight.shape, cv.weight.size]])
    t.check("the layers have exactly the counted weights",
            [fc.weight.size, lc.weight.size, cv.weight.size],
            [n["fully connected"], n["locally connected"], n["convolution"]], tol=0)


def _local(t):
    t.code(FLC.locally_connected2d, start="p = patches", end="return y")
    t.code(FLC.patches)
    core.manual_seed(0)
    layer = LC.LocallyConnected2D(1, 1, input_size=4, kernel_size=3, bias=False).to(np.float64)
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    y = layer(x)
    t.array("x", x[0, 0])
    t.say("The output is 2x2, and each of the 4 output positions has its own 3x3 kernel:")
    for p in range(2):
        for q in range(2):
            t.array(f"K^({p},{q})", layer.weight.data[p, q, 0, 0], precision=2)
    t.array("y", y[0, 0])
    t.check("y[x, y] = Σ K^(x,y)(i, j) · U(x+i, y+j) at every position",
            y[0, 0], [[np.sum(layer.weight.data[p, q, 0, 0] * x[0, 0, p:p + 3, q:q + 3]) for q in range(2)]
                      for p in range(2)])


def _tie(t):
    t.code(conv_direct.conv2d_direct, start="for to in range(t)", end="y[:, to] += b[to]")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 6, 6))
    w = rng.standard_normal((3, 2, 3, 3))
    y = FC.conv2d(x, w, method="direct")
    core.manual_seed(0)
    lc = LC.LocallyConnected2D(2, 3, input_size=6, kernel_size=3, bias=False).to(np.float64)
    lc.weight.data[:] = w  # the SAME kernel at every one of the 4x4 positions: tie the weights
    t.check("a locally-connected layer whose kernels are all equal IS the convolution", lc(x), y)
    ref = np.array([sum(correlate2d(x[0, s], w[t_, s], mode="valid") for s in range(2)) for t_ in range(3)])
    t.check("conv2d equals scipy.signal.correlate2d summed over input maps s (an independent reference)", y[0], ref)
    t.say(f"Same function family, {lc.weight.size} weights untied versus {w.size} tied: "
          f"{lc.weight.size // w.size}x = the number of output positions (4x4).")
    t.check("untied / tied = number of output positions", lc.weight.size / w.size, 16, tol=0)


def _stride(t):
    t.code(checks.conv_output_size)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 1, 7, 7))
    w = rng.standard_normal((1, 1, 3, 3))
    full = FC.conv2d(x, w, stride=1)
    strided = FC.conv2d(x, w, stride=2)
    t.array("conv2d(x, w, stride=1)", full[0, 0], precision=2)
    t.array("conv2d(x, w, stride=2)", strided[0, 0], precision=2)
    t.check("stride 2 = the stride-1 output at every 2nd row and column", strided, full[:, :, ::2, ::2])
    kept = [int(np.argmin(np.abs(full[0, 0, :, ::2] - v).sum(axis=1))) for v in strided[0, 0]]
    t.say("A slip in the lecture: 'strides s > 1 is equivalent to computing every (s−1)th pixel only'. "
          f"For s = 2 that would be every pixel; the rows kept are {kept}: every s-th pixel (every 2nd), "
          "i.e. s − 1 pixels skipped between two computed ones.")
    t.check("stride 2 keeps rows 0, 2, 4 of the stride-1 output: every s-th, not every (s−1)-th", kept, [0, 2, 4],
            tol=0)
    sizes = [checks.conv_output_size(7, 3, s, 0) for s in (1, 2, 3)]
    t.check("output sizes for H = 7, K = 3, stride 1, 2, 3: ⌊(7 − 3)/s⌋ + 1", sizes, [5, 3, 2], tol=0)


STEPS = [
    Step("Parameter overdose", """
        A fully-connected layer between two maps connects every input value to every output value. The
        lecture's cures: limit each output to a small receptive field (locally connected), then use the
        same kernel at every position (convolution). Here are the weight counts for concrete layers.""",
         "FC: (W²S)(W²T)    locally connected: W²T · k²S    convolution: k²ST      (k = 2δ + 1)\n"
         "FC / LC = O((W/2δ)²)        LC / conv = O(W²)", _overdose),
    Step("Idea 1: the locally-connected layer", """
        Organise neurons into maps, and let each output see only a (2δ+1)x(2δ+1) window of the input. Every
        output position (x, y) still has its own kernel K^(x,y,t).""",
         "V(x, y, t) = Σ_{i=x−δ}^{x+δ} Σ_{j=y−δ}^{y+δ} Σ_s K^{x,y,t}(i − x + δ, j − y + δ, s) · U(i, j, s)",
         _local),
    Step("Idea 2: tie the weights — convolution", """
        Use one kernel K(·, ·, s, t) at every position. The direct implementation loops exactly as the
        equation reads (it is the slow reference the fast methods are tested against).""",
         "V(x, y, t) = Σ_{i=x−δ}^{x+δ} Σ_{j=y−δ}^{y+δ} Σ_s K(i − x + δ, j − y + δ, s, t) · U(i, j, s)", _tie),
    Step("Stride", """
        A stride s > 1 computes only every s-th output: it downsamples the map (and, next chapter, grows
        the receptive field of later layers).""",
         "OH = ⌊(H + 2·pad − dilation·(KH − 1) − 1) / stride⌋ + 1", _stride),
]
