"""Train K24QMix on an MPE task (mpe2; simple_spread by default).

    python examples/train_mpe.py --num-workers 2 --stop-timesteps 100000

The same command as ``k24-train-mpe`` (``k24_rllib.experiment.train_mpe``).
"""

import sys

from k24_rllib.experiment import train_mpe

if __name__ == "__main__":
    sys.exit(train_mpe())
