"""Percentiles of a pooled latency distribution (pure).

Cloud Run's `request_latencies` are split into series by revision, response code and route. Taking each series'
p95 and then the largest lets a handful of slow 404s decide the figure; the series are summed into one
distribution instead (Monitoring's REDUCE_SUM of ALIGN_DELTA distributions), and its percentile is read from the
buckets, interpolating inside the bucket as Monitoring does.
"""
from __future__ import annotations

from typing import Sequence


def exponential_bounds(count: int, growth: float, scale: float) -> list[float]:
    """Upper bounds of the finite buckets 0..count of Monitoring's exponential buckets: scale * growth**i."""
    return [scale * growth ** i for i in range(count + 1)]


def linear_bounds(count: int, width: float, offset: float) -> list[float]:
    return [offset + width * i for i in range(count + 1)]


def percentile_of_buckets(bounds: Sequence[float], counts: Sequence[int], rank: float, *,
                          low: float = 0.0, high: float | None = None) -> float | None:
    """The `rank` percentile (0-100) of a distribution with bucket `counts` over `bounds` (bucket 0 is below
    bounds[0], bucket i is [bounds[i-1], bounds[i]), the last above the last bound); None when it is empty.
    `low` and `high` (the distribution's range, when known) close the first and last buckets."""
    total = sum(counts)
    if total <= 0:
        return None
    target = rank / 100 * total
    seen = 0
    for index, count in enumerate(counts):
        if count <= 0:
            continue
        if seen + count >= target:
            lower = bounds[index - 1] if 0 < index <= len(bounds) else low
            upper = bounds[index] if index < len(bounds) else (high if high is not None else bounds[-1])
            lower, upper = min(lower, upper), max(lower, upper)
            return lower + (upper - lower) * max(0.0, target - seen) / count
        seen += count
    return high if high is not None else bounds[-1]
