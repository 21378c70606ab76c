"""Each adapter against the local cloud, through the real client library over real sockets."""
from __future__ import annotations

import json
import time

import pytest

from localcloud.cloud import INITIAL_COMMIT, LocalCloud
from shared.adapters.cloudbuild import BuildRequest, GoogleBuilds
from shared.adapters.cloudrun import GoogleCloudRun, TrafficTarget
from shared.adapters.monitoring import GoogleMetrics
from shared.adapters.pubsub import GooglePublisher
from shared.adapters.slack import MessageRef, NullNotifier, SlackWebhookNotifier, SlackWebNotifier, notifier_for
from shared.adapters.storage import GcsObjects, GcsRecords
from shared.errors import NotFound, PermanentError, PreconditionFailed, TransientError

API, WORKER, JOB = "botbalance-api", "botbalance-worker", "botbalance-migrate"


@pytest.fixture(scope="module")
def cloud():
    with LocalCloud(functions=False, latency={"build": 0.1, "migration": 0.05, "revision_ready": 0.05}) as local:
        yield local


@pytest.fixture
def run(cloud):
    return GoogleCloudRun(cloud.project, cloud.region, operation_timeout=20)


# -- Cloud Storage --------------------------------------------------------------------------------------------------
def test_records_are_created_once_and_a_second_create_is_our_precondition_error(cloud):
    records = GcsRecords(cloud.project, cloud.config.state.bucket)
    first = records.create("tests/once.json", {"n": 1})
    with pytest.raises(PreconditionFailed):
        records.create("tests/once.json", {"n": 2})
    assert records.read("tests/once.json").data == {"n": 1}
    assert first.generation > 0


def test_compare_and_swap_succeeds_on_the_generation_read_and_fails_on_a_stale_one(cloud):
    records = GcsRecords(cloud.project, cloud.config.state.bucket)
    created = records.create("tests/cas.json", {"n": 1})
    swapped = records.swap("tests/cas.json", {"n": 2}, created.generation)
    with pytest.raises(PreconditionFailed):
        records.swap("tests/cas.json", {"n": 3}, created.generation)
    assert records.read("tests/cas.json") == swapped


def test_reading_a_missing_record_is_none_and_listing_finds_records_by_prefix(cloud):
    records = GcsRecords(cloud.project, cloud.config.state.bucket)
    assert records.read("tests/absent.json") is None
    records.create("tests/list/a.json", {})
    records.create("tests/list/b.json", {})
    assert records.list("tests/list/") == ["tests/list/a.json", "tests/list/b.json"]


def test_an_object_whose_bytes_are_not_json_is_read_as_unreadable_with_its_generation(cloud):
    from shared.record_shape import Unreadable

    records = GcsRecords(cloud.project, cloud.config.state.bucket)
    blob = cloud.storage_client().bucket(cloud.config.state.bucket).blob("tests/garbage.json")
    blob.upload_from_string(b"\x00{not json", content_type="application/json")
    record = records.read("tests/garbage.json")
    assert record is not None and isinstance(record.data, Unreadable) and "not json" in record.data.excerpt
    records.swap("tests/garbage.json", {"mended": True}, record.generation)  # replaceable at the version read
    assert records.read("tests/garbage.json").data == {"mended": True}


def test_a_listing_tells_which_records_were_written_since_a_time_without_reading_them(cloud):
    import time

    records = GcsRecords(cloud.project, cloud.config.state.bucket)
    records.create("tests/changed/before.json", {})
    records.create("tests/changed/rewritten.json", {})
    time.sleep(1.1)  # the local server keeps `updated` to the second
    since = time.time() - 0.5
    old = records.read("tests/changed/rewritten.json")
    assert old is not None
    records.swap("tests/changed/rewritten.json", {"n": 1}, old.generation)
    records.create("tests/changed/after.json", {})
    assert records.changed_since("tests/changed/", since) == ["tests/changed/after.json", "tests/changed/rewritten.json"]
    assert records.changed_since("tests/changed/", time.time() + 60) == []


def test_objects_are_copied_server_side_with_the_caching_asked_for(cloud):
    objects = GcsObjects(cloud.project)
    state, live = cloud.config.state.bucket, cloud.config.frontend.bucket
    direct = cloud.storage_client()
    direct.bucket(state).blob("tests/site/app.js").upload_from_string(b"console.log(1)", content_type="text/javascript")
    objects.copy(state, "tests/site/app.js", live, "tests/app.js", cache_control="public, max-age=31536000, immutable")
    listed = {o.name: o for o in objects.list(live, "tests/")}
    assert listed["tests/app.js"].cache_control == "public, max-age=31536000, immutable"
    assert listed["tests/app.js"].md5_hash == {o.name: o for o in objects.list(state, "tests/site/")}["tests/site/app.js"].md5_hash
    assert direct.bucket(live).blob("tests/app.js").download_as_bytes() == b"console.log(1)"


# -- Cloud Run ------------------------------------------------------------------------------------------------------
def test_reads_a_service_with_its_traffic_and_url(cloud, run):
    service = run.service(API)
    assert service.uri.startswith("http://127.0.0.1:")
    assert sum(service.traffic.values()) == 100
    assert service.image == cloud.image_for(INITIAL_COMMIT)


def test_deploys_a_tagged_revision_with_no_traffic_then_moves_the_traffic(cloud, run):
    before = run.service(WORKER).traffic
    state = run.deploy_revision(WORKER, "botbalance-worker-adapter-1", cloud.image_for("adapter-1"), tag="adapter-1")
    assert state.traffic == before
    assert state.tags["adapter-1"] == "botbalance-worker-adapter-1"
    assert state.tag_urls["adapter-1"].endswith("/t/adapter-1---botbalance-worker")
    assert run.revision_ready(WORKER, "botbalance-worker-adapter-1") is True
    moved = run.set_traffic(WORKER, [TrafficTarget("botbalance-worker-adapter-1", 100, "adapter-1")])
    assert moved.traffic == {"botbalance-worker-adapter-1": 100}


def test_deploying_the_same_revision_again_finds_it_and_makes_no_second(cloud, run):
    image = cloud.image_for("adapter-2")
    run.deploy_revision(API, "botbalance-api-adapter-2", image, tag="adapter-2")
    run.deploy_revision(API, "botbalance-api-adapter-2", image, tag="adapter-2")
    assert cloud.fake_run.revisions(API).count("botbalance-api-adapter-2") == 1


def test_a_missing_revision_reads_as_none_and_traffic_to_it_is_refused(cloud, run):
    assert run.revision_ready(API, "botbalance-api-nope") is None
    with pytest.raises(PermanentError):
        run.set_traffic(API, [TrafficTarget("botbalance-api-nope", 100)])
    with pytest.raises(PermanentError):
        run.set_traffic(API, [TrafficTarget(run.service(API).latest_ready_revision, 50)])


def test_runs_the_migration_job_on_an_image_and_finds_that_execution_again(cloud, run):
    image = cloud.image_for("adapter-3")
    name = run.start_migration(JOB, image, ("python", "manage.py", "migrate"))
    deadline = time.monotonic() + 10
    while not run.execution(name).done and time.monotonic() < deadline:
        time.sleep(0.05)
    state = run.execution(name)
    assert state.done and state.succeeded
    assert run.find_execution(JOB, image).name == name


def test_a_failed_migration_execution_reports_failure(cloud, run):
    from localcloud.scenario import AppBehaviour

    cloud.scenario.set_commit("adapter-4", AppBehaviour(migration="fail"))
    name = run.start_migration(JOB, cloud.image_for("adapter-4"), ("python", "manage.py", "migrate"))
    deadline = time.monotonic() + 10
    while not run.execution(name).done and time.monotonic() < deadline:
        time.sleep(0.05)
    state = run.execution(name)
    assert state.done and not state.succeeded


def test_one_unavailable_answer_is_retried_by_the_library_and_a_429_is_our_transient_error(cloud, run):
    cloud.scenario.inject_fault("google.cloud.run.v2.Services/GetService", "UNAVAILABLE", times=1)
    assert run.service(API).name == API
    cloud.scenario.inject_fault("google.cloud.run.v2.Services/GetService", "RESOURCE_EXHAUSTED", times=1)
    with pytest.raises(TransientError):
        run.service(API)
    cloud.scenario.inject_fault("google.cloud.run.v2.Services/GetService", "NOT_FOUND", times=1)
    with pytest.raises(NotFound):
        run.service(API)


# -- Cloud Build ----------------------------------------------------------------------------------------------------
def test_submits_a_build_and_reads_its_result(cloud):
    builds = GoogleBuilds(cloud.project)
    request = BuildRequest("v0.0.1", "ada5ada5", cloud.repository, cloud.config.build.image, "frontend",
                           f"gs://{cloud.config.state.bucket}/frontend/v0.0.1/", 600)
    build_id, log_url = builds.submit(request)
    assert build_id and build_id in log_url
    deadline = time.monotonic() + 10
    while builds.status(build_id).status not in ("SUCCESS", "FAILURE") and time.monotonic() < deadline:
        time.sleep(0.05)
    status = builds.status(build_id)
    assert status.status == "SUCCESS" and status.tag == "v0.0.1"
    assert status.image.startswith(cloud.config.build.image + "@sha256:")


# -- Pub/Sub --------------------------------------------------------------------------------------------------------
def test_publishes_json_with_attributes_that_a_subscriber_receives(cloud):
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    topic = f"projects/{cloud.project}/topics/{cloud.config.topics.rollback}"
    subscription = subscriber.subscription_path(cloud.project, "adapter-test")
    subscriber.create_subscription(name=subscription, topic=topic)
    message_id = GooglePublisher(cloud.project).publish(cloud.config.topics.rollback, {"to": "previous"}, {"k": "v"})
    received = subscriber.pull(subscription=subscription, max_messages=1, timeout=10).received_messages
    subscriber.close()
    assert message_id and json.loads(received[0].message.data) == {"to": "previous"}
    assert received[0].message.attributes["k"] == "v"


def test_publishing_to_a_missing_topic_is_transient(cloud):
    with pytest.raises(TransientError):
        GooglePublisher(cloud.project, timeout=5).publish("no-such-topic", {})


# -- Monitoring -----------------------------------------------------------------------------------------------------
def test_counts_requests_by_class_and_reads_p95_latency_from_what_the_router_served(cloud):
    import requests

    base = f"{cloud.router.base_url}/s/{API}"
    for _ in range(12):
        requests.get(base + "/api/health", timeout=5)
    metrics = GoogleMetrics(cloud.project)
    # Monitoring answers for a request only once it is old enough (the local cloud's ingestion lag)
    figures = cloud.wait_for(lambda: (f := metrics.figures(API, 300)).by_class.get("2xx", 0) >= 12 and f, 20,
                             what="the requests to reach Monitoring")
    assert figures.error_ratio is not None and figures.error_ratio < 0.5
    assert figures.p95_latency_ms is not None and figures.p95_latency_ms >= 0


def test_a_service_with_no_requests_has_no_ratio_rather_than_zero(cloud):
    figures = GoogleMetrics(cloud.project).figures("botbalance-nothing", 300)
    assert figures.requests == 0 and figures.error_ratio is None


def test_a_revisions_figures_over_a_window_shorter_than_a_minute_count_only_it_and_only_then(cloud):
    import time

    import requests

    revision = cloud.fake_run.traffic(API)
    serving = max(revision, key=revision.get)
    base = f"{cloud.router.base_url}/s/{API}"
    started = time.time()
    for _ in range(7):
        requests.get(base + "/api/items", timeout=5)
    ended = time.time()
    metrics = GoogleMetrics(cloud.project)
    # a 60 s alignment period at least (Monitoring refuses less), the interval alone bounds what is counted
    figures = cloud.wait_for(lambda: (f := metrics.window_figures(API, serving, started, ended)).requests >= 7 and f,
                             20, what="the requests to reach Monitoring")
    assert figures.requests == 7 and ended - started < 60
    assert metrics.window_figures(API, "botbalance-api-another", started, ended).requests == 0
    before = min(r.time for r in cloud.router.request_log)
    assert metrics.window_figures(API, serving, before - 30, before - 0.001).requests == 0


# -- Slack ----------------------------------------------------------------------------------------------------------
def test_posts_replies_in_a_thread_and_updates_the_root_in_place(cloud):
    notifier = SlackWebNotifier("xoxb-local-bot-token-not-for-production", "#deploys", 2.0)
    root = notifier.post("root v1")
    reply = notifier.post("a step", thread=root)
    assert notifier.update(root, "root v2")
    assert root is not None and reply is not None
    thread = cloud.slack.thread(root.ts)
    assert [m["text"] for m in thread] == ["root v2", "a step"]


def test_a_rate_limited_post_is_retried(cloud):
    cloud.scenario.inject_fault("slack/chat.postMessage", "429", times=1)
    notifier = SlackWebNotifier("xoxb-local-bot-token-not-for-production", "#deploys", 3.0)
    assert notifier.post("after a 429") is not None


def test_slack_errors_are_logged_never_raised(cloud):
    notifier = SlackWebNotifier("xoxb-local-bot-token-not-for-production", "C0000NOPE", 2.0)
    assert notifier.post("nowhere") is None
    assert notifier.update(MessageRef("C0", "1.0"), "x") is False


def test_the_incoming_webhook_posts_without_threads(cloud):
    notifier = SlackWebhookNotifier(cloud.slack.webhook_url, 2.0)
    ref = notifier.post("via webhook")
    assert ref is not None and notifier.post("a reply", thread=ref) is not None  # posted on its own, unthreaded
    ours = [m for m in cloud.slack.messages if m["text"] in ("via webhook", "a reply")]
    assert len(ours) == 2 and all(not m.get("thread_ts") for m in ours)


def test_no_slack_secret_gives_the_null_notifier():
    assert isinstance(notifier_for(None, None, "#deploys", 1.0), NullNotifier)
    assert NullNotifier().post("x") is None
