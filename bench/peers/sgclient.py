"""A small long-lived client of sparsegrid's control socket (docs/protocol.md §5), for benchmarks.

One DEALER socket, kept open: requests are `["SG1", type, header, token]`, answers
`["SG1", "reply", header]`. The endpoint comes from `<state>/coordinator.json`, the token from
`<state>/control.token` (refused unless 64 lowercase hex characters, mode 0600 or stricter).
Every answer is checked before use: frame count, version, type, header size, JSON shape.

`RoundTrip` launches a one-task plan of the built-in null engine (a new task each time, so the
launch is never a reuse) and waits until its result is committed, either by reading the
database read-only (`wait="db"`) or by polling `status` (`wait="status"`).

    python sgclient.py --state DIR [--n 100] [--wait db|status]   # prints p50/p90/p99 in ms
"""

import argparse
import hashlib
import json
import os
import sqlite3
import stat
import statistics
import sys
import time

import zmq

VERSION = b"SG1"
# The CLI's cap on a reply header (Codec.parse's default, 4 MiB).
MAX_REPLY_BYTES = 4 << 20
TOKEN_HEX = 64


class ControlError(Exception):
    pass


def read_token(state):
    path = os.path.join(state, "control.token")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as e:
        raise ControlError(f"cannot read the control token {path}: {e.strerror}") from e
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode) or mode & 0o077:
            raise ControlError(
                f"{path} must be a regular file readable by its owner only (mode 0600)"
            )
        data = os.read(fd, TOKEN_HEX + 2)
    finally:
        os.close(fd)
    token = data.strip()
    if len(token) != TOKEN_HEX or any(c not in b"0123456789abcdef" for c in token):
        raise ControlError(f"{path} is not {TOKEN_HEX} lowercase hex characters")
    return token


def read_endpoint(state):
    path = os.path.join(state, "coordinator.json")
    try:
        with open(path, "rb") as f:
            info = json.loads(f.read(64 << 10))
    except (OSError, ValueError) as e:
        raise ControlError(f"no running coordinator described in {path}: {e}") from e
    endpoint = info.get("controlEndpoint") if isinstance(info, dict) else None
    if not isinstance(endpoint, str) or not endpoint.startswith("tcp://"):
        raise ControlError(f"{path} names no tcp:// control endpoint")
    return endpoint


class ControlClient:
    def __init__(self, state, endpoint=None, context=None):
        self.token = read_token(state)
        self.endpoint = endpoint or read_endpoint(state)
        self.context = context or zmq.Context.instance()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.MAXMSGSIZE, MAX_REPLY_BYTES + 1024)
        self.socket.connect(self.endpoint)

    def close(self):
        self.socket.close(0)

    def request(self, kind, header, timeout=30.0):
        """Sends one request and returns the reply's `body`; raises ControlError when refused."""
        body = json.dumps(header, separators=(",", ":")).encode()
        self.socket.send_multipart([VERSION, kind.encode(), body, self.token])
        if not self.socket.poll(int(timeout * 1000)):
            raise ControlError(
                f"no answer to `{kind}` from {self.endpoint} within {timeout} s"
            )
        frames = self.socket.recv_multipart()
        if len(frames) != 3:
            raise ControlError(f"a reply of {len(frames)} frames (expected 3)")
        if frames[0] != VERSION or frames[1] != b"reply":
            raise ControlError(
                f"not an SG1 reply: {frames[0][:8]!r} {frames[1][:32]!r}"
            )
        if len(frames[2]) > MAX_REPLY_BYTES:
            raise ControlError(
                f"a reply header of {len(frames[2])} bytes (cap {MAX_REPLY_BYTES})"
            )
        try:
            reply = json.loads(frames[2])
        except (ValueError, UnicodeDecodeError) as e:
            raise ControlError(f"a reply header that is not JSON: {e}") from e
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            raise ControlError("a reply header without a boolean `ok`")
        if not reply["ok"]:
            error = reply.get("error")
            raise ControlError(
                f"`{kind}` refused: {error if isinstance(error, str) else 'no reason given'}"
            )
        return reply.get("body")


def null_plan(sweep, index, nonce):
    """A one-task plan of the built-in null engine; the task id is new for each (nonce, index)."""
    task_id = hashlib.sha256(f"{sweep}\0{nonce}\0{index}".encode()).hexdigest()
    plan = {
        "name": sweep,
        "engine": "null",
        "context": {
            "data": {"dataset": "synthetic", "train": 8, "test": 8},
            "methods": {},
            "measure": None,
        },
        "tasks": [
            {
                "id": task_id,
                "stage": "work",
                "params": {"i": index},
                "inputs": {},
                "priority": 0,
            }
        ],
        "retries": 0,
        "device": "any",
        "reports": [],
        "specText": f"# bench/peers/sgclient.py: one null task ({nonce} #{index})\n",
    }
    return task_id, plan


class RoundTrip:
    """Launch one null task, wait until its result is committed; `wait` is "db" or "status"."""

    def __init__(
        self, state, wait="db", sweep="rt", poll_s=0.0002, timeout=30.0, fresh=False
    ):
        if wait not in ("db", "status"):
            raise ValueError(f"wait must be db or status, not {wait!r}")
        self.client = ControlClient(state)
        self.wait, self.sweep, self.poll_s, self.timeout = wait, sweep, poll_s, timeout
        # fresh: each trip launches a sweep of its own (NAME-K) instead of relaunching NAME with
        # one new task (which drops the previous trip's task from the plan).
        self.fresh = fresh
        self.current = sweep
        self.nonce = os.urandom(8).hex()
        self.index = 0
        self.last_launch = (
            None  # seconds until the launch's reply, of the last round trip
        )
        self.task_ids = []  # every task launched, for a check afterwards
        self.db = None
        if wait == "db":
            path = os.path.join(state, "sparsegrid.db")
            self.db = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, isolation_level=None
            )

    def close(self):
        self.client.close()
        if self.db is not None:
            self.db.close()

    def once(self):
        """One round trip; returns its seconds."""
        self.index += 1
        self.current = f"{self.sweep}-{self.index}" if self.fresh else self.sweep
        task_id, plan = null_plan(self.current, self.index, self.nonce)
        self.task_ids.append(task_id)
        start = time.perf_counter()
        summary = self.client.request("launch", {"plan": plan}, timeout=self.timeout)
        self.last_launch = time.perf_counter() - start
        if not isinstance(summary, dict) or summary.get("new") != 1:
            raise ControlError(
                f"launch of task {task_id} did not add one new task: {summary}"
            )
        deadline = start + self.timeout
        while not self.done(task_id):
            if time.perf_counter() > deadline:
                raise ControlError(
                    f"task {task_id} has no committed result after {self.timeout} s"
                )
            if self.poll_s:
                time.sleep(self.poll_s)
        return time.perf_counter() - start

    def done(self, task_id):
        if self.db is not None:
            row = self.db.execute(
                "SELECT 1 FROM results WHERE task_id = ?", (task_id,)
            ).fetchone()
            return row is not None
        status = self.client.request("status", {}, timeout=self.timeout)
        sweeps = status.get("sweeps") if isinstance(status, dict) else None
        if not isinstance(sweeps, list):
            raise ControlError("a status reply without `sweeps`")
        for sweep in sweeps:
            if isinstance(sweep, dict) and sweep.get("name") == self.current:
                counts = sweep.get("counts")
                if not isinstance(counts, dict):
                    raise ControlError("a status reply whose sweep has no `counts`")
                # Tasks of earlier launches are dropped from the plan and hidden: the sweep's
                # only open task is this one.
                return (
                    sum(counts.get(k, 0) for k in ("pending", "ready", "running")) == 0
                )
        return False


def percentiles(samples_s):
    ms = sorted(s * 1000 for s in samples_s)

    def at(p):
        return ms[min(len(ms) - 1, int(p * len(ms)))]

    return {
        "p50": at(0.5),
        "p90": at(0.9),
        "p99": at(0.99),
        "mean": statistics.fmean(ms),
        "n": len(ms),
    }


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--state", required=True, help="the running coordinator's state directory"
    )
    parser.add_argument("--n", type=int, default=100, help="round trips (1..100000)")
    parser.add_argument("--wait", choices=["db", "status"], default="db")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="a new sweep per trip (default: relaunch one sweep)",
    )
    args = parser.parse_args()
    if not 1 <= args.n <= 100_000 or not 0 <= args.warmup <= 1000:
        parser.error("--n must be 1..100000 and --warmup 0..1000")
    rt = RoundTrip(args.state, wait=args.wait, fresh=args.fresh)
    try:
        for _ in range(args.warmup):
            rt.once()
        print(json.dumps(percentiles([rt.once() for _ in range(args.n)])))
    finally:
        rt.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
