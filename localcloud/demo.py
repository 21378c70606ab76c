"""The local demo: the whole story of tagship on the local cloud, narrated, checked as it goes.

    v1.0.0 goes live; v1.1.0 (unhealthy) is stopped by its smoke test while v1.0.0 keeps serving; v1.2.0 goes live;
    v1.3.0 degrades after going live, the watchdog catches it and v1.2.0 is back; a person rolls back one more
    release and then forward again by tag; a Monitoring incident opens and closes. Then, on a local cloud whose
    config has canary steps, with users' traffic from the load generator: v2.0.0 passes both canary steps and goes
    live; v2.1.0, answering errors, fails its first step while the stable release keeps most of the traffic.

Exits non-zero as soon as something does not happen as told.
"""
from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from localcloud.cloud import LocalCloud
from shared.core.wording import duration
from shared.release import revision_name

LATENCY = {"build": 0.6, "migration": 0.4, "revision_ready": 0.3}


class DemoFailed(Exception):
    pass


class Narrator:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.failures = 0

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", flush=True)

    def check(self, what: str, ok: bool, detail: str = "") -> None:
        mark = "ok " if ok else "FAIL"
        print(f"          {mark} {what}" + (f" ({detail})" if detail and not ok else ""), flush=True)
        if not ok:
            raise DemoFailed(f"{what}: {detail}")


def _wait(cloud: LocalCloud, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    try:
        return cloud.wait_for(predicate, timeout, what=what)
    except TimeoutError as error:
        raise DemoFailed(str(error)) from error


def _ended(cloud: LocalCloud, tag: str) -> Callable[[], Any]:
    def ended() -> Any:
        record = cloud.release(tag)
        return record if record and record["state"] in ("live", "failed", "rolled_back", "superseded") else None

    return ended


def _timeline(narrator: Narrator, record: dict[str, Any]) -> None:
    history = record["history"]
    start = history[0][1]
    steps = "  ".join(f"{state} +{duration(at - start)}" for state, at in history)
    narrator.say(f"  timeline of {record['tag']}: {steps}")
    for step, edges in record.get("steps", {}).items():
        if "started" in edges and "finished" in edges:
            narrator.say(f"    {step:<14} {duration(edges['finished'] - edges['started'])}")


def _thread(cloud: LocalCloud, record: dict[str, Any]) -> None:
    ts = record.get("slack_ts")
    if not ts:
        return
    messages = cloud.slack.thread(ts)
    print("          ┌─ Slack thread " + "─" * 50)
    for index, message in enumerate(messages):
        text = message["text"] if isinstance(message, dict) else str(message)
        for line_no, line in enumerate(text.splitlines()):
            lead = "│ " if index == 0 else "│   ↳ " if line_no == 0 else "│     "
            print(f"          {lead}{line}")
    print("          └" + "─" * 64)


def deploy_story(cloud: LocalCloud, narrator: Narrator) -> None:
    api, worker = cloud.config.api.service, cloud.config.worker.service
    narrator.say("v1.0.0: a healthy release is tagged")
    status = cloud.push_tag("v1.0.0")
    narrator.check("GitHub's webhook is answered 202", status == 202, f"got {status}")
    record = _wait(cloud, _ended(cloud, "v1.0.0"), 60, "v1.0.0 to end")
    narrator.check("v1.0.0 is live", record["state"] == "live", record.get("error", ""))
    narrator.check("API and worker serve v1.0.0", cloud.traffic(api) == {revision_name(api, "v1.0.0"): 100}
                   and cloud.traffic(worker) == {revision_name(worker, "v1.0.0"): 100}, f"{cloud.traffic(api)} {cloud.traffic(worker)}")
    _timeline(narrator, record)
    _thread(cloud, record)

    narrator.say("v1.1.0: a release whose health check fails from the start")
    cloud.push_tag("v1.1.0", app="unhealthy")
    record = _wait(cloud, _ended(cloud, "v1.1.0"), 60, "v1.1.0 to end")
    narrator.check("v1.1.0 failed its smoke test", record["state"] == "failed" and "Smoke test" in record["error"], record["error"])
    narrator.check("v1.0.0 kept all the traffic", cloud.traffic(api).get(revision_name(api, "v1.0.0")) == 100, str(cloud.traffic(api)))
    narrator.check("v1.0.0 is still live", cloud.live_tag() == "v1.0.0")
    _timeline(narrator, record)
    _thread(cloud, record)

    narrator.say("v1.2.0: a healthy release")
    cloud.push_tag("v1.2.0")
    record = _wait(cloud, _ended(cloud, "v1.2.0"), 60, "v1.2.0 to end")
    narrator.check("v1.2.0 is live", record["state"] == "live", record.get("error", ""))
    _timeline(narrator, record)
    _thread(cloud, record)


def _unit(cloud: LocalCloud, tag: str) -> bool:
    api, worker = cloud.config.api.service, cloud.config.worker.service
    return (cloud.traffic(api) == {revision_name(api, tag): 100}
            and cloud.traffic(worker) == {revision_name(worker, tag): 100})


def _rolled_back_texts(cloud: LocalCloud) -> list[str]:
    return [m["text"] for m in cloud.slack.messages if "Rolled back" in m["text"] and not m.get("thread_ts")]


def rollback_story(cloud: LocalCloud, narrator: Narrator) -> None:
    from localcloud.router import LoadGenerator

    api = cloud.config.api.service
    narrator.say("v1.3.0: a release that passes its smoke test, then degrades once it serves real traffic")
    cloud.push_tag("v1.3.0", app="degrading", degrade_after=1.5)
    record = _wait(cloud, _ended(cloud, "v1.3.0"), 60, "v1.3.0 to end")
    narrator.check("v1.3.0 went live", record["state"] == "live", record.get("error", ""))
    load = LoadGenerator(f"{cloud.router.base_url}/s/{api}", rps=30, paths=["/api/items"])
    load.start()
    try:
        first_failure = None
        ticks = 0
        while cloud.live_tag() == "v1.3.0" and ticks < 40:
            cloud.tick_watchdog()
            ticks += 1
            time.sleep(0.5)
            watchdog = cloud.store().watchdog()
            if first_failure is None and watchdog and watchdog.data.get("consecutive_unhealthy", 0) >= 1:
                first_failure = time.monotonic()
                narrator.say("  the watchdog sees the first failed probe")
        _wait(cloud, lambda: cloud.live_tag() == "v1.2.0", 20, "v1.2.0 to be back")
        restored = time.monotonic()
    finally:
        load.stop()
    narrator.check("the watchdog rolled v1.3.0 back: API, worker and frontend on v1.2.0", _unit(cloud, "v1.2.0"),
                   str(cloud.traffic(api)))
    narrator.check("v1.3.0 is marked rolled back", cloud.release("v1.3.0")["state"] == "rolled_back")
    if first_failure is not None:
        narrator.say(f"  first failed probe to traffic restored: {restored - first_failure:.1f}s "
                     f"(watchdog tick every 0.5s, {cloud.config.watchdog.consecutive_failures} failed checks to act)")
    _thread(cloud, cloud.release("v1.3.0"))

    narrator.say("a person presses Roll back on v1.2.0's thread in Slack (a signed click to the slack_actions function)")
    root = cloud.release("v1.2.0")["slack_ts"]
    stranger = cloud.press(root, user_id="U0STRANGER", user_name="mallory")
    narrator.check("someone slack.actors does not name is refused, and nothing moves",
                   stranger.status_code == 403 and cloud.live_tag() == "v1.2.0", str(stranger.status_code))
    pressed = cloud.press(root)
    narrator.check("the click is answered at once", pressed.status_code == 200, pressed.text[:200])
    _wait(cloud, lambda: cloud.live_tag() == "v1.0.0", 20, "v1.0.0 to serve")
    narrator.check("v1.0.0 serves again (v1.1.0 never went live, so it is skipped)", _unit(cloud, "v1.0.0"))
    narrator.say("and forward again by tag")
    cloud.publish(cloud.config.topics.rollback, {"to": "v1.2.0", "reason": "false alarm", "requested_by": "dana"})
    _wait(cloud, lambda: cloud.live_tag() == "v1.2.0", 20, "v1.2.0 to serve")
    narrator.check("v1.2.0 serves again, without being deployed again", _unit(cloud, "v1.2.0"))

    narrator.say("a Cloud Monitoring incident opens on a rollback-trigger policy, then closes")
    incident = {
        "version": "1.2",
        "incident": {"incident_id": "0.demo", "state": "open", "policy_name": "botbalance-api-health",
                     "summary": "Uptime check on /api/health failing", "url": "https://console.cloud.google.com/monitoring",
                     "started_at": int(time.time()), "policy_user_labels": {},
                     "resource": {"type": "cloud_run_revision", "labels": {"service_name": api}}},
    }
    cloud.publish(cloud.config.topics.rollback, incident)
    _wait(cloud, lambda: cloud.live_tag() == "v1.0.0", 20, "the incident's rollback")
    narrator.check("the open incident rolled back to v1.0.0", _unit(cloud, "v1.0.0"))
    closed = {**incident, "incident": {**incident["incident"], "state": "closed", "ended_at": int(time.time())}}
    cloud.publish(cloud.config.topics.rollback, closed)
    _wait(cloud, lambda: any("Incident closed" in m["text"] for m in cloud.slack.messages), 10, "the closed note")
    narrator.check("the closed incident is only reported", cloud.live_tag() == "v1.0.0")
    print("          channel messages:")
    for message in cloud.slack.messages:
        if not message.get("thread_ts"):
            print("          • " + message["text"].splitlines()[0])


CANARY = {"steps": [20, 60], "min_seconds_per_step": 2.0, "min_requests_per_step": 20, "max_seconds_per_step": 20.0,
          "inconclusive": "rollback"}
# the canary's cloud also asks a person before a canary's promotion: the demo approves in Slack
APPROVAL = {"approval": "before_promotion", "approvers": ["U0APPROVER"]}


def canary_story(cloud: LocalCloud, narrator: Narrator) -> None:
    from localcloud.router import LoadGenerator

    api = cloud.config.api.service
    steps = cloud.config.canary.steps
    narrator.say(f"a canary in steps {list(steps)} %, then all the traffic; users send 60 requests a second")
    load = LoadGenerator(f"{cloud.router.base_url}/s/{api}", rps=60, paths=["/api/items"], max_seconds=120)
    load.start()
    try:
        narrator.say("v2.0.0: a healthy release goes through its canary (against the revision before tagship)")
        cloud.push_tag("v2.0.0")
        _approve(cloud, narrator, "v2.0.0")
        record = _wait(cloud, _ended(cloud, "v2.0.0"), 60, "v2.0.0 to end")
        narrator.check("v2.0.0 passed every step and is live", record["state"] == "live"
                       and record["canary"].get("ended") == "promoted", record.get("error", ""))
        _timeline(narrator, record)
        _thread(cloud, record)
        stable, candidate = revision_name(api, "v2.0.0"), revision_name(api, "v2.1.0")
        since = time.time()
        narrator.say("v2.1.0: healthy on its health checks, but 60 % of its answers are 500s")
        cloud.push_tag("v2.1.0", app="errors", error_ratio=0.6)
        record = _wait(cloud, _ended(cloud, "v2.1.0"), 60, "v2.1.0 to end")
    finally:
        load.stop()
    history = record.get("canary", {}).get("history", [])
    narrator.check("v2.1.0 failed at its first canary step", record["state"] == "failed"
                   and [j["step"] for j in history] == [0], record.get("error", ""))
    narrator.check("all the API's traffic is back on v2.0.0", cloud.traffic(api) == {stable: 100}, str(cloud.traffic(api)))
    served = [r.revision for r in cloud.router.request_log if r.time >= since and not r.via_tag]
    narrator.check("stable kept most of the traffic meanwhile", served.count(stable) > 3 * served.count(candidate),
                   f"stable {served.count(stable)}, candidate {served.count(candidate)}")
    narrator.say(f"  requests while v2.1.0 ran: stable {served.count(stable)}, candidate {served.count(candidate)}")
    _timeline(narrator, record)
    _thread(cloud, record)


def _approve(cloud: LocalCloud, narrator: Narrator, tag: str) -> None:
    """The canary's last step passed, the release waits for approval (gates.approval): a stranger's click is
    refused, an approver's goes through."""
    def asked() -> Any:
        record = cloud.release(tag)
        return record if record and record.get("approval") and record.get("slack_ts") else None

    root = _wait(cloud, asked, 60, f"{tag} to ask for approval")["slack_ts"]
    share = cloud.traffic(cloud.config.api.service)
    narrator.say(f"{tag}'s canary passed; it waits for approval before its promotion, serving {share}")
    _wait(cloud, lambda: any(b.get("type") == "actions" for b in cloud.slack.message(root).get("blocks", [])), 10,
          "the Approve button on the root")
    stranger = cloud.press(root, user_id="U0STRANGER", user_name="mallory")
    narrator.check("someone gates.approvers does not name is refused (403)", stranger.status_code == 403,
                   stranger.text[:200])
    pressed = cloud.press(root, user_id="U0APPROVER", user_name="ada")
    narrator.check("ada, an approver, presses Approve in Slack", pressed.status_code == 200, pressed.text[:200])


def run_demo(quick: bool = False) -> int:
    from pathlib import Path

    from shared import log

    log_path = Path(tempfile.gettempdir()) / "tagship-demo-logs.jsonl"
    log_file = log_path.open("w", encoding="utf-8")
    log.set_stream(log_file)  # the functions' JSON log lines, as Cloud Logging would hold them
    try:
        return _run(quick, log_path)
    finally:
        log.set_stream(None)
        log_file.close()


def _run(quick: bool, log_path: Any) -> int:
    narrator = Narrator()
    narrator.say("starting the local cloud (Pub/Sub emulator, fake-gcs-server, fakes of Cloud Run, Cloud Build, "
                 "Monitoring and Slack, the five functions)")
    try:
        with LocalCloud(latency=LATENCY) as cloud:
            narrator.say(f"local cloud up in {cloud.started_in:.1f}s; cloud latencies: {LATENCY}")
            deploy_story(cloud, narrator)
            if not quick:
                rollback_story(cloud, narrator)
        if not quick:
            narrator.say("a second local cloud, whose config has canary steps and an approval before each promotion")
            with LocalCloud(latency=LATENCY, config={"canary": CANARY, "gates": APPROVAL}) as cloud:
                canary_story(cloud, narrator)
    except DemoFailed as failure:
        narrator.say(f"DEMO FAILED: {failure}")
        narrator.say(f"the functions' log lines: {log_path}")
        return 1
    narrator.say("demo finished: everything happened as told")
    narrator.say(f"the functions' log lines (JSON, as Cloud Logging reads them): {log_path}")
    return 0


if __name__ == "__main__":
    sys.exit(run_demo())
