"""Train K24QMix on a SMAC map (SMAX by default; --backend sc2 for real StarCraft II) or a SMACv2 scenario.

    python examples/train_smac.py --num-workers 8
    python examples/train_smac.py --map protoss_5_vs_5 --n-unit-types 3 --mask k24

The same command as ``k24-train`` (``k24_rllib.experiment.train_smac``).
"""

import sys

from k24_rllib.experiment import train_smac

if __name__ == "__main__":
    sys.exit(train_smac())
