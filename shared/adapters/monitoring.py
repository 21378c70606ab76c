"""Cloud Monitoring v3: request counts by response class and latency percentiles of a Cloud Run service."""
from __future__ import annotations

import math
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
MIN_ALIGNMENT_SECONDS = 60  # Monitoring refuses a shorter alignment period


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

    def _series(self, metric: str, service: str, revision: str | None, span: tuple[float, float],
                aggregation: Any) -> list[Any]:
        from google.cloud import monitoring_v3

        start, end = span
        interval = monitoring_v3.TimeInterval(end_time=_timestamp(end), start_time=_timestamp(start))
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
        """The last `window_seconds`, ending `lag_seconds` ago: Cloud Run's request metrics reach Monitoring
        minutes late, and a window that ends now would judge a partly filled last stretch as if traffic had
        stopped."""
        end = float(int(time.time() - lag_seconds) + 1)
        return self.window_figures(service, revision, end - 1 - window_seconds, end)

    def window_figures(self, service: str, revision: str | None, start: float, end: float) -> TrafficFigures:
        """The figures of `service` (of one `revision`, by the resource label `revision_name`) served from
        `start` to `end` (epoch seconds). The alignment period is the window, and at least the 60 s Monitoring
        accepts: the interval alone bounds what is counted."""
        from google.cloud import monitoring_v3

        aligner = monitoring_v3.Aggregation.Aligner
        period = {"seconds": max(MIN_ALIGNMENT_SECONDS, math.ceil(end - start))}
        counts = self._series(
            REQUEST_COUNT,
            service,
            revision,
            (start, end),
            monitoring_v3.Aggregation(
                alignment_period=period,
                per_series_aligner=aligner.ALIGN_DELTA,
                cross_series_reducer=monitoring_v3.Aggregation.Reducer.REDUCE_SUM,
                group_by_fields=["metric.labels.response_code_class"],
            ),
        )
        by_class: dict[str, int] = {}
        for series in counts:
            klass = series.metric.labels.get("response_code_class", "unknown")
            by_class[klass] = by_class.get(klass, 0) + sum(int(p.value.int64_value) for p in series.points)
        latencies = self._series(
            REQUEST_LATENCIES,
            service,
            revision,
            (start, end),
            monitoring_v3.Aggregation(  # one pooled distribution: never the largest of per-series p95s
                alignment_period=period,
                per_series_aligner=aligner.ALIGN_DELTA,
                cross_series_reducer=monitoring_v3.Aggregation.Reducer.REDUCE_SUM,
            ),
        )
        return TrafficFigures(requests=sum(by_class.values()), by_class=by_class, p95_latency_ms=_pooled_p95(latencies))


def _timestamp(at: float) -> dict[str, int]:
    seconds, nanos = divmod(round(at * 1e9), 1_000_000_000)
    return {"seconds": int(seconds), "nanos": int(nanos)}


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
