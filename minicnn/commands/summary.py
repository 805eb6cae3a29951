"""`minicnn summary MODEL [--input C,H,W]`: per-layer output shape, parameters, multiply-adds and
receptive field of a model, the totals, and MobileNet's Table 2 (share per layer type).

MODEL is a registered model name (without --input: the model's own input, `minicnn.models.default_input`,
1,28,28 for lenet5) or a model file: a training checkpoint or a compressed `.fr.npz`, opened with
`minicnn.app.load_model` and summarised as it is in the file (its architecture and options, its DCT
layers and how many coefficients they keep), for the input shape the file records (else --input)."""

from __future__ import annotations

NAME = "summary"
HELP = "per-layer shapes, parameters, multiply-adds and receptive fields of a model (no forward pass)"
MIN_WIDTH, MAX_WIDTH, MAX_CLASSES = 1 / 16, 8.0, 100_000  # what the table is asked for stays buildable


def add_arguments(parser) -> None:
    from minicnn.commands._options import integer, number

    parser.add_argument("model", nargs="?", help="model name (omit, or 'list', to see the choices), or a "
                                                 "checkpoint or .fr.npz file")
    parser.add_argument("--input", default=None, metavar="C,H,W",
                        help="input shape of one image (the model's own if unset: 1,28,28 for lenet5; a "
                             "file's recorded one)")
    parser.add_argument("--num-classes", type=integer(1, MAX_CLASSES), default=None,
                        help="classifier outputs (model default if unset)")
    parser.add_argument("--width", type=number(MIN_WIDTH, MAX_WIDTH), default=None,
                        help="width multiplier (model default if unset)")


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
    return _tables(f"{name}  input {c}x{h}x{w}", analyze(model, input_shape))


def _tables(title: str, summary) -> str:
    return "\n".join([title, summary.table(), "",
                      "resources per layer type (weights only; cf. MobileNet Table 2)", summary.breakdown_table()])


def _frequency_line(model) -> str | None:
    """"DCT layers: k, coefficients kept: a of b (p%)" for a frequency-regularised model, else None."""
    from minicnn.layers import DCTConv2D, DCTConvTranspose2D, DCTLinear, FrequencyBias

    layers = [m for m in model.modules() if isinstance(m, (DCTConv2D, DCTConvTranspose2D, DCTLinear, FrequencyBias))]
    if not layers:
        return None
    kept, total = sum(m.keep for m in layers), sum(m.coeffs.size for m in layers)
    return f"DCT layers: {len(layers)}, coefficients kept: {kept:,} of {total:,} ({100 * kept / total:.1f}%)"


def report_file(path: str, input_text: str | None = None) -> str:
    """What `minicnn summary FILE` prints: `report`'s tables for the model in a checkpoint or `.fr.npz`
    (as `minicnn.app.load_model` rebuilds it) at the input the file records, or `input_text` ("C,H,W").
    Raises ValueError (ModelFileError) for a file that cannot be opened or has no input shape."""
    from minicnn.analysis import analyze
    from minicnn.commands._model_file import open_model_file

    loaded, shape = open_model_file(path, input_text)
    options = ", ".join(f"{k}={v}" for k, v in sorted(loaded.config.items()))
    from minicnn.commands._options import wrap

    title = [f"{path}", f"{loaded.name}{f' ({options})' if options else ''} from a {loaded.kind} file",
             f"input {'x'.join(map(str, shape))}" + (f", trained on {loaded.dataset}" if loaded.dataset else "")]
    frequency = _frequency_line(loaded.model)
    return _tables(wrap("\n".join(title + ([frequency] if frequency else []))), analyze(loaded.model, shape))


def run(args) -> int:
    from minicnn.commands._model_file import looks_like_file, parse_shape
    from minicnn.commands._options import fail
    from minicnn.models import MODELS

    if args.model in (None, "list"):
        print("models:\n  " + "\n  ".join(sorted(MODELS)))
        return 0
    is_file = args.model not in MODELS and looks_like_file(args.model)
    if args.model not in MODELS and not is_file:
        return fail(NAME, f"unknown model {args.model!r} and no such file; choose one of: {', '.join(sorted(MODELS))}")
    if is_file and (args.num_classes is not None or args.width is not None):
        return fail(NAME, f"{args.model} is a model file: its architecture is fixed (drop --num-classes / --width)")
    from minicnn.app.loading import UnnamedModelError

    try:
        if is_file:
            text = report_file(args.model, args.input)
        else:
            text = report(args.model, None if args.input is None else parse_shape(args.input), args.num_classes,
                          args.width)
    except UnnamedModelError:
        return fail(NAME, f"{args.model} is a plain state dict, which does not name its model; summarise the "
                          f"architecture by name: minicnn summary NAME")
    except ValueError as e:
        return fail(NAME, str(e))
    except MemoryError:  # the weights are built (and counted), not just their shapes
        return fail(NAME, f"not enough memory to build {args.model} that large (its weights are made to be "
                          f"counted); try a smaller --input, --width or --num-classes")
    print(text)
    return 0
