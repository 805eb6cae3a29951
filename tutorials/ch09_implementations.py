"""Chapter 9: efficient implementations — direct, im2col, FFT, timed live on this machine."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np

from minicnn.functional import conv as FC
from minicnn.functional import conv_direct, conv_fft, conv_im2col
from minicnn.kernels import conv_mec, conv_rows, conv_winograd

from ._runner import Step

TITLE = "Efficient implementations: direct, im2col, FFT"
SUMMARY = "the three algorithms side by side, checked equal; a live timing and memory table; where FFT wins"


def _direct(t):
    t.code(conv_direct.conv2d_direct, start="xp = np.pad", end="y[:, to] += b[to]")
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 8, 8)), rng.standard_normal((4, 3, 3, 3))
    y = FC.conv2d(x, w, method="direct")
    n_iter = w.shape[0] * y.shape[2] * y.shape[3]
    t.say(f"For this tiny layer (2 images, 3 → 4 maps, 8x8, 3x3) that is {n_iter} Python iterations; a CIFAR "
          "layer would need millions, which is why the direct method is only the reference.")
    t.check("direct equals im2col (float64)", y, FC.conv2d(x, w, method="im2col"))


def _im2col(t):
    t.code(conv_im2col.im2col, start="n, c, h, w = x.shape", end="return cols.reshape")
    t.code(conv_im2col.conv2d_im2col, start="cols_g = cols.reshape", end="y = np.matmul(w_mat")
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    w = np.array([[1.0, 2.0], [0.0, -1.0]]).reshape(1, 1, 2, 2)
    cols = conv_im2col.im2col(x, (2, 2))
    t.array("x", x[0, 0])
    t.array("w", w[0, 0])
    t.array("im2col(x, 2x2): one column per output position", cols)
    t.array("w.reshape(T, C·KH·KW) = one row", w.reshape(1, -1))
    t.array("w.reshape(T, C·KH·KW) @ cols", (w.reshape(1, -1) @ cols).reshape(2, 2))
    t.check("one matrix multiply = the convolution", w.reshape(1, -1) @ cols, FC.conv2d(x, w).reshape(1, -1))
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((2, 3, 6, 6))
    c = rng.standard_normal((3 * 9, 2 * 16))
    lhs = np.sum(conv_im2col.im2col(xs, (3, 3)) * c)
    rhs = np.sum(xs * conv_im2col.col2im(c, xs.shape, (3, 3)))
    t.check("col2im is the adjoint of im2col: ⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩ (used by backward)", lhs, rhs,
            tol=1e-10)


def _rows(t):
    t.code(conv_rows._patch_rows, start="rows = buf[", end="return rows.reshape")
    t.code(conv_rows.rows_layout_pays)
    x = np.arange(1.0, 19.0).reshape(1, 2, 3, 3)  # 2 channels of 3x3
    w = np.array([[[[1.0, 0.0], [0.0, -1.0]], [[0.0, 2.0], [1.0, 0.0]]]])  # (T=1, C=2, 2, 2)
    xr = np.ascontiguousarray(x.transpose(0, 2, 3, 1))  # channels last: (N, H, W, C)
    rows = conv_rows._patch_rows(xr, 0, 2, 2, (2, 2), (1, 1), np.empty(4 * 8))
    t.array("x, channel 0", x[0, 0])
    t.array("x, channel 1", x[0, 1])
    t.array("w, channel 0 (T = 1)", w[0, 0])
    t.array("w, channel 1", w[0, 1])
    t.array("rows: one patch per output pixel, columns (i, j, c)", rows)
    w_rows = w.transpose(2, 3, 1, 0).reshape(8, 1)  # w_rows[(i, j, c), t] = w[t, c, i, j]
    t.array("w_rows: w as one column, entries (i, j, c)", w_rows.T)
    t.array("rows @ w_rows, reshaped to the 2x2 output", (rows @ w_rows).reshape(2, 2))
    t.check("patches as rows = the convolution (the direct loops)", (rows @ w_rows).reshape(1, 1, 2, 2),
            FC.conv2d(x, w, method="direct"))
    t.say("The same numbers as im2col's product, transposed. minicnn takes this form where it measured "
          "faster: stride 1, 32 or more input channels, maps of 16x16 or less (there im2col's wide rows "
          "waste 12% or more of the product):")
    shapes = [((64, 64, 8, 8), (128, 64, 3, 3)), ((64, 32, 32, 32), (32, 32, 3, 3)), ((64, 6, 14, 14),
                                                                                        (16, 6, 5, 5))]
    t.table(["input (N, C, H, W)", "kernel (T, C, KH, KW)", "patches as rows?"],
            [[str(xs), str(ws), "yes" if conv_rows.rows_layout_pays(xs, ws, (1, 1), (1, 1) if ws[2] == 3 else (0, 0),
                                                             (1, 1), 1) else "no: im2col"] for xs, ws in shapes])


def _winograd(t):
    bt = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], float)
    g_mat, at = conv_winograd.G_MATRIX, np.array([[1, 1, 1, 0], [0, 1, -1, -1]], float)
    t.array("B^T", bt)
    t.array("G", g_mat)
    t.array("A^T", at)
    d, g = np.array([1.0, 2.0, -1.0, 3.0]), np.array([0.5, -1.0, 2.0])
    y = at @ ((g_mat @ g) * (bt @ d))
    t.array("d (4 inputs)", d)
    t.array("g (3 taps)", g)
    t.array("A^T [(G g) * (B^T d)]: 4 products", y)
    t.check("= the correlation y0 = d0 g0 + d1 g1 + d2 g2, y1 = d1 g0 + d2 g1 + d3 g2 (6 products)", y,
            np.array([d[:3] @ g, d[1:] @ g]))
    t.say("minicnn's kernel does this in 2-D on every 2x2 tile at once: U = G g G^T per filter, V = B^T d B "
          "per tile (additions only), then each of the 16 positions is one matrix product over all tiles:")
    t.code(conv_winograd._kernel_transform)
    t.code(conv_winograd._bt)
    t.code(conv_winograd._forward, start="v = _input_transform", end="tl[:, 1] -= hf[:, 3]")
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 3))
    t.check("conv2d_winograd equals the direct loops (float64, odd and even map sides)",
            conv_winograd.conv2d_winograd(x, w, None, (1, 1), (1, 1), (1, 1), 1),
            FC.conv2d(x, w, padding=1, method="direct"), tol=1e-10)
    t.say("16 products per tile instead of 36: 2.25x fewer multiply-adds. In NumPy the transforms are extra "
          "passes over memory, so the planner (`minicnn tune`) measures it against im2col on each layer and "
          "keeps it only where it is faster.")


def _mec(t):
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    w = np.array([[1.0, 2.0], [0.0, -1.0]]).reshape(1, 1, 2, 2)
    p = conv_mec._lowering(x.shape, w.shape, (0, 0), (1, 1), conv_mec.BLOCK_VALUES)
    low = conv_mec._Buffer(p, x.dtype).lower(x, p)[0]  # (C*KW, Hp*Wp)
    t.array("x", x[0, 0])
    t.array("w", w[0, 0])
    t.array("lowered: row j = the map, flattened and shifted left by j (KW = 2 copies, not KH*KW = 4)", low)
    rows = conv_mec._row_weights(w)  # (KH, T, C*KW)
    total = sum(rows[i] @ conv_mec._row_view(low[None], p, i)[0] for i in range(2))  # (T, OH*Wp) wide rows
    t.array("kernel row 0: w[0, :] @ columns 0..5; kernel row 1: w[1, :] @ columns 3..8; their sum",
            total)
    t.array("wide rows: drop the last Wp - OW = 1 column of each row -> the 2x2 output",
            total.reshape(2, 3)[:, :2])
    t.check("= the convolution (the direct loops)", total.reshape(1, 1, 2, 3)[..., :2],
            FC.conv2d(x, w, method="direct"))
    t.say("minicnn's kernel does this on a block of images at once; the kernel rows are VIEWS of the "
          "lowered block (no copy), which BLAS reads with a leading dimension:")
    t.code(conv_mec._Buffer.lower, start="low = self.low[:nb]", end="return low.reshape")
    t.code(conv_mec._forward, start="low = buf.lower", end="total += extra")
    rng = np.random.default_rng(4)
    xs, ws = rng.standard_normal((3, 2, 7, 6)), rng.standard_normal((4, 2, 3, 2))
    t.check("conv2d_mec equals the direct loops (float64, 3x2 kernel, padding 1, dilation 2 on the rows)",
            conv_mec.conv2d_mec(xs, ws, None, (1, 1), (1, 1), (2, 1), 1),
            FC.conv2d(xs, ws, padding=1, dilation=(2, 1), method="direct"), tol=1e-10)
    t.say("The copy shrinks from k² to k times the input; the price is k products of depth S·k instead of "
          "one of depth S·k², and k - 1 additions of partial sums. The planner measures it per layer.")


def _fft(t):
    t.code(conv_fft.conv2d_fft_from_spectrum, start="kf = np.conj", end="y = full[")
    rng = np.random.default_rng(2)
    for k, stride in ((3, 1), (7, 2)):
        x, w = rng.standard_normal((2, 3, 12, 12)), rng.standard_normal((4, 3, k, k))
        t.check(f"{k}x{k} kernel, stride {stride}: FFT equals direct (float64)",
                FC.conv2d(x, w, stride=stride, method="fft"), FC.conv2d(x, w, stride=stride, method="direct"),
                tol=1e-10)
    grid = conv_fft.fft_grid((32, 32))
    spectrum, kernel = grid[0] * (grid[1] // 2 + 1), 3 * 3
    t.say(f"Memory: on a 32x32 map every kernel becomes a {grid[0]}x{grid[1] // 2 + 1} complex spectrum — "
          f"{spectrum} complex numbers in place of {kernel} real ones ({2 * spectrum // kernel}x the floats).")
    t.check_true("a 3x3 kernel's spectrum on a 32x32 map holds over 100x more floats than the kernel",
                 2 * spectrum > 100 * kernel)


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def _peak_mib(fn) -> float:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def _timing(t):
    t.code(FC.check_method)
    t.say("`method=` picks one of the three siblings above. The FFT pads each map to a size whose FFT is fast "
          "(and large enough that the circular convolution does not wrap around):")
    t.code(conv_fft.fft_grid)
    n, c, size, repeats = (2, 4, 16, 1) if t.quick else (8, 16, 32, 3)
    kernels = (3, 7) if t.quick else (3, 5, 7, 9, 11, 13)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, c, size, size)).astype(np.float32)
    t.say(f"Forward pass, float32, batch {n}, {c} → {c} maps of {size}x{size}, 'same' padding; median of "
          f"{repeats} run(s) (direct: one run). MiB = peak extra memory of one call (tracemalloc). The machine "
          "may be busy: compare the columns of one row, not absolute times.")
    rows, wins = [], []
    for k in kernels:
        w = rng.standard_normal((c, c, k, k)).astype(np.float32) / k
        ref = FC.conv2d(x.astype(np.float64), w.astype(np.float64), padding="same", method="fft")
        ms, mem = {}, {}
        for method in ("direct", "im2col", "fft"):
            run = lambda m=method, w=w: FC.conv2d(x, w, padding="same", method=m)  # noqa: E731
            start = time.perf_counter()
            y = run()
            ms[method] = 1000 * (time.perf_counter() - start)  # the slow reference is timed once
            t.check(f"{k}x{k} {method}: equals the float64 result (float32 rounding)",
                    y / np.abs(ref).max(), ref / np.abs(ref).max(), tol=1e-5)
            if method != "direct":
                ms[method] = _median_ms(run, repeats)
                mem[method] = _peak_mib(run)
        rows.append([f"{k}x{k}", ms["direct"], ms["im2col"], ms["fft"], mem["im2col"], mem["fft"],
                     "FFT" if ms["fft"] < ms["im2col"] else "im2col"])
        wins.append(ms["fft"] < ms["im2col"])
    t.table(["kernel", "direct ms", "im2col ms", "FFT ms", "im2col MiB", "FFT MiB", "faster"], rows)
    first = next((kernels[i] for i, won in enumerate(wins) if won), None)
    t.say("Measured here: " + (f"FFT first beats im2col at {first}x{first}." if first else
                                "FFT did not beat im2col for these kernel sizes on this run."))


STEPS = [
    Step("Direct", """
        The direct method loops as the equation reads. Loop order and data alignment decide its speed in
        compiled code; in Python it is hopeless beyond tiny sizes, so minicnn uses it as the reference.""",
         "V(x, y, t) = Σ_{i,j,s} K(i − x + δ, j − y + δ, s, t) · U(i, j, s)", _direct),
    Step("im2col: one matrix multiply", """
        Copy every receptive field into a column; then all S·T convolutions become a single matrix product
        (T x S·k²) @ (S·k² x N·OH·OW), which BLAS runs near the machine's peak. The price: the columns take
        k² times the memory of the input.""",
         "cols[(s, i, j), (n, x, y)] = U(n, s, x + i, y + j)        V = K_mat @ cols", _im2col),
    Step("The product turned around: patches as rows", """
        The same product can be laid out the other way: copy the input channels last, so that a patch is
        k² runs of S contiguous values, and give each output pixel a ROW of the patch matrix. Then
        V^T = rows @ K_rows, with the long axis (N·OH·OW) as the rows of the first operand. BLAS runs that
        orientation faster for the small maps of a CIFAR net's deeper layers.""",
         "rows[(n, x, y), (i, j, s)] = U(n, x + i, y + j, s)\n"
         "V^T = rows @ K_rows,        K_rows[(i, j, s), t] = K(t, s, i, j)", _rows),
    Step("Winograd: fewer products for 3x3 kernels", """
        Winograd's minimal filtering F(2, 3) computes two outputs of a 3-tap correlation from 4 inputs
        with 4 multiplications instead of 6; nested in 2-D, F(2x2, 3x3) makes a 2x2 output tile with 16
        instead of 36 (Lavin and Gray 2015). The transforms are additions and halvings only.""",
         "1-D:  y = A^T [ (G g) ⊙ (B^T d) ]       d 4 inputs, g 3 taps, y 2 outputs\n"
         "2-D:  Y = A^T [ (G g G^T) ⊙ (B^T d B) ] A   per 2x2 tile, summed over maps s",
         _winograd),
    Step("One-axis lowering: k copies instead of k²", """
        im2col copies every input value k² times. Copy the padded map only once per kernel COLUMN j,
        shifted by j; then on wide rows the taps of kernel ROW i of every output are the same copy read
        i·Wp values later: a view, no copy (memory-efficient convolution, Cho and Brand 2017).""",
         "low[(s, j), q] = U_pad(s, q + j)      U_pad(s, ·): padded map s, flattened\n"
         "V(t, q) = Σ_i Σ_{s,j} K(t, s, i, j) · low[(s, j), q + i·Wp]    q = x·Wp + y",
         _mec),
    Step("FFT: the convolution theorem", """
        A convolution is a product in the frequency domain. Each map is transformed once and reused for
        every output map; each kernel once per call. It is memory hungry (spectra the size of the maps) and
        does not help for very small filters.""",
         "A * K = F⁻¹( F(A) ⊙ F(K) )        correlation: F⁻¹( F(A) ⊙ conj F(K) )\n"
         "F = the 2-D discrete Fourier transform (zero-padded to a common size),  ⊙ = entrywise product",
         _fft),
    Step("Timing on this machine", """
        The same layer with each method, growing the kernel. Direct grows with k² Python-level work; im2col
        with k² (copy + GEMM); FFT barely notices k: at some size it wins.""",
         "im2col ≈ 2·N·T·S·OH·OW·k² flops        FFT ≈ transforms (N·S + T·S + N·T)·H·W·log(H·W) + 8·N·T·S·F",
         _timing),
]
