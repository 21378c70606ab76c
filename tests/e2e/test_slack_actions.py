"""The Slack app's Roll back button, end to end: the fake Slack holds the root message with its blocks, a click is
sent as Slack sends one (a signed block_actions form) to the slack_actions function over HTTP, and the rollback
function does the rest through Pub/Sub."""
from __future__ import annotations

import time

from localcloud.slack_interaction import first_button
from tests.e2e.test_rollback import serve, unit_on


def buttons(cloud, ts):
    return [element["action_id"] for block in cloud.slack.message(ts)["blocks"] if block["type"] == "actions"
            for element in block["elements"]]


def test_a_click_on_roll_back_rolls_the_unit_back_once_and_refuses_whoever_may_not(cloud):
    serve(cloud, ("v1.0.0", {}), ("v1.1.0", {}))
    root = cloud.release("v1.1.0")["slack_ts"]
    assert buttons(cloud, root) == ["tagship_rollback"]
    shown = first_button(cloud.slack.message(root))

    refused = {
        "someone slack.actors does not name": cloud.press(root, user_id="U0STRANGER", action_ts="1.1"),
        "a signature made with another secret": cloud.press(root, secret="not-the-signing-secret", action_ts="1.2"),
        "a timestamp six minutes old": cloud.press(root, timestamp=int(time.time()) - 360, action_ts="1.3"),
    }
    assert {why: answer.status_code for why, answer in refused.items()} == {
        "someone slack.actors does not name": 403, "a signature made with another secret": 401,
        "a timestamp six minutes old": 401}
    assert "slack.actors" in refused["someone slack.actors does not name"].json()["error"]
    time.sleep(0.5)  # a rollback that was asked would have started by now: none was
    assert cloud.live_tag() == "v1.1.0" and unit_on(cloud, "v1.1.0")

    pressed = cloud.press(root, action_ts="2.0")
    again = cloud.press(root, action_ts="2.0")  # Slack delivering the same click twice
    assert (pressed.status_code, pressed.json()["status"]) == (200, "rollback asked")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    cloud.wait_for(lambda: cloud.live_tag() == "v1.0.0", 20, what="v1.0.0 back")
    assert unit_on(cloud, "v1.0.0") and cloud.release("v1.1.0")["state"] == "rolled_back"

    later = cloud.press(root, action_ts="3.0", button=shown)  # a second person, whose Slack still shows the button
    assert (later.status_code, later.json()["status"]) == (200, "not live")
    rolled = lambda: sum("Rolled back" in m["text"] for m in cloud.slack.messages)  # noqa: E731
    cloud.wait_for(lambda: rolled() >= 2, 20, what="the rollback told in the thread and the channel")
    assert rolled() == 2
    thread = [m["text"] for m in cloud.slack.thread(root)]
    assert any("rita pressed Roll back on v1.1.0" in text for text in thread)
    assert any("no longer live" in text for text in thread)
    cloud.wait_for(lambda: buttons(cloud, root) == [], 10, what="the button gone from the rolled-back root")
