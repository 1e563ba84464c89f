#!/usr/bin/env python3
"""Misbehaving engine: starts a child (`sleep 60`) that inherits its stdout, both ignoring
SIGTERM, says so (a progress event, and pids.json in its working directory), then hangs.
Killing only the engine leaves the child holding stdout open."""
import json
import os
import signal
import subprocess
import sys
import time

if sys.argv[1:2] == ["describe"]:
    print(json.dumps({"engine": "hang", "version": "1"}))
    sys.exit(0)

signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by the child across exec
child = subprocess.Popen(["sleep", "60"])
pids = {"pid": os.getpid(), "child": child.pid}
with open("pids.json", "w") as f:
    json.dump(pids, f)
print(json.dumps({"event": "progress", **pids}), flush=True)
while True:
    time.sleep(1)
