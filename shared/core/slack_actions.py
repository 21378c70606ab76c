"""The release thread's buttons and what a click on one asks for (pure).

A live release's root message carries a **Roll back** button (Block Kit, with a confirmation dialog). Slack sends a
click to the `slack_actions` function as a `block_actions` interaction: a form body whose `payload` field is JSON
(https://docs.slack.dev/reference/interaction-payloads/block_actions-payload). `read_click` turns that body into a
`Click` or says why it is refused; `may_act` decides who may press. A click asks for the same rollback request the
command line publishes, carrying `from`, so two clicks (or a click and the watchdog) roll back once.

Block Kit limits honoured here (https://docs.slack.dev/reference/block-kit/block-elements/button-element,
https://docs.slack.dev/reference/block-kit/blocks/section-block): a section's text at most 3000 characters, a
button's text at most 75, its `action_id` and a `block_id` at most 255, its `value` at most 2000.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from shared.errors import InputError
from shared.text import cut

ROLLBACK_ACTION = "tagship_rollback"
# every button the root may carry: its action_id -> what it asks (rollback, approve/refuse, a canary control)
ACTIONS = {ROLLBACK_ACTION: "rollback", "tagship_approve": "approve", "tagship_refuse": "refuse",
           "tagship_canary_pause": "pause", "tagship_canary_resume": "resume",
           "tagship_canary_promote": "promote", "tagship_canary_abort": "abort"}
APPROVAL_VERBS = ("approve", "refuse")
CANARY_VERBS = ("pause", "resume", "promote", "abort")
SECTION_TEXT_MAX = 3000
VALUE_MAX = 2000
TAG_MAX = 200  # as a pushed tag: shared.webhook.TAG_MAX
USER_ID = re.compile(r"\A[UW][A-Z0-9]{2,20}\Z")  # Slack user ids: U... (or W... in Enterprise Grid)
BODY_MAX = 64 * 1024  # a block_actions payload of one button is a few KB; the message it quotes is bounded by Slack


@dataclass(frozen=True)
class Click:
    """A person pressed a button (`verb`: rollback, approve, refuse or a canary control) on the thread of
    `from_tag`."""

    user_id: str
    user_name: str
    from_tag: str
    action_ts: str  # when Slack saw the click: with the user, what tells a replay from a second click
    channel: str
    message_ts: str
    verb: str = "rollback"


def buttons_for(*, live: bool, approval_open: bool, canary_running: bool, canary_paused: bool,
                actors: bool, approvers: bool) -> tuple[str, ...]:
    """The buttons the root carries now, as the verbs they ask for: Roll back while the release serves; Approve and
    Refuse while its approval is open; Pause or Resume, Promote and Abort while its canary runs. A button only for
    whom it is allowed to anyone (`slack.actors`, `gates.approvers`)."""
    verbs: tuple[str, ...] = ()
    if live and actors:
        verbs += ("rollback",)
    if approval_open and approvers:
        verbs += APPROVAL_VERBS
    if canary_running and actors and not approval_open:
        verbs += ("resume" if canary_paused else "pause", "promote", "abort")
    return verbs


_LOOK = {"rollback": ("Roll back", "danger"), "approve": ("Approve", "primary"), "refuse": ("Refuse", "danger"),
         "pause": ("Pause", None), "resume": ("Resume", "primary"), "promote": ("Promote now", None),
         "abort": ("Abort", "danger")}
_CONFIRM = {"rollback": ("Roll back this release?", "The API, the worker and the frontend go back to the release "
                                                    "before {tag}."),
            "refuse": ("Refuse this release?", "{tag} ends failed; the API's traffic stays on the release before it."),
            "promote": ("Promote now?", "{tag}'s candidate takes all the API's traffic without the remaining steps."),
            "abort": ("Abort the canary?", "All the API's traffic goes back to the release before {tag}; it ends "
                                           "failed.")}


def root_blocks(text: str, tag: str, verbs: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The root message as blocks: its text (already mrkdwn-safe, see `wording.root`) and a button per verb
    (`buttons_for`), those that cannot be taken back asking to confirm."""
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": cut(text, SECTION_TEXT_MAX)}}]
    action_ids = {verb: action for action, verb in ACTIONS.items()}
    elements = []
    for verb in verbs:
        label, style = _LOOK[verb]
        button: dict[str, Any] = {"type": "button", "action_id": action_ids[verb],
                                  "text": {"type": "plain_text", "text": label},
                                  "value": json.dumps({"from": tag[:TAG_MAX]})}
        if style:
            button["style"] = style
        if verb in _CONFIRM:
            title, body = _CONFIRM[verb]
            button["confirm"] = {"title": {"type": "plain_text", "text": title},
                                 "text": {"type": "plain_text", "text": cut(body.format(tag=tag), 300)},
                                 "confirm": {"type": "plain_text", "text": label},
                                 "deny": {"type": "plain_text", "text": "Cancel"}}
        elements.append(button)
    if elements:
        blocks.append({"type": "actions", "block_id": "tagship_release_actions", "elements": elements})
    return blocks


def read_click(body: bytes) -> Click:
    """The click in a `block_actions` interaction body; InputError naming what is wrong otherwise."""
    if len(body) > BODY_MAX:
        raise InputError(f"interaction body of {len(body)} bytes: expected at most {BODY_MAX}")
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError) as error:
        raise InputError(f"interaction body: expected a form with a payload field ({str(error)[:80]})") from error
    raw = form.get("payload", [])
    if len(raw) != 1:
        raise InputError("interaction body: expected one payload field")
    try:
        payload = json.loads(raw[0])
    except ValueError as error:
        raise InputError("interaction payload: expected JSON") from error
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        found = payload.get("type") if isinstance(payload, dict) else type(payload).__name__
        raise InputError(f"interaction payload: expected type block_actions, found {str(found)[:40]!r}")
    actions = payload.get("actions")
    if not isinstance(actions, list) or len(actions) != 1 or not isinstance(actions[0], dict):
        raise InputError("interaction payload: expected exactly one action")
    action = actions[0]
    if action.get("action_id") not in ACTIONS:
        raise InputError(f"interaction payload: unknown action {str(action.get('action_id'))[:60]!r}")
    value = _object(action.get("value"), "the button's value")
    from_tag = value.get("from")
    if not isinstance(from_tag, str) or not from_tag or len(from_tag) > TAG_MAX:
        raise InputError(f"the button's value: expected a tag of 1 to {TAG_MAX} characters in 'from'")
    user = payload.get("user")
    user_id = user.get("id") if isinstance(user, dict) else None
    if not isinstance(user_id, str) or not USER_ID.match(user_id):
        raise InputError("interaction payload: expected the user's id (U...)")
    name = (user.get("username") or user.get("name") or user_id) if isinstance(user, dict) else user_id
    found = payload.get("container")
    container: dict[str, Any] = found if isinstance(found, dict) else {}
    return Click(user_id=user_id, user_name=str(name)[:80], from_tag=from_tag, action_ts=str(action.get("action_ts", ""))[:40],
                 channel=str(container.get("channel_id", ""))[:40], message_ts=str(container.get("message_ts", ""))[:40],
                 verb=ACTIONS[str(action.get("action_id"))])


def may_act(user_id: str, actors: tuple[str, ...]) -> bool:
    """Only the Slack users `slack.actors` names may press; with none named, nobody may (fail closed)."""
    return user_id in actors


def _object(text: Any, what: str) -> dict[str, Any]:
    if not isinstance(text, str) or len(text) > VALUE_MAX:
        raise InputError(f"{what}: expected JSON text of at most {VALUE_MAX} characters")
    try:
        value = json.loads(text)
    except ValueError as error:
        raise InputError(f"{what}: expected JSON") from error
    if not isinstance(value, dict):
        raise InputError(f"{what}: expected a JSON object")
    return value
