"""The slack_actions shell with recording fakes: what a click publishes, and that bad input changes nothing."""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from urllib.parse import urlencode

from functions import slack_actions
from functions.deploy_progress.pipeline import Pipeline
from shared.log import logger
from tests.service.fakes import World

SECRET = "signing-secret"


def world(actors=("U0RELEASER",), secret=SECRET) -> World:
    made = World()
    made.config = made.config.replace(slack={"actors": list(actors)})
    made.services.config = made.config
    made.services.secrets = dataclasses.replace(made.services.secrets, slack_signing_secret=secret)
    for tag in ("v1.0.0", "v1.1.0"):
        made.built(tag)
        assert Pipeline(made.services, tag, f"m-{tag}", logger).drive() == "live"
    made.publisher.published.clear()
    return made


def press(made: World, *, user="U0RELEASER", tag="v1.1.0", action_ts="5.5", secret=SECRET, age=0.0, body=None,
          action="tagship_rollback"):
    payload = {"type": "block_actions", "user": {"id": user, "username": "rita"},
               "container": {"channel_id": "C1", "message_ts": "1.0"},
               "actions": [{"action_id": action, "value": json.dumps({"from": tag}), "action_ts": action_ts}]}
    raw = body if body is not None else urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(int(made.now - age))
    signature = "v0=" + hmac.new(secret.encode(), f"v0:{stamp}:".encode() + raw, hashlib.sha256).hexdigest()
    headers = {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}
    return slack_actions.handle(made.services, headers, raw, logger)


def test_a_click_publishes_the_rollback_the_command_line_would_once_and_says_who_in_the_thread():
    made = world()
    first, again = press(made), press(made)
    assert (first.status, again.status, again.body["status"]) == (200, 200, "duplicate")
    [(topic, request)] = made.publisher.published
    assert topic == made.config.topics.rollback
    assert request == {"to": "previous", "from": "v1.1.0", "requested_by": "rita", "trigger": "slack",
                       "reason": "Roll back pressed in Slack by rita"}
    assert any("rita pressed Roll back on v1.1.0" in text for text in made.notifier.thread("1.0"))


def test_what_is_refused_answers_why_and_publishes_nothing():
    made = world()
    answers = {
        "no signature": slack_actions.handle(made.services, {}, b"payload=%7B%7D", logger).status,
        "another secret": press(made, secret="other").status,
        "a timestamp 6 minutes old": press(made, age=360).status,
        "not a click": press(made, body=b"payload=%7B%22type%22%3A%22view_submission%22%7D").status,
        "someone not listed": press(made, user="U0STRANGER").status,
    }
    assert answers == {"no signature": 401, "another secret": 401, "a timestamp 6 minutes old": 401,
                       "not a click": 400, "someone not listed": 403}
    assert made.publisher.published == []


def test_without_a_signing_secret_every_click_is_refused():
    made = world(secret=None)
    answer = press(made, secret="anything")
    assert answer.status == 503 and "signing secret" in answer.body["error"]
    assert made.publisher.published == []


def test_with_nobody_in_slack_actors_nobody_may_press():
    made = world(actors=())
    assert press(made).status == 403 and made.publisher.published == []


def test_a_click_on_a_release_no_longer_live_asks_nothing_and_says_what_serves():
    made = world()
    answer = press(made, tag="v1.0.0")
    assert (answer.status, answer.body["status"], answer.body["live"]) == (200, "not live", "v1.1.0")
    assert made.publisher.published == []
    assert any("no longer live (v1.1.0 serves now)" in text for text in made.notifier.thread("1.0"))


def approvers_world(approvers=("U0APPROVER", "S0RELEASERS")) -> World:
    made = world()
    made.config = made.config.replace(gates={"approvers": list(approvers)})
    made.services.config = made.config
    made.notifier.groups = {"S0RELEASERS": ("U0INGROUP",)}
    return made


def test_approve_and_refuse_publish_the_decision_the_command_line_would_for_a_named_approver_or_a_group_member():
    made = approvers_world()
    named = press(made, user="U0APPROVER", action="tagship_approve", tag="v1.2.0", action_ts="1.1")
    member = press(made, user="U0INGROUP", action="tagship_refuse", tag="v1.2.0", action_ts="1.2")
    assert (named.status, member.status) == (200, 200)
    assert [request for _, request in made.publisher.published] == [
        {"approval": "approve", "tag": "v1.2.0", "requested_by": "rita", "reason": "Approve pressed in Slack by rita"},
        {"approval": "refuse", "tag": "v1.2.0", "requested_by": "rita", "reason": "Refuse pressed in Slack by rita"}]


def test_approve_is_refused_to_actors_strangers_and_when_the_group_cannot_be_read():
    made = approvers_world()
    answers = [press(made, user="U0RELEASER", action="tagship_approve").status,  # may roll back, not approve
               press(made, user="U0STRANGER", action="tagship_approve").status]
    made.notifier.down = True  # Slack does not answer usergroups.users.list: a group allows no one
    answers.append(press(made, user="U0INGROUP", action="tagship_approve").status)
    assert answers == [403, 403, 403] and made.publisher.published == []


def test_a_canary_button_publishes_the_control_the_command_line_would_for_slack_actors_only():
    made = world()
    assert press(made, user="U0STRANGER", action="tagship_canary_abort").status == 403
    assert press(made, action="tagship_canary_pause", tag="v1.2.0").status == 200
    assert [request for _, request in made.publisher.published] == [
        {"canary": "pause", "tag": "v1.2.0", "requested_by": "rita", "reason": "Pause pressed in Slack by rita"}]
    assert any("rita pressed Pause on v1.2.0's canary" in text for text in made.notifier.thread("1.0"))


def test_an_unknown_button_is_refused():
    made = world()
    answer = press(made, action="tagship_deploy_everything")
    assert answer.status == 400 and "unknown action" in answer.body["error"] and made.publisher.published == []
