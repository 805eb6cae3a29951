"""DCT, zigzag order, and the frequency-domain layers DCTLinear / DCTConv2D (seed 002)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicnn import functional as F
from minicnn import layers as L
from minicnn.gradcheck import gradcheck
from minicnn.gradcheck_cases import run_case
from minicnn.optim import SGD, Adam

# ---- the transform ------------------------------------------------------------------------------


def dct_matrix_by_formula(n):
    """D[u, i] = a(u) cos(pi (2 i + 1) u / (2 n)), a(0) = sqrt(1/n), a(u) = sqrt(2/n): written from the
    definition, independent of scipy."""
    u, i = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    a = np.where(u == 0, np.sqrt(1 / n), np.sqrt(2 / n))
    return a * np.cos(np.pi * (2 * i + 1) * u / (2 * n))


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=4), seed=st.integers(0, 10_000))
def test_idct_inverts_dct_and_preserves_norm(shape, seed):
    x = np.random.default_rng(seed).standard_normal(shape)
    c = F.dct(x)
    np.testing.assert_allclose(F.idct(c), x, rtol=0, atol=1e-12)
    np.testing.assert_allclose(F.dct(F.idct(x)), x, rtol=0, atol=1e-12)
    assert abs(np.linalg.norm(c) - np.linalg.norm(x)) < 1e-12 * max(1.0, np.linalg.norm(x))  # Parseval


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_dct_matrix_is_orthonormal_and_matches_the_formula(n):
    D = F.dct(np.eye(n), axes=0)  # column i = dct of e_i, so D[u, i] as in the formula
    np.testing.assert_allclose(D, dct_matrix_by_formula(n), rtol=0, atol=1e-12)
    np.testing.assert_allclose(D @ D.T, np.eye(n), rtol=0, atol=1e-12)
    np.testing.assert_allclose(F.idct(np.eye(n), axes=0), D.T, rtol=0, atol=1e-12)


def test_nd_dct_is_the_separable_product_over_the_chosen_axes(rng):
    x = rng.standard_normal((3, 4, 5))
    D0, D2 = dct_matrix_by_formula(3), dct_matrix_by_formula(5)
    np.testing.assert_allclose(F.dct(x, axes=(0, 2)), np.einsum("ua,abc,vc->ubv", D0, x, D2), atol=1e-12)
    D1 = dct_matrix_by_formula(4)
    np.testing.assert_allclose(F.dct(x), np.einsum("ua,vb,wc,abc->uvw", D0, D1, D2, x), atol=1e-12)


def test_idct_is_the_adjoint_of_dct(rng):
    x, c = rng.standard_normal((4, 3, 2, 5)), rng.standard_normal((4, 3, 2, 5))
    assert abs(np.sum(F.dct(x) * c) - np.sum(x * F.idct(c))) < 1e-12


def test_dct_keeps_float32():
    x = np.ones((3, 3), np.float32)
    assert F.dct(x).dtype == np.float32 and F.idct(x).dtype == np.float32


def test_dct_bad_input():
    with pytest.raises(ValueError, match="dct: expected axes"):
        F.dct(np.ones((2, 3)), axes=2)
    with pytest.raises(ValueError, match="idct: expected a floating"):
        F.idct(np.ones((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="distinct"):
        F.dct(np.ones((2, 3)), axes=(1, -1))


# ---- zigzag -------------------------------------------------------------------------------------

# Written by hand: diagonal by diagonal (sum of indices), each one from row 0 downwards.
ZIGZAG_4x4 = np.array([
    [0, 1, 3, 6],
    [2, 4, 7, 10],
    [5, 8, 11, 13],
    [9, 12, 14, 15],
])

# The JPEG zigzag scan (ITU-T T.81, figure 5): rank of each position of an 8x8 block.
JPEG_8x8 = np.array([
    [0, 1, 5, 6, 14, 15, 27, 28],
    [2, 4, 7, 13, 16, 26, 29, 42],
    [3, 8, 12, 17, 25, 30, 41, 43],
    [9, 11, 18, 24, 31, 40, 44, 53],
    [10, 19, 23, 32, 39, 45, 52, 54],
    [20, 22, 33, 38, 46, 51, 55, 60],
    [21, 34, 37, 47, 50, 56, 59, 61],
    [35, 36, 48, 49, 57, 58, 62, 63],
])


def test_zigzag_hand_written_4x4():
    np.testing.assert_array_equal(F.zigzag_order((4, 4)), ZIGZAG_4x4)


def test_zigzag_is_jpeg_up_to_the_direction_along_each_diagonal():
    ours = F.zigzag_order((8, 8))
    for s in range(15):  # diagonal i + j = s
        cells = [(i, s - i) for i in range(8) if 0 <= s - i < 8]  # row increasing = our order
        ours_d = [ours[c] for c in cells]
        jpeg_d = [JPEG_8x8[c] for c in cells]
        assert ours_d == sorted(ours_d)  # we always walk a diagonal with the first axis increasing
        assert sorted(ours_d) == sorted(jpeg_d)  # the same ranks on the same diagonal
        # JPEG walks odd diagonals downwards (as we do) and even ones upwards
        assert jpeg_d == (sorted(jpeg_d) if s % 2 else sorted(jpeg_d, reverse=True))


def test_zigzag_3d_small_example():
    # 2x2x2: diagonal 0: (0,0,0); diagonal 1: (0,0,1) (0,1,0) (1,0,0); diagonal 2: (0,1,1) (1,0,1) (1,1,0)
    order = F.zigzag_order((2, 2, 2))
    expected = {(0, 0, 0): 0, (0, 0, 1): 1, (0, 1, 0): 2, (1, 0, 0): 3,
                (0, 1, 1): 4, (1, 0, 1): 5, (1, 1, 0): 6, (1, 1, 1): 7}
    for idx, r in expected.items():
        assert order[idx] == r


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), data=st.data())
def test_zigzag_is_a_permutation_sorted_by_diagonal_then_lexicographic(shape, data):
    order = F.zigzag_order(shape)
    size = int(np.prod(shape))
    np.testing.assert_array_equal(np.sort(order, axis=None), np.arange(size))
    by_rank = sorted(np.ndindex(*shape), key=lambda idx: order[idx])
    assert by_rank == sorted(np.ndindex(*shape), key=lambda idx: (sum(idx), idx))
    k = data.draw(st.integers(0, size))
    mask = F.zigzag_mask(shape, k)
    assert mask.dtype == bool and mask.sum() == k and np.all(mask == (order < k))


def test_zigzag_bad_input():
    with pytest.raises(ValueError, match="zigzag_order: expected a shape"):
        F.zigzag_order((3, 0))
    with pytest.raises(ValueError, match="zigzag_mask: expected an int k with 0 <= k <= 6"):
        F.zigzag_mask((2, 3), 7)
    with pytest.raises(ValueError, match="zigzag_mask"):
        F.zigzag_mask((2, 3), 0.5)


# ---- the layers ---------------------------------------------------------------------------------

KEEPS = [1.0, 0.5, 7, 1]


@pytest.mark.parametrize("keep", KEEPS)
def test_dct_linear_gradcheck(keep, rng):
    layer = L.DCTLinear(6, 4, keep=keep).to(np.float64)
    layer.coeffs.data += rng.standard_normal(layer.coeffs.shape) * layer.mask  # not just the init
    report = gradcheck(layer, rng.standard_normal((3, 6)))
    assert report.max_rel_error < 1e-6
    assert {t.name for t in report.tensors} == {"input", "coeffs", "bias"}


@pytest.mark.parametrize("keep", KEEPS)
@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1)])
def test_dct_conv2d_gradcheck(keep, stride, padding, rng):
    layer = L.DCTConv2D(2, 3, (3, 2), stride=stride, padding=padding, keep=keep).to(np.float64)
    report = gradcheck(layer, rng.standard_normal((2, 2, 5, 4)))
    assert report.max_rel_error < 1e-6
    assert {t.name for t in report.tensors} == {"input", "coeffs", "bias"}


@pytest.mark.parametrize("name", ["DCTLinear", "DCTLinear_keep5", "DCTConv2D", "DCTConv2D_keep0.25"])
def test_registered_gradcheck_cases(name):
    assert run_case(name, seed=1).ok


def test_truncated_coefficients_get_zero_gradient(rng):
    layer = L.DCTLinear(5, 4, keep=6).to(np.float64)
    x = rng.standard_normal((3, 5))
    layer.backward(rng.standard_normal(layer(x).shape))
    assert np.all(layer.coeffs.grad[~layer.mask] == 0)
    assert np.count_nonzero(layer.coeffs.grad) == 6


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 4), fin=st.integers(1, 7), fout=st.integers(1, 6), frac=st.floats(0.05, 1.0),
       seed=st.integers(0, 10_000))
def test_dct_linear_forward_is_linear_with_the_idct_weight(n, fin, fout, frac, seed):
    g = np.random.default_rng(seed)
    layer = L.DCTLinear(fin, fout, keep=frac).to(np.float64)
    x = g.standard_normal((n, fin))
    W = F.idct(layer.mask * layer.coeffs.data)
    dense = L.Linear(fin, fout).to(np.float64)
    dense.weight.data[...] = W
    dense.bias.data[...] = layer.bias.data
    np.testing.assert_allclose(layer(x), dense(x), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(layer.spatial_weight(), W)


@settings(max_examples=12, deadline=None)
@given(c=st.integers(1, 3), t=st.integers(1, 3), k=st.integers(1, 3), stride=st.integers(1, 2),
       padding=st.integers(0, 1), frac=st.floats(0.05, 1.0), seed=st.integers(0, 10_000))
def test_dct_conv2d_forward_is_conv2d_with_the_idct_weight(c, t, k, stride, padding, frac, seed):
    g = np.random.default_rng(seed)
    layer = L.DCTConv2D(c, t, k, stride=stride, padding=padding, keep=frac).to(np.float64)
    x = g.standard_normal((2, c, 5, 6))
    W = F.idct(layer.mask * layer.coeffs.data)
    dense = L.Conv2D(c, t, k, stride=stride, padding=padding, method="direct").to(np.float64)
    dense.weight.data[...] = W
    dense.bias.data[...] = layer.bias.data
    np.testing.assert_allclose(layer(x), dense(x), rtol=0, atol=1e-12)


def test_layers_have_the_public_attributes_of_conv2d_and_linear():
    conv = L.DCTConv2D(3, 8, 5, stride=2, padding=2)
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding) == \
        (3, 8, (5, 5), (2, 2), (2, 2))
    assert conv.dilation == (1, 1) and conv.groups == 1 and conv.coeffs.shape == (8, 3, 5, 5)
    same = L.DCTConv2D(3, 8, 3, padding="same")
    assert same.padding == (1, 1)
    lin = L.DCTLinear(7, 2)
    assert (lin.in_features, lin.out_features, lin.coeffs.shape) == (7, 2, (2, 7))


def test_keep_fraction_and_count():
    layer = L.DCTLinear(10, 10)
    assert layer.keep == 100
    assert layer.set_keep(0.05) == 5 and layer.keep == 5
    assert layer.set_keep(0.051) == 6  # fractions round up
    assert layer.set_keep(3) == 3
    np.testing.assert_array_equal(layer.mask, F.zigzag_mask((10, 10), 3))
    assert layer.coeffs.mask is layer.mask  # the optimizers read the Parameter's mask
    assert np.all(layer.coeffs.data[~layer.mask] == 0)


def test_float32_forward_and_backward():
    layer = L.DCTConv2D(1, 2, 3, keep=0.5)
    x = np.random.default_rng(0).standard_normal((2, 1, 6, 6)).astype(np.float32)
    y = layer(x)
    assert y.dtype == np.float32
    dx = layer.backward(np.ones_like(y))
    assert dx.dtype == np.float32 and layer.coeffs.grad.dtype == np.float32


def _train_steps(layer, opt, x, steps, rng):
    for _ in range(steps):
        opt.zero_grad()
        y = layer(x)
        layer.backward(rng.standard_normal(y.shape))
        opt.step()


@pytest.mark.parametrize("make_opt", [
    lambda p: SGD(p, lr=0.05, momentum=0.9, weight_decay=0.1),
    lambda p: SGD(p, lr=0.05, momentum=0.9, weight_decay=0.1, nesterov=True),
    lambda p: Adam(p, lr=0.01, weight_decay=0.1),
], ids=["sgd-momentum-wd", "sgd-nesterov-wd", "adam-wd"])
@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_masked_coefficients_stay_exactly_zero_while_training(make_opt, kind, rng):
    if kind == "linear":
        layer, x = L.DCTLinear(8, 6, keep=0.3).to(np.float64), rng.standard_normal((4, 8))
    else:
        layer, x = L.DCTConv2D(2, 3, 3, keep=0.3).to(np.float64), rng.standard_normal((2, 2, 5, 5))
    opt = make_opt(layer.parameters())
    start = layer.coeffs.data.copy()
    _train_steps(layer, opt, x, 40, rng)
    assert np.all(layer.coeffs.data[~layer.mask] == 0)
    assert np.all(layer.coeffs.data[layer.mask] != start[layer.mask])  # the kept ones did train
    k_before = layer.keep
    layer.set_keep(k_before // 3)  # lower k mid-training: momentum buffers still hold old values
    _train_steps(layer, opt, x, 40, rng)
    assert layer.keep == k_before // 3
    assert np.all(layer.coeffs.data[~layer.mask] == 0)
    assert np.count_nonzero(layer.coeffs.data) == layer.keep
    np.testing.assert_allclose(layer.spatial_weight(), F.idct(layer.coeffs.data), atol=1e-12)


def test_state_dict_restores_coefficients_and_truncation_point():
    a = L.DCTConv2D(2, 3, 3, keep=9)
    b = L.DCTConv2D(2, 3, 3)
    assert set(a.state_dict()) == {"coeffs", "bias", "mask"}
    b.load_state_dict(a.state_dict())
    assert b.keep == 9 and b.coeffs.mask is b.mask
    np.testing.assert_array_equal(b.spatial_weight(), a.spatial_weight())
    b.to(np.float64)
    assert b.mask.dtype == bool and b.coeffs.data.dtype == np.float64


def test_dct_layers_bad_input():
    with pytest.raises(ValueError, match=r"DCTLinear: expected a 2-D input \(N, 4\), got shape \(3,\)"):
        L.DCTLinear(4, 2)(np.ones(3))
    with pytest.raises(ValueError, match="DCTLinear: expected input"):
        L.DCTLinear(4, 2)(np.ones((3, 5)))
    with pytest.raises(ValueError, match=r"DCTConv2D: expected input \(N, 2, H, W\)"):
        L.DCTConv2D(2, 3, 3)(np.ones((1, 3, 5, 5)))
    with pytest.raises(ValueError, match="DCTConv2D"):
        L.DCTConv2D(2, 3, 3)(np.ones((1, 2, 2, 2)))  # kernel larger than the input
    with pytest.raises(ValueError, match=r"DCTLinear: expected a keep count in \[0, 8\]"):
        L.DCTLinear(4, 2, keep=9)
    with pytest.raises(ValueError, match=r"expected a keep fraction in \(0, 1\]"):
        L.DCTLinear(4, 2).set_keep(1.5)
    with pytest.raises(ValueError, match="DCTConv2D: expected kernel_size"):
        L.DCTConv2D(2, 3, 0)
    with pytest.raises(ValueError, match="DCTConv2D: expected a mask of shape"):
        L.DCTConv2D(2, 3, 3).mask = np.ones((3, 2, 3, 2))


@pytest.mark.parametrize("method", ["direct", "im2col", "fft"])
def test_dct_layers_are_the_plain_layers_with_another_weight(method, rng):
    """DCTConv2D / DCTLinear derive from Conv2D / Linear: same outputs as the plain layer holding the
    spatial weight, and the plain layer's switches (input_grad, every method) come with them."""
    conv = L.DCTConv2D(2, 3, 3, padding=1, keep=0.5, method=method)
    assert isinstance(conv, L.Conv2D) and "weight" not in dict(conv.named_parameters())
    plain = L.Conv2D(2, 3, 3, padding=1, method=method)
    plain.weight.data, plain.bias.data = conv.spatial_weight(), conv.bias.data.copy()
    x = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(conv(x), plain(x), atol=1e-5)
    conv.input_grad = False
    y = conv(x)
    assert conv.backward(np.ones_like(y)) is None and np.any(conv.coeffs.grad != 0)
    lin = L.DCTLinear(5, 4, keep=7)
    dense = L.Linear(5, 4)
    dense.weight.data, dense.bias.data = lin.spatial_weight(), lin.bias.data.copy()
    v = rng.standard_normal((3, 5)).astype(np.float32)
    assert isinstance(lin, L.Linear)
    np.testing.assert_allclose(lin(v), dense(v), atol=1e-6)
