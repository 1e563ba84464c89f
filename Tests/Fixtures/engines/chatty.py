#!/usr/bin/env python3
"""Misbehaving engine: prints a line that is not JSON and an event of a kind the contract
does not define on stdout, then fails (exit 3)."""
import json
import sys

print("loading weights from a library that prints to stdout", flush=True)
print(json.dumps({"event": "checkpointed", "step": 3}), flush=True)
print("chatty engine: giving up", file=sys.stderr, flush=True)
sys.exit(3)
