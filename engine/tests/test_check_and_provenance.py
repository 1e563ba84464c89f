"""`check --task FILE` (validation without running) and the provenance in result details."""

import json
import os
import platform
import re
import subprocess
import sys

import pytest
import torch
from conftest import BLOCK_4X4, ENGINE_ROOT, tiny_task

from sparsegrid_engine import runner


def run_check(task_file, *, env=None, timeout=300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ENGINE_ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "sparsegrid_engine", "check", "--task", str(task_file)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def write(tmp_path, task, name="task.json"):
    path = tmp_path / name
    path.write_text(task if isinstance(task, str) else json.dumps(task))
    return path


def test_check_accepts_a_valid_task_without_reading_its_data_or_needing_its_device(tmp_path, cache_dir):
    # The data folder does not exist and this host may have no GPU: check validates the task's
    # shape only, as run does before any work, and touches neither.
    task = tiny_task(
        method={**BLOCK_4X4, "skip": ["first", "last", "shortcuts", "layer1.0.conv1"]},
        params={"method": "block_4x4"},
        data={"dataset": "cifar10", "root": str(tmp_path / "no-such-folder")},
        device="cuda:0",
    )
    proc = run_check(write(tmp_path, task), env={"SPARSEGRID_CACHE": str(tmp_path / "cache")})
    assert (proc.returncode, proc.stdout) == (0, "ok\n"), proc.stderr
    assert not (tmp_path / "cache").exists() and not (tmp_path / "no-such-folder").exists()


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"method": {**BLOCK_4X4, "probability": 1.0}}, "key 'probability' must be a number > 0 and < 1"),
        ({"method": {**BLOCK_4X4, "skip": ["layer9.conv"]}}, "key 'skip' names 'layer9.conv'"),
        ({"params": {"epochs": 10001}}, "parameter epochs must be an integer from 0 to 10000"),
        ({"data": {"dataset": "synthetic", "train": -1, "test": 4}}, "data.train must be an integer from 0 to 1000000"),
        ({"device": "cuda:x"}, "unknown device 'cuda:x'"),
    ],
)
def test_check_refuses_an_invalid_task_with_exit_2_and_the_reason(change, fragment, tmp_path):
    task = tiny_task(**change)
    if "method" in change:
        task["params"]["method"] = "block_4x4"
    proc = run_check(write(tmp_path, task))
    assert proc.returncode == 2 and proc.stdout == ""
    assert fragment in proc.stderr


def test_check_of_a_file_that_is_not_json_is_invalid_and_of_a_missing_file_a_failure(tmp_path):
    proc = run_check(write(tmp_path, "{not json"))
    assert proc.returncode == 2 and "not valid JSON" in proc.stderr and proc.stdout == ""
    proc = run_check(tmp_path / "absent.json")
    assert proc.returncode == 1 and "cannot read the task file" in proc.stderr


def _git(cwd, *args):
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True, capture_output=True
    )


def test_code_provenance_is_this_checkout_s_commit():
    head = subprocess.run(["git", "-C", str(ENGINE_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip(f"the engine is not in a git checkout here: {head.stderr.strip()}")
    code = runner.code_provenance()
    assert code["source"] == "git" and re.fullmatch(r"[0-9a-f]{40}", code["commit"])
    assert code["commit"] == head.stdout.strip() and isinstance(code["dirty"], bool)
    assert runner.describe()["code"] == code


def test_code_provenance_says_dirty_when_files_differ_from_the_commit(tmp_path):
    pkg = tmp_path / "repo" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    _git(tmp_path / "repo", "init", "-q")
    _git(tmp_path / "repo", "add", ".")
    _git(tmp_path / "repo", "commit", "-qm", "one")
    clean = runner.git_provenance(pkg)
    assert clean["source"] == "git" and clean["dirty"] is False
    (pkg / "a.py").write_text("x = 2\n")
    assert runner.git_provenance(pkg) == {**clean, "dirty": True}


def test_code_provenance_is_unknown_without_git_or_a_checkout(tmp_path, monkeypatch):
    unknown = {"commit": None, "dirty": None, "source": "unknown"}
    assert runner.git_provenance(tmp_path) == unknown  # not a git checkout
    monkeypatch.setenv("PATH", "")  # git cannot be found
    assert runner.git_provenance(runner.ENGINE_SOURCE) == unknown


def test_result_details_carry_provenance_and_block_masks_follow_the_task_seed(tmp_path, monkeypatch, capsys):
    seen = []
    real = runner.apply_sparsity

    def spy(model, method, seed=0):
        seen.append(seed)
        return real(model, method, seed=seed)

    monkeypatch.setattr(runner, "apply_sparsity", spy)
    task = tiny_task(params={"seed": 7, "epochs": 0, "method": "block_4x4"}, method=BLOCK_4X4, measure={})
    details = runner.run_task(task, tmp_path / "w")["details"]
    assert seen == [7]
    assert details["cuda"] == torch.version.cuda
    assert details["code"] == runner.code_provenance() and set(details["code"]) == {"commit", "dirty", "source"}
    assert details["hostname"] == platform.node()
    assert isinstance(details["cpu_model"], str) and details["cpu_model"]
    json.dumps(details)  # plain JSON
