"""The router serves service and tag URLs as Cloud Run routes them, and each revision's app behaves as told."""
from __future__ import annotations

import collections
import time

import pytest
import requests

from localcloud.router import LoadGenerator, Router
from localcloud.scenario import AppBehaviour
from tests.localcloud.conftest import FRONTEND_ORIGIN, PARENT, LocalRun, image_for

API = "botbalance-api"


def seeded(local: LocalRun, commit: str = "c0", behaviour: AppBehaviour | None = None) -> str:
    if behaviour is not None:
        local.scenario.set_commit(commit, behaviour)
    local.fake_run.seed_service(API, image_for(commit))
    return local.fake_run.revisions(API)[0]


def served_by(local: LocalRun) -> collections.Counter[str]:
    return collections.Counter(r.revision for r in local.router.request_log)


def test_the_service_url_serves_the_revision_holding_all_traffic(local: LocalRun) -> None:
    first = seeded(local)
    health = requests.get(local.url(API, "/api/health"), timeout=5)
    detailed = requests.get(local.url(API, "/api/health/detailed"), timeout=5)
    items = requests.get(local.url(API, "/api/items"), timeout=5)
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert detailed.json() == {"status": "ok", "components": {"db": "ok", "redis": "ok", "celery": "ok"}}
    assert items.status_code == 200 and items.json()["count"] == 3
    [record, *_] = local.router.request_log
    assert (record.service, record.revision, record.path, record.method, record.status, record.via_tag) == (
        API, first, "/api/health", "GET", 200, False)
    assert record.latency_ms >= 0 and abs(record.time - time.time()) < 5


def test_a_tagged_revision_gets_its_own_url_that_serves_it(local: LocalRun) -> None:
    first = seeded(local)
    service = local.deploy(API, f"{API}-v1-1-0", image_for("c1"), [(first, 100, ""), (f"{API}-v1-1-0", 0, "v1-1-0")])
    [tagged] = [s for s in service.traffic_statuses if s.tag]
    assert tagged.uri == f"{local.router.base_url}/t/v1-1-0---{API}"
    assert requests.get(tagged.uri + "/api/health", timeout=5).status_code == 200
    for _ in range(5):
        requests.get(local.url(API, "/api/health"), timeout=5)
    log = local.router.request_log
    assert [(r.revision, r.via_tag) for r in log if r.via_tag] == [(f"{API}-v1-1-0", True)]
    assert {r.revision for r in log if not r.via_tag} == {first}, "0% of the service URL goes to the tagged revision"


def test_traffic_50_50_splits_requests_across_both_revisions(local: LocalRun) -> None:
    first = seeded(local)
    local.deploy(API, f"{API}-v1-1-0", image_for("c1"), [(first, 50, ""), (f"{API}-v1-1-0", 50, "")])
    with requests.Session() as session:
        for _ in range(200):
            assert session.get(local.url(API, "/api/items"), timeout=5).status_code == 200
    split = served_by(local)
    assert set(split) == {first, f"{API}-v1-1-0"}
    assert 70 <= split[first] <= 130, split  # binomial(200, 0.5): more than 4 sigma away from 100 is a bug


def test_unknown_services_and_tags_answer_404_and_the_app_answers_its_own_404(local: LocalRun) -> None:
    seeded(local)
    assert requests.get(f"{local.router.base_url}/s/nope/api/health", timeout=5).status_code == 404
    assert requests.get(f"{local.router.base_url}/t/nope---{API}/api/health", timeout=5).status_code == 404
    assert requests.get(f"{local.router.base_url}/elsewhere", timeout=5).status_code == 404
    missing = requests.get(local.url(API, "/api/nothing"), timeout=5)
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not found."})
    assert [r.status for r in local.router.request_log] == [404]  # only what a revision served is logged


def test_a_service_with_no_ready_revision_answers_503(local: LocalRun) -> None:
    from google.cloud import run_v2

    local.scenario.latency["revision_ready"] = 5.0
    template = run_v2.RevisionTemplate(containers=[run_v2.Container(image=image_for("c1"))])
    local.services.create_service(parent=PARENT, service=run_v2.Service(template=template), service_id="web")
    assert requests.get(local.url("web", "/api/health"), timeout=5).status_code == 503


def test_an_unhealthy_app_fails_health_from_the_start(local: LocalRun) -> None:
    seeded(local, "sick", AppBehaviour(app="unhealthy"))
    health = requests.get(local.url(API, "/api/health"), timeout=5)
    detailed = requests.get(local.url(API, "/api/health/detailed"), timeout=5)
    assert health.status_code == 503
    assert detailed.status_code == 503 and detailed.json()["components"]["db"] == "error: connection refused"
    assert requests.get(local.url(API, "/api/items"), timeout=5).status_code == 500


def test_a_degrading_app_fails_only_after_serving_through_the_service_url_for_degrade_after(local: LocalRun) -> None:
    first = seeded(local)
    local.scenario.set_commit("rot", AppBehaviour(app="degrading", degrade_after=0.3))
    local.deploy(API, f"{API}-v1-1-0", image_for("rot"), [(first, 100, ""), (f"{API}-v1-1-0", 0, "candidate")])
    tag_url = f"{local.router.base_url}/t/candidate---{API}"
    assert requests.get(tag_url + "/api/health", timeout=5).status_code == 200
    time.sleep(0.35)
    assert requests.get(tag_url + "/api/health", timeout=5).status_code == 200, "tag traffic does not start the clock"
    local.set_traffic(API, [(f"{API}-v1-1-0", 100, "candidate")])
    assert requests.get(local.url(API, "/api/health"), timeout=5).status_code == 200
    assert requests.get(local.url(API, "/api/items"), timeout=5).status_code == 200
    time.sleep(0.35)
    assert requests.get(local.url(API, "/api/health"), timeout=5).status_code == 503
    assert requests.get(local.url(API, "/api/items"), timeout=5).status_code == 500
    assert requests.get(tag_url + "/api/health", timeout=5).status_code == 503
    detailed = requests.get(local.url(API, "/api/health/detailed"), timeout=5).json()
    assert detailed["status"] == "error" and detailed["components"]["redis"].startswith("error")


def test_an_errors_app_answers_items_with_500_at_its_error_ratio_but_stays_healthy(local: LocalRun) -> None:
    seeded(local, "flaky", AppBehaviour(app="errors", error_ratio=0.5))
    with requests.Session() as session:
        statuses = collections.Counter(session.get(local.url(API, "/api/items"), timeout=5).status_code for _ in range(200))
        assert session.get(local.url(API, "/api/health"), timeout=5).status_code == 200
        assert session.get(local.url(API, "/api/health/detailed"), timeout=5).status_code == 200
    assert set(statuses) == {200, 500} and 70 <= statuses[500] <= 130, statuses


def test_cors_preflight_is_allowed_only_for_the_frontend_origin(local: LocalRun) -> None:
    seeded(local)
    preflight = {"Access-Control-Request-Method": "GET"}
    allowed = requests.options(local.url(API, "/api/health"), headers={"Origin": FRONTEND_ORIGIN, **preflight}, timeout=5)
    other = requests.options(local.url(API, "/api/health"), headers={"Origin": "https://evil.example", **preflight}, timeout=5)
    assert allowed.status_code == 200 and allowed.headers["Access-Control-Allow-Origin"] == FRONTEND_ORIGIN
    assert "GET" in allowed.headers["Access-Control-Allow-Methods"]
    assert other.status_code == 200 and "Access-Control-Allow-Origin" not in other.headers
    simple = requests.get(local.url(API, "/api/items"), headers={"Origin": FRONTEND_ORIGIN}, timeout=5)
    assert simple.headers["Access-Control-Allow-Origin"] == FRONTEND_ORIGIN


def test_the_frontend_source_is_served_under_frontend_with_index_html_at_the_root(local: LocalRun) -> None:
    files = {"index.html": b"<html>v1</html>", "assets/app.js": b"console.log(1)"}

    def source(path: str) -> tuple[int, dict[str, str], bytes]:
        if path not in files:
            return 404, {"Content-Type": "text/plain"}, b"not found"
        kind = "text/html" if path.endswith(".html") else "text/javascript"
        return 200, {"Content-Type": kind, "Cache-Control": "no-cache"}, files[path]

    local.router.frontend_source = source
    root = requests.get(f"{local.router.base_url}/frontend/", timeout=5)
    asset = requests.get(f"{local.router.base_url}/frontend/assets/app.js", timeout=5)
    assert (root.status_code, root.content, root.headers["Cache-Control"]) == (200, b"<html>v1</html>", "no-cache")
    assert asset.content == b"console.log(1)"
    assert requests.get(f"{local.router.base_url}/frontend/missing.js", timeout=5).status_code == 404
    assert local.router.request_log == []


def test_the_load_generator_sends_steady_requests_and_stops(local: LocalRun) -> None:
    seeded(local)
    with LoadGenerator(local.url(API), rps=50, paths=["/api/items", "/api/health"]) as load:
        time.sleep(0.5)
    sent = load.sent
    assert 10 <= sent <= 40 and load.statuses == {200: sent}
    time.sleep(0.1)
    assert len(local.router.request_log) == sent, "nothing is sent after stop()"
    assert {r.path for r in local.router.request_log} == {"/api/items", "/api/health"}


@pytest.mark.parametrize("url", ["http://example.com/s/x", "http://10.0.0.1/s/x", "https://botbalance.io"])
def test_the_load_generator_refuses_anything_but_loopback(url: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        LoadGenerator(url, rps=1)


def test_the_load_generator_gives_up_when_the_server_is_gone(local: LocalRun) -> None:
    router = Router(local.fake_run, local.scenario, frontend_origin=FRONTEND_ORIGIN).start()
    url = router.base_url + f"/s/{API}"
    router.stop()
    load = LoadGenerator(url, rps=200).start()
    deadline = time.monotonic() + 3
    while load.running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not load.running and load.statuses == {0: LoadGenerator.MAX_CONNECTION_FAILURES}
    load.stop()
