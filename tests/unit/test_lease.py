import pytest

from shared.state import BUSY, OTHER_RELEASE, TAKE, Lease, decide_lease


@pytest.mark.parametrize(
    "current, tag, owner, now, expected",
    [
        (None, "v2", "m1", 100.0, TAKE),
        (Lease("v1", "m0", 100.0), "v2", "m1", 100.0, TAKE),
        (Lease("v1", "m0", 100.5), "v2", "m1", 100.0, OTHER_RELEASE),
        (Lease("v1", "", 200.0), "v2", "m1", 100.0, OTHER_RELEASE),
        (Lease("v2", "m0", 200.0), "v2", "m1", 100.0, BUSY),
        (Lease("v2", "m1", 200.0), "v2", "m1", 100.0, TAKE),
        (Lease("v2", "", 200.0), "v2", "m9", 100.0, TAKE),
    ],
    ids=["a free lease is taken", "an expired lease is taken at its exact expiry",
         "another release's live lease makes us wait", "another release between steps still goes first",
         "another invocation of the same release is busy", "a redelivery of the same message takes it again",
         "the same release between steps is resumed by any message"],
)
def test_deploy_lease_decision(current, tag, owner, now, expected):
    assert decide_lease(current, tag, owner, now) == expected


@pytest.mark.parametrize(
    "current, tag, owner, settled, expected",
    [
        (Lease("v1", "m0", 200.0), "v2", "m1", True, TAKE),
        (Lease("v1", "", 200.0), "v2", "m1", True, TAKE),
        (Lease("v1", "m0", 200.0), "v2", "m1", False, OTHER_RELEASE),
        (Lease("v2", "m0", 200.0), "v2", "m1", True, BUSY),
    ],
    ids=["another release's unexpired lease, that release live or ended: taken (it was written back stale)",
         "the same between steps", "another release still in flight goes first",
         "our own release's lease is never the settled one's"],
)
def test_a_settled_release_lease_holds_nothing(current, tag, owner, settled, expected):
    assert decide_lease(current, tag, owner, 100.0, settled) == expected
