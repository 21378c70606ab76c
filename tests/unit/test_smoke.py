"""What one answer of the candidate's health endpoints means: tables at the edges."""
from __future__ import annotations

import json

import pytest

from shared.smoke import judge_answer

URL = "https://v1-4-0-vkvrtrwd---botbalance-api-abc123-as.a.run.app/healthz"
DEBUG_PAGE = b"<title>DisallowedHost at /healthz</title> Invalid HTTP_HOST header: 'x.a.run.app'."
BARE_PAGE = b'<!doctype html>\n<html lang="en">\n<head>\n  <title>Bad Request (400)</title>\n</head>'

ANSWERS = {
    "200 is healthy": (200, b"{}", True, False, "ok"),
    "Django's bare 400 page is a host refusal, said with the fix, and final": (
        400, BARE_PAGE, False, True, "ALLOWED_HOSTS"),
    "Django's debug page naming DisallowedHost is a host refusal": (400, DEBUG_PAGE, False, True, "DisallowedHost"),
    "another 400 is a failed probe that may pass later": (400, b'{"error": "bad"}', False, False, "answered 400"),
    "a 503 names the failing components": (
        503, json.dumps({"components": {"db": "ok", "redis": "down"}}).encode(), False, False, "redis: down"),
    "no answer says what went wrong": (0, b"", False, False, "timed out"),
    "a 503 with a huge body is cut": (503, b"x" * 1_000_000, False, False, "answered 503"),
}


@pytest.mark.parametrize("status, body, ok, final, says", list(ANSWERS.values()), ids=list(ANSWERS))
def test_an_answer_of_the_candidate_is_judged_for_what_it_is(status, body, ok, final, says):
    answer = judge_answer("/healthz", status, body, URL, "timed out" if status == 0 else "")
    assert (answer.ok, answer.final) == (ok, final)
    assert says in answer.detail and len(answer.detail) < 400


def test_a_host_refusal_names_the_candidates_host():
    answer = judge_answer("/healthz", 400, BARE_PAGE, URL)
    assert "v1-4-0-vkvrtrwd---botbalance-api-abc123-as.a.run.app" in answer.detail
