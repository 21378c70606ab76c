"""A tag pushed again: a moved tag is refused loudly; a release that failed before traffic moved is retried as a
fresh attempt whose names never meet the failed one's."""
from __future__ import annotations

import hashlib
import hmac
import json

from functions import deploy_on_tag
from functions.deploy_progress.pipeline import Pipeline
from shared.log import logger
from shared.release import revision_name, sanitise
from tests.service.fakes import World

A, B = "a" * 40, "b" * 40
API = "botbalance-api"


def push(world: World, tag: str, commit: str, delivery: str):
    body = json.dumps({"ref": f"refs/tags/{tag}", "after": commit, "head_commit": {"id": commit},
                       "repository": {"full_name": world.config.github.repository}, "pusher": {"name": "alice"}}).encode()
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery, "Content-Type": "application/json",
               "X-Hub-Signature-256": "sha256=" + hmac.new(b"secret", body, hashlib.sha256).hexdigest()}
    return deploy_on_tag.handle(world.services, headers, body, logger)


def fail_before_traffic(world: World, tag: str) -> None:
    now = world.clock()
    world.store.update_release(tag, lambda r: r.but(build_id=f"b-{tag}").move("failed", now, error="build failure"))


def test_a_tag_moved_after_its_release_is_refused_naming_both_commits_and_nothing_is_built():
    world = World()
    assert push(world, "v1.4.0", A, "d1").status == 202
    world.store.update_release("v1.4.0", lambda r: r.but(build_id="b-v1.4.0"))
    answer = push(world, "v1.4.0", B, "d2")
    assert answer.status == 409 and answer.body["released_commit"] == A and answer.body["pushed_commit"] == B
    assert len(world.builds.submitted) == 1
    [told] = [text for text, _ in world.notifier.posts if "never moved" in text]
    assert A[:12] in told and B[:12] in told
    assert world.store.release("v1.4.0")[0].commit == A


def test_a_release_that_failed_before_traffic_moved_is_retried_as_attempt_two_with_its_own_build():
    world = World()
    push(world, "v1.4.0", A, "d1")
    fail_before_traffic(world, "v1.4.0")
    answer = push(world, "v1.4.0", A, "d1")  # "redeliver the webhook to try again"
    assert answer.status == 202 and answer.body["build_id"] == "b-v1.4.0-2"
    release = world.store.release("v1.4.0")[0]
    assert release.attempt == 2 and release.state == "building" and release.error == "" and not release.build_id
    assert world.builds.submitted[-1].attempt == 2
    assert world.builds.submitted[-1].frontend_destination.endswith("/frontend/v1.4.0.attempt-2/")
    archived = world.records.read("attempts/v1.4.0/1.json")
    assert archived is not None and archived.data["state"] == "failed"
    assert push(world, "v1.4.0", A, "d1").status in (200, 202)  # a third delivery at once starts nothing more
    assert len(world.builds.submitted) == 2


def test_a_retried_release_deploys_to_names_of_its_own_and_goes_live():
    world = World()
    world.built("v1.4.0")
    first_candidate = f"http://run.test/t/{sanitise('v1.4.0', API)}---"
    world.http.unhealthy.add(first_candidate)  # the first attempt's candidate fails its smoke test
    assert Pipeline(world.services, "v1.4.0", "m1", logger).drive() == "failed"
    assert push(world, "v1.4.0", "c0ffee" + "0" * 34, "d9").status == 202
    release = world.store.release("v1.4.0")[0]
    world.store.update_release("v1.4.0", lambda r: r.but(build_id="b-v1.4.0-2", image="image@v1.4.0-2"))
    prefix = f"{world.config.frontend.releases_prefix}{release.identity}/"
    world.objects.put(world.config.state.bucket, prefix + "index.html", b"<html>attempt 2</html>")
    assert Pipeline(world.services, "v1.4.0", "m2", logger).drive() == "live"
    serving = world.run.serving(API)
    assert serving == revision_name(API, "v1.4.0.attempt-2") != revision_name(API, "v1.4.0")
    assert world.objects.live(world.config.frontend.bucket)["index.html"] == world.objects.live(
        world.config.state.bucket)[prefix + "index.html"]
