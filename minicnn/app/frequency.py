"""Frequency Regularization for whole models (seed 002): conversion, dynamic tail truncation, export.

- `to_frequency(model)` replaces every plain `Conv2D` / `ConvTranspose2D` / `Linear` inside `model`
  (recursively, in place, same position) by `DCTConv2D` / `DCTConvTranspose2D` / `DCTLinear` holding
  coeffs = dct(weight): the spatial weights, and so the model's outputs, are unchanged until something
  is truncated.
- `TailTruncation` is the *dynamic* tail truncation: rather than cutting most coefficients at once,
  each `step()` lowers every layer's kept count k a little (linearly or geometrically) from where it
  is now to a target (a count, a fraction of the layer, or a per-layer dict), never below a per-layer
  floor. Call `step()` once per iteration or once per epoch (or hand it to `fit(callbacks=[...])`);
  `steps` is the number of calls it takes to reach the target.
- `allocate_budget(model, total)` splits a budget of kept coefficients over the DCT layers.
- `save_compressed` / `load_compressed`: the deployable file (`minicnn.app.load_model` opens it
  without being given the architecture: the file's meta, see `describe`, names it). Per DCT layer only the first k
  coefficients in zigzag order are stored (the shape and k go in a small JSON manifest); every
  other parameter (biases) and floating buffer is stored whole; optionally everything as float16, or as
  int8 with one float32 scale per tensor (`quantize_int8`).
  Loading rebuilds coeffs (zeros beyond k), the mask, and so exactly the weights used for evaluation.
- `stored_numbers(model)` counts what such a file stores: kept coefficients + every other
  parameter entry (biases included) + floating buffers (e.g. BatchNorm running statistics). Masks
  are not stored (rebuilt from k), shapes are metadata, not numbers.
"""

from __future__ import annotations

import copy
import heapq
import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from minicnn import functional as F
from minicnn.core import Layer, Sequential
from minicnn.files import read_npz, save_npz_atomic
from minicnn.functional.checks import positive_int
from minicnn.layers import Conv2D, ConvTranspose2D, DCTConv2D, DCTLinear, FrequencyBias, Linear
from minicnn.layers.dct import DCTConvTranspose2D, FoldedBatchNorm, _FrequencyWeight, keep_count

from .train import Callback

FORMAT = "minicnn-frequency/1"


# ---- conversion ---------------------------------------------------------------------------------


def _replace_child(parent: Layer, name: str, new: Layer) -> None:
    """Swap a registered child for `new` at the SAME position (Sequential runs children in
    registration order; a plain setattr would move it to the end)."""
    parent._children[name] = new
    object.__setattr__(parent, name, new)


def _convertible(layer: Layer) -> bool:
    return type(layer) is Linear or (type(layer) in (Conv2D, ConvTranspose2D) and layer.groups == 1
                                     and layer.dilation == (1, 1))


def _frequency_version(layer: Layer) -> _FrequencyWeight:
    weight = layer.weight.data
    if type(layer) is Linear:
        new = DCTLinear(layer.in_features, layer.out_features, bias=layer.bias is not None)
    elif type(layer) is ConvTranspose2D:
        new = DCTConvTranspose2D(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                                 padding=layer.padding, output_padding=layer.output_padding,
                                 bias=layer.bias is not None, method=layer.method)
    else:
        new = DCTConv2D(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                        padding=layer.padding, bias=layer.bias is not None,
                        method=getattr(layer, "method", "im2col"))
    new.coeffs.data = F.dct(weight.astype(np.float64)).astype(weight.dtype)
    new.coeffs.grad = np.zeros_like(new.coeffs.data)
    new.set_keep(new.coeffs.size)
    if layer.bias is not None:
        new.bias.data = layer.bias.data.copy()
        new.bias.grad = np.zeros_like(new.bias.data)
    new.train(layer.training)
    return new


def to_frequency(model: Layer, keep: int | float = 1.0) -> Layer:
    """Replace (in place) every plain Conv2D and ConvTranspose2D (groups 1, dilation 1) and Linear inside
    `model` by its DCT version with coeffs = dct(weight) and the same bias, then apply `set_keep(keep)` to each.

    With keep=1.0 the model computes the same function as before (up to float rounding of the
    DCT round trip, ~1e-7 relative in float32). Returns `model` (or the new layer when `model`
    itself is one of these). Layers of other types (grouped/dilated convs, ...) stay spatial.
    """
    if _convertible(model):
        new = _frequency_version(model)
        new.set_keep(keep)
        return new
    for name, child in list(model.named_children()):
        if _convertible(child):
            new = _frequency_version(child)
            new.set_keep(keep)
            _replace_child(model, name, new)
        else:
            to_frequency(child, keep)
    return model


def fold_batchnorm(model: Layer) -> Layer:
    """Fold every BatchNorm2D that directly follows a plain Conv2D (groups 1, dilation 1) in a Sequential
    of `model` into that convolution, in place: with s = gamma / sqrt(running_var + eps),

        w'[t] = s[t] w[t]          b'[t] = s[t] (b[t] - running_mean[t]) + beta[t]   (b = 0 without bias)

    the convolution gets a bias and the BatchNorm becomes a `FoldedBatchNorm` (an identity, same position,
    no numbers), so in eval mode the model computes the same function (up to float rounding). Done before
    `to_frequency`: the DCT runs over all four axes of a kernel, so the scale has to be in the spatial weights first.
    A compressed file then stores one bias per channel instead of BatchNorm's four numbers (gamma, beta,
    running mean and variance), which leaves more of a budget to the DCT coefficients. Training after
    the fold runs without batch statistics. Returns `model`."""
    from minicnn.layers import BatchNorm2D

    children = list(model.named_children())
    for (name, child), (next_name, after) in zip(children, children[1:], strict=False):  # each neighbour pair
        if type(child) is Conv2D and _convertible(child) and type(after) is BatchNorm2D:
            scale = after.weight.data.astype(np.float64) / np.sqrt(after.running_var.astype(np.float64) + after.eps)
            bias = np.zeros(child.out_channels) if child.bias is None else child.bias.data.astype(np.float64)
            conv = Conv2D(child.in_channels, child.out_channels, child.kernel_size, stride=child.stride,
                          padding=child.padding, bias=True, method=child.method)
            dtype = child.weight.data.dtype
            conv.weight.data = (child.weight.data * scale[:, None, None, None]).astype(dtype)  # (T, S, KH, KW)
            conv.bias.data = (scale * (bias - after.running_mean) + after.bias.data).astype(dtype)
            conv.train(child.training)
            _replace_child(model, name, conv)
            _replace_child(model, next_name, FoldedBatchNorm())
    for _, child in model.named_children():
        if not isinstance(child, (Conv2D, BatchNorm2D)):
            fold_batchnorm(child)
    return model


def frequency_biases(model: Layer) -> Layer:
    """Move every bias of the DCT layers of `model` (after `to_frequency`) into the frequency domain:
    each such layer L (in place, same position) becomes Sequential(L without bias, FrequencyBias),
    the FrequencyBias holding dct(bias), so the outputs are unchanged until it is truncated. A layer's
    name "3" becomes "3.0" (weights) and "3.1" (bias). Returns `model`."""
    for name, child in list(model.named_children()):
        if isinstance(child, _FrequencyWeight) and not isinstance(child, FrequencyBias) \
                and getattr(child, "bias", None) is not None:
            bias = child.bias.data
            child.bias = None
            _replace_child(model, name, Sequential(child, FrequencyBias(bias.size, bias=bias)))
        elif not isinstance(child, _FrequencyWeight):
            frequency_biases(child)
    return model


def frequency_layers(model: Layer, prefix: str = "") -> Iterator[tuple[str, _FrequencyWeight]]:
    """(name, layer) for every DCT layer inside `model`, names as in `state_dict` ("0", "body.3")."""
    if isinstance(model, _FrequencyWeight):
        yield prefix.rstrip("."), model
    for name, child in model.named_children():
        yield from frequency_layers(child, prefix + name + ".")


# ---- dynamic tail truncation --------------------------------------------------------------------


def allocate_budget(model: Layer, total: int, floor: int = 1, power: float = 0.5) -> dict[str, int]:
    """Split `total` kept coefficients over the DCT layers of `model`, in proportion to
    size**power (power 1: the same fraction everywhere; 0.5: small layers get relatively more; 0: the
    same count everywhere; negative: small layers get MORE than large ones),
    each layer getting at least `floor` and at most its size. Largest-remainder rounding, so the
    counts add up to exactly `total` (when total lies between the sum of floors and of sizes)."""
    layers = list(frequency_layers(model))
    if not layers:
        raise ValueError("allocate_budget: expected a model with DCT layers (call to_frequency first)")
    sizes = {name: layer.coeffs.size for name, layer in layers}
    lo = sum(min(floor, s) for s in sizes.values())
    if not lo <= total <= sum(sizes.values()):
        raise ValueError(f"allocate_budget: expected {lo} <= total <= {sum(sizes.values())} "
                         f"(floors and sizes of {len(sizes)} layers), got {total}")
    counts = {n: min(floor, s) for n, s in sizes.items()}
    free = dict(sizes)
    # water-filling: give the remaining budget in proportion to size**power, capping at the size
    while (left := total - sum(counts.values())) > 0:
        open_ = [n for n in sizes if counts[n] < free[n]]
        weights = {n: sizes[n] ** power for n in open_}
        scale = left / sum(weights.values())
        share = {n: min(free[n] - counts[n], weights[n] * scale) for n in open_}
        whole = {n: math.floor(v) for n, v in share.items()}
        if sum(whole.values()) == 0:  # fewer coefficients left than open layers: largest remainders
            for n in sorted(open_, key=lambda n: share[n] - whole[n], reverse=True)[:left]:
                counts[n] += 1
            break
        for n in open_:
            counts[n] += whole[n]
    return counts


class TailTruncation(Callback):
    """Dynamic tail truncation: lower each DCT layer's kept count k step by step to a target.

    target: a float fraction in (0, 1] of every layer's size, an int count for every layer, or a
            dict layer name -> count or fraction (layers not in the dict keep their k).
    steps:  number of `step()` calls to reach the target (call once per iteration or per epoch).
    decay:  "linear":    k(t) = k0 + (k_T - k0) * t / T
            "geometric": k(t) = k0 * (k_T / k0) ** (t / T)   (cuts most while k is large)
            rounded to the nearest int; k never increases and never goes below the floor.
    floor:  minimum kept per layer (int, or dict name -> int); the target is raised to it.
    per:    as a `fit` callback, "step" moves to step t before optimizer step t (t = the optimizer's
            step count: a per-iteration truncation); "epoch" takes one `step()` after each epoch.
    The starting counts k0 are the layers' counts when the schedule is created.
    """

    def __init__(self, model: Layer, target, steps: int, decay: str = "linear", floor=1, per: str = "step"):
        self.layers = dict(frequency_layers(model))
        if not self.layers:
            raise ValueError("TailTruncation: expected a model with DCT layers (call to_frequency first)")
        positive_int(steps, "TailTruncation", "steps")
        if decay not in ("linear", "geometric"):
            raise ValueError(f"TailTruncation: expected decay 'linear' or 'geometric', got {decay!r}")
        if per not in ("step", "epoch"):
            raise ValueError(f"TailTruncation: expected per 'step' or 'epoch', got {per!r}")
        self.per = per
        targets = target if isinstance(target, dict) else dict.fromkeys(self.layers, target)
        unknown = set(targets) - set(self.layers)
        if unknown:
            raise ValueError(f"TailTruncation: unknown layers {sorted(unknown)}; DCT layers are {sorted(self.layers)}")
        floors = floor if isinstance(floor, dict) else dict.fromkeys(self.layers, floor)
        self.start = {n: layer.keep for n, layer in self.layers.items()}
        self.target = {}
        for n, layer in self.layers.items():
            size = layer.coeffs.size
            k = keep_count(targets[n], size, f"TailTruncation[{n}]") if n in targets else self.start[n]
            self.target[n] = min(self.start[n], max(k, min(int(floors.get(n, 0)), size)))
        self.steps, self.decay, self.t = int(steps), decay, 0

    def counts(self, t: int) -> dict[str, int]:
        """The kept count of every layer after t steps."""
        frac = min(max(t, 0), self.steps) / self.steps
        out = {}
        for n, k0 in self.start.items():
            kt = self.target[n]
            if frac >= 1:
                k = kt
            elif self.decay == "linear":
                k = k0 + (kt - k0) * frac
            else:
                k = k0 * (max(kt, 1) / max(k0, 1)) ** frac
            out[n] = int(min(k0, max(kt, round(k))))
        return out

    def step(self) -> int:
        """Advance one step, truncate every layer whose count drops; returns the total kept."""
        return self.advance_to(self.t + 1)

    def advance_to(self, t: int) -> int:
        """Move to step t (from 0): every layer whose count drops is truncated (k never rises)."""
        self.t = min(max(t, self.t), self.steps)
        for n, k in self.counts(self.t).items():
            if k < self.layers[n].keep:
                self.layers[n].set_keep(k)
        return sum(layer.keep for layer in self.layers.values())

    def on_batch_start(self, step: int, model: Layer) -> None:
        if self.per == "step":
            self.advance_to(step)

    def on_epoch_end(self, epoch: int, model: Layer, row: dict) -> None:
        if self.per == "epoch":
            self.step()

    @property
    def done(self) -> bool:
        return self.t >= self.steps


class EnergyTruncation(TailTruncation):
    """Dynamic tail truncation with the split between layers chosen as it goes, by energy.

    The TOTAL kept count falls as in `TailTruncation` (geometric or linear over `steps`, from the
    layers' total when created to `total`); which layers give up coefficients is decided at every
    step from the coefficients as they are then. Each layer's next coefficient to go is its last
    kept one in zigzag order, i; dropping it loses the share of the layer's kept energy
        cost_l = mean(c_{i-w+1}^2 .. c_i^2) / sum_{j <= i} c_j^2        (w = `window`, the last few)
    (a relative change of the layer's weights, whatever its scale). Coefficients are dropped one at a
    time, the cheapest first, until the total is reached; counts never rise and never go below
    `floor`. Large layers, whose coefficients each hold a small share, give up the most.
    """

    def __init__(self, model: Layer, total: int, steps: int, decay: str = "geometric", floor: int = 1,
                 window: int = 4, per: str = "step"):
        super().__init__(model, 1.0, steps, decay, floor=floor, per=per)
        self.floors = {n: min(int(floor), layer.coeffs.size) for n, layer in self.layers.items()}
        lo, k0 = sum(self.floors.values()), sum(self.start.values())
        if not (isinstance(total, (int, np.integer)) and lo <= total <= k0):
            raise ValueError(f"EnergyTruncation: expected a total between {lo} (the floors) and {k0} (kept "
                             f"now), got {total!r}")
        self.total, self.window = int(total), positive_int(window, "EnergyTruncation", "window")
        self._order = {n: np.argsort(F.zigzag_order(layer.coeffs.shape), axis=None)
                       for n, layer in self.layers.items()}  # flat indices, low frequencies first

    def total_at(self, t: int) -> int:
        """The total kept count after t steps."""
        frac = min(max(t, 0), self.steps) / self.steps
        k0, kt = sum(self.start.values()), self.total
        k = k0 + (kt - k0) * frac if self.decay == "linear" else k0 * (kt / k0) ** frac
        return int(min(k0, max(kt, round(k))))

    def counts(self, t: int) -> dict[str, int]:
        """Not known ahead: the split depends on the coefficients when each step is taken (see
        `total_at` for the total, each layer's `keep` for its count now)."""
        raise TypeError("EnergyTruncation decides each layer's count as it truncates: counts(t) cannot be "
                        "known ahead; total_at(t) gives the total")

    def _cost(self, energy: np.ndarray, k: int) -> float:
        """Share of the kept energy (the first k of `energy`, zigzag order) the last `window` hold."""
        kept = energy[:k].sum()
        return float(energy[max(0, k - self.window): k].mean() / kept) if kept > 0 else 0.0

    def advance_to(self, t: int) -> int:
        """Move to step t: drop the cheapest tail coefficients until the total is `total_at(t)`."""
        self.t = min(max(t, self.t), self.steps)
        counts = {n: layer.keep for n, layer in self.layers.items()}
        excess = sum(counts.values()) - self.total_at(self.t)
        if excess > 0:
            energy = {n: layer.coeffs.data.reshape(-1)[self._order[n]].astype(np.float64) ** 2
                      for n, layer in self.layers.items()}
            heap = [(self._cost(energy[n], k), n) for n, k in counts.items() if k > self.floors[n]]
            heapq.heapify(heap)
            while excess > 0 and heap:
                _, n = heapq.heappop(heap)
                counts[n] -= 1
                excess -= 1
                if counts[n] > self.floors[n]:
                    heapq.heappush(heap, (self._cost(energy[n], counts[n]), n))
            for n, k in counts.items():
                if k < self.layers[n].keep:
                    self.layers[n].set_keep(k)
        return sum(layer.keep for layer in self.layers.values())


# ---- the schedule as one call (`minicnn train --frequency BUDGET`) ----------------------------------


def budget_targets(model: Layer, total: int, floor: int = 8, power: float = 0.0,
                   bias_keep: int | None = None) -> dict[str, int]:
    """Per-layer kept counts so that a compressed file of `model` (after `to_frequency`) stores `total`
    numbers in all: what is not a DCT coefficient (biases, BatchNorm numbers) is taken off first, the
    rest is split by `allocate_budget` (at least `floor` per layer, in proportion to size**power).
    With `bias_keep`, each bias vector will be stored as its first `bias_keep` DCT coefficients
    (`frequency_biases` is applied afterwards), and only that much is reserved for it."""
    layers = dict(frequency_layers(model))
    reserved = stored_numbers(model)["other"]
    if bias_keep is not None:
        biases = [layer.bias.size for layer in layers.values() if getattr(layer, "bias", None) is not None]
        reserved += sum(min(bias_keep, b) for b in biases) - sum(biases)
    coefficients = total - reserved
    if coefficients < len(layers):
        raise ValueError(f"a budget of {total} stored numbers leaves {coefficients} DCT coefficients for "
                         f"{len(layers)} layers after the {reserved} other numbers (biases, normalisation)")
    return allocate_budget(model, coefficients, floor=min(floor, coefficients // len(layers)), power=power)


@dataclass(frozen=True)
class FrequencySchedule:
    """How `frequency_fine_tune` fine-tunes: the defaults are the schedule `minicnn experiment frequency`
    found best on LeNet-5 / MNIST (its module docstring has the measurements): Adam, lr decaying
    geometrically from `lr` to `final_lr` over all `epochs`; the kept counts fall geometrically, per
    iteration, over the first `truncate_epochs`; each layer keeps >= `floor`; `power` 0 gives every
    layer an equal share (capped at its size); biases as their `bias_keep` lowest DCT coefficients
    (None: stored whole). Measured there on `lenet5` with c5_conv=True (fc1 as a convolution, so its DCT
    runs over space); on the flattened fc1 the same budget does much worse. A short run (the test: 8,000
    images, 2 epochs) wants a lower lr (1e-2 -> 1e-3)."""

    epochs: int = 10
    truncate_epochs: float = 2.0
    lr: float = 3e-2
    final_lr: float = 5e-4
    batch_size: int = 64
    floor: int = 8
    power: float = 0.0
    bias_keep: int | None = 8

    def __post_init__(self) -> None:
        positive_int(self.epochs, "FrequencySchedule", "epochs")
        positive_int(self.batch_size, "FrequencySchedule", "batch_size")
        if not (0 < self.truncate_epochs <= self.epochs and 0 < self.final_lr <= self.lr):
            raise ValueError(f"FrequencySchedule: expected 0 < truncate_epochs <= epochs and 0 < final_lr <= lr, "
                             f"got truncate_epochs {self.truncate_epochs}, epochs {self.epochs}, "
                             f"lr {self.lr}, final_lr {self.final_lr}")
        if self.bias_keep is not None:
            positive_int(self.bias_keep, "FrequencySchedule", "bias_keep")


def frequency_fine_tune(model: Layer, dataset, budget: int, schedule: FrequencySchedule = FrequencySchedule(),
                        *, val: tuple[np.ndarray, np.ndarray] | None = None, seed: int = 0,
                        log: Callable[[str], None] | None = print) -> Layer:
    """A frequency-regularised copy of the densely trained `model` (left unchanged), whose compressed
    file (`save_compressed`) stores exactly `budget` numbers: `to_frequency` (+ `frequency_biases`
    when schedule.bias_keep), per-layer targets by `budget_targets`, then `minicnn.app.train.fit` on
    `dataset` (normalised as the dense model was trained) for schedule.epochs with `TailTruncation`
    as a callback (geometric, per iteration, over schedule.truncate_epochs). `val` (x, y) is validated
    after each epoch (None: the test split, as fit does); `log` gets fit's table lines. Returns the model
    in eval mode, in float32 (the file's dtype rounds it: check the reloaded file's accuracy)."""
    from minicnn.data.batching import num_batches
    from minicnn.optim import Adam

    from .train import FitConfig, fit

    positive_int(budget, "frequency_fine_tune", "budget")
    tuned = to_frequency(copy.deepcopy(model))
    targets = budget_targets(tuned, budget, schedule.floor, schedule.power, schedule.bias_keep)
    if schedule.bias_keep is not None:
        sizes = {n: layer.bias.size for n, layer in frequency_layers(tuned) if getattr(layer, "bias", None) is not None}
        frequency_biases(tuned)  # layer "3" -> "3.0" (weights) and "3.1" (its bias, DCT)
        targets = {**{(f"{n}.0" if n in sizes else n): k for n, k in targets.items()},
                   **{f"{n}.1": min(schedule.bias_keep, size) for n, size in sizes.items()}}
    per_epoch = num_batches(len(dataset.x_train), schedule.batch_size)
    truncation = TailTruncation(tuned, targets, steps=max(1, round(schedule.truncate_epochs * per_epoch)),
                                decay="geometric")
    total, first, last = schedule.epochs * per_epoch, schedule.lr, schedule.final_lr
    fit(tuned, dataset, Adam(tuned.parameters(), lr=first),
        FitConfig(epochs=schedule.epochs, batch_size=schedule.batch_size, seed=seed, progress=False),
        schedule=lambda step: first * (last / first) ** min(step / total, 1.0), val=val, callbacks=[truncation],
        log=log)
    truncation.advance_to(truncation.steps)  # in case the epochs ended before the schedule did
    return tuned.eval()


# ---- counting and the compressed file -----------------------------------------------------------


def _stored_entries(model: Layer):
    """(name, kind, array, count): what a compressed file holds, in a fixed order."""
    dct_names = {f"{n}.coeffs" if n else "coeffs": layer for n, layer in frequency_layers(model)}
    masks = {name[: -len("coeffs")] + "mask" for name in dct_names}
    for name, p in model.named_parameters():
        if name in dct_names:
            yield name, "dct", p.data, dct_names[name].keep
        else:
            yield name, "dense", p.data, p.size
    for name, b in model.named_buffers():
        if name in masks:
            continue
        if not (isinstance(b, np.ndarray) and np.issubdtype(b.dtype, np.floating)):
            raise ValueError(f"save_compressed: cannot store non-floating buffer {name!r} ({b.dtype})")
        yield name, "dense", b, b.size


def stored_numbers(model: Layer) -> dict[str, int]:
    """Numbers a compressed file of `model` stores: {'coefficients': kept DCT coefficients,
    'other': every other parameter entry (biases...) and floating buffer entry, 'total': sum,
    'dense': the parameter count of the spatial (uncompressed) model}."""
    coeffs = other = 0
    for _, kind, _, count in _stored_entries(model):
        if kind == "dct":
            coeffs += count
        else:
            other += count
    return {"coefficients": coeffs, "other": other, "total": coeffs + other,
            "dense": sum(p.size for p in model.parameters())}


def dense_float32_bytes(model: Layer) -> int:
    """Bytes of the model's parameters and floating buffers as dense float32 (the reference size)."""
    n = sum(p.size for p in model.parameters())
    masks = {f"{name}.mask" if name else "mask" for name, _ in frequency_layers(model)}
    n += sum(b.size for name, b in model.named_buffers()
             if name not in masks and np.issubdtype(np.asarray(b).dtype, np.floating))
    return 4 * n


INT8_LEVELS = 127  # int8 stores q in [-127, 127]: symmetric, so -128 is never written (and refused)
SCALE_BYTES = 4  # one float32 scale per tensor in an int8 file


def quantize_int8(values: np.ndarray) -> tuple[np.ndarray, float]:
    """One tensor's values as int8 with one scale: s = float32(max |v| / 127) (1 when all are zero),
    q = round(v / s) in [-127, 127]; the file's numbers are then q * s (float32). Returns (q, s)."""
    top = float(np.max(np.abs(values))) if values.size else 0.0
    scale = float(np.float32(top / INT8_LEVELS)) if top > 0 else 1.0
    if not math.isfinite(scale) or scale == 0.0:
        raise ValueError(f"quantize_int8: expected finite values whose largest magnitude gives a float32 scale, "
                         f"got max |v| = {top}")
    q = np.clip(np.rint(values.astype(np.float64) / scale), -INT8_LEVELS, INT8_LEVELS)
    return q.astype(np.int8), scale


def dequantize_int8(q: np.ndarray, scale: float) -> np.ndarray:
    """The numbers an int8 entry stands for: q * s in float32 (the product rounded once)."""
    return q.astype(np.float32) * np.float32(scale)


def save_compressed(model: Layer, path: str | os.PathLike, float16: bool = False,
                    meta: dict | None = None, int8: bool = False, *, overwrite: bool = False) -> dict:
    """Write the compressed file (an .npz with two arrays, written atomically):

        "manifest": UTF-8 JSON {format, dtype, meta, entries: [[name, kind, shape, count], ...]}
                    (+ "scales": one float32 scale per entry when dtype is int8)
        "payload":  every stored number, concatenated in entry order (float32, float16 or int8)

    kind "dct": the first `count` coefficients of the tensor in zigzag order; "dense": the tensor.
    int8 (`quantize_int8`): each entry (tensor) is stored as q = round(v / s) with its own scale s, and
    stands for q * s. float16 refuses values beyond its range (they would be written as inf).
    `meta` (JSON-able; `describe(...)` makes it) lets `minicnn.app.load_model` rebuild the architecture
    and carries the input shape, normalisation and class names. Returns {'numbers', 'bytes' (the file),
    'payload_bytes' (the stored numbers' bytes, + 4 per scale when int8), 'path'}. The file goes through
    `minicnn.files.write_atomic`: onto a missing path, one this process wrote, or (`overwrite`) any
    regular file.
    """
    if float16 and int8:
        raise ValueError("save_compressed: expected float16 or int8, not both")
    dtype = np.float16 if float16 else np.int8 if int8 else np.float32
    entries, chunks, scales = [], [], []
    for name, kind, array, count in _stored_entries(model):
        if kind == "dct":
            order = np.argsort(F.zigzag_order(array.shape), axis=None)  # flat indices, zigzag order
            values = array.reshape(-1)[order[:count]]
        else:
            values = np.asarray(array).reshape(-1)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"save_compressed: {name!r} holds non-finite values (NaN or inf)")
        if float16 and np.any(np.abs(values) > np.finfo(np.float16).max):
            raise ValueError(f"save_compressed: {name!r} has values beyond the float16 range "
                             f"(largest {float(np.max(np.abs(values))):.6g} > {float(np.finfo(np.float16).max):g})")
        if int8:
            values, scale = quantize_int8(values)
            scales.append(scale)
        entries.append([name, kind, list(array.shape), int(count)])
        chunks.append(values.astype(dtype))
    manifest = {"format": FORMAT, "dtype": np.dtype(dtype).name, "meta": meta or {}, "entries": entries}
    if int8:
        manifest["scales"] = scales
    payload = np.concatenate(chunks) if chunks else np.zeros(0, dtype)
    text = json.dumps(manifest, separators=(",", ":")).encode()
    save_npz_atomic(path, {"manifest": np.frombuffer(text, np.uint8), "payload": payload}, overwrite=overwrite)
    return {"numbers": int(payload.size), "bytes": os.path.getsize(path),
            "payload_bytes": int(payload.nbytes) + SCALE_BYTES * len(scales), "path": os.fspath(path)}


def read_compressed(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """Parse a compressed file -> (manifest, state) where `state` is a full state_dict of the DCT
    model (coeffs with zeros beyond k, masks, biases...), in float32.

    Everything is checked before it is used, so a damaged or hand-edited file raises a ValueError that
    names the file and what is wrong (an unreadable zip, a manifest that is not the JSON described in
    `save_compressed`, an entry whose count does not fit its shape, a payload of the wrong length or
    dtype, non-finite numbers, int8 scales missing, extra or not positive float32 numbers), never a NumPy
    broadcasting message or a silently wrong model.
    """
    arrays = read_npz(path, what="compressed model file", keys=("manifest", "payload"), exact=True)
    return compressed_from_arrays(arrays, path)


def compressed_from_arrays(arrays: dict[str, np.ndarray],
                           path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """`read_compressed` on the arrays `read_npz` read from the file `path` (named in messages)."""
    who = f"load_compressed: {os.fspath(path)}"
    raw, payload = arrays["manifest"], arrays["payload"]
    try:
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise ValueError(f"expected uint8 JSON text, got {raw.dtype} of shape {raw.shape}")
        manifest = json.loads(raw.tobytes().decode())
        if not isinstance(manifest, dict):
            raise ValueError(f"expected a JSON object, got {type(manifest).__name__}")
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{who} is damaged: its manifest is not readable ({e})") from e
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{who}: expected format {FORMAT!r}, got {manifest.get('format')!r}")
    if payload.ndim != 1 or payload.dtype.name != manifest.get("dtype") or payload.dtype.name not in PAYLOAD_DTYPES:
        raise ValueError(f"{who} is damaged: expected a 1-D {manifest.get('dtype')} payload "
                         f"(one of {', '.join(PAYLOAD_DTYPES)}), got {payload.dtype} of shape {payload.shape}")
    entries = _check_entries(manifest.get("entries"), who)
    described = sum(count for _, _, _, count in entries)
    if described != payload.size:
        raise ValueError(f"{who} is damaged: the manifest describes {described} stored numbers, "
                         f"the payload holds {payload.size}")
    if not np.all(np.isfinite(payload)):
        raise ValueError(f"{who} is damaged: its payload holds {int(np.sum(~np.isfinite(payload)))} "
                         f"non-finite numbers (NaN or inf)")
    scales = _check_scales(manifest, payload, len(entries), who)
    state, offset = {}, 0
    for i, (name, kind, shape, count) in enumerate(entries):
        chunk = payload[offset: offset + count]
        values = chunk.astype(np.float32) if scales is None else dequantize_int8(chunk, scales[i])
        offset += count
        if kind == "dct":
            coeffs = np.zeros(math.prod(shape), np.float32)
            coeffs[np.argsort(F.zigzag_order(shape), axis=None)[:count]] = values
            state[name] = coeffs.reshape(shape)
            state[name[: -len("coeffs")] + "mask"] = F.zigzag_mask(shape, count)
        else:
            state[name] = values.reshape(shape)
    return manifest, state


PAYLOAD_DTYPES = ("float16", "float32", "int8")


def _check_scales(manifest: dict, payload: np.ndarray, entries: int, who: str) -> list[float] | None:
    """The int8 file's scales (one positive finite float32 per entry; q within [-127, 127]), or None
    for a float file (which must not have any)."""
    scales = manifest.get("scales")
    if payload.dtype != np.int8:
        if scales is not None:
            raise ValueError(f"{who} is damaged: a {payload.dtype} payload with int8 scales in its manifest")
        return None
    ok = isinstance(scales, list) and len(scales) == entries and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
        and float(np.float32(v)) == v for v in scales)
    if not ok:
        raise ValueError(f"{who} is damaged: expected {entries} int8 scales (positive finite float32 numbers, "
                         f"one per entry), got {scales!r:.80}")
    if payload.size and int(np.min(payload)) < -INT8_LEVELS:
        raise ValueError(f"{who} is damaged: expected int8 values in [-{INT8_LEVELS}, {INT8_LEVELS}], "
                         f"got {int(np.min(payload))}")
    return [float(v) for v in scales]


def _check_entries(entries, who: str) -> list[tuple[str, str, tuple[int, ...], int]]:
    """The manifest's entries [[name, kind, shape, count], ...] as checked tuples (see save_compressed)."""
    if not isinstance(entries, list):
        raise ValueError(f"{who} is damaged: expected a list of entries in its manifest, got {entries!r:.60}")
    checked = []
    for entry in entries:
        ok = isinstance(entry, list) and len(entry) == 4
        name, kind, shape, count = entry if ok else (None,) * 4
        ok = (ok and isinstance(name, str) and kind in ("dct", "dense") and isinstance(shape, list)
              and all(isinstance(s, int) and s >= 1 for s in shape) and isinstance(count, int))
        if not ok:
            raise ValueError(f"{who} is damaged: expected entries [name, 'dct' | 'dense', shape, count], "
                             f"got {entry!r:.100}")
        size = math.prod(shape)
        if kind == "dense" and count != size:
            raise ValueError(f"{who} is damaged: dense entry {name!r} of shape {tuple(shape)} must store all "
                             f"{size} numbers, its count says {count}")
        if kind == "dct" and not (0 <= count <= size and (name == "coeffs" or name.endswith(".coeffs"))):
            raise ValueError(f"{who} is damaged: dct entry {name!r} of shape {tuple(shape)} must be a "
                             f"'coeffs' tensor keeping 0..{size} coefficients, its count says {count}")
        checked.append((name, kind, tuple(shape), count))
    return checked


def load_compressed(path: str | os.PathLike, model: Layer) -> Layer:
    """Fill `model` (the architecture the file was written from, converted with `to_frequency` here
    if it is not already) from a compressed file; returns it. To open a file without knowing its
    architecture, use `minicnn.app.load_model`. A file whose meta says "batchnorm_folded" (see
    `describe`) has its BatchNorms folded into the convolutions: `fold_batchnorm(model)` first."""
    manifest, state = read_compressed(path)
    if manifest["meta"].get("frequency", {}).get("batchnorm_folded"):
        fold_batchnorm(model)
    model = to_frequency(model)
    model.load_state_dict(state)
    return model


def describe(name: str, config: dict, model: Layer, **extra) -> dict:
    """The `meta` of a compressed file of `model` = build(name, **config) after `to_frequency` (and
    `frequency_biases` if used), so `load_model` can rebuild it: {"model", "config", "frequency":
    {"biases": bool}, + "batchnorm_folded": true when `fold_batchnorm` was applied (before
    `to_frequency`)} plus `extra` (input_shape, mean, std, class_names, dataset, ...)."""
    biases = any(isinstance(layer, FrequencyBias) for layer in model.modules())
    folded = any(isinstance(layer, FoldedBatchNorm) for layer in model.modules())
    frequency = {"biases": biases, **({"batchnorm_folded": True} if folded else {})}
    return {"model": name, "config": dict(config), "frequency": frequency, **extra}
