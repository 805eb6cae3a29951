"""`minicnn summary MODEL --input C,H,W`: per-layer output shape, parameters, multiply-adds and
receptive field of a registered model, the totals, and MobileNet's Table 2 (share per layer type)."""

from __future__ import annotations

NAME = "summary"
HELP = "per-layer shapes, parameters, multiply-adds and receptive fields of a model (no forward pass)"


def add_arguments(parser) -> None:
    parser.add_argument("model", nargs="?", help="model name (omit, or 'list', to see the choices)")
    parser.add_argument("--input", default="3,224,224", metavar="C,H,W", help="input shape of one image")
    parser.add_argument("--num-classes", type=int, default=None, help="classifier outputs (model default if unset)")
    parser.add_argument("--width", type=float, default=None, help="width multiplier (model default if unset)")


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"minicnn summary: expected --input as C,H,W (three positive ints), got {text!r}")
    return shape


def run(args) -> int:
    import inspect

    from minicnn.analysis import analyze
    from minicnn.models import MODELS

    if args.model in (None, "list"):
        print("models:\n  " + "\n  ".join(sorted(MODELS)))
        return 0
    if args.model not in MODELS:
        print(f"minicnn summary: unknown model {args.model!r}; choose one of: {', '.join(sorted(MODELS))}")
        return 2
    try:
        c, h, w = _parse_shape(args.input)
    except ValueError as e:
        print(e)
        return 2
    constructor = MODELS[args.model]
    options = {"in_channels": c}
    if args.num_classes is not None:
        options["num_classes"] = args.num_classes
    if args.width is not None:
        options["width"] = args.width
    accepts = inspect.signature(constructor).parameters
    if "image_size" in accepts or any(p.kind is p.VAR_KEYWORD for p in accepts.values()):
        options["image_size"] = h
    try:
        model = constructor(**options)
        summary = analyze(model, (c, h, w))
    except ValueError as e:
        print(f"minicnn summary: {e}")
        return 2
    print(f"{args.model}  input {c}x{h}x{w}")
    print(summary.table())
    print()
    print("resources per layer type (weights only; cf. MobileNet Table 2)")
    print(summary.breakdown_table())
    return 0
