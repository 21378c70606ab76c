"""Controls of a running canary, on the rollback topic, against recording fakes of our own ports."""
from __future__ import annotations

import json

import pytest

from functions.rollback import handle
from shared.canary_record import from_record
from shared.errors import InputError
from shared.log import logger
from shared.rollback_request import parse_rollback_message
from tests.service.test_canary_deploy import (
    API,
    CANDIDATE,
    STABLE,
    built,
    canary_world,
    drive,
    release,
    served,
)


def waiting_canary():
    """v1.0.0 live, v1.1.0's canary at its first step, waiting for its window (longer than one invocation)."""
    world = canary_world(min_seconds_per_step=60.0, max_seconds_per_step=600.0)
    world.services.config = world.config = world.config.replace(deploy={"step_budget_seconds": 10.0,
                                                                        "probe_interval_seconds": 1.0})
    world.metrics.served = {CANDIDATE: served(100), STABLE: served(900)}
    built(world)
    assert drive(world).startswith("handed over")
    return world


def publish(world, payload, message_id):
    return handle(world.services, json.dumps(payload).encode(), {}, message_id, logger)


def thread(world):
    return [text for text, ref in world.notifier.posts if ref is not None]


def test_a_paused_canary_holds_its_share_past_its_window_until_resumed_then_goes_on_judged_from_then():
    world = waiting_canary()
    assert publish(world, {"canary": "pause", "requested_by": "dana"}, "m-1") == "canary pause: applied"
    for n in range(8):
        assert drive(world, owner=f"p{n}").startswith("handed over")
    assert world.run.services[API].traffic == {CANDIDATE: 10, STABLE: 90}
    assert from_record(release(world).canary).history == ()  # type: ignore[union-attr]
    resumed_at = world.now
    assert publish(world, {"canary": "resume", "requested_by": "dana"}, "m-2") == "canary resume: applied"
    outcomes = [drive(world, owner=f"r{n}") for n in range(40) if world.state("v1.0.0") != "live"]
    assert outcomes[-1] == "live"
    first = from_record(release(world).canary).history[0]  # type: ignore[union-attr]
    assert first.at >= resumed_at + 60.0
    assert any("paused by dana" in t for t in thread(world)) and any("resumed by dana" in t for t in thread(world))


def test_promote_now_gives_the_candidate_all_the_traffic_at_the_next_look_and_the_release_goes_live():
    world = waiting_canary()
    assert publish(world, {"canary": "promote", "requested_by": "dana", "reason": "looks fine"}, "m-1") == \
        "canary promote: applied"
    assert drive(world, owner="m2") == "live"
    assert world.run.serving(API) == CANDIDATE
    assert any("Canary promoted: promoted by dana: looks fine" in t for t in thread(world))


def test_abort_sends_all_the_traffic_back_to_stable_and_fails_the_release():
    world = waiting_canary()
    publish(world, {"canary": "abort", "requested_by": "dana", "reason": "checkout is slow"}, "m-1")
    assert drive(world, owner="m2") == "failed"
    assert world.run.services[API].traffic == {STABLE: 100}
    assert "aborted by dana: checkout is slow" in release(world).error


def test_a_rollback_request_during_a_canary_aborts_it_and_rolls_nothing_else_back():
    world = waiting_canary()
    outcome = publish(world, {"to": "previous", "reason": "alarm", "requested_by": "pager"}, "m-1")
    assert outcome == "canary rollback: applied"
    assert world.store.lease() is not None and world.store.lease().tag == "v1.0.0"  # the deploy keeps its lease
    assert drive(world, owner="m2") == "failed"
    assert world.run.services[API].traffic == {STABLE: 100}
    assert "a rollback was requested by pager: alarm" in release(world).error


def test_a_control_delivered_three_times_is_applied_once_and_told_once():
    world = waiting_canary()
    outcomes = [publish(world, {"canary": "pause", "requested_by": "dana"}, "m-1") for _ in range(3)]
    assert outcomes == ["canary pause: applied", "canary pause: duplicate", "canary pause: duplicate"]
    assert len([t for t in thread(world) if "paused by dana" in t]) == 1
    assert len(from_record(release(world).canary).controls) == 1  # type: ignore[union-attr]


def test_a_second_pause_is_refused_with_the_reason_and_told():
    world = waiting_canary()
    publish(world, {"canary": "pause", "requested_by": "dana"}, "m-1")
    assert publish(world, {"canary": "pause", "requested_by": "eve"}, "m-2") == "canary pause: refused"
    assert any("already paused by dana" in t for t in thread(world))


def test_a_control_with_no_canary_running_is_refused_in_the_channel_and_changes_nothing():
    world = canary_world()
    built(world)
    records = dict(world.records.objects)
    assert publish(world, {"canary": "abort", "requested_by": "dana"}, "m-1") == "refused: no canary is running"
    assert any("refused: no canary is running" in text for text, _ in world.notifier.posts)
    assert {k: v for k, v in world.records.objects.items() if not k.startswith("markers/")} == records


def test_a_control_for_a_tag_that_has_ended_is_refused():
    world = canary_world()
    world.metrics.served = {CANDIDATE: served(100), STABLE: served(900)}
    built(world)
    assert drive(world) == "live"
    assert publish(world, {"canary": "abort", "tag": "v1.0.0"}, "m-1").startswith("refused: v1.0.0 is live")


@pytest.mark.parametrize("payload, message", [
    ({"canary": "stop"}, "expected one of pause, resume, promote, abort"),
    ({"canary": None}, "expected one of pause"),
    ({"canary": "pause", "tag": 3}, '"tag": expected a tag'),
    ({"canary": "pause", "tag": "  "}, '"tag": expected a tag'),
    ({"canary": "pause", "reason": ["x"]}, '"reason": expected a string'),
], ids=["an unknown verb", "no verb", "a tag not a text", "an empty tag", "a reason not a text"])
def test_a_malformed_control_is_refused_saying_what_was_expected(payload, message):
    with pytest.raises(InputError, match=message):
        parse_rollback_message(json.dumps(payload).encode(), {})


def test_a_rollback_request_while_the_lease_holders_record_is_corrupt_rolls_back_as_without_a_canary():
    world = waiting_canary()
    name = "releases/v1.0.0.json"
    data, generation = world.records.objects[name]
    world.records.objects[name] = ({**data, "canary": {"step": "one"}}, generation)
    assert not publish(world, {"to": "previous", "reason": "alarm"}, "m-1").startswith("canary")


def test_a_control_whose_record_write_fails_for_good_is_told_not_applied():
    from shared.errors import PermanentError

    world = waiting_canary()

    def refuses(*args, **kwargs):
        raise PermanentError("412 at the record, for good")

    world.store.update_release = refuses
    assert publish(world, {"canary": "resume", "tag": "v1.0.0"}, "c1").startswith("refused: it could not be recorded")
    assert any("refused: it could not be recorded" in text for text, _ in world.notifier.posts)
