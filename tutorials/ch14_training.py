"""Chapter 14: training LeNet-5 on MNIST end to end, and reading its curves."""

from __future__ import annotations

import time

import numpy as np
from scipy.special import softmax

from minicnn import core, data, losses, optim, visualize
from minicnn import functional as F
from minicnn import layers as L
from minicnn.app import lr_find, segmentation, train
from minicnn.models import build

from ._runner import Step, Unavailable

TITLE = "Training LeNet-5 on MNIST"
SUMMARY = ("data, loss, label smoothing, SGD and Adam, the learning-rate range test, batch norm, a real "
           "training run of LeNet-5, reading its curves")

_CACHE: dict = {}
STANDARDIZE_BLOCK = 10_000  # images per block when standardising the training set


def _mnist():
    """MNIST: the raw dataset (for pictures and shapes) and the training/test images standardised as
    `minicnn train` does it (training-set mean/std), loaded once per run."""
    if "ds" not in _CACHE:
        try:
            ds = data.load_dataset("mnist", download=False)
        except data.DatasetError as e:
            raise Unavailable(f"this chapter trains on MNIST, which is not on this machine: {e}") from e
        mean, std = ds.channel_stats()  # over blocks of images: no float64 copy of the set
        _CACHE["first"] = ds.x_train[0, 0].copy()  # one raw training picture, for step 1
        x_train = ds.x_train  # standardised in place, a block at a time: no second 188 MB copy
        for i in range(0, len(x_train), STANDARDIZE_BLOCK):
            x_train[i:i + STANDARDIZE_BLOCK] = data.standardize(x_train[i:i + STANDARDIZE_BLOCK], mean, std)
        _CACHE["ds"] = ds
        _CACHE["std"] = (x_train, data.standardize(ds.x_test, mean, std))
    return _CACHE["ds"], _CACHE["std"]


def _data(t):
    t.code(data.load_dataset, start='"""Load', end='"""')
    t.code(data.standardize)
    ds, (x_train, x_test) = _mnist()
    t.table(["split", "images", "labels"], [["train", ds.x_train.shape, ds.y_train.shape],
                                            ["test", ds.x_test.shape, ds.y_test.shape]])
    t.blocks(f"training image 0 (label {ds.y_train[0]})", _CACHE["first"])
    t.check("60,000 training and 10,000 test images of 1x28x28, labels 0..9",
            [*ds.x_train.shape, len(ds.x_test), ds.y_train.min(), ds.y_train.max()], [60000, 1, 28, 28, 10000, 0, 9],
            tol=0)
    t.check("after standardisation the training pixels have mean 0 and std 1",
            np.ravel(ds.channel_stats()), [0.0, 1.0], tol=1e-3)  # ds.x_train is the standardised array now


def _loss(t):
    t.code(losses.SoftmaxCrossEntropy, start='"""L =', end='"""')
    t.code(losses.SoftmaxCrossEntropy.backward)
    logits = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
    labels = np.array([0, 1])
    loss_fn = losses.SoftmaxCrossEntropy()
    value = loss_fn.forward(logits, labels)
    grad = loss_fn.backward()
    p = softmax(logits, axis=1)
    t.array("softmax(z)", p)
    t.array("dL/dz", grad)
    t.check("L = −mean log p[label] (scipy.special.softmax as the reference)", value,
            -np.mean(np.log(p[np.arange(2), labels])))
    t.check("dL/dz = (softmax(z) − onehot(y)) / N", grad, (p - np.eye(3)[labels]) / 2)


SMOOTHING = 0.1  # the label smoothing e shown (Szegedy et al. use 0.1)


def _label_smoothing(t):
    t.code(losses.SoftmaxCrossEntropy.forward, start="nll =", end="return float((1 - e)")
    t.code(losses.SoftmaxCrossEntropy.backward, start="e = self.label_smoothing", end="dlogits[np.arange")
    e, k = SMOOTHING, 4
    logits = np.array([[2.0, 0.5, -1.0, 0.0]])
    label = np.array([0])
    target = (1 - e) * np.eye(k)[label] + e / k  # (1, K): the smoothed target distribution
    t.array(f"target t for label 0, K = {k}, e = {e}", target)
    smooth = losses.SoftmaxCrossEntropy(label_smoothing=e)
    value, grad = smooth(logits, label), smooth.backward()
    p = softmax(logits, axis=1)
    t.check("L = −Σ_k t_k log p_k (scipy.special.softmax as the reference)", value, -np.sum(target * np.log(p)))
    t.check("dL/dz = (softmax(z) − t) / N", grad, (p - target) / 1)
    t.check("L = (1 − e)·NLL + e·mean_k(−log p_k), the form the code computes", value,
            (1 - e) * -np.log(p[0, 0]) + e * np.mean(-np.log(p)))
    plain = losses.SoftmaxCrossEntropy()
    margins = np.linspace(0.0, 12.0, 1201)  # z = margin · onehot(0): how confident the network is
    rows, with_e, without = [], [], []
    for m in margins:
        z = m * np.eye(k)[label]
        with_e.append(smooth(z, label))
        without.append(plain(z, label))
        if m in (0.0, 2.0, 4.0, 8.0, 12.0):
            rows.append([f"{m:g}", f"{softmax(z, axis=1)[0, 0]:.4f}", f"{without[-1]:.4f}", f"{with_e[-1]:.4f}"])
    t.table(["logit margin", "p(right class)", "L, e = 0", f"L, e = {e}"], rows)
    best = margins[int(np.argmin(with_e))]
    exact = np.log((1 - e + e / k) / (e / k))  # softmax(z) = t where the margin is log(t_right / t_other)
    t.check_true("without smoothing the loss keeps falling as the margin grows (it wants infinite logits)",
                 bool(np.all(np.diff(without) < 0)))
    t.check(f"with e = {e} it is lowest at a finite margin, log(t_right / t_other) = log(37) = {exact:.3f}",
            best, exact, tol=0.01)
    t.say("So the network is pulled back from over-confidence. `minicnn train --label-smoothing 0.1` trains "
          "with it; accuracy is still counted against the hard labels.")


def _prior_bias(t):
    t.code(segmentation.class_prior, start="counts =", end="return (counts")
    t.code(segmentation.init_prior_bias, start="prior = class_prior", end="return bias.data")
    labels = np.zeros((2, 8, 8), np.int64)  # two 8x8 label maps: mostly background, as a segmentation is
    labels[0, 2:5, 2:4], labels[1, 5:7, 1:7] = 1, 2
    prior = segmentation.class_prior(labels, 3)
    t.array("class shares of the 128 labelled pixels (smoothed by one pixel each)", prior, precision=4)
    head = L.Conv2D(4, 3, 1).to(np.float64)  # a 1x1 head: 4 features -> 3 class logits per pixel
    bias = segmentation.init_prior_bias(core.Sequential(head), labels)
    t.array("b = log pi", bias, precision=4)
    head.weight.data[...] = 0  # features that say nothing yet: the logits are the bias alone
    features = np.random.default_rng(0).standard_normal((2, 4, 8, 8))
    logits = head(features)
    ce = losses.SoftmaxCrossEntropy()
    t.check("softmax of every pixel's logits = the class shares", softmax(logits, axis=1)[0, :, 0, 0], prior)
    start_prior = ce(logits, labels)
    start_zero = ce(np.zeros_like(logits), labels)
    t.table(["head bias", "loss at the first step"],
            [["0 (every class 1/K)", f"{start_zero:.4f} = log 3"], ["log pi", f"{start_prior:.4f}"]])
    t.check("with b = 0 the loss starts at log K", start_zero, np.log(3))
    t.check_true("with b = log pi it starts lower: the first steps need not learn the class shares",
                 start_prior < start_zero)
    t.say("`minicnn train --model unet` starts its head this way (`--head-bias prior`, the default): "
          "without it a 14-epoch mnist-seg run never told one digit from another (mean IoU 0.10).")


def _lr_find(t):
    t.code(lr_find.LRFindConfig.lr)
    t.code(lr_find.suggest)
    ds, (x_train, _) = _mnist()
    n, steps = (3200, 100) if t.quick else (12800, 200)
    core.manual_seed(0)
    model = build("lenet5")
    before = model.state_dict()
    opt = optim.SGD(model.parameters(), 1e-5, momentum=0.9)
    config = lr_find.LRFindConfig(start_lr=1e-5, end_lr=10.0, steps=steps, batch_size=32)
    result = lr_find.lr_find(model, x_train[:n], ds.y_train[:n], opt, config=config)
    t.say(f"LeNet-5, SGD with momentum 0.9, batch 32, up to {steps} steps on {n:,} training images, the rate "
          f"growing from 1e-5 to 10; the sweep ended: {result.stopped} after {len(result.lrs)} steps.")
    picks = np.unique(np.linspace(0, len(result.lrs) - 1, 9).round().astype(int))
    t.table(["step", "learning rate", "batch loss", "smoothed loss"],
            [[i, f"{result.lrs[i]:.2e}", f"{result.losses[i]:.3f}", f"{result.smoothed[i]:.3f}"] for i in picks])
    lowest = int(np.argmin(result.smoothed))
    t.print(f"lowest smoothed loss {result.smoothed[lowest]:.3f} at lr {result.lrs[lowest]:.2e}; "
            f"suggested lr (steepest descent before it): "
            + ("none" if result.suggestion is None else f"{result.suggestion:.2e}"))
    t.fig_dir.mkdir(parents=True, exist_ok=True)
    path = t.fig_dir / "ch14_lr_find.png"
    lr_find.plot_lr_find(result, path, overwrite=True)  # the tutorial's own figure, redrawn each run
    t.print(f"figure saved: {path}")
    t.check_true("the loss first falls: the lowest smoothed loss is below the first one",
                 result.smoothed[lowest] < result.smoothed[0])
    t.check_true("a rate is suggested, at most the rate of the lowest loss (on the descent, not the explosion)",
                 result.suggestion is not None and result.suggestion <= result.lrs[lowest])
    t.check("the sweep puts the model's weights back as they were",
            max(float(np.max(np.abs(model.state_dict()[name] - before[name]))) for name in before), 0.0, tol=0)
    t.say("`minicnn lr-find MODEL --dataset mnist` runs the same sweep from the command line and writes "
          "the PNG. The suggestion is a starting point for --lr, not a guarantee.")


def _step(t):
    t.code(train.train_epoch, start="logits = model.forward(xb)", end="optimizer.zero_grad()")
    t.code(optim.SGD.step)
    t.code(optim.SGD.update)
    ds, (x_train, _) = _mnist()
    core.manual_seed(0)
    model = build("lenet5")
    opt = optim.SGD(model.parameters(), 0.05, momentum=0.9)
    xb, yb = x_train[:64], ds.y_train[:64]
    config = train.FitConfig(epochs=5, batch_size=64, progress=False)  # one batch of 64: one step per epoch
    seen = []
    for epoch in range(config.epochs):
        state = train.train_epoch(model, xb, yb, opt, config, train.EpochState(epoch))
        seen.append(state.loss)
    t.print(f"loss on the same 64 images over {config.epochs} steps (`train_epoch` on them alone): "
            + "  ".join(f"{v:.3f}" for v in seen))
    t.check_true(f"gradient steps lower the loss: {seen[0]:.3f} → {seen[-1]:.3f}", seen[-1] < seen[0])


def _optimisers(t):
    t.code(optim.SGD.update)
    t.code(optim.Adam.update)
    grads = [np.array([1.0, -2.0]), np.array([0.5, -1.0]), np.array([-1.0, 0.5])]  # a fixed sequence
    lr, mu, (b1, b2), eps = 0.1, 0.9, (0.9, 0.999), 1e-8
    sgd_p, adam_p = core.Parameter(np.array([1.0, 1.0])), core.Parameter(np.array([1.0, 1.0]))
    sgd, adam = optim.SGD([sgd_p], lr, momentum=mu), optim.Adam([adam_p], lr, betas=(b1, b2), eps=eps)
    w_sgd, w_adam, v, m, s2 = np.ones(2), np.ones(2), np.zeros(2), np.zeros(2), np.zeros(2)
    rows = []
    for k, g in enumerate(grads, 1):
        for p, opt in ((sgd_p, sgd), (adam_p, adam)):
            p.grad[...] = g
            opt.step()
        v = g if k == 1 else mu * v + g  # by hand, the equations above
        w_sgd = w_sgd - lr * v
        m, s2 = b1 * m + (1 - b1) * g, b2 * s2 + (1 - b2) * g * g
        w_adam = w_adam - lr * (m / (1 - b1**k)) / (np.sqrt(s2 / (1 - b2**k)) + eps)
        if k == 1:
            first_adam = adam_p.data.copy()
        rows.append([k, str(g), np.array2string(sgd_p.data, precision=4), np.array2string(adam_p.data, precision=4)])
        t.check(f"step {k}: SGD.step and Adam.step = the equations, by hand", [sgd_p.data, adam_p.data],
                [w_sgd, w_adam])
    t.table(["t", "gradient g", "w after SGD (μ 0.9)", "w after Adam"], rows)
    t.check(f"Adam's first step moved each weight by lr = {lr}, whatever the gradient's size "
            f"(m̂/√ŝ = g/|g|, up to ε)", np.abs(first_adam - 1.0), lr, tol=1e-8)
    t.say("Momentum keeps going in the direction of past gradients (the third gradient points back, but "
          "v still points forward); Adam divides by a running size of each gradient, so every weight "
          "moves by about the learning rate per step, large gradients or small.")


def _batch_norm(t):
    t.code(F.batch_norm_train, start="axes = _axes(x)", end="return y, x_hat")
    t.code(F.batch_norm_backward, start="axes = _axes(dy)", end="return dx")
    t.code(L.BatchNorm2D.update_running, start="unbiased = var", end="self.running_var =")
    t.code(F.batch_norm_eval, start="x_hat = ", end="return")
    rng = np.random.default_rng(3)
    x = 3.0 + 2.0 * rng.standard_normal((4, 2, 3, 3))  # (N, C, H, W): 4 images, 2 maps, 3x3
    gamma, beta, eps = np.array([1.0, 2.0]), np.array([0.0, -1.0]), 1e-5
    y, x_hat, inv_std, mu, var = F.batch_norm_train(x, gamma, beta, eps)
    t.array("batch mean μ per map", mu)
    t.array("batch variance σ² per map (biased)", var)
    t.check("x̂ has mean 0 and variance 1 per map (over N, H, W)",
            [x_hat.mean(axis=(0, 2, 3)), x_hat.var(axis=(0, 2, 3))], [[0, 0], [1, 1]], tol=1e-4)
    dy = rng.standard_normal(x.shape)
    dx, dgamma, dbeta = F.batch_norm_backward(dy, x_hat, inv_std, gamma)
    h, k_map = 1e-6, (0, 1, 2, 0)
    up, down = x.copy(), x.copy()
    up[k_map] += h
    down[k_map] -= h
    numeric = (np.sum(dy * F.batch_norm_train(up, gamma, beta, eps)[0])
               - np.sum(dy * F.batch_norm_train(down, gamma, beta, eps)[0])) / (2 * h)
    t.check(f"dx at {k_map} = the central difference of Σ dy·y (x̂ depends on every x of its map)",
            dx[k_map], numeric, tol=1e-6)
    t.check("dβ = Σ dy, dγ = Σ dy·x̂ (per map)", [dbeta, dgamma],
            [dy.sum(axis=(0, 2, 3)), (dy * x_hat).sum(axis=(0, 2, 3))])
    layer = L.BatchNorm2D(2).to(np.float64)
    layer.weight.data[...], layer.bias.data[...] = gamma, beta
    t.check("BatchNorm2D in training mode computes the same y", layer(x), y, tol=1e-10)
    m = x.size // x.shape[1]
    t.array("running mean after one batch (momentum 0.1, from 0)", layer.running_mean)
    t.array("running variance (from 1; unbiased: σ²·M/(M−1))", layer.running_var)
    t.check("running = 0.9 · running + 0.1 · batch statistic", [layer.running_mean, layer.running_var],
            [0.1 * mu, 0.9 + 0.1 * var * m / (m - 1)], tol=1e-12)
    layer.eval()
    eval_y = F.batch_norm_eval(x, gamma, beta, layer.running_mean, layer.running_var, eps)
    t.check("eval mode normalises with the running statistics", layer(x), eval_y, tol=1e-10)
    t.check("in eval mode an image's output does not depend on the rest of the batch", layer(x[:1]),
            layer(x)[:1], tol=1e-12)
    layer.train()
    t.check_true("in training mode it does: the same image alone is normalised differently",
                 not np.allclose(layer(x[:2])[:1], y[:1]))


def _train(t):
    t.code(train.fit, start="for epoch in range(start_epoch, config.epochs)", end="run.save(epoch + 1, None)")
    t.code(optim.Adam.step)
    ds, (x_train, x_test) = _mnist()
    n_train, n_val, epochs = (1200, 200, 3) if t.quick else (20000, 5000, 4)
    batch = 16 if t.quick else 64  # quick: more (smaller) steps from few images
    n_test = 1000 if t.quick else len(x_test)
    # held-out validation images come from the END of the training set: never trained on
    subset = data.Dataset("mnist", x_train[:n_train], ds.y_train[:n_train], x_test[:n_test], ds.y_test[:n_test],
                          ds.class_names)
    val = (x_train[-n_val:], ds.y_train[-n_val:])
    core.manual_seed(0)
    model = build("lenet5")
    opt = optim.Adam(model.parameters(), 1e-3)
    t.say(f"LeNet-5 ({model.num_parameters():,} parameters), Adam lr 0.001, batch {batch}, {epochs} epochs over "
          f"{n_train:,} training images; after every epoch `fit` measures the loss/accuracy on {n_val:,} held-out "
          "images." + (" (--quick: a tiny subset; run without --quick for the real thing.)" if t.quick else ""))
    start = time.perf_counter()
    config = train.FitConfig(epochs=epochs, batch_size=batch, seed=0, progress=not t.quick)
    result = train.fit(model, subset, opt, config, val=val, log=None)
    seconds = time.perf_counter() - start
    history = result.history
    t.table(["epoch", "train loss", "train acc", "val loss", "val acc", "images/s"],
            [[h["epoch"], f"{h['train_loss']:.4f}", f"{h['train_acc']:.2%}", f"{h['val_loss']:.4f}",
              f"{h['val_acc']:.2%}", f"{h['images_per_s']:,.0f}"] for h in history])
    test = result.test
    images = epochs * n_train
    t.say(f"{images:,} training images in {seconds:.1f} s on this machine (with validation). Test accuracy on "
          f"{n_test:,} test images: {test.accuracy:.2%}.")
    target = 0.50 if t.quick else 0.97  # quick: ~225 small steps, a smoke test far above the 10% of guessing
    t.check_true(f"test accuracy {test.accuracy:.2%} ≥ {target:.0%}", test.accuracy >= target)
    t.check_true(f"the held-out loss fell: {history[0]['val_loss']:.3f} → {history[-1]['val_loss']:.3f}",
                 history[-1]["val_loss"] < history[0]["val_loss"])
    _CACHE["history"], _CACHE["model"] = history, model


def _train_step() -> int:
    """The number of the step that trains LeNet-5 (steps 5 and 7 reuse its network)."""
    return next(k for k, step in enumerate(STEPS, 1) if step.run is _train)


def _curves(t):
    t.code(train.plot_curves)
    history = _CACHE.get("history")
    if history is None:
        t.say(f"(the curves come from step {_train_step()}; training it now)")
        _train(t)
        history = _CACHE["history"]
    t.fig_dir.mkdir(parents=True, exist_ok=True)
    path = t.fig_dir / f"ch{t.chapter:02d}_curves.png"
    train.plot_curves(history, path, overwrite=True)  # the tutorial's own figure, redrawn each run
    t.print(f"figure saved: {path}")
    gaps = [h["val_loss"] - h["train_loss"] for h in history]
    best = int(np.argmin([h["val_loss"] for h in history]))
    t.say("How to read them. The training loss is averaged over an epoch's batches while the weights were "
          "changing; the validation loss is measured after the epoch, on images the network never saw. "
          f"Here the validation loss is lowest at epoch {history[best]['epoch']}. The gap "
          "val loss − train loss is " + ", ".join(f"{g:+.3f}" for g in gaps[-3:]) + " over the last three "
          "points: when validation keeps up with training the network is still learning what generalises; "
          "a validation loss that rises while the training loss falls is overfitting — stop early (the "
          "lecture's first remedy) or regularise (weight decay, chapter 13's frequency truncation).")
    t.check_true("the curves have one point per epoch, all finite",
                 len(history) >= 2 and all(np.isfinite(list(h.values())).all() for h in history))
    t.say("Chapter 15 makes a run overfit on purpose and applies both remedies.")


def _filters(t):
    t.code(visualize.feature_maps, start="def recorder(name", end="return recorded")
    model = _CACHE.get("model")
    if model is None:
        t.say(f"(the trained network comes from step {_train_step()}; training it now)")
        _train(t)
        model = _CACHE["model"]
    ds, (_, x_test) = _mnist()
    first = visualize.filters(visualize.conv_layers(model)[0][1])  # (6, 1, 5, 5)
    maps = visualize.feature_maps(model, x_test[:1])
    for k in range(2):
        t.blocks(f"learned filter {k} of the first layer (5x5, mid = 0)", first[k, 0],
                 lo=-np.abs(first).max(), hi=np.abs(first).max())
    t.blocks("test image 0", ds.x_test[0, 0])
    t.blocks("its feature map 0 in the first layer (28x28)", maps[0][1][0, 0])
    conv0 = model[0]
    t.check("feature map = conv2d(image, learned filters) + bias, as the layer computes it", maps[0][1],
            F.conv2d(x_test[:1].astype(np.float64), first, conv0.bias.data.astype(np.float64), padding=2), tol=1e-4)
    t.check_true("training changed the filters: they are no longer the random start",
                 bool(np.abs(first - _initial_first_filters()).max() > 1e-3))
    paths = visualize.save_filters(model, t.fig_dir / "ch14_lenet5", overwrite=True)  # redrawn each run
    paths.append(visualize.save_feature_maps(model, x_test[:1], t.fig_dir / "ch14_lenet5", shown=ds.x_test[0],
                                             title="LeNet-5 after chapter 14's training: MNIST test image 0",
                                             overwrite=True))
    for path in paths:
        t.print(f"figure saved: {path}")
    t.say("The same pictures for any checkpoint: `minicnn train lenet5 --out run/` then "
          "`minicnn show run/checkpoint.npz digit.png --out pictures/`.")


def _initial_first_filters() -> np.ndarray:
    core.manual_seed(0)
    return build("lenet5")[0].weight.data.astype(np.float64)


STEPS = [
    Step("The data", """
        MNIST: 28x28 grey digits, loaded from the original files (verified by checksum) and standardised
        with the training set's mean and standard deviation, as `minicnn train` does.""",
         "x ← (x − mean_train) / std_train", _data),
    Step("The loss: softmax cross-entropy", """
        The network outputs 10 scores (logits) per image; softmax turns them into probabilities and the loss
        is the negative log-probability of the right class. Its gradient is remarkably simple.""",
         "L = −(1/N) Σ_n log softmax(z_n)[y_n]        dL/dz = (softmax(z) − onehot(y)) / N", _loss),
    Step("Label smoothing", """
        One-hot targets ask for probability 1 on the right class, which softmax only reaches with infinite
        logits. Label smoothing (Szegedy et al., "Rethinking the Inception architecture for computer
        vision", 2016) moves a little of the target onto every class, so the loss has its minimum at a
        finite confidence. The gradient keeps its simple form.""",
         "t = (1 − e)·onehot(y) + e/K        L = −(1/N) Σ_n Σ_k t_nk log softmax(z_n)_k\n"
         "dL/dz = (softmax(z) − t) / N", _label_smoothing),
    Step("A segmentation head starts at the class prior", """
        In a segmentation most pixels are background. An untrained net predicts every class at about 1/K,
        so its first steps only learn the class shares, and by then its features may say no more than
        "object or not". Starting the per-pixel head's bias at the log of each class's share (the prior
        initialisation of Lin et al., "Focal loss for dense object detection", 2017) makes the softmax
        start at those shares.""",
         "pi_k = (count_k + 1) / (M + K)    b_k = log pi_k    w = 0: softmax(b) = pi", _prior_bias),
    Step("One step of gradient descent", """
        Forward (every layer caches what backward needs), loss, backward (every parameter's gradient is
        accumulated), then the optimizer updates the weights and the gradients are reset.""",
         "v ← μ v + ∇L(w)        w ← w − η v        (SGD with momentum μ = 0.9, learning rate η)", _step),
    Step("The optimisers: SGD with momentum and Adam", """
        SGD with momentum keeps a velocity, a running sum of gradients decayed by μ; Adam (Kingma and Ba,
        "Adam: a method for stochastic optimization", 2015) keeps running means of the gradient and of
        its square, corrects their start at zero, and divides one by the root of the other.""",
         "SGD:  v ← μ v + g  (v = g at the first step)      w ← w − η v\n"
         "Adam: m ← β₁ m + (1 − β₁) g      s ← β₂ s + (1 − β₂) g²    (t: step)\n"
         "      m̂ = m / (1 − β₁ᵗ)      ŝ = s / (1 − β₂ᵗ)      w ← w − η m̂ / (√ŝ + ε)", _optimisers),
    Step("Finding a learning rate: the range test", """
        Which learning rate? Smith ("Cyclical learning rates for training neural networks", 2017) trains
        briefly while the rate grows exponentially, and watches the loss: flat (too small), falling, then
        exploding (too large). A good rate sits where the smoothed loss falls fastest.""",
         "lr_i = lr_start · (lr_end / lr_start)^(i / (steps − 1))\n"
         "suggestion = the lr of the steepest descent of the smoothed loss against log lr", _lr_find),
    Step("Batch normalisation: train and eval", """
        Batch normalisation (Ioffe and Szegedy, 2015) standardises each map over the batch and its pixels,
        then scales and shifts it by learned γ, β. Backward must account for μ and σ depending on every
        value of the map. Training keeps running averages of μ and σ², and evaluation uses those instead
        of the batch's, so a test image's output does not depend on the other images.""",
         "x̂ = (x − μ) / √(σ² + ε)      y = γ x̂ + β    (over N, H, W)\n"
         "dβ = Σ dy      dγ = Σ dy·x̂\n"
         "dx = γ / √(σ² + ε) · (dy − mean(dy) − x̂ · mean(dy·x̂))\n"
         "running ← 0.9 · running + 0.1 · batch's      (σ²: unbiased, · M/(M − 1))\n"
         "eval:  x̂ = (x − running μ) / √(running σ² + ε)",
         _batch_norm),
    Step("Training LeNet-5", """
        The same step, over and over, on shuffled mini-batches, with a held-out validation set measured along
        the way and the test set only at the end.""",
         "epoch = one pass over the training set;  accuracy = mean[argmax z = y]", _train),
    Step("Reading the curves", """
        Loss and accuracy, training and validation, against epochs.""",
         "generalisation gap = validation loss − training loss", _curves),
    Step("What the first layer learned", """
        The lecture shows AlexNet's learned first-layer filters. Here are LeNet-5's, after the training
        above, and the feature maps they produce for one test digit: each map is the image correlated
        with one filter — bright where the image looks like that filter.""",
         "feature map t = Σ_s K(·, ·, s, t) ⋆ U(·, ·, s) + b_t        (⋆ = correlation, chapter 2)", _filters),
]
