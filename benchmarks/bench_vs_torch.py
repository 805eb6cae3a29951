"""minicnn against PyTorch on the same CPU: the table of issue 15, for 1 and 2 threads, and peak memory.

    python benchmarks/bench_vs_torch.py [--threads 1,2] [--rounds 9] [--split workers|blas] [--no-memory]
                                        [--data-dir DIR] [--apart]

For each thread count a fresh child process (NumPy's BLAS reads its thread count once, at import) times
every case with `minicnn.commands.bench.alternate`: minicnn, PyTorch, minicnn, PyTorch, ... round by
round, so both see the same machine load; each round repeats the work enough times to last ~50 ms,
and the MEDIAN round is reported, with the load average before and after. Batch 64, float32.

    conv 3x3 32->64 16x16, conv 3x3 64->128 8x8, LeNet C3 (5x5 6->16 14x14), depthwise 3x3 64 ch 16x16:
        forward + backward (dx, dw, db) of one layer with bias
    BatchNorm2D (64, 32, 32, 32): training-mode forward + backward
    LeNet-5 / cifar_net training step: forward, loss, backward, SGD (momentum 0.9, weight decay 5e-4)
        update, on random images (speed does not depend on the pixels); the first layer skips
        d(loss)/d(image), as PyTorch does for an input that does not require grad.
Then the peak resident memory (`/usr/bin/time -v`) of `minicnn train --model cifar_net` on the 4,000
images of the partial CIFAR-10 (batch 64, one epoch, 1 thread; DIR/cifar10/cifar10_partial.npz, DIR from
--data-dir or MINICNN_DATA). Without PyTorch, minicnn's rates are given against this machine's float32
GEMM rate alone. PyTorch is never a minicnn dependency: install it beside minicnn to compare.
With --apart each engine runs in a process of its own, and this process alternates them round by round
(same rounds, same medians): at 2+ threads PyTorch's OpenMP threads busy-wait after each call, which in a
shared process slows minicnn's next call (2026-12-03, Intel Xeon: a conv layer 17.3 ms alone, 20.1 ms
right after a PyTorch call). Their spinning also counts as PyTorch's CPU time, so read the wall ratio.
Measured 2026-12-03 15:46-15:48, quiet AMD EPYC (2 cores, L2 1 MB per core), 2 threads, cifar_net step,
two runs each: --apart 0.76x / 0.62x, shared process 0.74x / 0.71x (1 thread, --apart: 0.94x / 0.93x).
On this machine the shared process did not measurably favour PyTorch; runs vary more than the effect.
The CPU model and cache sizes are printed first, and after each thread count's table the plans
minicnn's planner chose in that child (`minicnn tune`'s table; MINICNN_NO_TUNE=1: the fixed defaults).

Measured 2026-11-29 20:03-20:06, quiet 2-core machine (load average 0.7-0.9), PyTorch 2.13 CPU, two
runs, wall-time ratios:
    1 thread: conv 32->64 16x16 1.48 / 1.43, conv 64->128 8x8 1.38 / 1.40, LeNet C3 1.49 / 1.49,
    depthwise 1.78 / 1.81, BatchNorm2D 0.64 / 0.70 (times); LeNet-5 step 1.08 / 1.05, cifar_net
    step 0.84 / 0.88 (339 vs 402, 330 vs 376 img/s) (speeds).
    2 threads (minicnn: 2 workers): conv 1.86 / 1.87 and 1.74 / 1.83, C3 2.42 / 2.46, depthwise 2.38 /
    2.30, BatchNorm2D 1.05 / 1.02; LeNet-5 step 0.55 / 0.68, cifar_net step 0.71 / 0.72 (516 vs 723,
    490 vs 680 img/s). PyTorch gains 1.7-1.8x from the second core, minicnn 1.5x on cifar_net:
    BatchNorm, ReLU and max pooling forward split their batch over the workers too
    (`minicnn.threads.split_large`), but their passes are bound by memory speed, which the second core
    barely raises here (a max over 8 MB: 0.44 ms on 1 thread, 0.40 on 2), the halves of a convolution
    share that memory, and LeNet-5's convolutions are too small to split (so LeNet-5 runs on one core
    either way, while PyTorch's 2-thread rate varied from 10,000 to 14,400 img/s between sessions).
    `benchmarks/bench_floor.py` shows what the 1-thread conv rows are bound by: the layer's three
    matrix products ALONE (hot in cache, best block and orientation) take 1.03x (32->64) and 1.11x
    (64->128) PyTorch's whole layer time.
Peak resident memory of the training run: 0.48 GB (1.34 GiB before the blocked im2col).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from minicnn.commands._options import integer  # no NumPy: the children set their thread counts first
from minicnn.threads import parse_threads

ROUND_SECONDS = 0.05  # each timed round repeats the work to last about this long
BATCH = 64
CONV_CASES = [  # label, C, T, kernel, H (= W), padding, groups
    ("conv 3x3 32->64 16x16", 32, 64, 3, 16, 1, 1),
    ("conv 3x3 64->128 8x8", 64, 128, 3, 8, 1, 1),
    ("LeNet C3 5x5 6->16 14x14", 6, 16, 5, 14, 0, 1),
    ("depthwise 3x3 64ch 16x16", 64, 64, 3, 16, 1, 64),
]


def _thread_counts(text: str) -> list[int]:
    """An argparse type: "1,2" -> [1, 2], each checked by `minicnn.threads.parse_threads`."""
    try:
        return [parse_threads(item, "thread count") for item in text.split(",")]
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=_thread_counts, default="1,2",
                   help="comma-separated thread counts, each >= 1 (default 1,2)")
    p.add_argument("--rounds", type=integer(1), default=9, help="alternating rounds per case (median reported)")
    p.add_argument("--split", choices=("workers", "blas"), default="workers",
                   help="how minicnn uses N threads: N workers that split each batch's convolutions, each with a "
                        "one-thread BLAS (what `minicnn --threads N` does; default), or one N-thread BLAS")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory training run")
    p.add_argument("--data-dir", default=os.environ.get("MINICNN_DATA"), help="folder holding cifar10/")
    p.add_argument("--apart", action="store_true",
                   help="run each engine in a process of its own, alternated round by round by this one (fair "
                        "at 2+ threads: PyTorch's OpenMP threads busy-wait after each call and slow the other "
                        "engine in a shared process); default: both in one child per thread count")
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--engine", choices=("ours", "torch"), default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ---- the child: one thread count, every case ------------------------------------------------------------

def _conv_case(c, t, k, h, pad, groups):
    import numpy as np

    from minicnn import layers as L
    from minicnn.commands.bench import layer_calls

    g = np.random.default_rng(0)
    x = g.standard_normal((BATCH, c, h, h), dtype=np.float32)
    layer = L.Conv2D(c, t, k, padding=pad, groups=groups)
    dy = g.standard_normal(layer(x).shape, dtype=np.float32)
    ours = layer_calls(layer, x, dy)[1]

    def theirs_factory(torch):
        conv = torch.nn.Conv2d(c, t, k, padding=pad, groups=groups)
        tx, tdy = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dy)

        def theirs():
            conv(tx).backward(tdy)
            tx.grad = conv.weight.grad = conv.bias.grad = None

        return theirs

    oh = h + 2 * pad - k + 1
    flops = 3 * 2 * BATCH * t * (c // groups) * k * k * oh * oh  # forward + two backward products
    return ours, theirs_factory, flops


def _batchnorm_case():
    import numpy as np

    from minicnn import layers as L
    from minicnn.commands.bench import layer_calls

    x = np.random.default_rng(0).standard_normal((BATCH, 32, 32, 32), dtype=np.float32)
    bn = L.BatchNorm2D(32)
    dy = np.ones_like(x)

    ours = layer_calls(bn, x, dy)[1]

    def theirs_factory(torch):
        tbn = torch.nn.BatchNorm2d(32)
        tx, tdy = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dy)

        def theirs():
            tbn(tx).backward(tdy)
            tx.grad = tbn.weight.grad = tbn.bias.grad = None

        return theirs

    return ours, theirs_factory, 0


def _torch_net(torch, name: str):
    nn = torch.nn
    if name == "lenet5":
        return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                             nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                             nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))

    def conv_bn(c, t):
        return [nn.Conv2d(c, t, 3, padding=1, bias=False), nn.BatchNorm2d(t), nn.ReLU()]

    return nn.Sequential(*conv_bn(3, 32), *conv_bn(32, 32), nn.MaxPool2d(2), *conv_bn(32, 64), *conv_bn(64, 64),
                         nn.MaxPool2d(2), *conv_bn(64, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(128, 10))


def _training_case(name: str):
    import numpy as np

    from minicnn import core, optim
    from minicnn.losses import SoftmaxCrossEntropy
    from minicnn.models import MODELS

    shape = (BATCH, 1, 28, 28) if name == "lenet5" else (BATCH, 3, 32, 32)
    g = np.random.default_rng(0)
    x, labels = g.standard_normal(shape, dtype=np.float32), g.integers(0, 10, BATCH)
    core.manual_seed(0)
    model = MODELS[name]()
    model[0].input_grad = False  # as the training loop does
    opt = optim.SGD(model.parameters(), 0.05, momentum=0.9, weight_decay=5e-4)
    loss_fn = SoftmaxCrossEntropy()

    def ours():
        loss_fn.forward(model(x), labels)
        model.backward(loss_fn.backward())
        opt.step()
        opt.zero_grad()

    def theirs_factory(torch):
        torch.manual_seed(0)
        net = _torch_net(torch, name)
        t_opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        t_loss = torch.nn.CrossEntropyLoss()
        tx, ty = torch.from_numpy(x), torch.from_numpy(labels)

        def theirs():
            t_opt.zero_grad()
            t_loss(net(tx), ty).backward()
            t_opt.step()

        return theirs

    return ours, theirs_factory, 0


def _cases() -> list:
    """[(label, (ours, theirs_factory, flops), unit)] of every row of the table, in order."""
    cases = [(label, _conv_case(*args), "ms") for label, *args in CONV_CASES]
    return cases + [("BatchNorm2D (64,32,32,32)", _batchnorm_case(), "ms"),
                    ("LeNet-5 training step", _training_case("lenet5"), "img/s"),
                    ("cifar_net training step", _training_case("cifar_net"), "img/s")]


def engine_child(engine: str, threads: int) -> int:
    """--apart: ONE engine's process ("ours" or "torch"), driven by the parent over stdin/stdout, one JSON
    line each way: {"inner": i, "case": k} runs case k's work `i` times and answers its wall and CPU
    seconds; {"calibrate": k} answers how many calls last ROUND_SECONDS; {"plans": true} the planner's
    table; {"quit": true} ends it. Nothing else runs in this process, so the other engine's threads
    (PyTorch's OpenMP threads busy-wait after each call) cannot slow this one down."""
    import time

    from minicnn.commands.bench import calls_per_round, gemm_gflops, repeated
    from minicnn.threads import keep_freed_memory

    keep_freed_memory()
    torch = None
    if engine == "torch":
        import torch

        torch.set_num_threads(threads)
    cases = _cases()
    calls = [ours if torch is None else theirs_factory(torch) for _, (ours, theirs_factory, _), _ in cases]
    print(json.dumps({"gemm": gemm_gflops(5) if torch is None else 0.0, "load": os.getloadavg()[0],
                      "cases": [[label, unit, flops] for label, (_, _, flops), unit in cases]}), flush=True)
    for line in sys.stdin:
        msg = json.loads(line)
        if "calibrate" in msg:
            answer = {"inner": calls_per_round(calls[msg["calibrate"]], ROUND_SECONDS)}
        elif "case" in msg:
            work = repeated(calls[msg["case"]], msg["inner"])
            c0, t0 = time.process_time(), time.perf_counter()
            work()
            answer = {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}
        elif "plans" in msg:
            from minicnn.commands.tune import used_plans_table

            answer = {"plans": used_plans_table()}
        else:
            return 0
        print(json.dumps(answer), flush=True)
    return 0


def apart(threads: int, rounds: int, envs: dict[str, dict]) -> tuple[list[dict], dict, dict, list[str]]:
    """--apart: each engine in a process of its own (environments `envs`), the parent alternating them
    round by round (one warm-up round each, then ours, torch, ours, ...); the same rows as `child`."""
    import numpy as np

    procs = {name: subprocess.Popen([sys.executable, __file__, "--engine", name, "--child", str(threads)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
             for name, env in envs.items()}

    def ask(name: str, msg: dict) -> dict:
        procs[name].stdin.write(json.dumps(msg) + "\n")
        procs[name].stdin.flush()
        line = procs[name].stdout.readline()
        if not line:
            raise RuntimeError(f"bench_vs_torch: the {name} process ended early (exit {procs[name].wait()})")
        return json.loads(line)

    try:
        heads = {name: json.loads(proc.stdout.readline()) for name, proc in procs.items()}
        rows = []
        for k, (label, unit, flops) in enumerate(heads["ours"]["cases"]):
            inner = ask("ours", {"calibrate": k})["inner"]
            for name in procs:  # warm-up
                ask(name, {"case": k, "inner": inner})
            wall: dict[str, list[float]] = {name: [] for name in procs}
            cpu: dict[str, list[float]] = {name: [] for name in procs}
            for _ in range(rounds):
                for name in procs:
                    answer = ask(name, {"case": k, "inner": inner})
                    wall[name].append(answer["wall"])
                    cpu[name].append(answer["cpu"])
            rows.append({"label": label, "unit": unit, "flops": flops,
                         **{name: float(np.median(v)) / inner for name, v in wall.items()},
                         **{f"{name}_cpu": float(np.median(v)) / inner for name, v in cpu.items()}})
        plans = ask("ours", {"plans": True})["plans"]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.stdin.write(json.dumps({"quit": True}) + "\n")
                proc.stdin.flush()
                proc.wait(timeout=60)
    return rows, heads["ours"], {"load_end": os.getloadavg()[0]}, plans


def child(threads: int, rounds: int) -> int:
    """Time every case at `threads` threads; print one JSON object per case."""

    import numpy as np

    from minicnn.commands.bench import alternate, calls_per_round, gemm_gflops, repeated
    from minicnn.threads import keep_freed_memory

    keep_freed_memory()  # as the `minicnn` command does; process-wide, so PyTorch's arrays profit too

    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    cases = _cases()
    print(json.dumps({"gemm": gemm_gflops(5), "load": os.getloadavg()[0]}), flush=True)
    for label, (ours, theirs_factory, flops), unit in cases:
        inner = calls_per_round(ours, ROUND_SECONDS)
        engines = {"ours": repeated(ours, inner)}
        if torch is not None:
            engines["torch"] = repeated(theirs_factory(torch), inner)
        cpu: dict[str, list[float]] = {}
        times = alternate(engines, rounds, cpu_times=cpu)
        row = {"label": label, "unit": unit, "flops": flops,
               **{name: float(np.median(v)) / inner for name, v in times.items()},
               **{f"{name}_cpu": float(np.median(v)) / inner for name, v in cpu.items()}}
        print(json.dumps(row), flush=True)
    from minicnn.commands.tune import used_plans_table

    print(json.dumps({"plans": used_plans_table()}), flush=True)
    print(json.dumps({"load_end": os.getloadavg()[0]}), flush=True)
    return 0


# ---- the parent: children, table, memory ------------------------------------------------------------------

def _value(row: dict, name: str) -> float:
    """ms per call, or images/s for a training step."""
    return BATCH / row[name] if row["unit"] == "img/s" else row[name] * 1e3


def print_table(threads: int, split: str, rows: list[dict], head: dict, tail: dict) -> None:
    has_torch = any("torch" in r for r in rows)
    blas = 1 if split == "workers" else threads
    how = f"{threads} workers x 1 BLAS thread" if split == "workers" and threads > 1 else f"{threads} BLAS thread(s)"
    print(f"\n{threads} thread(s): minicnn {how}, PyTorch {threads} thread(s)")
    print(f"float32 GEMM {head['gemm']:.0f} GFLOP/s ({blas} BLAS thread(s)), load average "
          f"{head['load']:.2f} -> {tail['load_end']:.2f}")
    print(f"{'work (batch 64, median)':<26}{'minicnn':>9}{'pytorch':>9}{'ratio':>7}{'cpu ratio':>10}"
          f"{'GFLOP/s':>9}")
    for r in rows:
        digits = 0 if r["unit"] == "img/s" else 2
        line = f"{r['label']:<26}{_value(r, 'ours'):>9.{digits}f}"
        if has_torch:  # a time ratio for layers, a speed ratio for training steps
            line += (f"{_value(r, 'torch'):>9.{digits}f}{_value(r, 'ours') / _value(r, 'torch'):>6.2f}x"
                     f"{_value(r, 'ours_cpu') / _value(r, 'torch_cpu'):>9.2f}x")
        else:
            line += f"{'-':>9}{'-':>7}{'-':>10}"
        line += f"{r['flops'] / r['ours'] / 1e9:>9.1f}" if r["flops"] else ""
        print(line)
    print("layers: ms per call, ratio = minicnn time / PyTorch time (lower is better);\n"
          "training steps: images/s, ratio = minicnn / PyTorch speed (higher is better);\n"
          "cpu ratio: the same from process CPU time (all threads), less sensitive to\n"
          "other jobs.")


def peak_memory_mb(data_dir: str | None) -> str:
    npz = Path(data_dir or "", "cifar10", "cifar10_partial.npz")
    if not data_dir or not npz.exists():
        return f"skipped: {npz} not found (set --data-dir or MINICNN_DATA)"
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as out:
        cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "minicnn", "--threads", "1", "train", "--model",
               "cifar_net", "--dataset", str(npz), "--epochs", "1", "--batch-size", str(BATCH), "--out", out,
               "--no-progress"]
        env = {**os.environ, "PYTHONPATH": str(root)}
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    if done.returncode or not found:
        return f"failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}"
    speed = re.search(r"training ([\d,]+) images/s", done.stdout)
    return (f"{int(found.group(1)) / 2**20:.2f} GB peak resident (4,000 images, batch 64, 1 thread"
            + (f", {speed.group(1)} img/s" if speed else "") + ")")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.engine is not None:
        return engine_child(args.engine, args.child)
    if args.child is not None:
        return child(args.child, args.rounds)
    from minicnn.commands.tune import header

    if args.apart and importlib.util.find_spec("torch") is None:
        print("bench_vs_torch: --apart compares minicnn with PyTorch, which is not installed here "
              "(pip install torch beside minicnn)", file=sys.stderr)
        return 1
    print("\n".join(header()))
    root = Path(__file__).resolve().parent.parent
    for threads in args.threads:
        env = {**os.environ, "PYTHONPATH": str(root)}
        blas = 1 if args.split == "workers" else threads
        env.update({name: str(blas) for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")})
        env["MINICNN_WORKERS"] = str(threads if args.split == "workers" else 1)
        if args.apart:
            torch_env = {**env, **{name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}}
            try:
                rows, head, tail, plans = apart(threads, args.rounds, {"ours": env, "torch": torch_env})
            except RuntimeError as e:  # PyTorch missing, or a child failed: its error is on stderr above
                print(e, file=sys.stderr)
                return 1
            print_table(threads, args.split, rows, head, tail)
            print("(each engine in a process of its own: --apart)")
            print("plans chosen by minicnn's planner (layer: weight @ H x W, ms per call):")
            print("\n".join(plans))
            continue
        done = subprocess.run([sys.executable, __file__, "--child", str(threads), "--rounds", str(args.rounds)],
                              capture_output=True, text=True, env=env, check=False)
        if done.returncode:
            print(done.stderr, file=sys.stderr)
            return 1
        lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        print_table(threads, args.split, [r for r in lines if "label" in r], lines[0], lines[-1])
        print("plans chosen by minicnn's planner (layer: weight @ H x W, ms per call):")
        print("\n".join(next(r["plans"] for r in lines if "plans" in r)))
    if not args.no_memory:
        print(f"\nminicnn train --model cifar_net, one epoch:\n  {peak_memory_mb(args.data_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
