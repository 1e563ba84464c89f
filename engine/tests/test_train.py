"""The training loop: parameters, learning, schedules, sparsity hooks and determinism."""

import pytest
import torch
from torch import nn

from sparsegrid_engine import data, train
from sparsegrid_engine.models import build_model
from sparsegrid_engine.protocol import InvalidTask


def small_cnn(batch_norm: bool = True) -> nn.Module:
    """Three conv blocks, ~25k weights: trains in seconds where ResNet-18 needs minutes on CPU."""

    def block(i, o):
        layers = [nn.Conv2d(i, o, 3, padding=1, bias=not batch_norm)]
        layers += [nn.BatchNorm2d(o)] if batch_norm else []
        return nn.Sequential(*layers, nn.ReLU(), nn.MaxPool2d(2))

    return nn.Sequential(
        block(3, 16), block(16, 32), block(32, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)
    )


@pytest.fixture(scope="module")
def learnable():
    folder = data.ensure_synthetic(1500, 500, 0)
    return data.read_cifar_folder(folder)


def test_defaults_are_the_published_protocol():
    p = train.parse_params({"model": "resnet18", "seed": 1}, finetune=False)
    assert (p.epochs, p.batch_size, p.lr, p.momentum, p.weight_decay) == (10, 64, 0.05, 0.9, 5e-4)
    assert p.scheduler == {"plateau": {"patience": 5, "factor": 0.1}}
    assert (p.lr_final, p.val_split, p.max_steps, p.eval_batch_size, p.channels_last) == (None, 0, None, 256, False)
    assert train.parse_params({}, finetune=True).epochs == 3


def test_unknown_parameter_is_named_with_the_valid_ones():
    with pytest.raises(InvalidTask) as error:
        train.parse_params({"learning_rate": 0.1}, finetune=False)
    message = str(error.value)
    assert "unknown parameter(s) learning_rate" in message
    for name in ("lr", "lr_final", "val_split", "max_steps", "scheduler", "channels_last", "num_threads"):
        assert name in message


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"epochs": -1}, "epochs must be an integer from 0 to 10000"),
        ({"epochs": 10001}, "epochs must be an integer from 0 to 10000"),
        ({"batch_size": 1.5}, "batch_size must be an integer"),
        ({"lr": 0}, "lr must be a number > 0 and <= 10"),
        ({"momentum": 1.0}, "momentum must be a number >= 0 and < 1"),
        ({"channels_last": 1}, "channels_last must be true or false"),
        ({"scheduler": "cosine"}, 'scheduler must be "none", "plateau" or'),
        ({"scheduler": {"plateau": {"factor": 1.0}}}, "scheduler.plateau.factor must be a number > 0 and < 1"),
        ({"scheduler": {"plateau": {"patience": 2, "cooldown": 1}}}, "unknown plateau scheduler key"),
        ({"max_steps": 0}, "max_steps must be null or an integer from 1 to 10000000"),
        ({"epochs": True}, "epochs must be an integer"),
    ],
)
def test_bad_parameter_values_are_invalid_tasks(params, fragment):
    with pytest.raises(InvalidTask, match=fragment.replace("(", r"\(")):
        train.parse_params(params, finetune=False)


def test_short_training_on_synthetic_data_clearly_beats_chance(learnable):
    train.seed_everything(0)
    model = small_cnn()
    p = train.parse_params({"epochs": 4, "batch_size": 32, "max_steps": 40}, finetune=False)
    seen = []
    result = train.fit(model, learnable.train, learnable.test, p, seed=0, on_epoch=seen.append)
    accuracy, _ = train.evaluate(model, learnable.test)
    assert accuracy > 40.0  # chance is 10%
    assert [e["epoch"] for e in seen] == [1, 2, 3, 4] and seen[-1]["step"] == 160 == result.steps
    assert set(seen[0]) == {"epoch", "epochs", "step", "steps", "loss", "train_acc", "test_acc", "lr", "images_per_s"}
    assert result.loss < seen[0]["loss"]
    assert result.images_per_s > 0 and result.train_seconds > 0


def test_cosine_schedule_decays_from_lr_to_lr_final(learnable):
    model = small_cnn()
    p = train.parse_params({"epochs": 3, "batch_size": 16, "max_steps": 4, "lr": 1e-2, "lr_final": 1e-3}, finetune=True)
    result = train.fit(model, learnable.train, learnable.test, p, seed=0)
    lrs = [e["lr"] for e in result.history]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] < 1e-2
    assert result.lr == pytest.approx(1e-3 + (1e-2 - 1e-3) * (1 + torch.cos(torch.tensor(torch.pi * 11 / 12))) / 2)


def test_plateau_cuts_the_lr_when_validation_accuracy_stalls(learnable):
    # A learning rate this small leaves the predictions (without batch norm, whose running
    # statistics would move) unchanged, so every epoch after the first is a plateau. Smaller
    # rates would not do: ReduceLROnPlateau ignores cuts below its eps of 1e-8.
    model = small_cnn(batch_norm=False)
    p = train.parse_params(
        {
            "epochs": 3,
            "batch_size": 16,
            "max_steps": 2,
            "lr": 1e-6,
            "scheduler": {"plateau": {"patience": 0, "factor": 0.5}},
        },
        finetune=False,
    )
    result = train.fit(model, learnable.train, learnable.test, p, seed=0)
    assert [e["lr"] for e in result.history] == [1e-6, 1e-6, 5e-7]
    assert result.lr == 2.5e-7


def test_validation_split_is_reported_as_val_acc(learnable):
    rest, val = data.hold_out(learnable.train, 100)
    p = train.parse_params({"epochs": 1, "batch_size": 16, "max_steps": 2, "val_split": 100}, finetune=False)
    result = train.fit(small_cnn(), rest, val, p, seed=0, monitor_name="val_acc")
    assert "val_acc" in result.history[0] and "test_acc" not in result.history[0]


def test_same_seed_gives_the_same_losses_on_cpu(learnable):
    def losses(seed):
        train.seed_everything(seed)
        model = build_model("resnet18")
        p = train.parse_params({"epochs": 1, "batch_size": 8, "max_steps": 3, "eval_batch_size": 64}, finetune=False)
        small_test = data.Split(learnable.test.images[:32], learnable.test.labels[:32])
        result = train.fit(model, learnable.train, small_test, p, seed=seed)
        return result.loss, model.fc.weight.detach().clone()

    loss_a, weight_a = losses(7)
    loss_b, weight_b = losses(7)
    loss_c, _ = losses(8)
    assert loss_a == loss_b
    assert torch.equal(weight_a, weight_b)
    assert loss_a != loss_c


def test_sparsity_plan_keeps_masked_weights_zero_through_training(learnable):
    sparsity = pytest.importorskip("sparsegrid_engine.sparsity")
    train.seed_everything(0)
    model = small_cnn()
    plan = sparsity.apply_sparsity(model, {"name": "nm_2_4", "kind": "n_m", "n": 2, "m": 4, "skip": ["first"]})
    p = train.parse_params({"epochs": 2, "batch_size": 16, "max_steps": 5}, finetune=True)
    train.fit(model, learnable.train, learnable.test, p, seed=0, plan=plan)
    assert plan.masks, "the plan should cover the 16->32, 32->64 convs and the classifier"
    for name, keep in plan.masks.items():
        weight = model.get_parameter(name).detach()
        assert torch.all(weight[~keep] == 0), name
        assert weight[keep].abs().min() > 0, name  # kept weights still train
        groups = sparsity.gemm_view(weight).reshape(-1, 4)
        assert torch.all((groups != 0).sum(1) <= 2), name


def test_a_ramped_block_method_reaches_its_target_in_the_last_epoch(learnable):
    sparsity = pytest.importorskip("sparsegrid_engine.sparsity")
    assert [train.ramp_progress(e, 3) for e in range(3)] == [0.0, 0.5, 1.0]
    assert train.ramp_progress(0, 1) == 1.0
    model = small_cnn()
    method = {
        "name": "ramp",
        "kind": "block",
        "shape": [4, 4],
        "probability": 0.5,
        "probability_start": 0.3,
        "skip": ["first"],
    }
    plan = sparsity.apply_sparsity(model, method)
    first = plan.report(model)["sparsified_sparsity"]
    p = train.parse_params({"epochs": 3, "batch_size": 16, "max_steps": 1}, finetune=True)
    train.fit(model, learnable.train, learnable.test, p, seed=0, plan=plan)
    last = plan.report(model)["sparsified_sparsity"]
    assert first < 0.4 and 0.4 < last < 0.6  # random blocks: about 0.3, then about 0.5
