"""The gates applied (shared/gates.py) with recording fakes: a tag held, the newest kept, let go by the tick, a
pause after a rollback, a person's override, a corrupt gates record that holds nothing."""
from __future__ import annotations

import hashlib
import hmac
import json

from functions import deploy_on_tag, health_watchdog, rollback
from functions.deploy_progress.pipeline import Pipeline
from shared import gates
from shared.log import logger
from tests.service.fakes import World

SHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
NOW_IS_THURSDAY = "Thu 00:00 - Thu 01:00 UTC: release train"  # World's clock starts at 1000 s: Thursday 00:16 UTC


def world(**gates_config) -> World:
    made = World()
    made.config = made.config.replace(gates=gates_config)
    made.services.config = made.config
    return made


def push(made: World, tag: str, delivery: str = "d1"):
    body = json.dumps({"ref": f"refs/tags/{tag}", "after": SHA, "head_commit": {"id": SHA},
                       "repository": {"full_name": made.config.github.repository}, "pusher": {"name": "alice"}}).encode()
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery, "Content-Type": "application/json",
               "X-Hub-Signature-256": "sha256=" + hmac.new(b"secret", body, hashlib.sha256).hexdigest()}
    return deploy_on_tag.handle(made.services, headers, body, logger)


def tick(made: World) -> None:
    health_watchdog.handle(made.services, b"{}", {}, f"tick-{made.now}", logger)


def said(made: World, text: str) -> list[str]:
    return [posted for posted, _ in made.notifier.posts if text in posted]


def test_a_tag_pushed_in_a_freeze_is_held_builds_nothing_and_the_newest_starts_when_the_window_ends():
    made = world(freeze=[NOW_IS_THURSDAY])
    first, again, newer = push(made, "v1.4.0"), push(made, "v1.4.0", "d2"), push(made, "v1.4.1", "d3")
    assert [a.body["status"] for a in (first, again, newer)] == ["held", "held", "held"]
    assert made.builds.submitted == [] and made.store.release("v1.4.0") is None
    assert len(said(made, "*v1.4.0* is held")) == 1  # the redelivery said nothing more
    assert said(made, "It takes the place of v1.4.0")
    tick(made)  # still inside the window
    assert made.builds.submitted == []
    made.now = 3600.0 + 60  # Thursday 01:01 UTC
    tick(made)
    tick(made)
    assert [request.tag for request in made.builds.submitted] == ["v1.4.1"]
    assert made.store.release("v1.4.0") is None and made.store.release("v1.4.1") is not None
    assert len(said(made, "*v1.4.1* let go: starting")) == 1


def test_a_person_may_let_a_held_tag_go_inside_a_freeze_and_the_log_names_them():
    made = world(freeze=[NOW_IS_THURSDAY])
    push(made, "v1.4.0")
    answer = gates.let_go(made.services, logger, by="dana", reason="hotfix for the checkout")
    assert answer is not None and answer.body["status"] == "started"
    assert said(made, "*v1.4.0* let go by dana (hotfix for the checkout): starting")
    assert gates.let_go(made.services, logger, by="erin", reason="again") is None  # nothing is held any more


def test_a_rollback_pauses_deploys_until_someone_resumes_and_the_held_tag_then_starts():
    made = world(pause_after_rollback=True)
    for tag in ("v1.0.0", "v1.1.0"):
        made.built(tag)
        assert Pipeline(made.services, tag, f"m-{tag}", logger).drive() == "live"
    request = json.dumps({"to": "previous", "from": "v1.1.0", "reason": "5xx", "requested_by": "dana"}).encode()
    assert rollback.handle(made.services, request, {}, "r1", logger) == "rolled back v1.1.0 -> v1.0.0"
    assert said(made, "Deploys paused by the rollback of v1.1.0")
    submitted = len(made.builds.submitted)
    assert push(made, "v1.1.1").body["status"] == "held"
    tick(made)
    assert len(made.builds.submitted) == submitted  # a tick never ends a pause
    answer = gates.resume(made.services, "dana", logger)
    assert answer is not None and answer.body["status"] == "started"
    assert made.builds.submitted[-1].tag == "v1.1.1" and said(made, "Deploys resumed by dana")


def test_a_corrupt_gates_record_is_told_once_and_holds_nothing():
    made = world(pause_after_rollback=True)
    made.records.objects["gates.json"] = ({"paused": "forever"}, 7)  # type: ignore[assignment]
    assert push(made, "v1.4.0").body["status"] == "started"
    assert push(made, "v1.4.1", "d2").body["status"] == "started"
    assert len(said(made, "corrupt record")) == 1


def test_a_redelivery_of_a_released_tag_during_a_freeze_is_the_duplicate_it_always_was_not_a_hold():
    made = world()
    assert push(made, "v1.4.0").body["status"] == "started"
    made.config = made.config.replace(gates={"freeze": [NOW_IS_THURSDAY]})
    made.services.config = made.config
    assert push(made, "v1.4.0", "d2").body["status"] == "duplicate"
    assert not said(made, "is held")
