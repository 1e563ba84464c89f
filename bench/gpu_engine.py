"""GPU benchmark of the engine's 2:4 path: dense vs masked vs real sparse kernels, on one GPU.

    PYTHONPATH=engine python bench/gpu_engine.py --out DIR            # needs a CUDA GPU (sm80+)
    PYTHONPATH=engine python bench/gpu_engine.py --out DIR --dry-run  # CPU, tiny, no CUDA parts

Three parts, each recorded even when another fails (the script then exits 1):
1. engine: the engine CLI itself (`python -m sparsegrid_engine run`) trains resnet18 on
   synthetic data, then fine-tunes it with 2:4; its result event carries measure_model's
   latencies, including latency_sparse_ms where cuSPARSELt ran.
2. models: resnet18 and resnet50 at batch sizes 1/64/256 in fp16 channels-last, timed
   interleaved: dense weights, 2:4-masked weights (dense kernels), the sparse copy with the
   layers that timed faster sparse ("auto"), and the sparse copy with every 2:4 layer
   lowered ("all"). Sparse outputs are checked against the masked model first.
3. linear: F.linear on large 2:4 fp16 weights (8192x8192), dense vs cuSPARSELt, where
   sparse tensor cores should show their speedup.
Writes gpu_engine.json and gpu_engine.md under --out.

In --dry-run the sparse format is a dense stand-in (labelled so) and sizes are tiny: it
checks the plumbing on a machine without a GPU; its timings mean nothing.
"""

import argparse
import copy
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F
from sparsegrid_engine.kernels import build_sparse_model, semi_structured, sparse_kernel_unavailable
from sparsegrid_engine.measure import SPARSE_RTOL, summarize, time_interleaved
from sparsegrid_engine.models import build_model
from sparsegrid_engine.sparsity import apply_sparsity, n_m_mask

NM_2_4 = {"name": "nm_2_4", "kind": "n_m", "n": 2, "m": 4, "skip": ["first", "last"]}
ENGINE_ROOT = Path(__file__).resolve().parents[1] / "engine"

# Sizes of a real run and of a dry run.
FULL = {
    "device": "cuda",
    "models": ["resnet18", "resnet50"],
    "batch_sizes": [1, 64, 256],
    "warmup": 20,
    "iterations": 100,
    "calibration": (4, 64),  # BatchNorm calibration: batches, batch size
    "linear": [(8192, 8192, 8192), (2048, 8192, 8192), (64, 8192, 8192)],  # (tokens, in, out)
    "train": {
        "data": {"dataset": "synthetic", "train": 4096, "test": 1024, "seed": 0},
        "params": {"epochs": 2, "batch_size": 128, "lr": 0.05},
        "finetune": {"epochs": 1, "batch_size": 128, "lr": 0.01},
        "measure": {
            "latency": {"batch_sizes": [1, 64, 256], "warmup": 20, "iterations": 100},
            "flops": True,
            "memory": True,
        },
    },
}
DRY = {
    "device": "cpu",
    "models": ["resnet18"],
    "batch_sizes": [2],
    "warmup": 1,
    "iterations": 2,
    "calibration": (1, 8),
    "linear": [(64, 256, 256)],
    "train": {
        "data": {"dataset": "synthetic", "train": 64, "test": 16, "seed": 0},
        "params": {"epochs": 1, "batch_size": 16, "max_steps": 1, "num_threads": 2, "eval_batch_size": 16},
        "finetune": {"epochs": 1, "batch_size": 16, "max_steps": 1, "num_threads": 2, "eval_batch_size": 16},
        "measure": {"latency": {"batch_sizes": [1], "warmup": 1, "iterations": 2}, "flops": True, "memory": True},
    },
}


def log(message: str) -> None:
    sys.stderr.write(f"[gpu_engine] {message}\n")
    sys.stderr.flush()


def environment(device: torch.device) -> dict:
    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": str(device),
        "host": platform.node(),
    }
    if device.type == "cuda":
        env["device_name"] = torch.cuda.get_device_name(device)
        env["capability"] = ".".join(map(str, torch.cuda.get_device_capability(device)))
        env["cusparselt"] = torch.backends.cusparselt.version() if torch.backends.cusparselt.is_available() else None
        env["tf32"] = {"cudnn": torch.backends.cudnn.allow_tf32, "matmul": torch.backends.cuda.matmul.allow_tf32}
    return env


# ---------------------------------------------------------------------------------------
# 1. The engine CLI end to end


def _engine(task: dict, workdir: Path) -> dict:
    task_file = workdir.with_suffix(".json")
    task_file.write_text(json.dumps(task))
    env = {**os.environ, "PYTHONPATH": str(ENGINE_ROOT), "SPARSEGRID_CACHE": str(workdir.parent / "cache")}
    began = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "sparsegrid_engine", "run", "--task", str(task_file), "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    results = [e for e in events if e["event"] == "result"]
    if proc.returncode != 0 or len(results) != 1:
        raise RuntimeError(
            f"engine task {task['stage']} exited {proc.returncode} with {len(results)} result events; "
            f"stderr tail:\n{proc.stderr[-3000:]}"
        )
    artifact = next(e for e in events if e["event"] == "artifact")
    return {"seconds": time.perf_counter() - began, "result": results[0], "artifact": artifact}


def engine_part(sizes: dict, work: Path) -> dict:
    base = {
        "sweep": "gpu-bench",
        "data": sizes["train"]["data"],
        "measure": sizes["train"]["measure"],
        "device": sizes["device"],
        "inputs": {},
    }
    train = {
        **base,
        "task_id": "a" * 64,
        "attempt_id": "a" * 64 + "-1",
        "stage": "train",
        "method": None,
        "params": {"model": "resnet18", "seed": 0, **sizes["train"]["params"]},
    }
    log("engine: training resnet18 on synthetic data")
    trained = _engine(train, work / "train")
    checkpoint = trained["artifact"]
    finetune = {
        **base,
        "task_id": "b" * 64,
        "attempt_id": "b" * 64 + "-1",
        "stage": "finetune",
        "method": NM_2_4,
        "params": {"model": "resnet18", "seed": 0, "method": "nm_2_4", **sizes["train"]["finetune"]},
        "inputs": {
            "train": {
                "task_id": "a" * 64,
                "name": "checkpoint",
                "sha256": checkpoint["sha256"],
                "path": str((work / "train" / checkpoint["path"]).resolve()),
            }
        },
    }
    log("engine: fine-tuning it with 2:4 and measuring")
    tuned = _engine(finetune, work / "finetune")

    def keep(run):
        result = run["result"]
        return {
            "seconds": run["seconds"],
            "metrics": result["metrics"],
            "units": result["units"],
            "null_reasons": result["details"].get("null_reasons", {}),
            "latency": result["details"].get("latency"),
        }

    return {"train": keep(trained), "finetune": keep(tuned)}


# ---------------------------------------------------------------------------------------
# 2. Whole models: dense, masked, sparse


def _check_close(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """Raises when the sparse outputs drift from the masked model's; returns the max abs error."""
    actual, expected = actual.float(), expected.float()
    atol = SPARSE_RTOL * float(expected.abs().max()) + 1e-3
    torch.testing.assert_close(actual, expected, rtol=SPARSE_RTOL, atol=atol)
    return float((actual - expected).abs().max())


@torch.no_grad()
def calibrate(model: torch.nn.Module, device: torch.device, batches: int, batch_size: int) -> torch.nn.Module:
    """Sets BatchNorm statistics from a few random batches, so an untrained model's activations
    stay in fp16 range (fresh BN statistics do not normalise anything)."""
    model.to(device).train()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the calibration batches
    for _ in range(batches):
        model(torch.randn(batch_size, 3, 32, 32, device=device))
    return model.eval()


def model_part(name: str, sizes: dict, device: torch.device, to_sparse, dtype) -> dict:
    torch.manual_seed(0)
    dense = calibrate(build_model(name), device, *sizes["calibration"])
    masked = copy.deepcopy(dense)
    plan = apply_sparsity(masked, NM_2_4)
    prepare = lambda m: m.to(device=device, dtype=dtype).to(memory_format=torch.channels_last)  # noqa: E731
    dense, masked = prepare(dense), prepare(masked)
    out = {"skipped": plan.skipped, "sparsity": plan.report(masked)["sparsity"], "batch_sizes": {}}
    for batch in sizes["batch_sizes"]:
        x = torch.randn(batch, 3, 32, 32, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
        auto_model, auto_layers = build_sparse_model(masked, x, policy="auto", to_sparse=to_sparse)
        all_model, all_layers = build_sparse_model(masked, x, policy="all", to_sparse=to_sparse)
        with torch.inference_mode():
            expected = masked(x)
            errors = {
                "sparse_auto": _check_close(auto_model(x), expected),
                "sparse_all": _check_close(all_model(x), expected),
            }
        variants = {"dense": lambda: dense(x), "masked": lambda: masked(x)}
        if any(layer["sparse"] for layer in auto_layers):
            variants["sparse_auto"] = lambda: auto_model(x)
        variants["sparse_all"] = lambda: all_model(x)
        with torch.backends.cudnn.flags(enabled=True, benchmark=True, deterministic=False):
            times = time_interleaved(variants, device=device, warmup=sizes["warmup"], iterations=sizes["iterations"])
        stats = {k: summarize(v) for k, v in times.items()}
        out["batch_sizes"][str(batch)] = {
            **stats,
            "max_abs_error": errors,
            "auto_sparse_layers": [layer["layer"] for layer in auto_layers if layer["sparse"]],
            "all_sparse_layers": sum(layer["sparse"] for layer in all_layers),
            "layer_timings": auto_layers,
        }
        log(f"models: {name} bs {batch}: " + ", ".join(f"{k} {v['median']:.3f} ms" for k, v in stats.items()))
    return out


# ---------------------------------------------------------------------------------------
# 3. A large GEMM


def linear_part(sizes: dict, device: torch.device, to_sparse, dtype) -> list[dict]:
    rows = []
    for tokens, fan_in, fan_out in sizes["linear"]:
        torch.manual_seed(0)
        weight = torch.randn(fan_out, fan_in, device=device, dtype=dtype)
        weight = weight * n_m_mask(weight, 2, 4)
        sparse_weight = to_sparse(weight) if to_sparse else weight
        x = torch.randn(tokens, fan_in, device=device, dtype=dtype)
        with torch.inference_mode():
            error = _check_close(F.linear(x, sparse_weight), F.linear(x, weight))
        times = time_interleaved(
            {"dense": lambda: F.linear(x, weight), "sparse": lambda: F.linear(x, sparse_weight)},
            device=device,
            warmup=sizes["warmup"],
            iterations=sizes["iterations"],
        )
        stats = {k: summarize(v) for k, v in times.items()}
        macs = tokens * fan_in * fan_out
        rows.append(
            {
                "tokens": tokens,
                "in": fan_in,
                "out": fan_out,
                **stats,
                "max_abs_error": error,
                "dense_tflops": 2 * macs / stats["dense"]["median"] / 1e9,
                "speedup": stats["dense"]["median"] / stats["sparse"]["median"],
            }
        )
        log(f"linear {tokens}x{fan_in}x{fan_out}: speedup {rows[-1]['speedup']:.2f}x")
    return rows


# ---------------------------------------------------------------------------------------
# Report


def markdown(report: dict) -> str:
    env = report["environment"]
    lines = [
        f"# Engine GPU benchmark{' (DRY RUN: dense stand-in, timings meaningless)' if report['dry_run'] else ''}",
        "",
        f"{env.get('device_name', env['device'])}, torch {env['torch']}, CUDA {env['cuda']}, "
        f"cuSPARSELt {env.get('cusparselt')}; sparse format: {report['sparse_format']}",
        "",
    ]
    models = report["parts"].get("models", {})
    if models:
        lines += [
            "## Models (fp16, channels-last; median ms per forward, speedup vs masked)",
            "",
            "| model | batch | dense | masked | sparse auto | sparse all | auto speedup | layers sparse (auto) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, result in models.items():
            if "error" in result:
                lines.append(f"| {name} | error: {result['error'].splitlines()[0]} |||||||")
                continue
            for batch, row in result["batch_sizes"].items():
                auto = row.get("sparse_auto")
                cell = lambda k: f"{row[k]['median']:.3f}" if k in row else "n/a"  # noqa: E731
                speed = f"{row['masked']['median'] / auto['median']:.2f}x" if auto else "n/a"
                lines.append(
                    f"| {name} | {batch} | {cell('dense')} | {cell('masked')} | {cell('sparse_auto')} | "
                    f"{cell('sparse_all')} | {speed} | {len(row['auto_sparse_layers'])} |"
                )
        lines.append("")
    linear = report["parts"].get("linear")
    if isinstance(linear, list):
        lines += [
            "## Linear 2:4 GEMM (fp16)",
            "",
            "| tokens x in x out | dense ms | sparse ms | speedup | dense TFLOP/s |",
            "|---|---:|---:|---:|---:|",
        ]
        for row in linear:
            lines.append(
                f"| {row['tokens']}x{row['in']}x{row['out']} | {row['dense']['median']:.3f} | "
                f"{row['sparse']['median']:.3f} | {row['speedup']:.2f}x | {row['dense_tflops']:.1f} |"
            )
        lines.append("")
    engine = report["parts"].get("engine")
    if isinstance(engine, dict) and "finetune" in engine:
        metrics = engine["finetune"]["metrics"]
        lines += ["## Engine CLI (resnet18, 2:4 fine-tune, measure_model)", "", "| metric | value |", "|---|---:|"]
        for key in sorted(
            k
            for k in metrics
            if k.startswith("latency") or k in ("accuracy", "sparsity", "gmacs", "gmacs_effective", "peak_mib")
        ):
            value = metrics[key]
            lines.append(f"| {key} | {'null' if value is None else f'{value:.4g}'} |")
        reason = engine["finetune"]["null_reasons"].get("latency_sparse_ms")
        if reason:
            lines += ["", f"latency_sparse_ms is null: {reason}"]
        lines.append("")
    errors = {k: v["error"] for k, v in report["parts"].items() if isinstance(v, dict) and "error" in v}
    errors.update({f"models/{k}": v["error"] for k, v in models.items() if "error" in v})
    if errors:
        lines += ["## Errors", ""] + [f"- {k}: {v.splitlines()[-1]}" for k, v in errors.items()] + [""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="folder for gpu_engine.json and gpu_engine.md")
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes, dense stand-in for sparse")
    args = parser.parse_args(argv)
    sizes = DRY if args.dry_run else FULL
    device = torch.device(sizes["device"])
    if not args.dry_run:
        reason = sparse_kernel_unavailable(device)
        if reason:
            log(
                f"FAILED: this benchmark needs a CUDA GPU with sparse tensor cores: {reason}. "
                "Run it on a GPU host, or pass --dry-run to check the script on CPU."
            )
            return 1
    to_sparse = None if args.dry_run else semi_structured
    dtype = torch.float32 if args.dry_run else torch.float16
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "dry_run": args.dry_run,
        "environment": environment(device),
        "sparse_format": "dense stand-in (dry run)" if args.dry_run else "torch semi-structured 2:4, cuSPARSELt",
        "dtype": str(dtype).replace("torch.", ""),
        "sizes": {k: v for k, v in sizes.items() if k != "train"},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "parts": {},
    }
    failed = False

    def attempt(key, fn):
        nonlocal failed
        began = time.perf_counter()
        try:
            value = fn()
        except Exception:  # record and carry on: one broken part must not hide the others
            failed = True
            log(f"{key} FAILED:\n{traceback.format_exc()}")
            value = {"error": traceback.format_exc()}
        if isinstance(value, dict):
            value.setdefault("part_seconds", time.perf_counter() - began)
        return value

    with tempfile.TemporaryDirectory(prefix="gpu-engine-") as tmp:
        report["parts"]["engine"] = attempt("engine", lambda: engine_part(sizes, Path(tmp)))
    report["parts"]["models"] = {
        name: attempt(f"models/{name}", lambda name=name: model_part(name, sizes, device, to_sparse, dtype))
        for name in sizes["models"]
    }
    report["parts"]["linear"] = attempt("linear", lambda: linear_part(sizes, device, to_sparse, dtype))
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    (args.out / "gpu_engine.json").write_text(json.dumps(report, indent=1, default=str))
    (args.out / "gpu_engine.md").write_text(markdown(report))
    log(f"wrote {args.out / 'gpu_engine.json'} and {args.out / 'gpu_engine.md'}")
    if failed:
        log("FAILED: at least one part raised; see the errors above and in the JSON")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
