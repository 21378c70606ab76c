"""Who deploys next: the newest waiting wins, an older release never deploys over a newer live one, and an expired
lease is noticed by the next tick (pure)."""
import pytest

from shared.core.queue import LeaseView, holder_settled, nudges, superseded_by_live


@pytest.mark.parametrize(
    "created, live_created, superseded",
    [(100.0, None, False), (100.0, 50.0, False), (100.0, 150.0, True), (100.0, 100.0, False)],
    ids=["nothing live", "the live release is older", "the live release is newer: superseded",
         "the same push time is not newer"],
)
def test_a_release_never_deploys_over_a_newer_live_one(created, live_created, superseded):
    assert superseded_by_live(created, live_created) is superseded


@pytest.mark.parametrize(
    "lease, waiting, expected",
    [
        (None, None, []),
        (None, "v1.2.0", ["v1.2.0"]),
        (LeaseView("v1.1.0", 2000.0, True), "v1.2.0", []),
        (LeaseView("v1.1.0", 900.0, True), "v1.2.0", ["v1.1.0"]),
        (LeaseView("v1.1.0", 900.0, False), "v1.2.0", ["v1.2.0"]),
        (LeaseView("v1.1.0", 900.0, False), None, []),
        (LeaseView("rollback", 900.0, True), "v1.2.0", ["v1.2.0"]),
        (LeaseView("", 0.0, False), "v1.2.0", ["v1.2.0"]),
        (LeaseView("v1.1.0", 1000.0, True), "v1.2.0", ["v1.1.0"]),
    ],
    ids=["nothing held, nothing waiting", "free with a release waiting: drive it", "a current lease: nothing",
         "expired, its holder still in flight: resume the holder", "expired, its holder ended: the waiting one",
         "expired and nobody waits", "an expired rollback lease: the waiting release",
         "an ended lease with a release waiting", "expiring exactly now counts as expired"],
)
def test_each_tick_drives_what_an_expired_lease_left_behind(lease, waiting, expected):
    assert nudges(lease, waiting, now=1000.0) == expected


@pytest.mark.parametrize(
    "holder, state, settled",
    [
        ("v1.0.0", "live", True), ("v1.0.0", "failed", True), ("v1.0.0", "rolled_back", True),
        ("v1.0.0", "superseded", True), ("v1.0.0", "building", False), ("v1.0.0", "migrating", False),
        ("v1.0.0", "deploying", False), ("v1.0.0", "publishing", False), ("v1.0.0", "verifying", False),
        ("v1.0.0", None, False), ("rollback", None, False), ("rollback", "live", False), ("", "live", False),
    ],
    ids=["live", "failed", "rolled back", "superseded", "building", "migrating", "deploying", "publishing",
         "verifying", "no readable record: held until its expiry", "a rollback's lease",
         "a rollback's lease, whatever a record says", "no holder"],
)
def test_a_lease_naming_a_settled_release_holds_nothing(holder, state, settled):
    assert holder_settled(holder, state) is settled


@pytest.mark.parametrize(
    "lease, waiting, expected",
    [
        (LeaseView("v1.0.0", 2000.0, False, True), "v1.2.0", ["v1.2.0"]),
        (LeaseView("v1.0.0", 2000.0, False, True), None, []),
        (LeaseView("v1.0.0", 2000.0, False, False), "v1.2.0", []),
    ],
    ids=["a settled holder's unexpired lease (written back stale): the waiting one",
         "a settled holder's lease and nobody waits", "a holder with no readable record: its expiry"],
)
def test_a_tick_drives_what_a_stale_lease_of_a_settled_release_left_behind(lease, waiting, expected):
    assert nudges(lease, waiting, now=1000.0) == expected
