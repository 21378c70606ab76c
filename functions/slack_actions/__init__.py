"""slack_actions: the Slack app's interactivity endpoint (HTTP). Verify, read the click, check who pressed, publish.

The buttons: Roll back (a live release), Approve and Refuse (a release waiting for approval: `gates.approvers`),
Pause or Resume, Promote now and Abort (a running canary: `slack.actors`, as Roll back). Each publishes on the
rollback topic the message the command line publishes for it.

Slack signs every interaction with the app's signing secret (`X-Slack-Signature`, `v0=` HMAC-SHA256 of
`v0:TIMESTAMP:BODY`, and `X-Slack-Request-Timestamp`); slack_sdk's `SignatureVerifier` checks both and refuses a
timestamp more than five minutes from now, so a captured request cannot be replayed later. Without the signing secret
every request is refused. A click asks for the rollback the command line asks for (`from` the release whose thread
it is), so Pub/Sub, two clicks and the watchdog roll back once; a click Slack delivers twice (same user, same
`action_ts`) publishes once. The answer is immediate: the rollback runs in its own function.
"""
from __future__ import annotations

from typing import Mapping

from shared.core import wording
from shared.core.approval import may_approve
from shared.core.slack_actions import (
    APPROVAL_VERBS,
    CANARY_VERBS,
    Click,
    may_act,
    read_click,
)
from shared.errors import InputError, TagshipError
from shared.log import Logger, logger
from shared.ports import MessageRef
from shared.starting import Answer
from shared.wiring import Services

__all__ = ["Answer", "handle"]


def handle(services: Services, headers: Mapping[str, str], body: bytes, log: Logger = logger) -> Answer:
    log = log.bind(trigger="slack")
    secret = services.secrets.slack_signing_secret
    if not secret:
        log.error("SLACK_SIGNING_SECRET is not set: refusing every Slack interaction until it is")
        return Answer(503, {"error": "Slack signing secret not configured; request refused"})
    if not _signed(secret, services.clock(), headers, body):
        log.warning("slack interaction refused", reason="signature or timestamp invalid")
        return Answer(401, {"error": "invalid Slack signature or a timestamp more than 5 minutes away"})
    try:
        click = read_click(body)
    except InputError as error:
        log.warning("slack interaction malformed", reason=str(error))
        return Answer(400, {"error": str(error)})
    log = log.bind(tag=click.from_tag, slack_user=click.user_id, action=click.verb)
    thread = MessageRef(channel=click.channel, ts=click.message_ts) if click.channel and click.message_ts else None
    if click.verb in APPROVAL_VERBS:
        return _approval(services, click, thread, log)
    if not may_act(click.user_id, services.config.slack.actors):
        log.warning("slack user may not act", user=click.user_name)
        return Answer(403, {"error": f"{click.user_id} may not {click.verb}: not listed in slack.actors"})
    if click.verb in CANARY_VERBS:
        return _publish_once(services, click, thread, log, {
            "canary": click.verb, "tag": click.from_tag, "requested_by": click.user_name,
            "reason": f"{click.verb.capitalize()} pressed in Slack by {click.user_name}"},
            wording.control_pressed(click.user_name, click.verb, click.from_tag))
    try:
        live = services.store.pointer().live
    except TagshipError as error:  # a corrupt pointer included: what serves is not known, so nothing is asked
        log.error("slack click: what serves could not be read", error=str(error))
        return Answer(503, {"error": "could not read what serves; press again later"})
    if live != click.from_tag:  # an older thread's button: the rollback it would ask for is no longer the one to ask
        log.info("slack click on a release no longer live", live=live)
        if thread is not None:
            services.notifier.post(wording.rollback_button_stale(click.from_tag, live), thread=thread)
        return Answer(200, {"status": "not live", "from": click.from_tag, "live": live})
    return _publish_once(services, click, thread, log, {
        "to": "previous", "from": click.from_tag, "requested_by": click.user_name, "trigger": "slack",
        "reason": f"Roll back pressed in Slack by {click.user_name}"},
        wording.rollback_pressed(click.user_name, click.from_tag))


def _approval(services: Services, click: Click, thread: MessageRef | None, log: Logger) -> Answer:
    """Approve or Refuse: allowed to `gates.approvers`, a user named or in a user group named (read from Slack
    each time, so a person taken out of the group can no longer press; a group that cannot be read allows no one)."""
    approvers = services.config.gates.approvers
    groups = tuple(group for group in approvers if group.startswith("S") and click.user_id not in approvers
                   and click.user_id in (services.notifier.group_members(group) or ()))
    if not may_approve(click.user_id, groups, approvers):
        log.warning("slack user may not approve", user=click.user_name)
        return Answer(403, {"error": f"{click.user_id} may not {click.verb}: not named in gates.approvers, nor in "
                                     "a user group it names"})
    return _publish_once(services, click, thread, log, {
        "approval": click.verb, "tag": click.from_tag, "requested_by": click.user_name,
        "reason": f"{click.verb.capitalize()} pressed in Slack by {click.user_name}"},
        wording.approval_pressed(click.user_name, click.verb, click.from_tag))


def _publish_once(services: Services, click: Click, thread: MessageRef | None, log: Logger,
                  message: dict[str, str], told: str) -> Answer:
    """The click's request on the rollback topic, once per click (Slack may deliver one click twice)."""
    try:
        first = services.store.mark_once("slack-click", f"{click.user_id}-{click.action_ts}", {"from": click.from_tag})
        if first:
            services.publisher.publish(services.config.topics.rollback, message)
    except TagshipError as error:
        log.error("slack click not passed on", error=str(error))
        return Answer(503, {"error": f"could not ask for the {click.verb}; press again"})
    if not first:
        log.info("slack click already passed on (delivered again)")
        return Answer(200, {"status": "duplicate"})
    log.warning(f"{click.verb} asked in Slack", user=click.user_name)
    if thread is not None:
        services.notifier.post(told, thread=thread)
    return Answer(200, {"status": f"{click.verb} asked", "from": click.from_tag})


def _signed(secret: str, now: float, headers: Mapping[str, str], body: bytes) -> bool:
    from slack_sdk.signature import Clock, SignatureVerifier

    class _Now(Clock):
        def now(self) -> float:
            return now

    lowered = {k.lower(): v for k, v in headers.items()}
    timestamp = lowered.get("x-slack-request-timestamp")
    if timestamp is None or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    return SignatureVerifier(secret, clock=_Now()).is_valid(body, timestamp, lowered.get("x-slack-signature"))
