#!/usr/bin/env python3
"""Misbehaving engine: reports an artifact that is not a regular file inside its work
directory. Task params: `outside` (a file's absolute path) and `mode`:
  absolute   the outside file's absolute path
  parent     a relative path climbing out with ../
  symlink    a link inside the work directory pointing at the outside file
  fifo       a named pipe inside the work directory (not a regular file)
then a result, exit 0."""
import hashlib
import json
import os
import sys

args = dict(zip(sys.argv[2::2], sys.argv[3::2]))
workdir = args["--workdir"]
with open(args["--task"]) as f:
    params = json.load(f)["params"]
outside, mode = params.get("outside", ""), params["mode"]
if mode == "absolute":
    path = outside
elif mode == "parent":
    path = os.path.relpath(outside, workdir)
elif mode == "symlink":
    os.symlink(outside, os.path.join(workdir, "link.bin"))
    path = "link.bin"
else:
    os.mkfifo(os.path.join(workdir, "pipe.bin"))
    path = "pipe.bin"
event = {"event": "artifact", "name": "checkpoint", "path": path}
if outside:
    with open(outside, "rb") as f:
        event["sha256"] = hashlib.sha256(f.read()).hexdigest()
print(json.dumps(event), flush=True)
print(json.dumps({"event": "result", "metrics": {"accuracy": 1.0}}), flush=True)
