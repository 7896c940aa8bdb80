"""The usage guide's extension points, on RLlib: a custom diversity loss passed through the config, a custom
temperature schedule, 4:8 masks, and a subclassed learner that logs an extra metric.

    python examples/extend.py                   # a few iterations on the coordination toy env (seconds)
    python examples/extend.py --iterations 20

Each piece is one keyword of ``K24QMixConfig.training()``; nothing in the package is edited or monkey-patched.
A class given by import path ("package.module:Class") reaches remote workers too; classes defined in a script's
``__main__``, as here, are fine while everything runs in one process (``num_env_runners=0``).
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
from torch import nn

from k24_rllib import K24QMixConfig
from k24_rllib.algorithm.learner import K24QMixLearner
from k24_rllib.sparsity import DiversityLoss


class KLToUniformLoss(DiversityLoss):
    """The guide's example loss: KL(pi || uniform) of every mask's pattern distribution, averaged over groups.

    It keeps each agent's choice uncommitted (near uniform); it does not compare agents with each other. The
    base class combines layers (weights, normalisation); a subclass only says what one layer's loss is.
    """

    normalise = True

    def layer_loss(self, layer: nn.Module) -> torch.Tensor:
        probs = layer.pattern_probs(detach_weight=True)  # [n_masks, out, groups, P]
        return (probs * (probs.clamp_min(1e-12) * probs.shape[-1]).log()).sum(-1).mean()


def exponential_temperature(fraction: float) -> float:
    """Geometric decay from 5.0 to 0.1 over the annealing window (``fraction`` goes 0 -> 1 inside it)."""
    return 5.0 * (0.1 / 5.0) ** fraction


class AlphaSpreadLearner(K24QMixLearner):
    """Logs how far apart the agents' pattern preferences are: the std over agents of alpha, mean over weights.

    The argmax patterns follow |W| * EMA * sigmoid(alpha); only alpha differs between agents, so this spread is
    what lets them choose differently (docs/k24.md, "Diversity").
    """

    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        super().after_gradient_based_update(timesteps=timesteps)
        for module_id in self.controllers:
            layers = self.module[module_id].unwrapped().agent.masked_layers()
            spread = sum(float(layer.alpha.detach().std(dim=0).mean()) for layer in layers) / max(len(layers), 1)
            self.metrics.log_value((module_id, "alpha_spread"), spread, reduce="item")


def build_config(t_max: int) -> K24QMixConfig:
    return (
        K24QMixConfig()
        .environment("coordination", env_config={"n_agents": 3, "episode_limit": 10})
        .env_runners(num_env_runners=0, num_envs_per_env_runner=1, rollout_fragment_length=50)
        .training(
            mask="k24",
            K24_args={"n": 4, "m": 8},  # 4:8 masks: 70 patterns per group of 8
            diversity_loss=KLToUniformLoss,  # or its import path, "my_package.losses:KLToUniformLoss"
            temperature_schedule=exponential_temperature,
            learner_class=AlphaSpreadLearner,
            t_max=t_max,
            train_batch_size_per_learner=64,
            num_steps_sampled_before_learning_starts=100,
            training_intensity=2.0,
        )
        .reporting(min_sample_timesteps_per_iteration=200)
        .debugging(seed=0)
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Trains a few iterations and returns the last result's learner metrics."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=3)
    args = parser.parse_args(argv)
    from k24_rllib.experiment import init_ray

    init_ray(None)
    algo = build_config(t_max=args.iterations * 200).build_algo()
    try:
        for _ in range(args.iterations):
            learner = algo.train()["learners"]["default_policy"]
        agent = algo.get_module().agent  # the acting copy: same settings, the learner's weights
        print(f"diversity loss {type(agent.diversity).__name__} = {learner['div_loss']:.4f} | "
              f"temperature {learner['temperature']:.3f} (progress {learner['progress']:.2f}) | "
              f"patterns per group {agent.fc1.patterns.shape[0]} | alpha_spread {learner['alpha_spread']:.4f}")
    finally:
        algo.stop()
    return learner


if __name__ == "__main__":
    main()
