"""The final evaluation reuses the last epoch's when it saw the same split and the same weights
(issue #12): counted by wrapping `evaluate`, and checked against a fresh evaluation of the
checkpoint the task wrote."""

import pytest
import torch
from conftest import tiny_task
from torch import nn
from torch.nn.utils import prune

from sparsegrid_engine import data, runner, train
from sparsegrid_engine.models import build_model

TEST_IMAGES, VAL_IMAGES = 40, 20  # tiny_task's test split; the held-out split of the val_split cases


def small_model() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    )


@pytest.fixture(scope="module")
def learnable():
    return data.read_cifar_folder(data.ensure_synthetic(200, 60, 0))


@pytest.fixture
def counted(monkeypatch):
    """Every evaluate() call, as the number of images of the split it evaluated."""
    calls = []
    real = train.evaluate

    def spy(model, split, *args, **kwargs):
        calls.append(len(split))
        return real(model, split, *args, **kwargs)

    monkeypatch.setattr(train, "evaluate", spy)
    monkeypatch.setattr(runner, "evaluate", spy, raising=False)  # in case the runner calls it itself
    return calls


def fresh(task, workdir, split: str) -> tuple[float, float]:
    """(accuracy, loss) of the checkpoint the task wrote, evaluated now on the named split."""
    params = task["params"]
    model = build_model(params["model"])
    model.load_state_dict(torch.load(workdir / runner.CHECKPOINT, weights_only=True)["state_dict"])
    ds = data.load_data(task["data"])
    target = ds.test if split == "test" else data.hold_out(ds.train, params["val_split"])[1]
    return train.evaluate(model, target, params["eval_batch_size"])


def test_with_val_split_0_the_test_split_is_evaluated_once_per_epoch_and_not_again(tmp_path, counted, capsys):
    task = tiny_task(params={"epochs": 2}, measure={})
    result = runner.run_task(task, tmp_path / "w")
    # One evaluation per epoch, the last one after the last optimizer step; none after fit.
    assert counted == [TEST_IMAGES, TEST_IMAGES]
    accuracy, loss = fresh(task, tmp_path / "w", "test")
    assert result["metrics"]["accuracy"] == accuracy
    assert result["details"]["test_loss"] == loss
    assert result["details"]["history"][-1]["test_acc"] == accuracy
    assert "test accuracy: the last epoch's evaluation of the same weights" in capsys.readouterr().err


def test_with_val_split_the_test_split_is_evaluated_once_at_the_end(tmp_path, counted, capsys):
    task = tiny_task(params={"epochs": 2, "val_split": VAL_IMAGES}, measure={})
    result = runner.run_task(task, tmp_path / "w")
    # The validation split each epoch (the last one is reused at the end); the test split once.
    assert counted == [VAL_IMAGES, VAL_IMAGES, TEST_IMAGES]
    accuracy, loss = fresh(task, tmp_path / "w", "test")
    assert (result["metrics"]["accuracy"], result["details"]["test_loss"]) == (accuracy, loss)
    val_accuracy, _ = fresh(task, tmp_path / "w", "val")
    assert result["metrics"]["val_accuracy"] == val_accuracy == result["details"]["history"][-1]["val_acc"]
    assert "validation accuracy: the last epoch's" in capsys.readouterr().err


def test_weights_changed_after_the_last_epoch_are_evaluated_afresh(tmp_path, counted, monkeypatch, capsys):
    # No path of the runner changes the weights after fit today (the masks are enforced in place
    # after every step, so strip() has nothing to remove); this stands for one that would, such
    # as a best-checkpoint restore or a mask applied at the end.
    real_fit = runner.fit
    seen = {}

    def fit_then_change(model, *args, **kwargs):
        fitted = real_fit(model, *args, **kwargs)
        seen["loss"] = fitted.last_evaluation.loss
        with torch.no_grad():
            model.fc.weight.mul_(0.5)
        return fitted

    monkeypatch.setattr(runner, "fit", fit_then_change)
    task = tiny_task(params={"epochs": 2}, measure={})
    result = runner.run_task(task, tmp_path / "w")
    assert counted == [TEST_IMAGES, TEST_IMAGES, TEST_IMAGES]
    accuracy, loss = fresh(task, tmp_path / "w", "test")
    assert (result["metrics"]["accuracy"], result["details"]["test_loss"]) == (accuracy, loss)
    assert loss != seen["loss"]
    assert "the last epoch's evaluation" not in capsys.readouterr().err


def test_epochs_0_evaluates_once(tmp_path, counted, capsys):
    result = runner.run_task(tiny_task(params={"epochs": 0}, measure={}), tmp_path / "w")
    assert counted == [TEST_IMAGES]
    assert result["details"]["history"] == []


def test_a_last_epoch_cut_short_by_max_steps_still_evaluates_the_final_weights(learnable):
    train.seed_everything(0)
    model = small_model()
    p = train.parse_params({"epochs": 2, "batch_size": 16, "max_steps": 3, "eval_batch_size": 32}, finetune=False)
    fitted = train.fit(model, learnable.train, learnable.test, p, seed=0)
    assert fitted.steps == 6  # 2 x 3 of the 13 steps an epoch would have
    last = fitted.last_evaluation
    assert last is not None and last.split is learnable.test and last.state.matches(model)
    assert (last.accuracy, last.loss) == train.evaluate(model, learnable.test, 32)
    assert last.accuracy == fitted.history[-1]["test_acc"]
    assert train.evaluate_reusing(model, learnable.test, 32, False, last) == (last.accuracy, last.loss, True)


def _step(model, split):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    x = data.normalise(split.images[:8], False)
    nn.functional.cross_entropy(model(x), split.labels[:8]).backward()
    opt.step()


def _forward_in_train_mode(model, split):  # moves the batch-norm running statistics
    model.train()
    with torch.no_grad():
        model(data.normalise(split.images[:8], False))


def _through_data(model, split):  # bypasses the tensors' version counters
    model[5].weight.data[0, 0] += 1.0


CHANGES = {
    "optimizer step": _step,
    "batch-norm statistics": _forward_in_train_mode,
    "in place through .data": _through_data,
    "channels_last": lambda model, split: model.to(memory_format=torch.channels_last),
    "forward pre-hook": lambda model, split: model[5].register_forward_pre_hook(lambda m, args: None),
    "prune reparametrisation": lambda model, split: prune.identity(model[5], "weight"),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_any_change_to_the_evaluated_state_forces_a_fresh_evaluation(learnable, change):
    torch.manual_seed(0)
    model = small_model()
    last = train.evaluate_recorded(model, learnable.test, 32)
    assert train.evaluate_reusing(model, learnable.test, 32, False, last)[2]  # unchanged: reused
    model.train()  # the mode does not count: evaluate() sets eval mode itself
    assert last.state.matches(model)
    CHANGES[change](model, learnable.test)
    assert not last.state.matches(model)
    accuracy, loss, reused = train.evaluate_reusing(model, learnable.test, 32, False, last)
    assert not reused and (accuracy, loss) == train.evaluate(model, learnable.test, 32)


def test_the_sign_of_zero_counts(learnable):
    model = small_model()
    with torch.no_grad():
        model[5].bias[0] = 0.0
    last = train.evaluate_recorded(model, learnable.test, 32)
    with torch.no_grad():
        model[5].bias[0] = -0.0
    assert not last.state.matches(model)


def test_another_split_or_other_settings_are_not_reused(learnable):
    model = small_model()
    last = train.evaluate_recorded(model, learnable.test, 32)
    copy = data.Split(learnable.test.images, learnable.test.labels)  # same tensors, another split
    assert not train.evaluate_reusing(model, copy, 32, False, last)[2]
    assert not train.evaluate_reusing(model, learnable.test, 16, False, last)[2]
    assert not train.evaluate_reusing(model, learnable.test, 32, True, last)[2]
    assert not train.evaluate_reusing(model, learnable.test, 32, False, None)[2]
