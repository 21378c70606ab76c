"""A release waiting for approval (gates.approval), decided on the rollback topic, against recording fakes of our
own ports: outcomes, not calls."""
from __future__ import annotations

import json

import pytest

from functions.rollback import handle
from shared.errors import InputError
from shared.log import logger
from shared.release import approval_of, revision_name
from shared.rollback_request import parse_rollback_message
from tests.service.test_canary_deploy import (
    API,
    CANDIDATE,
    STABLE,
    WORKER,
    api_traffic_seen,
    built,
    canary_world,
    drive,
    release,
    served,
)


def waiting(point: str = "before_traffic", **gates: object) -> object:
    """v1.0.0 built, its deploy stopped at its approval (the wait longer than one invocation)."""
    canary = {} if point == "before_promotion" else {"steps": ()}
    world = canary_world(**canary)
    world.services.config = world.config = world.config.replace(
        gates={"approval": point, "approvers": ("U0APPROVER",), "approval_max_wait_seconds": 600.0, **gates},
        deploy={"step_budget_seconds": 10.0, "probe_interval_seconds": 1.0})
    world.metrics.served = {CANDIDATE: served(100), STABLE: served(900)}
    built(world)
    assert drive(world).startswith("handed over")
    return world


def decide(world, verb: str, message_id: str, tag: str = "v1.0.0", **extra: str) -> str:
    body = {"approval": verb, "tag": tag, "requested_by": "dana", **extra}
    return handle(world.services, json.dumps(body).encode(), {}, message_id, logger)


def thread(world) -> list[str]:
    return [text for text, ref in world.notifier.posts if ref is not None]


def test_before_traffic_the_candidate_is_smoke_tested_and_serves_nothing_until_approved_then_goes_live():
    world = waiting()
    assert world.run.services[API].traffic == {STABLE: 100}
    state = approval_of(release(world).approval)
    assert state is not None and state.decided is None and state.point == "before_traffic"
    assert sum("Waiting for approval before any of the API's traffic moves" in t for t in thread(world)) == 1
    assert decide(world, "approve", "m1") == "approval approve: applied"
    assert drive(world, owner="m2") == "live"
    assert world.run.serving(API) == CANDIDATE and world.run.serving(WORKER) == revision_name(WORKER, "v1.0.0")
    assert approval_of(release(world).approval).by == "dana"
    assert any("Approval of v1.0.0: approved by dana" in t for t in thread(world))


def test_each_invocation_of_the_wait_neither_deploys_nor_asks_again():
    world = waiting()
    for owner in ("m2", "m3"):
        assert drive(world, owner=owner).startswith("handed over")
    assert [c for c in world.run.calls if c == ("deploy_revision", (API, CANDIDATE))] == [
        ("deploy_revision", (API, CANDIDATE))]
    assert sum("Waiting for approval" in t for t in thread(world)) == 1


def test_refused_ends_the_release_failed_with_who_and_why_and_nothing_of_it_serves():
    world = waiting()
    assert decide(world, "refuse", "m1", reason="not on a Friday") == "approval refuse: applied"
    assert drive(world, owner="m2") == "failed"
    record = release(world)
    assert "approval refused by dana: not on a Friday" in record.error
    assert world.run.serving(API) == STABLE and world.run.serving(WORKER) == f"{WORKER}-00001-abc"
    assert world.store.lease() is None


def test_nobody_deciding_within_the_wait_refuses_it_and_a_late_approve_changes_nothing():
    world = waiting(approval_max_wait_seconds=30.0)
    outcomes = [drive(world, owner=f"m{n}") for n in range(2, 12) if not release(world).ended]
    assert outcomes[-1] == "failed" and "not approved within 30 s" in release(world).error
    assert approval_of(release(world).approval).decided == "expired"
    assert decide(world, "approve", "late") == "approval approve: not applied"
    assert release(world).state == "failed" and world.run.serving(API) == STABLE


def test_a_decision_delivered_three_times_is_applied_once_and_told_once():
    world = waiting()
    outcomes = [decide(world, "approve", "m1") for _ in range(3)]
    assert outcomes == ["approval approve: applied"] + ["approval approve: duplicate"] * 2
    assert sum("approved by dana" in t for t in thread(world)) == 1


def test_the_first_decision_wins_a_refuse_after_an_approve_is_not_applied_and_says_so():
    world = waiting()
    decide(world, "approve", "m1")
    assert decide(world, "refuse", "m2") == "approval refuse: not applied"
    assert any("refuse not applied: already approved by dana" in t for t in thread(world))
    assert drive(world, owner="m3") == "live"


def test_a_decision_for_a_release_that_asked_none_is_refused_in_the_channel_and_changes_nothing():
    world = canary_world(steps=())
    world.metrics.served = {CANDIDATE: served(100), STABLE: served(900)}
    built(world)
    before = release(world)
    assert decide(world, "approve", "m1").startswith("not applied: v1.0.0 has asked for none yet")
    assert decide(world, "approve", "m2", tag="v9.9.9") == "not applied: no release v9.9.9"
    assert release(world) == before
    assert any("not applied" in text for text, _ in world.notifier.posts)


def test_the_candidate_failing_its_probes_while_it_waits_ends_the_release():
    world = waiting()
    world.http.unhealthy = {""}  # every URL answers 503
    assert drive(world, owner="m2") == "failed"
    assert "failed 3 probes in a row while it waited for approval" in release(world).error
    assert world.run.serving(API) == STABLE


def test_before_promotion_the_canary_runs_then_holds_its_share_until_approved():
    world = waiting("before_promotion")
    outcomes = [drive(world, owner=f"m{n}") for n in range(2, 8)]
    assert all(o.startswith("handed over") for o in outcomes)
    state = approval_of(release(world).approval)
    assert state is not None and state.point == "before_promotion"
    assert world.run.services[API].traffic == {CANDIDATE: 50, STABLE: 50}  # the last step's share, held
    decide(world, "approve", "m1")
    assert drive(world, owner="m9") == "live"
    assert api_traffic_seen(world)[-1] == ((CANDIDATE, 100),)
    assert sum("Canary promoted" in t for t in thread(world)) == 1


def test_refused_before_promotion_sends_all_the_traffic_back_to_stable():
    world = waiting("before_promotion")
    while approval_of(release(world).approval) is None:
        drive(world, owner="m2")
    decide(world, "refuse", "m1", reason="the p95")
    assert drive(world, owner="m3") == "failed"
    assert world.run.services[API].traffic == {STABLE: 100}


MALFORMED = [
    ({"approval": "yes", "tag": "v1"}, 'approval "approval": expected one of approve, refuse'),
    ({"approval": "approve"}, 'approval "tag": expected the tag'),
    ({"approval": "approve", "tag": "v" * 201}, 'approval "tag"'),
    ({"approval": "approve", "tag": "v1", "reason": 7}, '"reason": expected a string'),
]


@pytest.mark.parametrize("payload, message", MALFORMED, ids=[m for _, m in MALFORMED])
def test_a_malformed_decision_is_refused_saying_what_was_expected(payload, message):
    with pytest.raises(InputError, match=message.replace('"', '.').replace("(", ".")):
        parse_rollback_message(json.dumps(payload).encode(), {})


def test_a_decision_whose_record_write_fails_for_good_is_told_not_applied_and_the_release_keeps_waiting():
    from shared.errors import PermanentError

    world = waiting()
    real = world.store.update_release

    def refuses(*args, **kwargs):
        raise PermanentError("412 at the record, for good")

    world.store.update_release = refuses
    assert decide(world, "approve", "m1").startswith("not applied: it could not be recorded")
    world.store.update_release = real
    assert any("Approval for v1.0.0 not applied: it could not be recorded" in text for text, _ in world.notifier.posts)
    assert approval_of(release(world).approval).decided is None
