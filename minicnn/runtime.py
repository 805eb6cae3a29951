"""Runtime settings of the engine, in one place, read when they are used (never at import time).

    kernels_enabled()        True when layers run the fast kernels (`minicnn.kernels`), False when
                             they run the plain course math (`minicnn.functional`) only
    use_kernels(flag)        switch the kernels on or off for the whole process
    plain()                  a context manager: the plain math inside the `with` block

    tuning_enabled()         True when the kernels' planner may measure candidates (`minicnn.kernels.planner`);
                             False (`minicnn --no-tune`, MINICNN_NO_TUNE=1, use_tuning(False)) runs fixed
                             defaults, for reproducible timing
    use_tuning(flag)         switch the planner's measuring on or off for the whole process

The switch is also the environment variable MINICNN_PLAIN (1 = plain math; read at each call, so it
can be set after import) and the command-line flag `minicnn --plain COMMAND`. A value set by
`use_kernels` wins over the variable.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

PLAIN_VARIABLE = "MINICNN_PLAIN"
NO_TUNE_VARIABLE = "MINICNN_NO_TUNE"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")

_kernels: bool | None = None  # set by use_kernels(); None: follow $MINICNN_PLAIN
_tuning: bool | None = None  # set by use_tuning(); None: follow $MINICNN_NO_TUNE


def _flag_from_environment(name: str) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}: expected 1 or 0 (also true/false, yes/no, on/off), got {value!r}")


def _plain_from_environment() -> bool:
    return _flag_from_environment(PLAIN_VARIABLE)


def tuning_enabled() -> bool:
    """True when the planner may time candidate kernels; False runs each operation's fixed default."""
    if _tuning is not None:
        return _tuning
    return not _flag_from_environment(NO_TUNE_VARIABLE)


def use_tuning(flag: bool | None) -> None:
    """Let the planner measure (True) or use fixed defaults (False); None follows $MINICNN_NO_TUNE again."""
    global _tuning
    if flag is not None and not isinstance(flag, bool):
        raise ValueError(f"use_tuning: expected True, False or None, got {flag!r}")
    _tuning = flag


def kernels_enabled() -> bool:
    """True when layers should take the fast kernels, False for the plain math."""
    if _kernels is not None:
        return _kernels
    return not _plain_from_environment()


def use_kernels(flag: bool | None) -> None:
    """Run the fast kernels (True) or only the plain math (False); None follows $MINICNN_PLAIN again."""
    global _kernels
    if flag is not None and not isinstance(flag, bool):
        raise ValueError(f"use_kernels: expected True, False or None, got {flag!r}")
    _kernels = flag


@contextlib.contextmanager
def plain() -> Iterator[None]:
    """`with minicnn.runtime.plain(): ...` runs the block on the plain course math, then restores."""
    global _kernels
    before = _kernels
    _kernels = False
    try:
        yield
    finally:
        _kernels = before
