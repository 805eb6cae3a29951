"""`unet`: the encoder-decoder with skip connections of Ronneberger, Fischer and Brox (2015), in the layout
of the Frequency Regularization paper's repository (guanfangdong/pytorch-frequency-regularization,
`unet/unet_model.py`, itself milesial/Pytorch-UNet's model):

    inc     DoubleConv(in, c)                                        c = 64 * width
    down i  MaxPool2D(2) -> DoubleConv(c 2^(i-1), c 2^i)              i = 1..4 (the last: 16c / f)
    up i    upsample 2 -> stack [encoder map of the same size, upsampled] -> DoubleConv
            transposed conv 2x2 stride 2 (halves the channels), f = 1;  or bilinear (keeps them), f = 2
    head    1x1 conv c -> num_classes (per-pixel logits)

Written as nested levels: level(i) = DoubleConv -> SkipConcat(MaxPool -> level(i+1) -> upsample) -> DoubleConv,
so each skip connection is one `SkipConcat` (`minicnn.layers.unet`). H and W must be divisible by
2^depth (16): the repository pads the upsampled map when they are not; here such an input is refused
(ValueError from the first level whose skip and upsampled maps differ in size).

Parameter count, width 1 (c = 64), in_channels 3, num_classes 2: 31,037,698 with transposed convs
(bilinear=False), 17,263,042 bilinear, the count of the repository's `UNet(n_channels=3, n_classes=2,
bilinear=...)` with its 3x3 convolutions bias-free (BatchNorm follows each one). Measured with
`minicnn.analysis.analyze(models.build("unet"), (3, 64, 64))` (tests/test_unet.py); the same counts come
from a PyTorch model written in the repository's layout, whose forward also matched this one to 1e-14
in float64 at width 1/8, both settings of bilinear (a one-off check; PyTorch is not a dependency).
Bilinear here is `Upsample(mode="bilinear")`, PyTorch's align_corners=False; the repository uses
align_corners=True (same parameters, slightly different interpolation weights).
"""

from __future__ import annotations

from minicnn import layers as L
from minicnn.core import Layer, Sequential

from ._parts import scaled
from ._registry import register

BASE_CHANNELS = 64  # channels of the first level at width 1
DEPTH = 4  # poolings (and upsamplings) between the input and the bottom of the U
SCALE = 2  # each pooling halves H and W, each upsampling doubles them


def _upsample(channels: int, bilinear: bool) -> tuple[Layer, int]:
    """The decoder's 2x upsampling of a `channels`-channel map -> (layer, channels it returns)."""
    if bilinear:
        return L.Upsample(SCALE, mode="bilinear"), channels
    return L.ConvTranspose2D(channels, channels // 2, SCALE, stride=SCALE), channels // 2


@register("unet")
def unet(num_classes: int = 2, in_channels: int = 3, width: float = 1.0, bilinear: bool = False,
         image_size: int = 32, depth: int = DEPTH) -> Layer:
    """The UNet above: (N, in_channels, H, W) -> (N, num_classes, H, W) logits, H and W divisible by 2^depth.

    `width` scales every level's channels (c = 64 * width, at least 1); `depth` is the number of levels
    below the first (the paper's 4). `image_size` is the canvas it is made for (any multiple of 2^depth
    works). Factor f = 2 when bilinear: the bottom and every decoder level but the last have half the
    channels, so that the bilinear upsampling (which keeps channels) stacks onto a map of equal width.
    """
    if depth < 1:
        raise ValueError(f"unet: expected depth >= 1, got {depth}")
    factor = 2 if bilinear else 1
    chans = [scaled(BASE_CHANNELS * SCALE ** i, width) for i in range(depth + 1)]  # encoder channels per level
    block: Layer = L.DoubleConv(chans[depth - 1], chans[depth] // factor)  # the bottom of the U
    below = chans[depth] // factor  # channels the level below hands up
    for level in reversed(range(depth)):
        up, up_channels = _upsample(below, bilinear)
        stacked = chans[level] + up_channels
        out = chans[level] // factor if level > 0 else chans[0]
        decoder = L.DoubleConv(stacked, out, stacked // 2 if bilinear else out)
        encoder = L.DoubleConv(chans[level - 1] if level > 0 else in_channels, chans[level])
        block = Sequential(encoder, L.SkipConcat(Sequential(L.MaxPool2D(SCALE), block, up)), decoder)
        below = out
    return Sequential(block, L.Conv2D(chans[0], num_classes, 1))
