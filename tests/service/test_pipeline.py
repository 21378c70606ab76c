"""The deploy pipeline against recording fakes of our own ports: outcomes, not calls."""
from __future__ import annotations

import pytest

from functions.deploy_progress.pipeline import Pipeline
from shared.errors import LeaseHeld
from shared.log import logger
from shared.adapters.http_probe import HttpAnswer
from tests.service.fakes import World
from shared.release import revision_name, sanitise

API, WORKER = "botbalance-api", "botbalance-worker"


def drive(world: World, tag: str, owner: str = "m1") -> str:
    return Pipeline(world.services, tag, owner, logger).drive()


def test_a_built_release_goes_live_with_api_worker_and_frontend_on_it():
    world = World()
    world.built("v1.0.0")
    assert drive(world, "v1.0.0") == "live"
    assert world.run.serving(API) == revision_name(API, "v1.0.0")
    assert world.run.serving(WORKER) == revision_name(WORKER, "v1.0.0")
    assert world.objects.live(world.config.frontend.bucket)["index.html"] == world.objects.live(world.config.state.bucket)["frontend/v1.0.0/index.html"]
    assert world.store.pointer().live == "v1.0.0"
    assert len(world.run.executions) == 1


def test_index_html_is_copied_after_every_asset():
    world = World()
    world.built("v1.0.0")
    drive(world, "v1.0.0")
    names = [name for _, name in world.objects.copies if not name.startswith("frontend/")]
    assert names[-1] == "index.html"
    assert set(names[:-1]) == {"assets/index-v100abcdef.js", "assets/vendor-00000000.js"}


def test_a_second_release_copies_only_what_changed_and_keeps_old_assets():
    world = World()
    world.built("v1.0.0")
    drive(world, "v1.0.0")
    world.objects.copies.clear()
    world.built("v1.1.0")
    drive(world, "v1.1.0")
    copied = {name for _, name in world.objects.copies}
    assert "assets/vendor-00000000.js" not in copied
    live = world.objects.live(world.config.frontend.bucket)
    assert "assets/index-v100abcdef.js" in live and "assets/index-v110abcdef.js" in live
    assert world.store.pointer().previous == "v1.0.0"


def test_a_failed_migration_fails_the_release_before_any_traffic_moves():
    world = World()
    world.run.migration_outcome = "fail"
    world.built("v1.0.0")
    drive(world, "v1.0.0")
    assert world.state("v1.0.0") == "failed"
    assert world.run.serving(API) == "botbalance-api-00001-abc"
    assert not [c for c in world.run.calls if c[0] in ("deploy_revision", "set_traffic")]


def test_a_candidate_failing_its_smoke_test_never_gets_traffic():
    world = World()
    world.built("v1.0.0")
    world.http.unhealthy.add(f"http://run.test/t/{sanitise('v1.0.0')}---")
    drive(world, "v1.0.0")
    assert world.state("v1.0.0") == "failed"
    assert world.run.serving(API) == "botbalance-api-00001-abc"
    assert world.run.serving(WORKER) == "botbalance-worker-00001-abc"
    assert "Smoke test failed" in world.store.release("v1.0.0")[0].error


def test_failing_verification_restores_api_worker_and_frontend_together():
    world = World()
    world.built("v1.0.0")
    drive(world, "v1.0.0")
    world.built("v1.1.0")
    world.services = world.services  # same wiring
    world.http.unhealthy.add("http://run.test/s/")  # the public URL fails once traffic moved
    drive(world, "v1.1.0")
    assert world.state("v1.1.0") == "failed"
    assert world.run.serving(API) == revision_name(API, "v1.0.0")
    assert world.run.serving(WORKER) == revision_name(WORKER, "v1.0.0")
    live = world.objects.live(world.config.frontend.bucket)
    assert live["index.html"] == world.objects.live(world.config.state.bucket)["frontend/v1.0.0/index.html"]
    assert world.store.pointer().live == "v1.0.0"


def test_the_first_release_failing_verification_restores_the_pre_tagship_frontend():
    world = World()
    world.built("v1.0.0")
    world.http.unhealthy.add("http://run.test/s/")
    drive(world, "v1.0.0")
    assert world.objects.buckets[world.config.frontend.bucket]["index.html"][0] == b"<html>manual</html>"
    assert world.run.serving(API) == "botbalance-api-00001-abc"


def test_driving_a_live_release_again_changes_nothing():
    world = World()
    world.built("v1.0.0")
    drive(world, "v1.0.0")
    calls = len(world.run.calls)
    assert drive(world, "v1.0.0", owner="m2").startswith("nothing to do")
    assert len(world.run.calls) == calls and len(world.run.executions) == 1


def test_a_crash_after_starting_the_migration_adopts_that_execution_on_redelivery():
    world = World()
    world.built("v1.0.0")
    world.store.update_release("v1.0.0", lambda r: r.move("migrating", 1.0).but(migration_started_at=1.0))
    world.run.start_migration("botbalance-migrate", "image@v1.0.0", ())  # ran, but was never recorded
    drive(world, "v1.0.0")
    assert len(world.run.executions) == 1
    assert world.state("v1.0.0") == "live"


def test_another_invocation_mid_step_makes_a_redelivery_wait():
    world = World()
    world.built("v1.0.0")
    world.store.try_lease("v1.0.0", "m-other", world.now, 900)
    with pytest.raises(LeaseHeld):
        drive(world, "v1.0.0", owner="m1")


def test_a_tag_arriving_during_a_deploy_waits_and_a_newer_one_supersedes_it():
    world = World()
    world.built("v1.0.0")
    world.store.try_lease("v1.0.0", "", world.now, 900)  # v1.0.0 is between steps
    world.built("v1.1.0")
    world.built("v1.2.0")
    assert drive(world, "v1.1.0") == "waiting"
    assert drive(world, "v1.2.0") == "waiting"
    assert world.state("v1.1.0") == "superseded"
    assert drive(world, "v1.0.0") == "live"
    assert ("tagship-progress", {"kind": "drive", "tag": "v1.2.0"}) in world.publisher.published
    assert drive(world, "v1.2.0") == "live"
    assert world.store.pointer().live == "v1.2.0"


def test_slack_down_never_stops_a_release():
    world = World(slack_down=True)
    world.built("v1.0.0")
    assert drive(world, "v1.0.0") == "live"


def test_a_rollback_taking_the_lease_stops_the_deploy_before_its_next_traffic_change():
    world = World()
    world.built("v1.0.0")
    drive(world, "v1.0.0")
    world.built("v1.1.0")
    original = world.run.deploy_revision

    def deploy_then_rollback_arrives(*args, **kwargs):
        state = original(*args, **kwargs)
        world.store.take_rollback_lease("rollback-1", world.now, 300)
        return state

    world.run.deploy_revision = deploy_then_rollback_arrives
    assert drive(world, "v1.1.0") == "stopped"
    assert world.run.serving(API) == revision_name(API, "v1.0.0")
    assert world.state("v1.1.0") == "failed"


def test_a_migration_outlasting_one_invocation_is_resumed_by_the_next_message_not_run_twice():
    world = World()
    world.services.config = world.config = world.config.replace(deploy={"step_budget_seconds": 2.0})
    world.run.polls_until_done = 4
    world.built("v1.0.0")
    assert drive(world, "v1.0.0", owner="m1") == "migration still running"
    assert world.publisher.published[-1] == ("tagship-progress", {"kind": "drive", "tag": "v1.0.0"})
    outcomes = [drive(world, "v1.0.0", owner=f"m{n}") for n in range(2, 40) if world.state("v1.0.0") != "live"]
    assert outcomes[-1] == "live"
    assert all(o == "migration still running" or o.startswith("handed over") for o in outcomes[:-1])
    assert len(world.run.executions) == 1


def test_a_bake_longer_than_one_invocation_goes_on_in_the_next_from_when_it_began():
    world = World()
    world.services.config = world.config = world.config.replace(
        deploy={"step_budget_seconds": 20.0, "bake_seconds": 60.0, "probe_interval_seconds": 1.0})
    world.built("v1.0.0")
    outcomes = [drive(world, "v1.0.0", owner=f"m{n}") for n in range(1, 40) if world.state("v1.0.0") != "live"]
    assert outcomes[-1] == "live" and "handed over: the bake outlasts this invocation" in outcomes
    assert world.publisher.published.count(("tagship-progress", {"kind": "drive", "tag": "v1.0.0"})) >= 2
    verify = world.store.release("v1.0.0")[0].steps["verify"]
    assert verify["finished"] - verify["started"] >= 60.0  # the whole bake, not restarted, not cut short
    assert verify["finished"] - verify["started"] < 120.0


def test_a_failing_smoke_test_longer_than_one_invocation_hands_over_before_any_traffic_moves():
    world = World()
    world.services.config = world.config = world.config.replace(
        deploy={"step_budget_seconds": 10.0, "smoke_timeout_seconds": 30.0, "smoke_interval_seconds": 1.0})
    world.built("v1.0.0")
    world.http.unhealthy.add(world.run.base_url)
    outcome = drive(world, "v1.0.0")
    assert outcome == "handed over: the smoke test outlasts this invocation"
    assert world.run.serving(world.config.api.service) != revision_name(world.config.api.service, "v1.0.0")


def test_a_migration_running_past_its_timeout_fails_the_release_before_traffic_moves():
    world = World()
    world.services.config = world.config = world.config.replace(migrations={"timeout_seconds": 10})
    world.run.polls_until_done = 400
    world.built("v1.0.0")
    drive(world, "v1.0.0")
    assert world.state("v1.0.0") == "failed"
    assert "longer than" in world.store.release("v1.0.0")[0].error
    assert world.run.serving(API) == "botbalance-api-00001-abc"


def test_a_permanent_cloud_error_mid_deploy_restores_the_previous_unit_and_says_so():
    from shared.errors import PermanentError

    world = World()
    world.built("v1.0.0")
    drive(world, "v1.0.0")
    world.built("v1.1.0")

    def worker_refused(*args, **kwargs):
        if args[0] == WORKER:
            raise PermanentError("botbalance-worker: PERMISSION_DENIED")
        return original(*args, **kwargs)

    original = world.run.deploy_revision
    world.run.deploy_revision = worker_refused
    assert drive(world, "v1.1.0") == "failed"
    assert world.run.serving(API) == revision_name(API, "v1.0.0")
    assert world.run.serving(WORKER) == revision_name(WORKER, "v1.0.0")
    assert world.store.lease() is None
    assert "PERMISSION_DENIED" in world.store.release("v1.1.0")[0].error


def test_a_permanent_error_outside_a_guarded_step_still_ends_the_release_and_frees_the_lease():
    from shared.errors import NotFound

    world = World()
    world.built("v1.0.0")

    def service_gone(service):
        raise NotFound(f"Cloud Run service {service} not found")

    world.run.service = service_gone
    assert drive(world, "v1.0.0") == "failed"
    assert "not found" in world.store.release("v1.0.0")[0].error
    assert world.store.lease() is None


def test_a_candidate_refusing_its_tag_urls_host_ends_the_smoke_test_at_its_first_answer():
    world = World()
    world.config = world.services.config = world.config.replace(deploy={"smoke_timeout_seconds": 60.0})
    world.built("v1.0.0")
    bare = b"<!doctype html><title>Bad Request (400)</title>"
    world.http.request = lambda url, **_: (world.http.requests.append(url), HttpAnswer(400, bare, {}, 1.0))[1]
    drive(world, "v1.0.0")
    assert world.state("v1.0.0") == "failed" and "ALLOWED_HOSTS" in world.store.release("v1.0.0")[0].error
    assert len(world.http.requests) == 1  # probing again cannot change a host refusal
