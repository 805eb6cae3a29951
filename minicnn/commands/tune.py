"""`minicnn tune MODEL [--input C,H,W] [--batch-size N]`: plan every convolution and max pooling of a model.

Builds the registered model, runs one forward and backward pass on random images of that batch (the
first layer without dL/d(image), as `minicnn train` runs it), so
that the kernels' planner (`minicnn.kernels.planner`) times the candidates of every layer and keeps the
fastest, saves the plans in this machine's plan file, and prints what it chose: per layer and operation
the chosen candidate and its time, the default's time (what `minicnn --no-tune` runs) and the others'.
Plans already in the file are read, not measured again (the table says which); `--clear` first to
measure afresh. `minicnn tune --show` lists the stored plans, `minicnn tune --clear` removes them.
"""

from __future__ import annotations

import textwrap

NAME = "tune"
HELP = "plan a model's convolution and max-pool kernels on this machine (measure, keep the fastest); --show, --clear"
DEFAULT_BATCH = 64
MAX_BATCH = 4096
COLUMNS = 80
OPS = {"conv2d": "fwd", "conv2d_backward": "bwd", "max_pool2d": "pool"}  # "bwd*": backward without dx


def add_arguments(parser) -> None:
    from minicnn.commands._options import integer

    parser.add_argument("model", nargs="?", help="registered model name (see `minicnn models`)")
    parser.add_argument("--input", default=None, metavar="C,H,W",
                        help="input shape of one image (the model's own if unset: 1,28,28 for lenet5)")
    parser.add_argument("--batch-size", type=integer(1, MAX_BATCH), default=DEFAULT_BATCH,
                        help="images per batch to plan for (plans are keyed by it rounded up to a power of 2)")
    parser.add_argument("--show", action="store_true", help="list the stored plans of this machine and exit")
    parser.add_argument("--clear", action="store_true",
                        help="remove every stored plan (with MODEL: then plan it afresh)")


def header() -> list[str]:
    """The machine the plans belong to: CPU model, caches (and where they were read), plan file."""
    from minicnn.kernels import machine, planner

    caches = machine.cache_sizes()
    return [f"CPU: {machine.cpu_model()}",
            f"caches: L1d {caches.l1 // 1024} KB, L2 {caches.l2 // 1024} KB, L3 {caches.l3 // 2**20} MB "
            f"({caches.source})",
            f"plan file: {planner.plan_file()}"]


def _ms(seconds: float) -> str:
    return f"{1000 * seconds:.2f}"


def _describe(key: str) -> tuple[str, str]:
    """(operation, shapes) of a plan key made by `minicnn.kernels.conv.plan_key`."""
    parts = key.split("|")
    settings = dict(p.split("=", 1) for p in parts[2:] if "=" in p)
    op = OPS.get(parts[0], parts[0])
    if settings.get("dx") == "False":
        op += "*"
    weight = parts[1].split(":")[0]
    side = "x".join(settings.get("image", "?").split("x")[1:])  # H x W: C is in the weight (times groups)
    return op, f"{weight}@{side}"


def table(rows: list[tuple[str, str]], plans: dict | None = None) -> list[str]:
    """Lines (<= 80 columns) for (layer, plan key) rows: chosen candidate, its ms, the default's, others;
    the plans from `plans` ({key: Plan}), else the process's planner."""
    from minicnn.kernels.planner import planner

    plans = planner().plans if plans is None else plans
    lines = [f"{'layer':<16}{'op':<5}{'chosen':<16}{'ms':>7}{'default':>8}  others (ms)"]
    for layer, key in rows:
        plan = plans[key]
        op, _ = _describe(key)
        others = ", ".join(f"{name} {_ms(s)}" for name, s in sorted(plan.seconds.items(), key=lambda kv: kv[1])
                           if name not in (plan.choice, "default"))
        default, chosen = plan.seconds.get("default"), plan.seconds.get(plan.choice)
        choice = plan.choice[:14] + "!" if plan.busy else plan.choice[:15]
        head = (f"{layer[:15]:<16}{op:<5}{choice:<16}{'-' if chosen is None else _ms(chosen):>7}"
                f"{'-' if default is None else _ms(default):>8}  ")
        if plan.lent:
            others = "lent: the choice measured for another batch size"
        lines += textwrap.wrap(others or "-", COLUMNS, initial_indent=head, subsequent_indent=" " * 22)
    lines.append("(bwd*: backward without dx; candidates not listed: not tried, planner.BUDGET)")
    if any(plans[key].busy for _, key in rows):
        lines.append("(!: measured while other programs used the CPU: kept for this run, not stored)")
    return lines


def _layer_names(model) -> dict[str, str]:
    """'TxCxKHxKW' -> the dotted names of the conv layers with that weight shape."""
    names: dict[str, list[str]] = {}

    def walk(layer, prefix: str) -> None:
        for name, child in layer.named_children():
            path = f"{prefix}{name}"
            label = f"{path}:{type(child).__name__}"
            if hasattr(child, "kernel_size") and hasattr(child, "groups") and hasattr(child, "out_channels"):
                kh, kw = child.kernel_size
                shape = f"{child.out_channels}x{child.in_channels // child.groups}x{kh}x{kw}"
                names.setdefault(shape, []).append(label)
            walk(child, path + ".")

    walk(model, "")
    return {shape: ",".join(paths) for shape, paths in names.items()}


def used_plans_table(before: set[str] | None = None) -> list[str]:
    """The table of the plans this process used (those not in `before`), layers named by their shapes:
    what the benchmarks print after their runs."""
    from minicnn.kernels.planner import planner

    keys = [k for k in planner().used if k in planner().plans and k not in (before or set())]
    if not keys:
        return ["no plans used (tuning off: MINICNN_NO_TUNE / --no-tune, or no planned kernel ran)"]
    return table([(_describe(k)[1], k) for k in keys])


def plan_model(name: str, input_shape: tuple[int, int, int] | None, batch: int) -> tuple[list[tuple[str, str]],
                                                                                          float]:
    """Run `name` forward and backward once on a random batch; ([(layer, key), ...] in first-use order, s)."""
    import time

    import numpy as np

    from minicnn.app.train import first_layer
    from minicnn.kernels.planner import planner
    from minicnn.models import build, config_for, default_input

    input_shape = default_input(name) if input_shape is None else input_shape
    model = build(name, **config_for(name, input_shape))
    model.train()
    x = np.random.default_rng(0).standard_normal((batch, *input_shape)).astype(np.float32)
    start = time.perf_counter()
    before = set(planner().used)
    first = first_layer(model)
    saved = getattr(first, "input_grad", None)
    if saved is not None:
        first.input_grad = False  # as `minicnn train` runs it: the first layer skips dL/d(image)
    y = model(x)
    model.backward(np.ones_like(y) / y.size)
    if saved is not None:
        first.input_grad = saved
    seconds = time.perf_counter() - start
    layers = _layer_names(model)
    keys = [k for k in planner().used if k not in before and k in planner().plans]
    return [(layers.get(k.split("|")[1].split(":")[0], "?") if not k.startswith("max_pool2d|")
             else _describe(k)[1], k) for k in keys], seconds


def run(args) -> int:
    from minicnn import runtime
    from minicnn.commands._model_file import parse_shape
    from minicnn.commands._options import fail
    from minicnn.kernels.planner import planner

    if args.clear:
        removed = planner().clear()
        print(f"removed {len(removed)} plan file(s)" + "".join(f"\n  {p}" for p in removed))
        if args.model is None:
            return 0
    if args.show:
        return _show()
    if args.model is None:
        return fail(NAME, "expected a MODEL to plan (or --show / --clear); see `minicnn models`")
    if not runtime.tuning_enabled():
        return fail(NAME, "tuning is off (--no-tune or MINICNN_NO_TUNE=1): nothing would be measured")
    if not runtime.kernels_enabled():
        return fail(NAME, "--plain runs no fast kernels: there is nothing to plan")
    try:
        shape = None if args.input is None else parse_shape(args.input)
        rows, seconds = plan_model(args.model, shape, args.batch_size)
    except ValueError as e:
        return fail(NAME, str(e))
    try:
        path = planner().save()
    except (OSError, ValueError) as e:  # ValueError: minicnn.files.TargetError (a folder or link is there)
        return fail(NAME, f"the plans were measured but could not be saved: {e}")
    measured = sum(planner().used[k] for _, k in rows)
    print("\n".join(header()))
    print(f"{args.model}, batch {args.batch_size}: {len(rows)} plans, {measured} measured, "
          f"{len(rows) - measured} read from the file")
    print(f"forward + backward with planning: {seconds:.2f} s (of which measuring: "
          f"{planner().planning_seconds:.2f} s)")
    print()
    print("\n".join(table(rows)))
    print(f"\nsaved: {path}" if path is not None else "\nplans kept in memory only (MINICNN_PLANS=off)")
    busy = sum(planner().plans[k].busy for _, k in rows)
    if busy and path is not None:
        print(f"{busy} plan(s) not saved: measured while other programs used the CPU; run `minicnn tune "
              f"{args.model}` again when the machine is quiet")
    return 0


def _show() -> int:
    from minicnn.kernels.planner import planner

    stored = planner().stored()
    print("\n".join(header()))
    print(f"{len(stored)} stored plans")
    if stored:
        print()
        print("\n".join(table([(_describe(k)[1], k) for k in sorted(stored)], stored)))
        print("(layer: weight shape @ H x W; batch, groups and dtype are in the file's keys)")
    return 0
