"""Cloud Monitoring v3: request counts by response class and latency percentiles of a Cloud Run service."""
from __future__ import annotations

import time
from typing import Any

from shared import clients
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

    def _series(self, metric: str, service: str, revision: str | None, window: int, aggregation: Any) -> list[Any]:
        from google.cloud import monitoring_v3

        now = time.time()
        interval = monitoring_v3.TimeInterval(
            end_time={"seconds": int(now) + 1}, start_time={"seconds": int(now - window)}
        )
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

    def figures(self, service: str, window_seconds: int, revision: str | None = None) -> TrafficFigures:
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
            monitoring_v3.Aggregation(
                alignment_period={"seconds": window_seconds},
                per_series_aligner=aligner.ALIGN_PERCENTILE_95,
                cross_series_reducer=monitoring_v3.Aggregation.Reducer.REDUCE_MAX,
            ),
        )
        p95 = [p.value.double_value for series in latencies for p in series.points]
        return TrafficFigures(requests=sum(by_class.values()), by_class=by_class, p95_latency_ms=max(p95) if p95 else None)
