"""The UNet and its layers: gradient checks, forward against plain NumPy, shapes and counts, and a tiny UNet
that overfits 8 real canvases."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy.signal import correlate

from minicnn import analysis, core, models, optim
from minicnn import layers as L
from minicnn.app.segmentation import predict_classes, segmentation_scores
from minicnn.data.segmentation import load_segmentation, with_sizes
from minicnn.gradcheck import gradcheck
from minicnn.losses import SoftmaxCrossEntropy

BN_EPS = 1e-5
# The repository's UNet(n_channels=3, n_classes=2, bilinear=...) (3x3 convs bias-free), counted with PyTorch
REPOSITORY_PARAMETERS = {False: 31_037_698, True: 17_263_042}


def _distinct(rng, shape) -> np.ndarray:
    """float64 values, all different (no max-pool ties), in random positions."""
    return rng.permutation(np.linspace(-1, 1, int(np.prod(shape)))).reshape(shape) + 0.01 * rng.standard_normal(shape)


# ---- Identity and SkipConcat ---------------------------------------------------------------------------------


def test_identity_forward_backward_shape(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    layer = L.Identity()
    np.testing.assert_array_equal(layer(x), x)
    dy = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(layer.backward(dy), dy)
    assert layer.output_shape((3, 4, 5)) == (3, 4, 5) and layer.window() is None
    gradcheck(L.Identity(), x)
    with pytest.raises(ValueError, match=r"Identity.backward: expected dy of shape \(2, 3, 4, 5\)"):
        layer.backward(dy[:1])


def test_skip_concat_is_x_then_inner_of_x(rng):
    """Against a hand-written 1x1 convolution (an einsum) and np.concatenate."""
    inner = L.Conv2D(3, 2, 1).to(np.float64)
    x = rng.standard_normal((2, 3, 4, 4))
    w, b = inner.weight.data[:, :, 0, 0], inner.bias.data  # (2, 3), (2,)
    expected = np.concatenate([x, np.einsum("ts,nsij->ntij", w, x) + b[None, :, None, None]], axis=1)
    np.testing.assert_allclose(L.SkipConcat(inner)(x), expected, rtol=1e-12, atol=1e-14)


def test_skip_concat_backward_adds_both_paths(rng):
    inner = L.Conv2D(3, 2, 1, bias=False).to(np.float64)
    block = L.SkipConcat(inner)
    x = rng.standard_normal((2, 3, 4, 4))
    block(x)
    dy = rng.standard_normal((2, 5, 4, 4))
    w = inner.weight.data[:, :, 0, 0]  # (2, 3)
    expected = dy[:, :3] + np.einsum("ts,ntij->nsij", w, dy[:, 3:])  # identity path + conv's adjoint
    np.testing.assert_allclose(block.backward(dy), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("bilinear", [False, True])
def test_skip_concat_gradcheck_with_a_pool_and_upsample_inside(bilinear, rng):
    up = L.Upsample(2, mode="bilinear") if bilinear else L.ConvTranspose2D(3, 3, 2, stride=2)
    block = L.SkipConcat(L.Sequential(L.MaxPool2D(2), L.Conv2D(2, 3, 3, padding=1), up)).to(np.float64)
    report = gradcheck(block, _distinct(rng, (2, 2, 4, 4)))
    assert {t.name for t in report.tensors} == {"input", "inner.1.weight", "inner.1.bias"} | (
        set() if bilinear else {"inner.2.weight", "inner.2.bias"})


def test_skip_concat_shapes_and_bad_input(rng):
    block = L.SkipConcat(L.Sequential(L.MaxPool2D(2), L.Conv2D(2, 5, 1), L.Upsample(2)))
    assert L.output_shape(block, (2, 8, 6)) == (7, 8, 6)
    assert [n for n, _ in block.named_children()] == ["skip", "inner"]
    with pytest.raises(ValueError, match=r"SkipConcat: expected input \(N, C, H, W\), got shape \(2, 8, 6\)"):
        block(np.zeros((2, 8, 6)))
    with pytest.raises(ValueError, match=r"Concat: expected branch outputs that differ only in channels"):
        block(np.zeros((1, 2, 5, 5)))  # 5 -> pool 2 -> upsample 4: the skip and the inner map differ
    with pytest.raises(ValueError, match=r"SkipConcat: expected a Layer as inner, got int"):
        L.SkipConcat(3)


# ---- DoubleConv ---------------------------------------------------------------------------------------------


def _conv_bn_relu_reference(x: np.ndarray, w: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """3x3 'same' cross-correlation per channel pair (scipy), batch-norm with the batch statistics, ReLU."""
    n, c = x.shape[:2]
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    y = np.stack([[sum(correlate(padded[i, s], w[t, s], mode="valid") for s in range(c)) for t in range(len(w))]
                  for i in range(n)])
    mean, var = y.mean(axis=(0, 2, 3), keepdims=True), y.var(axis=(0, 2, 3), keepdims=True)
    z = gamma[None, :, None, None] * (y - mean) / np.sqrt(var + BN_EPS) + beta[None, :, None, None]
    return np.maximum(z, 0)


def test_double_conv_forward_against_scipy(rng):
    block = L.DoubleConv(2, 3, mid_channels=4).to(np.float64)
    for bn in (block[1], block[4]):
        bn.weight.data = rng.uniform(0.5, 1.5, bn.weight.shape)
        bn.bias.data = rng.standard_normal(bn.bias.shape)
    x = rng.standard_normal((2, 2, 5, 6))
    mid = _conv_bn_relu_reference(x, block[0].weight.data, block[1].weight.data, block[1].bias.data)
    expected = _conv_bn_relu_reference(mid, block[3].weight.data, block[4].weight.data, block[4].bias.data)
    np.testing.assert_allclose(block(x), expected, rtol=1e-10, atol=1e-12)
    assert block.num_parameters() == 9 * (2 * 4 + 4 * 3) + 2 * (4 + 3)
    assert L.output_shape(block, (2, 5, 6)) == (3, 5, 6)


def test_double_conv_gradcheck():
    """The registry's case (batch-norm scales and shifts drawn at random, so no output of the first BN sits
    at a ReLU kink and no gradient is a rounding-size remainder) for three seeds, kernels on or off.
    With BN's default gamma 1 / beta 0 an input gradient of 1.6e-4 came out 2.7e-6 off relative in one
    of the two paths: central-difference noise, not a wrong rule."""
    from minicnn.gradcheck_cases import run_case

    for seed in range(3):
        report = run_case("DoubleConv", seed=seed)
        assert report.ok, report.table()


# ---- the UNet -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bilinear", [False, True])
def test_full_width_has_the_repositorys_parameter_count(bilinear):
    summary = analysis.analyze(models.build("unet", bilinear=bilinear), (3, 64, 64))
    assert summary.params == REPOSITORY_PARAMETERS[bilinear]
    assert summary.output_shape == (2, 64, 64)
    table = summary.table()
    assert all(len(line) <= analysis.COLUMNS for line in table.splitlines())
    assert f"{REPOSITORY_PARAMETERS[bilinear]:,}" in table


@pytest.mark.parametrize("bilinear", [False, True])
def test_small_unet_shapes_and_counts_agree_with_a_run(bilinear, rng):
    model = models.build("unet", width=0.125, in_channels=1, num_classes=11, bilinear=bilinear)
    x = rng.standard_normal((2, 1, 32, 48)).astype(np.float32)
    y = model(x)
    assert y.shape == (2, 11, 32, 48) and y.dtype == np.float32
    assert L.output_shape(model, (1, 32, 48)) == (11, 32, 48)
    assert analysis.analyze(model, (1, 32, 48)).params == model.num_parameters()
    assert model.backward(np.ones_like(y)).shape == x.shape


def test_unet_refuses_a_size_it_cannot_halve_four_times():
    model = models.build("unet", width=0.125)
    with pytest.raises(ValueError, match=r"Concat .*expected branch outputs that differ only in channels"):
        L.output_shape(model, (3, 40, 40))
    with pytest.raises(ValueError, match=r"unet: expected depth >= 1, got 0"):
        models.build("unet", depth=0)


@pytest.mark.parametrize("bilinear", [False, True])
def test_tiny_unet_gradcheck(bilinear, rng):
    model = models.build("unet", width=2 / 64, in_channels=1, num_classes=2, depth=1, bilinear=bilinear)
    gradcheck(model.to(np.float64), _distinct(rng, (2, 1, 4, 4)))


def test_tiny_unet_overfits_8_canvases(data_dir):
    """Dice of the object > 0.99 on 8 real training canvases, in eval mode (BN running statistics)."""
    ds = load_segmentation("fashion-on-cifar-seg", with_sizes("fashion-on-cifar-seg", train=8, test=1),
                           data_dir=data_dir, download=False)
    core.manual_seed(0)
    model = models.build("unet", width=0.125, num_classes=2, depth=2)
    opt, loss_fn = optim.Adam(model.parameters(), lr=0.01), SoftmaxCrossEntropy()
    start = time.perf_counter()
    for _ in range(100):
        opt.zero_grad()
        loss_fn(model(ds.x_train), ds.y_train)
        model.backward(loss_fn.backward())
        opt.step()
    model.eval()
    scores = segmentation_scores(predict_classes(model(ds.x_train)), ds.y_train, 2)
    assert scores.foreground_dice > 0.99, f"Dice {scores.foreground_dice:.4f}"
    assert time.perf_counter() - start < 60  # a bound loose enough for a busy shared machine
