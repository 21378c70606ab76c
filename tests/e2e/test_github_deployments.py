"""A release's GitHub deployment end to end: the functions on the local cloud, PyGithub over loopback to the fake
GitHub, which refuses what GitHub refuses (a tag auto-merged, commit statuses required)."""
from __future__ import annotations

from localcloud.cloud import LocalCloud
from tests.e2e.conftest import LATENCY, wait_ended


def test_a_release_that_goes_live_and_is_rolled_back_is_one_deployment_queued_in_progress_success_inactive():
    """And GitHub down afterwards holds nothing: the next release goes live."""
    with LocalCloud(latency=dict(LATENCY), github=True) as cloud:
        for tag in ("v1.0.0", "v1.1.0"):
            cloud.push_tag(tag)
            assert wait_ended(cloud, tag)["state"] == "live"
        cloud.publish(cloud.config.topics.rollback, {"to": "previous", "from": "v1.1.0", "reason": "checkout broken",
                                                     "requested_by": "dana"})
        cloud.wait_for(lambda: cloud.live_tag() == "v1.0.0", 20, what="v1.0.0 back")
        cloud.wait_for(lambda: cloud.github.states("v1.1.0") == [["queued", "in_progress", "success", "inactive"]],
                       20, what=f"v1.1.0's deployment inactive, found {cloud.github.states('v1.1.0')}")
        [deployment] = [d for d in cloud.github.deployments if d["ref"] == "v1.1.0"]
        assert (deployment["environment"], deployment["payload"], deployment["sha"]) == (
            "production", {"tagship": "v1.1.0"}, cloud.commit_for("v1.1.0"))
        success = deployment["statuses"][2]
        assert success["environment_url"] == cloud.config.frontend.url
        assert success["log_url"] == cloud.release("v1.1.0")["log_url"] and success["log_url"]
        assert deployment["statuses"][3]["description"].startswith("v1.1.0 rolled back")
        # GitHub itself made v1.0.0's success inactive when v1.1.0 succeeded (auto_inactive); the rollback makes
        # it the environment's success again
        cloud.wait_for(lambda: cloud.github.states("v1.0.0") == [["queued", "in_progress", "success", "inactive",
                                                                  "success"]],
                       20, what=f"v1.0.0 a success again, found {cloud.github.states('v1.0.0')}")
        assert cloud.release("v1.1.0")["github_deployment"] == deployment["id"]
        refused = [c for c in cloud.github.calls if c["status"] >= 400]
        assert refused == []

        cloud.github.down = True  # GitHub down: the next release still goes live, and GitHub hears nothing of it
        cloud.push_tag("v1.2.0")
        assert wait_ended(cloud, "v1.2.0")["state"] == "live"
        assert cloud.github.states("v1.2.0") == []
