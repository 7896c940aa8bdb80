"""From a saved run to the agent network inside it, for analysis from the command line or a notebook.

An algorithm checkpoint (``algo.save_to_path``) keeps its RLModule under the folders RLlib names in
``ray.rllib.core`` (``learner_group/learner/rl_module/default_policy`` in Ray 2.60); a bare RLModule folder
(``module.save_to_path``) is the module itself. Ray is imported only when a function runs, so this module imports
where Ray is absent, as ``k24_rllib.analysis`` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from k24_rllib.cli import CliError, first_line

RLMODULE_MARKER = "class_and_ctor_args.pkl"  # written by every RLlib Checkpointable's save_to_path


def module_path() -> Path:
    """Where an algorithm checkpoint keeps the RLModule, relative to its root, from RLlib's own component names."""
    from ray.rllib.core import COMPONENT_LEARNER, COMPONENT_LEARNER_GROUP, COMPONENT_RL_MODULE, DEFAULT_MODULE_ID

    return Path(COMPONENT_LEARNER_GROUP, COMPONENT_LEARNER, COMPONENT_RL_MODULE, DEFAULT_MODULE_ID)


def module_dir(checkpoint: Path) -> Path:
    """The RLModule folder in ``checkpoint``: the checkpoint joined with the longest tail of ``module_path()``
    holding one, so the algorithm checkpoint, any folder on the way down and the module folder itself all work.

    Longest first, because an algorithm checkpoint's own root is a Checkpointable folder too.
    """
    if not checkpoint.exists():
        raise CliError(f"checkpoint {checkpoint} does not exist")
    if not checkpoint.is_dir():
        raise CliError(f"{checkpoint} is a file; pass the checkpoint directory")
    inner = module_path()
    for start in range(len(inner.parts) + 1):
        candidate = checkpoint.joinpath(*inner.parts[start:])
        if (candidate / RLMODULE_MARKER).is_file():
            return candidate
    raise CliError(f"{checkpoint} is not an RLlib checkpoint: no RLModule in it or under {inner}")


def load_agent(directory: Path) -> tuple[Any, list[str]]:
    """(the module's agent network, a label per mask) from an RLModule folder; one-line ``CliError``s for a folder
    that cannot be restored, holds another algorithm's module, or holds NaN/inf weights."""
    from ray.rllib.core.rl_module.rl_module import RLModule

    from k24_rllib.models import RecurrentAgent, first_non_finite

    try:
        module = RLModule.from_checkpoint(str(directory.resolve()))  # RLlib reads a relative path as a URI
    except Exception as err:  # noqa: BLE001 - any failure inside Ray means an unreadable module
        raise CliError(f"the RLModule in {directory} could not be restored "
                       f"({type(err).__name__}: {first_line(err, 200)})") from err
    agent = getattr(module, "agent", None)
    if not isinstance(agent, RecurrentAgent):
        raise CliError(f"{directory} holds a {type(module).__name__}, not a K24QMix module (no agent network)")
    bad = first_non_finite(module.state_dict())
    if bad is not None:
        raise CliError(f"the RLModule in {directory}: tensor {bad} holds NaN/inf; refusing to analyse it")
    per = "unit type" if getattr(module, "unit_type_slice", None) is not None else "agent"
    return agent, [f"{per} {k}" for k in range(agent.n_masks)]
