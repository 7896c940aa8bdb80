"""Everything that happens to the masks between gradient steps: temperature, diversity weight, resets.

Pure torch (no RLlib), so the learner only forwards the env-step counter and the optimiser to it. Its state
(adaptive-coefficient history, last reset step) is part of the learner's checkpoint, so a restored run continues
the schedule where it stopped.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from k24_rllib.models import RecurrentAgent
from k24_rllib.models.agent import LAYER_NAMES
from k24_rllib.sparsity import (
    AdaptiveCoefficient,
    K24Args,
    KaleiArgs,
    KLResetTrigger,
    MaskChange,
    ResetSchedule,
    make_temperature_schedule,
    pairwise_symmetric_kl,
    progress,
    pruned_scale,
)


class MaskController:
    """Drives one agent network's masks from the env-step counter.

    What a step does comes from the agent's mask kind (``models.mask_kinds``): its settings (``div_coef``,
    ``deque_len``, ``reset_interval``, ``reset_ratio``) and its reset rule. A kind without masks ("none", plain
    parameter-shared QMIX) makes every method a no-op that reports zero diversity.
    """

    def __init__(
        self,
        agent: RecurrentAgent,
        t_max: int,
        k24_args: K24Args,
        kalei_args: KaleiArgs,
        temperature_schedule: Callable[[float], float] | None = None,
        seed: int | None = None,
    ) -> None:
        self.agent, self.kind, self.t_max = agent, agent.kind, t_max
        self.temperature = make_temperature_schedule(k24_args, t_max, custom=temperature_schedule)
        self.settings = args = self.kind.pick_settings(k24_args, kalei_args) or k24_args
        self.coefficient = AdaptiveCoefficient(args.div_coef, args.deque_len)
        self.resets = ResetSchedule(args.reset_interval, t_max)
        self.kl_trigger = KLResetTrigger(k24_args.kl_threshold, min_interval=k24_args.reset_interval // 10 or 1)
        self.generator = torch.Generator().manual_seed(seed if seed is not None else 0)
        self.num_resets = 0
        self._change = MaskChange()

    @property
    def active(self) -> bool:
        return self.kind.masked

    def on_step(self, t_env: int, optimizer: torch.optim.Optimizer | None) -> dict[str, float]:
        """Sets the temperature for ``t_env`` and runs any due reset; returns what to log."""
        stats = {"progress": progress(t_env, self.t_max)}
        if not self.active:
            return stats
        tau = float(self.temperature(t_env))
        self.agent.set_temperature(tau)
        stats["temperature"] = tau
        if getattr(self.settings, "fade_pruned", False):
            args = self.settings
            stats["pruned_scale"] = scale = pruned_scale(tau, args.temperature_init, args.temperature_min)
            self.agent.set_pruned_scale(scale)
        reset_now = self.resets.due(t_env)
        if getattr(self.settings, "use_adaptive_reset", False):
            kl = pairwise_symmetric_kl(self.agent.masked_layers())
            stats["pattern_pairwise_kl"] = kl
            reset_now = reset_now or self.kl_trigger.should_reset(kl, t_env)
        if reset_now:
            stats["reset_count"] = float(self._reset(optimizer))
            self.num_resets += 1
        stats["num_resets"] = float(self.num_resets)
        return stats

    def after_update(self) -> None:
        """After each optimiser step: ``K24_args.pruned_decay`` shrinks the K-2:4 layers' pruned weights."""
        rate = getattr(self.settings, "pruned_decay", 0.0) if self.active else 0.0
        if rate:
            for layer in self.agent.masked_layers():
                layer.decay_pruned(rate)

    def _reset(self, optimizer: torch.optim.Optimizer | None) -> int:
        if self.kind.reset is None:
            return 0
        ratio = self.settings.reset_ratio
        return sum(self.kind.reset(layer, ratio, optimizer, self.generator) for layer in self.agent.masked_layers())

    def mask_change(self) -> dict[str, float]:
        """``mask_change_layer_{i}`` (i = 0 for fc1, as ``sparsity_layer_{i}``) and ``mask_change`` over every
        masked entry: the share of the argmax masks that changed since the previous call (the learner calls it
        once per sampled batch). Empty on the first call and without masks."""
        named = self.agent.named_masked_layers()
        change = self._change([layer for _, layer in named])
        if change is None:
            return {}
        per_layer, overall = change
        stats = {f"mask_change_layer_{LAYER_NAMES.index(name)}": c for (name, _), c in zip(named, per_layer)}
        return {**stats, "mask_change": overall}

    def diversity_term(self, loss_td: torch.Tensor) -> tuple[torch.Tensor, float]:
        """The diversity loss (with gradient) and its adaptive coefficient for this step."""
        div_loss = self.agent.diversity_loss()
        if not self.active:
            return div_loss, 0.0
        td, div = float(loss_td.detach()), float(div_loss.detach())
        if not math.isfinite(td + div):  # that update is skipped; keep NaN out of the coefficient's history
            return div_loss, self.coefficient.value
        return div_loss, self.coefficient.update(td, div)

    def state_dict(self) -> dict[str, Any]:
        return {
            "coefficient": self.coefficient.state_dict(),
            "resets": self.resets.state_dict(),
            "kl_trigger": self.kl_trigger.state_dict(),
            "generator": self.generator.get_state(),
            "num_resets": self.num_resets,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.coefficient.load_state_dict(state["coefficient"])
        self.resets.load_state_dict(state["resets"])
        self.kl_trigger.load_state_dict(state["kl_trigger"])
        self.generator.set_state(torch.as_tensor(state["generator"], dtype=torch.uint8))
        self.num_resets = int(state["num_resets"])
