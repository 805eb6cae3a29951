"""Terminal tutorials: the lecture step by step, each equation shown as minicnn's own code and run.

    minicnn tutorial             list the chapters
    minicnn tutorial 5           run chapter 5 (Enter: next step, q: quit)
    python -m tutorials 5 --no-pause --step 3

Chapters are the modules `tutorials/chNN_*.py`; the step framework is `tutorials/_runner.py`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import re
import shutil
import sys
from types import ModuleType

_CHAPTER = re.compile(r"ch(\d\d)_\w+$")


def chapter_modules() -> dict[int, str]:
    """Chapter number -> module name, for every `chNN_*.py` in this package."""
    found = {}
    for info in pkgutil.iter_modules(__path__):
        m = _CHAPTER.match(info.name)
        if m:
            found[int(m.group(1))] = f"{__name__}.{info.name}"
    return dict(sorted(found.items()))


def chapter_numbers() -> str:
    """The chapters for a message: "1-15" when they run without a gap, else "1, 2, 4"."""
    numbers = list(chapter_modules())
    if numbers and numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"{numbers[0]}-{numbers[-1]}"
    return ", ".join(map(str, numbers))


def load_chapter(number: int) -> ModuleType:
    modules = chapter_modules()
    if number not in modules:
        raise ValueError(f"no chapter {number}; chapters are {chapter_numbers()}")
    return importlib.import_module(modules[number])


def list_chapters(out=None, page_rows: int | None = None, inp=None) -> None:
    """Print the chapter menu; with `page_rows` (a terminal's height) it pauses with `-- more --`
    before the screen is full, and q there ends the list."""
    from ._runner import QuitChapter, Tutorial

    t = Tutorial(0, out=out or sys.stdout, color=False, page_rows=page_rows, inp=inp)
    t.where = "the chapters"
    try:
        _list(t)
    except QuitChapter:
        t.print()


def _list(t) -> None:
    t.print("minicnn tutorials — the lecture, step by step (`minicnn tutorial N` runs one):")
    t.print()
    for number, name in chapter_modules().items():
        try:
            module = importlib.import_module(name)
        except ImportError as e:  # a chapter whose engine code is missing in this install
            t.print(f"  {number:2d}. (unavailable: {e})")
            continue
        t.print(f"  {number:2d}. {module.TITLE} ({len(module.STEPS)} steps)")
        t._write(f"      {module.SUMMARY}", indent=" " * 6)
    t.print()
    t.print("Keys: Enter = next step, a number = jump to that step, q = quit; space = more.  Options: "
            "--no-pause, --step K, --quick, --verbose, --out DIR.")


def chapter_title(number: int) -> str:
    return load_chapter(number).TITLE


def _error(message: str) -> None:
    """A user's mistake: one line on stderr (in ASCII when stderr cannot print Unicode)."""
    from ._runner import to_ascii, unicode_ok

    print(message if unicode_ok(sys.stderr) else to_ascii(message), file=sys.stderr)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("chapter", nargs="?", type=int, help="chapter number (omit to list the chapters)")
    parser.add_argument("--no-pause", action="store_true", help="run every step without waiting for Enter")
    parser.add_argument("--step", type=int, default=1, metavar="K", help="start at step K")
    parser.add_argument("--quick", action="store_true",
                        help="smallest examples (chapter 14 trains on a tiny subset); also MINICNN_TUTORIAL_QUICK=1")
    parser.add_argument("--verbose", action="store_true", help="print every check on its own line "
                        "(by default three or more passing checks in a row share one line)")
    parser.add_argument("--out", metavar="DIR", help="folder for the PNG figures "
                        "(default: $MINICNN_TUTORIAL_OUT or ./minicnn-tutorial-figures)")


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except BrokenPipeError:  # e.g. `minicnn tutorial 3 | head`: the reader left; exit quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _run(args: argparse.Namespace) -> int:
    from minicnn.exercises import for_chapter

    from ._runner import DEFAULT_SIZE, run_steps

    if args.chapter is None:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            list_chapters()
            return 0
        list_chapters(page_rows=shutil.get_terminal_size(DEFAULT_SIZE).lines)
        return _menu(args)  # a person at a terminal: offer the chapters as a menu
    try:
        module = load_chapter(args.chapter)
    except ValueError as e:
        _error(f"minicnn tutorial: {e}")
        return 2
    quick = args.quick or os.environ.get("MINICNN_TUTORIAL_QUICK", "") not in ("", "0")
    later = [n for n in chapter_modules() if n > args.chapter]
    following = (later[0], chapter_title(later[0])) if later else None
    return run_steps(module, args.chapter, pause=not args.no_pause, start=args.step, quick=quick,
                     fig_dir=args.out, verbose=args.verbose, next_chapter=following,
                     exercises=for_chapter(args.chapter))


def _menu(args: argparse.Namespace) -> int:
    """Ask for a chapter number, run it, ask again; Enter or q leaves."""
    while True:
        try:
            answer = input("\nchapter number to run (Enter or q to leave): ").strip().lower()
        except EOFError:
            return 0
        if answer in ("", "q", "quit"):
            return 0
        if not answer.isdigit() or int(answer) not in chapter_modules():
            _error(f"no chapter {answer[:20]!r}; chapters are {chapter_numbers()}")
            continue
        _run(argparse.Namespace(**{**vars(args), "chapter": int(answer), "step": 1}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tutorials", description=__doc__.splitlines()[0])
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except KeyboardInterrupt:
        _error("\ninterrupted")
        return 130
