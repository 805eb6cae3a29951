"""Kept only for `minicnn.app.frequency`, which still imports `positive_int` from here: the one
definition is `minicnn.functional.checks.positive_int`. Delete this file once that import moves."""

from minicnn.functional.checks import positive_int

__all__ = ["positive_int"]
