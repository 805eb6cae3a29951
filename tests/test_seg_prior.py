"""The segmentation head's prior bias (`minicnn.app.segmentation.init_prior_bias`, `minicnn train --head-bias`):
the class shares against hand counts, the untrained net's softmax against them, and the command's default."""

from __future__ import annotations

import numpy as np
import pytest

from minicnn import layers as L
from minicnn import models
from minicnn.app import load_model
from minicnn.app.segmentation import PRIOR_SMOOTH, class_prior, init_prior_bias, last_layer
from minicnn.cli import main
from minicnn.core import Sequential
from minicnn.data.segmentation import load_segmentation, with_sizes
from minicnn.losses import log_softmax


def test_class_prior_is_the_smoothed_share_of_pixels_counted_by_hand():
    labels = np.array([[[0, 0, 1], [0, 2, 0]]])  # (1, 2, 3): 4 pixels of class 0, 1 of class 1, 1 of class 2
    s = PRIOR_SMOOTH
    expected = np.array([4 + s, 1 + s, 1 + s, 0 + s]) / (6 + 4 * s)  # class 3 absent: a small share, not 0
    np.testing.assert_allclose(class_prior(labels, 4), expected, rtol=1e-15)
    assert class_prior(labels, 4).sum() == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize("labels, match", [(np.array([0.0, 1.0]), "integer class labels"),
                                           (np.array([0, 3]), r"labels in \[0, 3\), got values in \[0, 3\]")])
def test_class_prior_refuses_bad_labels(labels, match):
    with pytest.raises(ValueError, match=match):
        class_prior(labels, 3)


def test_unet_with_a_zero_head_weight_predicts_the_prior_at_every_pixel(rng):
    """b = log pi and w = 0: softmax(logits) = pi exactly, whatever the image."""
    model = models.build("unet", num_classes=4, in_channels=1, width=1 / 16, depth=2).to(np.float64)
    labels = rng.integers(0, 4, size=(3, 8, 8))
    labels[labels == 3] = 0  # a rare class and a common one
    head = last_layer(model)
    assert head is model[1] and head.out_channels == 4
    bias = init_prior_bias(model, labels)
    np.testing.assert_allclose(bias, np.log(class_prior(labels, 4)), rtol=1e-15)
    head.weight.data[...] = 0
    probs = np.exp(log_softmax(model.forward(rng.standard_normal((2, 1, 16, 16)))))  # (2, 4, 16, 16)
    np.testing.assert_allclose(probs, np.broadcast_to(class_prior(labels, 4)[None, :, None, None], probs.shape),
                               rtol=1e-12)


def test_init_prior_bias_refuses_a_head_without_a_bias():
    with pytest.raises(ValueError, match="init_prior_bias: expected the model's last layer to be a convolution "
                                         "with a bias, got Conv2D without a bias"):
        init_prior_bias(Sequential(L.Conv2D(1, 3, 1, bias=False)), np.zeros((1, 2, 2), np.int64))


def test_train_starts_a_unet_head_at_the_log_prior_by_default(tmp_path, data_dir, capsys):
    """Two Adam steps at lr 1e-3 move each bias by at most ~2e-3: the saved head is still log pi of the
    training pixels (PyTorch's default init would leave it anywhere in +-1/sqrt(4)); --head-bias default
    keeps that init, and a classifier is refused the option."""
    common = ["train", "--dataset", "mnist-seg", "--model", "unet", "--width", "0.0625", "--train-limit", "16",
              "--test-limit", "8", "--batch-size", "8", "--epochs", "1", "--optimizer", "adam", "--lr", "0.001",
              "--weight-decay", "0", "--no-progress", "--no-download", "--data-dir", str(data_dir)]
    assert main([*common, "--out", str(tmp_path / "prior")]) == 0
    assert "head bias log class prior" in " ".join(capsys.readouterr().out.split())
    y = load_segmentation("mnist-seg", with_sizes("mnist-seg", train=16, test=8), data_dir=data_dir).y_train
    prior = np.log(class_prior(y, 11))
    saved = last_layer(load_model(tmp_path / "prior" / "checkpoint.npz").model).bias.data
    np.testing.assert_allclose(saved, prior, atol=2.5e-3)
    assert main([*common, "--head-bias", "default", "--out", str(tmp_path / "default")]) == 0
    plain = last_layer(load_model(tmp_path / "default" / "checkpoint.npz").model).bias.data
    assert np.abs(plain - prior).max() > 1.0  # log pi of a digit is about -5; PyTorch's init is within +-0.5
    assert main(["train", "--dataset", "mnist", "--head-bias", "prior", "--out", str(tmp_path / "c"),
                 "--data-dir", str(data_dir), "--no-download"]) == 2
    assert "--head-bias prior sets a segmentation model's head" in " ".join(capsys.readouterr().err.split())
