#!/usr/bin/env python3
"""A small engine for the system tests: speaks engine/CONTRACT.md with the standard library
only (no torch import, so a task takes milliseconds). Parameters it understands (task params):

  sleep            seconds to run before finishing (progress events every 0.1 s)
  silent_sleep     seconds to wait first without printing anything
  epochs           with sleep: progress events count epochs 1..epochs over the sleep, each
                   followed by a `metric` event, as the real engine prints them
  spin             seconds of busy CPU work before finishing (progress events every second)
  exit_code        exit with this status after the sleep (2 = invalid task)
  fail_attempts    fail (exit 3) this many times per task id, then succeed; the count is kept
                   in $TEST_ENGINE_STATE (a directory) so it survives across workers
  artifact_bytes   write a checkpoint artifact of this size (deterministic content per task)
  value            reported as metric `accuracy`

Environment: TEST_ENGINE_STALL_STAGE=NAME makes tasks of that stage hang (until killed) on
the worker that has it set, so a test can catch a task mid-run on a chosen worker.
TEST_ENGINE_DESCRIBE_SLEEP=SECONDS makes `describe` take that long (like importing torch).
TEST_ENGINE_SERVE=1 makes `describe` declare `"serve": {"version": 1}`, so a worker runs its
tasks in one long-lived `serve` process per slot (same task behaviour as `run`; the param
`recycle: true` makes its `end` line ask to be replaced). Without it, workers keep `run`.

With inputs, it reads each input file, checks its sha256 against the task's declaration
and reports the verified hashes in details.inputs_verified. Its result's details also say
what it was told and saw: task_device (the task's `device`) and cuda_visible_devices, and
engine_process ({"mode": "run" or "serve", "pid": P, "task_index": K}).
"""

import ctypes
import hashlib
import json
import os
import signal
import sys
import time


def die_with_parent():
    # If the worker is SIGKILLed, take the engine down too (Linux PR_SET_PDEATHSIG).
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)
    except Exception:
        pass


def emit(event, **fields):
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def main():
    if sys.argv[1:2] == ["describe"]:
        time.sleep(float(os.environ.get("TEST_ENGINE_DESCRIBE_SLEEP", "0")))
        described = {"engine": "test", "version": "1", "models": ["any"]}
        if os.environ.get("TEST_ENGINE_SERVE") == "1":
            described["serve"] = {"version": 1}
        print(json.dumps(described))
        return 0
    # PR_SET_PDEATHSIG in both modes, as the real engine sets it: it fires when the worker
    # *thread* that started the process ends, so the worker must start warm engines from a
    # thread that lives as long as it does (SpawnThread), not from a job's thread.
    die_with_parent()
    if sys.argv[1:2] == ["serve"]:
        return serve()
    args = dict(zip(sys.argv[2::2], sys.argv[3::2]))
    with open(args["--task"]) as f:
        task = json.load(f)
    return run_task(task, args["--workdir"], {"mode": "run", "pid": os.getpid(), "task_index": 1})


def serve():
    """The long-lived mode: one task line at a time on stdin, its events, then `end`."""
    index = 0
    for line in sys.stdin:
        index += 1
        request = json.loads(line)
        with open(request["task"]) as f:
            task = json.load(f)
        process = {"mode": "serve", "pid": os.getpid(), "task_index": index}
        code = run_task(task, request["workdir"], process)
        sys.stderr.flush()
        end = {"event": "end", "exit": code}
        if task["params"].get("recycle"):
            end["recycle"] = True
        sys.stdout.write(json.dumps(end) + "\n")
        sys.stdout.flush()
    return 0


def run_task(task, workdir, process):
    params = task["params"]
    print(f"test engine: {task['stage']} {params}", file=sys.stderr)

    verified = {}
    for stage, inp in (task.get("inputs") or {}).items():
        with open(inp["path"], "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        if digest != inp["sha256"]:
            emit("error", message=f"input {stage} does not match its sha256")
            return 1
        verified[stage] = digest

    state_dir = os.environ.get("TEST_ENGINE_STATE")
    fail_attempts = int(params.get("fail_attempts", 0))
    if fail_attempts and state_dir:
        counter = os.path.join(state_dir, task["task_id"] + ".failures")
        seen = int(open(counter).read()) if os.path.exists(counter) else 0
        if seen < fail_attempts:
            with open(counter, "w") as f:
                f.write(str(seen + 1))
            print(f"test engine: failing on purpose ({seen + 1}/{fail_attempts})", file=sys.stderr)
            emit("error", message="failing on purpose")
            return 3

    if os.environ.get("TEST_ENGINE_STALL_STAGE") == task["stage"]:
        print("test engine: stalling on purpose", file=sys.stderr)
        while True:
            emit("progress", epoch=1, epochs=1, step=0, loss=1.0)
            time.sleep(0.2)

    # silent_sleep: seconds without a byte of output (a long evaluation, say): only a signal
    # stops it, since no write can fail on a closed pipe.
    time.sleep(float(params.get("silent_sleep", 0)))

    sleep = float(params.get("sleep", 0))
    start = time.time()
    step = 0
    epochs = int(params.get("epochs", 0))
    while time.time() - start < sleep:
        step += 1
        if epochs:
            epoch = min(epochs, 1 + int((time.time() - start) / sleep * epochs))
            emit("progress", epoch=epoch, epochs=epochs, step=step, loss=1.0 / step)
            emit("metric", name="loss", value=1.0 / step, step=step)
        else:
            emit("progress", epoch=1, epochs=1, step=step, loss=1.0 / step)
        time.sleep(min(0.1, max(0.0, sleep - (time.time() - start))))

    spin = float(params.get("spin", 0))
    start = time.time()
    last = start
    while time.time() - start < spin:
        x = 0
        for k in range(20000):
            x += k * k
        if time.time() - last >= 1:
            last = time.time()
            emit("progress", epoch=1, epochs=1, step=int(last - start), loss=1.0)

    code = int(params.get("exit_code", 0))
    if code:
        emit("error", message=f"exiting with status {code} on request", invalid=(code == 2))
        print(f"test engine: exit {code} requested", file=sys.stderr)
        return code

    size = int(params.get("artifact_bytes", 0))
    if size:
        seed = hashlib.sha256(task["task_id"].encode()).digest()
        blob = (seed * (size // len(seed) + 1))[:size]
        path = os.path.join(workdir, "checkpoint.bin")
        with open(path, "wb") as f:
            f.write(blob)
        # "artifact_sha": "wrong" announces a hash the file does not have (the worker must refuse it).
        sha = "0" * 64 if params.get("artifact_sha") == "wrong" else hashlib.sha256(blob).hexdigest()
        emit("artifact", name="checkpoint", path="checkpoint.bin", sha256=sha, bytes=size)

    emit("result", metrics={"accuracy": float(params.get("value", 50.0)), "latency_sparse_ms": None},
         units={"accuracy": "% (test engine)"},
         details={"inputs_verified": verified, "pid": os.getpid(), "task_device": task.get("device"),
                  "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
                  "engine_process": process})
    return 0


if __name__ == "__main__":
    sys.exit(main())
