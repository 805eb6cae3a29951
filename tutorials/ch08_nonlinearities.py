"""Chapter 8: nonlinearities — ReLU, leaky ReLU, maxout."""

from __future__ import annotations

import numpy as np

from minicnn import core
from minicnn import functional as F
from minicnn import layers as L
from minicnn.gradcheck import gradcheck

from ._runner import Step

TITLE = "Nonlinearities"
SUMMARY = "ReLU, leaky ReLU f(x; α) = max(x, αx), maxout = max of affine pieces; why stacks need them"

XS = np.array([-2.0, -1.0, -0.5, 0.5, 1.0, 2.0])  # away from the kink at 0


def _collapse(t):
    t.code(F.linear)
    core.manual_seed(0)
    a, b = L.Linear(3, 4).to(np.float64), L.Linear(4, 2).to(np.float64)
    x = np.random.default_rng(0).standard_normal((5, 3))
    two = b(a(x))
    w = b.weight.data @ a.weight.data
    bias = b.weight.data @ a.bias.data + b.bias.data
    one = F.linear(x, w, bias)
    t.array("W₂ W₁", w)
    t.check("Linear(4,2)(Linear(3,4)(x)) equals ONE linear layer with W = W₂W₁, b = W₂b₁ + b₂", two, one)
    relu_net = core.Sequential(a, L.ReLU(), b)
    y = relu_net(x)
    gap = float(np.abs(y - one).max())
    t.check_true(f"with a ReLU between them the stack is no longer that linear map (max gap {gap:.3f})", gap > 1e-3)


def _relu(t):
    t.code(F.relu)
    t.code(F.relu_backward)
    y, d = F.relu(XS), F.relu_backward(np.ones_like(XS), XS)
    t.table(["x"] + [f"{v:g}" for v in XS], [["relu(x)"] + list(y), ["relu'(x)"] + list(d)])
    t.check("relu(x) = max(x, 0)", y, np.maximum(XS, 0))
    report = gradcheck(L.ReLU(), XS.reshape(1, -1))
    t.check_true(f"ReLU backward passes the gradient check (worst rel. error {report.max_rel_error:.1e})", report.ok)


def _leaky(t):
    t.code(F.leaky_relu)
    t.code(F.leaky_relu_backward)
    alpha = 0.1
    y, d = F.leaky_relu(XS, alpha), F.leaky_relu_backward(np.ones_like(XS), XS, alpha)
    t.table(["x"] + [f"{v:g}" for v in XS], [["leaky(x)"] + list(y), ["leaky'(x)"] + list(d)])
    t.check(f"leaky_relu(x, α={alpha}) equals the lecture's max(x, αx)", y, np.maximum(XS, alpha * XS))
    t.check("the slope is α for x < 0 and 1 for x > 0", d, np.where(XS > 0, 1.0, alpha))
    report = gradcheck(L.LeakyReLU(alpha), XS.reshape(1, -1))
    t.check_true(f"LeakyReLU passes the gradient check (worst rel. error {report.max_rel_error:.1e})", report.ok)


def _maxout(t):
    t.code(F.maxout)
    t.say("Maxout takes the max over groups of channels; the affine pieces αₖx + βₖ are the outputs of the "
          "layer below. Here a Linear(1 → 3) layer supplies three lines and Maxout(3) keeps the largest:")
    core.manual_seed(0)
    alphas, betas = np.array([-1.0, 0.3, 2.0]), np.array([0.0, 0.5, -1.0])
    lin = L.Linear(1, 3).to(np.float64)
    lin.weight.data[:, 0], lin.bias.data[:] = alphas, betas
    net = core.Sequential(lin, L.Maxout(3))
    xs = np.linspace(-2, 2, 9)
    y = net(xs.reshape(-1, 1))[:, 0]
    want = np.max(alphas[None, :] * xs[:, None] + betas[None, :], axis=1)
    t.table(["x"] + [f"{v:g}" for v in xs], [["maxout"] + list(y)])
    t.check("Maxout(Linear(x)) equals max_k(α_k x + β_k)", y, want)
    relu_pieces = core.Sequential(L.Linear(1, 2).to(np.float64), L.Maxout(2))
    relu_pieces[0].weight.data[:, 0], relu_pieces[0].bias.data[:] = [0.0, 1.0], [0.0, 0.0]
    t.check("with pieces 0·x and 1·x maxout IS the ReLU", relu_pieces(XS.reshape(-1, 1))[:, 0], F.relu(XS))
    report = gradcheck(L.Maxout(3), np.array([[0.3, -1.2, 2.1, 0.7, 1.5, -0.4]]))
    t.check_true(f"Maxout passes the gradient check (worst rel. error {report.max_rel_error:.1e})", report.ok)
    plt = t.pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    grid = np.linspace(-2, 2, 201)
    ax.plot(grid, F.relu(grid), label="ReLU")
    ax.plot(grid, F.leaky_relu(grid, 0.1), "--", label="leaky ReLU, α = 0.1 (= ReLU for x > 0)")
    ax.plot(grid, net(grid.reshape(-1, 1))[:, 0], label="maxout of 3 lines")
    ax.axhline(0, color="0.8", lw=0.8)
    ax.legend(fontsize=8, loc="upper center")
    ax.set_title("nonlinearities (chapter 8)")
    t.save_figure(fig, "nonlinearities")


STEPS = [
    Step("Why a nonlinearity at all", """
        Layers are stacked and interleaved with nonlinearities. Without them, two multiplicative layers are
        just one multiplicative layer: depth buys nothing.""",
         "W₂(W₁x + b₁) + b₂ = (W₂W₁) x + (W₂b₁ + b₂)", _collapse),
    Step("ReLU", """
        The rectified linear unit passes positive values and zeroes the rest. Its backward lets the gradient
        through where the input was positive.""",
         "f(x) = max(x, 0)        f'(x) = 1 if x > 0 else 0", _relu),
    Step("Leaky ReLU", """
        Leaky ReLU keeps a small slope α for negative inputs, so a unit that is 'off' still passes some
        gradient.""",
         "f(x; α) = max(x, αx)    (0 ≤ α < 1)        f'(x) = 1 if x > 0 else α", _leaky),
    Step("Maxout", """
        A formerly popular nonlinearity: the max of several affine functions, learned by the layer below. It
        can represent ReLU, leaky ReLU, |x|, and any convex piecewise-linear function.""",
         "f(x) = max(α₁x + β₁, α₂x + β₂, …, α_m x + β_m)", _maxout),
]
