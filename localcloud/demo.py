"""The local demo: the whole story of tagship on the local cloud, narrated, checked as it goes.

    v1.0.0 goes live; v1.1.0 (unhealthy) is stopped by its smoke test while v1.0.0 keeps serving; v1.2.0 goes live;
    v1.3.0 degrades after going live, the watchdog catches it and v1.2.0 is back; a person rolls back one more
    release and then forward again by tag; a Monitoring incident opens and closes.

Exits non-zero as soon as something does not happen as told.
"""
from __future__ import annotations

import sys
import time
from typing import Any, Callable

from localcloud.cloud import LocalCloud
from shared.messages import duration

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
    narrator.check("API and worker serve v1.0.0", cloud.traffic(api) == {"botbalance-api-v1-0-0": 100}
                   and cloud.traffic(worker) == {"botbalance-worker-v1-0-0": 100}, f"{cloud.traffic(api)} {cloud.traffic(worker)}")
    _timeline(narrator, record)
    _thread(cloud, record)

    narrator.say("v1.1.0: a release whose health check fails from the start")
    cloud.push_tag("v1.1.0", app="unhealthy")
    record = _wait(cloud, _ended(cloud, "v1.1.0"), 60, "v1.1.0 to end")
    narrator.check("v1.1.0 failed its smoke test", record["state"] == "failed" and "Smoke test" in record["error"], record["error"])
    narrator.check("v1.0.0 kept all the traffic", cloud.traffic(api).get("botbalance-api-v1-0-0") == 100, str(cloud.traffic(api)))
    narrator.check("v1.0.0 is still live", cloud.live_tag() == "v1.0.0")
    _timeline(narrator, record)
    _thread(cloud, record)

    narrator.say("v1.2.0: a healthy release")
    cloud.push_tag("v1.2.0")
    record = _wait(cloud, _ended(cloud, "v1.2.0"), 60, "v1.2.0 to end")
    narrator.check("v1.2.0 is live", record["state"] == "live", record.get("error", ""))
    _timeline(narrator, record)
    _thread(cloud, record)


def run_demo(quick: bool = False) -> int:
    narrator = Narrator()
    narrator.say("starting the local cloud (Pub/Sub emulator, fake-gcs-server, fakes of Cloud Run, Cloud Build, "
                 "Monitoring and Slack, the four functions)")
    try:
        with LocalCloud(latency=LATENCY) as cloud:
            narrator.say(f"local cloud up in {cloud.started_in:.1f}s; cloud latencies: {LATENCY}")
            deploy_story(cloud, narrator)
            if not quick:
                try:
                    from localcloud.demo_rollback import rollback_story
                except ImportError:
                    rollback_story = None
                if rollback_story is not None:
                    rollback_story(cloud, narrator)
    except DemoFailed as failure:
        narrator.say(f"DEMO FAILED: {failure}")
        return 1
    narrator.say("demo finished: everything happened as told")
    return 0


if __name__ == "__main__":
    sys.exit(run_demo())
