"""Train K24QMix on a SMAC map (SMAX by default; --backend sc2 for real StarCraft II) or a SMACv2 scenario.

    python examples/train_smac.py --num-workers 8
    python examples/train_smac.py --map protoss_5_vs_5 --n-unit-types 3 --mask k24
"""

import sys

from k24_rllib.experiment import main

if __name__ == "__main__":
    sys.exit(main("smac", "3m", __doc__))
