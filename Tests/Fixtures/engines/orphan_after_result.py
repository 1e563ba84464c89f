#!/usr/bin/env python3
"""Misbehaving engine: starts a long-lived child (`sleep 60`) that inherits its stdout,
prints its result and exits 0 at once, leaving the child behind."""
import json
import os
import subprocess
import time

child = subprocess.Popen(["sleep", "60"])
print(json.dumps({"event": "progress", "pid": os.getpid(), "child": child.pid}), flush=True)
print(json.dumps({"event": "result", "metrics": {"accuracy": 1.0},
                  "details": {"child": child.pid, "exiting_at": time.time()}}), flush=True)
os._exit(0)
