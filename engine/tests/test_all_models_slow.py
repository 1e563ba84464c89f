"""Every model through the whole pipeline via the CLI: dense train, then 2:4 and ramped 4x4-block
fine-tunes from its checkpoint. Minutes on a CPU, so deselected by default; run it with

    cd engine && PYTHONPATH=. ../.venv/bin/python -m pytest -q -m slow tests
"""

import pytest
from conftest import run_engine, tiny_task
from test_cli import CONTRACT_METRICS, assert_contract

from sparsegrid_engine.models import MODELS

METHODS = {
    "nm_2_4": {"name": "nm_2_4", "kind": "n_m", "n": 2, "m": 4, "skip": ["first", "last"]},
    "block_4x4": {
        "name": "block_4x4",
        "kind": "block",
        "shape": [4, 4],
        "select": "random",
        "probability": 0.5,
        "probability_start": 0.3,
        "skip": ["first", "last"],
    },
}
# Null on a CPU: no sparse kernel runs there (the reason is in details.null_reasons).
NULL_ON_CPU = {"latency_sparse_ms"}


def _checked(run, expect_val: bool):
    result = assert_contract(run)
    metrics = result["metrics"]
    for name in CONTRACT_METRICS:
        if name in NULL_ON_CPU or (name == "val_accuracy" and not expect_val):
            assert metrics[name] is None or name in NULL_ON_CPU, name
            continue
        assert isinstance(metrics[name], (int, float)), (name, metrics[name])
    return result


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_model_trains_sparsifies_and_reports_every_metric(model, tmp_path, cache_dir):
    params = {"model": model, "batch_size": 16, "max_steps": 3, "epochs": 1}
    trained = run_engine(tiny_task(params=params), tmp_path / "train", cache_dir)
    dense = _checked(trained, expect_val=False)
    (artifact,) = trained.of("artifact")
    inputs = {
        "train": {
            "task_id": "t" * 64,
            "name": "checkpoint",
            "sha256": artifact["sha256"],
            "path": str(trained.workdir / artifact["path"]),
        }
    }
    sparse = {}
    for name, method in METHODS.items():
        task = tiny_task(
            stage="finetune",
            method=method,
            inputs=inputs,
            params={**params, "method": name, "epochs": 2, "lr": 1e-3, "lr_final": 1e-4, "val_split": 20},
        )
        sparse[name] = _checked(run_engine(task, tmp_path / name, cache_dir), expect_val=True)["metrics"]
    print(
        f"\n{model}: dense acc {dense['metrics']['accuracy']:.1f} gmacs {dense['metrics']['gmacs']:.3f} "
        f"train {dense['metrics']['train_seconds']:.1f}s | "
        + " | ".join(
            f"{k} sparsity {v['sparsity']:.3f} gmacs_eff {v['gmacs_effective']:.3f} "
            f"weights {v['weight_compressed_mib']:.1f}/{v['weight_mib']:.1f} MiB"
            for k, v in sparse.items()
        )
    )
    assert dense["metrics"]["sparsity"] < 0.01
    for name, metrics in sparse.items():
        assert metrics["sparsity"] > 0.2, name
        assert metrics["gmacs_effective"] < metrics["gmacs"], name
        assert metrics["weight_compressed_mib"] < metrics["weight_mib"], name
