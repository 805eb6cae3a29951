"""`minicnn compress CHECKPOINT --out model.fr.npz`: write the frequency-regularised compressed file.

Per DCT layer only the first k zigzag coefficients are stored (float16 with --float16), plus biases
and other parameters/buffers; `minicnn.app.load_model` rebuilds the exact weights.
Prints the stored numbers, bytes on disk and the compression ratio against the dense float32 model.
The file follows `minicnn.files.safe_target`'s rule: an existing --out is refused unless --overwrite;
a folder, device, FIFO or link always.

Two warnings. A checkpoint that was not frequency-regularised (no DCT layers, or every
coefficient kept) compressed without --keep stores about as many numbers as it has parameters (stored-number
ratio below UNCOMPRESSED_RATIO): said in one line. With --keep, the one-shot
truncation is evaluated: the model before and after it on the test split of the dataset the file names
(the first --eval-images images), both accuracies printed, and a warning when the truncated model is more
than ACCURACY_LOSS_WARN below the dense one (measured 2026-12-02: a 1-epoch LeNet-5 at
--keep 0.5 fell from 87.6% to 30.0%). A file that names no classification dataset, or whose dataset is
not available offline, gets a note instead.
"""

from __future__ import annotations

NAME = "compress"
HELP = "store a (frequency-regularised) model as its kept DCT coefficients; print size and ratio"
ACCURACY_LOSS_WARN = 0.01  # warn when --keep costs more than 1 point of test accuracy
UNCOMPRESSED_RATIO = 1.5  # fewer than 1.5x fewer stored numbers than parameters: "not compressed"
EVAL_IMAGES = 2000  # test images compared before and after --keep (a bounded sample, for speed)


def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", help="a training checkpoint, or a plain .npz state dict (then give --model)")
    parser.add_argument("--out", required=True, help="output file, e.g. model.fr.npz (an existing file is kept "
                                                      "unless --overwrite)")
    parser.add_argument("--overwrite", action="store_true", help="let --out replace an existing regular file")
    parser.add_argument("--float16", action="store_true", help="store every number as float16")
    parser.add_argument("--int8", action="store_true",
                        help="store every number as int8, one float32 scale per tensor (bytes: numbers + 4 a tensor)")
    parser.add_argument("--model", help="model name in minicnn.models (needed for a plain state dict; "
                                        "overrides the checkpoint's)")
    parser.add_argument("--keep", type=_parse_keep, default=None,
                        help="truncate every DCT layer to this count (a whole number >= 1) or fraction (in (0, 1], "
                             "written with a point: 0.1) before storing; one-shot, without fine-tuning (train "
                             "with dynamic truncation for accuracy)")
    parser.add_argument("--eval-images", type=int, default=EVAL_IMAGES,
                        help="test images on which --keep's truncated model is compared with the dense one")
    parser.add_argument("--data-dir", default=None, help="dataset folder for that check (default: $MINICNN_DATA, "
                                                         "then the cache)")


def _parse_keep(text: str) -> int | float:
    """--keep: a count >= 1 ("300") or a fraction in (0, 1] ("0.1"). 0 would store a model of biases only,
    which ignores its input, so it is refused like 0.0."""
    import argparse
    import math

    try:
        count = int(text)
    except ValueError:
        count = None
    if count is not None:
        if count < 1:
            raise argparse.ArgumentTypeError(f"expected a count >= 1 or a fraction in (0, 1], got {text} "
                                             "(keeping nothing would leave a model that ignores its input)")
        return count
    try:
        fraction = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count >= 1 or a fraction in (0, 1], got {text!r}") from None
    if not (math.isfinite(fraction) and 0 < fraction <= 1):
        raise argparse.ArgumentTypeError(f"expected a count >= 1 or a fraction in (0, 1], got {text}")
    return fraction


def _test_sample(loaded, images: int, data_dir):
    """(x, y): the first `images` test images of the dataset `loaded` names, normalised as in training;
    or a str saying why there are none (no dataset named, not available offline, not classification)."""
    from minicnn.data import DatasetError, load_dataset

    if not loaded.dataset:
        return "the file names no dataset"
    try:
        data = load_dataset(loaded.dataset, data_dir, download=False)
    except (DatasetError, ValueError) as e:
        return f"its dataset {loaded.dataset} is not available ({str(e).splitlines()[0]})"
    if data.y_test.ndim != 1:
        return f"{loaded.dataset} is not a classification dataset"
    return loaded.normalize(data.x_test[:images]), data.y_test[:images]


def _keep_check(loaded, model, keep, args) -> None:
    """Evaluate `loaded.model` (dense, before truncation), then truncate `model` (its DCT version) to
    `keep` and evaluate it; print both accuracies and the warning of the module docstring."""
    from minicnn.app import evaluate
    from minicnn.app.frequency import frequency_layers
    from minicnn.commands._options import wrap

    sample = _test_sample(loaded, args.eval_images, args.data_dir)
    before = None if isinstance(sample, str) else evaluate(model, *sample).accuracy
    for _, layer in frequency_layers(model):
        layer.set_keep(keep)
    if isinstance(sample, str):
        print(wrap(f"note: --keep {keep} is not evaluated: {sample}"))
        return
    after = evaluate(model, *sample).accuracy
    print(wrap(f"--keep {keep} without fine-tuning: test accuracy {before:.2%} before, {after:.2%} after "
               f"({len(sample[1])} {loaded.dataset} test images)"))
    if before - after > ACCURACY_LOSS_WARN:
        print(wrap(f"warning: --keep {keep} costs {100 * (before - after):.1f} points of test accuracy "
                   f"(more than {100 * ACCURACY_LOSS_WARN:g}); truncate while training instead (minicnn train "
                   f"--frequency BUDGET, or experiment frequency)"))


def _same_file(a: str, b: str) -> bool:
    import os
    from pathlib import Path

    if Path(a).exists() and Path(b).exists():
        return os.path.samefile(a, b)
    return Path(a).resolve() == Path(b).resolve()


def _exists(out: str) -> str:
    return f"--out {out} exists; choose another name, or add --overwrite to replace it"


def run(args) -> int:
    from minicnn.app import load_model
    from minicnn.app.frequency import (
        dense_float32_bytes,
        describe,
        frequency_layers,
        save_compressed,
        stored_numbers,
        to_frequency,
    )
    from minicnn.app.loading import UnnamedModelError
    from minicnn.commands._options import EXIT_FAILED, fail, wrap
    from minicnn.files import TargetError, safe_target, write_atomic

    if args.float16 and args.int8:
        return fail(NAME, "expected --float16 or --int8, not both")
    if args.eval_images < 1:
        return fail(NAME, f"expected --eval-images >= 1, got {args.eval_images}")
    if _same_file(args.checkpoint, args.out):
        return fail(NAME, f"--out {args.out} is the same file as the input; writing it would destroy the "
                          f"input: choose another --out")
    try:
        safe_target(args.out, args.overwrite)  # before the model is read; checked again when writing
    except FileExistsError:
        return fail(NAME, _exists(args.out))
    except TargetError as e:
        return fail(NAME, f"--out {e}")
    try:
        loaded = load_model(args.checkpoint, args.model)
        was_frequency = loaded.frequency is not None
        model = to_frequency(loaded.model)
        if args.keep is not None:
            _keep_check(loaded, model, args.keep, args)
    except UnnamedModelError as e:
        return fail(NAME, f"{e} (--model NAME)")
    except ValueError as e:
        return fail(NAME, str(e))
    meta = describe(loaded.name, loaded.config, model, **loaded.description())
    counts = stored_numbers(model)
    info = {}

    def write(tmp) -> None:
        info.update(save_compressed(model, tmp, float16=args.float16, int8=args.int8, meta=meta))

    try:
        write_atomic(args.out, write, overwrite=args.overwrite)
    except FileExistsError:
        return fail(NAME, _exists(args.out))
    except TargetError as e:
        return fail(NAME, f"--out {e}")
    except ValueError as e:  # e.g. a value beyond the float16 range
        return fail(NAME, str(e))
    except OSError as e:
        return fail(NAME, f"cannot write {args.out}: {e.strerror or e}", EXIT_FAILED)
    dense = dense_float32_bytes(model)
    print(wrap(f"model {loaded.name}: {counts['dense']} parameters dense ({dense} bytes as float32)"))
    print(wrap(f"stored numbers: {counts['total']} = {counts['coefficients']} kept DCT coefficients "
               f"+ {counts['other']} other (biases, buffers)"))
    for name, layer in frequency_layers(model):
        print(f"  {name:<12} {str(layer.coeffs.shape):<18} keeps {layer.keep:>7} of {layer.coeffs.size}")
    dtype = "float16" if args.float16 else "int8" if args.int8 else "float32"
    print(wrap(f"{args.out}: {info['bytes']} bytes on disk ({dtype}; {info['payload_bytes']} bytes of stored "
               f"numbers); compression ratio {dense / info['bytes']:.1f}x in bytes, "
               f"{counts['dense'] / max(counts['total'], 1):.1f}x in stored numbers"))
    ratio = counts["dense"] / max(counts["total"], 1)
    if args.keep is None and ratio < UNCOMPRESSED_RATIO:
        what = "is not frequency-regularised" if not was_frequency else "keeps (almost) every DCT coefficient"
        print(wrap(f"warning: {args.checkpoint} {what}: ratio {ratio:.1f}x in stored numbers; train with "
                   f"--frequency BUDGET (or experiment frequency) for a small file"))
    return 0
