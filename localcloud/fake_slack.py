"""A fake Slack on 127.0.0.1: the Web API's `chat.postMessage` / `chat.update` and one incoming webhook.

The real `slack_sdk` clients talk to it over HTTP: `WebClient(token=..., base_url=fake.base_url)` (the trailing
slash of `base_url` matters) and `WebhookClient(fake.webhook_url)`. It answers as Slack does:
- Web API: HTTP 200 with `{"ok": true, ...}` or `{"ok": false, "error": "<code>"}` (which `WebClient` raises as
  `SlackApiError`); JSON or form bodies; the token from `Authorization: Bearer xox...` or a `token` field
  (`not_authed` when absent, `invalid_auth` when not a Slack token or not in `tokens`); `missing_scope` (with
  `needed` and `provided`, as Slack answers) when `scopes=` leaves out `chat:write`; `channel_not_found`,
  `not_in_channel` (chat.postMessage to a channel outside `members=`), `no_text`, `message_not_found` (chat.update of an unknown ts, or of a ts in another channel), `thread_ts` replies,
  `unknown_method` for any other method.
- `auth.test` (no scope needed) with the bot's ids; `conversations.info` (a channel id only: a name is
  `channel_not_found`) and `conversations.list` (limit 1..1000, else `invalid_limit`; opaque cursors, an unknown
  one `invalid_cursor`), both needing `channels:read`, with `is_member` from `members=`; every Web API answer names
  the token's scopes in `x-oauth-scopes`, as Slack's do.
- `usergroups.users.list` (needs `usergroups:read`): `usergroup` required (`invalid_arguments`), an id not in
  `groups=` is `no_such_subteam`; the members' ids as `users`.
- Incoming webhook: `ok` as a text body with 200; plain-text errors with their status (400 `invalid_payload`,
  400 `missing_text_or_fallback_or_attachments`, 404 `no_service` for an unknown hook).

Channels: by default every channel name exists (made on first use, with a stable `C...` id); pass `channels=` to
allow only those, so anything else is `channel_not_found`. A `C...`-shaped id the fake did not hand out is
`channel_not_found` either way. By default the bot is in every channel; pass `members=` (names) to say which
channels it was invited to, so chat.postMessage anywhere else is `not_in_channel`, as for a bot without
`chat:write.public`.

Failure modes, from the scenario, per method key "slack/chat.postMessage", "slack/chat.update", "slack/webhook":
`scenario.inject_fault(key, code, times)` with code
- "429": HTTP 429, `Retry-After: <retry_after>` and `{"ok": false, "error": "ratelimited"}` (webhook: `rate_limited`);
- "500" (or any HTTP status as text): that status with `{"ok": false, "error": "fatal_error"}` (webhook:
  `rollup_error`);
- "down": the connection is closed without an answer (the client sees a connection error).
With `after_effect=True` the message is recorded first and only the answer fails, so a client that retries posts
twice, as with real Slack. `fake.down = True` drops every connection until set back to False.

Blocks are held to Block Kit's rules (`localcloud.block_kit`): a message breaking one is `invalid_blocks`.

What it does not do: private channels (`groups:read`), other methods, files, reactions, `chat.postEphemeral`, unfurling, markdown, per-method rate limits of its own (only injected ones), membership for
chat.update (the bot can only update what it posted), archived channels.

Everything is recorded: `messages` (each a dict: channel, channel_name, ts, thread_ts, text, blocks,
attachments, via ("api" or "webhook"), updates (each chat.update's text/blocks, in order)), `thread(ts)`,
`root_text(ts)`, and `calls` (every request: method, HTTP status, error code).
"""
from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import socket
import threading
import time
from typing import Any, Callable, Collection, Iterable

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from localcloud import block_kit
from localcloud.http_server import LoopbackServer
from localcloud.scenario import Scenario

HOST = "127.0.0.1"
WEBHOOK_PATH = "/hooks/T000/B000/xyz"
TEAM_ID = "T000"
BOT_USER_ID = "U0LOCALBOT"
BOT_ID = "B0LOCALBOT"
APP_ID = "A0LOCALAPP"
FAULT_KEYS = {"chat.postMessage": "slack/chat.postMessage", "chat.update": "slack/chat.update",
              "webhook": "slack/webhook"}
WRITE_SCOPE = "chat:write"
READ_SCOPE = "channels:read"
GROUPS_SCOPE = "usergroups:read"
# the scope each method needs (auth.test needs none): https://api.slack.com/methods/<method> (Required scopes)
SCOPE_OF = {"chat.postMessage": WRITE_SCOPE, "chat.update": WRITE_SCOPE, "auth.test": None,
            "conversations.info": READ_SCOPE, "conversations.list": READ_SCOPE,
            "usergroups.users.list": GROUPS_SCOPE}
LIST_LIMIT_MAX = 1000
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{8,}$")


class _DropConnection(ConnectionAbortedError):
    """Raised after shutting the socket: werkzeug treats a ConnectionError as a dropped client and stays quiet."""


def channel_id_for(name: str) -> str:
    """A stable Slack-shaped channel id for a channel name."""
    return "C" + hashlib.sha1(name.encode()).hexdigest()[:10].upper()


class FakeSlack:
    """Slack's Web API and one incoming webhook on 127.0.0.1 (free port, threaded, daemon thread); see the module
    docstring for what it answers and records."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        channels: Iterable[str] | None = None,
        tokens: Collection[str] | None = None,
        retry_after: int = 1,
        webhook_channel: str = "deploys",
        members: Iterable[str] | None = None,
        scopes: Collection[str] | None = None,
        groups: dict[str, Iterable[str]] | None = None,
    ) -> None:
        """`channels`: the only channel names that exist (None: any name). `tokens`: the only valid tokens
        (None: any `xoxb-` / `xoxp-` token). `retry_after`: seconds a 429 asks the client to wait. `members`: the
        channel names the bot was invited to (None: every channel). `scopes`: the scopes every valid token has
        (None: `chat:write`, `channels:read` and `usergroups:read`). `groups`: user group id (S...) -> its members."""
        self.scenario = scenario
        self.retry_after = retry_after
        self._members = {_bare(name) for name in members} if members is not None else None
        self._scopes = tuple(scopes) if scopes is not None else (WRITE_SCOPE, READ_SCOPE, GROUPS_SCOPE)
        self._groups = {group: list(users) for group, users in (groups or {}).items()}
        self._open_channels = channels is None
        self._tokens = set(tokens) if tokens is not None else None
        self._lock = threading.Lock()
        self._channels: dict[str, str] = {}  # name -> id
        for name in channels or ():
            self._channels[_bare(name)] = channel_id_for(_bare(name))
        self._webhook_channel = _bare(webhook_channel)
        self._messages: list[dict[str, Any]] = []
        self._by_ts: dict[str, dict[str, Any]] = {}
        self._calls: list[dict[str, Any]] = []
        self._last_ts = 0
        self._down = False
        self._http = LoopbackServer(self._wsgi, "localcloud-slack")

    def set_group(self, group_id: str, users: Iterable[str]) -> None:
        """Makes (or changes) a user group as a workspace admin would."""
        with self._lock:
            self._groups[group_id] = list(users)

    # -- life cycle ----------------------------------------------------------------------------------------------
    def start(self) -> "FakeSlack":
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    def __enter__(self) -> "FakeSlack":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._http.port

    @property
    def base_url(self) -> str:
        """The Web API base, with the trailing slash `WebClient` needs to keep `/api` in its URLs."""
        return f"http://{HOST}:{self.port}/api/"

    @property
    def webhook_url(self) -> str:
        return f"http://{HOST}:{self.port}{WEBHOOK_PATH}"

    @property
    def down(self) -> bool:
        """While True every request's connection is closed without an answer (a Slack outage)."""
        return self._down

    @down.setter
    def down(self, value: bool) -> None:
        self._down = bool(value)

    @property
    def members(self) -> frozenset[str] | None:
        """The channel names the bot is in (None: every channel)."""
        return frozenset(self._members) if self._members is not None else None

    @members.setter
    def members(self, names: Iterable[str] | None) -> None:
        self._members = {_bare(name) for name in names} if names is not None else None

    # -- what was posted -------------------------------------------------------------------------------------------
    @property
    def messages(self) -> list[dict[str, Any]]:
        """A copy of every message, in the order posted (replies included; see `thread_ts`)."""
        with self._lock:
            return copy.deepcopy(self._messages)

    @property
    def calls(self) -> list[dict[str, Any]]:
        """Every request answered or dropped: {"method", "status" (0 = dropped), "error"}."""
        with self._lock:
            return copy.deepcopy(self._calls)

    def message(self, ts: str) -> dict[str, Any]:
        with self._lock:
            if ts not in self._by_ts:
                raise KeyError(f"no Slack message with ts {ts}")
            return copy.deepcopy(self._by_ts[ts])

    def thread(self, ts: str) -> list[dict[str, Any]]:
        """The message `ts` followed by its replies, in the order they were posted."""
        with self._lock:
            if ts not in self._by_ts:
                raise KeyError(f"no Slack message with ts {ts}")
            root = self._by_ts[ts]
            replies = [m for m in self._messages if m["thread_ts"] == ts and m is not root]
            return copy.deepcopy([root, *replies])

    def root_text(self, ts: str) -> str:
        """The current text of message `ts` (after any chat.update)."""
        return str(self.message(ts)["text"])

    def channel_id(self, name: str) -> str:
        """The id of a channel name (creating it when any name is allowed)."""
        with self._lock:
            found = self._resolve_channel(name)
        if found is None:
            raise KeyError(f"no channel {name!r}")
        return found[1]

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
            self._by_ts.clear()
            self._calls.clear()

    # -- HTTP ------------------------------------------------------------------------------------------------------
    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        path = request.path
        if path.startswith("/api/"):
            method = path[len("/api/"):]
            response = self._api(method, request, environ)
        elif path.startswith("/hooks/"):
            method = "webhook"
            response = self._webhook(request, environ)
        else:
            method = path
            response = Response("Not Found", 404, content_type="text/plain")
        self._record_call(method, response.status_code, _error_of(response))
        return response(environ, start_response)

    def _record_call(self, method: str, status: int, error: str) -> None:
        with self._lock:
            self._calls.append({"method": method, "status": status, "error": error})

    def _drop(self, environ: dict[str, Any], method: str) -> None:
        """Closes the client's connection with no answer; raises so werkzeug sends nothing."""
        self._record_call(method, 0, "connection dropped")
        connection = environ.get("werkzeug.socket")
        if connection is not None:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        raise _DropConnection("fake Slack is down")

    def _fault(self, code: str, environ: dict[str, Any], method: str, *, webhook: bool) -> Response:
        if code == "down":
            self._drop(environ, method)
        if code == "429":
            body = "rate_limited" if webhook else {"ok": False, "error": "ratelimited"}
            return _answer(body, 429, headers={"Retry-After": str(self.retry_after)})
        status = int(code) if code.isdigit() else 500
        return _answer("rollup_error" if webhook else {"ok": False, "error": "fatal_error"}, status)

    def _api(self, method: str, request: Request, environ: dict[str, Any]) -> Response:
        if self._down:
            self._drop(environ, method)
        handler = {"chat.postMessage": self._post_message, "chat.update": self._update, "auth.test": self._auth_test,
                   "conversations.info": self._conversation_info,
                   "conversations.list": self._conversation_list,
                   "usergroups.users.list": self._group_users}.get(method)
        fault_key = FAULT_KEYS.get(method, f"slack/{method}")
        code = self.scenario.take_fault(fault_key)
        if code is not None:
            return self._fault(code, environ, method, webhook=False)
        if handler is None:
            return _answer({"ok": False, "error": "unknown_method"})
        args = _arguments(request)
        if args is None:
            return _answer({"ok": False, "error": "invalid_form_data"})
        auth_error = self._auth_error(request, args)
        if auth_error:
            return _answer({"ok": False, "error": auth_error})
        needed = SCOPE_OF[method]
        if needed is not None and needed not in self._scopes:
            return _answer({"ok": False, "error": "missing_scope", "needed": needed,
                            "provided": ",".join(self._scopes)}, headers=self._scope_header())
        answer = handler(args)
        code = self.scenario.take_fault_after_effect(fault_key)
        if code is not None:
            return self._fault(code, environ, method, webhook=False)
        return _answer(answer, headers=self._scope_header())

    def _scope_header(self) -> dict[str, str]:
        """Slack names a token's scopes on every Web API answer (X-OAuth-Scopes; node-slack-sdk reads it as
        `response_metadata.scopes`)."""
        return {"x-oauth-scopes": ",".join(self._scopes)}

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://localcloud.slack.com/", "team": "localcloud", "user": "tagship",
                "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False}

    def _group_users(self, args: dict[str, Any]) -> dict[str, Any]:
        """usergroups.users.list: `usergroup` required; an unknown id is `no_such_subteam`."""
        group = str(args.get("usergroup") or "").strip()
        if not group:
            return {"ok": False, "error": "invalid_arguments"}
        with self._lock:
            users = self._groups.get(group)
        if users is None:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(users)}

    def _conversation(self, name: str, channel_id: str) -> dict[str, Any]:
        member = self._members is None or name in self._members
        return {"id": channel_id, "name": name, "is_channel": True, "is_group": False, "is_im": False,
                "is_private": False, "is_archived": False, "is_general": name == "general", "is_member": member,
                "created": 1_700_000_000, "creator": "U0CREATOR", "name_normalized": name}

    def _conversation_info(self, args: dict[str, Any]) -> dict[str, Any]:
        value = str(args.get("channel") or "").strip()
        with self._lock:  # an id only: conversations.info takes no channel name
            found = self._resolve_channel(value) if _CHANNEL_ID.match(value) else None
        if found is None:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "channel": self._conversation(*found)}

    def _conversation_list(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            limit = int(args.get("limit") or 100)
        except ValueError:
            return {"ok": False, "error": "invalid_limit"}
        if not 1 <= limit <= LIST_LIMIT_MAX:
            return {"ok": False, "error": "invalid_limit"}
        types = {t.strip() for t in str(args.get("types") or "public_channel").split(",") if t.strip()}
        if not types <= {"public_channel", "private_channel", "mpim", "im"}:
            return {"ok": False, "error": "invalid_types"}
        with self._lock:
            channels = sorted(self._channels.items()) if "public_channel" in types else []
        cursor = str(args.get("cursor") or "")
        start = 0
        if cursor:
            try:
                start = int(base64.b64decode(cursor.encode(), validate=True).decode().removeprefix("next:"))
            except ValueError:
                return {"ok": False, "error": "invalid_cursor"}
        page = channels[start:start + limit]
        following = start + limit
        next_cursor = base64.b64encode(f"next:{following}".encode()).decode() if following < len(channels) else ""
        return {"ok": True, "channels": [self._conversation(name, cid) for name, cid in page],
                "response_metadata": {"next_cursor": next_cursor}}

    def _auth_error(self, request: Request, args: dict[str, Any]) -> str:
        header = request.headers.get("Authorization", "")
        token = header[len("Bearer "):].strip() if header.startswith("Bearer ") else str(args.get("token") or "")
        if not token:
            return "not_authed"
        if self._tokens is not None:
            return "" if token in self._tokens else "invalid_auth"
        return "" if token.startswith(("xoxb-", "xoxp-")) else "invalid_auth"

    def _resolve_channel(self, value: str) -> tuple[str, str] | None:
        """(name, id) for a channel name or id; None if it does not exist (caller holds the lock)."""
        value = value.strip()
        if _CHANNEL_ID.match(value):
            for name, known in self._channels.items():
                if known == value:
                    return name, known
            return None
        name = _bare(value)
        if not name:
            return None
        if name not in self._channels:
            if not self._open_channels:
                return None
            self._channels[name] = channel_id_for(name)
        return name, self._channels[name]

    def _next_ts(self) -> str:
        """Slack's message ts: epoch seconds with 6 decimals, unique and increasing (caller holds the lock)."""
        micros = max(int(time.time() * 1_000_000), self._last_ts + 1)
        self._last_ts = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        blocks, attachments = _json_field(args.get("blocks")), _json_field(args.get("attachments"))
        if blocks is _INVALID or attachments is _INVALID:
            return {"ok": False, "error": "invalid_blocks_format" if blocks is _INVALID else "invalid_attachments"}
        if blocks and block_kit.problem(blocks):
            return {"ok": False, "error": "invalid_blocks", "errors": [block_kit.problem(blocks)]}
        text = str(args.get("text") or "")
        with self._lock:
            channel = self._resolve_channel(str(args.get("channel") or ""))
            if channel is None:
                return {"ok": False, "error": "channel_not_found"}
            if self._members is not None and channel[0] not in self._members:
                return {"ok": False, "error": "not_in_channel"}
            if not text and not blocks and not attachments:
                return {"ok": False, "error": "no_text"}
            thread_ts = str(args.get("thread_ts") or "") or None
            ts = self._next_ts()
            record = {
                "channel": channel[1], "channel_name": channel[0], "ts": ts, "thread_ts": thread_ts, "text": text,
                "blocks": blocks or [], "attachments": attachments or [], "via": "api", "updates": [],
                "reply_broadcast": _truthy(args.get("reply_broadcast")),
            }
            self._messages.append(record)
            self._by_ts[ts] = record
        return {"ok": True, "channel": channel[1], "ts": ts, "message": _as_slack_message(record)}

    def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        blocks, attachments = _json_field(args.get("blocks")), _json_field(args.get("attachments"))
        if blocks is _INVALID or attachments is _INVALID:
            return {"ok": False, "error": "invalid_blocks_format" if blocks is _INVALID else "invalid_attachments"}
        if blocks and block_kit.problem(blocks):
            return {"ok": False, "error": "invalid_blocks", "errors": [block_kit.problem(blocks)]}
        text = args.get("text")
        ts = str(args.get("ts") or "")
        with self._lock:
            channel = self._resolve_channel(str(args.get("channel") or ""))
            if channel is None:
                return {"ok": False, "error": "channel_not_found"}
            record = self._by_ts.get(ts)
            if record is None or record["channel"] != channel[1]:
                return {"ok": False, "error": "message_not_found"}
            if record["via"] != "api":
                return {"ok": False, "error": "cant_update_message"}
            if not text and not blocks and not attachments:
                return {"ok": False, "error": "no_text"}
            if text is not None:
                record["text"] = str(text)
            if blocks is not None:
                record["blocks"] = blocks
            if attachments is not None:
                record["attachments"] = attachments
            record["updates"].append({"text": record["text"], "blocks": copy.deepcopy(record["blocks"]),
                                      "at": time.time()})
            message = _as_slack_message(record)
        return {"ok": True, "channel": channel[1], "ts": ts, "text": record["text"], "message": message}

    def _webhook(self, request: Request, environ: dict[str, Any]) -> Response:
        if self._down:
            self._drop(environ, "webhook")
        code = self.scenario.take_fault(FAULT_KEYS["webhook"])
        if code is not None:
            return self._fault(code, environ, "webhook", webhook=True)
        if request.path != WEBHOOK_PATH:
            return _answer("no_service", 404)
        if request.method != "POST":
            return _answer("invalid_payload", 400)
        payload = _webhook_payload(request)
        if payload is None:
            return _answer("invalid_payload", 400)
        blocks, attachments = _json_field(payload.get("blocks")), _json_field(payload.get("attachments"))
        if blocks is _INVALID or attachments is _INVALID:
            return _answer("invalid_blocks_format" if blocks is _INVALID else "invalid_payload", 400)
        text = str(payload.get("text") or "")
        if not text and not blocks and not attachments:
            return _answer("missing_text_or_fallback_or_attachments", 400)
        with self._lock:
            channel = self._resolve_channel(self._webhook_channel)
            channel_name, channel_id = channel if channel is not None else (self._webhook_channel, "")
            ts = self._next_ts()
            record = {
                "channel": channel_id, "channel_name": channel_name, "ts": ts, "thread_ts": None, "text": text,
                "blocks": blocks or [], "attachments": attachments or [], "via": "webhook", "updates": [],
                "reply_broadcast": False,
            }
            self._messages.append(record)
            self._by_ts[ts] = record
        code = self.scenario.take_fault_after_effect(FAULT_KEYS["webhook"])
        if code is not None:
            return self._fault(code, environ, "webhook", webhook=True)
        return _answer("ok")


_INVALID = object()  # a blocks/attachments field that is not JSON


def _bare(name: str) -> str:
    return name.strip().lstrip("#")


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def _json_field(value: Any) -> Any:
    """blocks / attachments arrive as lists (JSON body) or as JSON text (form body)."""
    if value is None or value == "":
        return None
    if isinstance(value, (list, dict)):
        return value
    try:
        return json.loads(str(value))
    except ValueError:
        return _INVALID


def _arguments(request: Request) -> dict[str, Any] | None:
    """The call's arguments from the query string and a JSON or form body, as Slack merges them."""
    args: dict[str, Any] = dict(request.args.items())
    mimetype = request.mimetype
    if mimetype == "application/json":
        try:
            body = json.loads(request.get_data(as_text=True) or "{}")
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        args.update(body)
    else:
        form: MultiDict[str, str] = request.form
        args.update(form.items())
    return args


def _webhook_payload(request: Request) -> dict[str, Any] | None:
    raw = request.form.get("payload") if request.mimetype == "application/x-www-form-urlencoded" \
        else request.get_data(as_text=True)
    try:
        payload = json.loads(raw or "")
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _as_slack_message(record: dict[str, Any]) -> dict[str, Any]:
    """The `message` object Slack returns for a bot's message."""
    message: dict[str, Any] = {
        "user": BOT_USER_ID, "type": "message", "ts": record["ts"], "bot_id": BOT_ID, "app_id": APP_ID,
        "text": record["text"], "team": TEAM_ID,
        "bot_profile": {"id": BOT_ID, "app_id": APP_ID, "name": "tagship", "deleted": False, "team_id": TEAM_ID},
    }
    if record["blocks"]:
        message["blocks"] = record["blocks"]
    if record["attachments"]:
        message["attachments"] = record["attachments"]
    if record["thread_ts"]:
        message["thread_ts"] = record["thread_ts"]
        message["parent_user_id"] = BOT_USER_ID
    if record["updates"]:
        message["edited"] = {"user": BOT_USER_ID, "ts": record["ts"]}
    return message


def _answer(body: dict[str, Any] | str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if isinstance(body, dict):
        return Response(json.dumps(body), status, headers=headers, content_type="application/json; charset=utf-8")
    return Response(body, status, headers=headers, content_type="text/html")


def _error_of(response: Response) -> str:
    if response.mimetype == "application/json":
        try:
            data = json.loads(response.get_data(as_text=True))
        except ValueError:
            return ""
        return "" if data.get("ok") else str(data.get("error", ""))
    text = response.get_data(as_text=True)
    return "" if response.status_code == 200 else text
