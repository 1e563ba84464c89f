"""The JSON-lines side of engine/CONTRACT.md: events on stdout, humans on stderr."""

import json
import math
import os
import sys


class InvalidTask(ValueError):
    """The task itself is wrong (unknown model, bad parameter): exit 2, never retried."""


class TaskFailed(RuntimeError):
    """The task could not run here (missing data, corrupt input): exit 1, may be retried.

    The message is the whole story, so the CLI prints no traceback for it.
    """


# Where events go. None means "sys.stdout as it is now", which keeps pytest's capsys working;
# the CLI points it at the real fd 1 once it has moved everything else off it.
_events = None


def _clean(value):
    # JSON has no NaN/inf; a metric that is not a finite number is reported as null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def emit(event: str, **fields) -> None:
    """Writes one event as a single JSON line on stdout and flushes it."""
    line = json.dumps(_clean({"event": event, **fields}), separators=(",", ":"), allow_nan=False)
    stream = _events if _events is not None else sys.stdout
    stream.write(line + "\n")
    stream.flush()


def log(message: str) -> None:
    """Human-readable progress on stderr (the worker keeps its tail)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def claim_stdout() -> None:
    """Reserves stdout for events: any other write to it, ours or a library's, lands on stderr.

    A stray print (or a C library writing to fd 1) in the middle of the event stream would
    break the worker's line parser, so fd 1 is duplicated for events and then pointed at stderr.
    """
    global _events
    sys.stdout.flush()
    events_fd = os.dup(1)
    os.dup2(2, 1)
    _events = os.fdopen(events_fd, "w", encoding="utf-8", buffering=1)
    sys.stdout = sys.stderr


def die_with_parent() -> None:
    """Ends this engine when its worker dies (Linux PR_SET_PDEATHSIG), so a worker killed
    with SIGKILL leaves no orphaned training behind to compete with the task's next attempt."""
    import ctypes
    import os
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)
