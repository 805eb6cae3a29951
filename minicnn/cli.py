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
import os
import pkgutil
import sys

from minicnn import __version__, commands

DEFAULT_THREADS = 1
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _set_threads(argv: list[str] | None) -> None:
    """Fix the BLAS thread count before NumPy is imported (it is read once, at import).

    Default 1: for the small nets minicnn trains, one thread measured faster than two (LeNet-5 on
    MNIST, 5,691 vs 4,637 images/s, `benchmarks/bench_train.py`), and two spinning OpenBLAS threads
    stall up to 10x whenever another process is busy. `--threads 2` for bigger nets on an idle machine.
    An OPENBLAS_NUM_THREADS already in the environment is respected when --threads is not given.
    """
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--threads", type=int, default=None)
    threads = pre.parse_known_args(argv)[0].threads
    if threads is None and "OPENBLAS_NUM_THREADS" in os.environ:
        return
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads or DEFAULT_THREADS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minicnn",
        description="minicnn: a pure-NumPy engine for learning convolutional networks by reading "
                    "and running their code.",
        epilog="Run `minicnn COMMAND --help` for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"minicnn {__version__}")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help=f"BLAS/FFT threads (default {DEFAULT_THREADS}, or $OPENBLAS_NUM_THREADS if set; "
                             f"one is fastest for small nets and immune to stalls when the machine is busy)")
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
    if "numpy" not in sys.modules:
        _set_threads(sys.argv[1:] if argv is None else argv)
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
