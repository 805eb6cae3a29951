"""`minicnn demo`: a multilayer perceptron learns a 2-D spiral, in seconds, from Linear + ReLU."""

from __future__ import annotations

NAME = "demo"
HELP = "train a small MLP on a generated 2-D spiral (the engine's smallest end-to-end run)"


def add_arguments(parser) -> None:
    from minicnn.commands._options import integer, number

    parser.add_argument("--steps", type=integer(1), default=1000, help="full-batch Adam steps")
    parser.add_argument("--lr", type=number(0, low_open=True), default=0.01, help="Adam learning rate")
    parser.add_argument("--seed", type=integer(0), default=0, help="seed for data and weights")
    parser.add_argument("--plot", metavar="PNG", help="save the learned decision regions to this PNG")


def run(args) -> int:
    import numpy as np

    from minicnn.app.spiral import make_spiral, train_spiral

    model, history, seconds = train_spiral(args.steps, args.lr, args.seed, log_every=max(args.steps // 10, 1))
    step, loss, acc = history[-1]
    print(f"spiral MLP: {model.num_parameters()} parameters, {step} steps in {seconds:.1f} s, "
          f"final loss {loss:.4f}, training accuracy {acc:.1%}")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        x, labels = make_spiral(seed=args.seed)
        grid = np.linspace(-1.1, 1.1, 300)
        gx, gy = np.meshgrid(grid, grid)
        pred = model(np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)).argmax(1)
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.contourf(gx, gy, pred.reshape(gx.shape), alpha=0.3, cmap="brg")
        ax.scatter(x[:, 0], x[:, 1], c=labels, s=8, cmap="brg")
        ax.set_title(f"spiral: training accuracy {acc:.1%}")
        fig.savefig(args.plot, dpi=100)
        print(f"decision regions saved to {args.plot}")
    return 0
