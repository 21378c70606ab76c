"""A Slack interaction request as Slack sends one to an app's request URL, built from a message the fake holds.

Slack POSTs `application/x-www-form-urlencoded` with one field, `payload`, a JSON `block_actions` object
(https://docs.slack.dev/reference/interaction-payloads/block_actions-payload), signed with the app's signing secret:
`X-Slack-Signature: v0=HEX(HMAC-SHA256(secret, "v0:" + timestamp + ":" + body))` and `X-Slack-Request-Timestamp`
(https://docs.slack.dev/authentication/verifying-requests-from-slack/). The button pressed is the message's first
button: its `action_id` and `value` go into the payload as Slack copies them.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

from localcloud.fake_slack import APP_ID, TEAM_ID


def first_button(message: dict[str, Any]) -> dict[str, Any] | None:
    return next((element for block in message.get("blocks", []) if block.get("type") == "actions"
                 for element in block.get("elements", []) if element.get("type") == "button"), None)


def signed_click(message: dict[str, Any], *, user_id: str, user_name: str, action_ts: str | None, secret: str,
                 timestamp: int | None, button: dict[str, Any] | None = None) -> tuple[bytes, dict[str, str]]:
    """`button`: one the message showed earlier (a client still showing it), instead of the one it shows now."""
    button = button or first_button(message)
    if button is None:
        raise ValueError(f"message {message.get('ts')} has no button to press")
    payload = {
        "type": "block_actions", "api_app_id": APP_ID, "team": {"id": TEAM_ID, "domain": "local"},
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": TEAM_ID},
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": message["channel"],
                      "is_ephemeral": False},
        "channel": {"id": message["channel"], "name": message.get("channel_name", "")},
        "trigger_id": "13345224609.738474920.8088930838d88f008e0", "token": "legacy-verification-token",
        "response_url": "https://hooks.slack.com/actions/T000/1/local",
        "actions": [{"action_id": button.get("action_id", ""), "block_id": "tagship_release_actions",
                     "text": button.get("text"), "value": button.get("value", ""), "style": button.get("style"),
                     "type": "button", "action_ts": action_ts or f"{time.time():.6f}"}],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = "v0=" + hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": stamp,
                  "X-Slack-Signature": signature}
