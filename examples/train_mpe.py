"""Train K24QMix on an MPE task (mpe2; simple_spread by default).

    python examples/train_mpe.py --num-workers 2 --stop-timesteps 100000
"""

import sys

from k24_rllib.experiment import main

if __name__ == "__main__":
    sys.exit(main("mpe", "simple_spread", __doc__))
