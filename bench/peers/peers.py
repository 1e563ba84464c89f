"""sparsegrid beside Ray, Dask distributed and ipyparallel on this machine, interleaved in one run.

Three workloads per system and worker count W, each system's clean start in a process of its own:

1. no-op throughput: TASKS no-op tasks submitted at once; tasks/s from submission to the last
   *durable* result (peers: the driver commits each batch of results it receives into SQLite,
   WAL, synchronous=FULL; sparsegrid: `sparsegrid run` of the built-in null engine, from the
   sweep's creation to the last committed result), and for the peers also to the last result in
   driver memory (not durable);
2. TRIPS sequential submit-and-wait round trips through each system's client (sparsegrid:
   bench/peers/sgclient.py on the control socket), p50/p90/p99 ms;
3. SLEEP_TASKS tasks of SLEEP_MS each on W slots: efficiency = ideal (tasks x ms / W) / actual
   (sparsegrid: bench/peers/sleep_engine.py through a worker, warm and/or per process).

Order: for each repetition, for each W, for each system (SYSTEMS order): its three workloads.
Environment: WORKERS ("2 8"), REPEAT (3), TASKS (20000), TRIPS (1000), SLEEP_TASKS (2000),
SLEEP_MS (5), SYSTEMS ("sparsegrid ray dask ipyparallel"), BIN (.build/release/sparsegrid),
SLOTS (128: slots per sparsegrid worker for the null engine), OUT (the Markdown file; default
bench/results/peers-<UTC date-time>.md), CHILD_TIMEOUT (1800 s per system and W).
Exits non-zero if any system fails or any result is missing.
"""

import json
import os
import platform
import queue
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VENV_PYTHON = os.path.join(HERE, ".venv", "bin", "python")
PEERS = ("ray", "dask", "ipyparallel")
STATUS_TRIPS = 100


def env_int(name, default, lo, hi):
    raw = os.environ.get(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        sys.exit(f"{name} must be an integer from {lo} to {hi}; got {raw!r}")
    if not lo <= value <= hi:
        sys.exit(f"{name} must be an integer from {lo} to {hi}; got {value}")
    return value


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# ---------------------------------------------------------------------------------------------
# Durable results on the driver side (the peers)
# ---------------------------------------------------------------------------------------------


class DurableSink:
    """Results into SQLite: WAL, synchronous=FULL, one transaction per `commit` call."""

    def __init__(self, path):
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        mode = self.db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        self.db.execute("PRAGMA synchronous=FULL")
        sync = self.db.execute("PRAGMA synchronous").fetchone()[0]
        if mode != "wal" or sync != 2:
            raise RuntimeError(
                f"SQLite did not take WAL + synchronous=FULL (got {mode}, {sync})"
            )
        self.db.execute(
            "CREATE TABLE results (task INTEGER PRIMARY KEY, value TEXT, received REAL NOT NULL)"
        )
        self.batches = 0

    def commit(self, rows):
        now = time.time()
        self.db.execute("BEGIN")
        self.db.executemany(
            "INSERT INTO results VALUES (?, ?, ?)",
            [(i, json.dumps(v), now) for i, v in rows],
        )
        self.db.execute("COMMIT")
        self.batches += 1

    def check(self, n):
        count, lo, hi = self.db.execute(
            "SELECT count(*), min(task), max(task) FROM results"
        ).fetchone()
        if count != n or (n and (lo, hi) != (0, n - 1)):
            raise RuntimeError(f"{count} results stored of {n} (tasks {lo}..{hi})")

    def close(self):
        self.db.close()


def drain(q, first):
    """`first` and everything else already in `q`."""
    items = [first]
    while True:
        try:
            items.append(q.get_nowait())
        except queue.Empty:
            return items


def collect(futures, fetch, n, sink):
    """Waits for `futures` (concurrent.futures-like, in task order); returns the times of the
    last value in driver memory and of the last commit (time.perf_counter).

    A completion callback on each future queues its index. The receiving thread blocks for one
    index, takes every other index already queued, fetches those values in one call
    (`fetch(list) -> values`) and hands the batch to the writing thread. The writing thread
    commits, in one transaction, every batch handed over since its last commit (a group commit:
    while one fsync runs, the next batches queue up), so receiving never waits for a disk.
    """
    done, batches = queue.SimpleQueue(), queue.SimpleQueue()
    for i, f in enumerate(futures):
        f.add_done_callback(lambda _f, i=i: done.put(i))
    committed = {"n": 0, "at": None, "error": None}

    def write():
        try:
            while committed["n"] < n:
                rows = [
                    row
                    for batch in drain(batches, batches.get(timeout=600))
                    for row in batch
                ]
                sink.commit(rows)
                committed["n"] += len(rows)
            committed["at"] = time.perf_counter()
        except Exception as e:  # noqa: BLE001 - reported by the receiving thread
            committed["error"] = e

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    received = 0
    last_memory = None
    while received < n:
        batch = drain(done, done.get(timeout=600))
        values = fetch([futures[i] for i in batch])
        last_memory = time.perf_counter()
        batches.put(list(zip(batch, values, strict=True)))
        received += len(batch)
    writer.join(timeout=600)
    if committed["error"] is not None or committed["at"] is None:
        raise RuntimeError(
            f"the writing thread failed: {committed['error'] or 'it did not finish'}"
        )
    return last_memory, committed["at"]


# ---------------------------------------------------------------------------------------------
# The peers, each in a child process: start, warm up, the three workloads, loopback check, stop
# ---------------------------------------------------------------------------------------------


def noop(i):
    return i


def sleep_task(i, ms):
    import time  # ipyparallel ships the function without this module's globals

    time.sleep(ms / 1000.0)
    return i


def descendants(root):
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    seen, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(children.get(pid, []))
    return seen


def listeners(pids):
    """TCP/UDP sockets listening in processes `pids`: [(address, pid)], from `ss -ltnupH`."""
    out = subprocess.run(
        ["ss", "-ltnupH"], capture_output=True, text=True, check=True
    ).stdout
    found = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        local = fields[4] if fields[0] in ("tcp", "udp") else fields[3]
        for pid in re.findall(r"pid=(\d+)", line):
            if int(pid) in pids:
                found.append((local, int(pid)))
    return found


def loopback(address):
    host = address.rsplit(":", 1)[0].strip("[]")
    return (
        host.startswith("127.")
        or host in ("::1", "::ffff:127.0.0.1")
        or host.startswith("::ffff:127.")
    )


def check_loopback(root):
    found = listeners(descendants(root))
    bad = sorted({a for a, _ in found if not loopback(a)})
    if bad:
        raise RuntimeError(f"listening on non-loopback addresses: {', '.join(bad)}")
    return len(found)


def percentiles(samples_s):
    ms = sorted(s * 1000 for s in samples_s)
    return {
        p: ms[min(len(ms) - 1, int(q * len(ms)))]
        for p, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
    }


class Ray:
    def __init__(self, w):
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
        import ray

        self.ray = ray
        ray.init(
            address=None,
            _node_ip_address="127.0.0.1",
            include_dashboard=False,
            num_cpus=w,
            object_store_memory=512 << 20,
            log_to_driver=False,
            configure_logging=False,
        )
        self.noop = ray.remote(noop)
        self.sleep = ray.remote(sleep_task)

    def submit_noop(self, n):
        return [self.noop.remote(i).future() for i in range(n)]

    def submit_sleep(self, n, ms):
        return [self.sleep.remote(i, ms).future() for i in range(n)]

    def fetch(self, futures):
        return [f.result() for f in futures]

    def round_trip(self, i):
        return self.ray.get(self.noop.remote(i))

    def stop(self):
        self.ray.shutdown()


class Dask:
    def __init__(self, w):
        import logging

        from dask.distributed import Client, LocalCluster

        self.cluster = LocalCluster(
            n_workers=w,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            protocol="tcp",
            dashboard_address="127.0.0.1:0",
            worker_dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        self.client = Client(self.cluster)

    def submit_noop(self, n):
        return self.client.map(noop, range(n), pure=False)

    def submit_sleep(self, n, ms):
        return self.client.map(sleep_task, range(n), [ms] * n, pure=False)

    def fetch(self, futures):
        return self.client.gather(futures)

    def round_trip(self, i):
        return self.client.submit(noop, i, pure=False).result()

    def stop(self):
        self.client.close()
        self.cluster.close()


class IPyParallel:
    def __init__(self, w):
        import logging

        import ipyparallel as ipp

        self.cluster = ipp.Cluster(
            n=w, controller_ip="127.0.0.1", engine_timeout=300, log_level=logging.ERROR
        )
        self.rc = self.cluster.start_and_connect_sync(activate=False)
        self.rc.wait_for_engines(w, timeout=300)
        self.view = self.rc.load_balanced_view()

    def submit_noop(self, n):
        return [self.view.apply_async(noop, i) for i in range(n)]

    def submit_sleep(self, n, ms):
        return [self.view.apply_async(sleep_task, i, ms) for i in range(n)]

    def fetch(self, futures):
        return [f.get() for f in futures]

    def round_trip(self, i):
        return self.view.apply_sync(noop, i)

    def stop(self):
        self.rc.close()
        self.cluster.stop_cluster_sync()


def peer_child(system, w, cfg, work):
    cls = {"ray": Ray, "dask": Dask, "ipyparallel": IPyParallel}[system]
    started = time.perf_counter()
    peer = cls(w)
    out = {"system": system, "w": w, "start_s": time.perf_counter() - started}
    try:
        # Warm-up: every worker process up and its function loaded (not timed).
        warm = peer.submit_noop(4 * w)
        if peer.fetch(warm) != list(range(4 * w)):
            raise RuntimeError("warm-up returned wrong values")

        n = cfg["tasks"]
        sink = DurableSink(os.path.join(work, f"{system}-{w}-noop.db"))
        t0 = time.perf_counter()
        futures = peer.submit_noop(n)
        submitted = time.perf_counter()
        memory, durable = collect(futures, peer.fetch, n, sink)
        sink.check(n)
        out["noop"] = {
            "tasks": n,
            "durable_s": durable - t0,
            "memory_s": memory - t0,
            "submit_s": submitted - t0,
            "batches": sink.batches,
        }
        sink.close()
        del futures

        trips = []
        for i in range(5):
            peer.round_trip(i)
        for i in range(cfg["trips"]):
            t = time.perf_counter()
            if peer.round_trip(i) != i:
                raise RuntimeError("a round trip returned a wrong value")
            trips.append(time.perf_counter() - t)
        out["trip"] = percentiles(trips)
        out["trip"]["n"] = len(trips)

        n, ms = cfg["sleep_tasks"], cfg["sleep_ms"]
        sink = DurableSink(os.path.join(work, f"{system}-{w}-sleep.db"))
        t0 = time.perf_counter()
        futures = peer.submit_sleep(n, ms)
        memory, durable = collect(futures, peer.fetch, n, sink)
        sink.check(n)
        out["sleep"] = {
            "tasks": n,
            "ms": ms,
            "slots": w,
            "durable_s": durable - t0,
            "memory_s": memory - t0,
        }
        sink.close()

        out["listeners_checked"] = check_loopback(os.getpid())
    finally:
        peer.stop()
    return out


# ---------------------------------------------------------------------------------------------
# sparsegrid in a child process: `run` of the null engine, sgclient round trips, the sleep engine
# ---------------------------------------------------------------------------------------------


def write_spec(path, name, engine, n, params):
    with open(path, "w") as f:
        f.write(
            f"name: {name}\nengine: {engine}\ndata: {{dataset: synthetic, train: 8, test: 8}}\n"
        )
        f.write("grid:\n  i: [" + ", ".join(str(i) for i in range(n)) + "]\n")
        f.write(f"stages:\n  work:\n    params: {json.dumps(params)}\nretries: 0\n")


def sg_run(binary, spec, state, log, args):
    with open(log, "w") as f:
        proc = subprocess.run(
            [binary, "run", spec, "--state", state, "--plain", "--no-http"] + args,
            stdout=f,
            stderr=subprocess.STDOUT,
        )
    if proc.returncode != 0:
        with open(log) as f:
            tail = f.read()[-3000:]
        raise RuntimeError(
            f"`sparsegrid run {os.path.basename(spec)}` exited {proc.returncode}:\n{tail}"
        )
    db = sqlite3.connect(
        f"file:{os.path.join(state, 'sparsegrid.db')}?mode=ro", uri=True
    )
    try:
        launched = db.execute("SELECT created_at FROM sweeps").fetchone()[0]
        n, first, last = db.execute(
            "SELECT count(*), min(started_at), max(ended_at) FROM attempts WHERE outcome = 'succeeded'"
        ).fetchone()
        stored, last_result = db.execute(
            "SELECT count(*), max(created_at) FROM results"
        ).fetchone()
        modes = {}
        for (details,) in db.execute("SELECT details_json FROM results"):
            parsed = json.loads(details) if details else None
            proc_info = (
                parsed.get("engine_process") if isinstance(parsed, dict) else None
            )
            mode = proc_info.get("mode") if isinstance(proc_info, dict) else None
            modes[mode or "none"] = modes.get(mode or "none", 0) + 1
    finally:
        db.close()
    return {
        "tasks": n,
        "stored": stored,
        "durable_s": max(last, last_result) - launched,
        "first_assign_s": max(last, last_result) - first,
        "modes": modes,
    }


def wait_for_file(path, proc, what, timeout=60):
    deadline = time.time() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited {proc.returncode} before writing {path}")
        if time.time() > deadline:
            raise RuntimeError(f"{what} wrote no {path} within {timeout} s")
        time.sleep(0.05)


def sg_round_trips(binary, w, cfg, work):
    sys.path.insert(0, HERE)
    import sgclient

    state = os.path.join(work, "rt-state")
    procs = []
    logs = []
    try:
        log = open(os.path.join(work, "rt-coordinator.log"), "w")
        logs.append(log)
        any_port = "tcp://127.0.0.1:*"
        coordinator = subprocess.Popen(
            [
                binary,
                "coordinator",
                "--state",
                state,
                "--bind",
                any_port,
                "--data",
                any_port,
                "--control",
                any_port,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.append(coordinator)
        wait_for_file(
            os.path.join(state, "coordinator.json"), coordinator, "the coordinator"
        )
        with open(os.path.join(state, "coordinator.json")) as f:
            endpoint = json.load(f)["workerEndpoint"]
        for k in range(w):
            log = open(os.path.join(work, f"rt-worker-{k}.log"), "w")
            logs.append(log)
            procs.append(
                subprocess.Popen(
                    [
                        binary,
                        "worker",
                        "--coordinator",
                        endpoint,
                        "--slots",
                        "1",
                        "--id",
                        f"rt-{k}",
                    ]
                    + ["--cache", os.path.join(work, f"rt-cache-{k}"), "--no-describe"],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        probe = sgclient.ControlClient(state)
        deadline = time.time() + 120
        while True:
            status = probe.request("status", {})
            alive = [
                x
                for x in status.get("workers", [])
                if isinstance(x, dict) and x.get("alive")
            ]
            if len(alive) >= w:
                break
            if time.time() > deadline:
                raise RuntimeError(
                    f"{len(alive)} of {w} workers registered within 120 s"
                )
            time.sleep(0.1)
        probe.close()
        # The two ways of waiting for a result, alternated trip by trip (same load for both).
        # Each trip is a one-task sweep of its own: relaunching one sweep with a new task costs
        # more with every earlier trip (the launch rewrites every task the plan dropped).
        clients = {
            "db": sgclient.RoundTrip(state, wait="db", sweep="rt-db", fresh=True)
        }
        clients["status"] = sgclient.RoundTrip(
            state, wait="status", sweep="rt-status", fresh=True
        )
        samples = {k: [] for k in clients}
        launches = []
        for _ in range(5):
            for c in clients.values():
                c.once()
        # `status` answers with every sweep, so polling it slows as the trips' sweeps pile up:
        # it runs alongside the first STATUS_TRIPS trips only (enough to see which is faster).
        for i in range(cfg["trips"]):
            for k, c in clients.items():
                if k == "status" and i >= STATUS_TRIPS:
                    continue
                samples[k].append(c.once())
                launches.append(c.last_launch)
        for c in clients.values():
            c.close()
        # Every trip's result, whichever way it was waited for, is in the database.
        db = sqlite3.connect(
            f"file:{os.path.join(state, 'sparsegrid.db')}?mode=ro", uri=True
        )
        try:
            stored = {row[0] for row in db.execute("SELECT task_id FROM results")}
            for k, c in clients.items():
                found = len(stored.intersection(c.task_ids))
                if found != len(c.task_ids):
                    raise RuntimeError(
                        f"round trips ({k}): {found} results of {len(c.task_ids)} tasks"
                    )
        finally:
            db.close()
        result = {}
        for k, s in samples.items():
            result[k] = percentiles(s)
            result[k]["n"] = len(s)
        result["launch"] = percentiles(launches)
        result["listeners_checked"] = check_loopback(os.getpid())
        return result
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for log in logs:
            log.close()


def sg_child(w, cfg, work):
    binary = cfg["bin"]
    out = {"system": "sparsegrid", "w": w}
    spec = os.path.join(work, "null.yaml")
    write_spec(spec, "noop", "null", cfg["tasks"], {})
    r = sg_run(
        binary,
        spec,
        os.path.join(work, "noop-state"),
        os.path.join(work, "noop.log"),
        ["--workers", str(w), "--slots", str(cfg["slots"])],
    )
    if r["tasks"] != cfg["tasks"] or r["stored"] != cfg["tasks"]:
        raise RuntimeError(
            f"null engine: {r['tasks']} succeeded, {r['stored']} stored, of {cfg['tasks']}"
        )
    out["noop"] = r

    out["trip"] = sg_round_trips(binary, w, cfg, work)

    # The sleep engine through `run`: the worker's default (warm when the engine and the worker
    # both speak the long-lived mode), and per process (--engine-reuse 0) when the binary has it.
    python = os.path.realpath(
        sys._base_executable if hasattr(sys, "_base_executable") else sys.executable
    )
    engine = f"sleep={python} -I -S {os.path.join(HERE, 'sleep_engine.py')}"
    spec = os.path.join(work, "sleep.yaml")
    write_spec(
        spec, "sleep", "sleep", cfg["sleep_tasks"], {"sleep_ms": cfg["sleep_ms"]}
    )
    variants = {"default": []}
    if cfg["engine_reuse"]:
        variants["reuse0"] = ["--engine-reuse", "0"]
    out["sleep"] = {}
    for name, extra in variants.items():
        r = sg_run(
            binary,
            spec,
            os.path.join(work, f"sleep-state-{name}"),
            os.path.join(work, f"sleep-{name}.log"),
            ["--workers", str(w), "--slots", "1", "--engine", engine] + extra,
        )
        if r["tasks"] != cfg["sleep_tasks"] or r["stored"] != cfg["sleep_tasks"]:
            raise RuntimeError(
                f"sleep engine: {r['tasks']} succeeded, {r['stored']} stored, of {cfg['sleep_tasks']}"
            )
        mode = "warm" if r["modes"].get("serve") else "per process"
        r.update(tasks=cfg["sleep_tasks"], ms=cfg["sleep_ms"], slots=w, variant=mode)
        out["sleep"][mode] = r
    return out


def child_main(system, w, cfg_json):
    cfg = json.loads(cfg_json)
    work = tempfile.mkdtemp(prefix=f"sg-peers-{system}-{w}-")
    try:
        if system == "sparsegrid":
            out = sg_child(int(w), cfg, work)
        else:
            out = peer_child(system, int(w), cfg, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("RESULT " + json.dumps(out), flush=True)
    return 0


# ---------------------------------------------------------------------------------------------
# The orchestrator: interleaving, tables
# ---------------------------------------------------------------------------------------------


def mmm(xs, fmt):
    xs = sorted(xs)
    return " / ".join(fmt.format(x) for x in (xs[0], statistics.median(xs), xs[-1]))


def versions(binary):
    from importlib.metadata import version

    v = {"python": platform.python_version()}
    for pkg in ("ray", "dask", "distributed", "ipyparallel", "pyzmq"):
        try:
            v[pkg] = version(pkg)
        except Exception:  # noqa: BLE001 - a missing package is reported as such
            v[pkg] = "not installed"
    try:
        v["sparsegrid"] = subprocess.run(
            [binary, "--version"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        v["sparsegrid"] = "?"
    return v


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def tables(runs, cfg):
    """Markdown tables from the children's results."""
    lines = []
    by = {}
    for r in runs:
        by.setdefault((r["w"], r["system"]), []).append(r)
    ws = sorted({w for w, _ in by})

    def best_peer(w, value):
        vals = [
            statistics.median(value(r) for r in by[(w, p)])
            for p in PEERS
            if (w, p) in by
        ]
        return vals

    lines.append(f"### 1. No-op throughput: {cfg['tasks']:,} tasks submitted at once\n")
    lines.append(
        "Tasks/s from submission to the last durable result (min / median / max over repetitions); "
        "× best peer = median ÷ the best peer's median (higher is better for sparsegrid).\n"
    )
    lines.append(
        "| W | system | durable tasks/s | not durable (in driver memory) | × best peer | notes |"
    )
    lines.append("|---|---|---|---|---|---|")
    for w in ws:
        peer_best = max(
            best_peer(w, lambda r: r["noop"]["tasks"] / r["noop"]["durable_s"]),
            default=None,
        )
        for system in ("sparsegrid",) + PEERS:
            rs = by.get((w, system))
            if not rs:
                continue
            dur = [r["noop"]["tasks"] / r["noop"]["durable_s"] for r in rs]
            ratio = f"{statistics.median(dur) / peer_best:.2f}×" if peer_best else "—"
            if system == "sparsegrid":
                mem = "— (results are durable when committed)"
                fa = statistics.median(
                    r["noop"]["tasks"] / r["noop"]["first_assign_s"] for r in rs
                )
                note = f"launch to last committed result; first assign to last: {fa:,.0f}/s (median)"
            else:
                mem = mmm(
                    [r["noop"]["tasks"] / r["noop"]["memory_s"] for r in rs], "{:,.0f}"
                )
                batches = statistics.median(r["noop"]["batches"] for r in rs)
                submit = statistics.median(r["noop"]["submit_s"] for r in rs)
                note = (
                    f"{batches:,.0f} commits (median); submission alone {submit:.2f} s"
                )
            lines.append(
                f"| {w} | {system} | {mmm(dur, '{:,.0f}')} | {mem} | {ratio} | {note} |"
            )
    lines.append("")

    lines.append(
        f"### 2. Sequential round trips: {cfg['trips']:,} submit-and-wait, one at a time\n"
    )
    lines.append(
        "p50 (min / median / max over repetitions), p90 and p99 (median), ms; "
        "÷ best peer = median p50 ÷ the best peer's median p50 (lower is better).\n"
    )
    lines.append("| W | system | p50 ms | p90 ms | p99 ms | ÷ best peer |")
    lines.append("|---|---|---|---|---|---|")
    for w in ws:
        peer_best = min(best_peer(w, lambda r: r["trip"]["p50"]), default=None)
        for system in ("sparsegrid",) + PEERS:
            rs = by.get((w, system))
            if not rs:
                continue
            variants = (
                [
                    ("db", " (result read from the database)"),
                    ("status", f" (polling `status`, first {STATUS_TRIPS} trips)"),
                    ("launch", ": of which the `launch` reply"),
                ]
                if system == "sparsegrid"
                else [(None, "")]
            )
            for key, label in variants:
                t = [r["trip"][key] if key else r["trip"] for r in rs]
                p50 = [x["p50"] for x in t]
                ratio = (
                    f"{statistics.median(p50) / peer_best:.2f}"
                    if peer_best and key != "launch"
                    else "—"
                )
                lines.append(
                    f"| {w} | {system}{label} | {mmm(p50, '{:.2f}')} | {statistics.median(x['p90'] for x in t):.2f} "
                    f"| {statistics.median(x['p99'] for x in t):.2f} | {ratio} |"
                )
    lines.append("")

    lines.append(
        f"### 3. {cfg['sleep_tasks']:,} tasks of {cfg['sleep_ms']} ms on W slots\n"
    )
    lines.append(
        "Efficiency = ideal time (tasks × ms ÷ W) ÷ actual (submission to the last durable result), "
        "min / median / max; × best peer = median ÷ the best peer's median.\n"
    )
    lines.append(
        "| W | system | efficiency | actual s (median) | ideal s | × best peer |"
    )
    lines.append("|---|---|---|---|---|---|")
    for w in ws:

        def eff(s):
            return s["tasks"] * s["ms"] / 1000 / s["slots"] / s["durable_s"]

        peer_best = max(best_peer(w, lambda r: eff(r["sleep"])), default=None)
        ideal = cfg["sleep_tasks"] * cfg["sleep_ms"] / 1000 / w
        for system in ("sparsegrid",) + PEERS:
            rs = by.get((w, system))
            if not rs:
                continue
            if system == "sparsegrid":
                modes = sorted({m for r in rs for m in r["sleep"]})
                rows = [
                    (
                        f"sparsegrid, {m} engine",
                        [r["sleep"][m] for r in rs if m in r["sleep"]],
                    )
                    for m in modes
                ]
            else:
                rows = [(system, [r["sleep"] for r in rs])]
            for label, ss in rows:
                e = [eff(s) for s in ss]
                ratio = f"{statistics.median(e) / peer_best:.2f}×" if peer_best else "—"
                lines.append(
                    f"| {w} | {label} | {mmm(e, '{:.1%}')} | {statistics.median(s['durable_s'] for s in ss):.2f} "
                    f"| {ideal:.2f} | {ratio} |"
                )
    lines.append("")
    return "\n".join(lines)


def orchestrate():
    workers = os.environ.get("WORKERS", "2 8").split()
    if not workers or any(not w.isdigit() or not 1 <= int(w) <= 64 for w in workers):
        sys.exit(
            f"WORKERS must list worker counts from 1 to 64; got {os.environ.get('WORKERS')!r}"
        )
    systems = os.environ.get("SYSTEMS", "sparsegrid ray dask ipyparallel").split()
    unknown = [s for s in systems if s not in ("sparsegrid",) + PEERS]
    if unknown or not systems:
        sys.exit(
            f"SYSTEMS takes sparsegrid, ray, dask, ipyparallel; got {unknown or 'nothing'}"
        )
    binary = os.path.abspath(
        os.path.join(ROOT, os.environ.get("BIN", ".build/release/sparsegrid"))
    )
    if "sparsegrid" in systems and not os.access(binary, os.X_OK):
        sys.exit(
            f"BIN {binary} is not an executable: build it with `make release` or set BIN."
        )
    cfg = {
        "tasks": env_int("TASKS", 20000, 1, 1_000_000),
        "trips": env_int("TRIPS", 1000, 1, 100_000),
        "sleep_tasks": env_int("SLEEP_TASKS", 2000, 1, 1_000_000),
        "sleep_ms": env_int("SLEEP_MS", 5, 0, 60_000),
        "slots": env_int("SLOTS", 128, 1, 4096),
        "bin": binary,
        "engine_reuse": False,
    }
    repeat = env_int("REPEAT", 3, 1, 100)
    child_timeout = env_int("CHILD_TIMEOUT", 1800, 10, 86400)
    if "sparsegrid" in systems:
        help_text = subprocess.run(
            [binary, "run", "--help"], capture_output=True, text=True
        ).stdout
        cfg["engine_reuse"] = "--engine-reuse" in help_text
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out_path = os.environ.get("OUT") or os.path.join(
        ROOT, "bench", "results", f"peers-{stamp.replace(':', '')}.md"
    )
    load_start = loadavg()
    v = versions(binary)
    print(
        f"date {stamp}; load {load_start}; {os.cpu_count()} cores; W {' '.join(workers)}; repeat {repeat}; "
        f"systems {' '.join(systems)}",
        flush=True,
    )
    runs, failures = [], []
    wall = time.time()
    for rep in range(1, repeat + 1):
        for w in workers:
            for system in systems:
                t = time.time()
                try:
                    proc = subprocess.run(
                        [
                            sys.executable,
                            os.path.abspath(__file__),
                            "--child",
                            system,
                            w,
                            json.dumps(cfg),
                        ],
                        capture_output=True,
                        text=True,
                        timeout=child_timeout,
                    )
                    results = [
                        ln
                        for ln in proc.stdout.splitlines()
                        if ln.startswith("RESULT ")
                    ]
                    if proc.returncode != 0 or len(results) != 1:
                        raise RuntimeError(
                            f"exit {proc.returncode}:\n{(proc.stdout + proc.stderr)[-4000:]}"
                        )
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    failures.append(f"rep {rep} W={w} {system}: {e}")
                    print(f"FAILED rep {rep} W={w} {system}: {e}", flush=True)
                    continue
                r = json.loads(results[-1][len("RESULT ") :])
                r["rep"] = rep
                runs.append(r)
                print(
                    f"rep {rep} W={w} {system}: {summary(r)} ({time.time() - t:.0f} s, load {loadavg()})",
                    flush=True,
                )
    load_end = loadavg()
    checked = sum(
        r.get("listeners_checked") or r["trip"].get("listeners_checked", 0)
        for r in runs
    )
    head = [
        f"## bench/peers, {stamp}\n",
        f"- machine: {os.cpu_count()} cores (`nproc`), {cpu_model()}; load average {load_start} at start, "
        f"{load_end} at end; whole run {time.time() - wall:.0f} s",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- settings: W = {', '.join(workers)}; {repeat} repetition(s), interleaved (per repetition, per W: "
        f"{', '.join(systems)}); {cfg['tasks']:,} no-op tasks ({cfg['slots']} slots per sparsegrid worker), "
        f"{cfg['trips']:,} round trips, {cfg['sleep_tasks']:,} × {cfg['sleep_ms']} ms",
        f"- loopback: {checked} listening sockets of the systems' processes seen (`ss -ltnupH`, once per "
        "system and W, while running), every one on 127.0.0.0/8 or ::1",
        "",
    ]
    text = "\n".join(head) + "\n" + tables(runs, cfg) if runs else "\n".join(head)
    if failures:
        text += (
            "\n### Failures\n\n"
            + "\n".join(f"- {f.splitlines()[0]}" for f in failures)
            + "\n"
        )
    print("\n" + text)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w") as f:
        f.write(text)
    print(f"written to {out_path}")
    return 1 if failures else 0


def summary(r):
    noop = r["noop"]["tasks"] / r["noop"]["durable_s"]
    trip = r["trip"]["db"]["p50"] if r["system"] == "sparsegrid" else r["trip"]["p50"]
    sleeps = r["sleep"].values() if r["system"] == "sparsegrid" else [r["sleep"]]
    eff = ", ".join(
        f"{s['tasks'] * s['ms'] / 1000 / s['slots'] / s['durable_s']:.0%}"
        for s in sleeps
    )
    return f"no-op {noop:,.0f} tasks/s durable; round trip p50 {trip:.2f} ms; sleep tasks efficiency {eff}"


if __name__ == "__main__":
    if os.path.realpath(sys.prefix) != os.path.realpath(os.path.join(HERE, ".venv")):
        sys.exit(f"run me with {VENV_PYTHON} (bench/peers/run does)")
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        sys.exit(child_main(sys.argv[2], sys.argv[3], sys.argv[4]))
    if len(sys.argv) > 1:
        sys.exit(__doc__)
    sys.exit(orchestrate())
