"""The convolution kernels' entry points: the signatures of `minicnn.functional.conv`, the fast algorithms.

    conv2d / conv2d_backward                  method "im2col" -> `minicnn.kernels.conv_im2col` (blocked, and
                                              from there the depthwise and channels-last rows kernels),
                                              "fft" -> `minicnn.kernels.conv_fft` (keeps F(x) in a workspace),
                                              "direct" -> the plain reference loops (there is no fast twin)
    conv2d_input_grad                         dx alone, the lecture's flipped-kernel form, blocked
    conv_transpose2d / conv_transpose2d_backward

Arguments are checked by the plain module's own checks, so both paths refuse the same inputs with the
same messages. Extra keyword-only parameters: `workspace` (a layer's ConvWorkspace) and `input_grad`
(False: backward skips dx, returning None in its place).

Planned (`minicnn.kernels.planner`): with method "im2col" (the layers' default), `conv2d` and
`conv2d_backward` hand the planner every way they know to compute the call (`forward_candidates`,
`backward_candidates`); the first call with a new key times them all once and keeps the fastest. An
explicit method "fft" or "direct" runs as asked. The FIRST candidate, "default", is the fixed rules of
`conv_im2col` (what `minicnn --no-tune` runs). The others, and the rules that leave one out because it
cannot win or cannot run:

    plain           `minicnn.functional.conv_im2col`, one product over the whole batch's columns; only
                    when those columns fit in the largest block tried (2*L2): there it is one cache-sized
                    product with less bookkeeping; larger, it lost every time (cifar_net's layers: 28-37
                    ms against the default's 2-8, LeNet C3 22 against 1, AMD EPYC, 512 KB L2)
    columns <size>  the blocked columns with blocks of L2/2, L2 and 2*L2 (`machine.cache_sizes()`, read
                    from the OS); a size giving the same images per block as another (or as the default's)
                    is the same computation and is dropped. (A block of the L3 share per core was tried
                    too and lost on every layer of LeNet-5 and cifar_net, at 1.1-8x the default's time.)
    columns narrow  stride 1 without wide rows (one run of OW values per row); only where wide rows
                    waste at least NARROW_MIN_WASTE of the product ((W + 2p) / OW - 1)
    rows            channels-last rows (`conv_rows`): stride 1, groups 1, C >= ROWS_MIN_CHANNELS (shorter
                    runs of C values copy 2-4x slower: never a winner); backward also padding <= E - 1
    flipped         backward, dx and dw from dy's columns: stride 1, padding <= E - 1, dx wanted, and
                    T <= FLIP_TRY_RATIO * C (the columns of dy cost T/C times those of x)
    winograd        `conv_winograd`, F(2x2, 3x3): 3x3, stride 1, dilation 1, groups 1, C and T at least
                    WINOGRAD_MIN_CHANNELS (thinner products lost, by more the thinner: forward, batch 64,
                    1 thread, AMD EPYC, 3->32 on 32x32 12.9 ms against im2col's 3.1, 16->16 on 16x16 3.3
                    against 2.3, 32->32 on 32x32 33.6 against 22.5; 64->64 on 16x16 came within 5%). With
                    32 channels it cost cifar_net's first epoch 0.9% more planning for no win there
    mec             forward, `conv_mec`, the lowering along one axis (the padded maps copied once per
                    kernel column, the kernel rows read as views): stride 1, groups 1, not depthwise, blocks
                    of L2/2 (L2 won no layer). Measured 2026-12-03, Intel Xeon (2 MB L2 per core), batch 64,
                    1 thread: 32->32 on 32x32 15.6 ms against the default's 19.3, LeNet C3 0.65 against
                    0.87 (its backward lost everywhere: see `conv_mec`)
    columns         backward by col2im, where the default takes the flipped or rows path
    depthwise taps  groups == C == T: tap by tap (`depthwise._depthwise_strided` / `_backward_taps`)
                    where the default runs wide rows; "columns" then means one product per group and image
    fft             `conv_fft` (a fresh F(x), no workspace): only for kernels of FFT_MIN_KERNEL or more
                    per side (below that the transforms cost more than the products save)
    direct          the reference loops: only when they run at most DIRECT_MAX_LOOPS Python iterations
                    (T*OH*OW, a classifier-sized output); there they skip all copying
    whole / split   with more than one worker: the other side of `conv_im2col._parts`'s split rule

Order: the default, the blocked variants, rows / flipped, mec, winograd, then plain, fft and direct,
so that the planner's BUDGET (candidates stop being tried once they took 8x the default's time) cuts
the unlikely ones first.

Keys: the operation, the weight, the image shape (C, H, W), the batch ROUNDED UP TO A POWER OF TWO
(`batch_class`), dtype, stride, padding, dilation, groups, dx wanted, workers. So an epoch's last,
smaller batch reuses the plan of its class (a 50-image batch that of 64); a last batch of another
class (32 after 64) plans once more, at half the cost of a full one. Candidates chosen for a batch of
another size in the class compute the same numbers (every one is exact at every size), only their
speed was measured at the first size seen.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import numpy as np

from minicnn.functional import conv as plain
from minicnn.functional import conv_im2col as plain_im2col
from minicnn.functional.checks import positive_pair
from minicnn.functional.conv_direct import conv2d_direct, conv2d_direct_backward
from minicnn.threads import configured_threads, configured_workers

from . import machine
from .conv_fft import conv2d_fft, conv2d_fft_backward
from .conv_im2col import (
    DEFAULT,
    FLIP_RATIO,
    SPLIT_MIN_MACS,
    Variant,
    _parts,
    block_values,
    conv2d_im2col,
    conv2d_im2col_backward,
    conv2d_input_grad_flipped,
    flippable,
    images_per_block,
)
from .conv_mec import conv2d_mec, mec_applies
from .conv_mec import images_per_block as mec_images_per_block
from .conv_rows import MIN_CHANNELS, rows_layout_pays
from .conv_winograd import conv2d_winograd, conv2d_winograd_backward, winograd_applies
from .depthwise import _is_depthwise, conv2d_depthwise, conv2d_depthwise_backward
from .planner import op_key, planner
from .workspace import ConvWorkspace, as_workspace

Pair = tuple[int, int]
SUPPORT = ("batch_class", "forward_candidates", "backward_candidates", "plan_key", "trial_images")  # the planner's side

NARROW_MIN_WASTE = 0.05  # "columns narrow" only where wide rows waste at least 5% of the product
ROWS_MIN_CHANNELS = MIN_CHANNELS // 2  # the rows candidate from 16 input channels (the default rule: 32)
FLIP_TRY_RATIO = 2 * 2.0  # "flipped" tried up to twice the default rule's T/C ratio (FLIP_RATIO)
FFT_MIN_KERNEL = 5  # "fft" only for kernels of 5x5 and larger
DIRECT_MAX_LOOPS = 64  # "direct" only when its loops run T*OH*OW <= 64 Python iterations
WINOGRAD_MIN_CHANNELS = 64  # "winograd" only when C and T are both at least this (module docstring)
TRIAL_FRACTION = 8  # a new plan is measured on an eighth of the batch (`trial_images`, the planner's trial): a
#                     quarter cost cifar_net's first epoch 3.5% in measuring, an eighth 2.7%, with the same choices
#                     (within 5%: `minicnn tune cifar_net`; Intel Xeon, 2026-12-03, benchmarks/bench_planning.py)


def batch_class(n: int) -> int:
    """The batch size a plan is keyed by: n rounded up to a power of two (1, 2, 4, ..., 64, 128, ...)."""
    return 1 << max(0, n - 1).bit_length()


@functools.cache
def block_sizes(itemsize: int) -> dict[str, int]:
    """Candidate block sizes in column entries, from this machine's caches: L2/2, L2, 2*L2 (read once per
    process and item size: the caches do not change while it runs)."""
    caches = machine.cache_sizes()
    sizes = {"L2/2": caches.l2 // 2, "L2": caches.l2, "2L2": 2 * caches.l2}
    return {name: max(1, size // itemsize) for name, size in sizes.items()}


Shape = tuple[int, ...]
Spec = Variant | str  # a conv_im2col Variant, or "mec", "winograd", "plain", "fft", "direct", "depthwise taps"
MEC_BLOCK = "L2/2"  # the block size (`block_sizes`) of the "mec" candidate


def _column_variants(x_shape: Shape, w_shape: Shape, stride: Pair, padding: Pair, dilation: Pair, groups: int,
                     itemsize: int, default_blocks: int | None) -> dict[str, Variant]:
    """The blocked-columns candidates: one per distinct images-per-block (see the module docstring);
    `default_blocks`: the default's count when the default itself runs the columns path (then dropped)."""
    seen = set() if default_blocks is None else {default_blocks}
    variants = {}
    for name, values in {"": block_values(), **block_sizes(itemsize)}.items():
        variant = Variant("columns", values)
        blocks = images_per_block(x_shape, w_shape, stride, padding, dilation, groups, variant)
        if blocks not in seen:
            seen.add(blocks)
            variants[f"columns {name}".strip()] = variant
    return variants


def _narrow_pays(x_shape: Shape, w_shape: Shape, stride: Pair, padding: Pair, dilation: Pair, groups: int) -> bool:
    """Stride 1, not depthwise, and wide rows waste at least NARROW_MIN_WASTE of the product."""
    if stride != (1, 1) or _is_depthwise(x_shape, w_shape, groups):
        return False
    out_w = x_shape[3] + 2 * padding[1] - dilation[1] * (w_shape[3] - 1)
    return (x_shape[3] + 2 * padding[1]) / max(1, out_w) - 1 >= NARROW_MIN_WASTE


def _mec_pays(x_shape: Shape, w_shape: Shape, stride: Pair, groups: int) -> bool:
    """Where "mec" is tried: `conv_mec` applies (stride 1, groups 1) and the convolution is not depthwise."""
    return mec_applies(w_shape, stride, groups) and not _is_depthwise(x_shape, w_shape, groups)


def _mec_images(x_shape: Shape, w_shape: Shape, padding: Pair, dilation: Pair, itemsize: int) -> int:
    """Images per block of the "mec" candidate."""
    return mec_images_per_block(x_shape, w_shape, padding, dilation, block_sizes(itemsize)[MEC_BLOCK])


def _winograd_pays(x_shape: Shape, w_shape: Shape, stride: Pair, dilation: Pair, groups: int) -> bool:
    return winograd_applies(w_shape, stride, dilation, groups) and min(x_shape[1], w_shape[0]) >= WINOGRAD_MIN_CHANNELS


def _worker_variants(macs: int, workers: int) -> dict[str, Variant]:
    if workers <= 1:
        return {}
    return {"whole": Variant(parts=1)} if macs >= SPLIT_MIN_MACS else {"split": Variant(parts=workers)}


def _out_pixels(x_shape: Shape, w_shape: Shape, stride: Pair, padding: Pair, dilation: Pair) -> int:
    oh = (x_shape[2] + 2 * padding[0] - dilation[0] * (w_shape[2] - 1) - 1) // stride[0] + 1
    ow = (x_shape[3] + 2 * padding[1] - dilation[1] * (w_shape[3] - 1) - 1) // stride[1] + 1
    return oh * ow


def _macs(x_shape: Shape, w_shape: Shape, stride: Pair, padding: Pair, dilation: Pair) -> int:
    return x_shape[0] * w_shape[0] * _out_pixels(x_shape, w_shape, stride, padding, dilation) * int(
        np.prod(w_shape[1:]))


def _tail(x_shape: Shape, w_shape: Shape, stride: Pair, padding: Pair, dilation: Pair, itemsize: int) -> list[str]:
    """The candidates listed last, each only where its rule allows (module docstring): plain, fft, direct."""
    names = []
    columns = x_shape[0] * x_shape[1] * w_shape[2] * w_shape[3] * _out_pixels(x_shape, w_shape, stride, padding,
                                                                               dilation)
    if columns <= max(block_sizes(itemsize).values()):
        names.append("plain")
    if min(w_shape[2:]) >= FFT_MIN_KERNEL:
        names.append("fft")
    if w_shape[0] * _out_pixels(x_shape, w_shape, stride, padding, dilation) <= DIRECT_MAX_LOOPS:
        names.append("direct")
    return names


@functools.lru_cache(maxsize=1024)
def forward_specs(x_shape: Shape, w_shape: Shape, itemsize: int, stride: Pair, padding: Pair, dilation: Pair,
                  groups: int, workers: int, threads: int) -> tuple[tuple[str, Spec], ...]:
    """((name, spec), ...) of conv2d's candidates for these shapes, "default" first; remembered per process
    (building them costs ~0.1 ms, too much for every call; `threads` is part of the key because the
    default's block size depends on it)."""
    depthwise = _is_depthwise(x_shape, w_shape, groups)
    rows_default = not depthwise and rows_layout_pays(x_shape, w_shape, stride, padding, dilation, groups)
    columns_default = not depthwise and not rows_default
    default_blocks = images_per_block(x_shape, w_shape, stride, padding, dilation, groups) if columns_default \
        else None
    specs: dict[str, Spec] = {"default": DEFAULT}
    specs.update(_column_variants(x_shape, w_shape, stride, padding, dilation, groups, itemsize, default_blocks))
    if _narrow_pays(x_shape, w_shape, stride, padding, dilation, groups):
        specs["columns narrow"] = Variant("columns", wide=False)
    if not rows_default and stride == (1, 1) and groups == 1 and x_shape[1] >= ROWS_MIN_CHANNELS:
        specs["rows"] = Variant("rows")
    if _mec_pays(x_shape, w_shape, stride, groups):
        specs["mec"] = "mec"
    if _winograd_pays(x_shape, w_shape, stride, dilation, groups):
        specs["winograd"] = "winograd"
    specs.update(_worker_variants(_macs(x_shape, w_shape, stride, padding, dilation), workers))
    if depthwise and stride == (1, 1):
        specs["depthwise taps"] = "depthwise taps"
    specs.update({name: name for name in _tail(x_shape, w_shape, stride, padding, dilation, itemsize)})
    return tuple(specs.items())


@functools.lru_cache(maxsize=1024)
def backward_specs(x_shape: Shape, w_shape: Shape, itemsize: int, stride: Pair, padding: Pair, dilation: Pair,
                   groups: int, input_grad: bool, workers: int, threads: int) -> tuple[tuple[str, Spec], ...]:
    """((name, spec), ...) of conv2d_backward's candidates, "default" first; remembered per process."""
    depthwise = _is_depthwise(x_shape, w_shape, groups)
    can_flip = flippable(w_shape, stride, padding, dilation)
    c, t = x_shape[1], w_shape[0]
    default_path = _default_backward_path(x_shape, w_shape, stride, padding, dilation, groups, input_grad)
    default_blocks = images_per_block(x_shape, w_shape, stride, padding, dilation, groups) \
        if default_path == "columns" else None
    specs: dict[str, Spec] = {"default": DEFAULT}
    specs.update(_column_variants(x_shape, w_shape, stride, padding, dilation, groups, itemsize, default_blocks))
    if _narrow_pays(x_shape, w_shape, stride, padding, dilation, groups):
        specs["columns narrow"] = Variant("columns", wide=False)
    if can_flip and not depthwise and input_grad and t <= FLIP_TRY_RATIO * c and default_path != "flipped":
        specs["flipped"] = Variant("flipped")
    if can_flip and groups == 1 and c >= ROWS_MIN_CHANNELS and default_path != "rows":
        specs["rows"] = Variant("rows")
    if _winograd_pays(x_shape, w_shape, stride, dilation, groups):
        specs["winograd"] = "winograd"
    out_shape = (x_shape[0], t, 1, _out_pixels(x_shape, w_shape, stride, padding, dilation))
    specs.update(_worker_variants(int(np.prod(out_shape)) * int(np.prod(w_shape[1:])), workers))
    if depthwise and default_path == "depthwise":
        specs["depthwise taps"] = "depthwise taps"
    specs.update({name: name for name in _tail(x_shape, w_shape, stride, padding, dilation, itemsize)})
    return tuple(specs.items())


def _default_backward_path(x_shape: Shape, w_shape: Shape, stride: Pair, padding: Pair, dilation: Pair,
                           groups: int, input_grad: bool) -> str:
    """Which path `conv2d_im2col_backward`'s fixed rules take: "depthwise", "rows", "flipped" or "columns"."""
    if _is_depthwise(x_shape, w_shape, groups):
        return "depthwise"
    c, t = x_shape[1], w_shape[0]
    if flippable(w_shape, stride, padding, dilation):
        if t <= c * (FLIP_RATIO if input_grad else 1) and rows_layout_pays(x_shape, w_shape, stride, padding,
                                                                             dilation, groups):
            return "rows"
        if input_grad and t <= c * FLIP_RATIO:
            return "flipped"
    return "columns"


def _run_forward(spec: Spec, parts: int, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair,
                 padding: Pair, dilation: Pair, groups: int) -> np.ndarray:
    """y by the candidate `spec` (`forward_specs`); `parts`: the split of the WHOLE batch's call, which a
    candidate without a split of its own runs (so a trial on part of the batch splits as the whole will)."""
    args = (x, w, b, stride, padding, dilation, groups)
    if isinstance(spec, Variant):
        return conv2d_im2col(*args, variant=spec if spec.parts is not None else spec._replace(parts=parts))
    if spec in ("mec", "winograd"):
        if spec == "mec":
            return conv2d_mec(*args, block_values=block_sizes(x.itemsize)[MEC_BLOCK], parts=parts)
        return conv2d_winograd(*args, parts=parts)
    if spec == "plain":
        return plain_im2col.conv2d_im2col(*args)
    if spec == "fft":
        return conv2d_fft(*args)
    if spec == "direct":
        return conv2d_direct(*args)
    return conv2d_depthwise(*args, algorithm="taps")


def _run_backward(spec: Spec, parts: int, dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: Pair,
                  padding: Pair, dilation: Pair, groups: int, input_grad: bool
                  ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """(dx or None, dw, db) by the candidate `spec` (`backward_specs`); `parts` as in `_run_forward`."""
    args = (dy, x, w, stride, padding, dilation, groups)
    if isinstance(spec, Variant):
        variant = spec if spec.parts is not None else spec._replace(parts=parts)
        return conv2d_im2col_backward(*args, input_grad=input_grad, variant=variant)
    if spec == "winograd":
        return conv2d_winograd_backward(*args, input_grad=input_grad, parts=parts)
    if spec == "plain":
        dx, dw, db = plain_im2col.conv2d_im2col_backward(*args)
    elif spec == "fft":
        dx, dw, db = conv2d_fft_backward(*args)
    elif spec == "direct":
        dx, dw, db = conv2d_direct_backward(*args)
    else:
        dx, dw, db = conv2d_depthwise_backward(*args, algorithm="taps")
    return (dx if input_grad else None), dw, db


class Candidates(Mapping):
    """{name: zero-argument call} over `specs`, each call made only when asked for (a planned call asks
    for one; making all of them on every call cost more than the planner's bookkeeping)."""

    def __init__(self, specs: tuple[tuple[str, Spec], ...], runner: Callable, args: tuple, scale: float = 1.0):
        self.specs, self.runner, self.args = dict(specs), runner, args
        self.scale = scale  # whole batch / the images these calls run on (a planner trial's)

    def __getitem__(self, name: str) -> Callable[[], object]:
        return functools.partial(self.runner, self.specs[name], *self.args)

    def __contains__(self, name: object) -> bool:
        return name in self.specs  # (Mapping's own would build the call to find out)

    def __iter__(self):
        return iter(self.specs)

    def __len__(self) -> int:
        return len(self.specs)


def forward_candidates(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Pair,
                       dilation: Pair, groups: int, counts: tuple[int, int] | None = None,
                       part: int | None = None) -> Candidates:
    """{name: zero-argument call -> y} for the planner, "default" first (see the module docstring);
    `counts`: (workers, BLAS threads), read now when None; `part`: the calls run on the first `part`
    images only (a planner trial, `trial_images`), the candidates being those of the whole batch."""
    workers, threads = counts or (configured_workers(), configured_threads())
    specs = forward_specs(x.shape, w.shape, x.itemsize, stride, padding, dilation, groups, workers, threads)
    scale = 1.0 if part is None else x.shape[0] / part
    parts = _parts(_macs(x.shape, w.shape, stride, padding, dilation))  # the whole call's split, trial or not
    x = x if part is None else x[:part]
    return Candidates(specs, _run_forward, (parts, x, w, b, stride, padding, dilation, groups), scale)


def backward_candidates(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: Pair, padding: Pair,
                        dilation: Pair, groups: int, input_grad: bool,
                        counts: tuple[int, int] | None = None, part: int | None = None) -> Candidates:
    """{name: zero-argument call -> (dx or None, dw, db)} for the planner, "default" first; `part` as in
    `forward_candidates`."""
    workers, threads = counts or (configured_workers(), configured_threads())
    specs = backward_specs(x.shape, w.shape, x.itemsize, stride, padding, dilation, groups, input_grad, workers,
                           threads)
    scale = 1.0 if part is None else x.shape[0] / part
    parts = _parts(int(dy.size) * int(np.prod(w.shape[1:])))  # as `conv2d_im2col_backward` splits the whole call
    dy, x = (dy, x) if part is None else (dy[:part], x[:part])
    return Candidates(specs, _run_backward, (parts, dy, x, w, stride, padding, dilation, groups, input_grad), scale)


def trial_images(x_shape: Shape, w_shape: Shape, stride: Pair, padding: Pair, dilation: Pair, groups: int,
                 specs: tuple[tuple[str, Spec], ...], workers: int, itemsize: int = 4) -> int | None:
    """Images a planner trial measures the candidates on: 1/TRIAL_FRACTION of the batch, but at least the
    largest block any candidate works on (so every candidate runs the blocks it would run on the whole)
    and one image per worker; None when that is more than half the batch (then the whole is measured).
    The candidates split the trial's images as the whole call splits the batch (`forward_candidates`).
    `itemsize`: bytes per value (the "mec" candidate's blocks are sized in bytes of the caches)."""
    n = x_shape[0]
    blocks = [images_per_block(x_shape, w_shape, stride, padding, dilation, groups, spec) if isinstance(spec, Variant)
              else _mec_images(x_shape, w_shape, padding, dilation, itemsize)
              for _, spec in specs if isinstance(spec, Variant) or spec == "mec"]
    part = max(-(-n // TRIAL_FRACTION), max(blocks, default=1), workers)
    return part if 2 * part <= n else None


def _forward_trial(x, w, b, stride, padding, dilation, groups, counts) -> Candidates | None:
    specs = forward_specs(x.shape, w.shape, x.itemsize, stride, padding, dilation, groups, *counts)
    part = trial_images(x.shape, w.shape, stride, padding, dilation, groups, specs, counts[0], x.itemsize)
    return None if part is None else forward_candidates(x, w, b, stride, padding, dilation, groups, counts, part)


def _backward_trial(dy, x, w, stride, padding, dilation, groups, input_grad, counts) -> Candidates | None:
    specs = backward_specs(x.shape, w.shape, x.itemsize, stride, padding, dilation, groups, input_grad, *counts)
    part = trial_images(x.shape, w.shape, stride, padding, dilation, groups, specs, counts[0], x.itemsize)
    return None if part is None else backward_candidates(dy, x, w, stride, padding, dilation, groups, input_grad,
                                                         counts, part)


def plan_key(op: str, x: np.ndarray, w: np.ndarray, stride: Pair, padding: Pair, dilation: Pair, groups: int,
             workers: int | None = None, **extra) -> str:
    """The planner's key of a convolution call: the batch rounded up by `batch_class` (module docstring);
    `workers` read now when None."""
    workers = configured_workers() if workers is None else workers
    return _plan_key(op, x.shape, w.shape, x.dtype.str, stride, padding, dilation, groups, workers,
                     tuple(sorted(extra.items())))


@functools.lru_cache(maxsize=1024)
def _plan_key(op: str, x_shape: Shape, w_shape: Shape, dtype: str, stride: Pair, padding: Pair, dilation: Pair,
              groups: int, workers: int, extra: tuple) -> str:
    w = np.empty(w_shape, np.dtype(dtype))  # op_key reads only its shape and dtype
    return op_key(op, w, batch=batch_class(x_shape[0]), image="x".join(map(str, x_shape[1:])),
                  dtype=np.dtype(dtype), stride=stride, padding=padding, dilation=dilation, groups=groups,
                  **dict(extra))


def conv2d(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride=1, padding=0, dilation=1, groups: int = 1,
    method: str = "im2col", *, who: str = "conv2d", workspace: ConvWorkspace | None = None,
) -> np.ndarray:
    """Fast twin of `minicnn.functional.conv.conv2d`: y (N, T, OH, OW), the same numbers, fast.

    `workspace`: the layer's ConvWorkspace, where "fft" keeps F(x) for backward."""
    stride, padding, dilation, groups, _ = plain.check_conv_args(x, w, b, stride, padding, dilation, groups, who)
    plain.check_method(method, who)
    workspace = as_workspace(workspace)
    w = w.astype(x.dtype, copy=False)
    b = None if b is None else b.astype(x.dtype, copy=False)
    if method == "fft":
        return conv2d_fft(x, w, b, stride, padding, dilation, groups, workspace=workspace)
    if method == "im2col":
        counts = configured_workers(), configured_threads()
        return planner().run(plan_key("conv2d", x, w, stride, padding, dilation, groups, counts[0]),
                             forward_candidates(x, w, b, stride, padding, dilation, groups, counts), counts,
                             lambda: _forward_trial(x, w, b, stride, padding, dilation, groups, counts))
    return conv2d_direct(x, w, b, stride, padding, dilation, groups)


def conv2d_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride=1, padding=0, dilation=1, groups: int = 1,
    method: str = "im2col", *, who: str = "conv2d", workspace: ConvWorkspace | None = None,
    input_grad: bool = True,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Fast twin of `minicnn.functional.conv.conv2d_backward`: (dx, dw, db); never modifies dy.

    `input_grad=False` skips dx and returns None in its place (a network's first layer has no use for
    dL/dimage, and dx is the costliest part); `workspace`: F(x) from the forward pass ("fft")."""
    stride, padding, dilation, groups, out = plain.check_conv_args(x, w, None, stride, padding, dilation, groups, who)
    plain.check_dy(dy, x, w, out, who)
    plain.check_method(method, who)
    workspace = as_workspace(workspace)
    w = w.astype(x.dtype, copy=False)
    if method == "im2col":
        counts = configured_workers(), configured_threads()
        return planner().run(plan_key("conv2d_backward", x, w, stride, padding, dilation, groups, counts[0],
                                      dx=input_grad),
                             backward_candidates(dy, x, w, stride, padding, dilation, groups, input_grad, counts),
                             counts,
                             lambda: _backward_trial(dy, x, w, stride, padding, dilation, groups, input_grad, counts))
    if method == "fft":
        dx, dw, db = conv2d_fft_backward(dy, x, w, stride, padding, dilation, groups, workspace=workspace)
    else:
        dx, dw, db = conv2d_direct_backward(dy, x, w, stride, padding, dilation, groups)
    return (dx if input_grad else None), dw, db


def conv2d_input_grad(dy: np.ndarray, input_shape: tuple[int, int, int, int], w: np.ndarray, stride=1, padding=0,
                      dilation=1, groups: int = 1, method: str = "im2col") -> np.ndarray:
    """Fast twin of `minicnn.functional.conv.conv2d_input_grad`: dx alone, pad/dilate dy, then correlate
    with flip_kernel(w), by the blocked im2col kernel ("im2col") or the fast `conv2d` of `method`."""
    stride, dilation = positive_pair(stride, "conv2d", "stride"), positive_pair(dilation, "conv2d", "dilation")
    padding = plain.resolve_padding(padding, w.shape[2:], dilation, stride)
    if method == "im2col":
        return conv2d_input_grad_flipped(dy, input_shape, w, stride, padding, dilation, groups)
    pads = plain.full_correlation_pads(input_shape, w.shape[2:], stride, padding, dilation, dy.shape[2:])
    return conv2d(plain.dilate_and_pad(dy, stride, pads), plain.flip_kernel(w, groups), None, 1, 0, dilation, groups,
                  method)


def conv_transpose2d(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride=1, padding=0, output_padding=0,
    dilation=1, groups: int = 1, method: str = "im2col", who: str = "conv_transpose2d",
) -> np.ndarray:
    """Fast twin of `minicnn.functional.conv.conv_transpose2d`: y = W^T x by the fast `conv2d_input_grad`."""
    stride, padding, dilation, groups, y_shape = plain.check_transpose_args(
        x, w, b, stride, padding, output_padding, dilation, groups, who)
    y = conv2d_input_grad(x, y_shape, w.astype(x.dtype, copy=False), stride, padding, dilation, groups, method)
    if b is not None:
        y += b.astype(x.dtype, copy=False).reshape(1, y_shape[1], 1, 1)
    return y


def conv_transpose2d_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride=1, padding=0, output_padding=0, dilation=1,
    groups: int = 1, method: str = "im2col", who: str = "conv_transpose2d",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fast twin of `minicnn.functional.conv.conv_transpose2d_backward`: dx = conv2d(dy, w), dw = the conv
    weight gradient with the roles swapped, db = dy summed, each by the fast kernels."""
    stride, padding, dilation, groups, y_shape = plain.check_transpose_args(
        x, w, None, stride, padding, output_padding, dilation, groups, who)
    plain.check_transpose_dy(dy, y_shape, who)
    w = w.astype(dy.dtype, copy=False)
    dx = conv2d(dy, w, None, stride, padding, dilation, groups, method, who=who)
    _, dw, _ = conv2d_backward(x, dy, w, stride, padding, dilation, groups, method, who=who, input_grad=False)
    return dx, dw, dy.sum(axis=(0, 2, 3))
