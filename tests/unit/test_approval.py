"""A release's approval (shared/core/approval.py), at its edges: the wait's last instant, a decision once per
message, the first decision winning, who may press, and a record of the wrong shape."""
from __future__ import annotations

import pytest

from shared.core.approval import (
    APPLIED,
    APPROVE,
    APPROVED,
    BEFORE_PROMOTION,
    BEFORE_TRAFFIC,
    DUPLICATE,
    EXPIRED,
    NOT_APPLIED,
    REFUSE,
    REFUSED,
    Approval,
    Go,
    Stop,
    Wait,
    ask,
    decide,
    may_approve,
    verdict,
)
from shared.errors import CorruptRecord
from shared.release import approval_of

WAIT = 600.0
ASKED = ask(BEFORE_TRAFFIC, 1000.0)

VERDICTS = [
    # (state, now, what it does, why)
    (ASKED, 1000.0, Wait(1600.0), "just asked: wait until the wait ends"),
    (ASKED, 1599.999, Wait(1600.0), "the last instant of the wait still waits"),
    (ASKED, 1600.0, Stop("not approved within 10 min of being asked"), "the wait's end, the edge included, refuses"),
    (ASKED, 999.0, Wait(1600.0), "a clock that stepped back waits, never refuses"),
    (Approval(BEFORE_TRAFFIC, 1000.0, APPROVED, "dana", "", 1100.0), 5000.0, Go("dana"),
     "approved goes on, even read after the wait would have ended"),
    (Approval(BEFORE_TRAFFIC, 1000.0, REFUSED, "dana", "the 5xx", 1100.0), 1200.0,
     Stop("approval refused by dana: the 5xx"), "refused stops, quoting who and why"),
    (Approval(BEFORE_TRAFFIC, 1000.0, REFUSED, "dana", "", 1100.0), 1200.0, Stop("approval refused by dana"),
     "refused without a reason"),
    (Approval(BEFORE_PROMOTION, 1000.0, EXPIRED, "", "", 1600.0), 1601.0,
     Stop("not approved within 10 min of being asked"), "an expiry recorded stays one"),
]


@pytest.mark.parametrize("state, now, expected, why", VERDICTS, ids=[row[3] for row in VERDICTS])
def test_what_a_waiting_release_does(state, now, expected, why):
    assert verdict(state, now, WAIT)[1] == expected


def test_an_expiry_is_recorded_once_with_when():
    expired, _ = verdict(ASKED, 1700.0, WAIT)
    assert (expired.decided, expired.at) == (EXPIRED, 1700.0)
    assert verdict(expired, 1800.0, WAIT)[0] == expired


DECISIONS = [
    # (state, verb, message id, now, outcome, decided, by, why)
    (ASKED, APPROVE, "m1", 1100.0, APPLIED, APPROVED, "dana", "an approve in the wait"),
    (ASKED, REFUSE, "m1", 1100.0, APPLIED, REFUSED, "dana", "a refuse in the wait"),
    (ASKED, APPROVE, "m1", 1599.999, APPLIED, APPROVED, "dana", "an approve at the wait's last instant"),
    (ASKED, APPROVE, "m1", 1600.0, NOT_APPLIED, EXPIRED, "", "an approve at the wait's end comes too late"),
    (Approval(BEFORE_TRAFFIC, 1000.0, APPROVED, "sam", "", 1050.0), REFUSE, "m2", 1100.0, NOT_APPLIED, APPROVED,
     "sam", "the first decision wins: a refuse after an approve"),
    (Approval(BEFORE_TRAFFIC, 1000.0, REFUSED, "sam", "", 1050.0), APPROVE, "m2", 1100.0, NOT_APPLIED, REFUSED,
     "sam", "an approve after a refuse never revives the release"),
    (Approval(BEFORE_TRAFFIC, 1000.0, APPROVED, "sam", "", 1050.0, ("m1",)), APPROVE, "m1", 1100.0, DUPLICATE,
     APPROVED, "sam", "the same message again: a duplicate"),
    (Approval(BEFORE_TRAFFIC, 1000.0, None, "", "", None, ("m1",)), APPROVE, "m1", 1100.0, DUPLICATE, None, "",
     "an id answered (not applied) before is not applied later"),
]


@pytest.mark.parametrize("state, verb, message_id, now, outcome, decided, by, why", DECISIONS,
                         ids=[row[7] for row in DECISIONS])
def test_a_decision_applies_once_and_the_first_wins(state, verb, message_id, now, outcome, decided, by, why):
    after, effect = decide(state, verb, by="dana", reason="", message_id=message_id, now=now, max_wait=WAIT)
    assert effect.outcome == outcome
    assert (after.decided, after.by) == (decided, by)
    assert message_id in after.seen
    again, second = decide(after, verb, by="dana", reason="", message_id=message_id, now=now, max_wait=WAIT)
    assert (again, second.outcome) == (after, DUPLICATE)


def test_the_ids_remembered_are_bounded():
    state = ASKED
    for index in range(80):
        state, _ = decide(state, REFUSE if index else APPROVE, by="x", reason="", message_id=f"m{index}",
                          now=1100.0, max_wait=WAIT)
    assert len(state.seen) == 50 and state.seen[-1] == "m79" and state.decided == APPROVED


WHO = [
    # (user, the user's groups, approvers, may?, why)
    ("U1", (), ("U1",), True, "named"),
    ("U2", (), ("U1",), False, "not named"),
    ("U2", ("S9",), ("S9",), True, "in a named group"),
    ("U2", ("S8",), ("S9",), False, "in another group"),
    ("U1", (), (), False, "nobody named: nobody may (fail closed)"),
]


@pytest.mark.parametrize("user, groups, approvers, may, why", WHO, ids=[row[4] for row in WHO])
def test_who_may_approve_in_slack(user, groups, approvers, may, why):
    assert may_approve(user, groups, approvers) is may


def test_the_record_round_trips_and_none_asked_is_none():
    state = Approval(BEFORE_PROMOTION, 1.5, APPROVED, "dana", "ok", 2.5, ("m1",))
    assert approval_of(state.to_dict()) == state
    assert approval_of({}) is None


WRONG = [
    ({"point": "later"}, "missing fields"),
    ({**ASKED.to_dict(), "point": "after_lunch"}, "an unknown point"),
    ({**ASKED.to_dict(), "decided": "maybe", "at": 1.0}, "an unknown outcome"),
    ({**ASKED.to_dict(), "asked_at": "soon"}, "a time as text"),
    ({**ASKED.to_dict(), "asked_at": True}, "a time as a flag"),
    ({**ASKED.to_dict(), "by": 7}, "a name as a number"),
    ({**ASKED.to_dict(), "seen": "m1"}, "ids not a list"),
    ({**ASKED.to_dict(), "decided": APPROVED}, "decided without when"),
]


@pytest.mark.parametrize("data, why", WRONG, ids=[row[1] for row in WRONG])
def test_a_wrong_shaped_approval_is_a_corrupt_record_naming_it(data, why):
    with pytest.raises(CorruptRecord) as raised:
        approval_of(data, "releases/v1.json")
    assert "releases/v1.json" in str(raised.value) and "approval" in str(raised.value)
