"""measure_model on CPU: every CONTRACT metric with its unit, honest nulls, MAC and memory counts."""

import copy
import functools

import numpy as np
import pytest
import torch
from conftest import BLOCK_4X4, NM_2_4
from torch import nn

from sparsegrid_engine.kernels import nm_compressed_bytes
from sparsegrid_engine.measure import (
    MEASURE_RANGES,
    count_macs,
    measure_model,
    percentile,
    time_interleaved,
    validate_measure_cfg,
)
from sparsegrid_engine.models import build_model
from sparsegrid_engine.protocol import InvalidTask
from sparsegrid_engine.sparsity import apply_sparsity

pytestmark = pytest.mark.usefixtures("two_threads")


QUICK = {
    "latency": {"batch_sizes": [2, 1], "warmup": 1, "iterations": 4, "precision": 0},
    "flops": True,
    "memory": True,
}
# The measurement names of engine/CONTRACT.md (accuracy, loss and training times come from train).
CONTRACT_NAMES = (
    "latency_ms",
    "latency_p10_ms",
    "latency_p90_ms",
    "latency_sparse_ms",
    "gmacs",
    "gmacs_effective",
    "params_m",
    "sparsity",
    "weight_mib",
    "weight_compressed_mib",
    "peak_mib",
)


@functools.cache
def _pristine(name):
    torch.manual_seed(0)
    return build_model(name)


@functools.cache
def _measured_resnet18_2_4():
    model = copy.deepcopy(_pristine("resnet18"))
    plan = apply_sparsity(model, NM_2_4)
    return model, plan, measure_model(model, plan=plan, method=NM_2_4, device="cpu", measure_cfg=QUICK)


def _hand_macs(model, x):
    """Conv and linear MACs from output shapes: out elements x (in/groups) x kh x kw."""
    total = []

    def hook(module, _args, output):
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total.append(output.numel() * module.in_channels // module.groups * kh * kw)
        else:
            total.append(output.numel() * module.in_features)

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return sum(total)


@pytest.mark.parametrize("model_name, low, high", [("resnet18", 0.50, 0.51), ("resnet50", 0.50, 0.51)])
def test_two_four_halves_the_effective_macs_of_resnets(model_name, low, high):
    model = copy.deepcopy(_pristine(model_name))
    plan = apply_sparsity(model, NM_2_4)
    metrics, units, details = measure_model(model, plan=plan, method=NM_2_4, device="cpu", measure_cfg={"flops": True})
    ratio = metrics["gmacs_effective"] / metrics["gmacs"]
    # Measured here: resnet18 0.5016 (0.2786 of 0.5554 G-MAC), resnet50 0.5007 (0.6498 of 1.2978); only the
    # 3-channel input conv and the classifier stay dense.
    assert low <= ratio <= high, f"{model_name}: effective/dense MACs = {ratio:.4f}"
    assert metrics["gmacs"] * 1e9 == _hand_macs(model, torch.zeros(1, 3, 32, 32))
    layer_sum = sum(entry["macs"] for entry in details["flops"]["layers"])
    assert layer_sum == details["flops"]["macs"]  # resnets: every MAC is in a conv or the classifier
    assert "1 MAC = 2 FLOPs" in units["gmacs"] and "1 MAC = 2 FLOPs" in units["gmacs_effective"]


def test_count_macs_agrees_with_output_shapes_on_depthwise_models():
    model = _pristine("mobilenet_v2").eval()
    x = torch.zeros(1, 3, 32, 32)
    total, per_layer = count_macs(model, x)
    assert total == _hand_macs(model, x)
    assert len(per_layer) == 53


def test_measure_model_on_cpu_returns_every_contract_metric_with_units():
    model, plan, (metrics, units, details) = _measured_resnet18_2_4()
    for name in CONTRACT_NAMES + (
        "latency_ms_bs2",
        "latency_ms_bs1",
        "latency_sparse_ms_bs1",
        "latency_p10_ms_bs1",
        "latency_p90_ms_bs2",
    ):
        assert name in metrics, name
        assert isinstance(units.get(name), str) and units[name], f"{name} has no unit"
    for name in CONTRACT_NAMES:
        if name != "latency_sparse_ms":
            assert isinstance(metrics[name], float), name
    # The unsuffixed latency is the first batch size's.
    assert metrics["latency_ms"] == metrics["latency_ms_bs2"] != metrics["latency_ms_bs1"]
    for bs in (1, 2):
        assert metrics[f"latency_p10_ms_bs{bs}"] <= metrics[f"latency_ms_bs{bs}"] <= metrics[f"latency_p90_ms_bs{bs}"]
        assert details["latency"]["batch_sizes"][str(bs)]["as_given"]["n"] == 4
    assert details["latency"]["threads"] == torch.get_num_threads()
    assert details["latency"]["device"]
    assert "CPU threads" in units["latency_ms"] and "batch size 2" in units["latency_ms"]


def test_latency_sparse_is_null_on_cpu_with_the_reason():
    _, _, (metrics, units, details) = _measured_resnet18_2_4()
    for name in ("latency_sparse_ms", "latency_sparse_ms_bs1", "latency_sparse_ms_bs2"):
        assert metrics[name] is None
        assert details["null_reasons"][name].startswith("no sparse kernel: CPU")
    assert "cuSPARSELt" in units["latency_sparse_ms"]


def test_sparsity_and_storage_of_a_two_four_resnet18():
    model, plan, (metrics, units, details) = _measured_resnet18_2_4()
    params = dict(model.named_parameters())
    assert metrics["params_m"] == sum(p.numel() for p in params.values()) / 1e6
    masked = sum(params[name].numel() for name in plan.masks)
    conv_linear = sum(p.numel() for n, p in params.items() if p.dim() in (2, 4))
    assert metrics["sparsity"] == pytest.approx(0.5 * masked / conv_linear, rel=1e-6)
    expected_dense = sum(p.numel() for p in params.values()) * 4
    expected_compressed = expected_dense - sum(
        params[name].numel() * 4 - nm_compressed_bytes(params[name].numel(), 2, 4, 4) for name in plan.masks
    )
    assert metrics["weight_mib"] * 2**20 == expected_dense
    assert metrics["weight_compressed_mib"] * 2**20 == expected_compressed
    assert 0.5 < metrics["weight_compressed_mib"] / metrics["weight_mib"] < 0.6
    assert metrics["peak_mib"] > 0
    assert "VmHWM" in units["peak_mib"] or "ru_maxrss" in units["peak_mib"]
    assert {entry["layer"] for entry in details["sparsity"]["skipped"]} == {"conv1", "fc"}


def test_peak_memory_grows_with_the_batch_size():
    model = _pristine("resnet18")
    peaks = []
    for batch in (1, 16):
        cfg = {"latency": {"batch_sizes": [batch], "warmup": 0, "iterations": 1, "precision": 0}, "memory": True}
        metrics, _, _ = measure_model(model, plan=None, method=None, device="cpu", measure_cfg=cfg)
        peaks.append(metrics["peak_mib"])
    # One 64x32x32 fp32 activation is 0.25 MiB per image; at batch 16 a few of them are live.
    assert peaks[1] > peaks[0] + 4, peaks


def test_dense_and_block_models_say_why_no_sparse_kernel_ran():
    cfg = {"latency": {"batch_sizes": [1], "warmup": 0, "iterations": 2, "precision": 0}, "memory": True}
    dense = copy.deepcopy(_pristine("resnet18"))
    metrics, _, details = measure_model(dense, plan=None, method=None, device="cpu", measure_cfg=cfg)
    assert metrics["latency_sparse_ms"] is None
    assert details["null_reasons"]["latency_sparse_ms"].startswith("dense model")
    assert metrics["weight_compressed_mib"] == metrics["weight_mib"]
    assert metrics["sparsity"] < 0.01

    block = copy.deepcopy(_pristine("resnet18"))
    plan = apply_sparsity(block, BLOCK_4X4)
    metrics, units, details = measure_model(block, plan=plan, method=BLOCK_4X4, device="cpu", measure_cfg=cfg)
    assert "block sparsity" in details["null_reasons"]["latency_sparse_ms"]
    assert "BSR" in units["weight_compressed_mib"]
    # Half the blocks' values go; each kept 4x4 fp32 block adds a 4-byte index (1/16 of its 64 bytes).
    ratio = metrics["weight_compressed_mib"] / metrics["weight_mib"]
    assert 0.5 < ratio < 0.58


def test_measurements_not_requested_are_null_with_a_reason():
    model = _pristine("resnet18")
    metrics, units, details = measure_model(model, plan=None, method=None, device="cpu", measure_cfg={})
    for name in (
        "latency_ms",
        "latency_p10_ms",
        "latency_p90_ms",
        "latency_sparse_ms",
        "gmacs",
        "gmacs_effective",
        "weight_mib",
        "weight_compressed_mib",
        "peak_mib",
    ):
        assert metrics[name] is None
        assert "not requested" in details["null_reasons"][name]
        assert name in units
    assert metrics["params_m"] > 11 and metrics["sparsity"] is not None


def test_timing_interleaves_variants_in_blocks():
    calls = []
    variants = {name: (lambda name=name: calls.append(name)) for name in ("a", "b", "c")}
    times = time_interleaved(variants, device="cpu", warmup=2, iterations=25, block=10)
    assert {k: len(v) for k, v in times.items()} == {"a": 25, "b": 25, "c": 25}
    assert all(t >= 0 for v in times.values() for t in v)
    timed = calls[6:]  # after 2 warm-up calls each
    runs = []
    for name in timed:
        if runs and runs[-1][0] == name:
            runs[-1][1] += 1
        else:
            runs.append([name, 1])
    # The order flips each round: a b c | c b a | a b c (the last round has the 5 left).
    assert runs == [["a", 10], ["b", 10], ["c", 20], ["b", 10], ["a", 15], ["b", 5], ["c", 5]]


def test_percentiles_match_numpy():
    values = [3.0, 1.0, 4.0, 1.5, 9.0, 2.6, 5.0]
    for q in (10, 50, 90):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q))


@pytest.mark.parametrize(
    "cfg, key",
    [
        ({"latency": {"batch_sizes": []}}, "'batch_sizes'"),
        ({"latency": {"batch_sizes": [1, 0]}}, "'batch_sizes'"),
        ({"latency": {"batch_sizes": [4, 4]}}, "'batch_sizes'"),
        ({"latency": {"iterations": 0}}, "'iterations'"),
        ({"latency": {"warmup": -1}}, "'warmup'"),
        ({"latency": {"repeats": 3}}, "'repeats'"),
        ({"latency": "yes"}, "'latency'"),
        ({"flops": "yes"}, "'flops'"),
        ({"energy": True}, "'energy'"),
    ],
)
def test_measure_config_errors_name_the_key(cfg, key):
    with pytest.raises(InvalidTask, match=key):
        validate_measure_cfg(cfg)


def test_measure_config_defaults():
    cfg = validate_measure_cfg({"latency": True, "flops": True})
    latency = {
        "batch_sizes": [1, 64],
        "warmup": 20,
        "iterations": 200,
        "precision": 0.02,
        "max_seconds": 30,
        "block": 10,
    }
    assert cfg == {"latency": latency, "flops": True, "memory": False}
    assert validate_measure_cfg(None) == {"latency": None, "flops": False, "memory": False}


def _rejected(spec: dict) -> list:
    """Values just outside a RANGE, of the wrong type, or not finite."""
    low, high = spec["min"], spec["max"]
    if spec["type"] == "int_list":
        too_many = list(range(1, spec["max_length"] + 2))
        return [[], [low - 1], [high + 1], [1, 2.5], [True], [2.0], 4, "1", None, too_many]
    step = 1 if spec["type"] == "int" else 1e-6
    values = [low if spec.get("min_exclusive") else low - step, high + step, "1", True, None, [1]]
    if spec["type"] == "int":
        return values + [1.5, 2.0]
    return values + [float("nan"), float("inf")]


def _accepted(spec: dict) -> list:
    """The bounds themselves (where inclusive), and a value just inside an exclusive one."""
    low, high = spec["min"], spec["max"]
    if spec["type"] == "int_list":
        return [[high], [low], list(range(1, spec["max_length"] + 1))]
    return [low + 1e-6 if spec.get("min_exclusive") else low, high]


RANGE_CASES = [(key, spec) for key, spec in MEASURE_RANGES["latency"].items()]


@pytest.mark.parametrize("key, spec", RANGE_CASES, ids=[key for key, _ in RANGE_CASES])
def test_every_latency_key_is_range_checked_from_the_published_table(key, spec):
    assert "max" in spec and spec["max"] < float("inf"), "every number has a finite maximum"
    for value in _rejected(spec):
        with pytest.raises(InvalidTask, match=f"'{key}' must be .*at most {spec['max']}") as error:
            validate_measure_cfg({"latency": {key: value}})
        assert repr(value)[:20] in str(error.value)
    for value in _accepted(spec):
        assert validate_measure_cfg({"latency": {key: value}})["latency"][key] == value


def test_a_huge_hostile_value_gives_a_short_error():
    with pytest.raises(InvalidTask, match="'batch_sizes'") as error:
        validate_measure_cfg({"latency": {"batch_sizes": list(range(1, 100_000))}})
    assert len(str(error.value)) < 300


def test_the_published_table_covers_every_latency_key_and_only_those():
    assert set(MEASURE_RANGES) == {"latency"}
    assert set(MEASURE_RANGES["latency"]) == set(validate_measure_cfg({"latency": True})["latency"])
    assert MEASURE_RANGES["latency"]["max_seconds"]["min_exclusive"] is True
    for spec in MEASURE_RANGES["latency"].values():
        assert spec["type"] in ("int", "number", "int_list")


class _Tiny(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3)
        self.fc = nn.Linear(width * 6 * 6, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def _tiny_pair():
    torch.manual_seed(0)
    return _Tiny(8), _Tiny(8)


def test_comparisons_pair_the_masked_model_with_its_dense_baseline():
    model, baseline = _tiny_pair()
    cfg = {"latency": {"batch_sizes": [1, 2], "warmup": 2, "iterations": 20, "block": 4, "precision": 0}}
    metrics, units, details = measure_model(
        model, plan=None, method=None, device="cpu", measure_cfg=cfg, input_shape=(3, 8, 8), baseline=baseline
    )
    latency = details["latency"]
    assert latency["precision"] == 0 and latency["max_seconds"] == 30
    for batch in (1, 2):
        info = latency["batch_sizes"][str(batch)]
        (comparison,) = info["comparisons"]
        assert comparison["name"] == "masked_vs_dense"
        assert (comparison["baseline"], comparison["measured"]) == ("dense_baseline", "as_given")
        assert comparison["speedup"] == metrics[f"latency_dense_ms_bs{batch}"] / metrics[f"latency_ms_bs{batch}"]
        assert comparison["verdict"] in ("faster", "slower", "no detectable difference")
        lo, hi = comparison["ci95"]
        assert lo <= hi and comparison["pairs"] == 5
        assert {k: len(v) for k, v in info["blocks"].items()} == {"as_given": 5, "dense_baseline": 5}
        assert info["block_calls"] == 4 and info["stopped"] == "fixed count"
        assert info["as_given"]["n"] == info["dense_baseline"]["n"] == 20
        assert "median of 20 calls in 5 interleaved blocks of 4 (fixed count)" in units[f"latency_ms_bs{batch}"]
        assert "5 interleaved blocks" in units[f"latency_dense_ms_bs{batch}"]
    assert metrics["latency_dense_ms"] == metrics["latency_dense_ms_bs1"]


def test_adaptive_units_say_how_the_loop_stopped():
    model, _ = _tiny_pair()
    cfg = {
        "latency": {
            "batch_sizes": [1],
            "warmup": 0,
            "iterations": 8,
            "block": 4,
            "precision": 1e-9,
            "max_seconds": 0.01,
        }
    }
    metrics, units, details = measure_model(
        model, plan=None, method=None, device="cpu", measure_cfg=cfg, input_shape=(3, 8, 8)
    )
    info = details["latency"]["batch_sizes"]["1"]
    assert info["stopped"] == "time budget spent" and info["comparisons"] == []
    blocks = len(info["blocks"]["as_given"])
    assert blocks >= 2 and info["as_given"]["n"] == 4 * blocks
    # One sentence for every task of a sweep: the count and the stop reason live in details.
    assert units["latency_ms"].startswith(
        "ms per forward call, median over interleaved blocks of 4 calls (adaptive: at least 8 calls, then until "
        "the 95% interval of the as_given median is within ±1e-07% or 0.01 s of timing are spent; the count and "
        "why it stopped: details.latency.batch_sizes.1), after "
    )


@pytest.mark.skipif(
    not (torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 0)),
    reason="needs a CUDA GPU with sparse tensor cores",
)
def test_measure_model_on_a_sparse_gpu_times_real_sparse_kernels():
    model = copy.deepcopy(_pristine("resnet18"))
    plan = apply_sparsity(model, NM_2_4)
    cfg = {
        "latency": {"batch_sizes": [64], "warmup": 5, "iterations": 20, "precision": 0},
        "flops": True,
        "memory": True,
    }
    metrics, units, details = measure_model(model, plan=plan, method=NM_2_4, device="cuda", measure_cfg=cfg)
    info = details["latency"]["batch_sizes"]["64"]
    assert metrics["latency_sparse_ms"] is not None, info["sparse_reason"]
    assert metrics["latency_sparse_ms"] == info["sparse_fp16"]["median"]
    assert info["masked_fp16"]["n"] == info["sparse_fp16"]["n"] == 20
    (comparison,) = info["comparisons"]  # no baseline given: only the sparse-kernel pair
    assert comparison["name"] == "sparse_vs_masked_fp16"
    assert comparison["speedup"] == info["masked_fp16"]["median"] / metrics["latency_sparse_ms"]
    assert len(info["blocks"]["sparse_fp16"]) == len(info["blocks"]["masked_fp16"]) == comparison["pairs"] == 2
    assert any(layer["sparse"] for layer in info["sparse_layers"])
    assert "max_memory_allocated" in units["peak_mib"]
