import os
import sys

# One BLAS thread unless the caller chose (as `minicnn tutorial` does, see minicnn.cli): numpy reads
# this once, at import, and two spinning OpenBLAS threads stall many times over on a busy machine.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

from tutorials import main  # noqa: E402  (after the thread setting, which must precede numpy's import)

sys.exit(main())
