"""The fake Slack, driven by the real slack_sdk WebClient and WebhookClient over HTTP on loopback."""
from __future__ import annotations

import json
import time
from typing import Iterator

import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from localcloud.fake_slack import FakeSlack
from localcloud.scenario import Scenario

TOKEN = "xoxb-test"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(Scenario(), retry_after=0) as fake:
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> WebClient:
    return WebClient(token=TOKEN, base_url=slack.base_url, timeout=5)


def test_a_posted_message_is_answered_as_slack_answers_and_recorded(slack, client):
    response = client.chat_postMessage(channel="#deploys", text="Deploying v1.0.0",
                                       blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "*v1.0.0*"}}])
    assert response.status_code == 200
    assert response["ok"] is True
    assert response["channel"] == slack.channel_id("deploys") and response["channel"].startswith("C")
    seconds, micros = response["ts"].split(".")
    assert seconds.isdigit() and len(micros) == 6
    assert response["message"]["text"] == "Deploying v1.0.0" and response["message"]["ts"] == response["ts"]
    [message] = slack.messages
    assert (message["channel"], message["ts"], message["thread_ts"], message["text"]) == (
        response["channel"], response["ts"], None, "Deploying v1.0.0")
    assert message["blocks"][0]["text"]["text"] == "*v1.0.0*"


def test_chat_update_changes_the_root_text_and_keeps_the_history_of_updates(slack, client):
    posted = client.chat_postMessage(channel="#deploys", text="v1.0.0: building")
    for state in ("deploying", "live"):
        updated = client.chat_update(channel=posted["channel"], ts=posted["ts"], text=f"v1.0.0: {state}")
        assert updated["ok"] and updated["ts"] == posted["ts"] and updated["text"] == f"v1.0.0: {state}"
    assert slack.root_text(posted["ts"]) == "v1.0.0: live"
    assert [u["text"] for u in slack.message(posted["ts"])["updates"]] == ["v1.0.0: deploying", "v1.0.0: live"]
    assert len(slack.messages) == 1


def test_thread_replies_follow_their_root_in_the_order_posted(slack, client):
    root = client.chat_postMessage(channel="#deploys", text="v1.0.0")
    client.chat_postMessage(channel="#deploys", text="elsewhere")
    for text in ("Migrations done", "Live in 42s"):
        reply = client.chat_postMessage(channel=root["channel"], text=text, thread_ts=root["ts"])
        assert reply["message"]["thread_ts"] == root["ts"]
    assert [m["text"] for m in slack.thread(root["ts"])] == ["v1.0.0", "Migrations done", "Live in 42s"]
    assert [m["text"] for m in slack.messages if not m["thread_ts"]] == ["v1.0.0", "elsewhere"]


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
@pytest.mark.parametrize(
    "call, error",
    [
        (lambda c, url: WebClient(base_url=url).chat_postMessage(channel="#deploys", text="x"), "not_authed"),
        (lambda c, url: WebClient(token="not-a-token", base_url=url).chat_postMessage(channel="#deploys", text="x"),
         "invalid_auth"),
        (lambda c, url: c.chat_postMessage(channel="#deploys", text=""), "no_text"),
        (lambda c, url: c.chat_postMessage(channel="C0NOTACHANNEL", text="x"), "channel_not_found"),
        (lambda c, url: c.chat_update(channel="#deploys", ts="1700000000.000100", text="x"), "message_not_found"),
        (lambda c, url: c.api_call("chat.delete", json={"channel": "#deploys", "ts": "1.1"}), "unknown_method"),
    ],
    ids=["no token", "not a Slack token", "no text", "unknown channel id", "update of an unknown ts",
         "a method the fake does not serve"],
)
def test_slack_errors_raise_slack_api_error_with_slacks_code(slack, client, call, error):
    with pytest.raises(SlackApiError) as raised:
        call(client, slack.base_url)
    assert raised.value.response["ok"] is False and raised.value.response["error"] == error
    assert slack.messages == []


def test_only_the_listed_channels_exist_when_channels_are_given():
    with FakeSlack(Scenario(), channels=["#deploys"]) as slack:
        client = WebClient(token=TOKEN, base_url=slack.base_url)
        assert client.chat_postMessage(channel="deploys", text="ok")["ok"]
        with pytest.raises(SlackApiError, match="channel_not_found"):
            client.chat_postMessage(channel="#random", text="x")


def test_a_form_encoded_call_with_blocks_as_json_text_works_like_a_json_one(slack):
    response = requests.post(
        slack.base_url + "chat.postMessage",
        data={"channel": "#deploys", "text": "form", "blocks": json.dumps([{"type": "divider"}])},
        headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5,
    )
    assert response.status_code == 200 and response.json()["ok"] is True
    assert slack.messages[0]["blocks"] == [{"type": "divider"}]


def test_a_rate_limited_post_is_retried_after_retry_after_by_the_rate_limit_handler(slack, client):
    slack.scenario.inject_fault("slack/chat.postMessage", "429")
    with pytest.raises(SlackApiError) as raised:  # retries are off by default
        client.chat_postMessage(channel="#deploys", text="x")
    assert raised.value.response.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "0"
    assert raised.value.response["error"] == "ratelimited"

    slack.scenario.inject_fault("slack/chat.postMessage", "429")
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
    assert client.chat_postMessage(channel="#deploys", text="after a 429")["ok"]
    assert [(c["status"], c["error"]) for c in slack.calls] == [(429, "ratelimited"), (429, "ratelimited"), (200, "")]
    assert [m["text"] for m in slack.messages] == ["after a 429"]


def test_a_server_error_raises_slack_api_error_and_posts_nothing(slack, client):
    slack.scenario.inject_fault("slack/chat.update", "500")
    posted = client.chat_postMessage(channel="#deploys", text="v1")
    with pytest.raises(SlackApiError) as raised:
        client.chat_update(channel=posted["channel"], ts=posted["ts"], text="v2")
    assert raised.value.response.status_code == 500
    assert slack.root_text(posted["ts"]) == "v1"


def test_while_slack_is_down_the_client_sees_a_connection_error(slack, client):
    slack.down = True
    started = time.monotonic()
    with pytest.raises(ConnectionError):  # http.client.RemoteDisconnected, after the SDK's one connection retry
        client.chat_postMessage(channel="#deploys", text="x")
    assert time.monotonic() - started < 5
    assert [c["status"] for c in slack.calls] == [0, 0]
    slack.down = False
    assert client.chat_postMessage(channel="#deploys", text="back")["ok"]


def test_a_dropped_connection_fault_is_recovered_by_the_sdks_connection_retry(slack, client):
    slack.scenario.inject_fault("slack/chat.postMessage", "down", times=1)
    assert client.chat_postMessage(channel="#deploys", text="once")["ok"]
    assert [c["status"] for c in slack.calls] == [0, 200]
    assert len(slack.messages) == 1


def test_an_answer_lost_after_the_post_leaves_the_message_posted(slack, client):
    slack.scenario.inject_fault("slack/chat.postMessage", "500", after_effect=True)
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel="#deploys", text="posted, but the caller never knew")
    assert [m["text"] for m in slack.messages] == ["posted, but the caller never knew"]


def test_the_incoming_webhook_answers_ok_as_text_and_records_the_message(slack):
    webhook = WebhookClient(slack.webhook_url)
    response = webhook.send(text="v1.0.0 is live")
    assert (response.status_code, response.body) == (200, "ok")
    [message] = slack.messages
    assert message["text"] == "v1.0.0 is live" and message["via"] == "webhook" and message["thread_ts"] is None


def post_not_json(url: str) -> tuple[int, str]:
    response = requests.post(url, data=b"{not json", headers={"Content-Type": "application/json"}, timeout=5)
    return response.status_code, response.text


def send_nothing(url: str) -> tuple[int, str]:
    response = WebhookClient(url).send()
    return response.status_code, response.body


def send_to_unknown_hook(url: str) -> tuple[int, str]:
    response = WebhookClient(url.replace("/xyz", "/wrong")).send(text="x")
    return response.status_code, response.body


@pytest.mark.parametrize(
    "send, answer",
    [
        (send_nothing, (400, "missing_text_or_fallback_or_attachments")),
        (send_to_unknown_hook, (404, "no_service")),
        (post_not_json, (400, "invalid_payload")),
    ],
    ids=["nothing to post", "unknown hook", "a body that is not JSON"],
)
def test_webhook_errors_come_back_as_slacks_plain_text_with_their_status(slack, send, answer):
    assert send(slack.webhook_url) == answer
    assert slack.messages == []


def test_webhook_faults_answer_429_and_500_without_raising(slack):
    webhook = WebhookClient(slack.webhook_url)
    slack.scenario.inject_fault("slack/webhook", "429")
    limited = webhook.send(text="x")
    assert (limited.status_code, limited.body, limited.headers["Retry-After"]) == (429, "rate_limited", "0")
    slack.scenario.inject_fault("slack/webhook", "500")
    assert (webhook.send(text="x").status_code, webhook.send(text="y").status_code) == (500, 200)
    assert [m["text"] for m in slack.messages] == ["y"]


def test_stopping_frees_the_port(slack):
    import socket

    port = slack.port
    slack.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_a_post_to_a_channel_the_bot_was_not_invited_to_is_not_in_channel():
    with FakeSlack(Scenario(), channels=["deploys", "random"], members=["#deploys"]) as slack:
        client = WebClient(token=TOKEN, base_url=slack.base_url)
        assert client.chat_postMessage(channel="#deploys", text="invited")["ok"]
        assert client.chat_postMessage(channel=slack.channel_id("deploys"), text="by id")["ok"]
        with pytest.raises(SlackApiError) as raised:
            client.chat_postMessage(channel="#random", text="not invited")
        assert raised.value.response["error"] == "not_in_channel"
        with pytest.raises(SlackApiError, match="channel_not_found"):  # a channel that does not exist comes first
            client.chat_postMessage(channel="#nowhere", text="x")
        assert [m["text"] for m in slack.messages] == ["invited", "by id"]


def test_a_token_without_chat_write_gets_missing_scope_with_what_was_needed_and_provided():
    with FakeSlack(Scenario(), scopes=["incoming-webhook", "files:write"]) as slack:
        client = WebClient(token=TOKEN, base_url=slack.base_url)
        for call in (lambda: client.chat_postMessage(channel="#deploys", text="x"),
                     lambda: client.chat_update(channel="#deploys", ts="1.000001", text="x")):
            with pytest.raises(SlackApiError) as raised:
                call()
            answer = raised.value.response
            assert (answer["error"], answer["needed"], answer["provided"]) == (
                "missing_scope", "chat:write", "incoming-webhook,files:write")
        assert slack.messages == []


def test_auth_test_needs_no_scope_and_names_the_bot_and_the_tokens_scopes(slack):
    with FakeSlack(Scenario(), scopes=("channels:read",)) as narrow:
        answer = WebClient(token=TOKEN, base_url=narrow.base_url, timeout=5).auth_test()
        assert answer["ok"] is True and answer["user_id"] and answer["bot_id"]
        assert answer.headers["x-oauth-scopes"] == "channels:read"
    with pytest.raises(SlackApiError) as refused:
        WebClient(token="not-a-token", base_url=slack.base_url, timeout=5).auth_test()
    assert refused.value.response["error"] == "invalid_auth"


def test_conversations_info_takes_an_id_only_and_says_whether_the_bot_is_a_member(slack, client):
    slack.members = {"general"}
    deploys = slack.channel_id("deploys")
    channel = client.conversations_info(channel=deploys)["channel"]
    assert (channel["id"], channel["name"], channel["is_member"]) == (deploys, "deploys", False)
    assert client.conversations_info(channel=slack.channel_id("general"))["channel"]["is_member"] is True
    with pytest.raises(SlackApiError) as by_name:
        client.conversations_info(channel="#deploys")
    assert by_name.value.response["error"] == "channel_not_found"


def test_conversations_list_pages_by_cursor_and_refuses_a_limit_or_cursor_slack_refuses(slack, client):
    for index in range(5):
        slack.channel_id(f"team-{index}")
    names, cursor = [], None
    while True:
        page = client.conversations_list(types="public_channel,private_channel", limit=2, cursor=cursor)
        names += [c["name"] for c in page["channels"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert names == [f"team-{index}" for index in range(5)]
    for args, code in (({"limit": 1001}, "invalid_limit"), ({"cursor": "not-a-cursor"}, "invalid_cursor")):
        with pytest.raises(SlackApiError) as refused:
            client.conversations_list(**args)
        assert refused.value.response["error"] == code


def test_reading_channels_without_channels_read_is_missing_scope_with_what_was_needed(slack):
    with FakeSlack(Scenario(), scopes=("chat:write",)) as narrow:
        client = WebClient(token=TOKEN, base_url=narrow.base_url, timeout=5)
        for call in (lambda: client.conversations_list(), lambda: client.conversations_info(channel="C0123456789")):
            with pytest.raises(SlackApiError) as refused:
                call()
            answer = refused.value.response
            assert (answer["error"], answer["needed"], answer["provided"]) == ("missing_scope", "channels:read", "chat:write")


def test_a_user_groups_members_are_read_with_usergroups_read_and_an_unknown_group_is_no_such_subteam(slack, client):
    slack.set_group("S0RELEASERS", ["U0DANA", "W0SAM"])
    assert client.usergroups_users_list(usergroup="S0RELEASERS")["users"] == ["U0DANA", "W0SAM"]
    for arguments, code in (({"usergroup": "S0NOBODY"}, "no_such_subteam"), ({"usergroup": ""}, "invalid_arguments")):
        with pytest.raises(SlackApiError) as refused:
            client.usergroups_users_list(**arguments)
        assert refused.value.response["error"] == code
    with FakeSlack(Scenario(), scopes=("chat:write",)) as narrow:
        narrow_client = WebClient(token=TOKEN, base_url=narrow.base_url, timeout=5)
        with pytest.raises(SlackApiError) as refused:
            narrow_client.usergroups_users_list(usergroup="S0RELEASERS")
        assert (refused.value.response["error"], refused.value.response["needed"]) == ("missing_scope", "usergroups:read")


def test_the_bot_notifier_reads_a_groups_members_and_answers_none_when_slack_refuses(slack, monkeypatch):
    from shared import clients
    from shared.adapters.slack import SlackWebNotifier

    monkeypatch.setenv(clients.SLACK_API_URL_ENV, slack.base_url)
    slack.set_group("S0RELEASERS", ["U0DANA"])
    notifier = SlackWebNotifier(TOKEN, "#deploys", 5.0)
    assert notifier.group_members("S0RELEASERS") == ("U0DANA",)
    assert notifier.group_members("S0NOBODY") is None
