"""The training pieces that need no RLlib (pure torch): mask schedules, the QMIX TD(lambda) loss, epsilon, metrics.

The RLlib learner (``k24_rllib.algorithm.learner``) only forwards batches, the env-step counter and its optimiser
to these, so they are tested, and usable, without Ray.
"""

from k24_rllib.training.epsilon import epsilon_at
from k24_rllib.training.mask_controller import MaskController
from k24_rllib.training.metrics import mask_metrics
from k24_rllib.training.qmix_loss import TDLoss, qmix_td_loss
from k24_rllib.training.td_targets import lambda_returns

__all__ = ["MaskController", "TDLoss", "epsilon_at", "lambda_returns", "mask_metrics", "qmix_td_loss"]
