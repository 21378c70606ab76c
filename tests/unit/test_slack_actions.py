"""What a click in Slack asks for, and who may click (shared/core/slack_actions.py), at the edges."""
from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from shared.core.slack_actions import (
    ROLLBACK_ACTION,
    Click,
    may_act,
    read_click,
    root_blocks,
)
from shared.errors import InputError


def body(payload, **fields) -> bytes:
    return urlencode({"payload": payload if isinstance(payload, str) else json.dumps(payload), **fields}).encode()


def click(**changes):
    payload = {"type": "block_actions", "user": {"id": "U0RELEASER", "username": "rita"},
               "container": {"type": "message", "channel_id": "C0DEPLOYS", "message_ts": "17.5"},
               "actions": [{"action_id": ROLLBACK_ACTION, "value": json.dumps({"from": "v1.4.0"}), "action_ts": "18.1"}]}
    payload.update(changes)
    return payload


def test_a_click_on_roll_back_reads_as_who_pressed_which_release_and_where():
    assert read_click(body(click())) == Click("U0RELEASER", "rita", "v1.4.0", "18.1", "C0DEPLOYS", "17.5")


REFUSED = {
    "not a form": (b"\xff\xfe", "expected a form"),
    "no payload field": (urlencode({"other": "1"}).encode(), "one payload field"),
    "two payload fields": (urlencode([("payload", "{}"), ("payload", "{}")]).encode(), "one payload field"),
    "a payload that is not JSON": (body("{not json"), "expected JSON"),
    "a view submission, not a click": (body(click(type="view_submission")), "block_actions"),
    "no action": (body(click(actions=[])), "exactly one action"),
    "an action tagship never sent": (body(click(actions=[{"action_id": "approve", "value": "{}"}])), "unknown action"),
    "a value that is not JSON": (body(click(actions=[{"action_id": ROLLBACK_ACTION, "value": "v1.4.0"}])), "JSON"),
    "a value naming no release": (body(click(actions=[{"action_id": ROLLBACK_ACTION, "value": "{}"}])), "'from'"),
    "a tag over 200 characters": (body(click(actions=[{"action_id": ROLLBACK_ACTION,
                                                       "value": json.dumps({"from": "v" * 201})}])), "1 to 200"),
    "a user id that is not Slack's": (body(click(user={"id": "<!channel>"})), "user's id"),
    "a body over 64 KiB": (body(click(), pad="x" * 70_000), "at most 65536"),
}


@pytest.mark.parametrize("raw, says", list(REFUSED.values()), ids=list(REFUSED))
def test_an_interaction_that_is_no_click_of_ours_is_refused_saying_why(raw, says):
    with pytest.raises(InputError) as refused:
        read_click(raw)
    assert says in str(refused.value)


WHO = [
    ("U0RELEASER", ("U0RELEASER",), True, "a listed user may press"),
    ("U0STRANGER", ("U0RELEASER",), False, "anyone else may not"),
    ("U0RELEASER", (), False, "with nobody listed nobody may: fail closed"),
    ("u0releaser", ("U0RELEASER",), False, "ids are compared exactly"),
]


@pytest.mark.parametrize("user, actors, allowed, why", WHO, ids=[row[3] for row in WHO])
def test_who_may_press(user, actors, allowed, why):
    assert may_act(user, actors) is allowed


def test_a_live_release_root_carries_a_confirmed_roll_back_button_and_an_ended_one_none():
    live = root_blocks("*v1.4.0* · live", "v1.4.0", ("rollback",))
    [button] = live[1]["elements"]
    assert (button["action_id"], json.loads(button["value"]), button["style"]) == (ROLLBACK_ACTION, {"from": "v1.4.0"}, "danger")
    assert button["confirm"]["deny"]["text"] == "Cancel"
    assert root_blocks("*v1.4.0* · rolled_back", "v1.4.0") == [
        {"type": "section", "text": {"type": "mrkdwn", "text": "*v1.4.0* · rolled_back"}}]


def test_a_root_text_over_3000_characters_is_cut_to_fit_a_section():
    [section] = root_blocks("x" * 5000, "v1.4.0")
    assert len(section["text"]["text"]) == 3000
