"""How much the planner's choices vary, and what that costs a training step: `python benchmarks/bench_plans.py`.

    python benchmarks/bench_plans.py [--model cifar_net] [--threads 2] [--plans 6] [--rounds 5]

The planner measures each candidate once or twice, on a trial part of the batch, and keeps the winner on
disk: a measurement that a busy moment spoiled stays in the plan file. This script makes `--plans` plans of
one model in one process (the planner emptied before each, no plan file read or written), then times a
training step (batch 64, SGD, momentum 0.9, the first layer without dL/d(image)) under each plan in
alternating rounds (`minicnn.commands.bench.alternate`), and prints the medians. Then, for the slowest plan
against the fastest, each choice on which they differ is put alone into the fastest plan and timed in
alternating rounds with it: what that one choice costs, and the trial times the slow plan chose it on.
CPU model, caches and load average first. Output fits 80 columns.

Measured 2026-12-03 17:40-18:00 (AMD EPYC, 2 cores, L2 1 MB per core; the shared host busy: the same plan
took 132 to 200 ms per step within the hour), `--threads 2`, cifar_net, by this script and the prototype it
was made from: six plans of 148, 149, 214, 157, 150 and 155 ms per step; the 214 ms plan ran four backward
passes unsplit ("whole", +18 to +34 ms each), chosen on trial times 1-3% below the split default's (16 more
plans chose "whole" for no backward pass: most likely the other core was taken while that plan was measured).
Later runs: 192-210 ms (1.10x); 175-244 ms (1.40x) with nothing else of ours running, the fastest plan's own
rounds spread 36 ms. So a plan measured in a bad moment can cost a tenth of every later step, and the plan file
keeps it, unless the planner saw other programs on the CPU (`planner.BUSY_SHARE`): `minicnn tune --clear`,
then plan again on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap

import numpy as np

BATCH = 64
COLUMNS = 80


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="cifar_net", help="registered model (default cifar_net)")
    parser.add_argument("--threads", type=int, default=2, help="minicnn workers, one BLAS thread each (default 2)")
    parser.add_argument("--plans", type=int, default=6, help="plans to make (default 6)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per timing (default 5)")
    parser.add_argument("--steps", type=int, default=3, help="training steps per round (default 3)")
    args = parser.parse_args(argv)
    from minicnn.models import MODELS

    if args.model not in MODELS:
        parser.error(f"unknown model {args.model!r}; see `minicnn models`")
    for name in ("threads", "plans", "rounds", "steps"):
        if getattr(args, name) < 1 or (name == "plans" and args.plans < 2):
            parser.error(f"--{name}: expected a whole number >= {2 if name == 'plans' else 1}, "
                         f"got {getattr(args, name)}")
    return args


def training_step(name: str):
    """A step of `name` at its natural input, batch 64, as `bench_vs_torch.py` trains it."""
    from minicnn import core, optim
    from minicnn.app.train import first_layer
    from minicnn.losses import SoftmaxCrossEntropy
    from minicnn.models import build, config_for, default_input

    shape = default_input(name)
    g = np.random.default_rng(0)
    x = g.standard_normal((BATCH, *shape), dtype=np.float32)
    core.manual_seed(0)
    model = build(name, **config_for(name, shape))
    model.train()
    y = model(x)
    labels = g.integers(0, y.shape[1], BATCH)
    first = first_layer(model)
    if hasattr(first, "input_grad"):
        first.input_grad = False  # as `minicnn train` runs it
    opt = optim.SGD(model.parameters(), 0.05, momentum=0.9, weight_decay=5e-4)
    loss_fn = SoftmaxCrossEntropy()

    def step():
        loss_fn.forward(model(x), labels)
        model.backward(loss_fn.backward())
        opt.step()
        opt.zero_grad()

    return step


def _short(key: str) -> str:
    """'bwd 64x64x3x3@16x16'-style name of a plan key (`minicnn tune`'s)."""
    from minicnn.commands.tune import _describe

    op, shapes = _describe(key)
    return f"{op} {shapes}"


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ["MINICNN_PLANS"] = "off"  # this process's plans only: the plan file is neither read nor written
    from minicnn import runtime
    from minicnn.commands.bench import alternate, repeated
    from minicnn.kernels import machine
    from minicnn.kernels.planner import planner

    runtime.configure(threads=args.threads, keep_freed_memory=True)
    caches = machine.cache_sizes()
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"CPU: {machine.cpu_model()}; L2 {caches.l2 // 1024} KB, L3 {caches.l3 // 2**20} MB; load {load}")
    print(f"{args.model}, batch {BATCH}, {args.threads} worker(s) x 1 BLAS thread")
    step, p = training_step(args.model), planner()
    plans, planning = [], []
    for _ in range(args.plans):
        p.plans.clear()
        p.used.clear()
        before = p.planning_seconds
        step()  # plans every planned kernel afresh
        plans.append(dict(p.plans))
        planning.append(p.planning_seconds - before)

    def under(plan):
        def run():
            p.plans.clear()
            p.plans.update(plan)
            repeated(step, args.steps)()
        return run

    times = alternate({i: under(plan) for i, plan in enumerate(plans)}, args.rounds)
    ms = [1000 * float(np.median(times[i])) / args.steps for i in range(len(plans))]
    print(f"{'plan':>4} {'ms/step':>8} {'img/s':>7} {'planning s':>11}")
    for i, (t, s) in enumerate(zip(ms, planning, strict=True)):
        print(f"{i:>4} {t:>8.1f} {BATCH * 1000 / t:>7.0f} {s:>11.2f}")
    fast, slow = plans[int(np.argmin(ms))], plans[int(np.argmax(ms))]
    differ = [k for k in fast if k in slow and fast[k].choice != slow[k].choice]
    print(f"slowest / fastest: {max(ms) / min(ms):.2f}x; {len(differ)} choice(s) differ")
    if not differ:
        return 0
    engines = {"fastest": under(fast)}
    for k in differ:
        engines[k] = under({**fast, k: slow[k]})
    times = alternate(engines, args.rounds)
    base = float(np.median(times["fastest"])) / args.steps
    spread = 1000 * (max(times["fastest"]) - min(times["fastest"])) / args.steps
    print(textwrap.fill(f"each slow choice alone in the fastest plan (step ms, + is slower; the fastest "
                        f"plan's own rounds spread {spread:.1f} ms: smaller costs are noise):", COLUMNS))
    for k in sorted(differ, key=lambda k: -float(np.median(times[k]))):
        cost = 1000 * (float(np.median(times[k])) / args.steps - base)
        trial = slow[k].seconds
        line = (f"{cost:+7.1f}  {_short(k)}: {fast[k].choice} -> {slow[k].choice} (slow plan's trial: "
                + ", ".join(f"{n} {1000 * trial[n]:.2f}" for n in (fast[k].choice, slow[k].choice) if n in trial)
                + " ms)")
        print(textwrap.fill(line, COLUMNS, subsequent_indent=" " * 9))
    return 0


if __name__ == "__main__":
    sys.exit(main())
