"""Chapter 15: generalisation — overfitting on a real curve, early stopping, weight decay, bagging."""

from __future__ import annotations

import numpy as np
from scipy.special import softmax

from minicnn import core, optim
from minicnn.app import train
from minicnn.data import Dataset
from minicnn.models import build

from ._data import small_dataset
from ._runner import Step

TITLE = "Generalisation: early stopping, weight decay, bagging"
SUMMARY = "a run that overfits, the same run stopped early or with weight decay, and averaged models, measured"

_CACHE: dict = {}
N_TRAIN = 300  # few training images: LeNet-5 memorises them and the validation loss turns up
EPOCHS = 25
WEIGHT_DECAY = 0.01


def _split(t) -> tuple[Dataset, tuple[np.ndarray, np.ndarray]]:
    """300 MNIST training images, held-out validation images (from the training set), and test images."""
    n_val, n_test = _sizes(t)
    ds = small_dataset("mnist", N_TRAIN + n_val, n_test)
    val = (ds.x_train[N_TRAIN:], ds.y_train[N_TRAIN:])
    small = Dataset("mnist", ds.x_train[:N_TRAIN], ds.y_train[:N_TRAIN], ds.x_test, ds.y_test, ds.class_names)
    return small, val


def _sizes(t) -> tuple[int, int]:
    """Validation and test images: --quick measures on fewer."""
    return (400, 1000) if t.quick else (1000, 5000)


def _run(t, weight_decay: float) -> dict:
    """LeNet-5, SGD lr 0.01 momentum 0.9, batch 32, on the 300 images; `KeepBest` keeps the weights of the
    epoch with the lowest validation loss aside (early stopping's checkpoint)."""
    key = ("run", weight_decay, t.quick)
    if key in _CACHE:
        return _CACHE[key]
    ds, val = _split(t)
    core.manual_seed(0)
    model = build("lenet5")
    best = train.KeepBest()
    opt = optim.SGD(model.parameters(), 0.01, momentum=0.9, weight_decay=weight_decay)
    result = train.fit(model, ds, opt, train.FitConfig(epochs=EPOCHS, batch_size=32, seed=0, progress=False),
                       val=val, callbacks=[best], log=None)
    _CACHE[key] = {"history": result.history, "best_epoch": best.epoch, "best_state": best.state,
                   "final_test": result.test, "model": model, "test": (ds.x_test, ds.y_test)}
    return _CACHE[key]


def _overfit(t):
    _CACHE.clear()  # this step trains (and shows) the run, even when the chapter ran before in this process
    t.code(train.fit, start="row = run.record(state", end="callback.on_epoch_end(epoch, model, row)")
    t.code(train.KeepBest)
    run = _run(t, 0.0)
    h = run["history"]
    t.say(f"LeNet-5 on only {N_TRAIN} MNIST images for {EPOCHS} epochs (SGD, lr 0.01, momentum 0.9, batch 32); "
          f"after every epoch `fit` measures the validation loss on {_sizes(t)[0]:,} other training images "
          "(`run.record`: `evaluate` on the held-out split, a row of the table below), then calls each "
          "callback's on_epoch_end: `KeepBest` copies the weights whenever that loss is the lowest so far.")
    t.table(["epoch", "train loss", "val loss", "train acc", "val acc"],
            [[r["epoch"], f"{r['train_loss']:.3f}", f"{r['val_loss']:.3f}", f"{r['train_acc']:.1%}",
              f"{r['val_acc']:.1%}"] for r in h if r["epoch"] % 3 == 1 or r["epoch"] in (run["best_epoch"], EPOCHS)])
    best = run["best_epoch"]
    low, last = h[best - 1]["val_loss"], h[-1]["val_loss"]
    t.check("KeepBest's epoch is the one with the lowest validation loss", best,
            1 + int(np.argmin([r["val_loss"] for r in h])))
    t.check_true(f"overfitting: the validation loss was lowest at epoch {best} ({low:.3f}) and ended at {last:.3f}, "
                 f"while the training loss fell from {h[best - 1]['train_loss']:.3f} to {h[-1]['train_loss']:.3f}",
                 best < EPOCHS and last > 1.1 * low and h[-1]["train_loss"] < h[best - 1]["train_loss"])
    _plot(t, [run])


def _plot(t, runs: list[dict]) -> None:
    """The validation curve of each run (the first one's training curve too), the early stop marked."""
    plain = runs[0]
    plt = t.pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    epochs = [r["epoch"] for r in plain["history"]]
    ax.plot(epochs, [r["train_loss"] for r in plain["history"]], "o-", ms=3, color="tab:blue", label="train")
    ax.plot(epochs, [r["val_loss"] for r in plain["history"]], "s-", ms=3, color="tab:orange", label="validation")
    for decayed in runs[1:]:
        ax.plot(epochs, [r["val_loss"] for r in decayed["history"]], "s--", ms=3, color="tab:green",
                label=f"validation, weight decay {WEIGHT_DECAY:g}")
    ax.axvline(plain["best_epoch"], color="0.5", lw=1, ls=":")
    ax.annotate("early stop here\n(lowest validation loss)", (plain["best_epoch"], plain["history"][0]["val_loss"]),
                xytext=(4, -4), textcoords="offset points", fontsize=8, va="top")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy loss")
    remedies = "overfitting and two remedies" if len(runs) > 1 else "overfitting, and where to stop"
    ax.set_title(f"LeNet-5 on {N_TRAIN} MNIST images: {remedies}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    t.save_figure(fig, "overfitting")


def _early_stop(t):
    t.code(train.evaluate)
    run = _run(t, 0.0)
    t.say("Early stopping keeps the weights of the epoch with the lowest validation loss (in practice: stop "
          "once it has not improved for a few epochs, then go back to that checkpoint). `KeepBest` kept a copy "
          f"of epoch {run['best_epoch']}'s weights during the run; loaded back, both are scored on the test split:")
    model, (x_test, y_test) = run["model"], run["test"]
    final = train.evaluate(model, x_test, y_test)
    last_weights = model.state_dict()
    model.load_state_dict(run["best_state"])
    best = train.evaluate(model, x_test, y_test)
    model.load_state_dict(last_weights)
    t.check("the last weights score as fit's own test result", final.loss, run["final_test"].loss)
    t.table(["weights", "test loss", "test accuracy"],
            [[f"after epoch {EPOCHS} (last)", f"{final.loss:.3f}", f"{final.accuracy:.2%}"],
             [f"epoch {run['best_epoch']} (early stop)", f"{best.loss:.3f}", f"{best.accuracy:.2%}"]])
    t.check_true(f"the early-stopped weights have the lower test loss: {best.loss:.3f} < {final.loss:.3f}",
                 best.loss < final.loss)
    if best.accuracy < final.accuracy:
        t.say(f"Honest detail: the test ACCURACY went the other way here ({best.accuracy:.1%} vs "
              f"{final.accuracy:.1%}). The late epochs still get a few more images right, but grow so confident "
              "that their mistakes cost far more loss. Which one to stop on is a choice: early stopping on the "
              "validation accuracy instead would keep later weights.")


def _weight_decay(t):
    t.code(optim.SGD.update)
    plain, decayed = _run(t, 0.0), _run(t, WEIGHT_DECAY)
    t.say(f"Weight decay adds λw to every gradient (λ = {WEIGHT_DECAY:g}): each step shrinks the weights a little "
          "towards 0, so fitting the 300 images exactly costs something. The same run with it:")
    rows = []
    for name, run in (("no weight decay", plain), (f"weight decay {WEIGHT_DECAY:g}", decayed)):
        h = run["history"]
        rows.append([name, f"{h[-1]['train_loss']:.3f}", f"{h[-1]['val_loss']:.3f}", f"{run['final_test'].loss:.3f}",
                     f"{run['final_test'].accuracy:.2%}"])
    t.table(["last epoch", "train loss", "val loss", "test loss", "test acc"], rows)
    a, b = plain["history"][-1]["val_loss"], decayed["history"][-1]["val_loss"]
    t.check_true(f"with weight decay the validation loss ends lower: {b:.3f} < {a:.3f}", b < a)
    _plot(t, [plain, decayed])


def _bagging(t):
    t.code(train.predict_logits)
    members, n_boot, epochs = (3, 400, 2) if t.quick else (5, 2000, 3)
    ds = small_dataset("mnist", n_boot, 1000 if t.quick else 5000)
    rng = np.random.default_rng(0)
    t.say(f"Bagging: train {members} LeNet-5s, each on its own bootstrap sample ({n_boot:,} draws with replacement "
          f"from the same {n_boot:,} images, so each sees about 63% of them), {epochs} epochs of Adam (lr 0.002), "
          "then average their predicted probabilities.")
    probs, rows = [], []
    for k in range(members):
        pick = rng.choice(n_boot, n_boot, replace=True)
        sample = Dataset("mnist", ds.x_train[pick], ds.y_train[pick], ds.x_test, ds.y_test, ds.class_names)
        core.manual_seed(k)
        model = build("lenet5")
        result = train.fit(model, sample, optim.Adam(model.parameters(), 2e-3),
                           train.FitConfig(epochs=epochs, batch_size=32, seed=k, progress=False), log=None)
        probs.append(softmax(train.predict_logits(model, ds.x_test), axis=1))
        rows.append([f"model {k + 1} ({len(np.unique(pick)):,} distinct images)", f"{result.test.accuracy:.2%}"])
    accs = [float(np.mean(p.argmax(axis=1) == ds.y_test)) for p in probs]
    bagged = float(np.mean(np.mean(probs, axis=0).argmax(axis=1) == ds.y_test))
    rows.append([f"average of the {members}", f"{bagged:.2%}"])
    t.table(["model", "test accuracy"], rows)
    t.check_true(f"the average ({bagged:.2%}) beats every single model (best {max(accs):.2%}, mean "
                 f"{np.mean(accs):.2%})", bagged > max(accs))


STEPS = [
    Step("A run that overfits", """
        With few training images a network can memorise them: the training loss keeps falling while the
        loss on held-out images turns up. The validation curve, measured after every epoch, shows when.""",
         "overfitting: L_train ↓ while L_val ↑        (generalisation gap = L_val − L_train)", _overfit),
    Step("Remedy 1: early stopping", """
        The lecture's first remedy: stop training where the validation loss is lowest, and keep those
        weights. It costs nothing but a validation set.""",
         "w* = w(e*),   e* = argmin_e L_val(w(e))", _early_stop),
    Step("Remedy 2: weight decay", """
        L2 regularisation adds (λ/2)‖w‖² to the loss, i.e. λw to the gradient: large weights, which
        memorising needs, are penalised.""",
         "L'(w) = L(w) + (λ/2)‖w‖²        ∇L' = ∇L + λw        w ← w − η(∇L + λw)", _weight_decay),
    Step("Bagging: averaged models beat each one", """
        Models trained on different bootstrap samples make partly different mistakes; averaging their
        predictions cancels some of them. Measured here on MNIST.""",
         "p(y | x) = (1/M) Σ_m softmax(f_m(x))        f_m trained on a bootstrap sample D_m", _bagging),
]
