"""Doctor's reads of Slack through slack_sdk's WebClient: `auth.test` (no scope needed; the token's scopes come
back in the `x-oauth-scopes` header) and the channel by id (`conversations.info`) or by name
(`conversations.list`, paged by cursor), both needing `channels:read` (`groups:read` for a private channel).
Nothing is posted."""
from __future__ import annotations

from typing import Any

from shared import clients
from shared.errors import CannotRead
from shared.ports import SlackChannel, SlackIdentity

PAGE = 200
MAX_PAGES = 50


def _is_id(channel: str) -> bool:
    bare = channel.strip()
    return bare[:1] in ("C", "G") and bare.isalnum() and bare.isupper()


class SlackWebAccess:
    def __init__(self, token: str, timeout: float) -> None:
        self._client = clients.slack_web(token, timeout)

    def _call(self, what: str, method: str, **args: Any) -> Any:
        """The answer; None for channel_not_found; CannotRead for anything else Slack refuses."""
        from slack_sdk.errors import SlackApiError

        try:
            return getattr(self._client, method)(**args)
        except SlackApiError as error:
            code = str(error.response.get("error", "")) if error.response is not None else ""
            if code == "channel_not_found":
                return None
            if code == "missing_scope":
                needed = error.response.get("needed", "channels:read")
                raise CannotRead(f"{what}: the token lacks {needed}; add it under OAuth & Permissions and "
                                 "reinstall the app to let doctor see the channel") from error
            raise CannotRead(f"{what}: Slack answered {code or 'an error'}") from error
        except Exception as error:  # noqa: BLE001 - unreachable, timed out: not checked
            raise CannotRead(f"{what}: Slack did not answer ({type(error).__name__})") from error

    def identity(self) -> SlackIdentity:
        from slack_sdk.errors import SlackApiError

        try:
            answer = self._client.auth_test()
        except SlackApiError as error:
            return SlackIdentity(False, str(error.response.get("error", "")), "", frozenset())
        except Exception as error:  # noqa: BLE001
            raise CannotRead(f"auth.test: Slack did not answer ({type(error).__name__})") from error
        header = next((v for k, v in (answer.headers or {}).items() if k.lower() == "x-oauth-scopes"), "")
        scopes = header[0] if isinstance(header, list) and header else header
        return SlackIdentity(True, "", str(answer.get("user_id", "")),
                             frozenset(s.strip() for s in str(scopes).split(",") if s.strip()))

    def channel(self, channel: str) -> SlackChannel | None:
        bare = channel.strip().lstrip("#")
        if _is_id(bare):
            answer = self._call(f"conversations.info {bare}", "conversations_info", channel=bare)
            return _channel(answer["channel"]) if answer is not None else None
        cursor = ""
        for _ in range(MAX_PAGES):
            page = self._call("conversations.list", "conversations_list", types="public_channel,private_channel",
                              limit=PAGE, cursor=cursor or None)
            if page is None:
                return None
            for found in page.get("channels", []):
                if found.get("name") == bare:
                    return _channel(found)
            cursor = (page.get("response_metadata") or {}).get("next_cursor", "")
            if not cursor:
                return None
        raise CannotRead(f"conversations.list: {bare} not among the first {PAGE * MAX_PAGES} channels")


def _channel(found: dict[str, Any]) -> SlackChannel:
    return SlackChannel(str(found.get("id", "")), str(found.get("name", "")), bool(found.get("is_member")),
                        bool(found.get("is_archived")))
