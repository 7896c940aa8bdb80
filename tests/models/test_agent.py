import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

import k24_rllib.models.agent as agent_module
from k24_rllib.models import RecurrentAgent, mask_ids_for
from k24_rllib.models.gru import plan_segments
from k24_rllib.sparsity import K24Args, K24Linear, KaleiArgs, KaleiLinear, MaskDistanceLoss, PatternOverlapLoss

OBS, ACTIONS, AGENTS = 30, 9, 3
# masks initialised far apart, so that different masks compute different things
SPREAD_MASKS = [
    ("k24", K24Args(hetero_init_scale=2.0), None),
    ("kalei", None, KaleiArgs(threshold_init_scale=2.0, threshold_init_bias=2.0)),
]


def run(agent: RecurrentAgent, obs: torch.Tensor) -> torch.Tensor:
    hidden = agent.initial_state(*obs.shape[:-1])
    q, new_hidden = agent(obs, hidden, mask_ids_for(obs))
    assert new_hidden.shape == (*obs.shape[:-1], agent.hidden_dim)
    return q


@pytest.mark.parametrize("mask, layer_type", [("k24", K24Linear), ("kalei", KaleiLinear), ("none", type(None))])
def test_shapes_and_layer_kinds(mask, layer_type):
    agent = RecurrentAgent(OBS, ACTIONS, AGENTS, mask=mask)
    assert run(agent, torch.randn(4, 2, AGENTS, OBS)).shape == (4, 2, AGENTS, ACTIONS)
    assert [type(layer) for layer in agent.masked_layers()] == ([layer_type] * 4 if mask != "none" else [])
    assert isinstance(agent.rnn, nn.GRUCell)


def test_unknown_mask_lists_valid_ones():
    with pytest.raises(ValueError, match=r"'dense'.*k24, kalei, none"):
        RecurrentAgent(OBS, ACTIONS, AGENTS, mask="dense")


def test_mask_none_is_plain_shared_network():
    torch.manual_seed(0)
    agent = RecurrentAgent(OBS, ACTIONS, AGENTS, mask="none")
    plain = nn.ModuleList([nn.Linear(OBS, 64), nn.GRUCell(64, 64), nn.Linear(64, 64), nn.Linear(64, 64), nn.Linear(64, ACTIONS)])
    assert sum(p.numel() for p in agent.parameters()) == sum(p.numel() for p in plain.parameters())
    obs, hidden = torch.randn(AGENTS, OBS), agent.initial_state(AGENTS)
    q, _ = agent(obs, hidden, torch.arange(AGENTS))
    assert torch.equal(q, agent(obs, hidden, torch.zeros(AGENTS, dtype=torch.long))[0])  # mask ids are ignored
    assert agent.diversity_loss().item() == 0.0 and agent.get_pattern_stats() == {}
    assert agent.get_sparsities() == ([0.0] * 4, {}, 0.0)


@pytest.mark.parametrize("mask, k24_args, kalei_args", SPREAD_MASKS)
def test_different_mask_ids_differ_and_gradients_reach_shared_weights(mask, k24_args, kalei_args):
    torch.manual_seed(1)
    agent = RecurrentAgent(OBS, ACTIONS, AGENTS, mask=mask, k24_args=k24_args, kalei_args=kalei_args)
    obs = torch.randn(1, OBS).expand(AGENTS, OBS)
    agent.eval()
    q, _ = agent(obs, agent.initial_state(AGENTS), torch.arange(AGENTS))
    assert not torch.allclose(q[0], q[1]) and not torch.allclose(q[1], q[2])
    agent.train()
    q, _ = agent(obs, agent.initial_state(AGENTS), torch.arange(AGENTS))
    (q.pow(2).sum() + agent.diversity_loss()).backward()
    for layer in agent.masked_layers():
        assert layer.weight.grad.abs().sum() > 0
    assert agent.rnn.weight_ih.grad.abs().sum() > 0


def test_k24_agent_eval_deterministic_and_train_stochastic():
    torch.manual_seed(2)
    agent = RecurrentAgent(OBS, ACTIONS, AGENTS)
    agent.set_temperature(5.0)
    obs = torch.randn(6, AGENTS, OBS)
    assert not torch.equal(run(agent, obs), run(agent, obs))
    agent.eval()
    with torch.no_grad():
        assert torch.equal(run(agent, obs), run(agent, obs))


def test_k24_sparsities_and_pattern_stats():
    torch.manual_seed(3)
    agent = RecurrentAgent(OBS, ACTIONS, AGENTS, k24_args=K24Args(hetero_init_scale=1.0))
    per_layer, detail, overall = agent.get_sparsities()
    assert per_layer == [0.5] * 4 and overall == 0.5  # obs_dim 30 is padded to 32
    assert sorted(detail) == ["mask_0", "mask_1", "mask_2"] and detail["mask_1"] == [0.5] * 4
    agent.set_temperature(0.7)
    assert all(float(layer.temperature) == pytest.approx(0.7) for layer in agent.masked_layers())
    stats = agent.get_pattern_stats()
    assert len(stats["pattern_mean"]) == 6 and sum(stats["pattern_mean"]) == pytest.approx(1.0)
    assert stats["pattern_2_prob"] == stats["pattern_mean"][2]
    assert 0 < stats["pattern_entropy"] <= torch.log(torch.tensor(6.0)).item() + 1e-6
    assert 1 / 6 <= stats["pattern_min_similarity"] <= stats["pattern_mean_similarity"] <= stats["pattern_max_similarity"]


def test_kalei_stats_and_sparsity():
    agent = RecurrentAgent(OBS, ACTIONS, AGENTS, mask="kalei")
    stats = agent.get_pattern_stats()
    assert not any(key.startswith("pattern") for key in stats)
    assert 0.9 < stats["mask_min_similarity"] <= stats["mask_mean_similarity"] <= stats["mask_max_similarity"] <= 1
    per_layer, detail, overall = agent.get_sparsities()
    assert len(per_layer) == 4 and 0 <= overall < 0.05 and len(detail) == AGENTS


def test_diversity_is_replaceable():
    agent = RecurrentAgent(OBS, ACTIONS, AGENTS)
    agent.diversity = PatternOverlapLoss(layer_weights=[0.0, 0.0, 0.0, 1.0])
    torch.testing.assert_close(agent.diversity_loss(), PatternOverlapLoss()([agent.fc4]))


def test_ema_moves_only_in_online_training_forwards():
    agent = RecurrentAgent(OBS, ACTIONS, AGENTS)
    assert "fc1.ema" in agent.state_dict()
    obs = torch.randn(4, AGENTS, OBS)
    with torch.no_grad():
        run(agent.eval(), obs)
    assert torch.equal(agent.fc1.ema, torch.ones(32))
    run(agent.train(), obs)
    assert not torch.equal(agent.fc1.ema, torch.ones(32))


def test_packed_and_padded_unrolls_see_the_same_input_statistics():
    """The EMA of mean |x| per input counts real timesteps only, in either layout."""
    torch.manual_seed(9)
    packed = RecurrentAgent(OBS, ACTIONS, AGENTS)
    padded = copy.deepcopy(packed)
    obs, h0 = torch.randn(4, 6, AGENTS, OBS), torch.randn(4, AGENTS, 64)
    valid = torch.arange(6)[None] < torch.tensor([6, 2, 4, 1])[:, None]
    for agent, pack in ((packed, True), (padded, False)):
        torch.manual_seed(10)  # the same mask draws
        agent.unroll(obs, h0, None, valid, pack=pack)
    for (name, layer), other in zip(packed.named_masked_layers(), padded.masked_layers()):
        assert not torch.equal(layer.ema, torch.ones_like(layer.ema)), name
        torch.testing.assert_close(layer.ema, other.ema, msg=name)


def test_mask_ids_for_agents_and_unit_types():
    obs = torch.zeros(2, 4, 6)
    assert mask_ids_for(obs) is None  # one mask per agent: agent i uses mask i
    obs[0, 0, 3] = 1.0  # agent 0: type 1 (bits at columns 2..4)
    obs[0, 1, 4] = 1.0  # agent 1: type 2
    obs[0, 2, 2] = 1.0  # agent 2: type 0; agent 3 dead (all-zero bits)
    obs[1, :, 4] = 1.0
    expected = torch.tensor([[1, 2, 0, 0], [2, 2, 2, 2]])
    assert torch.equal(mask_ids_for(obs, (2, 5)), expected)
    assert mask_ids_for(obs, (2, 5)).dtype == torch.long


def fixed_masks(monkeypatch: pytest.MonkeyPatch, layer_class: type) -> None:
    """Every training forward of a layer reuses the first Gumbel draw it made (with its gradient path)."""
    original, drawn = layer_class.sample_weights, {}

    def sample_once(self, draws):
        if id(self) not in drawn:
            drawn[id(self)] = original(self, 1)
        return drawn[id(self)]

    monkeypatch.setattr(layer_class, "sample_weights", sample_once)


def step_by_step(agent: RecurrentAgent, obs, h0, mask_ids=None):
    """The reference: the single-step (acting) path called once per timestep."""
    qs, h = [], h0
    for t in range(obs.shape[1]):
        q, h = agent(obs[:, t], h, None if mask_ids is None else mask_ids[:, t])
        qs.append(q)
    return torch.stack(qs, dim=1)


@pytest.mark.parametrize("mask", ["k24", "kalei", "none"])
@pytest.mark.parametrize("layout", ["packed", "packed, GRU in segments", "padded with valid", "padded"])
@pytest.mark.parametrize("per_type", [False, True])
def test_sequence_parallel_unroll_computes_what_the_step_by_step_agent_computes(monkeypatch, mask, layout, per_type):
    """Same masks (one draw per layer, shared by both paths): equal Q-values and equal gradients on real
    timesteps, whether fc1..fc4 run packed (CPU's default; the GRU in one call or in time segments over the
    running sequences) or padded (a GPU's) or on equal-length sequences."""
    if layout == "packed, GRU in segments":  # a segment wherever a sequence ends
        monkeypatch.setattr(agent_module, "plan_segments", lambda running, rows: plan_segments(running, rows, 0.0, 0.0))
    torch.manual_seed(7)
    agent = RecurrentAgent(OBS, ACTIONS, 2 if per_type else AGENTS, mask=mask,
                           k24_args=K24Args(hetero_init_scale=1.0), kalei_args=KaleiArgs(2.0, 2.0))
    for layer in agent.masked_layers():
        layer.observe_inputs = False  # the EMA's sequence form has its own test (tests/sparsity)
        fixed_masks(monkeypatch, type(layer))
    reference = copy.deepcopy(agent)
    obs, h0 = torch.randn(4, 6, AGENTS, OBS), torch.randn(4, AGENTS, 64)
    mask_ids = torch.randint(0, 2, (4, 6, AGENTS)) if per_type else None
    lengths = [6] * 4 if layout == "padded" else [6, 2, 4, 1]
    valid = torch.arange(6)[None] < torch.tensor(lengths)[:, None]

    torch.manual_seed(8)
    q, _ = agent.unroll(obs, h0, mask_ids, None if layout == "padded" else valid, pack=layout.startswith("packed"))
    torch.manual_seed(8)
    expected = torch.stack([
        F.pad(step_by_step(reference, obs[b : b + 1, :n], h0[b : b + 1],
                           None if mask_ids is None else mask_ids[b : b + 1, :n])[0], (0, 0, 0, 0, 0, 6 - n))
        for b, n in enumerate(lengths)
    ])
    keep = valid[..., None, None]
    torch.testing.assert_close(q * keep, expected, atol=1e-6, rtol=1e-5)
    (q * keep).square().sum().backward()
    expected.square().sum().backward()
    for (name, p), p_ref in zip(agent.named_parameters(), reference.parameters()):
        assert (p.grad is None) == (p_ref.grad is None), name
        if p.grad is not None:
            torch.testing.assert_close(p.grad, p_ref.grad, atol=1e-5, rtol=1e-4, msg=name)


class RecordSyncs(TorchDispatchMode):
    """The aten ops run while active that make the host wait for the device: reading a tensor as a Python number,
    nonzero, and indexing by a boolean mask (its result's size is only known on the device)."""

    def __init__(self) -> None:
        super().__init__()
        self.syncs: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        indices = args[1] if name.startswith("index") and len(args) > 1 else ()
        if name in ("_local_scalar_dense", "nonzero", "is_nonzero", "equal") or any(
            torch.is_tensor(i) and i.dtype == torch.bool for i in indices
        ):
            self.syncs.append(name)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("mask", ["k24", "kalei"])
def test_a_training_update_never_waits_for_the_device(mask):
    """No host sync in a padded unroll (a GPU's layout), its target twin, the diversity loss or backward: on a GPU
    each sync (a tensor read as a Python number, a boolean index) stalls the queue of kernel launches."""
    torch.manual_seed(11)
    agent = RecurrentAgent(OBS, ACTIONS, AGENTS, mask=mask)
    target = agent.target_copy()
    obs, h0 = torch.randn(4, 6, AGENTS, OBS), torch.randn(4, AGENTS, 64)
    valid = torch.arange(6)[None] < torch.tensor([5, 2, 4, 1])[:, None]  # the last timestep is padding everywhere
    with RecordSyncs() as recorded:
        q = agent.unroll(obs, h0, None, valid, pack=False)[0]
        with torch.no_grad():
            target.unroll(obs, h0, None, valid, pack=False)
        (q.square().mean() + agent.diversity_loss()).backward()
    assert not recorded.syncs


def test_per_step_unroll_draws_a_mask_per_timestep():
    """"step": rows share each timestep's draw, timesteps differ; "sequence": one draw for the whole call."""
    torch.manual_seed(9)
    layer = RecurrentAgent(OBS, ACTIONS, AGENTS).fc1
    layer.set_temperature(5.0)
    x = torch.randn(AGENTS, 1, 1, OBS).expand(AGENTS, 3, 8, OBS)  # the same input at every row and timestep
    per_step = layer.forward_slots(x, per_step=True)
    per_call = layer.forward_slots(x)
    torch.testing.assert_close(per_step[:, 0], per_step[:, 1])
    assert not torch.allclose(per_step[:, :, 0], per_step[:, :, 1])
    torch.testing.assert_close(per_call[:, :, 0], per_call[:, :, 7])


def test_masked_layers_choose_which_layers_carry_masks():
    torch.manual_seed(2)
    agent = RecurrentAgent(OBS, ACTIONS, AGENTS, k24_args=K24Args(hetero_init_scale=3.0), masked_layers=("fc2", "fc3"))
    assert [name for name, _ in agent.named_masked_layers()] == ["fc2", "fc3"]
    assert not isinstance(agent.fc1, K24Linear) and not isinstance(agent.fc4, K24Linear)
    assert agent.fc1.weight.shape == (64, OBS) and agent.fc4.weight.shape == (ACTIONS, 64)  # dense and shared
    per_layer, detail, overall = agent.get_sparsities()
    assert per_layer == [0.0, 0.5, 0.5, 0.0] and overall == 0.5  # entry i is fc{i+1}
    assert all(values == [0.0, 0.5, 0.5, 0.0] for values in detail.values()) and len(detail) == AGENTS
    agent.eval()  # the masks on fc2 and fc3 alone make the agents act differently
    obs = torch.randn(1, OBS).expand(AGENTS, OBS)
    q, _ = agent(obs, agent.initial_state(AGENTS), torch.arange(AGENTS))
    assert not torch.allclose(q[0], q[1])
    agent.train()
    agent.diversity_loss().backward()
    assert agent.fc2.alpha.grad.abs().sum() > 0 and agent.fc1.weight.grad is None


def test_kaleidoscope_layer_weights_follow_the_layer_not_its_rank_among_masked_layers():
    torch.manual_seed(4)
    agent = RecurrentAgent(OBS, ACTIONS, AGENTS, mask="kalei", masked_layers=("fc2", "fc3"))
    with torch.no_grad():  # thresholds far apart, so the agents' masks differ and both layers' terms count
        for layer in agent.masked_layers():
            layer.thresholds.normal_(0.0, 3.0)
    distance = MaskDistanceLoss()
    # lambda = 2 for fc2 and 4 for fc3, as in the all-masked network, not 1 and 2
    expected = 2 * distance.layer_loss(agent.fc2) + 4 * distance.layer_loss(agent.fc3)
    torch.testing.assert_close(agent.diversity_loss(), expected)
    assert distance.layer_loss(agent.fc2).item() < 0 and distance.layer_loss(agent.fc3).item() < 0


def test_dense_layers_are_what_a_plain_network_computes():
    torch.manual_seed(3)
    agent = RecurrentAgent(OBS, ACTIONS, AGENTS, masked_layers=("fc2",))
    x = torch.randn(AGENTS, 5, 1, OBS)
    assert torch.equal(agent.fc1.forward_slots(x), F.linear(x, agent.fc1.weight, agent.fc1.bias))


@pytest.mark.parametrize("mask, k24_args, kalei_args", SPREAD_MASKS)
def test_reassigned_masks_act_as_the_masks_they_took(mask, k24_args, kalei_args):
    torch.manual_seed(3)
    agent = RecurrentAgent(OBS, ACTIONS, AGENTS, mask=mask, k24_args=k24_args, kalei_args=kalei_args).eval()
    obs, hidden = torch.randn(5, AGENTS, OBS), agent.initial_state(5, AGENTS)
    before = [layer.hard_masks().clone() for layer in agent.masked_layers()]
    shared = [layer.weight.clone() for layer in agent.masked_layers()]
    q_before, _ = agent(obs, hidden)  # cached acting weights, which the reassignment must invalidate
    original = copy.deepcopy(agent)
    sources = [1, 0, 0]  # masks 0 and 1 swap; mask 2 takes mask 0's original
    agent.reassign_masks(sources)
    for layer, old, weight in zip(agent.masked_layers(), before, shared):
        assert torch.equal(layer.hard_masks(), old[sources]) and torch.equal(layer.weight, weight)
    q_after, _ = agent(obs, hidden)
    # agent i now acts as the original network does with mask sources[i]
    q_expected, _ = original(obs, hidden, torch.tensor(sources))
    assert torch.equal(q_after, q_expected)
    assert not torch.allclose(q_after[:, 0], q_before[:, 0])


def test_reassigning_masks_names_a_bad_assignment(monkeypatch):
    agent = RecurrentAgent(OBS, ACTIONS, AGENTS)
    alpha = [layer.alpha.clone() for layer in agent.masked_layers()]
    for sources in ([1, 0], [0, 1, 3], [-1, 0, 1]):
        with pytest.raises(ValueError, match=r"one of the 3 masks \(0\.\.2\) for each of them, e\.g\. \[2, 1, 0\]"):
            agent.reassign_masks(sources)
    assert all(torch.equal(layer.alpha, a) for layer, a in zip(agent.masked_layers(), alpha))  # nothing moved
    with pytest.raises(ValueError, match="no masks"):
        RecurrentAgent(OBS, ACTIONS, AGENTS, mask="none").reassign_masks([0, 1, 2])
    layer_class = type(agent.fc1)
    monkeypatch.setattr(layer_class, "own_parameters", ())  # a new mask kind that forgot to name them
    with pytest.raises(ValueError, match="K24Linear names no own_parameters"):
        agent.reassign_masks([2, 1, 0])
