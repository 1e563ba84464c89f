"""The ranges the engine accepts, as data: one table per area, used by the engine's own checks
and published by `describe()["ranges"]` so a spec validator can reject what the engine would.

A RANGE is a plain dict (engine/CONTRACT.md, "describe"):

    {"type": "int" | "number" | "bool" | "enum" | "int_list" | "scheduler",
     "min": x, "max": x, "min_exclusive": bool, "max_exclusive": bool,   # bounds (of each entry for int_list)
     "values": [...],                                                    # enum
     "length": n, "max_length": n,                                       # int_list
     "nullable": bool}                                                   # null = "the engine decides"

Every number has a finite max: a task is hostile input. Rules between keys that a table cannot
state are checked by hand where the keys are read and listed as sentences in RULES.

This module imports nothing but the standard library.
"""

import math

SEED_MAX = 2**31 - 1


def int_range(lo: int, hi: int, *, nullable: bool = False) -> dict:
    rng = {"type": "int", "min": lo, "max": hi}
    return {**rng, "nullable": True} if nullable else rng


def number_range(lo: float, hi: float, *, lo_open=False, hi_open=False, nullable=False) -> dict:
    rng = {"type": "number", "min": lo, "max": hi}
    if lo_open:
        rng["min_exclusive"] = True
    if hi_open:
        rng["max_exclusive"] = True
    if nullable:
        rng["nullable"] = True
    return rng


# The task's seed (grid key `seed`): data order, augmentation, initialisation, block masks.
SEED = int_range(0, SEED_MAX)

PLATEAU = {
    "patience": int_range(0, 10_000),  # epochs without improvement before the lr is cut
    "factor": number_range(0, 1, lo_open=True, hi_open=True),  # lr multiplier at a cut
}

# Stage parameters (train.DEFAULTS): checked by train.parse_params.
STAGE_PARAMS = {
    "epochs": int_range(0, 10_000),  # 0 = evaluate and measure only
    "batch_size": int_range(2, 65_536),  # 2: batch norm needs more than one value per channel
    "lr": number_range(0, 10, lo_open=True),
    "momentum": number_range(0, 1, hi_open=True),
    "weight_decay": number_range(0, 1),
    # "none", "plateau" or {"plateau": {"patience", "factor"}}; the sub-keys' ranges are in "plateau".
    "scheduler": {"type": "scheduler", "values": ["none", "plateau"], "plateau": PLATEAU},
    "lr_final": number_range(0, 10, nullable=True),  # 0 allowed: cosine decay to zero
    "val_split": int_range(0, 1_000_000),
    "max_steps": int_range(1, 10_000_000, nullable=True),
    "eval_batch_size": int_range(1, 65_536),
    "channels_last": {"type": "bool"},
    "num_threads": int_range(1, 1024, nullable=True),
}

# Sparsity method keys: checked by sparsity.validate_method.
METHODS = {
    "n_m": {"n": int_range(1, 63), "m": int_range(2, 64)},
    "block": {
        "shape": {"type": "int_list", "min": 1, "max": 64, "length": 2},
        "select": {"type": "enum", "values": ["random", "magnitude"]},
        "probability": number_range(0, 1, lo_open=True, hi_open=True),
        "probability_start": number_range(0, 1, hi_open=True),
        "seed": int_range(0, SEED_MAX),
    },
    "skip_aliases": ["first", "last", "shortcuts"],
}

# measure.latency, used only when measure.py does not export MEASURE_RANGES itself.
FALLBACK_MEASURE = {
    "latency": {
        "batch_sizes": {"type": "int_list", "min": 1, "max": 4096, "max_length": 16},
        "warmup": int_range(0, 100_000),
        "iterations": int_range(1, 1_000_000),
        "precision": number_range(0, 0.5),
        "max_seconds": number_range(0, 3600, lo_open=True),
        "block": int_range(1, 10_000),
    }
}

RULES = [
    "n_m methods: n < m.",
    "block methods: probability_start <= probability.",
    "measure.latency.batch_sizes: no batch size twice.",
]


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _within(value, rng: dict) -> bool:
    lo, hi = rng.get("min"), rng.get("max")
    if lo is not None and (value < lo or (rng.get("min_exclusive") and value == lo)):
        return False
    if hi is not None and (value > hi or (rng.get("max_exclusive") and value == hi)):
        return False
    return True


def accepts(rng: dict, value) -> bool:
    """Whether `value` lies in the RANGE (type "scheduler" is checked by train.py, not here)."""
    if value is None:
        return bool(rng.get("nullable"))
    kind = rng["type"]
    if kind == "int":
        return _is_int(value) and _within(value, rng)
    if kind == "number":
        return _is_number(value) and _within(value, rng)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "enum":
        return isinstance(value, str) and value in rng["values"]
    if kind == "int_list":
        if not isinstance(value, list) or not value:
            return False
        if "length" in rng and len(value) != rng["length"]:
            return False
        if "max_length" in rng and len(value) > rng["max_length"]:
            return False
        return all(_is_int(v) and _within(v, rng) for v in value)
    raise ValueError(f"no generic check for range type {kind!r}")


def _bounds(rng: dict) -> str:
    lo, hi = rng.get("min"), rng.get("max")
    lo_open, hi_open = rng.get("min_exclusive", False), rng.get("max_exclusive", False)
    if lo is not None and hi is not None and not lo_open and not hi_open:
        return f"from {lo} to {hi}"
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {hi}")
    return " and ".join(parts)


def phrase(rng: dict) -> str:
    """The RANGE in words, for error messages: "an integer from 0 to 10000", "a number > 0 and <= 10"."""
    kind = rng["type"]
    if kind == "int":
        text = f"an integer {_bounds(rng)}"
    elif kind == "number":
        text = f"a number {_bounds(rng)}"
    elif kind == "bool":
        text = "true or false"
    elif kind == "enum":
        text = "one of " + ", ".join(rng["values"])
    elif kind == "int_list":
        if "length" in rng:
            size = f"{rng['length']} "
        elif "max_length" in rng:
            size = f"1 to {rng['max_length']} "
        else:
            size = "1 or more "
        text = f"a list of {size}integers, each {_bounds(rng)}"
    else:
        raise ValueError(f"no phrase for range type {kind!r}")
    return f"null or {text}" if rng.get("nullable") else text
