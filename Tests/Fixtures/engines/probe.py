#!/usr/bin/env python3
"""Engine that reports what it inherited, in its result's details: the descriptors open in
it (number -> what they point at, leaving out the one listing /proc/self/fd), its signal
mask and ignored signals, and its process group and session."""
import json
import os
import sys

if sys.argv[1:2] == ["describe"]:
    print(json.dumps({"engine": "probe", "version": "1"}))
    sys.exit(0)

fd_dir = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY)
fds = {}
for name in os.listdir(fd_dir):
    if int(name) == fd_dir:
        continue
    try:
        fds[name] = os.readlink(name, dir_fd=fd_dir)
    except OSError:
        pass
os.close(fd_dir)
status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
details = {"fds": fds, "sig_blocked": status["SigBlk"].strip(), "sig_ignored": status["SigIgn"].strip(),
           "pid": os.getpid(), "pgid": os.getpgid(0), "sid": os.getsid(0)}
print(json.dumps({"event": "result", "metrics": {"accuracy": 1.0}, "details": details}), flush=True)
