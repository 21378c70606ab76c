"""An attempt that dies holding the deploy lease: the next tick notices the expiry and drives what waits, and an
older release never deploys over a newer one that went live meanwhile."""
from __future__ import annotations

from functions.deploy_progress.pipeline import Pipeline
from functions.health_watchdog import _nudge
from shared.log import logger
from shared.release import revision_name
from tests.service.fakes import World

API = "botbalance-api"


def drive(world: World, tag: str, owner: str) -> str:
    return Pipeline(world.services, tag, owner, logger).drive()


def die_migrating(world: World, tag: str) -> None:
    """`tag` took the lease and started its migration, then its invocation died (no pause, no redelivery)."""
    assert world.store.try_lease(tag, "dead~1", world.now, 900) == "take"
    now = world.clock()
    world.store.update_release(tag, lambda r: r.move("migrating", now))


def test_a_release_waiting_behind_a_dead_attempt_is_driven_by_the_tick_after_the_lease_expires():
    world = World()
    world.built("v1.0.0")
    assert drive(world, "v1.0.0", "m0") == "live"
    world.built("v1.1.0")
    die_migrating(world, "v1.1.0")
    world.built("v1.2.0")
    assert drive(world, "v1.2.0", "m2") == "waiting"
    world.publisher.published.clear()
    _nudge(world.services, logger)
    assert world.publisher.published == []  # the lease is current: nobody is nudged
    world.now += 901
    _nudge(world.services, logger)
    assert world.publisher.published == [("tagship-progress", {"kind": "drive", "tag": "v1.1.0"})]
    assert drive(world, "v1.1.0", "m3") == "live"  # the holder resumes from its record
    assert ("tagship-progress", {"kind": "drive", "tag": "v1.2.0"}) in world.publisher.published
    assert drive(world, "v1.2.0", "m4") == "live"
    assert world.run.serving(API) == revision_name(API, "v1.2.0")


def test_an_older_release_resumed_after_a_newer_one_went_live_stops_and_deploys_nothing():
    world = World()
    world.built("v1.0.0")
    assert drive(world, "v1.0.0", "m0") == "live"
    world.built("v1.1.0")
    die_migrating(world, "v1.1.0")
    world.now += 901
    world.built("v1.2.0")
    assert drive(world, "v1.2.0", "m2") == "live"  # took the expired lease
    assert drive(world, "v1.1.0", "m3") == "failed"  # a late redelivery, or the nudge
    assert "newer release v1.2.0 went live" in world.store.release("v1.1.0")[0].error
    assert world.run.serving(API) == revision_name(API, "v1.2.0")
    assert world.store.pointer().live == "v1.2.0" and world.store.lease() is None


def test_an_older_release_still_building_when_a_newer_one_went_live_is_superseded():
    world = World()
    world.built("v1.1.0")
    world.built("v1.2.0")
    assert drive(world, "v1.2.0", "m2") == "live"
    assert drive(world, "v1.1.0", "m1") == "superseded"
    assert world.run.serving(API) == revision_name(API, "v1.2.0")


def test_a_start_that_died_between_its_record_and_its_build_is_restarted_once_by_the_tick():
    from shared.release import new_release

    world = World()
    world.store.create_release(new_release("v1.1.0", "c0ffee", "alice", "d-1", world.now))  # then the webhook died
    _nudge(world.services, logger)
    assert world.builds.submitted == []  # it may still be starting
    world.now += 31
    _nudge(world.services, logger)
    assert [(b.tag, b.attempt) for b in world.builds.submitted] == [("v1.1.0", 1)]
    world.builds.answers["b-v1.1.0"] = type("Answer", (), {"tag": "v1.1.0", "commit": "c0ffee",
                                                           "log_url": "https://log/b-v1.1.0"})()
    world.now += 31
    _nudge(world.services, logger)  # its build exists now: found, not submitted again
    assert len(world.builds.submitted) == 1


def test_a_lost_start_written_before_the_window_is_left_to_a_person():
    from shared.release import new_release

    world = World()
    world.store.create_release(new_release("v1.1.0", "c0ffee", "alice", "d-1", world.now))
    world.now += 3601
    _nudge(world.services, logger)
    assert world.builds.submitted == []


class Died(BaseException):
    """The process ended here: no handler of ours runs (only BaseException gets past them)."""


def test_a_rollback_that_dies_right_after_moving_the_pointer_has_still_told_the_channel_once():
    import json

    from functions import rollback

    world = World()
    for tag, owner in (("v1.0.0", "m0"), ("v1.1.0", "m1")):
        world.built(tag)
        assert drive(world, tag, owner) == "live"
    move = world.store.move_pointer

    def move_then_die(change):
        move(change)
        raise Died()

    world.store.move_pointer = move_then_die  # type: ignore[method-assign]
    request = json.dumps({"to": "previous", "from": "v1.1.0", "reason": "pager", "requested_by": "ivy"}).encode()
    try:
        rollback.handle(world.services, request, {}, "r1", logger)
    except Died:
        pass
    world.store.move_pointer = move  # type: ignore[method-assign]
    world.now += rollback.LEASE_SECONDS + 1  # the dead holder's lease expires; Pub/Sub redelivers
    rollback.handle(world.services, request, {}, "r1", logger)
    assert world.store.pointer().live == "v1.0.0"
    assert world.store.release("v1.1.0")[0].state == "rolled_back"
    assert len([text for text, thread in world.notifier.posts if "Rolled back" in text and thread is None]) == 1
