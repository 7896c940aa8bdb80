"""Greedy evaluation of a saved K24QMix run, with its mask pattern and sparsity statistics.

    python examples/evaluate.py --checkpoint results/<run>/checkpoint --episodes 32

The same command as ``k24-evaluate`` (``k24_rllib.evaluate.main``).
"""

import sys

from k24_rllib.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
