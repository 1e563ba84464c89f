#!/usr/bin/env python3
"""A long-lived (`serve`) engine whose stream lies on request (the task param `lie`):

  (none)            an honest task: a progress event, a result, `end` exit 0
  line_after_end    the result and `end`, then a progress line (after `end`, before any task)
  double_end        the result and `end` twice
  late_line         the result and `end`, then, 0.3 s later, a line (between tasks)
  exit_without_end  the result, then exits 0 without `end`
  exit_mid          a progress event, then exits 3
  close_stdout      the result, then closes stdout and sleeps (the process lives on)
  bad_exit          `end` with "exit": 300
  string_exit       `end` with "exit": "0"
  bad_recycle       `end` with "recycle": "yes"
  close_stdin       closes its stdin, then the result and `end` exit 0 (the next task line
                    meets a closed pipe)
  hang              sleeps (until stopped), writing a child pid to stderr first

Each task prints "liar task N lie=L" on stderr before its events. details: pid, task_index.
`describe` declares serve.
"""

import json
import os
import subprocess
import sys
import time


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    if sys.argv[1:2] == ["describe"]:
        print(json.dumps({"engine": "liar", "serve": {"version": 1}}))
        return 0
    index = 0
    stdin = sys.stdin
    while True:
        line = stdin.readline()
        if not line:
            return 0
        index += 1
        request = json.loads(line)
        with open(request["task"]) as f:
            task = json.load(f)
        lie = task["params"].get("lie", "")
        sys.stderr.write(f"liar task {index} lie={lie}\n")
        sys.stderr.flush()
        result = {
            "event": "result",
            "metrics": {"accuracy": 1.0},
            "details": {"pid": os.getpid(), "task_index": index},
        }
        out({"event": "progress", "epoch": 1, "epochs": 1, "step": index, "loss": 1.0})
        if lie == "exit_mid":
            os._exit(3)
        if lie == "hang":
            child = subprocess.Popen(["sleep", "60"])
            sys.stderr.write(f"child {child.pid}\n")
            sys.stderr.flush()
            out({"event": "progress", "epoch": 1, "epochs": 1, "step": 0, "child": child.pid})
            time.sleep(3600)
        if lie == "close_stdin":
            os.close(0)
        out(result)
        if lie == "exit_without_end":
            os._exit(0)
        if lie == "close_stdout":
            os.close(1)
            time.sleep(3600)
        end = {"event": "end", "exit": 0}
        if lie == "bad_exit":
            end["exit"] = 300
        if lie == "string_exit":
            end["exit"] = "0"
        if lie == "bad_recycle":
            end["recycle"] = "yes"
        if lie == "line_after_end":
            sys.stdout.write(json.dumps(end) + "\n" + json.dumps({"event": "progress", "step": 9}) + "\n")
            sys.stdout.flush()
            continue
        if lie == "double_end":
            sys.stdout.write(json.dumps(end) + "\n" + json.dumps(end) + "\n")
            sys.stdout.flush()
            continue
        out(end)
        if lie == "late_line":
            time.sleep(0.3)
            out({"event": "progress", "step": 10})
        if lie == "close_stdin":
            time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
