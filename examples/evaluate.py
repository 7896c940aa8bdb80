"""Greedy evaluation of a saved K24QMix run, with its mask pattern and sparsity statistics.

    python examples/evaluate.py --checkpoint results/<run>/checkpoint --episodes 32

The command is ``k24_rllib.evaluate.main``.
"""

import sys

from k24_rllib.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
