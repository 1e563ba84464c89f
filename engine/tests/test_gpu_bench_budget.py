"""bench/gpu_engine.sh spends one run well: results land after every step, a budget stops it with
what it has, a hung step or engine child is cut off at the deadline, and --parts reruns a part.

All through the shell script in --dry-run (CPU), as the one GPU run would call it; the hidden
--hang-in option makes a step hang so that the deadline handling is tested deterministically.
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "gpu_engine.sh"
PLAIN = re.compile(r"^[A-Za-z0-9._-]+$")


def _env(tmp_path: Path, out: Path) -> dict:
    env = {
        **os.environ,
        "OUT": str(out),
        "PYTHON": sys.executable,
        "SPARSEGRID_CACHE": str(tmp_path / "cache"),
        "OMP_NUM_THREADS": "2",
    }
    env.pop("PYTHONPATH", None)  # the script sets it itself, as on the GPU host
    return env


def _script(tmp_path: Path, out: Path, *args: str, timeout: float = 300):
    began = time.monotonic()
    proc = subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=_env(tmp_path, out),
        timeout=timeout,
        cwd=tmp_path,  # the script finds the repository itself
    )
    return proc, time.monotonic() - began


def _report(out: Path) -> dict:
    return json.loads((out / "gpu_engine.json").read_text())


def _steps(report: dict) -> dict:
    return {s["step"]: s for s in report["steps"]}


def _check_out_folder(out: Path) -> None:
    files = [p for p in out.rglob("*")]
    assert len([p for p in files if p.is_file()]) <= 8, files
    for path in files:
        relative = path.relative_to(out)
        assert len(relative.parts) <= 2 and all(PLAIN.match(part) for part in relative.parts), relative
    assert not list(out.glob("*.tmp")), "a temporary file was left behind"


def test_a_hung_step_is_killed_at_the_deadline_and_the_earlier_results_remain(tmp_path):
    out = tmp_path / "out"
    budget = 30
    began = time.monotonic()
    proc = subprocess.Popen(
        ["bash", str(SCRIPT), "--dry-run", "--budget-s", str(budget), "--hang-in", "models"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path, out),
        cwd=tmp_path,
    )
    seen = []  # (status, steps done) of every version of the JSON seen while it ran
    while proc.poll() is None and time.monotonic() - began < 240:
        try:
            report = _report(out)
            seen.append((report["status"], tuple(s["step"] for s in report["steps"] if s["status"] == "ok")))
        except (OSError, json.JSONDecodeError, KeyError):
            pass  # not written yet (a half-written JSON would fail the final check below)
        time.sleep(0.2)
    _, stderr = proc.communicate(timeout=60)
    elapsed = time.monotonic() - began

    assert proc.returncode == 3, stderr[-3000:]
    assert elapsed < budget + 15 + 20, elapsed  # the watchdog's grace, and slack for a busy machine
    assert any(status == "running" and "smoke" in done for status, done in seen), seen[-5:]
    report = _report(out)
    steps = _steps(report)
    assert report["status"] == "killed at the deadline" and report["exit_code"] == 3
    for name in ("smoke", "gemm/256x256x256", "linear/64x256x256"):
        assert steps[name]["status"] == "ok", steps[name]
    assert steps["models/resnet18/bs2"]["status"] == "killed"
    for name in ("engine/train", "engine/finetune"):
        assert steps[name]["status"] == "skipped" and steps[name]["reason"].startswith("not reached: killed")
    assert report["parts"]["gemm"]["dense"]["n"] == 2
    table = (out / "gpu_engine.md").read_text()
    assert "killed at the deadline" in table and "| 64x256x256 |" in table
    log = (out / "gpu_engine.log").read_text()
    assert "ABORTED" in log and "models" in log
    _check_out_folder(out)


def test_an_engine_child_is_stopped_at_the_deadline_and_its_stderr_kept(tmp_path):
    out = tmp_path / "out"
    budget = 25
    proc, elapsed = _script(
        tmp_path, out, "--dry-run", "--parts", "smoke,engine", "--budget-s", str(budget), "--hang-in", "engine"
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert elapsed < budget + 10, elapsed
    report = _report(out)
    steps = _steps(report)
    assert report["status"] == "stopped at the deadline"
    assert steps["smoke"]["status"] == "ok"
    assert steps["engine/train"]["status"] == "timed out" and "at the deadline" in steps["engine/train"]["error"]
    assert steps["engine/finetune"]["status"] == "skipped"
    assert "no checkpoint" in steps["engine/finetune"]["reason"]
    assert "timed_out" in report["parts"]["engine"]["train"]
    assert "hanging engine stand-in" in (out / "engine.log").read_text()  # streamed, not held in memory
    _check_out_folder(out)


def test_parts_rerun_into_the_same_folder_and_steps_beyond_the_budget_are_skipped(tmp_path):
    out = tmp_path / "out"
    proc, _ = _script(tmp_path, out, "--dry-run", "--parts", "smoke", "--budget-s", "300")
    assert proc.returncode == 0, proc.stderr[-3000:]
    first = _report(out)
    assert [s["step"] for s in first["steps"]] == ["smoke"] and first["parts"]["smoke"]["ok"]

    # The engine needs at least 10 s in a dry run; a 4 s budget is gone before it starts.
    proc, _ = _script(tmp_path, out, "--dry-run", "--parts", "gemm,engine", "--budget-s", "4")
    assert proc.returncode == 2, proc.stderr[-3000:]
    report = _report(out)
    steps = _steps(report)
    assert report["status"] == "stopped at the deadline" and report["exit_code"] == 2
    assert steps["engine/train"]["status"] == "skipped" and steps["engine/train"]["reason"].startswith("budget:")
    assert report["parts"]["engine"]["train"]["skipped"].startswith("budget:")
    assert steps["engine/finetune"]["status"] == "skipped" and "no checkpoint" in steps["engine/finetune"]["reason"]
    # The earlier run's smoke check is kept, and says where it came from.
    assert report["parts"]["smoke"] == first["parts"]["smoke"]
    assert report["carried_over"] == {"parts": ["smoke"], "from_run_started": first["started"]}
    assert "| engine/train | skipped |" in (out / "gpu_engine.md").read_text()
    _check_out_folder(out)


def test_a_crash_in_the_smoke_check_costs_only_that_step(tmp_path):
    out = tmp_path / "out"
    proc, _ = _script(tmp_path, out, "--dry-run", "--parts", "smoke,gemm", "--crash-in", "smoke")
    assert proc.returncode == 1, proc.stderr[-3000:]
    report = _report(out)
    steps = _steps(report)
    assert steps["smoke"]["status"] == "failed" and "died (signal 6)" in steps["smoke"]["error"]
    assert "Fatal Python error" in steps["smoke"]["error"]
    assert "smoke check failed hard" in report["sparse_path"]["unavailable"]
    # The process survived it: the GEMM is timed dense, its sparse side recorded as not run.
    gemm = report["parts"]["gemm"]
    assert steps["gemm/256x256x256"]["status"] == "ok" and gemm["dense"]["n"] == 2
    assert gemm["errors"]["sparse"].startswith("not run: the cuSPARSELt smoke check failed hard")
    assert "SPARSE PATH UNAVAILABLE" in (out / "gpu_engine.md").read_text()
