"""Interleaved, blocked, adaptive timing with bootstrap intervals on every comparison.

Variants are timed in blocks of `block_calls` calls each, one block per variant per round,
the order of variants flipped every round; entry i of every variant's block list was timed
in round i, under the same machine load. After warm-up and at least `iterations` calls per
variant, the loop stops when the 95% interval of every comparison's speedup (or, with no
comparison, of the first variant's median) has a relative half-width of at most `precision`,
when `max_seconds` of timing is spent, or when `max_blocks` rounds were timed.
`precision = 0` turns the adaptive part off: exactly `iterations` calls run.

Intervals: percentile bootstrap over the paired blocks. One resample draws block indices
with replacement (the same indices for both variants of a comparison, so each pair stays
together); its statistic is the ratio of the medians of the resampled per-block medians
(median of the baseline's block medians / median of the measured variant's block medians).
The bootstrap works on the recorded (rounded) block medians with a fixed seed, so the
interval can be recomputed from details.latency alone. The point speedup is the ratio of
the medians of all calls, as the latency metrics are. "Relative half-width" is
(hi - lo) / (hi + lo): the half-width over the interval's midpoint.

    run = time_adaptive({"a": fa, "b": fb}, device="cpu", warmup=5, iterations=200, block=10,
                        precision=0.02, max_seconds=30, comparisons=[("b_vs_a", "a", "b")])
    run.comparisons[0]["speedup"], run.comparisons[0]["ci95"], run.comparisons[0]["verdict"]
"""

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

MAX_BLOCKS = 200  # rounds per batch size at most; block lists never grow past it
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
MIN_PAIRS = 5  # fewer block pairs give no interval (a bootstrap over 1-4 blocks is not one)
CHECK_EVERY = 4  # rounds between precision checks once the minimum has run, or 1/8 of the rounds
# timed so far where that is more (an interval narrows with the square root of the blocks)
BLOCK_DECIMALS = 6  # block medians kept to 1e-6 ms (1 ns), below the timers' resolution

STOP_PRECISION = "precision reached"
STOP_BUDGET = "time budget spent"
STOP_CAP = "block cap reached"
STOP_FIXED = "fixed count"

FASTER, SLOWER, SAME = "faster", "slower", "no detectable difference"

INTERVAL_TEXT = (
    f"95% percentile bootstrap over the interleaved block pairs ({BOOTSTRAP_RESAMPLES} resamples of block "
    f"indices, numpy default_rng seed {BOOTSTRAP_SEED}): ratio of the medians of the resampled per-block "
    f"medians; no interval with fewer than {MIN_PAIRS} pairs"
)


# ---------------------------------------------------------------------------------------
# Summaries


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]) of a non-empty list."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarize(samples: list[float]) -> dict:
    return {
        "median": percentile(samples, 50),
        "p10": percentile(samples, 10),
        "p90": percentile(samples, 90),
        "mean": sum(samples) / len(samples),
        "n": len(samples),
    }


# ---------------------------------------------------------------------------------------
# Intervals


def _interval(samples: np.ndarray) -> list[float] | None:
    finite = samples[np.isfinite(samples)]
    if finite.size < samples.size:  # a zero median in some resample: no honest interval
        return None
    lo, hi = np.percentile(samples, [2.5, 97.5])
    return [float(lo), float(hi)]


def bootstrap_ratio_ci(baseline: Sequence[float], measured: Sequence[float]) -> list[float] | None:
    """95% interval of median(baseline blocks) / median(measured blocks), blocks resampled in pairs.

    None with fewer than MIN_PAIRS pairs or where a resampled measured median is zero.
    """
    base, meas = np.asarray(baseline, dtype=float), np.asarray(measured, dtype=float)
    if base.shape != meas.shape:
        raise ValueError(f"paired blocks differ in number: {base.size} vs {meas.size}")
    if base.size < MIN_PAIRS:
        return None
    idx = np.random.default_rng(BOOTSTRAP_SEED).integers(0, base.size, size=(BOOTSTRAP_RESAMPLES, base.size))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.median(base[idx], axis=1) / np.median(meas[idx], axis=1)
    return _interval(ratios)


def bootstrap_median_ci(blocks: Sequence[float]) -> list[float] | None:
    """95% interval of the median of the block medians (the target with no comparison)."""
    values = np.asarray(blocks, dtype=float)
    if values.size < MIN_PAIRS:
        return None
    idx = np.random.default_rng(BOOTSTRAP_SEED).integers(0, values.size, size=(BOOTSTRAP_RESAMPLES, values.size))
    return _interval(np.median(values[idx], axis=1))


def relative_half_width(ci: list[float] | None) -> float:
    """(hi - lo) / (hi + lo); infinite where there is no interval."""
    if ci is None or ci[0] + ci[1] <= 0:
        return math.inf
    return (ci[1] - ci[0]) / (ci[1] + ci[0])


def verdict(ci: list[float] | None) -> str | None:
    """faster / slower / no detectable difference; None without an interval (no verdict then:
    "no detectable difference" is a finding, which too few blocks cannot support)."""
    if ci is None:
        return None
    if ci[0] > 1:
        return FASTER
    if ci[1] < 1:
        return SLOWER
    return SAME


def compare(name: str, baseline: str, measured: str, times: dict, blocks: dict) -> dict:
    """The interfaces.md comparison record: speedup = median(baseline calls) / median(measured calls)."""
    denominator = percentile(times[measured], 50)
    speedup = percentile(times[baseline], 50) / denominator if denominator > 0 else None
    ci = bootstrap_ratio_ci(blocks[baseline], blocks[measured]) if speedup is not None else None
    return {
        "name": name,
        "baseline": baseline,
        "measured": measured,
        "speedup": speedup,
        "ci95": ci,
        "verdict": verdict(ci),
        "pairs": len(blocks[measured]),
    }


# ---------------------------------------------------------------------------------------
# The loop


def time_block(fn: Callable, count: int, device: torch.device) -> list[float]:
    """Per-call times (ms) of `count` calls: CUDA events around each call (one synchronize
    before and after the block) on a GPU, time.perf_counter around each call on CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(count)]
        for start, end in events:
            start.record()
            fn()
            end.record()
        torch.cuda.synchronize(device)
        return [start.elapsed_time(end) for start, end in events]
    times = []
    for _ in range(count):
        began = time.perf_counter()
        fn()
        times.append((time.perf_counter() - began) * 1000)
    return times


def block_calls_for(iterations: int, block: int, max_blocks: int = MAX_BLOCKS) -> int:
    """Calls per block: `block`, or more where `iterations` would not fit in `max_blocks` blocks."""
    return max(block, -(-iterations // max_blocks))


@dataclass
class TimingRun:
    times: dict[str, list[float]]  # every timed call (ms), in block order
    blocks: dict[str, list[float]]  # per-block medians (ms), aligned by round
    block_calls: int  # calls per block (the last block of a fixed count may hold fewer)
    stopped: str
    comparisons: list[dict]
    seconds: float  # wall time of the timed loop after warm-up


def _precise(blocks: dict, comparisons: Sequence[tuple[str, str, str]], first: str, precision: float) -> bool:
    if not comparisons:
        return relative_half_width(bootstrap_median_ci(blocks[first])) <= precision
    return all(
        relative_half_width(bootstrap_ratio_ci(blocks[base], blocks[meas])) <= precision
        for _, base, meas in comparisons
    )


def time_adaptive(
    variants: dict[str, Callable],
    *,
    device,
    warmup: int,
    iterations: int,
    block: int,
    precision: float,
    max_seconds: float,
    comparisons: Sequence[tuple[str, str, str]] = (),
    max_blocks: int = MAX_BLOCKS,
    clock: Callable[[], float] = time.perf_counter,
) -> TimingRun:
    """Times `variants` interleaved in blocks until the intervals are tight (module docstring).

    `comparisons`: (name, baseline variant, measured variant) triples. `clock` measures the
    time budget only (tests pass a fake one); calls are timed by time_block. The minimum of
    `iterations` calls per variant always runs, whatever the budget.
    """
    device = torch.device(device)
    names = list(variants)
    for _, base, meas in comparisons:
        if base not in variants or meas not in variants:
            raise ValueError(f"comparison of {meas!r} against {base!r}: both must be timed variants")
    calls = block_calls_for(iterations, block, max_blocks)
    fixed = precision == 0
    min_rounds = -(-iterations // calls)
    times: dict[str, list[float]] = {name: [] for name in names}
    blocks: dict[str, list[float]] = {name: [] for name in names}
    with torch.inference_mode():
        for name in names:
            time_block(variants[name], warmup, device)
        started = clock()
        done, stopped, next_check = 0, None, min_rounds
        while stopped is None:
            rounds = len(blocks[names[0]])
            count = min(calls, iterations - done) if fixed else calls
            order = names if rounds % 2 == 0 else names[::-1]
            for name in order:
                measured = time_block(variants[name], count, device)
                times[name] += measured
                blocks[name].append(round(percentile(measured, 50), BLOCK_DECIMALS))
            done += count
            rounds += 1
            if fixed:
                stopped = STOP_FIXED if done >= iterations else None
                continue
            if rounds < min_rounds:
                continue
            capped = rounds >= max_blocks
            spent = clock() - started >= max_seconds
            due = rounds >= next_check or capped or spent
            if rounds >= next_check:
                next_check = rounds + max(CHECK_EVERY, rounds // 8)
            if due and _precise(blocks, comparisons, names[0], precision):
                stopped = STOP_PRECISION
            elif capped:
                stopped = STOP_CAP
            elif spent:
                stopped = STOP_BUDGET
        seconds = clock() - started
    return TimingRun(
        times=times,
        blocks=blocks,
        block_calls=calls,
        stopped=stopped,
        comparisons=[compare(name, base, meas, times, blocks) for name, base, meas in comparisons],
        seconds=seconds,
    )
