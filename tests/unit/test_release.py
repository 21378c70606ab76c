import re

import pytest

from shared.release import (
    BUILDING, DEPLOYING, FAILED, LIVE, MIGRATING, PUBLISHING, ROLLED_BACK, SUPERSEDED, VERIFYING, InvalidTransition,
    Release, can_move, new_release, release_identity, revision_name, sanitise,
)
from shared.errors import PermanentError


@pytest.mark.parametrize(
    "current, to, allowed",
    [
        (BUILDING, MIGRATING, True), (MIGRATING, DEPLOYING, True), (VERIFYING, LIVE, True),
        (BUILDING, DEPLOYING, True), (DEPLOYING, MIGRATING, False), (LIVE, VERIFYING, False),
        (MIGRATING, FAILED, True), (LIVE, FAILED, False), (BUILDING, SUPERSEDED, True),
        (DEPLOYING, SUPERSEDED, False), (LIVE, ROLLED_BACK, True), (BUILDING, ROLLED_BACK, False),
        (FAILED, LIVE, False), (ROLLED_BACK, LIVE, False), (LIVE, LIVE, False),
    ],
    ids=["built to migrating", "migrated to deploying", "verified to live", "forward may skip",
         "never back to an earlier state", "live never back to verifying", "in flight may fail",
         "live does not fail (it is rolled back)", "a waiting build may be superseded",
         "a deploying release is not superseded", "live may be rolled back", "a build is not rolled back",
         "an end is an end", "rolled back stays rolled back", "no move to the same state"],
)
def test_release_moves_only_forward(current, to, allowed):
    assert can_move(current, to) is allowed


def test_move_records_every_transition_with_its_time():
    release = new_release("v1.4.0", "abc", "alice", "d1", 10.0).move(MIGRATING, 11.0).move(DEPLOYING, 12.5)
    assert release.history == ((BUILDING, 10.0), (MIGRATING, 11.0), (DEPLOYING, 12.5))
    with pytest.raises(InvalidTransition):
        release.move(PUBLISHING, 13.0).move(MIGRATING, 14.0)


def test_a_release_that_fails_aborts_its_canary_in_the_same_write_and_one_without_a_canary_gets_none():
    from shared.canary_record import to_record
    from shared.core.canary import CanaryState
    running = new_release("v1.4.0", "abc", "alice", "d1", 10.0).move(DEPLOYING, 11.0).but(
        canary=to_record(CanaryState(1, 12.0, paused=True)))
    failed = running.move(FAILED, 13.0, error="canary step 2: PERMISSION_DENIED")
    assert (failed.canary["ended"], failed.canary["end_reason"], failed.canary["paused"]) == (
        "aborted", "the release failed: canary step 2: PERMISSION_DENIED", False)
    assert Release.from_dict(failed.to_dict()) == failed
    assert running.move(LIVE, 13.0).canary == running.canary
    assert new_release("v1.4.1", "abc", "alice", "d1", 10.0).move(FAILED, 11.0, error="x").canary == {}


def test_record_round_trips_through_json_dict():
    release = new_release("v1.4.0", "abc", "alice", "d1", 10.0).but(revisions={"api": "x"}, traffic_moved=("api",))
    assert Release.from_dict(release.to_dict()) == release


DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LONGEST_SERVICE = "s" + "x" * 48  # what api.service / worker.service allow: [a-z][a-z0-9-]{0,48}
LONGEST_TAGGED_SERVICE = "s" + "x" * 37  # 38: leaves the eight characters of a fingerprint within 46


@pytest.mark.parametrize(
    "tag, readable",
    [("v1.4.0", "v1-4-0-"), ("V2.0.0-RC.1", "v2-0-0-rc-1-"), ("...", ""), ("v1_2", "v1-2-"), ("2024.01.02", "t2024-01-02-")],
    ids=["dots become dashes", "lowercased", "nothing readable leaves the fingerprint alone",
         "underscores become dashes", "a tag opening with a digit opens with a letter"],
)
def test_a_traffic_tag_reads_like_its_release_then_its_fingerprint(tag, readable):
    traffic_tag = sanitise(tag)
    assert traffic_tag.startswith(readable) and len(traffic_tag) == len(readable) + 8
    assert DNS_1035.match(traffic_tag)


@pytest.mark.parametrize(
    "tags",
    [("v1.0.0", "v1-0-0", "V1.0.0"), ("v1.0.0-" + "a" * 60 + "1", "v1.0.0-" + "a" * 60 + "2"),
     ("release-" + "x" * 30 + ".1", "release-" + "x" * 30 + "-1")],
    ids=["tags that read alike are told apart", "tags differing only after the cut are told apart",
         "long tags differing in punctuation only are told apart"],
)
@pytest.mark.parametrize("service", ["botbalance-api", LONGEST_SERVICE], ids=["usual service", "longest service"])
def test_distinct_tags_never_share_a_revision_name(tags, service):
    assert len({revision_name(service, tag) for tag in tags}) == len(tags)
    assert len({sanitise(tag) for tag in tags}) == len(tags)


@pytest.mark.parametrize("tag", ["v1.4.0", "v" + "1" * 80, "...", "V2.0.0-RC.1", "ünïcode"])
@pytest.mark.parametrize("service", ["a", "botbalance-api", LONGEST_SERVICE])
def test_a_revision_name_is_a_dns_label_of_at_most_63_opening_with_its_service(service, tag):
    name = revision_name(service, tag)
    assert len(name) <= 63 and DNS_1035.match(name) and name.startswith(f"{service}-")
    assert name == revision_name(service, tag)  # deterministic: a retry finds its own revision


@pytest.mark.parametrize("tag", ["v1.4.0", "v" + "1" * 80, "2024.01.02"])
@pytest.mark.parametrize("service", ["a", "botbalance-api", "botbalance-worker-on-a-long-name", LONGEST_TAGGED_SERVICE])
def test_a_traffic_tag_for_a_service_fits_cloud_runs_46_with_its_name(service, tag):
    traffic_tag = sanitise(tag, service)
    assert len(traffic_tag) + len(service) <= 46 and DNS_1035.match(traffic_tag)
    assert traffic_tag == sanitise(tag, service)


def test_a_service_name_leaving_no_room_for_a_traffic_tag_is_refused_by_name():
    with pytest.raises(PermanentError, match="at most 38 characters, found 39"):
        sanitise("v1.4.0", LONGEST_TAGGED_SERVICE + "x")


def test_the_usual_revision_name_keeps_service_and_tag_readable():
    assert revision_name("botbalance-api", "v1.4.0").startswith("botbalance-api-v1-4-0-")
    assert len(revision_name("botbalance-api", "v1.4.0")) == len("botbalance-api-v1-4-0-") + 8


@pytest.mark.parametrize("tag, attempt, identity", [("v1.4.0", 1, "v1.4.0"), ("v1.4.0", 2, "v1.4.0.attempt-2"),
                                                    ("v1.4.0.attempt-2", 1, "v1.4.0.attempt-2.attempt-1"),
                                                    ("v1.4.0.attempt-2", 2, "v1.4.0.attempt-2.attempt-2")],
                         ids=["a first attempt is its tag", "a retried attempt carries its number",
                              "a tag that reads as a retried attempt carries its own number",
                              "and so does its retry"])
def test_a_release_identity_is_its_tag_and_attempt_and_never_another_releases(tag, attempt, identity):
    assert release_identity(tag, attempt) == identity


def test_a_tag_pushed_as_another_tags_retried_attempt_takes_none_of_that_attempts_names():
    """The tag fuzzing: `0.attempt-2` pushed as a tag of its own shared every name with attempt 2 of `0`."""
    retried, pushed = release_identity("0", 2), release_identity("0.attempt-2", 1)
    assert retried != pushed
    assert revision_name("botbalance-api", retried) != revision_name("botbalance-api", pushed)
    assert sanitise(retried, "botbalance-api") != sanitise(pushed, "botbalance-api")


def test_why_a_release_ended_is_kept_cut_to_2000_characters_when_a_cloud_answered_at_length():
    from shared.release import ERROR_MAX, FAILED

    said = "Cloud Run: " + "x" * 5_000_000
    failed = new_release("v1.4.0", "abc", "alice", "d1", 10.0).move(MIGRATING, 11.0).move(FAILED, 12.0, error=said)
    assert len(failed.error) == ERROR_MAX == 2000 and failed.error.startswith("Cloud Run: x") and failed.error.endswith("…")
