"""Moved to `minicnn.app.frequency`. This alias (the same module object) stays only until the tutorials
import the new path; new code imports `minicnn.app.frequency`."""

import sys

from minicnn.app import frequency as _moved

sys.modules[__name__] = _moved
