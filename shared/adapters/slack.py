"""Slack: post, update in place, reply in a thread. Never raises: Slack being down must not stop a deploy.

Three notifiers behind one Protocol, chosen by `notifier_for(...)`, the only place that knows them:
the Web API (bot token; threads and updates), an incoming webhook (no threads or updates: each message stands
alone), and the null notifier when neither secret is set.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from shared.log import logger


@dataclass(frozen=True)
class MessageRef:
    channel: str
    ts: str


class Notifier(Protocol):
    def post(self, text: str, *, thread: MessageRef | None = None) -> MessageRef | None: ...
    def update(self, ref: MessageRef, text: str) -> bool: ...


class NullNotifier:
    def post(self, text: str, *, thread: MessageRef | None = None) -> MessageRef | None:
        return None

    def update(self, ref: MessageRef, text: str) -> bool:
        return False


class SlackWebNotifier:
    def __init__(self, token: str, channel: str, timeout: float) -> None:
        self._token = token
        self._channel = channel
        self._timeout = timeout

    def _client(self):  # noqa: ANN202
        from shared import clients

        return clients.slack_web(self._token, self._timeout)

    def post(self, text: str, *, thread: MessageRef | None = None) -> MessageRef | None:
        try:
            response = self._client().chat_postMessage(
                channel=thread.channel if thread else self._channel,
                text=text,
                thread_ts=thread.ts if thread else None,
                unfurl_links=False,
            )
            return MessageRef(channel=str(response["channel"]), ts=str(response["ts"]))
        except Exception as error:  # noqa: BLE001 - logged, never raised
            logger.warning("slack post failed", error=type(error).__name__, detail=str(error)[:200])
            return None

    def update(self, ref: MessageRef, text: str) -> bool:
        try:
            self._client().chat_update(channel=ref.channel, ts=ref.ts, text=text)
            return True
        except Exception as error:  # noqa: BLE001
            logger.warning("slack update failed", error=type(error).__name__, detail=str(error)[:200])
            return False


class SlackWebhookNotifier:
    def __init__(self, url: str, timeout: float) -> None:
        self._url = url
        self._timeout = timeout

    def post(self, text: str, *, thread: MessageRef | None = None) -> MessageRef | None:
        from shared import clients

        try:
            response = clients.slack_webhook(self._url, self._timeout).send(text=text)
        except Exception as error:  # noqa: BLE001
            logger.warning("slack webhook failed", error=type(error).__name__)
            return None
        if response.status_code != 200:
            logger.warning("slack webhook refused", status=response.status_code, body=str(response.body)[:200])
        return None

    def update(self, ref: MessageRef, text: str) -> bool:
        return False


def notifier_for(token: str | None, webhook_url: str | None, channel: str, timeout: float) -> Notifier:
    if token:
        return SlackWebNotifier(token, channel, timeout)
    if webhook_url:
        return SlackWebhookNotifier(webhook_url, timeout)
    return NullNotifier()
