"""What the reliability harness found, one regression test per fix, on recording fakes of our own ports.

Each test names the scenario of the matrix (`tools/reliability/matrix.py`) that first showed the fault.
"""
from __future__ import annotations

import json

import pytest

from functions.deploy_progress.pipeline import Pipeline
from functions.rollback import Rollback
from shared.errors import LeaseHeld, PermanentError, TransientError
from shared.log import logger
from shared.rollback_request import RollbackRequest
from tests.reliability.test_fuzz import FakeBuilds, fuzzed
from tests.service.fakes import World
from shared.release import revision_name

API, WORKER = "botbalance-api", "botbalance-worker"


def drive(world: World, tag: str, message: str = "m1") -> str:
    return Pipeline(world.services, tag, message, logger).drive()


def live_world(*tags: str) -> World:
    world = World()
    for tag in tags:
        world.built(tag)
        assert drive(world, tag, f"m-{tag}") == "live"
    return world


# -- deploy/* with duplicates: two copies of one message delivered at once ------------------------------------------
def test_two_copies_of_one_message_never_run_a_step_together():
    """Every deploy scenario: a build message delivered twice at once ran the migration twice, and a copy still in
    its verify step restored the previous unit after the other copy had made the release live."""
    world = World()
    world.built("v1.0.0")
    first = Pipeline(world.services, "v1.0.0", "m1", logger)
    assert world.store.try_lease("v1.0.0", first.owner, world.now, 900) == "take"  # the first copy, mid-step
    with pytest.raises(LeaseHeld):
        drive(world, "v1.0.0", "m1")  # the second copy of the same message
    assert world.run.executions == []


def test_an_attempt_that_fails_mid_step_lets_the_redelivery_of_its_message_resume_at_once():
    world = World()
    world.built("v1.0.0")
    original = world.run.start_migration
    calls = {"n": 0}

    def unavailable_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise TransientError("starting migration job: 503 UNAVAILABLE")
        return original(*args, **kwargs)

    world.run.start_migration = unavailable_once
    with pytest.raises(TransientError):
        drive(world, "v1.0.0", "m1")
    assert drive(world, "v1.0.0", "m1") == "live"  # the redelivery: no LeaseHeld until the lease expires
    assert len(world.run.executions) == 1


# -- rollback/* with duplicates --------------------------------------------------------------------------------------
def test_two_copies_of_one_rollback_request_act_once_and_the_late_copy_says_nothing():
    world = live_world("v1.0.0", "v1.1.0")
    request = RollbackRequest("previous", "v1.1.0", "pager", "ivy")
    first = Rollback(world.services, request, "r1", logger)
    assert first.run().startswith("rolled back")
    posts = len(world.notifier.posts)
    sets = len([c for c in world.run.calls if c[0] == "set_traffic"])
    assert Rollback(world.services, request, "r1", logger).run() == "duplicate delivery"
    assert len(world.notifier.posts) == posts
    assert len([c for c in world.run.calls if c[0] == "set_traffic"]) == sets
    assert world.run.serving(API) == revision_name(API, "v1.0.0")


def test_a_copy_of_a_rollback_request_does_not_share_the_lease_with_the_copy_running():
    world = live_world("v1.0.0", "v1.1.0")
    request = RollbackRequest("previous", "v1.1.0", "pager", "ivy")
    running = Rollback(world.services, request, "r1", logger)
    assert world.store.take_rollback_lease(running.owner, world.now, 300)[0] == "take"
    second = Rollback(world.services, request, "r1", logger)
    assert world.store.take_rollback_lease(second.owner, world.now, 300)[0] == "busy"


def test_a_rollback_that_fails_transiently_gives_the_lease_to_its_redelivery():
    world = live_world("v1.0.0", "v1.1.0")
    request = RollbackRequest("previous", "v1.1.0", "pager", "ivy")
    original = world.run.set_traffic
    calls = {"n": 0}

    def unavailable_once(service, targets):
        calls["n"] += 1
        if calls["n"] == 1:
            raise TransientError("setting traffic: 503 UNAVAILABLE")
        return original(service, targets)

    world.run.set_traffic = unavailable_once
    with pytest.raises(TransientError):
        Rollback(world.services, request, "r1", logger).run()
    assert Rollback(world.services, request, "r1", logger).run().startswith("rolled back")
    assert world.run.serving(API) == revision_name(API, "v1.0.0") and world.run.serving(WORKER) == revision_name(WORKER, "v1.0.0")


# -- deploy/api-traffic x crash --------------------------------------------------------------------------------------
def _crash_after_api_traffic(world: World) -> None:
    original = world.run.set_traffic
    state = {"crashed": False}

    def moved_then_crashed(service, targets):
        result = original(service, targets)
        if service == API and not state["crashed"] and targets[0].revision == revision_name(API, "v1.1.0"):
            state["crashed"] = True
            raise TransientError("setting traffic of botbalance-api: 503 UNAVAILABLE (after its effect)")
        return result

    world.run.set_traffic = moved_then_crashed


def test_traffic_moved_but_never_recorded_is_found_on_the_cloud_and_the_release_goes_live():
    world = live_world("v1.0.0")
    world.built("v1.1.0")
    _crash_after_api_traffic(world)
    with pytest.raises(TransientError):
        drive(world, "v1.1.0", "m1")
    assert drive(world, "v1.1.0", "m1") == "live"
    assert world.run.serving(API) == revision_name(API, "v1.1.0") and world.run.serving(WORKER) == revision_name(WORKER, "v1.1.0")


def test_a_restore_puts_back_traffic_the_cloud_serves_even_when_its_move_was_never_recorded():
    world = live_world("v1.0.0")
    world.built("v1.1.0")
    _crash_after_api_traffic(world)
    with pytest.raises(TransientError):
        drive(world, "v1.1.0", "m1")
    original = world.run.deploy_revision

    def worker_refused(service, *args, **kwargs):
        if service == WORKER:
            raise PermanentError("botbalance-worker: 403 PERMISSION_DENIED")
        return original(service, *args, **kwargs)

    world.run.deploy_revision = worker_refused
    world.run.set_traffic = World().run.__class__.set_traffic.__get__(world.run)  # no more crashes
    release = world.store.release("v1.1.0")[0]
    pipeline = Pipeline(world.services, "v1.1.0", "m2", logger)
    world.store.try_lease("v1.1.0", pipeline.owner, world.now, 900)
    pipeline._restore(release)  # the record says nothing moved; the cloud says the API did
    assert world.run.serving(API) == revision_name(API, "v1.0.0")


# -- race/rollback during a deploy -----------------------------------------------------------------------------------
def test_a_deploy_failing_after_a_rollback_took_over_does_not_restore_over_the_rollback():
    world = live_world("v1.0.0", "v1.1.0")
    world.built("v1.2.0")
    original = world.run.deploy_revision

    def rollback_then_refuse(service, *args, **kwargs):
        if service == WORKER:  # the API moved; now a rollback arrives and sets the unit, and the worker fails
            Rollback(world.services, RollbackRequest("previous", "v1.1.0", "pager", "ivy"), "r1", logger).run()
            raise PermanentError("botbalance-worker: 403 PERMISSION_DENIED")
        return original(service, *args, **kwargs)

    world.run.deploy_revision = rollback_then_refuse
    drive(world, "v1.2.0", "m1")
    assert world.run.serving(API) == revision_name(API, "v1.0.0") and world.run.serving(WORKER) == revision_name(WORKER, "v1.0.0")
    assert world.state("v1.2.0") == "failed" and world.state("v1.1.0") == "rolled_back"
    assert world.store.pointer().live == "v1.0.0"


# -- deploy/build x crash, x transient -------------------------------------------------------------------------------
class LosingBuilds(FakeBuilds):
    """Cloud Build whose first answer is lost after the build was made (or, with `before`, before it was)."""

    def __init__(self, *, before: bool = False) -> None:
        super().__init__()
        self.before = before
        self.failures = 1
        self.made: list[tuple[str, str]] = []

    def submit(self, request):
        if self.failures and self.before:
            self.failures -= 1
            raise TransientError("submitting the build: 503 UNAVAILABLE")
        build_id, url = super().submit(request)
        self.made.append((request.tag, request.commit))
        if self.failures:
            self.failures -= 1
            raise TransientError("submitting the build: 503 UNAVAILABLE (after its effect)")
        return build_id, url

    def find(self, tag, commit, attempt=1):
        for index, made in enumerate(self.made):
            if made == (tag, commit):
                return f"build-{index + 1}", "https://console.cloud.google.com/cloud-build/builds/x"
        return None


def _deliver(case, payload: dict, delivery: str) -> int:
    import hashlib
    import hmac

    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(b"secret", body, hashlib.sha256).hexdigest()
    return case.client.post("/", data=body, headers={
        "X-GitHub-Event": "push", "X-GitHub-Delivery": delivery, "Content-Type": "application/json",
        "X-Hub-Signature-256": signature}).status_code


def _tag_push(tag: str) -> dict:
    from tests.reliability.test_fuzz import tag_push

    return tag_push(tag, "b" * 40)


@pytest.mark.parametrize("before", [False, True], ids=["the answer lost after the build was made", "refused before"])
def test_a_redelivered_webhook_after_a_failed_submission_makes_exactly_one_build_and_the_failure_is_told(before):
    case = fuzzed("deploy_on_tag")
    builds = LosingBuilds(before=before)
    case.world.services.overrides["builds"] = builds
    case.world.services.__dict__.pop("builds", None)
    assert _deliver(case, _tag_push("v2.0.0"), "d-1") == 503
    assert any(":x:" in text and "v2.0.0" in text for text, _ in case.world.notifier.posts)
    assert _deliver(case, _tag_push("v2.0.0"), "d-1") == 202  # the person redelivers from GitHub's page
    assert _deliver(case, _tag_push("v2.0.0"), "d-1") in (200, 202)
    assert len(builds.made) == 1


def test_two_redeliveries_at_once_repair_a_release_only_once():
    from concurrent.futures import ThreadPoolExecutor

    case = fuzzed("deploy_on_tag")
    builds = LosingBuilds(before=True)
    case.world.services.overrides["builds"] = builds
    case.world.services.__dict__.pop("builds", None)
    assert _deliver(case, _tag_push("v2.0.0"), "d-1") == 503
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(lambda _: _deliver(case, _tag_push("v2.0.0"), "d-1"), range(4)))
    assert all(status in (200, 202) for status in statuses)
    assert len(builds.made) == 1


# -- hostile input: not an event at all ------------------------------------------------------------------------------
@pytest.mark.parametrize("body", [b"[1, 2]", b"\x80", b"42", b'"text"'], ids=["a JSON array", "not UTF-8", "a number", "a string"])
@pytest.mark.parametrize("target", ["deploy_progress", "health_watchdog", "rollback"])
def test_a_body_that_is_neither_a_cloud_event_nor_a_push_is_a_400_with_a_reason(target, body):
    case = fuzzed(target)
    before = case.effects()
    response = case.client.post("/", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.data[:200]
    assert "expected a CloudEvent" in response.get_data(as_text=True) or response.data
    assert case.effects() == before


# -- deploy/record x crash -------------------------------------------------------------------------------------------
def test_a_release_record_whose_create_answer_was_lost_is_recognised_as_ours_and_the_build_is_submitted():
    """The storage client retries a create-if-absent whose answer was lost (a 503 after the write landed) and meets
    its own object (412): the webhook took it for another delivery's and answered "already starting", forever."""
    from shared.errors import PreconditionFailed

    case = fuzzed("deploy_on_tag")
    records = case.world.records
    original = records.create
    lost = {"once": True}

    def landed_then_412(name, data):
        if lost["once"] and name.startswith("releases/"):
            lost["once"] = False
            original(name, data)
            raise PreconditionFailed(f"{name}: generation 0 does not match (the retry met the first write)")
        return original(name, data)

    records.create = landed_then_412
    assert _deliver(case, _tag_push("v2.0.0"), "d-1") == 202
    assert len(case.builds.submitted) == 1


# -- rollback/frontend x permanent -----------------------------------------------------------------------------------
def test_a_rollback_failing_after_part_of_the_unit_moved_is_told_and_retried_until_whole():
    """A permanent error re-publishing the frontend, after API and worker had moved back, was acknowledged: API and
    worker on the old release, the frontend and the live pointer on the bad one, and nobody told."""
    world = live_world("v1.0.0", "v1.1.0")
    request = RollbackRequest("previous", "v1.1.0", "pager", "ivy")
    original = world.objects.copy
    refused = {"once": True}

    def refused_once(source_bucket, source, bucket, name, **kwargs):
        if refused["once"] and bucket == world.config.frontend.bucket:
            refused["once"] = False
            raise PermanentError(f"copying {source} to gs://{bucket}/{name}: 403 Forbidden")
        return original(source_bucket, source, bucket, name, **kwargs)

    world.objects.copy = refused_once
    with pytest.raises(TransientError):
        Rollback(world.services, request, "r1", logger).run()
    assert [text for text, _ in world.notifier.posts if text.startswith(":x: Rollback failed")]
    assert Rollback(world.services, request, "r1", logger).run().startswith("rolled back")  # the redelivery
    assert world.store.pointer().live == "v1.0.0" and world.state("v1.1.0") == "rolled_back"
    live = world.objects.live(world.config.frontend.bucket)
    assert live["index.html"] == world.objects.live(world.config.state.bucket)["frontend/v1.0.0/index.html"]


def test_a_rollback_whose_lease_cannot_be_taken_is_told_and_changes_nothing():
    """rollback/lease x permanent: the lease write refused (403) was acknowledged, and nobody heard of the request."""
    world = live_world("v1.0.0", "v1.1.0")
    request = RollbackRequest("previous", "v1.1.0", "pager", "ivy")
    original = world.records.swap

    def refused(name, data, generation):
        if name == "lease.json":
            raise PermanentError("writing lease.json: 403 Forbidden")
        return original(name, data, generation)

    world.records.swap = refused
    with pytest.raises(PermanentError):
        Rollback(world.services, request, "r1", logger).run()
    assert [text for text, _ in world.notifier.posts if "nothing was changed" in text]
    assert world.run.serving(API) == revision_name(API, "v1.1.0") and world.store.pointer().live == "v1.1.0"


def test_a_rollback_refused_on_its_first_traffic_change_is_told_and_retried_not_dropped():
    """rollback/worker-traffic x permanent-while: the retry of a half-applied rollback met a 403 on the API (already
    moved back by the first attempt), took it for "nothing changed" and acknowledged it: API and worker split."""
    world = live_world("v1.0.0", "v1.1.0")
    request = RollbackRequest("previous", "v1.1.0", "pager", "ivy")
    original = world.run.set_traffic
    refusals = {"left": 2}

    def refused_twice(service, targets):
        if refusals["left"] and (service == WORKER or refusals["left"] == 1):
            refusals["left"] -= 1
            raise PermanentError(f"setting traffic of {service}: 403 PERMISSION_DENIED")
        return original(service, targets)

    world.run.set_traffic = refused_twice
    for _ in range(2):  # the worker refused, then the API refused on the retry
        with pytest.raises(TransientError):
            Rollback(world.services, request, "r1", logger).run()
    assert Rollback(world.services, request, "r1", logger).run().startswith("rolled back")
    assert world.run.serving(API) == revision_name(API, "v1.0.0") and world.run.serving(WORKER) == revision_name(WORKER, "v1.0.0")
    assert len([text for text, _ in world.notifier.posts if text.startswith(":x: Rollback failed")]) == 1


# -- rollback/lease x permanent-while: a permanent error after going live --------------------------------------------
def test_a_permanent_error_giving_the_lease_back_after_going_live_never_restores_the_live_release():
    """Ending the lease of a release that had just gone live failed (403): the deploy took it for a failed deploy,
    restored the previous release's traffic under a record and pointer that said the new one was live."""
    world = live_world("v1.0.0")
    world.built("v1.1.0")
    original = world.records.swap
    refused = {"once": True}

    def refused_after_live(name, data, generation):
        if name == "lease.json" and refused["once"] and world.state("v1.1.0") == "live":
            refused["once"] = False
            raise PermanentError("writing lease.json: 403 Forbidden")
        return original(name, data, generation)

    world.records.swap = refused_after_live
    with pytest.raises(TransientError):
        drive(world, "v1.1.0", "m1")
    assert world.run.serving(API) == revision_name(API, "v1.1.0") and world.run.serving(WORKER) == revision_name(WORKER, "v1.1.0")
    assert drive(world, "v1.1.0", "m1").startswith("nothing to do")  # the redelivery gives the lease back
    assert world.store.lease() is None


# -- rollback/mark x permanent ---------------------------------------------------------------------------------------
def test_a_rollback_whose_last_record_fails_is_finished_by_its_retry():
    """The live pointer moved, then marking the bad release failed: the retry found its `from` no longer live and
    refused, leaving the bad release marked live for good. The pointer now moves last."""
    world = live_world("v1.0.0", "v1.1.0")
    request = RollbackRequest("previous", "v1.1.0", "pager", "ivy")
    records = world.records
    original = records.swap
    refused = {"once": True}

    def refused_once(name, data, generation):
        if refused["once"] and name in ("releases/v1.1.0.json", "pointer.json"):
            refused["once"] = False
            raise PermanentError(f"writing {name}: 403 Forbidden")
        return original(name, data, generation)

    records.swap = refused_once
    with pytest.raises(TransientError):
        Rollback(world.services, request, "r1", logger).run()
    assert Rollback(world.services, request, "r1", logger).run().startswith("rolled back")
    assert world.store.pointer().live == "v1.0.0" and world.state("v1.1.0") == "rolled_back"


# -- deploy/* x lease-expiry -----------------------------------------------------------------------------------------
def _expire_lease_during_candidate_deploy(world: World, then=None) -> None:
    original = world.run.deploy_revision
    once = {"left": 1}

    def deploy_then_expire(service, *args, **kwargs):
        state = original(service, *args, **kwargs)
        if service == API and once["left"]:
            once["left"] -= 1
            lease = world.store.lease()
            world.records.swap("lease.json", {**lease.to_dict(), "expires": world.now - 1}, world.records.read("lease.json").generation)
            if then is not None:
                then()
        return state

    world.run.deploy_revision = deploy_then_expire


def test_a_lease_that_expired_mid_step_with_nobody_taking_it_is_renewed_and_the_release_goes_live():
    world = live_world("v1.0.0")
    world.built("v1.1.0")
    _expire_lease_during_candidate_deploy(world)
    assert drive(world, "v1.1.0", "m1") == "live"
    assert world.run.serving(API) == revision_name(API, "v1.1.0")


def test_a_lease_that_expired_mid_step_and_was_taken_by_another_attempt_is_handed_over_not_failed():
    world = live_world("v1.0.0")
    world.built("v1.1.0")
    _expire_lease_during_candidate_deploy(
        world, then=lambda: world.store.try_lease("v1.1.0", "m2~other", world.now, 900))
    assert drive(world, "v1.1.0", "m1") == "handed over"
    assert world.state("v1.1.0") == "deploying"  # the other attempt goes on from the record
    world.store.pause_lease("v1.1.0", "m2~other", world.now, 900)
    assert drive(world, "v1.1.0", "m3") == "live"


# -- the adapter behind the repair: finding a build whose submission answer was lost -------------------------------
def test_the_cloud_build_adapter_finds_the_build_already_submitted_for_a_tag_and_commit(monkeypatch):
    from concurrent import futures

    import grpc

    from localcloud.fake_build import FakeCloudBuild
    from localcloud.operations import OperationStore
    from localcloud.scenario import Scenario
    from shared import clients
    from shared.adapters.cloudbuild import BuildRequest, GoogleBuilds

    scenario = Scenario(latency={"build": 5.0})
    fake = FakeCloudBuild(scenario, OperationStore(scenario), project="botbalance-prod", publish=lambda data, attrs: None)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    for handler in (*fake.handlers(), *fake.operations.handlers()):
        server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    monkeypatch.setenv("TAGSHIP_GRPC_ENDPOINT", f"127.0.0.1:{port}")
    clients.reset()
    try:
        builds = GoogleBuilds("botbalance-prod")
        request = BuildRequest("v2.0.0", "c" * 40, "botbalance/botbalance", "asia-docker.pkg.dev/p/r/api", "frontend",
                               "gs://state/frontend/v2.0.0/", 600)
        build_id, _ = builds.submit(request)
        assert builds.find("v2.0.0", "c" * 40)[0] == build_id
        assert builds.find("v2.0.0", "d" * 40) is None and builds.find("v2.0.1", "c" * 40) is None
    finally:
        clients.reset()
        fake.close()
        server.stop(grace=None)


# -- race/rollback during a deploy: the stopped release's failure in the logs ----------------------------------------
def test_a_deploy_stopped_by_a_rollback_is_logged_under_its_own_tag():
    """The rollback marked the displaced deploy failed, and only the rollback's own lines (tagged with the release
    it rolled back from) said so: a filter on the stopped release's tag showed no failure at all."""
    import io

    from shared import log

    world = live_world("v1.0.0", "v1.1.0")
    world.built("v1.2.0")
    world.store.try_lease("v1.2.0", "m1~running", world.now, 900)  # v1.2.0 mid-deploy
    world.store.update_release("v1.2.0", lambda r: r.move("migrating", world.now).move("deploying", world.now))
    stream = io.StringIO()
    log.set_stream(stream)
    try:
        Rollback(world.services, RollbackRequest("previous", "v1.1.0", "pager", "ivy"), "r1", logger).run()
    finally:
        log.set_stream(None)
    assert world.state("v1.2.0") == "failed"
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert any(line["severity"] == "WARNING" and line.get("logging.googleapis.com/labels", {}).get("tag") == "v1.2.0"
               for line in lines)
