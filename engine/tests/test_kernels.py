"""Conv-to-GEMM lowering, sparse model surgery, compressed sizes; the 2:4 GPU path where present."""

import copy
import math

import pytest
import torch
from conftest import NM_2_4
from torch import nn

from sparsegrid_engine.kernels import (
    SparseConvAsGemm,
    bsr_compressed_bytes,
    build_sparse_model,
    is_two_four,
    lower_conv,
    nm_compressed_bytes,
    semi_structured,
    sparse_kernel_unavailable,
    weight_storage,
)
from sparsegrid_engine.models import build_model
from sparsegrid_engine.sparsity import apply_sparsity, from_gemm_view, gemm_view, n_m_mask

pytestmark = pytest.mark.usefixtures("two_threads")


def _has_sparse_tensor_cores() -> bool:
    return torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 0)


needs_gpu = pytest.mark.skipif(not _has_sparse_tensor_cores(), reason="needs a CUDA GPU with sparse tensor cores")


@pytest.mark.parametrize(
    "kernel, stride, padding, dilation, bias",
    [
        (3, 1, 1, 1, False),
        (3, 2, 1, 1, True),
        (1, 1, 0, 1, True),
        (1, 2, 0, 1, False),
        (5, 1, 2, 2, True),
        ((3, 1), (2, 1), (1, 0), 1, False),
        (1, 1, 1, 1, False),  # 1x1 with padding goes through unfold
    ],
)
def test_lowered_conv_equals_the_conv_in_fp32(kernel, stride, padding, dilation, bias):
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 12, kernel, stride, padding, dilation, bias=bias)
    with torch.no_grad():
        conv.weight.mul_(from_gemm_view(n_m_mask(gemm_view(conv.weight), 2, 4), conv.weight.shape))
    gemm = lower_conv(conv)
    for x in (torch.randn(3, 8, 11, 9), torch.randn(3, 8, 11, 9).contiguous(memory_format=torch.channels_last)):
        with torch.no_grad():
            torch.testing.assert_close(gemm(x), conv(x), rtol=1e-5, atol=1e-5)


def test_the_gemm_weight_of_a_two_four_masked_conv_is_two_four_along_rows():
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 32, 3, padding=1)
    model = nn.Sequential(conv)
    apply_sparsity(model, {"kind": "n_m", "n": 2, "m": 4})
    gemm = lower_conv(conv)
    assert gemm.weight.shape == (32, 3 * 3 * 16)
    assert is_two_four(gemm.weight)
    assert torch.equal(gemm.weight, conv.weight.detach().permute(0, 2, 3, 1).reshape(32, -1))
    # The layout matters: the same weight flattened (in, kh, kw) is not 2:4 along its rows,
    # so a kernel fed that matrix would compute with the wrong pattern.
    assert not is_two_four(conv.weight.detach().reshape(32, -1))


def test_is_two_four_counts_zeros_per_group_of_four():
    assert is_two_four(torch.tensor([[1.0, 0, 2, 0, 0, 0, 0, 3]]))
    assert not is_two_four(torch.tensor([[1.0, 1, 2, 0, 0, 0, 0, 3]]))
    assert not is_two_four(torch.tensor([[1.0, 0, 0, 0, 0, 0]]))  # 6 is not a multiple of 4


def test_grouped_convs_are_refused_by_the_lowering():
    with pytest.raises(ValueError, match="groups=4"):
        SparseConvAsGemm(nn.Conv2d(8, 8, 3, groups=4))


@pytest.mark.parametrize("model_name", ["resnet18", "mobilenet_v2"])
def test_a_sparse_copy_with_every_two_four_layer_lowered_gives_the_same_outputs(model_name):
    torch.manual_seed(0)
    model = build_model(model_name).eval()
    apply_sparsity(model, NM_2_4)
    received = []

    def dense_stand_in(matrix):  # what a sparse format would be handed: must already be 2:4
        assert is_two_four(matrix) and matrix.is_contiguous()
        received.append(tuple(matrix.shape))
        return matrix

    x = torch.randn(2, 3, 32, 32)
    sparse_model, entries = build_sparse_model(model, x, policy="all", to_sparse=dense_stand_in)
    with torch.no_grad():
        torch.testing.assert_close(sparse_model(x), model(x), rtol=1e-4, atol=1e-5)
    lowered = [e for e in entries if e["sparse"]]
    assert len(lowered) == len(received) > 10
    reasons = {e["layer"]: e["reason"] for e in entries if not e["sparse"]}
    first = next(name for name, m in model.named_modules() if isinstance(m, nn.Conv2d))
    assert "not 2:4" in reasons[first]
    if model_name == "mobilenet_v2":
        assert any("grouped convolution" in r for r in reasons.values())
    swapped = dict(sparse_model.named_modules())
    assert all(isinstance(swapped[e["layer"]], (SparseConvAsGemm, nn.Linear)) for e in lowered)
    assert not any(isinstance(m, SparseConvAsGemm) for m in model.modules()), "the original must stay intact"


def test_auto_policy_keeps_only_layers_whose_sparse_form_timed_faster():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 1), nn.Flatten(), nn.Linear(32 * 64, 16)
    ).eval()
    apply_sparsity(model, {"kind": "n_m", "n": 2, "m": 4})
    x = torch.randn(2, 16, 8, 8)
    sparse_model, entries = build_sparse_model(model, x, policy="auto", to_sparse=None)
    assert len(entries) == 3
    for entry in entries:
        assert entry["dense_ms"] > 0 and entry["sparse_ms"] > 0
        assert entry["sparse"] == (entry["sparse_ms"] < entry["dense_ms"])
        if not entry["sparse"]:
            assert "faster" in entry["reason"]
    with torch.no_grad():
        torch.testing.assert_close(sparse_model(x), model(x), rtol=1e-4, atol=1e-5)


def test_no_sparse_kernel_on_cpu_and_the_reason_says_so():
    reason = sparse_kernel_unavailable("cpu")
    assert reason.startswith("no sparse kernel: CPU")


def test_nm_sizes_match_hand_computed_bytes():
    # 16 entries at 2:4 fp32: 8 kept x 4 bytes + 8 x 2 bits = 32 + 2.
    assert nm_compressed_bytes(16, 2, 4, 4) == 34
    # A 64x576 fp16 conv GEMM: 18432 kept x 2 bytes + 18432 x 2 bits / 8.
    assert nm_compressed_bytes(64 * 576, 2, 4, 2) == 36864 + 4608
    # 1:8 needs 3 index bits per kept value: 8 kept x 4 bytes + ceil(24 / 8).
    assert nm_compressed_bytes(64, 1, 8, 4) == 32 + 3
    with pytest.raises(ValueError, match="groups of m=4"):
        nm_compressed_bytes(10, 2, 4, 4)


@pytest.mark.filterwarnings("ignore:Sparse BSR tensor support is in beta")
def test_bsr_sizes_match_hand_computed_bytes_and_torch_bsr_tensors():
    # 8x8 matrix, 4x4 blocks, 2 nonzero blocks, fp32: 2 x (64 + 4) + 3 row pointers x 4.
    assert bsr_compressed_bytes(2, 2, (4, 4), 4) == 136 + 12
    torch.manual_seed(0)
    matrix = torch.randn(16, 24)
    matrix[0:4, 4:8] = 0
    matrix[8:12, :] = 0
    bsr = matrix.to_sparse_bsr((4, 4))
    # The same structure as torch stores it, with int32 indices.
    expected = bsr.values().numel() * 4 + bsr.col_indices().numel() * 4 + bsr.crow_indices().numel() * 4
    assert bsr.values().shape[0] == 24 - 1 - 6
    assert bsr_compressed_bytes(17, 4, (4, 4), 4) == expected


def test_weight_storage_counts_masked_layers_compressed_and_the_rest_dense():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Conv2d(8, 16, 3), nn.Flatten(), nn.Linear(16, 8))
    plan = apply_sparsity(model, {"kind": "n_m", "n": 2, "m": 4})
    storage = weight_storage(model, plan, value_bytes=4)
    dense = sum(p.numel() for p in model.parameters()) * 4
    assert storage["dense_bytes"] == dense
    # conv 2 (16x72) and the linear (8x16) are 2:4; conv 1 has 27-entry rows and stays dense.
    assert set(plan.masks) == {"2.weight", "4.weight"}
    saved = (16 * 72 * 4 - nm_compressed_bytes(16 * 72, 2, 4, 4)) + (8 * 16 * 4 - nm_compressed_bytes(128, 2, 4, 4))
    assert storage["compressed_bytes"] == dense - saved
    assert weight_storage(model, None)["compressed_bytes"] == dense

    block_model = nn.Sequential(nn.Linear(8, 8))
    block_plan = apply_sparsity(
        block_model, {"kind": "block", "shape": [4, 4], "select": "magnitude", "probability": 0.5}
    )
    block = weight_storage(block_model, block_plan)
    assert block["compressed_bytes"] == bsr_compressed_bytes(2, 2, (4, 4), 4) + 8 * 4  # + the dense bias


# ---------------------------------------------------------------------------------------
# CUDA: real 2:4 kernels (skipped without a GPU that has sparse tensor cores)


@needs_gpu
def test_semi_structured_linear_matches_masked_dense_in_fp16():
    torch.manual_seed(0)
    linear = nn.Linear(1024, 512).half().cuda()
    with torch.no_grad():
        linear.weight.mul_(n_m_mask(linear.weight, 2, 4))
    x = torch.randn(64, 1024, device="cuda", dtype=torch.float16)
    expected = linear(x)
    linear.weight = nn.Parameter(semi_structured(linear.weight.detach()), requires_grad=False)
    torch.testing.assert_close(linear(x), expected, rtol=1e-2, atol=1e-2)


@needs_gpu
def test_resnet18_runs_through_cusparselt_with_the_masked_models_outputs():
    torch.manual_seed(0)
    model = build_model("resnet18").eval()
    apply_sparsity(model, NM_2_4)
    half = copy.deepcopy(model).half().cuda().to(memory_format=torch.channels_last)
    x = torch.randn(64, 3, 32, 32, device="cuda").half().contiguous(memory_format=torch.channels_last)
    sparse_model, entries = build_sparse_model(half, x, policy="all")
    assert sum(e["sparse"] for e in entries) >= 15
    with torch.inference_mode():
        expected = half(x).float()
        actual = sparse_model(x).float()
    scale = float(expected.abs().max())
    torch.testing.assert_close(actual, expected, rtol=2e-2, atol=2e-2 * scale)
    assert not math.isnan(scale)
