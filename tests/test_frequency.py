"""Frequency Regularization for whole models: to_frequency, dynamic tail truncation, compressed files."""

import numpy as np
import pytest

from minicnn import functional as F
from minicnn import layers as L
from minicnn.app import load_model
from minicnn.app.frequency import (
    EnergyTruncation,
    TailTruncation,
    allocate_budget,
    dense_float32_bytes,
    describe,
    frequency_biases,
    frequency_layers,
    load_compressed,
    read_compressed,
    save_compressed,
    stored_numbers,
    to_frequency,
)
from minicnn.cli import main
from minicnn.core import Sequential
from minicnn.gradcheck import gradcheck
from minicnn.layers import FrequencyBias
from minicnn.losses import SoftmaxCrossEntropy
from minicnn.models import MODELS, build
from minicnn.optim import SGD, Adam


def small_net():
    """conv - relu - conv - relu - flatten - (linear - relu) - linear, with a nested Sequential."""
    return Sequential(
        L.Conv2D(1, 4, 3, padding=1), L.ReLU(), L.Conv2D(4, 3, 3, stride=2), L.ReLU(), L.Flatten(),
        Sequential(L.Linear(3 * 3 * 3, 12), L.ReLU()), L.Linear(12, 5),
    )


@pytest.fixture
def net_and_x(rng):
    return small_net(), rng.standard_normal((6, 1, 7, 7)).astype(np.float32)


def test_to_frequency_keeps_the_function_and_the_layer_positions(net_and_x):
    net, x = net_and_x
    net.to(np.float64)
    x = x.astype(np.float64)
    y0 = net(x)
    weights = {n: p.data.copy() for n, p in net.named_parameters() if n.endswith("weight")}
    out = to_frequency(net)
    assert out is net
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["DCTConv2D", "ReLU", "DCTConv2D", "ReLU", "Flatten", "Sequential", "DCTLinear"]
    assert type(net[5][0]).__name__ == "DCTLinear"
    np.testing.assert_allclose(net(x), y0, rtol=0, atol=1e-12)
    names = [n for n, _ in frequency_layers(net)]
    assert names == ["0", "2", "5.0", "6"]
    for n, layer in frequency_layers(net):
        np.testing.assert_allclose(layer.spatial_weight(), weights[n + ".weight"], atol=1e-13)
        assert layer.keep == layer.coeffs.size
    assert net[2].stride == (2, 2) and net[0].padding == (1, 1)


def test_to_frequency_float32_and_keep_and_untouched_layers(rng):
    net = Sequential(L.Conv2D(2, 4, 3, groups=2), L.Linear(3, 3))
    grouped = net[0]
    to_frequency(net, keep=0.5)
    assert net[0] is grouped  # grouped convolution stays spatial
    assert type(net[1]).__name__ == "DCTLinear" and net[1].keep == 5
    lin = to_frequency(L.Linear(4, 2))
    assert type(lin).__name__ == "DCTLinear" and lin.coeffs.data.dtype == np.float32


def test_allocate_budget_adds_up_and_respects_floors_and_sizes(net_and_x):
    net = to_frequency(net_and_x[0])
    sizes = {n: layer.coeffs.size for n, layer in frequency_layers(net)}  # 36, 108, 324, 60
    for total in [4, 40, 100, 301, sum(sizes.values())]:
        counts = allocate_budget(net, total, floor=1)
        assert sum(counts.values()) == total
        assert all(1 <= counts[n] <= sizes[n] for n in sizes)
    counts = allocate_budget(net, 100, floor=20, power=1.0)
    assert min(counts.values()) >= 20
    even = allocate_budget(net, 176, floor=0, power=1.0)  # a third of 528: the same fraction everywhere
    assert all(abs(even[n] - sizes[n] / 3) <= 1 for n in sizes)
    # a negative power gives the smaller layers the larger counts (capped at their size), still adding up
    tilted = allocate_budget(net, 150, floor=1, power=-0.5)  # sizes 36, 108, 324, 60
    assert sum(tilted.values()) == 150 and all(1 <= tilted[n] <= sizes[n] for n in sizes)
    by_size = sorted(sizes, key=sizes.get)
    assert tilted[by_size[0]] == sizes[by_size[0]]  # the smallest layer is kept whole
    assert tilted[by_size[1]] > tilted[by_size[2]] > tilted[by_size[3]]
    with pytest.raises(ValueError, match="allocate_budget: expected 4 <= total"):
        allocate_budget(net, 3)
    with pytest.raises(ValueError, match="DCT layers"):
        allocate_budget(small_net(), 10)


@pytest.mark.parametrize("decay", ["linear", "geometric"])
def test_tail_truncation_lowers_k_gradually_to_the_target(net_and_x, decay):
    net = to_frequency(net_and_x[0])
    sched = TailTruncation(net, 0.1, steps=5, decay=decay, floor=4)
    start = {n: layer.keep for n, layer in frequency_layers(net)}
    history = [start]
    for _ in range(7):  # two more than needed: stays at the target
        sched.step()
        history.append({n: layer.keep for n, layer in frequency_layers(net)})
    assert sched.done
    for n, layer in frequency_layers(net):
        ks = [h[n] for h in history]
        assert np.all(np.diff(ks) <= 0)  # never increases
        assert len(set(ks[:6])) >= 4  # several intermediate steps, not one cut
        target = max(4, int(np.ceil(0.1 * layer.coeffs.size)))
        assert ks[5] == ks[-1] == target
        assert np.count_nonzero(layer.coeffs.data) <= layer.keep
        np.testing.assert_array_equal(layer.mask, F.zigzag_mask(layer.coeffs.shape, target))
    if decay == "linear":
        k0, kt = start["5.0"], history[-1]["5.0"]
        assert history[1]["5.0"] == round(k0 + (kt - k0) / 5)
    else:  # geometric cuts most at the start
        k0, kt = start["5.0"], history[-1]["5.0"]
        assert history[1]["5.0"] == round(k0 * (kt / k0) ** 0.2)


def _drop_cheapest_by_hand(coeffs: dict, counts: dict, total: int, window: int, floor: int) -> dict:
    """EnergyTruncation's rule written plainly: recompute every layer's cost, drop the cheapest one."""
    counts = dict(counts)
    flat = {n: c.reshape(-1)[np.argsort(F.zigzag_order(c.shape), axis=None)].astype(np.float64) ** 2
            for n, c in coeffs.items()}
    while sum(counts.values()) > total:
        costs = {n: flat[n][max(0, k - window): k].mean() / flat[n][:k].sum()
                 for n, k in counts.items() if k > floor}
        cheapest = min(costs.values())
        counts[next(n for n in counts if costs.get(n) == cheapest)] -= 1  # ties: the first layer
    return counts


def test_energy_truncation_drops_the_cheapest_tail_first(net_and_x):
    net = to_frequency(net_and_x[0])
    layers = dict(frequency_layers(net))
    smooth = layers["2"].coeffs  # a layer whose energy lies in its low frequencies: its tail is cheap
    smooth.data *= np.exp(-0.5 * F.zigzag_order(smooth.shape)).astype(smooth.data.dtype) + 1e-3
    start_total = sum(layer.keep for layer in layers.values())
    sched = EnergyTruncation(net, 40, steps=4, floor=3, window=2)
    history = []
    for t in range(1, 6):
        before = {n: layer.keep for n, layer in layers.items()}
        coeffs = {n: layer.coeffs.data.copy() for n, layer in layers.items()}
        total = sched.step()
        assert total == sched.total_at(t) == sum(layer.keep for layer in layers.values())
        expected = _drop_cheapest_by_hand(coeffs, before, total, window=2, floor=3)
        assert {n: layer.keep for n, layer in layers.items()} == expected
        history.append(expected)
        for layer in layers.values():
            np.testing.assert_array_equal(layer.mask, F.zigzag_mask(layer.coeffs.shape, layer.keep))
            assert np.count_nonzero(layer.coeffs.data) <= layer.keep
    assert sched.done and history[-1] == history[-2] and sum(history[-1].values()) == 40
    assert history[0]["2"] < 10 < start_total  # the smooth layer gave up its tail in the first step
    assert min(history[-1].values()) >= 3
    with pytest.raises(ValueError, match="EnergyTruncation: expected a total between 12"):
        EnergyTruncation(to_frequency(small_net()), 11, steps=2, floor=3)


def test_tail_truncation_per_layer_targets_and_errors(net_and_x):
    net = to_frequency(net_and_x[0])
    sched = TailTruncation(net, {"0": 3, "6": 0.5}, steps=2)
    sched.step()
    sched.step()
    keeps = {n: layer.keep for n, layer in frequency_layers(net)}
    assert keeps == {"0": 3, "2": 108, "5.0": 324, "6": 30}
    with pytest.raises(ValueError, match="unknown layers"):
        TailTruncation(net, {"7": 3}, steps=2)
    with pytest.raises(ValueError, match="TailTruncation: expected steps as an int >= 1"):
        TailTruncation(net, 0.5, steps=0)
    with pytest.raises(ValueError, match="decay"):
        TailTruncation(net, 0.5, steps=3, decay="cosine")


def test_training_with_dynamic_truncation_keeps_the_tail_at_zero(net_and_x, rng):
    net, x = net_and_x
    labels = rng.integers(0, 5, len(x))
    to_frequency(net)
    loss = SoftmaxCrossEntropy()
    for opt in (SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3),
                Adam(net.parameters(), lr=1e-3, weight_decay=1e-3)):
        sched = TailTruncation(net, 0.2, steps=10, decay="geometric")
        for _ in range(15):  # per-iteration schedule, then 5 steps at the target
            opt.zero_grad()
            loss.forward(net(x), labels)
            net.backward(loss.backward())
            opt.step()
            sched.step()
        for _, layer in frequency_layers(net):
            assert np.all(layer.coeffs.data[~layer.mask] == 0)
            assert layer.keep == int(np.ceil(0.2 * layer.coeffs.size))


def _truncated_net(net, rng):
    to_frequency(net)
    for n, k in allocate_budget(net, 60).items():
        dict(frequency_layers(net))[n].set_keep(k)
    for _, layer in frequency_layers(net):  # trained-looking coefficients, not just the init
        layer.coeffs.data += (rng.standard_normal(layer.coeffs.shape) * 0.1 * layer.mask).astype(np.float32)
    return net


def test_export_then_load_gives_identical_weights_and_predictions(net_and_x, rng, tmp_path):
    net, x = net_and_x
    _truncated_net(net, rng)
    net.eval()
    info = save_compressed(net, tmp_path / "m.fr.npz", meta={"note": "test"})
    counts = stored_numbers(net)
    assert info["numbers"] == counts["total"] == 60 + (4 + 3 + 12 + 5)
    assert counts == {"coefficients": 60, "other": 24, "total": 84, "dense": 40 + 111 + 336 + 65}
    loaded = load_compressed(tmp_path / "m.fr.npz", small_net())
    loaded.eval()
    for (n1, a), (n2, b) in zip(net.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert n1 == n2
        np.testing.assert_array_equal(a, b)
    for (_, la), (_, lb) in zip(frequency_layers(net), frequency_layers(loaded), strict=True):
        np.testing.assert_array_equal(la.spatial_weight(), lb.spatial_weight())
    np.testing.assert_array_equal(loaded(x), net(x))
    manifest, _ = read_compressed(tmp_path / "m.fr.npz")
    assert manifest["meta"] == {"note": "test"} and manifest["dtype"] == "float32"
    assert 84 * 4 < info["bytes"] < dense_float32_bytes(net)  # payload plus a small manifest


def test_float16_export_rebuilds_the_rounded_weights_exactly(net_and_x, rng, tmp_path):
    net, x = net_and_x
    _truncated_net(net, rng)
    small = save_compressed(net, tmp_path / "h.npz", float16=True)
    full = save_compressed(net, tmp_path / "f.npz")
    assert full["bytes"] - small["bytes"] == 2 * 84  # two bytes saved per stored number
    loaded = load_compressed(tmp_path / "h.npz", small_net())
    for (_, la), (_, lb) in zip(frequency_layers(net), frequency_layers(loaded), strict=True):
        rounded = (la.coeffs.data * la.mask).astype(np.float16).astype(np.float32)
        np.testing.assert_array_equal(lb.coeffs.data, rounded)
        np.testing.assert_array_equal(lb.spatial_weight(), F.idct(rounded))
    save_compressed(loaded, tmp_path / "h2.npz", float16=True)  # a second round trip changes nothing
    again = load_compressed(tmp_path / "h2.npz", small_net())
    np.testing.assert_array_equal(again(x), loaded(x))
    np.testing.assert_allclose(loaded(x), net(x), atol=2e-2)


def test_compress_command_on_a_plain_state_dict(net_and_x, rng, tmp_path, capsys):
    MODELS["_test_frequency_net"] = small_net
    try:
        net = _truncated_net(net_and_x[0], rng)
        net.save(tmp_path / "state.npz")
        code = main(["compress", str(tmp_path / "state.npz"), "--out", str(tmp_path / "c.fr.npz"),
                     "--model", "_test_frequency_net", "--float16"])
        out = capsys.readouterr().out
        assert code == 0, out
        assert "stored numbers: 84 = 60 kept DCT coefficients + 24 other" in out
        assert "compression ratio" in out
        loaded = load_model(tmp_path / "c.fr.npz")
        assert loaded.name == "_test_frequency_net" and loaded.kind == "compressed"
        assert stored_numbers(loaded.model)["total"] == 84
        assert main(["compress", str(tmp_path / "state.npz"), "--out", str(tmp_path / "d.npz")]) == 2
        assert "--model NAME" in capsys.readouterr().err
    finally:
        del MODELS["_test_frequency_net"]


def test_bad_compressed_files(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="compressed model file lacks"):
        load_compressed(tmp_path / "other.npz", small_net())
    net = to_frequency(small_net())
    save_compressed(net, tmp_path / "ok.npz")
    with pytest.raises(ValueError, match="load_state_dict"):
        load_compressed(tmp_path / "ok.npz", Sequential(L.Linear(3, 3)))
    with pytest.raises(ValueError, match="does not name its model"):
        load_model(tmp_path / "ok.npz")


def test_compress_command_on_a_training_checkpoint(net_and_x, rng, tmp_path, capsys):
    from minicnn.app.checkpoint import save_checkpoint

    MODELS["_test_frequency_net"] = small_net
    try:
        net = _truncated_net(net_and_x[0], rng)
        save_checkpoint(tmp_path / "ckpt.npz", net, meta={"model": "_test_frequency_net", "model_config": {},
                                                          "mean": [0.1], "std": [0.3], "dataset": "mnist"})
        code = main(["compress", str(tmp_path / "ckpt.npz"), "--out", str(tmp_path / "c.fr.npz")])
        out = capsys.readouterr().out
        assert code == 0, out
        assert "stored numbers: 84 = 60 kept DCT coefficients + 24 other" in out
        loaded = load_model(tmp_path / "c.fr.npz")
        assert loaded.mean == [0.1] and loaded.dataset == "mnist" and loaded.name == "_test_frequency_net"
        np.testing.assert_array_equal(loaded.model(net_and_x[1]), net.eval()(net_and_x[1]))
        dense = small_net()  # a dense checkpoint with --keep: one-shot truncation
        save_checkpoint(tmp_path / "dense.npz", dense, meta={"model": "_test_frequency_net", "model_config": {}})
        assert main(["compress", str(tmp_path / "dense.npz"), "--out", str(tmp_path / "d.fr.npz"),
                     "--keep", "0.1"]) == 0
        assert "stored numbers: 78 = 54 kept DCT coefficients + 24 other"  # 4 + 11 + 33 + 6 in capsys.readouterr().out
    finally:
        del MODELS["_test_frequency_net"]


def test_truncation_callback_follows_the_optimizer_step_or_the_epoch(net_and_x):
    net = to_frequency(net_and_x[0])
    sched = TailTruncation(net, 0.1, steps=10)
    sched.on_batch_start(0, net)
    assert net[6].keep == 60
    sched.on_batch_start(4, net)
    assert net[6].keep == round(60 + (6 - 60) * 0.4)
    sched.on_batch_start(2, net)  # going back does not raise k again
    sched.on_epoch_end(0, net, {})  # per="step": epochs do not move it
    assert net[6].keep == round(60 + (6 - 60) * 0.4)
    sched.on_batch_start(50, net)
    assert net[6].keep == 6 and sched.done
    per_epoch = TailTruncation(to_frequency(small_net()), 0.1, steps=2, per="epoch")
    per_epoch.on_batch_start(5, net)
    assert per_epoch.t == 0
    per_epoch.on_epoch_end(0, net, {})
    assert per_epoch.t == 1
    with pytest.raises(ValueError, match="per"):
        TailTruncation(net, 0.1, steps=2, per="batch")


def test_real_mnist_export_reload_gives_identical_test_accuracy(data_dir, tmp_path):
    """A LeNet-5 fine-tuned briefly with dynamic truncation on real MNIST; the float16 file reloads to
    exactly the weights, predictions and test accuracy of the model it was written from."""
    from minicnn.app.train import EpochState, FitConfig, evaluate, train_epoch
    from minicnn.data import load_dataset, standardize

    ds = load_dataset("mnist", data_dir, download=False)
    mean, std = ds.channel_stats()
    x_train, y_train = standardize(ds.x_train[:3200], mean, std), ds.y_train[:3200]
    x_test, y_test = standardize(ds.x_test[:2000], mean, std), ds.y_test[:2000]
    model = to_frequency(MODELS["lenet5"]())
    sched = TailTruncation(model, 0.2, steps=30)
    opt = Adam(model.parameters(), lr=1e-2)
    train_epoch(model, x_train, y_train, opt, FitConfig(epochs=1, progress=False), EpochState(0), callbacks=[sched])
    assert sched.done and stored_numbers(model)["coefficients"] == 30 + 480 + 9600 + 2016 + 168
    save_compressed(model, tmp_path / "lenet.fr.npz", float16=True, meta=describe("lenet5", {}, model))
    loaded = load_model(tmp_path / "lenet.fr.npz").model
    for (_, la), (_, lb) in zip(frequency_layers(model), frequency_layers(loaded), strict=True):
        la.coeffs.data = la.coeffs.data.astype(np.float16).astype(np.float32)  # the rounding the file applies
        np.testing.assert_array_equal(la.spatial_weight(), lb.spatial_weight())
    for (_, a), (_, b) in zip(model.named_parameters(), loaded.named_parameters(), strict=True):
        np.testing.assert_array_equal(a.data.astype(np.float16).astype(np.float32), b.data)
        a.data = b.data.copy()  # biases rounded the same way
    before, after = evaluate(model, x_test, y_test), evaluate(loaded, x_test, y_test)
    np.testing.assert_array_equal(before.predictions, after.predictions)
    assert before.accuracy == after.accuracy > 0.5


def test_bias_free_lenet5_stores_only_coefficients_and_reloads_from_its_meta(rng, tmp_path):
    """lenet5(bias=False): no bias anywhere, so every stored number is a kept DCT coefficient; the
    file's meta config rebuilds the bias-free architecture, and reloading reproduces the outputs."""
    dense = MODELS["lenet5"](bias=False)
    assert all(not n.endswith("bias") for n, _ in dense.named_parameters())
    assert dense.num_parameters() == MODELS["lenet5"]().num_parameters() - (6 + 16 + 120 + 84 + 10)
    model = to_frequency(dense)
    targets = allocate_budget(model, 776, floor=8, power=0.0)
    for name, layer in frequency_layers(model):
        layer.set_keep(targets[name])
        layer.coeffs.data += (rng.standard_normal(layer.coeffs.shape) * 0.05 * layer.mask).astype(np.float32)
    counts = stored_numbers(model)
    assert counts["other"] == 0 and counts["coefficients"] == counts["total"] == 776
    info = save_compressed(model, tmp_path / "nb.fr.npz", float16=True,
                           meta={"model": "lenet5", "config": {"bias": False}})  # a file without "frequency"
    assert info["numbers"] == 776
    result = load_model(tmp_path / "nb.fr.npz")
    loaded = result.model
    assert result.config == {"bias": False} and stored_numbers(loaded) == counts
    x = rng.standard_normal((3, 1, 28, 28)).astype(np.float32)
    model.eval()
    loaded.eval()
    for (_, la), (_, lb) in zip(frequency_layers(model), frequency_layers(loaded), strict=True):
        la.coeffs.data = la.coeffs.data.astype(np.float16).astype(np.float32)  # the file's rounding
        np.testing.assert_array_equal(la.spatial_weight(), lb.spatial_weight())
    np.testing.assert_array_equal(loaded(x), model(x))


@pytest.mark.parametrize("keep", [1.0, 3, 1])
@pytest.mark.parametrize("shape", [(3, 5), (2, 5, 3, 4)])
def test_frequency_bias_forward_and_gradcheck(keep, shape, rng):
    layer = FrequencyBias(5, keep=keep, bias=rng.standard_normal(5)).to(np.float64)
    x = rng.standard_normal(shape)
    k = layer.keep
    assert k == (5 if isinstance(keep, float) else keep)
    b = F.idct(layer.coeffs.data * (np.arange(5) < k))  # 1-D zigzag = natural order
    np.testing.assert_allclose(layer(x), x + b.reshape((1, 5) + (1,) * (x.ndim - 2)), atol=1e-12)
    report = gradcheck(layer, x)
    assert report.max_rel_error < 1e-6 and {t.name for t in report.tensors} == {"input", "coeffs"}
    with pytest.raises(ValueError, match="FrequencyBias"):
        layer(rng.standard_normal((3, 4)))


def test_frequency_biases_keeps_the_function_and_exports_the_truncated_biases(net_and_x, rng, tmp_path):
    net, x = net_and_x
    before = net(x)
    frequency_biases(to_frequency(net))
    names = [n for n, _ in frequency_layers(net)]
    assert names == ["0.0", "0.1", "2.0", "2.1", "5.0.0", "5.0.1", "6.0", "6.1"]
    np.testing.assert_allclose(net(x), before, atol=1e-5)
    assert stored_numbers(net)["other"] == 0
    targets = {"0.0": 9, "0.1": 1, "2.0": 20, "2.1": 2, "5.0.0": 30, "5.0.1": 3, "6.0": 10, "6.1": 5}
    for n, layer in frequency_layers(net):
        layer.set_keep(targets[n])
    one = dict(frequency_layers(net))["0.1"]
    np.testing.assert_allclose(one.spatial_weight(), np.full(4, one.coeffs.data[0] / 2))  # k=1: DC / sqrt(4)
    assert stored_numbers(net)["total"] == sum(targets.values())
    save_compressed(net, tmp_path / "b.fr.npz", float16=True)
    loaded = load_compressed(tmp_path / "b.fr.npz", frequency_biases(to_frequency(small_net())))
    MODELS["_test_frequency_net"] = small_net
    try:  # load_model rebuilds the frequency biases from the meta, and also for files without it
        for meta in (describe("_test_frequency_net", {}, net), {"model": "_test_frequency_net"}):
            save_compressed(net, tmp_path / "m.fr.npz", float16=True, meta=meta)
            again = load_model(tmp_path / "m.fr.npz")
            assert again.frequency == {"biases": True}
            np.testing.assert_array_equal(again.model(x), loaded.eval()(x))
    finally:
        del MODELS["_test_frequency_net"]
    for (_, la), (_, lb) in zip(frequency_layers(net), frequency_layers(loaded), strict=True):
        la.coeffs.data = la.coeffs.data.astype(np.float16).astype(np.float32)
        np.testing.assert_array_equal(la.spatial_weight(), lb.spatial_weight())
    np.testing.assert_array_equal(loaded(x), net(x))


def test_registered_frequency_bias_gradcheck_case():
    from minicnn.gradcheck_cases import run_case

    assert run_case("FrequencyBias_keep2", seed=1).ok


def test_c5_conv_lenet5_computes_the_same_function_and_reloads(rng, tmp_path):
    """lenet5(c5_conv=True) (experiment frequency --c5-conv): fc1 as a 5x5 convolution (LeNet-5's C5)
    is the same function, its coefficients run over (120, 16, 5, 5), and the compressed file reloads
    into the same layout, also from a file written before lenet5 took c5_conv."""
    x = rng.standard_normal((2, 1, 28, 28)).astype(np.float32)
    dense = MODELS["lenet5"]()
    before = dense(x)
    c5 = build("lenet5", c5_conv=True)
    c5[6].weight.data = dense[7].weight.data.reshape(c5[6].weight.shape).copy()  # (120, 16, 5, 5)
    c5[6].bias.data = dense[7].bias.data.copy()
    for i in (0, 3, 9, 11):
        c5[i].load_state_dict(dense[i].state_dict())
    model = to_frequency(c5)
    np.testing.assert_allclose(model(x), before, atol=1e-5)
    layers = dict(frequency_layers(model))
    assert layers["6"].coeffs.shape == (120, 16, 5, 5) and stored_numbers(model)["other"] == 236
    for layer in layers.values():
        layer.set_keep(30)
    for meta in ({"model": "lenet5", "config": {}, "c5_conv": True},  # the old experiment's meta
                 describe("lenet5", {"c5_conv": True}, model)):
        save_compressed(model, tmp_path / "c5.fr.npz", meta=meta)
        loaded = load_model(tmp_path / "c5.fr.npz")
        assert loaded.config == {"c5_conv": True}
        np.testing.assert_array_equal(loaded.model(x), model(x))
        assert stored_numbers(loaded.model)["total"] == 5 * 30 + 236
