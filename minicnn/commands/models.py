"""`minicnn models [NAME ...]`: every registered model (or the ones named) with the input it is made for,
its parameters and its multiply-adds there, as `minicnn summary NAME` counts them (`minicnn.analysis`:
parameters with biases and BatchNorm; multiply-adds of the conv and fully-connected weights, 1 MAC =
1 op). Each model is built to be counted (nothing runs), one at a time, inside
`minicnn.core.unfilled_weights()`: its weights are zeros instead of random draws, so even the VGGs
(~140M parameters) build quickly; the counts are those of a normal build (tests/test_models_command.py).
"""

from __future__ import annotations

NAME = "models"
HELP = "list the registered models: input, parameters and multiply-adds at that input"
HEADS = ("model", "input", "parameters", "multiply-adds")
GAP = "  "
COUNT_WIDTH = len(f"{99_999_999_999:,}")  # counts up to 10^11 keep the columns aligned


def add_arguments(parser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME", help="only these models (default: all)")


def _row(cells: tuple[str, ...], name_width: int, input_width: int) -> str:
    name, shape, params, macs = cells
    return GAP.join((name.ljust(name_width), shape.ljust(input_width), params.rjust(COUNT_WIDTH),
                     macs.rjust(COUNT_WIDTH))).rstrip()


def lines(names: list[str]):
    """The header, a rule, then one line per model of `names` (each built, counted and dropped in turn)."""
    from minicnn.analysis import analyze
    from minicnn.core import unfilled_weights
    from minicnn.models import build, default_input

    shapes = {name: default_input(name) for name in names}
    name_width = max(len(HEADS[0]), *map(len, names))
    input_width = max(len(HEADS[1]), *(len("x".join(map(str, s))) for s in shapes.values()))
    header = _row(HEADS, name_width, input_width)
    yield header
    yield "-" * len(header)
    for name in names:
        with unfilled_weights():  # zeros, not random draws: counted, never run
            model = build(name)
        summary = analyze(model, shapes[name])
        del model  # before the next one is built
        yield _row((name, "x".join(map(str, shapes[name])), f"{summary.params:,}", f"{summary.macs:,}"),
                   name_width, input_width)


def run(args) -> int:
    from minicnn.commands._options import fail
    from minicnn.models import MODELS

    unknown = [n for n in args.names if n not in MODELS]
    if unknown:
        return fail(NAME, f"unknown model {', '.join(map(repr, unknown))}; registered: {', '.join(sorted(MODELS))}")
    names = list(dict.fromkeys(args.names)) or sorted(MODELS)
    for line in lines(names):
        print(line, flush=True)
    print(f"\n{len(names)} model{'s' if len(names) != 1 else ''}; per-layer detail: minicnn summary NAME")
    return 0
