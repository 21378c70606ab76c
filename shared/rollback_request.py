"""What arrives on the rollback topic, and which release a rollback returns to: pure parsing and planning.

Three kinds of message share the topic (DESIGN.md, "Rollback request"):
- a rollback request, from a person (`gcloud pubsub topics publish tagship-rollback --message '{"to": "previous",
  "reason": "..."}'` or `main.py rollback`) or from the health watchdog (the same JSON with
  `"requested_by": "health_watchdog", "trigger": "watchdog"`);
- a Cloud Monitoring incident notification (schema `"version": "1.2"`), which is a request only when its policy is
  a rollback trigger (`is_rollback_trigger`);
- Monitoring's "send test notification" (`"version": "test"`), which only proves the channel works;
- a person's control of a running canary (`{"canary": "pause" | "resume" | "promote" | "abort", ...}`,
  `shared.canary_control`).

`parse_rollback_message` turns bytes into one of those typed messages or raises `InputError` saying what was
expected and what was found (the entry point acknowledges it: redelivering a malformed message cannot help).
`plan_rollback` decides, from plain facts about the releases, where the rollback goes or why it does nothing.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.canary_control import (
    ApprovalRequest,
    CanaryControlRequest,
    parse_approval,
    parse_canary_control,
)
from shared.config import RollbackConfig
from shared.errors import InputError
from shared.text import cut

PREVIOUS = "previous"
MANUAL, WATCHDOG, ALERT, SLACK = "manual", "watchdog", "alert", "slack"
TRIGGERS = (MANUAL, WATCHDOG, ALERT, SLACK)
OPEN, CLOSED = "open", "closed"
INCIDENT_SCHEMA = "1.2"
TEST_SCHEMA = "test"
ROLLBACK_LABEL = "tagship_rollback"  # the policy user label that makes an alert policy a rollback trigger
ROLLED_BACK = "rolled_back"  # the release state (shared.release.ROLLED_BACK), kept literal to stay import-light



@dataclass(frozen=True)
class RollbackRequest:
    """Roll back `to` a tag, or to "previous" (the release that served before the live one).

    `from_tag`, when given, is the release the requester saw misbehaving: if it is no longer live by the time the
    request is handled, the request is stale and does nothing, which is how three triggers about the same bad
    release make one rollback, not three.
    """

    to: str
    from_tag: str | None
    reason: str
    requested_by: str
    trigger: str = MANUAL


@dataclass(frozen=True)
class IncidentNotice:
    """A Cloud Monitoring incident (notification schema 1.2), reduced to what a rollback decision needs.

    `user_labels` are the policy's user labels (`policy_user_labels`), where `tagship_rollback: "true"` marks a
    rollback trigger. `service_name` is None when the incident names no Cloud Run service.
    """

    incident_id: str
    policy_name: str
    state: str  # "open" | "closed"
    service_name: str | None
    summary: str
    url: str
    user_labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TestNotice:
    """Monitoring's test notification (`"version": "test"`): proof the channel works, never a rollback."""

    __test__ = False  # not a pytest test class, whatever its name says

    summary: str
    incident_id: str | None = None


@dataclass(frozen=True)
class ReleaseFacts:
    """What `plan_rollback` needs to know about one release, gathered by the caller (records, Cloud Run)."""

    tag: str
    state: str
    went_live: bool
    revisions_present: bool


@dataclass(frozen=True)
class RollbackPlan:
    """Move API, worker and frontend from `from_tag` (live now) back to `to_tag`."""

    from_tag: str
    to_tag: str
    reason: str
    requested_by: str
    trigger: str


# Why a rollback request does nothing; `kind` lets logs and tests tell refusals apart without parsing sentences.
NOTHING_LIVE = "nothing_live"
NOT_LIVE = "no_longer_live"
NO_PREVIOUS = "no_previous"
ALREADY_LIVE = "already_live"
UNKNOWN_RELEASE = "unknown_release"
NEVER_LIVE = "never_live"
ROLLED_BACK_TARGET = "rolled_back_target"
REVISIONS_GONE = "revisions_gone"


@dataclass(frozen=True)
class Refusal:
    """A request that does nothing but say so (`reason` is posted to Slack as is)."""

    reason: str
    kind: str


def parse_rollback_message(data: bytes, attributes: Mapping[str, str]
                           ) -> RollbackRequest | IncidentNotice | TestNotice | CanaryControlRequest | ApprovalRequest:
    """Reads one message of the rollback topic.

    A JSON object with a "version" is a Monitoring notification: "1.2" an incident, "test" a test notification,
    anything else refused (we cannot know what a newer schema means). Any other object is a rollback request:
    `to` is required (a tag or "previous", not empty); `from`, `reason`, `requested_by` and `trigger` are
    optional, so that a person typing the gcloud command in a hurry is not turned away, but when present they
    must be strings (`trigger` one of manual, watchdog, alert, slack). `requested_by` falls back to the message
    attribute of that name, then "unknown". Fields we do not know are ignored, for forward compatibility.
    """
    try:
        body = json.loads(data)
    except (ValueError, TypeError) as error:  # UnicodeDecodeError is a ValueError
        preview = bytes(data[:40]) if isinstance(data, (bytes, bytearray)) else data
        raise InputError(f"rollback message: expected JSON, found {preview!r} ({error})") from error
    if not isinstance(body, dict):
        raise InputError(f"rollback message: expected a JSON object, found {_describe(body)}")
    if "version" in body:
        return _parse_notification(body)
    if "canary" in body:  # a person's control of a running canary (shared.canary_control)
        return parse_canary_control(body, attributes)
    if "approval" in body:  # a person's approve or refuse of a release waiting for it
        return parse_approval(body, attributes)
    return _parse_request(body, attributes)


MAX_REASON, MAX_NAME, MAX_TAG = 500, 80, 200  # outside text is cut where it comes in, so no log line or post is long


def _parse_request(body: dict[str, Any], attributes: Mapping[str, str]) -> RollbackRequest:
    if "to" not in body:
        raise InputError('rollback request: "to" is missing; expected "previous" or a tag')
    to = body["to"]
    if not isinstance(to, str):
        raise InputError(f'rollback request "to": expected "previous" or a tag, found {_describe(to)}')
    to = to.strip()
    if not to:
        raise InputError('rollback request "to": expected "previous" or a tag, found an empty string')
    from_tag = body.get("from")
    if from_tag is not None:
        if not isinstance(from_tag, str) or not from_tag.strip():
            raise InputError(f'rollback request "from": expected a tag or null, found {_describe(from_tag)}')
        from_tag = from_tag.strip()
    reason = cut(_optional_string(body, "reason") or "no reason given", MAX_REASON)
    requested_by = cut(_optional_string(body, "requested_by") or (attributes.get("requested_by") or "").strip()
                       or "unknown", MAX_NAME)
    if len(to) > MAX_TAG or (from_tag is not None and len(from_tag) > MAX_TAG):
        raise InputError(f'rollback request: a tag is at most {MAX_TAG} characters, found {len(to)}')
    trigger = body.get("trigger", MANUAL)
    if trigger not in TRIGGERS:
        raise InputError(f'rollback request "trigger": expected one of {", ".join(TRIGGERS)}, found {_describe(trigger)}')
    return RollbackRequest(to=to, from_tag=from_tag, reason=reason, requested_by=requested_by, trigger=trigger)


def _optional_string(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f'rollback request "{key}": expected a string, found {_describe(value)}')
    return value.strip()


def _parse_notification(body: dict[str, Any]) -> IncidentNotice | TestNotice:
    version = body["version"]
    if version == TEST_SCHEMA:
        incident = body.get("incident") or {}
        if not isinstance(incident, dict):
            raise InputError(f"test notification incident: expected an object, found {_describe(incident)}")
        summary = incident.get("summary")
        incident_id = incident.get("incident_id")
        return TestNotice(
            summary=summary if isinstance(summary, str) else "",
            incident_id=str(incident_id) if isinstance(incident_id, (str, int)) and not isinstance(incident_id, bool) else None,
        )
    if version != INCIDENT_SCHEMA:
        raise InputError(
            f'Monitoring notification "version": expected "{INCIDENT_SCHEMA}" or "{TEST_SCHEMA}", found {_describe(version)}'
        )
    incident = body.get("incident")
    if not isinstance(incident, dict):
        raise InputError(f'Monitoring notification "incident": expected an object, found {_describe(incident)}')
    incident_id = _required_text(incident, "incident_id")
    policy_name = _required_text(incident, "policy_name")
    state = _required_text(incident, "state").lower()  # schema 1.2 says "open"/"closed"; be lenient on case
    if state not in (OPEN, CLOSED):
        raise InputError(f'incident "state": expected "open" or "closed", found {state!r}')
    labels = incident.get("policy_user_labels")
    if labels is None:
        labels = {}
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise InputError(f'incident "policy_user_labels": expected an object of strings, found {_describe(labels)}')
    return IncidentNotice(
        incident_id=incident_id,
        policy_name=policy_name,
        state=state,
        service_name=_service_name(incident),
        summary=_text(incident, "summary"),
        url=_text(incident, "url"),
        user_labels=dict(labels),
    )


def _required_text(incident: Mapping[str, Any], key: str) -> str:
    value = incident.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InputError(f'incident "{key}": expected a non-empty string, found {_describe(value)}')
    return value.strip()


def _text(incident: Mapping[str, Any], key: str) -> str:
    value = incident.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f'incident "{key}": expected a string, found {_describe(value)}')
    return value


def _service_name(incident: Mapping[str, Any]) -> str | None:
    """The Cloud Run service an incident is about: the resource label, else the display name, else a metric label.

    Uptime checks and log-based policies name their resource differently; a policy on another kind of resource
    simply names none, which is fine: whether to roll back is the policy's to say, not the resource's.
    """
    resource = incident.get("resource")
    resource_labels = resource.get("labels") if isinstance(resource, dict) else None
    metric = incident.get("metric")
    metric_labels = metric.get("labels") if isinstance(metric, dict) else None
    for candidate in (
        resource_labels.get("service_name") if isinstance(resource_labels, dict) else None,
        incident.get("resource_display_name"),
        metric_labels.get("service_name") if isinstance(metric_labels, dict) else None,
    ):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return None


def is_rollback_trigger(notice: IncidentNotice, config: RollbackConfig) -> bool:
    """Whether an incident asks for a rollback: it is open, and its policy carries the user label
    `tagship_rollback: "true"` or its display name is listed in `rollback.trigger_policies`.

    Closed incidents never roll back (the trouble is over; rolling back then would be a deploy of its own), and
    other policies (CPU, disk, a cost alert) share the channel without touching releases.
    """
    if notice.state != OPEN:
        return False
    if notice.user_labels.get(ROLLBACK_LABEL, "").strip().lower() == "true":
        return True
    return notice.policy_name in config.trigger_policies


def plan_rollback(
    request: RollbackRequest,
    *,
    live: str | None,
    previous: str | None,
    releases: Mapping[str, ReleaseFacts],
) -> RollbackPlan | Refusal:
    """Where a rollback request goes, or why it does nothing (checked in this order).

    - Nothing live: nothing to roll back from.
    - `from` given and not the live tag: the request is stale (that release was already rolled back, or replaced),
      so it does nothing; this is what turns many triggers about one bad release into one rollback.
    - `to` "previous" is the pointer's previous release; none recorded: refused.
    - The target is the live release: already live, nothing to do.
    - The target must be a known release that went live (only a release that served before is known to work) and
      whose revisions still exist (traffic can only move to a revision that is there).
    - A target in state rolled_back is the bad release of an earlier rollback: "previous" never walks back to it,
      but naming its tag is a deliberate move (forward again after a false alarm) and is allowed.
    """
    if live is None:
        return Refusal("nothing is live: nothing to roll back", NOTHING_LIVE)
    if request.from_tag is not None and request.from_tag != live:
        return Refusal(f"{request.from_tag} is no longer live (live: {live}): nothing to do", NOT_LIVE)
    via_previous = request.to == PREVIOUS
    if via_previous:
        if previous is None:
            return Refusal(f"no previous release recorded before {live}: nothing to roll back to", NO_PREVIOUS)
        target = previous
    else:
        target = request.to
    if target == live:
        return Refusal(f"{target} is already live: nothing to do", ALREADY_LIVE)
    facts = releases.get(target)
    if facts is None:
        return Refusal(f"{target} is not a known release: nothing to roll back to", UNKNOWN_RELEASE)
    if not facts.went_live:
        return Refusal(
            f"{target} never went live (state: {facts.state}): only a release that served before can be returned to",
            NEVER_LIVE,
        )
    if via_previous and facts.state == ROLLED_BACK:
        return Refusal(
            f"the previous release {target} was itself rolled back: 'previous' never returns to a bad release; "
            f"name {target} explicitly to bring it back on purpose",
            ROLLED_BACK_TARGET,
        )
    if not facts.revisions_present:
        return Refusal(f"{target}'s API or worker revision no longer exists: cannot move traffic back to it",
                       REVISIONS_GONE)
    return RollbackPlan(
        from_tag=live, to_tag=target, reason=request.reason, requested_by=request.requested_by,
        trigger=request.trigger,
    )


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) < 60 else text[:57] + '...'}"
