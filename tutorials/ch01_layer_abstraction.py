"""Chapter 1: the layer abstraction and the multiplicative layer, with a gradient check."""

from __future__ import annotations

import numpy as np

from minicnn import core
from minicnn import functional as F
from minicnn import layers as L
from minicnn.gradcheck import gradcheck, numeric_gradient, rel_errors

from ._runner import Step

TITLE = "The layer abstraction"
SUMMARY = "forward y = f(x; w), backward dz/dx = (dy/dx)ᵀ dz/dy; the multiplicative layer; a gradient check"


def _layer(t):
    t.code(core, end='"""')  # the module docstring: the layer abstraction in words
    t.say("Every layer implements forward and backward (Linear's are in the next steps); calling a "
          "layer runs its forward.")
    t.code(core.Layer.__call__)
    t.say("A network is layers in a row. Sequential runs forward left to right and the chain rule right "
          "to left: each layer turns dz/d(its output) into dz/d(its input).")
    t.code(core.Sequential.forward)
    t.code(core.Sequential.backward)
    core.manual_seed(0)
    net = core.Sequential(L.Linear(3, 4), L.ReLU(), L.Linear(4, 2))
    x = np.arange(6, dtype=np.float64).reshape(2, 3) / 6
    net.to(np.float64)
    y = net(x)
    dx = net.backward(np.ones_like(y))
    t.array("x", x)
    t.array("y = net(x)", y)
    t.array("dz/dx (dz/dy = 1)", dx)
    t.check_true(f"backward returns one gradient per input entry: shape {dx.shape} == {x.shape}", dx.shape == x.shape)


def _linear_forward(t):
    t.code(F.linear)
    t.code(L.Linear.forward)
    w = np.array([[1.0, 2.0, 0.0], [-1.0, 0.5, 3.0]])
    b = np.array([0.5, -1.0])
    x = np.array([[1.0, 2.0, 3.0]])
    y = F.linear(x, w, b)
    t.array("W", w)
    t.array("b", b)
    t.array("x", x)
    t.array("y = linear(x, W, b)", y)
    by_hand = [sum(w[i, j] * x[0, j] for j in range(3)) + b[i] for i in range(2)]
    t.say("By hand, y_i = Σ_j W_ij x_j + b_i: "
          + ", ".join(f"y_{i} = {by_hand[i]:g}" for i in range(2)) + ".")
    t.check("linear(x, W, b) equals Σ_j W_ij x_j + b_i written out", y[0], by_hand)
    layer = L.Linear(3, 2).to(np.float64)
    layer.weight.data, layer.bias.data = w, b
    t.check("the layer Linear(3, 2) with this W and b computes the same y", layer(x), y)


def _linear_dx(t):
    t.code(F.linear_backward)
    rng = np.random.default_rng(1)
    w = rng.standard_normal((2, 3)).round(2)
    x = rng.standard_normal((1, 3)).round(2)
    dy = np.array([[1.0, -2.0]])
    # the Jacobian dy/dx, one column per input entry: the response of linear() to a unit input
    jac = np.stack([F.linear(np.eye(3)[j:j + 1], w)[0] for j in range(3)], axis=1)
    dx, _, _ = F.linear_backward(dy, x, w)
    t.array("W", w)
    t.array("dy/dx (columns = linear(e_j))", jac)
    t.check("the Jacobian dy/dx of the multiplicative layer is W itself", jac, w)
    t.array("dz/dy", dy)
    t.array("dz/dx = linear_backward(...)[0]", dx)
    t.check("dz/dx equals (dy/dx)ᵀ dz/dy = Wᵀ dz/dy", dx[0], jac.T @ dy[0])


def _linear_dw(t):
    t.code(F.linear_backward, start="dw =", end="db =")
    t.code(L.Linear.backward)
    x = np.array([[1.0, 2.0, 3.0]])
    w = np.zeros((2, 3))
    dy = np.array([[0.5, -1.0]])
    _, dw, db = F.linear_backward(dy, x, w)
    t.array("x", x)
    t.array("dz/dy", dy)
    t.array("dz/dW = dy.T @ x", dw)
    t.check("∂z/∂W_ij = x_j · ∂z/∂y_i (the outer product dz/dy xᵀ)", dw, np.outer(dy[0], x[0]))
    t.check("dz/db = dz/dy", db, dy[0])
    t.say("With a batch, the rows are independent examples sharing one W, so their outer products add up. "
          "Layer.backward also ADDS into p.grad: calling it twice doubles the gradient.")
    core.manual_seed(0)
    layer = L.Linear(3, 2).to(np.float64)
    xb = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 1.0]])
    dyb = np.array([[0.5, -1.0], [2.0, 1.0]])
    layer(xb)
    layer.backward(dyb)
    once = layer.weight.grad.copy()
    layer.backward(dyb)
    t.check("batch dW = Σ_n dz/dy_n x_nᵀ", once, sum(np.outer(dyb[n], xb[n]) for n in range(2)))
    t.check("backward accumulates: after two calls weight.grad = 2 × one call", layer.weight.grad, 2 * once)


def _gradcheck(t):
    t.say("Is backward right? Compare it with central differences: nudge one entry by ±ε, rerun forward, "
          "and see how z changes. minicnn.gradcheck does this for the input and every parameter, in "
          "float64, and reports the WORST relative error.")
    t.code(numeric_gradient)
    core.manual_seed(0)
    layer = L.Linear(4, 3).to(np.float64)
    x = np.random.default_rng(0).standard_normal((2, 4))
    report = gradcheck(layer, x, name="Linear(4, 3)")
    t.gradcheck_table(report)
    t.print()
    t.check_true(f"Linear passes the gradient check: worst relative error {report.max_rel_error:.2e} < 1e-6",
                 report.ok and report.max_rel_error < 1e-6)

    class WrongLinear(L.Linear):
        """A deliberately broken backward: uses W where Wᵀ belongs (dx = dy Wᵀ instead of dy W)."""

        def backward(self, dy):
            x, w = self._cache
            self.weight.grad += dy.T @ x
            self.bias.grad += dy.sum(axis=0)
            return dy @ w.T

    t.say("Now a layer whose backward forgets the transpose (square W so the shapes still fit). The checker "
          "catches it at once:")
    core.manual_seed(0)
    bad = WrongLinear(3, 3).to(np.float64)
    bad_report = gradcheck(bad, np.random.default_rng(0).standard_normal((2, 3)), raise_on_fail=False,
                           name="WrongLinear")
    t.gradcheck_table(bad_report)
    t.print()
    t.check_true(f"the wrong backward is rejected: input error {bad_report.tensors[0].max_rel_error:.2f} ≥ 1e-6",
                 not bad_report.ok and bad_report.tensors[0].max_rel_error >= 1e-6)


def _chain(t):
    t.say("The same check on a whole network: two multiplicative layers and a nonlinearity. If every layer's "
          "backward is right, the chain rule in Sequential.backward makes the whole network's right. The "
          "checker reports the worst entry, never an average:")
    t.code(rel_errors)
    core.manual_seed(1)
    net = core.Sequential(L.Linear(3, 5), L.Tanh(), L.Linear(5, 2)).to(np.float64)
    x = np.random.default_rng(2).standard_normal((4, 3))
    report = gradcheck(net, x, name="Linear-Tanh-Linear")
    t.gradcheck_table(report)
    t.print()
    t.check_true(f"the network passes: worst relative error {report.max_rel_error:.2e} < 1e-6", report.ok)


STEPS = [
    Step("What a layer is", """
        Every layer is defined by two functions. Forward computes its output from its input and weights.
        Backward receives dz/dy, the gradient of the final loss z with respect to the layer's output, and
        returns dz/dx for the layer below, adding dz/dw into its parameters' gradients.""",
         "forward:   y = f(x; w)\n"
         "backward:  dz/dx = (dy/dx)ᵀ · dz/dy        dz/dw = (dy/dw)ᵀ · dz/dy", _layer),
    Step("The multiplicative layer: forward", """
        The fully-connected (multiplicative) layer multiplies by a matrix. In code a batch is stored as rows,
        so y = x Wᵀ + b computes y = W x + b for every row x.""",
         "y = W x + b            y_i = Σ_j W_ij x_j + b_i", _linear_forward),
    Step("Backward to the input: Wᵀ", """
        For y = W x the Jacobian dy/dx is W, so the gradient passed down is Wᵀ dz/dy. In row form:
        dx = dy @ w.""",
         "dy/dx = W        dz/dx = Wᵀ · dz/dy", _linear_dx),
    Step("Backward to the weights: dz/dy xᵀ", """
        Each weight W_ij touches one output y_i, scaled by x_j. So its gradient is x_j times dz/dy_i: an outer
        product.""",
         "∂z/∂W_ij = (dy/dW_ij)ᵀ dz/dy = x_j · ∂z/∂y_i        dz/dW = dz/dy · xᵀ        dz/db = dz/dy",
         _linear_dw),
    Step("A gradient check, in front of your eyes", """
        The analytic gradients above can be checked numerically, one entry at a time.""",
         "∂z/∂x_i ≈ ( z(x + ε eᵢ) − z(x − ε eᵢ) ) / 2ε          ε = 1e-6, float64\n"
         "rel. error = |analytic − numeric| / max(|analytic|, |numeric|, 1e-3)", _gradcheck),
    Step("Checking a whole chain", """
        Backprop through a stack is the layer abstraction applied again and again.""",
         "z(x) = z(f₃(f₂(f₁(x))))     dz/dx = J₁ᵀ J₂ᵀ J₃ᵀ dz/dy₃", _chain),
]
