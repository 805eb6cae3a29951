"""Count a network without running it: output shapes, parameters, multiply-adds, receptive fields.

`analyze(model, (C, H, W))` walks a model (Sequential, Residual, Concat, nested in any way) and
returns one `LayerRow` per layer. Shapes come from a per-layer-type rule table (`RULES`) that reads
the hyper-parameters every layer stores as attributes (kernel_size, stride, padding, dilation,
groups, in/out channels, in/out features); a layer type without a rule is run once on a batch of
one zero image to get its shape (composite layers are traced: their children are recorded as they
are called). So MobileNet at 224x224 is counted in milliseconds.

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

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from minicnn.core import Layer, Sequential
from minicnn.functional import conv_output_size, pair
from minicnn.layers.blocks import Concat, Residual

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

    def breakdown_table(self) -> str:
        lines = [f"{'type':<20}{'mult-adds':>16}{'share':>9}{'weights':>14}{'share':>9}"]
        total_m, total_w = max(self.macs, 1), max(self.weights, 1)
        for kind, (m, w) in self.breakdown().items():
            lines.append(f"{kind:<20}{m:>16,}{100 * m / total_m:>8.2f}%{w:>14,}{100 * w / total_w:>8.2f}%")
        return "\n".join(lines)

    def table(self) -> str:
        head = (f"{'layer':<28}{'type':<18}{'output':<18}{'params':>11}{'MACs':>15}"
                f"{'RF':>9}{'jump':>6}")
        lines = [head, "-" * len(head)]
        for r in self.rows:
            rf = r.rf if r.rf is not None else "?"
            jump = _fmt(r.rf.jump[0]) if isinstance(r.rf, RF) else ""
            lines.append(f"{r.name[-27:]:<28}{r.type[:17]:<18}{'x'.join(map(str, r.output_shape)):<18}"
                         f"{r.params:>11,}{r.macs:>15,}{str(rf):>9}{jump:>6}")
        lines.append("-" * len(head))
        lines.append(f"input {'x'.join(map(str, self.input_shape))} -> output "
                     f"{'x'.join(map(str, self.output_shape))}")
        lines.append(f"parameters (all, with biases and BatchNorm): {self.params:,}")
        lines.append(f"weights (conv + fully-connected, no biases, no BN): {self.weights:,}")
        lines.append(f"multiply-adds (weights only, 1 MAC = 1 op): {self.macs:,}")
        lines.append(f"receptive field of the last layer: {self.rf}")
        return "\n".join(lines)


# ---- hyper-parameters read from layer attributes -----------------------------------------------


def _padding_before_after(layer: Layer, kernel, dilation) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """((top, bottom), (left, right)); None when the padding is a string we cannot resolve."""
    p = getattr(layer, "padding", 0)
    if isinstance(p, str):
        if p == "valid":
            return (0, 0), (0, 0)
        if p == "same":
            total = [dilation[a] * (kernel[a] - 1) for a in range(2)]
            return (total[0] // 2, total[0] - total[0] // 2), (total[1] // 2, total[1] - total[1] // 2)
        return None
    if isinstance(p, (tuple, list)) and len(p) == 2 and all(isinstance(v, (tuple, list)) for v in p):
        return (int(p[0][0]), int(p[0][1])), (int(p[1][0]), int(p[1][1]))
    ph, pw = pair(p, type(layer).__name__, "padding")
    return (ph, ph), (pw, pw)


def _window(layer: Layer):
    who = type(layer).__name__
    kernel = pair(getattr(layer, "kernel_size", 1), who, "kernel_size")
    stride = getattr(layer, "stride", None)
    stride = kernel if stride is None else pair(stride, who, "stride")
    dilation = pair(getattr(layer, "dilation", 1), who, "dilation")
    pads = _padding_before_after(layer, kernel, dilation)
    return kernel, stride, dilation, pads


def _window_shape(layer: Layer, shape: Shape, channels_out: int) -> Shape:
    kernel, stride, dilation, pads = _window(layer)
    who = type(layer).__name__
    oh = conv_output_size(shape[1], kernel[0], stride[0], pads[0], dilation[0], who=who)
    ow = conv_output_size(shape[2], kernel[1], stride[1], pads[1], dilation[1], who=who)
    return channels_out, oh, ow


def _window_rf(layer: Layer, rf, shape: Shape):
    if not isinstance(rf, RF):
        return rf
    kernel, stride, dilation, pads = _window(layer)
    return rf.through(kernel, stride, (pads[0][0], pads[1][0]), dilation)


def _conv_channels(layer: Layer) -> tuple[int, int, int]:
    cin = getattr(layer, "in_channels", None) or layer.channels
    cout = getattr(layer, "out_channels", None) or cin
    depthwise = any(c.__name__ == "DepthwiseConv2D" for c in type(layer).__mro__)
    groups = getattr(layer, "groups", None) or (cin if depthwise else 1)
    return cin, cout, groups


def _expect_channels(layer: Layer, shape: Shape, channels: int) -> None:
    if len(shape) != 3 or shape[0] != channels:
        raise ValueError(f"{type(layer).__name__}: expected input ({channels}, H, W), got {shape}")


# ---- the rule table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """How to count one layer type. `shape=None`: run the layer on zeros to learn its output shape.
    `rf=None`: the field is unchanged when the spatial size is, and unknown otherwise."""

    shape: Callable[[Layer, Shape], Shape] | None = None
    macs: Callable[[Layer, Shape, Shape], int] = lambda layer, i, o: 0
    rf: Callable[[Layer, RF | str | None, Shape], RF | str | None] | None = None
    kind: Callable[[Layer], str] = lambda layer: ""


def _conv_shape(layer, shape):
    cin, cout, _ = _conv_channels(layer)
    _expect_channels(layer, shape, cin)
    return _window_shape(layer, shape, cout)


def _conv_macs(layer, i, o):
    cin, cout, groups = _conv_channels(layer)
    kh, kw = _window(layer)[0]
    return o[1] * o[2] * cout * (cin // groups) * kh * kw


def _conv_kind(layer):
    cin, cout, groups = _conv_channels(layer)
    kh, kw = _window(layer)[0]
    if kh == kw == 1:
        return "Conv 1x1"
    if groups == cin == cout and cin > 1:
        return f"Conv DW {kh}x{kw}"
    return f"Conv {kh}x{kw}"


def _transpose_shape(layer, shape):
    cin, cout, _ = _conv_channels(layer)
    _expect_channels(layer, shape, cin)
    kernel, stride, dilation, pads = _window(layer)
    extra = pair(getattr(layer, "output_padding", 0), "ConvTranspose2D", "output_padding")
    return (cout,) + tuple((shape[1 + a] - 1) * stride[a] - sum(pads[a]) + dilation[a] * (kernel[a] - 1)
                           + extra[a] + 1 for a in range(2))


def _pool_shape(layer, shape):
    return _window_shape(layer, shape, shape[0])


def _linear_shape(layer, shape):
    if shape != (layer.in_features,):
        raise ValueError(f"{type(layer).__name__}: expected input ({layer.in_features},), got {shape}")
    return (layer.out_features,)


def _global_rf(layer, rf, shape):
    return rf.through(shape[1:], shape[1:]) if isinstance(rf, RF) and len(shape) == 3 else rf


def _slice_rf(layer, rf, shape):
    f = pair(layer.factor, type(layer).__name__, "factor")
    return rf.through(f, f) if isinstance(rf, RF) else rf


def _slice_shape(layer, shape):
    f = layer.factor
    if shape[1] % f or shape[2] % f:
        raise ValueError(f"{type(layer).__name__}: expected H and W divisible by {f}, got {shape}")
    return shape[0] * f * f, shape[1] // f, shape[2] // f


_same = Rule(shape=lambda layer, s: s)
_conv = Rule(shape=_conv_shape, macs=_conv_macs, rf=_window_rf, kind=_conv_kind)

RULES: dict[str, Rule] = {
    "Conv2D": _conv,
    "DepthwiseConv2D": _conv,
    "PointwiseConv2D": _conv,
    "DCTConv2D": _conv,
    "LocallyConnected2D": Rule(shape=_conv_shape, macs=_conv_macs, rf=_window_rf,
                               kind=lambda layer: "Locally connected"),
    "ConvTranspose2D": Rule(shape=_transpose_shape,
                            macs=lambda layer, i, o: i[1] * i[2] * int(np.prod(layer.weight.shape)),
                            rf=lambda layer, rf, i: None, kind=lambda layer: "Conv transpose"),
    "Linear": Rule(shape=_linear_shape, macs=lambda layer, i, o: layer.in_features * layer.out_features,
                   rf=lambda layer, rf, i: GLOBAL, kind=lambda layer: "Fully connected"),
    "DCTLinear": Rule(shape=_linear_shape, macs=lambda layer, i, o: layer.in_features * layer.out_features,
                      rf=lambda layer, rf, i: GLOBAL, kind=lambda layer: "Fully connected"),
    "MaxPool2D": Rule(shape=_pool_shape, rf=_window_rf),
    "AvgPool2D": Rule(shape=_pool_shape, rf=_window_rf),
    "SoftPool2D": Rule(shape=_pool_shape, rf=_window_rf),
    "GlobalAvgPool2D": Rule(shape=lambda layer, s: (s[0], 1, 1) if getattr(layer, "keepdims", False) else (s[0],),
                            rf=_global_rf),
    "Subsample2D": Rule(rf=lambda layer, rf, i: rf.through(pair(layer.stride, "Subsample2D", "stride"),
                                                           pair(layer.stride, "Subsample2D", "stride"))
                        if isinstance(rf, RF) else rf),
    "SliceDownsample": Rule(shape=_slice_shape, rf=_slice_rf),
    "Flatten": Rule(shape=lambda layer, s: (int(np.prod(s)),), rf=lambda layer, rf, i: GLOBAL),
    "Maxout": Rule(shape=lambda layer, s: (s[0] // layer.pieces,) + s[1:]),
    "ChannelSplit": Rule(shape=lambda layer, s: (s[0] // layer.parts,) + s[1:]),
}
for _name in ("ReLU", "ReLU6", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "Dropout", "BatchNorm1D",
              "BatchNorm2D", "ChannelShuffle", "Identity"):
    RULES[_name] = _same

# composite layers whose children run one after the other, in this order (walked like a Sequential)
IN_ORDER: dict[str, tuple[str, ...]] = {"SeparableConv2D": ("depthwise", "pointwise")}

_NOT_WEIGHTS = ("bias",)  # parameter names that are not multiplicative weights


def _rule_for(layer: Layer) -> Rule | None:
    for cls in type(layer).__mro__:
        if cls.__name__ in RULES:
            return RULES[cls.__name__]
    return None


def _weights(layer: Layer, kind: str) -> int:
    """Multiplicative weights: every non-bias parameter of a conv / fully-connected layer."""
    if not kind:
        return 0
    return sum(p.size for name, p in layer.named_parameters() if name.split(".")[-1] not in _NOT_WEIGHTS)


# ---- the walk -----------------------------------------------------------------------------------


def _merge(fields: list) -> RF | str | None:
    """Largest field among parallel branches; "all" wins; unknown (None) if any branch is unknown."""
    if any(f is None for f in fields):
        return None
    if any(f == GLOBAL for f in fields):
        return GLOBAL
    return max(fields, key=lambda f: (f.size[0] * f.size[1]))


def _run_zeros(layer: Layer, shape: Shape, record: list | None = None) -> Shape:
    """Forward a batch of one zero input in eval mode; with `record`, log (name, child, in_shape) of
    every call to a direct child. Training flags and forward methods are restored afterwards."""
    modes = [(m, m.training) for m in layer.modules()]
    patched = []
    if record is not None:
        for cname, child in layer.named_children():
            def wrapped(x, _c=child, _n=cname, _f=child.forward):
                record.append((_n, _c, tuple(x.shape[1:])))
                return _f(x)
            object.__setattr__(child, "forward", wrapped)
            patched.append(child)
    try:
        layer.eval()
        y = layer.forward(np.zeros((1,) + tuple(shape), dtype=np.float32))
    finally:
        for child in patched:
            del child.__dict__["forward"]
        for m, mode in modes:
            object.__setattr__(m, "training", mode)
    return tuple(y.shape[1:])


def _walk(layer: Layer, name: str, shape: Shape, rf, rows: list[LayerRow]):
    prefix = name + "." if name else ""
    if isinstance(layer, Sequential):
        for cname, child in layer.named_children():
            shape, rf = _walk(child, prefix + cname, shape, rf, rows)
        return shape, rf
    if isinstance(layer, Residual):
        s_body, rf_body = _walk(layer.body, prefix + "body", shape, rf, rows)
        s_short, rf_short = (shape, rf) if layer.shortcut is None else \
            _walk(layer.shortcut, prefix + "shortcut", shape, rf, rows)
        if s_body != s_short:
            raise ValueError(f"Residual {name}: body gives {s_body}, shortcut gives {s_short}")
        rf = _merge([rf_body, rf_short])
        rows.append(LayerRow(prefix + "add", "Residual (+)", shape, s_body, rf=rf))
        return s_body, rf
    if isinstance(layer, Concat):
        outs = [_walk(b, prefix + cname, shape, rf, rows) for cname, b in layer.named_children()]
        out = (sum(s[0] for s, _ in outs),) + outs[0][0][1:]
        rf = _merge([r for _, r in outs])
        rows.append(LayerRow(prefix + "concat", "Concat", shape, out, rf=rf))
        return out, rf

    order = next((IN_ORDER[c.__name__] for c in type(layer).__mro__ if c.__name__ in IN_ORDER), None)
    if order is not None:
        for cname in order:
            shape, rf = _walk(getattr(layer, cname), prefix + cname, shape, rf, rows)
        return shape, rf
    rule = _rule_for(layer)
    if rule is None and any(True for _ in layer.named_children()):
        record: list = []
        out = _run_zeros(layer, shape, record)
        for cname, child, in_shape in record:
            _, rf = _walk(child, prefix + cname, in_shape, rf, rows)
        own = sum(p.size for p in layer._params.values())
        if own:
            rows.append(LayerRow(name, type(layer).__name__, shape, out, params=own, rf=rf))
        return out, rf
    if rule is None:
        rule = Rule()
    out = rule.shape(layer, shape) if rule.shape is not None else _run_zeros(layer, shape)
    if rule.rf is not None:
        new_rf = rule.rf(layer, rf, shape)
    else:
        new_rf = rf if out[1:] == shape[1:] else None
    kind = rule.kind(layer)
    rows.append(LayerRow(name, type(layer).__name__, shape, out, params=layer.num_parameters(),
                         weights=_weights(layer, kind), macs=int(rule.macs(layer, shape, out)),
                         rf=new_rf, kind=kind))
    return out, new_rf


def analyze(model: Layer, input_shape: Shape) -> Summary:
    """Count `model` for one input of shape (C, H, W) (or (features,)): see the module docstring."""
    input_shape = tuple(int(v) for v in input_shape)
    rows: list[LayerRow] = []
    out, _ = _walk(model, "", input_shape, RF() if len(input_shape) == 3 else GLOBAL, rows)
    return Summary(input_shape, out, rows, params=model.num_parameters())


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
