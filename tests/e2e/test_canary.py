"""The canary end to end on the local cloud: real functions, real clients, Monitoring answered from what the
router really served, users' traffic from the local load generator."""
from __future__ import annotations

import time

import pytest

from localcloud.cloud import LocalCloud
from localcloud.router import LoadGenerator
from shared.release import revision_name
from tests.e2e.conftest import LATENCY, wait_ended

API, WORKER = "botbalance-api", "botbalance-worker"
# short steps: each needs 1.5 s of window (ending Monitoring's 1 s lag ago) and 10 candidate requests
CANARY = {"steps": [20, 60], "min_seconds_per_step": 1.5, "min_requests_per_step": 10,
          "max_seconds_per_step": 20.0, "inconclusive": "rollback"}


@pytest.fixture
def canary_cloud():
    with LocalCloud(latency=dict(LATENCY), config={"canary": CANARY}) as local:
        yield local
        assert local.functions.overran == [], "an invocation outlasted the function's timeout"


def users(cloud: LocalCloud) -> LoadGenerator:
    return LoadGenerator(f"{cloud.router.base_url}/s/{API}", rps=60, paths=["/api/items"], max_seconds=60)


def live_first(cloud: LocalCloud, tag: str = "v1.0.0") -> None:
    """A first release, through its own canary against the revision that served before tagship."""
    with users(cloud):
        cloud.push_tag(tag)
        record = wait_ended(cloud, tag, timeout=60)
    assert record["state"] == "live", record["error"]


def served_by(cloud: LocalCloud, revision: str, since: float) -> int:
    return sum(1 for r in cloud.router.request_log
               if r.revision == revision and r.time >= since and not r.via_tag and r.path == "/api/items")


def test_a_healthy_candidate_given_users_traffic_passes_both_steps_and_goes_live(canary_cloud):
    cloud = canary_cloud
    live_first(cloud)
    load = users(cloud)
    load.start()
    try:
        cloud.push_tag("v1.1.0")
        record = wait_ended(cloud, "v1.1.0", timeout=60)
    finally:
        load.stop()
    assert record["state"] == "live", record["error"]
    assert cloud.traffic(API) == {revision_name(API, "v1.1.0"): 100}
    assert cloud.traffic(WORKER) == {revision_name(WORKER, "v1.1.0"): 100}
    canary = record["canary"]
    assert canary["ended"] == "promoted"
    assert [(j["step"], j["verdict"]["outcome"]) for j in canary["history"]] == [(0, "pass"), (1, "pass")]
    assert all(j["verdict"]["candidate"]["requests"] >= 10 for j in canary["history"])
    replies = [m["text"] for m in cloud.thread("v1.1.0")[1:]]
    assert any("Canary step 1 of 2" in t for t in replies) and any("Canary step 2 of 2" in t for t in replies)
    assert any("Canary promoted" in t for t in replies)


def test_a_candidate_answering_errors_fails_its_first_step_while_stable_keeps_most_of_the_traffic(canary_cloud):
    cloud = canary_cloud
    stable, candidate = max(cloud.traffic(API), key=cloud.traffic(API).get), revision_name(API, "v1.0.0")
    worker = cloud.traffic(WORKER)
    load = users(cloud)
    load.start()
    try:
        pushed_at = time.time()
        cloud.push_tag("v1.0.0", app="errors", error_ratio=0.6)
        record = wait_ended(cloud, "v1.0.0", timeout=60)
    finally:
        load.stop()
    assert record["state"] == "failed"
    assert "Canary" in record["error"] and "5xx ratio" in record["error"]
    assert cloud.traffic(API) == {stable: 100}
    assert cloud.traffic(WORKER) == worker  # the worker never moved
    history = record["canary"]["history"]
    assert [(j["step"], j["verdict"]["outcome"]) for j in history] == [(0, "fail")]
    by_stable, by_candidate = served_by(cloud, stable, pushed_at), served_by(cloud, candidate, pushed_at)
    assert by_candidate > 0 and by_stable > 3 * by_candidate  # 20 % at most went to the candidate
    # the record says failed first, then the reply is posted: wait for it rather than read the thread at once
    failure = cloud.wait_for(lambda: [m["text"] for m in cloud.thread("v1.0.0")[1:] if "Canary:" in m["text"]], 10,
                             what="the canary's failure told in the thread")
    assert "candidate" in failure[0] and "stable" in failure[0]


@pytest.fixture
def slow_canary_cloud():
    """A canary whose steps wait longer than the test: only a person's controls move it on."""
    slow = {**CANARY, "min_seconds_per_step": 60.0, "max_seconds_per_step": 120.0}
    with LocalCloud(latency=dict(LATENCY), config={"canary": slow}) as local:
        yield local
        assert local.functions.overran == [], "an invocation outlasted the function's timeout"


def test_pause_and_abort_from_the_command_line_are_told_once_and_abort_sends_the_traffic_back_to_stable(
        slow_canary_cloud):
    from tests.e2e.test_cli import cli

    cloud = slow_canary_cloud
    stable = cloud.fake_run.traffic(API)
    cloud.push_tag("v1.0.0")
    candidate = revision_name(API, "v1.0.0")
    cloud.wait_for(lambda: cloud.traffic(API).get(candidate) == 20, 30, what="the canary's first step")
    assert cli(cloud, "canary", "pause", "--by", "dana").returncode == 0
    cloud.wait_for(lambda: any("paused by dana" in m["text"] for m in cloud.thread("v1.0.0")), 20,
                   what="the pause told in the thread")
    assert "in flight: v1.0.0 (deploying, canary step 1 of 2 (20 %), paused)" in cli(cloud, "status").stdout
    done = cli(cloud, "canary", "abort", "v1.0.0", "--by", "dana", "--reason", "checkout is slow")
    assert done.returncode == 0, done.stderr
    record = wait_ended(cloud, "v1.0.0", timeout=30)
    assert record["state"] == "failed" and "aborted by dana: checkout is slow" in record["error"]
    assert cloud.traffic(API) == stable
    controls = [c["kind"] for c in record["canary"]["controls"]]
    assert controls == ["pause", "abort"]
    told = [m["text"] for m in cloud.thread("v1.0.0") if ":joystick:" in m["text"]]
    assert len(told) == 2
    history = cli(cloud, "history").stdout
    assert "canary control pause" in history and "canary aborted: aborted by dana" in history


def test_a_rollback_request_during_a_canary_aborts_it_and_the_stable_release_keeps_serving(slow_canary_cloud):
    cloud = slow_canary_cloud
    stable = cloud.fake_run.traffic(API)
    cloud.push_tag("v1.0.0")
    cloud.wait_for(lambda: cloud.traffic(API).get(revision_name(API, "v1.0.0")) == 20, 30,
                   what="the canary's first step")
    cloud.publish(cloud.config.topics.rollback, {"to": "previous", "reason": "pager: 5xx", "requested_by": "alert"})
    record = wait_ended(cloud, "v1.0.0", timeout=30)
    assert record["state"] == "failed" and "a rollback was requested by alert: pager: 5xx" in record["error"]
    assert cloud.traffic(API) == stable and cloud.live_tag() is None  # nothing else was rolled back
    assert [c["kind"] for c in record["canary"]["controls"]] == ["rollback"]
