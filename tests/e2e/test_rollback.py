"""Watch it, and bring it back: the watchdog and the rollback function end to end on the local cloud."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor


from tests.e2e.conftest import wait_ended
from shared.release import revision_name

API, WORKER = "botbalance-api", "botbalance-worker"


def serve(cloud, *tags_and_apps):
    for tag, kwargs in tags_and_apps:
        cloud.push_tag(tag, **kwargs)
        record = wait_ended(cloud, tag)
        assert record["state"] == "live", record["error"]


def unit_on(cloud, tag):
    return (cloud.traffic(API) == {revision_name(API, tag): 100}
            and cloud.traffic(WORKER) == {revision_name(WORKER, tag): 100})


def drive_load(cloud, seconds, rps=40):
    from localcloud.router import LoadGenerator

    load = LoadGenerator(f"{cloud.router.base_url}/s/{API}", rps=rps, paths=["/api/items"])
    load.start()
    return load


def test_a_release_that_degrades_in_its_bake_window_is_rolled_back_by_the_watchdog(cloud):
    serve(cloud, ("v1.0.0", {}), ("v1.1.0", {}))
    cloud.break_app("v1.1.0")  # live, inside its bake window, then failing
    for _ in range(6):
        cloud.tick_watchdog()
        time.sleep(0.4)
        if cloud.live_tag() == "v1.0.0":
            break
    cloud.wait_for(lambda: cloud.live_tag() == "v1.0.0", 20, what="v1.0.0 back")
    assert unit_on(cloud, "v1.0.0")
    assert cloud.release("v1.1.0")["state"] == "rolled_back"
    live = cloud.live_frontend()
    staged = {b.name.split("/", 2)[2]: b.md5_hash for b in cloud.storage_client().list_blobs(
        cloud.config.state.bucket, prefix="frontend/v1.0.0/")}
    assert live["index.html"] == staged["index.html"]
    # the pointer moves a moment before the thread and the channel hear of it
    rolled = lambda: sum("Rolled back" in m["text"] for m in cloud.slack.messages)  # noqa: E731
    cloud.wait_for(lambda: rolled() >= 2, 20, what="the rollback told in the thread and the channel")
    assert rolled() == 2


def test_manual_rollback_to_previous_then_forward_by_tag(cloud):
    serve(cloud, ("v1.0.0", {}), ("v1.1.0", {}))
    cloud.publish(cloud.config.topics.rollback, {"to": "previous", "from": "v1.1.0", "reason": "checkout broken",
                                                 "requested_by": "dana"})
    cloud.wait_for(lambda: cloud.live_tag() == "v1.0.0", 20, what="v1.0.0 back")
    assert unit_on(cloud, "v1.0.0")
    bad = cloud.release("v1.1.0")
    restored_at = dict(bad["history"])["rolled_back"]
    assert bad["steps"]["incident"]["started"] <= restored_at  # DORA's time to restore starts at the request
    cloud.publish(cloud.config.topics.rollback, {"to": "v1.1.0", "reason": "fixed in config", "requested_by": "dana"})
    cloud.wait_for(lambda: cloud.live_tag() == "v1.1.0", 20, what="v1.1.0 forward")
    assert unit_on(cloud, "v1.1.0")


def outcomes(cloud):
    """What each rollback request came to, as the rollback recorded it once it was handled."""
    records = cloud.store().records
    found = [records.read(name) for name in records.list("markers/rollback-message/")]
    return [r.data["outcome"] for r in found if r is not None]


def test_three_triggers_at_once_give_one_rollback(cloud):
    serve(cloud, ("v1.0.0", {}), ("v1.1.0", {}), ("v1.2.0", {}))
    requests = [
        {"to": "previous", "from": "v1.2.0", "reason": "watchdog", "requested_by": "health_watchdog", "trigger": "watchdog"},
        {"to": "previous", "from": "v1.2.0", "reason": "pager", "requested_by": "erin"},
        {"to": "previous", "from": "v1.2.0", "reason": "again", "requested_by": "frank"},
    ]
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(lambda r: cloud.publish(cloud.config.topics.rollback, r), requests))
    cloud.wait_for(lambda: cloud.live_tag() == "v1.1.0", 20, what="v1.1.0 back")
    handled = cloud.wait_for(lambda: len(outcomes(cloud)) >= 3 and outcomes(cloud), 30, what="all three handled")
    assert cloud.live_tag() == "v1.1.0"  # never walked back to v1.0.0
    assert unit_on(cloud, "v1.1.0")
    assert sorted(o.split(":")[0] for o in handled) == ["refused", "refused", "rolled back v1.2.0 -> v1.1.0"]
    assert all("no longer live" in o for o in handled if o.startswith("refused"))
    # the two about a release no longer live are logged, not posted: the channel hears of the rollback once
    assert not [m for m in cloud.slack.messages if "Rollback refused" in m["text"]]


def test_a_request_to_a_tag_that_never_went_live_is_refused_and_changes_nothing(cloud):
    serve(cloud, ("v1.0.0", {}))
    cloud.push_tag("v1.1.0", app="unhealthy")
    wait_ended(cloud, "v1.1.0")
    cloud.publish(cloud.config.topics.rollback, {"to": "v1.1.0", "reason": "try", "requested_by": "gus"})
    cloud.wait_for(lambda: any("Rollback refused" in m["text"] for m in cloud.slack.messages), 10, what="refusal")
    assert cloud.live_tag() == "v1.0.0" and unit_on(cloud, "v1.0.0")


def test_a_malformed_rollback_message_is_acknowledged_and_changes_nothing(cloud):
    serve(cloud, ("v1.0.0", {}), ("v1.1.0", {}))
    cloud.publish(cloud.config.topics.rollback, b"{not json")
    cloud.publish(cloud.config.topics.rollback, {"to": 5})
    time.sleep(1.5)
    assert cloud.live_tag() == "v1.1.0" and unit_on(cloud, "v1.1.0")


def incident(state, policy="botbalance-api-health", incident_id="0.abc123", labels=None):
    return {
        "version": "1.2",
        "incident": {
            "incident_id": incident_id, "scoping_project_id": "botbalance-prod", "url": "https://console.cloud.google.com/monitoring/alerting/incidents/0.abc123",
            "state": state, "started_at": int(time.time()) - 5, "ended_at": int(time.time()) if state == "closed" else None,
            "summary": "Uptime check on /api/health is failing", "policy_name": policy,
            "policy_user_labels": labels or {}, "condition_name": "uptime failure",
            "resource": {"type": "cloud_run_revision", "labels": {"service_name": API, "project_id": "botbalance-prod"}},
            "resource_display_name": API,
        },
    }


def test_an_open_incident_on_a_trigger_policy_rolls_back_once_and_closed_only_reports(cloud):
    serve(cloud, ("v1.0.0", {}), ("v1.1.0", {}))
    cloud.publish(cloud.config.topics.rollback, incident("open"))
    cloud.publish(cloud.config.topics.rollback, incident("open"))  # the same incident again
    cloud.wait_for(lambda: cloud.live_tag() == "v1.0.0", 20, what="rollback from the alert")
    cloud.publish(cloud.config.topics.rollback, incident("closed"))
    cloud.wait_for(lambda: any("Incident closed" in m["text"] for m in cloud.slack.messages), 10, what="closed note")
    assert cloud.live_tag() == "v1.0.0"
    rolled = lambda: sum("Rolled back" in m["text"] for m in cloud.slack.messages)  # noqa: E731
    cloud.wait_for(lambda: rolled() >= 2, 20, what="the rollback told in the thread and the channel")
    assert rolled() == 2


def test_a_test_notification_gets_a_slack_note_not_a_rollback(cloud):
    serve(cloud, ("v1.0.0", {}), ("v1.1.0", {}))
    cloud.publish(cloud.config.topics.rollback, {"version": "test", "incident": {"summary": "test"}})
    cloud.wait_for(lambda: any("test notification" in m["text"] for m in cloud.slack.messages), 10, what="note")
    assert cloud.live_tag() == "v1.1.0"


def test_a_rollback_racing_a_deploy_wins_and_the_deploy_stops_before_its_next_traffic_change(cloud):
    serve(cloud, ("v1.0.0", {}), ("v1.1.0", {}))
    cloud.scenario.latency["revision_ready"] = 1.5  # the candidate takes its time
    cloud.push_tag("v1.2.0")
    cloud.wait_for(lambda: (cloud.release("v1.2.0") or {}).get("state") == "deploying", 30, what="v1.2.0 deploying")
    cloud.publish(cloud.config.topics.rollback, {"to": "previous", "from": "v1.1.0", "reason": "incident",
                                                 "requested_by": "ivy"})
    record = wait_ended(cloud, "v1.2.0", timeout=60)
    cloud.wait_for(lambda: cloud.live_tag() == "v1.0.0", 20, what="v1.0.0 back")
    time.sleep(2.0)  # let anything still in flight land
    assert record["state"] == "failed" and "rollback" in record["error"]
    assert cloud.live_tag() == "v1.0.0"
    assert unit_on(cloud, "v1.0.0")


def test_a_request_to_a_release_whose_revisions_are_gone_is_refused(cloud):
    serve(cloud, ("v1.0.0", {}), ("v1.1.0", {}), ("v1.2.0", {}))
    cloud.fake_run.delete_revision(API, revision_name(API, "v1.0.0"))
    cloud.publish(cloud.config.topics.rollback, {"to": "v1.0.0", "reason": "go back far", "requested_by": "jo"})
    refusal = cloud.wait_for(lambda: [m["text"] for m in cloud.slack.messages if "Rollback refused" in m["text"]], 15,
                             what="a refusal")
    assert "v1.0.0" in refusal[0]
    assert cloud.live_tag() == "v1.2.0" and unit_on(cloud, "v1.2.0")


def test_healthy_ticks_say_nothing_in_slack():
    from localcloud.cloud import LocalCloud

    with LocalCloud(latency={"build": 0.1}) as local:
        serve(local, ("v1.0.0", {}))
        local.wait_for(lambda: any("Live in" in m["text"] for m in local.thread("v1.0.0")), 15, what="the deploy's last reply")
        before = len(local.slack.messages)
        ticks = local.functions.invocations["health_watchdog"]
        for _ in range(3):
            local.tick_watchdog()
        local.wait_for(lambda: local.functions.invocations["health_watchdog"] >= ticks + 3, 15, what="three finished ticks")
        assert (local.store().watchdog().data.get("status")) == "healthy"
        assert [m["text"] for m in local.slack.messages[before:]] == []


def test_outside_the_bake_window_the_watchdog_alerts_only_and_says_why():
    from localcloud.cloud import LocalCloud

    with LocalCloud(latency={"build": 0.1}, config={"watchdog": {"bake_window_seconds": 0.0}}) as local:
        serve(local, ("v1.0.0", {}), ("v1.1.0", {}))
        local.break_app("v1.1.0")
        load = drive_load(local, 0)
        try:
            for _ in range(4):
                local.tick_watchdog()
                time.sleep(0.4)
            alerts = local.wait_for(lambda: [m["text"] for m in local.slack.messages if "bake window" in m["text"]], 15,
                                    what="an alert naming the bake window")
        finally:
            load.stop()
        assert "not rolling back" in alerts[0]
        time.sleep(1.0)
        assert local.live_tag() == "v1.1.0"


def test_two_requests_without_from_sent_together_walk_back_one_release_only(cloud):
    serve(cloud, ("v1.0.0", {}), ("v1.1.0", {}), ("v1.2.0", {}))
    for who in ("kim", "lee"):
        cloud.publish(cloud.config.topics.rollback, {"to": "previous", "reason": "pager", "requested_by": who})
    cloud.wait_for(lambda: cloud.live_tag() == "v1.1.0", 20, what="v1.1.0 back")
    handled = cloud.wait_for(lambda: len(outcomes(cloud)) >= 2 and outcomes(cloud), 20, what="both handled")
    assert sum(o.startswith("refused") and "no longer live" in o for o in handled) == 1
    assert cloud.live_tag() == "v1.1.0" and unit_on(cloud, "v1.1.0")
