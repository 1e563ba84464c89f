#!/usr/bin/env python3
"""Engine that leaves every signal as it found it: says it started (with the signals it
has blocked and ignored, from /proc/self/status), then sleeps 60 s. If it was started with
SIGTERM blocked or ignored, SIGTERM does nothing to it."""
import json
import os
import time

status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
print(json.dumps({"event": "progress", "pid": os.getpid(), "sig_blocked": status["SigBlk"].strip(),
                  "sig_ignored": status["SigIgn"].strip()}), flush=True)
time.sleep(60)
