"""Runs a command and prints its exit, wall time and peak resident memory as one JSON line.

usage: python3 rusage_run.py STDOUT_FILE STDERR_FILE TIMEOUT_S COMMAND [ARG...]

The command is forked from this small process and reaped with wait4, whose rusage.ru_maxrss
(KiB on Linux) is its peak RSS. Why not from the test process itself: on Linux a process's
ru_maxrss also counts the address space it had before execve, i.e. the memory of the
process it was forked (or vfork-spawned) from, so every child of a large test process would
seem as large as the test. Forked from here, that floor is this interpreter's few MiB.
Used by Tests/SystemTests/BadSpecCorpusTests.swift. Standard library only.
"""
import json
import os
import signal
import sys
import time


def main():
    out_path, err_path, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    argv = sys.argv[4:]
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.dup2(os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 1)
            os.dup2(os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 2)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    timed_out = False
    while True:
        reaped, status, usage = os.wait4(pid, os.WNOHANG)
        if reaped == pid:
            break
        if time.monotonic() - started > timeout:
            os.kill(pid, signal.SIGKILL)
            _, status, usage = os.wait4(pid, 0)
            timed_out = True
            break
        time.sleep(0.002)
    wall = time.monotonic() - started
    print(json.dumps({
        "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "timed_out": timed_out,
        "wall_s": wall,
        "maxrss_kib": usage.ru_maxrss,
    }))


if __name__ == "__main__":
    main()
