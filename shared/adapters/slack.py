"""Slack: post, update in place, reply in a thread. Never raises: Slack being down must not stop a deploy.

Three notifiers behind one Protocol, chosen by `notifier_for(...)`, the only place that knows them:
the Web API (bot token; threads and updates), an incoming webhook (no threads or updates: each message stands
alone), and the null notifier when neither secret is set.

Never blocks: every call is bounded by the configured `slack.timeout_seconds`. Slack answers a burst with HTTP 429
and `Retry-After` (about one message a second per channel, https://api.slack.com/apis/rate-limits);
`budgeted_rate_limit_handler` waits that long only when the wait fits in what is left of the call's timeout, and
otherwise the call gives up and the notifier logs a warning. Every text is cut to `TEXT_LIMIT` characters.
"""
from __future__ import annotations

import threading
from typing import Any, Mapping

from shared.adapters.slack_rate_limits import (
    DEFAULT_RETRY_AFTER,
    RATE_LIMIT_RETRIES,
    budgeted_rate_limit_handler,
    call_budget,
    retry_after_seconds,
)
from shared.log import logger
from shared.ports import MessageRef, Notifier
from shared.text import cut, log_value

__all__ = [
    "DEFAULT_RETRY_AFTER", "RATE_LIMIT_RETRIES", "TEXT_LIMIT", "WEBHOOK_REF", "MessageRef", "Notifier", "NullNotifier",
    "SlackWebNotifier", "SlackWebhookNotifier", "advice", "budgeted_rate_limit_handler", "call_budget",
    "channel_label", "notifier_for", "retry_after_seconds",
]

# Slack truncates `text` past 40 000 characters and recommends at most 4 000
# (https://api.slack.com/methods/chat.postMessage#truncating); the margin leaves room for nothing to be split.
TEXT_LIMIT = 3900
# The ref a webhook post returns: a webhook answers no `ts`, and callers keep the ref as their "thread".
WEBHOOK_REF_VALUE = "webhook"
WEBHOOK_REF = MessageRef(channel=WEBHOOK_REF_VALUE, ts=WEBHOOK_REF_VALUE)


def channel_label(channel: str) -> str:
    """How a person names the channel in Slack: `#name` for a name, the id itself for a `C...`/`G...`/`D...` id."""
    bare = channel.strip().lstrip("#")
    if bare[:1] in ("C", "G", "D") and bare.isalnum() and bare.isupper():
        return bare
    return f"#{bare}"


def advice(error_code: str, channel: str, answer: Mapping[str, Any] | None = None) -> str | None:
    """What an operator must do about a Slack error code that retrying cannot fix, naming the channel; None for an
    error that may pass by itself. Never contains the token."""
    label = channel_label(channel)
    needed = str((answer or {}).get("needed") or "chat:write")
    return {
        "not_in_channel": f"the Slack bot is not a member of {label}: invite the bot: /invite @bot in {label}",
        "channel_not_found": f"Slack has no channel {label} the bot can see: check slack.channel in the config; "
                             f"for a private channel, invite the bot: /invite @bot in {label}",
        "invalid_auth": "Slack refused the bot token: check SLACK_BOT_TOKEN is the app's current Bot User OAuth "
                        f"Token (xoxb-...) for the workspace of {label}",
        "not_authed": f"no Slack bot token reached Slack: check SLACK_BOT_TOKEN (posting to {label})",
        "missing_scope": f"the Slack bot token lacks the scope {needed}: check the token's chat:write scope under "
                         f"OAuth & Permissions, reinstall the app, and post to {label} again",
    }.get(error_code)


def _error_code(error: Exception) -> str:
    """Slack's error code of a `SlackApiError` ("" for anything else)."""
    response = getattr(error, "response", None)
    try:
        return str(response.get("error") or "") if response is not None else ""
    except Exception:  # noqa: BLE001 - a response without a JSON body
        return ""


def _status_of(error: Exception) -> int | None:
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _answer_of(error: Exception) -> Mapping[str, Any]:
    data = getattr(getattr(error, "response", None), "data", None)
    return data if isinstance(data, Mapping) else {}


# -- notifiers --------------------------------------------------------------------------------------------------------
class NullNotifier:
    def post(self, text: str, *, thread: MessageRef | None = None,
             blocks: list[dict[str, Any]] | None = None) -> MessageRef | None:
        return None

    def update(self, ref: MessageRef, text: str, blocks: list[dict[str, Any]] | None = None) -> bool:
        return False

    def group_members(self, group_id: str) -> tuple[str, ...] | None:
        return None  # an incoming webhook reads nothing


class SlackWebNotifier:
    """The Web API with a bot token. `post` returns the message's ref (None on any failure), `update` whether the
    message changed. Never raises; each call is bounded by `timeout` (see the module docstring). An error only an
    operator can fix (`advice`) is logged once per notifier and kind as an error that names the channel and what to
    do; every other failure is a warning."""

    def __init__(self, token: str, channel: str, timeout: float) -> None:
        self._token = token
        self._channel = channel
        self._timeout = timeout
        self._advised: set[str] = set()
        self._lock = threading.Lock()

    def _client(self):  # noqa: ANN202
        from shared import clients

        return clients.slack_web(self._token, self._timeout)

    def post(self, text: str, *, thread: MessageRef | None = None,
             blocks: list[dict[str, Any]] | None = None) -> MessageRef | None:
        """`text` is also what notifications and clients without blocks show, when `blocks` are given."""
        channel = thread.channel if thread else self._channel
        try:
            with call_budget(self._timeout):
                response = self._client().chat_postMessage(
                    channel=channel,
                    text=cut(text, TEXT_LIMIT),
                    thread_ts=thread.ts if thread else None,
                    unfurl_links=False,
                    blocks=blocks,
                )
            return MessageRef(channel=str(response["channel"]), ts=str(response["ts"]))
        except Exception as error:  # noqa: BLE001 - logged, never raised
            self._failed("slack post failed", channel, error)
            return None

    def update(self, ref: MessageRef, text: str, blocks: list[dict[str, Any]] | None = None) -> bool:
        try:
            with call_budget(self._timeout):
                self._client().chat_update(channel=ref.channel, ts=ref.ts, text=cut(text, TEXT_LIMIT),
                                           blocks=blocks if blocks is not None else [])
            return True
        except Exception as error:  # noqa: BLE001
            self._failed("slack update failed", ref.channel, error)
            return False

    def group_members(self, group_id: str) -> tuple[str, ...] | None:
        """usergroups.users.list (scope usergroups:read); None, logged, when Slack does not answer with them."""
        try:
            with call_budget(self._timeout):
                response = self._client().usergroups_users_list(usergroup=group_id)
            users = response.get("users")
            return tuple(str(user) for user in users) if isinstance(users, list) else None
        except Exception as error:  # noqa: BLE001 - logged, never raised: who may press is then refused
            self._failed("slack user group not read", self._channel, error)
            return None

    def _failed(self, message: str, channel: str, error: Exception) -> None:
        code = _error_code(error)
        todo = advice(code, channel, _answer_of(error))
        if todo is not None and self._first(code):
            logger.error(f"slack refused the bot: {todo}", error=code, channel=channel_label(channel))
            return
        logger.warning(message, error=type(error).__name__, code=code or None, status=_status_of(error),
                       channel=channel_label(channel), detail=log_value(str(error), 200))

    def _first(self, code: str) -> bool:
        """True the first time this notifier sees `code`."""
        with self._lock:
            if code in self._advised:
                return False
            self._advised.add(code)
            return True


class SlackWebhookNotifier:
    """An incoming webhook: it posts to the one channel it was made for and cannot thread or edit. Every `post`
    posts its text as a message of its own, also when a `thread` is given, and returns `WEBHOOK_REF` so callers
    that reply in "their thread" keep posting (None on any failure). `update` posts nothing and returns False: the
    state a root message would show is also told by the replies. Never raises; bounded by `timeout`."""

    def __init__(self, url: str, timeout: float) -> None:
        self._url = url
        self._timeout = timeout

    def post(self, text: str, *, thread: MessageRef | None = None,
             blocks: list[dict[str, Any]] | None = None) -> MessageRef | None:
        from shared import clients

        try:
            with call_budget(self._timeout):
                response = clients.slack_webhook(self._url, self._timeout).send(text=cut(text, TEXT_LIMIT))
        except Exception as error:  # noqa: BLE001
            logger.warning("slack webhook failed", error=type(error).__name__)
            return None
        if response.status_code != 200:
            logger.warning("slack webhook refused", status=response.status_code,
                           body=log_value(str(response.body), 200))
            return None
        return WEBHOOK_REF

    def update(self, ref: MessageRef, text: str, blocks: list[dict[str, Any]] | None = None) -> bool:
        return False

    def group_members(self, group_id: str) -> tuple[str, ...] | None:
        return None  # an incoming webhook reads nothing


def notifier_for(token: str | None, webhook_url: str | None, channel: str, timeout: float) -> Notifier:
    if token:
        return SlackWebNotifier(token, channel, timeout)
    if webhook_url:
        return SlackWebhookNotifier(webhook_url, timeout)
    return NullNotifier()
