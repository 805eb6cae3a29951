"""Chapter 13: Frequency Regularization — parameters in the DCT domain, zigzag tail truncation."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import re
import tempfile
import types
from pathlib import Path

import numpy as np

from minicnn import core, optim
from minicnn import functional as F
from minicnn import layers as L
from minicnn.app import frequency, load_model, train
from minicnn.app.segmentation import predict_classes
from minicnn.data import DatasetError
from minicnn.data.segmentation import load_segmentation, with_sizes
from minicnn.experiments import frequency_compare as compare
from minicnn.experiments import frequency_unet
from minicnn.gradcheck import gradcheck
from minicnn.layers import dct as dct_layers
from minicnn.models import build
from minicnn.optim import SGD

from ._data import small_dataset
from ._runner import Step, Unavailable

TITLE = "Frequency Regularization"
SUMMARY = "DCT of a kernel, zigzag order, tail truncation, the compression it buys; a UNet; vs pruning and SVD"


def _smooth_kernel(n: int = 8) -> np.ndarray:
    """A smooth kernel, like many trained ones: a tilted Gaussian blob (edge detector-ish)."""
    i, j = np.meshgrid(np.arange(n) - (n - 1) / 2, np.arange(n) - (n - 1) / 2, indexing="ij")
    return np.exp(-(i**2 + j**2) / (0.35 * n**2)) * (i + 0.5 * j) / n


def _dct(t):
    t.code(importlib.import_module("minicnn.functional.dct"), start="DCT-II along one axis",
           end="idct(dct(x)) = x")  # the module (its name `dct` in minicnn.functional is the function)
    t.say("The formula, read literally: row u of a matrix D holds a(u)·cos(π(2i+1)u / 2n) for i = 0..n−1, "
          "and C = D K along an axis. By hand for n = 4 and K = [1, 1, 1, 1]: C[0] = a(0)·4 = ½·4 = 2, and "
          "every other row sums a full set of cosines to 0, so C = [2, 0, 0, 0].")
    n = 4
    rows = [[(np.sqrt(1 / n) if u == 0 else np.sqrt(2 / n)) * np.cos(np.pi * (2 * i + 1) * u / (2 * n))
             for i in range(n)] for u in range(n)]
    d = np.array(rows)  # (u, i): the formula, entry by entry
    t.array("D (4x4)", d)
    t.check("D K for K = [1, 1, 1, 1] is [2, 0, 0, 0], as by hand", d @ np.ones(n), [2, 0, 0, 0])
    t.check("D is orthogonal: Dᵀ D = I (so the inverse is the transpose)", d.T @ d, np.eye(n))
    t.heading("The same math, fast: scipy's fast cosine transform, along every axis")
    t.code(F.dct)
    t.code(F.idct)
    x2 = np.random.default_rng(3).standard_normal((4, 4))
    t.check("dct along both axes of a 4x4 = D X Dᵀ (the matrix form)", F.dct(x2), d @ x2 @ d.T)
    k = _smooth_kernel()
    c = F.dct(k)
    t.blocks("kernel K (8x8)", k)
    t.blocks("|DCT(K)|: low frequencies top-left", np.abs(c))
    t.check("idct(dct(K)) = K (the transform is invertible)", F.idct(c), k)
    t.check("‖dct(K)‖ = ‖K‖ (orthonormal: energy is kept)", np.linalg.norm(c), np.linalg.norm(k))
    energy = np.cumsum(np.sort((c**2).ravel())[::-1]) / np.sum(c**2)
    top = int(np.searchsorted(energy, 0.99) + 1)
    t.say(f"For this smooth kernel {top} of the 64 coefficients hold 99% of the energy.")
    t.check_true(f"the energy is concentrated: {top} coefficients (at most 16 of 64) hold 99%", top <= 16)


def _jpeg_zigzag(n: int) -> np.ndarray:
    """JPEG's zigzag ranks for an n x n block: diagonals in turn, the walking direction alternating."""
    walk = []
    for diag in range(2 * n - 1):
        cells = [(i, diag - i) for i in range(n) if 0 <= diag - i < n]  # first axis increasing
        walk += cells if diag % 2 else cells[::-1]
    rank = np.empty((n, n), dtype=np.int64)
    for r, (i, j) in enumerate(walk):
        rank[i, j] = r
    return rank


def _zigzag(t):
    t.code(F.zigzag_order, start="shape = _check_shape")
    small = F.zigzag_order((4, 4))
    jpeg = _jpeg_zigzag(4)
    t.array("zigzag_order((4, 4))  (minicnn, as the FR code)", small)
    t.array("JPEG's zigzag, for comparison", jpeg)
    i4, j4 = np.indices((4, 4))
    same_sets = all(set(small[i4 + j4 == s]) == set(jpeg[i4 + j4 == s]) for s in range(7))
    t.check_true("each diagonal i + j gets the same set of ranks in both orders", same_sets)
    t.check_true("but JPEG walks every other diagonal the other way: the orders differ on diagonals 2, 4, …",
                 bool(np.any(small != jpeg)) and small[0, 2] == 3 and jpeg[0, 2] == 5)
    order = F.zigzag_order((6, 6))
    t.array("zigzag_order((6, 6))", order)
    t.blocks("ranks (blank: 0, kept first)", order)
    t.check("the ranks are a permutation of 0..35", np.sort(order.ravel()), np.arange(36))
    i, j = np.indices((6, 6))
    diag = (i + j).ravel()
    by_rank = diag[np.argsort(order, axis=None)]
    t.check_true("walking the ranks, the diagonal i + j never decreases (low frequencies first)",
                 bool(np.all(np.diff(by_rank) >= 0)))
    t.code(F.zigzag_mask)
    m = F.zigzag_mask((2, 1, 3, 3), 5)
    t.say("The same order in 4-D, for a conv weight (out, in, kh, kw) = (2, 1, 3, 3): keep the first 5.")
    t.array("zigzag_mask((2, 1, 3, 3), 5)", m.astype(int))
    t.check("5 entries kept", m.sum(), 5)


def _truncate(t):
    t.code(dct_layers._FrequencyWeight.spatial_weight)
    k = _smooth_kernel()
    c = F.dct(k)
    rows, errors = [], []
    for keep in (64, 21, 10, 6, 3):
        w = F.idct(F.zigzag_mask(c.shape, keep) * c)
        err = float(np.linalg.norm(w - k) / np.linalg.norm(k))
        rows.append([keep, f"{keep / 64:.0%}", err])
        errors.append(err)
        if keep in (10, 3):
            t.blocks(f"rebuilt from the first {keep} coefficients", w, lo=float(k.min()), hi=float(k.max()))
    t.table(["kept k", "of 64", "relative error ‖W − K‖/‖K‖"], rows)
    t.check("keeping all 64 rebuilds K exactly", errors[0], 0.0)
    layer = L.DCTLinear(8, 8).to(np.float64)  # an 8x8 weight: its DCT over both axes is dct(K)
    layer.coeffs.data = c.copy()
    layer.set_keep(10)
    t.check("DCTLinear(8, 8) with C = dct(K), 10 kept: spatial_weight() = idct(M ⊙ C), the 10 row",
            layer.spatial_weight(), F.idct(F.zigzag_mask(c.shape, 10) * c))
    t.check_true("fewer coefficients, larger error (monotone)", bool(np.all(np.diff(errors) >= 0)))
    t.check_true(f"10 of 64 coefficients rebuild the smooth kernel within 10% ({errors[2]:.1%})", errors[2] < 0.1)
    noise = np.random.default_rng(0).standard_normal((8, 8))
    w = F.idct(F.zigzag_mask(noise.shape, 10) * F.dct(noise))
    err_noise = float(np.linalg.norm(w - noise) / np.linalg.norm(noise))
    t.check_true(f"a random (non-smooth) kernel does NOT survive the same cut: error {err_noise:.0%}", err_noise > 0.5)


def _backward(t):
    t.code(dct_layers._FrequencyWeight._accumulate_coeffs_grad)
    t.code(dct_layers.DCTLinear.backward)
    core.manual_seed(0)
    layer = L.DCTLinear(4, 3, keep=5).to(np.float64)
    x = np.random.default_rng(1).standard_normal((2, 4))
    report = gradcheck(layer, x, name="DCTLinear(4, 3, keep=5)")
    t.gradcheck_table(report)
    t.print()
    t.check_true(f"DCTLinear passes the gradient check ({report.max_rel_error:.1e})", report.ok)
    core.manual_seed(0)
    conv = L.DCTConv2D(2, 3, 3, padding=1, keep=0.25).to(np.float64)
    xc = np.random.default_rng(2).standard_normal((2, 2, 5, 5))
    t.check("DCTConv2D computes conv2d with W = idct(M ⊙ C)", conv(xc),
            F.conv2d(xc, conv.spatial_weight(), conv.bias.data, padding=1))
    conv_report = gradcheck(conv, xc, name="DCTConv2D(2, 3, 3, keep=25%)")
    t.check_true(f"DCTConv2D (one DCT over all 4 axes of the weight, {conv.keep} of {conv.coeffs.size} kept) passes "
                 f"the gradient check ({conv_report.max_rel_error:.1e})", conv_report.ok)
    layer.zero_grad()
    layer(x)
    layer.backward(np.ones((2, 3)))
    t.array("mask", layer.mask.astype(int))
    t.check("truncated coefficients get exactly zero gradient", layer.coeffs.grad[~layer.mask], 0.0, tol=0.0)
    opt_before = layer.coeffs.data.copy()
    opt = SGD(layer.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    for _ in range(5):
        layer.zero_grad()
        layer(x)
        layer.backward(np.ones((2, 3)))
        opt.step()
    t.check("after 5 SGD steps with momentum and weight decay the tail is still exactly 0",
            layer.coeffs.data[~layer.mask], 0.0, tol=0.0)
    t.check_true("while the kept coefficients did move", bool(np.any(layer.coeffs.data != opt_before)))


def _schedule(t):
    t.code(frequency.TailTruncation.counts)
    core.manual_seed(0)
    model = frequency.to_frequency(core.Sequential(L.Linear(16, 8), L.ReLU(), L.Linear(8, 4)))
    sched = frequency.TailTruncation(model, target=0.1, steps=5, decay="geometric")
    totals = [sum(layer.keep for _, layer in frequency.frequency_layers(model))]
    rows = [[0] + [layer.keep for _, layer in frequency.frequency_layers(model)]]
    while not sched.done:
        totals.append(sched.step())
        rows.append([sched.t] + [layer.keep for _, layer in frequency.frequency_layers(model)])
    names = [n for n, _ in frequency.frequency_layers(model)]
    t.table(["step"] + [f"layer {n} kept" for n in names], rows)
    t.check_true("k never increases", bool(np.all(np.diff(totals) <= 0)))
    t.check("the target, 10% of each layer, is reached", rows[-1][1:], [13, 4])


def _energy_split(t):
    t.code(frequency.EnergyTruncation._cost)
    t.code(frequency.EnergyTruncation.advance_to, start="counts = {n")
    core.manual_seed(0)
    model = frequency.to_frequency(core.Sequential(L.Linear(16, 8), L.ReLU(), L.Linear(8, 4)))
    layers = dict(frequency.frequency_layers(model))
    smooth = layers["0"].coeffs  # its energy in the low frequencies, as FR training leaves a layer
    smooth.data *= np.exp(-0.1 * F.zigzag_order(smooth.shape)).astype(smooth.data.dtype)
    start = {n: layer.keep for n, layer in layers.items()}
    sched = frequency.EnergyTruncation(model, 20, steps=3, window=2)
    rows = [[0, sum(start.values())] + list(start.values())]
    by_hand = dict(start)
    for step in range(1, 4):
        energy = {n: layer.coeffs.data.reshape(-1)[np.argsort(F.zigzag_order(layer.coeffs.shape), axis=None)]
                  .astype(np.float64) ** 2 for n, layer in layers.items()}
        total = sched.step()
        while sum(by_hand.values()) > total:  # the rule, plainly: every cost again, drop the cheapest
            cost = {n: energy[n][k - 2: k].mean() / energy[n][:k].sum() for n, k in by_hand.items() if k > 1}
            by_hand[min(cost, key=cost.get)] -= 1
        rows.append([step, total] + [layer.keep for layer in layers.values()])
    t.table(["step", "total kept", "layer 0 (smooth) kept", "layer 2 kept"], rows)
    t.check("each step's split is the cheapest-first rule done by hand", [r[2:] for r in rows[-1:]],
            [list(by_hand.values())], tol=0)
    t.check_true(f"the smooth layer gave up more of its {start['0']} coefficients than the other of its "
                 f"{start['2']}", rows[-1][2] / start["0"] < rows[-1][3] / start["2"])


def _compress(t):
    t.code(frequency.save_compressed, start="dtype = np.float16", end="payload = np.concatenate")
    t.code(frequency.allocate_budget, start='"""', end='"""')

    def lenet():
        core.manual_seed(0)
        return build("lenet5")

    dense = lenet()
    x = np.random.default_rng(0).standard_normal((4, 1, 28, 28)).astype(np.float32)
    y_dense, dense_bytes = dense(x), frequency.dense_float32_bytes(dense)
    model = frequency.to_frequency(dense)  # converts in place: Conv2D/Linear -> DCT layers, coeffs = dct(weight)
    t.check("to_frequency keeps LeNet-5's function (keep = 100%, float32)", model(x), y_dense, tol=1e-4)
    budget = 700
    counts = frequency.allocate_budget(model, budget)
    for name, layer in frequency.frequency_layers(model):
        layer.set_keep(counts[name])
    t.table(["layer", "weight shape", "kept coefficients"],
            [[name, layer.coeffs.shape, layer.keep] for name, layer in frequency.frequency_layers(model)])
    stored = frequency.stored_numbers(model)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lenet5.fr.npz"
        info = frequency.save_compressed(model, path, float16=True)
        again = frequency.load_compressed(path, lenet())
    t.table(["", "numbers", "bytes"], [["dense float32 LeNet-5", stored["dense"], dense_bytes],
                                       ["compressed file (float16)", info["numbers"], info["bytes"]]])
    t.say(f"{budget} kept coefficients plus {stored['other']} biases: {stored['dense'] / info['numbers']:.0f}x fewer "
          f"numbers, {dense_bytes / info['bytes']:.0f}x fewer bytes (the file also holds a small JSON manifest). "
          "These weights are untrained: `minicnn experiment frequency` trains LeNet-5 on MNIST at such budgets "
          "and reports the accuracy it keeps.")
    t.check("the file stores exactly the kept coefficients plus the biases", [info["numbers"], stored["coefficients"]],
            [stored["total"], budget], tol=0)
    for (name, a), (_, b) in zip(frequency.frequency_layers(model), frequency.frequency_layers(again), strict=True):
        t.check(f"layer {name}: reloaded weights = the float16-rounded weights used before",
                b.spatial_weight(), F.idct(a.coeffs.data.astype(np.float16).astype(np.float32) * a.mask),
                tol=1e-6)


def _trained(t):
    t.code(frequency.TailTruncation.on_batch_start)
    n_train, n_test, epochs, batch = (1000, 500, 3, 32) if t.quick else (12000, 2000, 4, 64)
    cut_epochs = epochs - 2  # the truncation reaches the budget after this many epochs; two more train at it
    budget, floor = 2000, (0.3 if t.quick else 0.9)
    ds = small_dataset("mnist", n_train, n_test)
    core.manual_seed(0)
    model = frequency.to_frequency(build("lenet5"))  # every Conv2D / Linear -> DCTConv2D / DCTLinear, keep all
    targets = frequency.allocate_budget(model, budget)
    steps_per_epoch = -(-n_train // batch)
    truncation = frequency.TailTruncation(model, targets, steps=cut_epochs * steps_per_epoch, decay="geometric")
    names = [name for name, _ in frequency.frequency_layers(model)]
    kept = [["start"] + [layer.keep for _, layer in frequency.frequency_layers(model)] + ["", ""]]

    class Record(train.Callback):
        """After every epoch: each layer's kept count k, and the accuracies."""

        def on_epoch_end(self, epoch: int, net, row: dict) -> None:
            kept.append([f"epoch {epoch + 1}"] + [layer.keep for _, layer in frequency.frequency_layers(net)]
                        + [f"{row['train_acc']:.1%}", f"{row['test_acc']:.1%}"])

    t.say(f"LeNet-5 with every weight tensor in the DCT domain, trained from scratch on {n_train:,} MNIST images "
          f"for {epochs} epochs (Adam, lr 0.002, batch {batch}). The truncation moves at every step (it is a fit "
          f"callback, moved to the optimizer's step count before each batch), geometrically, from all "
          f"{sum(r for r in kept[0][1:-2]):,} coefficients to a budget of {budget:,} (allocate_budget shares it "
          f"out), reached at the end of epoch {cut_epochs}; the last two epochs train at the final k.")
    result = train.fit(model, ds, optim.Adam(model.parameters(), 2e-3),
                       train.FitConfig(epochs=epochs, batch_size=batch, seed=0, progress=False),
                       callbacks=[truncation, Record()], log=None)
    t.table(["when"] + [f"k {n}" for n in names] + ["train acc", "test acc"], kept)
    totals = [sum(row[1:-2]) for row in kept]
    t.check_true(f"k moved during training and never rose: {' → '.join(f'{v:,}' for v in totals)}",
                 all(b <= a for a, b in zip(totals, totals[1:], strict=False)) and totals[0] > totals[1] > totals[-1])
    t.check("the budget is reached: kept coefficients = 2,000", totals[-1], budget, tol=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lenet5.fr.npz"
        info = frequency.save_compressed(model, path, float16=True,
                                         meta=frequency.describe("lenet5", {}, model, input_shape=[1, 28, 28]))
        again = load_model(path).model
    stored = frequency.stored_numbers(again)
    accuracy = train.evaluate(again, ds.x_test, ds.y_test).accuracy
    t.table(["", "numbers", "bytes", "test accuracy"],
            [["dense LeNet-5, float32", stored["dense"], frequency.dense_float32_bytes(again), "(not trained)"],
             ["trained FR model, in memory", stored["total"], "", f"{result.test.accuracy:.2%}"],
             ["its file, float16, reloaded", info["numbers"], info["bytes"], f"{accuracy:.2%}"]])
    t.check("the reloaded file stores the kept coefficients plus the biases",
            [info["numbers"], stored["coefficients"]], [stored["total"], budget], tol=0)
    t.check_true(f"the reloaded model classifies as the trained one did (float16 storage): {accuracy:.2%} vs "
                 f"{result.test.accuracy:.2%}", abs(accuracy - result.test.accuracy) <= 0.01)
    t.check_true(f"with {info['numbers']:,} stored numbers ({stored['dense'] / info['numbers']:.0f}x fewer) the test "
                 f"accuracy is {accuracy:.1%} ≥ {floor:.0%}" + (" (--quick: a smoke test)" if t.quick else ""),
                 accuracy >= floor)
    t.say("The paper reports LeNet-5 at 776 numbers and ~97% after full training; `minicnn experiment frequency` "
          "runs that longer schedule.")


UNET_TASK = "fashion-on-cifar-seg"
UNET_CONFIG = {"width": 1 / 16, "depth": 2, "in_channels": 3, "num_classes": 2, "image_size": 32}
UNET_BUDGET = 1000  # stored numbers of the FR file: DCT coefficients + BatchNorm numbers + biases
UNET_TRUNCATE = 0.5  # the tail truncation reaches its target after this fraction of the FR steps
UNET_SHOWN = 6  # test canvases in the PNG


def _walk(level, x: np.ndarray, depth: int, rows: list) -> np.ndarray:
    """Run one level of the U on x layer by layer, adding a row (layer, input, output shape) per layer;
    returns the level's output. A level is DoubleConv -> SkipConcat(MaxPool -> lower level -> up) ->
    DoubleConv, the bottom one a DoubleConv (minicnn.models.unet)."""
    pad = "  " * depth
    if isinstance(level, L.DoubleConv):
        y = level(x)
        rows.append([f"{pad}bottom DoubleConv", x.shape[1:], y.shape[1:]])
        return y
    encoder, skip, decoder = level
    pool, lower, up = skip.inner
    e = encoder(x)
    rows.append([f"{pad}encoder DoubleConv", x.shape[1:], e.shape[1:]])
    p = pool(e)
    rows.append([f"{pad}MaxPool2D(2)  (down)", e.shape[1:], p.shape[1:]])
    low = _walk(lower, p, depth + 1, rows)
    u = up(low)
    rows.append([f"{pad}{type(up).__name__}  (up)", low.shape[1:], u.shape[1:]])
    stacked = skip(e)  # [e, inner(e)]: the skip connection
    rows.append([f"{pad}SkipConcat [{e.shape[1]} + {u.shape[1]}]", f"{e.shape[1:]} {u.shape[1:]}",
                 stacked.shape[1:]])
    y = decoder(stacked)
    rows.append([f"{pad}decoder DoubleConv", stacked.shape[1:], y.shape[1:]])
    return y


def _unet_data(n_train: int):
    """fashion-on-cifar-seg with n_train training canvases and 64 test ones, standardised per channel
    with the training canvases' statistics: (dataset, x_train, x_test, meta for the files)."""
    try:
        data = load_segmentation(UNET_TASK, with_sizes(UNET_TASK, train=n_train, test=64), download=False)
    except DatasetError as e:
        raise Unavailable(f"{UNET_TASK} is made from Fashion-MNIST and CIFAR-10, not on this machine "
                          f"(set MINICNN_DATA): {str(e).split('. ')[0]}") from e
    mean, std = data.channel_stats()
    x_train = (data.x_train - mean[None, :, None, None]) / std[None, :, None, None]  # (N, 3, 32, 32)
    x_test = (data.x_test - mean[None, :, None, None]) / std[None, :, None, None]
    meta = {"dataset": UNET_TASK, "mean": mean.tolist(), "std": std.tolist(), "input_shape": list(data.input_shape),
            "class_names": list(data.class_names)}
    return data, x_train, x_test, meta


def _unet(t):
    t.code(L.SkipConcat.forward, start="if not isinstance")
    t.code(L.Concat.forward)
    t.code(L.Concat.backward)
    _unet_run(t)


def _unet_run(t):
    n_train, dense_epochs, fr_epochs = (1000, 4, 2) if t.quick else (2000, 6, 3)
    data, x_train, x_test, meta = _unet_data(n_train)
    core.manual_seed(0)
    dense = build("unet", **UNET_CONFIG).eval()  # eval: the walk below leaves BatchNorm's statistics alone
    t.say(f"{UNET_TASK}: a Fashion-MNIST object on a real CIFAR-10 photo; the mask is the object's pixels. "
          f"A UNet of width 1/16 and depth 2 ({dense.num_parameters():,} parameters), one test canvas "
          "through it, level by level:")
    rows: list = []
    y = dense[1](_walk(dense[0], x_test[:1], 0, rows))
    rows.append(["head Conv2D 1x1 (logits)", rows[-1][2], y.shape[1:]])
    t.table(["layer", "input (C, H, W)", "output (C, H, W)"], rows)
    t.check("walking the levels by hand gives the model's own output", y, dense(x_test[:1]), tol=0)
    skip = dense[0][1]  # the top level's skip connection
    e = dense[0][0](x_test[:1])
    stacked = skip(e)
    c = e.shape[1]
    t.check(f"the stacked map's first {c} channels are the encoder's map itself", stacked[:, :c], e, tol=0)
    t.check("the rest are inner(x): pooled, through the lower levels, upsampled", stacked[:, c:], skip.inner(e),
            tol=0)
    dy = np.random.default_rng(0).standard_normal(stacked.shape).astype(np.float32)
    dense.train()  # backward needs training mode (BatchNorm)
    skip(e)
    dx = skip.backward(dy)
    skip.inner(e)  # the same forward again, so that inner's caches are this input's
    t.check("backward adds both paths: dx = dy[:, :C] + inner.backward(dy[:, C:])", dx,
            dy[:, :c] + skip.inner.backward(dy[:, c:]), tol=1e-6)
    dense.zero_grad()
    args = types.SimpleNamespace(batch=32, seed=0)  # train_epochs' settings
    fr = build("unet", **UNET_CONFIG)
    log = io.StringIO()
    with contextlib.redirect_stdout(log):  # train_epochs prints a line per epoch: shown below
        frequency_unet.train_epochs(dense, x_train, data.y_train, dense_epochs, args, frequency_unet.LEARNING_RATE,
                                    label="dense")
        fr.load_state_dict(dense.state_dict())
        fr = frequency.to_frequency(fr)  # every Conv2D / ConvTranspose2D -> its DCT twin, every coefficient kept
        everything = frequency.to_frequency(build("unet", **UNET_CONFIG))
        everything.load_state_dict(fr.state_dict())  # the dense model as a file: all coefficients
        other = frequency.stored_numbers(fr)["other"]  # BatchNorm numbers and biases: not DCT coefficients
        steps = -(-n_train // args.batch) * fr_epochs
        truncation = frequency.TailTruncation(fr, frequency.allocate_budget(fr, UNET_BUDGET - other),
                                              steps=max(1, round(UNET_TRUNCATE * steps)), decay="geometric")
        frequency_unet.train_epochs(fr, x_train, data.y_train, fr_epochs, args, frequency_unet.LEARNING_RATE,
                                    truncation=truncation, label="FR")
    t.say(f"Trained with the experiment's own loop (minicnn.experiments.frequency_unet.train_epochs: Adam, "
          f"per-pixel cross-entropy) on {n_train:,} canvases: {dense_epochs} dense epochs, then a copy in the "
          f"DCT domain fine-tuned for {fr_epochs} while the tail truncation cuts it to {UNET_BUDGET:,} stored "
          "numbers." + (" (--quick: seconds of training, a smoke test; the masks are rough. Run without "
                        "--quick for a trained pair.)" if t.quick else ""))
    for line in log.getvalue().splitlines():
        t.print("  " + line)
    test = (x_test, data.y_test, data.num_classes)
    with tempfile.TemporaryDirectory() as tmp:
        scored = {name: frequency_unet.export_and_score(model, UNET_CONFIG, Path(tmp) / f"{name}.fr.npz", False,
                                                        meta, test)
                  for name, model in (("dense", everything), ("fr", fr))}
        from_file = []
        for row in scored.values():
            with np.load(Path(tmp) / row["file"]) as f:  # the file itself: a JSON manifest and one payload
                manifest, payload = json.loads(f["manifest"].tobytes()), f["payload"]
            from_file.append([row["file"], len(manifest["entries"]), payload.size,
                              sum(count for *_, count in manifest["entries"]), payload.dtype, row["file_bytes"],
                              f"{row['dice']:.3f}"])
    t.table(["file", "entries", "payload", "Σ counts", "dtype", "bytes", "Dice"], from_file)
    t.check("each payload holds exactly the numbers its manifest lists", [r[2] for r in from_file],
            [r[3] for r in from_file], tol=0)
    t.check(f"the FR file stores {UNET_BUDGET:,} numbers ({other} of them BatchNorm numbers and biases)",
            from_file[1][2], UNET_BUDGET, tol=0)
    masks = {name: predict_classes(row["model"].eval()(x_test[:UNET_SHOWN])) for name, row in scored.items()}
    t.blocks("canvas 0: the true mask", data.y_test[0])
    gap = np.full((32, 2), 0.5)
    t.blocks(f"its masks from the reloaded files: dense ({from_file[0][2]:,} numbers) | FR "
             f"({from_file[1][2]:,})", np.hstack([masks["dense"][0], gap, masks["fr"][0]]), lo=0.0, hi=1.0)
    t.fig_dir.mkdir(parents=True, exist_ok=True)
    path = t.fig_dir / "ch13_unet_masks.png"
    frequency_unet.plot_masks(data.x_test[:UNET_SHOWN], data.y_test[:UNET_SHOWN].astype(np.float32),
                              {f"dense {from_file[0][2]:,}": masks["dense"].astype(np.float32),
                               f"FR {from_file[1][2]:,}": masks["fr"].astype(np.float32)}, path,
                              overwrite=True)  # the tutorial's own figure, redrawn each run
    t.print(f"figure saved: {path}")
    dice_dense, dice_fr = scored["dense"]["dice"], scored["fr"]["dice"]
    floor_dense, floor_fr = (0.7, 0.6) if t.quick else (0.8, 0.7)
    t.check_true(f"the dense UNet segments the 64 test canvases: Dice {dice_dense:.3f} > {floor_dense}",
                 dice_dense > floor_dense)
    t.check_true(f"the FR file, {from_file[0][2] / from_file[1][2]:.1f}x fewer numbers, keeps Dice {dice_fr:.3f} > "
                 f"{floor_fr}", dice_fr > floor_fr)
    t.say("`minicnn experiment frequency_unet` trains longer on 4,000 canvases; its docstring records the "
          "measured Dice of the dense model and of FR files of 1,000 and 759 numbers.")


def _alternatives(t):
    t.code(compare.MagnitudePruning.prune_to)
    t.code(compare.index_bytes, start="if nnz in", end="return math.ceil")
    t.code(compare.factor, start="w = layer.weight.data", end="second.weight.data = (u[:, :rank]")
    core.manual_seed(0)
    model = build("lenet5")
    params = list(model.parameters())
    before = np.concatenate([np.abs(p.data).ravel() for p in params])
    budget = 4000
    pruning = compare.MagnitudePruning(params, budget, steps=1)
    pruning.finish()  # at once, on these untrained weights (the experiment prunes gradually while training)
    kept = np.concatenate([p.data.ravel() for p in params]) != 0
    stored = compare.pruned_bytes(params)
    t.print(f"LeNet-5, {before.size:,} parameters, pruned to {budget:,} bytes: {int(kept.sum()):,} values kept, "
            f"{stored:,} bytes with their indices (2 bytes per value + the smaller of a bitmask or indices "
            "per tensor).")
    t.check_true(f"the pruned weights fit the budget: {stored:,} ≤ {budget:,} bytes", stored <= budget)
    t.check_true("the kept entries are the largest: every kept |w| ≥ every pruned |w|",
                 before[kept].min() >= before[~kept].max())
    rng = np.random.default_rng(4)
    core.manual_seed(0)
    layer = L.Linear(12, 8).to(np.float64)
    x = rng.standard_normal((5, 12))
    u, sv, vt = np.linalg.svd(layer.weight.data, full_matrices=False)
    rank = 3
    w_r = (u[:, :rank] * sv[:rank]) @ vt[:rank]  # the rank-3 truncation of W (8, 12)
    two = compare.factor(layer, rank)
    t.array("singular values of W (8 x 12)", sv, precision=2)
    t.check(f"factor(layer, {rank}) = two layers computing x W_{rank}ᵀ + b, W_{rank} = U_{rank} S_{rank} V_{rank}ᵀ",
            two(x), x @ w_r.T + layer.bias.data, tol=1e-12)
    t.check("at full rank the two layers reproduce the layer", compare.factor(layer, 8)(x), layer(x), tol=1e-12)
    t.check(f"the error ‖W − W_{rank}‖ is the root of the cut singular values' squares (Eckart–Young)",
            np.linalg.norm(layer.weight.data - w_r), np.sqrt(np.sum(sv[rank:] ** 2)), tol=1e-12)
    t.print(f"stored numbers: rank {rank} · (12 + 8) = {rank * 20} instead of 12 · 8 = 96.")
    t.say("Measured by `minicnn experiment frequency_compare` (LeNet-5 on MNIST, 55,000 training images, "
          "3 dense and 10 compression epochs; test accuracy, the mean of two runs; in brackets the bytes "
          "stored, float16, budgets in bytes), as its documentation records:")
    _, *rows = _measured(compare.__doc__)
    t.table(["budget", "FR", "pruning", "SVD", "small LeNet"], [[c.replace(" B", "") for c in r] for r in rows])
    t.say("* this pruning overshot the budget by 5-8% (it chose the count on the dense weights); "
          "MagnitudePruning above now keeps the largest count that fits. s0: one run only.")
    t.say("At 1-1.5 KB frequency regularization keeps 1.5 points more than pruning (which pays for its "
          "indices) and 2-3.5 more than a small dense LeNet; at 4 KB it ties with pruning. Truncated SVD "
          "cannot go below rank 1 in every layer (2,502 bytes), and at 4 KB its ranks leave three layers "
          "at rank 1, where it collapses.")


def _measured(doc: str) -> list[list[str]]:
    """The table of measured accuracies in frequency_compare's docstring: header row, then one row per
    budget (columns are separated by two or more spaces)."""
    lines = doc.splitlines()
    first = next(k for k, line in enumerate(lines) if line.split()[:2] == ["budget", "FR"])
    table = [line.strip() for line in lines[first:] if line.strip()][:4]  # the header and three budgets
    return [re.split(r"\s{2,}", line) for line in table]


STEPS = [
    Step("The DCT of a kernel", """
        Frequency Regularization stores a layer's weights as DCT coefficients. The orthonormal DCT-II is an
        invertible rotation: nothing is lost, but for smooth kernels the energy sits in a few
        low-frequency coefficients.""",
         "C = DCT(K),   C[u] = a(u) Σᵢ K[i] cos(π(2i+1)u / 2n)  along every axis (length n)\n"
         "a(0) = √(1/n),  a(u > 0) = √(2/n)  (orthonormal scaling);   K = IDCT(C),   ‖C‖ = ‖K‖",
         _dct),
    Step("The zigzag order", """
        To say 'keep the lowest k frequencies' we need an order. minicnn uses the index-sum order of the
        FR reference code (getZIdx_4d in the authors' pytorch-frequency-regularization): sort by the sum
        of the indices (the diagonal), ties broken with the first axis most significant. It works for any
        number of axes, so a whole 4-D conv weight is ordered at once.

        It is not JPEG's zigzag: JPEG visits the same diagonals in the same sequence, but alternates the
        direction along them (up-right, then down-left). Both treat one diagonal as one level of
        frequency, so a cut at the end of a diagonal keeps the same coefficients in both; only a cut
        inside a diagonal keeps different ones.""",
         "rank(i₀, …, i_d) sorts by (i₀ + … + i_d, i₀, i₁, …)", _zigzag),
    Step("Tail truncation and the weights it rebuilds", """
        A 0/1 mask M keeps the first k coefficients in zigzag order; the layer computes with
        W = IDCT(M ⊙ C). Smooth kernels survive a deep cut; noise does not — that is the regularization.""",
         "W = IDCT(M ⊙ C)        M = 1 on the first k zigzag positions, 0 on the tail", _truncate),
    Step("Backward in the frequency domain", """
        W is linear in C, and the adjoint of the orthonormal IDCT is the DCT. So the ordinary dense backward
        gives dL/dW, and one DCT plus the mask gives dL/dC. Truncated coefficients get zero gradient, and the
        optimizers multiply updates and momentum by the mask, so nothing revives them.""",
         "dL/dC = (dW/dC)ᵀ dL/dW = M ⊙ DCT(dL/dW)", _backward),
    Step("Dynamic tail truncation", """
        Rather than cutting most coefficients at once, training lowers k a little every epoch toward a
        target, so the network can adapt to each small cut.""",
         "linear: k(t) = k₀ + (k_T − k₀)·t/T        geometric: k(t) = k₀ · (k_T/k₀)^(t/T)", _schedule),
    Step("Which layers give up coefficients: by energy", """
        A budget says how many coefficients the whole model keeps, not how many each layer keeps. Fixed
        shares must be chosen beforehand. minicnn.app.frequency.EnergyTruncation decides as it truncates
        instead: the next coefficient to go in each layer is its last kept one, and its cost is the share
        of the layer's kept energy that the last few hold. The cheapest goes first, one at a time, until
        the step's total is reached. A layer whose energy sits in its low frequencies gives up its tail
        first.""",
         "cost_l = mean(c²_{k−w+1..k}) / Σ_{j≤k} c²_j    (k kept, w = window)\n"
         "drop the cheapest layer's last coefficient until Σ_l k_l = k(t)", _energy_split),
    Step("The compression it buys", """
        A trained model exports only the kept coefficients (in zigzag order), plus the biases; loading puts
        them back in place and rebuilds exactly the weights used for evaluation.""",
         "stored numbers = Σ_layers k_layer + #biases        ratio = dense parameters / stored numbers", _compress),
    Step("Trained, truncated while training, exported, reloaded", """
        The method of Zhao et al. ("Frequency regularization: reducing information
        redundancy in convolutional neural networks", 2023) end to end: train with the parameters in the
        frequency domain while the tail
        truncation cuts k down to a budget, export only the kept numbers, reload the file and test it.""",
         "k_layer(t) = k0 · (k_T / k0)^(t/T) during training;  file = kept coefficients (float16) + biases",
         _trained),
    Step("The headline: a UNet that segments, from 1,000 stored numbers", """
        The FR paper's showcase is a UNet (Ronneberger, Fischer and Brox, "U-Net", 2015): an encoder that
        pools down, a decoder that upsamples back, and at every level a skip connection that stacks the
        encoder's map beside the upsampled one, so the decoder sees fine detail again. Here a small one
        segments objects on real photos, densely and with Frequency Regularization, from saved files.""",
         "level(x) = decoder([x, up(lower(pool(x)))])    stacked on channels\n"
         "backward: dx = dy[:, :C] + inner.backward(dy[:, C:])", _unet),
    Step("Other ways to compress: pruning and truncated SVD", """
        Two obvious alternatives at the same stored size. Magnitude pruning (Zhu and Gupta, "To prune, or
        not to prune", 2017) keeps the largest weights and must also store where they are; a truncated SVD
        replaces a weight matrix by two thin ones, W ≈ U_r S_r V_rᵀ (best rank r in the least-squares
        sense).""",
         "prune: keep |w| ≥ the k-th largest;  bytes = 2·k + index bytes\n"
         "SVD:   W_r = Σ_{i<r} s_i u_i v_iᵀ;  numbers = r·(in + out);  ‖W − W_r‖ = √(Σ_{i≥r} s_i²)",
         _alternatives),
]
