"""The step framework every chapter uses.

A chapter is a module `tutorials/chNN_name.py` with

    TITLE = "The layer abstraction"
    SUMMARY = "one line for the chapter list"
    STEPS = [Step(title, text, equation, run), ...]

Each step prints a short explanation and its equation, then calls `run(t)` with a `Tutorial` `t`.
`run` shows the engine's own code with `t.code(obj)` (the live source of a `minicnn` function or
method, read with `inspect`, never a copy), runs it on a tiny example, prints the numbers
(`t.array`, `t.blocks`, `t.table`) and states each numerical claim with `t.check(...)`, which is a
real assertion: a failing check stops the chapter with exit code 1. `t.shown` lists what each
`t.code` printed (`Shown`); tests/test_tutorials_shown_code.py traces every chapter and checks that
each excerpt ran in the step that showed it (the rule: tutorials/_trace.py).

Layout. Every line fits the terminal width (`shutil.get_terminal_size`, so $COLUMNS wins; 80 when
the width cannot be read): prose is wrapped, long source lines are folded at a space or after a
punctuation mark (continuation rows carry `┆` instead of a line number), tables too wide for the
screen are printed one record per row, and any other long line is wrapped at word boundaries.
Three or more checks in a row fold into one line ("5 checks passed: ..."); `--verbose` prints each.
When the output cannot encode Unicode (e.g. PYTHONIOENCODING=ascii) every line is transliterated
to ASCII first (`to_ascii`).

Navigation. Steps are self-contained (each builds its own example), so `--step K` can start
anywhere. Interactively (stdin and stdout terminals) a step longer than the screen pauses with
`-- more --` (space or Enter: go on, q: quit); after each step the prompt repeats chapter, step and
title and takes Enter (next step), a step number (jump) or q (quit); anything else is refused with
a one-line hint. `--no-pause` runs straight through. Colour only when stdout is a terminal and
NO_COLOR is unset.
"""

from __future__ import annotations

import inspect
import os
import re
import shutil
import sys
import textwrap
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TextIO

import numpy as np

from minicnn.files import write_atomic

PACKAGE = "minicnn"
SHADES = " ░▒▓█"  # blocks from low to high, used by Tutorial.blocks
DEFAULT_SIZE = (80, 24)  # columns, rows when the terminal size cannot be read
FOLD_MARK = "┆"  # the gutter of a folded source line's continuation rows
FOLD_AFTER = ",([{=+*/"  # a code line may be folded after one of these when it has no space to fold at
MIN_RUN_TO_FOLD = 3  # this many passing checks in a row print as one line (unless --verbose)
PROMPT_ROWS = 2  # rows a page keeps free: the prompt and the reader's answer
PICTURE_PAGE = DEFAULT_SIZE[1]  # a picture (`Tutorial.blocks`) fits one page of this many rows, whole
PICTURE_FRAME = 3  # rows a picture takes besides its cells: the title and the two borders
SHADE_DIGITS = 9  # values are rounded to this many decimals before binning: equal values, equal shades
UNAVAILABLE = 2  # run_steps' exit code when a step needs something this machine lacks (a dataset)

# What a terminal that cannot print Unicode shows instead (anything else: NFKD, then '?').
ASCII = {"━": "=", "─": "-", "│": "|", "┌": "+", "└": "+", "┐": "+", "┘": "+", FOLD_MARK: ":", "░": ".",
         "▒": ":", "▓": "#", "█": "@", "✓": "ok", "✗": "X", "·": ".", "→": "->", "←": "<-", "↔": "<->",
         "−": "-", "–": "-", "—": "--", "…": "...", "×": "x", "≤": "<=", "≥": ">=", "≈": "~=", "≠": "!=",
         "≡": "==", "Σ": "sum", "∑": "sum", "⊙": "(.)", "∘": "o", "ᵀ": "^T", "²": "^2", "³": "^3", "⁻¹": "^-1",
         "⁻": "^-", "¹": "^1", "α": "alpha", "β": "beta", "γ": "gamma", "δ": "d", "ε": "eps", "η": "eta",
         "μ": "mu", "π": "pi", "σ": "sigma", "λ": "lambda", "⌊": "floor(", "⌋": ")", "⌈": "ceil(", "⌉": ")",
         "⟨": "<", "⟩": ">", "‖": "||", "∂": "d", "√": "sqrt", "°": " deg", "∈": " in ", "⊂": " in ",
         "ᵢ": "_i", "ₖ": "_k", "ₙ": "_n", "ₘ": "_m", "ₜ": "_t", "’": "'", "‘": "'", "“": '"', "”": '"',
         "├": "+", "┤": "+", "■": "#", "□": "."}
NUMBER = re.compile(r"^[-+−]?[\d,]*\.?\d+(e[-+]?\d+)?%?$|^(exact|inf|nan|-|)$")  # a table cell that is a number
ANSI_CODE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class Step:
    title: str
    text: str
    equation: str
    run: Callable[[Tutorial], None]


@dataclass(frozen=True)
class Shown:
    """What one `t.code` call printed: the object and the file lines `first..last` of the excerpt
    (the shown-code test, tests/test_tutorials_shown_code.py, checks that they ran in that step)."""

    obj: object
    label: str  # as printed under the header, e.g. minicnn.core.Layer.forward
    path: str  # the source file, resolved
    first: int
    last: int


class CheckFailed(AssertionError):
    """A numerical claim a step made did not hold."""


class Unavailable(RuntimeError):
    """A step needs something this machine does not have (e.g. a dataset); the message says what."""


class QuitChapter(Exception):
    """The reader pressed q at a `-- more --` pause."""


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


def unicode_ok(stream: TextIO) -> bool:
    """Can `stream` encode the box-drawing and math characters the tutorials print?"""
    encoding = getattr(stream, "encoding", None)
    if not encoding:  # an in-memory stream (io.StringIO) takes any text
        return True
    try:
        ("━│┌└░▒▓█✓✗·→−…≤Σ⊙ᵀ²₀αδ⌊⟨‖" + FOLD_MARK).encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def to_ascii(text: str) -> str:
    """Transliterate `text` for a terminal without Unicode: the table ASCII first, then each remaining
    character's compatibility decomposition (₃ → 3, é → e), else '?'."""
    out = []
    for ch in text:
        if ord(ch) < 128:
            out.append(ch)
        elif ch in ASCII:
            out.append(ASCII[ch])
        else:
            plain = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
            out.append(plain or "?")
    return "".join(out)


def visible_len(line: str) -> int:
    """Columns a line takes on screen: colour codes take none."""
    return len(ANSI_CODE.sub("", line))


def wrap_line(line: str, width: int, indent: str | None = None) -> list[str]:
    """Wrap one line at spaces to `width` columns; continuation rows get `indent` (by default the
    line's own leading spaces plus 4). A word longer than a row is split only where nothing else fits."""
    if visible_len(line) <= width:
        return [line]
    plain = ANSI_CODE.sub("", line)  # a line too long to fit loses its colour rather than its words
    lead = len(plain) - len(plain.lstrip(" "))
    if indent is None:
        indent = " " * min(lead + 4, width // 2)
    return textwrap.wrap(plain[lead:], width, initial_indent=plain[:lead], subsequent_indent=indent,
                         break_long_words=True, break_on_hyphens=False, drop_whitespace=True) or [""]


def fold_code(line: str, width: int, rest_width: int | None = None) -> list[str]:
    """Fold one source line into a first piece of at most `width` columns and further pieces of at most
    `rest_width` (default `width`): at the last space that fits, else right after a punctuation mark
    (`FOLD_AFTER`), never inside a name or number. Joining the pieces without whitespace gives the line
    without whitespace (the tests check this)."""
    pieces, rest = [], line.rstrip()
    lead = len(rest) - len(rest.lstrip(" "))
    first = True
    while len(rest) > (width if first else rest_width or width):
        width = width if first else rest_width or width
        cut = rest.rfind(" ", lead + 1 if first else 1, width + 1)
        if cut <= 0:
            marks = [rest.rfind(m, 0, width) for m in FOLD_AFTER]
            cut = max(marks) + 1 if max(marks) > 0 else width
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip(" ")
        first = False
    pieces.append(rest)
    return pieces


class Tutorial:
    """What a step writes to: explanations, live source, numbers, maps, checks and figures.

    `width` defaults to the terminal's (80 when unknown); `page_rows` turns on `-- more --` paging
    (the runner sets it for an interactive terminal); `verbose` prints every check on its own line.
    """

    def __init__(self, chapter: int, out: TextIO | None = None, color: bool | None = None,
                 fig_dir: str | os.PathLike | None = None, quick: bool = False, width: int | None = None,
                 verbose: bool = False, page_rows: int | None = None, inp: TextIO | None = None,
                 ascii_only: bool | None = None):
        self.chapter = chapter
        self.out = out or sys.stdout
        self.s = _Style(color_wanted(self.out) if color is None else color)
        self.fig_dir = Path(fig_dir or os.environ.get("MINICNN_TUTORIAL_OUT", "minicnn-tutorial-figures"))
        self.quick = quick
        self.width = max(40, width or shutil.get_terminal_size(DEFAULT_SIZE).columns)
        self.verbose = verbose
        self.page_rows = page_rows
        self.inp = inp or sys.stdin
        self.ascii = (not unicode_ok(self.out)) if ascii_only is None else ascii_only
        self.where = ""  # "chapter 3 · step 2/4 · title", shown by the pauses
        self.checks = 0
        self.shown: list[Shown] = []  # every `code` call, in order
        self._passed: list[str] = []  # passing checks not yet printed (folded when there are several)
        self._rows = 0  # rows printed since the last pause

    # --- output: every line goes through here ---------------------------------------------------
    def print(self, text: str = "") -> None:
        """Print `text`, each line wrapped to the width (ASCII when the terminal needs it)."""
        self._flush_checks()
        self._write(text)

    def _write(self, text: str, indent: str | None = None) -> None:
        if self.ascii:
            text = to_ascii(text)
        for line in text.split("\n"):
            for row in wrap_line(line, self.width, indent):
                self._row(row)

    def _row(self, row: str) -> None:
        if self.page_rows is not None and self._rows >= self.page_rows - PROMPT_ROWS:
            self._more()
        print(row, file=self.out, flush=True)
        self._rows += 1

    def _more(self) -> None:
        """The `-- more --` pause: space or Enter goes on, q quits the chapter."""
        prompt = self._fit_prompt(f"-- more -- {self.where}", " (space/Enter: more, q: quit)")
        print(f"{self.s.dim}{prompt}{self.s.reset}", end="", file=self.out, flush=True)
        key = read_key(self.inp)
        print("\r\033[K", end="", file=self.out, flush=True)  # erase the prompt, as `less` does
        self._rows = 0
        if key.strip().lower().startswith("q"):
            raise QuitChapter

    def ask(self, prompt: str, keys: str) -> str:
        """Print a one-line prompt (`prompt` shortened if needed, then `keys`) and read the answer (a
        line); '' at end of input."""
        self._flush_checks()
        print(f"{self.s.dim}{self._fit_prompt(prompt, keys)}{self.s.reset}", end="", file=self.out, flush=True)
        answer = self.inp.readline()
        if not self.inp.isatty():  # a terminal echoes the answer's newline; a pipe does not
            print(file=self.out, flush=True)
        self._rows = 0
        return answer

    def _fit(self, text: str) -> str:
        """One row: transliterated if needed, shortened at a word boundary to the width."""
        text = to_ascii(text) if self.ascii else text
        if len(text) <= self.width:
            return text
        return textwrap.shorten(text, self.width - 1, placeholder=" …")

    def _fit_prompt(self, where: str, keys: str) -> str:
        """A one-row prompt: `where` shortened at a word boundary so that `keys` always fits."""
        room = self.width - len(self._fit(keys)) - 1
        return self._fit(where if len(where) <= room else textwrap.shorten(where, room, placeholder=" …")) + \
            self._fit(keys)

    def say(self, text: str) -> None:
        """A paragraph, wrapped to the terminal width."""
        for para in textwrap.dedent(text).strip().split("\n\n"):
            self.print(textwrap.fill(" ".join(para.split()), self.width, break_on_hyphens=False))
            self.print()

    def equation(self, text: str) -> None:
        for line in textwrap.dedent(text).strip("\n").splitlines():
            self._flush_checks()
            self._write(f"    {self.s.eq}{line}{self.s.reset}", indent=" " * 8)
        self.print()

    def heading(self, text: str) -> None:
        self.print()
        self.print(f"{self.s.head}{text}{self.s.reset}")

    def end_step(self) -> None:
        """Print the checks still folded (the runner calls it after each step)."""
        self._flush_checks()

    # --- the engine's own code -----------------------------------------------------------------
    def code(self, obj, start: str | None = None, end: str | None = None) -> None:
        """Print the live source of `obj` (a minicnn function, class or method), with file line numbers.

        `start` / `end` narrow it to the lines from the first one containing `start` through the
        first one after it containing `end` (`end == start`: that one line), so a long function can be
        shown in part.
        Lines wider than the screen are folded (`fold_code`); continuation rows have no number.
        """
        module = inspect.getmodule(obj)
        if module is None or not (module.__name__ == PACKAGE or module.__name__.startswith(PACKAGE + ".")):
            raise ValueError(f"Tutorial.code: expected an object from the {PACKAGE} package, got {obj!r}")
        lines, first = inspect.getsourcelines(obj)
        first = max(first, 1)  # a whole module is reported as starting at line 0
        lo, hi = 0, len(lines) - 1
        found_lo = _find(lines, start, 0) if start is not None else 0
        if end is None:
            found_hi = hi
        elif end == start:  # one line
            found_hi = found_lo
        else:
            found_hi = _find(lines, end, (found_lo or 0) + 1)
        if found_lo is None or found_hi is None:  # the engine's code changed: show all of it
            self.print(f"{self.s.dim}(the lines around {start or end!r} moved; showing the whole source){self.s.reset}")
        else:
            lo, hi = found_lo, found_hi
        path = Path(inspect.getsourcefile(obj)).resolve()
        root = Path(sys.modules[PACKAGE].__file__).resolve().parent.parent
        rel = path.relative_to(root).as_posix()
        label = obj.__name__ if inspect.ismodule(obj) else f"{module.__name__}.{obj.__qualname__}"
        self.shown.append(Shown(obj, label, str(path), first + lo, first + hi))
        header = f"┌─ source: {rel}:{first + lo}-{first + hi}"
        self.print(f"{self.s.dim}{header}{self.s.reset}")
        self.print(f"{self.s.dim}│ {label}{self.s.reset}")
        digits = len(str(first + hi))
        gutter = " " * digits + f" {FOLD_MARK} "
        text_width = self.width - len(gutter)
        for k in range(lo, hi + 1):
            line = lines[k].rstrip()
            lead = " " * min(len(line) - len(line.lstrip(" ")) + 4, text_width // 2)
            for i, piece in enumerate(fold_code(line, text_width, text_width - len(lead))):
                if i == 0:
                    self.print(f"{self.s.dim}{first + k:{digits}d} │{self.s.reset} {piece}")
                else:
                    self.print(f"{self.s.dim}{gutter}{self.s.reset}{lead}{piece}")
        self.print(f"{self.s.dim}└─{self.s.reset}")
        self.print()

    # --- numbers -------------------------------------------------------------------------------
    def array(self, name: str, a, precision: int = 3) -> None:
        """`name = [numbers]   shape (..)`; the numbers go below the name when the name is long."""
        a = np.asarray(a)
        shape = f"   {self.s.dim}shape {a.shape}{self.s.reset}"
        inline = len(name) + 3 <= self.width // 3
        pad = " " * (len(name) + 3) if inline else "    "
        text = np.array2string(a, precision=precision, suppress_small=True, threshold=400,
                               max_line_width=self.width - len(pad))
        body = f"{self.s.num}{text.replace(chr(10), chr(10) + pad)}{self.s.reset}"
        if inline:
            self.print(f"{self.s.bold}{name}{self.s.reset} = {body}{shape}")
        else:
            self.print(f"{self.s.bold}{name}{self.s.reset} ={shape}")
            self.print(pad + body)

    def blocks(self, name: str, a, lo: float | None = None, hi: float | None = None) -> None:
        """Draw a 2-D array as a map of blocks (two characters per cell, one when the screen is too
        narrow), low ' ' to high '█'. A picture taller than one page of PICTURE_PAGE rows is shown
        downscaled (the mean of each f x f block, f the smallest factor that fits; the title says
        so), and when paging, a picture that would not fit the rest of the page starts a new one."""
        a = np.asarray(a, dtype=np.float64)
        if a.ndim != 2:
            raise ValueError(f"Tutorial.blocks: expected a 2-D array, got shape {a.shape}")
        lo = float(a.min()) if lo is None else lo
        hi = float(a.max()) if hi is None else hi
        size = f"{a.shape[0]}x{a.shape[1]}"
        room = PICTURE_PAGE - PROMPT_ROWS - PICTURE_FRAME
        factor = max(-(-a.shape[0] // room), -(-(2 * a.shape[1] + 4) // self.width), 1)
        if factor > 1:
            a = block_means(a, factor)
            size += f" shown as {a.shape[0]}x{a.shape[1]} ({factor}x{factor} means)"
        span = hi - lo if hi > lo else 1.0
        scaled = np.round((a - lo) / span, SHADE_DIGITS) * (len(SHADES) - 1)
        idx = np.clip(np.floor(scaled + 0.5).astype(int), 0, len(SHADES) - 1)
        cell = 2 if 2 * a.shape[1] + 4 <= self.width else 1
        self._flush_checks()
        if self.page_rows is not None and self._rows + a.shape[0] + PICTURE_FRAME > self.page_rows - PROMPT_ROWS:
            self._more()
        self.print(f"{self.s.bold}{name}{self.s.reset}  {self.s.dim}{size}, "
                   f"' ' = {lo:.3g} … '█' = {hi:.3g}{self.s.reset}")
        border = "─" * (cell * a.shape[1])
        self.print(f"  ┌{border}┐")
        for row in idx:
            self.print("  │" + "".join(SHADES[k] * cell for k in row) + "│")
        self.print(f"  └{border}┘")

    def table(self, headers: Sequence[str], rows: Sequence[Sequence]) -> None:
        """Columns when they fit the width; otherwise one record per row (`header: value` pairs)."""
        head = [str(h) for h in headers]
        cells = [[_fmt(v) for v in row] for row in rows]
        widths = [max(len(r[i]) for r in [head, *cells]) for i in range(len(headers))]
        if sum(widths) + 2 * (len(widths) - 1) > self.width:
            for row in cells:
                self.print(f"{self.s.bold}{row[0]}{self.s.reset}")
                pairs = [f"{h}: {v}" for h, v in zip(head[1:], row[1:], strict=True)]
                self._write("    " + ";  ".join(pairs), indent=" " * 4)
            self.print()
            return

        right = [i > 0 and all(NUMBER.match(r[i]) for r in cells) for i in range(len(head))]

        def joined(row: list[str]) -> str:  # columns of numbers right-aligned, text left-aligned
            return "  ".join(v.rjust(w) if r else v.ljust(w) for v, w, r in zip(row, widths, right, strict=True))

        self.print(f"{self.s.bold}{joined(head)}{self.s.reset}")
        self.print("  ".join("─" * w for w in widths))
        for row in cells:
            self.print(joined(row))
        self.print()

    def gradcheck_table(self, report) -> None:
        """A `minicnn.gradcheck` report as a table that fits the screen."""
        self.print(f"gradcheck {report.layer}  (float64, central differences, tolerance {report.tol:g})")
        self.table(["tensor", "shape", "max rel err", "at", "analytic", "numeric"],
                   [[r.name, r.shape, f"{r.max_rel_error:.2e}", r.worst_index, f"{r.analytic:.6g}",
                     f"{r.numeric:.6g}"] for r in report.tensors])
        yes = {True: "yes", False: "NO"}
        self.print(f"backward deterministic: {yes[report.deterministic]};  zero upstream → zero gradients: "
                   f"{yes[report.zero_upstream_ok]};  result: {'PASS' if report.ok else 'FAIL'}")
        self.print()

    def summary_table(self, summary) -> None:
        """A `minicnn.analysis.Summary` (per-layer shape, parameters, MACs, receptive field) that fits."""
        rows = [[r.name, r.type, "x".join(map(str, r.output_shape)), r.params, r.macs,
                 str(r.rf) if r.rf is not None else "?"] for r in summary.rows]
        self.table(["layer", "type", "output", "params", "MACs", "RF"], rows)
        self.print(f"input {'x'.join(map(str, summary.input_shape))} → output "
                   f"{'x'.join(map(str, summary.output_shape))};  parameters (with biases, BatchNorm): "
                   f"{summary.params:,}")
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
            self._flush_checks()
            self._write(f"{self.s.bad}✗ check FAILED: {message}{self.s.reset}", indent="    ")
            raise CheckFailed(message)
        if self.verbose:
            self._write(f"{self.s.ok}✓ check: {message}{self.s.reset}", indent="    ")
        else:
            self._passed.append(message)

    def _flush_checks(self) -> None:
        passed, self._passed = self._passed, []
        if len(passed) < MIN_RUN_TO_FOLD:
            for message in passed:
                self._write(f"{self.s.ok}✓ check: {message}{self.s.reset}", indent="    ")
            return
        claims = "; ".join(m.split(": max diff")[0] for m in passed)
        self._write(f"{self.s.ok}✓ {len(passed)} checks passed: {claims}{self.s.reset}", indent="    ")

    # --- figures -------------------------------------------------------------------------------
    def pyplot(self):
        """matplotlib.pyplot on the Agg backend: figures are files, no display needed."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        return plt

    def save_images(self, name: str, images, titles, height: float = 3.0, cmap: str = "gray") -> Path:
        """A row of pictures with titles, saved as one PNG (see `save_figure`). Each picture is scaled
        to its own min..max, and framed so a white picture stays visible on the white page."""
        images, titles = list(images), list(titles)
        fig, axes = self.pyplot().subplots(1, len(images), figsize=(9, height))
        for ax, img, title in zip(np.atleast_1d(axes), images, titles, strict=True):
            ax.imshow(img, cmap=cmap)
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        return self.save_figure(fig, name)

    def save_figure(self, fig, name: str) -> Path:
        self.fig_dir.mkdir(parents=True, exist_ok=True)
        path = self.fig_dir / f"ch{self.chapter:02d}_{name}.png"
        # the tutorial's own figure, redrawn on each run; a link, FIFO or folder at the path is refused
        write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90, bbox_inches="tight"), overwrite=True)
        self.pyplot().close(fig)
        self.print(f"figure saved: {path}")
        return path


def read_key(inp: TextIO) -> str:
    """One key from a terminal (no Enter needed), or one line from anything else; '' at end of input."""
    if inp.isatty():
        try:
            import termios
            import tty
        except ImportError:  # not a POSIX terminal: read a line
            return inp.readline() or "\n"
        fd = inp.fileno()
        saved = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd)
            return os.read(fd, 1).decode(errors="replace") or "q"
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
    return inp.readline() or "\n"  # end of input: nobody to answer, go on


def block_means(a: np.ndarray, factor: int) -> np.ndarray:
    """The mean of each `factor` x `factor` block of a 2-D array (edge blocks: of the cells there)."""
    h, w = a.shape
    rows, cols = -(-h // factor), -(-w // factor)
    padded = np.full((rows * factor, cols * factor), np.nan)
    padded[:h, :w] = a
    return np.nanmean(padded.reshape(rows, factor, cols, factor), axis=(1, 3))  # (rows, f, cols, f) -> (rows, cols)


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


def interactive(inp: TextIO, out: TextIO) -> bool:
    return bool(getattr(inp, "isatty", lambda: False)() and getattr(out, "isatty", lambda: False)())


def run_steps(module: ModuleType, number: int, pause: bool = True, start: int = 1, quick: bool = False,
              fig_dir: str | os.PathLike | None = None, out: TextIO | None = None,
              inp: TextIO | None = None, color: bool | None = None, err: TextIO | None = None,
              verbose: bool = False, width: int | None = None, page_rows: int | None = None,
              next_chapter: tuple[int, str] | None = None, exercises: Sequence[str] = ()) -> int:
    """Run chapter `number` from step `start`. Returns the exit code: 0, 1 if a check failed, 2
    (UNAVAILABLE) for a bad --step or when a step needs something missing here (a dataset), the
    codes every minicnn command uses.

    `page_rows` pages long steps (`-- more --`); by default it is the terminal's height when both
    `inp` and `out` are terminals and `pause` is on, else no paging. `next_chapter` (number, title) and
    `exercises` are named at the end."""
    out, inp, err = out or sys.stdout, inp or sys.stdin, err or sys.stderr
    if page_rows is None and pause and interactive(inp, out):
        page_rows = shutil.get_terminal_size(DEFAULT_SIZE).lines
    t = Tutorial(number, out=out, color=color, fig_dir=fig_dir, quick=quick, width=width, verbose=verbose,
                 page_rows=page_rows, inp=inp)
    steps: list[Step] = module.STEPS
    if not 1 <= start <= len(steps):
        message = (f"minicnn tutorial: chapter {number} has steps 1..{len(steps)}; got --step {start} "
                   f"(try --step 1)")
        print(to_ascii(message) if not unicode_ok(err) else message, file=err)
        return 2
    return _run(t, module, number, steps, pause, start, next_chapter, exercises)


def _run(t: Tutorial, module: ModuleType, number: int, steps: Sequence[Step], pause: bool, start: int,
         next_chapter: tuple[int, str] | None, exercises: Sequence[str]) -> int:
    s = t.s
    t.print(f"{s.title}Chapter {number}: {module.TITLE}{s.reset}")
    t.print(f"{s.dim}{module.SUMMARY}{s.reset}")
    t.print()
    ran: list[int] = []
    k = start
    while k <= len(steps):
        step = steps[k - 1]
        t.where = f"chapter {number} · step {k}/{len(steps)} · {step.title}"
        try:
            t.print(f"{s.title}{'━' * min(t.width, 78)}{s.reset}")
            t.print(f"{s.title}Step {k}/{len(steps)} · {step.title}{s.reset}")
            t.print()
            t.say(step.text)
            t.equation(step.equation)
            step.run(t)
            t.end_step()
        except CheckFailed as e:
            t.print(f"{s.bad}chapter {number} stopped: a check failed at step {k} ({e}){s.reset}")
            return 1
        except Unavailable as e:
            t.print(f"{s.bad}chapter {number} cannot run step {k} here: {e}{s.reset}")
            return UNAVAILABLE
        except QuitChapter:
            t.print(f"stopped in step {k} of {len(steps)}; resume with `minicnn tutorial {number} --step {k}`")
            return 0
        if k not in ran:
            ran.append(k)
        t.print()
        if k == len(steps):
            break
        if pause:
            answer = _ask_next(t, number, k, len(steps), step.title)
            if answer is None:  # end of input: nobody to ask, run straight through
                pause = False
            elif answer == "q":
                t.print(f"stopped after step {k} of {len(steps)}; resume with "
                        f"`minicnn tutorial {number} --step {k + 1}`")
                return 0
            elif answer.isdigit():
                k = int(answer)
                continue
        k += 1
    _finish(t, number, steps, ran, next_chapter, exercises)
    return 0


def _ask_next(t: Tutorial, number: int, k: int, n: int, title: str) -> str | None:
    """The prompt after step k: '' = next, a step number, 'q', or None at end of input. Anything else
    is refused with a one-line hint and asked again."""
    while True:
        raw = t.ask(f"ch {number} · step {k}/{n} · {title}", f" · Enter: step {k + 1}, 1-{n}: jump, q: quit > ")
        if raw == "":
            return None
        answer = raw.strip().lower()
        if answer in ("", "q", "quit"):
            return "" if answer == "" else "q"
        if answer.isdigit() and 1 <= int(answer) <= n:
            return answer
        t.print(f"{t.s.bad}{answer[:20]!r} is not a step of chapter {number}: press Enter, type 1-{n}, "
                f"or q.{t.s.reset}")


def _finish(t: Tutorial, number: int, steps: Sequence[Step], ran: list[int],
            next_chapter: tuple[int, str] | None, exercises: Sequence[str]) -> None:
    s = t.s
    which = "all" if sorted(ran) == list(range(1, len(steps) + 1)) else ", ".join(map(str, ran))
    t.print(f"{s.ok}Chapter {number} done: ran step(s) {which} of {len(steps)}, {t.checks} checks "
            f"passed{'' if t.verbose else ' (--verbose: each)'}.{s.reset}")
    skipped = [k for k in range(1, len(steps) + 1) if k not in ran]
    if skipped:
        t.print(f"Not run: step(s) {', '.join(map(str, skipped))} (`minicnn tutorial {number} --step "
                f"{skipped[0]}`).")
    if exercises:
        t._write(f"Exercises: {', '.join(exercises)}", indent=" " * len("Exercises: "))
        t.print(f"    start one with `minicnn exercise start {exercises[0]}`")
    if next_chapter is not None:
        t.print(f"Next: `minicnn tutorial {next_chapter[0]}`, chapter {next_chapter[0]}: {next_chapter[1]}")
    else:
        t.print("That was the last chapter: `minicnn tutorial` lists them all.")
