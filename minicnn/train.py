"""The training loop: `train_epoch`, `evaluate`, `fit`.

One step of mini-batch gradient descent, exactly as the lecture writes it:

    logits = model.forward(x_batch)                  # forward, each layer caches what backward needs
    loss   = L(logits, y_batch)                      # mean softmax cross-entropy over the batch
    model.backward(dL/dlogits)                       # every p.grad += dL/dp
    optimizer.step(); optimizer.zero_grad()          # p <- p - lr * update(p.grad)

`fit` adds what a real run needs: a learning-rate schedule (a function of the step count), validation
after every epoch, metrics (CSV, JSON, PNG curves) and an atomic checkpoint after every epoch in
`out_dir`, exact resumption (`resume=True` continues so that an interrupted and resumed run ends with
the same weights as an uninterrupted one), Ctrl-C (saves a checkpoint at the current batch and
returns), and a NaN/infinite loss (stops before the bad step, keeps the last good checkpoint).

Used by `minicnn train` and by the experiments; the signatures below are stable.
"""

from __future__ import annotations

import csv
import json
import math
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from minicnn import checkpoint as ckpt_io
from minicnn.core import Layer, Sequential
from minicnn.data.batching import Augment, iterate_batches, num_batches
from minicnn.losses import SoftmaxCrossEntropy

CHECKPOINT_NAME = "checkpoint.npz"
EVAL_BATCH = 500
POSTFIX_EVERY = 10  # progress-bar text is refreshed every this many batches (it costs time)


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; raised before the step that would have used it."""


@dataclass
class EpochState:
    """Where an epoch is and what it has seen so far (running sums over completed batches).

    `batch` is the next batch to run; a checkpoint taken mid-epoch stores this whole object.
    """

    epoch: int
    batch: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.seen, 1)

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.seen, 1)

    @property
    def images_per_s(self) -> float:
        return self.seen / self.seconds if self.seconds > 0 else 0.0


@dataclass
class EvalResult:
    """Mean loss, accuracy and the predicted class of every example."""

    loss: float
    accuracy: float
    predictions: np.ndarray

    @property
    def correct(self) -> int:
        return int(round(self.accuracy * len(self.predictions)))


@dataclass
class FitResult:
    """What `fit` did: status "done", "interrupted" or "diverged"; per-epoch history; final test result."""

    status: str
    history: list[dict[str, float]] = field(default_factory=list)
    test: EvalResult | None = None
    seconds: float = 0.0
    checkpoint: Path | None = None
    message: str = ""


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


def train_epoch(model: Layer, x: np.ndarray, y: np.ndarray, optimizer, *, batch_size: int = 64,
                loss_fn=None, seed: int = 0, epoch: int = 0, schedule: Callable[[int], float] | None = None,
                augment: Augment | None = None, state: EpochState | None = None, progress: bool = True,
                desc: str | None = None, stop: Callable[[], bool] | None = None) -> EpochState:
    """Run one epoch of mini-batch training; return its EpochState (mean loss, accuracy, images/s).

    x (N, C, H, W) float32, y (N,) int labels. Batches come from `iterate_batches(..., seed, epoch)`.
    Before each step the learning rate is set to `schedule(optimizer.steps)` when a schedule is given.
    `state` continues a partly done epoch (from a checkpoint) and is updated in place after every batch.
    `stop()` is polled after every batch; when it returns True the epoch ends early with
    `state.interrupted = True`. A NaN/inf loss raises NonFiniteLossError before backward and step,
    so the weights stay those of the last finite step.
    """
    from tqdm import tqdm

    loss_fn = loss_fn or SoftmaxCrossEntropy()
    state = state if state is not None else EpochState(epoch)
    state.interrupted = False
    model.train()
    first = _first_layer(model)
    first_input_grad = getattr(first, "input_grad", None)
    if first_input_grad is not None:
        first.input_grad = False  # dL/dimage is never used in training; skipping it saves ~15% per step
    total = num_batches(len(x), batch_size)
    bar = tqdm(total=total, initial=state.batch, desc=desc or f"epoch {epoch + 1}", unit="batch",
               disable=not progress, leave=True, dynamic_ncols=True, file=sys.stderr)
    try:
        for b, xb, yb in iterate_batches(x, y, batch_size, seed=seed, epoch=epoch, start=state.batch,
                                         augment=augment):
            t0 = time.perf_counter()
            if schedule is not None:
                optimizer.lr = schedule(optimizer.steps)
            logits = model.forward(xb)
            loss = loss_fn.forward(logits, yb)
            if not math.isfinite(loss):
                raise NonFiniteLossError(f"the loss became {loss} at epoch {epoch + 1}, batch {b + 1} "
                                         f"(learning rate {optimizer.lr:g})")
            model.backward(loss_fn.backward())
            optimizer.step()
            optimizer.zero_grad()
            state.seconds += time.perf_counter() - t0
            state.loss_sum += loss * len(yb)
            state.correct += int((logits.argmax(axis=1) == yb).sum())
            state.seen += len(yb)
            state.batch = b + 1
            bar.update(1)
            if b % POSTFIX_EVERY == 0 or state.batch == total:
                bar.set_postfix_str(f"loss {state.loss:.4f}  acc {state.accuracy:.2%}  "
                                    f"{state.images_per_s:,.0f} img/s", refresh=False)
            if stop is not None and stop():
                state.interrupted = state.batch < total
                break
    finally:
        bar.close()
        if first_input_grad is not None:
            first.input_grad = first_input_grad
    return state


def _first_layer(model: Layer) -> Layer:
    """The layer that sees the input images: the first leaf down a chain of Sequentials."""
    while isinstance(model, Sequential) and len(model):
        model = model[0]
    return model


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
    """Mean loss and accuracy of the model (eval mode: no dropout, BatchNorm running statistics)."""
    loss_fn = loss_fn or SoftmaxCrossEntropy()
    logits = predict_logits(model, x, batch_size)
    loss = loss_fn.forward(logits, y)
    predictions = logits.argmax(axis=1)
    return EvalResult(loss, float((predictions == y).mean()), predictions)


def _format_seconds(seconds: float) -> str:
    minutes, s = divmod(int(round(seconds)), 60)
    return f"{minutes}m{s:02d}s" if minutes else f"{seconds:.1f}s"


def write_metrics(out_dir: Path, history: list[dict[str, float]], summary: dict[str, Any] | None = None,
                  curves: bool = True) -> None:
    """metrics.csv (one row per epoch), metrics.json (history + summary) and, with `curves`,
    curves.png in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if history:
        with open(out_dir / "metrics.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(history[0]))
            writer.writeheader()
            writer.writerows(history)
    (out_dir / "metrics.json").write_text(json.dumps({"history": history, "summary": summary or {}}, indent=1))
    if history and curves:
        plot_curves(history, out_dir / "curves.png")


def plot_curves(history: list[dict[str, float]], path: Path) -> None:
    """Loss and accuracy per epoch, training and validation, side by side (Agg canvas, no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(9, 3.5))
    FigureCanvasAgg(fig)
    for ax, key, title in zip(fig.subplots(1, 2), ("loss", "acc"), ("loss", "accuracy"), strict=True):
        ax.plot(epochs, [h[f"train_{key}"] for h in history], "o-", label="train")
        ax.plot(epochs, [h[f"val_{key}"] for h in history], "s-", label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def fit(model: Layer, dataset, optimizer, *, epochs: int, batch_size: int = 64,
        schedule: Callable[[int], float] | None = None, seed: int = 0, out_dir: str | Path | None = None,
        resume: bool = False, augment: Augment | None = None, val: tuple[np.ndarray, np.ndarray] | None = None,
        meta: dict[str, Any] | None = None, progress: bool = True,
        on_epoch_end: Callable[[int, Layer, dict[str, float]], None] | None = None,
        log: Callable[[str], None] | None = print, loss_fn=None) -> FitResult:
    """Train `model` on `dataset` (a `minicnn.data.Dataset`, already normalised as wanted) for `epochs`.

    Each epoch: `train_epoch`, then `evaluate` on `val` (x, y) — or on the test split when `val` is
    None, reported as validation — then `on_epoch_end(epoch, model, row)` (e.g. to move a frequency
    truncation point), metrics files and a checkpoint in `out_dir` (if given). After the last epoch the
    test split is evaluated and a summary line is logged.

    `meta` (JSON-friendly: model name/config, dataset, normalisation, ...) is stored in every checkpoint.
    `resume=True` continues from `out_dir/checkpoint.npz` when it exists (same seed and batch size
    required); the data stream, optimizer state, schedule position and engine RNG are all restored.
    Returns a FitResult; status "interrupted" after Ctrl-C, "diverged" after a NaN/inf loss.
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"fit: expected epochs >= 1 and batch_size >= 1, got {epochs} and {batch_size}")
    say = log or (lambda _msg: None)
    out = Path(out_dir) if out_dir is not None else None
    path = out / CHECKPOINT_NAME if out is not None else None
    x_val, y_val = val if val is not None else (dataset.x_test, dataset.y_test)
    history: list[dict[str, float]] = []
    start_epoch, partial, elapsed = 0, None, 0.0
    if resume and path is not None and path.is_file():
        saved = ckpt_io.load_checkpoint(path)
        for key, value in (("seed", seed), ("batch_size", batch_size)):
            if saved.meta.get(key) != value:
                raise ckpt_io.CheckpointError(f"{path} was written with {key}={saved.meta.get(key)}, this run has "
                                              f"{key}={value}; resume with the same value")
        ckpt_io.restore(saved, model, optimizer)
        history = saved.meta["history"]
        start_epoch, elapsed = saved.meta["epoch"], saved.meta["seconds"]
        if saved.meta.get("partial"):
            partial = EpochState(**saved.meta["partial"])
        where = f"epoch {start_epoch + 1}, batch {partial.batch}" if partial else f"the end of epoch {start_epoch}"
        say(f"resuming from {path} at {where}")
    elif resume:
        say(f"nothing to resume: no {CHECKPOINT_NAME} in {out}; starting from scratch")

    def save(epoch_done: int, part: EpochState | None) -> None:
        if path is not None:
            info = {**(meta or {}), "seed": seed, "batch_size": batch_size, "epoch": epoch_done,
                    "partial": asdict(part) if part else None, "history": history, "seconds": elapsed}
            ckpt_io.save_checkpoint(path, model, optimizer, info)

    t_start = time.perf_counter() - elapsed
    result = FitResult("done", history, checkpoint=path)
    last_val: EvalResult | None = None
    with _StopFlag() as stop:
        for epoch in range(start_epoch, epochs):
            state = partial if partial is not None and partial.epoch == epoch else EpochState(epoch)
            try:
                state = train_epoch(model, dataset.x_train, dataset.y_train, optimizer, batch_size=batch_size,
                                    loss_fn=loss_fn, seed=seed, epoch=epoch, schedule=schedule, augment=augment,
                                    state=state, progress=progress, desc=f"epoch {epoch + 1}/{epochs}",
                                    stop=lambda: stop.requested)
            except NonFiniteLossError as e:
                kept = f"the last good checkpoint {path} is kept" if path is not None and path.exists() else \
                    "no checkpoint was written"
                result.status = "diverged"
                result.message = f"stopped: {e}; {kept}. Try a smaller --lr."
                say(result.message)
                break
            elapsed = time.perf_counter() - t_start
            if state.interrupted:
                save(epoch, state)
                result.status = "interrupted"
                result.message = (f"interrupted at epoch {epoch + 1}, batch {state.batch}; checkpoint saved to "
                                  f"{path}; continue with --resume" if path is not None else
                                  f"interrupted at epoch {epoch + 1}, batch {state.batch} (no --out, nothing saved)")
                say(result.message)
                break
            v = last_val = evaluate(model, x_val, y_val, loss_fn=loss_fn)
            row = {"epoch": epoch + 1, "lr": float(optimizer.lr), "train_loss": state.loss,
                   "train_acc": state.accuracy, "val_loss": v.loss, "val_acc": v.accuracy,
                   "train_seconds": state.seconds, "images_per_s": state.images_per_s}
            history.append(row)
            say(f"epoch {epoch + 1}/{epochs}: train loss {state.loss:.4f} acc {state.accuracy:.2%} | "
                f"validation loss {v.loss:.4f} acc {v.accuracy:.2%} | {state.images_per_s:,.0f} img/s")
            if on_epoch_end is not None:
                on_epoch_end(epoch, model, row)
            elapsed = time.perf_counter() - t_start
            save(epoch + 1, None)
            if out is not None:
                write_metrics(out, history, curves=False)  # the PNG is drawn once, at the end
    if result.status == "done":
        same = val is None and last_val is not None and on_epoch_end is None  # the last validation was the test
        result.test = last_val if same else evaluate(model, dataset.x_test, dataset.y_test, loss_fn=loss_fn)
        result.seconds = time.perf_counter() - t_start
        images = sum(h["images_per_s"] * h["train_seconds"] for h in history)
        train_speed = images / max(sum(h["train_seconds"] for h in history), 1e-9)
        epochs_word = "epoch" if len(history) == 1 else "epochs"
        result.message = (f"test accuracy {result.test.accuracy:.2%} ({result.test.correct}/{len(dataset.y_test)}) "
                          f"after {len(history)} {epochs_word}, wall time {_format_seconds(result.seconds)}, "
                          f"training {train_speed:,.0f} images/s")
        say(result.message)
        summary = {"test_accuracy": result.test.accuracy, "test_loss": result.test.loss, "epochs": len(history),
                   "wall_seconds": result.seconds, "train_images_per_s": train_speed}
    else:
        result.seconds = time.perf_counter() - t_start
        summary = {"status": result.status, "message": result.message}
    if out is not None:
        write_metrics(out, history, summary)
    return result
