#!/usr/bin/env python3
"""Misbehaving engine: starts a child (`sleep 60`) in a session of its own (out of the
engine's process group, so the worker cannot kill it with the group) that inherits its
stdout, prints its result and exits 0."""
import json
import os
import subprocess
import time

child = subprocess.Popen(["sleep", "60"], start_new_session=True)
print(json.dumps({"event": "result", "metrics": {"accuracy": 1.0},
                  "details": {"child": child.pid, "exiting_at": time.time()}}), flush=True)
os._exit(0)
