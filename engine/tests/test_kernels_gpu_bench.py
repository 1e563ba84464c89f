"""bench/gpu_engine.{sh,py}: the dry run works end to end on CPU, and without a GPU both fail loudly."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench" / "gpu_engine.py"
SCRIPT = REPO / "bench" / "gpu_engine.sh"
no_gpu_only = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour on a host without a GPU")


def _env(tmp_path: Path) -> dict:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO / "engine"),
        "SPARSEGRID_CACHE": str(tmp_path / "cache"),
        "OMP_NUM_THREADS": "2",
    }


def test_the_dry_run_exercises_engine_models_and_linear_parts_on_cpu(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--dry-run", "--out", str(out)],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=900,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "gpu_engine.json").read_text())
    assert report["dry_run"] is True and "stand-in" in report["sparse_format"]

    finetune = report["parts"]["engine"]["finetune"]
    assert finetune["metrics"]["latency_sparse_ms"] is None
    assert finetune["null_reasons"]["latency_sparse_ms"].startswith("no sparse kernel: CPU")
    assert finetune["metrics"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert finetune["metrics"]["gmacs_effective"] / finetune["metrics"]["gmacs"] < 0.52
    assert report["parts"]["engine"]["train"]["metrics"]["sparsity"] < 0.01

    row = report["parts"]["models"]["resnet18"]["batch_sizes"]["2"]
    for variant in ("dense", "masked", "sparse_all"):
        assert row[variant]["n"] == 2 and row[variant]["median"] > 0
    assert row["all_sparse_layers"] == 19  # every conv but the 3-channel stem; the classifier is skipped
    assert row["max_abs_error"]["sparse_all"] < 1e-3

    (linear,) = report["parts"]["linear"]
    assert (linear["tokens"], linear["in"], linear["out"]) == (64, 256, 256)
    assert linear["max_abs_error"] < 1e-3 and linear["speedup"] > 0

    table = (out / "gpu_engine.md").read_text()
    assert "DRY RUN" in table and "| resnet18 | 2 |" in table and "| 64x256x256 |" in table
    assert "latency_sparse_ms is null: no sparse kernel: CPU" in table


@no_gpu_only
def test_the_benchmark_refuses_to_run_without_a_gpu(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=300,
    )
    assert proc.returncode == 1
    assert "FAILED" in proc.stderr and "sparse tensor cores" in proc.stderr and "--dry-run" in proc.stderr
    assert not (tmp_path / "out").exists()


@no_gpu_only
def test_the_shell_script_fails_loudly_without_a_gpu(tmp_path):
    env = {**_env(tmp_path), "OUT": str(tmp_path / "out"), "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1
    assert "FAILED" in proc.stderr and "no CUDA GPU" in proc.stderr
    assert not (tmp_path / "out").exists()
    unset = {k: v for k, v in env.items() if k != "OUT"}
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=unset, timeout=60)
    assert proc.returncode != 0 and "set OUT" in proc.stderr
