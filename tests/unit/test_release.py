import pytest

from shared.release import (
    BUILDING, DEPLOYING, FAILED, LIVE, MIGRATING, PUBLISHING, ROLLED_BACK, SUPERSEDED, VERIFYING, InvalidTransition,
    Release, can_move, new_release, revision_name, sanitise,
)


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


def test_record_round_trips_through_json_dict():
    release = new_release("v1.4.0", "abc", "alice", "d1", 10.0).but(revisions={"api": "x"}, traffic_moved=("api",))
    assert Release.from_dict(release.to_dict()) == release


@pytest.mark.parametrize(
    "tag, expected",
    [("v1.4.0", "v1-4-0"), ("V2.0.0-RC.1", "v2-0-0-rc-1"), ("...", "release"), ("v1_2", "v1-2")],
    ids=["dots become dashes", "lowercased", "nothing left falls back", "underscores become dashes"],
)
def test_sanitises_tags_for_cloud_run(tag, expected):
    assert sanitise(tag) == expected


def test_revision_names_are_deterministic_and_within_63_chars():
    assert revision_name("botbalance-api", "v1.4.0") == "botbalance-api-v1-4-0"
    assert len(revision_name("a" * 49, "v" + "1" * 60)) <= 63
