"""GPU benchmark of the engine's 2:4 path: dense vs masked vs real sparse kernels, on one GPU.

    OUT=DIR bash bench/gpu_engine.sh                  # a GPU host (sm80+), python3 with CUDA torch
    PYTHONPATH=engine python3 bench/gpu_engine.py --out DIR [--budget-s 360] [--parts ...]
    PYTHONPATH=engine python3 bench/gpu_engine.py --out DIR --dry-run   # CPU, tiny, no CUDA

It is written to spend one lent GPU run well: the cheapest and most telling checks run first,
results reach --out after every step, and a budget stops it in time with what it has.

Steps, in order (--parts picks some; a rerun into the same --out keeps the other parts' results):
1. smoke: a 128x128 2:4 fp16 weight compressed by cuSPARSELt and used by F.linear, with and
   without bias, against the dense result: the cheapest proof the sparse path works. It runs
   in a child process: if cuSPARSELt crashes or hangs there, only this step is lost, and the
   later steps run without their sparse variants (recorded so).
2. gemm: F.linear on an 8192x8192 2:4 fp16 weight, 8192 tokens, dense vs cuSPARSELt.
3. linear: the same at 2048 and 64 tokens; small shapes also get kernel-only timings.
4. models: resnet18 and resnet50 at batch 1/64/256 in fp16 channels-last, timed interleaved:
   dense weights, 2:4-masked weights (dense kernels), the sparse copy with the layers that
   timed faster sparse ("auto"), and the sparse copy with every 2:4 layer lowered ("all").
   Every converted layer is first test-run against its dense twin (a failing one goes back to
   dense and is recorded), each sparse model is checked against the masked model, and a
   failing variant is recorded with its error while the others are still timed.
5. engine: the engine CLI itself (`python -m sparsegrid_engine run`) briefly trains resnet18
   on synthetic data, then fine-tunes it with 2:4; its result carries measure_model's
   latencies, including latency_sparse_ms where cuSPARSELt ran. Its stderr streams to
   engine.log.

Timings: "end to end" is one call per timer pair (CUDA events after a synchronize), so for
small problems it includes Python dispatch and the sparse tensor's per-call set-up; "kernel
only" (small shapes only) is a CUDA graph of many calls replayed, per call (or, where a graph
cannot be captured, many back-to-back calls per event pair, labelled so). cuDNN runs with
benchmark=True, deterministic=False both while the auto policy picks layers and while timing.

The header records device, driver, CUDA, cuDNN, torch and cuSPARSELt (torch.backends.cusparselt,
checked up front: without it the run says SPARSE PATH UNAVAILABLE and times the dense variants).
The budget (--budget-s, counted from --started-at, which gpu_engine.sh sets) skips steps that no
longer fit, derives every child's timeout from the time left, and a watchdog writes the results
and exits if a step is still running 15 s past it.

Files under --out: gpu_engine.json (rewritten atomically after every step), gpu_engine.md
(regenerated with it), gpu_engine.log (this script's log), engine.log (engine stderr).
Exit status: 0 all ran and passed; 1 something failed (or the sparse path is unavailable);
2 the budget stopped it before the end; 3 a step hung past the deadline and was killed.

In --dry-run the sparse format is a dense stand-in (labelled so) and sizes are tiny: it
checks the plumbing on a machine without a GPU; its timings mean nothing.
"""

import argparse
import copy
import faulthandler
import gc
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F
from sparsegrid_engine.kernels import (
    build_sparse_model,
    cusparselt_status,
    semi_structured,
    sparse_kernel_unavailable,
)
from sparsegrid_engine.measure import SPARSE_RTOL, summarize, time_interleaved
from sparsegrid_engine.models import build_model
from sparsegrid_engine.sparsity import apply_sparsity, n_m_mask, target_layers

NM_2_4 = {"name": "nm_2_4", "kind": "n_m", "n": 2, "m": 4, "skip": ["first", "last"]}
ENGINE_ROOT = Path(__file__).resolve().parents[1] / "engine"
PARTS = ("smoke", "gemm", "linear", "models", "engine")
JSON_NAME, MD_NAME, LOG_NAME, ENGINE_LOG_NAME = "gpu_engine.json", "gpu_engine.md", "gpu_engine.log", "engine.log"
DEFAULT_BUDGET_S = 360  # a full H200 run should need ~3 min; worst case ~6.5 min (watchdog) or 6.75 (outer timeout)
DRY_BUDGET_S = 900  # a dry run on a busy 2-core machine
SMOKE_TIMEOUT_S = 120  # the smoke check's child: torch import, CUDA start-up, one tiny GEMM
WATCHDOG_GRACE_S = 15  # a step still running this long after the deadline is killed
SUBPROCESS_RESERVE_S = 3  # a child is stopped this long before the deadline

END_TO_END = (
    "end to end: one call per timer pair{how}; includes Python dispatch, launch gaps and, for the sparse "
    "variants, the semi-structured tensor's per-call set-up (it dominates small problems)"
)

# Sizes of a real run and of a dry run.
FULL = {
    "device": "cuda",
    "dtype": "float16",
    "smoke": (128, 128, 128),  # (tokens, in, out)
    "gemm": (8192, 8192, 8192),
    "linear": [(2048, 8192, 8192), (64, 8192, 8192)],
    "models": ["resnet18", "resnet50"],
    "batch_sizes": [1, 64, 256],
    "warmup": 20,
    "iterations": 100,
    "calibration": (4, 64),  # BatchNorm calibration: batches, batch size
    # Kernel-only timings for small problems: linear rows up to max_tokens, model batches up to max_batch.
    "kernel_only": {"max_tokens": 256, "max_batch": 1, "calls": 20, "samples": 30},
    # Seconds a step needs at least; with less left it is skipped (recorded so).
    "min_s": {"smoke": 5, "gemm": 10, "linear": 5, "kernel_only": 5, "models": 10, "engine": 40},
    "train": {
        "data": {"dataset": "synthetic", "train": 2048, "test": 512, "seed": 0},
        "params": {"epochs": 1, "batch_size": 128, "max_steps": 8, "lr": 0.05, "eval_batch_size": 512},
        "finetune": {"epochs": 1, "batch_size": 128, "max_steps": 8, "lr": 0.01, "eval_batch_size": 512},
        "measure": {
            "latency": {"batch_sizes": [1, 64, 256], "warmup": 10, "iterations": 50},
            "flops": True,
            "memory": True,
        },
    },
}
DRY = {
    "device": "cpu",
    "dtype": "float32",
    "smoke": (128, 128, 128),
    "gemm": (256, 256, 256),
    "linear": [(64, 256, 256)],
    "models": ["resnet18"],
    "batch_sizes": [2],
    "warmup": 1,
    "iterations": 2,
    "calibration": (1, 8),
    "kernel_only": {"max_tokens": 64, "max_batch": 2, "calls": 3, "samples": 2},
    "min_s": {"smoke": 1, "gemm": 1, "linear": 1, "kernel_only": 1, "models": 3, "engine": 10},
    "train": {
        "data": {"dataset": "synthetic", "train": 64, "test": 16, "seed": 0},
        "params": {"epochs": 1, "batch_size": 16, "max_steps": 1, "num_threads": 2, "eval_batch_size": 16},
        "finetune": {"epochs": 1, "batch_size": 16, "max_steps": 1, "num_threads": 2, "eval_batch_size": 16},
        "measure": {"latency": {"batch_sizes": [1], "warmup": 1, "iterations": 2}, "flops": True, "memory": True},
    },
}


class StepSkipped(Exception):
    """A step that cannot run because an earlier one did not finish; recorded as skipped."""


class Reported(Exception):
    """An error already in error_line's form (from a child process): recorded as it is."""


def error_line(error: BaseException) -> str:
    """The error as a traceback's last line would show it, with up to three message lines."""
    if isinstance(error, Reported):
        return str(error)[:500]
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    text = " | ".join(lines[:3]) if lines else "(no message)"
    return f"{type(error).__name__}: {text}"[:500]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


class cudnn_for_timing:
    """cuDNN autotuning on and determinism off, the same while choosing layers and timing them
    (measure.py's rule); restored afterwards."""

    FLAGS = {"enabled": True, "benchmark": True, "deterministic": False}

    def __enter__(self):
        b = torch.backends.cudnn
        self.saved = b.enabled, b.benchmark, b.deterministic
        b.enabled, b.benchmark, b.deterministic = True, True, False
        return self

    def __exit__(self, *exc):
        b = torch.backends.cudnn
        b.enabled, b.benchmark, b.deterministic = self.saved
        return False


# ---------------------------------------------------------------------------------------
# The run: budget, report, incremental writes


class Run:
    """One benchmark run: the report, its files under `out`, the deadline and the steps."""

    def __init__(self, out: Path, *, budget_s: float, started_at: float | None = None, watchdog: bool = True):
        self.out = out
        self.lock = threading.RLock()
        now = time.time()
        started_at = now if started_at is None else started_at
        self.budget_s = budget_s
        self.started_at = started_at
        self.deadline = time.monotonic() + (started_at + budget_s - now)
        self.report: dict = {}
        self.current: str | None = None
        self.child: subprocess.Popen | None = None
        self.finished = threading.Event()
        self.writes = 0
        out.mkdir(parents=True, exist_ok=True)
        self.log_file = open(out / LOG_NAME, "a", buffering=1, encoding="utf-8")
        self.watchdog = None
        if watchdog:
            self.watchdog = threading.Thread(target=self._watch, name="gpu-engine-watchdog", daemon=True)

    # -- time

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def elapsed(self) -> float:
        return time.time() - self.started_at

    # -- log and files

    def log(self, message: str) -> None:
        line = f"[gpu_engine {self.elapsed():6.1f}s] {message}"
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
        try:
            self.log_file.write(line + "\n")
        except ValueError:  # closed
            pass

    def save(self) -> None:
        """Rewrites gpu_engine.json (temp file + rename) and regenerates gpu_engine.md."""
        with self.lock:
            self.writes += 1
            self.report["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            self.report["elapsed_s"] = round(self.elapsed(), 1)
            self.report["writes"] = self.writes
            text = json.dumps(self.report, indent=1, default=str)
            try:
                table = markdown(self.report)
            except Exception as error:  # the JSON must still land
                table = f"# Engine GPU benchmark\n\nmarkdown failed: {error_line(error)}; see {JSON_NAME}\n"
            for name, content in ((JSON_NAME, text), (MD_NAME, table)):
                tmp = self.out / f"{name}.tmp"
                tmp.write_text(content)
                os.replace(tmp, self.out / name)

    # -- steps

    def plan(self, names: list[str]) -> None:
        with self.lock:
            self.report["steps"] = [{"step": name, "status": "pending"} for name in names]

    def _entry(self, name: str) -> dict:
        for entry in self.report["steps"]:
            if entry["step"] == name:
                return entry
        entry = {"step": name, "status": "pending"}
        self.report["steps"].append(entry)
        return entry

    def put(self, path: tuple, value) -> None:
        """Sets report["parts"][path...] = value and saves."""
        with self.lock:
            node = self.report["parts"]
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = value  # a dict key, or an index into a pre-sized list
            self.save()

    def step(self, name: str, fn, *, min_s: float, where: tuple | None = None, needs=None):
        """Runs fn() unless the budget is spent; records the step; returns fn's value or None.

        where: the report["parts"] path the value (or the skip / error record) goes to.
        needs: a callable giving the reason the step cannot run (an earlier one failed), or None.
        """
        left = self.left()
        reason = needs() if needs else None
        if reason is None and left < min_s:
            reason = f"budget: {max(left, 0):.0f} s left, this step needs at least {min_s:.0f} s"
        if reason is not None:
            with self.lock:
                self._entry(name).update(status="skipped", reason=reason)
                if where is not None:
                    self.put(where, {"skipped": reason})
                self.save()
            self.log(f"{name}: skipped ({reason})")
            return None
        with self.lock:
            self.current = name
            self._entry(name).update(status="running", began_s=round(self.elapsed(), 1))
            self.report["running_step"] = name
            self.save()
        self.log(f"{name}: started ({left:.0f} s left)")
        began = time.monotonic()
        status, value, error = "ok", None, None
        try:
            value = fn()
        except StepSkipped as exc:
            status, value = "skipped", {"skipped": str(exc)}
            self.log(f"{name}: skipped ({exc})")
        except TimeoutError as exc:  # a child stopped at the deadline
            status, error = "timed out", error_line(exc)
            self.log(f"{name}: TIMED OUT: {error}")
            value = {"timed_out": error}
        except Exception as exc:  # record and carry on: one broken step must not hide the others
            status, error = "failed", error_line(exc)
            trace = traceback.format_exc()
            self.log(f"{name}: FAILED: {error}\n{trace}")
            value = {"error": error, "traceback": trace[-4000:]}
        seconds = time.monotonic() - began
        with self.lock:
            entry = self._entry(name)
            entry.update(status=status, seconds=round(seconds, 2))
            if error:
                entry["error"] = error
            elif status == "skipped":
                entry["reason"] = value["skipped"]
            elif isinstance(value, dict) and value.get("failures"):
                entry["status"] = "ok with failures"
                entry["error"] = "; ".join(value["failures"])[:500]
            self.current = None
            self.report["running_step"] = None
            if where is not None:
                self.put(where, value)
            self.save()
        self.log(f"{name}: {entry['status']} in {seconds:.1f} s")
        return value

    # -- the hard stop

    def start_watchdog(self) -> None:
        if self.watchdog is not None:
            self.watchdog.start()

    def _watch(self) -> None:
        while not self.finished.wait(timeout=max(0.05, min(1.0, self.left() + WATCHDOG_GRACE_S))):
            if self.left() + WATCHDOG_GRACE_S <= 0:
                self.abort(f"killed at the deadline: still running {WATCHDOG_GRACE_S} s after the budget ran out")
                return

    def abort(self, why: str, code: int = 3) -> None:
        """Records `why` against the running step and every step not reached, writes, and exits."""
        self.stop_child()
        acquired = self.lock.acquire(timeout=10)
        try:
            if self.finished.is_set():  # the run ended while this waited for the lock
                return
            for entry in self.report.get("steps", []):
                if entry["status"] == "running":
                    entry.update(status="killed", error=why)
                elif entry["status"] == "pending":
                    entry.update(status="skipped", reason=f"not reached: {why}")
            self.report["status"] = "killed at the deadline" if code == 3 else f"aborted: {why}"
            self.report["exit_code"] = code
            self.save()
        finally:
            if acquired:
                self.lock.release()
        if self.finished.is_set():
            return
        self.log(f"ABORTED: {why}; the results so far are in {self.out / JSON_NAME}. Stacks of all threads:")
        try:
            faulthandler.dump_traceback(file=self.log_file, all_threads=True)
            faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        except Exception:
            pass
        self.log_file.flush()
        os._exit(code)

    def stop_child(self) -> None:
        child = self.child
        if child is None or child.poll() is not None:
            return
        try:
            os.killpg(child.pid, signal.SIGTERM)
            child.wait(timeout=3)
        except Exception:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except Exception:
                pass

    def close(self) -> None:
        self.finished.set()
        self.log_file.close()


# ---------------------------------------------------------------------------------------
# Environment


def _cusparselt_text(version) -> str | None:
    """cuSPARSELt's integer version (major*1000 + minor*100 + patch) as text."""
    if not isinstance(version, int):
        return None
    return f"{version // 1000}.{version // 100 % 10}.{version % 100}"


def environment(device: torch.device, run: Run) -> dict:
    env = {
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": str(device),
        "host": platform.node(),
    }
    status = cusparselt_status()
    env["cusparselt_available"] = status["available"]
    env["cusparselt_version"] = status["version"]
    env["cusparselt"] = _cusparselt_text(status["version"])
    try:
        env["cudnn"] = torch.backends.cudnn.version()
    except Exception as error:
        env["cudnn"] = error_line(error)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env["device_name"] = props.name
        env["capability"] = f"{props.major}.{props.minor}"
        env["memory_gib"] = round(props.total_memory / 2**30, 1)
        env["multiprocessors"] = props.multi_processor_count
        env["tf32"] = {"cudnn": torch.backends.cudnn.allow_tf32, "matmul": torch.backends.cuda.matmul.allow_tf32}
        env["cuda_visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES")
        getter = getattr(torch._C, "_cuda_getDriverVersion", None)
        if getter is not None:
            try:
                version = getter()
                env["cuda_driver_api"] = f"{version // 1000}.{version % 1000 // 10}"
            except Exception:
                pass
        env["driver"] = _driver_version(run)
    return env


def _driver_version(run: Run) -> str | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        proc = subprocess.run(
            [smi, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=max(1.0, min(10.0, run.left() - SUBPROCESS_RESERVE_S)),
        )
        return proc.stdout.strip().splitlines()[0] if proc.returncode == 0 and proc.stdout.strip() else None
    except Exception:
        return None


# ---------------------------------------------------------------------------------------
# Timing helpers


def _check_close(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """Raises when sparse outputs drift from the dense / masked ones; returns the max abs error."""
    actual, expected = actual.float(), expected.float()
    atol = SPARSE_RTOL * float(expected.abs().max()) + 1e-3
    torch.testing.assert_close(actual, expected, rtol=SPARSE_RTOL, atol=atol)
    return float((actual - expected).abs().max())


def _end_to_end_label(device: torch.device) -> str:
    how = " (CUDA events after a synchronize)" if device.type == "cuda" else " (time.perf_counter)"
    return END_TO_END.format(how=how)


def time_variants(variants: dict, *, device, warmup: int, iterations: int, errors: dict) -> dict:
    """time_interleaved, with a variant that raises dropped (its error recorded) and the others timed."""
    variants = dict(variants)
    while variants:
        try:
            return time_interleaved(variants, device=device, warmup=warmup, iterations=iterations)
        except Exception as error:
            culprit = None
            for name, fn in variants.items():
                try:
                    with torch.inference_mode():
                        fn()
                    _sync(device)
                except Exception as inner:
                    culprit = name
                    errors[name] = f"timing: {error_line(inner)}"
                    break
            if culprit is None:
                raise error
            variants.pop(culprit)
    return {}


class KernelTimer:
    """Kernel-only times: CUDA graphs of `calls` calls replayed (per call), or many calls per
    event pair where a graph cannot be captured; on CPU many calls per perf_counter pair."""

    def __init__(self, device: torch.device, use_graphs: bool = True):
        self.device = device
        self.use_graphs = use_graphs and device.type == "cuda"
        self.graph_error: str | None = None

    def _capture(self, fn, calls: int):
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            for _ in range(3):
                fn()
        torch.cuda.current_stream(self.device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for _ in range(calls):
                fn()
        graph.replay()
        torch.cuda.synchronize(self.device)
        return graph

    def time(self, variants: dict, *, calls: int, samples: int, errors: dict) -> dict:
        """Per-call times of each variant, all by the same method (graphs only if all capture)."""
        runners, graphs = {}, []
        if self.use_graphs:
            try:
                with torch.inference_mode():
                    for name, fn in variants.items():
                        graphs.append(self._capture(fn, calls))
                        runners[name] = graphs[-1].replay
                method = f"CUDA graph of {calls} calls replayed, time per call"
            except Exception as error:
                self.use_graphs = False  # one failed capture is enough: no more tries this run
                self.graph_error = f"{name}: {error_line(error)}"
                runners, graphs = {}, []
                try:
                    torch.cuda.synchronize(self.device)
                except Exception:
                    pass
        if not runners:
            runners = {name: (lambda fn=fn: [fn() for _ in range(calls)]) for name, fn in variants.items()}
            if self.device.type == "cuda":
                method = f"{calls} back-to-back calls per CUDA event pair, time per call (no CUDA graph"
                method += f": {self.graph_error})" if self.graph_error else ")"
            else:
                method = f"{calls} back-to-back calls per time.perf_counter pair, time per call"
        methods = dict.fromkeys(runners, method)
        times = {name: [] for name in runners}
        order = list(runners)
        with torch.inference_mode():
            for name in list(order):  # warm-up, and a variant that fails here is dropped
                try:
                    runners[name]()
                    _sync(self.device)
                except Exception as error:
                    errors[f"{name} (kernel only)"] = error_line(error)
                    order.remove(name)
                    times.pop(name)
            for sample in range(samples):
                names = order if sample % 2 == 0 else order[::-1]
                if self.device.type == "cuda":
                    pairs = []
                    for name in names:
                        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                        start.record()
                        runners[name]()
                        end.record()
                        pairs.append((name, start, end))
                    torch.cuda.synchronize(self.device)
                    for name, start, end in pairs:
                        times[name].append(start.elapsed_time(end) / calls)
                else:
                    for name in names:
                        began = time.perf_counter()
                        runners[name]()
                        times[name].append((time.perf_counter() - began) * 1000 / calls)
        del graphs
        return {name: {**summarize(t), "method": methods[name]} for name, t in times.items() if t}


# ---------------------------------------------------------------------------------------
# 1-3. Smoke check, GEMM, linear rows


def _two_four_weight(fan_out: int, fan_in: int, device, dtype, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(fan_out, fan_in, generator=generator).to(device=device, dtype=dtype)
    return (weight * n_m_mask(weight, 2, 4)).contiguous()


def smoke(cfg: "Config") -> dict:
    tokens, fan_in, fan_out = cfg.sizes["smoke"]
    device, dtype = cfg.device, cfg.dtype
    weight = _two_four_weight(fan_out, fan_in, device, dtype)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(tokens, fan_in, generator=generator).to(device=device, dtype=dtype)
    bias = torch.randn(fan_out, generator=generator).to(device=device, dtype=dtype)
    out = {"tokens": tokens, "in": fan_in, "out": fan_out, "dtype": str(dtype).replace("torch.", "")}
    if cfg.to_sparse is None:
        sparse = weight
        out["format"] = "dense stand-in (dry run)"
    else:
        sparse = cfg.to_sparse(weight)
        out["format"] = type(sparse).__name__
        out["backend"] = getattr(sparse, "BACKEND", None)
        packed = getattr(sparse, "packed", None)
        if packed is not None:
            out["packed_shape"] = list(packed.shape)
            out["packed_numel"] = packed.numel()
            out["dense_numel"] = weight.numel()
    with torch.inference_mode():
        out["max_abs_error"] = {
            "no_bias": _check_close(F.linear(x, sparse), F.linear(x, weight)),
            "bias": _check_close(F.linear(x, sparse, bias), F.linear(x, weight, bias)),
        }
    _sync(device)
    out["ok"] = True
    return out


def _engine_env() -> dict:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(ENGINE_ROOT), os.environ.get("PYTHONPATH")) if p),
        "PYTHONUNBUFFERED": "1",
    }


def smoke_in_child(cfg: "Config") -> dict:
    """The smoke check in a child process, so that a crash or hang in cuSPARSELt costs only this
    step: the sparse path is then marked unavailable and the rest of the run goes on without it."""
    result_path = cfg.work / "smoke.json"
    command = [sys.executable, "-u", str(Path(__file__).resolve()), "--out", str(cfg.work)]
    command += ["--child-smoke", str(result_path)] + (["--dry-run"] if cfg.dry_run else [])
    if cfg.crash_in == "smoke":
        command += ["--crash-in", "smoke"]
    timeout = min(cfg.run.left() - SUBPROCESS_RESERVE_S, SMOKE_TIMEOUT_S)
    if timeout <= 1:
        raise TimeoutError("smoke: no time left before the deadline")
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_engine_env(), start_new_session=True
    )
    cfg.run.child = proc
    try:
        _, stderr = proc.communicate(timeout=timeout)
        why = None
    except subprocess.TimeoutExpired:
        cfg.run.stop_child()
        _, stderr = proc.communicate()
        why = f"it hung for {timeout:.0f} s and was stopped"
    finally:
        cfg.run.child = None
    if why is None and result_path.exists():
        result = json.loads(result_path.read_text())
        if "error" in result:  # the check ran and failed: later steps try again and record their own errors
            cfg.run.log(f"smoke child: {result['error']}\n{result.get('traceback', '')}")
            raise Reported(result["error"])
        return result
    if why is None:
        code = proc.returncode
        why = f"its process died (signal {-code})" if code < 0 else f"its process exited {code} with no result"
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    fatal = [line for line in lines if line.startswith("Fatal Python error")]  # faulthandler's headline
    last = (fatal or lines[-1:] or ["(no stderr)"])[0]
    cfg.run.log(f"smoke child: {why}; stderr tail:\n{stderr[-3000:]}")
    cfg.sparse_unavailable = (
        f"the cuSPARSELt smoke check failed hard ({why}), so sparse variants are not run in this process"
    )
    with cfg.run.lock:
        cfg.run.report["sparse_path"]["unavailable"] = cfg.sparse_unavailable
    raise RuntimeError(f"smoke check: {why}: {last}")


def gemm_row(cfg: "Config", tokens: int, fan_in: int, fan_out: int) -> dict:
    """F.linear on a 2:4 weight, dense vs sparse, end to end; a sparse failure keeps the dense time."""
    device, dtype, sizes = cfg.device, cfg.dtype, cfg.sizes
    weight = _two_four_weight(fan_out, fan_in, device, dtype)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(tokens, fan_in, generator=generator).to(device=device, dtype=dtype)
    row = {"tokens": tokens, "in": fan_in, "out": fan_out, "timing": _end_to_end_label(device)}
    errors: dict = {}
    variants = {"dense": lambda: F.linear(x, weight)}
    sparse = None
    if cfg.sparse_unavailable:
        errors["sparse"] = f"not run: {cfg.sparse_unavailable}"
    else:
        try:
            sparse = cfg.to_sparse(weight) if cfg.to_sparse else weight
            with torch.inference_mode():
                row["max_abs_error"] = _check_close(F.linear(x, sparse), F.linear(x, weight))
            variants["sparse"] = lambda: F.linear(x, sparse)
        except Exception as error:
            errors["sparse"] = error_line(error)
            cfg.run.log(f"gemm {tokens}x{fan_in}x{fan_out}: sparse FAILED: {error_line(error)}")
    times = time_variants(
        variants, device=device, warmup=sizes["warmup"], iterations=sizes["iterations"], errors=errors
    )
    for name, samples in times.items():
        row[name] = summarize(samples)
    flop = 2 * tokens * fan_in * fan_out
    if "dense" in row:
        row["dense_tflops"] = flop / row["dense"]["median"] / 1e9
    if "sparse" in row:
        row["sparse_tflops_dense_equivalent"] = flop / row["sparse"]["median"] / 1e9
    row["speedup"] = row["dense"]["median"] / row["sparse"]["median"] if "dense" in row and "sparse" in row else None
    if errors:
        row["errors"] = errors
        row["failures"] = [f"{k}: {v}" for k, v in errors.items() if not v.startswith("not run:")]
    # Kept for the kernel-only step (small shapes only).
    if tokens <= sizes["kernel_only"]["max_tokens"]:
        cfg.small_linear[(tokens, fan_in, fan_out)] = variants
    speed = f"speedup {row['speedup']:.2f}x" if row["speedup"] else "no speedup (sparse did not run)"
    cfg.run.log(f"gemm {tokens}x{fan_in}x{fan_out}: {speed}")
    return row


def linear_kernel_only(cfg: "Config") -> dict:
    """Kernel-only timings of the small linear rows, attached to their rows."""
    ko = cfg.sizes["kernel_only"]
    done = {}
    for shape, variants in list(cfg.small_linear.items()):
        errors: dict = {}
        try:
            stats = cfg.kernel_timer.time(variants, calls=ko["calls"], samples=ko["samples"], errors=errors)
        except Exception as error:
            stats, errors["all"] = {}, error_line(error)
        result = {"variants": stats, "calls_per_sample": ko["calls"], "samples": ko["samples"]}
        if "dense" in stats and "sparse" in stats:
            result["speedup"] = stats["dense"]["median"] / stats["sparse"]["median"]
        if errors:
            result["errors"] = errors
        key = "x".join(map(str, shape))
        done[key] = result
        with cfg.run.lock:
            for row in cfg.run.report["parts"].get("linear", []):
                if isinstance(row, dict) and (row.get("tokens"), row.get("in"), row.get("out")) == shape:
                    row["kernel_only"] = result
            cfg.run.save()
    cfg.small_linear.clear()
    if cfg.kernel_timer.graph_error:
        done["cuda_graph_error"] = cfg.kernel_timer.graph_error
    return done


# ---------------------------------------------------------------------------------------
# 4. Whole models: dense, masked, sparse


@torch.no_grad()
def calibrate(model: torch.nn.Module, device: torch.device, batches: int, batch_size: int) -> torch.nn.Module:
    """Sets BatchNorm statistics from a few random batches, so an untrained model's activations
    stay in fp16 range (fresh BN statistics do not normalise anything)."""
    model.to(device).train()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the calibration batches
    generator = torch.Generator().manual_seed(0)
    for _ in range(batches):
        model(torch.randn(batch_size, 3, 32, 32, generator=generator).to(device))
    return model.eval()


def prepare_model(name: str, cfg: "Config") -> dict:
    torch.manual_seed(0)
    dense = calibrate(build_model(name), cfg.device, *cfg.sizes["calibration"])
    masked = copy.deepcopy(dense)
    plan = apply_sparsity(masked, NM_2_4)
    dense = dense.to(device=cfg.device, dtype=cfg.dtype).to(memory_format=torch.channels_last)
    masked = masked.to(device=cfg.device, dtype=cfg.dtype).to(memory_format=torch.channels_last)
    info = {"skipped": plan.skipped, "sparsity": plan.report(masked)["sparsity"]}
    return {"dense": dense, "masked": masked, "info": info}


def _layer_inputs(model: torch.nn.Module, x: torch.Tensor) -> dict:
    inputs = {}

    def keep(name):
        def hook(_module, args, _output):
            inputs.setdefault(name, args[0])

        return hook

    hooks = [module.register_forward_hook(keep(name)) for name, module in target_layers(model)]
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return inputs


def _replace(model: torch.nn.Module, name: str, module: torch.nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def check_layers(sparse_model, masked, entries: list[dict], inputs: dict, device) -> dict:
    """Test-runs every converted layer once against its dense twin; a failing one goes back to dense."""
    passed, failed = 0, []
    for entry in entries:
        if not entry["sparse"]:
            continue
        name = entry["layer"]
        twin = masked.get_submodule(name)
        try:
            x = inputs.get(name)
            if x is None:
                raise RuntimeError("the layer did not run on the example input")
            with torch.inference_mode():
                entry["check_max_abs_error"] = _check_close(sparse_model.get_submodule(name)(x), twin(x))
            _sync(device)
            passed += 1
        except Exception as error:
            line = error_line(error)
            _replace(sparse_model, name, twin)
            entry.update(sparse=False, reason=f"back to dense: its test-run against the dense layer failed: {line}")
            failed.append({"layer": name, "error": line})
    return {"passed": passed, "failed": failed}


def model_batch(name: str, batch: int, cfg: "Config") -> dict:
    """One model at one batch size: every variant built, checked and timed on its own."""
    if name not in cfg.prepared:
        try:
            cfg.prepared[name] = prepare_model(name, cfg)
        except Exception as error:
            cfg.prepared[name] = error
            raise
        cfg.run.put(("models", name, "model"), cfg.prepared[name]["info"])
    prepared = cfg.prepared[name]
    if isinstance(prepared, Exception):
        raise RuntimeError(f"the model could not be set up: {error_line(prepared)}")
    dense, masked = prepared["dense"], prepared["masked"]
    device, dtype, sizes = cfg.device, cfg.dtype, cfg.sizes
    generator = torch.Generator().manual_seed(batch)
    x = torch.randn(batch, 3, 32, 32, generator=generator).to(device=device, dtype=dtype)
    x = x.contiguous(memory_format=torch.channels_last)
    row: dict = {"timing": _end_to_end_label(device), "cudnn": dict(cudnn_for_timing.FLAGS)}
    errors: dict = {}
    row["max_abs_error"] = {}
    with cudnn_for_timing():
        with torch.inference_mode():
            expected = masked(x)
        variants = {"dense": lambda: dense(x), "masked": lambda: masked(x)}
        if cfg.sparse_unavailable:
            for variant in ("sparse_auto", "sparse_all"):
                errors[variant] = f"not run: {cfg.sparse_unavailable}"
        else:
            inputs = _layer_inputs(masked, x)
            for policy in ("auto", "all"):
                variant = f"sparse_{policy}"
                try:
                    model, layers = build_sparse_model(masked, x, policy=policy, to_sparse=cfg.to_sparse)
                    row[f"layer_checks_{policy}"] = check_layers(model, masked, layers, inputs, device)
                    sparse_layers = [entry["layer"] for entry in layers if entry["sparse"]]
                    if policy == "auto":
                        row["auto_sparse_layers"] = sparse_layers
                        row["layer_timings"] = layers
                    else:
                        row["all_sparse_layers"] = len(sparse_layers)
                        row["all_not_sparse"] = [
                            {"layer": e["layer"], "reason": e["reason"]} for e in layers if not e["sparse"]
                        ]
                    if not sparse_layers:
                        row.setdefault("notes", {})[variant] = (
                            "no layer faster sparse at this batch size: the variant equals masked, not timed"
                            if policy == "auto"
                            else "no layer could run sparse"
                        )
                        continue
                    with torch.inference_mode():
                        row["max_abs_error"][variant] = _check_close(model(x), expected)
                    variants[variant] = lambda model=model: model(x)
                except Exception as error:
                    errors[variant] = error_line(error)
                    cfg.run.log(f"models/{name}/bs{batch} {variant} FAILED: {error_line(error)}")
            del inputs
        times = time_variants(
            variants, device=device, warmup=sizes["warmup"], iterations=sizes["iterations"], errors=errors
        )
        for variant, samples in times.items():
            row[variant] = summarize(samples)
        ko = sizes["kernel_only"]
        if batch <= ko["max_batch"]:
            # The end-to-end numbers land first: a hang in the kernel-only timings must not lose them.
            partial = {**row, "variant_errors": dict(errors), "partial": "kernel-only timings still running"}
            cfg.run.put(("models", name, "batch_sizes", str(batch)), partial)
            timed = {k: v for k, v in variants.items() if k in times}
            kernel_errors: dict = {}
            try:
                stats = cfg.kernel_timer.time(timed, calls=ko["calls"], samples=ko["samples"], errors=kernel_errors)
            except Exception as error:
                stats, kernel_errors["all"] = {}, error_line(error)
            row["kernel_only"] = {"variants": stats, "calls_per_sample": ko["calls"], "samples": ko["samples"]}
            if kernel_errors:
                row["kernel_only"]["errors"] = kernel_errors
    for policy in ("auto", "all"):
        for failure in row.get(f"layer_checks_{policy}", {}).get("failed", []):
            errors.setdefault(f"sparse_{policy} layer {failure['layer']}", failure["error"])
    for entry in row.get("layer_timings", []):  # the auto policy's own trial of each layer
        if (entry.get("reason") or "").startswith("sparse kernel failed"):
            errors.setdefault(f"sparse_auto layer {entry['layer']}", entry["reason"])
    if errors:
        row["variant_errors"] = errors
        row["failures"] = [f"{k}: {v}" for k, v in errors.items() if not v.startswith("not run:")]
    stats = {k: row[k]["median"] for k in ("dense", "masked", "sparse_auto", "sparse_all") if k in row}
    cfg.run.log(f"models/{name}/bs{batch}: " + ", ".join(f"{k} {v:.3f} ms" for k, v in stats.items()))
    del variants
    _free(device)
    return row


# ---------------------------------------------------------------------------------------
# 5. The engine CLI end to end


def _engine(cfg: "Config", task: dict, workdir: Path) -> dict:
    """Runs one engine task as a child process; stderr streams to engine.log; the timeout is
    the time left before the deadline."""
    run = cfg.run
    workdir.mkdir(parents=True, exist_ok=True)
    task_file = workdir.with_suffix(".json")
    task_file.write_text(json.dumps(task))
    env = {**_engine_env(), "SPARSEGRID_CACHE": str(workdir.parent / "cache")}
    command = [sys.executable, "-m", "sparsegrid_engine", "run", "--task", str(task_file), "--workdir", str(workdir)]
    if cfg.hang_in == "engine":  # test hook: a child that never finishes
        command = [
            sys.executable,
            "-c",
            "import sys, time; print('hanging engine stand-in', file=sys.stderr); time.sleep(3600)",
        ]
    timeout = run.left() - SUBPROCESS_RESERVE_S
    if timeout <= 1:
        raise TimeoutError(f"engine {task['stage']}: no time left before the deadline")
    log_path = run.out / ENGINE_LOG_NAME
    with open(log_path, "ab") as log_file:
        log_file.write(f"\n===== engine {task['stage']} (gpu_engine +{run.elapsed():.0f} s) =====\n".encode())
        log_file.flush()
        offset = log_file.tell()
    stdout_path = workdir.with_suffix(".events")
    began = time.monotonic()
    with open(log_path, "ab", buffering=0) as log_file, open(stdout_path, "wb") as stdout_file:
        proc = subprocess.Popen(command, stdout=stdout_file, stderr=log_file, env=env, start_new_session=True)
        run.child = proc
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            run.stop_child()
            raise TimeoutError(
                f"engine {task['stage']} stopped after {time.monotonic() - began:.0f} s at the deadline "
                f"(budget {run.budget_s:.0f} s); its stderr so far is in {ENGINE_LOG_NAME}"
            ) from None
        finally:
            run.child = None
    events = []
    for line in stdout_path.read_text(errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    results = [e for e in events if e.get("event") == "result"]
    if proc.returncode != 0 or len(results) != 1:
        with open(log_path, "rb") as log_file:
            log_file.seek(offset)
            stderr = log_file.read().decode(errors="replace")
        last = next((line for line in reversed(stderr.splitlines()) if line.strip()), "(no stderr)")
        raise RuntimeError(
            f"engine {task['stage']} exited {proc.returncode} with {len(results)} result events: {last.strip()}"
        )
    artifact = next(e for e in events if e.get("event") == "artifact")
    return {"seconds": time.monotonic() - began, "result": results[0], "artifact": artifact}


def _keep(run: dict) -> dict:
    result = run["result"]
    return {
        "seconds": run["seconds"],
        "metrics": result["metrics"],
        "units": result["units"],
        "null_reasons": result["details"].get("null_reasons", {}),
        "latency": result["details"].get("latency"),
    }


def engine_tasks(cfg: "Config") -> tuple[dict, dict]:
    sizes = cfg.sizes
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
    finetune = {
        **base,
        "task_id": "b" * 64,
        "attempt_id": "b" * 64 + "-1",
        "stage": "finetune",
        "method": NM_2_4,
        "params": {"model": "resnet18", "seed": 0, "method": "nm_2_4", **sizes["train"]["finetune"]},
    }
    return train, finetune


def engine_train(cfg: "Config") -> dict:
    train, _ = engine_tasks(cfg)
    done = _engine(cfg, train, cfg.work / "train")
    cfg.checkpoint = done["artifact"]
    return _keep(done)


def _needs_checkpoint(cfg: "Config") -> str | None:
    return None if cfg.checkpoint is not None else "no checkpoint to fine-tune: engine/train did not finish"


def engine_finetune(cfg: "Config") -> dict:
    if cfg.checkpoint is None:
        raise StepSkipped(_needs_checkpoint(cfg))
    _, finetune = engine_tasks(cfg)
    finetune["inputs"] = {
        "train": {
            "task_id": "a" * 64,
            "name": "checkpoint",
            "sha256": cfg.checkpoint["sha256"],
            "path": str((cfg.work / "train" / cfg.checkpoint["path"]).resolve()),
        }
    }
    return _keep(_engine(cfg, finetune, cfg.work / "finetune"))


# ---------------------------------------------------------------------------------------
# Report


def _ms(stats) -> str:
    return f"{stats['median']:.3f}" if isinstance(stats, dict) and "median" in stats else "n/a"


def markdown(report: dict) -> str:
    env = report.get("environment", {})
    parts = report.get("parts", {})
    sparse = report.get("sparse_path", {})
    lines = [
        f"# Engine GPU benchmark{' (DRY RUN: dense stand-in, timings meaningless)' if report.get('dry_run') else ''}",
        "",
    ]
    running = report.get("running_step")
    status = report.get("status", "running")
    lines.append(
        f"Status: **{status}**{f' (now: {running})' if running and status == 'running' else ''}; "
        f"{report.get('elapsed_s', 0):.0f} s of a {report.get('budget_s', 0):.0f} s budget; "
        f"started {report.get('started')}, updated {report.get('updated')}."
    )
    lines.append("")
    device = str(env.get("device_name", env.get("device")))
    if env.get("capability"):
        device += f" (sm{env['capability'].replace('.', '')}, {env.get('memory_gib')} GiB)"
    lines.append(
        f"{device}; driver {env.get('driver')}; torch {env.get('torch')}, CUDA {env.get('cuda')}, "
        f"cuDNN {env.get('cudnn')}; cuSPARSELt {env.get('cusparselt')} "
        f"({'available' if env.get('cusparselt_available') else 'NOT available'} in this torch build); "
        f"Python {env.get('python')}."
    )
    lines.append("")
    if sparse.get("unavailable"):
        lines += [f"**SPARSE PATH UNAVAILABLE: {sparse['unavailable']}** — sparse variants were not run.", ""]
    lines += [f"Sparse format: {report.get('sparse_format')}.", ""]

    steps = report.get("steps", [])
    if steps:
        lines += ["## Steps", "", "| step | status | seconds | note |", "|---|---|---:|---|"]
        for entry in steps:
            note = entry.get("error") or entry.get("reason") or ""
            seconds = f"{entry['seconds']:.1f}" if "seconds" in entry else ""
            lines.append(f"| {entry['step']} | {entry['status']} | {seconds} | {note.replace('|', '/')[:300]} |")
        lines.append("")

    smoke_result = parts.get("smoke")
    if isinstance(smoke_result, dict):
        _, fan_in, fan_out = report.get("sizes", {}).get("smoke", ("?", "?", "?"))
        lines += [f"## cuSPARSELt smoke check ({fan_out}x{fan_in} 2:4 weight, F.linear)", ""]
        if smoke_result.get("ok"):
            errors = smoke_result["max_abs_error"]
            packed = (
                f" (backend {smoke_result.get('backend')}, packed {smoke_result['packed_numel']} elements for "
                f"{smoke_result['dense_numel']} dense)"
                if "packed_numel" in smoke_result
                else ""
            )
            lines.append(
                f"OK: {smoke_result.get('format')}{packed}; "
                f"max abs error {errors['no_bias']:.2e} without bias, {errors['bias']:.2e} with bias."
            )
        else:
            lines.append(_problem(smoke_result))
        lines.append("")

    rows = []
    if isinstance(parts.get("gemm"), dict):
        rows.append(parts["gemm"])
    rows += [row for row in parts.get("linear", []) if isinstance(row, dict)]
    if rows:
        lines += [
            f"## F.linear on a 2:4 weight ({report.get('dtype')} GEMM; end to end, one call per timer pair)",
            "",
            "| tokens x in x out | dense ms | sparse ms | speedup | dense TFLOP/s | sparse TFLOP/s (dense-equiv.) | note |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for row in rows:
            if "tokens" not in row:
                lines.append(f"| ? | | | | | | {_problem(row)} |")
                continue
            shape = f"{row['tokens']}x{row['in']}x{row['out']}"
            speed = f"{row['speedup']:.2f}x" if row.get("speedup") else "n/a"
            dense_tf = f"{row['dense_tflops']:.1f}" if row.get("dense_tflops") else "n/a"
            sparse_tf = (
                f"{row['sparse_tflops_dense_equivalent']:.1f}" if row.get("sparse_tflops_dense_equivalent") else "n/a"
            )
            note = "; ".join(f"{k}: {v}" for k, v in row.get("errors", {}).items())
            lines.append(
                f"| {shape} | {_ms(row.get('dense'))} | {_ms(row.get('sparse'))} | {speed} | {dense_tf} | "
                f"{sparse_tf} | {note.replace('|', '/')} |"
            )
        lines.append("")

    models = parts.get("models", {})
    if models:
        lines += [
            f"## Models ({report.get('dtype')}, channels-last; median ms per forward, end to end; "
            "speedup of sparse auto vs masked)",
            "",
            "| model | batch | dense | masked | sparse auto | sparse all | auto speedup | layers sparse (auto / all) | note |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for name, result in models.items():
            for batch, row in result.get("batch_sizes", {}).items():
                if "masked" not in row and "dense" not in row:
                    lines.append(f"| {name} | {batch} | | | | | | | {_problem(row)} |")
                    continue
                auto = row.get("sparse_auto")
                speed = f"{row['masked']['median'] / auto['median']:.2f}x" if auto and "masked" in row else "n/a"
                counts = f"{len(row.get('auto_sparse_layers', []))} / {row.get('all_sparse_layers', 'n/a')}"
                notes = [f"{k}: {v}" for k, v in row.get("variant_errors", {}).items()]
                notes += [f"{k}: {v}" for k, v in row.get("notes", {}).items()]
                note = "; ".join(notes)
                lines.append(
                    f"| {name} | {batch} | {_ms(row.get('dense'))} | {_ms(row.get('masked'))} | {_ms(auto)} | "
                    f"{_ms(row.get('sparse_all'))} | {speed} | {counts} | {note.replace('|', '/')[:600]} |"
                )
        lines.append("")

    kernel_rows = []
    for row in rows:
        if isinstance(row.get("kernel_only"), dict) and "tokens" in row:
            kernel_rows.append((f"linear {row['tokens']}x{row['in']}x{row['out']}", row["kernel_only"]))
    for name, result in models.items():
        for batch, row in result.get("batch_sizes", {}).items():
            if isinstance(row.get("kernel_only"), dict):
                kernel_rows.append((f"{name} batch {batch}", row["kernel_only"]))
    if kernel_rows:
        lines += [
            "## Kernel only (small shapes: no Python dispatch or per-call set-up; median ms per call)",
            "",
            "| shape | dense | masked | sparse / sparse auto | sparse all | how |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for label, result in kernel_rows:
            variants = result.get("variants", {})
            methods = {name: v.get("method", "n/a") for name, v in variants.items()}
            how = (
                next(iter(methods.values()))
                if len(set(methods.values())) == 1
                else "; ".join(f"{name}: {method}" for name, method in methods.items())
            ) or "n/a"
            errors = "; ".join(f"{k}: {v}" for k, v in result.get("errors", {}).items())
            sparse_cell = _ms(variants.get("sparse") or variants.get("sparse_auto"))
            lines.append(
                f"| {label} | {_ms(variants.get('dense'))} | {_ms(variants.get('masked'))} | {sparse_cell} | "
                f"{_ms(variants.get('sparse_all'))} | {(how + ('; ' + errors if errors else '')).replace('|', '/')} |"
            )
        lines.append("")

    engine = parts.get("engine", {})
    finetune = engine.get("finetune") if isinstance(engine, dict) else None
    if isinstance(finetune, dict) and "metrics" in finetune:
        metrics = finetune["metrics"]
        lines += ["## Engine CLI (resnet18, 2:4 fine-tune, measure_model)", "", "| metric | value |", "|---|---:|"]
        for key in sorted(
            k
            for k in metrics
            if k.startswith("latency") or k in ("accuracy", "sparsity", "gmacs", "gmacs_effective", "peak_mib")
        ):
            value = metrics[key]
            lines.append(f"| {key} | {'null' if value is None else f'{value:.4g}'} |")
        reason = finetune["null_reasons"].get("latency_sparse_ms")
        if reason:
            lines += ["", f"latency_sparse_ms is null: {reason}"]
        lines.append("")
    return "\n".join(lines)


def _problem(record: dict) -> str:
    for key in ("skipped", "timed_out", "error"):
        if key in record:
            return f"{key.replace('_', ' ')}: {record[key]}".replace("|", "/")
    return "no result"


# ---------------------------------------------------------------------------------------
# Driving it


class Config:
    """What one run does: sizes, device, the sparse conversion, which parts, the budget."""

    def __init__(
        self,
        out: Path,
        *,
        dry_run: bool = False,
        sizes: dict | None = None,
        device=None,
        to_sparse=semi_structured,
        sparse_format: str | None = None,
        sparse_unavailable: str | None = None,
        parts=PARTS,
        budget_s: float = DEFAULT_BUDGET_S,
        started_at: float | None = None,
        hang_in: str | None = None,
        watchdog: bool = True,
        smoke_child: bool = False,
        crash_in: str | None = None,
    ):
        self.out = Path(out)
        self.dry_run = dry_run
        self.sizes = sizes or (DRY if dry_run else FULL)
        self.device = torch.device(device or self.sizes["device"])
        self.dtype = getattr(torch, self.sizes["dtype"])
        self.to_sparse = None if dry_run else to_sparse
        self.sparse_format = sparse_format or (
            "dense stand-in (dry run)" if dry_run else "torch semi-structured 2:4, cuSPARSELt"
        )
        self.sparse_unavailable = sparse_unavailable
        self.parts = [p for p in PARTS if p in parts]
        self.budget_s = budget_s
        self.started_at = started_at
        self.hang_in = hang_in
        self.watchdog = watchdog
        self.smoke_child = smoke_child  # main() runs the smoke check in a child process
        self.crash_in = crash_in  # tests: "smoke" makes the smoke check's child process crash
        # Filled while running.
        self.run: Run = None  # type: ignore[assignment]
        self.prepared: dict = {}
        self.small_linear: dict = {}
        self.kernel_timer = KernelTimer(self.device)
        self.checkpoint = None
        self.work: Path = None  # type: ignore[assignment]


def _steps(cfg: Config) -> list[tuple]:
    """(name, fn, min_s, where) in the order they run."""
    sizes, min_s = cfg.sizes, cfg.sizes["min_s"]
    steps = []
    if "smoke" in cfg.parts:
        check = smoke_in_child if cfg.smoke_child else smoke
        steps.append(("smoke", lambda: check(cfg), min_s["smoke"], ("smoke",)))
    if "gemm" in cfg.parts:
        shape = tuple(sizes["gemm"])
        steps.append(
            (f"gemm/{'x'.join(map(str, shape))}", lambda shape=shape: gemm_row(cfg, *shape), min_s["gemm"], ("gemm",))
        )
    if "linear" in cfg.parts:
        for index, shape in enumerate(sizes["linear"]):
            steps.append(
                (
                    f"linear/{'x'.join(map(str, shape))}",
                    lambda shape=tuple(shape): gemm_row(cfg, *shape),
                    min_s["linear"],
                    ("linear", index),
                )
            )
        if any(shape[0] <= sizes["kernel_only"]["max_tokens"] for shape in sizes["linear"]):
            steps.append(("linear/kernel_only", lambda: linear_kernel_only(cfg), min_s["kernel_only"], None))
    if "models" in cfg.parts:
        for name in sizes["models"]:
            for batch in sizes["batch_sizes"]:
                steps.append(
                    (
                        f"models/{name}/bs{batch}",
                        lambda name=name, batch=batch: model_batch(name, batch, cfg),
                        min_s["models"],
                        ("models", name, "batch_sizes", str(batch)),
                    )
                )
    if "engine" in cfg.parts:
        steps.append(("engine/train", lambda: engine_train(cfg), min_s["engine"], ("engine", "train")))
        steps.append(("engine/finetune", lambda: engine_finetune(cfg), min_s["engine"], ("engine", "finetune")))
    if cfg.hang_in and cfg.hang_in != "engine":
        steps = [
            (name, (lambda: time.sleep(10**6)) if name.startswith(cfg.hang_in) else fn, m, where)
            for name, fn, m, where in steps
        ]
    return steps


def _carry_over(cfg: Config, report: dict) -> None:
    """Keeps an earlier run's results for the parts this run does not redo (--parts)."""
    path = cfg.out / JSON_NAME
    if set(cfg.parts) == set(PARTS) or not path.exists():
        return
    try:
        earlier = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return
    if earlier.get("dry_run") != cfg.dry_run:
        return
    kept = [p for p in PARTS if p not in cfg.parts and p in earlier.get("parts", {})]
    for part in kept:
        report["parts"][part] = earlier["parts"][part]
    report["carried_over"] = {"parts": kept, "from_run_started": earlier.get("started")}
    if "models" in cfg.parts and isinstance(earlier.get("parts", {}).get("models"), dict):
        # Model x batch rows this run does not redo (--models, --batch-sizes) stay.
        report["parts"]["models"] = earlier["parts"]["models"]
        report["carried_over"]["models_rows_not_redone"] = True
    report["earlier_steps"] = [s for s in earlier.get("steps", []) if s.get("step", "").split("/")[0] in kept]


def run(cfg: Config) -> int:
    """Runs the benchmark; returns the exit status (see the module docstring)."""
    budget_run = Run(cfg.out, budget_s=cfg.budget_s, started_at=cfg.started_at, watchdog=cfg.watchdog)
    cfg.run = budget_run
    report = {
        "schema": 2,
        "dry_run": cfg.dry_run,
        "status": "running",
        "budget_s": cfg.budget_s,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(budget_run.started_at)),
        "parts_requested": cfg.parts,
        "sparse_format": cfg.sparse_format,
        "sparse_path": {"unavailable": cfg.sparse_unavailable},
        "dtype": str(cfg.dtype).replace("torch.", ""),
        "sizes": {k: v for k, v in cfg.sizes.items() if k != "train"},
        "engine_sizes": cfg.sizes.get("train"),
        "timing": {
            "end_to_end": _end_to_end_label(cfg.device),
            "kernel_only": "small shapes only: CUDA graph replay per call (or many calls per event pair, "
            "labelled per variant); on CPU many calls per perf_counter pair",
            "cudnn": dict(cudnn_for_timing.FLAGS),
        },
        "parts": {"linear": [None] * len(cfg.sizes["linear"])} if "linear" in cfg.parts else {},
        "running_step": None,
    }
    _carry_over(cfg, report)
    budget_run.report = report
    steps = _steps(cfg)
    budget_run.plan([name for name, *_ in steps])
    budget_run.save()
    budget_run.start_watchdog()  # from here on a hang (CUDA start-up included) ends at the deadline
    try:
        env = environment(cfg.device, budget_run)
    except Exception as error:
        env = {
            "device": str(cfg.device),
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "error": error_line(error),
        }
        env.update({"cusparselt_available": None, "cusparselt": None})
        budget_run.log(f"environment: FAILED: {error_line(error)}")
    with budget_run.lock:
        report["environment"] = env
        report["sparse_path"].update(
            cusparselt_available=env.get("cusparselt_available"), cusparselt_version=env.get("cusparselt")
        )
        budget_run.save()
    budget_run.log(
        f"{env.get('device_name', env['device'])}, torch {env['torch']}, CUDA {env['cuda']}, driver {env.get('driver')}, "
        f"cuSPARSELt {env.get('cusparselt')} ({'available' if env.get('cusparselt_available') else 'NOT available'}); "
        f"budget {cfg.budget_s:.0f} s, {budget_run.left():.0f} s left; parts {','.join(cfg.parts)}"
    )
    if cfg.sparse_unavailable:
        budget_run.log(
            f"SPARSE PATH UNAVAILABLE: {cfg.sparse_unavailable}; dense parts run, sparse ones are recorded as not run"
        )
    try:
        with tempfile.TemporaryDirectory(prefix="gpu-engine-") as tmp:
            cfg.work = Path(tmp)
            for name, fn, min_s, where in steps:
                needs = (lambda: _needs_checkpoint(cfg)) if name == "engine/finetune" else None
                budget_run.step(name, fn, min_s=min_s, where=where, needs=needs)
        return _finish(cfg)
    finally:
        cfg.prepared.clear()
        budget_run.close()


def _finish(cfg: Config) -> int:
    budget_run = cfg.run
    with budget_run.lock:
        steps = budget_run.report["steps"]
        failed = [s for s in steps if s["status"] in ("failed", "ok with failures", "killed")]
        stopped = [s for s in steps if s["status"] in ("skipped", "timed out")]
        if failed or (cfg.sparse_unavailable and not cfg.dry_run):
            code = 1
        elif stopped:
            code = 2
        else:
            code = 0
        budget_run.report["status"] = ("stopped at the deadline" if stopped else "complete") + (
            " with failures" if code == 1 else ""
        )
        budget_run.report["exit_code"] = code
        budget_run.report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        budget_run.finished.set()
        budget_run.save()
    for entry in failed:
        budget_run.log(f"FAILED: {entry['step']}: {entry.get('error')}")
    if stopped:
        budget_run.log(f"budget: {len(stopped)} step(s) not done: " + ", ".join(s["step"] for s in stopped))
    budget_run.log(f"wrote {cfg.out / JSON_NAME} and {cfg.out / MD_NAME}; exit {code}")
    return code


def _parse_list(text: str, allowed, what: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in items if allowed is not None and item not in allowed]
    if unknown or not items:
        raise argparse.ArgumentTypeError(f"unknown {what} {unknown or text!r}; choose from {', '.join(allowed)}")
    return items


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="folder for gpu_engine.{json,md,log} and engine.log")
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes, dense stand-in for sparse")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help=f"seconds for the whole run, counted from --started-at (default {DEFAULT_BUDGET_S}; "
        f"{DRY_BUDGET_S} for --dry-run); later steps are skipped, a step hanging {WATCHDOG_GRACE_S} s "
        "past it is killed",
    )
    parser.add_argument(
        "--parts",
        type=lambda s: _parse_list(s, PARTS, "part"),
        default=list(PARTS),
        help=f"comma-separated subset of {','.join(PARTS)} (a rerun into the same --out keeps the others)",
    )
    parser.add_argument("--models", type=lambda s: _parse_list(s, None, "model"), help="models for the models part")
    parser.add_argument(
        "--batch-sizes", type=lambda s: [int(b) for b in _parse_list(s, None, "batch size")], help="e.g. 1,64"
    )
    parser.add_argument("--started-at", type=float, default=None, help=argparse.SUPPRESS)  # epoch s, from the .sh
    parser.add_argument("--hang-in", default=None, help=argparse.SUPPRESS)  # tests: make a step hang
    parser.add_argument("--child-smoke", type=Path, default=None, help=argparse.SUPPRESS)  # smoke_in_child
    parser.add_argument("--crash-in", default=None, help=argparse.SUPPRESS)  # tests: crash the smoke child
    args = parser.parse_args(argv)
    faulthandler.enable()
    if args.child_smoke is not None:
        if args.crash_in == "smoke":
            os.abort()
        cfg = Config(args.out, dry_run=args.dry_run)
        try:
            result, code = smoke(cfg), 0
        except Exception as error:
            traceback.print_exc()
            result, code = {"error": error_line(error), "traceback": traceback.format_exc()[-4000:]}, 1
        args.child_smoke.write_text(json.dumps(result, default=str))
        return code
    sizes = copy.deepcopy(DRY if args.dry_run else FULL)
    if args.models:
        sizes["models"] = args.models
    if args.batch_sizes:
        sizes["batch_sizes"] = args.batch_sizes
    budget = args.budget_s if args.budget_s is not None else (DRY_BUDGET_S if args.dry_run else DEFAULT_BUDGET_S)
    sparse_unavailable = None
    if not args.dry_run:
        if not torch.cuda.is_available():
            sys.stderr.write(
                f"[gpu_engine] FAILED: torch {torch.__version__} sees no CUDA GPU on this host; this benchmark "
                "needs a CUDA GPU with sparse tensor cores (sm80+). Run it on a GPU host, or pass --dry-run "
                "to check the script on CPU.\n"
            )
            return 1
        sparse_unavailable = sparse_kernel_unavailable("cuda")
    cfg = Config(
        args.out,
        dry_run=args.dry_run,
        sizes=sizes,
        sparse_unavailable=sparse_unavailable,
        parts=args.parts,
        budget_s=budget,
        started_at=args.started_at,
        hang_in=args.hang_in,
        smoke_child=True,
        crash_in=args.crash_in,
    )

    def terminated(signum, _frame):
        if cfg.run is None:
            sys.exit(128 + signum)
        cfg.run.abort(f"terminated by signal {signum}", code=128 + signum)

    signal.signal(signal.SIGTERM, terminated)
    return run(cfg)


if __name__ == "__main__":
    sys.exit(main())
