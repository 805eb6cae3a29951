"""`minicnn experiment NAME`: the measured studies (each one a module in `minicnn/experiments/`)."""

from __future__ import annotations

import argparse
import importlib
import pkgutil

NAME = "experiment"
HELP = "run a measured study (tables, PNG figures) on real data"


def _experiments():
    from minicnn import experiments

    for info in sorted(pkgutil.iter_modules(experiments.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            yield info.name, importlib.import_module(f"minicnn.experiments.{info.name}")


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: X)" to an option's help, except where there is nothing to say: no default
    (None: the help says what happens) or an off switch (False)."""

    def _get_help_string(self, action) -> str:
        if action.default is None or action.default is False:
            return action.help or ""
        return super()._get_help_string(action)


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="experiment", metavar="NAME")
    sub.add_parser("list", help="list the studies with one line each (as `minicnn experiment` alone does)")
    for name, module in _experiments():
        p = sub.add_parser(name, help=module.DESCRIPTION, description=module.DESCRIPTION,
                           formatter_class=_DefaultsFormatter)
        module.add_arguments(p)
        p.set_defaults(_experiment_run=module.run)
    parser.set_defaults(_parser=parser)


def _list() -> None:
    import textwrap

    from minicnn.commands._options import COLUMNS

    print("studies (minicnn experiment NAME --help for each one's options):")
    for name, module in _experiments():
        print(textwrap.fill(module.DESCRIPTION, COLUMNS, initial_indent=f"  {name:<20}", subsequent_indent=" " * 22))


def run(args) -> int:
    if getattr(args, "_experiment_run", None) is None:
        _list()
        return 0
    from minicnn.commands._options import EXIT_FAILED, fail

    try:
        return int(args._experiment_run(args) or 0)
    except ValueError as e:  # a user's input the study cannot use (a damaged file, sizes that do not fit)
        return fail(f"experiment {args.experiment}", str(e))
    except OSError as e:  # the result cannot be written (full disk, unwritable --out)
        return fail(f"experiment {args.experiment}", str(e), EXIT_FAILED)
