"""bench/gpu_engine.py's sparse path on CPU, through torch's real semi-structured tensor class
and dispatch, with CPU stand-ins for the two cuSPARSELt ops and the CUDA-only device check.

The stand-ins follow torch 2.11's rules (torch/sparse/semi_structured.py, _semi_structured_ops.py
and aten's cuSPARSELtOps.cpp):
- torch._cslt_compress(dense (m, k), 16-bit, contiguous) returns one 1-D tensor of the same
  dtype holding m*k*9/16 elements: the m*k/2 kept values row-major (what .values() views as
  (m, k/2)), then the metadata (what .indices() views as int16 (m, k/16)): here 4 bits per
  group of 4 (two 2-bit positions), 4 groups per 16-bit word. The real layout of the metadata
  is cuSPARSELt's own; only the sizes and the values' place are torch's contract.
- torch._cslt_sparse_mm(compressed_A, dense_B (k, n), bias, alpha, out_dtype, transpose_result,
  alg_id, ...) infers m = numel * 16 / 9 / k as aten does, reads B row-major or column-major
  only (one leading dimension, as its dense descriptor), accumulates in fp32, adds bias per
  output row (m), and returns (n, m) contiguous when transpose_result, else (m, n).
- the shape/dtype/contiguity rules stay torch's own: its validator runs on a proxy that only
  claims to be on CUDA.
So the bench's conversion (semi_structured), the tensor subclass's dispatch (linear, t, mm,
addmm, padding), the conv-as-GEMM lowering and the bench's per-layer and per-variant checks all
run for real; only the two kernels are replaced.
"""

import importlib.util
import json
import re
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import NM_2_4
from torch import nn
from torch.sparse import SparseSemiStructuredTensor

from sparsegrid_engine import kernels
from sparsegrid_engine.kernels import build_sparse_model, semi_structured, sparse_kernel_unavailable
from sparsegrid_engine.models import build_model
from sparsegrid_engine.sparsity import apply_sparsity, n_m_mask

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench" / "gpu_engine.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("gpu_engine_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------
# The stand-ins


class _ClaimsCuda:
    """A tensor proxy for torch's own validator: everything real except the device."""

    is_cuda = True

    def __init__(self, tensor):
        self._tensor = tensor

    def __getattr__(self, name):
        return getattr(self._tensor, name)


class CusparseltStandIn:
    SIXTEEN_BIT = (torch.float16, torch.bfloat16)

    def __init__(self):
        self.compressed = 0
        self.multiplied = []  # (m, k, n) per call
        self.fail_shapes: set = set()  # (m, k): raise, as a broken kernel would
        self.wrong_shapes: set = set()  # (m, k): return a wrong result
        self.delay_s = 0.0  # host-side time per call, as torch's per-call cuSPARSELt plan set-up costs
        self.configs = []  # (alg_id, split_k, split_k_mode) per call

    def compress(self, dense: torch.Tensor) -> torch.Tensor:
        if dense.dim() != 2 or not dense.is_contiguous():
            raise RuntimeError("stand-in _cslt_compress: needs a contiguous 2-D matrix")
        if dense.dtype not in self.SIXTEEN_BIT:
            raise RuntimeError(f"stand-in _cslt_compress: covers fp16/bf16 only, got {dense.dtype}")
        m, k = dense.shape
        if k % 16:
            raise RuntimeError(f"stand-in _cslt_compress: k={k} is not a multiple of 16")
        groups = dense.reshape(m, k // 4, 4)
        nonzero = groups != 0
        if bool((nonzero.sum(dim=-1) > 2).any()):
            # cuSPARSELt would compress it anyway and compute garbage; refusing is stricter.
            raise ValueError("stand-in _cslt_compress: the matrix is not 2:4")
        key = (~nonzero).to(torch.int64) * 4 + torch.arange(4)
        positions = key.argsort(dim=-1)[..., :2].sort(dim=-1).values  # (m, k/4, 2): nonzeros first
        values = groups.gather(-1, positions).reshape(-1)
        code = (positions[..., 0] | (positions[..., 1] << 2)).reshape(m, k // 16, 4)
        word = code[..., 0] | (code[..., 1] << 4) | (code[..., 2] << 8) | (code[..., 3] << 12)
        word = torch.where(word >= 1 << 15, word - (1 << 16), word).to(torch.int16)
        self.compressed += 1
        return torch.cat([values, word.reshape(-1).view(dense.dtype)])

    @staticmethod
    def decompress(packed: torch.Tensor, m: int, k: int) -> torch.Tensor:
        kept = m * k // 2
        values = packed[:kept].reshape(m, k // 4, 2)
        word = (packed[kept:].view(torch.int16).to(torch.int64) & 0xFFFF).reshape(m, k // 16, 1)
        code = ((word >> torch.tensor([0, 4, 8, 12])) & 0xF).reshape(m, k // 4)
        positions = torch.stack([code & 3, (code >> 2) & 3], dim=-1)
        dense = torch.zeros(m, k // 4, 4, dtype=packed.dtype)
        return dense.scatter(-1, positions, values).reshape(m, k)

    def sparse_mm(
        self,
        compressed_A,
        dense_B,
        bias=None,
        alpha=None,
        out_dtype=None,
        transpose_result=False,
        alg_id=0,
        split_k=1,
        split_k_mode=-1,
    ):
        if dense_B.dim() != 2:
            raise RuntimeError("stand-in _cslt_sparse_mm: dense_B must be 2-D")
        if compressed_A.dtype != dense_B.dtype or dense_B.dtype not in self.SIXTEEN_BIT:
            raise RuntimeError(f"stand-in _cslt_sparse_mm: dtypes {compressed_A.dtype} and {dense_B.dtype}")
        if not (dense_B.is_contiguous() or dense_B.t().is_contiguous()):
            raise RuntimeError(
                f"stand-in _cslt_sparse_mm: dense_B strides {dense_B.stride()} are neither row- nor column-major"
            )
        k, n = dense_B.shape
        m = compressed_A.numel() * 16 // 9 // k  # aten: (compressed_A.numel() * 16 / compression_factor) / k
        if m * k * 9 != compressed_A.numel() * 16:
            raise RuntimeError(f"stand-in _cslt_sparse_mm: {compressed_A.numel()} elements hold no (m, {k}) matrix")
        if (m, k) in self.fail_shapes:
            raise RuntimeError(f"stand-in kernel failure for a {m}x{k} sparse operand")
        if self.delay_s:
            time.sleep(self.delay_s)
        self.multiplied.append((m, k, n))
        self.configs.append((alg_id, split_k, split_k_mode))
        out = self.decompress(compressed_A, m, k).float() @ dense_B.float()
        if alpha is not None:
            out = out * alpha.float()
        if bias is not None:
            if bias.shape != (m,):
                raise RuntimeError(f"stand-in _cslt_sparse_mm: bias {tuple(bias.shape)} is not ({m},)")
            out = out + bias.float()[:, None]
        if (m, k) in self.wrong_shapes:
            out = out * 1.5
        out = out.to(out_dtype or dense_B.dtype)
        return out.t().contiguous() if transpose_result else out


@pytest.fixture
def standin(monkeypatch):
    """torch's semi-structured path on CPU with the cuSPARSELt kernels and device check stood in."""
    fake = CusparseltStandIn()
    monkeypatch.setattr(torch, "_cslt_compress", fake.compress)
    monkeypatch.setattr(torch, "_cslt_sparse_mm", fake.sparse_mm)
    real_validate = SparseSemiStructuredTensor._validate_device_dim_dtype_shape.__func__

    def validate(cls, original_tensor):
        return real_validate(cls, _ClaimsCuda(original_tensor))

    monkeypatch.setattr(SparseSemiStructuredTensor, "_validate_device_dim_dtype_shape", classmethod(validate))
    if not torch.backends.cusparselt.is_available():  # a CPU-only torch build
        monkeypatch.setattr(torch.backends.cusparselt, "is_available", lambda: True)
    return fake


def _two_four(rows, cols, dtype=torch.float16, seed=0):
    weight = torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed)).to(dtype)
    return (weight * n_m_mask(weight, 2, 4)).contiguous()


# ---------------------------------------------------------------------------------------
# The stand-in itself


def test_the_stand_in_keeps_torchs_layout_and_shape_rules(standin):
    weight = _two_four(32, 64)
    sparse = semi_structured(weight)
    assert type(sparse).__name__ == "SparseSemiStructuredTensorCUSPARSELT" and sparse.shape == (32, 64)
    assert sparse.packed.numel() == 32 * 64 * 9 // 16  # aten's compression factor 9/16 for 16-bit
    kept = weight.reshape(32, 16, 4)[weight.reshape(32, 16, 4) != 0].reshape(32, 32)
    torch.testing.assert_close(sparse.values(), kept, rtol=0, atol=0)  # torch's own .values() view
    assert sparse.indices().dtype == torch.int16 and sparse.indices().shape == (32, 4)
    torch.testing.assert_close(CusparseltStandIn.decompress(sparse.packed, 32, 64), weight, rtol=0, atol=0)

    x = torch.randn(5, 64).half()  # 5 tokens: torch pads them to 8 for cuSPARSELt
    bias = torch.randn(32).half()
    with torch.inference_mode():
        torch.testing.assert_close(
            F.linear(x, sparse), F.linear(x.float(), weight.float()).half(), rtol=1e-2, atol=1e-2
        )
        torch.testing.assert_close(
            F.linear(x, sparse, bias), F.linear(x.float(), weight.float(), bias.float()).half(), rtol=1e-2, atol=1e-2
        )
    assert [call[:2] for call in standin.multiplied] == [(32, 64), (32, 64)]
    assert all(n % 8 == 0 for *_, n in standin.multiplied)

    with pytest.raises(RuntimeError, match="multiple of"):  # torch's rule: rows >= 16 and a multiple of 16
        semi_structured(_two_four(8, 64))
    with pytest.raises(RuntimeError, match="not a supported dtype"):  # cuSPARSELt: no fp32
        semi_structured(_two_four(32, 64, torch.float32))
    with pytest.raises(ValueError, match="not 2:4"):
        semi_structured(torch.ones(32, 64, dtype=torch.float16))


def test_no_sparse_kernel_without_cusparselt_and_the_reason_says_so(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    monkeypatch.setattr(torch.backends.cusparselt, "is_available", lambda: False)
    reason = sparse_kernel_unavailable("cuda")
    assert reason.startswith("no sparse kernel:") and "cuSPARSELt" in reason
    assert kernels.cusparselt_status() == {"available": False, "version": None}
    monkeypatch.setattr(torch.backends.cusparselt, "is_available", lambda: True)
    assert sparse_kernel_unavailable("cuda") is None
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    assert "capability 7.5" in sparse_kernel_unavailable("cuda")


def test_resnet18_lowers_every_2_4_layer_through_the_cusparselt_dispatch(standin):
    torch.manual_seed(0)
    model = build_model("resnet18").eval()
    apply_sparsity(model, NM_2_4)
    half = model.half().to(memory_format=torch.channels_last)
    x = torch.randn(1, 3, 32, 32).half().contiguous(memory_format=torch.channels_last)
    sparse_model, entries = build_sparse_model(half, x, policy="all")
    assert sum(e["sparse"] for e in entries) == 19, [e for e in entries if not e["sparse"]]
    assert all(
        type(m.weight).__name__ == "SparseSemiStructuredTensorCUSPARSELT"
        for m in sparse_model.modules()
        if isinstance(m, kernels.SparseConvAsGemm)
    )
    with torch.inference_mode():
        expected = half(x).float()
        actual = sparse_model(x).float()
    assert len(standin.multiplied) == 19
    torch.testing.assert_close(actual, expected, rtol=2e-2, atol=2e-2 * float(expected.abs().max()))


# ---------------------------------------------------------------------------------------
# The bench on the stand-in


class Tiny(nn.Module):
    """Every case of the bench's sparse path in a few layers: a skipped stem, a 3x3 conv and a
    strided 1x1 conv that lower, a conv cuSPARSELt refuses (8 rows), one with 8 columns, a linear
    layer with bias (the addmm path), and a skipped classifier."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)  # GEMM 32x144
        self.bn2 = nn.BatchNorm2d(32)
        self.conv3 = nn.Conv2d(32, 32, 1, stride=2, bias=False)  # GEMM 32x32
        self.conv4 = nn.Conv2d(32, 8, 3, padding=1, bias=False)  # GEMM 8x288: too few rows
        self.conv5 = nn.Conv2d(8, 32, 1)  # GEMM 32x8: too few columns
        self.fc1 = nn.Linear(32, 32)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.conv5(F.relu(self.conv4(F.relu(self.conv3(x))))))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(F.relu(self.fc1(x)))


STANDIN_SIZES = {
    "device": "cpu",
    "dtype": "float16",
    "smoke": (128, 128, 128),
    "gemm": (64, 128, 128),
    "linear": [(8, 64, 128)],
    "models": ["tiny"],
    "batch_sizes": [2],
    "warmup": 1,
    "iterations": 2,
    "cap": {"variant_s": 60.0, "min_calls": 3},
    "calibration": (1, 8),
    "kernel_only": {
        "calls": 2,
        "target_ms": 0.5,
        "samples": 2,
        "warmup": 1,
        "model_replays": 1,
        "model_samples": 2,
        "layer_replays": 1,
        "layer_samples": 2,
        "search": False,
    },
    "min_s": {"smoke": 0, "gemm": 0, "linear": 0, "models": 0, "engine": 0},
    "reserve_s": 0,
}


def _run_bench(tmp_path, monkeypatch, sizes=STANDIN_SIZES, **config):
    bench = load_bench()
    monkeypatch.setattr(bench, "build_model", lambda name: Tiny())
    out = tmp_path / "out"
    cfg = bench.Config(
        out,
        sizes=sizes,
        device="cpu",
        parts=("smoke", "gemm", "linear", "models"),
        budget_s=600,
        watchdog=False,
        **config,
    )
    code = bench.run(cfg)
    return code, json.loads((out / "gpu_engine.json").read_text()), (out / "gpu_engine.md").read_text(), bench


def test_the_bench_runs_every_sparse_step_through_the_stand_in(tmp_path, monkeypatch, standin):
    code, report, table, _ = _run_bench(tmp_path, monkeypatch)
    assert code == 0, report["steps"]
    assert [s["status"] for s in report["steps"]] == ["ok"] * 4
    assert [s["step"] for s in report["steps"]] == ["smoke", "gemm/64x128x128", "linear/8x64x128", "models/tiny/bs2"]
    smoke = report["parts"]["smoke"]
    assert (
        smoke["ok"] and smoke["format"] == "SparseSemiStructuredTensorCUSPARSELT" and smoke["backend"] == "cusparselt"
    )
    assert smoke["packed_numel"] == 128 * 128 * 9 // 16

    gemm = report["parts"]["gemm"]
    assert gemm["sparse"]["n"] == 2 and gemm["speedup"] > 0 and gemm["max_abs_error"] < 0.5
    assert "capped" not in gemm  # fast calls: every planned call timed
    (linear,) = report["parts"]["linear"]
    assert linear["tokens"] == 8 and linear["sparse"]["n"] == 2
    for row in (gemm, linear):  # every GEMM shape gets kernel-only timings now, not only the small ones
        assert set(row["kernel_only"]["variants"]) == {"dense", "sparse"}
        assert "perf_counter" in row["kernel_only"]["variants"]["sparse"]["method"]
        assert row["kernel_only"]["speedup"] > 0

    row = report["parts"]["models"]["tiny"]["batch_sizes"]["2"]
    assert row["all_sparse_layers"] == 3  # conv2, conv3, fc1
    assert row["check_all"] == "whole model against the masked model: passed"
    assert "layer_checks_all" not in row  # layer by layer only after a mismatch
    refused = {e["layer"]: e["reason"] for e in row["all_not_sparse"]}
    assert set(refused) == {"conv1", "conv4", "conv5", "fc"}
    assert "sparse format refused this shape (8, 288)" in refused["conv4"]
    assert "sparse format refused this shape (32, 8)" in refused["conv5"]
    for variant in ("dense", "masked", "sparse_all"):
        assert row[variant]["n"] == 2
    assert row["max_abs_error"]["sparse_all"] < 0.05
    assert row["cudnn"] == {"enabled": True, "benchmark": True, "deterministic": False}
    assert {"dense", "masked", "sparse_all"} <= set(row["kernel_only"]["variants"])
    assert row["sparse_layer_eager_ms"]["layers"] == 3
    # The auto policy decided every 2:4 layer on its own input, with a probe of a few calls.
    decisions = {d["layer"]: d for d in row["layer_timings"]}
    for layer in ("conv2", "conv3", "fc1"):
        assert decisions[layer]["sparse_eager_ms"] > 0 and decisions[layer]["dense_calls"] >= 1
    # Per distinct layer shape: cuDNN conv, unfold, dense and 2:4 GEMM on the same patches.
    shapes = {s["layers"][0]: s for s in row["layers_kernel_only"]["shapes"]}
    assert set(shapes) == {"conv2", "conv3", "fc1"}
    assert shapes["conv2"]["gemm"] == [2 * 32 * 32, 144, 32]
    assert set(shapes["conv2"]["variants"]) == {"conv", "patches", "gemm_dense", "gemm_sparse"}
    assert shapes["conv3"]["gemm"] == [2 * 16 * 16, 32, 32]  # 1x1 stride 2: a strided copy, still a kernel
    assert set(shapes["fc1"]["variants"]) == {"gemm_dense", "gemm_sparse"}
    assert shapes["conv2"]["gemm_speedup"] > 0 and shapes["conv2"]["layer_speedup_vs_conv"] > 0
    summary = row["layers_kernel_only"]["summary"]
    assert summary["shapes"] == 3 and summary["layers"] == 3 and "estimate_each_layer_faster_form_ms" in summary
    # The multiplications that ran are cuSPARSELt's: (m, k) of every lowered layer appears.
    assert {(32, 144), (32, 32)} <= {call[:2] for call in standin.multiplied}
    assert "| tiny | 2 |" in table and "| 8x64x128 |" in table and "kernel only" in table
    assert "Layers lowered to GEMM" in table and "| tiny | 2 | conv2 | 2048x144x32 |" in table
    assert "## Headline" in table and "- tiny batch 2: masked" in table
    assert "end to end" in report["timing"]["end_to_end"] and "CUDA graph" in report["timing"]["kernel_only"]


def _run_models_only(tmp_path, monkeypatch, *, broken_auto: bool, sizes=STANDIN_SIZES):
    bench = load_bench()
    real_build = bench.build_sparse_model

    def build(model, x, *, policy, to_sparse):
        assert policy == "all"  # auto is chosen from the 'all' copy's layers
        return real_build(model, x, policy=policy, to_sparse=to_sparse)

    def choose_auto(*args, **kwargs):
        raise RuntimeError("auto policy broke\nsecond line")

    monkeypatch.setattr(bench, "build_model", lambda name: Tiny())
    monkeypatch.setattr(bench, "build_sparse_model", build)
    if broken_auto:
        monkeypatch.setattr(bench, "choose_auto", choose_auto)
    out = tmp_path / "out"
    cfg = bench.Config(out, sizes=sizes, device="cpu", parts=("models",), budget_s=600, watchdog=False)
    code = bench.run(cfg)
    return code, json.loads((out / "gpu_engine.json").read_text()), (out / "gpu_engine.md").read_text()


def test_a_failing_layer_or_variant_is_recorded_and_the_rest_still_timed(tmp_path, monkeypatch, standin):
    standin.fail_shapes.add((32, 144))  # conv2's kernel raises
    code, report, table = _run_models_only(tmp_path / "a", monkeypatch, broken_auto=True)
    assert code == 1
    (step,) = report["steps"]
    assert step["status"] == "ok with failures"
    row = report["parts"]["models"]["tiny"]["batch_sizes"]["2"]
    # The whole-model check failed, so every layer was checked on its own: conv2 went back to dense.
    assert "stand-in kernel failure" in row["check_all"] and row["check_all"].endswith("then layer by layer")
    failed = {f["layer"]: f["error"] for f in row["layer_checks_all"]["failed"]}
    assert failed == {"conv2": "RuntimeError: stand-in kernel failure for a 32x144 sparse operand"}
    assert row["layer_checks_all"]["passed"] == 2 and row["all_sparse_layers"] == 2
    assert row["sparse_all"]["n"] == 2 and row["max_abs_error"]["sparse_all"] < 0.05  # the rest still runs 2:4
    assert row["variant_errors"]["sparse_auto"] == "RuntimeError: auto policy broke | second line"
    assert row["variant_errors"]["sparse_all layer conv2"].startswith("RuntimeError: stand-in kernel failure")
    assert row["dense"]["n"] == 2 and row["masked"]["n"] == 2  # dense and masked are timed all the same
    assert "Traceback" not in table and "auto policy broke" in table

    standin.wrong_shapes.add((32, 32))  # now conv3 and fc1 compute wrong results too
    code, report, table = _run_models_only(tmp_path / "b", monkeypatch, broken_auto=False)
    assert code == 1
    row = report["parts"]["models"]["tiny"]["batch_sizes"]["2"]
    failed = {f["layer"]: f["error"] for f in row["layer_checks_all"]["failed"]}
    assert set(failed) == {"conv2", "conv3", "fc1"} and row["all_sparse_layers"] == 0
    assert failed["conv3"].startswith("AssertionError: Tensor-likes are not close!")
    assert row["notes"]["sparse_all"] == "no layer could run sparse"
    assert "sparse_all" not in row and "sparse_auto" not in row
    assert row["dense"]["n"] == 2 and row["masked"]["n"] == 2


def test_time_capped_gives_slow_variants_fewer_calls_and_still_times_the_next_ones():
    bench = load_bench()
    called = Counter()

    def sleeper(name, seconds):
        def call():
            called[name] += 1
            time.sleep(seconds)

        return call

    def broken():
        raise RuntimeError("kernel exploded")

    variants = {  # the slow ones first: the ones after them must still be timed
        "glacial": sleeper("glacial", 0.3),  # 3 calls would not fit in the cap
        "slow": sleeper("slow", 0.05),  # ~10 calls fit, not the planned 2 + 50
        "broken": broken,
        "fast": sleeper("fast", 0.0),
    }
    errors, capped = {}, {}
    began = time.monotonic()
    times = bench.time_capped(
        variants, device="cpu", warmup=2, iterations=50, errors=errors, capped=capped, cap_s=0.5, min_calls=3
    )
    elapsed = time.monotonic() - began
    assert elapsed < 4, elapsed  # about cap + the glacial probe; never 52 calls x 0.3 s

    assert len(times["glacial"]) == 1 and called["glacial"] == 1  # its probe is its only sample
    assert capped["glacial"]["calls"] == 1 and capped["glacial"]["planned"] == 50
    assert re.match(r"eager call ~\d+ ms: 3 calls would not fit in the 0.5 s cap", capped["glacial"]["reason"])
    assert "only sample" in capped["glacial"]["reason"]

    assert 3 <= len(times["slow"]) <= 9 and capped["slow"]["calls"] == len(times["slow"])
    assert called["slow"] == len(times["slow"]) + 1  # the probe, then no warm-up: straight to the timed calls
    assert re.search(
        r"eager call ~\d+ ms: \d+ calls timed instead of 2 \+ 50 \(cap 0.5 s per variant\)", capped["slow"]["reason"]
    )
    assert capped["slow"]["first_call_ms"] >= 50

    assert errors == {"broken": "timing: RuntimeError: kernel exploded"} and "broken" not in times
    assert len(times["fast"]) == 50 and "fast" not in capped


SLOW_SIZES = {
    **STANDIN_SIZES,
    "batch_sizes": [2, 4],
    "warmup": 2,
    "iterations": 20,
    "cap": {"variant_s": 1.2, "min_calls": 3},
    # A 2:4 layer call of > 40 ms next to a dense twin under 50 ms: rejected without timing.
    "auto": {
        "slow_ms": 40.0,
        "dense_fast_ms": 50.0,
        "slow_ratio": 1000.0,
        "layer_cap_s": 0.5,
        "total_cap_s": 5.0,
        "warmup": 1,
        "iterations": 5,
    },
    "kernel_only": {**STANDIN_SIZES["kernel_only"], "samples": 10, "model_samples": 10, "layer_samples": 3},
}


def test_a_slow_eager_sparse_call_is_capped_with_its_count_and_reason_and_the_run_goes_on(
    tmp_path, monkeypatch, standin
):
    """The H200 run of 2026-11-30: every eager 2:4 call paid ~210 ms of host-side set-up, and the
    uncapped models step never finished. Here each stand-in 2:4 call sleeps 120 ms."""
    standin.delay_s = 0.12
    began = time.monotonic()
    code, report, table, _ = _run_bench(tmp_path, monkeypatch, sizes=SLOW_SIZES)
    elapsed = time.monotonic() - began
    assert code == 0, report["steps"]
    assert [s["step"] for s in report["steps"]] == [
        "smoke",
        "gemm/64x128x128",
        "linear/8x64x128",
        "models/tiny/bs2",
        "models/tiny/bs4",  # the next step ran: nothing hung on the slow calls
    ]
    assert all(s["status"] == "ok" for s in report["steps"]), report["steps"]
    assert elapsed < 90, elapsed

    gemm = report["parts"]["gemm"]
    assert gemm["dense"]["n"] == 20 and "dense" not in gemm["capped"]
    record = gemm["capped"]["sparse"]
    assert gemm["sparse"]["n"] == record["calls"]
    if record["calls"] < 3:  # a busy machine: 3 stand-in calls did not fit in the cap
        assert record["calls"] == 1 and "the only sample" in record["reason"]
    else:
        assert record["calls"] < 20
        assert re.search(r"eager call ~\d+ ms: \d+ calls timed instead of 2 \+ 20 \(cap 1.2 s", record["reason"])
    assert gemm["sparse_first_call"]["total_ms"] >= 120
    assert f"sparse: {record['reason']}" in table  # the note column of the F.linear table
    kernel = gemm["kernel_only"]["variants"]
    assert kernel["dense"]["n"] == 10 and kernel["sparse"]["n"] < 10 and "cap" in kernel["sparse"]["capped"]

    for batch in ("2", "4"):
        row = report["parts"]["models"]["tiny"]["batch_sizes"][batch]
        for variant in ("dense", "masked"):  # timed in full, unless this busy CPU made them slow too
            capped = row["capped"].get(variant)
            assert row[variant]["n"] == 20 if capped is None else capped["first_call_ms"] * 22 > 1200
        # The cap's rule: at least 3 calls where 3 fit, else the first call is the only sample
        # (on a busy CI machine the stand-in's 2:4 forward can be slow enough for that).
        calls = row["sparse_all"]["n"]
        assert row["capped"]["sparse_all"]["calls"] == calls
        if calls < 3:
            assert calls == 1 and "the only sample" in row["capped"]["sparse_all"]["reason"]
        else:
            assert calls < 20
        assert "eager call" in row["capped"]["sparse_all"]["reason"]
        # auto: every 2:4 layer rejected on its slow eager call, none timed at length
        decisions = {d["layer"]: d for d in row["layer_timings"] if d["layer"] in ("conv2", "conv3", "fc1")}
        for decision in decisions.values():
            assert decision["rejected_slow"] and decision["sparse_ms"] is None
            assert decision["reason"].startswith("rejected for auto without further timing: 2:4 eager call ~")
        assert row["auto_sparse_layers"] == []
        assert "3 rejected as slow eager 2:4 calls" in row["notes"]["sparse_auto"]
        assert "sparse_all" in row["kernel_only"]["variants"]
        assert len(row["layers_kernel_only"]["shapes"]) == 3


def test_the_searched_configuration_reaches_the_kernel_with_torchs_operand_layout(monkeypatch, standin):
    bench = load_bench()
    weight = _two_four(64, 128)
    x = torch.randn(16, 128).half()
    sparse = semi_structured(weight)
    searched = []

    def mm_search(compressed_a, dense_b, bias, alpha, out_dtype, transpose_result):
        searched.append((dense_b.shape, dense_b.stride(), transpose_result))
        return (3, 2, 1, 9)

    monkeypatch.setattr(torch._C._cusparselt, "mm_search", mm_search, raising=False)
    call, config = bench.searched_sparse_mm(sparse, x)
    assert config == {"alg_id": 3, "split_k": 2, "split_k_mode": 1, "max_alg_id": 9}
    # B as torch's linear dispatch passes it: x.t(), column-major; the result transposed in the kernel
    assert searched == [((128, 16), (1, 128), True)]
    with torch.inference_mode():
        out = call()
    assert standin.configs[-1] == (3, 2, 1)
    torch.testing.assert_close(out.float(), F.linear(x.float(), weight.float()), rtol=1e-2, atol=1e-2)


def test_the_bench_says_plainly_when_the_sparse_path_is_unavailable(tmp_path, monkeypatch, standin):
    reason = "no sparse kernel: this torch build (x) has no cuSPARSELt"
    code, report, table, _ = _run_bench(tmp_path, monkeypatch, sparse_unavailable=reason)
    assert code == 1
    assert report["sparse_path"]["unavailable"] == reason
    assert f"SPARSE PATH UNAVAILABLE: {reason}" in table
    assert report["parts"]["gemm"]["errors"]["sparse"] == f"not run: {reason}"
    row = report["parts"]["models"]["tiny"]["batch_sizes"]["2"]
    assert row["dense"]["n"] == 2 and "sparse_all" not in row and "sparse_auto" not in row
    assert standin.multiplied == [] or all(call[:2] == (128, 128) for call in standin.multiplied)  # smoke only
