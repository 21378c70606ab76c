"""A deploy lease written back stale (a lost update, a backup restored) naming a release that is already live or
ended holds nothing: the next release takes it at once instead of waiting for its expiry, and the tick drives a
release left waiting behind it."""
from __future__ import annotations

from functions.deploy_progress.pipeline import Pipeline
from functions.health_watchdog import _nudge
from shared.log import logger
from shared.state import LEASE, Lease
from tests.service.fakes import World


def drive(world: World, tag: str, owner: str) -> str:
    return Pipeline(world.services, tag, owner, logger).drive()


def write_lease(world: World, lease: Lease) -> None:
    record = world.store.records.read(LEASE)
    if record is None:
        world.store.records.create(LEASE, lease.to_dict())
    else:
        world.store.records.swap(LEASE, lease.to_dict(), record.generation)


def test_a_live_release_lease_written_back_unexpired_does_not_hold_the_next_release():
    world = World()
    world.built("v1.0.0")
    assert drive(world, "v1.0.0", "m0") == "live"
    write_lease(world, Lease("v1.0.0", "m0~dead", world.now + 900))  # its lease as it was mid-step, back again
    world.built("v1.1.0")
    assert drive(world, "v1.1.0", "m1") == "live"
    assert world.store.pointer().live == "v1.1.0" and world.store.lease() is None


def test_a_release_mid_deploy_meeting_a_settled_release_lease_goes_on():
    world = World()
    world.built("v1.0.0")
    assert drive(world, "v1.0.0", "m0") == "live"
    world.built("v1.1.0")
    pipeline = Pipeline(world.services, "v1.1.0", "m1", logger)
    assert world.store.try_lease("v1.1.0", pipeline.owner, world.now, 900) == "take"
    write_lease(world, Lease("v1.0.0", "m0~dead", world.now + 900))  # written back stale after a step
    pipeline._guard_traffic()  # takes it again rather than stopping half moved
    assert world.store.hold_lease("v1.1.0", pipeline.owner, world.now)


def test_a_release_in_flight_still_holds_its_lease():
    world = World()
    world.built("v1.0.0")
    assert drive(world, "v1.0.0", "m0") == "live"
    world.built("v1.1.0")
    assert world.store.try_lease("v1.1.0", "m1~1", world.now, 900) == "take"
    world.store.update_release("v1.1.0", lambda r: r.move("migrating", world.now))
    world.built("v1.2.0")
    assert drive(world, "v1.2.0", "m2") == "waiting"


def test_the_tick_drives_a_release_waiting_behind_a_settled_release_lease():
    world = World()
    world.built("v1.0.0")
    assert drive(world, "v1.0.0", "m0") == "live"
    world.built("v1.1.0")
    world.store.wait_in_queue("v1.1.0", lambda a, b: True)
    write_lease(world, Lease("v1.0.0", "m0~dead", world.now + 900))
    world.publisher.published.clear()
    _nudge(world.services, logger)
    assert world.publisher.published == [("tagship-progress", {"kind": "drive", "tag": "v1.1.0"})]
    assert drive(world, "v1.1.0", "m1") == "live"
