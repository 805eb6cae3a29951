"""Chapter 5: a convolution is a multiplication by a banded matrix."""

from __future__ import annotations

import numpy as np

from minicnn.functional import conv as FC
from minicnn.functional import conv_direct

from ._runner import Step

TITLE = "Convolution is a banded matrix multiply"
SUMMARY = "conv_as_matrix builds W with y = W x: the band drawn in the terminal, checked against conv2d"


def _draw_pattern(t, name: str, mat: np.ndarray) -> None:
    """Nonzero pattern of a matrix: '█' for an entry, '·' for a zero (one character per entry)."""
    t.print(f"{name}  {mat.shape[0]}x{mat.shape[1]}, █ = nonzero, · = zero")
    for row in mat:
        t.print("  " + "".join("█" if v != 0 else "·" for v in row))
    t.print()


def _one_d(t):
    t.code(FC.conv_as_matrix, start='"""', end="return mat.reshape")
    k = np.array([1.0, 2.0, 3.0])
    w = k.reshape(1, 1, 1, 3)  # a 1-D kernel: one row, three taps
    x = np.arange(1.0, 9.0)
    mat = FC.conv_as_matrix(w, (1, 1, 8))
    t.array("kernel", k)
    t.array("W = conv_as_matrix(kernel, 1x8 input)", mat.astype(int))
    t.array("x", x)
    y_mat = mat @ x
    y = FC.conv2d(x.reshape(1, 1, 1, 8), w)[0, 0, 0]
    t.array("W @ x", y_mat)
    t.say(f"By hand, row 0: 1·{x[0]:g} + 2·{x[1]:g} + 3·{x[2]:g} = {x[0] + 2 * x[1] + 3 * x[2]:g}.")
    t.check("W @ x equals conv2d(x, kernel)", y_mat, y, tol=0)
    t.check("row 0 by hand: 1·1 + 2·2 + 3·3 = 14", y_mat[0], 14, tol=0)
    t.check_true("every row holds the kernel, shifted one column to the right: a band",
                 all(np.array_equal(mat[r, r:r + 3], k) and mat[r].sum() == k.sum() for r in range(mat.shape[0])))


def _two_d(t):
    t.code(conv_direct.conv2d_direct, start="for to in range(t)", end="y[:, to, i, j] =")
    t.say("The direct loop above computes each output as one window's dot product; conv_as_matrix writes "
          "that same window as one row of W.")
    rng = np.random.default_rng(0)
    w = rng.standard_normal((1, 1, 3, 3))
    x = rng.standard_normal((1, 1, 5, 5))
    mat = FC.conv_as_matrix(w, (1, 5, 5))
    _draw_pattern(t, "conv_as_matrix(3x3 kernel, 5x5 input): rows = 3x3 outputs, columns = 5x5 pixels", mat)
    t.check("W @ x.ravel() equals conv2d(x, w).ravel()", mat @ x.ravel(),
            FC.conv2d(x, w, method="direct").ravel())
    t.say("The matrix is block-Toeplitz: 3x3 blocks of 3x5, each block a banded 1-D matrix holding one row of "
          "the kernel, and the block pattern itself banded.")
    block = mat[:3, :5]
    t.check("block (0, 0) is the band of kernel row 0", block, FC.conv_as_matrix(w[:, :, :1], (1, 1, 5)))
    t.check("block (1, 1) equals block (0, 0): the same weights are tied along the diagonal",
            mat[3:6, 5:10], block, tol=0)
    density = np.count_nonzero(mat) / mat.size
    t.check_true(f"only {np.count_nonzero(mat)} of {mat.size} entries ({density:.0%}) are nonzero: "
                 "9 per row, one per kernel tap", np.all(np.count_nonzero(mat, axis=1) == 9))


def _channels(t):
    t.code(FC.conv_as_matrix, start="for i in range(kh)", end="mat[to[ok]")
    rng = np.random.default_rng(1)
    c, h, wd = 2, 6, 6
    for stride, padding in ((1, 0), (2, 1), (1, "same")):
        w = rng.standard_normal((3, c, 3, 3))
        x = rng.standard_normal((1, c, h, wd))
        mat = FC.conv_as_matrix(w, (c, h, wd), stride=stride, padding=padding)
        y = FC.conv2d(x, w, stride=stride, padding=padding)
        t.check(f"C=2 → T=3, stride {stride}, padding {padding!r}: W is {mat.shape[0]}x{mat.shape[1]} and "
                "W @ x equals conv2d", mat @ x.ravel(), y.ravel())
    w = rng.standard_normal((2, 1, 2, 2))
    mat = FC.conv_as_matrix(w, (1, 4, 4), stride=2)
    _draw_pattern(t, "2 output maps, 2x2 kernel, stride 2 on 4x4: windows start 2 pixels apart", mat)


def _patterns(t):
    t.code(conv_direct.conv2d_direct, start="u = xp[", end="y[:, to, i, j] =")
    t.say("Each row of W is the kernel placed at one position, so W x is a list of dot products: how much "
          "the input looks like the kernel there. The largest response marks where the pattern is.")
    pattern = np.array([[0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])  # a plus sign
    img = np.zeros((9, 9))
    img[5:8, 2:5] = pattern  # hide the pattern at rows 5-7, columns 2-4
    img += np.random.default_rng(2).uniform(0, 0.3, img.shape)
    resp = FC.conv2d(img[None, None], (pattern - pattern.mean())[None, None], method="direct")[0, 0]
    t.blocks("picture with a hidden '+'", img)
    t.blocks("response of the zero-mean '+' kernel (7x7)", resp)
    r, q = np.unravel_index(np.argmax(resp), resp.shape)
    t.check("the strongest response is at the pattern's top-left corner (5, 2)", [r, q], [5, 2], tol=0)


STEPS = [
    Step("1-D correlation is a banded matrix", """
        A convolutional layer is still a multiplicative layer, y = W x: it is just a very special W. In 1-D,
        correlating with a 3-tap kernel multiplies by a matrix whose rows are the kernel, shifted.""",
         "y = W x,     W[r, r + k] = K[k]   (zero elsewhere)", _one_d),
    Step("2-D: a block-Toeplitz band", """
        In 2-D, flattening the image row by row, the band becomes blocks of bands.""",
         "V = W U,    W[(x, y), (x + i, y + j)] = K(i, j)", _two_d),
    Step("Many channels, stride and padding", """
        With S input and T output maps each output row holds S kernels side by side; stride skips rows of
        outputs; padding drops the taps that would read padding zeros.""",
         "W: (T·OH·OW) x (S·H·W),   y = W x for every stride, padding, dilation and group setting", _channels),
    Step("Interpretation: looking for patterns", """
        Correlation scores how well each patch matches the kernel.""",
         "V(x, y) = ⟨K, U[x : x + k, y : y + k]⟩", _patterns),
]
