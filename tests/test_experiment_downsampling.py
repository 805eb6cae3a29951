"""The information-retention study on a few real MNIST digits and CIFAR-10 pictures."""

from __future__ import annotations

import csv

import numpy as np

from minicnn.cli import main
from minicnn.experiments import downsampling as D
from minicnn.functional import upsample2d


def test_study_on_real_images(data_dir):
    for dataset in ("mnist", "cifar10"):
        x = D.load_images(dataset, str(data_dir), 16)
        assert x.dtype == np.float64 and x.shape[0] == 16 and 0 <= x.min() and x.max() <= 1
        rows, examples = D.study(dataset, x)
        by_method = {r.method: r for r in rows}
        assert set(by_method) == {m.name for m in D.METHODS}
        for name in ("Haar DWT (4 bands)", "slicing (space-to-depth)"):
            assert by_method[name].max_abs_error == 0.0 and by_method[name].mse == 0.0  # exact in float64
            assert by_method[name].kept == 1.0
        lossy = [r for r in rows if r.kept < 1]
        assert len(lossy) == 5 and all(r.kept == 0.25 and r.mse > 0 and np.isfinite(r.psnr) for r in lossy)
        # averaging keeps more of the image than keeping one value per block (the review's point)
        assert by_method["avg pool 2x2"].mse < by_method["subsample /2"].mse
        assert by_method["avg pool 2x2"].mse < by_method["max pool 2x2"].mse
        y, x_hat = examples["max pool 2x2"]
        assert y.shape == (x.shape[1], x.shape[2] // 2, x.shape[3] // 2) and x_hat.shape == x.shape[1:]


def test_reconstruction_picks_the_best_upsampler():
    x = np.random.default_rng(0).uniform(0, 1, (2, 1, 8, 8))
    method = D.METHODS[1]  # avg pool
    _, x_hat, how = D.reconstruct(method, x)
    mse = np.mean((x_hat - x) ** 2)
    y = method.down(x)
    for mode in D.UPSAMPLERS:
        assert mse <= np.mean((upsample2d(y, 2, mode) - x) ** 2)
    assert how.endswith("upsampling")


def test_command_writes_table_csv_and_png(data_dir, tmp_path, capsys):
    code = main(["experiment", "downsampling", "--out", str(tmp_path), "--data-dir", str(data_dir),
                 "--num-images", "8"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "PSNR" in printed and "jitter invariance" in printed
    table = (tmp_path / "downsampling_table.txt").read_text()
    assert "slicing (space-to-depth)" in table and "cifar10 (8)" in table
    with open(tmp_path / "downsampling.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * len(D.METHODS)
    assert all(float(r["max_abs_error"]) == 0.0 for r in rows if r["method"].startswith(("Haar", "slicing")))
    png = (tmp_path / "downsampling.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_strided_average_conv_is_the_mean_of_each_3x3_window_with_zero_padding():
    """The method shown in chapter 12: y[n, c, i, j] = mean of x's 3x3 window at (2i, 2j), padding 1."""
    x = np.random.default_rng(4).standard_normal((2, 3, 7, 6))
    y = D.strided_average_conv(x)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    assert y.shape == (2, 3, 4, 3)
    for i in range(4):
        for j in range(3):
            assert np.allclose(y[:, :, i, j], xp[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3].mean(axis=(2, 3)), atol=1e-12)
