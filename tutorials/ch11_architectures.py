"""Chapter 11: the lecture's architectures, each built from minicnn layers, counted and run."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from minicnn import analysis, core
from minicnn import layers as L
from minicnn.gradcheck import gradcheck
from minicnn.layers import blocks
from minicnn.models import build, classic, lenet, mobilenet, shufflenet, xception

from ._data import digits
from ._runner import Step

TITLE = "Architectures: LeNet to ShuffleNet v2"
SUMMARY = "LeNet, AlexNet, VGG, Inception, ResNet, MobileNet v1/v2, ShuffleNet v2, Xception: built, counted, run"

SMALL = {"num_classes": 10, "image_size": 32, "width": 0.25}  # a CIFAR-size, narrow copy to run quickly


def _run_small(t, name: str) -> None:
    """Build `name` at 32x32 (width 0.25), run forward and backward on one image, check the shapes."""
    core.manual_seed(0)
    options = dict(SMALL, width=0.5) if name == "shufflenet_v2" else SMALL  # its widths: 0.5, 1, 1.5, 2
    model = build(name, **options)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    model.train()
    y = model(x)
    dx = model.backward(np.ones_like(y) / y.size)
    grads = sum(float(np.abs(p.grad).sum()) for p in model.parameters())
    t.check_true(f"{name} (32x32, width {options['width']}, {model.num_parameters():,} parameters): forward gives "
                 f"{y.shape}, backward gives dx {dx.shape} and nonzero weight gradients",
                 y.shape == (2, 10) and dx.shape == x.shape and grads > 0)


def _count(t, rows, name: str, size: int, **kw) -> analysis.Summary:
    s = analysis.analyze(build(name, **kw), (3, size, size))
    rows.append([name + "".join(f" {k}={v}" for k, v in kw.items()), f"{size}x{size}", s.weights, s.macs])
    return s


def _near(t, what: str, value: float, paper: float, rel: float) -> None:
    t.check_true(f"{what}: {value / 1e6:.2f}M, the paper's {paper / 1e6:g}M within {rel:.0%}",
                 abs(value - paper) <= rel * paper)


def _lenet(t):
    t.code(lenet.lenet5)
    core.manual_seed(0)
    model = build("lenet5")
    summary = analysis.analyze(model, (1, 28, 28))
    t.summary_table(summary)
    t.print()
    x, source = digits(2)
    y = model(x.astype(np.float32))
    t.say(f"Forward on {source}: logits of shape {y.shape} (untrained: chapter 14 trains it).")
    t.check("LeNet-5: 10 logits per digit, and analysis counted the parameters the model has",
            [y.shape[1], summary.params], [10, model.num_parameters()], tol=0)


NARROW = (Fraction(1, 16), Fraction(1, 8), Fraction(1, 4))  # widths that scale every layer of these nets exactly


def _at_full_width(name: str, size: int) -> tuple[int, int, int]:
    """(parameters, weights, mult-adds) of `name` at width 1, from three narrow copies.

    Every count is a quadratic in the width w when all channel and hidden sizes scale by w (a layer
    with c_in·w inputs and c_out·w outputs has c_in·c_out·w² weights; the first layer and the class
    layer are linear in w; a bias is linear), so three exact counts fix the quadratic and Lagrange's
    formula evaluates it at w = 1. The ImageNet AlexNet and VGG-16 would take over 1 GB to build."""
    counts = []
    for w in NARROW:
        s = analysis.analyze(build(name, width=float(w), image_size=size), (3, size, size))
        counts.append((s.params, s.weights, s.macs))
    full = []
    for k in range(3):
        value = sum(c[k] * np.prod([(1 - wj) / (wi - wj) for wj in NARROW if wj != wi])
                    for wi, c in zip(NARROW, counts, strict=True))
        full.append(value)
    if any(v.denominator != 1 for v in full):
        raise ValueError(f"_at_full_width: {name} does not scale as a quadratic in the width: {full}")
    return int(full[0]), int(full[1]), int(full[2])


def _chain(t):
    t.code(classic.vgg)
    rows = []
    t.say("Building the ImageNet AlexNet and VGG-16 takes over 1 GB (VGG-16's first FC layer alone has "
          "25088 x 4096 weights). But every count is a quadratic in the width w when all layers scale by w, so "
          "three narrow copies (w = 1/16, 1/8, 1/4) pin it down exactly and the full-width numbers follow "
          "(Lagrange interpolation, in exact fractions):")
    for name in ("alexnet", "vgg16"):
        params, weights, macs = _at_full_width(name, 224)
        rows.append([f"{name} (width 1, from 3 narrow copies)", "224x224", weights, macs])
        _near(t, f"{name} parameters", params, {"alexnet": 60e6, "vgg16": 138e6}[name], 0.02)
    built = analysis.analyze(build("alexnet", image_size=32), (3, 32, 32))
    small = _at_full_width("alexnet", 32)
    rows.append(["alexnet (32x32 variant), built at width 1", "32x32", built.weights, built.macs])
    t.table(["model", "input", "weights", "mult-adds"], rows)
    t.check("the method is exact: the 32x32 AlexNet built at width 1 has the extrapolated counts",
            [built.params, built.weights, built.macs], small, tol=0)
    for name in ("alexnet", "vgg_cifar"):
        _run_small(t, name)


def _inception(t):
    t.code(blocks.Concat.forward)
    t.code(blocks.Concat.backward)
    core.manual_seed(0)
    module = blocks.Concat(L.Conv2D(8, 4, 1), L.Conv2D(8, 6, 3, padding=1), L.Conv2D(8, 2, 5, padding=2))
    x = np.random.default_rng(1).standard_normal((1, 8, 6, 6))
    y = module(x)
    t.check("Concat stacks the branches' maps: 4 + 6 + 2 = 12 output maps", y.shape[1], 12, tol=0)
    rows = []
    s = _count(t, rows, "inception", 224)
    t.table(["model", "input", "weights", "mult-adds"], rows)
    t.check_true(f"the Inception net keeps many maps with only {s.weights / 1e6:.1f}M weights (1x1 reductions)",
                 s.weights < 10e6)
    _run_small(t, "inception")


def _resnet(t):
    t.code(blocks.Residual.forward)
    t.code(blocks.Residual.backward)
    core.manual_seed(0)
    body = core.Sequential(L.Conv2D(3, 3, 3, padding=1), L.ReLU(), L.Conv2D(3, 3, 3, padding=1))
    res = blocks.Residual(body).to(np.float64)
    x = np.random.default_rng(2).standard_normal((1, 3, 5, 5))
    t.check("Residual: y = F(x) + x", res(x), body(x) + x)
    report = gradcheck(res, x)
    t.check_true(f"Residual passes the gradient check ({report.max_rel_error:.1e}): dz/dx = F'ᵀ dz/dy + dz/dy",
                 report.ok)
    rows = []
    s = _count(t, rows, "resnet18", 224)
    _count(t, rows, "resnet20", 32)
    t.table(["model", "input", "weights", "mult-adds"], rows)
    _near(t, "ResNet-18 parameters", s.params, 11.7e6, 0.01)
    _run_small(t, "resnet20")


def _mobilenets(t):
    t.code(blocks.InvertedResidual.__init__, start="hidden = in_channels", end="super().__init__")
    t.code(mobilenet.mobilenet_v2)
    rows = []
    v1 = _count(t, rows, "mobilenet_v1", 224)
    v2 = _count(t, rows, "mobilenet_v2", 224)
    t.table(["model", "input", "weights", "mult-adds"], rows)
    t.check("MobileNet v1: 4,209,088 weights, 568,740,352 mult-adds (paper: 4.2M, 569M)", [v1.weights, v1.macs],
            [4_209_088, 568_740_352], tol=0)
    _near(t, "MobileNet v2 weights", v2.weights, 3.4e6, 0.03)
    _near(t, "MobileNet v2 mult-adds", v2.macs, 300e6, 0.01)
    for name in ("mobilenet_v1", "mobilenet_v2"):
        _run_small(t, name)


def _shufflenet(t):
    t.code(blocks.channel_shuffle)
    x = np.arange(6.0).reshape(1, 6, 1, 1)
    shuffled = blocks.channel_shuffle(x, 2)
    t.array("channels 0..5, shuffled with 2 groups", shuffled.ravel())
    t.check("the groups (0 1 2 | 3 4 5) are dealt out in turn: 0 3 1 4 2 5", shuffled.ravel(), [0, 3, 1, 4, 2, 5],
            tol=0)
    t.code(shufflenet.shufflenet_v2)
    rows = []
    paper = {0.5: (41e6, 1.4e6), 1.0: (146e6, 2.3e6), 1.5: (299e6, 3.5e6), 2.0: (591e6, 7.4e6)}
    for width, (flops, weights) in paper.items():
        s = _count(t, rows, "shufflenet_v2", 224, width=width)
        _near(t, f"ShuffleNet v2 {width}x mult-adds", s.macs, flops, 0.02)
        _near(t, f"ShuffleNet v2 {width}x weights", s.weights, weights, 0.04)
    t.table(["model", "input", "weights", "mult-adds"], rows)
    _run_small(t, "shufflenet_v2")


def _xception(t):
    t.code(xception.xception)
    rows = []
    s = _count(t, rows, "xception", 299)
    t.table(["model", "input", "weights", "mult-adds"], rows)
    _near(t, "Xception parameters", s.params, 22.9e6, 0.01)
    kinds = s.breakdown()
    t.say("Almost all of its weights sit in 1x1 (pointwise) convolutions: " +
          ", ".join(f"{k} {100 * w / s.weights:.1f}%" for k, (_, w) in kinds.items()) + ".")
    _run_small(t, "xception")


STEPS = [
    Step("LeNet-5 (LeCun 89, 98)", """
        Two 5x5 convolutions with pooling, then three fully-connected layers: the network this course's
        engine trains on MNIST in chapter 14.""",
         "conv5x5(6) → act → pool → conv5x5(16) → act → pool → fc120 → fc84 → fc10", _lenet),
    Step("AlexNet (2012) and VGG (2014): chains", """
        AlexNet: 5 conv layers (11x11, 5x5, 3x3, 3x3, 3x3), ~60M parameters. VGG: up to 16-19 layers, all
        filters 3x3, ~140M parameters, most of them in the first fully-connected layer.""",
         "VGG-16: [conv3-64]x2 → pool → [conv3-128]x2 → pool → [conv3-256]x3 → pool →\n"
         "        [conv3-512]x3 → pool → [conv3-512]x3 → pool → FC-4096 → FC-4096 → FC-1000", _chain),
    Step("GoogLeNet / Inception (2014): large but fast", """
        Keep many maps, but apply the expensive convolutions only to stacks whose depth was reduced by 1x1
        convolutions; run branches in parallel and concatenate their maps.""",
         "y = concat( conv1x1(x), conv3x3(conv1x1(x)), conv5x5(conv1x1(x)), conv1x1(pool(x)) )", _inception),
    Step("ResNet (2015): shortcuts", """
        Simply deepening a chain makes even the training error go up. Shortcuts fix it: each block learns
        the residual F(x) and adds x back, so a block can always fall back to the identity.""",
         "y = F(x) + x            dz/dx = (dF/dx)ᵀ dz/dy + dz/dy", _resnet),
    Step("MobileNet v1 (2017) and v2 (2018)", """
        v1: depthwise-separable blocks (chapter 10). v2: inverted residuals — expand with 1x1 (factor t),
        depthwise 3x3, project back with a *linear* 1x1 (no nonlinearity), shortcut when shapes match.""",
         "v2 block: x → 1x1 (×t) → ReLU6 → dw3x3 → ReLU6 → 1x1 (linear) → (+ x)", _mobilenets),
    Step("ShuffleNet v2 (2018)", """
        Split the channels in two, process only one half, keep the other intact, concatenate, and shuffle
        the channels after each block so information flows between the halves.""",
         "shuffle: channels viewed as (g, C/g) → transposed to (C/g, g) → flattened", _shufflenet),
    Step("Xception (2016)", """
        Split spatial and cross-channel convolutions altogether: the network is a stack of
        depthwise-separable convolutions with residual connections (entry, middle and exit flows).""",
         "SeparableConv = pointwise ∘ depthwise (no nonlinearity between)", _xception),
]
