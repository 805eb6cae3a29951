"""The model registry: name -> constructor."""

from __future__ import annotations

from collections.abc import Callable

from minicnn.core import Layer

MODELS: dict[str, Callable[..., Layer]] = {}


def register(name: str):
    """Decorator: `@register("lenet5")` puts the constructor in MODELS under `name`."""

    def add(constructor: Callable[..., Layer]) -> Callable[..., Layer]:
        if name in MODELS:
            raise ValueError(f"register: model name {name!r} is already taken")
        MODELS[name] = constructor
        return constructor

    return add
