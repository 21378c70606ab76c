"""The deploy running the canary, against recording fakes of our own ports: outcomes, not calls."""
from __future__ import annotations

import pytest

from functions.deploy_progress.pipeline import Pipeline
from shared.canary_record import from_record
from shared.errors import CorruptRecord
from shared.log import logger
from shared.ports import TrafficFigures
from shared.release import Release, revision_name
from shared.thread import open_thread
from tests.service.fakes import World

API, WORKER = "botbalance-api", "botbalance-worker"
STABLE = "botbalance-api-00001-abc"
CANDIDATE = revision_name(API, "v1.0.0")


def canary_world(**canary: object) -> World:
    world = World()
    settings = {"steps": (10, 50), "min_seconds_per_step": 2.0, "min_requests_per_step": 20,
                "max_seconds_per_step": 30.0, **canary}
    world.services.config = world.config = world.config.replace(
        canary=settings, watchdog={"metrics_lag_seconds": 1.0})
    return world


def built(world: World, tag: str = "v1.0.0") -> None:
    """A built release whose Slack thread is open, so its replies are posted."""
    world.built(tag)
    open_thread(world.services, release(world, tag))


def drive(world: World, tag: str = "v1.0.0", owner: str = "m1") -> str:
    return Pipeline(world.services, tag, owner, logger).drive()


def served(requests: int, errors: int = 0, p95: float | None = 120.0) -> TrafficFigures:
    return TrafficFigures(requests, {"2xx": requests - errors, "5xx": errors}, p95)


def release(world: World, tag: str = "v1.0.0") -> Release:
    found = world.store.release(tag)
    assert found is not None
    return found[0]


def api_traffic_seen(world: World) -> list[tuple[tuple[str, int], ...]]:
    return [targets for call, (service, targets) in world.run.calls if call == "set_traffic" and service == API]


def test_a_healthy_candidate_goes_through_every_step_then_takes_all_the_traffic_and_the_release_goes_live():
    world = canary_world()
    world.metrics.served = {CANDIDATE: served(100), STABLE: served(900)}
    built(world)
    assert drive(world) == "live"
    assert api_traffic_seen(world)[:3] == [((CANDIDATE, 10), (STABLE, 90)), ((CANDIDATE, 50), (STABLE, 50)),
                                           ((CANDIDATE, 100),)]
    assert world.run.serving(WORKER) == revision_name(WORKER, "v1.0.0")
    state = from_record(release(world).canary)
    assert state is not None and state.ended == "promoted"
    assert [(j.step, j.led_to, j.verdict.candidate.requests) for j in state.history] == [
        (0, "advanced", 100), (1, "promoted", 100)]
    thread = [text for text, _ in world.notifier.posts]
    assert any("Canary step 1 of 2" in t and "10 %" in t for t in thread)
    assert any("Canary promoted" in t for t in thread)


def test_each_step_is_judged_on_the_candidates_and_stables_figures_over_the_same_window_ending_lag_ago():
    world = canary_world()
    world.metrics.served = {CANDIDATE: served(100), STABLE: served(900)}
    built(world)
    drive(world)
    by_window: dict[tuple[float, float], set[str | None]] = {}
    for revision, start, end in world.metrics.windows:
        by_window.setdefault((start, end), set()).add(revision)
        assert end - start >= 2.0
    assert all(revisions == {CANDIDATE, STABLE} for revisions in by_window.values())


def test_a_candidate_failing_its_first_step_sends_all_the_traffic_back_to_stable_and_fails_the_release():
    world = canary_world()
    world.metrics.served = {CANDIDATE: served(100, errors=30), STABLE: served(900, errors=1)}
    built(world)
    assert drive(world) == "failed"
    assert api_traffic_seen(world) == [((CANDIDATE, 10), (STABLE, 90)), ((STABLE, 100),)]
    assert world.run.serving(API) == STABLE
    assert world.run.serving(WORKER) == f"{WORKER}-00001-abc"  # the worker never moved
    record = release(world)
    assert "5xx ratio 30 %" in record.error and "candidate 30 5xx of 100" in record.error
    state = from_record(record.canary)
    assert state is not None and state.ended == "aborted" and state.history[0].verdict.outcome.value == "fail"
    assert world.store.lease() is None


def test_a_candidate_with_too_few_requests_is_never_passed_and_at_its_longest_does_what_the_config_says():
    world = canary_world(inconclusive="rollback")
    world.metrics.served = {CANDIDATE: served(3), STABLE: served(900)}
    built(world)
    assert drive(world) == "failed"
    assert "still inconclusive at its longest" in release(world).error
    assert world.run.serving(API) == STABLE


def test_a_held_step_is_told_once_and_keeps_its_share_across_invocations():
    world = canary_world(inconclusive="hold")
    world.services.config = world.config = world.config.replace(deploy={"step_budget_seconds": 40.0})
    world.metrics.served = {CANDIDATE: served(3), STABLE: served(900)}
    built(world)
    outcomes = [drive(world, owner=f"m{n}") for n in range(3)]
    assert all(o.startswith("handed over") for o in outcomes)
    assert world.run.services[API].traffic == {CANDIDATE: 10, STABLE: 90}
    held = [text for text, _ in world.notifier.posts if "Holding it there" in text]
    assert len(held) == 1


def test_a_step_outlasting_one_invocation_goes_on_in_the_next_from_when_it_began():
    world = canary_world(min_seconds_per_step=20.0, max_seconds_per_step=200.0)
    world.services.config = world.config = world.config.replace(deploy={"step_budget_seconds": 10.0,
                                                                        "probe_interval_seconds": 1.0})
    world.metrics.served = {CANDIDATE: served(100), STABLE: served(900)}
    built(world)
    outcomes = [drive(world, owner=f"m{n}") for n in range(1, 40) if world.state("v1.0.0") != "live"]
    assert outcomes[-1] == "live" and "handed over: the canary step outlasts this invocation" in outcomes
    state = from_record(release(world).canary)
    assert state is not None and [j.step for j in state.history] == [0, 1]
    smoke_started = [c for c in world.run.calls if c == ("deploy_revision", (API, CANDIDATE))]
    assert len(smoke_started) == 1  # the candidate is deployed (and smoke-tested) once, not per invocation


def test_a_step_recorded_but_not_set_before_a_crash_is_set_by_the_next_invocation():
    world = canary_world()
    world.metrics.served = {CANDIDATE: served(100), STABLE: served(900)}
    built(world)
    real = world.run.set_traffic
    calls = {"n": 0}

    def dies_on_the_second_step(service, targets):  # type: ignore[no-untyped-def]
        if service == API and targets[0].percent == 50:
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("instance ended")
        return real(service, targets)

    world.run.set_traffic = dies_on_the_second_step  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        drive(world, owner="m1")
    assert from_record(release(world).canary).step == 1  # type: ignore[union-attr]
    assert world.run.services[API].traffic == {CANDIDATE: 10, STABLE: 90}
    assert drive(world, owner="m2") == "live"


def test_a_failed_probe_of_the_candidates_own_url_fails_the_step_before_its_window_is_long_enough():
    world = canary_world(min_seconds_per_step=1000.0, max_seconds_per_step=2000.0)
    built(world)
    real = world.http.request
    smoked = {"done": False}

    def candidate_breaks_after_its_smoke_test(url, **kwargs):  # type: ignore[no-untyped-def]
        if "/t/" in url and smoked["done"]:
            world.http.unhealthy.add(url.split("/api")[0])
        if "/t/" in url and "detailed" in url:
            smoked["done"] = True
        return real(url, **kwargs)

    world.http.request = candidate_breaks_after_its_smoke_test  # type: ignore[method-assign]
    assert drive(world) == "failed"
    assert "probes failed" in release(world).error
    assert world.run.serving(API) == STABLE
    assert world.metrics.windows == []  # judged on the probe alone: no window was long enough to read


def test_without_steps_the_deploy_moves_all_the_traffic_at_once_and_records_no_canary():
    world = World()
    built(world)
    assert drive(world) == "live"
    assert api_traffic_seen(world) == [((CANDIDATE, 100),)]
    assert release(world).canary == {}


@pytest.mark.parametrize("canary", [
    "not an object", {"step": "one", "step_started_at": 1.0}, {"step": 0, "step_started_at": 1.0, "ended": "maybe"},
    {"step": 0, "step_started_at": 1.0, "history": [{"step": 0, "at": 1.0, "led_to": "x", "verdict": {"outcome": "?"}}]},
    {"step": 0, "step_started_at": 1.0, "controls": [{"id": 3, "kind": "pause", "applied": True}]},
], ids=["a text", "a step that is not a number", "an unknown end", "an unknown verdict", "a control id not a text"])
def test_a_wrong_shaped_canary_field_is_refused_as_a_corrupt_record(canary):
    world = World()
    built(world)
    data = release(world).to_dict() | {"canary": canary}
    with pytest.raises(CorruptRecord, match="canary"):
        Release.from_dict(data, "releases/v1.0.0.json")


def test_the_history_shows_each_verdict_with_both_revisions_figures_and_how_the_canary_ended():
    from shared.canary_record import history_lines

    world = canary_world()
    world.metrics.served = {CANDIDATE: served(100, errors=30), STABLE: served(900, errors=1)}
    built(world)
    drive(world)
    lines = history_lines(from_record(release(world).canary))  # type: ignore[arg-type]
    assert lines[0].startswith("canary step 1: fail -> aborted (candidate 30/100 5xx, p95 120 ms; stable 1/900 5xx")
    assert lines[-1].startswith("canary aborted: canary step 1 of 2 (10 %) failed")


def test_a_step_still_inconclusive_at_its_longest_is_promoted_when_the_config_says_promote():
    world = canary_world(inconclusive="promote")
    world.metrics.served = {CANDIDATE: served(3), STABLE: served(900)}
    built(world)
    assert drive(world) == "live"
    state = from_record(release(world).canary)
    assert state is not None and state.ended == "promoted" and "as canary.inconclusive says" in state.end_reason
    assert [(j.step, j.led_to, j.verdict.outcome.value) for j in state.history] == [(0, "promoted", "inconclusive")]
