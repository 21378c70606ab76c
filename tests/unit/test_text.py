"""shared.text: what reaches Slack from outside shows as text, and long values stay short in logs."""
from __future__ import annotations

import pytest

from shared.text import ELLIPSIS, cut, escape, log_value, mrkdwn


@pytest.mark.parametrize(
    "text, limit, expected",
    [
        ("<!channel> deploy now", 100, "&lt;!channel&gt; deploy now"),
        ("see <https://evil|click>", 100, "see &lt;https://evil|click&gt;"),
        ("thanks <@U123>", 100, "thanks &lt;@U123&gt;"),
        ("fish & chips", 100, "fish &amp; chips"),
        ("already &amp; escaped", 100, "already &amp;amp; escaped"),
        ("line one\nline two", 100, "line one\nline two"),
        ("*bold* :rocket: _it_ ~s~ `c`", 100, "*bold* :rocket: _it_ ~s~ `c`"),
        ("", 10, ""),
        ("abcdef", 6, "abcdef"),
        ("abcdefg", 6, "abcde" + ELLIPSIS),
        ("ab<cdef", 6, "ab" + ELLIPSIS),
        ("abc&def", 7, "abc" + ELLIPSIS),
        ("a<b", 9, "a&lt;b"),
        ("ab<", 6, "ab&lt;"),
        ("ab<", 5, "ab" + ELLIPSIS),
        ("first\nsecond\nthird", 10, "first\nsec" + ELLIPSIS),
    ],
    ids=[
        "a channel broadcast shows as text",
        "a link with a label shows as text",
        "a user mention shows as text",
        "an ampersand is escaped",
        "an entity already written is escaped again so it shows as written",
        "newlines are kept",
        "formatting characters other than the three are left alone",
        "an empty text stays empty",
        "a text exactly at the limit is not cut",
        "a text over the limit ends in an ellipsis within the limit",
        "a cut never splits an entity for a less-than sign",
        "a cut never splits an entity for an ampersand",
        "an entity that fits is kept whole",
        "an entity ending exactly at the limit is kept",
        "an entity one character past the cut is dropped whole",
        "a multi-line text is cut across its newlines",
    ],
)
def test_mrkdwn_escapes_slacks_control_characters_and_cuts_to_the_limit(text, limit, expected):
    result = mrkdwn(text, limit)
    assert result == expected
    assert len(result) <= limit


@pytest.mark.parametrize(
    "text, limit, expected",
    [
        ("short", 500, "short"),
        ("x" * 500, 500, "x" * 500),
        ("x" * 501, 500, "x" * 500 + ELLIPSIS + " [501 characters]"),
        ("abcdef", 3, "abc" + ELLIPSIS + " [6 characters]"),
        ("abc", 0, ELLIPSIS + " [3 characters]"),
        ("<!channel>", 500, "<!channel>"),
    ],
    ids=[
        "a short value is logged whole",
        "a value exactly at the limit is logged whole",
        "a value over the limit says how long it was",
        "a small limit keeps that many characters",
        "a zero limit keeps only the length",
        "a log value is not escaped for Slack",
    ],
)
def test_log_value_cuts_a_long_value_and_says_how_long_it_was(text, limit, expected):
    assert log_value(text, limit) == expected


def test_log_value_keeps_500_characters_by_default():
    assert log_value("y" * 10_000) == "y" * 500 + ELLIPSIS + " [10000 characters]"


@pytest.mark.parametrize(
    "text, limit, expected",
    [
        ("abc", 3, "abc"),
        ("abcd", 3, "ab" + ELLIPSIS),
        ("<x>", 2, "<" + ELLIPSIS),
        ("abc", 1, ELLIPSIS),
    ],
    ids=[
        "a text at the limit is itself",
        "a longer text keeps limit minus one characters and an ellipsis",
        "cut does not escape",
        "a limit of one leaves only the ellipsis",
    ],
)
def test_cut_never_returns_more_than_the_limit(text, limit, expected):
    assert cut(text, limit) == expected


@pytest.mark.parametrize("call", [lambda: cut("x", 0), lambda: mrkdwn("x", 0), lambda: log_value("x", -1)],
                         ids=["cut to nothing", "mrkdwn to nothing", "a negative log limit"])
def test_a_limit_that_leaves_no_room_is_refused(call):
    with pytest.raises(ValueError):
        call()


def test_escape_is_the_three_entities_slack_asks_for_and_nothing_else():
    assert escape("&<>\"'\n*_~`") == "&amp;&lt;&gt;\"'\n*_~`"
