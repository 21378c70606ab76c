"""Text from outside (commit messages, tag annotations, error strings) made safe for Slack and for log lines.

Pure functions on `str`, no I/O. Slack reads `&`, `<` and `>` as control characters in message text: `<!channel>`
notifies everyone, `<https://x|label>` is a link and `<@U123>` a mention. Slack asks for exactly these three to be
escaped as HTML entities (https://api.slack.com/reference/surfaces/formatting#escaping); nothing else is touched, so
newlines, emoji codes and `*bold*` in our own templates stay as they are.
"""
from __future__ import annotations

ELLIPSIS = "…"
_ENTITIES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"))


def escape(text: str) -> str:
    """`text` with `&`, `<`, `>` written as `&amp;`, `&lt;`, `&gt;`: Slack shows it verbatim, never as a link,
    mention or broadcast. Escaping an escaped text escapes it again (`&amp;` becomes `&amp;amp;`)."""
    for raw, entity in _ENTITIES:
        text = text.replace(raw, entity)
    return text


def cut(text: str, limit: int) -> str:
    """`text` itself when it has at most `limit` characters, otherwise its first `limit - 1` characters and an
    ellipsis: never longer than `limit`. `limit` must be at least 1."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    if len(text) <= limit:
        return text
    return text[: limit - 1] + ELLIPSIS


def mrkdwn(text: str, limit: int) -> str:
    """`text` escaped for Slack (see `escape`) and cut to at most `limit` characters with an ellipsis, never in the
    middle of an entity. Newlines are kept. `limit` must be at least 1."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return cut(escaped, limit)
    kept = cut(escaped, limit)[:-1]
    amp = kept.rfind("&", max(0, len(kept) - 4))
    if amp != -1 and amp + _entity_length(escaped, amp) > len(kept):
        kept = kept[:amp]
    return kept + ELLIPSIS


def log_value(text: str, limit: int = 500) -> str:
    """`text` itself when it has at most `limit` characters, otherwise its first `limit` characters followed by a
    marker with its whole length, e.g. `… [12034 characters]`, so a log line stays short and says what was cut."""
    if limit < 0:
        raise ValueError(f"limit must not be negative, not {limit}")
    if len(text) <= limit:
        return text
    return f"{text[:limit]}{ELLIPSIS} [{len(text)} characters]"


def _entity_length(escaped: str, at: int) -> int:
    """The length of the entity starting at `at` in an escaped text (`&amp;` or `&lt;` / `&gt;`)."""
    return 5 if escaped.startswith("&amp;", at) else 4


def outside(value: object, limit: int = 300) -> str:
    """A value from outside (a tag, a name, a reason, an error that quotes an answer) as it may appear inside one of
    tagship's own messages: escaped for mrkdwn and cut to `limit`."""
    return mrkdwn(str(value), limit)


def link(url: str, label: str) -> str:
    """A Slack link to `url` shown as `label` (our own words), or nothing when `url` is not a plain http(s) URL:
    a `|`, `<`, `>` or space in it could forge another link or label."""
    if not url.startswith(("https://", "http://")) or any(ch in url for ch in "|<> \n\t") or len(url) > 2000:
        return ""
    return f"<{url.replace('&', '&amp;')}|{label}>"
