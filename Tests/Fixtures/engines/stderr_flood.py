#!/usr/bin/env python3
"""Misbehaving engine: writes 20 MB to stderr, then a last marker line, then its result."""
import json
import sys

line = "noise " * 170 + "\n"  # about 1 KiB
for _ in range(20 * 1024):
    sys.stderr.write(line)
sys.stderr.write("END OF FLOOD\n")
sys.stderr.flush()
print(json.dumps({"event": "result", "metrics": {"accuracy": 1.0}}), flush=True)
