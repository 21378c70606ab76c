"""Text from outside reaches Slack escaped and cut, and the log bounded: a reason, a name, an error that quotes an
answer, a build log URL, a tag."""
from __future__ import annotations

import io
import json

from functions import rollback
from functions.deploy_progress.pipeline import Pipeline
from shared import log
from shared.core import wording
from shared.log import logger
from shared.release import new_release
from tests.service.fakes import World

HOSTILE = "<!channel> <https://evil.example|click here> & <@U123>"


def live_twice(world: World) -> None:
    for tag in ("v1.0.0", "v1.1.0"):
        world.built(tag)
        assert Pipeline(world.services, tag, f"m-{tag}", logger).drive() == "live"


def test_a_rollback_reason_and_name_reach_slack_escaped_and_a_huge_reason_is_cut_everywhere():
    world = World()
    live_twice(world)
    stream = io.StringIO()
    log.set_stream(stream)
    try:
        request = {"to": "previous", "from": "v1.1.0", "reason": HOSTILE + "x" * 5_000_000, "requested_by": "<!here>"}
        rollback.handle(world.services, json.dumps(request).encode(), {}, "r1", logger)
    finally:
        log.set_stream(None)
    [told] = [text for text, _ in world.notifier.posts if "Rolled back" in text]
    assert "<!channel>" not in told and "<https://evil" not in told and "<!here>" not in told
    assert "&lt;!channel&gt;" in told and "&lt;!here&gt;" in told
    assert len(told) < 1500
    assert max(len(line) for line in stream.getvalue().splitlines()) < 10_000
    assert len(world.store.release("v1.1.0")[0].error) < 700


def test_a_root_message_escapes_the_pusher_the_error_and_refuses_a_forged_build_log_link():
    release = new_release("v1.0.0", "c0ffee", "<!everyone>", "d1", 0.0).but(
        error="Smoke test failed: /api/health answered 500: <https://evil|fix here>",
        log_url="https://console.cloud.google.com/x|forged>")
    text = wording.root(release, 10.0)
    assert "<!everyone>" not in text and "&lt;!everyone&gt;" in text
    assert "<https://evil" not in text and "build log" not in text
    good = wording.root(release.but(log_url="https://console.cloud.google.com/cloud-build/builds/1?project=2&x=1"), 10.0)
    assert "<https://console.cloud.google.com/cloud-build/builds/1?project=2&amp;x=1|build log>" in good


def test_a_corrupt_records_content_reaches_slack_escaped_and_cut():
    """The outside-text fuzzing: a release record whose state read `<!channel>` broadcast to the channel, and a
    watchdog record of a few thousand characters made a post past Slack's 3900."""
    from functions.health_watchdog import handle as tick
    from shared.adapters.monitoring import TrafficFigures
    from shared.adapters.slack import TEXT_LIMIT

    world = World()
    live_twice(world)
    class NoFigures:
        def figures(self, *args: object, **kwargs: object) -> TrafficFigures:
            return TrafficFigures(0, {}, None)

    world.services.overrides["metrics"] = NoFigures()
    name = "releases/v1.1.0.json"
    data, generation = world.records.objects[name]
    world.records.objects[name] = ({**data, "state": "<!channel>"}, generation + 100)
    world.records.objects["watchdog.json"] = ({"status": "<!here>" * 1000}, 500)
    tick(world.services, b"{}", {}, "t1", logger)
    told = [text for text, _ in world.notifier.posts if "corrupt record" in text]
    assert len(told) == 2
    assert all("<!channel>" not in text and "<!here>" not in text and len(text) <= TEXT_LIMIT for text in told)
    assert "&lt;!channel&gt;" in told[0] or "&lt;!channel&gt;" in told[1]


def test_a_watchdog_alert_shows_what_the_probes_were_answered_escaped_and_bounded():
    """The outside-text fuzzing: a health endpoint answering `<!channel>` for a component broadcast to the channel,
    and an answer of a few MB made an alert of as many (and a log line too)."""
    from functions.health_watchdog import handle as tick
    from shared.adapters.monitoring import TrafficFigures
    from shared.ports import HttpAnswer

    class NoFigures:
        def figures(self, *args: object, **kwargs: object) -> TrafficFigures:
            return TrafficFigures(0, {}, None)

    class Answering:
        def request(self, url: str, **kwargs: object) -> HttpAnswer:
            body = json.dumps({"status": "error", "components": {"db": "<!channel> & <@U1>" * 200_000}}).encode()
            return HttpAnswer(503, body, {}, 1.0)

    world = World()
    live_twice(world)
    world.services.overrides.update({"metrics": NoFigures(), "http": Answering()})
    world.services.__dict__.pop("http", None)
    stream = io.StringIO()
    log.set_stream(stream)
    try:
        tick(world.services, b"{}", {}, "t1", logger)
    finally:
        log.set_stream(None)
    [alert] = [text for text, _ in world.notifier.posts if "unhealthy" in text]
    assert "<!channel>" not in alert and "<@U1>" not in alert and "&lt;!channel&gt; &amp; &lt;@U1&gt;" in alert
    assert len(alert) <= 1500 and alert.endswith("will be requested.")  # what it plans to do stays whole
    assert max(len(line) for line in stream.getvalue().splitlines()) < 10_000
    [asked] = [payload for topic, payload in world.publisher.published if topic == world.config.topics.rollback] or [None]
    assert asked is None or len(asked["reason"]) < 2000
