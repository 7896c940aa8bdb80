"""Run a Ray Tune grid of K24QMix described by a YAML file (see tune_configs/ and k24_rllib/sweep.py).

    python examples/sweep.py tune_configs/compare_3m.yaml --output results/sweeps
    python examples/sweep.py tune_configs/k24_guide_grid.yaml --address auto --num-samples 2

The same command as ``k24-sweep`` (``k24_rllib.sweep.main``).
"""

import sys

from k24_rllib.sweep import main

if __name__ == "__main__":
    sys.exit(main())
