"""`minicnn experiment frequency` and `frequency_compare`: the pieces of the comparison (index bytes,
pruning to a byte budget, SVD factors, the small LeNet) and short real-MNIST runs whose tables are
those of the files they write."""

import json

import numpy as np
import pytest

from minicnn import layers as L
from minicnn.app import evaluate, load_model
from minicnn.app.frequency import stored_numbers
from minicnn.cli import main
from minicnn.core import Parameter
from minicnn.data import load_dataset, standardize
from minicnn.experiments import frequency_compare
from minicnn.models import build

TINY = ["--val", "200", "--train-images", "600", "--test-images", "300", "--dense-epochs", "1", "--fr-epochs", "1",
        "--truncate-epochs", "0.5", "--batch-size", "100"]


def test_index_bytes_is_the_smaller_of_a_bitmask_and_the_indices():
    assert frequency_compare.index_bytes(48000, 0) == 0 and frequency_compare.index_bytes(48000, 48000) == 0
    assert frequency_compare.index_bytes(48000, 100) == 100 * 16 // 8  # ceil(log2 48000) = 16 bits each
    assert frequency_compare.index_bytes(150, 100) == 19  # bitmask: 150 bits -> 19 bytes (< 100 * 8 bits)
    assert frequency_compare.index_bytes(150, 3) == 3  # 3 indices of 8 bits


@pytest.mark.parametrize("budget", [60, 300, 1000])
def test_pruning_keeps_the_largest_entries_that_fit_the_budget(budget, rng):
    params = [Parameter(rng.standard_normal(s).astype(np.float32)) for s in ((20, 30), (7,), (4, 3, 5, 5))]
    original = [p.data.copy() for p in params]
    pruning = frequency_compare.MagnitudePruning(params, budget, steps=10)
    pruning.finish()
    stored = frequency_compare.pruned_bytes(params)
    assert stored <= budget
    kept = np.concatenate([np.abs(p.data).ravel() for p in params])
    dropped = np.concatenate([np.abs(o).ravel()[p.data.ravel() == 0] for p, o in zip(params, original, strict=True)])
    assert kept[kept > 0].min() >= dropped.max()  # global magnitude: every kept entry beats every pruned one
    # one more entry would not fit: the budget is used, not wasted
    assert frequency_compare._bytes_if_kept([np.abs(o) for o in original], pruning.kept + 1) > budget
    assert all(np.array_equal(p.mask, p.data != 0) for p in params)


def test_pruning_schedule_is_cubic_and_ends_at_the_target(rng):
    params = [Parameter(rng.standard_normal((40, 50)).astype(np.float32))]
    pruning = frequency_compare.MagnitudePruning(params, 500, steps=100)
    counts = []
    for step in range(0, 101, 20):
        pruning.on_batch_start(step, None)
        counts.append(pruning.kept)
    assert counts[0] == 2000 and counts == sorted(counts, reverse=True)
    assert counts[1] == round(2000 - (2000 - pruning.target) * (1 - 0.8 ** 3))
    assert counts[-1] == pruning.target and frequency_compare.pruned_bytes(params) <= 500


@pytest.mark.parametrize("make", [lambda: L.Linear(12, 7), lambda: L.Conv2D(3, 5, 3, stride=2, padding=1)])
def test_svd_factor_is_the_rank_r_truncation(make, rng):
    layer = make()
    x = rng.standard_normal((2, 12) if isinstance(layer, L.Linear) else (2, 3, 6, 6)).astype(np.float64)
    layer.to(np.float64)
    w = layer.weight.data.reshape(layer.weight.shape[0], -1)  # (O, I*KH*KW)
    full = frequency_compare.factor(layer, min(w.shape))
    np.testing.assert_allclose(full(x), layer(x), atol=1e-10)  # full rank: the same function
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    one = frequency_compare.factor(layer, 1)
    product = one[1].weight.data.reshape(w.shape[0], 1) @ one[0].weight.data.reshape(1, -1)
    np.testing.assert_allclose(product, s[0] * np.outer(u[:, 0], vt[0]), atol=1e-10)


def test_svd_ranks_fit_the_budget_or_refuse():
    model = build("lenet5", c5_conv=True)
    layers = {n: c for n, c in model.named_children() if isinstance(c, (L.Conv2D, L.Linear))}
    assert frequency_compare.choose_ranks(layers, 776) is None  # rank 1 everywhere: 1,015 + 236 numbers
    ranks = frequency_compare.choose_ranks(layers, 2000)
    cost = {"0": 6 + 25, "3": 16 + 150, "6": 120 + 400, "9": 84 + 120, "11": 10 + 84}
    used = 236 + sum(ranks[n] * cost[n] for n in ranks)
    assert used <= 2000 and all(used + c > 2000 for c in cost.values())  # nothing more fits


def test_small_lenet_fits_its_budget():
    for budget in (500, 776, 2000):
        c1, c2, f1 = frequency_compare.small_lenet_config(budget)
        n = frequency_compare.small_lenet(c1, c2, f1).num_parameters()
        assert n == frequency_compare.small_lenet_parameters(c1, c2, f1) <= budget


def test_experiment_arguments_are_checked(capsys):
    assert main(["experiment", "frequency", "--budgets", "0"]) == 2
    assert "budget" in capsys.readouterr().out
    assert main(["experiment", "frequency", "--seeds", "a"]) == 2
    assert main(["experiment", "frequency_compare", "--methods", "fr,zip"]) == 2
    assert "--methods" in capsys.readouterr().out


def test_frequency_experiment_table_is_that_of_its_reloaded_files(data_dir, tmp_path, capsys):
    out = tmp_path / "fr"
    assert main(["experiment", "frequency", "--budgets", "500", "--seeds", "0,1", "--out", str(out),
                 "--data-dir", str(data_dir), *TINY]) == 0
    result = json.loads((out / "frequency_results.json").read_text())
    assert [(r["budget"], r["seed"]) for r in result["rows"]] == [("500", 0), ("500", 1)]
    ds = load_dataset("mnist", data_dir, download=False)
    for row in result["rows"]:
        loaded = load_model(row["path"])
        assert loaded.config == {"c5_conv": True} and loaded.frequency == {"biases": True}
        assert stored_numbers(loaded.model)["total"] == row["stored_numbers"] == 500
        x = standardize(ds.x_test[:300], loaded.mean, loaded.std)
        assert evaluate(loaded.model, x, ds.y_test[:300]).accuracy == row["test_accuracy"]
    mean = result["mean_rows"][0]
    assert mean["test_accuracy"] == pytest.approx(np.mean([r["test_accuracy"] for r in result["rows"]]))
    assert "500    462     38    500" in (out / "frequency_table.txt").read_text()  # 38 = 6 + 4 * 8 bias coeffs
    for png in ("frequency_pareto.png", "frequency_coefficients.png"):
        assert (out / png).stat().st_size > 10_000


def test_compare_experiment_keeps_every_method_within_its_bytes(data_dir, tmp_path):
    out = tmp_path / "cmp"
    assert main(["experiment", "frequency_compare", "--bytes", "1552", "--seeds", "0", "--out", str(out),
                 "--data-dir", str(data_dir), *TINY]) == 0
    result = json.loads((out / "compare_results.json").read_text())
    methods = {r["method"]: r for r in result["rows"]}
    assert set(methods) == {"fr", "prune", "small"}  # svd: rank 1 everywhere needs 2,502 bytes
    assert methods["fr"]["numbers"] == 776 and methods["fr"]["bytes"] == 1552
    assert all(r["bytes"] <= 1552 for r in result["rows"])
    assert (out / "compare_accuracy_vs_bytes.png").stat().st_size > 10_000
