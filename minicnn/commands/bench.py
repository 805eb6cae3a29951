"""`minicnn bench NAME [--quick]`: time the engine's hot paths against this machine's own limits.

Each benchmark is one entry of BENCHMARKS (name -> (description, function(args) -> int)); add a
benchmark by adding an entry. Every benchmark measures, in the same run, the float32 matrix-multiply
rate of this machine (the ceiling for an im2col convolution) and reports its figures as fractions of it,
so numbers from a busy machine still compare honestly. Times are medians over repeats.

`minicnn bench conv`: forward and backward of every convolution method on LeNet, CIFAR, depthwise,
1x1, stride-2 and 11x11 layers (batch 64, float32), the peak extra memory of each call, PyTorch's
forward+backward time on the same shapes with the same thread count when torch happens to be
installed (it is never a dependency), and the kernel size where FFT starts to beat im2col. It first
times one forward+backward of every layer it will measure and says how long the rest will take; a
progress bar (on stderr, only when it is a terminal) follows the layers. Output fits 80 columns.
"""

from __future__ import annotations

import sys
import time
import tracemalloc

from minicnn.commands._options import integer
from minicnn.threads import configured_threads

NAME = "bench"
HELP = "benchmark hot paths (conv: every method vs the machine's matrix-multiply rate and PyTorch)"


def add_arguments(parser) -> None:
    parser.add_argument("name", choices=sorted(BENCHMARKS), help="which benchmark")
    parser.add_argument("--quick", action="store_true", help="five cases, 3 rounds, no crossover sweep")
    parser.add_argument("--repeats", "--rounds", dest="repeats", type=integer(1, 1000), default=None,
                        help="timed rounds per figure, the median reported (default 7, --quick 3)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison even if installed")


def run(args) -> int:
    _, fn = BENCHMARKS[args.name]
    return fn(args)


# ---- measuring helpers ---------------------------------------------------------------------------------

def alternate(engines: dict, rounds: int, warmup: int = 1, cpu_times: dict | None = None) -> dict[str, list[float]]:
    """THE timing helper of minicnn's benchmarks: wall seconds of each engine's fn(), in alternating
    rounds (engine A, engine B, A, B, ...) so that all of them see the same machine load.

    engines: name -> fn(); returns name -> one time per round (report the median). `warmup` untimed
    rounds come first (first-call allocations, lazy imports). A dict passed as `cpu_times` receives the
    process CPU seconds of the same rounds (all threads): on a busy machine a one-thread engine's CPU
    time still measures its own work, while its wall time includes waiting for a core."""
    for _ in range(warmup):
        for fn in engines.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in engines}
    cpu = {name: [] for name in engines} if cpu_times is None else cpu_times
    cpu.update({name: [] for name in engines})
    for _ in range(rounds):
        for name, fn in engines.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return times


def repeated(fn, times: int):
    """A callable that runs fn() `times` times: one timed round of `alternate`, long enough to measure."""
    def run():
        for _ in range(times):
            fn()
    return run


def calls_per_round(fn, round_seconds: float) -> int:
    """How many calls of fn() last about `round_seconds` (timed on one call, which also warms fn up)."""
    t0 = time.perf_counter()
    fn()
    return max(1, round(round_seconds / max(time.perf_counter() - t0, 1e-6)))


def layer_calls(layer, x, dy):
    """(forward, forward_and_backward): the two calls a layer benchmark times, on fixed x and dy."""
    def forward():
        layer(x)

    def forward_and_backward():
        layer(x)
        layer.backward(dy)

    return forward, forward_and_backward


def median_ms(fn, repeats: int, warmup: int = 1) -> float:
    """Median wall time of fn() in milliseconds (`alternate` with one engine)."""
    import numpy as np

    return float(np.median(alternate({"fn": fn}, repeats, warmup)["fn"])) * 1e3


def peak_extra_bytes(fn) -> int:
    """Peak memory NumPy allocated during fn() beyond what was live before (tracemalloc)."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def gemm_gflops(repeats: int) -> float:
    """float32 matrix-multiply rate (GFLOP/s) of this machine, measured now: (2048 x 2048) @ (2048 x 2048)."""
    import numpy as np

    g = np.random.default_rng(0)
    a = g.standard_normal((2048, 2048), dtype=np.float32)
    b = g.standard_normal((2048, 2048), dtype=np.float32)
    ms = median_ms(lambda: a @ b, repeats)
    return 2 * 2048**3 / (ms * 1e-3) / 1e9


def _torch(no_torch: bool):
    if no_torch:
        return None
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(configured_threads())
    return torch


# ---- conv ------------------------------------------------------------------------------------------------

# name, N, C, T, kernel, H(=W), stride, padding, groups
CONV_CASES = [
    ("LeNet 1->6 5x5 p2 28x28", 64, 1, 6, 5, 28, 1, 2, 1),
    ("LeNet 6->16 5x5 14x14", 64, 6, 16, 5, 14, 1, 0, 1),
    ("CIFAR 3->32 3x3 p1 32x32", 64, 3, 32, 3, 32, 1, 1, 1),
    ("CIFAR 32->64 3x3 p1 16x16", 64, 32, 64, 3, 16, 1, 1, 1),
    ("CIFAR 64->128 3x3 p1 8x8", 64, 64, 128, 3, 8, 1, 1, 1),
    ("depthwise 64ch 3x3 p1 16x16", 64, 64, 64, 3, 16, 1, 1, 64),
    ("1x1 64->128 16x16", 64, 64, 128, 1, 16, 1, 0, 1),
    ("stride-2 32->64 3x3 p1 32x32", 64, 32, 64, 3, 32, 2, 1, 1),
    ("11x11 16->16 p5 64x64", 64, 16, 16, 11, 64, 1, 5, 1),
]
QUICK_CASES = {"LeNet 1->6 5x5 p2 28x28", "LeNet 6->16 5x5 14x14", "CIFAR 32->64 3x3 p1 16x16",
               "depthwise 64ch 3x3 p1 16x16", "11x11 16->16 p5 64x64"}
DIRECT_CASES = {"LeNet 6->16 5x5 14x14"}  # the direct reference loops per output pixel: timed on one case only
SWEEP_KERNELS = (3, 5, 7, 9, 11)  # FFT vs im2col crossover: 16->16 channels, 64x64 maps, "same" padding


def _conv_flops(n, c, t, k, oh, ow, groups) -> int:
    """Forward multiply-adds x 2 (one MAC = 2 flops)."""
    return 2 * n * t * (c // groups) * k * k * oh * ow


def _conv_job(method, n, c, t, k, h, stride, pad, groups):
    """(probe, measure) for one layer: probe() times one warm forward+backward (seconds); measure(repeats,
    memory) -> (fwd ms, bwd ms, peak bytes, output shape), medians over `repeats`."""
    import numpy as np

    from minicnn import layers as L

    g = np.random.default_rng(0)
    layer = L.Conv2D(c, t, k, stride=stride, padding=pad, groups=groups, method=method)
    x = g.standard_normal((n, c, h, h), dtype=np.float32)
    y = layer(x)
    dy = g.standard_normal(y.shape, dtype=np.float32)
    forward, fwd_bwd = layer_calls(layer, x, dy)

    def probe() -> float:
        fwd_bwd()  # the first call plans the kernels (and warms up); the second is timed
        t0 = time.perf_counter()
        fwd_bwd()
        return time.perf_counter() - t0

    def measure(repeats: int, memory: bool = True):
        fwd = median_ms(forward, repeats)
        total = median_ms(fwd_bwd, repeats)
        peak = peak_extra_bytes(fwd_bwd) if memory else 0
        return fwd, max(total - fwd, 0.0), peak + _held_bytes(layer), y.shape

    return probe, measure


def _calls_per_figure(repeats: int) -> int:
    """Forward+backward calls one row costs, counted generously: a warm-up and `repeats` of forward alone
    (counted as whole calls), the same of forward+backward, and one under tracemalloc."""
    return 2 * (repeats + 1) + 1


def _held_bytes(layer) -> int:
    """Bytes a convolution layer keeps between calls besides its input (its ConvWorkspace)."""
    workspace = layer.__dict__.get("_workspace")  # set by forward
    return 0 if workspace is None else workspace.nbytes


def _time_torch(torch, n, c, t, k, h, stride, pad, groups, repeats) -> float:
    x = torch.randn(n, c, h, h, requires_grad=True)
    w = torch.randn(t, c // groups, k, k, requires_grad=True)
    b = torch.randn(t, requires_grad=True)

    def fwd_bwd():
        y = torch.nn.functional.conv2d(x, w, b, stride=stride, padding=pad, groups=groups)
        y.backward(torch.ones_like(y))
        x.grad = w.grad = b.grad = None

    return median_ms(fwd_bwd, repeats)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _jobs(args, repeats: int) -> list[tuple[str, str, tuple, int]]:
    """(case, method, shape args, repeats) of every row the run will time, table rows first, then the sweep."""
    jobs = []
    for name, n, c, t, k, h, s, p, groups in CONV_CASES:
        if args.quick and name not in QUICK_CASES:
            continue
        for method in ["im2col", "fft"] + (["direct"] if name in DIRECT_CASES and not args.quick else []):
            jobs.append((name, method, (n, c, t, k, h, s, p, groups), 1 if method == "direct" else repeats))
    if not args.quick:
        for k in SWEEP_KERNELS:
            for method in ("im2col", "fft"):
                jobs.append((f"sweep {k}x{k}", method, (64, 16, 16, k, 64, 1, k // 2, 1), repeats))
    return jobs


def bench_conv(args) -> int:
    from tqdm import tqdm

    repeats = args.repeats or (3 if args.quick else 7)
    torch = _torch(args.no_torch)
    gemm = gemm_gflops(repeats)
    print(f"minicnn bench conv: batch 64, float32, {configured_threads()} BLAS thread(s), median of {repeats}")
    print(f"machine float32 GEMM (2048^3, measured now): {gemm:.1f} GFLOP/s")
    jobs = _jobs(args, repeats)
    shown = sys.stderr.isatty()
    probes = {}
    with tqdm(jobs, desc="warming up", unit="layer", leave=False, disable=not shown, ncols=78) as bar:
        for name, method, shape, _ in bar:  # each layer dropped after its probe: one layer's memory at a time
            probes[name, method] = _conv_job(method, *shape)[0]()
    estimate = sum(probes[name, method] * _calls_per_figure(reps) for name, method, _, reps in jobs)
    estimate *= 1.5 if torch is not None else 1  # PyTorch's rows: about half as long again
    print(f"{len(jobs)} layers x {repeats} rounds: about {_duration(estimate)} more (from one timed call")
    print("of each; --quick or --rounds N for less)")
    began = time.perf_counter()
    print("GFLOP/s: forward+backward (3x forward flops); of GEMM: that rate / GEMM's;")
    print("peak MB: most extra memory of one forward+backward (tracemalloc) plus what")
    print("the layer keeps between calls besides its input (FFT: the input's spectrum).")
    head = f"{'  method':<10}{'fwd ms':>8}{'bwd ms':>8}{'GFLOP/s':>9}{'of GEMM':>8}{'peak MB':>9}"
    if torch is not None:
        head += f"{'torch ms':>10}{'ours/torch':>11}"
    print(head)
    sweep: dict[int, dict[str, float]] = {}
    with tqdm(total=len(jobs), desc="timing", unit="layer", leave=False, disable=not shown, ncols=78) as bar:
        case_shown, torch_ms = None, None
        for name, method, shape, reps in jobs:
            _, measure = _conv_job(method, *shape)  # the plans were made by the probe: no measuring here
            n, c, t, k = shape[:4]
            if name.startswith("sweep"):
                fwd, bwd, _, _ = measure(reps, memory=False)
                sweep.setdefault(k, {})[method] = fwd + bwd
                bar.update(1)
                continue
            if name != case_shown:
                case_shown = name
                torch_ms = _time_torch(torch, *shape, repeats) if torch is not None else None
                bar.write(name, file=sys.stdout)
            fwd, bwd, peak, out = measure(reps)
            gflops = 3 * _conv_flops(n, c, t, k, out[2], out[3], shape[7]) / ((fwd + bwd) * 1e-3) / 1e9
            row = f"  {method:<8}{fwd:>8.2f}{bwd:>8.2f}{gflops:>9.1f}{gflops / gemm:>8.0%}{peak / 2**20:>9.1f}"
            if torch_ms is not None:
                row += f"{torch_ms:>10.2f}{(fwd + bwd) / torch_ms:>11.2f}"
            bar.write(row, file=sys.stdout)
            bar.update(1)
    if sweep:
        _crossover(sweep)
    print(f"took {_duration(time.perf_counter() - began)} (estimated {_duration(estimate)})")
    return 0


def _crossover(sweep: dict[int, dict[str, float]]) -> None:
    """Forward+backward ms of im2col and FFT as the kernel grows (16->16, 64x64, batch 64, 'same')."""
    print("\nFFT vs im2col crossover, forward+backward ms (16->16 channels, 64x64 maps,")
    print("batch 64, 'same' padding):")
    first_win = None
    for k, times in sweep.items():
        winner = min(times, key=times.get)
        if winner == "fft" and first_win is None:
            first_win = k
        print(f"  {k:>2}x{k:<2}  im2col {times['im2col']:8.1f}   fft {times['fft']:8.1f}   faster: {winner}")
    print(f"FFT first wins at kernel {first_win}x{first_win}" if first_win else "FFT did not win up to 11x11")


BENCHMARKS = {
    "conv": ("convolution: direct / im2col / FFT, forward and backward", bench_conv),
}
