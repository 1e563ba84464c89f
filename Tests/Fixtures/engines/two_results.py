#!/usr/bin/env python3
"""Misbehaving engine: prints two result events (the contract allows exactly one), exits 0."""
import json

print(json.dumps({"event": "result", "metrics": {"accuracy": 1.0}}), flush=True)
print(json.dumps({"event": "result", "metrics": {"accuracy": 99.0}}), flush=True)
