"""The team RLModule on its own (no Ray cluster): acting, masking of unavailable actions, inference-only build."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from k24_rllib.algorithm.rl_module import HIDDEN, LAST_ACTION, K24QMixModule, observed_steps, previous_actions
from k24_rllib.envs import EnvInfo, team_spaces

N_AGENTS, N_ACTIONS, OBS_DIM = 3, 6, 7


def build(mask: str = "k24", inference_only: bool = False, **model_config) -> K24QMixModule:
    obs_space, act_space = team_spaces(EnvInfo(N_AGENTS, N_ACTIONS, OBS_DIM, 9, 20))
    spec = RLModuleSpec(
        module_class=K24QMixModule,
        observation_space=obs_space,
        action_space=act_space,
        inference_only=inference_only,
        model_config={"mask": mask, "hidden_dim": 16, "max_seq_len": 20, **model_config},
    )
    return spec.build()


def act_batch(batch_size: int, seed: int = 0) -> tuple[dict, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = (rng.random((batch_size, 1, N_AGENTS, N_ACTIONS)) < 0.4).astype(np.float32)
    mask[..., rng.integers(N_ACTIONS)] = 1.0  # at least one action available
    obs = {
        "obs": torch.tensor(rng.normal(size=(batch_size, 1, N_AGENTS, OBS_DIM)), dtype=torch.float32),
        "state": torch.zeros(batch_size, 1, 9),
        "action_mask": torch.tensor(mask),
    }
    return {Columns.OBS: obs, Columns.STATE_IN: {HIDDEN: torch.zeros(batch_size, N_AGENTS, 16)}}, mask


@pytest.mark.parametrize("mask", ["k24", "kalei", "none"])
def test_exploration_never_picks_an_unavailable_action(mask):
    module = build(mask)
    module.epsilon.fill_(1.0)
    batch, available = act_batch(256)
    actions = module.forward_exploration(batch)[Columns.ACTIONS]
    assert actions.shape == (256, 1, N_AGENTS)  # RLlib needs the time rank kept
    chosen = np.take_along_axis(available, actions.numpy()[..., None], axis=-1)
    assert (chosen == 1.0).all()
    assert len(np.unique(actions.numpy())) > 1  # random, not constant


def test_inference_is_greedy_deterministic_and_legal():
    module = build()
    batch, available = act_batch(64, seed=1)
    first = module.forward_inference(batch)
    second = module.forward_inference(batch)
    assert torch.equal(first[Columns.ACTIONS], second[Columns.ACTIONS])
    chosen = np.take_along_axis(available, first[Columns.ACTIONS].numpy()[..., None], axis=-1)
    assert (chosen == 1.0).all()
    assert first[Columns.STATE_OUT][HIDDEN].shape == (64, N_AGENTS, 16)


def test_inference_only_module_has_no_mixer_or_targets_but_keeps_schedules():
    fading = {"K24_args": {"fade_pruned": True}}
    learner_module = build(**fading)
    learner_module.make_target_networks()
    acting = build(inference_only=True, **fading)
    assert not hasattr(acting, "mixer") and not hasattr(acting, "_target_agent")
    state = learner_module.get_state(inference_only=True)
    assert not any(k.startswith(("mixer", "_target")) for k in state)
    learner_module.agent.set_temperature(0.7)
    learner_module.agent.set_pruned_scale(0.4)  # K24_args.fade_pruned: acting must keep what training keeps
    learner_module.epsilon.fill_(0.3)
    acting.set_state(learner_module.get_state(inference_only=True))
    assert float(acting.epsilon) == pytest.approx(0.3)
    assert float(acting.agent.fc1.temperature) == pytest.approx(0.7)
    assert float(acting.agent.fc4.pruned_scale) == pytest.approx(0.4)


def episode_batch(batch_size: int, steps: int) -> dict:
    """A whole-episode train batch as ``TeamEpisodeBuffer`` makes it: OBS [B, T + 1], LOSS_MASK [B, T]."""
    obs = {key: value[:, :1].expand(batch_size, steps + 1, *value.shape[2:])
           for key, value in act_batch(batch_size)[0][Columns.OBS].items()}
    return {Columns.OBS: obs, Columns.LOSS_MASK: torch.ones(batch_size, steps, dtype=torch.bool)}


def test_target_agent_samples_masks_but_never_moves_the_ema():
    module = build()
    module.make_target_networks()
    module.train()
    batch = episode_batch(4, 2)
    ema_before = [layer.ema.clone() for layer in module.target_agent.masked_layers()]
    first = module.forward_target(batch)["q"]
    second = module.forward_target(batch)["q"]
    assert first.shape == (4, 3, N_AGENTS, N_ACTIONS)
    assert not torch.equal(first, second)  # Gumbel samples, like the online network in training
    for layer, before in zip(module.target_agent.masked_layers(), ema_before):
        assert torch.equal(layer.ema, before)
    online_ema = module.agent.fc1.ema.clone()
    module.forward_train(batch)
    assert not torch.equal(module.agent.fc1.ema, online_ema)  # the online training forward does move it


def test_observed_steps_add_the_observation_after_each_last_step():
    valid = torch.tensor([[1, 1, 1], [1, 0, 0], [0, 0, 0]])
    assert observed_steps(valid).long().tolist() == [[1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0]]


def test_unit_type_masks_read_the_type_bits():
    module = build(unit_type_slice=(0, 2), n_unit_types=2)
    assert module.agent.n_masks == 2
    obs = torch.zeros(1, 1, N_AGENTS, OBS_DIM)
    obs[..., 0, 1] = obs[..., 1, 0] = obs[..., 2, 1] = 1.0
    _, ids = module._agent_inputs(obs)
    assert ids[0, 0].tolist() == [1, 0, 1]
    assert module._agent_inputs(torch.zeros(1, 1, N_AGENTS, OBS_DIM))[1].tolist() == [[[0, 0, 0]]]  # dead: type 0
    assert build()._agent_inputs(obs)[1] is None  # one mask per agent


def test_obs_space_must_be_a_team_space():
    with pytest.raises((KeyError, TypeError, AttributeError, ValueError)):
        RLModuleSpec(
            module_class=K24QMixModule,
            observation_space=gym.spaces.Box(0, 1, (4,)),
            action_space=gym.spaces.Discrete(2),
            model_config={},
        ).build()


def test_masked_layers_from_the_model_config_reach_both_networks():
    module = build(masked_layers=["fc2", "fc3"])  # a list, as YAML and the CLI give it
    module.make_target_networks()
    for agent in (module.agent, module.target_agent):
        assert [name for name, _ in agent.named_masked_layers()] == ["fc2", "fc3"]


def test_previous_actions_shift_by_one_step_with_zeros_first():
    actions = torch.tensor([[[2, 0], [1, 1]]])  # [B=1, T=2, n=2]
    prev = previous_actions(actions, 3)
    assert prev.shape == (1, 3, 2, 3)
    assert prev[0, 0].sum() == 0
    assert prev[0, 1].argmax(-1).tolist() == [2, 0] and prev[0, 2].argmax(-1).tolist() == [1, 1]


@pytest.mark.parametrize("mask", ["none", "kalei"])
def test_last_action_reaches_acting_and_training_alike(mask):
    """With ``obs_last_action`` acting carries the action it took in the recurrent state; the training unroll
    rebuilds the same inputs from the episode's ACTIONS, so both compute the same Q-values."""
    module = build(mask, obs_last_action=True)
    module.eval()
    module.epsilon.fill_(1.0)  # random actions, so the previous action is not a function of the Q-values
    steps = 6
    obs = {key: torch.cat([act_batch(1, seed=t)[0][Columns.OBS][key] for t in range(steps + 1)], dim=1)
           for key in ("obs", "state", "action_mask")}
    state = {key: value[None] for key, value in module.get_initial_state().items()}
    assert set(state) == {HIDDEN, LAST_ACTION} and not state[LAST_ACTION].any()
    step_q, actions = [], []
    for t in range(steps):
        inputs, ids = module._agent_inputs(obs["obs"][:, t], state[LAST_ACTION])
        step_q.append(module.agent(inputs, state[HIDDEN], ids)[0])
        out = module.forward_exploration({Columns.OBS: {k: v[:, t : t + 1] for k, v in obs.items()},
                                          Columns.STATE_IN: state})
        actions.append(out[Columns.ACTIONS][:, 0])
        assert torch.equal(out[Columns.STATE_OUT][LAST_ACTION], F.one_hot(actions[-1], N_ACTIONS).float())
        state = out[Columns.STATE_OUT]
    batch = {Columns.OBS: obs, Columns.ACTIONS: torch.stack(actions, dim=1),
             Columns.LOSS_MASK: torch.ones(1, steps, dtype=torch.bool)}
    q = module.forward_train(batch)["q"]
    assert q.shape == (1, steps + 1, N_AGENTS, N_ACTIONS)
    torch.testing.assert_close(q[:, :steps], torch.stack(step_q, dim=1))
    batch[Columns.ACTIONS] = (batch[Columns.ACTIONS] + 1) % N_ACTIONS  # other actions: other inputs from t = 1
    changed = module.forward_train(batch)["q"]
    torch.testing.assert_close(changed[:, 0], q[:, 0])
    assert not torch.allclose(changed[:, 1:], q[:, 1:])


def test_last_action_widens_the_agent_input_by_n_actions():
    plain, with_last = build(), build(obs_last_action=True)
    assert with_last.agent.fc1.in_features == plain.agent.fc1.in_features + N_ACTIONS
