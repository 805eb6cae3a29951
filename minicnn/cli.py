"""The `minicnn` command. Each subcommand is a module in `minicnn/commands/` that defines

    NAME = "train"                      # the subcommand
    HELP = "one line for `minicnn --help`"
    def add_arguments(parser): ...      # argparse arguments
    def run(args) -> int: ...           # exit code

Modules are found automatically, so adding a subcommand touches no other file. Command modules
import heavy dependencies inside `run`, so `minicnn --help` stays fast. Errors go to stderr and the
exit codes are the same in every command (EPILOG; `minicnn.commands._options`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from minicnn import __version__, commands, runtime
from minicnn.commands._options import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, wrap
from minicnn.runtime import THREAD_VARIABLES, WORKERS_VARIABLE, parse_threads
from minicnn.threads import configured_threads, configured_workers

DEFAULT_THREADS = 1
EPILOG = """Run `minicnn COMMAND --help` for the options of one command.

exit codes (every command):
    0  done
    1  a check or a run failed (gradient check, diverged training, a file
       that could not be written)
    2  bad input (an option out of range, a missing or damaged file, an
       unknown name, no command); the reason is printed on stderr
  130  interrupted (Ctrl-C)
  143  terminated (SIGTERM): files are left whole, the run folder unlocked

the plain math: `minicnn --plain COMMAND` (or MINICNN_PLAIN=1) runs every
layer on the course's equations as written (minicnn.functional), without
the fast kernels (minicnn.kernels): the same results up to rounding, slower.

tuning: the first call of each convolution shape times its candidate kernels
and keeps the fastest (plans saved per machine under ~/.cache/minicnn, or
$MINICNN_CACHE_DIR; `minicnn tune` plans a model ahead, --show / --clear).
`minicnn --no-tune COMMAND` (or MINICNN_NO_TUNE=1) runs the fixed defaults
and measures nothing: reproducible timing."""


def _thread_settings(argv: list[str]) -> tuple[dict[str, int], str | None]:
    """(the `runtime.configure` arguments for this run, an error message or None).

    `--threads N` wins: N workers split each batch's convolutions, each with a one-thread BLAS
    (`runtime.configure(threads=N)`); else thread variables already in the environment
    (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS, MINICNN_WORKERS) are respected; else
    DEFAULT_THREADS. Default 1: the headline MNIST run is measured on one core, and a one-thread BLAS
    never stalls when the machine is busy (spinning OpenBLAS threads did, up to 10x). `--threads 2` trains
    cifar_net about 1.6x faster on two idle cores (LeNet-5 gains nothing: its layers are too small to
    split). Read before argparse runs (and before NumPy is imported, so any BLAS takes the count as it
    loads). Every value goes through `runtime.parse_threads`: a bad one (0, -1, abc) is returned as a
    one-line message for the caller to refuse the run with — after argparse has had its say, so
    `minicnn --help` still works — with the default settings, so that nothing imported meanwhile
    computes with it.
    """
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--threads", default=None)
    given = pre.parse_known_args(argv)[0].threads
    try:
        if given is not None:
            return {"threads": parse_threads(given, "--threads")}, None
        if any(os.environ.get(name, "").strip() for name in (*THREAD_VARIABLES, WORKERS_VARIABLE)):
            configured_threads(), configured_workers()  # respected, once checked
            return {}, None
    except ValueError as e:
        return {"threads": DEFAULT_THREADS}, str(e)
    return {"threads": DEFAULT_THREADS}, None


def _threads_type(value: str) -> int:
    try:
        return parse_threads(value, "--threads")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default, except when there is none to show (None, or a flag that is off)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """argparse with a short error: one line naming the option and the problem, and where the help is
    (instead of the full usage, which for `minicnn train` is eleven lines)."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, wrap(f"{self.prog}: error: {message}") + f"\n(see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="minicnn",
        description="minicnn: a pure-NumPy engine for learning convolutional networks\n"
                    "by reading and running their code.",  # the formatter keeps line breaks: fit 80
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"minicnn {__version__}")
    parser.add_argument("--threads", type=_threads_type, default=None, metavar="N",
                        help=f"threads: N workers split each batch's convolutions (default {DEFAULT_THREADS}, "
                             f"or $MINICNN_WORKERS / $OPENBLAS_NUM_THREADS if set; 2 trains CIFAR nets ~1.6x "
                             f"faster on two idle cores)")
    parser.add_argument("--plain", action="store_true",
                        help="run the plain course math only (minicnn.functional, no fast kernels): the code "
                             "the tutorials show, more slowly; also MINICNN_PLAIN=1")
    parser.add_argument("--no-tune", action="store_true",
                        help="run each kernel's fixed default, measuring no candidates (reproducible timing); "
                             "also MINICNN_NO_TUNE=1")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"minicnn.commands.{info.name}")
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP,
                           formatter_class=_HelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


EXIT_TERMINATED = 128 + signal.SIGTERM  # 143, the shell's code for a process ended by SIGTERM


class Terminated(BaseException):
    """SIGTERM arrived (`kill PID`, a job scheduler's timeout): raised in the main thread so that every
    `finally` and context manager runs on the way out (the run lock is released, a half-written
    temporary file removed); a BaseException, so that no `except Exception` swallows it."""


@contextmanager
def _sigterm_ends_cleanly() -> Iterator[None]:
    """While the command runs, SIGTERM raises Terminated (once: a second SIGTERM during the clean-up is
    ignored, so the clean-up is not cut short). A SIGTERM disposition set by the caller (ignored, or a
    handler of a program that calls `main`) is left alone; the previous one is restored afterwards."""
    def handle(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated

    try:
        previous = signal.getsignal(signal.SIGTERM)
        if previous is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, handle)
    except ValueError:  # not the main thread: signals cannot be handled here
        previous = None
    try:
        yield
    finally:
        if previous is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, previous)


def command_line() -> None:
    """The `minicnn` program (console script and `python -m minicnn`): `main`, then exit with its code.
    Once the command has ended its files are final and its code is chosen, so a Ctrl-C during the
    interpreter's shutdown (a second Ctrl-C after "interrupted", say) no longer kills the process by
    signal: it exits with the code the command chose (130 for the first Ctrl-C)."""
    code = main()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)


def main(argv: list[str] | None = None) -> int:
    """Run the command line `argv` (default sys.argv[1:]); return the exit code (see EPILOG). The thread
    and kernel settings hold for this run only (`runtime.temporarily`)."""
    argv = sys.argv[1:] if argv is None else argv
    threads, thread_error = _thread_settings(argv)
    if thread_error is not None and "--threads" in thread_error:
        print(wrap(f"minicnn: {thread_error}"), file=sys.stderr)
        return EXIT_BAD_INPUT
    with runtime.temporarily(**threads):
        runtime.configure(keep_freed_memory=True)  # activations reuse freed memory, not page-fault it in
        parser = build_parser()
        args = parser.parse_args(argv)
        if getattr(args, "_run", None) is None:  # `minicnn` alone: a usage error, as argparse's
            print(parser.format_usage().rstrip() + "\n(a COMMAND is needed: see `minicnn --help`)",
                  file=sys.stderr)
            return EXIT_BAD_INPUT
        if thread_error is not None:  # a bad thread variable: refused only now, so that --help works
            print(wrap(f"minicnn: {thread_error} (or pass --threads N)"), file=sys.stderr)
            return EXIT_BAD_INPUT
        if args.plain:
            runtime.use_kernels(False)
        if args.no_tune:
            runtime.configure(tune=False)
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """The chosen command's `run(args)`, its errors turned into the exit codes of EPILOG."""
    from minicnn.data import DatasetError  # NumPy is imported only now, after the thread setup
    from minicnn.files import FileFormatError

    try:
        with _sigterm_ends_cleanly():
            return int(args._run(args) or 0)
    except Terminated:
        print("\nterminated (SIGTERM)", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`minicnn summary ... | head`): nothing left to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that Python's final flush of stdout stays quiet
        return EXIT_OK
    except (FileFormatError, DatasetError) as e:  # a command that did not catch a damaged file itself
        print(wrap(f"minicnn {args.command}: {e}"), file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as e:  # disk full, permission denied, ... while writing results
        print(wrap(f"minicnn {args.command}: {e}"), file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
