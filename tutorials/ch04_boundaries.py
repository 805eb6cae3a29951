"""Chapter 4: boundaries — "valid" versus "same", and the false edges of zero padding."""

from __future__ import annotations

import numpy as np

from minicnn.experiments import downsampling as study
from minicnn.functional import checks, conv_direct
from minicnn.functional import conv as FC

from ._runner import Step

TITLE = "Boundaries: valid and same"
SUMMARY = "'valid' shrinks the map and under-uses its border; 'same' zero-pads and invents false edges"

LAPLACIAN = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])[None, None]  # (1, 1, 3, 3)


def _picture() -> np.ndarray:
    """A 16x16 test picture: a bright smooth background with a darker square (one real edge set)."""
    img = np.full((16, 16), 0.8)
    img[5:11, 5:11] = 0.2
    return img


def _photos(n: int) -> np.ndarray | None:
    """The first n CIFAR-10 test pictures in grey (N, 1, 32, 32), or None when the data is not here."""
    from minicnn.data import DatasetError

    try:
        return study.load_images("cifar10", None, n).mean(axis=1, keepdims=True)
    except DatasetError:
        return None


def _modes(t):
    t.code(checks.conv_output_size, start="before, after =", end="padded = size")
    t.code(checks.conv_output_size, start="return (padded", end="return (padded")
    t.say("'valid' is padding 0. 'same' pads (K − 1)/2 zeros on each side: padded − span = "
          "(H + K − 1) − K = H − 1, so OH = H.")
    size = 9
    x = np.zeros((1, 1, size, size))
    rows = []
    for k in (3, 5, 7):
        pad = (k - 1) // 2
        oh_valid = checks.conv_output_size(size, k, padding=0)
        oh_same = checks.conv_output_size(size, k, padding=pad)
        w = np.ones((1, 1, k, k))
        valid, same = FC.conv2d(x, w, padding="valid"), FC.conv2d(x, w, padding="same")
        rows.append([f"{k}x{k}", f"{size}x{size}", f"{oh_valid}x{oh_valid}", f"{oh_same}x{oh_same}", pad])
        t.check(f"{k}x{k}: valid gives H − K + 1 = {size + 1 - k}, same gives H = {size}",
                [oh_valid, oh_same], [size + 1 - k, size], tol=0)
        t.check(f"{k}x{k}: conv2d 'valid' and 'same' return those sizes",
                [*valid.shape[2:], *same.shape[2:]], [oh_valid, oh_valid, oh_same, oh_same], tol=0)
    t.table(["kernel", "input", "valid output", "same output", "zeros added per side"], rows)


def _unequal(t):
    t.code(conv_direct.conv2d_direct_backward, start="for g in range(groups)", end="db =")
    t.say("How many outputs does each input pixel feed? Send dz/dy = 1 from every output back through a "
          "'valid' 3x3 convolution with an all-ones kernel: dz/dx counts the windows covering each pixel.")
    x = np.zeros((1, 1, 7, 7))
    w = np.ones((1, 1, 3, 3))
    y = FC.conv2d(x, w, padding="valid")
    dx, _, _ = FC.conv2d_backward(np.ones_like(y), x, w, padding="valid", method="direct")
    t.array("windows covering each input pixel", dx[0, 0].astype(int))
    t.blocks("the same as a map", dx[0, 0])
    t.check("a corner pixel is seen by 1 window, a central one by K² = 9", [dx[0, 0, 0, 0], dx[0, 0, 3, 3]], [1, 9])
    dx_same, _, _ = FC.conv2d_backward(np.ones((1, 1, 7, 7)), x, w, padding="same", method="direct")
    t.array("the same count with 'same' padding", dx_same[0, 0].astype(int))
    t.check("with 'same' padding the imbalance shrinks but stays: corner 4, edge 6, centre 9",
            [dx_same[0, 0, 0, 0], dx_same[0, 0, 0, 3], dx_same[0, 0, 3, 3]], [4, 6, 9])


def _false_edges(t):
    t.code(conv_direct.conv2d_direct, start="oh = conv_output_size", end="y[:, to, i, j] =")
    t.say("'same' is just the `np.pad` line: zeros around the picture, then the same loop. A tiny example "
          "first, by hand: the 3x3 picture of all ones, Laplacian, 'same'. The centre sees 4·1 − 4·1 = 0; an "
          "edge pixel has 3 real neighbours and one padded 0: 3 − 4 = −1; a corner has 2: 2 − 4 = −2.")
    ones = FC.conv2d(np.ones((1, 1, 3, 3)), LAPLACIAN, padding="same", method="direct")[0, 0]
    t.array("conv2d(ones(3x3), Laplacian, 'same')", ones)
    t.check("by hand: corners −2, edges −1, centre 0", ones, [[-2, -1, -2], [-1, 0, -1], [-2, -1, -2]])
    img = _picture()[None, None]
    edges_same = FC.conv2d(img, LAPLACIAN, padding="same")[0, 0]
    edges_valid = FC.conv2d(img, LAPLACIAN, padding="valid")[0, 0]
    t.blocks("the picture (16x16)", img[0, 0], lo=0.0, hi=1.0)
    t.blocks("|Laplacian|, 'same' (zero padding): a frame appears", np.abs(edges_same), lo=0.0)
    t.blocks("|Laplacian|, 'valid': only the real edges (14x14)", np.abs(edges_valid), lo=0.0)
    border = np.concatenate([edges_same[0], edges_same[-1], edges_same[:, 0], edges_same[:, -1]])
    t.check("inside, 'same' and 'valid' agree exactly", edges_same[1:-1, 1:-1], edges_valid)
    t.check_true(f"the flat background has zero response inside but |{np.abs(border).min():.1f}| or more on every "
                 "border pixel: edges that are not in the picture", np.abs(border).min() >= 0.8 - 1e-12)
    t.check("a flat region away from the border responds with exactly 0", edges_same[2, 2], 0.0)
    photos = _photos(100 if not t.quick else 20)
    if photos is None:
        t.print("(CIFAR-10 not found: set MINICNN_DATA to measure the same effect on real photographs)")
    else:
        resp = np.abs(FC.conv2d(photos, LAPLACIAN, padding="same"))
        ring = np.ones(photos.shape[2:], bool)
        ring[1:-1, 1:-1] = False
        outer, inner = float(resp[:, :, ring].mean()), float(resp[:, :, ~ring].mean())
        t.blocks("a real photograph (CIFAR-10 test image 0, grey)", photos[0, 0])
        t.blocks("its |Laplacian| with 'same' padding: the frame again", resp[0, 0], lo=0.0)
        t.check_true(f"on {len(photos)} CIFAR-10 photographs the mean |response| on the border ring is "
                     f"{outer:.3f}, {outer / inner:.1f}x the {inner:.3f} inside", outer > 2 * inner)
    t.save_images("false_edges", (img[0, 0], np.abs(edges_same), np.abs(edges_valid)),
                  ("picture", "|Laplacian|, 'same': false frame", "|Laplacian|, 'valid' (14x14)"), height=3.2)


STEPS = [
    Step("'valid' and 'same'", """
        'valid' computes only the outputs whose window fits inside the input: the map shrinks by K − 1.
        'same' pads with (K − 1)/2 zeros on each side so the map keeps its size.""",
         "valid: OH = H − K + 1          same: pad = (K − 1)/2,  OH = H", _modes),
    Step("Valid mode: unequal contribution", """
        In 'valid' mode border pixels feed fewer outputs than central ones, so they matter less to the
        layer — and to its gradient.""",
         "count(i, j) = #{outputs o : (i, j) in window(o)} = dz/dx[i, j]  when dz/dy ≡ 1 and K ≡ 1", _unequal),
    Step("Same mode: false edges", """
        Zero padding solves the size problem but puts a black frame around the picture: an edge detector
        answers along every border, where the picture has no edge at all.""",
         "Laplacian  [[0, 1, 0], [1, −4, 1], [0, 1, 0]]: flat region → 0,  region next to padded zeros → ≠ 0",
         _false_edges),
]
