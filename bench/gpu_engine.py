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
2. gemm: F.linear on an 8192x8192 2:4 fp16 weight, 8192 tokens, dense vs cuSPARSELt, end to end
   and kernel only (CUDA graph replay), the latter also with the algorithm cuSPARSELt's own
   search picks for that shape.
3. linear: the same at 2048 and 64 tokens.
4. models: resnet18 and resnet50 at batch 64/256/1 (batch sizes outermost, so the big batches of
   both models come first) in fp16 channels-last: dense weights, 2:4-masked weights (dense
   kernels), the sparse copy with every 2:4 layer lowered ("all"), and the sparse copy with only
   the layers that timed faster sparse ("auto"); end to end and kernel only (one forward
   captured as a CUDA graph, replayed). Then, per distinct layer shape, kernel-only times of the
   cuDNN convolution, its unfold (the lowering), the dense GEMM and the 2:4 GEMM on the lowered
   patches: whether the 2:4 kernel beats the dense one on that GEMM, and whether the lowered
   2:4 layer beats cuDNN. The sparse model is checked against the masked one (on a mismatch,
   layer by layer, a failing layer going back to dense and recorded); a failing variant is
   recorded with its error while the others are still timed.
5. engine: the engine CLI itself (`python -m sparsegrid_engine run`) briefly trains resnet18
   on synthetic data, then fine-tunes it with 2:4; its result carries measure_model's
   latencies, including latency_sparse_ms where cuSPARSELt ran. Its stderr streams to
   engine.log.

Timings: "end to end" is one call per timer pair (CUDA events after a synchronize), so it
includes Python dispatch and, for the sparse variants, torch's per-call cuSPARSELt set-up (a
matmul plan is created and destroyed in every call). No variant is timed for longer than
--variant-cap-s: where the first call shows the planned calls would not fit, fewer are timed (at
least 3; or only that first call where even 3 would not fit), and the count and the reason are
recorded. "Kernel only" captures the calls once in a CUDA graph (the per-call set-up runs at
capture) and times replays, per call (where capture fails: back-to-back calls per event pair,
labelled so). The auto policy's per-layer choice has the same kind of cap: a layer whose eager
2:4 call is pathologically slow (host-side set-up) next to a fast dense twin is rejected without
being timed at length. cuDNN runs with benchmark=True, deterministic=False throughout.

The header records device, driver, CUDA, cuDNN, torch and cuSPARSELt (torch.backends.cusparselt,
checked up front: without it the run says SPARSE PATH UNAVAILABLE and times the dense variants).
The budget (--budget-s, counted from --started-at, which gpu_engine.sh sets) skips steps that no
longer fit and, inside a step, the costly parts whose measured cost no longer fits; it derives
every child's timeout from the time left, and a watchdog writes the results and exits if a step
is still running 15 s past it.

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
import math
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
    SparseConvAsGemm,
    build_sparse_model,
    cusparselt_status,
    semi_structured,
    sparse_kernel_unavailable,
)
from sparsegrid_engine.measure import INTERLEAVE_BLOCK, SPARSE_RTOL, summarize
from sparsegrid_engine.models import build_model
from sparsegrid_engine.sparsity import (
    apply_sparsity,
    gemm_view,
    n_m_mask,
    target_layers,
)

NM_2_4 = {"name": "nm_2_4", "kind": "n_m", "n": 2, "m": 4, "skip": ["first", "last"]}
ENGINE_ROOT = Path(__file__).resolve().parents[1] / "engine"
PARTS = ("smoke", "gemm", "linear", "models", "engine")
JSON_NAME, MD_NAME, LOG_NAME, ENGINE_LOG_NAME = (
    "gpu_engine.json",
    "gpu_engine.md",
    "gpu_engine.log",
    "engine.log",
)
DEFAULT_BUDGET_S = 360  # worst case ~6.5 min (watchdog) or 6.75 (outer timeout)
DRY_BUDGET_S = 900  # a dry run on a busy 2-core machine
SMOKE_TIMEOUT_S = (
    120  # the smoke check's child: torch import, CUDA start-up, one tiny GEMM
)
WATCHDOG_GRACE_S = 15  # a step still running this long after the deadline is killed
SUBPROCESS_RESERVE_S = 3  # a child is stopped this long before the deadline

END_TO_END = (
    "end to end: one call per timer pair{how}; includes Python dispatch, launch gaps and, for the sparse "
    "variants, torch's per-call cuSPARSELt set-up (a matmul plan created and destroyed in every call); "
    "each variant timed for at most the per-variant cap (fewer calls where its calls are slow, recorded)"
)
KERNEL_ONLY = (
    "kernel only: the calls captured once in a CUDA graph (the per-call set-up runs at capture) and the "
    "graph replayed, time per call; where capture fails, back-to-back calls per CUDA event pair (labelled "
    "per variant); on CPU back-to-back calls per time.perf_counter pair"
)

# Sizes of a real run and of a dry run.
FULL = {
    "device": "cuda",
    "dtype": "float16",
    "smoke": (128, 128, 128),  # (tokens, in, out)
    "gemm": (8192, 8192, 8192),
    "linear": [(2048, 8192, 8192), (64, 8192, 8192)],
    "models": ["resnet18", "resnet50"],
    "batch_sizes": [64, 256, 1],  # outermost: every model at 64, then at 256, then at 1
    "warmup": 20,
    "iterations": 100,
    # End-to-end timing: seconds one variant may be timed for, and the fewest calls when capped.
    "cap": {"variant_s": 8.0, "min_calls": 3},
    # The auto policy's per-layer choice: a 2:4 layer whose eager call takes more than slow_ms
    # while its dense twin takes less than dense_fast_ms (or less than 1/slow_ratio of it) is
    # rejected without further timing; the others are timed for at most layer_cap_s each
    # (warmup + iterations calls), and for at most total_cap_s per model and batch size.
    "auto": {
        "slow_ms": 50.0,
        "dense_fast_ms": 1.0,
        "slow_ratio": 20.0,
        "layer_cap_s": 1.0,
        "total_cap_s": 10.0,
        "warmup": 3,
        "iterations": 20,
    },
    "calibration": (4, 64),  # BatchNorm calibration: batches, batch size
    # Kernel-only timings: GEMM rows capture enough calls for ~target_ms of GPU work (at most
    # `calls`); a model forward and a single layer are captured once (each 2:4 call in a graph
    # pays the host-side set-up once, at capture) and replayed `*_replays` times per event pair.
    "kernel_only": {
        "calls": 10,
        "target_ms": 0.5,
        "samples": 30,
        "warmup": 2,
        "model_replays": 3,
        "model_samples": 20,
        "layer_replays": 10,
        "layer_samples": 10,
        "search": True,  # also time the GEMM rows with the algorithm cuSPARSELt's search picks,
        "search_max_s": 10,  # unless a search took longer than this (each tried config pays a set-up)
    },
    "layer_kernels": True,  # per distinct layer shape: conv vs unfold + dense / 2:4 GEMM
    "reserve_s": 5,  # a costly part of a step starts only with its estimated cost + this left
    # Seconds a step needs at least; with less left it is skipped (recorded so).
    "min_s": {"smoke": 5, "gemm": 10, "linear": 5, "models": 10, "engine": 40},
    "train": {
        "data": {"dataset": "synthetic", "train": 2048, "test": 512, "seed": 0},
        "params": {
            "epochs": 1,
            "batch_size": 128,
            "max_steps": 8,
            "lr": 0.05,
            "eval_batch_size": 512,
        },
        "finetune": {
            "epochs": 1,
            "batch_size": 128,
            "max_steps": 8,
            "lr": 0.01,
            "eval_batch_size": 512,
        },
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
    "cap": {
        "variant_s": 60.0,
        "min_calls": 3,
    },  # a CPU forward on a busy machine can take seconds
    "auto": {
        "slow_ms": 50.0,
        "dense_fast_ms": 1.0,
        "slow_ratio": 20.0,
        "layer_cap_s": 0.5,
        "total_cap_s": 10.0,
        "warmup": 1,
        "iterations": 2,
    },
    "calibration": (1, 8),
    "kernel_only": {
        "calls": 3,
        "target_ms": 0.5,
        "samples": 2,
        "warmup": 1,
        "model_replays": 1,
        "model_samples": 2,
        "layer_replays": 1,
        "layer_samples": 2,
        "search": False,
    },
    "layer_kernels": True,
    "reserve_s": 2,
    "min_s": {"smoke": 1, "gemm": 1, "linear": 1, "models": 3, "engine": 10},
    "train": {
        "data": {"dataset": "synthetic", "train": 64, "test": 16, "seed": 0},
        "params": {
            "epochs": 1,
            "batch_size": 16,
            "max_steps": 1,
            "num_threads": 2,
            "eval_batch_size": 16,
        },
        "finetune": {
            "epochs": 1,
            "batch_size": 16,
            "max_steps": 1,
            "num_threads": 2,
            "eval_batch_size": 16,
        },
        "measure": {
            "latency": {"batch_sizes": [1], "warmup": 1, "iterations": 2},
            "flops": True,
            "memory": True,
        },
    },
}


def with_defaults(sizes: dict, base: dict) -> dict:
    """`sizes` with the keys it lacks taken from `base` (one level into dict-valued keys)."""
    merged = copy.deepcopy(base)
    for key, value in sizes.items():
        if (
            isinstance(value, dict)
            and isinstance(merged.get(key), dict)
            and key != "train"
        ):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


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

    def __init__(
        self,
        out: Path,
        *,
        budget_s: float,
        started_at: float | None = None,
        watchdog: bool = True,
    ):
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
            self.watchdog = threading.Thread(
                target=self._watch, name="gpu-engine-watchdog", daemon=True
            )

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
            self.report["steps"] = [
                {"step": name, "status": "pending"} for name in names
            ]

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

    def step(
        self, name: str, fn, *, min_s: float, where: tuple | None = None, needs=None
    ):
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
        except (
            Exception
        ) as exc:  # record and carry on: one broken step must not hide the others
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
            elif isinstance(value, dict) and value.get("budget_skipped"):
                entry["status"] = "cut by the budget"
                entry["reason"] = "; ".join(value["budget_skipped"])[:500]
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
        while not self.finished.wait(
            timeout=max(0.05, min(1.0, self.left() + WATCHDOG_GRACE_S))
        ):
            if self.left() + WATCHDOG_GRACE_S <= 0:
                self.abort(
                    f"killed at the deadline: still running {WATCHDOG_GRACE_S} s after the budget ran out"
                )
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
            self.report["status"] = (
                "killed at the deadline" if code == 3 else f"aborted: {why}"
            )
            self.report["exit_code"] = code
            self.save()
        finally:
            if acquired:
                self.lock.release()
        if self.finished.is_set():
            return
        self.log(
            f"ABORTED: {why}; the results so far are in {self.out / JSON_NAME}. Stacks of all threads:"
        )
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
        env["tf32"] = {
            "cudnn": torch.backends.cudnn.allow_tf32,
            "matmul": torch.backends.cuda.matmul.allow_tf32,
        }
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
        return (
            proc.stdout.strip().splitlines()[0]
            if proc.returncode == 0 and proc.stdout.strip()
            else None
        )
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
    how = (
        " (CUDA events after a synchronize)"
        if device.type == "cuda"
        else " (time.perf_counter)"
    )
    return END_TO_END.format(how=how)


def eager_call(fn, device):
    """One call between two synchronizes: (its value, total seconds, seconds until it returned).

    On a GPU the second figure is the host side: a call that takes long to return while its
    kernels are short spends its time in set-up on the CPU, with the GPU idle."""
    _sync(device)
    began = time.perf_counter()
    value = fn()
    returned = time.perf_counter()
    _sync(device)
    return value, time.perf_counter() - began, returned - began


def slow_call_text(total_s: float, host_s: float, device) -> str:
    """'eager call ~210 ms' plus, on a GPU where the host side dominates, that it does."""
    text = f"eager call ~{total_s * 1000:.0f} ms"
    if torch.device(device).type == "cuda" and total_s > 0 and host_s >= 0.8 * total_s:
        text += f" ({host_s * 1000:.0f} ms of it before the call returned to Python: host-side set-up, GPU idle)"
    return text


def _time_calls(fn, count: int, device: torch.device) -> list[float]:
    """`count` calls, one timer pair each (CUDA events after a synchronize, or perf_counter); ms."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        events = [
            (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
            for _ in range(count)
        ]
        for start, end in events:
            start.record()
            fn()
            end.record()
        torch.cuda.synchronize(device)
        return [start.elapsed_time(end) for start, end in events]
    times = []
    for _ in range(count):
        began = time.perf_counter()
        fn()
        times.append((time.perf_counter() - began) * 1000)
    return times


def time_into_row(
    row: dict, variants: dict, device, sizes: dict, errors: dict, first: dict
) -> dict:
    """Times `variants` under the per-variant cap (`time_capped`) and stores each variant's
    summary in `row`, with the capped variants' records under "capped". Returns the samples."""
    capped: dict = {}
    cap = sizes["cap"]
    times = time_capped(
        variants,
        device=device,
        warmup=sizes["warmup"],
        iterations=sizes["iterations"],
        errors=errors,
        capped=capped,
        cap_s=cap["variant_s"],
        min_calls=cap["min_calls"],
        first=first,
    )
    for name, samples in times.items():
        row[name] = summarize(samples)
    if capped:
        row["capped"] = capped
    return times


def time_capped(
    variants: dict,
    *,
    device,
    warmup: int,
    iterations: int,
    errors: dict,
    capped: dict,
    cap_s: float,
    min_calls: int = 3,
    first: dict | None = None,
    block: int = INTERLEAVE_BLOCK,
) -> dict:
    """Per-call times (ms) of each variant, in alternating blocks, with no variant timed for much
    longer than `cap_s` seconds.

    Each variant's first call (or `first[name]` = (total_s, host_s) of a call already made, e.g. its
    correctness check) decides its plan: warmup + iterations calls where they fit in the cap;
    otherwise as many calls as fit, at least `min_calls`; and where even `min_calls` calls would not
    fit, that first call is the only sample (wall clock). A variant whose calls turn out slower than
    planned is stopped once it has spent 1.5x the cap. Every shortened variant gets an entry in
    `capped` (calls, planned, first call, reason). A variant that raises is dropped, its error
    recorded in `errors`, and the others are still timed.
    """
    device = torch.device(device)
    first = dict(first or {})
    plans: dict = {}  # name -> [warm-up calls left, timed calls left]
    times: dict = {}
    spent: dict = {}
    with torch.inference_mode():
        for name, fn in variants.items():
            if name in first:
                total, host = first[name]
            else:
                try:
                    _, total, host = eager_call(fn, device)
                except Exception as error:
                    errors[name] = f"timing: {error_line(error)}"
                    continue
            spent[name] = total
            fit = int(cap_s // max(total, 1e-9))
            if fit >= warmup + iterations:
                plans[name], times[name] = [max(warmup - 1, 0), iterations], []
                continue
            record = {
                "planned": iterations,
                "first_call_ms": total * 1000,
                "host_ms": host * 1000,
                "cap_s": cap_s,
            }
            why = slow_call_text(total, host, device)
            if total * min_calls <= cap_s:
                calls = min(iterations, max(min_calls, fit - 1))
                plans[name], times[name] = [0, calls], []
                record.update(
                    calls=calls,
                    reason=f"{why}: {calls} calls timed instead of {warmup} + {iterations} "
                    f"(cap {cap_s:g} s per variant)",
                )
            else:
                times[name] = [total * 1000]
                record.update(
                    calls=1,
                    reason=f"{why}: {min_calls} calls would not fit in the {cap_s:g} s cap, so the first "
                    "call is the only sample (wall clock)",
                )
            capped[name] = record
        for name, plan in list(plans.items()):
            if plan[0]:
                try:
                    began = time.perf_counter()
                    _time_calls(variants[name], plan[0], device)
                    spent[name] += time.perf_counter() - began
                except Exception as error:
                    errors[name] = f"timing: {error_line(error)}"
                    plans.pop(name)
                    times.pop(name)
        round_index = 0
        while any(plan[1] > 0 for plan in plans.values()):
            names = [name for name, plan in plans.items() if plan[1] > 0]
            for name in names if round_index % 2 == 0 else names[::-1]:
                count = min(block, plans[name][1])
                began = time.perf_counter()
                try:
                    times[name] += _time_calls(variants[name], count, device)
                except Exception as error:
                    errors[name] = f"timing: {error_line(error)}"
                    plans[name][1] = 0
                    times.pop(name, None)
                    continue
                spent[name] += time.perf_counter() - began
                plans[name][1] -= count
                if plans[name][1] > 0 and spent[name] > 1.5 * cap_s:
                    done = len(times[name])
                    plans[name][1] = 0
                    capped[name] = {
                        **capped.get(name, {"planned": iterations, "cap_s": cap_s}),
                        "calls": done,
                        "reason": f"stopped after {done} calls: {spent[name]:.1f} s spent, over the {cap_s:g} s cap",
                    }
            round_index += 1
    return {name: samples for name, samples in times.items() if samples}


def layer_ms(
    fn, device, *, warmup: int, iterations: int, cap_s: float, first_s: float | None
) -> tuple[float, int]:
    """One layer's time per call (ms) over a block of calls, and the number of calls, with the
    calls cut to fit `cap_s` (the auto policy's per-layer probe)."""
    device = torch.device(device)
    if first_s is None:
        _, first_s, _ = eager_call(fn, device)
    fits = int(cap_s // max(first_s, 1e-9))
    calls = max(1, min(iterations, fits))
    for _ in range(warmup if fits >= warmup + iterations else 0):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        start, end = (
            torch.cuda.Event(enable_timing=True),
            torch.cuda.Event(enable_timing=True),
        )
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        torch.cuda.synchronize(device)
        return start.elapsed_time(end) / calls, calls
    began = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - began) * 1000 / calls, calls


class KernelTimer:
    """Kernel-only times per call: each variant's calls captured once in a CUDA graph and the
    graph replayed; where capture fails, back-to-back calls per event pair (labelled so); on CPU
    back-to-back calls per perf_counter pair.

    A 2:4 call pays torch's host-side cuSPARSELt set-up when it is captured, not when the graph is
    replayed, so a graph of `calls` calls costs `calls` set-ups once. Variants in `warm` already
    ran eagerly at this shape and are captured without a side-stream warm-up (which, for a slow
    2:4 model, would cost another forward's set-up); if such a capture fails it is tried once more
    after a warm-up.
    """

    def __init__(self, device: torch.device, use_graphs: bool = True):
        self.device = device
        self.use_graphs = use_graphs and device.type == "cuda"
        self.graph_errors: list[str] = []
        self.floor: float | None = (
            None  # ms per replay of a graph holding one tiny kernel
        )

    def _capture(self, fn, calls: int, warmup: int):
        if warmup:
            stream = torch.cuda.Stream(self.device)
            stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(stream):
                for _ in range(warmup):
                    fn()
            torch.cuda.current_stream(self.device).wait_stream(stream)
            torch.cuda.synchronize(self.device)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for _ in range(calls):
                fn()
        graph.replay()
        torch.cuda.synchronize(self.device)
        return graph

    def replay_floor_ms(self) -> float | None:
        """The replay time of a graph holding one tiny kernel: what a replay costs beyond its work."""
        if not self.use_graphs or self.floor is not None:
            return self.floor
        try:
            with torch.inference_mode():
                static = torch.zeros(1, device=self.device)
                graph = self._capture(lambda: static.add_(1), 1, 1)
                start, end = (
                    torch.cuda.Event(enable_timing=True),
                    torch.cuda.Event(enable_timing=True),
                )
                start.record()
                for _ in range(200):
                    graph.replay()
                end.record()
                torch.cuda.synchronize(self.device)
                self.floor = start.elapsed_time(end) / 200
        except Exception as error:
            self.graph_errors.append(f"replay floor: {error_line(error)}")
        return self.floor

    def time(
        self,
        variants: dict,
        *,
        calls: int,
        samples: int,
        errors: dict,
        replays: int = 1,
        warm=(),
        warmup: int = 2,
        cap_s: float | None = None,
        can_retry=None,
    ) -> dict:
        """{name: summary of ms per call, plus "method"}; a variant that fails is left out and its
        error recorded under "<name> (kernel only)"; sampling of a variant stops at `cap_s`.
        can_retry(name): whether a failed capture of a `warm` variant may be retried after one
        warm-up call (each costs that variant's set-up again); by default it may."""
        runners, methods, per_call, graphs = {}, {}, {}, []
        with torch.inference_mode():
            for name, fn in variants.items():
                why = None
                if self.use_graphs:
                    graph = None
                    for tries_warmup in [0, 1] if name in warm else [warmup]:
                        if (
                            tries_warmup
                            and name in warm
                            and can_retry is not None
                            and not can_retry(name)
                        ):
                            why = f"{why}; not retried after a warm-up: no time for its set-up"
                            break
                        try:
                            graph = self._capture(fn, calls, tries_warmup)
                            break
                        except Exception as error:
                            why = error_line(error)
                            try:
                                torch.cuda.synchronize(self.device)
                            except Exception:
                                pass
                    if graph is not None:
                        graphs.append(graph)
                        runners[name] = lambda graph=graph: [
                            graph.replay() for _ in range(replays)
                        ]
                        methods[name] = (
                            f"CUDA graph of {calls} call{'s' if calls > 1 else ''}, replayed "
                            f"{replays}x per event pair; time per call"
                        )
                        per_call[name] = calls * replays
                    else:
                        self.graph_errors.append(f"{name}: {why}")
                        errors[f"{name} (kernel only)"] = f"no CUDA graph: {why}"
                if name not in runners:
                    runners[name] = lambda fn=fn: [fn() for _ in range(calls)]
                    per_call[name] = calls
                    if self.device.type == "cuda":
                        methods[name] = (
                            f"{calls} back-to-back calls per CUDA event pair (no CUDA graph"
                            f"{': ' + why if why else ''}; includes the per-call set-up)"
                        )
                    else:
                        methods[name] = (
                            f"{calls} back-to-back calls per time.perf_counter pair, time per call"
                        )
            times = {name: [] for name in runners}
            order = list(runners)
            for name in list(
                order
            ):  # a warm-up run where nothing ran yet; a variant that fails is dropped
                if name in warm or methods[name].startswith("CUDA graph"):
                    continue  # it ran eagerly at this shape already, or its capture ended with a replay
                try:
                    runners[name]()
                    _sync(self.device)
                except Exception as error:
                    errors[f"{name} (kernel only)"] = error_line(error)
                    order.remove(name)
                    times.pop(name)
            spent = dict.fromkeys(
                order, 0.0
            )  # sampling time only: the cap bounds the samples, not the capture
            for sample in range(samples):
                names = order if sample % 2 == 0 else order[::-1]
                if cap_s is not None:
                    names = [n for n in names if spent[n] <= cap_s or not times[n]]
                if not names:
                    break
                if self.device.type == "cuda":
                    pairs = []
                    for name in names:
                        began = time.perf_counter()
                        start, end = (
                            torch.cuda.Event(enable_timing=True),
                            torch.cuda.Event(enable_timing=True),
                        )
                        start.record()
                        runners[name]()
                        end.record()
                        pairs.append((name, start, end))
                        spent[name] += time.perf_counter() - began
                    torch.cuda.synchronize(self.device)
                    for name, start, end in pairs:
                        times[name].append(start.elapsed_time(end) / per_call[name])
                else:
                    for name in names:
                        began = time.perf_counter()
                        runners[name]()
                        elapsed = time.perf_counter() - began
                        spent[name] += elapsed
                        times[name].append(elapsed * 1000 / per_call[name])
        del graphs
        out = {}
        for name, samples_ms in times.items():
            if not samples_ms:
                continue
            out[name] = {**summarize(samples_ms), "method": methods[name]}
            if len(samples_ms) < samples:
                out[name]["capped"] = (
                    f"{len(samples_ms)} of {samples} samples: the {cap_s:g} s cap per variant"
                )
        return out


# ---------------------------------------------------------------------------------------
# 1-3. Smoke check, GEMM, linear rows


def _two_four_weight(
    fan_out: int, fan_in: int, device, dtype, seed: int = 0
) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(fan_out, fan_in, generator=generator).to(
        device=device, dtype=dtype
    )
    return (weight * n_m_mask(weight, 2, 4)).contiguous()


def smoke(cfg: "Config") -> dict:
    tokens, fan_in, fan_out = cfg.sizes["smoke"]
    device, dtype = cfg.device, cfg.dtype
    weight = _two_four_weight(fan_out, fan_in, device, dtype)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(tokens, fan_in, generator=generator).to(device=device, dtype=dtype)
    bias = torch.randn(fan_out, generator=generator).to(device=device, dtype=dtype)
    out = {
        "tokens": tokens,
        "in": fan_in,
        "out": fan_out,
        "dtype": str(dtype).replace("torch.", ""),
    }
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
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(ENGINE_ROOT), os.environ.get("PYTHONPATH")) if p
        ),
        "PYTHONUNBUFFERED": "1",
    }


def smoke_in_child(cfg: "Config") -> dict:
    """The smoke check in a child process, so that a crash or hang in cuSPARSELt costs only this
    step: the sparse path is then marked unavailable and the rest of the run goes on without it."""
    result_path = cfg.work / "smoke.json"
    command = [
        sys.executable,
        "-u",
        str(Path(__file__).resolve()),
        "--out",
        str(cfg.work),
    ]
    command += ["--child-smoke", str(result_path)] + (
        ["--dry-run"] if cfg.dry_run else []
    )
    if cfg.crash_in == "smoke":
        command += ["--crash-in", "smoke"]
    timeout = min(cfg.run.left() - SUBPROCESS_RESERVE_S, SMOKE_TIMEOUT_S)
    if timeout <= 1:
        raise TimeoutError("smoke: no time left before the deadline")
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_engine_env(),
        start_new_session=True,
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
        if (
            "error" in result
        ):  # the check ran and failed: later steps try again and record their own errors
            cfg.run.log(
                f"smoke child: {result['error']}\n{result.get('traceback', '')}"
            )
            raise Reported(result["error"])
        return result
    if why is None:
        code = proc.returncode
        why = (
            f"its process died (signal {-code})"
            if code < 0
            else f"its process exited {code} with no result"
        )
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    fatal = [
        line for line in lines if line.startswith("Fatal Python error")
    ]  # faulthandler's headline
    last = (fatal or lines[-1:] or ["(no stderr)"])[0]
    cfg.run.log(f"smoke child: {why}; stderr tail:\n{stderr[-3000:]}")
    cfg.sparse_unavailable = f"the cuSPARSELt smoke check failed hard ({why}), so sparse variants are not run in this process"
    with cfg.run.lock:
        cfg.run.report["sparse_path"]["unavailable"] = cfg.sparse_unavailable
    raise RuntimeError(f"smoke check: {why}: {last}")


def searched_sparse_mm(sparse, x: torch.Tensor):
    """x @ W.T through torch._cslt_sparse_mm with the configuration cuSPARSELt's own search picks
    for this shape (torch's tensor class always uses algorithm 0, split-k 1). Returns the call and
    the configuration. B is passed as torch's linear dispatch passes it: x.t(), column-major."""
    dense_b = x.t()
    transpose = bool(getattr(sparse, "fuse_transpose_cusparselt", False))
    search = getattr(getattr(torch._C, "_cusparselt", None), "mm_search", None)
    if search is not None:
        found = search(sparse.packed, dense_b, None, None, None, transpose)
        found = tuple(found) if isinstance(found, (tuple, list)) else (found,)
    else:
        found = (
            torch._cslt_sparse_mm_search(
                sparse.packed, dense_b, transpose_result=transpose
            ),
        )
    alg_id = int(found[0])
    split_k = int(found[1]) if len(found) > 1 else 1
    split_k_mode = int(found[2]) if len(found) > 2 else -1
    config = {"alg_id": alg_id, "split_k": split_k, "split_k_mode": split_k_mode}
    if len(found) > 3:
        config["max_alg_id"] = int(found[3])

    def call():
        out = torch._cslt_sparse_mm(
            sparse.packed,
            dense_b,
            transpose_result=transpose,
            alg_id=alg_id,
            split_k=split_k,
            split_k_mode=split_k_mode,
        )
        return out if transpose else out.t()

    return call, config


def gemm_row(cfg: "Config", tokens: int, fan_in: int, fan_out: int) -> dict:
    """F.linear on a 2:4 weight, dense vs sparse: end to end (capped) and kernel only; a sparse
    failure keeps the dense times."""
    device, dtype, sizes = cfg.device, cfg.dtype, cfg.sizes
    weight = _two_four_weight(fan_out, fan_in, device, dtype)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(tokens, fan_in, generator=generator).to(device=device, dtype=dtype)
    row = {
        "tokens": tokens,
        "in": fan_in,
        "out": fan_out,
        "timing": _end_to_end_label(device),
    }
    errors: dict = {}
    variants = {"dense": lambda: F.linear(x, weight)}
    first: dict = {}
    sparse = None
    if cfg.sparse_unavailable:
        errors["sparse"] = f"not run: {cfg.sparse_unavailable}"
    else:
        try:
            sparse = cfg.to_sparse(weight) if cfg.to_sparse else weight
            with torch.inference_mode():
                out, total, host = eager_call(lambda: F.linear(x, sparse), device)
                row["max_abs_error"] = _check_close(out, F.linear(x, weight))
            del out
            first["sparse"] = (total, host)
            row["sparse_first_call"] = {
                "total_ms": total * 1000,
                "host_ms": host * 1000,
            }
            cfg.note_sparse_call(total)
            variants["sparse"] = lambda: F.linear(x, sparse)
        except Exception as error:
            errors["sparse"] = error_line(error)
            cfg.run.log(
                f"gemm {tokens}x{fan_in}x{fan_out}: sparse FAILED: {error_line(error)}"
            )
    times = time_into_row(row, variants, device, sizes, errors, first)
    flop = 2 * tokens * fan_in * fan_out
    if "dense" in row:
        row["dense_tflops"] = flop / row["dense"]["median"] / 1e9
    if "sparse" in row:
        row["sparse_tflops_dense_equivalent"] = flop / row["sparse"]["median"] / 1e9
    row["speedup"] = (
        row["dense"]["median"] / row["sparse"]["median"]
        if "dense" in row and "sparse" in row
        else None
    )
    speed = (
        f"speedup {row['speedup']:.2f}x end to end"
        if row["speedup"]
        else "no speedup (sparse did not run)"
    )
    cfg.run.log(f"gemm {tokens}x{fan_in}x{fan_out}: {speed}; kernel only next")

    # Kernel only: enough calls per graph for ~target_ms of dense work.
    ko = sizes["kernel_only"]
    dense_ms = row["dense"]["median"] if "dense" in row else 1.0
    calls = max(1, min(ko["calls"], math.ceil(ko["target_ms"] / max(dense_ms, 1e-6))))
    kernel_variants = {name: fn for name, fn in variants.items() if name in times}
    kernel_errors: dict = {}
    result: dict = {"calls_per_graph": calls, "samples": ko["samples"]}
    # cuSPARSELt's own search raised "internal error" and then an illegal instruction that poisoned
    # the CUDA context on the H200 (run 2, 2026-11-30): off unless SG_CSLT_SEARCH=1.
    search_on = os.environ.get("SG_CSLT_SEARCH") == "1"
    if (
        sparse is not None
        and "sparse" in kernel_variants
        and ko.get("search")
        and search_on
        and device.type == "cuda"
    ):
        if cfg.search_s is not None and cfg.search_s > ko.get("search_max_s", 10):
            result["searched_skipped"] = (
                f"the search took {cfg.search_s:.0f} s on an earlier shape"
            )
        elif not cfg.fits(ko.get("search_max_s", 10)):
            result["searched_skipped"] = "budget"
        else:
            began = time.monotonic()
            try:
                with torch.inference_mode():
                    call, config = searched_sparse_mm(sparse, x)
                    result["search_s"] = time.monotonic() - began
                    result["searched_config"] = config
                    result["searched_max_abs_error"] = _check_close(
                        call(), F.linear(x, weight)
                    )
                kernel_variants["sparse_searched"] = call
            except Exception as error:
                kernel_errors["sparse_searched"] = error_line(error)
            cfg.search_s = time.monotonic() - began
    costly = (
        calls
        * len([n for n in kernel_variants if n != "dense"])
        * (cfg.sparse_call_s or 0)
    )
    if not cfg.fits(costly):
        for name in [n for n in kernel_variants if n != "dense"]:
            kernel_errors[name] = (
                f"budget: not captured (~{costly:.0f} s of set-up, {cfg.run.left():.0f} s left)"
            )
            kernel_variants.pop(name)
    try:
        stats = cfg.kernel_timer.time(
            kernel_variants,
            calls=calls,
            samples=ko["samples"],
            errors=kernel_errors,
            warm=set(kernel_variants) - {"dense"},
            warmup=ko["warmup"],
            cap_s=sizes["cap"]["variant_s"],
            can_retry=lambda _variant: cfg.fits((calls + 1) * (cfg.sparse_call_s or 0)),
        )
    except Exception as error:
        stats, kernel_errors["all"] = {}, error_line(error)
    result["variants"] = stats
    for name in ("sparse", "sparse_searched"):
        if "dense" in stats and name in stats:
            result[f"speedup_{name}" if name != "sparse" else "speedup"] = (
                stats["dense"]["median"] / stats[name]["median"]
            )
    if kernel_errors:
        result["errors"] = kernel_errors
    row["kernel_only"] = result
    _record_floor(cfg)
    if errors or kernel_errors:
        row["errors"] = {
            **errors,
            **{
                (k if k.endswith("(kernel only)") else f"{k} (kernel only)"): v
                for k, v in kernel_errors.items()
            },
        }
        # The searched configuration is an extra: its failure is noted, not counted as one.
        row["failures"] = [
            f"{k}: {v}"
            for k, v in row["errors"].items()
            if not k.startswith("sparse_searched")
            and not v.startswith(("not run:", "budget:"))
        ]
    cut = [
        f"kernel only {k}: {v}"
        for k, v in kernel_errors.items()
        if v.startswith("budget:")
    ]
    if cut:
        row["budget_skipped"] = cut
    if "speedup" in result:
        cfg.run.log(
            f"gemm {tokens}x{fan_in}x{fan_out}: kernel only speedup {result['speedup']:.2f}x"
        )
    return row


def _record_floor(cfg: "Config") -> None:
    floor = cfg.kernel_timer.replay_floor_ms()
    with cfg.run.lock:
        timing = cfg.run.report.setdefault("timing", {})
        if floor is not None:
            timing["graph_replay_floor_ms"] = floor
        if cfg.kernel_timer.graph_errors:
            timing["graph_errors"] = cfg.kernel_timer.graph_errors[-20:]


# ---------------------------------------------------------------------------------------
# 4. Whole models: dense, masked, sparse


@torch.no_grad()
def calibrate(
    model: torch.nn.Module, device: torch.device, batches: int, batch_size: int
) -> torch.nn.Module:
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
    dense = dense.to(device=cfg.device, dtype=cfg.dtype).to(
        memory_format=torch.channels_last
    )
    masked = masked.to(device=cfg.device, dtype=cfg.dtype).to(
        memory_format=torch.channels_last
    )
    info = {"skipped": plan.skipped, "sparsity": plan.report(masked)["sparsity"]}
    return {"dense": dense, "masked": masked, "info": info}


def _replace(model: torch.nn.Module, name: str, module: torch.nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def check_layers(
    sparse_model, masked, entries: list[dict], inputs: dict, device
) -> dict:
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
                entry["check_max_abs_error"] = _check_close(
                    sparse_model.get_submodule(name)(x), twin(x)
                )
            _sync(device)
            passed += 1
        except Exception as error:
            line = error_line(error)
            _replace(sparse_model, name, twin)
            entry.update(
                sparse=False,
                reason=f"back to dense: its test-run against the dense layer failed: {line}",
            )
            failed.append({"layer": name, "error": line})
    return {"passed": passed, "failed": failed}


def instrumented_forward(model, x, names, device, *, keep_inputs: bool = False):
    """One eager forward with a synchronize around each layer in `names`.

    Returns (output, {layer: {"total_ms", "host_ms"}}, {layer: its input} if keep_inputs, and
    (total_s, host_s) of the whole forward). host_ms is the time until the layer's forward returned
    to Python; for a layer that waits on host-side set-up it is nearly all of total_ms."""
    modules = dict(model.named_modules())
    began_at: dict = {}
    timings: dict = {}
    inputs: dict = {}
    hooks = []

    def before(name):
        def hook(_module, args):
            if keep_inputs:
                inputs.setdefault(name, args[0])
            _sync(device)
            began_at[name] = time.perf_counter()

        return hook

    def after(name):
        def hook(_module, _args, _output):
            returned = time.perf_counter()
            _sync(device)
            began = began_at.pop(name)
            timings[name] = {
                "total_ms": (time.perf_counter() - began) * 1000,
                "host_ms": (returned - began) * 1000,
            }

        return hook

    for name in names:
        module = modules[name]
        hooks.append(module.register_forward_pre_hook(before(name)))
        hooks.append(module.register_forward_hook(after(name)))
    try:
        with torch.inference_mode():
            out, total, host = eager_call(lambda: model(x), device)
    finally:
        for hook in hooks:
            hook.remove()
    return out, timings, inputs, (total, host)


def _prepared(name: str, cfg: "Config") -> dict:
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
    return prepared


def sparse_all_for(name: str, cfg: "Config", masked, x) -> tuple:
    """The copy of the masked model with every 2:4 layer lowered to cuSPARSELt, built once per
    model (its weights do not depend on the batch size): (model, per-layer entries)."""
    prepared = cfg.prepared[name]
    if "all" not in prepared:
        began = time.monotonic()
        try:
            prepared["all"] = build_sparse_model(
                masked, x, policy="all", to_sparse=cfg.to_sparse
            )
        except Exception as error:
            prepared["all"] = error
        prepared["all_build_s"] = time.monotonic() - began
        cfg.run.log(f"models/{name}: 2:4 copy built in {prepared['all_build_s']:.1f} s")
    if isinstance(prepared["all"], Exception):
        raise RuntimeError(
            f"building the 2:4 copy failed: {error_line(prepared['all'])}"
        )
    return prepared["all"]


def check_sparse_all(
    cfg: "Config", model, masked, entries, x, expected, inputs, row
) -> tuple | None:
    """Checks the 2:4 copy against the masked model in one instrumented forward (which also gives
    each 2:4 layer's eager time). On a mismatch or an error, every layer is checked on its own, a
    failing one goes back to dense (for the later batch sizes too), and the model is checked again.
    Returns (layer timings, (total_s, host_s) of the forward), or None when no layer is left."""
    device = cfg.device
    names = [entry["layer"] for entry in entries if entry["sparse"]]
    try:
        out, timings, _, forward = instrumented_forward(model, x, names, device)
        row["max_abs_error"]["sparse_all"] = _check_close(out, expected)
        row["check_all"] = "whole model against the masked model: passed"
        return timings, forward
    except Exception as error:
        line = error_line(error)
        row["check_all"] = (
            f"whole model against the masked model: {line}; then layer by layer"
        )
        cfg.run.log(f"sparse_all check failed ({line}); checking layer by layer")
    row["layer_checks_all"] = check_layers(model, masked, entries, inputs, device)
    names = [entry["layer"] for entry in entries if entry["sparse"]]
    if not names:
        return None
    out, timings, _, forward = instrumented_forward(model, x, names, device)
    row["max_abs_error"]["sparse_all"] = _check_close(out, expected)
    return timings, forward


def choose_auto(
    cfg: "Config", entries, all_model, masked, inputs, dense_t, sparse_t
) -> list[dict]:
    """The auto policy's choice, layer by layer, on each layer's real input: the engine's rule (a
    layer runs 2:4 where its sparse call timed faster than its dense twin), applied to the layers of
    the 'all' copy, with a capped probe. The eager times of the checked forwards come first: a 2:4
    layer slower than slow_ms whose dense twin takes less than dense_fast_ms (or less than 1/slow_ratio
    of it) is rejected with that reason, not timed further; the others are timed for at most
    layer_cap_s each, and once total_cap_s is spent the remaining layers stay dense, recorded so."""
    rule, device = cfg.sizes["auto"], cfg.device
    decisions = []
    began = time.monotonic()
    for entry in entries:
        name = entry["layer"]
        decision = {
            "layer": name,
            "sparse": False,
            "reason": entry["reason"],
            "dense_ms": None,
            "sparse_ms": None,
        }
        decisions.append(decision)
        if not entry["sparse"]:
            continue
        dense_eager, sparse_eager, x = (
            dense_t.get(name),
            sparse_t.get(name),
            inputs.get(name),
        )
        if dense_eager is None or sparse_eager is None or x is None:
            decision["reason"] = "layer did not run on the example input"
            continue
        decision["dense_eager_ms"] = dense_eager["total_ms"]
        decision["sparse_eager_ms"] = sparse_eager["total_ms"]
        decision["sparse_eager_host_ms"] = sparse_eager["host_ms"]
        slow, dense_ms = sparse_eager["total_ms"], dense_eager["total_ms"]
        if slow > rule["slow_ms"] and (
            dense_ms < rule["dense_fast_ms"] or slow > rule["slow_ratio"] * dense_ms
        ):
            why = slow_call_text(
                sparse_eager["total_ms"] / 1000, sparse_eager["host_ms"] / 1000, device
            )
            decision["reason"] = (
                f"rejected for auto without further timing: 2:4 {why}, where the dense layer takes "
                f"{dense_eager['total_ms']:.3f} ms"
            )
            decision["rejected_slow"] = True
            continue
        if time.monotonic() - began > rule["total_cap_s"]:
            decision["reason"] = (
                f"not probed: the auto policy's {rule['total_cap_s']:g} s probe budget was spent"
            )
            continue
        twin, module = masked.get_submodule(name), all_model.get_submodule(name)
        probe = {
            "warmup": rule["warmup"],
            "iterations": rule["iterations"],
            "cap_s": rule["layer_cap_s"],
        }
        try:
            with torch.inference_mode():
                decision["dense_ms"], decision["dense_calls"] = layer_ms(
                    lambda: twin(x),
                    device,
                    first_s=dense_eager["total_ms"] / 1000,
                    **probe,
                )
                decision["sparse_ms"], decision["sparse_calls"] = layer_ms(
                    lambda: module(x),
                    device,
                    first_s=sparse_eager["total_ms"] / 1000,
                    **probe,
                )
        except Exception as error:
            decision["reason"] = (
                f"sparse kernel failed on this layer's input: {error_line(error)}"
            )
            continue
        if decision["sparse_ms"] >= decision["dense_ms"]:
            decision["reason"] = (
                "dense kernel was faster for this layer at this batch size"
            )
            continue
        decision["sparse"], decision["reason"] = True, None
    return decisions


def layer_kernels(
    cfg: "Config", all_model, masked, entries, inputs, sparse_t, masked_stats=None
) -> dict:
    """Kernel-only times for each distinct 2:4 layer shape at this batch size (CUDA graph of one
    call, replayed): the cuDNN convolution of the masked layer, its unfold into patches, and the
    dense and the 2:4 GEMM on those patches. Layers of the same shape (weight, stride, padding,
    input) are timed once. Budget-guarded shape by shape: each 2:4 capture costs one eager set-up."""
    ko, cap = cfg.sizes["kernel_only"], cfg.sizes["cap"]["variant_s"]
    groups: dict = {}
    for entry in entries:
        name = entry["layer"]
        if not entry["sparse"] or name not in inputs:
            continue
        twin, x = masked.get_submodule(name), inputs[name]
        key = (
            type(twin).__name__,
            tuple(twin.weight.shape),
            tuple(getattr(twin, "stride", ())),
            tuple(getattr(twin, "padding", ())),
            tuple(getattr(twin, "dilation", ())),
            tuple(x.shape),
        )
        groups.setdefault(key, []).append(name)
    shapes, stopped = [], None
    for names in groups.values():
        rep = names[0]
        cost = sparse_t.get(rep, {}).get("total_ms", 0.0) / 1000 + 0.2
        if not cfg.fits(cost):
            stopped = (
                f"budget: stopped after {len(shapes)} of {len(groups)} layer shapes "
                f"({max(cfg.run.left(), 0):.0f} s left)"
            )
            break
        twin, module, x = (
            masked.get_submodule(rep),
            all_model.get_submodule(rep),
            inputs[rep],
        )
        entry: dict = {"layers": names}
        variants: dict = {}
        with torch.inference_mode():
            if isinstance(module, SparseConvAsGemm):
                cols = module._patches(x)[0]
                w_dense = gemm_view(twin.weight.detach()).contiguous()
                variants["conv"] = lambda twin=twin, x=x: twin(x)
                if cols.untyped_storage().data_ptr() == x.untyped_storage().data_ptr():
                    entry["patches"] = "a view of the input: no kernel"
                else:
                    variants["patches"] = lambda module=module, x=x: module._patches(x)[
                        0
                    ]
                entry["kernel"] = list(module.kernel_size)
                entry["stride"] = list(module.stride)
            else:
                cols = x.reshape(-1, x.shape[-1])
                w_dense = twin.weight.detach()
            variants["gemm_dense"] = lambda cols=cols, w=w_dense: F.linear(cols, w)
            variants["gemm_sparse"] = lambda cols=cols, w=module.weight: F.linear(
                cols, w
            )
        entry["gemm"] = [
            int(cols.shape[0]),
            int(cols.shape[1]),
            int(w_dense.shape[0]),
        ]  # tokens, K, out
        errors: dict = {}
        try:
            stats = cfg.kernel_timer.time(
                variants,
                calls=1,
                samples=ko["layer_samples"],
                replays=ko["layer_replays"],
                errors=errors,
                warm={"gemm_sparse"},
                warmup=ko["warmup"],
                cap_s=cap,
                can_retry=lambda _variant, cost=cost: cfg.fits(2 * cost),
            )
        except Exception as error:
            stats, errors["all"] = {}, error_line(error)
        entry["variants"] = stats
        median = {name: value["median"] for name, value in stats.items()}
        if "gemm_dense" in median and "gemm_sparse" in median:
            entry["gemm_speedup"] = median["gemm_dense"] / median["gemm_sparse"]
            lowered = median["gemm_sparse"] + median.get("patches", 0.0)
            entry["lowered_sparse_ms"] = lowered
            if "conv" in median and ("patches" in median or "patches" in entry):
                entry["layer_speedup_vs_conv"] = median["conv"] / lowered
        if errors:
            entry["errors"] = errors
        shapes.append(entry)
        del cols, w_dense, variants
    result = {"shapes": shapes, "summary": layer_summary(shapes, masked_stats)}
    if stopped:
        result["stopped"] = stopped
    return result


def layer_summary(shapes: list[dict], masked_stats=None) -> dict:
    """How many layer shapes (and layers) ran faster with the 2:4 GEMM than the dense GEMM, and as a
    lowered 2:4 layer than as a cuDNN convolution; summed times over the layers; and an estimate of
    the masked network's kernel-only time with each layer in its faster form."""
    timed = [s for s in shapes if "gemm_speedup" in s]
    summary = {
        "shapes": len(shapes),
        "layers": sum(len(s["layers"]) for s in shapes),
        "gemm_sparse_faster": {
            "shapes": sum(1 for s in timed if s["gemm_speedup"] > 1),
            "layers": sum(len(s["layers"]) for s in timed if s["gemm_speedup"] > 1),
        },
    }
    convs = [s for s in timed if "layer_speedup_vs_conv" in s]
    if convs:
        summary["lowered_sparse_faster_than_conv"] = {
            "shapes": sum(1 for s in convs if s["layer_speedup_vs_conv"] > 1),
            "layers": sum(
                len(s["layers"]) for s in convs if s["layer_speedup_vs_conv"] > 1
            ),
        }
        conv_ms = sum(len(s["layers"]) * s["variants"]["conv"]["median"] for s in convs)
        lowered_ms = sum(len(s["layers"]) * s["lowered_sparse_ms"] for s in convs)
        gain = sum(
            len(s["layers"])
            * max(0.0, s["variants"]["conv"]["median"] - s["lowered_sparse_ms"])
            for s in convs
        )
        summary["sum_ms"] = {
            "conv": conv_ms,
            "lowered_sparse": lowered_ms,
            "gemm_dense": sum(
                len(s["layers"]) * s["variants"]["gemm_dense"]["median"] for s in convs
            ),
            "gemm_sparse": sum(
                len(s["layers"]) * s["variants"]["gemm_sparse"]["median"] for s in convs
            ),
            "gain_if_each_layer_in_its_faster_form": gain,
        }
        if isinstance(masked_stats, dict) and "median" in masked_stats:
            summary["masked_kernel_ms"] = masked_stats["median"]
            summary["estimate_each_layer_faster_form_ms"] = (
                masked_stats["median"] - gain
            )
    return summary


def model_batch(name: str, batch: int, cfg: "Config") -> dict:
    """One model at one batch size: every variant built, checked and timed on its own, end to end
    (capped) and kernel only, then the per-layer kernel timings."""
    prepared = _prepared(name, cfg)
    dense, masked = prepared["dense"], prepared["masked"]
    device, dtype, sizes = cfg.device, cfg.dtype, cfg.sizes
    where = ("models", name, "batch_sizes", str(batch))
    generator = torch.Generator().manual_seed(batch)
    x = torch.randn(batch, 3, 32, 32, generator=generator).to(
        device=device, dtype=dtype
    )
    x = x.contiguous(memory_format=torch.channels_last)
    row: dict = {
        "timing": _end_to_end_label(device),
        "cudnn": dict(cudnn_for_timing.FLAGS),
    }
    errors: dict = {}
    notes: dict = {}
    budget: list = []
    row["max_abs_error"] = {}
    all_model = entries = sparse_t = auto_model = None
    with cudnn_for_timing():
        layer_names = [layer for layer, _ in target_layers(masked)]
        expected, dense_t, inputs, _ = instrumented_forward(
            masked, x, layer_names, device, keep_inputs=True
        )
        variants = {"dense": lambda: dense(x), "masked": lambda: masked(x)}
        first: dict = {}
        if cfg.sparse_unavailable:
            for variant in ("sparse_auto", "sparse_all"):
                errors[variant] = f"not run: {cfg.sparse_unavailable}"
        else:
            try:
                all_model, entries = sparse_all_for(name, cfg, masked, x)
                count = sum(1 for entry in entries if entry["sparse"])
                cost = count * (cfg.sparse_call_s or 0.0)
                if count == 0:
                    notes["sparse_all"] = "no layer could run sparse"
                elif not cfg.fits(cost):
                    budget.append(
                        f"sparse variants not run: one forward needs ~{cost:.0f} s of set-up "
                        f"({count} layers), {max(cfg.run.left(), 0):.0f} s left"
                    )
                else:
                    checked = check_sparse_all(
                        cfg, all_model, masked, entries, x, expected, inputs, row
                    )
                    if checked is None:
                        notes["sparse_all"] = "no layer could run sparse"
                    else:
                        sparse_t, forward = checked
                        variants["sparse_all"] = lambda: all_model(x)
                        first["sparse_all"] = forward
                        row["sparse_all_first_call"] = {
                            "total_ms": forward[0] * 1000,
                            "host_ms": forward[1] * 1000,
                        }
                        per_layer = sorted(t["total_ms"] for t in sparse_t.values())
                        if per_layer:
                            cfg.note_sparse_call(per_layer[len(per_layer) // 2] / 1000)
                            row["sparse_layer_eager_ms"] = {
                                "median": per_layer[len(per_layer) // 2],
                                "min": per_layer[0],
                                "max": per_layer[-1],
                                "layers": len(per_layer),
                            }
            except Exception as error:
                errors["sparse_all"] = error_line(error)
                cfg.run.log(
                    f"models/{name}/bs{batch} sparse_all FAILED: {error_line(error)}"
                )
            if entries is not None:
                row["all_sparse_layers"] = sum(
                    1 for entry in entries if entry["sparse"]
                )
                row["all_not_sparse"] = [
                    {"layer": entry["layer"], "reason": entry["reason"]}
                    for entry in entries
                    if not entry["sparse"]
                ]
            if sparse_t is not None:
                try:
                    decisions = choose_auto(
                        cfg, entries, all_model, masked, inputs, dense_t, sparse_t
                    )
                    row["layer_timings"] = decisions
                    chosen = [d["layer"] for d in decisions if d["sparse"]]
                    row["auto_sparse_layers"] = chosen
                    if not chosen:
                        slow = sum(1 for d in decisions if d.get("rejected_slow"))
                        notes["sparse_auto"] = (
                            "no layer chosen at this batch size"
                            + (
                                f" ({slow} rejected as slow eager 2:4 calls: host-side set-up)"
                                if slow
                                else ""
                            )
                            + ": the variant equals masked, not timed"
                        )
                    else:
                        cost = (
                            sum(
                                sparse_t[layer]["total_ms"]
                                for layer in chosen
                                if layer in sparse_t
                            )
                            / 1000
                        )
                        if not cfg.fits(cost):
                            budget.append(
                                f"sparse_auto not run: ~{cost:.0f} s of set-up per forward"
                            )
                        else:
                            auto_model = copy.deepcopy(masked)
                            for layer in chosen:
                                _replace(
                                    auto_model, layer, all_model.get_submodule(layer)
                                )
                            with torch.inference_mode():
                                out, total, host = eager_call(
                                    lambda: auto_model(x), device
                                )
                                row["max_abs_error"]["sparse_auto"] = _check_close(
                                    out, expected
                                )
                            variants["sparse_auto"] = lambda: auto_model(x)
                            first["sparse_auto"] = (total, host)
                except Exception as error:
                    errors["sparse_auto"] = error_line(error)
                    cfg.run.log(
                        f"models/{name}/bs{batch} sparse_auto FAILED: {error_line(error)}"
                    )
        times = time_into_row(row, variants, device, sizes, errors, first)
        # The end-to-end numbers land first: a hang in the kernel-only timings must not lose them.
        cfg.run.put(
            where,
            {
                **row,
                "variant_errors": dict(errors),
                "partial": "kernel-only timings still running",
            },
        )

        ko = sizes["kernel_only"]
        kernel_variants = {k: v for k, v in variants.items() if k in times}
        slow = [
            k for k in kernel_variants if k in first
        ]  # the 2:4 ones: each capture pays one forward's set-up
        cost = sum(first[k][0] for k in slow)
        if slow and not cfg.fits(cost):
            budget.append(
                f"kernel only: {', '.join(slow)} not captured (~{cost:.0f} s of set-up)"
            )
            for k in slow:
                kernel_variants.pop(k)
        kernel_errors: dict = {}
        try:
            stats = cfg.kernel_timer.time(
                kernel_variants,
                calls=1,
                samples=ko["model_samples"],
                replays=ko["model_replays"],
                errors=kernel_errors,
                warm=set(slow),
                warmup=ko["warmup"],
                cap_s=sizes["cap"]["variant_s"],
                can_retry=lambda variant: cfg.fits(2 * first[variant][0]),
            )
        except Exception as error:
            stats, kernel_errors["all"] = {}, error_line(error)
        row["kernel_only"] = {
            "timing": KERNEL_ONLY,
            "variants": stats,
            "calls_per_graph": 1,
            "replays": ko["model_replays"],
            "samples": ko["model_samples"],
        }
        for variant in ("sparse_all", "sparse_auto"):
            if "masked" in stats and variant in stats:
                row["kernel_only"][f"speedup_{variant}"] = (
                    stats["masked"]["median"] / stats[variant]["median"]
                )
        if kernel_errors:
            row["kernel_only"]["errors"] = kernel_errors
        _record_floor(cfg)

        if sizes.get("layer_kernels") and sparse_t is not None:
            cfg.run.put(
                where,
                {
                    **row,
                    "variant_errors": dict(errors),
                    "partial": "per-layer timings still running",
                },
            )
            try:
                row["layers_kernel_only"] = layer_kernels(
                    cfg,
                    all_model,
                    masked,
                    entries,
                    inputs,
                    sparse_t,
                    stats.get("masked"),
                )
                if row["layers_kernel_only"].get("stopped"):
                    budget.append(
                        f"layer kernels: {row['layers_kernel_only']['stopped']}"
                    )
            except Exception as error:
                errors["layer kernels"] = error_line(error)
    for failure in row.get("layer_checks_all", {}).get("failed", []):
        errors.setdefault(f"sparse_all layer {failure['layer']}", failure["error"])
    for decision in row.get(
        "layer_timings", []
    ):  # the auto policy's own trial of each layer
        if (decision.get("reason") or "").startswith("sparse kernel failed"):
            errors.setdefault(
                f"sparse_auto layer {decision['layer']}", decision["reason"]
            )
    for shape in row.get("layers_kernel_only", {}).get("shapes", []):
        for key, value in shape.get("errors", {}).items():
            errors.setdefault(f"layer kernels {shape['layers'][0]} {key}", value)
    for key, value in row.get("kernel_only", {}).get("errors", {}).items():
        errors.setdefault(
            key if key.endswith("(kernel only)") else f"{key} (kernel only)", value
        )
    if notes:
        row["notes"] = notes
    if budget:
        row["budget_skipped"] = budget
    if errors:
        row["variant_errors"] = errors
        row["failures"] = [
            f"{k}: {v}" for k, v in errors.items() if not v.startswith("not run:")
        ]
    medians = {
        k: row[k]["median"]
        for k in ("dense", "masked", "sparse_auto", "sparse_all")
        if k in row
    }
    kernel = {k: v["median"] for k, v in row["kernel_only"]["variants"].items()}
    cfg.run.log(
        f"models/{name}/bs{batch}: end to end "
        + ", ".join(f"{k} {v:.3f} ms" for k, v in medians.items())
        + "; kernel only "
        + ", ".join(f"{k} {v:.3f} ms" for k, v in kernel.items())
    )
    variants = inputs = auto_model = all_model = (
        None  # the GPU memory goes back before the next step
    )
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
    command = [
        sys.executable,
        "-m",
        "sparsegrid_engine",
        "run",
        "--task",
        str(task_file),
        "--workdir",
        str(workdir),
    ]
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
        log_file.write(
            f"\n===== engine {task['stage']} (gpu_engine +{run.elapsed():.0f} s) =====\n".encode()
        )
        log_file.flush()
        offset = log_file.tell()
    stdout_path = workdir.with_suffix(".events")
    began = time.monotonic()
    with (
        open(log_path, "ab", buffering=0) as log_file,
        open(stdout_path, "wb") as stdout_file,
    ):
        proc = subprocess.Popen(
            command,
            stdout=stdout_file,
            stderr=log_file,
            env=env,
            start_new_session=True,
        )
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
        last = next(
            (line for line in reversed(stderr.splitlines()) if line.strip()),
            "(no stderr)",
        )
        raise RuntimeError(
            f"engine {task['stage']} exited {proc.returncode} with {len(results)} result events: {last.strip()}"
        )
    artifact = next(e for e in events if e.get("event") == "artifact")
    return {
        "seconds": time.monotonic() - began,
        "result": results[0],
        "artifact": artifact,
    }


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
        "params": {
            "model": "resnet18",
            "seed": 0,
            "method": "nm_2_4",
            **sizes["train"]["finetune"],
        },
    }
    return train, finetune


def engine_train(cfg: "Config") -> dict:
    train, _ = engine_tasks(cfg)
    done = _engine(cfg, train, cfg.work / "train")
    cfg.checkpoint = done["artifact"]
    return _keep(done)


def _needs_checkpoint(cfg: "Config") -> str | None:
    return (
        None
        if cfg.checkpoint is not None
        else "no checkpoint to fine-tune: engine/train did not finish"
    )


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
    return (
        f"{stats['median']:.3f}"
        if isinstance(stats, dict) and "median" in stats
        else "n/a"
    )


def _ratio(numerator, denominator) -> str:
    if (
        isinstance(numerator, dict)
        and isinstance(denominator, dict)
        and "median" in numerator
        and "median" in denominator
    ):
        return f"{numerator['median'] / denominator['median']:.2f}x"
    return "n/a"


def _cell(text: str, limit: int = 400) -> str:
    text = text.replace("|", "/").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _how(variants: dict) -> str:
    methods = {name: v.get("method", "n/a") for name, v in variants.items()}
    if not methods:
        return "n/a"
    if len(set(methods.values())) == 1:
        return next(iter(methods.values()))
    return "; ".join(f"{name}: {method}" for name, method in methods.items())


def _gemm_rows(parts: dict) -> list[dict]:
    rows = [parts["gemm"]] if isinstance(parts.get("gemm"), dict) else []
    return rows + [row for row in parts.get("linear", []) if isinstance(row, dict)]


def _model_rows(parts: dict):
    for name, result in parts.get("models", {}).items():
        if isinstance(result, dict):
            for batch, row in result.get("batch_sizes", {}).items():
                if isinstance(row, dict):
                    yield name, batch, row


def _headline(parts: dict) -> list[str]:
    lines = []
    for row in _gemm_rows(parts):
        ko = row.get("kernel_only")
        if not isinstance(ko, dict) or "tokens" not in row:
            continue
        v = ko.get("variants", {})
        text = f"- F.linear {row['tokens']}x{row['in']}x{row['out']}: dense {_ms(v.get('dense'))} ms, "
        text += (
            f"2:4 {_ms(v.get('sparse'))} ms ({_ratio(v.get('dense'), v.get('sparse'))})"
        )
        if "sparse_searched" in v:
            config = ko.get("searched_config", {})
            text += (
                f", 2:4 with the searched algorithm (id {config.get('alg_id')}, split-k {config.get('split_k')}) "
                f"{_ms(v['sparse_searched'])} ms ({_ratio(v.get('dense'), v['sparse_searched'])})"
            )
        if isinstance(row.get("sparse"), dict):
            text += f"; end to end the 2:4 call took {_ms(row['sparse'])} ms"
        lines.append(text + ".")
    for name, batch, row in _model_rows(parts):
        ko = row.get("kernel_only")
        if not isinstance(ko, dict):
            continue
        v = ko.get("variants", {})
        text = f"- {name} batch {batch}: masked {_ms(v.get('masked'))} ms, 2:4 all {_ms(v.get('sparse_all'))} ms "
        text += f"({_ratio(v.get('masked'), v.get('sparse_all'))})"
        if "sparse_auto" in v:
            text += f", 2:4 auto {_ms(v['sparse_auto'])} ms ({_ratio(v.get('masked'), v['sparse_auto'])})"
        summary = row.get("layers_kernel_only", {}).get("summary", {})
        if summary.get("shapes"):
            faster = summary["gemm_sparse_faster"]
            text += (
                f"; the 2:4 GEMM beat the dense GEMM on {faster['shapes']} of {summary['shapes']} layer shapes "
                f"({faster['layers']} of {summary['layers']} layers)"
            )
            conv = summary.get("lowered_sparse_faster_than_conv")
            if conv:
                text += f", the lowered 2:4 layer beat cuDNN's convolution on {conv['shapes']} shapes"
            if "estimate_each_layer_faster_form_ms" in summary:
                text += (
                    f"; each layer in its faster form: ~{summary['estimate_each_layer_faster_form_ms']:.3f} ms "
                    "(estimate from the per-layer graphs)"
                )
        lines.append(text + ".")
    return lines


def markdown(report: dict) -> str:
    env = report.get("environment", {})
    parts = report.get("parts", {})
    sparse = report.get("sparse_path", {})
    timing = report.get("timing", {})
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
        device += (
            f" (sm{env['capability'].replace('.', '')}, {env.get('memory_gib')} GiB)"
        )
    lines.append(
        f"{device}; driver {env.get('driver')}; torch {env.get('torch')}, CUDA {env.get('cuda')}, "
        f"cuDNN {env.get('cudnn')}; cuSPARSELt {env.get('cusparselt')} "
        f"({'available' if env.get('cusparselt_available') else 'NOT available'} in this torch build); "
        f"Python {env.get('python')}."
    )
    lines.append("")
    if sparse.get("unavailable"):
        lines += [
            f"**SPARSE PATH UNAVAILABLE: {sparse['unavailable']}** — sparse variants were not run.",
            "",
        ]
    cap = report.get("sizes", {}).get("cap", {})
    lines += [
        f"Sparse format: {report.get('sparse_format')}. End-to-end cap: {cap.get('variant_s')} s per variant "
        f"(at least {cap.get('min_calls')} calls where they fit)."
        + (
            f" A CUDA graph replay costs ~{timing['graph_replay_floor_ms'] * 1000:.1f} µs beyond its work."
            if isinstance(timing.get("graph_replay_floor_ms"), (int, float))
            else ""
        ),
        "",
    ]
    headline = _headline(parts)
    if headline:
        lines += [
            "## Headline: kernel only (CUDA graph replay: no dispatch, no per-call set-up)",
            "",
        ]
        lines += headline + [""]

    steps = report.get("steps", [])
    if steps:
        lines += [
            "## Steps",
            "",
            "| step | status | seconds | note |",
            "|---|---|---:|---|",
        ]
        for entry in steps:
            note = entry.get("error") or entry.get("reason") or ""
            seconds = f"{entry['seconds']:.1f}" if "seconds" in entry else ""
            lines.append(
                f"| {entry['step']} | {entry['status']} | {seconds} | {_cell(note, 300)} |"
            )
        lines.append("")

    smoke_result = parts.get("smoke")
    if isinstance(smoke_result, dict):
        _, fan_in, fan_out = report.get("sizes", {}).get("smoke", ("?", "?", "?"))
        lines += [
            f"## cuSPARSELt smoke check ({fan_out}x{fan_in} 2:4 weight, F.linear)",
            "",
        ]
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

    rows = _gemm_rows(parts)
    if rows:
        lines += [
            f"## F.linear on a 2:4 weight ({report.get('dtype')} GEMM; end to end, one call per timer pair)",
            "",
            "| tokens x in x out | dense ms | sparse ms | speedup | dense TFLOP/s | sparse TFLOP/s (dense-equiv.) "
            "| sparse calls timed | note |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for row in rows:
            if "tokens" not in row:
                lines.append(f"| ? | | | | | | | {_problem(row)} |")
                continue
            shape = f"{row['tokens']}x{row['in']}x{row['out']}"
            speed = f"{row['speedup']:.2f}x" if row.get("speedup") else "n/a"
            dense_tf = (
                f"{row['dense_tflops']:.1f}" if row.get("dense_tflops") else "n/a"
            )
            sparse_tf = (
                f"{row['sparse_tflops_dense_equivalent']:.1f}"
                if row.get("sparse_tflops_dense_equivalent")
                else "n/a"
            )
            calls = row["sparse"]["n"] if isinstance(row.get("sparse"), dict) else "n/a"
            notes = [f"{k}: {v['reason']}" for k, v in row.get("capped", {}).items()]
            notes += [
                f"{k}: {v}"
                for k, v in row.get("errors", {}).items()
                if "kernel only" not in k
            ]
            lines.append(
                f"| {shape} | {_ms(row.get('dense'))} | {_ms(row.get('sparse'))} | {speed} | {dense_tf} | "
                f"{sparse_tf} | {calls} | {_cell('; '.join(notes))} |"
            )
        lines.append("")
        kernel_rows = [
            row
            for row in rows
            if isinstance(row.get("kernel_only"), dict) and "tokens" in row
        ]
        if kernel_rows:
            lines += [
                "## F.linear, kernel only (CUDA graph replay; median ms per call)",
                "",
                "| tokens x in x out | dense | 2:4 (torch default: alg 0) | speedup | 2:4, searched config "
                "| speedup | searched config | calls per graph | how |",
                "|---|---:|---:|---:|---:|---:|---|---:|---|",
            ]
            for row in kernel_rows:
                ko = row["kernel_only"]
                v = ko.get("variants", {})
                config = ko.get("searched_config")
                config_text = (
                    ", ".join(f"{k} {val}" for k, val in config.items())
                    if config
                    else "n/a"
                )
                if ko.get("searched_skipped"):
                    config_text = f"not searched: {ko['searched_skipped']}"
                elif "search_s" in ko:
                    config_text += f" (search {ko['search_s']:.1f} s)"
                errors = "; ".join(
                    f"{k}: {val}" for k, val in ko.get("errors", {}).items()
                )
                lines.append(
                    f"| {row['tokens']}x{row['in']}x{row['out']} | {_ms(v.get('dense'))} | {_ms(v.get('sparse'))} | "
                    f"{_ratio(v.get('dense'), v.get('sparse'))} | {_ms(v.get('sparse_searched'))} | "
                    f"{_ratio(v.get('dense'), v.get('sparse_searched'))} | {config_text} | "
                    f"{ko.get('calls_per_graph', 'n/a')} | {_cell(_how(v) + ('; ' + errors if errors else ''))} |"
                )
            lines.append("")

    model_rows = list(_model_rows(parts))
    if model_rows:
        lines += [
            f"## Models ({report.get('dtype')}, channels-last; median ms per forward, end to end; "
            "speedup of sparse auto vs masked)",
            "",
            "| model | batch | dense | masked | sparse auto | sparse all | auto speedup | layers sparse (auto / all) "
            "| note |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for name, batch, row in model_rows:
            if "masked" not in row and "dense" not in row:
                lines.append(f"| {name} | {batch} | | | | | | | {_problem(row)} |")
                continue
            auto = row.get("sparse_auto")
            counts = f"{len(row.get('auto_sparse_layers', []))} / {row.get('all_sparse_layers', 'n/a')}"
            notes = [f"{k}: {v['reason']}" for k, v in row.get("capped", {}).items()]
            notes += [f"{k}: {v}" for k, v in row.get("variant_errors", {}).items()]
            notes += [f"{k}: {v}" for k, v in row.get("notes", {}).items()]
            notes += list(row.get("budget_skipped", []))
            if row.get("partial"):
                notes.append(f"partial: {row['partial']}")
            lines.append(
                f"| {name} | {batch} | {_ms(row.get('dense'))} | {_ms(row.get('masked'))} | {_ms(auto)} | "
                f"{_ms(row.get('sparse_all'))} | {_ratio(row.get('masked'), auto)} | {counts} | "
                f"{_cell('; '.join(notes), 700)} |"
            )
        lines.append("")
        kernel_rows = [
            (n, b, r)
            for n, b, r in model_rows
            if isinstance(r.get("kernel_only"), dict)
        ]
        if kernel_rows:
            lines += [
                "## Models, kernel only (one forward captured as a CUDA graph, replayed; median ms per forward)",
                "",
                "| model | batch | dense | masked | sparse auto | sparse all | all vs masked | auto vs masked | how |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---|",
            ]
            for name, batch, row in kernel_rows:
                v = row["kernel_only"].get("variants", {})
                errors = "; ".join(
                    f"{k}: {val}"
                    for k, val in row["kernel_only"].get("errors", {}).items()
                )
                lines.append(
                    f"| {name} | {batch} | {_ms(v.get('dense'))} | {_ms(v.get('masked'))} | "
                    f"{_ms(v.get('sparse_auto'))} | {_ms(v.get('sparse_all'))} | "
                    f"{_ratio(v.get('masked'), v.get('sparse_all'))} | {_ratio(v.get('masked'), v.get('sparse_auto'))} | "
                    f"{_cell(_how(v) + ('; ' + errors if errors else ''))} |"
                )
            lines.append("")
        layer_rows = [
            (n, b, r["layers_kernel_only"])
            for n, b, r in model_rows
            if "layers_kernel_only" in r
        ]
        if layer_rows:
            lines += [
                "## Layers lowered to GEMM, kernel only (one distinct shape per row; median ms per call)",
                "",
                "conv: cuDNN on the masked layer; unfold: the lowering to patches; GEMM: F.linear on those "
                "patches with the dense 2:4-masked matrix and with the cuSPARSELt 2:4 matrix; lowered 2:4 layer = "
                "unfold + 2:4 GEMM.",
                "",
                "| model | batch | layers | GEMM tokens x K x out | conv | unfold | GEMM dense | GEMM 2:4 "
                "| GEMM speedup | lowered 2:4 layer vs conv |",
                "|---|---:|---|---|---:|---:|---:|---:|---:|---:|",
            ]
            for name, batch, result in layer_rows:
                for shape in result.get("shapes", []):
                    v = shape.get("variants", {})
                    layers = shape["layers"][0] + (
                        f" (+{len(shape['layers']) - 1})"
                        if len(shape["layers"]) > 1
                        else ""
                    )
                    unfold = (
                        _ms(v.get("patches"))
                        if "patches" in v
                        else ("0 (view)" if "patches" in shape else "n/a")
                    )
                    gemm = "x".join(map(str, shape.get("gemm", [])))
                    speed = (
                        f"{shape['gemm_speedup']:.2f}x"
                        if "gemm_speedup" in shape
                        else "n/a"
                    )
                    layer = (
                        f"{shape['layer_speedup_vs_conv']:.2f}x"
                        if "layer_speedup_vs_conv" in shape
                        else "n/a"
                    )
                    lines.append(
                        f"| {name} | {batch} | {layers} | {gemm} | {_ms(v.get('conv'))} | {unfold} | "
                        f"{_ms(v.get('gemm_dense'))} | {_ms(v.get('gemm_sparse'))} | {speed} | {layer} |"
                    )
                if result.get("stopped"):
                    lines.append(
                        f"| {name} | {batch} | | | | | | | | {_cell(result['stopped'])} |"
                    )
            lines.append("")
            for name, batch, result in layer_rows:
                summary = result.get("summary", {})
                sums = summary.get("sum_ms")
                if not sums:
                    continue
                lines.append(
                    f"- {name} batch {batch}: over {summary['layers']} 2:4 layers, cuDNN convs {sums['conv']:.3f} ms, "
                    f"lowered 2:4 layers {sums['lowered_sparse']:.3f} ms (GEMM dense {sums['gemm_dense']:.3f} ms, "
                    f"GEMM 2:4 {sums['gemm_sparse']:.3f} ms); each layer in its faster form saves "
                    f"{sums['gain_if_each_layer_in_its_faster_form']:.3f} ms"
                    + (
                        f" of the masked network's {summary['masked_kernel_ms']:.3f} ms"
                        if "masked_kernel_ms" in summary
                        else ""
                    )
                    + "."
                )
            lines.append("")

    engine = parts.get("engine", {})
    finetune = engine.get("finetune") if isinstance(engine, dict) else None
    if isinstance(finetune, dict) and "metrics" in finetune:
        metrics = finetune["metrics"]
        lines += [
            "## Engine CLI (resnet18, 2:4 fine-tune, measure_model)",
            "",
            "| metric | value |",
            "|---|---:|",
        ]
        for key in sorted(
            k
            for k in metrics
            if k.startswith("latency")
            or k in ("accuracy", "sparsity", "gmacs", "gmacs_effective", "peak_mib")
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
        base = DRY if dry_run else FULL
        self.sizes = with_defaults(sizes, base) if sizes else copy.deepcopy(base)
        self.device = torch.device(device or self.sizes["device"])
        self.dtype = getattr(torch, self.sizes["dtype"])
        self.to_sparse = None if dry_run else to_sparse
        self.sparse_format = sparse_format or (
            "dense stand-in (dry run)"
            if dry_run
            else "torch semi-structured 2:4, cuSPARSELt"
        )
        self.sparse_unavailable = sparse_unavailable
        self.parts = [p for p in PARTS if p in parts]
        self.budget_s = budget_s
        self.started_at = started_at
        self.hang_in = hang_in
        self.watchdog = watchdog
        self.smoke_child = smoke_child  # main() runs the smoke check in a child process
        self.crash_in = (
            crash_in  # tests: "smoke" makes the smoke check's child process crash
        )
        # Filled while running.
        self.run: Run = None  # type: ignore[assignment]
        self.prepared: dict = {}
        self.kernel_timer = KernelTimer(self.device)
        self.sparse_call_s: float | None = (
            None  # the latest measured eager 2:4 call (seconds)
        )
        self.search_s: float | None = (
            None  # how long cuSPARSELt's algorithm search took on the last shape
        )
        self.checkpoint = None
        self.work: Path = None  # type: ignore[assignment]

    def note_sparse_call(self, seconds: float) -> None:
        """Remembers what one eager 2:4 call costs here, for the in-step budget estimates."""
        self.sparse_call_s = seconds

    def fits(self, seconds: float) -> bool:
        """Whether a part estimated to take `seconds` still fits before the deadline (with the reserve)."""
        if self.run is None:
            return True
        return self.run.left() - self.sizes["reserve_s"] >= 1.2 * seconds


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
            (
                f"gemm/{'x'.join(map(str, shape))}",
                lambda shape=shape: gemm_row(cfg, *shape),
                min_s["gemm"],
                ("gemm",),
            )
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
    if "models" in cfg.parts:
        for batch in sizes[
            "batch_sizes"
        ]:  # batch sizes outermost: both models at the first batch size first
            for name in sizes["models"]:
                steps.append(
                    (
                        f"models/{name}/bs{batch}",
                        lambda name=name, batch=batch: model_batch(name, batch, cfg),
                        min_s["models"],
                        ("models", name, "batch_sizes", str(batch)),
                    )
                )
    if "engine" in cfg.parts:
        steps.append(
            (
                "engine/train",
                lambda: engine_train(cfg),
                min_s["engine"],
                ("engine", "train"),
            )
        )
        steps.append(
            (
                "engine/finetune",
                lambda: engine_finetune(cfg),
                min_s["engine"],
                ("engine", "finetune"),
            )
        )
    if cfg.hang_in and cfg.hang_in != "engine":
        steps = [
            (
                name,
                (lambda: time.sleep(10**6)) if name.startswith(cfg.hang_in) else fn,
                m,
                where,
            )
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
    if "models" in cfg.parts and isinstance(
        earlier.get("parts", {}).get("models"), dict
    ):
        # Model x batch rows this run does not redo (--models, --batch-sizes) stay.
        report["parts"]["models"] = earlier["parts"]["models"]
        report["carried_over"]["models_rows_not_redone"] = True
    report["earlier_steps"] = [
        s for s in earlier.get("steps", []) if s.get("step", "").split("/")[0] in kept
    ]


def run(cfg: Config) -> int:
    """Runs the benchmark; returns the exit status (see the module docstring)."""
    budget_run = Run(
        cfg.out, budget_s=cfg.budget_s, started_at=cfg.started_at, watchdog=cfg.watchdog
    )
    cfg.run = budget_run
    report = {
        "schema": 3,
        "dry_run": cfg.dry_run,
        "status": "running",
        "budget_s": cfg.budget_s,
        "started": time.strftime(
            "%Y-%m-%dT%H:%M:%S%z", time.localtime(budget_run.started_at)
        ),
        "parts_requested": cfg.parts,
        "sparse_format": cfg.sparse_format,
        "sparse_path": {"unavailable": cfg.sparse_unavailable},
        "dtype": str(cfg.dtype).replace("torch.", ""),
        "sizes": {k: v for k, v in cfg.sizes.items() if k != "train"},
        "engine_sizes": cfg.sizes.get("train"),
        "timing": {
            "end_to_end": _end_to_end_label(cfg.device),
            "kernel_only": KERNEL_ONLY,
            "cudnn": dict(cudnn_for_timing.FLAGS),
        },
        "parts": {"linear": [None] * len(cfg.sizes["linear"])}
        if "linear" in cfg.parts
        else {},
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
            cusparselt_available=env.get("cusparselt_available"),
            cusparselt_version=env.get("cusparselt"),
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
                needs = (
                    (lambda: _needs_checkpoint(cfg))
                    if name == "engine/finetune"
                    else None
                )
                budget_run.step(name, fn, min_s=min_s, where=where, needs=needs)
        return _finish(cfg)
    finally:
        cfg.prepared.clear()
        budget_run.close()


def _finish(cfg: Config) -> int:
    budget_run = cfg.run
    with budget_run.lock:
        steps = budget_run.report["steps"]
        failed = [
            s for s in steps if s["status"] in ("failed", "ok with failures", "killed")
        ]
        stopped = [
            s
            for s in steps
            if s["status"] in ("skipped", "timed out", "cut by the budget")
        ]
        if failed or (cfg.sparse_unavailable and not cfg.dry_run):
            code = 1
        elif stopped:
            code = 2
        else:
            code = 0
        budget_run.report["status"] = (
            "stopped at the deadline" if stopped else "complete"
        ) + (" with failures" if code == 1 else "")
        budget_run.report["exit_code"] = code
        budget_run.report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        budget_run.finished.set()
        budget_run.save()
    for entry in failed:
        budget_run.log(f"FAILED: {entry['step']}: {entry.get('error')}")
    if stopped:
        budget_run.log(
            f"budget: {len(stopped)} step(s) not done: "
            + ", ".join(s["step"] for s in stopped)
        )
    budget_run.log(f"wrote {cfg.out / JSON_NAME} and {cfg.out / MD_NAME}; exit {code}")
    return code


def _parse_list(text: str, allowed, what: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in items if allowed is not None and item not in allowed]
    if unknown or not items:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {unknown or text!r}; choose from {', '.join(allowed)}"
        )
    return items


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        help="folder for gpu_engine.{json,md,log} and engine.log",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="CPU, tiny sizes, dense stand-in for sparse",
    )
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
    parser.add_argument(
        "--models",
        type=lambda s: _parse_list(s, None, "model"),
        help="models for the models part",
    )
    parser.add_argument(
        "--batch-sizes",
        type=lambda s: [int(b) for b in _parse_list(s, None, "batch size")],
        help="e.g. 1,64",
    )
    parser.add_argument(
        "--variant-cap-s",
        type=float,
        default=None,
        help="seconds one variant may be timed for end to end (default 8); slower variants get fewer calls "
        "(at least 3 where they fit, else their first call only), recorded with the reason",
    )
    parser.add_argument(
        "--started-at", type=float, default=None, help=argparse.SUPPRESS
    )  # epoch s, from the .sh
    parser.add_argument(
        "--hang-in", default=None, help=argparse.SUPPRESS
    )  # tests: make a step hang
    parser.add_argument(
        "--child-smoke", type=Path, default=None, help=argparse.SUPPRESS
    )  # smoke_in_child
    parser.add_argument(
        "--crash-in", default=None, help=argparse.SUPPRESS
    )  # tests: crash the smoke child
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
            result, code = (
                {
                    "error": error_line(error),
                    "traceback": traceback.format_exc()[-4000:],
                },
                1,
            )
        args.child_smoke.write_text(json.dumps(result, default=str))
        return code
    sizes = copy.deepcopy(DRY if args.dry_run else FULL)
    if args.models:
        sizes["models"] = args.models
    if args.batch_sizes:
        sizes["batch_sizes"] = args.batch_sizes
    if args.variant_cap_s is not None:
        if args.variant_cap_s <= 0:
            parser.error("--variant-cap-s must be positive")
        sizes["cap"]["variant_s"] = args.variant_cap_s
    budget = (
        args.budget_s
        if args.budget_s is not None
        else (DRY_BUDGET_S if args.dry_run else DEFAULT_BUDGET_S)
    )
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
