"""What every command shares: argparse value checks and one way to report an error.

Exit codes of every `minicnn` command (also in `minicnn --help`):

      0  done
      1  a check or a run failed (gradient check, diverged training, unwritable result)
      2  bad input (an option out of range, a missing or damaged file, an unknown name)
    130  interrupted (Ctrl-C)

A range check in the parser refuses a bad value before anything runs, with argparse's one-line
"argument --lr: ..." error and exit code 2. Errors found later go through `fail`: one message on
stderr, wrapped to the terminal's 80 columns (paths are never broken). Text that came from a file
(class names, model names, dataset names, paths inside messages) is printed through `printable`,
so a crafted file cannot send escape sequences to the terminal; `wrap` applies it to every line.
"""

from __future__ import annotations

import argparse
import math
import sys
import textwrap
import unicodedata
from collections.abc import Callable

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
COLUMNS = 80


def fail(command: str, message: str, code: int = EXIT_BAD_INPUT) -> int:
    """Print "minicnn COMMAND: message" to stderr (wrapped to 80 columns) and return `code`."""
    print(wrap(f"minicnn {command}: {message}"), file=sys.stderr)
    return code


def printable(text: str) -> str:
    """`text` with every character a terminal would act on written as its Python escape instead:
    control characters (ESC, BEL, CR, tab, newline, DEL, the C1 range: "\x1b[2J" clears a screen)
    and invisible format characters (bidirectional overrides, zero-width joiners), so "\x1b]0;x\x07"
    prints as those ten characters. Letters of any script and spaces stay as they are."""
    return "".join(ch if ch == " " or (ch.isprintable() and unicodedata.category(ch) != "Cf")
                   else ch.encode("unicode_escape").decode("ascii") for ch in str(text))


def wrap(text: str) -> str:
    """`text` wrapped to 80 columns, each line of it separately (through `printable`: control
    characters escaped); long words (paths) stay whole."""
    return "\n".join(textwrap.fill(printable(line), COLUMNS, break_long_words=False, break_on_hyphens=False,
                                   subsequent_indent="  ") or printable(line) for line in text.splitlines())


MAX_SEED = 2**32 - 1  # NumPy's legacy seed range: every command's --seed


def integer(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an int in [low, high] (None: unbounded on that side)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        _check_range(value, text, low, high, closed_high=True)
        return value
    parse.__name__ = "integer"
    return parse


def number(low: float | None = None, high: float | None = None, *, low_open: bool = False,
           high_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite float in [low, high]; `low_open`/`high_open` exclude that end."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        _check_range(value, text, low, high, low_open=low_open, closed_high=not high_open)
        return value
    parse.__name__ = "number"
    return parse


def _check_range(value: float, text: str, low, high, *, low_open: bool = False, closed_high: bool = True) -> None:
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value > high if closed_high else value >= high)
    if too_low or too_high:
        parts = []
        if low is not None:
            parts.append(f"{'>' if low_open else '>='} {low:g}")
        if high is not None:
            parts.append(f"{'<=' if closed_high else '<'} {high:g}")
        raise argparse.ArgumentTypeError(f"expected a value {' and '.join(parts)}, got {text}")


SEGMENTATION_MODELS = ("unet",)  # registered models whose logits are (N, K, H, W): a class per pixel


def free_path(path):
    """`path` (a pathlib.Path) if nothing is there (not even a dangling link), else the first of
    NAME-2.EXT, NAME-3.EXT, ... that is free: how a command picks a new name instead of replacing
    an earlier file (as `minicnn train` picks runs/NAME-2 for a new run)."""
    import os

    candidate, n = path, 1
    while os.path.lexists(candidate):
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate
