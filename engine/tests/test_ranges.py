"""describe()["ranges"] says exactly what the engine's own checks accept: table-driven, every
RANGE's bounds are probed through the check that uses it (just outside: rejected; at an
inclusive bound: accepted)."""

import math

import pytest
from conftest import tiny_task

from sparsegrid_engine import measure, ranges
from sparsegrid_engine.protocol import InvalidTask
from sparsegrid_engine.runner import describe, validate_task
from sparsegrid_engine.sparsity import _KIND_KEYS, validate_method
from sparsegrid_engine.train import DEFAULTS, parse_params

RANGES = describe()["ranges"]
BLOCK = {"kind": "block", "shape": [4, 4], "probability": 0.5}


def outside(rng: dict) -> list:
    """Values just past each bound (and of the wrong kind) that the RANGE excludes."""
    kind = rng["type"]
    lo, hi = rng.get("min"), rng.get("max")
    out = [] if rng.get("nullable") else [None]
    if kind == "int":
        out += [lo - 1, hi + 1, float(lo) + 0.5, True]
    elif kind == "number":
        out += [lo if rng.get("min_exclusive") else math.nextafter(lo, -math.inf)]
        out += [hi if rng.get("max_exclusive") else math.nextafter(hi, math.inf)]
        out += [math.inf, math.nan, "1", True]
    elif kind == "bool":
        out += [1, "true"]
    elif kind == "enum":
        out += ["not-a-" + rng["values"][0], 0]
    elif kind == "int_list":
        size = rng.get("length", 1)
        out += [[lo - 1] + [lo] * (size - 1), [hi + 1] + [lo] * (size - 1), [], 7, [True] * size]
        if "length" in rng:
            out += [[lo] * (size + 1), [lo] * (size - 1) if size > 1 else [lo, lo]]
        if "max_length" in rng:
            out += [list(range(lo, lo + rng["max_length"] + 1))]
    else:
        raise AssertionError(f"no probe for {kind}")
    return out


def inside(rng: dict) -> list:
    """Values at the RANGE's inclusive bounds (and each enum value, null when nullable)."""
    kind = rng["type"]
    lo, hi = rng.get("min"), rng.get("max")
    out = [None] if rng.get("nullable") else []
    if kind in ("int", "number"):
        out += [v for v, open_ in ((lo, rng.get("min_exclusive")), (hi, rng.get("max_exclusive"))) if not open_]
    elif kind == "bool":
        out += [True, False]
    elif kind == "enum":
        out += list(rng["values"])
    elif kind == "int_list":
        if "length" in rng:
            out += [[lo] * rng["length"], [hi] * rng["length"]]
        else:
            out += [[lo], [hi], list(range(lo, lo + rng["max_length"]))]
    return out


def _cases():
    """(id, RANGE, check) for every RANGE in describe's table; check(value) raises InvalidTask."""
    cases = []
    for key, rng in RANGES["stage_params"].items():
        if rng["type"] == "scheduler":
            for sub, sub_rng in rng["plateau"].items():
                cases.append(
                    (
                        f"stage_params.scheduler.plateau.{sub}",
                        sub_rng,
                        lambda v, sub=sub: parse_params({"scheduler": {"plateau": {sub: v}}}, finetune=False),
                    )
                )
        else:
            cases.append((f"stage_params.{key}", rng, lambda v, key=key: parse_params({key: v}, finetune=False)))
    n_m = RANGES["methods"]["n_m"]
    cases.append(("methods.n_m.n", n_m["n"], lambda v: validate_method({"kind": "n_m", "n": v, "m": n_m["m"]["max"]})))
    cases.append(("methods.n_m.m", n_m["m"], lambda v: validate_method({"kind": "n_m", "n": n_m["n"]["min"], "m": v})))
    for key, rng in RANGES["methods"]["block"].items():
        cases.append((f"methods.block.{key}", rng, lambda v, key=key: validate_method({**BLOCK, key: v})))
    cases.append(("seed", RANGES["seed"], lambda v: validate_task(tiny_task(params={"seed": v}))))
    for key, rng in RANGES["measure"]["latency"].items():
        cases.append((f"measure.latency.{key}", rng, lambda v, key=key: _measure({key: v})))
    return cases


def _measure(latency: dict):
    if not hasattr(measure, "MEASURE_RANGES"):
        pytest.skip("measure.py exports no MEASURE_RANGES yet: its checks do not know these keys")
    measure.validate_measure_cfg({"latency": latency})


CASES = _cases()


@pytest.mark.parametrize("where, rng, check", CASES, ids=[c[0] for c in CASES])
def test_every_range_bound_is_enforced_by_the_engine(where, rng, check):
    key = where.rsplit(".", 1)[-1]
    for value in outside(rng):
        with pytest.raises(InvalidTask) as error:
            check(value)
        assert key in str(error.value), (value, str(error.value))
    for value in inside(rng):
        check(value)


def test_the_tables_cover_every_key_the_checks_read():
    assert set(RANGES["stage_params"]) == set(DEFAULTS)
    assert set(RANGES["methods"]["n_m"]) == _KIND_KEYS["n_m"]
    assert set(RANGES["methods"]["block"]) == _KIND_KEYS["block"]
    assert RANGES["methods"]["skip_aliases"] == ["first", "last", "shortcuts"]
    assert set(RANGES["measure"]["latency"]) == {
        "batch_sizes",
        "warmup",
        "iterations",
        "precision",
        "max_seconds",
        "block",
    }
    assert len(RANGES["rules"]) == 3 and all(isinstance(r, str) and r.endswith(".") for r in RANGES["rules"])


def test_every_number_has_finite_bounds():
    seen = 0

    def walk(node):
        nonlocal seen
        if isinstance(node, dict) and node.get("type") in ("int", "number", "int_list"):
            assert math.isfinite(node["min"]) and math.isfinite(node["max"]), node
            seen += 1
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)

    walk(RANGES)
    assert seen >= 25


def test_describe_measure_ranges_are_measure_py_s_own_table():
    expected = getattr(measure, "MEASURE_RANGES", ranges.FALLBACK_MEASURE)
    assert RANGES["measure"] == expected


def test_cross_key_rules_are_enforced():
    with pytest.raises(InvalidTask, match="'n' must be less than m = 4"):
        validate_method({"kind": "n_m", "n": 4, "m": 4})
    with pytest.raises(InvalidTask, match="'probability_start' must be at most probability"):
        validate_method({**BLOCK, "probability": 0.3, "probability_start": 0.4})
    validate_method({**BLOCK, "probability": 0.3, "probability_start": 0.3})


def test_errors_name_the_key_and_the_range():
    with pytest.raises(InvalidTask, match=r"parameter epochs must be an integer from 0 to 10000; got 10001\."):
        parse_params({"epochs": 10001}, finetune=False)
    with pytest.raises(InvalidTask, match=r"parameter lr must be a number > 0 and <= 10; got 11\."):
        parse_params({"lr": 11}, finetune=False)
    with pytest.raises(InvalidTask, match=r"key 'probability' must be a number > 0 and < 1 .*got 1\.0\."):
        validate_method({**BLOCK, "probability": 1.0})
    with pytest.raises(InvalidTask, match=r"parameter seed must be an integer from 0 to 2147483647; got 2147483648\."):
        validate_task(tiny_task(params={"seed": 2**31}))
