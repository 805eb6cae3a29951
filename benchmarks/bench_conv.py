"""Convolution benchmark as a script: `python benchmarks/bench_conv.py [--quick]`.

Same as `minicnn bench conv [--quick]` (the code lives in `minicnn/commands/bench.py`).
"""

import sys

from minicnn.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "conv", *sys.argv[1:]]))
