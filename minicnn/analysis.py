"""Count a network without running it: output shapes, parameters, multiply-adds, receptive fields.

`analyze(model, (C, H, W))` walks a model (Sequential, Residual, Concat, nested in any way) with
`minicnn.layers.walk` and returns one `LayerRow` per layer. Every number comes from the layer itself,
through the protocol of `minicnn.layers.shapes`: `output_shape(input_shape)`, `cost(input_shape)`
(multiply-adds, weights, breakdown category) and `window()` (for the receptive field); this module
only adds them up. No layer is run.

Conventions (those of the MobileNet / ShuffleNet papers, so the published figures are reproduced):
- multiply-adds (MACs): one multiply-accumulate = one op, weights only — convolutions and fully-
  connected layers; no bias, no BatchNorm, no activation, no pooling, no residual addition.
      conv (groups g):  MACs = OH * OW * C_out * (C_in / g) * KH * KW
      depthwise:        MACs = OH * OW * C * KH * KW        (counted at the *output* size)
      fully connected:  MACs = IN * OUT
- `weights`: the multiplicative weight tensors only (no biases, no BatchNorm) — the papers'
  "parameters" / "# of weights". `params`: every learnable number, biases and BatchNorm included.
- receptive field, per axis, in input pixels, for a layer with kernel k, stride s, dilation d and
  padding p before the first position (k_eff = d (k - 1) + 1):
      size'  = size + (k_eff - 1) * jump
      jump'  = jump * s
      start' = start + ((k_eff - 1) / 2 - p) * jump     (centre of output 0; input pixel i is at i)
  For parallel branches (Residual, Concat) the largest branch field is reported. After Flatten or a
  fully-connected layer every output sees the whole input ("all").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from minicnn.core import Layer
from minicnn.layers import ALL, UNKNOWN, Visitor, walk
from minicnn.layers.shapes import leaf_cost, leaf_window

Shape = tuple[int, ...]


@dataclass(frozen=True)
class RF:
    """Receptive field of one output position along H and W: (size, jump, start) per axis."""

    size: tuple[int, int] = (1, 1)
    jump: tuple[float, float] = (1, 1)
    start: tuple[float, float] = (0.0, 0.0)

    def through(self, kernel, stride, padding_before=(0, 0), dilation=(1, 1)) -> RF:
        """The field after one more sliding-window layer (the three update rules above)."""
        size, jump, start = [], [], []
        for a in range(2):
            k_eff = dilation[a] * (kernel[a] - 1) + 1
            size.append(self.size[a] + (k_eff - 1) * self.jump[a])
            start.append(self.start[a] + ((k_eff - 1) / 2 - padding_before[a]) * self.jump[a])
            jump.append(self.jump[a] * stride[a])
        return RF(tuple(size), tuple(jump), tuple(start))

    def __str__(self) -> str:
        return f"{_fmt(self.size[0])}x{_fmt(self.size[1])}"


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


GLOBAL = "all"  # the field after Flatten / Linear: every input pixel
COLUMNS = 80  # the terminal width every table fits
# How a table is set, tried in turn until it fits: (spaces between columns, thousands separator).
# Counts lose their commas only at sizes nobody reads digit by digit (e.g. xception at 4096x4096, width 8).
STYLES = ((2, ","), (1, ","), (1, ""))


@dataclass
class LayerRow:
    name: str
    type: str
    input_shape: Shape
    output_shape: Shape
    params: int = 0
    weights: int = 0
    macs: int = 0
    rf: RF | str | None = None
    kind: str = ""  # breakdown category: "Conv 1x1", "Conv DW 3x3", "Conv 3x3", "Fully connected", ...


@dataclass
class Summary:
    input_shape: Shape
    output_shape: Shape
    rows: list[LayerRow] = field(default_factory=list)
    params: int = 0

    @property
    def weights(self) -> int:
        return sum(r.weights for r in self.rows)

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def rf(self) -> RF | str | None:
        return self.rows[-1].rf if self.rows else RF()

    def breakdown(self) -> dict[str, tuple[int, int]]:
        """kind -> (MACs, weights), in first-appearance order (MobileNet's Table 2)."""
        out: dict[str, tuple[int, int]] = {}
        for r in self.rows:
            if r.kind:
                m, w = out.get(r.kind, (0, 0))
                out[r.kind] = (m + r.macs, w + r.weights)
        return out

    def breakdown_table(self, columns: int = COLUMNS) -> str:
        """MobileNet's Table 2: mult-adds and weights per layer kind, with their shares of the total."""
        total_m, total_w = max(self.macs, 1), max(self.weights, 1)
        cells = [(kind, m, f"{100 * m / total_m:.2f}%", w, f"{100 * w / total_w:.2f}%")
                 for kind, (m, w) in self.breakdown().items()]
        return "\n".join(_fit(("type", "mult-adds", "share", "weights", "share"), cells, 1, columns))

    def table(self, columns: int = COLUMNS) -> str:
        """The per-layer table and the totals, at most `columns` characters wide (see `_fit`)."""
        cells = [(r.name, r.type, "x".join(map(str, r.output_shape)), r.params, r.macs,
                  str(r.rf) if r.rf is not None else "?", _fmt(r.rf.jump[0]) if isinstance(r.rf, RF) else "")
                 for r in self.rows]
        lines = _fit(("layer", "type", "output", "params", "MACs", "RF", "jump"), cells, 3, columns)
        rule = "-" * max(map(len, lines))
        lines[1:1] = [rule]
        lines.append(rule)
        lines.append(f"input {'x'.join(map(str, self.input_shape))} -> output "
                     f"{'x'.join(map(str, self.output_shape))}")
        lines.append(f"parameters (all, with biases and BatchNorm): {self.params:,}")
        lines.append(f"weights (conv + fully-connected, no biases, no BN): {self.weights:,}")
        lines.append(f"multiply-adds (weights only, 1 MAC = 1 op): {self.macs:,}")
        lines.append(f"receptive field of the last layer: {self.rf}")
        return "\n".join(lines)


def _fit(heads: tuple[str, ...], rows: list[tuple[str | int, ...]], text_columns: int,
         columns: int = COLUMNS) -> list[str]:
    """The header line and one line per row, at most `columns` characters wide, nothing cut.

    The first `text_columns` columns align left, the others right; ints are counts, printed with
    thousands separators. Every column is as wide as its widest cell, except the first (the names)
    when that would not fit: a name too long for it is printed whole on a line of its own, and the
    rest of its row follows on the next line. If even a first column as wide as its header does not
    fit, the next of STYLES is tried; the last one is used whatever its width (a table with a
    thirty-letter layer type may be wider than `columns`; no registered model makes one)."""
    for gap, comma in STYLES:
        cells = [[f"{c:{comma}}" if isinstance(c, int) else c for c in row] for row in rows]
        widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(heads)]
        widths[0] = max(len(heads[0]), min(widths[0], columns - sum(widths[1:]) - gap * (len(heads) - 1)))
        if sum(widths) + gap * (len(heads) - 1) <= columns:
            break

    def line(row: list[str]) -> str:
        return (" " * gap).join(c.ljust(w) if i < text_columns else c.rjust(w)
                                for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()

    out = [line(list(heads))]
    for row in cells:
        if len(row[0]) > widths[0]:
            out.append(row[0])
            row[0] = ""
        out.append(line(row))
    return out


# ---- the walk: one row per leaf, the receptive field threaded through -------------------------------


def _through(rf: RF | str | None, window) -> RF | str | None:
    """The field after a layer with `window()` = `window` (see `minicnn.layers.shapes`)."""
    if window == ALL:
        return GLOBAL
    if window == UNKNOWN:
        return None
    if window is None or not isinstance(rf, RF):
        return rf  # position by position, or already "all" / unknown
    return rf.through(window.kernel, window.stride, window.padding, window.dilation)


def _merge(fields: list) -> RF | str | None:
    """Largest field among parallel branches; "all" wins; unknown (None) if any branch is unknown."""
    if any(f is None for f in fields):
        return None
    if any(f == GLOBAL for f in fields):
        return GLOBAL
    return max(fields, key=lambda f: (f.size[0] * f.size[1]))


class _Counter(Visitor):
    """Makes the rows of `analyze`: the layer's own answers (shape, cost, window) for every leaf."""

    def __init__(self) -> None:
        self.rows: list[LayerRow] = []

    def leaf(self, name, layer, in_shape, out_shape, rf):
        cost = leaf_cost(layer, in_shape)
        rf = _through(rf, leaf_window(layer, in_shape))
        self.rows.append(LayerRow(name, type(layer).__name__, in_shape, out_shape, params=layer.num_parameters(),
                                  weights=cost.weights, macs=cost.macs, rf=rf, kind=cost.kind))
        return rf

    def join(self, name, label, in_shape, out_shape, fields):
        rf = _merge(fields)
        self.rows.append(LayerRow(name, label, in_shape, out_shape, rf=rf))
        return rf


def analyze(model: Layer, input_shape: Shape) -> Summary:
    """Count `model` for one input of shape (C, H, W) (or (features,)): see the module docstring."""
    input_shape = tuple(int(v) for v in input_shape)
    counter = _Counter()
    out, _ = walk(model, input_shape, counter, state=RF() if len(input_shape) == 3 else GLOBAL)
    return Summary(input_shape, out, counter.rows, params=model.num_parameters())


def receptive_field(model: Layer, input_shape: Shape) -> RF | str | None:
    """Receptive field (size, jump, start per axis) of one output position of `model`."""
    return analyze(model, input_shape).rf


def receptive_field_of(layers: list[tuple[int, int]]) -> int:
    """Field size of a chain of square windows given as (kernel, stride), no dilation.

    receptive_field_of([(3, 1), (3, 1)]) == 5;  [(5, 1), (5, 1)] -> 9;  [(3, 2), (3, 1)] -> 7;
    [(5, 2), (5, 1)] -> 13 (the lecture's question).
    """
    rf = RF()
    for k, s in layers:
        rf = rf.through((k, k), (s, s))
    return int(rf.size[0])


def connectivity_weights(channels_in: int, channels_out: int, size: int, kernel: int) -> dict[str, int]:
    """Weights of one layer mapping a size x size x C_in map to size x size x C_out, three ways
    (the lecture's "parameter overdose" and its two cures; zero padding so every output has a full
    kernel, no biases):

        fully connected:    (size^2 C_in) (size^2 C_out)
        locally connected:  size^2 C_out * k^2 C_in         (one kernel per output position)
        convolution:        k^2 C_in C_out                  (one kernel, tied across positions)

    FC / LC = size^2 / k^2 = O((W / 2 delta)^2) and LC / conv = size^2 = O(W^2), as the lecture says.
    """
    n_in, n_out = size * size * channels_in, size * size * channels_out
    return {
        "fully connected": n_in * n_out,
        "locally connected": size * size * channels_out * kernel * kernel * channels_in,
        "convolution": kernel * kernel * channels_in * channels_out,
    }
