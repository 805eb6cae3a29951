"""Every layer's backward refuses a dy that is not the shape its forward returned, with a ValueError that
names the layer, the expected shape and the received one: nothing is silently broadcast (a dy of one
image against a batch of four used to come back as four images' gradients from the elementwise layers,
the pools, the slicing layers and Dropout)."""

import inspect
import re

import numpy as np
import pytest

from minicnn import layers as L
from minicnn.core import Layer

MAP = (4, 4, 4, 4)  # (N, C, H, W)

CASES = {  # layer class name -> (a layer, an input shape)
    "ReLU": (lambda: L.ReLU(), MAP), "ReLU6": (lambda: L.ReLU6(), MAP), "LeakyReLU": (lambda: L.LeakyReLU(), MAP),
    "Sigmoid": (lambda: L.Sigmoid(), MAP), "Tanh": (lambda: L.Tanh(), MAP), "GELU": (lambda: L.GELU(), MAP),
    "Maxout": (lambda: L.Maxout(2), MAP),
    "Conv2D": (lambda: L.Conv2D(4, 5, 3, padding=1), MAP),
    "DepthwiseConv2D": (lambda: L.DepthwiseConv2D(4, 3, padding=1), MAP),
    "PointwiseConv2D": (lambda: L.PointwiseConv2D(4, 5), MAP),
    "SeparableConv2D": (lambda: L.SeparableConv2D(4, 5, 3, padding=1), MAP),
    "ConvTranspose2D": (lambda: L.ConvTranspose2D(4, 5, 2, stride=2), MAP),
    "LocallyConnected2D": (lambda: L.LocallyConnected2D(4, 5, (4, 4), 3), MAP),
    "DCTConv2D": (lambda: L.DCTConv2D(4, 5, 3, padding=1), MAP),
    "DCTConvTranspose2D": (lambda: L.DCTConvTranspose2D(4, 3, 2, stride=2, keep=5), MAP),
    "DCTLinear": (lambda: L.DCTLinear(6, 5), (4, 6)),
    "FrequencyBias": (lambda: L.FrequencyBias(4), MAP),
    "Linear": (lambda: L.Linear(6, 5), (4, 6)), "Flatten": (lambda: L.Flatten(), MAP),
    "Dropout": (lambda: L.Dropout(0.5), MAP),
    "BatchNorm1D": (lambda: L.BatchNorm1D(6), (4, 6)), "BatchNorm2D": (lambda: L.BatchNorm2D(4), MAP),
    "MaxPool2D": (lambda: L.MaxPool2D(2), MAP), "AvgPool2D": (lambda: L.AvgPool2D(2), MAP),
    "SumPool2D": (lambda: L.SumPool2D(2), MAP), "GlobalAvgPool2D": (lambda: L.GlobalAvgPool2D(), MAP),
    "SoftPool2D": (lambda: L.SoftPool2D(2), MAP), "MixedPool2D": (lambda: L.MixedPool2D(2), MAP),
    "StochasticPool2D": (lambda: L.StochasticPool2D(2), MAP), "Subsample2D": (lambda: L.Subsample2D(2), MAP),
    "SliceDownsample": (lambda: L.SliceDownsample(2), MAP), "SliceUpsample": (lambda: L.SliceUpsample(2), MAP),
    "HaarDownsample": (lambda: L.HaarDownsample(), MAP), "HaarUpsample": (lambda: L.HaarUpsample(), MAP),
    "Upsample": (lambda: L.Upsample(2), MAP),
    "ChannelShuffle": (lambda: L.ChannelShuffle(2), MAP), "ChannelSplit": (lambda: L.ChannelSplit(0), MAP),
    "Concat": (lambda: L.Concat(L.ReLU(), L.Tanh()), MAP),
    "Residual": (lambda: L.Residual(L.ReLU()), MAP),
    "Sequential": (lambda: L.Sequential(L.Conv2D(4, 4, 3, padding=1), L.ReLU()), MAP),
    "DepthwiseSeparable": (lambda: L.DepthwiseSeparable(4, 6), MAP),
    "InvertedResidual": (lambda: L.InvertedResidual(4, 4), MAP),
    "ShuffleV2Unit": (lambda: L.ShuffleV2Unit(4, 4), MAP),
    "Identity": (lambda: L.Identity(), MAP),
    "SkipConcat": (lambda: L.SkipConcat(L.Sequential(L.MaxPool2D(2), L.Conv2D(4, 3, 1), L.Upsample(2))), MAP),
    "DoubleConv": (lambda: L.DoubleConv(4, 5), MAP),
    "SliceSamp": (lambda: L.SliceSamp(4, 6), MAP), "SliceUpsamp": (lambda: L.SliceUpsamp(4, 6), MAP),
}


def test_every_exported_layer_has_a_case():
    exported = {name for name, obj in vars(L).items()
                if inspect.isclass(obj) and issubclass(obj, Layer) and obj is not Layer}
    assert exported == set(CASES)


def _wrong_shapes(y_shape):
    """A dy of one image (broadcasts against the batch), one with a value too many, and a flat one."""
    return [(1, *y_shape[1:]), (*y_shape[:-1], y_shape[-1] + 1), (int(np.prod(y_shape)),)]


@pytest.mark.parametrize("name", sorted(CASES))
def test_backward_refuses_a_dy_of_another_shape(name):
    make, shape = CASES[name]
    layer = make()
    x = np.abs(np.random.default_rng(0).standard_normal(shape))  # >= 0: StochasticPool2D wants that
    y = layer.forward(x)
    for wrong in _wrong_shapes(y.shape):
        with pytest.raises(ValueError, match="expected") as info:
            layer.backward(np.ones(wrong))
        assert str(tuple(wrong)) in str(info.value)  # what was received; the expected shape or layout before it
    dx = layer.backward(np.ones(y.shape))  # the right shape still works afterwards
    assert dx.shape == x.shape


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_refuses_what_is_not_a_floating_array(name):
    """A list, integers, booleans or complex numbers: a ValueError, never an AttributeError from inside
    or a silent cast. (Flatten is a reshape and takes any dtype; a list it still refuses.)"""
    make, shape = CASES[name]
    x = np.abs(np.random.default_rng(0).standard_normal(shape))
    bad = [x.tolist()] + ([] if name == "Flatten" else [x.astype(np.int64), x > 0.5, x.astype(complex)])
    for value in bad:
        with pytest.raises(ValueError, match="expected"):
            make().forward(value)


def _functional_cases():
    """(name, backward(dy), the right dy shape) for every backward rule of minicnn.functional."""
    from minicnn import functional as F

    g = np.random.default_rng(1)
    x = np.abs(g.standard_normal(MAP))
    xl, w = g.standard_normal((4, 6)), g.standard_normal((5, 6))
    _, idx = F.maxout(x, 2)
    _, argmax = F.max_pool2d(x, 2)
    _, coef = F.soft_pool2d(x, 2)
    _, y_max, y_avg, mixed_argmax = F.mixed_pool2d(x, 0.5, 2)
    _, x_hat, inv_std, _, _ = F.batch_norm_train(x, np.ones(4), np.zeros(4), 1e-5)
    pooled = (4, 4, 2, 2)
    return [
        ("relu_backward", lambda d: F.relu_backward(d, x), MAP),
        ("relu6_backward", lambda d: F.relu6_backward(d, x), MAP),
        ("leaky_relu_backward", lambda d: F.leaky_relu_backward(d, x), MAP),
        ("sigmoid_backward", lambda d: F.sigmoid_backward(d, x), MAP),
        ("tanh_backward", lambda d: F.tanh_backward(d, x), MAP),
        ("gelu_backward", lambda d: F.gelu_backward(d, x), MAP),
        ("maxout_backward", lambda d: F.maxout_backward(d, idx, 2), idx.shape),
        ("linear_backward", lambda d: F.linear_backward(d, xl, w), (4, 5)),
        ("max_pool2d_backward", lambda d: F.max_pool2d_backward(d, argmax, MAP, 2), pooled),
        ("avg_pool2d_backward", lambda d: F.avg_pool2d_backward(d, MAP, 2), pooled),
        ("sum_pool2d_backward", lambda d: F.sum_pool2d_backward(d, MAP, 2), pooled),
        ("global_avg_pool2d_backward", lambda d: F.global_avg_pool2d_backward(d, MAP), (4, 4)),
        ("soft_pool2d_backward", lambda d: F.soft_pool2d_backward(d, coef, MAP, 2), pooled),
        ("mixed_pool2d_backward",
         lambda d: F.mixed_pool2d_backward(d, 0.5, y_max, y_avg, mixed_argmax, MAP, 2), pooled),
        ("stochastic_pool2d_backward", lambda d: F.stochastic_pool2d_backward(d, argmax, MAP, 2), pooled),
        ("stochastic_pool2d_eval_backward",
         lambda d: F.stochastic_pool2d_eval_backward(d, coef, MAP, 2), pooled),
        ("subsample2d_backward", lambda d: F.subsample2d_backward(d, MAP, 2), pooled),
        ("upsample2d_backward", lambda d: F.upsample2d_backward(d, MAP, 2), (4, 4, 8, 8)),
        ("batch_norm_backward", lambda d: F.batch_norm_backward(d, x_hat, inv_std, np.ones(4)), MAP),
    ]


def _kernel_cases():
    """(name, backward(dy), the right dy shape) for every backward rule of minicnn.kernels (pool, norm, ReLU)."""
    from minicnn.kernels import activations, norm, pool

    g = np.random.default_rng(2)
    x = np.abs(g.standard_normal(MAP))
    _, argmax = pool.max_pool2d(x, 2)
    _, argmax3 = pool.max_pool2d(x, 3, 1, 1)
    _, x_hat, inv_std, mu, _ = norm.batch_norm_train(x, np.ones(4), np.zeros(4), 1e-5)
    pooled = (4, 4, 2, 2)
    return [
        ("relu_backward", lambda d: activations.relu_backward(d, x), MAP),
        ("relu_backward", lambda d: activations.relu_backward(d, None, positive=x > 0), MAP),
        ("max_pool2d_backward", lambda d: pool.max_pool2d_backward(d, argmax, MAP, 2), pooled),
        ("max_pool2d_backward", lambda d: pool.max_pool2d_backward(d, argmax3, MAP, 3, 1, 1), MAP),
        ("avg_pool2d_backward", lambda d: pool.avg_pool2d_backward(d, MAP, 2), pooled),
        ("avg_pool2d_backward", lambda d: pool.avg_pool2d_backward(d, MAP, 3, 1, 1), MAP),
        ("batch_norm_backward", lambda d: norm.batch_norm_backward(d, x_hat, inv_std, np.ones(4)), MAP),
        ("batch_norm_backward", lambda d: norm.batch_norm_backward(d, None, inv_std, np.ones(4), x=x, mean=mu), MAP),
    ]


@pytest.mark.parametrize("case", _functional_cases() + _kernel_cases(), ids=lambda case: case[0])
def test_functional_backward_rules_refuse_a_dy_of_another_shape(case):
    """The plain rules (minicnn.functional) and their fast twins (minicnn.kernels) alike."""
    name, backward, shape = case
    for wrong in _wrong_shapes(shape):
        with pytest.raises(ValueError, match=rf"{name}: expected dy of shape {re.escape(str(tuple(shape)))}"):
            backward(np.ones(wrong))
    backward(np.ones(shape))  # the right shape works
