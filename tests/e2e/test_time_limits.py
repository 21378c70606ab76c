"""Every invocation ends inside the function's timeout: long work is handed over by message, never cut off."""
from __future__ import annotations

import os

from localcloud.cloud import LocalCloud
from shared.deadline import TIMEOUT_ENV
from shared.release import revision_name
from tests.e2e.conftest import LATENCY, wait_ended


def test_a_bake_longer_than_the_functions_timeout_goes_live_over_several_invocations_none_cut_off():
    # a 4 s bake under a 2 s function timeout: as a 30 min bake would be under the real 540 s
    config = {"deploy": {"bake_seconds": 4.0, "probe_interval_seconds": 0.2}}
    with LocalCloud(latency=dict(LATENCY), config=config, function_timeout=2.0) as cloud:
        cloud.push_tag("v1.0.0")
        record = wait_ended(cloud, "v1.0.0", timeout=60)
        assert record["state"] == "live"
        api = cloud.config.api.service
        assert cloud.traffic(api) == {revision_name(api, "v1.0.0"): 100}
        verify = record["steps"]["verify"]
        # the whole bake across invocations (its last probe comes within one probe interval of its end)
        assert verify["finished"] - verify["started"] >= 4.0 - 0.2
        assert cloud.functions.invocations["deploy_progress"] >= 3  # it was handed over, not done in one
        assert cloud.functions.overran == []
        assert len(cloud.job_executions) == 1


def test_the_functions_host_answers_504_for_an_invocation_past_its_timeout_as_the_platform_does():
    config = {"deploy": {"bake_seconds": 3.0, "probe_interval_seconds": 0.2, "step_budget_seconds": 30.0}}
    with LocalCloud(latency=dict(LATENCY), config=config, function_timeout=1.0) as cloud:
        os.environ[TIMEOUT_ENV] = "540"  # the functions believe they have the real timeout: they overrun
        cloud.push_tag("v1.0.0")
        cloud.wait_for(lambda: cloud.functions.overran, 30, what="an invocation to overrun")
        assert all(target == "deploy_progress" and took > 1.0 for target, took in cloud.functions.overran)
