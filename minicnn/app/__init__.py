"""The application tier: what turns layers and models into trained, saved and reloaded networks.

    train.py        the one training loop: `fit` with its `FitConfig` (and `train_epoch`, `evaluate`,
                    `Callback`, `KeepBest`, `EarlyStopping`, `BestCheckpoint`)
    runlock.py      `RunLock`: one owner per run folder (a lock file with PID and host)
    checkpoint.py   training checkpoints (exact resume)
    frequency.py    Frequency Regularization of whole models: conversion, truncation, compressed files
    loading.py      `load_model(path)`: one loader for checkpoints, compressed files and state dicts
    spiral.py       the demo problem behind `minicnn demo` (a full-batch MLP, its own four-line loop)

It sits above `minicnn.models` (it builds models with `minicnn.models.build`) and below the front
ends (`minicnn.commands`, `minicnn.experiments`, the CLI and the tutorials), which call it.
"""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .loading import LoadedModel, ModelFileError, load_model
from .runlock import RunLock, RunLockError
from .train import (
                    BestCheckpoint,
                    Callback,
                    EarlyStopping,
                    EpochState,
                    FitConfig,
                    FitResult,
                    KeepBest,
                    evaluate,
                    fit,
                    train_epoch,
)

__all__ = ["BestCheckpoint", "Callback", "CheckpointError", "EarlyStopping", "EpochState", "FitConfig", "FitResult",
           "KeepBest", "LoadedModel", "ModelFileError", "RunLock", "RunLockError", "evaluate", "fit", "load_checkpoint",
           "load_model", "save_checkpoint", "train_epoch"]
