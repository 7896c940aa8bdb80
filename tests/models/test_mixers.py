import pytest
import torch

from k24_rllib.models import QMixer, VDNMixer, make_mixer


def test_qmix_shapes_and_monotonic_in_every_agent():
    torch.manual_seed(0)
    mixer = make_mixer("qmix", n_agents=3, state_dim=7)
    assert isinstance(mixer, QMixer) and mixer.embed_dim == 32
    qs = torch.randn(4, 5, 3, requires_grad=True)
    state = torch.randn(4, 5, 7)
    q_tot = mixer(qs, state)
    assert q_tot.shape == (4, 5)
    (grad,) = torch.autograd.grad(q_tot.sum(), qs)
    assert (grad >= 0).all()
    for agent in range(3):
        bumped = qs.detach().clone()
        bumped[..., agent] += 1.0
        assert (mixer(bumped, state) >= q_tot.detach()).all()


def test_vdn_sums():
    qs = torch.randn(4, 3)
    assert isinstance(make_mixer("vdn", 3, 7), VDNMixer)
    torch.testing.assert_close(VDNMixer()(qs, torch.randn(4, 7)), qs.sum(-1))


def test_unknown_mixer():
    with pytest.raises(ValueError, match=r"'qtran'.*qmix, vdn"):
        make_mixer("qtran", 3, 7)
