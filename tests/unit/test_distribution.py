"""The p95 of pooled latency buckets, read as Monitoring reads it: interpolated inside the bucket it falls in."""
import pytest

from shared.core.distribution import exponential_bounds, linear_bounds, percentile_of_buckets

BOUNDS = [10.0, 20.0, 40.0, 80.0]  # buckets: <10, [10,20), [20,40), [40,80), >=80


@pytest.mark.parametrize(
    "counts, rank, expected",
    [
        ([0, 100], 95, 19.5),
        ([0, 50, 50], 50, 20.0),
        ([0, 50, 50], 95, 38.0),
        ([0, 95, 0, 0, 5], 95, 20.0),
        ([0, 94, 0, 0, 6], 95, 80.0 + (200.0 - 80.0) * (1 / 6)),
        ([100], 95, 9.5),
        ([], 95, None),
        ([0, 0, 0], 95, None),
    ],
    ids=["all in one bucket: interpolated inside it", "the median at a bucket edge",
         "the p95 in the upper bucket", "a few slow requests do not decide the p95 of many fast ones",
         "but six in a hundred do", "the underflow bucket starts at the range's low",
         "no buckets: no figure", "empty buckets: no figure"],
)
def test_the_percentile_of_pooled_buckets(counts, rank, expected):
    got = percentile_of_buckets(BOUNDS, counts, rank, low=0.0, high=200.0)
    assert got == (None if expected is None else pytest.approx(expected))


def test_bounds_as_monitoring_defines_exponential_and_linear_buckets():
    assert exponential_bounds(3, 2.0, 1.0) == [1.0, 2.0, 4.0, 8.0]
    assert linear_bounds(2, 5.0, 10.0) == [10.0, 15.0, 20.0]
