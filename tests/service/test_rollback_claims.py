"""A rollback request's `trigger` and `requested_by` are claims (Pub/Sub names no publisher): logged as claims, and
the same request rolls back the same way whoever it claims to come from."""
from __future__ import annotations

import io
import json

from functions import rollback
from functions.deploy_progress.pipeline import Pipeline
from shared import log
from shared.log import logger
from tests.service.fakes import World


def live_twice() -> World:
    world = World()
    for tag in ("v1.0.0", "v1.1.0"):
        world.built(tag)
        assert Pipeline(world.services, tag, f"m-{tag}", logger).drive() == "live"
    return world


def roll_back(world: World, body: dict[str, str]) -> list[dict[str, object]]:
    stream = io.StringIO()
    log.set_stream(stream)
    try:
        rollback.handle(world.services, json.dumps(body).encode(), {}, "r1", logger)
    finally:
        log.set_stream(None)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_the_log_says_trigger_and_requester_are_claims():
    lines = roll_back(live_twice(), {"to": "previous", "from": "v1.1.0", "reason": "r", "requested_by": "dana",
                                     "trigger": "watchdog"})
    [done] = [line for line in lines if line.get("message") == "rolled back"]
    labels = done["logging.googleapis.com/labels"]
    assert (labels["claimed_trigger"], labels["claimed_by"]) == ("watchdog", "dana")
    assert "trigger" not in labels and "requested_by" not in done


def test_a_request_claiming_to_be_the_watchdog_is_handled_as_a_person_asking_would_be():
    outcomes = []
    for trigger, by in (("manual", "dana"), ("watchdog", "health_watchdog")):
        world = live_twice()
        roll_back(world, {"to": "previous", "from": "v1.1.0", "reason": "r", "requested_by": by, "trigger": trigger})
        outcomes.append((world.store.pointer().live, world.store.release("v1.1.0")[0].state))
    assert outcomes[0] == outcomes[1] == ("v1.0.0", "rolled_back")
