"""The adaptive, interleaved timing loop and its bootstrap intervals (sparsegrid_engine/timing.py)."""

import itertools
import random
import time

import numpy as np
import pytest
import torch

from sparsegrid_engine.timing import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    FASTER,
    MAX_BLOCKS,
    MIN_PAIRS,
    SAME,
    SLOWER,
    STOP_BUDGET,
    STOP_CAP,
    STOP_FIXED,
    STOP_PRECISION,
    bootstrap_ratio_ci,
    percentile,
    time_adaptive,
    verdict,
)


def busy(ms: float):
    """A call that spins for `ms` on perf_counter: its duration survives a loaded machine."""

    def spin():
        end = time.perf_counter() + ms / 1000
        while time.perf_counter() < end:
            pass

    return spin


def jittery(low_ms: float, high_ms: float, seed: int):
    """Spins for a seeded random duration per call: never-equal blocks, so intervals never collapse."""
    draw = random.Random(seed)
    return lambda: busy(draw.uniform(low_ms, high_ms))()


def counting(calls: list, name: str):
    return lambda: calls.append(name)


def test_identical_variants_show_no_detectable_difference():
    a = torch.randn(96, 96, generator=torch.Generator().manual_seed(0))
    work = lambda: a @ a  # noqa: E731  (one callable, timed as both variants)
    # A 95% interval misses the true ratio (1.0 here) in about 1 run of 20 by design, so a
    # correct loop may fail one attempt; three attempts fail together about 1 in 8000 runs.
    # A biased loop (e.g. one variant always timed first after a switch) fails all three.
    outcomes = []
    for _ in range(3):
        run = time_adaptive(
            {"dense": work, "masked": work},
            device="cpu",
            warmup=20,
            iterations=300,
            block=10,
            precision=0,
            max_seconds=30,
            comparisons=[("masked_vs_dense", "dense", "masked")],
        )
        result = run.comparisons[0]
        outcomes.append(result)
        if result["verdict"] == SAME:
            break
    assert result["verdict"] == SAME, outcomes
    lo, hi = result["ci95"]
    assert lo <= 1.0 <= hi
    assert lo <= result["speedup"] <= hi or abs(result["speedup"] - 1) < 0.05
    assert result["pairs"] == 30


def test_a_real_two_fold_difference_is_detected_both_ways():
    run = time_adaptive(
        # Short spins: a 2 ms one is often preempted on a loaded machine; block medians of 10 calls
        # shrug off the rest (measured at load 12 on 2 cores: 0.5002, ci95 within ±0.0003).
        {"short": busy(0.2), "long": busy(0.4)},
        device="cpu",
        warmup=2,
        iterations=100,
        block=10,
        precision=0,
        max_seconds=30,
        comparisons=[("long_vs_short", "short", "long"), ("short_vs_long", "long", "short")],
    )
    slower, faster = run.comparisons
    assert slower["verdict"] == SLOWER and faster["verdict"] == FASTER
    assert 0.35 <= slower["speedup"] <= 0.7 and 1.4 <= faster["speedup"] <= 2.9
    assert slower["ci95"][1] < 1.0 < faster["ci95"][0]
    assert slower["ci95"][0] <= slower["speedup"] <= slower["ci95"][1]
    assert slower["pairs"] == faster["pairs"] == 10
    # speedup = median(baseline calls) / median(measured calls), the latency metrics' ratio
    assert slower["speedup"] == percentile(run.times["short"], 50) / percentile(run.times["long"], 50)


def test_the_interval_is_recomputable_from_the_recorded_blocks():
    base = [1.0, 1.1, 0.9, 1.2, 1.05, 0.95, 1.3]
    meas = [2.0, 2.3, 1.9, 2.1, 2.2, 1.8, 2.5]
    idx = np.random.default_rng(BOOTSTRAP_SEED).integers(0, len(base), size=(BOOTSTRAP_RESAMPLES, len(base)))
    ratios = np.median(np.array(base)[idx], axis=1) / np.median(np.array(meas)[idx], axis=1)
    assert bootstrap_ratio_ci(base, meas) == pytest.approx(list(np.percentile(ratios, [2.5, 97.5])), abs=0)
    assert bootstrap_ratio_ci(base, meas) == bootstrap_ratio_ci(base, meas)  # seeded: deterministic
    assert verdict(bootstrap_ratio_ci(base, meas)) == SLOWER


def test_too_few_pairs_or_a_zero_median_give_no_interval_and_no_verdict():
    assert bootstrap_ratio_ci([1.0] * (MIN_PAIRS - 1), [2.0] * (MIN_PAIRS - 1)) is None
    assert bootstrap_ratio_ci([1.0] * MIN_PAIRS, [0.0] * MIN_PAIRS) is None
    assert verdict(None) is None
    assert verdict([0.98, 1.02]) == SAME and verdict([1.01, 1.2]) == FASTER and verdict([0.5, 0.99]) == SLOWER
    with pytest.raises(ValueError, match="differ in number"):
        bootstrap_ratio_ci([1.0] * 6, [1.0] * 5)


def test_precision_zero_runs_exactly_the_iterations():
    calls = []
    run = time_adaptive(
        {"a": counting(calls, "a"), "b": counting(calls, "b")},
        device="cpu",
        warmup=3,
        iterations=23,
        block=5,
        precision=0,
        max_seconds=30,
        comparisons=[("b_vs_a", "a", "b")],
    )
    assert calls.count("a") == calls.count("b") == 3 + 23
    assert {k: len(v) for k, v in run.times.items()} == {"a": 23, "b": 23}
    assert {k: len(v) for k, v in run.blocks.items()} == {"a": 5, "b": 5}
    assert run.stopped == STOP_FIXED and run.block_calls == 5


def test_a_spent_time_budget_stops_the_loop_after_the_minimum():
    ticks = itertools.count()  # a clock that advances one second per reading
    run = time_adaptive(
        {"a": busy(0.01), "b": busy(0.01)},
        device="cpu",
        warmup=0,
        iterations=10,
        block=5,
        precision=1e-9,
        max_seconds=0.5,
        comparisons=[("b_vs_a", "a", "b")],
        clock=lambda: float(next(ticks)),
    )
    assert run.stopped == STOP_BUDGET
    assert len(run.times["a"]) == 10 and len(run.blocks["b"]) == 2  # the minimum ran, nothing more
    assert run.comparisons[0]["ci95"] is None and run.comparisons[0]["verdict"] is None  # 2 < MIN_PAIRS


def test_the_loop_stops_at_the_block_cap_when_precision_is_out_of_reach():
    run = time_adaptive(
        {"a": jittery(0.01, 0.06, 1), "b": jittery(0.01, 0.06, 2)},
        device="cpu",
        warmup=0,
        iterations=1,
        block=1,
        precision=1e-9,
        max_seconds=3600,
        comparisons=[("b_vs_a", "a", "b")],
    )
    assert run.stopped == STOP_CAP
    assert len(run.blocks["a"]) == len(run.blocks["b"]) == MAX_BLOCKS
    assert run.comparisons[0]["pairs"] == MAX_BLOCKS


def test_a_single_variant_targets_its_median_and_stops_when_precise():
    run = time_adaptive(
        {"as_given": busy(0.2)}, device="cpu", warmup=1, iterations=5, block=1, precision=0.5, max_seconds=3600
    )
    # Five blocks give the first interval; a ±50% target is met at once by a steady spin.
    assert run.stopped == STOP_PRECISION and len(run.blocks["as_given"]) == MIN_PAIRS
    assert run.comparisons == []


@pytest.mark.parametrize("precision", [0, 1e-9])
def test_blocks_stay_bounded_aligned_and_are_the_medians_of_their_calls(precision):
    # 1000 calls at block 1 would be 1000 blocks: blocks grow to 5 calls so 200 hold them.
    run = time_adaptive(
        {"a": jittery(0.0, 0.01, 3), "b": jittery(0.0, 0.01, 4), "c": jittery(0.0, 0.01, 5)},
        device="cpu",
        warmup=0,
        iterations=1000,
        block=1,
        precision=precision,
        max_seconds=3600,
        comparisons=[("b_vs_a", "a", "b"), ("c_vs_a", "a", "c")],
    )
    assert run.block_calls == 5
    assert {k: len(v) for k, v in run.blocks.items()} == {"a": MAX_BLOCKS, "b": MAX_BLOCKS, "c": MAX_BLOCKS}
    assert {k: len(v) for k, v in run.times.items()} == {"a": 1000, "b": 1000, "c": 1000}
    assert run.stopped == (STOP_FIXED if precision == 0 else STOP_CAP)
    for name, calls in run.times.items():
        for i, median in enumerate(run.blocks[name]):
            assert median == round(percentile(calls[i * 5 : (i + 1) * 5], 50), 6)


def test_adaptive_rounds_interleave_and_flip_the_order():
    calls = []
    time_adaptive(
        {"a": counting(calls, "a"), "b": counting(calls, "b")},
        device="cpu",
        warmup=0,
        iterations=4,
        block=2,
        precision=0,
        max_seconds=30,
    )
    assert calls == ["a", "a", "b", "b", "b", "b", "a", "a"]


def test_a_comparison_of_an_untimed_variant_is_refused():
    with pytest.raises(ValueError, match="must be timed variants"):
        time_adaptive(
            {"a": busy(0)},
            device="cpu",
            warmup=0,
            iterations=1,
            block=1,
            precision=0,
            max_seconds=1,
            comparisons=[("x", "a", "missing")],
        )
