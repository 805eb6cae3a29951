"""Moved to `minicnn.app.train`. This alias (the same module object) stays only until the tutorials
import the new path; new code imports `minicnn.app.train`."""

import sys

from minicnn.app import train as _moved

sys.modules[__name__] = _moved
