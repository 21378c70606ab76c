"""deploy_on_tag: the GitHub webhook. Verify, filter, record the release exactly once, submit the build, answer.

Answers within a second: the only remote calls on the starting path are the create-if-absent of the release
record and the build submission. The build's id is not written back here: the build's first status message
carries it, with the release's tag and commit, and deploy_progress records it then (`adopt_build`). Slack is not
on this path either: the thread opens on that same first message.
"""
from __future__ import annotations

from typing import Mapping

from shared import webhook
from shared.errors import InputError, SignatureError
from shared.gates import start_or_hold
from shared.log import Logger, logger
from shared.starting import Answer
from shared.wiring import Services

__all__ = ["Answer", "handle"]


def handle(services: Services, headers: Mapping[str, str], body: bytes, log: Logger = logger) -> Answer:
    delivery = headers.get("X-GitHub-Delivery") or ""
    event = headers.get("X-GitHub-Event")
    log = log.bind(delivery=delivery or None, event=event, trigger="github")
    secret = services.secrets.webhook_secret
    if not secret:
        log.error("GITHUB_WEBHOOK_SECRET is not set: refusing every delivery until it is")
        return Answer(503, {"error": "webhook secret not configured; delivery refused"})
    try:
        webhook.verify_signature(secret, body, headers.get("X-Hub-Signature-256"))
    except SignatureError as error:
        log.warning("delivery refused", reason=str(error))
        return Answer(401, {"error": str(error)})
    try:
        data = webhook.parse_body(body, headers.get("Content-Type"))
        decision = webhook.classify(
            event, data, repository=services.config.github.repository, tag_pattern=services.config.github.tag_pattern
        )
    except InputError as error:
        log.warning("delivery malformed", reason=str(error))
        return Answer(400, {"error": str(error)})
    if isinstance(decision, webhook.Ignore):
        log.info("delivery ignored", reason=decision.reason)
        return Answer(200, {"status": "ignored", "reason": decision.reason})
    return start_or_hold(services, decision, delivery, log.bind(tag=decision.tag))
