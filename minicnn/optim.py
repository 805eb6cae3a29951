"""Optimizers (the same update rules as PyTorch's) and learning-rate schedules.

A Parameter with a `mask` (0/1, see `minicnn.core.Parameter`) never has its masked entries changed:
the update and every optimizer buffer are multiplied by the mask, so weight decay and momentum
cannot revive an entry that was truncated (Zhao et al., "Frequency Regularization: Reducing Information
Redundancy in Convolutional Neural Networks", IEEE Access, 2023).
"""

from __future__ import annotations

import math

import numpy as np

from minicnn.core import Parameter


def _check_range(who: str, name: str, value: float, low: float, high: float) -> None:
    """ValueError unless low <= value < high (and value is a number, not NaN)."""
    if not (low <= value < high):
        upper = "" if high == math.inf else f" and < {high:g}"
        raise ValueError(f"{who}: expected {name} >= {low:g}{upper}, got {value}")


def _check_parameters(params, who: str) -> list[Parameter]:
    """The list of Parameters an optimizer updates: each a Parameter, each once (a parameter listed twice
    would be stepped twice per step), at least one. ValueError naming the position otherwise."""
    if isinstance(params, (np.ndarray, Parameter)):
        raise ValueError(f"{who}: expected an iterable of Parameters (e.g. model.parameters()), "
                         f"got a single {type(params).__name__}")
    params = list(params)
    if not params:
        raise ValueError(f"{who}: expected a non-empty list of Parameters, got none")
    seen: dict[int, int] = {}
    for i, p in enumerate(params):
        if not isinstance(p, Parameter):
            raise ValueError(f"{who}: expected Parameters (minicnn.core.Parameter), got a "
                             f"{type(p).__name__} at position {i}; wrap arrays as Parameter(array)")
        if id(p) in seen:
            raise ValueError(f"{who}: parameter at position {i} is the one at position {seen[id(p)]}: "
                             "each parameter may be listed once")
        seen[id(p)] = i
    return params


class Optimizer:
    """The common part of SGD and Adam: the parameter list, the learning rate, the step count.

    A parameter whose `grad` is None (it took no part in the loss, as PyTorch leaves it) is skipped by
    `step` and `zero_grad`; its buffers are not touched."""

    def __init__(self, params, lr: float):
        self.params: list[Parameter] = _check_parameters(params, type(self).__name__)
        _check_range(type(self).__name__, "lr", lr, 0.0, math.inf)
        self.lr = lr
        self.steps = 0

    def zero_grad(self) -> None:
        for p in self.params:
            if p.grad is not None:
                p.zero_grad()

    def step(self) -> None:
        self.steps += 1
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            delta = self.update(i, p)
            if p.mask is not None:
                delta *= p.mask
            p.data -= delta.astype(p.data.dtype, copy=False)

    def update(self, i: int, p: Parameter) -> np.ndarray:
        """The update rule alone: the amount `step` subtracts from parameter i (`p`, its gradient
        filled), advancing this optimizer's buffers for it. `step` counts the step (`self.steps` = t) before calling it,
        then applies the mask and the subtraction."""
        raise NotImplementedError

    def _masked(self, p: Parameter, buf: np.ndarray) -> np.ndarray:
        if p.mask is not None:
            buf *= p.mask
        return buf

    # Checkpointing: plain arrays and numbers, so they go into an .npz.
    def state_dict(self) -> dict[str, np.ndarray]:
        state = {"lr": np.array(self.lr), "steps": np.array(self.steps)}
        for key, bufs in self._buffers().items():
            for i, b in bufs.items():
                state[f"{key}.{i}"] = b.copy()
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore `state_dict()`. Every entry is checked first (names, buffer shapes against the
        parameters, finite values), so a damaged state raises ValueError and changes nothing."""
        who = f"{type(self).__name__}.load_state_dict"
        buffers = self._buffers()
        loaded: dict[str, dict[int, np.ndarray]] = {key: {} for key in buffers}
        for name, value in state.items():
            if name in ("lr", "steps"):
                continue
            prefix, _, idx = name.partition(".")
            if prefix not in buffers or not idx.isdigit() or int(idx) >= len(self.params):
                raise ValueError(f"{who}: unexpected entry '{name}' for {len(self.params)} parameters")
            value = np.asarray(value)
            expected = self.params[int(idx)].shape
            if value.shape != expected or not np.all(np.isfinite(value)):
                raise ValueError(f"{who}: '{name}' expected finite values of shape {expected}, got {value.shape}")
            loaded[prefix][int(idx)] = np.array(value, copy=True)
        missing = [k for k in ("lr", "steps") if k not in state]
        if missing:
            raise ValueError(f"{who}: missing {missing}")
        lr, steps = float(state["lr"]), int(state["steps"])
        _check_range(who, "lr", lr, 0.0, math.inf)
        if steps < 0:
            raise ValueError(f"{who}: expected steps >= 0, got {steps}")
        self.lr, self.steps = lr, steps
        for key, bufs in buffers.items():
            bufs.clear()
            bufs.update(loaded[key])

    def _buffers(self) -> dict[str, dict[int, np.ndarray]]:
        return {}


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, as PyTorch (dampening 0):

        g = grad + weight_decay * p
        v = g                      (first step)
        v = momentum * v + g       (later steps)
        g = g + momentum * v       if nesterov else  g = v
        p = p - lr * g
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False):
        super().__init__(params, lr)
        _check_range("SGD", "momentum", momentum, 0.0, 1.0)
        _check_range("SGD", "weight_decay", weight_decay, 0.0, math.inf)
        if nesterov and momentum <= 0:
            raise ValueError(f"SGD: nesterov needs momentum > 0, got momentum={momentum}")
        self.momentum, self.weight_decay, self.nesterov = momentum, weight_decay, nesterov
        self.velocity: dict[int, np.ndarray] = {}

    def update(self, i: int, p: Parameter) -> np.ndarray:
        """lr * v, the velocity v <- momentum v + g (v = g at the first step; Nesterov: g + momentum v)."""
        g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad.copy()
        if self.momentum:
            if i not in self.velocity:
                self.velocity[i] = g.copy()
            else:
                self.velocity[i] *= self.momentum
                self.velocity[i] += g
            v = self._masked(p, self.velocity[i])
            g = g + self.momentum * v if self.nesterov else v.copy()
        return self.lr * g

    def _buffers(self):
        return {"velocity": self.velocity}


class Adam(Optimizer):
    """Adam (Kingma & Ba), as PyTorch, with L2 weight decay added to the gradient:

        g = grad + weight_decay * p
        m = b1 m + (1 - b1) g;     v = b2 v + (1 - b2) g^2
        p = p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, lr)
        if len(betas) != 2:
            raise ValueError(f"Adam: expected betas (beta1, beta2), got {betas}")
        for i, beta in enumerate(betas):
            _check_range("Adam", f"betas[{i}]", beta, 0.0, 1.0)
        _check_range("Adam", "weight_decay", weight_decay, 0.0, math.inf)
        if not (math.isfinite(eps) and eps > 0):
            raise ValueError(f"Adam: expected eps > 0, got {eps}")
        self.betas, self.eps, self.weight_decay = tuple(betas), eps, weight_decay
        self.m: dict[int, np.ndarray] = {}
        self.v: dict[int, np.ndarray] = {}

    def update(self, i: int, p: Parameter) -> np.ndarray:
        """lr * m_hat / (sqrt(v_hat) + eps), after moving the moments m, v of parameter i by its gradient."""
        b1, b2 = self.betas
        g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
        if i not in self.m:
            self.m[i] = np.zeros_like(p.data)
            self.v[i] = np.zeros_like(p.data)
        m = self._masked(p, self.m[i])
        v = self._masked(p, self.v[i])
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * g * g
        t = self.steps
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        return self.lr * m_hat / (np.sqrt(v_hat) + self.eps)

    def _buffers(self):
        return {"m": self.m, "v": self.v}


# ---- learning-rate schedules: pure functions of the step count (nothing to checkpoint) ------


class StepLR:
    """lr(t) = base_lr * gamma ** (t // step_size)."""

    def __init__(self, base_lr: float, step_size: int, gamma: float = 0.1):
        if step_size < 1:
            raise ValueError(f"StepLR: expected step_size >= 1, got {step_size}")
        self.base_lr, self.step_size, self.gamma = base_lr, step_size, gamma

    def __call__(self, t: int) -> float:
        return self.base_lr * self.gamma ** (t // self.step_size)


class CosineLR:
    """lr(t) = min_lr + (base_lr - min_lr) * (1 + cos(pi * t / total)) / 2, for 0 <= t <= total."""

    def __init__(self, base_lr: float, total: int, min_lr: float = 0.0):
        if total < 1:
            raise ValueError(f"CosineLR: expected total >= 1, got {total}")
        self.base_lr, self.total, self.min_lr = base_lr, total, min_lr

    def __call__(self, t: int) -> float:
        t = min(t, self.total)
        return self.min_lr + (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * t / self.total)) / 2


class LinearWarmup:
    """lr(t) = after(t) * (t + 1) / warmup for t < warmup, then after(t).

    `after` is another schedule or a constant learning rate.
    """

    def __init__(self, after, warmup: int):
        if warmup < 0:
            raise ValueError(f"LinearWarmup: expected warmup >= 0, got {warmup}")
        self.after = after if callable(after) else (lambda t, lr=float(after): lr)
        self.warmup = warmup

    def __call__(self, t: int) -> float:
        lr = self.after(t)
        return lr * (t + 1) / self.warmup if t < self.warmup else lr
