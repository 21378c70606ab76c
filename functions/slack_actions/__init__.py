"""slack_actions: the Slack app's interactivity endpoint (HTTP). Verify, read the click, check who pressed, publish.

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
from shared.core.slack_actions import may_act, read_click
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
    log = log.bind(tag=click.from_tag, slack_user=click.user_id)
    if not may_act(click.user_id, services.config.slack.actors):
        log.warning("slack user may not roll back", user=click.user_name)
        return Answer(403, {"error": f"{click.user_id} may not roll back: not listed in slack.actors"})
    thread = MessageRef(channel=click.channel, ts=click.message_ts) if click.channel and click.message_ts else None
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
    try:
        first = services.store.mark_once("slack-click", f"{click.user_id}-{click.action_ts}", {"from": click.from_tag})
        if first:
            services.publisher.publish(services.config.topics.rollback, {
                "to": "previous", "from": click.from_tag, "requested_by": click.user_name, "trigger": "slack",
                "reason": f"Roll back pressed in Slack by {click.user_name}"})
    except TagshipError as error:
        log.error("slack click not passed on", error=str(error))
        return Answer(503, {"error": "could not ask for the rollback; press again"})
    if not first:
        log.info("slack click already passed on (delivered again)")
        return Answer(200, {"status": "duplicate"})
    log.warning("rollback asked in Slack", user=click.user_name)
    if thread is not None:
        services.notifier.post(wording.rollback_pressed(click.user_name, click.from_tag), thread=thread)
    return Answer(200, {"status": "rollback asked", "from": click.from_tag})


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
