import hashlib
import hmac
import json

import pytest

from shared.errors import InputError, SignatureError
from shared.webhook import Ignore, Start, classify, parse_body, tag_matches, verify_signature

REPO = "botbalance/botbalance"
PATTERN = r"^v[0-9]+\.[0-9]+\.[0-9]+$"
SHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"


def push(ref="refs/tags/v1.4.0", repo=REPO, **extra):
    return {"ref": ref, "after": SHA, "repository": {"full_name": repo}, "pusher": {"name": "alice"}, **extra}


def test_accepts_githubs_own_test_vector():
    verify_signature(
        "It's a Secret to Everybody",
        b"Hello, World!",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
    )


@pytest.mark.parametrize(
    "header",
    [None, "", "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
     "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e18", "sha256=", "sha256=zz\u00e9"],
    ids=["missing", "empty", "sha1 is refused", "one digit off", "empty digest", "non-ascii digest"],
)
def test_refuses_signatures_that_are_missing_or_wrong(header):
    with pytest.raises(SignatureError):
        verify_signature("It's a Secret to Everybody", b"Hello, World!", header)


@pytest.mark.parametrize(
    "event, data, expected",
    [
        ("ping", {"zen": "Keep it simple"}, Ignore("pong")),
        ("push", push(), Start("v1.4.0", SHA, "alice")),
        ("create", {"ref": "v1.4.0", "ref_type": "tag"}, Ignore("create events start nothing: the tag's push event does")),
        ("push", push(ref="refs/heads/main"), Ignore("refs/heads/main is not a tag")),
        ("push", push(repo="mallory/botbalance"), Ignore("repository mallory/botbalance is not botbalance/botbalance")),
        ("push", push(ref="refs/tags/nightly"), Ignore(f"tag 'nightly' does not match {PATTERN}")),
        ("push", push(deleted=True), Ignore("tag 'v1.4.0' was deleted")),
        ("push", push(ref="refs/tags/v1.1." + "1" * 196), Ignore("tag 'v1.1.11111111111111111111111111111111111'... of 201 characters: tagship releases tags of at "
                                                                 "most 200")),
        ("push", push(ref="refs/tags/v1.1." + "1" * 195), Start("v1.1." + "1" * 195, SHA, "alice")),
        ("issues", {"action": "opened"}, Ignore("event issues is not a push")),
        (None, {}, Ignore("event (none) is not a push")),
        ("push", push(repo="BotBalance/BotBalance"), Start("v1.4.0", SHA, "alice")),
    ],
    ids=["ping answers pong", "a matching tag push starts a release", "the create event beside it starts nothing",
         "a branch push is ignored", "another repository is ignored", "a tag outside the pattern is ignored",
         "a tag deletion is ignored", "a tag of 201 characters starts nothing and says why",
         "a tag of 200 characters is released", "other events are ignored", "no event header is ignored",
         "the repository name is compared without case"],
)
def test_classifies_deliveries(event, data, expected):
    assert classify(event, data, repository=REPO, tag_pattern=PATTERN) == expected


@pytest.mark.parametrize(
    "data",
    [{"ref": "refs/tags/v1.4.0", "repository": {"full_name": REPO}},
     {"ref": 5, "repository": {"full_name": REPO}, "after": SHA},
     {"ref": "refs/tags/v1.4.0", "repository": "botbalance", "after": SHA},
     {"ref": "refs/tags/v1.4.0", "repository": {"full_name": REPO}, "after": "0" * 40}],
    ids=["no commit", "ref of the wrong type", "repository not an object", "all-zero commit"],
)
def test_a_malformed_tag_push_is_input_error(data):
    with pytest.raises(InputError):
        classify("push", data, repository=REPO, tag_pattern=PATTERN)


def test_parses_form_encoded_deliveries():
    from urllib.parse import urlencode

    body = urlencode({"payload": json.dumps(push())}).encode()
    assert parse_body(body, "application/x-www-form-urlencoded")["ref"] == "refs/tags/v1.4.0"


@pytest.mark.parametrize(
    "body, content_type",
    [(b"{not json", "application/json"), (b"[1, 2]", "application/json"), (b"\xff\xfe", "application/json"),
     (b"a=b", "application/x-www-form-urlencoded"), (b"{}", "text/plain")],
    ids=["broken JSON", "a list, not an object", "not UTF-8", "form without payload", "unknown content type"],
)
def test_malformed_bodies_are_input_errors(body, content_type):
    with pytest.raises(InputError):
        parse_body(body, content_type)


def test_signature_covers_the_raw_form_body():
    body = b"payload=%7B%7D"
    header = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    verify_signature("s3cret", body, header)


@pytest.mark.parametrize(
    "pattern, tag, matches",
    [
        (PATTERN, "v1.4.0", True),
        (PATTERN, "v1.4.0\n", False),
        (PATTERN, "v\u0661.4.0", False),
        (r"^v\d+\.\d+\.\d+$", "v\u0661.4.0", False),
        (r"^v\d+\.\d+\.\d+$", "v1.4.0\n", False),
        (r"v\d+\.\d+\.\d+", "v1.4.0-evil", False),
        (r"v\d+\.\d+\.\d+", "release-v1.4.0", False),
        (r"v[0-9]+(\.[0-9]+)*(-rc[0-9]+)?", "v1.4.0-rc1", True),
    ],
    ids=["a plain version matches", "a trailing newline does not", "an Arabic-Indic digit does not",
         "nor with \\d in the pattern", "nor a newline when the pattern ends in $",
         "an unanchored pattern still matches the whole tag only", "nor a prefix",
         "a pattern of the team's own matches its tags"],
)
def test_the_whole_tag_must_match_the_pattern_in_ascii(pattern, tag, matches):
    assert tag_matches(pattern, tag) is matches


def test_an_annotated_tag_deploys_the_commit_it_points_at_not_the_tag_object():
    tag_object = "d" * 40
    data = push(after=tag_object, head_commit={"id": SHA})
    assert classify("push", data, repository=REPO, tag_pattern=PATTERN) == Start("v1.4.0", SHA, "alice")


def test_a_look_alike_tag_is_ignored_with_its_name_quoted_and_cut():
    result = classify("push", push(ref="refs/tags/v1.4.0\n" + "x" * 500), repository=REPO, tag_pattern=PATTERN)
    assert isinstance(result, Ignore) and "\\n" in result.reason and len(result.reason) < 200
