"""What each corrupt record is mended to: the least that lets tagship go on, never a guess that moves traffic."""
import pytest

from shared.core.repair import pointer_from, repaired
from shared.errors import InputError
from shared.release import Release, new_release
from shared.state import Lease, Pointer

NOW = 5000.0


def went_live(tag, at, *, rolled_back_at=None):
    release = new_release(tag, "c", "alice", "d", at)
    for state in ("migrating", "deploying", "publishing", "verifying", "live"):
        release = release.move(state, at + 1)
    return release.move("rolled_back", rolled_back_at) if rolled_back_at else release


@pytest.mark.parametrize(
    "name, expected",
    [("lease.json", {"tag": "", "owner": "", "expires": 0}), ("queue.json", {"waiting": None})],
    ids=["a corrupt lease is mended free", "a corrupt queue is mended empty"],
)
def test_small_records_are_mended_to_nothing_held(name, expected):
    assert repaired(name, {"tag": 5}, [], NOW, "dana") == expected
    assert Lease.parse(repaired("lease.json", None, [], NOW, "dana")) is None


def test_a_corrupt_release_ends_failed_keeping_every_field_that_still_has_its_type():
    data = {"tag": "v1.0.0", "commit": "c0ffee", "history": "building", "revisions": {"api": "api-1"},
            "slack_ts": 5, "state": "exploded"}
    mended = Release.from_dict(repaired("releases/v1.0.0.json", data, [], NOW, "dana"))
    assert mended.state == "failed" and mended.commit == "c0ffee" and mended.revisions == {"api": "api-1"}
    assert mended.history == (("failed", NOW),) and mended.slack_ts == ""
    assert "mended by dana" in mended.error


def test_a_release_that_is_not_even_an_object_is_mended_from_its_name():
    mended = Release.from_dict(repaired("releases/v2.0.0.json", ["junk"], [], NOW, "dana"))
    assert mended.tag == "v2.0.0" and mended.state == "failed"


@pytest.mark.parametrize(
    "releases, live, previous, order",
    [
        ([], None, None, []),
        ([went_live("v1", 100), went_live("v2", 200)], "v2", "v1", ["v1", "v2"]),
        ([went_live("v1", 100), went_live("v2", 200, rolled_back_at=300)], "v1", None, ["v1", "v2"]),
        ([went_live("v1", 100), went_live("v2", 200, rolled_back_at=300), went_live("v3", 400)], "v3", "v1",
         ["v1", "v2", "v3"]),
    ],
    ids=["no releases: nothing live", "the newest live release serves and the one before is previous",
         "after a rollback the release still recorded live serves, with no previous to walk back to",
         "previous skips a rolled-back release"],
)
def test_a_pointer_is_rebuilt_from_the_release_records(releases, live, previous, order):
    pointer = Pointer.from_dict(pointer_from(releases))
    assert (pointer.live, pointer.previous, [tag for tag, _ in pointer.timeline]) == (live, previous, order)


def test_a_name_tagship_does_not_keep_is_refused():
    with pytest.raises(InputError):
        repaired("markers/x.json", {}, [], NOW, "dana")
