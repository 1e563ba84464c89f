"""The study's training loop: SGD with momentum, plateau or cosine schedule, device-side data.

Every hyperparameter is a task parameter; DEFAULTS is the published protocol (10 dense epochs,
3 fine-tune epochs, batch 64, lr 0.05, momentum 0.9, weight decay 5e-4, ReduceLROnPlateau with
patience 5 on validation accuracy). A sparsity plan, when given, is updated at each epoch start
and enforced after every optimizer step, so masked weights stay zero throughout.
"""

import math
import random
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from . import ranges
from .data import Split, augment, normalise, shuffled_batches, steps_per_epoch
from .protocol import InvalidTask

DEFAULTS = {
    "epochs": 10,  # passes over the training split; FINETUNE_EPOCHS when starting from a checkpoint
    "batch_size": 64,  # images per optimizer step
    "lr": 0.05,  # SGD learning rate at the start of the stage
    "momentum": 0.9,
    "weight_decay": 5e-4,  # L2 penalty, applied by SGD to every parameter
    "scheduler": {"plateau": {"patience": 5, "factor": 0.1}},  # on validation accuracy (mode max), or "none"
    "lr_final": None,  # if set: cosine decay per step from lr to lr_final, replacing the scheduler
    "val_split": 0,  # training images held out for validation; 0 = validate on the test split
    "max_steps": None,  # cap on optimizer steps per epoch (tests and demos)
    "eval_batch_size": 256,  # images per forward pass when evaluating
    "channels_last": False,  # NHWC memory format for model and inputs
    "num_threads": None,  # CPU threads for torch; None = torch's default
}
FINETUNE_EPOCHS = 3
IDENTITY_PARAMS = {"model": None, "seed": 0, "method": None}  # grid values, not hyperparameters
VALID_PARAMS = (*IDENTITY_PARAMS, *DEFAULTS)


@dataclass(frozen=True)
class StageParams:
    epochs: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    scheduler: object  # {"plateau": {"patience": int, "factor": float}} or "none"
    lr_final: float | None
    val_split: int
    max_steps: int | None
    eval_batch_size: int
    channels_last: bool
    num_threads: int | None

    def as_dict(self) -> dict:
        return asdict(self)


def _check(name, v, rng):
    if not ranges.accepts(rng, v):
        raise InvalidTask(f"parameter {name} must be {ranges.phrase(rng)}; got {v!r}.")
    return float(v) if rng["type"] == "number" and v is not None else v


def _scheduler(v):
    if v in ("none", None):
        return "none"
    if v == "plateau":
        v = {"plateau": {}}
    if isinstance(v, dict) and set(v) == {"plateau"} and isinstance(v["plateau"], dict):
        extra = set(v["plateau"]) - set(ranges.PLATEAU)
        if extra:
            raise InvalidTask(f"unknown plateau scheduler key(s) {sorted(extra)}; valid: patience, factor.")
        defaults = DEFAULTS["scheduler"]["plateau"]
        return {
            "plateau": {
                key: _check(f"scheduler.plateau.{key}", v["plateau"].get(key, defaults[key]), rng)
                for key, rng in ranges.PLATEAU.items()
            }
        }
    raise InvalidTask(
        f'parameter scheduler must be "none", "plateau" or {{"plateau": {{"patience": 5, "factor": 0.1}}}}; got {v!r}.'
    )


def parse_params(params: dict, *, finetune: bool) -> StageParams:
    """The stage's hyperparameters with defaults filled in; InvalidTask for unknown or bad ones."""
    if not isinstance(params, dict):
        raise InvalidTask(f'the task\'s "params" must be an object; got {params!r}.')
    unknown = sorted(set(params) - set(VALID_PARAMS))
    if unknown:
        raise InvalidTask(f"unknown parameter(s) {', '.join(unknown)}; valid parameters: {', '.join(VALID_PARAMS)}.")
    defaults = {**DEFAULTS, "epochs": FINETUNE_EPOCHS if finetune else DEFAULTS["epochs"]}
    values = {
        k: _scheduler(params.get(k, d)) if k == "scheduler" else _check(k, params.get(k, d), ranges.STAGE_PARAMS[k])
        for k, d in defaults.items()
    }
    return StageParams(**values)


def seed_everything(seed: int) -> None:
    """Seeds python, numpy and torch, and asks cuDNN for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def ramp_progress(epoch: int, epochs: int) -> float:
    """Where a ramped method stands at the start of `epoch` (0-based): 0 at the first epoch and 1
    at the last, so the last epoch fine-tunes at the method's full target (epoch/epochs would
    stop a 0.3 -> 0.5 ramp at 0.43 over three epochs). A single epoch runs at the target."""
    return 1.0 if epochs <= 1 else epoch / (epochs - 1)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def evaluate(model, split: Split, batch_size: int = 256, channels_last: bool = False) -> tuple[float, float]:
    """(top-1 accuracy in %, mean cross-entropy) of the model on a split, without augmentation."""
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=split.labels.device)
    loss = torch.zeros((), dtype=torch.float64, device=split.labels.device)
    for lo in range(0, len(split), batch_size):
        x = normalise(split.images[lo : lo + batch_size], channels_last)
        y = split.labels[lo : lo + batch_size]
        out = model(x)
        loss += F.cross_entropy(out, y, reduction="sum").double()
        correct += (out.argmax(1) == y).sum()
    model.train(was_training)
    n = max(1, len(split))
    return 100.0 * correct.item() / n, loss.item() / n


@dataclass
class FitResult:
    loss: float | None  # mean training loss of the last epoch; None when no epoch ran
    train_acc: float | None  # % of the last epoch's augmented training images classified right
    train_seconds: float  # wall time of the whole loop, per-epoch evaluation included
    images_per_s: float | None  # training images / seconds inside optimizer steps
    steps: int
    lr: float  # the learning rate at the end
    history: list = field(default_factory=list)  # the progress dict of each epoch


def fit(
    model,
    train: Split,
    monitor: Split,
    p: StageParams,
    *,
    seed: int,
    monitor_name: str = "test_acc",
    plan=None,
    on_epoch=None,
) -> FitResult:
    """Trains the model in place. `monitor` is the split whose accuracy drives the plateau
    scheduler and is reported each epoch as `monitor_name` (val_acc or test_acc)."""
    device = train.labels.device
    gen = torch.Generator().manual_seed(seed)  # data order and augmentation
    opt = torch.optim.SGD(model.parameters(), lr=p.lr, momentum=p.momentum, weight_decay=p.weight_decay)
    plateau = None
    if p.lr_final is None and p.scheduler != "none":
        cfg = p.scheduler["plateau"]
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="max", patience=cfg["patience"], factor=cfg["factor"]
        )
    per_epoch = steps_per_epoch(len(train), p.batch_size, p.max_steps)
    total = per_epoch * p.epochs
    result = FitResult(None, None, 0.0, None, 0, p.lr)
    step_seconds, images = 0.0, 0
    start = time.perf_counter()
    for epoch in range(p.epochs):
        if plan is not None:
            plan.update(model, ramp_progress(epoch, p.epochs))
        model.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        seen = 0
        _sync(device)
        t0 = time.perf_counter()
        for x, y in shuffled_batches(train, p.batch_size, gen, p.max_steps):
            if p.lr_final is not None:
                for g in opt.param_groups:
                    g["lr"] = p.lr_final + (p.lr - p.lr_final) * (1 + math.cos(math.pi * result.steps / total)) / 2
            out = model(normalise(augment(x, gen), p.channels_last))
            loss = F.cross_entropy(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if plan is not None:
                plan.enforce(model)
            result.steps += 1
            loss_sum += loss.detach().double() * len(y)
            correct += (out.argmax(1) == y).sum()
            seen += len(y)
        _sync(device)
        epoch_seconds = time.perf_counter() - t0
        step_seconds += epoch_seconds
        images += seen
        result.loss, result.train_acc = loss_sum.item() / seen, 100.0 * correct.item() / seen
        monitor_acc, _ = evaluate(model, monitor, p.eval_batch_size, p.channels_last)
        lr_used = opt.param_groups[0]["lr"]
        if plateau is not None:
            plateau.step(monitor_acc)
        progress = {
            "epoch": epoch + 1,
            "epochs": p.epochs,
            "step": result.steps,
            "steps": total,
            "loss": result.loss,
            "train_acc": result.train_acc,
            monitor_name: monitor_acc,
            "lr": lr_used,
            "images_per_s": seen / epoch_seconds if epoch_seconds > 0 else None,
        }
        result.history.append(progress)
        if on_epoch is not None:
            on_epoch(progress)
    result.train_seconds = time.perf_counter() - start
    result.images_per_s = images / step_seconds if step_seconds > 0 else None
    result.lr = opt.param_groups[0]["lr"]
    return result
