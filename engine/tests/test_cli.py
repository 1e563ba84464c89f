"""The engine as the worker sees it: a real subprocess speaking engine/CONTRACT.md."""

import hashlib
import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import ENGINE_ROOT, NM_2_4, run_engine, tiny_task

from sparsegrid_engine.models import MODELS
from sparsegrid_engine.protocol import InvalidTask
from sparsegrid_engine.runner import run_task

CONTRACT_METRICS = (
    "accuracy",
    "val_accuracy",
    "loss",
    "latency_ms",
    "latency_p10_ms",
    "latency_p90_ms",
    "latency_sparse_ms",
    "gmacs",
    "gmacs_effective",
    "params_m",
    "sparsity",
    "weight_mib",
    "weight_compressed_mib",
    "peak_mib",
    "train_seconds",
    "images_per_s",
)


def assert_contract(run):
    """Exit 0, only JSON event lines on stdout (EngineRun parsed them), exactly one result last."""
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.events and all(isinstance(e.get("event"), str) for e in run.events)
    assert [e["event"] for e in run.events].count("result") == 1
    assert run.events[-1]["event"] == "result"
    result = run.of("result")[0]
    for name in CONTRACT_METRICS:
        assert name in result["metrics"], name
        assert name in result["units"], name
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cache_dir):
    return run_engine(tiny_task(), tmp_path_factory.mktemp("train") / "work", cache_dir)


def test_train_task_speaks_the_json_lines_contract(trained):
    result = assert_contract(trained)
    assert [e["epoch"] for e in trained.of("progress")] == [1]
    progress = trained.of("progress")[0]
    assert {"epoch", "epochs", "step", "steps", "loss", "train_acc", "test_acc", "lr", "images_per_s"} <= set(progress)
    metrics, details = result["metrics"], result["details"]
    assert 0 <= metrics["accuracy"] <= 100 and metrics["val_accuracy"] is None
    assert metrics["sparsity"] < 0.01 and metrics["gmacs"] == pytest.approx(0.56, rel=0.15)
    assert details["dataset"]["dataset"] == "synthetic" and len(details["dataset"]["fingerprint"]) == 16
    assert details["validation"] == "test split"
    assert details["params"] == tiny_task()["params"]
    assert details["method"]["kind"] == "dense"
    assert "latency_dense_ms" not in metrics  # a dense task is its own baseline
    assert details["torch"] == torch.__version__ and details["engine"] == "sparsity"
    assert "[sparsity] epoch 1/1" in trained.stderr


def test_train_task_announces_a_checkpoint_it_really_wrote(trained):
    (artifact,) = trained.of("artifact")
    path = trained.workdir / artifact["path"]
    raw = path.read_bytes()
    assert artifact["name"] == "checkpoint" and artifact["bytes"] == len(raw)
    assert artifact["sha256"] == hashlib.sha256(raw).hexdigest()
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["model"] == "resnet18" and ckpt["method"] == "dense" and ckpt["task_id"] == "t" * 64
    assert "conv1.weight" in ckpt["state_dict"]


def finetune_task(trained, **overrides):
    (artifact,) = trained.of("artifact")
    inputs = {
        "train": {
            "task_id": "t" * 64,
            "name": "checkpoint",
            "sha256": artifact["sha256"],
            "path": str(trained.workdir / artifact["path"]),
        }
    }
    task = tiny_task(
        stage="finetune",
        method=NM_2_4,
        inputs=inputs,
        params={"method": "nm_2_4", "lr": 1e-3, "lr_final": 1e-4, "val_split": 20},
    )
    task.update(overrides)
    return task


def test_finetune_consumes_the_train_checkpoint_and_keeps_2_4_masks(trained, tmp_path, cache_dir):
    run = run_engine(finetune_task(trained), tmp_path / "ft", cache_dir)
    result = assert_contract(run)
    metrics, details = result["metrics"], result["details"]
    assert details["input_checkpoint"]["sha256"] == trained.of("artifact")[0]["sha256"]
    assert details["validation"] == "held-out 20 train images" and metrics["val_accuracy"] is not None
    assert "val_acc" in run.of("progress")[0]
    assert 0.3 < metrics["sparsity"] < 0.5  # 2:4 on all but the stem and the classifier
    assert metrics["gmacs_effective"] < 0.7 * metrics["gmacs"]
    # The dense model it started from is timed interleaved with it: the masked speedup's baseline.
    assert metrics["latency_dense_ms"] > 0 and "interleaved" in result["units"]["latency_dense_ms"]
    # The stored weights are plain tensors that keep the 2:4 pattern.
    ckpt = torch.load(run.workdir / "checkpoint.pt", weights_only=True)
    assert ckpt["method"] == "nm_2_4"
    assert not any("mask" in k or k.endswith("_orig") for k in ckpt["state_dict"])
    w = ckpt["state_dict"]["layer2.0.conv1.weight"].permute(0, 2, 3, 1).reshape(-1, 4)
    assert torch.all((w != 0).sum(1) <= 2)
    assert ckpt["state_dict"]["conv1.weight"].count_nonzero() == ckpt["state_dict"]["conv1.weight"].numel()


def test_finetune_refuses_a_checkpoint_whose_sha256_differs(trained, tmp_path, cache_dir):
    task = finetune_task(trained)
    task["inputs"]["train"]["sha256"] = "0" * 64
    run = run_engine(task, tmp_path / "bad", cache_dir)
    assert run.returncode == 1
    (error,) = run.of("error")
    assert error["invalid"] is False and "sha256" in error["message"] and "0" * 64 in error["message"]
    assert not run.of("result") and not (run.workdir / "checkpoint.pt").exists()


def test_unknown_model_exits_2_listing_the_valid_models(tmp_path, cache_dir):
    run = run_engine(tiny_task(params={"model": "resnet19"}), tmp_path / "w", cache_dir)
    assert run.returncode == 2
    assert [e["event"] for e in run.events] == ["error"]
    error = run.events[0]
    assert error["invalid"] is True and "unknown model 'resnet19'" in error["message"]
    assert all(name in error["message"] for name in MODELS)
    assert "unknown model 'resnet19'" in run.stderr


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"params": {"learning_rate": 0.1}}, "unknown parameter(s) learning_rate; valid parameters: model, seed"),
        ({"method": {"name": "nm_2_4", "kind": "n_m", "n": 4, "m": 4}}, "'n' must be less than m = 4"),
        ({"data": {"dataset": "mnist"}}, "unknown dataset 'mnist'"),
        ({"device": "tpu"}, "unknown device 'tpu'"),
        ({"measure": {"latency": {"batch_sizes": []}}}, "batch_sizes"),
        ({"inputs": {"a": {"path": "/x", "sha256": "1"}, "b": {"path": "/y", "sha256": "2"}}}, "none named train"),
    ],
)
def test_invalid_tasks_are_refused_before_any_work(change, fragment, tmp_path):
    task = tiny_task(**change) if "params" not in change else tiny_task(params=change["params"])
    with pytest.raises(InvalidTask) as error:
        run_task(task, tmp_path / "w")
    assert fragment in str(error.value)
    assert not (tmp_path / "w" / "checkpoint.pt").exists()


def test_describe_lists_models_methods_and_versions():
    env = {**os.environ, "PYTHONPATH": str(ENGINE_ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", "sparsegrid_engine", "describe"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    ).stdout
    info = json.loads(out)
    assert info["engine"] == "sparsity" and info["torch"] == torch.__version__
    assert info["models"] == list(MODELS)
    assert {"dense", "n_m", "block"} <= set(info["methods"])
    assert info["cuda"]["available"] == torch.cuda.is_available()
    assert info["stage_params"]["lr"] == 0.05 and info["stage_params"]["epochs"] == {"train": 10, "finetune": 3}
    ranges = info["ranges"]
    assert set(ranges) == {"stage_params", "methods", "measure", "seed", "rules"}
    assert ranges["methods"]["block"]["probability"] == {
        "type": "number",
        "min": 0,
        "max": 1,
        "min_exclusive": True,
        "max_exclusive": True,
    }
    assert ranges["stage_params"]["epochs"] == {"type": "int", "min": 0, "max": 10000}
    assert set(info["code"]) == {"commit", "dirty", "source"}


def test_stray_output_cannot_corrupt_the_event_stream():
    code = (
        "import os, sys\n"
        "from sparsegrid_engine.protocol import claim_stdout, emit\n"
        "claim_stdout()\n"
        "print('a stray print')\n"
        "os.write(1, b'a C library writing to fd 1\\n')\n"
        "emit('progress', epoch=1)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ENGINE_ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.stdout == '{"event":"progress","epoch":1}\n'
    assert "a stray print" in proc.stderr and "a C library writing to fd 1" in proc.stderr


def test_make_synthetic_command_writes_the_cifar_format(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ENGINE_ROOT)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sparsegrid_engine",
            "make-synthetic",
            "--out",
            str(tmp_path / "d"),
            "--train",
            "30",
            "--test",
            "10",
            "--seed",
            "2",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0 and proc.stdout == ""
    from sparsegrid_engine.data import read_cifar_folder

    ds = read_cifar_folder(tmp_path / "d")
    assert (len(ds.train), len(ds.test), ds.info["dataset"]) == (30, 10, "synthetic")


def test_engine_dies_with_its_worker(tmp_path):
    """A worker killed with SIGKILL must not leave its engine running (PR_SET_PDEATHSIG)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    # A parent that starts an engine which blocks (reading a task from a FIFO), then waits.
    fifo = tmp_path / "task.json"
    os.mkfifo(fifo)
    pidfile = tmp_path / "engine.pid"
    parent_code = (
        "import subprocess, sys, time\n"
        f"p = subprocess.Popen([sys.executable, '-m', 'sparsegrid_engine', 'run', '--task', {str(fifo)!r}, "
        f"'--workdir', {str(tmp_path)!r}])\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(60)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    parent = subprocess.Popen([sys.executable, "-c", parent_code], env=env)
    deadline = time.time() + 20
    while not pidfile.exists() or not pidfile.read_text():
        assert time.time() < deadline, "the engine did not start"
        time.sleep(0.05)
    engine_pid = int(pidfile.read_text())
    time.sleep(1.0)  # let the engine reach prctl before its open() on the FIFO blocks
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.kill(engine_pid, 0)
        except ProcessLookupError:
            return
        # A zombie (reaped by init soon) counts as gone.
        try:
            with open(f"/proc/{engine_pid}/stat") as f:
                if f.read().split()[2] == "Z":
                    return
        except FileNotFoundError:
            return
        time.sleep(0.1)
    os.kill(engine_pid, signal.SIGKILL)
    raise AssertionError("the engine outlived its parent")
