"""The long-lived mode (`serve`, CONTRACT.md "Long-lived mode"): the real engine as a subprocess,
fed control lines on stdin, its events and `end` lines read from stdout; compared with `run`."""

import copy
import json
import os
import select
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ENGINE_ROOT, NM_2_4, run_engine, tiny_task

from sparsegrid_engine import serve as serve_module
from sparsegrid_engine.runner import describe, sha256_file

TIMEOUT_S = 300.0


class Serve:
    """`python -m sparsegrid_engine serve` in its own work root, as a worker starts it."""

    def __init__(self, root: Path, cache: Path, cwd: Path | None = None):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        cwd = cwd or root
        cwd.mkdir(parents=True, exist_ok=True)
        self.stderr_path = root / "serve-stderr.txt"
        env = {**os.environ, "PYTHONPATH": str(ENGINE_ROOT), "SPARSEGRID_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sparsegrid_engine", "serve"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        self._buffer = b""
        self.count = 0

    def send(self, raw: bytes) -> None:
        self.proc.stdin.write(raw)
        self.proc.stdin.flush()

    def line(self, deadline: float) -> dict | None:
        """The next stdout line as JSON, or None at end of stdout."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            assert left > 0, f"no line from serve in time; stderr: {self.stderr()[-2000:]}"
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    assert not self._buffer, f"stdout ended inside a line: {self._buffer[:200]!r}"
                    return None
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(raw)  # every stdout line must be a JSON object

    def task(self, task: dict, name: str) -> tuple[list[dict], dict, Path]:
        """Sends one task; returns (its events, its end line, its workdir)."""
        self.count += 1
        workdir = self.root / name
        workdir.mkdir()
        task_file = self.root / f"{name}-task.json"
        task_file.write_text(json.dumps(task))
        self.send(json.dumps({"task": str(task_file), "workdir": str(workdir)}).encode() + b"\n")
        return (*self.until_end(), workdir)

    def until_end(self) -> tuple[list[dict], dict]:
        deadline = time.monotonic() + TIMEOUT_S
        events = []
        while True:
            event = self.line(deadline)
            assert event is not None, f"serve exited before `end`; stderr: {self.stderr()[-2000:]}"
            if event.get("event") == "end":
                return events, event
            events.append(event)

    def close(self) -> int:
        """Closes stdin (end of the control stream) and returns the exit status."""
        self.proc.stdin.close()
        rest = self.line(time.monotonic() + TIMEOUT_S)
        assert rest is None, f"a line after the last task: {rest}"
        return self.proc.wait(timeout=TIMEOUT_S)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def serving(tmp_path, cache_dir):
    started = []

    def start(name: str = "root", cwd: Path | None = None) -> Serve:
        started.append(Serve(tmp_path / name, cache_dir, cwd))
        return started[-1]

    yield start
    for s in started:
        s.kill()


def of(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if e.get("event") == kind]


TIMING_METRICS = ("train_seconds", "images_per_s", "peak_mib")


def comparable(result: dict) -> dict:
    """A result without what is a timing (latency, wall times, throughput, memory peaks) and
    without engine_process: what must be identical between a fresh `run` and a warm task."""
    result = copy.deepcopy(result)
    metrics = result["metrics"]
    for name in list(metrics):
        if name.startswith("latency") or name in TIMING_METRICS:
            del metrics[name]
    details = result["details"]
    for key in ("latency", "engine_process"):
        details.pop(key)
    for entry in details["history"]:
        entry.pop("images_per_s")
    return result


def checkpoint_sha(events: list[dict], workdir: Path) -> str:
    (artifact,) = of(events, "artifact")
    assert artifact["path"] == "checkpoint.pt" and (workdir / "checkpoint.pt").is_file()
    assert sha256_file(workdir / "checkpoint.pt") == artifact["sha256"]
    return artifact["sha256"]


def test_tasks_in_one_process_end_as_run_and_leave_nothing_behind(serving, tmp_path, cache_dir):
    """One serve process, five task lines: A, B, an invalid task, an unreadable task file, B again;
    then end of stdin, which ends the process with status 0 and no further line.

    A changes what a task can change of the process (thread count, seeds and cuDNN flags via
    seed_everything; another model, a sparsity method, channels-last): B after it, and B after
    the failures, must give what B gives alone in a fresh `run`, apart from timings."""
    a = tiny_task(
        params={
            **{"model": "mobilenet_v2", "seed": 7, "num_threads": 2, "channels_last": True, "method": "nm_2_4"},
            **{"max_steps": 1, "batch_size": 8},
        },
        method=NM_2_4,
        measure={"latency": {"batch_sizes": [2], "warmup": 0, "iterations": 2, "precision": 0}, "flops": False},
    )
    b = tiny_task(params={"num_threads": None, "seed": 3})
    s = serving()
    pid = s.proc.pid
    events_a, end_a, _ = s.task(a, "a")
    events_b, end_b, wb = s.task(b, "b")
    invalid, end_invalid, _ = s.task(tiny_task(params={"model": "resnet19"}), "c")
    (s.root / "d").mkdir()  # a task file that cannot be read: exit 1, as `run` gives
    s.send(json.dumps({"task": str(s.root / "absent.json"), "workdir": str(s.root / "d")}).encode() + b"\n")
    unreadable, end_unreadable = s.until_end()
    again, end_again, w_again = s.task(b, "e")
    assert s.close() == 0, s.stderr()[-2000:]

    assert end_a == end_b == end_again == {"event": "end", "exit": 0}, s.stderr()[-2000:]
    assert end_invalid == {"event": "end", "exit": 2} and end_unreadable == {"event": "end", "exit": 1}
    (error,) = of(invalid, "error")
    assert error["invalid"] is True and "resnet19" in error["message"] and not of(invalid, "result")
    assert "invalid task: unknown model 'resnet19'" in s.stderr()
    (error,) = of(unreadable, "error")
    assert error["invalid"] is False and "absent.json" in error["message"] and not of(unreadable, "result")
    (result_a,), (warm,), (warm_again,) = of(events_a, "result"), of(events_b, "result"), of(again, "result")
    assert result_a["details"]["threads"] == 2  # A did change the thread count
    assert result_a["details"]["engine_process"] == {"mode": "serve", "pid": pid, "task_index": 1}
    assert warm["details"]["engine_process"] == {"mode": "serve", "pid": pid, "task_index": 2}
    assert warm_again["details"]["engine_process"] == {"mode": "serve", "pid": pid, "task_index": 5}

    alone = run_engine(b, tmp_path / "alone", cache_dir)
    assert alone.returncode == 0, alone.stderr[-2000:]
    (fresh,) = alone.of("result")
    assert fresh["details"]["engine_process"]["mode"] == "run"
    assert fresh["details"]["engine_process"]["task_index"] == 1
    sha = checkpoint_sha(alone.events, alone.workdir)
    assert checkpoint_sha(events_b, wb) == sha and checkpoint_sha(again, w_again) == sha
    assert comparable(warm) == comparable(fresh) and comparable(warm_again) == comparable(fresh)
    # Event for event, the same kinds in the same order.
    kinds = [e["event"] for e in alone.events]
    assert [e["event"] for e in events_b] == kinds and [e["event"] for e in again] == kinds


def test_state_that_cannot_be_put_back_asks_for_recycle_and_a_malformed_line_ends_the_process(serving, tmp_path):
    s = serving(cwd=tmp_path / "work-root")
    _, end, _ = s.task(tiny_task(params={"model": "resnet19"}), "a")
    assert end == {"event": "end", "exit": 2}
    (tmp_path / "work-root").rmdir()  # the working directory captured at start is gone
    _, end, _ = s.task(tiny_task(params={"model": "resnet19"}), "b")
    assert end == {"event": "end", "exit": 2, "recycle": True}
    assert "this process should be replaced: cwd could not be restored" in s.stderr()
    # The engine still reads the next line; a malformed one (here: too long) ends it with status
    # 1 and a message, after the last task's end, with no line of its own on stdout.
    s.send(b'{"task": "/t.json", "workdir": "/w", "pad": "' + b"x" * (64 * 1024) + b'"}\n')
    assert s.line(time.monotonic() + TIMEOUT_S) is None
    assert s.proc.wait(timeout=TIMEOUT_S) == 1
    assert "longer than 65536 bytes" in s.stderr() and "worker's bug" in s.stderr()


@pytest.mark.parametrize(
    "raw, fragment",
    [
        (b"[1, 2]\n", "must be a JSON object"),
        (b'{"task": 1, "workdir": "/w"}\n', "'task' must be a non-empty string"),
        (b'{"task": "/t.json"}\n', "'workdir' must be a non-empty string"),
        (b'{"task": "/t.json", "workdir": ""}\n', "'workdir' must be a non-empty string"),
        (b'{"task": "/t\\u0000.json", "workdir": "/w"}\n', "absolute path without NUL"),
        (b'{"task": "/t.json", "workdir": "w"}\n', "'workdir' must be an absolute path"),
        (b'{"task": "/t.json", "workdir": "/w"}', "ended in the middle of a line"),
        (b"\xff\xfe\n", "not JSON"),
        (b"\n", "not JSON"),
        (b"{" + b" " * (64 * 1024) + b"}\n", "longer than 65536 bytes"),
    ],
    ids=["array", "task-type", "no-workdir", "empty", "nul", "relative", "no-newline", "utf8", "blank", "oversize"],
)
def test_parse_control_refuses_what_the_contract_does_not_allow(raw, fragment):
    with pytest.raises(serve_module.ControlError) as error:
        serve_module.parse_control(raw)
    assert fragment in str(error.value)


def test_parse_control_accepts_a_line_at_the_size_limit():
    line = {"task": "/t.json", "workdir": "/w", "pad": ""}
    line["pad"] = "x" * (64 * 1024 - len(json.dumps(line)))
    raw = json.dumps(line).encode()
    assert len(raw) == 64 * 1024
    assert serve_module.parse_control(raw + b"\n") == ("/t.json", "/w")


def test_global_state_is_put_back(tmp_path, monkeypatch):
    """Every piece of state GlobalState captures, changed as a task could change it, comes back."""
    monkeypatch.chdir(tmp_path)
    state = serve_module.GlobalState()
    threads = torch.get_num_threads()
    np_state, torch_state = np.random.get_state(), torch.get_rng_state()
    filters = list(warnings.filters)
    try:
        os.chdir("/")
        os.environ["SPARSEGRID_SERVE_TEST"] = "1"
        warnings.simplefilter("error")
        np.random.seed(99)
        torch.manual_seed(99)
        torch.set_num_threads(threads + 1)
        torch.set_default_dtype(torch.float64)
        torch.set_default_device("meta")
        torch.set_grad_enabled(False)
        torch.set_anomaly_enabled(True)
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.mkldnn.matmul.fp32_precision = "bf16"  # the new API (torch >= 2.9), mixed with the legacy one
        torch.backends.cudnn.benchmark = not torch.backends.cudnn.benchmark
        torch.backends.cudnn.deterministic = not torch.backends.cudnn.deterministic
        torch.backends.cudnn.allow_tf32 = not torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = not torch.backends.cuda.matmul.allow_tf32
        torch.backends.mkldnn.enabled = not torch.backends.mkldnn.enabled
        changed = [
            name for name, get, _ in state._items if not serve_module._same(serve_module._read(get), state.saved[name])
        ]
        assert state.restore() == []
    finally:
        warnings.filters[:] = filters
    expected = {
        "cwd",
        "environ",
        "warnings.filters",
        "numpy.random",
        "torch.rng",
        "torch.num_threads",
        "torch.default_dtype",
        "torch.default_device",
        "torch.grad_enabled",
        "torch.anomaly",
        "torch.deterministic_algorithms",
        "torch.float32_matmul_precision",
        "torch.backends.cudnn.benchmark",
        "torch.backends.cudnn.deterministic",
        "torch.backends.cudnn.allow_tf32",
        "torch.backends.cuda.matmul.allow_tf32",
        "torch.backends.mkldnn.enabled",
        "torch.backends.mkldnn.matmul.fp32_precision",
    }
    assert expected <= set(changed)
    assert os.getcwd() == str(tmp_path) and "SPARSEGRID_SERVE_TEST" not in os.environ
    assert torch.get_num_threads() == threads and torch.get_default_dtype() == torch.float32
    assert torch.empty(1).device == torch.device("cpu")
    assert torch.is_grad_enabled() and not torch.is_anomaly_enabled()
    assert not torch.are_deterministic_algorithms_enabled()
    assert torch.get_float32_matmul_precision() == state.saved["torch.float32_matmul_precision"]
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert serve_module._same(np.random.get_state(), np_state)
    assert all(serve_module._same(get(), state.saved[name]) for name, get, _ in state._items)


def test_the_control_stream_is_out_of_reach_of_libraries_and_children():
    """After claim_stdin, fd 0 and sys.stdin read /dev/null (a library or child process reading
    stdin cannot swallow a control line); the control lines still come to read_control."""
    code = (
        "import os, subprocess, sys\n"
        "from sparsegrid_engine.serve import claim_stdin, read_control\n"
        "control = claim_stdin()\n"
        "assert os.read(0, 100) == b'' and sys.stdin.read() == ''\n"
        "assert subprocess.run(['cat'], capture_output=True).stdout == b''\n"
        "print(read_control(control), read_control(control))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ENGINE_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        input=b'{"task": "/t.json", "workdir": "/w"}\n',
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert proc.stdout == b"('/t.json', '/w') None\n"


def test_after_task_asks_for_replacement_when_the_task_ran_out_of_memory():
    state = serve_module.GlobalState()
    assert serve_module.after_task(state, None) == []
    assert serve_module.after_task(state, ValueError) == []  # no CUDA here: nothing poisoned
    assert serve_module.after_task(state, MemoryError) == ["the task ran out of memory"]


def test_describe_announces_serve_version_1():
    assert describe()["serve"] == {"version": 1}
