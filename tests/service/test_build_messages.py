"""A Cloud Build message is a hint: only the release's own build, as Cloud Build answers for it, moves a release."""
from __future__ import annotations

import json

from functions.deploy_progress import handle
from shared.build_message import BuildStatus
from shared.log import logger
from shared.release import BUILDING, new_release
from tests.service.fakes import World

COMMIT = "c" * 40
DIGEST = "sha256:" + "d" * 64


def building(world: World, tag: str = "v1.0.0", build_id: str = "b-1") -> None:
    world.store.create_release(new_release(tag, COMMIT, "alice", f"d-{tag}", world.clock()).but(build_id=build_id))


def answer(world: World, build_id: str, *, status: str = "SUCCESS", image: str = "", tag: str = "v1.0.0") -> None:
    image = image or world.config.build.image
    world.builds.answers[build_id] = BuildStatus(build_id, status, tag, COMMIT, "https://log", DIGEST,
                                                 f"{image}@{DIGEST}", "", ((f"{image}:{tag}", DIGEST),))


def message(build_id: str, status: str, *, tag: str = "v1.0.0", image: str = "evil.example/x/api") -> tuple[bytes, dict]:
    """What anyone allowed to publish on cloud-builds could send."""
    payload = {"id": build_id, "status": status, "substitutions": {"_TAG": tag, "_COMMIT": COMMIT},
               "results": {"images": [{"name": f"{image}:{tag}", "digest": "sha256:" + "e" * 64}]}}
    return json.dumps(payload).encode(), {"buildId": build_id, "status": status}


def test_a_success_message_for_a_build_the_release_did_not_submit_deploys_nothing():
    world = World()
    building(world)
    answer(world, "b-forged")
    data, attributes = message("b-forged", "SUCCESS")
    assert handle(world.services, data, attributes, "m1", logger) == "not ours"
    assert world.state("v1.0.0") == BUILDING and world.run.executions == []
    assert world.builds.reads == []  # not even looked up


def test_a_success_message_for_the_releases_build_deploys_what_cloud_build_answers_not_what_it_says():
    world = World()
    building(world)
    answer(world, "b-1")
    data, attributes = message("b-1", "SUCCESS")  # claims an image elsewhere
    handle(world.services, data, attributes, "m1", logger)
    image = world.store.release("v1.0.0")[0].image
    assert image == f"{world.config.build.image}@{DIGEST}"
    assert [e["image"] for e in world.run.executions] == [image]  # the migration runs on the digest read back


def test_the_releases_build_reporting_an_image_outside_build_image_is_not_believed():
    world = World()
    building(world)
    answer(world, "b-1", image="evil.example/x/api")
    data, attributes = message("b-1", "SUCCESS")
    assert handle(world.services, data, attributes, "m1", logger) == "not believed"
    assert world.state("v1.0.0") == BUILDING and world.run.executions == []


def test_a_failure_message_is_believed_only_when_cloud_build_says_the_build_failed():
    world = World()
    building(world)
    answer(world, "b-1", status="WORKING")
    data, attributes = message("b-1", "FAILURE")
    handle(world.services, data, attributes, "m1", logger)
    assert world.state("v1.0.0") == BUILDING
