"""One task, start to finish: check it, load data and model, train, sparsify, measure, report.

A stage that consumes a checkpoint (finetune) loads it, verifies its sha256, applies the task's
sparsity method and fine-tunes with the masks enforced; a stage without inputs (train) trains
the model from scratch. Both end the same way: strip the masks, evaluate on the full test split
(or reuse the last epoch's evaluation of it when the weights are bit-identical; CONTRACT.md),
save `checkpoint.pt`, measure, and emit one `result` event.
"""

import functools
import hashlib
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision

from . import __version__, ranges
from .data import Dataset, check_data_spec, hold_out, load_data
from .measure import device_name, measure_model, validate_measure_cfg
from .models import build_model, check_name
from .protocol import InvalidTask, TaskFailed, emit, log
from .serve import PROTOCOL_VERSION, run_process
from .sparsity import SKIP_ALIASES, apply_sparsity, check_skip, strip, validate_method
from .train import FitResult, StageParams, evaluate_reusing, fit, parse_params, seed_everything

ENGINE = "sparsity"
CHECKPOINT = "checkpoint.pt"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


_CUDA_DEVICE = re.compile(r"cuda(:[0-9]{1,3})?")


def check_device(requested) -> str:
    """The task's device as given ("auto" when absent); InvalidTask unless it is auto, cpu, cuda
    or cuda:N. Whether this host has that device is resolve_device's question."""
    if requested is None:
        return "auto"
    if requested in ("auto", "cpu") or (isinstance(requested, str) and _CUDA_DEVICE.fullmatch(requested)):
        return requested
    raise InvalidTask(f"unknown device {requested!r}; valid devices: auto, cpu, cuda, cuda:N.")


def resolve_device(requested) -> torch.device:
    """ "auto" is cuda when one is visible, else cpu. Asking for cuda on a host without one is a
    failure of this host (exit 1, retried elsewhere), not of the task."""
    requested = check_device(requested)
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise TaskFailed(
            f"the task asks for device {requested!r} but this host has no usable CUDA device "
            f"(torch {torch.__version__}); run it on a GPU worker or set device to cpu or auto."
        )
    return torch.device(requested)


def resolve_method(task: dict) -> dict | None:
    """The task's sparsity method, or None for dense (no method, or kind "dense")."""
    method = task.get("method")
    named = task.get("params", {}).get("method")
    if method is None or (isinstance(method, dict) and method.get("kind") == "dense"):
        if named not in (None, "dense"):
            raise InvalidTask(
                f"parameter method is {named!r} but the task carries no definition for it; "
                "define it under the spec's methods."
            )
        return None
    validate_method(method)
    if named is not None and method.get("name") not in (None, named):
        raise InvalidTask(f"parameter method is {named!r} but the task's method is named {method.get('name')!r}.")
    return method


def input_checkpoint(task: dict) -> dict | None:
    """The input artifact to start from: inputs["train"], or the only input; None without inputs."""
    inputs = task.get("inputs") or {}
    if not isinstance(inputs, dict):
        raise InvalidTask(f'the task\'s "inputs" must be an object keyed by stage; got {inputs!r}.')
    if not inputs:
        return None
    chosen = inputs.get("train") if "train" in inputs else (next(iter(inputs.values())) if len(inputs) == 1 else None)
    if chosen is None:
        raise InvalidTask(
            f"the task has inputs from stages {sorted(inputs)} and none named train; "
            "the engine fine-tunes from exactly one checkpoint."
        )
    if not isinstance(chosen, dict) or not chosen.get("path") or not chosen.get("sha256"):
        raise InvalidTask(f"an input artifact needs a path and a sha256; got {chosen!r}.")
    return chosen


def load_checkpoint(artifact: dict, model_name: str) -> dict:
    """The input checkpoint, after checking it is the file the task declared and the same model."""
    path = Path(artifact["path"]).expanduser()
    if not path.is_file():
        raise TaskFailed(
            f"input checkpoint {path} does not exist; the worker should have fetched it before starting the engine."
        )
    actual = sha256_file(path)
    if actual != artifact["sha256"]:
        raise TaskFailed(
            f"input checkpoint {path} has sha256 {actual}, but the task declares {artifact['sha256']}; "
            "the file is corrupt or stale. Fetch it again from the coordinator."
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # the digest matched, so the producer wrote something else
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TaskFailed(
            f"input checkpoint {path} cannot be loaded as plain tensors ({first_line}); "
            "it was not written by this engine's save_checkpoint. Re-run its train task."
        ) from e
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise TaskFailed(f"input checkpoint {path} has no state_dict; it was not written by this engine.")
    if ckpt.get("model") != model_name:
        raise InvalidTask(
            f"input checkpoint {path} holds model {ckpt.get('model')!r} but the task trains "
            f"{model_name!r}; the stage must consume a checkpoint of the same model."
        )
    return ckpt


def _validation(ds: Dataset, n: int, device):
    """(train, validation or None, description) with the splits on the device."""
    if n == 0:
        return ds.train.to(device), None, "test split"
    train, val = hold_out(ds.train, n)
    return train.to(device), val.to(device), f"held-out {n} train images"


def _my_units(p: StageParams, device_label: str) -> dict:
    return {
        "accuracy": "% top-1 on the full test split, after the stage's training (masks applied, no augmentation)",
        "val_accuracy": "% top-1 on the held-out validation split (null when val_split is 0)",
        "loss": "mean cross-entropy over the last training epoch's optimizer steps (augmented training images)",
        "train_seconds": f"s wall time of the training loop including per-epoch evaluation, on {device_label}",
        "images_per_s": f"training images per second inside optimizer steps (augmentation included, evaluation "
        f"excluded), batch size {p.batch_size}, on {device_label}",
    }


def save_checkpoint(workdir: Path, model, *, model_name, method, task, accuracy) -> dict:
    """Writes plain weights to checkpoint.pt (atomically) and announces it with an artifact event."""
    path = workdir / CHECKPOINT
    tmp = path.with_suffix(".pt.tmp")
    torch.save(
        {
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "model": model_name,
            "method": method.get("name", method["kind"]) if method else "dense",
            "method_spec": method,
            "task_id": task.get("task_id"),
            "params": task.get("params"),
            "accuracy": accuracy,
            "engine_version": __version__,
            "torch": str(torch.__version__),
        },
        tmp,
    )
    tmp.replace(path)
    artifact = {"name": "checkpoint", "path": CHECKPOINT, "sha256": sha256_file(path), "bytes": path.stat().st_size}
    emit("artifact", **artifact)
    return artifact


@dataclass(frozen=True)
class CheckedTask:
    """What validate_task read from a task, every part checked."""

    params: dict
    stage_params: StageParams
    model_name: str
    seed: int
    method: dict | None
    measure_cfg: object
    device: str
    artifact_in: dict | None


def check_seed(params: dict) -> int:
    seed = params.get("seed", 0)
    if not ranges.accepts(ranges.SEED, seed):
        raise InvalidTask(f"parameter seed must be {ranges.phrase(ranges.SEED)}; got {seed!r}.")
    return seed


def validate_task(task) -> CheckedTask:
    """Checks everything about a task that can be checked before any work (params, method,
    measure, device, the data spec's shape; skip names against the model's layer names, on the
    meta device); raises InvalidTask naming what is wrong. Loads no data, allocates no weights."""
    if not isinstance(task, dict):
        raise InvalidTask("the task file must hold a JSON object.")
    params = task.get("params")
    params = {} if params is None else params
    artifact_in = input_checkpoint(task)
    p = parse_params(params, finetune=artifact_in is not None)
    model_name = check_name(params.get("model"))
    seed = check_seed(params)
    method = resolve_method(task)
    measure_cfg = task.get("measure")
    validate_measure_cfg(measure_cfg)
    device = check_device(task.get("device", "auto"))
    check_data_spec(task.get("data"))
    if method is not None and any(entry not in SKIP_ALIASES for entry in method.get("skip", [])):
        with torch.device("meta"):
            check_skip(build_model(model_name), method)
    return CheckedTask(params, p, model_name, seed, method, measure_cfg, device, artifact_in)


def run_task(task: dict, workdir, *, engine_process: dict | None = None) -> dict:
    """Runs one task (engine/CONTRACT.md), emitting progress, artifact and result events.
    Returns the result event's fields. `engine_process` goes to details as it is (serve.py
    passes its mode, pid and task index); None means a task of its own process (`run`)."""
    checked = validate_task(task)
    params, p, model_name, seed = checked.params, checked.stage_params, checked.model_name, checked.seed
    method, measure_cfg, artifact_in = checked.method, checked.measure_cfg, checked.artifact_in
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(checked.device)
    if p.num_threads is not None:
        torch.set_num_threads(p.num_threads)
    label = device_name(device)
    log(
        f"[{ENGINE}] task {task.get('task_id', '?')}: {model_name} / {(method or {}).get('name', 'dense')} "
        f"on {device} ({label}), {p.epochs} epochs"
    )

    ds = load_data(task.get("data"))
    train_split, val_split, validation = _validation(ds, p.val_split, device)
    test_split = ds.test.to(device)

    seed_everything(seed)
    model = build_model(model_name)
    checkpoint_in = None
    if artifact_in is not None:
        checkpoint_in = load_checkpoint(artifact_in, model_name)
        model.load_state_dict(checkpoint_in["state_dict"])
    model.to(device)
    if p.channels_last:
        model.to(memory_format=torch.channels_last)
    plan = apply_sparsity(model, method, seed=seed) if method is not None else None

    monitor = val_split if val_split is not None else test_split
    monitor_name = "val_acc" if val_split is not None else "test_acc"

    def on_epoch(progress):
        emit("progress", **progress)
        emit("metric", name="loss", value=progress["loss"], step=progress["step"])
        emit("metric", name=monitor_name, value=progress[monitor_name], step=progress["step"])
        log(
            f"[{ENGINE}] epoch {progress['epoch']}/{progress['epochs']} loss {progress['loss']:.4f} "
            f"{monitor_name} {progress[monitor_name]:.2f} lr {progress['lr']:.3g}"
        )

    fitted: FitResult = fit(
        model, train_split, monitor, p, seed=seed, monitor_name=monitor_name, plan=plan, on_epoch=on_epoch
    )
    if plan is not None:
        strip(model)
    # The last epoch evaluated the monitor split (the test split when val_split is 0); when the
    # weights are bit-identical to what it saw, its numbers are this evaluation's, not recomputed.
    last, fitted.last_evaluation = fitted.last_evaluation, None
    accuracy, test_loss, reused = evaluate_reusing(model, test_split, p.eval_batch_size, p.channels_last, last)
    reused_names = ["test"] if reused else []
    val_accuracy = None
    if val_split is not None:
        val_accuracy, _, reused = evaluate_reusing(model, val_split, p.eval_batch_size, p.channels_last, last)
        reused_names += ["validation"] if reused else []
    del last  # its snapshot of the weights is freed before memory is measured
    if reused_names:
        log(f"[{ENGINE}] {' and '.join(reused_names)} accuracy: the last epoch's evaluation of the same weights")
    artifact = save_checkpoint(workdir, model, model_name=model_name, method=method, task=task, accuracy=accuracy)

    baseline = None
    if plan is not None and checkpoint_in is not None:
        baseline = build_model(model_name)
        baseline.load_state_dict(checkpoint_in["state_dict"])
        if p.channels_last:
            baseline.to(memory_format=torch.channels_last)
    t0 = time.perf_counter()
    m_metrics, m_units, m_details = measure_model(
        model, plan=plan, method=method, device=device, measure_cfg=measure_cfg, baseline=baseline
    )
    log(f"[{ENGINE}] accuracy {accuracy:.2f}%, measured in {time.perf_counter() - t0:.1f} s")

    metrics = {
        "accuracy": accuracy,
        "val_accuracy": val_accuracy,
        "loss": fitted.loss,
        "train_seconds": fitted.train_seconds,
        "images_per_s": fitted.images_per_s,
        **m_metrics,
    }
    units = {**_my_units(p, label), **m_units}
    nulls = m_details.pop("null_reasons", {})
    if val_accuracy is None:
        nulls["val_accuracy"] = "val_split is 0: the test split served as validation"
    if fitted.loss is None:
        nulls.update({k: "epochs is 0: no training ran" for k in ("loss", "images_per_s")})
    details = {
        "engine": ENGINE,
        "engine_version": __version__,
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "torchvision": torchvision.__version__,
        "device": str(device),
        "device_name": label,
        "threads": torch.get_num_threads(),
        "cuda": torch.version.cuda,
        "code": code_provenance(),
        "cpu_model": cpu_model(),
        "hostname": platform.node(),
        "task_id": task.get("task_id"),
        "stage": task.get("stage"),
        "params": params,
        "stage_params": p.as_dict(),
        "model": model_name,
        "seed": seed,
        "method": method if method is not None else {"name": "dense", "kind": "dense"},
        "dataset": ds.info,
        "validation": validation,
        "schedule": _schedule(p),
        "steps": fitted.steps,
        "final_lr": fitted.lr,
        "test_loss": test_loss,
        "history": fitted.history,
        "checkpoint": artifact,
        "input_checkpoint": (
            {
                "task_id": artifact_in.get("task_id"),
                "sha256": artifact_in["sha256"],
                "accuracy": checkpoint_in.get("accuracy"),
            }
            if artifact_in is not None
            else None
        ),
        **m_details,
        "null_reasons": nulls,
        "engine_process": engine_process if engine_process is not None else run_process(),
    }
    result = {"metrics": metrics, "units": units, "details": details}
    emit("result", **result)
    return result


def _schedule(p: StageParams) -> str:
    if p.lr_final is not None:
        return f"cosine per step from {p.lr} to {p.lr_final}"
    if p.scheduler == "none":
        return f"constant {p.lr}"
    cfg = p.scheduler["plateau"]
    return f"ReduceLROnPlateau on validation accuracy (mode max, patience {cfg['patience']}, factor {cfg['factor']})"


ENGINE_SOURCE = Path(__file__).resolve().parent
GIT_TIMEOUT_S = 2.0
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def _git(directory: Path, *args: str) -> str | None:
    """stdout of `git -C directory ARGS`, or None when git is missing, fails or takes over 2 s."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def git_provenance(directory: Path) -> dict:
    """{"commit", "dirty", "source"} of the git checkout holding `directory`: the HEAD commit and
    whether files under `directory` differ from it (untracked ones included); commit and dirty
    are null and source "unknown" when it is not a git checkout or git is missing."""
    head = _git(directory, "rev-parse", "HEAD")
    commit = head.strip() if head is not None else ""
    if not _SHA.fullmatch(commit):
        return {"commit": None, "dirty": None, "source": "unknown"}
    status = _git(directory, "status", "--porcelain", "--", ".")
    return {"commit": commit, "dirty": None if status is None else bool(status.strip()), "source": "git"}


@functools.cache
def code_provenance() -> dict:
    """git_provenance of this engine's source folder, computed once per process."""
    return git_provenance(ENGINE_SOURCE)


@functools.cache
def cpu_model() -> str | None:
    """The CPU's model name from /proc/cpuinfo (Linux), else platform.processor(), else null."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                    return value.strip()[:200]
    except OSError:
        pass
    return platform.processor()[:200] or None


def describe() -> dict:
    """What this engine can run, for the worker's hello."""
    from .models import MODELS
    from .sparsity import METHOD_KINDS
    from .train import DEFAULTS, FINETUNE_EPOCHS

    cuda = torch.cuda.is_available()
    return {
        "engine": ENGINE,
        "version": __version__,
        "python": platform.python_version(),
        "executable": sys.executable,
        "torch": str(torch.__version__),
        "torchvision": torchvision.__version__,
        "cuda": {
            "available": cuda,
            "version": torch.version.cuda,
            "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        },
        "devices": ["cpu", "cuda"] if cuda else ["cpu"],
        "models": list(MODELS),
        "methods": ["dense", *METHOD_KINDS],
        "datasets": ["cifar10", "synthetic"],
        "stage_params": {**DEFAULTS, "epochs": {"train": DEFAULTS["epochs"], "finetune": FINETUNE_EPOCHS}},
        "ranges": describe_ranges(),
        "code": code_provenance(),
        "serve": {"version": PROTOCOL_VERSION},
    }


def measure_ranges() -> dict:
    """measure.py's own table when it has one, else the fallback with the same keys."""
    try:
        from .measure import MEASURE_RANGES
    except ImportError:
        return ranges.FALLBACK_MEASURE
    return MEASURE_RANGES


def describe_ranges() -> dict:
    """The ranges the engine's checks use (ranges.py), for `describe`."""
    return {
        "stage_params": ranges.STAGE_PARAMS,
        "methods": ranges.METHODS,
        "measure": measure_ranges(),
        "seed": ranges.SEED,
        "rules": ranges.RULES,
    }
