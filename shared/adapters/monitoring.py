"""Cloud Monitoring v3: request counts by response class and latency percentiles of a Cloud Run service."""
from __future__ import annotations

import time
from typing import Any

from shared import clients
from shared.core.distribution import (
    exponential_bounds,
    linear_bounds,
    percentile_of_buckets,
)
from shared.errors import from_google
from shared.ports import Metrics, TrafficFigures

__all__ = ["GoogleMetrics", "Metrics", "TrafficFigures"]

REQUEST_COUNT = "run.googleapis.com/request_count"
REQUEST_LATENCIES = "run.googleapis.com/request_latencies"


class GoogleMetrics:
    def __init__(self, project: str) -> None:
        self._project = project

    def _filter(self, metric: str, service: str, revision: str | None) -> str:
        text = (
            f'metric.type = "{metric}" AND resource.type = "cloud_run_revision" '
            f'AND resource.labels.service_name = "{service}"'
        )
        if revision:
            text += f' AND resource.labels.revision_name = "{revision}"'
        return text

    def _series(self, metric: str, service: str, revision: str | None, window: int, aggregation: Any,
                lag_seconds: float = 0.0) -> list[Any]:
        """The window ends `lag_seconds` ago: Cloud Run's request metrics reach Monitoring minutes late, and a
        window that ends now would judge a partly filled last stretch as if traffic had stopped."""
        from google.cloud import monitoring_v3

        end = int(time.time() - lag_seconds) + 1
        interval = monitoring_v3.TimeInterval(end_time={"seconds": end}, start_time={"seconds": end - 1 - window})
        try:
            return list(
                clients.metrics().list_time_series(
                    request={
                        "name": f"projects/{self._project}",
                        "filter": self._filter(metric, service, revision),
                        "interval": interval,
                        "view": monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL,
                        "aggregation": aggregation,
                    }
                )
            )
        except Exception as error:  # noqa: BLE001
            raise from_google(error, f"reading {metric} of {service}") from error

    def figures(self, service: str, window_seconds: int, revision: str | None = None,
                lag_seconds: float = 0.0) -> TrafficFigures:
        from google.cloud import monitoring_v3

        aligner = monitoring_v3.Aggregation.Aligner
        counts = self._series(
            REQUEST_COUNT,
            service,
            revision,
            window_seconds,
            monitoring_v3.Aggregation(
                alignment_period={"seconds": window_seconds},
                per_series_aligner=aligner.ALIGN_DELTA,
                cross_series_reducer=monitoring_v3.Aggregation.Reducer.REDUCE_SUM,
                group_by_fields=["metric.labels.response_code_class"],
            ),
            lag_seconds,
        )
        by_class: dict[str, int] = {}
        for series in counts:
            klass = series.metric.labels.get("response_code_class", "unknown")
            by_class[klass] = by_class.get(klass, 0) + sum(int(p.value.int64_value) for p in series.points)
        latencies = self._series(
            REQUEST_LATENCIES,
            service,
            revision,
            window_seconds,
            monitoring_v3.Aggregation(  # one pooled distribution: never the largest of per-series p95s
                alignment_period={"seconds": window_seconds},
                per_series_aligner=aligner.ALIGN_DELTA,
                cross_series_reducer=monitoring_v3.Aggregation.Reducer.REDUCE_SUM,
            ),
            lag_seconds,
        )
        return TrafficFigures(requests=sum(by_class.values()), by_class=by_class, p95_latency_ms=_pooled_p95(latencies))


def _bounds(options: Any) -> list[float]:
    if options.exponential_buckets.num_finite_buckets:
        e = options.exponential_buckets
        return exponential_bounds(e.num_finite_buckets, e.growth_factor, e.scale)
    if options.linear_buckets.num_finite_buckets:
        lin = options.linear_buckets
        return linear_bounds(lin.num_finite_buckets, lin.width, lin.offset)
    return list(options.explicit_buckets.bounds)


def _pooled_p95(series: list[Any]) -> float | None:
    """The p95 of every latency point's distribution summed bucket by bucket."""
    counts: list[int] = []
    bounds: list[float] = []
    low, high = None, None
    for one in series:
        for point in one.points:
            dist = point.value.distribution_value
            if not dist.count:
                continue
            bounds = bounds or _bounds(dist.bucket_options)
            for index, count in enumerate(dist.bucket_counts):
                if index >= len(counts):
                    counts.append(0)
                counts[index] += int(count)
            if dist.range.max or dist.range.min:
                low = dist.range.min if low is None else min(low, dist.range.min)
                high = dist.range.max if high is None else max(high, dist.range.max)
    if not counts or not bounds:
        return None
    return percentile_of_buckets(bounds, counts, 95, low=low or 0.0, high=high)
