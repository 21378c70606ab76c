"""A Celery worker deployed as a Cloud Run worker pool moves with the release unit, forward and back."""
from __future__ import annotations

from localcloud.cloud import LocalCloud
from shared.release import revision_name
from tests.e2e.conftest import LATENCY, wait_ended


def test_a_worker_pool_gets_the_releases_revision_with_every_instance_and_rolls_back_with_the_api():
    with LocalCloud(latency=dict(LATENCY), config={"worker": {"kind": "pool"}}) as cloud:
        api, worker = cloud.config.api.service, cloud.config.worker.service
        for tag in ("v1.0.0", "v1.1.0"):
            cloud.push_tag(tag)
            assert wait_ended(cloud, tag, timeout=60)["state"] == "live"
        assert cloud.traffic(worker) == {revision_name(worker, "v1.1.0"): 100}
        assert cloud.fake_run.pool_revisions(worker)[-2:] == [revision_name(worker, "v1.0.0"),
                                                              revision_name(worker, "v1.1.0")]
        cloud.publish(cloud.config.topics.rollback, {"to": "previous", "reason": "pool test", "requested_by": "erin"})
        cloud.wait_for(lambda: cloud.live_tag() == "v1.0.0", 30, what="the rollback")
        assert cloud.traffic(api) == {revision_name(api, "v1.0.0"): 100}
        assert cloud.traffic(worker) == {revision_name(worker, "v1.0.0"): 100}
        assert cloud.functions.overran == []
