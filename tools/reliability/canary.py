"""The canary in the reliability matrix: its steps as matrix steps, and a person's controls as steps.

A canary of two steps (20 %, 60 %) is turned on for these scenarios only (`options`), and users' traffic comes from
the local load generator so each step can be judged. Each scenario pushes v1.1.0 as the first release through
tagship (stable: the revision that served before it), so a failed canary leaves the pre-tagship unit serving.

- the canary's steps (`CANARY_STEPS`): setting a step's traffic split, reading Monitoring's window figures,
  the promotion (all the API's traffic to the candidate) and the abort of a failing candidate (all back on stable),
  each crossed with the fault kinds that make sense there;
- a person's controls (`CONTROL_STEPS`): pause, resume, promote, abort and a rollback request arriving during the
  canary (all on the rollback topic), each with a fault while it is applied (the release record's compare-and-swap,
  the Slack tell, the process killed), and the same Pub/Sub message delivered again afterwards.

Besides every invariant of `tools.reliability.invariants`, each is judged by `canary_outcome`: the release ended
live exactly once (its canary promoted) or failed with all the API's traffic back on stable, no traffic split,
Slack told its end once, and each control applied exactly once.
"""
from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any, Callable

from tools.reliability.faults import (
    CRASH,
    DIES,
    KINDS,
    LEASE_EXPIRY,
    PERMANENT,
    PERMANENT_WHILE,
    TRANSIENT,
    Target,
)
from tools.reliability.invariants import Seen, World

TAG = "v1.1.0"
# short steps: each needs 1.5 s of window (ending Monitoring's 1 s lag ago) and 10 candidate requests
CANARY = {"steps": [20, 60], "min_seconds_per_step": 1.5, "min_requests_per_step": 10,
          "max_seconds_per_step": 20.0, "inconclusive": "rollback"}
# steps longer than any scenario: only a person's controls move the canary on
SLOW_CANARY = {**CANARY, "min_seconds_per_step": 60.0, "max_seconds_per_step": 120.0}
RPS = 30
RUN = "google.cloud.run.v2"
UPDATE_SERVICE = f"{RUN}.Services/UpdateService"
LIST_TIME_SERIES = "google.monitoring.v3.MetricService/ListTimeSeries"


@dataclass(frozen=True)
class CanaryStep:
    name: str
    target: Callable[[], Target]
    kinds: tuple[str, ...]
    failing: bool = False  # the candidate answers 60 % 500s: its first step fails
    why: str = ""


NO_LEASE = tuple(k for k in KINDS if k != LEASE_EXPIRY)
CANARY_STEPS = (
    # UpdateService calls from the push on: 1 the candidate's tagged revision, 2 step 1's split, 3 step 2's,
    # 4 all the API's traffic to the candidate (5 the worker); a failing candidate: 3 all back on stable
    CanaryStep("canary-step", lambda: Target.grpc(UPDATE_SERVICE, nth=2), KINDS, why="setting step 1's traffic split"),
    CanaryStep("canary-judge", lambda: Target.grpc(LIST_TIME_SERIES), NO_LEASE,
               why="reading both revisions' figures over the step's window"),
    CanaryStep("canary-promote", lambda: Target.grpc(UPDATE_SERVICE, nth=4), NO_LEASE,
               why="the last step passed: all the API's traffic to the candidate"),
    CanaryStep("canary-abort", lambda: Target.grpc(UPDATE_SERVICE, nth=3), NO_LEASE, failing=True,
               why="a failing candidate: all the API's traffic back on stable"),
)


def _record_cas(verb: str) -> Target:
    """The control's compare-and-swap of the release record (the first write naming the control after it is sent)."""
    return Target.storage(rf"^POST /upload/storage/v1/b/[^/]+/o\?.*ifGenerationMatch=[1-9].*"
                          rf"\"name\": \"releases/v1\.1\.0\.json\".*\"kind\": \"{verb}\"")


@dataclass(frozen=True)
class Control:
    name: str  # pause, resume, promote, abort, rollback
    before: tuple[str, ...]  # controls sent first, unharmed
    after: tuple[str, ...]  # controls sent afterwards to end the canary (promote or abort)
    live: bool  # the release ends live (else failed, stable serving)


CONTROLS = (
    Control("pause", (), ("abort",), False),
    Control("resume", ("pause",), ("promote",), True),
    Control("promote", (), (), True),
    Control("abort", (), (), False),
    Control("rollback", (), (), False),
)
CONTROL_TARGETS: dict[str, tuple[Callable[[str], Target], tuple[str, ...]]] = {
    "cas": (_record_cas, (TRANSIENT, PERMANENT, CRASH, DIES)),
    "tell": (lambda verb: Target.slack("chat.postMessage", ":joystick:"), (TRANSIENT, CRASH, DIES)),
}
ROLLBACK_REQUEST = {"to": "previous", "reason": "pager during the canary", "requested_by": "ivy"}


def _message(verb: str) -> dict[str, Any]:
    if verb == "rollback":
        return dict(ROLLBACK_REQUEST)
    return {"canary": verb, "tag": TAG, "reason": f"matrix {verb}", "requested_by": "dana"}


# -- what every canary scenario must end with ---------------------------------------------------------------------
def canary_outcome(r: Any, *, live: bool | None, controls: tuple[str, ...] = ()) -> Callable[[Seen], str | None]:
    """`live`: True the release must end live, False failed with stable serving, None either (a permanent fault)."""
    def judge(seen: Seen) -> str | None:
        problems = []
        state = seen.state(TAG)
        api, worker = seen.split.get("api", {}), seen.split.get("worker", {})
        if len(api) != 1 or len(worker) != 1:
            problems.append(f"traffic left split: api {api}, worker {worker}")
        wanted = {True: ("live",), False: ("failed",), None: ("live", "failed")}[live]
        if state not in wanted:
            problems.append(f"expected {TAG} {' or '.join(wanted)}, found {state}")
        expected_serving = TAG if state == "live" else None
        if seen.serving.get("api") != expected_serving or seen.serving.get("worker") != expected_serving:
            problems.append(f"expected {expected_serving or 'the stable (pre-tagship) unit'} serving, found "
                            f"api {seen.serving.get('api')}, worker {seen.serving.get('worker')}")
        release = seen.releases.get(TAG)
        canary = (release.canary if release else None) or {}
        ended = canary.get("ended")
        if state == "live" and ended != "promoted":
            problems.append(f"{TAG} live, its canary {ended or 'not ended'}")
        if state == "failed" and ended in (None, "promoted") and canary:
            problems.append(f"{TAG} failed, its canary {ended or 'not ended'}")
        problems += _live_once(r)
        problems += _told_once(r, release)
        seen_controls = [(c.get("kind"), c.get("applied")) for c in canary.get("controls", [])]
        for verb in controls:
            applied = seen_controls.count((verb, True))
            if applied != 1:
                problems.append(f"control {verb} applied {applied} times (controls: {seen_controls})")
        return "; ".join(problems) or None

    return judge


def _live_once(r: Any) -> list[str]:
    """The candidate took all the API's traffic at most once (never moved away and back)."""
    candidate = f"{r.local.config.api.service}-{TAG.replace('.', '-')}"
    sequence: list[str] = []
    for _, split, _ in r.harness.sampler.history:
        if len(split) == 1:
            revision = next(iter(split))
            if not sequence or sequence[-1] != revision:
                sequence.append(revision)
    whole = sum(1 for revision in sequence if revision.startswith(candidate))
    return [f"the candidate took all the API's traffic {whole} times: {sequence}"] if whole > 1 else []


def _told_once(r: Any, release: Any) -> list[str]:
    """Its end told once in its thread (when no Slack fault could have lost an answer and so repeated a post)."""
    if release is None or not release.slack_ts or any(f.startswith(("slack", "chat.")) for f in r.harness.fired()):
        return []
    texts = [m.get("text", "") for m in r.local.slack.messages if m.get("thread_ts") == release.slack_ts]
    problems = []
    for what, mark in (("the promotion", ":rocket: Canary promoted"), ("live", ":white_check_mark: Live in"),
                       ("the canary's failure", "Canary: ")):
        count = sum(1 for t in texts if mark in t)
        if count > 1:
            problems.append(f"{what} told {count} times in the thread")
    return problems


# -- the scenarios ----------------------------------------------------------------------------------------------
def _users(r: Any) -> Any:
    from localcloud.router import LoadGenerator

    return LoadGenerator(f"{r.local.router.base_url}/s/{r.local.config.api.service}", rps=RPS,
                         paths=["/api/items"], max_seconds=120)


def canary_step_scenario(step: CanaryStep, kind: str, scenario: Callable[..., Any]) -> Any:
    def run(r: Any) -> World:
        with _users(r):
            r.harness.arm(step.target(), kind, competitor=lambda: r.drive(TAG), label=step.name)
            behaviour = {"app": "errors", "error_ratio": 0.6} if step.failing else {}
            r.push(TAG, **behaviour)
            r.wait(lambda: r.state(TAG) in ("live", "failed"), timeout=60)
            r.settle()
        permanent = kind in (PERMANENT, PERMANENT_WHILE)
        live = False if step.failing else (None if permanent else True)
        return World(tags=r.tags, initial=r.initial, max_rollback_acts=1, lease_expiry=kind == LEASE_EXPIRY,
                     outcome=canary_outcome(r, live=live))

    return scenario(f"deploy/{step.name} x {kind}", run, f"{kind} @ {step.name}", child=kind == DIES,
                    options={"config": {"canary": CANARY}})


def _candidate_share(r: Any) -> int:
    api = r.local.config.api.service
    return int(r.local.fake_run.traffic(api).get(f"{api}-{TAG.replace('.', '-')}", 0))


def _controls_of(r: Any) -> list[str]:
    """The controls the canary applied so far."""
    controls = ((r.records().get(TAG) or {}).get("canary") or {}).get("controls", [])
    return [c.get("kind") for c in controls if c.get("applied")]


def redeliver(r: Any, message_id: str, payload: dict[str, Any]) -> None:
    """The same Pub/Sub message (its id, its data) pushed to the rollback function again, through the delivery
    layer (so duplicated again), as Pub/Sub does when an ack is lost."""
    import requests

    layer = r.harness.deliveries
    with layer._lock:
        route = next(path for path, (name, _) in layer._routes.items() if "rollback" in name)
    data = base64.b64encode(json.dumps(payload).encode()).decode()
    envelope = {"message": {"data": data, "messageId": message_id, "message_id": message_id, "attributes": {},
                            "publishTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                "subscription": f"projects/{r.local.project}/subscriptions/redelivered"}
    requests.post(layer._server.base_url + route, json=envelope, timeout=60)


def control_scenario(control: Control, where: str, kind: str, scenario: Callable[..., Any]) -> Any:
    target, _ = CONTROL_TARGETS[where]

    def send(r: Any, verb: str, applied: Callable[[], bool]) -> None:
        """Sends `verb`; if a fault lost it (told in the channel), a person sends it again."""
        for _ in range(3):
            payload = _message(verb)
            message_id = r.local.publish(r.local.config.topics.rollback, payload)
            if r.wait(applied, timeout=15):
                r.harness.events.append(f"{verb} applied")
                time.sleep(1.0)  # its tell, and its copies' answers
                redeliver(r, message_id, payload)
                r.harness.events.append(f"{verb} redelivered")
                return
            r.harness.events.append(f"{verb} not applied: sent again")

    def run(r: Any) -> World:
        r.push(TAG)
        r.wait(lambda: _candidate_share(r) == 20, timeout=40)
        verbs = (*control.before, control.name, *control.after)
        for verb in verbs:
            if verb == control.name:
                r.harness.arm(target(verb), kind, label=f"{where} {verb}")
            send(r, verb, lambda v=verb: v in _controls_of(r))
        r.wait(lambda: r.state(TAG) in ("live", "failed"), timeout=40)
        r.settle()
        return World(tags=r.tags, initial=r.initial, max_rollback_acts=1,
                     outcome=canary_outcome(r, live=control.live, controls=verbs))

    return scenario(f"canary/{control.name} x {where} {kind}", run, f"{kind} @ {where} of {control.name}",
                    child=kind == DIES, options={"config": {"canary": SLOW_CANARY}})


def canary_scenarios(scenario: Callable[..., Any]) -> list[Any]:
    """Every canary step with its fault kinds, every control with every fault where it is applied."""
    found = [canary_step_scenario(step, kind, scenario) for step in CANARY_STEPS for kind in step.kinds]
    found += [control_scenario(control, where, kind, scenario) for control in CONTROLS
              for where, (_, kinds) in CONTROL_TARGETS.items() for kind in kinds]
    return found


__all__ = ["CANARY", "CANARY_STEPS", "CONTROLS", "CONTROL_TARGETS", "SLOW_CANARY", "canary_outcome",
           "canary_scenarios"]
