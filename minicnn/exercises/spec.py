"""What an exercise is: its file template, its hints, and the cases its grader runs.

An exercise is one template file `minicnn/exercises/templates/NAME.py`: the instructions (equation,
shapes, a tiny worked example) in docstrings, and the engine's method written in the exercise's form
between `# BEGIN SOLUTION` and `# END SOLUTION` markers. The learner's stub is the template with each
marked block replaced by `raise NotImplementedError`; the solution is the template without the markers.

The grader runs a list of cases (fixed, documented ones, then random ones drawn fresh on every run),
each checked against the engine's own implementation:

    ValueCase  call one of the learner's functions on fixed inputs and compare every output with the
               engine's value (type, dtype, shape, values). A failing output is compared with known
               wrong answers (`Mistake`), so the hint can name the usual mistake.
    GradCase   build a Layer whose backward runs the learner's code and give it to the engine's
               float64 gradient checker (`minicnn.gradcheck.gradcheck`).

The learner's functions run in a child process (`runner.Session`) that receives only the inputs; the
cases, their expected values and their Mistakes stay in the grading process.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

TEMPLATES = Path(__file__).parent / "templates"
_BLOCK = re.compile(r"^( *)# BEGIN SOLUTION\n.*?^ *# END SOLUTION\n", re.M | re.S)
_MARKER = re.compile(r"^ *# (BEGIN|END) SOLUTION\n", re.M)
_DEF = re.compile(r"^def (\w+)\(", re.M)


@dataclass
class Mistake:
    """A known wrong answer for one output: if the learner's value equals `wrong()` (or, for a kind of
    answer rather than one value, `when(value)` is true), show `hint`."""

    output: str  # name of the output it explains, e.g. "dx"
    wrong: Callable[[], Any] | None  # computes the wrong answer for this case (only when a check fails)
    hint: str
    when: Callable[[Any], bool] | None = None


@dataclass
class ValueCase:
    """Call `function(*args, **kwargs)` from the learner's file; its result must equal `expected`.

    `expected` maps output names to the engine's values, in the order the function returns them (one
    entry: a single return value; several: a tuple). `exact` compares bit for bit (permutations, masks,
    integers); otherwise to `tol` relative and absolute. `run`, when given, replaces the plain call:
    run(functions) -> the outputs, `functions` a dict name -> the learner's function (to drive an
    optimizer step over several steps, or to chain two of the learner's functions).
    """

    label: str
    function: str
    args: tuple = ()
    expected: dict[str, Any] = field(default_factory=dict)
    mistakes: list[Mistake] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    tol: float = 1e-8
    exact: bool = False
    run: Callable[[dict[str, Callable]], Any] | None = None
    shape_hint: str = ""  # the hint for an output of the wrong shape that no Mistake explains
    match_rtol: float = 1e-6  # how close an output must be to a Mistake's value (looser for float32)


@dataclass
class GradCase:
    """Gradient-check `layer(functions)` on input `x` (float64) with the engine's checker.

    `layer` receives a dict name -> the learner's function and returns a minicnn Layer whose backward
    uses them. `uses` names the learner functions involved (shown in the table)."""

    label: str
    uses: str
    layer: Callable[[dict[str, Callable]], Any]
    x: Any


Case = ValueCase | GradCase


@dataclass
class Exercise:
    name: str
    chapter: int  # tutorial chapter it belongs to
    goal: str  # one line, shown by `list` and `watch`
    hints: tuple[str, ...]  # shown one at a time by `hint`, most general first
    engine: tuple[str, ...]  # the engine's code for it: "module:qualname"
    cases: Callable[[np.random.Generator], list[Case]]  # fixed cases, then random ones drawn from the rng
    forbidden: dict[str, str] = field(default_factory=dict)  # modules the child refuses: name -> rule
    numpy_forbidden: dict[str, str] = field(default_factory=dict)  # numpy functions refused: name -> rule

    @property
    def template_path(self) -> Path:
        return TEMPLATES / f"{self.name}.py"

    def template(self) -> str:
        return self.template_path.read_text()

    def stub(self) -> str:
        """The learner's starting file: every solution block replaced by `raise NotImplementedError`."""
        def blank(match: re.Match) -> str:
            return f"{match.group(1)}raise NotImplementedError  # your code here\n"
        return _BLOCK.sub(blank, self.template())

    def solution(self) -> str:
        """The template with the markers removed: the engine's method in the exercise's form."""
        return _MARKER.sub("", self.template())

    @property
    def functions(self) -> tuple[str, ...]:
        """Names of the functions the learner writes, in file order."""
        return tuple(_DEF.findall(self.template()))
