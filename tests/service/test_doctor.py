"""The doctor's service against recording fakes of its ports: what it concludes from what it reads, what it says
when an API cannot be read, and that it only ever reads."""
from __future__ import annotations

import json

import pytest

from shared.config import load
from shared.core.doctor import FAIL, NOT_CHECKED, PASS, WARN, worst
from shared.doctor import as_json, as_text, examine
from shared.ports import HttpAnswer, RunResource
from tests.service.fakes import FakeHttp, FakeInventory, FakeProject, FakeSlackAccess

READS = {"run_resource", "bucket", "topic_exists", "push_endpoints", "notification_channels", "alert_policies",
         "enabled_apis", "project_members", "service_accounts", "secret_versions", "scheduler_job", "identity",
         "channel"}


@pytest.fixture
def world():
    config = load()
    return config, FakeProject(config), FakeInventory(config), FakeSlackAccess(config.slack.channel.lstrip("#")), \
        FakeHttp()


def by_check(findings):
    out: dict[str, list] = {}
    for finding in findings:
        out.setdefault(finding.check, []).append(finding)
    return out


def test_a_project_installed_as_setup_says_passes_every_check_but_the_note_on_the_frontend_buckets_name(world):
    config, project, inventory, slack, http = world
    findings = examine(config, project, inventory, slack, http)
    others = [f for f in findings if f.status != PASS]
    assert [(f.check, f.status) for f in others] == [("frontend bucket named for app.botbalance.io", WARN)]
    assert worst(findings) == PASS


def test_a_frontend_bucket_named_for_its_domain_passes_that_check(world):
    config, _, inventory, slack, http = world
    named = config.replace(frontend={"bucket": "app.botbalance.io"})
    findings = examine(named, FakeProject(named), inventory, slack, http)
    assert {f.status for f in findings} == {PASS}


def test_the_doctor_only_reads(world):
    config, project, inventory, slack, http = world
    examine(config, project, inventory, slack, http)
    called = {method for method, _ in project.calls + inventory.calls + slack.calls}
    assert called <= READS
    assert http.requests and all(url.endswith(config.api.health_path) for url in http.requests)


@pytest.mark.parametrize("fake, method, check", [
    ("inventory", "enabled_apis", "APIs enabled"),
    ("inventory", "scheduler_job", "Cloud Scheduler job tagship-health"),
    ("inventory", "secret_versions", "secret tagship-slack-bot-token"),
    ("inventory", "service_accounts", "service account tagship-rollback"),
    ("inventory", "project_members", "tagship-rollback@botbalance-prod.iam.gserviceaccount.com has roles/run.developer"),
    ("project", "alert_policies", "alert policy"),
    ("project", "run_resource", "worker service botbalance-worker"),
    ("slack", "channel", "Slack bot in #deploys"),
], ids=lambda v: v if isinstance(v, str) and " " in v else None)
def test_an_api_that_cannot_be_read_is_not_checked_with_its_reason_never_passed(world, fake, method, check):
    config, project, inventory, slack, http = world
    {"inventory": inventory, "project": project, "slack": slack}[fake].unreadable.add(method)
    (finding,) = by_check(examine(config, project, inventory, slack, http))[check]
    assert finding.status == NOT_CHECKED and "PermissionDenied" in finding.detail


def test_a_grant_setup_makes_that_is_missing_fails_with_the_grant_command(world):
    config, project, inventory, slack, http = world
    inventory.members["roles/run.developer"].discard("serviceAccount:tagship-rollback@botbalance-prod.iam.gserviceaccount.com")
    (finding,) = by_check(examine(config, project, inventory, slack, http))[
        "tagship-rollback@botbalance-prod.iam.gserviceaccount.com has roles/run.developer"]
    assert finding.status == FAIL
    assert finding.fix.startswith("gcloud projects add-iam-policy-binding botbalance-prod --member "
                                  "serviceAccount:tagship-rollback@botbalance-prod.iam.gserviceaccount.com "
                                  "--role roles/run.developer")


def test_a_tag_url_django_refuses_by_host_fails_with_the_allowed_hosts_fix(world):
    config, project, inventory, slack, http = world

    class RefusingTags(FakeHttp):
        def request(self, url, **kwargs):
            self.requests.append(url)
            if "---" in url:
                return HttpAnswer(400, b"<title>Bad Request (400)</title>", {}, 1.0)
            return HttpAnswer(200, b"{}", {}, 1.0)

    findings = by_check(examine(config, project, inventory, slack, RefusingTags()))["API answers its health path"]
    assert [f.status for f in findings] == [PASS, FAIL]
    assert "ALLOWED_HOSTS" in findings[1].fix and "DisallowedHost" in findings[1].detail


def test_a_secret_without_a_version_fails_and_no_secret_value_is_ever_asked_for(world):
    config, project, inventory, slack, http = world
    inventory.versions["tagship-github-webhook-secret"] = 0
    (finding,) = by_check(examine(config, project, inventory, slack, http))["secret tagship-github-webhook-secret"]
    assert finding.status == FAIL and "versions add tagship-github-webhook-secret" in finding.fix
    assert all(method != "access" for method, _ in inventory.calls)


def test_without_a_bot_token_slack_is_not_checked(world):
    config, project, inventory, _, http = world
    (finding,) = by_check(examine(config, project, inventory, None, http))["Slack bot"]
    assert finding.status == NOT_CHECKED and "SLACK_BOT_TOKEN" in finding.detail


def test_a_worker_pool_needs_no_min_instances(world):
    config, _, inventory, slack, http = world
    pooled = config.replace(worker={"kind": "pool"})
    project = FakeProject(pooled)
    project.resources[("pool", pooled.worker.service)] = RunResource("pool", pooled.worker.service, ("",), 0, False)
    (finding,) = by_check(examine(pooled, project, inventory, slack, http))["worker pool botbalance-worker"]
    assert finding.status == PASS


def test_the_json_and_the_text_say_the_same_findings(world):
    config, project, inventory, slack, http = world
    project.buckets[config.frontend.bucket] = project.buckets[config.frontend.bucket].__class__(
        config.frontend.bucket, "", "")
    findings = examine(config, project, inventory, slack, http)
    data = json.loads(as_json(findings))
    assert len(data["findings"]) == len(findings) and data["failed"] is False
    text = as_text(findings)
    assert f"warn  frontend bucket gs://{config.frontend.bucket}" in text and "--web-main-page-suffix" in text
    assert text.splitlines()[-1].startswith(f"{sum(f.status == PASS for f in findings)} pass, 2 warn")
    assert {f["status"] for f in data["findings"]} == {PASS, WARN}
