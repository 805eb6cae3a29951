"""ShuffleNet v2 (Ma et al. 2018), widths 0.5x / 1x / 1.5x / 2x (Table 5 of the paper).

Conv1 3x3 s2 (24) -> MaxPool 3x3 s2 -> stages 2, 3, 4 of (1 stride-2 unit + 3 / 7 / 3 stride-1
units) -> Conv5 1x1 -> global pool -> FC. Each unit splits the channels, processes one half with
1x1 -> dw 3x3 -> 1x1 and shuffles the halves together (`minicnn.layers.blocks.ShuffleV2Unit`).
At 224x224 x 1000 classes: 40,476,448 / 145,814,296 / 298,970,656 / 590,783,000 mult-adds (conv + FC,
the paper's 41M / 146M / 299M / 591M rounded up) and 1.4M / 2.3M / 3.5M / 7.4M weights (tests/test_analysis.py).
For small inputs (image_size < 128) Conv1 has stride 1 and the max-pool is left out.
"""

from __future__ import annotations

from minicnn.core import Layer, Sequential
from minicnn.layers import MaxPool2D, ReLU
from minicnn.layers.blocks import ShuffleV2Unit, conv_bn

from ._parts import classifier, slicesamp_variant, stem_stride
from ._registry import register

# output channels of Conv1, Stage2, Stage3, Stage4, Conv5 for each width
CHANNELS = {0.5: (24, 48, 96, 192, 1024), 1.0: (24, 116, 232, 464, 1024),
            1.5: (24, 176, 352, 704, 1024), 2.0: (24, 244, 488, 976, 2048)}
REPEATS = (4, 8, 4)  # units per stage, the first one with stride 2


@register("shufflenet_v2")
def shufflenet_v2(num_classes: int = 1000, in_channels: int = 3, width: float = 1.0,
                  image_size: int = 224) -> Layer:
    """ShuffleNet v2 at width 0.5, 1.0, 1.5 or 2.0 (the paper's four variants)."""
    if width not in CHANNELS:
        raise ValueError(f"shufflenet_v2: expected width in {sorted(CHANNELS)}, got {width}")
    conv1, *stages, conv5 = CHANNELS[width]
    stride = stem_stride(image_size)
    layers: list[Layer] = conv_bn(in_channels, conv1, 3, stride, act=ReLU)
    if stride == 2:
        layers.append(MaxPool2D(3, 2, padding=1))
    c = conv1
    for out, repeats in zip(stages, REPEATS, strict=True):
        for i in range(repeats):
            layers.append(ShuffleV2Unit(c, out, 2 if i == 0 else 1))
            c = out
    layers += conv_bn(c, conv5, 1, act=ReLU)
    return Sequential(*layers, *classifier(conv5, num_classes))


register("shufflenet_v2_slicesamp")(slicesamp_variant(shufflenet_v2, 224))
