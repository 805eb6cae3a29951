"""The layer abstraction: Parameter, Layer, Sequential.

The lecture's "layer abstraction": a layer is a function y = f(x; w) that knows two things,

    forward:   y = f(x; w)
    backward:  given dz/dy, return dz/dx = (dy/dx)^T dz/dy  and accumulate dz/dw = (dy/dw)^T dz/dy

Every layer caches in `forward` exactly what its `backward` needs, and `backward` *adds* into
each parameter's `.grad` (so a parameter used twice receives both contributions), then returns dx.

Also here: the engine-wide random generator (`manual_seed`, `rng`) used by weight initialisation,
dropout and data shuffling, so that one seed reproduces a whole run. `Layer.save` / `Layer.load` write
and read through `minicnn.files`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import numpy as np

from minicnn.files import read_npz, save_npz_atomic

DEFAULT_DTYPE = np.float32
REAL_KINDS = "biuf"  # dtype kinds load_state_dict accepts: bool, int, unsigned int, float

_RNG = np.random.default_rng(0)


def manual_seed(seed: int) -> None:
    """Reseed the engine-wide generator (weight init, dropout, shuffling)."""
    global _RNG
    _RNG = np.random.default_rng(seed)


def rng() -> np.random.Generator:
    """The engine-wide generator. Its state is saved in checkpoints (`rng().bit_generator.state`).
    Inside `unfilled_weights()`: a stand-in whose draws are zeros (see there)."""
    return _UNFILLED if _UNFILLED.active else _RNG


class _ZeroDraws:
    """Stands in for the generator while `unfilled_weights()` is on: `uniform(low, high, size)` gives
    zeros (np.zeros: fresh pages that stay unwritten until used), and the engine generator is not advanced."""

    active = False

    def uniform(self, low: float = 0.0, high: float = 1.0, size=None) -> np.ndarray:
        return np.zeros(size)


_UNFILLED = _ZeroDraws()


def filling_weights() -> bool:
    """False inside `unfilled_weights()`: a weight initialiser may then return zeros without drawing."""
    return not _UNFILLED.active


@contextlib.contextmanager
def unfilled_weights() -> Iterator[None]:
    """Build models to count them, not to run them: while on, weight initialisation draws zeros from `rng()`
    instead of random numbers, so building is fast and the engine generator's state is left as it was.
    Shapes, parameter counts and multiply-adds are those of a normal build (`minicnn models` uses it);
    the weights are all zero, so do not train such a model.
    """
    _UNFILLED.active = True
    try:
        yield
    finally:
        _UNFILLED.active = False


def check_grad(dy, shape: tuple[int, ...], who: str) -> None:
    """A backward rule's dy must have `shape`, that of the forward output: nothing is broadcast. Here, in
    the lowest tier, so that layers (`Layer.check_dy`) and `minicnn.functional` share it."""
    if np.shape(dy) != tuple(shape):
        raise ValueError(f"{who}: expected dy of shape {tuple(shape)} (the output), got {np.shape(dy)}")


class NotReadyError(AttributeError):
    """A layer attribute that forward sets is read before forward ran (e.g. backward first)."""


class Parameter:
    """A learnable tensor: `data` and its accumulated gradient `grad` (same shape, same dtype).

    `mask` (optional, same shape, 0/1) marks entries that must stay exactly zero: optimizers multiply
    every update and every optimizer buffer by it (used by the frequency-domain layers of Zhao et al.,
    "Frequency Regularization", 2023).

    Assigning `data` keeps `grad` in step: an array of another shape gets a fresh zero gradient, one of
    another dtype gets the gradient converted (so float64 work never accumulates in a float32 `grad`).
    """

    def __init__(self, data: np.ndarray, mask: np.ndarray | None = None):
        self.grad = np.zeros(0, DEFAULT_DTYPE)  # the data setter gives it data's shape and dtype
        self.data = data
        self.mask = mask

    @property
    def data(self) -> np.ndarray:
        return self._data

    @data.setter
    def data(self, value: np.ndarray) -> None:
        value = np.asarray(value)
        if not np.issubdtype(value.dtype, np.floating):
            value = value.astype(DEFAULT_DTYPE)
        if self.grad.shape != value.shape:
            self.grad = np.zeros(value.shape, value.dtype)  # calloc: no memory used until written
        elif self.grad.dtype != value.dtype:
            self.grad = self.grad.astype(value.dtype)
        self._data = value

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def size(self) -> int:
        return self.data.size

    def zero_grad(self) -> None:
        self.grad[...] = 0

    def to(self, dtype) -> Parameter:
        self.data = self.data.astype(dtype)  # the setter converts grad too
        return self

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Layer:
    """Base class. Subclasses implement `forward(x)` and `backward(dy)`.

    Attributes that are `Parameter`s or `Layer`s are registered in assignment order, which fixes the
    order of `parameters()` and the names in `state_dict()` (e.g. ``"0.weight"``, ``"body.1.bias"``).
    Non-learnable state that must be saved (BatchNorm running statistics) is declared with
    `register_buffer`.

    What `forward` caches for `backward` (and scratch memory reused between calls) lives in the
    attributes named by the class tuple `TRANSIENT`; a layer that caches under other names extends
    it, e.g. ``TRANSIENT = Layer.TRANSIENT + ("_workspace",)``. `release()` drops them all, in
    every sub-layer. Reading a private attribute that is not set (typically: `backward` before
    `forward`, or after `release()`) raises `NotReadyError` naming the layer and the attribute.
    """

    TRANSIENT: tuple[str, ...] = ("_cache",)

    def __init__(self) -> None:
        object.__setattr__(self, "_params", {})
        object.__setattr__(self, "_children", {})
        object.__setattr__(self, "_buffers", [])
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value) -> None:
        if "_params" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before assigning {name}")
        # Re-assigning keeps the original position (a replaced child stays where it was).
        if isinstance(value, Parameter):
            self._children.pop(name, None)
            self._params[name] = value
        elif isinstance(value, Layer):
            self._params.pop(name, None)
            self._children[name] = value
        else:
            self._params.pop(name, None)
            self._children.pop(name, None)
        object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        # Only called when normal lookup fails. Private names are what forward caches for backward.
        if name.startswith("_") and not name.startswith("__"):
            raise NotReadyError(f"{type(self).__name__}: '{name}' is not set; forward stores it for backward "
                                f"(and release() drops it) — call forward before backward")
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def register_buffer(self, name: str, value: np.ndarray) -> None:
        """Declare a saved, non-learnable array attribute (e.g. running_mean)."""
        if name not in self._buffers:
            self._buffers.append(name)
        object.__setattr__(self, name, value)

    # --- the two methods every layer implements -------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def backward(self, dy: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__}.backward")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def check_dy(self, dy, shape: tuple[int, ...]) -> None:
        """ValueError unless dy has `shape`, the shape forward returned: backward never broadcasts dy
        (`check_grad`, naming "<Layer>.backward")."""
        check_grad(dy, shape, f"{type(self).__name__}.backward")

    # --- traversal ------------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Layer]]:
        yield from self._children.items()

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for name, p in self._params.items():
            yield prefix + name, p
        for name, child in self._children.items():
            yield from child.named_parameters(prefix + name + ".")

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for name in self._buffers:
            yield prefix + name, getattr(self, name)
        for name, child in self._children.items():
            yield from child.named_buffers(prefix + name + ".")

    def modules(self) -> Iterator[Layer]:
        """This layer and every layer inside it, depth first."""
        yield self
        for child in self._children.values():
            yield from child.modules()

    # --- modes and gradients --------------------------------------------------------------
    def train(self, mode: bool = True) -> Layer:
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Layer:
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def to(self, dtype) -> Layer:
        """Convert every parameter and floating buffer to `dtype` (e.g. np.float64 for gradcheck)."""
        for p in self.parameters():
            p.to(dtype)
        for m in self.modules():
            for name in m._buffers:
                value = getattr(m, name)
                if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
                    object.__setattr__(m, name, value.astype(dtype))
        return self

    def release(self) -> Layer:
        """Drop what forward cached and any scratch memory, in this layer and every sub-layer.

        Each attribute named in a module's `TRANSIENT` is deleted, except a dict (a scratch
        workspace the layer passes around by reference), which is emptied in place. Parameters,
        buffers and settings are kept; the next forward rebuilds the rest.
        """
        for m in self.modules():
            for name in type(m).TRANSIENT:
                value = m.__dict__.get(name)
                if isinstance(value, dict):
                    value.clear()
                elif name in m.__dict__:
                    object.__delattr__(m, name)
        return self

    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    # --- saving ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Name -> copy of every parameter and buffer."""
        state = {name: p.data.copy() for name, p in self.named_parameters()}
        state.update({name: np.array(b, copy=True) for name, b in self.named_buffers()})
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays into this layer. Names and shapes must match exactly; the values must be real
        numbers (bool, int or float: complex, strings and objects are refused, never cast)."""
        params = dict(self.named_parameters())
        owners = {}
        for m_prefix, m in _named_modules(self):
            for name in m._buffers:
                owners[m_prefix + name] = (m, name)
        expected = set(params) | set(owners)
        missing, unexpected = expected - set(state), set(state) - expected
        if missing or unexpected:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: expected keys {sorted(expected)}, "
                f"missing {sorted(missing)}, unexpected {sorted(unexpected)}"
            )
        for name, value in state.items():
            value = np.asarray(value)
            if value.dtype.kind not in REAL_KINDS:
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: '{name}' expected real numbers, got {value.dtype}"
                    + (" (its imaginary part would be dropped)" if value.dtype.kind == "c" else "")
                )
            current = params[name].data if name in params else getattr(*owners[name])
            if np.shape(current) != value.shape:
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: '{name}' expected shape "
                    f"{np.shape(current)}, got {value.shape}"
                )
        for name, value in state.items():
            if name in params:
                p = params[name]
                p.data = np.array(value, dtype=p.data.dtype, copy=True)
            else:
                m, attr = owners[name]
                object.__setattr__(m, attr, np.array(value, copy=True))

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Write `state_dict()` to an `.npz` file atomically (temporary file, then rename), by the file
        rule of `minicnn.files.safe_target`: an existing file that this process did not write is replaced
        only with `overwrite` (else FileExistsError); a folder, device, FIFO or link never."""
        save_npz_atomic(path, self.state_dict(), overwrite=overwrite)

    def load(self, path: str | os.PathLike) -> None:
        """Read a file written by `save`. A damaged or foreign file raises `minicnn.files.FileFormatError`."""
        self.load_state_dict(read_npz(path, what="layer state"))

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._children.items():
            lines.append(f"  ({name}): " + repr(child).replace("\n", "\n  "))
        return lines[0] + ")" if len(lines) == 1 else "\n".join(lines) + "\n)"


def _named_modules(layer: Layer, prefix: str = "") -> Iterator[tuple[str, Layer]]:
    yield prefix, layer
    for name, child in layer._children.items():
        yield from _named_modules(child, prefix + name + ".")


class Sequential(Layer):
    """Layers applied in order. forward: x -> l1 -> l2 -> ...; backward: the chain rule in reverse."""

    def __init__(self, *layers: Layer):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise ValueError(f"Sequential: expected Layer objects, got {type(layer).__name__} at {i}")
            setattr(self, str(i), layer)

    @property
    def layers(self) -> list[Layer]:
        return list(self._children.values())

    def __len__(self) -> int:
        return len(self._children)

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self._children.values():
            x = layer.forward(x)
        return x

    def backward(self, dy: np.ndarray) -> np.ndarray:
        for layer in reversed(self._children.values()):
            dy = layer.backward(dy)
        return dy
