"""The JSON-lines side of engine/CONTRACT.md: events on stdout, humans on stderr."""

import json
import math
import sys


class InvalidTask(ValueError):
    """The task itself is wrong (unknown model, bad parameter): exit 2, never retried."""


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
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def log(message: str) -> None:
    """Human-readable progress on stderr (the worker keeps its tail)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
