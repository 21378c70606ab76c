"""A tag seen again: a duplicate, a repair, a retry as a fresh attempt, or a moved tag refused (pure)."""
import pytest

from shared.core.start import (
    CREATE, DUPLICATE, GO_ON, MOVED, REPAIR, RETRY, STARTING, decide_start, start_lost, traffic_ever_moved,
)
from shared.release import new_release

A, B = "a" * 40, "b" * 40
NOW = 1000.0


def recorded(commit=A, delivery="d1", at=NOW - 5, *path, **changes):
    release = new_release("v1.4.0", commit, "alice", delivery, at)
    for state in path:
        release = release.move(state, at + 1)
    return release.but(**changes)


def ours(commit=A, delivery="d1"):
    return new_release("v1.4.0", commit, "alice", delivery, NOW)


BUILT = {"build_id": "b1"}


@pytest.mark.parametrize(
    "existing, pushed, action",
    [
        (None, ours(), CREATE),
        (ours(), ours(), GO_ON),
        (recorded(A, "d1", NOW - 5, **BUILT), ours(A, "d2"), DUPLICATE),
        (recorded(A, "d1", NOW - 5, "migrating", "deploying", "publishing", "verifying", "live", **BUILT), ours(A, "d1"),
         DUPLICATE),
        (recorded(A, "d1", NOW - 5), ours(A, "d2"), STARTING),
        (recorded(A, "d1", NOW - 5), ours(A, "d1"), STARTING),
        (recorded(A, "d1", NOW - 60), ours(A, "d1"), REPAIR),
        (recorded(A, "d1", NOW - 5, error="build submission failed: 503"), ours(A, "d1"), REPAIR),
        (recorded(A, "d1", NOW - 60), ours(A, "d2"), STARTING),
        (recorded(A, "d1", NOW - 5, "failed", **BUILT, error="build failure"), ours(A, "d1"), RETRY),
        (recorded(A, "d1", NOW - 5, "migrating", "deploying", "failed", **BUILT, error="Smoke test failed"), ours(B, "d2"),
         RETRY),
        (recorded(A, "d1", NOW - 5, "migrating", "deploying", "publishing", "verifying", "failed", **BUILT,
                  error="Health failed while verifying"), ours(A, "d1"), DUPLICATE),
        (recorded(A, "d1", NOW - 5, "migrating", "deploying", "publishing", "verifying", "failed", **BUILT),
         ours(B, "d2"), MOVED),
        (recorded(A, "d1", NOW - 5, "migrating", "deploying", "publishing", "verifying", "live", **BUILT), ours(B, "d2"),
         MOVED),
        (recorded(A, "d1", NOW - 5, **BUILT), ours(B, "d2"), MOVED),
        (recorded(A, "d1", NOW - 5, "superseded", **BUILT), ours(B, "d2"), MOVED),
        (recorded(A, "d1", NOW - 5, "superseded", **BUILT), ours(A, "d1"), DUPLICATE),
        (recorded(A, "d1", NOW - 5, "migrating", "deploying", "failed", **BUILT,
                  steps={"deploy_api": {"started": 1.0, "finished": 2.0}}), ours(A, "d1"), DUPLICATE),
    ],
    ids=["a new tag is created", "our own create, seen again, goes on", "another delivery of a built release is a duplicate",
         "a redelivery of a live release is a duplicate", "a release still being started by another delivery",
         "the same delivery a moment later is still starting", "the same delivery after a while repairs the record",
         "a failed submission is repaired at once", "another delivery never repairs",
         "a build that failed is retried by its redelivery", "a failed smoke test is retried at a new commit",
         "a release that failed after traffic moved is not retried",
         "a tag moved after traffic moved is refused", "a tag moved after going live is refused",
         "a tag moved while its release is in flight is refused", "a superseded tag moved is refused",
         "a superseded release's redelivery is a duplicate",
         "a release whose API traffic moved (and was restored) is not retried"],
)
def test_a_tag_seen_again_means(existing, pushed, action):
    assert decide_start(existing, ours=pushed, now=NOW).action == action


def test_a_moved_tag_names_both_commits_and_a_retry_names_the_next_attempt():
    moved = decide_start(recorded(A, "d1", NOW - 5, **BUILT), ours=ours(B, "d2"), now=NOW)
    assert A[:12] in moved.reason and B[:12] in moved.reason
    retry = decide_start(recorded(A, "d1", NOW - 5, "failed", **BUILT, attempt=2, error="build failure"),
                         ours=ours(A, "d1"), now=NOW)
    assert "attempt 3 starts" in retry.reason


@pytest.mark.parametrize(
    "release, moved",
    [(recorded(), False), (recorded(A, "d1", NOW, "migrating", "deploying"), False),
     (recorded(traffic_moved=("api",)), True), (recorded(A, "d1", NOW, "migrating", "deploying", "publishing"), True),
     (recorded(steps={"deploy_worker": {"finished": 3.0}}), True)],
    ids=["just built", "deploying, nothing moved yet", "api traffic recorded", "reached publishing",
         "the worker's deploy finished"],
)
def test_whether_any_traffic_ever_moved(release, moved):
    assert traffic_ever_moved(release) is moved


@pytest.mark.parametrize(
    "release, lost",
    [
        (recorded(at=NOW - 31), True),
        (recorded(at=NOW - 30), False),
        (recorded(at=NOW - 5), False),
        (recorded(at=NOW - 31, build_id="b1"), False),
        (recorded(at=NOW - 31, image="europe-docker.pkg.dev/p/r/app@sha256:" + "0" * 64), False),
        (recorded(at=NOW - 31, error="build submission failed: 503"), False),
        (recorded(A, "d1", NOW - 31, "migrating"), False),
        (recorded(A, "d1", NOW - 31, "failed"), False),
    ],
    ids=[
        "a record with no build past the repair time was lost at its start",
        "exactly at the repair time it may still be starting",
        "a fresh record is still starting",
        "a build seen for it is not lost",
        "a built image is not lost",
        "a submission failure already told waits for a person",
        "a release past building is not lost",
        "an ended release is not lost",
    ],
)
def test_a_start_is_lost_only_when_nothing_came_of_its_record(release, lost):
    assert start_lost(release, NOW) is lost
