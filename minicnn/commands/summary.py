"""`minicnn summary MODEL [--input C,H,W]`: per-layer output shape, parameters, multiply-adds and
receptive field of a registered model, the totals, and MobileNet's Table 2 (share per layer type).
Without --input the model's own input (`minicnn.models.default_input`: 1,28,28 for lenet5)."""

from __future__ import annotations

NAME = "summary"
HELP = "per-layer shapes, parameters, multiply-adds and receptive fields of a model (no forward pass)"
MIN_WIDTH, MAX_WIDTH, MAX_CLASSES, MAX_SIDE = 1 / 16, 8.0, 100_000, 4096  # what the table is asked for stays buildable


def add_arguments(parser) -> None:
    from minicnn.commands._options import integer, number

    parser.add_argument("model", nargs="?", help="model name (omit, or 'list', to see the choices)")
    parser.add_argument("--input", default=None, metavar="C,H,W",
                        help="input shape of one image (the model's own if unset: 1,28,28 for lenet5)")
    parser.add_argument("--num-classes", type=integer(1, MAX_CLASSES), default=None,
                        help="classifier outputs (model default if unset)")
    parser.add_argument("--width", type=number(MIN_WIDTH, MAX_WIDTH), default=None,
                        help="width multiplier (model default if unset)")


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1 or max(shape) > MAX_SIDE:
        raise ValueError(f"expected --input as C,H,W (three ints from 1 to {MAX_SIDE}), got {text!r}")
    return shape


def report(name: str, input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None,
           width: float | None = None) -> str:
    """What `minicnn summary NAME --input C,H,W` prints: the per-layer table of `minicnn.analysis`, its
    totals and the per-layer-type breakdown (MobileNet's Table 2), for the registered model `name`
    built for images `input_shape` (None: the model's own, `default_input`; num_classes / width: the
    model's defaults when None).
    Raises ValueError for an unknown model or an input the model cannot take."""
    from minicnn.analysis import analyze
    from minicnn.models import build, config_for, default_input

    input_shape = default_input(name) if input_shape is None else input_shape
    c, h, w = input_shape
    model = build(name, **config_for(name, input_shape, num_classes=num_classes, width=width))
    summary = analyze(model, input_shape)
    return "\n".join([f"{name}  input {c}x{h}x{w}", summary.table(), "",
                      "resources per layer type (weights only; cf. MobileNet Table 2)", summary.breakdown_table()])


def run(args) -> int:
    from minicnn.commands._options import fail
    from minicnn.models import MODELS

    if args.model in (None, "list"):
        print("models:\n  " + "\n  ".join(sorted(MODELS)))
        return 0
    if args.model not in MODELS:
        return fail(NAME, f"unknown model {args.model!r}; choose one of: {', '.join(sorted(MODELS))}")
    try:
        shape = None if args.input is None else _parse_shape(args.input)
        text = report(args.model, shape, args.num_classes, args.width)
    except ValueError as e:
        return fail(NAME, str(e))
    except MemoryError:  # the weights are built (and counted), not just their shapes
        return fail(NAME, f"not enough memory to build {args.model} that large (its weights are made to be "
                          f"counted); try a smaller --input, --width or --num-classes")
    print(text)
    return 0
