"""`minicnn tutorial [N]`: list the terminal tutorials, or run chapter N (the `tutorials` folder, installed
as `minicnn_tutorials`)."""

from __future__ import annotations

NAME = "tutorial"
HELP = "the lecture step by step in the terminal: each equation shown as minicnn's own code, then run"


def _tutorials():
    """The tutorials package: installed as `minicnn_tutorials`; in a checkout run in place, `tutorials`."""
    try:
        import minicnn_tutorials as package
    except ImportError:
        import tutorials as package
    return package


def add_arguments(parser) -> None:
    _tutorials().add_arguments(parser)


def run(args) -> int:
    return _tutorials().run(args)
