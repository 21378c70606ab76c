"""The Slack notifiers against the fake Slack, through the real slack_sdk WebClient and WebhookClient on loopback:
webhook posts stand alone, a 429 never holds a call past its timeout, errors only an operator can fix say what to
do once, and every text is cut before it is sent."""
from __future__ import annotations

import io
import json
import time
from contextlib import contextmanager
from typing import Any, Iterator

import pytest
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from localcloud.fake_slack import FakeSlack
from localcloud.scenario import Scenario
from shared import clients, log
from shared.adapters.slack import (
    TEXT_LIMIT,
    WEBHOOK_REF,
    MessageRef,
    SlackWebhookNotifier,
    SlackWebNotifier,
    budgeted_rate_limit_handler,
    call_budget,
    channel_label,
    retry_after_seconds,
)
from shared.text import ELLIPSIS

TOKEN = "xoxb-notifier-test-token-0000"


class Logs:
    """The JSON log lines written while a test runs."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    @property
    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def of(self, severity: str) -> list[dict[str, Any]]:
        return [entry for entry in self.entries if entry["severity"] == severity]


@pytest.fixture
def logs() -> Iterator[Logs]:
    captured = Logs()
    log.set_stream(captured.stream)
    try:
        yield captured
    finally:
        log.set_stream(None)


@contextmanager
def fake_slack(monkeypatch: pytest.MonkeyPatch, **options: Any) -> Iterator[FakeSlack]:
    """A fake Slack the notifiers' clients point at, serving while the block runs."""
    with FakeSlack(Scenario(), **options) as fake:
        monkeypatch.setenv(clients.SLACK_API_URL_ENV, fake.base_url)
        yield fake


@pytest.fixture(autouse=True)
def fresh_clients() -> Iterator[None]:
    clients.reset()
    yield
    clients.reset()


# -- incoming webhook -------------------------------------------------------------------------------------------------
def test_a_webhook_posts_every_message_on_its_own_and_hands_back_a_ref_to_keep_replying_to(monkeypatch):
    with fake_slack(monkeypatch) as slack:
        notifier = SlackWebhookNotifier(slack.webhook_url, 2.0)
        root = notifier.post("v1.0.0: deploying")
        assert root == WEBHOOK_REF
        assert notifier.post("Migrations done", thread=root) == WEBHOOK_REF
        assert notifier.post("Live in 42s", thread=MessageRef("C0", "1.000001")) == WEBHOOK_REF
        assert [(m["text"], m["via"], m["thread_ts"]) for m in slack.messages] == [
            ("v1.0.0: deploying", "webhook", None), ("Migrations done", "webhook", None),
            ("Live in 42s", "webhook", None)]


def test_a_webhook_update_posts_nothing_and_says_so(monkeypatch):
    with fake_slack(monkeypatch) as slack:
        notifier = SlackWebhookNotifier(slack.webhook_url, 2.0)
        root = notifier.post("v1.0.0: deploying")
        assert root is not None
        assert notifier.update(root, "v1.0.0: live") is False
        assert [m["text"] for m in slack.messages] == ["v1.0.0: deploying"]
        assert [c["method"] for c in slack.calls] == ["webhook"]


@pytest.mark.parametrize(
    "arrange, status",
    [
        (lambda slack: slack.scenario.inject_fault("slack/webhook", "500"), 500),
        (lambda slack: slack.scenario.inject_fault("slack/webhook", "404"), 404),
    ],
    ids=["slack failing", "a webhook that was removed"],
)
def test_a_refused_webhook_post_returns_no_ref_and_logs_a_warning(monkeypatch, logs, arrange, status):
    with fake_slack(monkeypatch) as slack:
        arrange(slack)
        assert SlackWebhookNotifier(slack.webhook_url, 2.0).post("x") is None
        url = slack.webhook_url
    [warning] = logs.of("WARNING")
    assert warning["status"] == status
    assert url not in logs.text


def test_while_slack_is_down_a_webhook_post_returns_no_ref(monkeypatch, logs):
    with fake_slack(monkeypatch) as slack:
        slack.down = True
        assert SlackWebhookNotifier(slack.webhook_url, 2.0).post("x") is None
        url = slack.webhook_url
    assert logs.of("WARNING") and url not in logs.text


# -- rate limits ------------------------------------------------------------------------------------------------------
def web_post(slack: FakeSlack, timeout: float) -> MessageRef | None:
    return SlackWebNotifier(TOKEN, "#deploys", timeout).post("v1.0.0: deploying")


def webhook_post(slack: FakeSlack, timeout: float) -> MessageRef | None:
    return SlackWebhookNotifier(slack.webhook_url, timeout).post("v1.0.0: deploying")


POSTS = pytest.mark.parametrize("post, fault", [(web_post, "slack/chat.postMessage"), (webhook_post, "slack/webhook")],
                                ids=["web api", "webhook"])


@POSTS
def test_a_429_asking_for_longer_than_the_timeout_gives_up_at_once_with_a_warning(monkeypatch, logs, post, fault):
    with fake_slack(monkeypatch, retry_after=30) as slack:
        slack.scenario.inject_fault(fault, "429", times=-1)
        started = time.monotonic()
        assert post(slack, 1.0) is None
        elapsed = time.monotonic() - started
    assert elapsed < 10  # against a Retry-After of 30 s: the wait was never started
    assert [c["status"] for c in slack.calls] == [429]
    [warning] = logs.of("WARNING")
    assert warning["status"] == 429
    assert slack.messages == []


@POSTS
def test_a_429_whose_wait_fits_is_retried_and_posts(monkeypatch, post, fault):
    with fake_slack(monkeypatch, retry_after=0) as slack:
        slack.scenario.inject_fault(fault, "429", times=2)
        assert post(slack, 1.0) is not None
    assert [c["status"] for c in slack.calls] == [429, 429, 200]
    assert [m["text"] for m in slack.messages] == ["v1.0.0: deploying"]


@POSTS
def test_a_429_storm_is_retried_twice_then_given_up(monkeypatch, logs, post, fault):
    with fake_slack(monkeypatch, retry_after=0) as slack:
        slack.scenario.inject_fault(fault, "429", times=-1)
        assert post(slack, 1.0) is None
    assert [c["status"] for c in slack.calls] == [429, 429, 429]
    assert len(logs.of("WARNING")) == 1


class FakeTime:
    """A clock that only the handler's sleeps move."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def rate_limited(retry_after: str | None) -> HttpResponse:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return HttpResponse(status_code=429, headers=headers)


def retries(handler: Any, response: HttpResponse, state: RetryState) -> list[bool]:
    """Whether the handler retries each of the answers until it stops, as WebClient asks it."""
    request = HttpRequest(method="POST", url="http://127.0.0.1/api/chat.postMessage", headers={})
    answers = []
    while True:
        allowed = handler.can_retry(state=state, request=request, response=response)
        answers.append(allowed)
        if not allowed:
            return answers
        handler.prepare_for_next_attempt(state=state, request=request, response=response)


@pytest.mark.parametrize(
    "budget, retry_after, answers, slept",
    [
        (5.0, "2", [True, True, False], [2.0, 2.0]),
        (3.0, "2", [True, False], [2.0]),
        (1.0, "30", [False], []),
        (1.0, "0", [True, True, False], [0.0, 0.0]),
        (1.0, "1", [True, False], [1.0]),
        (0.5, None, [False], []),
    ],
    ids=["two waits that fit are both taken, then the retry count stops it",
         "a second wait past the budget is not started",
         "a wait longer than the budget is never started",
         "Retry-After 0 retries at once",
         "a wait ending exactly at the deadline is taken",
         "no Retry-After counts as one second"],
)
def test_the_rate_limit_handler_waits_only_what_fits_in_the_budget(budget, retry_after, answers, slept):
    fake = FakeTime()
    handler = budgeted_rate_limit_handler(budget, clock=fake.clock, sleep=fake.sleep)
    assert retries(handler, rate_limited(retry_after), RetryState()) == answers
    assert fake.slept == slept


def test_the_budget_a_call_sets_counts_the_time_spent_before_the_first_429():
    fake = FakeTime()
    handler = budgeted_rate_limit_handler(10.0, clock=fake.clock, sleep=fake.sleep)
    with call_budget(3.0, clock=fake.clock):
        fake.now += 2.5  # the first attempt took this long
        assert retries(handler, rate_limited("1"), RetryState()) == [False]
    assert fake.slept == []


def test_the_rate_limit_handler_leaves_other_answers_to_other_handlers():
    handler = budgeted_rate_limit_handler(5.0, sleep=lambda _: None)
    request = HttpRequest(method="POST", url="http://127.0.0.1/api/chat.postMessage", headers={})
    assert not handler.can_retry(state=RetryState(), request=request, response=HttpResponse(status_code=500,
                                                                                            headers={}))
    assert not handler.can_retry(state=RetryState(), request=request, error=ConnectionResetError())


@pytest.mark.parametrize(
    "headers, seconds",
    [
        ({"Retry-After": "30"}, 30.0),
        ({"retry-after": ["2"]}, 2.0),
        ({"Retry-After": "0"}, 0.0),
        ({"Retry-After": "-5"}, 0.0),
        ({"Retry-After": "soon"}, 1.0),
        ({}, 1.0),
    ],
    ids=["seconds as text", "a lowercase header as slack_sdk lists it", "zero", "a negative wait is no wait",
         "a value that is no number counts as one second", "no header counts as one second"],
)
def test_retry_after_is_read_in_seconds(headers, seconds):
    assert retry_after_seconds(headers) == seconds


# -- errors only an operator can fix ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options, token, channel, error, says",
    [
        ({"members": ["deploys"]}, TOKEN, "#releases", "not_in_channel", "/invite @bot in #releases"),
        ({"channels": ["deploys"]}, TOKEN, "releases", "channel_not_found", "check slack.channel"),
        ({"tokens": ["xoxb-the-right-one"]}, "xoxb-a-wrong-but-secret-token", "#releases", "invalid_auth",
         "check SLACK_BOT_TOKEN"),
        ({"scopes": ["incoming-webhook"]}, TOKEN, "#releases", "missing_scope", "check the token's chat:write scope"),
    ],
    ids=["a channel the bot was not invited to", "a channel that does not exist", "a token Slack refuses",
         "a token without chat:write"],
)
def test_an_error_only_an_operator_can_fix_is_logged_once_with_the_channel_and_what_to_do(
        monkeypatch, logs, options, token, channel, error, says):
    with fake_slack(monkeypatch, **options):
        notifier = SlackWebNotifier(token, channel, 2.0)
        assert notifier.post("v1.0.0: deploying") is None
        assert notifier.post("Migrations done") is None
        assert notifier.update(MessageRef(channel, "1.000001"), "v1.0.0: live") is False
        assert SlackWebNotifier(token, channel, 2.0).post("another instance") is None
    errors = logs.of("ERROR")
    assert len(errors) == 2  # once per notifier instance
    for entry in errors:
        assert entry["error"] == error and entry["channel"] == "#releases"
        assert says in entry["message"] and "#releases" in entry["message"]
    [again] = [entry for entry in logs.of("WARNING") if entry["message"] == "slack post failed"]
    assert again["code"] == error and again["channel"] == "#releases"
    assert token not in logs.text


def test_each_kind_of_error_is_told_once_per_notifier(monkeypatch, logs):
    with fake_slack(monkeypatch, channels=["deploys", "random"], members=["deploys"]):
        notifier = SlackWebNotifier(TOKEN, "#random", 2.0)
        notifier.post("x")
        notifier.post("y", thread=MessageRef("#nowhere", "1.000001"))
        notifier.post("z")
    assert [entry["error"] for entry in logs.of("ERROR")] == ["not_in_channel", "channel_not_found"]
    assert "#nowhere" in logs.of("ERROR")[1]["message"]


def test_a_passing_failure_is_a_warning_without_advice(monkeypatch, logs):
    with fake_slack(monkeypatch) as slack:
        slack.scenario.inject_fault("slack/chat.postMessage", "500")
        assert SlackWebNotifier(TOKEN, "#deploys", 2.0).post("x") is None
    assert logs.of("ERROR") == []
    [warning] = logs.of("WARNING")
    assert warning["status"] == 500 and warning["code"] == "fatal_error"


@pytest.mark.parametrize(
    "channel, label",
    [("deploys", "#deploys"), ("#deploys", "#deploys"), ("C0123ABCDE", "C0123ABCDE"), ("general", "#general"),
     ("Canary", "#Canary")],
    ids=["a bare name", "a name with its hash", "a channel id", "a lowercase name starting like an id",
         "a capitalised name is no id"],
)
def test_a_channel_is_named_as_a_person_types_it(channel, label):
    assert channel_label(channel) == label


# -- length -----------------------------------------------------------------------------------------------------------
def test_every_text_is_cut_to_3900_characters_before_it_is_sent(monkeypatch):
    long_text = "deploy log line\n" * 3_000  # 48 000 characters, past Slack's own 40 000
    with fake_slack(monkeypatch) as slack:
        web = SlackWebNotifier(TOKEN, "#deploys", 2.0)
        root = web.post(long_text)
        assert root is not None
        reply = web.post(long_text, thread=root)
        assert reply is not None
        assert web.update(root, "x" * 10_000)
        SlackWebhookNotifier(slack.webhook_url, 2.0).post(long_text)
        texts = [slack.root_text(root.ts), slack.message(reply.ts)["text"], slack.messages[-1]["text"]]
    assert TEXT_LIMIT == 3900
    for text in texts:
        assert len(text) <= TEXT_LIMIT and text.endswith(ELLIPSIS)
    assert texts[0] == "x" * (TEXT_LIMIT - 1) + ELLIPSIS
    assert texts[1] == long_text[: TEXT_LIMIT - 1] + ELLIPSIS


def test_a_text_within_the_limit_is_sent_as_it_is(monkeypatch):
    text = "y" * TEXT_LIMIT
    with fake_slack(monkeypatch) as slack:
        ref = SlackWebNotifier(TOKEN, "#deploys", 2.0).post(text)
        assert ref is not None and slack.root_text(ref.ts) == text
