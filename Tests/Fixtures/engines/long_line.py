#!/usr/bin/env python3
"""Misbehaving engine: prints one 50 MB line on stdout (no newline until the end), then a
result."""
import json
import sys

chunk = "x" * (1 << 20)
for _ in range(50):
    sys.stdout.write(chunk)
sys.stdout.write("\n")
print(json.dumps({"event": "result", "metrics": {"accuracy": 1.0}}), flush=True)
