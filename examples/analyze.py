"""Pictures of what the masks of a saved K24QMix run learned: pattern maps, similarity, usage, sparsity.

    python examples/analyze.py --checkpoint results/<run>/checkpoint [--output DIR]

The same command as ``k24-analyze`` (``k24_rllib.analyze.main``; the checkpoint lookup is
``k24_rllib.checkpoints``).
"""

import sys

from k24_rllib.analyze import main

if __name__ == "__main__":
    sys.exit(main())
