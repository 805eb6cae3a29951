"""Walk a network without running it: every leaf in execution order, with its input and output shape.

`walk(model, (C, H, W), visitor)` folds over the containers (Sequential and its subclasses, layers with
`runs_children_in_order`, Residual, Concat) and asks each leaf for its shape through the protocol of
`minicnn.layers.shapes`; nothing is run, and a leaf that does not answer is refused by name.
`minicnn.analysis` counts a network with it; models size their heads (`output_shape(features, (C, H, W))`)
and rewrite themselves (SliceSamp) with it.
"""

from __future__ import annotations

from typing import Any

from minicnn.core import Layer, Sequential

from .blocks import Concat, Residual
from .shapes import Shape, answers


class Visitor:
    """What `walk` reports. `state` is threaded through the walk (e.g. the receptive field so far);
    the defaults carry it unchanged."""

    def leaf(self, name: str, layer: Layer, in_shape: Shape, out_shape: Shape, state: Any) -> Any:
        """A layer that computes (not a container), in execution order."""
        return state

    def join(self, name: str, label: str, in_shape: Shape, out_shape: Shape, states: list[Any]) -> Any:
        """Where parallel branches meet ("Residual (+)" or "Concat"), after the branches' leaves."""
        return states[0]


def walk(layer: Layer, input_shape: Shape, visitor: Visitor | None = None, name: str = "",
         state: Any = None) -> tuple[Shape, Any]:
    """Trace `layer` for one input of `input_shape` -> (output shape, final state), calling `visitor`
    for every leaf and every join. Names are those of `state_dict` ("3", "body.0", "2.concat")."""
    visitor = visitor or Visitor()
    shape = tuple(int(v) for v in input_shape)
    prefix = name + "." if name else ""
    if isinstance(layer, Sequential) or getattr(layer, "runs_children_in_order", False):
        for child_name, child in layer.named_children():
            shape, state = walk(child, shape, visitor, prefix + child_name, state)
        return shape, state
    if isinstance(layer, Residual):
        body, body_state = walk(layer.body, shape, visitor, prefix + "body", state)
        short, short_state = (shape, state) if layer.shortcut is None else \
            walk(layer.shortcut, shape, visitor, prefix + "shortcut", state)
        if body != short:
            raise ValueError(f"Residual {name}: body gives {body}, shortcut gives {short}")
        return body, visitor.join(prefix + "add", "Residual (+)", shape, body, [body_state, short_state])
    if isinstance(layer, Concat):
        outs = [walk(b, shape, visitor, prefix + child_name, state) for child_name, b in layer.named_children()]
        if len({s[1:] for s, _ in outs}) != 1:
            raise ValueError(f"Concat {name}: expected branch outputs that differ only in channels, got "
                             f"{[s for s, _ in outs]}")
        out = (sum(s[0] for s, _ in outs),) + outs[0][0][1:]
        return out, visitor.join(prefix + "concat", "Concat", shape, out, [s for _, s in outs])
    if not answers(layer):
        where = f" {name}" if name else ""
        raise ValueError(f"{type(layer).__name__}{where}: expected a layer that answers output_shape() and window() "
                         f"(minicnn.layers.shapes), or a Sequential, Residual or Concat of such layers")
    out = tuple(layer.output_shape(shape))
    return out, visitor.leaf(name, layer, shape, out, state)


def output_shape(layer: Layer, input_shape: Shape) -> Shape:
    """The output shape of any layer or network for one input of `input_shape` (no batch axis)."""
    return walk(layer, input_shape)[0]
