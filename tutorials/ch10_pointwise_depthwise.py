"""Chapter 10: 1x1, depthwise and separable convolutions; MobileNet's cost table."""

from __future__ import annotations

import numpy as np

from minicnn import analysis, core, runtime
from minicnn import functional as F
from minicnn import layers as L
from minicnn.functional import conv_direct
from minicnn.gradcheck import gradcheck
from minicnn.kernels import depthwise as KD
from minicnn.layers import conv as LC
from minicnn.models import build

from ._runner import Step

TITLE = "1x1, depthwise and separable convolutions"
SUMMARY = "pointwise = a small FC layer at every pixel, depthwise = one filter per map; MobileNet's cost table"


def _pointwise(t):
    t.code(LC.PointwiseConv2D)
    core.manual_seed(0)
    layer = L.PointwiseConv2D(4, 3).to(np.float64)
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 5))
    y = layer(x)
    w = layer.weight.data[:, :, 0, 0]  # (T, S): the 4-D kernel is a matrix
    per_pixel = F.linear(x.transpose(0, 2, 3, 1).reshape(-1, 4), w, layer.bias.data)  # (N*H*W, T)
    t.array("the 1x1 kernel as a T x S matrix", w, precision=2)
    t.check("1x1 convolution = the same Linear(4 → 3) applied at each of the 2·5·5 pixels",
            y, per_pixel.reshape(2, 5, 5, 3).transpose(0, 3, 1, 2))
    t.check("no spatial propagation: changing one pixel changes only that pixel's outputs",
            np.count_nonzero(np.any(layer(x + np.pad(np.ones((1, 4, 1, 1)), ((1, 0), (0, 0), (2, 2), (2, 2))))
                                    != y, axis=1)), 1, tol=0)


def _depthwise(t):
    t.say("The plain version is the direct convolution loop with groups = C: output map t reads only its "
          "own group, which is the single input map t (s0 = t, C/G = 1):")
    t.code(conv_direct.conv2d_direct, start="tg = t // groups", end="y[:, to, i, j] =")
    core.manual_seed(0)
    c, k = 8, 3
    dw = L.DepthwiseConv2D(c, k, padding=1).to(np.float64)
    x = np.random.default_rng(1).standard_normal((2, c, 6, 6))
    plain = F.conv2d(x, dw.weight.data, dw.bias.data, padding=1, groups=c, method="direct")
    per_channel = np.concatenate([F.conv2d(x[:, s:s + 1], dw.weight.data[s:s + 1], dw.bias.data[s:s + 1], padding=1)
                                  for s in range(c)], axis=1)
    t.check("depthwise = each map convolved with its own k x k filter, separately", plain, per_channel)
    t.heading("The same math, fast: shift and accumulate over the k·k taps, all maps at once")
    t.code(KD.conv2d_depthwise, start="if stride == (1, 1)", end="return _depthwise_strided")
    t.code(KD._depthwise_wide, start="xf = _wide_padded", end="_by_image_blocks(taps")
    fast = KD.conv2d_depthwise(x, dw.weight.data, dw.bias.data, (1, 1), (1, 1), (1, 1), c)
    t.check("the kernel conv2d_depthwise (called directly) equals the direct loop", fast, plain)
    if runtime.kernels_enabled():
        t.check("DepthwiseConv2D runs that kernel: it equals the direct loop too", dw(x), plain)
    else:
        t.say("The kernels are off here (MINICNN_PLAIN=1 or runtime.use_kernels(False)), so "
              "DepthwiseConv2D runs the plain im2col convolution instead; the kernel above was "
              "called directly.")
        t.code(F.conv2d)
        t.check("DepthwiseConv2D (the plain math) equals the direct loop", dw(x), plain)
    t.say("A slip in the lecture: its slide calls this 'a variant of convolutional layer with 1x1 spatial "
          "filter size', but the formula beside it (and this layer) has a k x k spatial filter and no "
          "mixing across maps; the 1x1 filter is the pointwise step of the previous page, and the "
          "'depthwise-separable' block is the two together (next step).")
    t.check("a depthwise filter is k x k (here 3x3) per map, not 1x1", dw.weight.shape, (c, 1, k, k), tol=0)
    full = L.Conv2D(c, c, k, padding=1)
    a_dw, a_full = analysis.analyze(dw, (c, 6, 6)), analysis.analyze(full, (c, 6, 6))
    t.table(["layer", "weights", "multiply-adds"], [["Conv2D(8, 8, 3)", a_full.weights, a_full.macs],
                                                    ["DepthwiseConv2D(8, 3)", a_dw.weights, a_dw.macs]])
    t.check(f"S = {c} times fewer weights and operations", [a_full.weights / a_dw.weights, a_full.macs / a_dw.macs],
            [c, c])
    report = gradcheck(dw, x[:1, :, :4, :4].copy())
    t.check_true(f"DepthwiseConv2D passes the gradient check ({report.max_rel_error:.1e})", report.ok)


def _separable(t):
    t.code(LC.SeparableConv2D.forward)
    t.code(LC.SeparableConv2D.backward)
    core.manual_seed(0)
    s, tt, k, size = 32, 64, 3, 16
    sep = L.SeparableConv2D(s, tt, k, padding=1).to(np.float64)
    x = np.random.default_rng(2).standard_normal((1, s, size, size))
    t.check("SeparableConv2D = pointwise(depthwise(x)), no nonlinearity between", sep(x),
            sep.pointwise(sep.depthwise(x)))
    a_sep, a_full = analysis.analyze(sep, (s, size, size)), analysis.analyze(L.Conv2D(s, tt, k, padding=1),
                                                                              (s, size, size))
    t.table(["layer", "weights", "multiply-adds"], [[f"Conv2D({s}, {tt}, 3)", a_full.weights, a_full.macs],
                                                    [f"SeparableConv2D({s}, {tt}, 3)", a_sep.weights, a_sep.macs]])
    t.check(f"cost ratio separable / full = 1/T + 1/k² = 1/{tt} + 1/9", a_sep.macs / a_full.macs, 1 / tt + 1 / k**2)
    core.manual_seed(0)
    small = L.SeparableConv2D(2, 3, 3, padding=1).to(np.float64)
    report = gradcheck(small, np.random.default_rng(3).standard_normal((1, 2, 4, 4)))
    t.check_true(f"SeparableConv2D passes the gradient check ({report.max_rel_error:.1e})", report.ok)


def _mobilenet(t):
    t.code(analysis.Summary.breakdown)
    s = analysis.analyze(build("mobilenet_v1"), (3, 224, 224))
    share = {kind: (100 * m / s.macs, 100 * w / s.weights) for kind, (m, w) in s.breakdown().items()}
    t.print("MobileNet v1 at 224x224, per layer type (what `minicnn summary mobilenet_v1` prints last):")
    t.table(["type", "mult-adds", "share", "weights", "share"],
            [[kind, m, f"{share[kind][0]:.2f}%", w, f"{share[kind][1]:.2f}%"]
             for kind, (m, w) in s.breakdown().items()])
    t.check("4,209,088 weights and 568,740,352 mult-adds, the paper's 4.2M and 569M", [s.weights, s.macs],
            [4_209_088, 568_740_352], tol=0)
    for kind, paper in (("Conv 1x1", (94.86, 74.59)), ("Conv DW 3x3", (3.06, 1.06)),
                        ("Fully connected", (0.18, 24.33))):
        t.check(f"{kind}: {paper[0]}% of mult-adds, {paper[1]}% of weights (paper's Table 2, 2 decimals)",
                np.round(share[kind], 2), paper, tol=1e-9)
    t.check("Conv 3x3 (the first layer): 0.02% of the weights, as printed", round(share["Conv 3x3"][1], 2), 0.02,
            tol=1e-9)
    t.say(f"The first 3x3 convolution takes {share['Conv 3x3'][0]:.2f}% of the mult-adds "
          f"(112·112·32·3·9 = {112 * 112 * 32 * 27:,} of {s.macs:,}). The lecture's copy of the table (like the "
          "paper's) prints 1.19%, but 94.86 + 3.06 + 1.19 + 0.18 is only 99.29: with 1.91% the four shares add up "
          "to 100%, so the printed figure is most likely two digits transposed.")
    t.check("its share is 1.91%, and the four shares sum to 100%",
            [round(share["Conv 3x3"][0], 2), sum(v[0] for v in share.values())], [1.91, 100.0], tol=1e-9)


STEPS = [
    Step("1x1 convolution", """
        A 1x1 kernel does not look at neighbours: the 4-D kernel collapses to a T x S matrix, applied at every
        location independently — the same small fully-connected layer at every pixel (network-in-network).""",
         "V(x, y, t) = Σ_s K(1, 1, s, t) · U(x, y, s)", _pointwise),
    Step("Depthwise convolution", """
        One k x k filter per map, no mixing across maps. Propagation across channels has to be done by other
        layers; in exchange it costs S times less than a standard convolution.""",
         "V(x, y, t) = Σ_{i,j} K(i − x + δ, j − y + δ, t) · U(i, j, t)", _depthwise),
    Step("Depthwise-separable convolution", """
        Xception's idea: split the spatial and the cross-channel parts completely — a depthwise k x k, then a
        1x1 — with no nonlinearity in between.""",
         "cost: S·k²·HW + S·T·HW  versus  S·T·k²·HW        ratio = 1/T + 1/k²", _separable),
    Step("MobileNet's cost table, reproduced", """
        MobileNet v1 is built from these blocks. `minicnn summary` counts it without running it and prints
        the resources per layer type, as in Table 2 of the paper.""",
         "mult-adds (1 MAC = 1 op, weights only):  conv OH·OW·T·(S/g)·k²,  depthwise OH·OW·C·k²,  FC IN·OUT",
         _mobilenet),
]
