"""The `minicnn` command. Each subcommand is a module in `minicnn/commands/` that defines

    NAME = "train"                      # the subcommand
    HELP = "one line for `minicnn --help`"
    def add_arguments(parser): ...      # argparse arguments
    def run(args) -> int: ...           # exit code

Modules are found automatically, so adding a subcommand touches no other file. Command modules
import heavy dependencies inside `run`, so `minicnn --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from minicnn import __version__, commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minicnn",
        description="minicnn: a pure-NumPy engine for learning convolutional networks by reading "
                    "and running their code.",
        epilog="Run `minicnn COMMAND --help` for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"minicnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"minicnn.commands.{info.name}")
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
