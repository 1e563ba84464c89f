"""A sparsegrid engine for benchmarks: each task sleeps `params.sleep_ms` and reports it.

Standard library only. Speaks engine/CONTRACT.md:

    python3 sleep_engine.py describe
    python3 sleep_engine.py check --task TASK.json
    python3 sleep_engine.py run --task TASK.json --workdir DIR
    python3 sleep_engine.py serve        # long-lived mode: one task line at a time on stdin

`describe` declares `"serve": {"version": 1}`, so a worker that knows the long-lived mode runs
one process per slot (tasks one after another from stdin, each ended by an `end` line); a
worker that does not (or `--engine-reuse 0`) starts `run` once per task.
"""

import json
import os
import sys
import time

VERSION = "1"
# Nothing a benchmark task needs is larger; a bigger file or line is refused, not read whole.
MAX_TASK_BYTES = 1 << 20
MAX_LINE_BYTES = 64 << 10
MAX_SLEEP_MS = 600_000


class InvalidTask(Exception):
    """The task itself is wrong (exit 2, never retried)."""


def emit(event):
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def load_task(path):
    if not isinstance(path, str) or not path:
        raise InvalidTask("the task path must be a non-empty string")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_TASK_BYTES + 1)
    except OSError as e:
        raise OSError(f"cannot read the task file {path}: {e.strerror}") from e
    if len(data) > MAX_TASK_BYTES:
        raise InvalidTask(f"the task file {path} is over {MAX_TASK_BYTES} bytes")
    try:
        task = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidTask(f"the task file {path} is not JSON: {e}") from e
    if not isinstance(task, dict):
        raise InvalidTask("the task file must hold a JSON object")
    params = task.get("params")
    if not isinstance(params, dict):
        raise InvalidTask("the task has no `params` object")
    ms = params.get("sleep_ms", 0)
    if (
        isinstance(ms, bool)
        or not isinstance(ms, (int, float))
        or not 0 <= ms <= MAX_SLEEP_MS
    ):
        raise InvalidTask(
            f"parameter sleep_ms must be a number from 0 to {MAX_SLEEP_MS}; got {ms!r}"
        )
    return task, float(ms)


def peak_rss_kib():
    """VmHWM of this process (KiB), or None where /proc does not say."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def reset_peak_rss():
    """Resets VmHWM, so a warm process reports each task's own peak."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def run_task(path, workdir, mode, index):
    """Runs one task; prints its events; returns the exit status `run` would have."""
    try:
        _, ms = load_task(path)
        if not os.path.isdir(workdir):
            raise InvalidTask(f"the work directory {workdir} does not exist")
    except InvalidTask as e:
        emit({"event": "error", "message": str(e), "invalid": True})
        return 2
    except OSError as e:
        emit({"event": "error", "message": str(e)})
        return 1
    start = time.perf_counter()
    time.sleep(ms / 1000.0)
    slept = (time.perf_counter() - start) * 1000.0
    emit(
        {
            "event": "result",
            "metrics": {"slept_ms": round(slept, 3)},
            "units": {
                "slept_ms": "ms: wall time of time.sleep(sleep_ms), time.perf_counter"
            },
            "details": {
                "engine": "sleep",
                "engine_version": VERSION,
                "python": sys.version.split()[0],
                "sleep_ms": ms,
                "peak_rss_kib": peak_rss_kib(),
                "engine_process": {
                    "mode": mode,
                    "pid": os.getpid(),
                    "task_index": index,
                },
            },
        }
    )
    return 0


def serve():
    """Long-lived mode: task lines in on stdin; each task's events, then an `end` line, out."""
    home = os.getcwd()
    index = 0
    stdin = sys.stdin.buffer
    while True:
        line = stdin.readline(MAX_LINE_BYTES + 1)
        if not line:
            return 0
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            print(
                f"sleep engine: a task line over {MAX_LINE_BYTES} bytes; stopping",
                file=sys.stderr,
            )
            return 1
        index += 1
        status = 1
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("not a JSON object")
            path, workdir = request.get("task"), request.get("workdir")
            if not isinstance(path, str) or not isinstance(workdir, str) or not workdir:
                raise ValueError("`task` and `workdir` must be strings")
        except (ValueError, UnicodeDecodeError) as e:
            emit({"event": "error", "message": f"bad task line from the worker: {e}"})
        else:
            reset_peak_rss()
            try:
                os.chdir(workdir)
            except OSError:
                pass  # run_task reports a missing work directory
            status = run_task(path, workdir, "serve", index)
            os.chdir(home)
        sys.stderr.flush()
        end = {"event": "end", "exit": status}
        if status != 0:
            end["recycle"] = True
        emit(end)


def describe():
    emit_obj = {
        "engine": "sleep",
        "version": VERSION,
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "models": [],
        "methods": [],
        "datasets": [],
        "stage_params": {"sleep_ms": 0},
        "serve": {"version": 1},
    }
    sys.stdout.write(json.dumps(emit_obj) + "\n")
    sys.stdout.flush()
    return 0


def option(args, name):
    if name in args:
        i = args.index(name)
        if i + 1 < len(args):
            return args[i + 1]
    return None


def main(argv):
    if not argv:
        print(
            "usage: sleep_engine.py describe | check --task T | run --task T --workdir D | serve",
            file=sys.stderr,
        )
        return 1
    command, rest = argv[0], argv[1:]
    if command == "describe":
        return describe()
    if command == "serve":
        return serve()
    task = option(rest, "--task")
    if task is None:
        print(f"sleep engine: `{command}` needs --task TASK.json", file=sys.stderr)
        return 1
    if command == "check":
        try:
            load_task(task)
        except InvalidTask as e:
            print(f"invalid task: {e}", file=sys.stderr)
            return 2
        except OSError as e:
            print(str(e), file=sys.stderr)
            return 1
        print("ok")
        return 0
    if command == "run":
        workdir = option(rest, "--workdir")
        if workdir is None:
            print("sleep engine: `run` needs --workdir DIR", file=sys.stderr)
            return 1
        return run_task(task, workdir, "run", 1)
    print(f"sleep engine: unknown command {command!r}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
