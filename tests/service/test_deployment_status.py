"""Each release's GitHub deployment against a recording fake of the Deployments port: one deployment per release
whose statuses follow it, and GitHub down or refusing never holding a deploy or a rollback."""
from __future__ import annotations

import io
import json

from functions import rollback
from functions.deploy_progress.pipeline import Pipeline
from shared import log
from shared.log import logger
from tests.service.fakes import World


def drive(world: World, tag: str, owner: str = "m1") -> str:
    return Pipeline(world.services, tag, owner, logger).drive()


def logged(action) -> list[dict]:
    stream = io.StringIO()
    log.set_stream(stream)
    try:
        action()
    finally:
        log.set_stream(None)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_release_that_goes_live_is_one_deployment_queued_then_in_progress_then_success():
    world = World(github=True)
    world.built("v1.0.0")
    assert drive(world, "v1.0.0") == "live"
    [(number, deployment)] = world.deployments.deployments.items()
    assert (deployment["ref"], deployment["environment"], deployment["payload"]) == (
        "v1.0.0", "production", {"tagship": "v1.0.0"})
    assert world.deployments.states(number) == ["queued", "in_progress", "success"]
    success = deployment["statuses"][-1]
    assert success["environment_url"] == world.config.frontend.url
    assert success["description"] == "v1.0.0 live"
    record = world.store.release("v1.0.0")[0]
    assert (record.github_deployment, record.github_status) == (number, "success")


def test_a_failed_release_ends_its_deployment_as_a_failure_saying_why():
    world = World(github=True)
    world.run.migration_outcome = "fail"
    world.built("v1.0.0")
    drive(world, "v1.0.0")
    assert world.deployments.states() == ["queued", "in_progress", "failure"]
    assert world.deployments.deployments[1]["statuses"][-1]["description"].startswith("v1.0.0 failed: ")


def test_a_rolled_back_release_goes_inactive_and_its_deployment_is_the_same_one():
    world = World(github=True)
    for tag in ("v1.0.0", "v1.1.0"):
        world.built(tag)
        assert drive(world, tag, f"m-{tag}") == "live"
    body = {"to": "previous", "from": "v1.1.0", "reason": "checkout broken", "requested_by": "dana"}
    rollback.handle(world.services, json.dumps(body).encode(), {}, "r1", logger)
    assert world.store.pointer().live == "v1.0.0"
    assert [d["ref"] for d in world.deployments.deployments.values()] == ["v1.0.0", "v1.1.0"]
    assert world.deployments.states(2) == ["queued", "in_progress", "success", "inactive"]
    # GitHub made v1.0.0 inactive when v1.1.0 succeeded (auto_inactive); serving again, it is a success again
    assert world.deployments.states(1) == ["queued", "in_progress", "success", "success"]
    assert world.store.release("v1.0.0")[0].github_status == "success"


def test_a_redelivered_drive_makes_no_second_deployment_and_posts_nothing_twice():
    world = World(github=True)
    world.built("v1.0.0")
    drive(world, "v1.0.0")
    assert drive(world, "v1.0.0", "m2") == "nothing to do: live"
    assert len(world.deployments.deployments) == 1
    assert world.deployments.states() == ["queued", "in_progress", "success"]


def test_a_record_that_lost_its_deployment_id_finds_the_deployment_again_by_its_marker():
    world = World(github=True)
    world.built("v1.0.0")
    world.services.deployment_status.follow(world.store.release("v1.0.0")[0])
    world.store.update_release("v1.0.0", lambda r: r.but(github_deployment=None, github_status=""))
    drive(world, "v1.0.0")
    assert len(world.deployments.deployments) == 1
    assert world.store.release("v1.0.0")[0].github_deployment == 1
    assert world.deployments.states()[-1] == "success"


def test_github_down_never_holds_the_deploy_and_is_logged_without_a_traceback():
    world = World(github=True)
    world.deployments.down = True
    world.built("v1.0.0")
    lines = logged(lambda: drive(world, "v1.0.0"))
    assert world.state("v1.0.0") == "live"
    assert world.deployments.deployments == {}
    failed = [line for line in lines if line["message"].startswith("GitHub deployment status not set")]
    assert len(failed) == 1 and "ConnectionError" in failed[0]["error"]
    assert world.deployments.calls == 1  # the first failure quiets GitHub for a minute: one timeout, not one a step


def test_github_refusing_is_logged_once_with_what_to_fix_and_the_rollback_still_happens():
    world = World(github=True)
    world.deployments.refusing = ("GitHub answered 401 to create the deployment on botbalance/botbalance: Bad "
                                  "credentials; GitHub refused the credentials: check GITHUB_TOKEN")

    def deploy_twice_and_roll_back() -> None:
        for tag in ("v1.0.0", "v1.1.0"):
            world.built(tag)
            drive(world, tag, f"m-{tag}")
            world.now += 120  # past the quiet minute: GitHub is asked again, and refuses again
        body = {"to": "previous", "from": "v1.1.0", "reason": "r", "requested_by": "dana"}
        rollback.handle(world.services, json.dumps(body).encode(), {}, "r1", logger)

    lines = logged(deploy_twice_and_roll_back)
    assert world.store.pointer().live == "v1.0.0"
    told = [line for line in lines if line["message"].startswith("GitHub deployment status not set")]
    assert [line["severity"] for line in told][:1] == ["ERROR"] and len(told) >= 2
    assert all(line["severity"] == "WARNING" for line in told[1:])
    assert "check GITHUB_TOKEN" in told[0]["error"]


def test_with_deployments_off_github_is_never_asked_and_the_record_keeps_no_deployment():
    world = World()
    world.built("v1.0.0")
    drive(world, "v1.0.0")
    assert world.deployments.calls == 0
    assert world.store.release("v1.0.0")[0].github_deployment is None


def test_while_another_invocation_makes_the_deployment_none_is_made_and_a_dead_ones_claim_is_taken_over():
    world = World(github=True)
    world.built("v1.0.0")
    claimed_at = world.now
    world.store.update_release("v1.0.0", lambda r: r.but(github_status=f"claim:other:{claimed_at:.3f}"))
    world.services.deployment_status.follow(world.store.release("v1.0.0")[0])
    assert world.deployments.deployments == {}
    world.now += 61  # the claimant never finished: its claim is a dead invocation's
    world.services.deployment_status.follow(world.store.release("v1.0.0")[0])
    assert world.deployments.states() == ["queued", "in_progress"]
    assert world.store.release("v1.0.0")[0].github_deployment == 1


def test_two_invocations_following_one_release_at_once_post_each_status_once():
    world = World(github=True)
    world.built("v1.0.0")
    follow = world.services.deployment_status.follow
    # a second invocation (another build message) follows the release while the first is posting `queued`
    world.deployments.while_posting = lambda: follow(world.store.release("v1.0.0")[0])
    follow(world.store.release("v1.0.0")[0])
    assert world.deployments.states() == ["queued", "in_progress"]
    assert world.store.release("v1.0.0")[0].github_status == "in_progress"
