"""Composite blocks of the lecture's architectures: shortcuts, parallel branches, channel mixing.

    Residual(body, shortcut=None)   y = F(x) + x            (ResNet: learn F(x) = H(x) - x, not H(x))
                                    y = F(x) + P(x)         (P a projection, e.g. 1x1 conv stride 2)
    Concat(*branches)               y = [B_1(x), ..., B_k(x)] stacked on channels    (Inception)
    ChannelSplit(part, parts=2)     y = x[:, part*C/parts : (part+1)*C/parts]         (ShuffleNet v2)
    ChannelShuffle(groups)          channel g*c_per + i  ->  i*groups + g             (ShuffleNet)
    DepthwiseSeparable(...)         dw kxk -> BN -> act -> 1x1 -> BN -> act           (MobileNet v1)
    InvertedResidual(...)           1x1 expand -> ReLU6 -> dw 3x3 -> ReLU6 -> 1x1 project, *linear*,
                                    plus x when the shapes match                      (MobileNet v2)
    ShuffleV2Unit(...)              split, one half through 1x1 -> dw 3x3 -> 1x1, concat, shuffle

The containers only route arrays; their backward rules are the chain rule for a sum and for a
concatenation: a sum sends dy unchanged to both terms, a concatenation sends each slice of dy to the
branch that produced it, and when several branches read the same x their dx are added.
The conv blocks are `Sequential` subclasses, so `minicnn.layers.walk` (and so `minicnn.analysis`) walks
them like any Sequential; Residual and Concat are walked branch by branch.
"""

from __future__ import annotations

import numpy as np

from minicnn.core import Layer, Sequential
from minicnn.functional import check_array, positive_int

from .activations import ReLU, ReLU6
from .conv import Conv2D, DepthwiseConv2D, PointwiseConv2D
from .norm import BatchNorm2D
from .shapes import Shape


def _check_channels_divisible(x: np.ndarray, by: int, who: str) -> None:
    check_array(x, who, 4, "(N, C, H, W)")
    if x.shape[1] % by:
        raise ValueError(f"{who}: expected input (N, C, H, W) with C divisible by {by}, got shape {x.shape}")


def _channels_divisible_shape(shape: Shape, by: int, who: str) -> Shape:
    """The shape-protocol twin of `_check_channels_divisible`: (C, H, W) with C divisible by `by`."""
    if len(shape) != 3 or shape[0] % by:
        raise ValueError(f"{who}: expected input (C, H, W) with C divisible by {by}, got {tuple(shape)}")
    return tuple(shape)


# ---- routing containers ------------------------------------------------------------------------


class Residual(Layer):
    """y = body(x) + shortcut(x); `shortcut=None` is the identity.

    Backward: dy reaches both terms unchanged, so dx = body.backward(dy) + shortcut.backward(dy)
    (identity: + dy). Output shapes of the two terms must agree exactly (no broadcasting).
    """

    def __init__(self, body: Layer, shortcut: Layer | None = None):
        super().__init__()
        if not isinstance(body, Layer) or (shortcut is not None and not isinstance(shortcut, Layer)):
            raise ValueError("Residual: expected Layer objects for body and shortcut")
        self.body = body
        self.shortcut = shortcut

    def forward(self, x: np.ndarray) -> np.ndarray:
        fx = self.body.forward(x)
        sx = x if self.shortcut is None else self.shortcut.forward(x)
        if fx.shape != sx.shape:
            raise ValueError(f"Residual: expected body output {sx.shape} (the shortcut's shape), "
                             f"got {fx.shape} for input {x.shape}")
        return fx + sx

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dx = self.body.backward(dy)
        return dx + (dy if self.shortcut is None else self.shortcut.backward(dy))

    def extra_repr(self) -> str:
        return "shortcut=identity" if self.shortcut is None else ""


class Concat(Layer):
    """y = concatenate([branch(x) for branch in branches], axis=1) — every branch reads the same x.

    Backward: dy is cut into the branches' channel slices; dx = sum_k branch_k.backward(dy_k).
    """

    TRANSIENT = Layer.TRANSIENT + ("_sizes", "_y_shape")  # channels per branch, the output shape

    def __init__(self, *branches: Layer):
        super().__init__()
        if not branches:
            raise ValueError("Concat: expected at least one branch")
        for i, b in enumerate(branches):
            if not isinstance(b, Layer):
                raise ValueError(f"Concat: expected Layer objects, got {type(b).__name__} at {i}")
            setattr(self, str(i), b)

    @property
    def branches(self) -> list[Layer]:
        return list(self._children.values())

    def forward(self, x: np.ndarray) -> np.ndarray:
        outs = [b.forward(x) for b in self.branches]
        rest = {o.shape[:1] + o.shape[2:] for o in outs}
        if len(rest) != 1:
            raise ValueError(f"Concat: expected branch outputs that differ only in channels, got shapes "
                             f"{[o.shape for o in outs]}")
        self._sizes = [o.shape[1] for o in outs]  # cache: channels per branch
        y = np.concatenate(outs, axis=1)
        self._y_shape = y.shape  # cache: the shape backward expects
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        self.check_dy(dy, self._y_shape)
        bounds = np.cumsum(self._sizes)[:-1]
        dx = None
        for b, d in zip(self.branches, np.split(dy, bounds, axis=1), strict=True):
            g = b.backward(d)
            dx = g if dx is None else dx + g
        return dx


class ChannelSplit(Layer):
    """Keep the `part`-th of `parts` equal channel groups: (N, C, H, W) -> (N, C/parts, H, W).

    ShuffleNet v2's channel split is ChannelSplit(0) and ChannelSplit(1) in two Concat branches.
    Backward: dy goes back into its slice, zeros elsewhere.
    """

    TRANSIENT = Layer.TRANSIENT + ("_shape",)  # forward's input shape

    def __init__(self, part: int, parts: int = 2):
        super().__init__()
        parts = positive_int(parts, "ChannelSplit", "parts")
        if not isinstance(part, (int, np.integer)) or not 0 <= part < parts:
            raise ValueError(f"ChannelSplit: expected 0 <= part < parts, got part={part!r}, parts={parts}")
        self.part, self.parts = int(part), parts

    def forward(self, x: np.ndarray) -> np.ndarray:
        _check_channels_divisible(x, self.parts, "ChannelSplit")
        c = x.shape[1] // self.parts
        self._shape = x.shape  # cache: input shape
        return x[:, self.part * c:(self.part + 1) * c]

    def backward(self, dy: np.ndarray) -> np.ndarray:
        c = self._shape[1] // self.parts
        self.check_dy(dy, (self._shape[0], c, *self._shape[2:]))
        dx = np.zeros(self._shape, dtype=dy.dtype)
        dx[:, self.part * c:(self.part + 1) * c] = dy
        return dx

    def output_shape(self, input_shape: Shape) -> Shape:
        c, h, w = _channels_divisible_shape(input_shape, self.parts, "ChannelSplit")
        return c // self.parts, h, w

    def window(self) -> None:
        return None

    def extra_repr(self) -> str:
        return f"part={self.part}, parts={self.parts}"


def channel_shuffle(x: np.ndarray, groups: int) -> np.ndarray:
    """(N, g*c, H, W): view channels as (g, c), transpose to (c, g), flatten back.

    Output channel i*g + k holds input channel k*c + i: each group's channels are dealt out in turn,
    so the next grouped layer sees channels from every group.
    """
    n, ch, h, w = x.shape
    y = x.reshape(n, groups, ch // groups, h, w)  # (N, G, C/G, H, W)
    return y.transpose(0, 2, 1, 3, 4).reshape(n, ch, h, w)  # (N, C/G, G, H, W) -> (N, C, H, W)


def channel_shuffle_backward(dy: np.ndarray, groups: int) -> np.ndarray:
    """The inverse permutation (a permutation's adjoint is its inverse): shuffle with C/groups groups."""
    return channel_shuffle(dy, dy.shape[1] // groups)


class ChannelShuffle(Layer):
    """ShuffleNet's channel shuffle (see `channel_shuffle`); backward applies the inverse permutation."""

    TRANSIENT = Layer.TRANSIENT + ("_shape",)  # forward's input (and output) shape

    def __init__(self, groups: int):
        super().__init__()
        self.groups = positive_int(groups, "ChannelShuffle", "groups")

    def forward(self, x: np.ndarray) -> np.ndarray:
        _check_channels_divisible(x, self.groups, "ChannelShuffle")
        self._shape = x.shape  # cache: the shape backward expects
        return channel_shuffle(x, self.groups)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        self.check_dy(dy, self._shape)
        return channel_shuffle_backward(dy, self.groups)

    def output_shape(self, input_shape: Shape) -> Shape:
        return _channels_divisible_shape(input_shape, self.groups, "ChannelShuffle")

    def window(self) -> None:
        return None

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


# ---- convolutional blocks (Sequential subclasses) ---------------------------------------------


def conv_bn(in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
            groups: int = 1, act: type[Layer] | None = None) -> list[Layer]:
    """[conv (no bias: BN's beta is the bias) -> BatchNorm2D -> act] as a list of layers.

    Uses PointwiseConv2D for 1x1, DepthwiseConv2D when groups == in == out, Conv2D otherwise;
    padding kernel_size // 2 ("same" for odd kernels at stride 1).
    """
    pad = kernel_size // 2
    if kernel_size == 1 and stride == 1 and groups == 1:
        conv = PointwiseConv2D(in_channels, out_channels, bias=False)
    elif groups == in_channels == out_channels:
        conv = DepthwiseConv2D(in_channels, kernel_size, stride=stride, padding=pad, bias=False)
    else:
        conv = Conv2D(in_channels, out_channels, kernel_size, stride=stride, padding=pad,
                        groups=groups, bias=False)
    return [conv, BatchNorm2D(out_channels)] + ([act()] if act is not None else [])


class DepthwiseSeparable(Sequential):
    """MobileNet v1 unit: dw kxk (stride) -> BN -> ReLU -> 1x1 -> BN -> ReLU.

    Cost against a full kxk conv C_in -> C_out: (k^2 C_in + C_in C_out) / (k^2 C_in C_out)
    = 1/C_out + 1/k^2 of the multiply-adds and weights.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, kernel_size: int = 3,
                 act: type[Layer] | None = None):
        act = act or ReLU
        super().__init__(*conv_bn(in_channels, in_channels, kernel_size, stride, groups=in_channels, act=act),
                         *conv_bn(in_channels, out_channels, 1, act=act))
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride


class InvertedResidual(Sequential):
    """MobileNet v2 bottleneck: expand 1x1 (x t) -> ReLU6 -> dw 3x3 (stride) -> ReLU6 -> project 1x1 -> BN.

    The projection has no nonlinearity (the *linear* bottleneck). With stride 1 and
    in_channels == out_channels the block is Residual(body): y = x + body(x).
    t = 1 skips the expansion (the first bottleneck of MobileNet v2).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, expand_ratio: int = 6):
        hidden = in_channels * expand_ratio
        expand = conv_bn(in_channels, hidden, 1, act=ReLU6) if expand_ratio != 1 else []
        body = Sequential(*expand,
                          *conv_bn(hidden, hidden, 3, stride, groups=hidden, act=ReLU6),
                          *conv_bn(hidden, out_channels, 1))
        use_residual = stride == 1 and in_channels == out_channels
        super().__init__(Residual(body) if use_residual else body)
        self.use_residual = use_residual
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.expand_ratio = expand_ratio


class ShuffleV2Unit(Sequential):
    """ShuffleNet v2 unit, built from the containers above (channel numbers as the authors' code).

    stride 1 (in == out = 2c):  Concat(ChannelSplit(0), [ChannelSplit(1) -> 1x1 -> dw 3x3 -> 1x1]) -> shuffle
    stride 2 (in -> out):       Concat([dw 3x3 s2 -> 1x1, in -> in],
                                       [1x1 in -> out/2 -> dw 3x3 s2 -> 1x1 out/2 -> out - in]) -> shuffle
    Half the channels pass untouched in the stride-1 unit; the shuffle mixes the halves for the next unit.
    With these channel numbers the four ImageNet widths give the paper's 41M / 146M / 299M / 591M FLOPs.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        if out_channels % 2:
            raise ValueError(f"ShuffleV2Unit: expected an even out_channels, got {out_channels}")
        c = out_channels // 2
        if stride == 1:
            if in_channels != out_channels:
                raise ValueError(f"ShuffleV2Unit: stride 1 expected in_channels == out_channels, "
                                 f"got {in_channels} -> {out_channels}")
            left = ChannelSplit(0)
            right = Sequential(ChannelSplit(1), *self._branch(c, c, 1, ReLU))
        else:
            if out_channels <= in_channels:
                raise ValueError(f"ShuffleV2Unit: stride 2 expected out_channels > in_channels, "
                                 f"got {in_channels} -> {out_channels}")
            left = Sequential(*conv_bn(in_channels, in_channels, 3, stride, groups=in_channels),
                              *conv_bn(in_channels, in_channels, 1, act=ReLU))
            right = Sequential(*self._branch(in_channels, c, stride, ReLU, out_channels - in_channels))
        super().__init__(Concat(left, right), ChannelShuffle(2))
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    @staticmethod
    def _branch(cin: int, c: int, stride: int, act: type[Layer], cout: int | None = None) -> list[Layer]:
        """1x1 cin -> c, dw 3x3 (stride), 1x1 c -> cout (default c)."""
        cout = c if cout is None else cout
        return [*conv_bn(cin, c, 1, act=act), *conv_bn(c, c, 3, stride, groups=c), *conv_bn(c, cout, 1, act=act)]
