"""RLlib glue (new API stack): config, RLModule, learner, algorithm, callbacks and Tune registration."""

from k24_rllib.algorithm.algorithm import K24QMix
from k24_rllib.algorithm.config import K24QMixConfig
from k24_rllib.algorithm.registration import ALGORITHM_NAMES, register_all

register_all()

__all__ = ["ALGORITHM_NAMES", "K24QMix", "K24QMixConfig", "register_all"]
