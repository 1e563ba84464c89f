"""One task file through `run`'s code path, and the long-lived mode (`serve`) that runs many.

`execute` is what `run` does for its one task and what `serve` does for each: read the task
file, run it, map the outcome to the exit status (0 with one result; 2 for an invalid task; 1
for anything else) and emit `error` events the same way, so a task's events are the same in
both modes apart from timings and `result.details.engine_process`.

`serve` (engine/CONTRACT.md, "Long-lived mode"): torch is imported once; the worker writes one
control line per task on stdin, `{"task": "/abs/task.json", "workdir": "/abs/dir"}`, and the
engine answers with the task's events and one `{"event": "end", "exit": N}` line (with
`"recycle": true` when the task left state behind that the engine cannot put back). Between
tasks the process puts back the global state it captured at start (GlobalState), drops the
task's objects, collects garbage and empties the CUDA cache. End of stdin ends the process
with status 0; a control line that is not what the contract says is the worker's bug: it is
logged on stderr and the process exits 1.
"""

import ctypes
import functools
import gc
import io
import json
import os
import random
import sys
import traceback
import warnings

from .protocol import InvalidTask, TaskFailed, emit, log

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
MAX_CONTROL_LINE = 64 * 1024  # bytes of one control line, without its newline
PROTOCOL_VERSION = 1


def run_process() -> dict:
    """`result.details.engine_process` of a task run by `run`."""
    return {"mode": "run", "pid": os.getpid(), "task_index": 1}


class Outcome:
    """How one task ended: its exit status and, for a failure that was not the task's own
    (neither InvalidTask nor TaskFailed), the exception's type. The exception itself is not
    kept: its traceback holds the task's frames, and with them its model and data."""

    def __init__(self, status: int, error: type | None = None):
        self.status = status
        self.error = error


def execute(task_path: str, workdir: str, engine_process: dict) -> Outcome:
    """Runs one task file as `run` does: its events on the event stream, humans on stderr."""
    try:
        try:
            with open(task_path) as f:
                task = json.load(f)
        except OSError as e:
            raise TaskFailed(f"cannot read the task file {task_path}: {e.strerror}.") from e
        except ValueError as e:
            raise InvalidTask(f"the task file {task_path} is not valid JSON: {e}.") from e
        from .runner import run_task  # imports torch: after the task file is known to be readable

        run_task(task, workdir, engine_process=engine_process)
        return Outcome(EXIT_OK)
    except InvalidTask as e:
        emit("error", message=str(e), invalid=True)
        log(f"invalid task: {e}")
        return Outcome(EXIT_INVALID)
    except TaskFailed as e:
        emit("error", message=str(e), invalid=False)
        log(f"task failed: {e}")
        return Outcome(EXIT_FAILED)
    except Exception as e:  # a bug or a runtime failure (e.g. out of memory): may be retried
        emit("error", message=f"{type(e).__name__}: {e}", invalid=False)
        traceback.print_exc(file=sys.stderr)
        return Outcome(EXIT_FAILED, type(e))


# ---------------------------------------------------------------------------------------
# Control lines


class ControlError(ValueError):
    """A control line that breaks the contract: the worker's bug, so the process exits 1."""


def _shown(raw: bytes) -> str:
    return repr(raw[:120]) + (f" … ({len(raw)} bytes)" if len(raw) > 120 else "")


def parse_control(raw: bytes) -> tuple[str, str]:
    """(task, workdir) of one control line (its newline included); ControlError otherwise."""
    if not raw.endswith(b"\n"):
        if len(raw) > MAX_CONTROL_LINE:
            raise ControlError(f"a control line is longer than {MAX_CONTROL_LINE} bytes: {_shown(raw)}")
        raise ControlError(f"the control stream ended in the middle of a line: {_shown(raw)}")
    body = raw[:-1]
    if len(body) > MAX_CONTROL_LINE:
        raise ControlError(f"a control line is longer than {MAX_CONTROL_LINE} bytes: {_shown(raw)}")
    try:
        line = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ControlError(f"a control line is not JSON ({e}): {_shown(body)}") from None
    if not isinstance(line, dict):
        raise ControlError(f'a control line must be a JSON object {{"task": …, "workdir": …}}: {_shown(body)}')
    paths = []
    for key in ("task", "workdir"):
        value = line.get(key)
        if not isinstance(value, str) or not value:
            raise ControlError(f"a control line's {key!r} must be a non-empty string: {_shown(body)}")
        if "\0" in value or not os.path.isabs(value):
            raise ControlError(f"a control line's {key!r} must be an absolute path without NUL bytes: {_shown(body)}")
        paths.append(value)
    return paths[0], paths[1]


def read_control(stream: io.BufferedReader) -> tuple[str, str] | None:
    """The next control line's (task, workdir), None at end of stdin; ControlError otherwise."""
    raw = stream.readline(MAX_CONTROL_LINE + 1)
    if raw == b"":
        return None
    return parse_control(raw)


def claim_stdin() -> io.BufferedReader:
    """The control stream for this module alone: fd 0 is duplicated and then pointed at
    /dev/null, so neither a library nor a child process can read a worker's control line."""
    control = os.dup(0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdin = open(os.devnull)  # noqa: SIM115 (lives as long as the process)
    return os.fdopen(control, "rb", buffering=MAX_CONTROL_LINE + 2)


# ---------------------------------------------------------------------------------------
# Global state: what a task can change that outlives it


def _same(a, b) -> bool:
    import numpy as np
    import torch

    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _flags(items: list, prefix: str, owner, names) -> None:
    """Appends (name, get, set) for each attribute flag of `owner` (e.g. torch.backends.cudnn.benchmark)
    that this build can read."""
    for name in names:
        try:
            getattr(owner, name)
        except Exception:  # noqa: BLE001 (absent, or not readable in this build: nothing to restore)
            continue
        items.append(
            (f"{prefix}.{name}", functools.partial(getattr, owner, name), functools.partial(setattr, owner, name))
        )


def _resolve(root, dotted: str):
    """root.a.b for dotted ".a.b"; None when a part is missing."""
    for part in filter(None, dotted.split(".")):
        root = getattr(root, part, None)
    return root


def _warnings_set(filters: list) -> None:
    warnings.filters[:] = filters


def _forget_warnings() -> None:
    """Each task warns as a fresh process would: the "already warned" registries are dropped."""
    warnings.onceregistry.clear()
    mutated = getattr(warnings, "_filters_mutated", None)
    if mutated is not None:  # invalidates every module's __warningregistry__
        mutated()


def _environ_set(saved: dict) -> None:
    for key in set(os.environ) - set(saved):
        del os.environ[key]
    for key, value in saved.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


def _state_items() -> list:
    """(name, get, set) for each piece of process-wide state a task could change."""
    import numpy as np
    import torch
    import torch.backends.cuda
    import torch.backends.cudnn
    import torch.backends.mkldnn

    items = [
        ("cwd", os.getcwd, os.chdir),
        ("environ", lambda: dict(os.environ), _environ_set),
        ("sys.stdout", lambda: sys.stdout, lambda v: setattr(sys, "stdout", v)),
        ("sys.stderr", lambda: sys.stderr, lambda v: setattr(sys, "stderr", v)),
        ("warnings.filters", lambda: list(warnings.filters), _warnings_set),
        ("warnings.showwarning", lambda: warnings.showwarning, lambda v: setattr(warnings, "showwarning", v)),
        ("random", random.getstate, random.setstate),
        ("numpy.random", np.random.get_state, np.random.set_state),
        ("torch.rng", torch.get_rng_state, torch.set_rng_state),
        ("torch.num_threads", torch.get_num_threads, torch.set_num_threads),
        ("torch.default_dtype", torch.get_default_dtype, torch.set_default_dtype),
        ("torch.grad_enabled", torch.is_grad_enabled, torch.set_grad_enabled),
        (
            "torch.anomaly",
            lambda: (torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled()),
            lambda v: torch.set_anomaly_enabled(v[0], v[1]),
        ),
        (
            "torch.deterministic_algorithms",
            lambda: (
                torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled(),
            ),
            lambda v: torch.use_deterministic_algorithms(v[0], warn_only=v[1]),
        ),
        ("torch.float32_matmul_precision", torch.get_float32_matmul_precision, torch.set_float32_matmul_precision),
    ]
    if hasattr(torch, "get_default_device"):
        # A fresh process has no default-device context; setting "cpu" would install one.
        cpu = torch.device("cpu")
        items.append(
            (
                "torch.default_device",
                torch.get_default_device,
                lambda device: torch.set_default_device(None if device == cpu else device),
            )
        )
    cudnn_flags = ("enabled", "benchmark", "deterministic", "allow_tf32", "benchmark_limit")
    _flags(items, "torch.backends.cudnn", torch.backends.cudnn, cudnn_flags)
    matmul_flags = ("allow_tf32", "allow_fp16_reduced_precision_reduction", "allow_bf16_reduced_precision_reduction")
    _flags(items, "torch.backends.cuda.matmul", torch.backends.cuda.matmul, matmul_flags)
    for kind in ("flash", "mem_efficient", "math", "cudnn"):
        get = getattr(torch.backends.cuda, f"{kind}_sdp_enabled", None)
        put = getattr(torch.backends.cuda, f"enable_{kind}_sdp", None)
        if get is not None and put is not None:
            items.append((f"torch.backends.cuda.{kind}_sdp", get, put))
    _flags(items, "torch.backends.mkldnn", torch.backends.mkldnn, ("enabled",))
    # torch >= 2.9 keeps TF32/bf16 use per backend here; the legacy flags above (allow_tf32,
    # float32_matmul_precision) are views of it. Set last, so they are what finally holds.
    precision_owners = (
        *("", ".cuda.matmul", ".cudnn", ".cudnn.conv", ".cudnn.rnn"),
        *(".mkldnn", ".mkldnn.matmul", ".mkldnn.conv", ".mkldnn.rnn"),
    )
    for owner in precision_owners:
        _flags(items, f"torch.backends{owner}", _resolve(torch.backends, owner), ("fp32_precision",))
    try:
        from torch.sparse import SparseSemiStructuredTensor  # kernels.semi_structured sets these per task
    except ImportError:
        pass
    else:
        _flags(items, "SparseSemiStructuredTensor", SparseSemiStructuredTensor, ("_FORCE_CUTLASS", "_FUSE_TRANSPOSE"))
    return items


class _Unreadable:
    def __init__(self, error: Exception):
        self.error = error

    def __repr__(self) -> str:
        return f"unreadable ({type(self.error).__name__}: {self.error})"


def _read(get):
    """get(), or an _Unreadable (never equal to a captured value) when reading fails."""
    try:
        return get()
    except Exception as e:  # noqa: BLE001 (e.g. torch refusing to read a mixed TF32 setting)
        return _Unreadable(e)


class GlobalState:
    """The process-wide state captured when `serve` starts, put back after every task."""

    def __init__(self):
        import torch

        self._items, self.saved = [], {}
        for name, get, put in _state_items():
            value = _read(get)
            if not isinstance(value, _Unreadable):  # what cannot be read at start is left alone
                self._items.append((name, get, put))
                self.saved[name] = value
        # A CUDA generator starts at this seed (torch's default); restored by reseeding.
        self._cuda_seed = torch.initial_seed()

    def restore(self) -> list[str]:
        """Puts every captured value back; returns what could not be restored (empty when all is well)."""
        import torch

        broken = []
        for name, get, put in self._items:  # in order: later items may set what earlier ones read
            saved = self.saved[name]
            try:
                if not _same(_read(get), saved):
                    put(saved)
            except Exception as e:  # noqa: BLE001 (reported, then the process is replaced)
                broken.append(f"{name} could not be restored: {type(e).__name__}: {e}")
        for name, get, _ in self._items:
            now, saved = _read(get), self.saved[name]
            if not _same(now, saved):
                broken.append(f"{name} is {now!r} after setting it back to {saved!r}")
        _forget_warnings()
        if torch.is_inference_mode_enabled():
            broken.append("inference mode is still on")
        if torch.cuda.is_initialized():
            try:
                torch.cuda.manual_seed_all(self._cuda_seed)
            except Exception as e:  # noqa: BLE001
                broken.append(f"the CUDA generators could not be reseeded: {type(e).__name__}: {e}")
        from . import data

        data._scale_shift.cache_clear()
        return broken


def _flush_c_stdio() -> None:
    """Flushes C stdio buffers (a C library's printf lands on stderr after claim_stdout), so
    what the task wrote is on stderr before its `end`."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


def _trim_heap() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peaks() -> None:
    """Per-task memory peaks: VmHWM back to the current RSS, CUDA peaks cleared."""
    import torch

    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass
    if torch.cuda.is_initialized():
        for index in range(torch.cuda.device_count()):
            torch.cuda.reset_peak_memory_stats(index)


def after_task(state: GlobalState, error: type | None) -> list[str]:
    """Frees what the task left and restores the global state; returns the reasons this
    process should be replaced (empty when it can take another task). `error`: the type of
    an exception that was not the task's own fault (Outcome.error)."""
    import torch

    reasons = []
    if error is not None and issubclass(error, MemoryError):
        reasons.append("the task ran out of memory")
    if error is not None and torch.cuda.is_initialized():
        reasons.append(f"the task failed with {error.__name__} after CUDA was initialised")
    gc.collect()
    if torch.cuda.is_initialized():
        try:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
        except Exception as e:  # noqa: BLE001 (a sticky CUDA error: this context is done)
            reasons.append(f"CUDA is unusable after the task: {type(e).__name__}: {e}")
    _trim_heap()
    reasons += state.restore()
    return reasons


def serve() -> int:
    """The long-lived mode's loop; returns the process's exit status."""
    control = claim_stdin()
    import torch  # noqa: F401  (once, before the first task: the point of this mode)

    from . import runner  # noqa: F401

    state = GlobalState()
    index = 0
    while True:
        try:
            line = read_control(control)
        except ControlError as e:
            log(f"serve: {e}; this is the worker's bug, so the engine exits.")
            return EXIT_FAILED
        if line is None:
            return EXIT_OK
        task_path, workdir = line
        index += 1
        reset_peaks()
        outcome = execute(task_path, workdir, {"mode": "serve", "pid": os.getpid(), "task_index": index})
        reasons = after_task(state, outcome.error)
        if reasons:
            log(f"serve: this process should be replaced: {'; '.join(reasons)}")
        sys.stderr.flush()
        _flush_c_stdio()
        if reasons:
            emit("end", exit=outcome.status, recycle=True)
        else:
            emit("end", exit=outcome.status)
