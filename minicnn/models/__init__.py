"""Architectures built from `minicnn.layers`.

Every model is a constructor `name(num_classes=..., in_channels=..., width=..., **options) -> Layer`
registered in MODELS with the `register` decorator, so `minicnn train --model NAME` and
`minicnn summary NAME` find it. `build(name, **config)` is the one way to build one (strict about
options); `config_for(name, (C, H, W), num_classes=..., ...)` picks the options a model takes;
`default_input(name)` is the (C, H, W) it is made for (its default in_channels and image_size).
"""

from . import classic, inception, mobilenet, resnet, shufflenet, small, unet, xception  # noqa: F401  (registers)
from ._registry import MODELS, build, check_name, config_for, default_input, register

# isort: split
from . import lenet, lenet_caffe  # noqa: F401  (registers lenet5, lenet5_caffe)
