import pytest
import torch

from k24_rllib.models import RecurrentAgent
from k24_rllib.sparsity import (
    K24Linear,
    check_nm_sparse,
    compress_nm,
    compressed_nbytes,
    decompress_nm,
    export_masked_weights,
    is_nm_sparse,
    to_semi_structured,
)


@pytest.mark.parametrize("n, m, in_features", [(2, 4, 16), (2, 4, 10), (4, 8, 24)])
def test_compressed_round_trip_is_exact(n, m, in_features):
    torch.manual_seed(0)
    layer = K24Linear(in_features, 6, n_masks=2, n=n, m=m, hetero_init_scale=1.0)
    for weight in layer.masked_weights():
        packed = compress_nm(weight, n, m)
        assert packed.indices.dtype == torch.uint8
        assert packed.values.shape == packed.indices.shape == (6, layer.n_groups * n)
        assert torch.equal(decompress_nm(packed), weight)
        assert compressed_nbytes(packed) < weight.numel() * weight.element_size()


def test_round_trip_with_groups_holding_fewer_than_n_non_zeros():
    weight = torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0], [1.5, 0.0, 0.0, -2.0, 0.0, 0.0, 0.0, 0.0]])
    assert torch.equal(decompress_nm(compress_nm(weight)), weight)


def test_non_nm_weight_rejected_with_location():
    weight = torch.zeros(3, 8)
    weight[2, 4:7] = 1.0
    assert not is_nm_sparse(weight) and is_nm_sparse(torch.zeros(3, 8))
    with pytest.raises(ValueError, match=r"not 2:4 sparse: row 2, group 1 \(columns 4\.\.7\) has 3 non-zeros"):
        check_nm_sparse(weight)
    with pytest.raises(ValueError, match="row 2, group 1"):
        compress_nm(weight)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU error path")
def test_semi_structured_needs_cuda():
    with pytest.raises(RuntimeError, match=r"CUDA.*dtype float16, bfloat16 or int8"):
        to_semi_structured(torch.zeros(64, 64))


def test_export_masked_weights_per_layer():
    outer = torch.nn.Sequential(K24Linear(8, 4, n_masks=3), torch.nn.ReLU(), K24Linear(4, 2, n_masks=3))
    exported = export_masked_weights(outer)
    assert sorted(exported) == ["0", "2"]
    assert exported["0"].shape == (3, 4, 8) and not exported["0"].requires_grad
    assert all(is_nm_sparse(w) for w in exported["2"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (run by benchmarks/device_check.sh)")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_every_agents_mask_runs_on_the_sparse_kernel(dtype):
    """Each agent's argmax-masked weight converts to PyTorch's 2:4 layout and computes the dense product."""
    torch.manual_seed(0)
    layer = K24Linear(128, 64, n_masks=3, hetero_init_scale=3.0)
    x = torch.randn(256, 128, device="cuda", dtype=dtype)
    for weight in layer.masked_weights().detach().to("cuda", dtype):
        sparse = to_semi_structured(weight)
        assert torch.equal(sparse.to_dense(), weight)
        out = torch.nn.functional.linear(x, sparse)
        reference = x.double() @ weight.double().T
        assert (out.double() - reference).norm() / reference.norm() < 1e-2
    with pytest.raises(RuntimeError, match="the weight on CUDA"):
        to_semi_structured(weight.cpu())


def test_export_holds_the_masked_layers_only():
    agent = RecurrentAgent(12, 5, 3, hidden_dim=16, masked_layers=("fc2", "fc3"))
    exported = export_masked_weights(agent)
    assert list(exported) == ["fc2", "fc3"] and exported["fc2"].shape == (3, 16, 16)
