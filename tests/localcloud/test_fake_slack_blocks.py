"""The fake Slack holds blocks to Block Kit's rules (localcloud/block_kit.py), through the real slack_sdk WebClient."""
from __future__ import annotations

import copy
from typing import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from localcloud.fake_slack import FakeSlack
from localcloud.scenario import Scenario
from shared.core.slack_actions import root_blocks


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(Scenario(), retry_after=0) as fake:
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> WebClient:
    return WebClient(token="xoxb-test", base_url=slack.base_url, timeout=5)


GOOD = root_blocks("*v1.4.0* · live", "v1.4.0", ("rollback",))


def broken(change):
    blocks = copy.deepcopy(GOOD)
    change(blocks)
    return blocks


def _button(blocks):
    return blocks[1]["elements"][0]


REFUSED = {
    "a button's text over 75 characters": lambda b: _button(b)["text"].update(text="x" * 76),
    "a button's text in mrkdwn": lambda b: _button(b)["text"].update(type="mrkdwn"),
    "a value over 2000 characters": lambda b: _button(b).update(value="x" * 2001),
    "an action_id over 255 characters": lambda b: _button(b).update(action_id="x" * 256),
    "two buttons with one action_id": lambda b: b[1]["elements"].append(copy.deepcopy(_button(b))),
    "a style Slack does not have": lambda b: _button(b).update(style="warning"),
    "a confirm title over 100 characters": lambda b: _button(b)["confirm"]["title"].update(text="x" * 101),
    "a section's text over 3000 characters": lambda b: b[0]["text"].update(text="x" * 3001),
    "an empty section text": lambda b: b[0]["text"].update(text=""),
    "more than 50 blocks": lambda b: b.extend({"type": "divider"} for _ in range(49)),
    "two blocks with one block_id": lambda b: b[0].update(block_id=b[1]["block_id"]),
    "an actions block without elements": lambda b: b[1].update(elements=[]),
}


def test_the_blocks_tagship_sends_are_taken_by_post_and_update(slack, client):
    posted = client.chat_postMessage(channel="#deploys", text="v1.4.0 live", blocks=GOOD)
    client.chat_update(channel=posted["channel"], ts=posted["ts"], text="v1.4.0 rolled back", blocks=GOOD[:1])
    assert slack.message(posted["ts"])["blocks"] == GOOD[:1]


@pytest.mark.parametrize("change", list(REFUSED.values()), ids=list(REFUSED))
def test_blocks_that_break_block_kit_are_refused_as_invalid_blocks_and_nothing_changes(slack, client, change):
    posted = client.chat_postMessage(channel="#deploys", text="v1.4.0 live", blocks=GOOD)
    blocks = broken(change)
    for call in (lambda: client.chat_postMessage(channel="#deploys", text="t", blocks=blocks),
                 lambda: client.chat_update(channel=posted["channel"], ts=posted["ts"], text="t", blocks=blocks)):
        with pytest.raises(SlackApiError) as refused:
            call()
        assert refused.value.response["error"] == "invalid_blocks"
    assert len(slack.messages) == 1 and slack.message(posted["ts"])["blocks"] == GOOD
