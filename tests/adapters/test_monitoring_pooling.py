"""The adapter's p95 is the percentile of every series' latencies pooled, never the largest per-series p95: a few
slow 404s on one route do not decide it (the distributions as the real client types carry them)."""
from __future__ import annotations

from google.api import distribution_pb2
from google.cloud import monitoring_v3

from shared.adapters.monitoring import _pooled_p95

BUCKETS = distribution_pb2.Distribution.BucketOptions(
    explicit_buckets=distribution_pb2.Distribution.BucketOptions.Explicit(bounds=[50.0, 100.0, 1000.0, 5000.0]))


def series(counts: list[int]) -> monitoring_v3.TimeSeries:
    dist = distribution_pb2.Distribution(count=sum(counts), bucket_options=BUCKETS, bucket_counts=counts)
    point = monitoring_v3.Point(value=monitoring_v3.TypedValue(distribution_value=dist))
    return monitoring_v3.TimeSeries(points=[point])


def test_three_slow_404s_beside_a_thousand_fast_answers_leave_the_p95_fast():
    fast = series([900, 100])  # 200s on /api/items, all under 100 ms
    slow_404s = series([0, 0, 0, 3])  # three 404s of 1-5 s on another route: that series' own p95 is seconds
    assert _pooled_p95([fast, slow_404s]) < 100.0


def test_when_many_requests_are_slow_the_pooled_p95_says_so():
    assert _pooled_p95([series([90, 0]), series([0, 0, 0, 10])]) > 1000.0


def test_no_points_is_no_figure():
    assert _pooled_p95([]) is None and _pooled_p95([monitoring_v3.TimeSeries()]) is None
