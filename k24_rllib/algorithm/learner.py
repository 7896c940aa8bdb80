"""The K24QMix learner: QMIX TD(lambda) loss plus the mask-diversity term, on RLlib's DQN learner.

DQN's learner already builds the target networks, adds NEXT_OBS to the train batch and syncs the targets
every ``target_network_update_freq`` env steps; this class replaces its loss and drives the mask schedules.
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.algorithms.dqn.torch.dqn_torch_learner import DQNTorchLearner
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import TargetNetworkAPI
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME
from ray.rllib.utils.typing import ModuleID

from k24_rllib.algorithm.rl_module import K24QMixModule
from k24_rllib.sparsity import K24Args, KaleiArgs
from k24_rllib.training import MaskController, epsilon_at, mask_metrics, qmix_td_loss

_CONTROLLERS = "k24_mask_controllers"


class NonFiniteTrainingError(RuntimeError):
    """Too many updates in a row had a non-finite loss or gradient; the message names the term and env step."""


class K24QMixLearner(DQNTorchLearner):
    """Loss = loss_td + div_coef * div_loss; temperature, epsilon and resets follow the env-step counter.

    Losses are logged as means over an iteration's updates; schedule values and mask statistics as the latest
    item (``reduce="item"``), so a result shows the state the EnvRunners were last synced with. Mask statistics
    are taken once per sampled batch, at its first update, when the weights are the ones the runners were last
    synced with: taking them after every update cost 5-10% of a K-2:4 update on 3m.
    """

    @classmethod
    def rl_module_required_apis(cls) -> list[type]:
        return [TargetNetworkAPI]

    def build(self) -> None:
        super().build()
        if self.config.torch_num_threads and self._device.type == "cpu":
            torch.set_num_threads(self.config.torch_num_threads)
        self.num_skipped_updates = 0
        self._skipped_in_a_row = 0
        self._t_env = -1  # the env step of the latest update; none yet
        self._mask_stats: dict[ModuleID, dict[str, float]] = {}  # per module, taken at a batch's first update
        self._loss_terms: dict[str, torch.Tensor] = {}
        self.controllers: dict[ModuleID, MaskController] = {}
        for module_id, module in self.module._rl_modules.items():
            cfg = self.config.get_config_for_module(module_id)
            self.controllers[module_id] = MaskController(
                agent=module.unwrapped().agent,
                t_max=cfg.t_max,
                k24_args=K24Args.from_dict(cfg.K24_args),
                kalei_args=KaleiArgs.from_dict(cfg.kalei_args),
                temperature_schedule=cfg.temperature_schedule,
                seed=cfg.seed,
            )

    def _uncompiled_update(self, batch: dict[str, Any], **kwargs: Any) -> Any:
        """An update on whole-episode batches (``TeamEpisodeBuffer``), under bf16 autocast if asked, on CUDA."""
        if self.config.mixed_precision and self._device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return super()._uncompiled_update(batch, **kwargs)
        return super()._uncompiled_update(batch, **kwargs)

    def before_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        """Sets epsilon and temperature for the current env step, runs due resets and, at a sampled batch's
        first update, takes the mask statistics."""
        super().before_gradient_based_update(timesteps=timesteps)
        t_env = int(timesteps.get(NUM_ENV_STEPS_SAMPLED_LIFETIME) or 0)
        new_batch, self._t_env = t_env != self._t_env, t_env
        for module_id, controller in self.controllers.items():
            cfg = self.config.get_config_for_module(module_id)
            module: K24QMixModule = self.module[module_id].unwrapped()
            module.epsilon.fill_(epsilon_at(cfg.epsilon, t_env))
            optimizer = self.get_optimizers_for_module(module_id)[0][1]
            stats = controller.on_step(t_env, optimizer)
            stats["epsilon"] = float(module.epsilon)
            stats["t_env"] = float(t_env)  # the env step these schedule values belong to
            if new_batch:  # after resets, so the statistics show them
                self._mask_stats[module_id] = {**mask_metrics(module.agent), **controller.mask_change()}
            # logged at every update all the same: an "item" statistic an update does not log reads as None
            self.metrics.log_dict({**stats, **self._mask_stats[module_id]}, key=module_id, reduce="item")

    def compute_loss_for_module(
        self, *, module_id: ModuleID, config: Any, batch: dict[str, Any], fwd_out: dict[str, Any]
    ) -> torch.Tensor:
        module: K24QMixModule = self.module[module_id].unwrapped()
        obs = batch[Columns.OBS]  # every observation of the episodes: [B, T + 1, ...]
        with torch.no_grad():
            target_q = module.forward_target(batch)["q"]
        td = qmix_td_loss(
            fwd_out["q"], target_q, batch[Columns.ACTIONS], batch[Columns.REWARDS], batch[Columns.TERMINATEDS],
            batch[Columns.LOSS_MASK], obs["action_mask"], obs["state"], module.mixer, module.target_mixer,
            config.gamma, config.td_lambda, config.double_q,
        )
        loss_td, valid, n_valid = td.loss, batch[Columns.LOSS_MASK].float(), td.n_valid
        div_loss, div_coef = self.controllers[module_id].diversity_term(loss_td)
        loss = loss_td + div_coef * div_loss
        self._loss_terms = {"TD": loss_td.detach(), "diversity": div_loss.detach()}

        self.metrics.log_dict(
            {
                "loss_td": loss_td.item(),
                "div_loss": float(div_loss.detach()),
                "div_coef": div_coef,
                "loss": loss.item(),
                "q_taken_mean": float((td.q_taken.detach().mean(-1) * valid).sum() / n_valid),
                "target_mean": float((td.targets * valid).sum() / n_valid),
                "td_error_abs": float(td.td_error.detach().abs().sum() / n_valid),
            },
            key=module_id,
        )
        return loss

    def apply_gradients(self, gradients_dict: dict[Any, torch.Tensor]) -> None:
        """The optimiser step, skipped when a loss term or a gradient is not finite (RLlib would zero NaN
        gradients and step anyway, moving the weights on stale Adam moments). ``max_skipped_updates`` skips in a
        row stop training with ``NonFiniteTrainingError``."""
        bad_terms = [name for name, value in self._loss_terms.items() if not torch.isfinite(value).all()]
        if not bad_terms and all(torch.isfinite(g).all() for g in gradients_dict.values()):
            self._skipped_in_a_row = 0
            super().apply_gradients(gradients_dict)
            for controller in self.controllers.values():
                controller.after_update()
        else:
            self.num_skipped_updates += 1
            self._skipped_in_a_row += 1
            if self._skipped_in_a_row >= self.config.max_skipped_updates:
                terms = " and ".join(bad_terms) + " loss" if bad_terms else "the gradient"
                raise NonFiniteTrainingError(
                    f"{terms} not finite for {self._skipped_in_a_row} updates in a row at env step {self._t_env}: "
                    "training stopped (try a lower --training.lr or grad_clip)"
                )
        for module_id in self.controllers:
            self.metrics.log_value((module_id, "num_skipped_updates"), self.num_skipped_updates, reduce="item")

    def get_state(self, *args, **kwargs) -> dict[str, Any]:
        state = super().get_state(*args, **kwargs)
        state[_CONTROLLERS] = {mid: c.state_dict() for mid, c in self.controllers.items()}
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        for module_id, controller_state in state.get(_CONTROLLERS, {}).items():
            self.controllers[module_id].load_state_dict(controller_state)
