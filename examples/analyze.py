"""Pictures of what the masks of a saved K24QMix run learned: pattern maps, similarity, usage, sparsity.

    python examples/analyze.py --checkpoint results/<run>/checkpoint [--output DIR]

--checkpoint takes an algorithm checkpoint (``algo.save_to_path``; RLlib 2.60 keeps the RLModule under
learner_group/learner/rl_module/default_policy), any folder on the way down to it, or a bare RLModule folder
(``module.save_to_path``). K-2:4, Kaleidoscope and plain QMIX runs all work. Writes PNGs and summary.md to
--output (default: an ``analysis`` folder next to the checkpoint).
"""

import argparse
import sys
from pathlib import Path
from typing import Any

from k24_rllib.cli import CliError

MODULE_PATH = Path("learner_group/learner/rl_module/default_policy")
RLMODULE_MARKER = "class_and_ctor_args.pkl"  # written by every RLlib Checkpointable's save_to_path


def module_dir(checkpoint: Path) -> Path:
    """The RLModule folder in ``checkpoint``: the checkpoint joined with the longest tail of MODULE_PATH holding one.

    Longest first, because an algorithm checkpoint's own root is a Checkpointable folder too.
    """
    if not checkpoint.exists():
        raise CliError(f"checkpoint {checkpoint} does not exist")
    if not checkpoint.is_dir():
        raise CliError(f"{checkpoint} is a file; pass the checkpoint directory")
    parts = MODULE_PATH.parts
    for start in range(len(parts) + 1):
        candidate = checkpoint.joinpath(*parts[start:])
        if (candidate / RLMODULE_MARKER).is_file():
            return candidate
    raise CliError(f"{checkpoint} is not an RLlib checkpoint: no RLModule in it or under {MODULE_PATH}")


def load_agent(directory: Path) -> tuple[Any, list[str]]:
    """(the module's agent network, a label per mask) from an RLModule folder."""
    from ray.rllib.core.rl_module.rl_module import RLModule

    from k24_rllib.models import RecurrentAgent, first_non_finite

    try:
        module = RLModule.from_checkpoint(str(directory.resolve()))  # RLlib reads a relative path as a URI
    except Exception as err:  # noqa: BLE001 - any failure inside Ray means an unreadable module
        reason = (str(err).strip().splitlines() or [""])[0][:200]
        raise CliError(f"the RLModule in {directory} could not be restored ({type(err).__name__}: {reason})") from err
    agent = getattr(module, "agent", None)
    if not isinstance(agent, RecurrentAgent):
        raise CliError(f"{directory} holds a {type(module).__name__}, not a K24QMix module (no agent network)")
    bad = first_non_finite(module.state_dict())
    if bad is not None:
        raise CliError(f"the RLModule in {directory}: tensor {bad} holds NaN/inf; refusing to analyse it")
    per = "unit type" if getattr(module, "unit_type_slice", None) is not None else "agent"
    return agent, [f"{per} {k}" for k in range(agent.n_masks)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True, help="algorithm or RLModule checkpoint folder")
    parser.add_argument("--output", type=Path, default=None, help="folder for the PNGs and summary.md")
    args = parser.parse_args(argv)
    try:
        agent, labels = load_agent(module_dir(args.checkpoint.expanduser()))
    except CliError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from k24_rllib.analysis import analyze

    output = args.output.expanduser() if args.output else args.checkpoint.expanduser().resolve().parent / "analysis"
    paths = analyze(agent, output, title=f"Mask analysis of {args.checkpoint}", mask_labels=labels)
    print(f"mask {agent.mask}: wrote {', '.join(sorted(p.name for p in paths.values()))} to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
