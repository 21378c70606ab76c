"""A record of the right name but the wrong shape: never acted on, never holding a lease, told once."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from functions import deploy_on_tag, rollback
from functions.deploy_progress.pipeline import Pipeline
from shared.errors import CorruptRecord
from shared.log import logger
from shared.record_shape import Unreadable
from shared.release import revision_name
from tests.service.fakes import World

SHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"


def corrupt(world: World, name: str, data: object) -> None:
    generation = world.records.objects.get(name, (None, 0))[1] + 100
    world.records.objects[name] = (data, generation)  # type: ignore[assignment]


def push(world: World, tag: str, delivery: str = "d1"):
    body = json.dumps({"ref": f"refs/tags/{tag}", "after": SHA, "head_commit": {"id": SHA},
                       "repository": {"full_name": world.config.github.repository}, "pusher": {"name": "alice"}}).encode()
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery, "Content-Type": "application/json",
               "X-Hub-Signature-256": "sha256=" + hmac.new(b"secret", body, hashlib.sha256).hexdigest()}
    return deploy_on_tag.handle(world.services, headers, body, logger)


def told(world: World) -> list[str]:
    return [text for text, _ in world.notifier.posts if "corrupt record" in text]


def test_a_push_for_a_tag_whose_record_is_corrupt_answers_409_builds_nothing_and_is_told_once():
    world = World()
    corrupt(world, "releases/v1.0.0.json", {"tag": "v1.0.0", "history": "building"})
    first, second = push(world, "v1.0.0"), push(world, "v1.0.0", "d2")
    assert first.status == second.status == 409 and first.body["record"] == "releases/v1.0.0.json"
    assert world.builds.submitted == []
    assert len(told(world)) == 1 and "v1.0.0" in told(world)[0] and "state repair" in told(world)[0]
    assert world.records.objects["releases/v1.0.0.json"][0] == {"tag": "v1.0.0", "history": "building"}


NOT_JSON = Unreadable("b'\\x00{not json'")  # what the store reads where an object's bytes are not JSON


@pytest.mark.parametrize("broken", [{"tag": 5, "owner": ["x"]}, NOT_JSON], ids=["wrong-shaped", "not JSON"])
def test_a_corrupt_lease_holds_nothing_and_a_release_goes_live_over_it(broken):
    world = World()
    world.built("v1.0.0")
    corrupt(world, "lease.json", broken)
    assert Pipeline(world.services, "v1.0.0", "m1", logger).drive() == "live"
    assert world.store.lease() is None


@pytest.mark.parametrize("broken", [["v0.9.0"], NOT_JSON], ids=["wrong-shaped", "not JSON"])
def test_a_corrupt_queue_waits_for_nobody_and_is_replaced(broken):
    world = World()
    world.built("v1.0.0")
    corrupt(world, "queue.json", broken)
    assert Pipeline(world.services, "v1.0.0", "m1", logger).drive() == "live"
    assert world.store.queued() is None


@pytest.mark.parametrize("not_json", [False, True], ids=["wrong-shaped", "not JSON"])
def test_the_lease_holders_record_turning_corrupt_frees_the_lease_and_starts_the_release_waiting_behind_it(not_json):
    world = World()
    world.built("v1.0.0")
    world.built("v1.1.0")
    assert world.store.try_lease("v1.0.0", "other~1", world.now, 900) == "take"
    assert Pipeline(world.services, "v1.1.0", "m2", logger).drive() == "waiting"
    corrupt(world, "releases/v1.0.0.json",
            NOT_JSON if not_json else {**world.records.objects["releases/v1.0.0.json"][0], "state": 3})
    assert Pipeline(world.services, "v1.0.0", "m3", logger).drive() == "corrupt record"
    assert world.store.lease() is None
    assert {"kind": "drive", "tag": "v1.1.0"} in [payload for _, payload in world.publisher.published]
    assert Pipeline(world.services, "v1.1.0", "m4", logger).drive() == "live"
    assert world.run.serving("botbalance-api") == revision_name("botbalance-api", "v1.1.0")
    assert len(told(world)) == 1


def test_a_rollback_to_a_release_whose_record_is_corrupt_changes_nothing_and_gives_the_lease_back():
    world = World()
    for tag in ("v1.0.0", "v1.1.0"):
        world.built(tag)
        assert Pipeline(world.services, tag, f"m-{tag}", logger).drive() == "live"
    corrupt(world, "releases/v1.0.0.json", "not a release")
    serving = world.run.serving("botbalance-api")
    request = json.dumps({"to": "previous", "from": "v1.1.0", "reason": "broken", "requested_by": "dana"}).encode()
    with pytest.raises(CorruptRecord):  # permanent: acknowledged by the host, and said once in the channel
        rollback.handle(world.services, request, {}, "r1", logger)
    assert [text for text, _ in world.notifier.posts if "Rollback failed" in text and "corrupt record" in text]
    assert world.run.serving("botbalance-api") == serving
    assert world.store.lease() is None
    assert world.store.pointer().live == "v1.1.0"


def test_the_lease_holders_record_deleted_mid_deploy_frees_the_lease_for_the_release_waiting_behind_it():
    world = World()
    world.built("v1.0.0")
    world.built("v1.1.0")
    assert world.store.try_lease("v1.0.0", "other~1", world.now, 900) == "take"
    assert Pipeline(world.services, "v1.1.0", "m2", logger).drive() == "waiting"
    del world.records.objects["releases/v1.0.0.json"]
    assert Pipeline(world.services, "v1.0.0", "m3", logger).drive() == "corrupt record"
    assert world.store.lease() is None
    assert Pipeline(world.services, "v1.1.0", "m4", logger).drive() == "live"
    assert ["missing" in text for text in told(world)] == [True]


def test_a_drive_for_a_tag_that_never_had_a_record_says_nothing_in_the_channel():
    world = World()
    with pytest.raises(Exception, match="no record"):
        Pipeline(world.services, "v9.9.9", "m1", logger).drive()
    assert world.notifier.posts == []


def test_a_corrupt_pointer_fails_the_release_in_flight_restores_its_unit_and_is_told_once():
    world = World()
    world.built("v1.0.0")
    assert Pipeline(world.services, "v1.0.0", "m0", logger).drive() == "live"
    world.built("v1.1.0")
    corrupt(world, "pointer.json", NOT_JSON)
    assert Pipeline(world.services, "v1.1.0", "m1", logger).drive() == "failed"
    assert Pipeline(world.services, "v1.1.0", "m2", logger).drive() == "nothing to do: failed"
    assert world.run.serving("botbalance-api") == revision_name("botbalance-api", "v1.0.0")
    assert world.store.lease() is None
    assert ["pointer.json" in text for text in told(world)] == [True]


def test_a_rollback_from_a_release_whose_record_was_deleted_still_moves_the_unit_back_and_frees_the_lease():
    world = World()
    for tag in ("v1.0.0", "v1.1.0"):
        world.built(tag)
        assert Pipeline(world.services, tag, f"m-{tag}", logger).drive() == "live"
    del world.records.objects["releases/v1.1.0.json"]  # what serves is still known: the pointer names it
    request = json.dumps({"to": "previous", "from": "v1.1.0", "reason": "broken", "requested_by": "dana"}).encode()
    assert rollback.handle(world.services, request, {}, "r1", logger) == "rolled back v1.1.0 -> v1.0.0"
    assert world.run.serving("botbalance-api") == revision_name("botbalance-api", "v1.0.0")
    assert world.store.pointer().live == "v1.0.0"
    assert world.store.lease() is None
    assert [text for text, _ in world.notifier.posts if "Rolled back" in text]
    assert "releases/v1.1.0.json" not in world.records.objects  # nothing invented in its place


@pytest.mark.parametrize("broken", [{"live": {"x": 1}}, NOT_JSON], ids=["wrong-shaped", "not JSON"])
def test_a_watchdog_tick_over_a_corrupt_pointer_judges_the_service_tells_it_once_and_rolls_nothing_back(broken):
    from functions import health_watchdog

    world = World()
    for tag in ("v1.0.0", "v1.1.0"):
        world.built(tag)
        assert Pipeline(world.services, tag, f"m-{tag}", logger).drive() == "live"
    corrupt(world, "pointer.json", broken)
    world.publisher.published.clear()
    for tick in ("t1", "t2"):
        health_watchdog.handle(world.services, b"{}", {}, tick, logger)
    assert ["pointer.json" in text for text in told(world)] == [True]
    assert not [payload for topic, payload in world.publisher.published if topic == world.config.topics.rollback]
