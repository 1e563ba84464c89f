#!/usr/bin/env python3
"""Misbehaving engine: says it started, then hangs ignoring SIGTERM, so only the SIGKILL
after the worker's grace period ends it."""
import json
import os
import signal
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)
print(json.dumps({"event": "progress", "pid": os.getpid()}), flush=True)
while True:
    time.sleep(1)
