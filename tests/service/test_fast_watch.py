"""The fast watch against recording fakes: one tick's invocation keeps looking inside the bake window."""
from __future__ import annotations

from functions.deploy_progress.pipeline import Pipeline
from functions.health_watchdog import handle
from shared.log import logger
from tests.service.fakes import World


def live_world(**watchdog: object) -> World:
    """v1.0.0 live, the production defaults for the watch (a look every 5 s, 3 failed checks to act), time that
    passes when the watchdog sleeps."""
    world = World()
    world.services.config = world.config = world.config.replace(
        watchdog={"fast_probe_seconds": 5.0, "tick_seconds": 60.0, **watchdog})
    world.services.sleep = lambda seconds: setattr(world, "now", world.now + seconds)
    world.built("v1.0.0")
    world.built("v1.1.0")
    assert Pipeline(world.services, "v1.0.0", "m1", logger).drive() == "live"
    assert Pipeline(world.services, "v1.1.0", "m2", logger).drive() == "live"
    return world


def tick(world: World) -> str:
    return handle(world.services, b"{}", {}, f"tick-{world.now}", logger)


def rollbacks(world: World) -> list[dict]:
    return [payload for topic, payload in world.publisher.published if topic == world.config.topics.rollback]


def test_inside_the_bake_window_one_tick_asks_for_the_rollback_within_20_s_of_the_first_failed_probe():
    world = live_world()
    first_failure = world.now
    world.http.unhealthy.add(world.run.service(world.config.api.service).uri)
    tick(world)
    asked = rollbacks(world)
    assert len(asked) == 1 and asked[0]["from"] == "v1.1.0" and asked[0]["trigger"] == "watchdog"
    assert world.now - first_failure <= 20.0


def test_a_healthy_release_in_its_bake_window_is_looked_at_until_just_before_the_next_tick():
    world = live_world()
    started = world.now
    world.http.requests.clear()
    tick(world)
    looks = sum(1 for url in world.http.requests if url.endswith(world.config.api.detailed_health_path))
    assert looks >= 8  # about once a 5 s (each look takes time too), not once a minute
    assert world.now < started + 60.0 - 5.0  # ended before the next tick, an interval to spare
    assert rollbacks(world) == []


def test_past_the_bake_window_the_tick_looks_once():
    world = live_world(bake_window_seconds=1.0)
    world.now += 10.0
    world.http.requests.clear()
    tick(world)
    assert sum(1 for url in world.http.requests if url.endswith(world.config.api.detailed_health_path)) == 1


def test_with_the_fast_watch_off_the_tick_looks_once():
    world = live_world(fast_probe_seconds=0.0)
    world.http.requests.clear()
    tick(world)
    assert sum(1 for url in world.http.requests if url.endswith(world.config.api.detailed_health_path)) == 1


def test_a_tick_that_loses_the_watchdogs_memory_to_another_stands_down_and_looks_no_more():
    world = live_world()
    real = world.store.save_watchdog
    saves = {"n": 0}

    def another_tick_saves_first(data, generation):  # type: ignore[no-untyped-def]
        saves["n"] += 1
        if saves["n"] == 3:
            real(data, generation)  # the other invocation's save lands first
        return real(data, generation)

    world.store.save_watchdog = another_tick_saves_first  # type: ignore[method-assign]
    world.http.unhealthy.add(world.run.service(world.config.api.service).uri)
    assert tick(world) == "concurrent tick"
    assert saves["n"] == 3 and rollbacks(world) == []
