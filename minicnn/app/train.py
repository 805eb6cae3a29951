"""The training loop: `train_epoch`, `evaluate`, `fit`.

One step of mini-batch gradient descent, exactly as the lecture writes it:

    logits = model.forward(x_batch)                  # forward, each layer caches what backward needs
    loss   = L(logits, y_batch)                      # mean softmax cross-entropy over the batch
    model.backward(dL/dlogits)                       # every p.grad += dL/dp
    optimizer.step(); optimizer.zero_grad()          # p <- p - lr * update(p.grad)

`fit` adds what a real run needs: a learning-rate schedule (a function of the step count),
validation after every epoch (or every K batches), callbacks (per-batch and per-epoch hooks, e.g. a
frequency truncation schedule; `EarlyStopping` and `BestCheckpoint` ready made), a lock on the run
folder, a step budget for quick runs, metrics (CSV, JSON, PNG curves) and an atomic checkpoint after
every epoch in `out_dir`, exact resumption (`resume=True` continues so that an interrupted and
resumed run ends with the same weights as an uninterrupted one), Ctrl-C (saves a checkpoint at the
current batch and returns), and a NaN/infinite loss (stops before the bad step, keeps the last good
checkpoint).

The one training loop: `minicnn train`, the experiments and the tutorials all call `fit` (or, for
one epoch by hand, `train_epoch`). The plain settings of a run are one `FitConfig` (as nanoGPT's
GPTConfig); the objects it uses (schedule, augmentation, validation split, callbacks) are arguments:

    fit(model, dataset, optimizer, FitConfig(epochs=3, batch_size=64, out_dir="runs/a"), schedule=...)
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from minicnn.core import Layer, Sequential
from minicnn.data.batching import Augment, iterate_batches, num_batches
from minicnn.files import remove_unfinished, write_atomic
from minicnn.losses import SoftmaxCrossEntropy

from . import checkpoint as ckpt_io
from .runlock import RunLock
from .segmentation import SegmentationScores, confusion_matrix

CHECKPOINT_NAME = "checkpoint.npz"
BEST_NAME = "best.npz"  # `BestCheckpoint`'s file in a run folder (minicnn train)
EVAL_BATCH = 500
POSTFIX_EVERY = 10  # progress-bar text is refreshed every this many batches (it costs time)
# The bar: "epoch 2/10 |█████     | 422/938 <00:15, loss 0.123 acc 97.1% 1,234 img/s": ~67 columns of
# text for 100 epochs and 12,345 img/s, so at 80 columns the bar keeps >= 13 cells, and the speed is whole
# up to 5-digit epoch counts (then the bar shrinks first).
BAR_FORMAT = "{desc} |{bar}| {n_fmt}/{total_fmt} <{remaining}{postfix}"
STOPPED_EARLY = "stopped early"  # FitResult.status when a callback (EarlyStopping) ended the run


@dataclass(frozen=True)
class FitConfig:
    """The plain settings of a `fit` run (the objects it uses — model, data, optimizer, schedule,
    augmentation, callbacks — are `fit`'s arguments). Checked when made; frozen, so a config that was
    valid stays valid (`dataclasses.replace(config, epochs=5)` makes a changed copy).
    """

    epochs: int  # passes over the training set (on resume: the total, which may exceed the saved run's)
    batch_size: int = 64  # images per gradient step
    seed: int = 0  # the data stream: epoch e's order is seeded with (seed, e), its batch b's augmentation (seed, e, b)
    out_dir: str | Path | None = None  # run folder: checkpoint.npz after every epoch, metrics files; None: no files
    resume: bool = False  # continue from out_dir/checkpoint.npz when it exists (same seed and batch_size)
    eval_every: int | None = None  # also validate after every this many batches inside an epoch
    max_steps: int | None = None  # end the run (status "done") once optimizer.steps reaches this: a quick budget
    input_grad: bool = False  # False: the first layer skips dL/d(image), which training never uses (~15% of a
    #                           LeNet-5 step); True keeps it
    progress: bool = True  # a progress bar (on stderr) during each epoch

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            _check_int(name, getattr(self, name), low=1)
        _check_int("seed", self.seed, low=0)
        for name in ("eval_every", "max_steps"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), low=1, none=True)
        for name in ("resume", "input_grad", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"FitConfig: expected {name} True or False, got {getattr(self, name)!r}")
        if self.out_dir is not None and not isinstance(self.out_dir, str | Path):
            raise ValueError(f"FitConfig: expected out_dir a path (str or Path) or None, got {self.out_dir!r}")
        if self.resume and self.out_dir is None:
            raise ValueError("FitConfig: expected an out_dir to resume from with resume=True, got out_dir=None")


def _check_int(name: str, value, *, low: int, none: bool = False) -> None:
    """`value` is an int >= low (a bool is not), else a ValueError naming the FitConfig field."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        allowed = f"an integer >= {low}" + (" or None" if none else "")
        raise ValueError(f"FitConfig: expected {name} {allowed}, got {value!r}")


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; raised before the step that would have used it."""


def non_finite_parameters(model: Layer) -> list[str]:
    """Names of the parameters and buffers holding NaN or infinity (empty: all finite)."""
    arrays = [(name, p.data) for name, p in model.named_parameters()] + list(model.named_buffers())
    return [name for name, value in arrays  # read in place: no copy of the model (state_dict copies)
            if np.issubdtype(np.asarray(value).dtype, np.floating) and not np.all(np.isfinite(value))]


@dataclass
class EpochState:
    """Where an epoch is and what it has seen so far (running sums over completed batches).

    `batch` is the next batch to run; a checkpoint taken mid-epoch stores this whole object.
    `seen` counts images; `correct` counts right labels: images for a classifier, pixels for a
    segmentation (labels (B, H, W)), where `pixels` = H * W labels per image (1 for a classifier),
    so accuracy = correct / (seen * pixels) is the pixel accuracy.
    """

    epoch: int
    batch: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    pixels: int = 1

    def add_batch(self, loss: float, logits: np.ndarray, labels: np.ndarray, seconds: float) -> None:
        """Count one completed batch: its mean `loss` (over images, or over pixels: the same mean when
        every image has H * W pixels), logits (B, K) or (B, K, H, W), labels (B,) or (B, H, W), time of
        its step."""
        self.seconds += seconds
        self.loss_sum += loss * len(labels)
        self.correct += int((logits.argmax(axis=1) == labels).sum())
        self.seen += len(labels)
        self.pixels = int(np.prod(labels.shape[1:], dtype=np.int64))  # 1 for (B,) labels
        self.batch += 1

    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.seen, 1)

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.seen * self.pixels, 1)

    @property
    def images_per_s(self) -> float:
        return self.seen / self.seconds if self.seconds > 0 else 0.0


@dataclass
class EvalResult:
    """Mean loss, accuracy and the predicted class of every example (of every pixel for a segmentation:
    predictions (N, H, W), accuracy the pixel accuracy, and `scores` its Dice/IoU per class)."""

    loss: float
    accuracy: float
    predictions: np.ndarray
    scores: SegmentationScores | None = None

    @property
    def correct(self) -> int:
        """Right labels: images, or pixels for a segmentation."""
        return int(round(self.accuracy * self.predictions.size))


@dataclass
class FitResult:
    """What `fit` did: status "done", "stopped early", "interrupted" or "diverged"; `history`, the
    rows of the run (one per epoch, plus eval_every's; the rows of metrics.csv); the final test result
    (for "done" and "stopped early")."""

    status: str
    history: list[dict[str, float]] = field(default_factory=list)
    test: EvalResult | None = None
    seconds: float = 0.0
    checkpoint: Path | None = None
    message: str = ""

    @property
    def images_per_s(self) -> float:
        """Training images per second over the whole run (time inside training steps only)."""
        images = sum(h["images_per_s"] * h["train_seconds"] for h in self.history)
        return images / max(sum(h["train_seconds"] for h in self.history), 1e-9)


class _StopFlag:
    """Ctrl-C sets the flag; the loop checks it between batches (never mid-update). A second Ctrl-C
    raises KeyboardInterrupt at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> _StopFlag:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: leave Ctrl-C alone
            self._previous = None
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class Callback:
    """Hooks `fit` (and `train_epoch`) call; override any of them (the defaults do nothing).

    on_fit_start(model, history)      once, before training: history = the rows so far (those of the
                                      checkpoint on resume, else empty), so a callback can rebuild
                                      its state and a resumed run decides as an uninterrupted one
    on_batch_start(step, model)       before the forward pass of each batch, after the learning rate
                                      is set; step = optimizer.steps (0 for the first step of a fresh
                                      optimizer; restored on resume)
    on_batch_end(step, model, state)  after the optimizer step; state = the epoch's EpochState so far
    on_epoch_end(epoch, model, row)   after the epoch's validation (epoch from 0; row = its history
                                      row), before its checkpoint is written

    A callback that sets `self.should_stop = True` (in on_fit_start or on_epoch_end) ends the run
    after that epoch's checkpoint, with status "stopped early" and `self.stop_reason` as the message.
    A callback with a `monitor` attribute names the history column it reads ("val_loss"); `fit`
    refuses it before training when the rows have no such column (no `val` split: they say "test_").
    """

    should_stop = False
    stop_reason = ""

    def on_fit_start(self, model: Layer, history: list[dict[str, float]]) -> None:
        pass

    def on_batch_start(self, step: int, model: Layer) -> None:
        pass

    def on_batch_end(self, step: int, model: Layer, state: EpochState) -> None:
        pass

    def on_epoch_end(self, epoch: int, model: Layer, row: dict[str, float]) -> None:
        pass


def first_layer(model: Layer) -> Layer:
    """The layer that sees the input images: the first leaf down a chain of Sequentials."""
    while isinstance(model, Sequential) and len(model):
        model = model[0]
    return model


def train_epoch(model: Layer, x: np.ndarray, y: np.ndarray, optimizer, config: FitConfig, state: EpochState, *,
                schedule: Callable[[int], float] | None = None, augment: Augment | None = None,
                callbacks: Sequence[Callback] = (), loss_fn=None,
                stop: Callable[[], bool] | None = None) -> EpochState:
    """Run epoch `state.epoch` of mini-batch training from batch `state.batch`; return `state`, updated.

    x (N, C, H, W) float32, y (N,) int labels (or (N, H, W), a class per pixel, for a segmentation model
    whose logits are (B, K, H, W): the loss is per pixel, the accuracy the pixel accuracy). Batches come from
    `iterate_batches(x, y, config.batch_size, seed=config.seed, epoch=state.epoch, start=state.batch)`.
    `state` is `EpochState(epoch)` for a fresh epoch, or a checkpoint's for a partly done one; it is
    updated in place after every batch (its sums cover the completed batches). Before each step the
    learning rate is set to `schedule(optimizer.steps)` when a schedule is given; then every callback's
    `on_batch_start`, and after the step its `on_batch_end`. `stop()` is polled after every batch; when
    it returns True the epoch ends early with `state.interrupted = True`. A NaN/inf loss raises
    NonFiniteLossError before backward and step, so the weights stay those of the last finite step.
    From `config`: batch_size, seed, progress (a bar, cleared when the epoch ends), input_grad (False:
    the model's first layer skips dL/d(image) for this epoch, see `FitConfig`) and epochs (the bar's
    "epoch 2/3").
    """
    loss_fn = loss_fn or SoftmaxCrossEntropy()
    epoch, state.interrupted = state.epoch, False
    model.train()
    total = num_batches(len(x), config.batch_size)
    bar = progress_bar(total, state.batch, f"epoch {epoch + 1}/{config.epochs}", config.progress)
    with bar, _image_gradient(model, config.input_grad):
        for b, xb, yb in iterate_batches(x, y, config.batch_size, seed=config.seed, epoch=epoch, start=state.batch,
                                         augment=augment):
            t0 = time.perf_counter()
            if schedule is not None:
                optimizer.lr = schedule(optimizer.steps)
            for callback in callbacks:
                callback.on_batch_start(optimizer.steps, model)
            logits = model.forward(xb)
            loss = loss_fn.forward(logits, yb)
            if not math.isfinite(loss):
                raise NonFiniteLossError(f"the loss became {loss} at epoch {epoch + 1}, batch {b + 1} "
                                         f"(learning rate {optimizer.lr:g})")
            model.backward(loss_fn.backward())
            optimizer.step()
            optimizer.zero_grad()
            state.add_batch(loss, logits, yb, time.perf_counter() - t0)
            for callback in callbacks:
                callback.on_batch_end(optimizer.steps, model, state)
            bar.update(1)
            if b % POSTFIX_EVERY == 0 or state.batch == total:
                bar.set_postfix_str(f"loss {state.loss:.3f} acc {state.accuracy:.1%} "
                                    f"{state.images_per_s:,.0f} img/s", refresh=False)
            if stop is not None and stop():
                state.interrupted = state.batch < total
                break
    return state


def progress_bar(total: int, initial: int, desc: str, wanted: bool, file=None, ncols: int | None = None):
    """The epoch's tqdm bar on `file` (default stderr): shown only when `wanted` and `file` is a
    terminal (a log file gets no carriage-return updates), as wide as the terminal (`ncols` fixes
    the width), laid out by BAR_FORMAT so that the bar and img/s stay visible at 80 columns."""
    from tqdm import tqdm

    file = file if file is not None else sys.stderr
    shown = wanted and (ncols is not None or _is_terminal(file))
    return tqdm(total=total, initial=initial, desc=desc, unit="batch", disable=not shown, leave=False,
                dynamic_ncols=ncols is None, ncols=ncols, file=file, bar_format=BAR_FORMAT)


def _is_terminal(file) -> bool:
    try:
        return file.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False


@contextmanager
def _image_gradient(model: Layer, wanted: bool) -> Iterator[None]:
    """Within: the model's first layer computes dL/d(image) only if `wanted` (when it has the
    `input_grad` switch, as the convolutions do); its own setting is restored afterwards."""
    first = first_layer(model)
    saved = getattr(first, "input_grad", None)
    if not wanted and saved is not None:
        first.input_grad = False
    try:
        yield
    finally:
        if saved is not None:
            first.input_grad = saved


def predict_logits(model: Layer, x: np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """Logits (N, K) of the model in eval mode (its previous mode is restored afterwards)."""
    was_training = model.training
    model.eval()
    try:
        return np.concatenate([model.forward(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    finally:
        model.train(was_training)


def evaluate(model: Layer, x: np.ndarray, y: np.ndarray, batch_size: int = EVAL_BATCH,
             loss_fn=None) -> EvalResult:
    """Mean loss and accuracy of the model (eval mode: no dropout, BatchNorm running statistics).
    Labels y (N,) score a classifier; labels y (N, H, W) a segmentation (`evaluate_segmentation`)."""
    loss_fn = loss_fn or SoftmaxCrossEntropy()
    if np.ndim(y) == 3:
        return evaluate_segmentation(model, x, y, batch_size, loss_fn)
    logits = predict_logits(model, x, batch_size)
    loss = loss_fn.forward(logits, y)
    predictions = logits.argmax(axis=1)
    return EvalResult(loss, float((predictions == y).mean()), predictions)


def evaluate_segmentation(model: Layer, x: np.ndarray, y: np.ndarray, batch_size: int = EVAL_BATCH,
                          loss_fn=None) -> EvalResult:
    """Per-pixel scores of a segmentation model: x (N, C, H, W), labels y (N, H, W) in [0, K), the model's
    logits (N, K, H, W). Batch by batch (the logits of a whole test set would be N*K*H*W floats):

        loss = sum_b loss_b * B_b / N   (each batch's mean loss weighted by its images: for cross-entropy
                                         exactly the mean over all N*H*W pixels; for the Dice loss the
                                         mean of the batches' Dice losses)
        C    = sum_b confusion(pred_b, y_b)   -> accuracy = trace C / sum C (pixel accuracy), scores C

    predictions (N, H, W) int64."""
    loss_fn = loss_fn or SoftmaxCrossEntropy()
    was_training = model.training
    model.eval()
    loss_sum, confusion, predictions = 0.0, None, np.empty(np.shape(y), np.int64)
    try:
        for i in range(0, len(x), batch_size):
            logits = model.forward(x[i:i + batch_size])  # (B, K, H, W)
            yb = y[i:i + batch_size]
            loss_sum += loss_fn.forward(logits, yb) * len(yb)
            predictions[i:i + batch_size] = logits.argmax(axis=1)
            part = confusion_matrix(predictions[i:i + batch_size], yb, logits.shape[1])
            confusion = part if confusion is None else confusion + part
    finally:
        model.train(was_training)
    scores = SegmentationScores(confusion)
    return EvalResult(loss_sum / max(len(y), 1), scores.pixel_accuracy, predictions, scores)


def _format_seconds(seconds: float) -> str:
    minutes, s = divmod(int(round(seconds)), 60)
    return f"{minutes}m{s:02d}s" if minutes else f"{seconds:.1f}s"


def write_metrics(out_dir: Path, history: list[dict[str, float]], summary: dict[str, Any] | None = None,
                  curves: bool = True, overwrite: bool = False) -> None:
    """metrics.csv (one row per epoch), metrics.json (history + summary) and, with `curves`,
    curves.png in `out_dir`. The rows' columns name the split they scored (see `row_keys`).
    Each file by `minicnn.files.write_atomic`: a new file, one this process wrote (the previous
    epoch's), or, with `overwrite` (a resumed run), any regular file; never a link, FIFO or folder."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if history:
        write_atomic(out_dir / "metrics.csv", lambda tmp: _write_csv(tmp, history), overwrite=overwrite)
    text = json.dumps({"history": history, "summary": summary or {}}, indent=1)
    write_atomic(out_dir / "metrics.json", lambda tmp: tmp.write_text(text), overwrite=overwrite)
    if history and curves:
        plot_curves(history, out_dir / "curves.png", overwrite=overwrite)


def _write_csv(path: Path, history: list[dict[str, float]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)


def plot_curves(history: list[dict[str, float]], path: Path, overwrite: bool = False) -> None:
    """Loss and accuracy per epoch, training and scored split side by side (Agg canvas, no pyplot
    state); the second curve is "validation" for val_* columns, "test" for test_* columns. A
    segmentation's rows add a third panel: the scored split's mean Dice and mean IoU. Written by
    `write_atomic` (`overwrite`: may replace a regular file this process did not write)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] for h in history]
    split = scored_split(history[0])
    segmentation = f"{split}_dice" in history[0]
    fig = Figure(figsize=(13.5 if segmentation else 9, 3.5))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3 if segmentation else 2)
    name = "validation" if split == VAL else "test"
    titles = ("loss", "pixel accuracy" if segmentation else "accuracy")
    for ax, key, title in zip(axes[:2], ("loss", "acc"), titles, strict=True):
        ax.plot(epochs, [h[f"train_{key}"] for h in history], "o-", label="train")
        ax.plot(epochs, [h[f"{split}_{key}"] for h in history], "s-", label=name)
        ax.set_title(title)
    if segmentation:
        for key, word, marker in (("dice", "Dice", "s-"), ("iou", "IoU", "^-")):
            axes[2].plot(epochs, [h[f"{split}_{key}"] for h in history], marker, label=f"{name} mean {word}")
        axes[2].set_title("mean Dice and IoU over the classes")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epoch 1, 2, 3 (not 1.25, 1.5, ...)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100), overwrite=overwrite)


VAL, TEST = "val", "test"  # the scored split of a history row: held-out validation, or the test split


def row_keys(split: str, segmentation: bool = False) -> tuple[str, ...]:
    """The columns of a history row, in order; `split` ("val" or "test") names the scored columns:
    val_loss/val_acc when `fit` had a validation split, test_loss/test_acc when the test split
    stood in for it (the table, the curves, metrics.csv and metrics.json all say which). A
    `segmentation` run's accuracies are pixel accuracies, and its rows add the scored split's mean
    Dice and mean IoU over the classes (`SegmentationScores.mean_dice`, `mean_iou`)."""
    scores = (f"{split}_dice", f"{split}_iou") if segmentation else ()
    return ("epoch", "lr", "train_loss", "train_acc", f"{split}_loss", f"{split}_acc", *scores, "train_seconds",
            "images_per_s")


HIGHER_IS_BETTER = ("_acc", "_dice", "_iou")  # endings of the columns where more is better (the rest: losses)


def higher_is_better(column: str) -> bool:
    """True for accuracy, Dice and IoU columns, False for losses (what EarlyStopping/BestCheckpoint maximise)."""
    return column.endswith(HIGHER_IS_BETTER)


def scored_split(row: dict[str, float]) -> str:
    """"val" or "test": which split a history row scored."""
    return TEST if "test_loss" in row else VAL


def check_history(history: Any, split: str, path, segmentation: bool = False) -> list[dict[str, float]]:
    """The history rows of a checkpoint, checked before a resumed run uses them -> the rows, with
    the scored columns named for `split` (checkpoints written before the rows said "test_" call
    the test split's columns val_*). Raises CheckpointError naming `path` and the first bad row:
    each row must have exactly the columns of `row_keys(split, segmentation)`, finite numbers, losses
    and times >= 0, accuracies, Dice and IoU in [0, 1], and the epochs must increase."""
    def bad(i: int, why: str) -> ckpt_io.CheckpointError:
        return ckpt_io.CheckpointError(f"{path}: damaged checkpoint: history row {i + 1} {why}")

    if not isinstance(history, list):
        raise ckpt_io.CheckpointError(f"{path}: damaged checkpoint: expected the history as a list of rows, "
                                      f"got {type(history).__name__}")
    rows, last = [], 0.0
    for i, row in enumerate(history):
        if not isinstance(row, dict):
            raise bad(i, f"is {type(row).__name__}, not a row")
        if split == TEST and "val_loss" in row and "test_loss" not in row:  # older checkpoints
            row = {k.replace("val_", "test_"): v for k, v in row.items()}
        keys = row_keys(split, segmentation)
        if set(row) != set(keys):
            raise bad(i, f"has the columns {sorted(row)}, expected {list(keys)}")
        for key in keys:
            value = row[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise bad(i, f"has {key}={value!r:.40}, expected a finite number")
            if value < 0 or (higher_is_better(key) and value > 1):
                raise bad(i, f"has {key}={value!r}, expected " + ("a value in [0, 1]" if higher_is_better(key)
                                                                   else "a value >= 0"))
        if row["epoch"] <= last:
            raise bad(i, f"has epoch {row['epoch']} after epoch {last}: the epochs must increase")
        last = row["epoch"]
        rows.append({k: row[k] for k in keys})
    return rows


class _SinceLastRow:
    """Training figures since the previous history row (within one epoch): a row's train_* columns."""

    def __init__(self) -> None:
        self.mark = EpochState(0)

    def row(self, state: EpochState) -> dict[str, float]:
        m = self.mark
        seen, seconds = state.seen - m.seen, state.seconds - m.seconds
        self.mark = EpochState(state.epoch, state.batch, state.loss_sum, state.correct, state.seen, state.seconds,
                               pixels=state.pixels)
        return {"train_loss": (state.loss_sum - m.loss_sum) / max(seen, 1),
                "train_acc": (state.correct - m.correct) / max(seen * state.pixels, 1),
                "train_seconds": seconds, "images_per_s": seen / seconds if seconds > 0 else 0.0}


class _ValidateEvery(Callback):
    """`FitConfig(eval_every=K)`: a history row after every K batches of an epoch (not at its last
    batch, which the epoch's own row covers)."""

    def __init__(self, every: int, total: int, record: Callable[[EpochState, float], None]):
        self.every, self.total, self.record = every, total, record

    def on_batch_end(self, step: int, model: Layer, state: EpochState) -> None:
        if state.batch % self.every == 0 and state.batch < self.total:
            self.record(state, state.epoch + state.batch / self.total)


class KeepBest(Callback):
    """Early stopping's checkpoint: the weights of the epoch with the lowest
    validation loss. After each epoch's validation: if val_loss is below the
    lowest so far, keep a copy of state_dict(). After `fit`,
    `model.load_state_dict(keep.state)` goes back to epoch `keep.epoch`.
    """

    monitor = "val_loss"

    def __init__(self) -> None:
        self.val_loss, self.epoch, self.state = math.inf, 0, {}

    def on_epoch_end(self, epoch: int, model: Layer, row: dict[str, float]) -> None:
        if row["val_loss"] < self.val_loss:
            self.val_loss, self.epoch, self.state = row["val_loss"], epoch + 1, model.state_dict()


def _epoch_rows(history: list[dict[str, float]]) -> list[dict[str, float]]:
    """The rows written at the end of a whole epoch (integral `epoch`), without eval_every's rows."""
    return [row for row in history if float(row["epoch"]).is_integer()]


def _improves(value: float, best: float, monitor: str, min_delta: float = 0.0) -> bool:
    """value < best - min_delta for a loss; value > best + min_delta for accuracy, Dice or IoU."""
    return value > best + min_delta if higher_is_better(monitor) else value < best - min_delta


def _worst(monitor: str) -> float:
    """The starting `best` of a monitored column: -inf where higher is better, else +inf."""
    return -math.inf if higher_is_better(monitor) else math.inf


class EarlyStopping(Callback):
    """Stop the run when `monitor` (default val_loss, lower is better; an _acc, _dice or _iou column,
    e.g. a segmentation's val_iou: higher is better) has not improved for `patience` epochs (Keras'
    EarlyStopping, Lightning's EarlyStopping).

    An epoch improves when  value < best - min_delta  (value > best + min_delta where higher is better);
    `wait` counts the epochs since the last
    improvement, and at wait == patience the callback sets should_stop: `fit` saves the epoch's
    checkpoint and returns status "stopped early". The weights are the last epoch's (not the best:
    `BestCheckpoint` keeps those). On resume the state is rebuilt from the history.
    """

    def __init__(self, patience: int, min_delta: float = 0.0, monitor: str = "val_loss"):
        if isinstance(patience, bool) or not isinstance(patience, int | np.integer) or patience < 1:
            raise ValueError(f"EarlyStopping: expected patience an integer >= 1, got {patience!r}")
        if isinstance(min_delta, bool) or not isinstance(min_delta, int | float) or not 0 <= min_delta < math.inf:
            raise ValueError(f"EarlyStopping: expected min_delta a finite number >= 0, got {min_delta!r}")
        self.patience, self.min_delta, self.monitor = int(patience), float(min_delta), monitor
        self.best, self.best_epoch, self.wait = _worst(monitor), 0, 0

    def on_fit_start(self, model: Layer, history: list[dict[str, float]]) -> None:
        self.best, self.best_epoch, self.wait, self.should_stop = _worst(self.monitor), 0, 0, False
        for row in _epoch_rows(history):
            self._see(int(row["epoch"]), row[self.monitor])

    def on_epoch_end(self, epoch: int, model: Layer, row: dict[str, float]) -> None:
        self._see(epoch + 1, row[self.monitor])

    def _see(self, epoch: int, value: float) -> None:
        if _improves(value, self.best, self.monitor, self.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.should_stop = True
            self.stop_reason = (f"stopped early after epoch {epoch}: {self.monitor} has not improved by more than "
                                f"{self.min_delta:g} for {self.patience} epoch{'s' if self.patience > 1 else ''} "
                                f"(best {self.best:.4f} at epoch {self.best_epoch})")


class BestCheckpoint(Callback):
    """Keep the model of the best epoch in a file: after each epoch whose `monitor` (default
    val_loss, lower is better; higher is better for an _acc, _dice or _iou column) is the best so
    far, the weights go to `path` with
    `checkpoint.save_checkpoint` (the atomic save of every checkpoint: temporary file, fsync,
    rename), with `meta` (model name, config, normalisation, ... as `fit`'s meta, so that
    `load_model(path)` and `minicnn evaluate` open it) plus "best_epoch" and the monitored value.
    Keras' ModelCheckpoint(save_best_only=True), Lightning's best checkpoint. On resume the best
    value so far is read from the history, so an earlier best file is not replaced by a worse epoch;
    only a resumed run (one whose history is not empty) may replace a best file an earlier process
    wrote (a fresh run refuses one: FileExistsError, the write rule of `minicnn.files`).
    """

    def __init__(self, path: str | os.PathLike, meta: dict[str, Any] | None = None, monitor: str = "val_loss"):
        self.path, self.meta, self.monitor = Path(path), dict(meta or {}), monitor
        self.best, self.best_epoch, self.resumed = _worst(monitor), 0, False

    def on_fit_start(self, model: Layer, history: list[dict[str, float]]) -> None:
        self.best, self.best_epoch, self.resumed = _worst(self.monitor), 0, bool(history)
        for row in _epoch_rows(history):
            if _improves(row[self.monitor], self.best, self.monitor):
                self.best, self.best_epoch = row[self.monitor], int(row["epoch"])

    def on_epoch_end(self, epoch: int, model: Layer, row: dict[str, float]) -> None:
        if _improves(row[self.monitor], self.best, self.monitor):
            self.best, self.best_epoch = row[self.monitor], epoch + 1
            ckpt_io.save_checkpoint(self.path, model, None, {**self.meta, "best_epoch": self.best_epoch,
                                                             self.monitor: self.best}, overwrite=self.resumed)


def _quiet(_message: str) -> None:
    """A log that drops its messages (`fit(log=None)`)."""


class _Run:
    """The bookkeeping of one `fit` call: history rows, checkpoints, log lines, the clock."""

    def __init__(self, model: Layer, dataset, optimizer, config: FitConfig, *, val, meta, loss_fn,
                 log: Callable[[str], None] | None, warn: Callable[[str], None] | None):
        self.model, self.dataset, self.optimizer, self.config, self.loss_fn = model, dataset, optimizer, config, loss_fn
        self.say, self.warn = log or _quiet, warn or log or _quiet
        self.meta = meta or {}
        self.wrote = False  # a checkpoint of THIS run is in out_dir (saved, or the one resumed from)
        self.x_val, self.y_val = val if val is not None else (dataset.x_test, dataset.y_test)
        self.split = VAL if val is not None else TEST  # what the history, table and curves call it
        self.segmentation = np.ndim(dataset.y_train) == 3  # labels (N, H, W): a class per pixel
        self.epoch_width = max(len("epoch"), len(f"{config.epochs}.00/{config.epochs}"))
        self.header_said = False
        self.out = Path(config.out_dir) if config.out_dir is not None else None
        self.path = self.out / CHECKPOINT_NAME if self.out is not None else None
        self.history: list[dict[str, float]] = []
        self.since_last_row, self.last_eval = _SinceLastRow(), None
        self.t_start = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.t_start

    def start(self) -> tuple[int, EpochState | None]:
        """Remove a killed save's temporary files; on resume restore the run -> (first epoch, partial epoch)."""
        if self.path is not None:
            removed = remove_unfinished(self.path)
            if removed:
                self.say(f"removed {len(removed)} unfinished temporary file(s) of an interrupted save in {self.out}")
        if not self.config.resume:
            return 0, None
        start_epoch, partial, self.history, seconds = _resume(self.path, self.model, self.optimizer, self.config,
                                                              self.split, self.say, self.segmentation)
        self.t_start -= seconds
        self.wrote = self.path.is_file()
        return start_epoch, partial

    def record(self, state: EpochState, progress_epochs: float) -> dict[str, float]:
        """Validate, append a history row (training figures since the previous row) and log it as a
        line of a table (its header before the first line): the validation columns are headed "val"
        for a held-out split, "test" when the test split stands in for it."""
        v = self.last_eval = evaluate(self.model, self.x_val, self.y_val, loss_fn=self.loss_fn)
        row = {"epoch": progress_epochs, "lr": float(self.optimizer.lr), **self.since_last_row.row(state),
               f"{self.split}_loss": v.loss, f"{self.split}_acc": v.accuracy}
        if v.scores is not None:
            row.update({f"{self.split}_dice": v.scores.mean_dice, f"{self.split}_iou": v.scores.mean_iou})
        row = {k: row[k] for k in row_keys(self.split, self.segmentation)}
        self.history.append(row)
        if self.segmentation:
            self._say_segmentation_row(row, progress_epochs)
            return row
        if not self.header_said:
            self.say(f"{'epoch':<{self.epoch_width}}{'train loss':>12}{'train acc':>11}"
                     f"{self.split + ' loss':>11}{self.split + ' acc':>10}{'images/s':>10}")
            self.header_said = True
        where = f"{progress_epochs:g}" if isinstance(progress_epochs, int) else f"{progress_epochs:.2f}"
        self.say(f"{where + '/' + str(self.config.epochs):<{self.epoch_width}}{row['train_loss']:>12.4f}"
                 f"{row['train_acc']:>11.2%}{v.loss:>11.4f}{v.accuracy:>10.2%}{row['images_per_s']:>10,.0f}")
        return row

    def _say_segmentation_row(self, row: dict[str, float], progress_epochs: float) -> None:
        """A segmentation's line of the table: pixel accuracies, mean Dice and IoU (76 columns at 100 epochs)."""
        s = self.split
        if not self.header_said:
            self.say(f"{'epoch':<{self.epoch_width}}{'train loss':>11}{'train acc':>10}{s + ' loss':>10}"
                     f"{s + ' acc':>9}{s + ' dice':>10}{s + ' iou':>9}{'img/s':>7}")
            self.header_said = True
        where = f"{progress_epochs:g}" if isinstance(progress_epochs, int) else f"{progress_epochs:.2f}"
        self.say(f"{where + '/' + str(self.config.epochs):<{self.epoch_width}}{row['train_loss']:>11.4f}"
                 f"{row['train_acc']:>10.2%}{row[s + '_loss']:>10.4f}{row[s + '_acc']:>9.2%}"
                 f"{row[s + '_dice']:>10.4f}{row[s + '_iou']:>9.4f}{row['images_per_s']:>7,.0f}")

    def save(self, epoch_done: int, part: EpochState | None) -> None:
        """The checkpoint (when there is an out_dir): weights, optimizer, data-stream position, history."""
        if self.path is not None:
            info = {**self.meta, "seed": self.config.seed, "batch_size": self.config.batch_size, "epoch": epoch_done,
                    "partial": asdict(part) if part else None, "history": self.history, "seconds": self.elapsed}
            ckpt_io.save_checkpoint(self.path, self.model, self.optimizer, info, overwrite=self.config.resume)
            self.wrote = True
        if self.out is not None:  # the PNG is drawn once, at the end; a resumed run replaces the earlier files
            write_metrics(self.out, self.history, curves=False, overwrite=self.config.resume)

    def stopped_early(self, callbacks: Sequence[Callback], result: FitResult) -> bool:
        """True (and the run ends as "stopped early", said in the log) when a callback asked to stop."""
        asking = [c for c in callbacks if c.should_stop]
        if asking:
            result.status = STOPPED_EARLY
            self.say(asking[0].stop_reason or f"{STOPPED_EARLY} by {type(asking[0]).__name__}")
        return bool(asking)

    def halt(self, result: FitResult, status: str, message: str) -> None:
        """End the run as `status` ("diverged" or "interrupted"): the message goes to `warn`."""
        result.status, result.message = status, message
        self.warn(message)

    def diverged(self, error: NonFiniteLossError, result: FitResult) -> None:
        kept = f"the last good checkpoint {self.path} is kept" if self.wrote else "no checkpoint was written"
        self.halt(result, "diverged", f"stopped: {error}; {kept}. Try a smaller learning rate.")

    def interrupted(self, state: EpochState, result: FitResult) -> None:
        """Ctrl-C: save where the epoch is, so that a resumed run continues from this batch."""
        self.save(state.epoch, state)
        where = f"interrupted at epoch {state.epoch + 1}, batch {state.batch}"
        self.halt(result, "interrupted", f"{where}; checkpoint saved to {self.path} (resume it to continue)"
                  if self.path is not None else f"{where} (no run folder, nothing saved)")

    def broken(self, row: dict[str, float], epoch: int, result: FitResult) -> bool:
        """True (and the run ends as diverged) when the model after this validation must not become a
        checkpoint: a weight or the validation loss is NaN or infinite."""
        bad = non_finite_parameters(self.model)
        if bad:
            problem = f"the weights hold NaN or infinity ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''})"
        elif not math.isfinite(row[f"{self.split}_loss"]):
            problem = f"the {'validation' if self.split == VAL else 'test'} loss became {row[f'{self.split}_loss']}"
        else:
            return False
        self.diverged(NonFiniteLossError(f"{problem} after epoch {epoch + 1}"), result)
        return True

    def finish(self, result: FitResult, reuse_last_eval: bool) -> FitResult:
        """Test-split result (the last validation when it WAS the test split and nothing changed the
        model since), the summary line, metrics.json / metrics.csv / curves.png."""
        result.history, result.seconds = self.history, self.elapsed
        if result.status in ("done", STOPPED_EARLY):
            test = result.test = (self.last_eval if reuse_last_eval and self.last_eval else
                                  evaluate(self.model, self.dataset.x_test, self.dataset.y_test, loss_fn=self.loss_fn))
            epochs_word = "epoch" if len(self.history) == 1 else "epochs"
            scored = (f"test mean Dice {test.scores.mean_dice:.4f}, mean IoU {test.scores.mean_iou:.4f}, pixel "
                      f"accuracy {test.accuracy:.2%}" if test.scores is not None else
                      f"test accuracy {test.accuracy:.2%} ({test.correct}/{len(self.dataset.y_test)})")
            lines = [f"{scored} after {len(self.history)} {epochs_word}",
                     f"wall time {_format_seconds(result.seconds)}, training {result.images_per_s:,.0f} images/s"]
            for line in lines:
                self.say(line)
            result.message = "\n".join(lines)
            summary = {"test_accuracy": test.accuracy, "test_loss": test.loss, "epochs": len(self.history),
                       "wall_seconds": result.seconds, "train_images_per_s": result.images_per_s}
            if test.scores is not None:  # accuracy above is the pixel accuracy
                summary.update({"test_dice": test.scores.mean_dice, "test_iou": test.scores.mean_iou})
        else:
            summary = {"status": result.status, "message": result.message}
        summary["scored_split"] = "validation" if self.split == VAL else "test"  # what the rows' scores measured
        if self.out is not None:
            write_metrics(self.out, self.history, summary, overwrite=self.config.resume)
        return result


def fit(model: Layer, dataset, optimizer, config: FitConfig, *, schedule: Callable[[int], float] | None = None,
        augment: Augment | None = None, val: tuple[np.ndarray, np.ndarray] | None = None,
        callbacks: Sequence[Callback] = (), loss_fn=None, log: Callable[[str], None] | None = print,
        warn: Callable[[str], None] | None = None, meta: dict[str, Any] | None = None) -> FitResult:
    """Train `model` on `dataset` (a `minicnn.data.Dataset`, already normalised as wanted) as `config` says.

    The run folder `config.out_dir` (if given) is locked for the whole call (`RunLock`: a second run
    into it, in any process, is refused with RunLockError). Every callback's `on_fit_start` gets the
    history so far. Each epoch: `train_epoch`, then `evaluate` on `val` (x, y) — or on the test split
    when `val` is None (then the row's columns, the table and the curves say "test": test_loss,
    test_acc) — giving one history row, logged as a line of a table, then every callback's
    `on_epoch_end`, metrics files and a checkpoint in `config.out_dir` (if given); a callback that
    sets `should_stop` (`EarlyStopping`) ends the run there, status "stopped early". After the last
    epoch the test split is evaluated (the
    last validation is reused when it was on the test split and no callback can have changed the model
    since) and two summary lines are logged. Nothing is chosen on the test split: the model returned
    is the last one, whatever its scores (`KeepBest` keeps the best epoch's weights aside).

    `config.eval_every=K` also validates after every K batches inside an epoch: each such row has a
    fractional `epoch` (0.25 = a quarter through the first) and training figures over the batches since
    the previous row. `config.max_steps` ends the run (status "done") once `optimizer.steps` reaches it;
    the partial epoch gets its row. `config.resume` continues from `out_dir/checkpoint.npz` when it
    exists: the data stream, optimizer state, schedule position and engine RNG are all restored, so the
    run ends with the weights of an uninterrupted one.
    The objects: `schedule(step)` -> learning rate before each step; `augment(x_batch, rng)`;
    `callbacks`: `Callback` objects; `loss_fn` (default softmax cross-entropy); `log` gets the table
    and summary lines (None: silent), `warn` the stop messages (default: `log`); `meta` (JSON-friendly:
    model name/config, dataset, normalisation, ...) is stored in every checkpoint.
    Segmentation: a dataset whose labels are (N, H, W) (a class per pixel) and a model with logits
    (N, K, H, W): the loss is per pixel (`loss_fn` e.g. SoftmaxCrossEntropy or SoftDiceLoss), the
    accuracies are pixel accuracies, and every row adds the scored split's mean Dice and mean IoU
    (val_dice, val_iou or test_dice, test_iou; `EarlyStopping(monitor="val_iou")` maximises it).
    Every file goes through `minicnn.files.write_atomic`: onto files this process wrote, or (resume)
    the run's own earlier files; a fresh run refuses an existing checkpoint of another process.
    Returns a FitResult (its `history`: every row, as in metrics.json); status "interrupted" after
    Ctrl-C (checked after every batch, also the last of an epoch: a checkpoint at the current batch),
    "diverged" after a NaN/inf training loss, or when, after an epoch, a weight or the validation loss
    is not finite (that model is never saved: the checkpoint stays the last good one). Temporary files
    of a save that was killed midway are removed from `out_dir` at the start.
    """
    if not isinstance(config, FitConfig):
        raise ValueError(f"fit: expected config a FitConfig, got {type(config).__name__}")
    columns = row_keys(VAL if val is not None else TEST, np.ndim(dataset.y_train) == 3)
    for callback in callbacks:
        monitor = getattr(callback, "monitor", None)
        if monitor is not None and monitor not in columns:
            raise ValueError(f"fit: {type(callback).__name__} reads the history column {monitor!r}, which this "
                             f"run's rows do not have (they have {', '.join(columns[2:6])}); give val=(x_val, "
                             f"y_val) to choose on held-out data, never on the test split")
    with RunLock(config.out_dir) if config.out_dir is not None else nullcontext():  # one owner per run folder
        run = _Run(model, dataset, optimizer, config, val=val, meta=meta, loss_fn=loss_fn, log=log, warn=warn)
        start_epoch, partial = run.start()
        steps_per_epoch = num_batches(len(dataset.x_train), config.batch_size)
        hooks = list(callbacks)
        if config.eval_every:
            hooks.append(_ValidateEvery(config.eval_every, steps_per_epoch, run.record))
        result = FitResult("done", checkpoint=run.path)
        for callback in callbacks:
            callback.on_fit_start(model, list(run.history))
        with _StopFlag() as ctrl_c:
            def should_stop() -> bool:
                return ctrl_c.requested or (config.max_steps is not None and optimizer.steps >= config.max_steps)

            for epoch in range(start_epoch, config.epochs):
                state = partial if partial is not None and partial.epoch == epoch else EpochState(epoch)
                if run.stopped_early(callbacks, result):  # a resumed run that had already stopped early
                    break
                if ctrl_c.requested:  # Ctrl-C during the previous epoch's validation or checkpoint
                    run.interrupted(state, result)
                    break
                run.since_last_row.mark = EpochState(epoch)
                try:
                    train_epoch(model, dataset.x_train, dataset.y_train, optimizer, config, state, schedule=schedule,
                                augment=augment, callbacks=hooks, loss_fn=loss_fn, stop=should_stop)
                except NonFiniteLossError as error:
                    run.diverged(error, result)
                    break
                if ctrl_c.requested:  # also after the epoch's last batch: its row comes on resume
                    run.interrupted(state, result)
                    break
                row = run.record(state, epoch + state.batch / steps_per_epoch if state.interrupted else epoch + 1)
                if run.broken(row, epoch, result):  # a NaN weight or validation loss
                    break
                for callback in callbacks:
                    callback.on_epoch_end(epoch, model, row)
                if state.interrupted:  # the step budget is spent: save the partial epoch and stop
                    run.save(epoch, state)
                    break
                run.save(epoch + 1, None)
                if run.stopped_early(callbacks, result):
                    break
        return run.finish(result, reuse_last_eval=val is None and not callbacks)


def _resume(path: Path, model: Layer, optimizer, config: FitConfig, split: str, say: Callable[[str], None],
            segmentation: bool = False) -> tuple[int, EpochState | None, list, float]:
    """Restore model, optimizer and RNG from `path` if it exists -> (epoch, partial state, history, seconds)."""
    if not path.is_file():
        say(f"nothing to resume: no {CHECKPOINT_NAME} in {path.parent}; starting from scratch")
        return 0, None, [], 0.0
    saved = ckpt_io.load_checkpoint(path)
    for key, value in (("seed", config.seed), ("batch_size", config.batch_size)):
        if saved.meta.get(key) != value:
            raise ckpt_io.CheckpointError(f"{path} was written with {key}={saved.meta.get(key)}, this run has "
                                          f"{key}={value}; resume with the same value")
    missing = [key for key in ("epoch", "partial", "history", "seconds") if key not in saved.meta]
    if missing:
        raise ckpt_io.CheckpointError(f"{path}: not a checkpoint written by fit (its meta lacks {missing})")
    history = check_history(saved.meta["history"], split, path, segmentation)  # before anything is trained
    ckpt_io.restore(saved, model, optimizer)
    partial = EpochState(**saved.meta["partial"]) if saved.meta["partial"] else None
    epoch = saved.meta["epoch"]
    where = f"epoch {epoch + 1}, batch {partial.batch}" if partial else f"the end of epoch {epoch}"
    say(f"resuming from {path} at {where}")
    return epoch, partial, history, saved.meta["seconds"]
