"""GitHub webhook deliveries: signature, parsing, and what a delivery asks for (pure).

Only `sha256=` signatures are accepted, compared in constant time over the raw body. A delivery is classified into
`Start` (a tag push that deploys) or `Ignore` (with the reason answered to GitHub).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from shared.errors import InputError, SignatureError

TAG_MAX = 200  # characters of a tag tagship releases (git allows more; a build's _TAG is read back cut at 256)

MAX_BODY_BYTES = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB
ZERO_SHA = "0" * 40


@dataclass(frozen=True)
class Start:
    tag: str
    commit: str
    pushed_by: str


@dataclass(frozen=True)
class Ignore:
    reason: str


def verify_signature(secret: str, body: bytes, header: str | None) -> None:
    if not header:
        raise SignatureError("missing X-Hub-Signature-256 header")
    if not header.startswith("sha256="):
        raise SignatureError("expected an X-Hub-Signature-256 of the form sha256=<hex>")
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), header.strip().encode("utf-8", "replace")):
        raise SignatureError("signature does not match the body")


def parse_body(body: bytes, content_type: str | None) -> dict[str, Any]:
    """JSON, or form-encoded with the JSON in the `payload` field, as GitHub sends either."""
    kind = (content_type or "application/json").split(";")[0].strip().lower()
    try:
        if kind == "application/x-www-form-urlencoded":
            fields = parse_qs(body.decode("utf-8"), strict_parsing=False)
            if "payload" not in fields:
                raise InputError("form-encoded delivery: expected a payload field, found none")
            text = fields["payload"][0]
        elif kind == "application/json":
            text = body.decode("utf-8")
        else:
            raise InputError(f"expected application/json or form-encoded content, found {kind}")
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError) as error:
        raise InputError(f"body is not valid JSON: {str(error)[:80]}") from error
    if not isinstance(data, dict):
        raise InputError(f"expected a JSON object, found {type(data).__name__}")
    return data


def _text(data: dict[str, Any], *path: str) -> str | None:
    value: Any = data
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value if isinstance(value, str) else None


def tag_matches(pattern: str, tag: str) -> bool:
    """The whole tag must match, in ASCII: `\\d` is 0-9 only, and `$` never matches before a trailing newline."""
    return re.fullmatch(pattern, tag, re.ASCII) is not None


def classify(event: str | None, data: dict[str, Any], *, repository: str, tag_pattern: str) -> Start | Ignore:
    if event == "ping":
        return Ignore("pong")
    if event == "create":
        return Ignore("create events start nothing: the tag's push event does")
    if event != "push":
        return Ignore(f"event {event or '(none)'} is not a push")
    repo = _text(data, "repository", "full_name")
    if repo is None:
        raise InputError("push event: expected repository.full_name, found none")
    if repo.lower() != repository.lower():
        return Ignore(f"repository {repo} is not {repository}")
    ref = _text(data, "ref")
    if ref is None:
        raise InputError("push event: expected a ref string, found none")
    if not ref.startswith("refs/tags/"):
        return Ignore(f"{ref} is not a tag")
    tag = ref[len("refs/tags/"):]
    if data.get("deleted") is True:
        return Ignore(f"tag {tag[:80]!r} was deleted")
    if len(tag) > TAG_MAX:  # what Cloud Build keeps of a substitution and a Slack root show whole stays under this
        return Ignore(f"tag {tag[:40]!r}... of {len(tag)} characters: tagship releases tags of at most {TAG_MAX}")
    if not tag_matches(tag_pattern, tag):
        return Ignore(f"tag {tag[:80]!r} does not match {tag_pattern}")
    # an annotated tag's `after` is the tag object; the commit it points at is head_commit.id
    commit = _text(data, "head_commit", "id") or _text(data, "after")
    if not commit or commit == ZERO_SHA or not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", commit):
        raise InputError("tag push: expected the commit sha in head_commit.id or 'after', found none")
    pusher = _text(data, "pusher", "name") or _text(data, "sender", "login") or "unknown"
    return Start(tag=tag, commit=commit, pushed_by=pusher)
