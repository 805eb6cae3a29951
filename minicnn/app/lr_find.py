"""The learning-rate range test (Smith 2017, "Cyclical learning rates"; fastai's and Lightning's `lr_find`).

Train for up to `steps` mini-batches while the learning rate grows exponentially from `start_lr` to
`end_lr`:

    lr_i = start_lr * (end_lr / start_lr) ** (i / (steps - 1)),     i = 0 .. steps-1

and record the loss of every batch. The loss first barely moves (lr too small), then falls, then
explodes (lr too large). The sweep stops early when the smoothed loss exceeds DIVERGE_FACTOR times its
lowest value (or is NaN / infinite).

Smoothing: an exponential moving average with bias correction (as Adam's moments),

    avg_i = beta avg_{i-1} + (1 - beta) loss_i,     smooth_i = avg_i / (1 - beta^(i+1)).

Suggestion (the documented rule): the learning rate where the smoothed loss falls fastest, i.e. the
most negative slope d smooth / d log10(lr), searched from step SKIP_START up to the step of the lowest
smoothed loss (the descent, never the explosion). It is a starting point for `--lr`, not a guarantee.

The steps are the engine's own: `minicnn.app.train.train_epoch` with an exponential schedule and a
callback that records each batch's loss (no second training loop). The model's weights are put back
as they were when the sweep ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minicnn.core import Layer
from minicnn.files import write_atomic

from .train import Callback, EpochState, FitConfig, NonFiniteLossError, train_epoch

START_LR, END_LR = 1e-5, 10.0
STEPS = 200
BETA = 0.9  # smoothing of the loss curve: an average over ~10 steps (fastai: 0.98 over ~50)
DIVERGE_FACTOR = 4.0  # stop once the smoothed loss is this many times its lowest value
SKIP_START = 10  # the first steps are too noisy to pick a slope from


@dataclass(frozen=True)
class LRFindConfig:
    """Settings of a sweep; checked when made."""

    start_lr: float = START_LR
    end_lr: float = END_LR
    steps: int = STEPS
    batch_size: int = 64
    seed: int = 0
    beta: float = BETA
    diverge_factor: float = DIVERGE_FACTOR
    progress: bool = False

    def __post_init__(self) -> None:
        if not (0 < self.start_lr < self.end_lr):
            raise ValueError(f"LRFindConfig: expected 0 < start_lr < end_lr, got {self.start_lr!r}, {self.end_lr!r}")
        if not (isinstance(self.steps, int) and self.steps > SKIP_START + 1):
            raise ValueError(f"LRFindConfig: expected steps an integer > {SKIP_START + 1}, got {self.steps!r}")
        if not 0 <= self.beta < 1:
            raise ValueError(f"LRFindConfig: expected beta in [0, 1), got {self.beta!r}")
        if not self.diverge_factor > 1:
            raise ValueError(f"LRFindConfig: expected diverge_factor > 1, got {self.diverge_factor!r}")

    def lr(self, step: int) -> float:
        """The exponential schedule lr_i of the module docstring."""
        return self.start_lr * (self.end_lr / self.start_lr) ** (step / (self.steps - 1))


@dataclass
class LRFindResult:
    """lrs[i], losses[i] (the batch's loss) and smoothed[i] for every step run; the suggested rate and
    why the sweep stopped ("done", "diverged" or "non-finite loss")."""

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggestion: float | None
    stopped: str


class _Recorder(Callback):
    """Each batch's loss (from the growth of the epoch's running sums) and the diverge test."""

    def __init__(self, config: LRFindConfig):
        self.config, self.lrs, self.losses, self.smoothed = config, [], [], []
        self._avg, self._sum, self._seen, self.diverged = 0.0, 0.0, 0, False

    def on_batch_start(self, step: int, model: Layer) -> None:
        self.lrs.append(self.config.lr(step))

    def on_batch_end(self, step: int, model: Layer, state: EpochState) -> None:
        loss = (state.loss_sum - self._sum) / (state.seen - self._seen)
        self._sum, self._seen = state.loss_sum, state.seen
        beta = self.config.beta
        self._avg = beta * self._avg + (1 - beta) * loss
        self.losses.append(loss)
        self.smoothed.append(self._avg / (1 - beta ** len(self.losses)))
        self.diverged = self.smoothed[-1] > self.config.diverge_factor * min(self.smoothed)

    def new_epoch(self) -> None:
        self._sum, self._seen = 0.0, 0


def suggest(lrs: np.ndarray, smoothed: np.ndarray) -> float | None:
    """The rate of steepest descent of the smoothed loss against log10(lr), between SKIP_START and the
    lowest point; None when that stretch has fewer than 2 points or never falls."""
    lowest = int(np.argmin(smoothed))
    if lowest - SKIP_START < 2:
        return None
    log_lr = np.log10(lrs[SKIP_START:lowest + 1])
    slope = np.gradient(smoothed[SKIP_START:lowest + 1], log_lr)
    if slope.min() >= 0:
        return None
    return float(lrs[SKIP_START + int(np.argmin(slope))])


def lr_find(model: Layer, x: np.ndarray, y: np.ndarray, optimizer, loss_fn=None,
            config: LRFindConfig = LRFindConfig()) -> LRFindResult:
    """Run the range test on images x (N, C, H, W) and labels y (N,) with `optimizer` (its lr is driven by
    the schedule); returns the curve and the suggestion. The model's state is restored afterwards."""
    saved = model.state_dict()
    recorder = _Recorder(config)
    fit_config = FitConfig(epochs=1, batch_size=config.batch_size, seed=config.seed, progress=config.progress)
    stopped, epoch = "done", 0
    try:
        while len(recorder.losses) < config.steps and stopped == "done":
            recorder.new_epoch()
            train_epoch(model, x, y, optimizer, fit_config, EpochState(epoch), schedule=config.lr,
                                callbacks=[recorder], loss_fn=loss_fn,
                                stop=lambda: recorder.diverged or len(recorder.losses) >= config.steps)
            if recorder.diverged:
                stopped = "diverged"
            epoch += 1
    except NonFiniteLossError:
        stopped = "non-finite loss"
        recorder.lrs = recorder.lrs[:len(recorder.losses)]
    finally:
        model.load_state_dict(saved)
    lrs, smoothed = np.array(recorder.lrs), np.array(recorder.smoothed)
    return LRFindResult(lrs, np.array(recorder.losses), smoothed,
                        suggest(lrs, smoothed) if len(smoothed) else None, stopped)


def plot_lr_find(result: LRFindResult, path, overwrite: bool = False) -> None:
    """Loss (raw and smoothed) against the learning rate on a log axis, the suggestion marked; a PNG
    written by `minicnn.files.write_atomic` (an existing file is replaced only with `overwrite`; never a
    folder, device, FIFO or link)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(result.lrs, result.losses, color="0.75", lw=1, label="batch loss")
    ax.plot(result.lrs, result.smoothed, color="C0", lw=2, label="smoothed")
    if result.suggestion is not None:
        ax.axvline(result.suggestion, color="C3", ls="--", label=f"suggested lr {result.suggestion:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    top = min(float(np.max(result.smoothed)), 2 * float(result.smoothed[0])) if len(result.smoothed) else 1
    ax.set_ylim(0, top * 1.1)
    ax.set_title(f"learning-rate range test ({len(result.lrs)} steps, {result.stopped})")
    ax.legend()
    fig.tight_layout()
    try:
        write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"), overwrite=overwrite)
    finally:
        plt.close(fig)
