"""tagship's Cloud Functions targets and its command line.

Targets (functions-framework): `deploy_on_tag` (HTTP, the GitHub webhook), `slack_actions` (HTTP, the Slack app's
buttons), `deploy_progress`, `health_watchdog` and `rollback` (CloudEvents from Pub/Sub). Each target parses, calls its service, and maps errors: a 4xx with a
reason for bad input; for events, acknowledge permanent faults (logged) and raise on transient ones so Pub/Sub
redelivers. No Google client library is imported here: each target loads what it uses when it first needs it.

`python main.py --help` is the command line for people.
"""
from __future__ import annotations

import base64
import binascii
import json
import sys
import threading
from typing import Any, Callable

from shared import deadline
from shared.errors import ConfigError, InputError, TagshipError
from shared.log import logger, trace_from_header

def _target(kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Registers a target with functions-framework when it is the one loading this file.

    The framework is always imported before it loads main.py, so the command line and the tests that import
    main for its helpers pay for neither Flask nor the framework.
    """
    framework = sys.modules.get("functions_framework")
    if framework is None:
        return lambda function: function
    return framework.http if kind == "http" else framework.cloud_event


_lock = threading.Lock()
_services: Any = None


def services() -> Any:
    """The composition root, built once per process from the config file and the environment."""
    global _services
    with _lock:
        if _services is None:
            from shared import config
            from shared.wiring import Services

            _services = Services(config=config.load(), secrets=config.Secrets.from_env())
        return _services


def use_services(value: Any) -> None:
    """Replaces the composition root (the local cloud and tests call this)."""
    global _services
    with _lock:
        _services = value


@_target("http")
def deploy_on_tag(request: Any) -> Any:
    from shared.webhook import MAX_BODY_BYTES

    if request.method != "POST":
        return _json(405, {"error": f"expected POST, found {request.method}"})
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        logger.warning("delivery refused: body too large", length=request.content_length)
        return _too_large()
    body = request.stream.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        logger.warning("delivery refused: body too large", length=f"more than {MAX_BODY_BYTES}")
        return _too_large()
    try:
        svc = services()
    except ConfigError as error:
        logger.error("config invalid", error=str(error))
        return _json(500, {"error": "tagship is misconfigured; see its logs"})
    from functions.deploy_on_tag import handle

    trace = trace_from_header(request.headers.get("X-Cloud-Trace-Context"), svc.config.project.id)
    answer = handle(svc, request.headers, body, logger.bind(trace=trace, function="deploy_on_tag"))
    return _json(answer.status, answer.body)


@_target("http")
def slack_actions(request: Any) -> Any:
    from shared.core.slack_actions import BODY_MAX

    if request.method != "POST":
        return _json(405, {"error": f"expected POST, found {request.method}"})
    body = request.stream.read(BODY_MAX + 1)
    if len(body) > BODY_MAX:
        logger.warning("slack interaction refused: body too large", length=f"more than {BODY_MAX}")
        return _json(413, {"error": f"body larger than {BODY_MAX} bytes"})
    try:
        svc = services()
    except ConfigError as error:
        logger.error("config invalid", error=str(error))
        return _json(500, {"error": "tagship is misconfigured; see its logs"})
    from functions.slack_actions import handle

    answer = handle(svc, request.headers, body, logger.bind(function="slack_actions"))
    return _json(answer.status, answer.body)


def _too_large() -> Any:
    """413, streamed: functions-framework reads whatever is left of a request before it answers, unless the answer
    is streamed, and an oversized body must not be read whole (nor held in memory) just to be refused."""
    from flask import Response
    from shared.webhook import MAX_BODY_BYTES

    body = json.dumps({"error": f"body larger than {MAX_BODY_BYTES} bytes"})
    return Response(iter([body]), status=413, content_type="application/json", headers={"Connection": "close"})


def _json(status: int, body: dict[str, Any]) -> Any:
    return (json.dumps(body), status, {"Content-Type": "application/json"})


def published_at(event_data: Any) -> float | None:
    """When the message was published (`publishTime`, RFC 3339), or None when absent or unreadable."""
    from datetime import datetime

    message = event_data.get("message") if isinstance(event_data, dict) else None
    text = (message or {}).get("publishTime") or (message or {}).get("publish_time") if isinstance(message, dict) else None
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def pubsub_message(event_data: Any) -> tuple[bytes, dict[str, str], str]:
    """(data, attributes, message id) of a Pub/Sub CloudEvent; InputError when it is not one."""
    if not isinstance(event_data, dict) or not isinstance(event_data.get("message"), dict):
        raise InputError("expected a Pub/Sub envelope with a message object")
    message = event_data["message"]
    raw = message.get("data") or ""
    if not isinstance(raw, str):
        raise InputError(f"message.data: expected base64 text, found {type(raw).__name__}")
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as error:
        raise InputError(f"message.data is not valid base64: {error}") from error
    attributes = message.get("attributes") or {}
    if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
        raise InputError("message.attributes: expected an object of strings")
    message_id = message.get("messageId") or message.get("message_id") or ""
    return data, {str(k): v for k, v in attributes.items()}, str(message_id)


def _on_event(name: str, cloud_event: Any, handle: Callable[..., str]) -> None:
    log = logger.bind(function=name)
    try:
        data, attributes, message_id = pubsub_message(cloud_event.data)
    except InputError as error:
        log.warning("malformed event acknowledged", reason=str(error))
        return
    log = log.bind(message_id=message_id or None)
    try:
        svc = services()
    except ConfigError as error:  # one line naming the key; raised, so the message is kept until the config is fixed
        log.error("config invalid", error=str(error))
        raise
    try:
        with deadline.within(deadline.usable(deadline.function_timeout())):
            outcome = handle(svc, data, attributes, message_id, log, published_at=published_at(cloud_event.data))
        log.info("event handled", outcome=outcome)
    except InputError as error:
        log.warning("message refused and acknowledged", reason=str(error))
    except TagshipError as error:
        if error.transient:
            log.warning("transient fault; asking for redelivery", error=str(error))
            raise
        log.error("permanent fault; acknowledged", error=str(error))


@_target("cloudevent")
def deploy_progress(cloud_event: Any) -> None:
    from functions.deploy_progress import handle

    _on_event("deploy_progress", cloud_event, handle)


@_target("cloudevent")
def health_watchdog(cloud_event: Any) -> None:
    from functions.health_watchdog import handle

    _on_event("health_watchdog", cloud_event, handle)


@_target("cloudevent")
def rollback(cloud_event: Any) -> None:
    from functions.rollback import handle

    _on_event("rollback", cloud_event, handle)


def _refuse_requests_that_are_not_events() -> None:
    """A body the framework cannot turn into an event before calling us (not JSON, JSON that is not an object, not
    a CloudEvent nor a Pub/Sub push) makes functions-framework answer 500, which asks Pub/Sub to redeliver bad input
    forever. It is bad input: 400 with the reason. An error raised by our own code (a frame of this file in its
    traceback) stays a 500, logged by the framework, so its message is redelivered."""
    framework = sys.modules.get("functions_framework")
    register = getattr(framework, "errorhandler", None)
    if register is None:  # the command line, or a test importing main for its helpers
        return

    @register(Exception)
    def refuse(error: Exception) -> Any:
        import traceback

        from werkzeug.exceptions import HTTPException

        if isinstance(error, HTTPException):  # the framework's own 400 and 415: already an answer with a reason
            return error
        if any(frame.filename == __file__ for frame in traceback.extract_tb(error.__traceback__)):
            raise error
        reason = f"{type(error).__name__}: {error}"[:200]
        logger.warning("request refused: not an event", reason=reason)
        return _json(400, {"error": f"expected a CloudEvent or a Pub/Sub push message, found a body that is neither ({reason})"})


_refuse_requests_that_are_not_events()


if __name__ == "__main__":
    from cli import main as cli_main

    sys.exit(cli_main(sys.argv[1:]))
