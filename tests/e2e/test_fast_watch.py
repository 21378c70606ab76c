"""The fast watch end to end: one scheduler tick's invocation keeps looking inside the bake window, so a release
that breaks between ticks is caught within a few looks, not a few ticks (intervals scaled down: a look every
0.3 s, a tick every 20 s)."""
from __future__ import annotations

import time

import pytest

from localcloud.cloud import LocalCloud
from tests.e2e.conftest import LATENCY
from tests.e2e.test_rollback import serve, unit_on

TICK, LOOK = 20.0, 0.3


@pytest.fixture
def watched_cloud():
    with LocalCloud(latency=dict(LATENCY), config={"watchdog": {"fast_probe_seconds": LOOK, "tick_seconds": TICK}},
                    function_timeout=30.0) as local:
        yield local
        assert local.functions.overran == [], "an invocation outlasted the function's timeout"


def test_a_release_breaking_after_the_tick_is_restored_within_a_few_looks_by_that_ticks_invocation(watched_cloud):
    cloud = watched_cloud
    serve(cloud, ("v1.0.0", {}), ("v1.1.0", {}))
    cloud.tick_watchdog()  # the only tick of the test
    time.sleep(1.0)  # the invocation is looking, healthy
    broke = time.monotonic()
    cloud.break_app("v1.1.0")
    cloud.wait_for(lambda: cloud.live_tag() == "v1.0.0", 10, what="v1.0.0 back")
    restored = time.monotonic() - broke
    assert unit_on(cloud, "v1.0.0")
    # two failed looks (the local cloud's consecutive_failures) 0.3 s apart, then the rollback: well inside a tick
    assert restored < 5.0
    rolled = lambda: sum("Rolled back" in m["text"] for m in cloud.slack.messages)  # noqa: E731
    cloud.wait_for(lambda: rolled() >= 2, 20, what="the rollback told in the thread and the channel")
    assert rolled() == 2  # told once, in the thread and in the channel
