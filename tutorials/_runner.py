"""The step framework every chapter uses.

A chapter is a module `tutorials/chNN_name.py` with

    TITLE = "The layer abstraction"
    SUMMARY = "one line for the chapter list"
    STEPS = [Step(title, text, equation, run), ...]

Each step prints a short explanation and its equation, then calls `run(t)` with a `Tutorial` `t`.
`run` shows the engine's own code with `t.code(obj)` (the live source of a `minicnn` function or
method, read with `inspect`, never a copy), runs it on a tiny example, prints the numbers
(`t.array`, `t.blocks`, `t.table`) and states each numerical claim with `t.check(...)`, which is a
real assertion: a failing check stops the chapter with exit code 1.

Steps are self-contained (each builds its own example), so `--step K` can start anywhere.
Paging: Enter for the next step, a number to jump to that step, `q` to quit; `--no-pause` runs
straight through. Colour only when stdout is a terminal and NO_COLOR is unset.
"""

from __future__ import annotations

import inspect
import os
import shutil
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TextIO

import numpy as np

PACKAGE = "minicnn"
SHADES = " ░▒▓█"  # blocks from low to high, used by Tutorial.blocks
RULE_WIDTH = 78


@dataclass
class Step:
    title: str
    text: str
    equation: str
    run: Callable[[Tutorial], None]


class CheckFailed(AssertionError):
    """A numerical claim a step made did not hold."""


class Unavailable(RuntimeError):
    """A step needs something this machine does not have (e.g. a dataset); the message says what."""


class _Style:
    """ANSI styles, or empty strings when colour is off."""

    def __init__(self, on: bool):
        codes = {"bold": "1", "dim": "2", "title": "1;36", "eq": "33", "ok": "32", "bad": "1;31",
                 "head": "35", "num": "36"}
        for name, code in codes.items():
            setattr(self, name, f"\033[{code}m" if on else "")
        self.reset = "\033[0m" if on else ""


def color_wanted(stream: TextIO) -> bool:
    """Colour only for a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    return "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()


class Tutorial:
    """What a step writes to: explanations, live source, numbers, maps, checks and figures."""

    def __init__(self, chapter: int, out: TextIO | None = None, color: bool | None = None,
                 fig_dir: str | os.PathLike | None = None, quick: bool = False):
        self.chapter = chapter
        self.out = out or sys.stdout
        self.s = _Style(color_wanted(self.out) if color is None else color)
        self.fig_dir = Path(fig_dir or os.environ.get("MINICNN_TUTORIAL_OUT", "minicnn-tutorial-figures"))
        self.quick = quick
        self.checks = 0

    # --- text ----------------------------------------------------------------------------------
    def print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def say(self, text: str) -> None:
        """A paragraph, wrapped to the terminal width."""
        width = min(shutil.get_terminal_size((RULE_WIDTH, 24)).columns, RULE_WIDTH)
        for para in textwrap.dedent(text).strip().split("\n\n"):
            self.print(textwrap.fill(" ".join(para.split()), width))
            self.print()

    def equation(self, text: str) -> None:
        for line in textwrap.dedent(text).strip("\n").splitlines():
            self.print(f"    {self.s.eq}{line}{self.s.reset}")
        self.print()

    def heading(self, text: str) -> None:
        self.print(f"{self.s.head}{text}{self.s.reset}")

    # --- the engine's own code -----------------------------------------------------------------
    def code(self, obj, start: str | None = None, end: str | None = None) -> None:
        """Print the live source of `obj` (a minicnn function, class or method), with file line numbers.

        `start` / `end` narrow it to the lines from the first one containing `start` through the
        first one (at or after it) containing `end`, so a long function can be shown in part.
        """
        module = inspect.getmodule(obj)
        if module is None or not (module.__name__ == PACKAGE or module.__name__.startswith(PACKAGE + ".")):
            raise ValueError(f"Tutorial.code: expected an object from the {PACKAGE} package, got {obj!r}")
        lines, first = inspect.getsourcelines(obj)
        first = max(first, 1)  # a whole module is reported as starting at line 0
        lo, hi = 0, len(lines) - 1
        found_lo = _find(lines, start, 0) if start is not None else 0
        found_hi = _find(lines, end, (found_lo or 0) + 1) if end is not None else hi
        if found_lo is None or found_hi is None:  # the engine's code changed: show all of it
            self.print(f"{self.s.dim}(the lines around {start or end!r} moved; showing the whole source){self.s.reset}")
        else:
            lo, hi = found_lo, found_hi
        path = Path(inspect.getsourcefile(obj)).resolve()
        root = Path(sys.modules[PACKAGE].__file__).resolve().parent.parent
        rel = path.relative_to(root).as_posix()
        label = obj.__name__ if inspect.ismodule(obj) else f"{module.__name__}.{obj.__qualname__}"
        self.print(f"{self.s.dim}┌─ source: {rel}:{first + lo}-{first + hi}  ({label}){self.s.reset}")
        for k in range(lo, hi + 1):
            self.print(f"{self.s.dim}{first + k:5d} │{self.s.reset} {lines[k].rstrip()}")
        self.print(f"{self.s.dim}└─{self.s.reset}")
        self.print()

    # --- numbers -------------------------------------------------------------------------------
    def array(self, name: str, a, precision: int = 3) -> None:
        a = np.asarray(a)
        text = np.array2string(a, precision=precision, suppress_small=True, max_line_width=RULE_WIDTH,
                               threshold=400)
        pad = " " * (len(name) + 3)
        body = text.replace("\n", "\n" + pad)
        self.print(f"{self.s.bold}{name}{self.s.reset} = {self.s.num}{body}{self.s.reset}"
                   f"   {self.s.dim}shape {a.shape}{self.s.reset}")

    def blocks(self, name: str, a, lo: float | None = None, hi: float | None = None) -> None:
        """Draw a 2-D array as a map of Unicode blocks (two characters per cell), low ' ' to high '█'."""
        a = np.asarray(a, dtype=np.float64)
        if a.ndim != 2:
            raise ValueError(f"Tutorial.blocks: expected a 2-D array, got shape {a.shape}")
        lo = float(a.min()) if lo is None else lo
        hi = float(a.max()) if hi is None else hi
        span = hi - lo if hi > lo else 1.0
        idx = np.clip(((a - lo) / span * (len(SHADES) - 1)).round().astype(int), 0, len(SHADES) - 1)
        self.print(f"{self.s.bold}{name}{self.s.reset}  {self.s.dim}{a.shape[0]}x{a.shape[1]}, "
                   f"' ' = {lo:.3g} … '█' = {hi:.3g}{self.s.reset}")
        border = "─" * (2 * a.shape[1])
        self.print(f"  ┌{border}┐")
        for row in idx:
            self.print("  │" + "".join(SHADES[k] * 2 for k in row) + "│")
        self.print(f"  └{border}┘")

    def table(self, headers: Sequence[str], rows: Sequence[Sequence]) -> None:
        cells = [[str(h) for h in headers]] + [[_fmt(v) for v in row] for row in rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

        def joined(row: list[str]) -> str:  # first column left-aligned, numbers right-aligned
            return "  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths, strict=True)))

        self.print(f"{self.s.bold}{joined(cells[0])}{self.s.reset}")
        self.print("  ".join("─" * w for w in widths))
        for row in cells[1:]:
            self.print(joined(row))
        self.print()

    # --- checks: every claim is an assertion ---------------------------------------------------
    def check(self, what: str, got, want, tol: float = 1e-12) -> float:
        """Assert max |got - want| <= tol and print the result. Shapes must match, except that a
        scalar `want` is compared with every entry of `got`."""
        got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
        if want.ndim == 0:
            want = np.broadcast_to(want, got.shape)
        if got.shape != want.shape:
            self._report(False, f"{what}: shapes differ, {got.shape} vs {want.shape}")
        diff = float(np.max(np.abs(got - want))) if got.size else 0.0
        self._report(diff <= tol, f"{what}: max diff {diff:.3g} (tolerance {tol:g})")
        return diff

    def check_true(self, what: str, condition: bool) -> None:
        self._report(bool(condition), what)

    def _report(self, ok: bool, message: str) -> None:
        self.checks += 1
        if not ok:
            self.print(f"{self.s.bad}✗ check FAILED: {message}{self.s.reset}")
            raise CheckFailed(message)
        self.print(f"{self.s.ok}✓ check: {message}{self.s.reset}")

    # --- figures -------------------------------------------------------------------------------
    def pyplot(self):
        """matplotlib.pyplot on the Agg backend: figures are files, no display needed."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        return plt

    def save_images(self, name: str, images, titles, height: float = 3.0) -> Path:
        """A row of grey-scale pictures with titles, saved as one PNG (see `save_figure`)."""
        images, titles = list(images), list(titles)
        fig, axes = self.pyplot().subplots(1, len(images), figsize=(9, height))
        for ax, img, title in zip(axes, images, titles, strict=True):
            ax.imshow(img, cmap="gray")
            ax.set_title(title, fontsize=9)
            ax.axis("off")
        return self.save_figure(fig, name)

    def save_figure(self, fig, name: str) -> Path:
        self.fig_dir.mkdir(parents=True, exist_ok=True)
        path = self.fig_dir / f"ch{self.chapter:02d}_{name}.png"
        fig.savefig(path, dpi=90, bbox_inches="tight")
        self.pyplot().close(fig)
        self.print(f"figure saved: {path}")
        return path


def _find(lines: list[str], needle: str, begin: int) -> int | None:
    for k in range(begin, len(lines)):
        if needle in lines[k]:
            return k
    return None


def _fmt(v) -> str:
    if isinstance(v, float | np.floating):
        return f"{int(v):,}" if float(v).is_integer() and abs(v) < 1e15 else f"{v:.4g}"
    if isinstance(v, int | np.integer):
        return f"{v:,}"
    return str(v)


def run_steps(module: ModuleType, number: int, pause: bool = True, start: int = 1, quick: bool = False,
              fig_dir: str | os.PathLike | None = None, out: TextIO | None = None,
              inp: TextIO | None = None, color: bool | None = None) -> int:
    """Run chapter `number` from step `start`. Returns the exit code: 0, 1 if a check failed, 2 for a bad
    --step, 3 if a step needs something missing here (a dataset)."""
    t = Tutorial(number, out=out, color=color, fig_dir=fig_dir, quick=quick)
    inp = inp or sys.stdin
    steps: list[Step] = module.STEPS
    if not 1 <= start <= len(steps):
        t.print(f"chapter {number} has steps 1..{len(steps)}; got --step {start}")
        return 2
    s = t.s
    t.print(f"{s.title}Chapter {number}: {module.TITLE}{s.reset}")
    t.print(f"{s.dim}{module.SUMMARY}{s.reset}")
    t.print()
    k = start
    while k <= len(steps):
        step = steps[k - 1]
        t.print(f"{s.title}{'━' * RULE_WIDTH}{s.reset}")
        t.print(f"{s.title}Step {k}/{len(steps)} · {step.title}{s.reset}")
        t.print()
        t.say(step.text)
        t.equation(step.equation)
        try:
            step.run(t)
        except CheckFailed as e:
            t.print(f"{s.bad}chapter {number} stopped: a check failed at step {k} ({e}){s.reset}")
            return 1
        except Unavailable as e:
            t.print(f"{s.bad}chapter {number} cannot run step {k} here: {e}{s.reset}")
            return 3
        t.print()
        if k == len(steps):
            break
        if pause:
            t.print(f"{s.dim}[Enter] next step · [1-{len(steps)}] jump · [q] quit{s.reset}")
            answer = inp.readline()
            if answer == "":  # end of input: nobody to ask, run straight through
                pause = False
            answer = answer.strip().lower()
            if answer in ("q", "quit"):
                t.print(f"stopped after step {k} of {len(steps)}; resume with "
                        f"`minicnn tutorial {number} --step {k + 1}`")
                return 0
            if answer.isdigit() and 1 <= int(answer) <= len(steps):
                k = int(answer)
                continue
        k += 1
    t.print(f"{s.ok}Chapter {number} done: {len(steps) - start + 1} steps, {t.checks} checks passed.{s.reset}")
    return 0
