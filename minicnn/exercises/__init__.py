"""Exercises: the learner writes each equation of the course; the engine grades it.

`minicnn exercise list | start | check | hint | watch | solution` (see `minicnn.commands.exercise`).
Each exercise is a template in `templates/` (stub and solution at once, see `spec.Exercise`) and a
list of graded cases in `catalog` (fixed ones, random ones drawn fresh on every run, float32 twins)
whose expected values come from the engine's own functions. `grading.grade` keeps those values in the
grading process; the learner's file runs in a child process (`child.py`, driven by `runner.Session`)
that receives only the inputs and refuses imports of minicnn and of the SciPy routines an exercise
forbids.

Library API (stable names):
    EXERCISES              every Exercise, in course order
    names()                their names, in course order
    get(name)              one Exercise (ValueError naming the choices for an unknown name)
    for_chapter(n)         names of the exercises of tutorial chapter n
"""

from __future__ import annotations

from minicnn.exercises.catalog import EXERCISES
from minicnn.exercises.spec import Exercise

__all__ = ["EXERCISES", "Exercise", "for_chapter", "get", "names"]


def names() -> list[str]:
    """Exercise names in course order."""
    return [e.name for e in EXERCISES]


def get(name: str) -> Exercise:
    """The exercise called `name`; ValueError listing the choices otherwise."""
    for e in EXERCISES:
        if e.name == name:
            return e
    raise ValueError(f"exercise: unknown exercise {name!r}; choose one of: {', '.join(names())}")


def for_chapter(n: int) -> list[str]:
    """Names of the exercises that belong to tutorial chapter `n` (in course order; [] if none)."""
    return [e.name for e in EXERCISES if e.chapter == n]
