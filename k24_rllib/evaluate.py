"""Greedy evaluation of a saved K24QMix run, with its mask pattern and sparsity statistics.

    k24-evaluate --checkpoint results/<run>/checkpoint --episodes 32
    python examples/evaluate.py --checkpoint results/<run>/checkpoint --episodes 32   (the same command)
    k24-evaluate --checkpoint results/<run>/checkpoint --masks 1,0   (two unit types play with each other's masks)
"""

from __future__ import annotations

import argparse
from typing import Sequence

from k24_rllib.algorithm.evaluation import run_greedy_episodes
from k24_rllib.cli import CliError, run_cli
from k24_rllib.envs import make_env
from k24_rllib.experiment import check_checkpoint, init_ray, restore


@run_cli
def main(argv: Sequence[str] | None = None) -> int:
    """``k24-evaluate`` and ``examples/evaluate.py``: the path is checked before Ray starts."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="an RLlib checkpoint dir (results/<run>/checkpoint)")
    parser.add_argument("--episodes", type=int, default=32)
    parser.add_argument("--seed", type=int, default=10_000, help="first episode seed (distinct from training)")
    parser.add_argument("--masks", type=mask_sources, default=None,
                        help="the mask each agent (or unit type) plays with instead of its own, e.g. 1,0 swaps two "
                        "unit types' masks and 0,0 gives both the first one's; default: as trained")
    args = parser.parse_args(argv)
    check_checkpoint(args.checkpoint)
    init_ray(None)
    algo = restore(args.checkpoint)
    module = algo.get_module()
    if args.masks is not None:
        try:
            module.agent.reassign_masks(args.masks)
        except ValueError as err:
            algo.stop()
            raise CliError(f"--masks: {err}") from err
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


def mask_sources(text: str) -> list[int]:
    """``"1,0"`` -> [1, 0] (argparse type of ``--masks``)."""
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected mask numbers separated by commas, e.g. 1,0") from None
