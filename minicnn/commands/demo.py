"""`minicnn demo`: a multilayer perceptron learns a 2-D spiral, in seconds, from Linear + ReLU."""

from __future__ import annotations

NAME = "demo"
HELP = "train a small MLP on a generated 2-D spiral (the engine's smallest end-to-end run)"
MAX_STEPS = 1_000_000  # about 25 minutes of full-batch steps: more is a typo, refused before training


def add_arguments(parser) -> None:
    from minicnn.commands._options import MAX_SEED, integer, number

    parser.add_argument("--steps", type=integer(1, MAX_STEPS), default=1000, help="full-batch Adam steps")
    parser.add_argument("--lr", type=number(0, low_open=True), default=0.01, help="Adam learning rate")
    parser.add_argument("--seed", type=integer(0, MAX_SEED), default=0, help="seed for data and weights")
    parser.add_argument("--plot", metavar="PNG", help="save the learned decision regions to this .png file "
                        "(a name without a suffix gets .png; an existing file is kept unless --overwrite)")
    parser.add_argument("--overwrite", action="store_true", help="let --plot replace an existing file")


def _plot_path(text: str | None, overwrite: bool):
    """The checked --plot path (before any training), or a message saying what is wrong."""
    import os
    from pathlib import Path

    from minicnn.files import TargetError, safe_target

    if text is None:
        return None, None
    path = Path(text)
    if not text.strip() or path.name in ("", ".", ".."):
        return None, f"--plot: expected a file name ending in .png, got {text!r}"
    if path.suffix == "":
        if not os.path.lexists(path):  # an existing name is judged as given (/dev/null, a folder)
            path = path.with_suffix(".png")
    elif path.suffix.lower() != ".png":
        return None, f"--plot: expected a .png file, got {text!r} (suffix {path.suffix})"
    try:
        safe_target(path, overwrite)
    except FileExistsError:
        return None, f"--plot: {path} exists; choose another name or add --overwrite to replace it"
    except TargetError as e:
        return None, f"--plot: {e}"
    return path, None


def _save_regions(model, acc: float, seed: int, path, overwrite: bool) -> None:
    """Draw the decision regions and write them to the PNG `path` by `minicnn.files.write_atomic`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from minicnn.app.spiral import make_spiral
    from minicnn.files import write_atomic

    x, labels = make_spiral(seed=seed)
    grid = np.linspace(-1.1, 1.1, 300)
    gx, gy = np.meshgrid(grid, grid)
    pred = model(np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)).argmax(1)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.contourf(gx, gy, pred.reshape(gx.shape), alpha=0.3, cmap="brg")
    ax.scatter(x[:, 0], x[:, 1], c=labels, s=8, cmap="brg")
    ax.set_title(f"spiral: training accuracy {acc:.1%}")
    try:
        write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"), overwrite=overwrite)
    finally:
        plt.close(fig)


def run(args) -> int:
    import math

    from minicnn.app.spiral import train_spiral
    from minicnn.commands._options import EXIT_FAILED, fail

    plot, problem = _plot_path(args.plot, args.overwrite)
    if problem:
        return fail(NAME, problem)
    model, history, seconds = train_spiral(args.steps, args.lr, args.seed, log_every=max(args.steps // 10, 1))
    step, loss, acc = history[-1]
    if not math.isfinite(loss):
        return fail(NAME, f"training diverged: the loss is {loss} after {step} steps at --lr {args.lr:g}; "
                          "try a smaller --lr (the default is 0.01)", EXIT_FAILED)
    print(f"spiral MLP: {model.num_parameters()} parameters, {step} steps in {seconds:.1f} s,")
    print(f"  final loss {loss:.4f}, training accuracy {acc:.1%}")
    if plot is not None:
        try:
            _save_regions(model, acc, args.seed, plot, args.overwrite)
        except FileExistsError:
            return fail(NAME, f"--plot: {plot} appeared during training; choose another name or add --overwrite")
        except ValueError as e:  # TargetError: it became a folder, a link, ...
            return fail(NAME, f"--plot: {e}")
        except OSError as e:
            return fail(NAME, f"--plot: cannot write {plot}: {e.strerror or e}", EXIT_FAILED)
        print(f"decision regions saved to {plot}")
    return 0
