"""Shared fixtures: one CPU thread per test process (the machine has two cores and other jobs),
a private data cache, tiny synthetic data, and a helper that runs the engine CLI for real."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ENGINE_ROOT = Path(__file__).resolve().parents[1]

torch.set_num_threads(1)

# The study's two methods, as the sweep spec passes them to the engine.
NM_2_4 = {"name": "nm_2_4", "kind": "n_m", "n": 2, "m": 4, "skip": ["first", "last"]}
BLOCK_4X4 = {
    "name": "block_4x4",
    "kind": "block",
    "shape": [4, 4],
    "select": "random",
    "probability": 0.5,
    "skip": ["first", "last"],
}


@pytest.fixture
def two_threads():
    """For tests sized for two threads; the session's setting is restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """A data cache shared by the whole session, so synthetic data is generated once."""
    return tmp_path_factory.mktemp("sparsegrid-cache")


@pytest.fixture(autouse=True)
def _private_cache(cache_dir, monkeypatch):
    monkeypatch.setenv("SPARSEGRID_CACHE", str(cache_dir))


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    from sparsegrid_engine.data import make_synthetic

    return make_synthetic(tmp_path_factory.mktemp("synthetic"), train=200, test=60, seed=3)


class EngineRun:
    def __init__(self, proc: subprocess.CompletedProcess, workdir: Path):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.workdir = workdir
        # Every stdout line must be a JSON object: parsing here makes each test check that.
        self.events = [json.loads(line) for line in proc.stdout.splitlines()]

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e.get("event") == kind]


def run_engine(task: dict, workdir: Path, cache: Path, timeout: float = 600) -> EngineRun:
    """Runs `python -m sparsegrid_engine run` as a real subprocess on a task."""
    workdir.mkdir(parents=True, exist_ok=True)
    task_file = workdir.parent / f"{workdir.name}-task.json"
    task_file.write_text(json.dumps(task))
    env = {**os.environ, "PYTHONPATH": str(ENGINE_ROOT), "SPARSEGRID_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "sparsegrid_engine", "run", "--task", str(task_file), "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=workdir,
    )
    return EngineRun(proc, workdir)


def tiny_task(**overrides) -> dict:
    """A task small enough for a test: a few optimizer steps on a few hundred synthetic images."""
    task = {
        "task_id": "t" * 64,
        "attempt_id": "t" * 64 + "-1",
        "sweep": "tests",
        "stage": "train",
        "params": {
            "model": "resnet18",
            "seed": 0,
            "epochs": 1,
            "batch_size": 16,
            "max_steps": 2,
            "eval_batch_size": 64,
            "num_threads": 1,
        },
        "method": None,
        "data": {"dataset": "synthetic", "train": 120, "test": 40, "seed": 0},
        "measure": {
            "latency": {"batch_sizes": [1, 2], "warmup": 1, "iterations": 3, "precision": 0},
            "flops": True,
            "memory": True,
        },
        "inputs": {},
        "device": "cpu",
    }
    for key, value in overrides.items():
        if key == "params":
            task["params"] = {**task["params"], **value}
        else:
            task[key] = value
    return task
