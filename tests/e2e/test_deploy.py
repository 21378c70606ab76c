"""Push a tag, ship the release: end to end on the local cloud, through the real clients and real HTTP."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from localcloud.cloud import LocalCloud
from tests.e2e.conftest import LATENCY, wait_ended
from shared.release import revision_name

API, WORKER = "botbalance-api", "botbalance-worker"


def revisions_of(cloud, service, tag):
    return [r for r in cloud.fake_run.revisions(service) if r == revision_name(service, tag)]


def test_a_pushed_tag_goes_live_with_api_worker_migrations_and_frontend(cloud):
    assert cloud.push_tag("v1.0.0") == 202
    record = wait_ended(cloud, "v1.0.0")
    assert record["state"] == "live", record["error"]
    assert cloud.live_tag() == "v1.0.0"
    assert cloud.traffic(API) == {revision_name(API, "v1.0.0"): 100}
    assert cloud.traffic(WORKER) == {revision_name(WORKER, "v1.0.0"): 100}
    assert len(cloud.builds) == 1 and len(cloud.job_executions) == 1
    live = cloud.live_frontend()
    staged = {b.name.split("/", 2)[2]: b.md5_hash for b in cloud.storage_client().list_blobs(
        cloud.config.state.bucket, prefix="frontend/v1.0.0/")}
    assert all(live[path] == md5 for path, md5 in staged.items())
    index = cloud.storage_client().bucket(cloud.config.frontend.bucket).get_blob("index.html")
    assert index.cache_control == "no-cache"
    states = [state for state, _ in record["history"]]
    assert states == ["building", "migrating", "deploying", "publishing", "verifying", "live"]


def test_the_release_has_one_slack_thread_whose_root_shows_the_current_state(cloud):
    cloud.push_tag("v1.0.0", pusher="carol")
    record = wait_ended(cloud, "v1.0.0")
    # the record says live a moment before the thread hears of it: wait for the word, not the record
    cloud.wait_for(lambda: any("Live in" in m["text"] for m in cloud.thread("v1.0.0")[1:]), 30,
                   what="the thread to say the release is live")
    record = cloud.release("v1.0.0")
    thread = cloud.slack.thread(record["slack_ts"])
    root = cloud.slack.root_text(record["slack_ts"])
    assert "v1.0.0" in root and "live" in root and "carol" in root
    replies = [m["text"] for m in thread[1:]]
    assert any("Migrations done" in text for text in replies)
    assert any("Live in" in text for text in replies)
    roots = [m for m in cloud.slack.messages if not m.get("thread_ts")]
    assert len(roots) == 1


@pytest.fixture(scope="module")
def quiet_cloud():
    """One local cloud for deliveries that must change nothing: each case checks that nothing was started."""
    with LocalCloud(latency=dict(LATENCY)) as local:
        yield local


@pytest.mark.parametrize(
    "deliver, status",
    [
        (lambda c: c.deliver("push", c.tag_push_payload("v9.0.0", "a" * 40), secret="wrong"), 401),
        (lambda c: c.deliver("push", c.tag_push_payload("v9.0.0", "a" * 40), signature="sha1=abc"), 401),
        (lambda c: c.deliver("push", b"{not json"), 400),
        (lambda c: c.deliver("ping", {"zen": "Design for failure."}), 200),
        (lambda c: c.deliver("create", {"ref": "v9.0.0", "ref_type": "tag"}), 200),
        (lambda c: c.deliver("push", {**c.tag_push_payload("v9.0.0", "a" * 40), "ref": "refs/heads/main"}), 200),
        (lambda c: c.deliver("push", {**c.tag_push_payload("v9.0.0", "a" * 40), "deleted": True}), 200),
        (lambda c: c.deliver("push", c.tag_push_payload("nightly", "a" * 40)), 200),
        (lambda c: c.deliver("push", c.tag_push_payload("v9.0.0\n", "a" * 40)), 200),
        (lambda c: c.deliver("push", c.tag_push_payload("v\u0669.0.0", "a" * 40)), 200),
    ],
    ids=["a wrong signature is 401", "a sha1 signature is 401", "a malformed body is 400", "ping is 200",
         "the create event is 200", "a branch push is 200", "a tag deletion is 200", "a tag outside the pattern is 200",
         "a tag with a trailing newline is 200", "a tag with a non-ASCII digit is 200"],
)
def test_bad_or_foreign_deliveries_answer_with_a_reason_and_start_nothing(quiet_cloud, deliver, status):
    cloud = quiet_cloud
    response = deliver(cloud)
    assert response.status_code == status
    body = response.json()
    assert body.get("error") or body.get("reason")
    time.sleep(0.2)
    assert cloud.builds == []
    assert cloud.store().releases() == []


def test_the_same_webhook_delivered_ten_times_at_once_makes_one_build(cloud):
    commit = cloud.commit_for("v1.0.0")
    payload = cloud.tag_push_payload("v1.0.0", commit)
    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(lambda _: cloud.deliver("push", payload, delivery_id="same-delivery").status_code, range(10)))
    assert all(status in (200, 202) for status in statuses)
    wait_ended(cloud, "v1.0.0")
    assert len(cloud.builds) == 1
    assert cloud.release("v1.0.0")["state"] == "live"


def test_a_failed_build_fails_the_release_and_deploys_nothing(cloud):
    cloud.push_tag("v1.0.0", build="fail")
    record = wait_ended(cloud, "v1.0.0")
    assert record["state"] == "failed" and "build failure" in record["error"]
    assert cloud.job_executions == []
    assert cloud.traffic(API) == {"botbalance-api-00001-abc": 100} or list(cloud.traffic(API).values()) == [100]
    assert cloud.live_tag() is None
    cloud.wait_for(lambda: any("Build failure" in m["text"] for m in cloud.thread("v1.0.0")), 20,
                   what="the build failure told in the thread")


def test_a_failed_migration_fails_the_release_before_any_traffic_moves(cloud):
    before_api, before_worker = cloud.traffic(API), cloud.traffic(WORKER)
    cloud.push_tag("v1.0.0", migration="fail")
    record = wait_ended(cloud, "v1.0.0")
    assert record["state"] == "failed" and "Migrations failed" in record["error"]
    assert cloud.traffic(API) == before_api and cloud.traffic(WORKER) == before_worker
    assert revisions_of(cloud, API, "v1.0.0") == []


def test_an_unhealthy_candidate_fails_its_smoke_test_and_the_old_revision_keeps_all_traffic(cloud):
    cloud.push_tag("v1.0.0")
    wait_ended(cloud, "v1.0.0")
    cloud.push_tag("v1.1.0", app="unhealthy")
    record = wait_ended(cloud, "v1.1.0")
    assert record["state"] == "failed" and "Smoke test failed" in record["error"]
    assert cloud.traffic(API) == {revision_name(API, "v1.0.0"): 100}
    assert cloud.traffic(WORKER) == {revision_name(WORKER, "v1.0.0"): 100}
    assert cloud.live_tag() == "v1.0.0"


def test_a_candidate_django_refuses_by_host_fails_saying_allowed_hosts_and_the_old_revision_keeps_all_traffic(cloud):
    cloud.push_tag("v1.0.0")
    wait_ended(cloud, "v1.0.0")
    cloud.push_tag("v1.1.0", app="host-bound")  # answers its main URL, refuses its tag URL's host
    record = wait_ended(cloud, "v1.1.0")
    assert record["state"] == "failed" and "ALLOWED_HOSTS" in record["error"]
    assert cloud.traffic(API) == {revision_name(API, "v1.0.0"): 100}
    cloud.wait_for(lambda: any("ALLOWED_HOSTS" in m["text"] for m in cloud.thread("v1.1.0")), 20,
                   what="the thread to name the fix")


def test_a_build_message_delivered_five_times_makes_one_migration_and_one_revision_per_service(cloud):
    cloud.push_tag("v1.0.0")
    wait_ended(cloud, "v1.0.0")
    build = cloud.builds[0]
    from google.cloud.devtools import cloudbuild_v1

    data = cloudbuild_v1.Build.to_json(build).encode()
    for _ in range(4):
        cloud.publish(cloud.config.topics.builds, data, {"buildId": build.id, "status": "SUCCESS"})
    time.sleep(1.5)
    assert len(cloud.job_executions) == 1
    assert revisions_of(cloud, API, "v1.0.0") == [revision_name(API, "v1.0.0")]
    assert revisions_of(cloud, WORKER, "v1.0.0") == [revision_name(WORKER, "v1.0.0")]


@pytest.mark.parametrize(
    "method",
    ["google.cloud.run.v2.Jobs/RunJob", "google.cloud.run.v2.Services/UpdateService",
     "google.devtools.cloudbuild.v1.CloudBuild/GetBuild"],
    ids=["crash after starting the migration", "crash after deploying a revision", "a read lost on the way"],
)
def test_a_crash_after_a_step_then_redelivery_ends_live_exactly_once(cloud, method):
    cloud.scenario.inject_fault(method, "UNAVAILABLE", times=1, after_effect=True)
    cloud.push_tag("v1.0.0")
    record = wait_ended(cloud, "v1.0.0", timeout=60)
    assert record["state"] == "live", record["error"]
    assert len(cloud.job_executions) == 1
    assert revisions_of(cloud, API, "v1.0.0") == [revision_name(API, "v1.0.0")]
    assert revisions_of(cloud, WORKER, "v1.0.0") == [revision_name(WORKER, "v1.0.0")]


def test_two_tags_pushed_a_second_apart_deploy_one_after_the_other_and_the_newer_ends_live(cloud):
    cloud.push_tag("v1.0.0")
    time.sleep(1.0)
    cloud.push_tag("v1.1.0")
    first = wait_ended(cloud, "v1.0.0", timeout=60)
    second = wait_ended(cloud, "v1.1.0", timeout=60)
    assert cloud.live_tag() == "v1.1.0"
    assert second["state"] == "live"
    assert first["state"] == "live"
    assert first["history"][-1][1] <= second["history"][2][1]  # v1.1.0 migrated only after v1.0.0 was live
    assert cloud.traffic(API) == {revision_name(API, "v1.1.0"): 100}


def test_with_slack_down_releases_still_go_live(cloud):
    cloud.scenario.inject_fault("slack/chat.postMessage", "down", times=-1)
    cloud.scenario.inject_fault("slack/chat.update", "down", times=-1)
    cloud.push_tag("v1.0.0")
    record = wait_ended(cloud, "v1.0.0")
    assert record["state"] == "live"
    assert cloud.traffic(API) == {revision_name(API, "v1.0.0"): 100}


def test_a_release_that_failed_its_smoke_test_is_retried_at_a_fixed_commit_and_a_tag_moved_after_going_live_is_refused(cloud):
    from localcloud.scenario import AppBehaviour

    cloud.push_tag("v1.0.0")
    wait_ended(cloud, "v1.0.0")
    cloud.push_tag("v1.1.0", app="unhealthy")
    assert wait_ended(cloud, "v1.1.0")["state"] == "failed"
    fixed = "f" * 40
    cloud.scenario.set_commit(fixed, AppBehaviour())
    assert cloud.deliver("push", cloud.tag_push_payload("v1.1.0", fixed)).status_code == 202
    record = cloud.wait_for(lambda: (r := cloud.release("v1.1.0")) and r["attempt"] == 2 and r["state"] == "live" and r,
                            60, what="attempt 2 of v1.1.0 live")
    assert record["commit"] == fixed
    assert cloud.traffic(API) == {revision_name(API, "v1.1.0.attempt-2"): 100}
    assert cloud.live_tag() == "v1.1.0" and len(cloud.builds) == 3
    moved = cloud.deliver("push", cloud.tag_push_payload("v1.1.0", "e" * 40))
    assert moved.status_code == 409 and moved.json()["released_commit"] == fixed
    assert len(cloud.builds) == 3
    cloud.wait_for(lambda: any("never moved" in m["text"] for m in cloud.slack.messages), 10,
                   what="the moved tag told in the channel")
