"""The fake Monitoring answers ListTimeSeries, as the real client asks it, from what the router really served."""
from __future__ import annotations

import collections
import time

import pytest
import requests
from google.api_core import exceptions
from google.api import metric_pb2
from google.cloud import monitoring_v3

from localcloud.fake_monitoring import REQUEST_COUNT, REQUEST_LATENCIES, percentile
from localcloud.scenario import AppBehaviour
from tests.localcloud.conftest import PROJECT, REGION, LocalRun, image_for

API = "botbalance-api"
Aligner = monitoring_v3.Aggregation.Aligner
Reducer = monitoring_v3.Aggregation.Reducer


def metric_filter(metric: str, service: str = API, revision: str | None = None) -> str:
    text = f'metric.type = "{metric}" AND resource.type = "cloud_run_revision" AND resource.labels.service_name = "{service}"'
    return text + (f' AND resource.labels.revision_name = "{revision}"' if revision else "")


def window(seconds: int = 60) -> monitoring_v3.TimeInterval:
    """As the watchdog asks: the last `seconds`, ending just after now."""
    now = time.time()
    return monitoring_v3.TimeInterval(end_time={"seconds": int(now) + 1}, start_time={"seconds": int(now - seconds)})


def list_series(local: LocalRun, metric: str, aggregation: monitoring_v3.Aggregation | None = None, *,
                revision: str | None = None, interval: monitoring_v3.TimeInterval | None = None, **extra) -> list:
    request = {"name": f"projects/{PROJECT}", "filter": metric_filter(metric, revision=revision),
               "interval": interval or window(), **extra}
    if aggregation is not None:
        request["aggregation"] = aggregation
    return list(local.metrics.list_time_series(request=request))


def by_class(period: int = 60) -> monitoring_v3.Aggregation:
    return monitoring_v3.Aggregation(alignment_period={"seconds": period}, per_series_aligner=Aligner.ALIGN_DELTA,
                                     cross_series_reducer=Reducer.REDUCE_SUM,
                                     group_by_fields=["metric.labels.response_code_class"])


def serve(local: LocalRun, behaviour: AppBehaviour | None = None, requests_count: int = 60) -> str:
    """Seeds the API with an app behaving as told and sends it `requests_count` requests of /api/items."""
    local.scenario.set_commit("c0", behaviour or AppBehaviour())
    local.fake_run.seed_service(API, image_for("c0"))
    with requests.Session() as session:
        for _ in range(requests_count):
            session.get(f"{local.router.base_url}/s/{API}/api/items", timeout=5)
    return local.fake_run.revisions(API)[0]


def test_5xx_counts_grouped_by_class_match_what_the_router_served(local: LocalRun) -> None:
    serve(local, AppBehaviour(app="errors", error_ratio=0.3), 80)
    served = collections.Counter(f"{r.status // 100}xx" for r in local.router.request_log)
    series = list_series(local, REQUEST_COUNT, by_class())
    counted = {s.metric.labels["response_code_class"]: sum(p.value.int64_value for p in s.points) for s in series}
    assert counted == dict(served) and set(counted) == {"2xx", "5xx"}
    for one in series:
        assert one.metric.type == REQUEST_COUNT and set(one.metric.labels) == {"response_code_class"}
        assert one.resource.type == "cloud_run_revision" and dict(one.resource.labels) == {"project_id": PROJECT}
        assert one.metric_kind == metric_pb2.MetricDescriptor.MetricKind.DELTA
        assert one.value_type == metric_pb2.MetricDescriptor.ValueType.INT64


def test_without_grouping_there_is_one_series_per_revision_and_response_code(local: LocalRun) -> None:
    revision = serve(local, AppBehaviour(app="errors", error_ratio=0.5), 40)
    requests.get(f"{local.router.base_url}/s/{API}/api/nothing", timeout=5)
    series = list_series(local, REQUEST_COUNT, monitoring_v3.Aggregation(
        alignment_period={"seconds": 60}, per_series_aligner=Aligner.ALIGN_DELTA))
    assert {s.metric.labels["response_code"] for s in series} == {"200", "404", "500"}
    for one in series:
        assert dict(one.resource.labels) == {"project_id": PROJECT, "service_name": API, "revision_name": revision,
                                             "location": REGION, "configuration_name": API}
        assert one.metric.labels["response_code_class"] == one.metric.labels["response_code"][0] + "xx"
    assert sum(p.value.int64_value for s in series for p in s.points) == 41


def test_a_revision_filter_counts_only_that_revision(local: LocalRun) -> None:
    first = serve(local, requests_count=10)
    local.deploy(API, f"{API}-v1-1-0", image_for("c1"), [(f"{API}-v1-1-0", 0, "candidate"), (first, 100, "")])
    for _ in range(7):
        requests.get(f"{local.router.base_url}/t/candidate---{API}/api/health", timeout=5)
    counts = {
        revision: sum(p.value.int64_value for s in list_series(local, REQUEST_COUNT, by_class(), revision=revision) for p in s.points)
        for revision in (first, f"{API}-v1-1-0")
    }
    assert counts == {first: 10, f"{API}-v1-1-0": 7}, "requests through a tag URL count too, as in Cloud Run"


def test_percentile_latency_matches_the_latencies_the_router_served(local: LocalRun) -> None:
    local.scenario.latency["request"] = 0.005
    serve(local, requests_count=30)
    served = [r.latency_ms for r in local.router.request_log]
    for aligner, rank in ((Aligner.ALIGN_PERCENTILE_50, 50), (Aligner.ALIGN_PERCENTILE_95, 95), (Aligner.ALIGN_PERCENTILE_99, 99)):
        [series] = list_series(local, REQUEST_LATENCIES, monitoring_v3.Aggregation(
            alignment_period={"seconds": 60}, per_series_aligner=aligner, cross_series_reducer=Reducer.REDUCE_MAX))
        [point] = series.points
        assert point.value.double_value == pytest.approx(percentile(served, rank))
        assert point.value.double_value >= 5.0 and series.unit == "ms"


def test_align_delta_on_latencies_gives_a_distribution_of_every_request(local: LocalRun) -> None:
    serve(local, requests_count=25)
    served = [r.latency_ms for r in local.router.request_log]
    [series] = list_series(local, REQUEST_LATENCIES, monitoring_v3.Aggregation(
        alignment_period={"seconds": 60}, per_series_aligner=Aligner.ALIGN_DELTA, cross_series_reducer=Reducer.REDUCE_SUM))
    distribution = series.points[0].value.distribution_value
    assert distribution.count == 25 and sum(distribution.bucket_counts) == 25
    assert distribution.mean == pytest.approx(sum(served) / 25)
    assert distribution.bucket_options.exponential_buckets.growth_factor > 1


def test_paging_follows_next_page_token_through_every_series(local: LocalRun) -> None:
    serve(local, AppBehaviour(app="errors", error_ratio=0.5), 30)
    requests.get(f"{local.router.base_url}/s/{API}/api/nothing", timeout=5)
    aggregation = monitoring_v3.Aggregation(alignment_period={"seconds": 60}, per_series_aligner=Aligner.ALIGN_DELTA)
    interval = window()
    whole = list_series(local, REQUEST_COUNT, aggregation, interval=interval)
    pager = local.metrics.list_time_series(request={
        "name": f"projects/{PROJECT}", "filter": metric_filter(REQUEST_COUNT), "interval": interval,
        "aggregation": aggregation, "page_size": 1})
    pages = list(pager.pages)
    assert len(pages) == 3 and all(len(page.time_series) == 1 for page in pages)
    assert [s.metric.labels["response_code"] for p in pages for s in p.time_series] == \
        [s.metric.labels["response_code"] for s in whole]
    headers = list_series(local, REQUEST_COUNT, aggregation, interval=interval,
                          view=monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.HEADERS)
    assert len(headers) == 3 and all(not s.points for s in headers)
    with pytest.raises(exceptions.InvalidArgument, match="page_token"):
        list(local.metrics.list_time_series(request={
            "name": f"projects/{PROJECT}", "filter": metric_filter(REQUEST_LATENCIES), "interval": interval,
            "aggregation": aggregation, "page_token": pages[0].next_page_token}))


def timestamp(seconds: float) -> dict[str, int]:
    return {"seconds": int(seconds), "nanos": int(seconds % 1 * 1e9)}


def test_the_interval_leaves_out_requests_outside_it(local: LocalRun) -> None:
    serve(local, requests_count=5)
    cut = time.time()
    for _ in range(2):
        requests.get(f"{local.router.base_url}/s/{API}/api/items", timeout=5)
    after = monitoring_v3.TimeInterval(start_time=timestamp(cut), end_time=timestamp(time.time() + 1))
    before = monitoring_v3.TimeInterval(start_time=timestamp(cut - 30), end_time=timestamp(cut))
    long_ago = monitoring_v3.TimeInterval(start_time=timestamp(cut - 3600), end_time=timestamp(cut - 3000))
    counts = [sum(p.value.int64_value for s in list_series(local, REQUEST_COUNT, by_class(), interval=interval)
                  for p in s.points) for interval in (after, before, long_ago)]
    assert counts == [2, 5, 0]


def test_raw_points_without_aggregation_are_per_minute_deltas(local: LocalRun) -> None:
    serve(local, requests_count=4)
    series = list_series(local, REQUEST_COUNT)
    assert sum(p.value.int64_value for s in series for p in s.points) == 4
    for point in (p for s in series for p in s.points):
        assert (point.interval.end_time - point.interval.start_time).total_seconds() == 60


def test_an_unknown_metric_gives_no_series(local: LocalRun) -> None:
    serve(local, requests_count=3)
    assert list_series(local, "run.googleapis.com/container/cpu/utilizations") == []


@pytest.mark.parametrize(
    "filter_text",
    [
        'metric.type = run.googleapis.com/request_count',
        'metric.type = "run.googleapis.com/request_count" AND',
        'metric.type = "run.googleapis.com/request_count" resource.type = "cloud_run_revision"',
        'resource.type = "cloud_run_revision"',
        'metric.typo = "run.googleapis.com/request_count"',
    ],
    ids=["unquoted", "dangling AND", "missing AND", "no metric type", "unknown key"],
)
def test_a_malformed_filter_is_invalid_argument(local: LocalRun, filter_text: str) -> None:
    with pytest.raises(exceptions.InvalidArgument, match="filter"):
        list(local.metrics.list_time_series(request={"name": f"projects/{PROJECT}", "filter": filter_text, "interval": window()}))


@pytest.mark.parametrize(
    "aggregation, message",
    [
        (monitoring_v3.Aggregation(alignment_period={"seconds": 10}, per_series_aligner=Aligner.ALIGN_DELTA), "alignment_period"),
        (monitoring_v3.Aggregation(alignment_period={"seconds": 60}, per_series_aligner=Aligner.ALIGN_PERCENTILE_95), "ALIGN_PERCENTILE_95"),
        (monitoring_v3.Aggregation(cross_series_reducer=Reducer.REDUCE_SUM), "aligner"),
    ],
    ids=["period under a minute", "percentile of a count", "reducer without aligner"],
)
def test_an_aggregation_the_real_api_refuses_is_invalid_argument(local: LocalRun, aggregation, message: str) -> None:
    with pytest.raises(exceptions.InvalidArgument, match=message):
        list_series(local, REQUEST_COUNT, aggregation)


def test_another_project_is_permission_denied(local: LocalRun) -> None:
    with pytest.raises(exceptions.PermissionDenied):
        list(local.metrics.list_time_series(request={"name": "projects/other", "filter": metric_filter(REQUEST_COUNT),
                                                     "interval": window()}))


def test_an_injected_fault_surfaces_as_the_matching_exception(local: LocalRun) -> None:
    local.scenario.inject_fault("google.monitoring.v3.MetricService/ListTimeSeries", "UNAVAILABLE")
    request = {"name": f"projects/{PROJECT}", "filter": metric_filter(REQUEST_COUNT), "interval": window()}
    with pytest.raises(exceptions.ServiceUnavailable):
        list(local.metrics.list_time_series(request=request, retry=None))
    assert list(local.metrics.list_time_series(request=request)) == []  # the fault fired once


def test_requests_younger_than_the_ingestion_lag_are_not_answered_for_yet(local: LocalRun) -> None:
    serve(local, requests_count=5)
    local.monitoring.ingestion_lag = 3600.0  # none of them is an hour old
    late = sum(p.value.int64_value for s in list_series(local, REQUEST_COUNT, by_class()) for p in s.points)
    local.monitoring.ingestion_lag = 0.0
    now = sum(p.value.int64_value for s in list_series(local, REQUEST_COUNT, by_class()) for p in s.points)
    assert (late, now) == (0, 5)
