import os
import sys

from minicnn.threads import THREAD_VARIABLES, configured_threads, set_thread_environment

# One BLAS thread unless the environment chose (as `minicnn tutorial` does, see minicnn.cli): NumPy
# reads this once, at import, and two spinning OpenBLAS threads stall many times over on a busy machine.
if not any(os.environ.get(name, "").strip() for name in THREAD_VARIABLES):
    set_thread_environment(1)
try:
    configured_threads()  # a bad value in the environment: one line naming the variable, exit 2
except ValueError as e:
    print(f"python -m tutorials: {e}", file=sys.stderr)
    sys.exit(2)

from . import main  # noqa: E402  (NumPy is imported here, after the thread setting)

sys.exit(main())
