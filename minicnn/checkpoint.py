"""Moved to `minicnn.app.checkpoint`. This alias (the same module object) stays only until the tutorials
import the new path; new code imports `minicnn.app.checkpoint`."""

import sys

from minicnn.app import checkpoint as _moved

sys.modules[__name__] = _moved
