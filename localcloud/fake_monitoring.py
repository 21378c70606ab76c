"""A fake Cloud Monitoring v3 MetricService.ListTimeSeries over what the local Cloud Run really served.

Why it exists: no Monitoring emulator exists, and the health watchdog judges a release on Cloud Run's request
metrics. This fake answers from the router's request log (every request a revision served, through its service
URL or a tag URL, as Cloud Run counts them), so the figures are the ones the local users caused.

Metrics (resource type `cloud_run_revision`, resource labels project_id, service_name, revision_name, location,
configuration_name; metric labels response_code, response_code_class):
- `run.googleapis.com/request_count`: DELTA INT64.
- `run.googleapis.com/request_latencies`: DELTA DISTRIBUTION in ms.

The request is read as a real client sends it:
- filter: equalities joined by AND, on `metric.type` (required), `resource.type`, `resource.labels.K` and
  `metric.labels.K` (`label` is accepted for `labels`); a malformed filter is INVALID_ARGUMENT; an unknown metric
  type gives no series;
- interval: `end_time` required, `start_time` defaults to it; a request counts when start <= time < end;
- aggregation: without an aligner, raw points per minute. With one (alignment_period >= 60 s, as the real API
  requires), windows of the period ending at end_time: ALIGN_DELTA / ALIGN_SUM (a count, or a Distribution),
  ALIGN_RATE (counts per second), ALIGN_PERCENTILE_05/50/95/99 and ALIGN_MEAN (latencies in ms as DOUBLE). Then
  `cross_series_reducer` over `group_by_fields`: REDUCE_SUM, MEAN, MIN, MAX, COUNT, PERCENTILE_05/50/95/99;
  reduced series keep only the grouped labels (and resource.labels.project_id), as the real API does;
- paging: `page_size` counts points in the FULL view and series in HEADERS (a series is never split here, where
  the real API may split one across pages); `next_page_token` is bound to the query.
Points come newest first. Percentiles are exact over the served latencies (the real API interpolates within
histogram buckets), so tests can compare them with the router's log. The ingestion delay is modelled
(`ingestion_lag`: a request is counted once it is that old). Not modelled: `secondary_aggregation`, `order_by`, OR/NOT and functions such as `starts_with` in filters.
"""
from __future__ import annotations

import base64
import hashlib
import math
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Sequence

import grpc
from google.api import distribution_pb2, metric_pb2, monitored_resource_pb2
from google.cloud import monitoring_v3

from localcloud.grpc_kit import Abort, service_handler
from localcloud.router import RequestRecord, Router
from localcloud.scenario import Scenario

REQUEST_COUNT = "run.googleapis.com/request_count"
REQUEST_LATENCIES = "run.googleapis.com/request_latencies"
RESOURCE_TYPE = "cloud_run_revision"
RAW_SAMPLE_SECONDS = 60  # Cloud Run writes its request metrics once a minute
MIN_ALIGNMENT_SECONDS = 60
_DEFAULT_PAGE = 100_000

_Aligner = monitoring_v3.Aggregation.Aligner
_Reducer = monitoring_v3.Aggregation.Reducer
_Kind = metric_pb2.MetricDescriptor.MetricKind
_Type = metric_pb2.MetricDescriptor.ValueType
_PERCENTILE_ALIGNERS = {
    _Aligner.ALIGN_PERCENTILE_05: 5.0,
    _Aligner.ALIGN_PERCENTILE_50: 50.0,
    _Aligner.ALIGN_PERCENTILE_95: 95.0,
    _Aligner.ALIGN_PERCENTILE_99: 99.0,
}
_PERCENTILE_REDUCERS = {
    _Reducer.REDUCE_PERCENTILE_05: 5.0,
    _Reducer.REDUCE_PERCENTILE_50: 50.0,
    _Reducer.REDUCE_PERCENTILE_95: 95.0,
    _Reducer.REDUCE_PERCENTILE_99: 99.0,
}
_BOOLEAN_ONLY_ALIGNERS = {_Aligner.ALIGN_COUNT_TRUE, _Aligner.ALIGN_COUNT_FALSE, _Aligner.ALIGN_FRACTION_TRUE}
_BOOLEAN_ONLY_REDUCERS = {_Reducer.REDUCE_COUNT_TRUE, _Reducer.REDUCE_COUNT_FALSE, _Reducer.REDUCE_FRACTION_TRUE}
# the latency histogram's buckets (exponential, as Cloud Run's request_latencies)
_BUCKETS = distribution_pb2.Distribution.BucketOptions(
    exponential_buckets=distribution_pb2.Distribution.BucketOptions.Exponential(
        num_finite_buckets=100, growth_factor=1.4, scale=1.0
    )
)


class FilterError(ValueError):
    """A Monitoring filter this API cannot read; the message says where and what was expected."""


@dataclass(frozen=True)
class MonitoringFilter:
    """`key = "value"` terms joined by AND, keys normalised (`resource.label.x` -> `resource.labels.x`)."""

    terms: tuple[tuple[str, str], ...]

    @property
    def metric_type(self) -> str:
        return next(value for key, value in self.terms if key == "metric.type")

    def matches(self, resource_type: str, resource: dict[str, str], metric: dict[str, str]) -> bool:
        for key, value in self.terms:
            if key == "resource.type":
                found: str | None = resource_type
            elif key.startswith("resource.labels."):
                found = resource.get(key[len("resource.labels."):])
            elif key.startswith("metric.labels."):
                found = metric.get(key[len("metric.labels."):])
            else:
                continue
            if found != value:
                return False
        return True


_TOKEN = re.compile(r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\')|(?P<op>=)|(?P<word>[A-Za-z_][\w.]*))')
_KEY = re.compile(r"^(metric\.type|resource\.type|(?:resource|metric)\.labels?\.[A-Za-z_]\w*)$")


def parse_filter(text: str) -> MonitoringFilter:
    """Reads the filter a client sends; raises FilterError for anything else (the API's INVALID_ARGUMENT)."""
    tokens: list[tuple[str, str, int]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise FilterError(f"filter: unexpected character at {position}: {text[position:position + 20]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind), match.start(kind)))
        position = match.end()
    terms: list[tuple[str, str]] = []
    index = 0
    while True:
        if index + 3 > len(tokens):
            where = tokens[index][2] if index < len(tokens) else len(text)
            raise FilterError(f"filter: expected `key = \"value\"` at {where}, found {text[where:where + 20]!r}")
        (k_kind, key, k_at), (o_kind, _, o_at), (v_kind, value, v_at) = tokens[index : index + 3]
        if k_kind != "word" or not _KEY.match(key):
            raise FilterError(f"filter: expected metric.type, resource.type, resource.labels.K or metric.labels.K at {k_at}, found {key!r}")
        if o_kind != "op":
            raise FilterError(f"filter: expected '=' at {o_at}, found {text[o_at:o_at + 10]!r}")
        if v_kind != "string":
            raise FilterError(f"filter: expected a quoted string at {v_at}, found {value!r}")
        normal = re.sub(r"^(resource|metric)\.label\.", r"\1.labels.", key)
        terms.append((normal, re.sub(r"\\(.)", r"\1", value[1:-1])))
        index += 3
        if index == len(tokens):
            break
        kind, word, at = tokens[index]
        if kind != "word" or word != "AND":
            raise FilterError(f"filter: expected AND at {at}, found {word!r} (this fake reads AND of equalities only)")
        index += 1
    types = {value for key, value in terms if key == "metric.type"}
    if len(types) != 1:
        raise FilterError(f"filter: expected exactly one metric.type, found {len(types)}")
    return MonitoringFilter(tuple(terms))


# -- values ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Sample:
    time: float
    resource: tuple[tuple[str, str], ...]
    metric: tuple[tuple[str, str], ...]
    latency_ms: float


@dataclass(frozen=True)
class _Value:
    """One point's value before it becomes a TypedValue: an INT64, a DOUBLE, or the latencies of a distribution."""

    kind: str  # "int", "double" or "distribution"
    number: float = 0.0
    samples: tuple[float, ...] = ()


@dataclass(frozen=True)
class _Point:
    start: float
    end: float
    value: _Value


@dataclass(frozen=True)
class _Series:
    metric_type: str
    resource: tuple[tuple[str, str], ...]
    metric: tuple[tuple[str, str], ...]
    kind: int  # MetricKind
    value_type: int  # ValueType
    unit: str
    points: tuple[_Point, ...]  # newest first


def percentile(values: Sequence[float], rank: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), over unsorted values."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    position = rank / 100 * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _distribution(samples: Sequence[float]) -> distribution_pb2.Distribution:
    count = len(samples)
    mean = sum(samples) / count if count else 0.0
    counts = [0] * (_BUCKETS.exponential_buckets.num_finite_buckets + 2)
    growth, scale = _BUCKETS.exponential_buckets.growth_factor, _BUCKETS.exponential_buckets.scale
    for sample in samples:
        if sample < scale:
            counts[0] += 1
        else:
            index = int(math.log(sample / scale, growth)) + 1
            counts[min(index, len(counts) - 1)] += 1
    while counts and counts[-1] == 0:
        counts.pop()
    return distribution_pb2.Distribution(
        count=count,
        mean=mean,
        sum_of_squared_deviation=sum((s - mean) ** 2 for s in samples),
        range=distribution_pb2.Distribution.Range(min=min(samples, default=0.0), max=max(samples, default=0.0)),
        bucket_options=_BUCKETS,
        bucket_counts=counts,
    )


def _response_class(status: int) -> str:
    return f"{status // 100}xx"


def _timestamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


class FakeMonitoring:
    """`google.monitoring.v3.MetricService` ListTimeSeries for the Cloud Run request metrics of one project."""

    def __init__(self, scenario: Scenario, router: Router, *, project: str, ingestion_lag: float = 0.0) -> None:
        self.scenario = scenario
        self.router = router
        self.project = project
        # Cloud Run's request metrics reach Monitoring minutes late: a request is answered for only once it is
        # this many seconds old (scaled down in the local cloud, like every interval)
        self.ingestion_lag = ingestion_lag

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        return [
            service_handler(self.scenario, "google.monitoring.v3.MetricService", {
                "ListTimeSeries": (self.list_time_series, monitoring_v3.ListTimeSeriesRequest,
                                   monitoring_v3.ListTimeSeriesResponse),
            })
        ]

    def list_time_series(self, request: monitoring_v3.ListTimeSeriesRequest) -> monitoring_v3.ListTimeSeriesResponse:
        """The RPC, callable directly too. Raises grpc_kit.Abort as the real API answers errors."""
        self._check_name(request.name)
        try:
            wanted = parse_filter(request.filter)
        except FilterError as error:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, str(error)) from error
        start, end = self._interval(request.interval)
        metric = wanted.metric_type
        headers_only = request.view == monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.HEADERS
        if metric not in (REQUEST_COUNT, REQUEST_LATENCIES):
            return monitoring_v3.ListTimeSeriesResponse()
        aggregation = request.aggregation
        self._check_aggregation(metric, aggregation)
        ingested = time.time() - self.ingestion_lag
        samples = [s for s in self._samples() if start <= s.time < end and s.time <= ingested
                   and wanted.matches(RESOURCE_TYPE, dict(s.resource), dict(s.metric))]
        series = self._raw(metric, samples, start, end) if aggregation.per_series_aligner == _Aligner.ALIGN_NONE \
            else self._aligned(metric, samples, start, end, aggregation)
        series.sort(key=lambda s: (s.resource, s.metric))
        if headers_only:
            series = [_Series(s.metric_type, s.resource, s.metric, s.kind, s.value_type, s.unit, ()) for s in series]
        page, token = self._page(request, series, headers_only)
        return monitoring_v3.ListTimeSeriesResponse(time_series=[self._proto(s) for s in page], next_page_token=token,
                                                    unit=page[0].unit if page else "")

    # -- request checks ------------------------------------------------------------------------------------------
    def _check_name(self, name: str) -> None:
        match = re.fullmatch(r"projects/([^/]+)", name)
        if not match:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"name: expected projects/PROJECT_ID, found {name!r}")
        if match.group(1) != self.project:
            raise Abort(grpc.StatusCode.PERMISSION_DENIED,
                        f"Permission monitoring.timeSeries.list denied (or the resource may not exist): {name}")

    @staticmethod
    def _interval(interval: monitoring_v3.TimeInterval) -> tuple[float, float]:
        if "end_time" not in interval:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "interval.end_time: must be specified")
        end = interval.end_time.timestamp()
        start = interval.start_time.timestamp() if "start_time" in interval else end
        if start > end:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"interval: start_time {start} is after end_time {end}")
        return start, end

    @staticmethod
    def _check_aggregation(metric: str, aggregation: monitoring_v3.Aggregation) -> None:
        aligner, reducer = aggregation.per_series_aligner, aggregation.cross_series_reducer
        distribution = metric == REQUEST_LATENCIES
        if aligner == _Aligner.ALIGN_NONE:
            if reducer != _Reducer.REDUCE_NONE:
                raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                            "aggregation.per_series_aligner: a cross-series reducer needs an aligner other than ALIGN_NONE")
            return
        period = aggregation.alignment_period.total_seconds() if "alignment_period" in aggregation else 0
        if period < MIN_ALIGNMENT_SECONDS:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                        f"aggregation.alignment_period: expected at least {MIN_ALIGNMENT_SECONDS}s, found {period:g}s")
        if aligner in _BOOLEAN_ONLY_ALIGNERS or (aligner in _PERCENTILE_ALIGNERS and not distribution):
            kind = "DISTRIBUTION" if distribution else "INT64"
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                        f"aggregation.per_series_aligner: {aligner.name} cannot be applied to {metric} (DELTA, {kind})")
        supported = {_Aligner.ALIGN_DELTA, _Aligner.ALIGN_SUM}
        if distribution:
            supported |= set(_PERCENTILE_ALIGNERS) | {_Aligner.ALIGN_MEAN}
        else:
            supported.add(_Aligner.ALIGN_RATE)
        if aligner not in supported:
            raise Abort(grpc.StatusCode.UNIMPLEMENTED,
                        f"aggregation.per_series_aligner: this fake does not implement {aligner.name} for {metric}")
        if reducer in _BOOLEAN_ONLY_REDUCERS:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                        f"aggregation.cross_series_reducer: {reducer.name} needs BOOL values")
        gives_distribution = distribution and aligner in (_Aligner.ALIGN_DELTA, _Aligner.ALIGN_SUM)
        if gives_distribution and reducer in (_Reducer.REDUCE_MIN, _Reducer.REDUCE_MAX):
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                        f"aggregation.cross_series_reducer: {reducer.name} cannot reduce DISTRIBUTION values")
        if reducer == _Reducer.REDUCE_STDDEV:
            raise Abort(grpc.StatusCode.UNIMPLEMENTED, "aggregation.cross_series_reducer: this fake does not implement REDUCE_STDDEV")
        for field in aggregation.group_by_fields:
            if not re.fullmatch(r"(resource|metric)\.labels?\.[A-Za-z_]\w*", field):
                raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                            f"aggregation.group_by_fields: expected resource.labels.K or metric.labels.K, found {field!r}")

    # -- data ------------------------------------------------------------------------------------------------------
    def _samples(self) -> list[_Sample]:
        location = self.router.location
        samples = []
        for record in self.router.request_log:
            samples.append(self._sample(record, location))
        return samples

    def _sample(self, record: RequestRecord, location: str) -> _Sample:
        resource = (
            ("configuration_name", record.service),
            ("location", location),
            ("project_id", self.project),
            ("revision_name", record.revision),
            ("service_name", record.service),
        )
        metric = (("response_code", str(record.status)), ("response_code_class", _response_class(record.status)))
        return _Sample(record.time, resource, metric, record.latency_ms)

    @staticmethod
    def _value_of(metric: str, samples: Sequence[_Sample]) -> _Value:
        if metric == REQUEST_COUNT:
            return _Value("int", float(len(samples)))
        return _Value("distribution", samples=tuple(s.latency_ms for s in samples))

    def _raw(self, metric: str, samples: Sequence[_Sample], start: float, end: float) -> list[_Series]:
        """No aligner: one DELTA point per minute Cloud Run wrote, per label set."""
        grouped: dict[tuple[Any, Any], dict[float, list[_Sample]]] = {}
        for sample in samples:
            minute = math.floor(sample.time / RAW_SAMPLE_SECONDS) * RAW_SAMPLE_SECONDS
            grouped.setdefault((sample.resource, sample.metric), {}).setdefault(minute, []).append(sample)
        value_type = _Type.INT64 if metric == REQUEST_COUNT else _Type.DISTRIBUTION
        unit = "1" if metric == REQUEST_COUNT else "ms"
        found = []
        for (resource, labels), minutes in grouped.items():
            points = tuple(
                _Point(minute, minute + RAW_SAMPLE_SECONDS, self._value_of(metric, minutes[minute]))
                for minute in sorted(minutes, reverse=True)
            )
            found.append(_Series(metric, resource, labels, _Kind.DELTA, value_type, unit, points))
        return found

    def _aligned(
        self, metric: str, samples: Sequence[_Sample], start: float, end: float, aggregation: monitoring_v3.Aggregation
    ) -> list[_Series]:
        period = aggregation.alignment_period.total_seconds()
        aligner = aggregation.per_series_aligner
        # per series, per window (windows of `period` ending at `end`, numbered back from 0)
        windows: dict[tuple[Any, Any], dict[int, list[_Sample]]] = {}
        for sample in samples:
            window = math.floor((end - sample.time) / period)
            windows.setdefault((sample.resource, sample.metric), {}).setdefault(window, []).append(sample)
        aligned: dict[tuple[Any, Any], dict[int, _Value]] = {
            key: {window: self._align(metric, aligner, found, period) for window, found in by_window.items()}
            for key, by_window in windows.items()
        }
        kind, value_type, unit = self._aligned_shape(metric, aligner)
        reducer = aggregation.cross_series_reducer
        if reducer != _Reducer.REDUCE_NONE:
            aligned, value_type = self._reduce(aligned, reducer, list(aggregation.group_by_fields), value_type)
        series = []
        for (resource, labels), by_window in aligned.items():
            points = tuple(
                _Point(end - (window + 1) * period if kind == _Kind.DELTA else end - window * period,
                       end - window * period, by_window[window])
                for window in sorted(by_window)
            )
            series.append(_Series(metric, resource, labels, kind, value_type, unit, points))
        return series

    @staticmethod
    def _aligned_shape(metric: str, aligner: int) -> tuple[int, int, str]:
        if aligner in (_Aligner.ALIGN_DELTA, _Aligner.ALIGN_SUM):
            if metric == REQUEST_COUNT:
                return _Kind.DELTA, _Type.INT64, "1"
            return _Kind.DELTA, _Type.DISTRIBUTION, "ms"
        if aligner == _Aligner.ALIGN_RATE:
            return _Kind.GAUGE, _Type.DOUBLE, "1/s"
        return _Kind.GAUGE, _Type.DOUBLE, "ms"

    @staticmethod
    def _align(metric: str, aligner: int, samples: Sequence[_Sample], period: float) -> _Value:
        if metric == REQUEST_COUNT:
            if aligner == _Aligner.ALIGN_RATE:
                return _Value("double", len(samples) / period)
            return _Value("int", float(len(samples)))
        latencies = tuple(s.latency_ms for s in samples)
        if aligner in _PERCENTILE_ALIGNERS:
            return _Value("double", percentile(latencies, _PERCENTILE_ALIGNERS[aligner]), latencies)
        if aligner == _Aligner.ALIGN_MEAN:
            return _Value("double", sum(latencies) / len(latencies), latencies)
        return _Value("distribution", samples=latencies)

    @staticmethod
    def _reduce(
        aligned: dict[tuple[Any, Any], dict[int, _Value]], reducer: int, group_by: list[str], value_type: int
    ) -> tuple[dict[tuple[Any, Any], dict[int, _Value]], int]:
        fields = [re.sub(r"^(resource|metric)\.label\.", r"\1.labels.", f) for f in group_by]

        def group_key(resource: tuple[tuple[str, str], ...], labels: tuple[tuple[str, str], ...]) -> tuple[Any, Any]:
            res, met = dict(resource), dict(labels)
            kept_resource = {"project_id": res["project_id"]}
            kept_metric = {}
            for field in fields:
                scope, _, label = field.split(".", 2)
                source, target = (res, kept_resource) if scope == "resource" else (met, kept_metric)
                if label in source:
                    target[label] = source[label]
            return tuple(sorted(kept_resource.items())), tuple(sorted(kept_metric.items()))

        members: dict[tuple[Any, Any], dict[int, list[_Value]]] = {}
        for (resource, labels), by_window in aligned.items():
            target = members.setdefault(group_key(resource, labels), {})
            for window, value in by_window.items():
                target.setdefault(window, []).append(value)
        out_type = value_type
        if reducer == _Reducer.REDUCE_COUNT:
            out_type = _Type.INT64
        elif reducer == _Reducer.REDUCE_MEAN or reducer in _PERCENTILE_REDUCERS:
            out_type = _Type.DOUBLE
        reduced = {
            key: {window: FakeMonitoring._combine(values, reducer) for window, values in by_window.items()}
            for key, by_window in members.items()
        }
        return reduced, out_type

    @staticmethod
    def _combine(values: list[_Value], reducer: int) -> _Value:
        if reducer == _Reducer.REDUCE_COUNT:
            return _Value("int", float(len(values)))
        if values[0].kind == "distribution":
            merged = tuple(x for v in values for x in v.samples)
            if reducer == _Reducer.REDUCE_SUM:
                return _Value("distribution", samples=merged)
            if reducer == _Reducer.REDUCE_MEAN:
                return _Value("double", sum(merged) / len(merged) if merged else 0.0)
            return _Value("double", percentile(merged, _PERCENTILE_REDUCERS[reducer]))
        numbers = [v.number for v in values]
        kind = values[0].kind
        if reducer == _Reducer.REDUCE_SUM:
            return _Value(kind, sum(numbers))
        if reducer == _Reducer.REDUCE_MEAN:
            return _Value("double", sum(numbers) / len(numbers))
        if reducer == _Reducer.REDUCE_MAX:
            return _Value(kind, max(numbers))
        if reducer == _Reducer.REDUCE_MIN:
            return _Value(kind, min(numbers))
        return _Value("double", percentile(numbers, _PERCENTILE_REDUCERS[reducer]))

    # -- answer ----------------------------------------------------------------------------------------------------
    def _page(
        self, request: monitoring_v3.ListTimeSeriesRequest, series: list[_Series], headers_only: bool
    ) -> tuple[list[_Series], str]:
        query = monitoring_v3.ListTimeSeriesRequest(request)
        query.page_token = ""
        query.page_size = 0
        fingerprint = hashlib.sha256(monitoring_v3.ListTimeSeriesRequest.serialize(query)).hexdigest()[:16]
        offset = 0
        if request.page_token:
            try:
                bound, _, number = base64.urlsafe_b64decode(request.page_token.encode()).decode().partition(":")
                offset = int(number)
            except (ValueError, UnicodeDecodeError) as error:
                raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"page_token: not a token this API gave ({error})") from error
            if bound != fingerprint or not 0 <= offset <= len(series):
                raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "page_token: it belongs to another query")
        limit = request.page_size if request.page_size > 0 else _DEFAULT_PAGE
        page: list[_Series] = []
        used = 0
        index = offset
        while index < len(series):
            cost = 1 if headers_only else len(series[index].points)
            if page and used + cost > limit:
                break
            page.append(series[index])
            used += cost
            index += 1
        token = base64.urlsafe_b64encode(f"{fingerprint}:{index}".encode()).decode() if index < len(series) else ""
        return page, token

    @staticmethod
    def _proto(series: _Series) -> monitoring_v3.TimeSeries:
        points = []
        for point in series.points:
            value = monitoring_v3.TypedValue()
            if series.value_type == _Type.INT64:
                value.int64_value = int(point.value.number)
            elif series.value_type == _Type.DOUBLE:
                value.double_value = float(point.value.number)
            else:
                value.distribution_value = _distribution(point.value.samples)
            interval = monitoring_v3.TimeInterval(end_time=_timestamp(point.end))
            if series.kind == _Kind.DELTA:
                interval.start_time = _timestamp(point.start)
            points.append(monitoring_v3.Point(interval=interval, value=value))
        return monitoring_v3.TimeSeries(
            metric=metric_pb2.Metric(type=series.metric_type, labels=dict(series.metric)),
            resource=monitored_resource_pb2.MonitoredResource(type=RESOURCE_TYPE, labels=dict(series.resource)),
            metric_kind=series.kind,
            value_type=series.value_type,
            unit=series.unit,
            points=points,
        )

