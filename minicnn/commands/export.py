"""`minicnn export MODEL_FILE --onnx OUT.onnx`: the model of a checkpoint or a compressed `.fr.npz` as
an ONNX graph (`minicnn.app.onnx`), to run it with ONNX Runtime or any other ONNX engine.

The graph's input is "input", float32 (N, C, H, W), N dynamic, C, H, W the file's input shape (or
--input); images go in normalised as in training (the file's mean and std are in the graph's metadata).
The output is "output" (the logits). A `.fr.npz` is exported with its weights decompressed (the
spatial weights its DCT coefficients give). When onnxruntime is installed, the written file is run on
CHECK_IMAGES random inputs and compared with minicnn (skip with --no-check).
Needs the optional onnx package: pip install "minicnn[onnx]".
"""

from __future__ import annotations

NAME = "export"
HELP = "write the model of a checkpoint or .fr.npz as an ONNX graph (pip install \"minicnn[onnx]\")"
CHECK_IMAGES = 4  # random inputs the written file is checked on
CHECK_SEED = 0
KINDS = {"checkpoint": "checkpoint", "compressed": "compressed", "state": "state-dict"}  # LoadedModel.kind
CHECK_TOLERANCE = 1e-3  # largest |difference| / max(1, max |y|) accepted: float32 rounding stays far below


def add_arguments(parser) -> None:
    parser.add_argument("model_file", metavar="MODEL_FILE",
                        help="a training checkpoint or a compressed .fr.npz (or a state dict: see --model)")
    parser.add_argument("--onnx", required=True, metavar="OUT.onnx", help="the ONNX file to write")
    parser.add_argument("--input", default=None, metavar="C,H,W",
                        help="input shape of one image (default: the one the file records)")
    parser.add_argument("--model", default=None, metavar="NAME",
                        help="the registered model a plain state-dict .npz holds (it does not name it; "
                             "give --input too)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT.onnx if it exists")
    parser.add_argument("--no-check", action="store_true",
                        help="do not run the written file in ONNX Runtime against minicnn")


def _out_problem(out, model_file, overwrite: bool) -> str | None:
    """Why `out` cannot be written (None: it can), by `minicnn.files.safe_target`'s rule (a folder, a link,
    a device, a missing folder, an existing file without --overwrite), or because it is the model file."""
    import os
    from pathlib import Path

    from minicnn.files import TargetError, safe_target

    if Path(out).is_file() and Path(model_file).exists() and os.path.samefile(out, model_file):
        return f"--onnx {out} is the model file itself; choose another name"
    try:
        safe_target(out, overwrite)
    except FileExistsError:
        return f"--onnx {out} exists; pass --overwrite to replace it"
    except TargetError as e:
        return f"--onnx {e}"
    return None


def _check(path, loaded, shape) -> tuple[float, float] | None:
    """(max |ONNX Runtime - minicnn|, max |minicnn|) on CHECK_IMAGES standard-normal inputs; None
    without onnxruntime."""
    try:
        import onnxruntime
    except ImportError:
        return None
    import numpy as np

    from minicnn.app.onnx import INPUT_NAME

    x = np.random.default_rng(CHECK_SEED).standard_normal((CHECK_IMAGES, *shape)).astype(np.float32)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (theirs,) = session.run(None, {INPUT_NAME: x})
    ours = loaded.model.eval().forward(x)
    return float(np.max(np.abs(theirs - ours))), float(np.max(np.abs(ours)))


def run(args) -> int:
    from minicnn.app.loading import UnnamedModelError
    from minicnn.app.onnx import ExportError, OnnxMissingError, import_onnx, to_onnx, write_onnx
    from minicnn.commands._model_file import open_model_file
    from minicnn.commands._options import EXIT_FAILED, fail

    try:
        import_onnx()
    except OnnxMissingError as e:
        return fail(NAME, str(e))
    problem = _out_problem(args.onnx, args.model_file, args.overwrite)
    if problem:
        return fail(NAME, problem)
    try:
        loaded, shape = open_model_file(args.model_file, args.input, args.model)
        described = loaded.description()
        normalised = ", normalised (x - mean) / std per channel" if "mean" in described else ""
        metadata = {"model": loaded.name, "config": loaded.config,
                    "input": f"float32 (N, {', '.join(map(str, shape))}){normalised}",
                    **{k: v for k, v in described.items() if k != "input_shape"}}
        proto = to_onnx(loaded.model, shape, metadata)
    except UnnamedModelError:
        return fail(NAME, f"{args.model_file} is a plain state dict, which does not name its model; give "
                          f"--model NAME and --input C,H,W")
    except ExportError as e:
        return fail(NAME, f"{args.model_file}: {e}")
    except ValueError as e:
        return fail(NAME, str(e))
    try:
        size = write_onnx(proto, args.onnx, overwrite=args.overwrite)
    except (FileExistsError, ValueError) as e:  # appeared or changed since the check above
        return fail(NAME, str(e))
    out_dims = [d.dim_value or d.dim_param for d in proto.graph.output[0].type.tensor_type.shape.dim]
    print(f"wrote {args.onnx}")
    print(f"  {loaded.name} from a {KINDS.get(loaded.kind, loaded.kind)} file: {len(proto.graph.node)} nodes, opset "
          f"{proto.opset_import[0].version}, {size / 1024:,.0f} KiB")
    print(f"  input 'input' float32 (N, {', '.join(map(str, shape))}), N any; "
          f"output 'output' ({', '.join(map(str, out_dims))})")
    if loaded.mean is not None:
        print("  normalise images first: (x - mean) / std, both in the graph's metadata")
    if args.no_check:
        return 0
    checked = _check(args.onnx, loaded, shape)
    if checked is None:
        print("  not checked: onnxruntime is not installed (pip install onnxruntime)")
        return 0
    diff, scale = checked
    print(f"  checked in ONNX Runtime ({CHECK_IMAGES} random inputs): max |diff| {diff:.2g}, max |y| {scale:.2g}")
    if not diff <= CHECK_TOLERANCE * max(1.0, scale):
        return fail(NAME, f"ONNX Runtime disagrees with minicnn by {diff:.2g}; please report this model", EXIT_FAILED)
    return 0
