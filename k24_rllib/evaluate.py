"""Greedy evaluation of a saved K24QMix run, with its mask pattern and sparsity statistics.

    k24-evaluate --checkpoint results/<run>/checkpoint --episodes 32
    python examples/evaluate.py --checkpoint results/<run>/checkpoint --episodes 32   (the same command)
"""

from __future__ import annotations

import argparse
from typing import Sequence

from k24_rllib.algorithm.evaluation import run_greedy_episodes
from k24_rllib.cli import run_cli
from k24_rllib.envs import make_env
from k24_rllib.experiment import check_checkpoint, init_ray, restore


@run_cli
def main(argv: Sequence[str] | None = None) -> int:
    """``k24-evaluate`` and ``examples/evaluate.py``: the path is checked before Ray starts."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="an RLlib checkpoint dir (results/<run>/checkpoint)")
    parser.add_argument("--episodes", type=int, default=32)
    parser.add_argument("--seed", type=int, default=10_000, help="first episode seed (distinct from training)")
    args = parser.parse_args(argv)
    check_checkpoint(args.checkpoint)
    init_ray(None)
    algo = restore(args.checkpoint)
    module = algo.get_module()
    env = make_env(algo.config.env, **dict(algo.config.env_config))
    result = run_greedy_episodes(module, env, args.episodes, seed=args.seed)
    win = "n/a" if result.win_rate is None else f"{result.win_rate:.3f}"
    print(f"episodes {result.episodes} | win rate {win} | return {result.return_mean:.3f} | "
          f"length {result.length_mean:.1f}")
    agent = module.agent
    stats = agent.get_pattern_stats()
    per_layer, _, overall = agent.get_sparsities()
    print("pattern stats:", {k: (round(v, 4) if isinstance(v, float) else v) for k, v in stats.items()})
    print("sparsity per layer:", [round(s, 4) for s in per_layer], "| overall:", round(overall, 4))
    algo.stop()
    return 0
