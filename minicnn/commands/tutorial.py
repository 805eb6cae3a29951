"""`minicnn tutorial [N]`: list the terminal tutorials, or run chapter N (see the `tutorials` package)."""

from __future__ import annotations

NAME = "tutorial"
HELP = "the lecture step by step in the terminal: each equation shown as minicnn's own code, then run"


def add_arguments(parser) -> None:
    from tutorials import add_arguments as tutorial_arguments

    tutorial_arguments(parser)


def run(args) -> int:
    from tutorials import run as run_tutorial

    return run_tutorial(args)
