"""An approval end to end on the local cloud: a release stops before its traffic moves, its Slack root carries
Approve and Refuse, a signed click goes to the slack_actions function over HTTP, the rollback function applies the
decision through Pub/Sub, and the deploy goes on, or ends with the unit as it was."""
from __future__ import annotations

import pytest

from localcloud.cloud import LocalCloud
from tests.e2e.conftest import LATENCY, wait_ended
from tests.e2e.test_rollback import unit_on
from tests.e2e.test_slack_actions import buttons

GATES = {"approval": "before_traffic", "approvers": ["U0APPROVER", "S0RELEASERS"]}


@pytest.fixture
def gated_cloud():
    with LocalCloud(latency=dict(LATENCY), config={"gates": GATES, "slack": {"actors": ["U0RELEASER"]}}) as local:
        local.slack.set_group("S0RELEASERS", ["U0INGROUP"])
        yield local
        assert local.functions.overran == [], "an invocation outlasted the function's timeout"


def asked(cloud, tag):
    record = cloud.release(tag)
    return record if record and record.get("approval") and record.get("slack_ts") else None


def button(cloud, ts, action_id):
    return next(element for block in cloud.slack.message(ts)["blocks"] if block["type"] == "actions"
                for element in block["elements"] if element["action_id"] == action_id)


def test_a_release_waits_for_an_approver_then_goes_live_and_a_refused_one_leaves_the_unit_as_it_was(gated_cloud):
    cloud = gated_cloud
    cloud.push_tag("v1.0.0")
    root = cloud.wait_for(lambda: asked(cloud, "v1.0.0"), 30, what="v1.0.0 to ask for approval")["slack_ts"]
    cloud.wait_for(lambda: buttons(cloud, root) == ["tagship_approve", "tagship_refuse"], 10, what="the buttons")
    before = cloud.traffic("botbalance-api")
    refused = {"may roll back, not approve": cloud.press(root, user_id="U0RELEASER", action_ts="1.1"),
               "named nowhere": cloud.press(root, user_id="U0STRANGER", action_ts="1.2")}
    assert {why: answer.status_code for why, answer in refused.items()} == {
        "may roll back, not approve": 403, "named nowhere": 403}
    assert cloud.release("v1.0.0")["approval"]["decided"] is None and cloud.traffic("botbalance-api") == before

    approved = cloud.press(root, user_id="U0INGROUP", user_name="dana", action_ts="2.0")  # in the group named
    assert (approved.status_code, approved.json()["status"]) == (200, "approve asked")
    record = wait_ended(cloud, "v1.0.0", timeout=40)
    assert record["state"] == "live", record["error"]
    assert (record["approval"]["decided"], record["approval"]["by"]) == ("approved", "dana")
    assert unit_on(cloud, "v1.0.0")

    cloud.push_tag("v1.1.0")
    second = cloud.wait_for(lambda: asked(cloud, "v1.1.0"), 30, what="v1.1.0 to ask for approval")["slack_ts"]
    cloud.wait_for(lambda: "tagship_refuse" in buttons(cloud, second), 10, what="the Refuse button")
    refuse = cloud.press(second, user_id="U0APPROVER", user_name="sam", action_ts="3.0",
                         button=button(cloud, second, "tagship_refuse"))
    assert refuse.status_code == 200
    record = wait_ended(cloud, "v1.1.0", timeout=40)
    assert record["state"] == "failed" and "approval refused by sam" in record["error"]
    assert unit_on(cloud, "v1.0.0") and cloud.live_tag() == "v1.0.0"
    cloud.wait_for(lambda: buttons(cloud, second) == [], 10, what="the buttons gone from the refused root")
    thread = [m["text"] for m in cloud.slack.thread(second)]
    assert any("Waiting for approval before any of the API's traffic moves" in text for text in thread)
    assert any("sam pressed Refuse on v1.1.0" in text for text in thread)
