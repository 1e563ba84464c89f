"""Measurements of a model for the result event: latency, MACs, weight storage, peak memory.

The measurement rules (README.md, "Measurements"): warm-up before timing, CUDA events and
synchronisation on a GPU, a fixed and recorded thread count on CPU, median with p10/p90 over many calls,
variants that are compared timed interleaved in one process (blocked and adaptive, each comparison
with a 95% bootstrap interval and a verdict: timing.py), and a unit string for every metric. `latency_sparse_ms` is only ever a measured time through real sparse kernels;
where none ran it is null and details.null_reasons says why.

    metrics, units, details = measure_model(model, plan=plan, method=method, device="cpu",
                                            measure_cfg={"latency": {"batch_sizes": [1, 64]},
                                                         "flops": True, "memory": True})
"""

import contextlib
import copy
import ctypes
import gc
import math
import os
import resource
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from .kernels import build_sparse_model, sparse_kernel_unavailable, weight_storage
from .protocol import InvalidTask, log
from .sparsity import SparsityPlan, sparsity_report, target_layers, validate_method
from .timing import (  # noqa: F401  (percentile, summarize, MAX_BLOCKS: re-exported for bench/ and tests)
    INTERVAL_TEXT,
    MAX_BLOCKS,
    STOP_FIXED,
    percentile,
    summarize,
    time_adaptive,
)

INPUT_SHAPE = (3, 32, 32)  # CIFAR-10 images, channels first
INTERLEAVE_BLOCK = 10  # calls per variant before switching to the next one (the default `block`)
LATENCY_DEFAULTS = {
    "batch_sizes": [1, 64],
    "warmup": 20,
    "iterations": 200,  # the minimum calls per variant
    "precision": 0.02,  # target relative half-width of each 95% interval; 0 = exactly `iterations` calls
    "max_seconds": 30,  # time budget per batch size for the timed loop after warm-up and the minimum
    "block": INTERLEAVE_BLOCK,
}
# What the engine accepts for measure.latency, in the RANGE format of `describe` (which
# publishes this table); validate_measure_cfg checks every key against it.
MEASURE_RANGES = {
    "latency": {
        "batch_sizes": {"type": "int_list", "min": 1, "max": 4096, "max_length": 16},
        "warmup": {"type": "int", "min": 0, "max": 100_000},
        "iterations": {"type": "int", "min": 1, "max": 1_000_000},
        "precision": {"type": "number", "min": 0, "max": 0.5},
        "max_seconds": {"type": "number", "min": 0, "max": 3600, "min_exclusive": True},
        "block": {"type": "int", "min": 1, "max": 10_000},
    }
}
MIB = 1024 * 1024
SPARSE_RTOL = 2e-2  # fp16 sparse vs fp16 masked dense, whole network; atol scales with the output
# (name, baseline variant, measured variant); speedup = t_baseline / t_measured
COMPARISONS = (
    ("masked_vs_dense", "dense_baseline", "as_given"),
    ("sparse_vs_masked_fp16", "masked_fp16", "sparse_fp16"),
)
LATENCY_NAMES = ("latency_ms", "latency_p10_ms", "latency_p90_ms", "latency_sparse_ms")


# ---------------------------------------------------------------------------------------
# Configuration


def _describe_range(spec: dict) -> str:
    """The allowed values of a RANGE (interfaces.md section B) in words, for error messages."""
    low = ("greater than" if spec.get("min_exclusive") else "at least") + f" {spec['min']}"
    high = ("less than" if spec.get("max_exclusive") else "at most") + f" {spec['max']}"
    if spec["type"] == "int_list":
        return f"a non-empty list of at most {spec['max_length']} distinct integers, each {low} and {high}"
    kind = "an integer" if spec["type"] == "int" else "a number"
    return f"{kind} {low} and {high}"


def _in_range(value, spec: dict) -> bool:
    """Whether one scalar value fits an "int" or "number" RANGE (bools never do; nor NaN or infinities)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if spec["type"] == "int" and not isinstance(value, int):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    above = value > spec["min"] if spec.get("min_exclusive") else value >= spec["min"]
    below = value < spec["max"] if spec.get("max_exclusive") else value <= spec["max"]
    return above and below


def _check_latency_key(key: str, value) -> None:
    spec = MEASURE_RANGES["latency"][key]
    if spec["type"] == "int_list":
        item = {**spec, "type": "int"}
        ok = (
            isinstance(value, list) and 1 <= len(value) <= spec["max_length"] and all(_in_range(v, item) for v in value)
        )
    else:
        ok = _in_range(value, spec)
    if not ok:
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:80] + "…"  # hostile input stays short
        raise InvalidTask(f"measure.latency: key '{key}' must be {_describe_range(spec)}, got {shown}.")


def validate_measure_cfg(cfg) -> dict:
    """The task's `measure` mapping, checked and normalised; raises InvalidTask naming the key.

    Returns {"latency": {batch_sizes, warmup, iterations, precision, max_seconds, block} or None,
    "flops": bool, "memory": bool}. An absent or false entry turns that measurement off. Every
    latency key is checked against MEASURE_RANGES (the table `describe` publishes); the one rule
    a table cannot state, distinct batch sizes, is checked by hand.
    """
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, dict):
        raise InvalidTask(f"task key 'measure' must be a mapping, got {type(cfg).__name__}.")
    allowed = ("flops", "latency", "memory")
    for key in cfg:
        if key not in allowed:
            raise InvalidTask(f"measure: unknown key '{key}'; allowed keys are {', '.join(allowed)}.")
    for key in ("flops", "memory"):
        if key in cfg and not isinstance(cfg[key], bool):
            raise InvalidTask(f"measure: key '{key}' must be true or false, got {cfg[key]!r}.")
    latency = cfg.get("latency")
    if latency is None or latency is False:
        latency = None
    elif latency is True:
        latency = dict(LATENCY_DEFAULTS)
    elif isinstance(latency, dict):
        for key in latency:
            if key not in LATENCY_DEFAULTS:
                raise InvalidTask(
                    f"measure.latency: unknown key '{key}'; allowed keys are {', '.join(sorted(LATENCY_DEFAULTS))}."
                )
        latency = {**LATENCY_DEFAULTS, **latency}
        for key in MEASURE_RANGES["latency"]:
            _check_latency_key(key, latency[key])
        sizes = latency["batch_sizes"]
        if len(set(sizes)) != len(sizes):
            raise InvalidTask(f"measure.latency: key 'batch_sizes' lists a batch size twice: {sizes!r}.")
        latency["batch_sizes"] = list(sizes)
    else:
        raise InvalidTask(f"measure: key 'latency' must be a mapping, true or false, got {latency!r}.")
    return {"latency": latency, "flops": bool(cfg.get("flops", False)), "memory": bool(cfg.get("memory", False))}


# ---------------------------------------------------------------------------------------
# Timing (the loop and its intervals live in timing.py)


def time_interleaved(
    variants: dict[str, Callable], *, device, warmup: int, iterations: int, block: int = INTERLEAVE_BLOCK
) -> dict[str, list[float]]:
    """Per-call times (ms) of each variant: exactly `iterations` calls each, run in alternating
    blocks (the order flipped every round) so drift hits all alike."""
    run = time_adaptive(
        variants, device=device, warmup=warmup, iterations=iterations, block=block, precision=0, max_seconds=1
    )
    return run.times


# ---------------------------------------------------------------------------------------
# Device facts


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return device.type


def _sparse_reason(method: dict | None, device: torch.device) -> str | None:
    if method is None:
        return "dense model: no sparse method, so no sparse kernel applies"
    if method["kind"] == "block":
        return "no sparse kernel for block sparsity in this engine: its GPU sparse path is 2:4 semi-structured only"
    if method["m"] != 4 or method["n"] > 2:
        return f"no sparse kernel for {method['n']}:{method['m']}: sparse tensor cores need 2:4"
    return sparse_kernel_unavailable(device)


# ---------------------------------------------------------------------------------------
# Sections


def _latency(model, method, device, cfg, input_shape, out, baseline=None):
    metrics, units, details, nulls = out
    if cfg is None:
        for name in LATENCY_NAMES:
            metrics[name] = None
            nulls[name] = "latency not requested (measure.latency absent or false)"
            units[name] = "ms"
        return
    sparse_reason = _sparse_reason(method, device)
    name = device_name(device)
    threads = torch.get_num_threads()
    where = (
        f"CUDA events after synchronize on {name}, cuDNN benchmark on"
        if device.type == "cuda"
        else f"time.perf_counter per call, {threads} CPU thread{'' if threads == 1 else 's'}, on {name}"
    )
    info = {
        "device": name,
        "device_type": device.type,
        "threads": threads if device.type == "cpu" else None,
        "input_memory_format": "channels_last" if _is_channels_last(model) else "contiguous",
        # fp32 convs on Ampere+ may run in TF32; the as_given numbers depend on it.
        "tf32": {"cudnn": torch.backends.cudnn.allow_tf32, "matmul": torch.backends.cuda.matmul.allow_tf32}
        if device.type == "cuda"
        else None,
        "warmup": cfg["warmup"],
        "iterations": cfg["iterations"],
        "precision": cfg["precision"],
        "max_seconds": cfg["max_seconds"],
        "interleave_block": cfg["block"],
        "max_blocks": MAX_BLOCKS,
        "interval": INTERVAL_TEXT,
        "batch_sizes": {},
    }
    generator = torch.Generator().manual_seed(0)
    first = cfg["batch_sizes"][0]
    for batch in cfg["batch_sizes"]:
        x = _like_model(torch.randn(batch, *input_shape, generator=generator).to(device), model)
        variants = {"as_given": lambda x=x: model(x)}
        if baseline is not None:
            # The dense model this task started from, timed interleaved with the masked one in
            # this process: the only fair pair for a masked-weights speedup on a shared machine.
            variants["dense_baseline"] = lambda x=x: baseline(x)
        reason, sparse_layers = sparse_reason, None
        with _timing_backends(device):
            if reason is None:
                try:
                    reason, sparse_layers, extra = _sparse_variants(model, x)
                    variants.update(extra)
                except RuntimeError as error:  # a kernel that fails must not fail the task
                    reason = f"sparse kernel path failed: {str(error).strip().splitlines()[0]}"
                    log(f"[measure] {reason}")
            run = time_adaptive(
                variants,
                device=device,
                warmup=cfg["warmup"],
                iterations=cfg["iterations"],
                block=cfg["block"],
                precision=cfg["precision"],
                max_seconds=cfg["max_seconds"],
                comparisons=[c for c in COMPARISONS if c[1] in variants and c[2] in variants],
            )
        stats = {k: summarize(v) for k, v in run.times.items()}
        info["batch_sizes"][str(batch)] = {
            **stats,
            "sparse_reason": reason,
            "sparse_layers": sparse_layers,
            "blocks": run.blocks,
            "block_calls": run.block_calls,
            "stopped": run.stopped,
            "comparisons": run.comparisons,
            "timed_seconds": run.seconds,
        }
        desc = _latency_desc(cfg, run, stats["as_given"]["n"], batch)
        suffixes = [f"_bs{batch}"] + ([""] if batch == first else [])
        for suffix in suffixes:
            as_given = stats["as_given"]
            metrics["latency_ms" + suffix] = as_given["median"]
            metrics["latency_p10_ms" + suffix] = as_given["p10"]
            metrics["latency_p90_ms" + suffix] = as_given["p90"]
            dtype = str(next(model.parameters()).dtype).replace("torch.", "")
            units["latency_ms" + suffix] = (
                f"ms per forward call, {desc}, {dtype}, the model as given (dense kernels; masked weights for "
                f"sparse methods), {where}"
            )
            units["latency_p10_ms" + suffix] = f"ms, 10th percentile of the calls behind latency_ms{suffix}"
            units["latency_p90_ms" + suffix] = f"ms, 90th percentile of the calls behind latency_ms{suffix}"
            if baseline is not None:
                metrics["latency_dense_ms" + suffix] = stats["dense_baseline"]["median"]
                units["latency_dense_ms" + suffix] = (
                    f"ms per forward call, {desc}, {dtype}, the dense model this task started from (its input "
                    f"checkpoint), timed interleaved with latency_ms{suffix} in the same process, {where}"
                )
            sparse = stats.get("sparse_fp16")
            metrics["latency_sparse_ms" + suffix] = sparse["median"] if sparse else None
            units["latency_sparse_ms" + suffix] = (
                f"ms per forward call, {desc}, fp16 channels-last with 2:4 layers on cuSPARSELt "
                "(torch semi-structured), timed interleaved with the same model in fp16 on dense kernels "
                f"(details.latency.batch_sizes.{batch}.masked_fp16), {where}"
            )
            if sparse is None:
                nulls["latency_sparse_ms" + suffix] = reason
    details["latency"] = info


def _latency_desc(cfg: dict, run, calls: int, batch: int) -> str:
    """How the latency medians of one batch size were taken, for their unit strings."""
    blocks = len(run.blocks["as_given"])
    if run.stopped == STOP_FIXED:
        size = f"{run.block_calls}" + (f", the last of {calls % run.block_calls}" if calls % run.block_calls else "")
        return (
            f"median of {calls} calls in {blocks} interleaved blocks of {size} (fixed count), "
            f"after {cfg['warmup']} warm-up calls, batch size {batch}"
        )
    # The call count and the reason the loop stopped differ from task to task; they are in
    # details, so that the unit string stays one sentence for every task of a sweep.
    target = (
        f"the 95% interval of every speedup in details.latency.batch_sizes.{batch}.comparisons"
        if run.comparisons
        else "the 95% interval of the as_given median"
    )
    return (
        f"median over interleaved blocks of {run.block_calls} calls (adaptive: at least {cfg['iterations']} calls, "
        f"then until {target} is within ±{cfg['precision'] * 100:g}% or {cfg['max_seconds']:g} s of timing are "
        f"spent; the count and why it stopped: details.latency.batch_sizes.{batch}), "
        f"after {cfg['warmup']} warm-up calls, batch size {batch}"
    )


def _is_channels_last(model) -> bool:
    weight = next((p for p in model.parameters() if p.dim() == 4), None)
    return weight is not None and weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()


def _like_model(x: torch.Tensor, model) -> torch.Tensor:
    """The input in the memory format the model was prepared for (channels-last training)."""
    return x.contiguous(memory_format=torch.channels_last) if _is_channels_last(model) else x


@contextlib.contextmanager
def _timing_backends(device: torch.device):
    """cuDNN autotuning on, determinism off while timing, so dense convs get their fastest
    algorithms (training asks for deterministic kernels); restored afterwards."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = True, False
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved


def _sparse_variants(model, x):
    """(reason or None, per-layer entries, timed variants) for the 2:4 GPU path at x's batch size."""
    half = copy.deepcopy(model).half().to(memory_format=torch.channels_last)
    xh = x.half().contiguous(memory_format=torch.channels_last)
    sparse_model, layers = build_sparse_model(half, xh, policy="auto")
    if not any(entry["sparse"] for entry in layers):
        return "no layer ran sparse: none was eligible or faster than its dense kernel", layers, {}
    with torch.inference_mode():
        expected, actual = half(xh).float(), sparse_model(xh).float()
    try:
        atol = SPARSE_RTOL * float(expected.abs().max()) + 1e-3
        torch.testing.assert_close(actual, expected, rtol=SPARSE_RTOL, atol=atol)
    except AssertionError as error:
        first_line = str(error).strip().splitlines()[0]
        return f"sparse model's outputs differ from the masked dense fp16 model: {first_line}", layers, {}
    return None, layers, {"masked_fp16": lambda: half(xh), "sparse_fp16": lambda: sparse_model(xh)}


def count_macs(model: torch.nn.Module, x: torch.Tensor) -> tuple[int, dict[str, int]]:
    """Forward MACs of one call on x (FlopCounterMode FLOPs / 2), in total and per conv/linear layer.

    A layer's MACs are the counter's growth between its pre- and post-forward hooks, so the
    per-layer numbers come from the same counter as the total.
    """
    per_layer: dict[str, int] = {}
    started: dict[str, int] = {}
    counter = FlopCounterMode(display=False)

    def before(name):
        def hook(_module, _args):
            started[name] = counter.get_total_flops()

        return hook

    def after(name):
        def hook(_module, _args, _output):
            per_layer[name] = per_layer.get(name, 0) + (counter.get_total_flops() - started[name]) // 2

        return hook

    hooks = []
    for name, module in target_layers(model):
        hooks.append(module.register_forward_pre_hook(before(name)))
        hooks.append(module.register_forward_hook(after(name)))
    try:
        with counter, torch.inference_mode():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return counter.get_total_flops() // 2, per_layer


def _flops(model, device, enabled, input_shape, out):
    metrics, units, details, nulls = out
    unit = "G-MAC per image (1 MAC = 2 FLOPs)"
    units["gmacs"] = (
        f"{unit}, forward pass at batch 1 on {'x'.join(map(str, input_shape))} input, "
        "torch.utils.flop_counter.FlopCounterMode (shape-based: zero weights count)"
    )
    units["gmacs_effective"] = (
        f"{unit}: each conv/linear layer's dense MACs x its fraction of nonzero weights; other operations unchanged"
    )
    if not enabled:
        for name in ("gmacs", "gmacs_effective"):
            metrics[name] = None
            nulls[name] = "FLOPs not requested (measure.flops absent or false)"
        return
    x = torch.zeros(1, *input_shape, device=device)
    total, per_layer = count_macs(model, x)
    modules = dict(target_layers(model))
    removed, layers = 0.0, []
    for name, macs in per_layer.items():
        weight = modules[name].weight.detach()
        nonzero = float((weight != 0).sum()) / weight.numel()
        removed += macs * (1 - nonzero)
        layers.append({"layer": name, "macs": macs, "nonzero_fraction": nonzero, "effective_macs": macs * nonzero})
    metrics["gmacs"] = total / 1e9
    metrics["gmacs_effective"] = (total - removed) / 1e9
    details["flops"] = {"macs": total, "effective_macs": total - removed, "layers": layers}


def _proc_status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # "5" resets the peak RSS (VmHWM) to the current RSS
        return _proc_status_kib("VmHWM") is not None
    except OSError:
        return False


def _trim_heap() -> bool:
    """Returns freed heap pages to the OS so the measured call's allocations show up in RSS."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        return True
    except (OSError, AttributeError):
        return False


def _peak(model, device, batch, input_shape) -> tuple[float, str]:
    x = torch.randn(batch, *input_shape, generator=torch.Generator().manual_seed(1)).to(device)
    with torch.inference_mode():
        model(x)  # warm-up: one-time allocations (kernel caches, thread pools) are not the model's
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        with torch.inference_mode():
            model(x)
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) / MIB, (
            f"MiB, torch.cuda.max_memory_allocated during one inference at batch size {batch} after a warm-up call "
            "(weights + activations + workspace)"
        )
    # Without the trim, the warm-up's freed activations stay resident and the measured
    # call reuses them: its RSS increase would read as nearly zero.
    trimmed = _trim_heap()
    if _reset_hwm():
        before = _proc_status_kib("VmRSS")
        with torch.inference_mode():
            model(x)
        peak = _proc_status_kib("VmHWM")
        return (peak - before) / 1024, (
            f"MiB, peak RSS increase during one inference at batch size {batch} after a warm-up call: VmHWM "
            "(reset via /proc/self/clear_refs) minus VmRSS before the call"
            + (", after malloc_trim(0)" if trimmed else "")
            + "; excludes the resident weights"
        )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with torch.inference_mode():
        model(x)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (after - before) / 1024, (
        f"MiB, increase of ru_maxrss during one inference at batch size {batch} (coarse: counts only growth "
        f"beyond the process's earlier peak, earlier tasks of a serve process included; /proc/self/clear_refs was "
        f"not writable, pid {os.getpid()})"
    )


def _memory(model, plan, device, enabled, batch, input_shape, out):
    metrics, units, details, nulls = out
    units["weight_mib"] = (
        "MiB, all parameters stored dense as fp32 (4 bytes each; buffers such as BN statistics excluded)"
    )
    units["weight_compressed_mib"] = (
        "MiB, parameters with sparsified layers in the method's format at fp32 values: n:m = n/m of the values "
        "+ ceil(log2 m) bits per kept value (2 bits for 2:4); block = BSR: nonzero blocks' values + one int32 "
        "column index per nonzero block + int32 row pointers (block rows + 1); other parameters dense"
    )
    if not enabled:
        for name in ("weight_mib", "weight_compressed_mib", "peak_mib"):
            metrics[name] = None
            nulls[name] = "memory not requested (measure.memory absent or false)"
        units["peak_mib"] = "MiB"
        return
    storage = weight_storage(model, plan, value_bytes=4)
    metrics["weight_mib"] = storage["dense_bytes"] / MIB
    metrics["weight_compressed_mib"] = storage["compressed_bytes"] / MIB
    metrics["peak_mib"], units["peak_mib"] = _peak(model, device, batch, input_shape)
    details["memory"] = {"weights": storage, "peak_batch_size": batch}


# ---------------------------------------------------------------------------------------
# Entry point


def measure_model(
    model: torch.nn.Module,
    *,
    plan: SparsityPlan | None,
    method: dict | None,
    device,
    measure_cfg: dict | None,
    input_shape=INPUT_SHAPE,
    baseline: torch.nn.Module | None = None,
) -> tuple[dict, dict, dict]:
    """(metrics, units, details) for the result event; moves `model` to `device`.

    `baseline`: the dense model a sparse task started from; its latency is timed interleaved
    with the model's and reported as `latency_dense_ms`, so the masked speedup compares two
    timings taken under the same machine load.

    Metric names are engine/CONTRACT.md's; every metric has a unit string, and every null
    metric has its reason in details["null_reasons"].
    """
    cfg = validate_measure_cfg(measure_cfg)
    if method is not None:
        validate_method(method)
    device = torch.device(device)
    model.to(device)
    was_training = model.training
    model.eval()
    metrics, units, details, nulls = {}, {}, {}, {}
    out = (metrics, units, details, nulls)
    try:
        report = plan.report(model) if plan is not None else sparsity_report(model)
        metrics["params_m"] = sum(p.numel() for p in model.parameters()) / 1e6
        units["params_m"] = "millions of parameters (all, dense count)"
        metrics["sparsity"] = report["sparsity"]
        units["sparsity"] = "fraction of exactly-zero weights over all conv + linear weights"
        details["sparsity"] = report
        _flops(model, device, cfg["flops"], input_shape, out)
        first_batch = cfg["latency"]["batch_sizes"][0] if cfg["latency"] else 1
        _memory(model, plan, device, cfg["memory"], first_batch, input_shape, out)
        if baseline is not None:
            baseline.to(device)
            baseline.eval()
        _latency(model, method, device, cfg["latency"], input_shape, out, baseline=baseline)
    finally:
        model.train(was_training)
    details["null_reasons"] = nulls
    details["torch"] = torch.__version__
    return metrics, units, details
