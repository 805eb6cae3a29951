"""Architectures built from `minicnn.layers`.

Every model is a constructor `name(num_classes=..., in_channels=..., width=..., **options) -> Layer`
registered in MODELS with the `register` decorator, so `minicnn train --model NAME` and
`minicnn summary NAME` find it.
"""

from . import classic, inception, mobilenet, resnet, shufflenet, small, xception  # noqa: F401  (registers)
from ._registry import MODELS, register

# isort: split
from . import lenet  # noqa: F401  (registers lenet5)
