"""Pictures of what the masks of a saved K24QMix run learned: pattern maps, similarity, usage, sparsity.

    k24-analyze --checkpoint results/<run>/checkpoint [--output DIR]
    python examples/analyze.py --checkpoint results/<run>/checkpoint [--output DIR]   (the same command)

--checkpoint takes an algorithm checkpoint (``algo.save_to_path``; RLlib 2.60 keeps the RLModule under
learner_group/learner/rl_module/default_policy), any folder on the way down to it, or a bare RLModule folder
(``module.save_to_path``). K-2:4, Kaleidoscope and plain QMIX runs all work. Writes PNGs and summary.md to
--output (default: an ``analysis`` folder next to the checkpoint).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from k24_rllib.checkpoints import load_agent, module_dir
from k24_rllib.cli import run_cli


@run_cli
def main(argv: Sequence[str] | None = None) -> int:
    """``k24-analyze`` and ``examples/analyze.py``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True, help="algorithm or RLModule checkpoint folder")
    parser.add_argument("--output", type=Path, default=None, help="folder for the PNGs and summary.md")
    args = parser.parse_args(argv)
    agent, labels = load_agent(module_dir(args.checkpoint.expanduser()))
    from k24_rllib.analysis import analyze  # matplotlib (the "plots" extra) is needed only here

    output = args.output.expanduser() if args.output else args.checkpoint.expanduser().resolve().parent / "analysis"
    paths = analyze(agent, output, title=f"Mask analysis of {args.checkpoint}", mask_labels=labels)
    print(f"mask {agent.mask}: wrote {', '.join(sorted(p.name for p in paths.values()))} to {output}")
    return 0
