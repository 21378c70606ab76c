"""`python main.py doctor` against the local cloud, as a person runs it: a separate process, the real clients over
loopback (Cloud Run, Storage, Pub/Sub, Monitoring, Slack) and the real gcloud, signed out here (so what only gcloud
reads is "not checked", never a pass). It changes nothing: the cloud read through the real clients is the same
after it as before."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from google.cloud import monitoring_v3, pubsub_v1, run_v2

from localcloud.cloud import LocalCloud
from shared import clients
from shared.install_policy import alert_policy
from tests.e2e.conftest import LATENCY, wait_settled

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    with LocalCloud(latency=dict(LATENCY), config={"api": {"url": "https://api.example.test"}}) as local:
        local.push_tag("v1.0.0")
        assert wait_settled(local, "v1.0.0")["state"] == "live"  # its lease given back: nothing writes after
        local.gcloud_home = str(tmp_path_factory.mktemp("gcloud"))  # signed out, whatever the machine's own gcloud
        yield local


def doctor(cloud, *args: str, env: dict[str, str] | None = None, gcloud: bool = False) -> subprocess.CompletedProcess:
    """The command line; with `gcloud`, the machine's gcloud (signed out: about 2 s a call), else none on PATH
    (what only gcloud reads is then "not checked" at once)."""
    environment = {**os.environ, "CLOUDSDK_CONFIG": cloud.gcloud_home, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
                   **({} if gcloud else {"PATH": cloud.gcloud_home}), **(env or {})}
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "--config", cloud.config_path, "doctor", *args],
                          capture_output=True, text=True, timeout=180, env=environment)


def findings(done: subprocess.CompletedProcess) -> dict[str, dict]:
    return {f["check"]: f for f in json.loads(done.stdout)["findings"]}


def snapshot(cloud) -> dict:
    """The cloud's state as the real clients read it."""
    parent = f"projects/{cloud.project}/locations/{cloud.region}"
    services = [run_v2.Service.to_dict(s) for s in clients.run_services().list_services(parent=parent)]
    revisions = {s["name"]: sorted(r.name for r in clients.run_revisions().list_revisions(parent=s["name"]))
                 for s in services}
    job = f"{parent}/jobs/{cloud.config.migrations.job}"
    executions = sorted(e.name for e in clients.run_executions().list_executions(parent=job))
    storage = cloud.storage_client()
    objects = {b: sorted((o.name, o.generation, o.metageneration) for o in storage.list_blobs(b))
               for b in (cloud.config.state.bucket, cloud.config.frontend.bucket)}
    buckets = {b: storage.get_bucket(b).metageneration for b in objects}
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    project = f"projects/{cloud.project}"
    topics = sorted(t.name for t in publisher.list_topics(project=project))
    subscriptions = sorted(s.name for s in subscriber.list_subscriptions(project=project))
    channels = [type(c).to_dict(c) for c in clients.notification_channels().list_notification_channels(name=project)]
    policies = [type(p).to_dict(p) for p in clients.alert_policies().list_alert_policies(name=project)]
    return {"services": services, "revisions": revisions, "executions": executions, "objects": objects,
            "buckets": buckets, "topics": topics, "subscriptions": subscriptions, "channels": channels,
            "policies": policies, "builds": len(cloud.builds), "slack": cloud.slack.messages}


def test_doctor_reports_each_check_on_the_local_cloud_and_changes_nothing(cloud):
    before = snapshot(cloud)
    done = doctor(cloud, "--json", gcloud=True)
    assert done.returncode == 1, done.stderr  # the worker service and the alerting are not as tagship needs
    found = findings(done)
    assert snapshot(cloud) == before

    assert found["api service botbalance-api"]["status"] == "pass"
    health = [f for f in json.loads(done.stdout)["findings"] if f["check"] == "API answers its health path"]
    assert health and all(f["status"] == "pass" for f in health) and len(health) >= 2  # the service and a tag URL
    worker = found["worker service botbalance-worker"]
    assert worker["status"] == "fail" and "--no-cpu-throttling --min-instances 1" in worker["fix"]
    assert found["migrations job botbalance-migrate"]["status"] == "pass"
    assert found[f"state bucket gs://{cloud.config.state.bucket}"]["status"] == "pass"
    for topic in ("cloud-builds", "tagship-progress", "tagship-health", "tagship-rollback"):
        assert found[f"topic {topic}"]["status"] == "pass"
    assert all(f["status"] == "pass" for c, f in found.items() if c.startswith("trigger of "))
    for check in ("Slack bot", "Slack bot may post", f"Slack bot in {cloud.config.slack.channel}"):
        assert found[check]["status"] == "pass", found[check]
    assert found["notification channel"]["status"] == "fail" and "channels create" in found["notification channel"]["fix"]
    # what only gcloud reads (signed out here): not checked, with gcloud's reason, never a pass
    for check in ("APIs enabled", "Cloud Scheduler job tagship-health", "secret tagship-slack-bot-token"):
        assert found[check]["status"] == "not checked" and "gcloud" in found[check]["detail"], found[check]
    assert os.environ["SLACK_BOT_TOKEN"] not in done.stdout + done.stderr


def test_an_alert_policy_wired_to_the_rollback_channel_passes_and_one_left_unwired_fails(cloud):
    project = f"projects/{cloud.project}"
    channel = clients.notification_channels().create_notification_channel(
        name=project, notification_channel=monitoring_v3.NotificationChannel(
            type_="pubsub", display_name="tagship rollback",
            labels={"topic": f"{project}/topics/{cloud.config.topics.rollback}"}))
    unwired = monitoring_v3.AlertPolicy.from_json(json.dumps(alert_policy(cloud.config)))
    clients.alert_policies().create_alert_policy(name=project, alert_policy=unwired)
    found = findings(doctor(cloud, "--json"))
    assert found["notification channel"]["status"] == "pass"
    assert found["alert policy"]["status"] == "fail" and "not wired" in found["alert policy"]["detail"]
    wired = monitoring_v3.AlertPolicy.from_json(json.dumps(alert_policy(cloud.config)))
    wired.notification_channels = [channel.name]
    clients.alert_policies().create_alert_policy(name=project, alert_policy=wired)
    before = snapshot(cloud)
    found = findings(doctor(cloud, "--json"))
    assert found["alert policy"]["status"] == "pass"
    assert snapshot(cloud) == before


def test_a_bot_outside_the_channel_and_a_token_slack_refuses_fail_with_what_to_do(cloud):
    cloud.slack.members = {"elsewhere"}  # the bot was invited elsewhere only
    try:
        found = findings(doctor(cloud, "--json"))
    finally:
        cloud.slack.members = None
    check = f"Slack bot in {cloud.config.slack.channel}"
    assert found[check]["status"] == "fail" and "/invite" in found[check]["fix"]
    found = findings(doctor(cloud, "--json", env={"SLACK_BOT_TOKEN": "not-a-slack-token"}))
    assert found["Slack bot"]["status"] == "fail" and "invalid_auth" in found["Slack bot"]["detail"]


def test_the_text_output_gives_each_failure_its_fix_and_a_count(cloud):
    done = doctor(cloud)
    assert "FAIL  worker service botbalance-worker" in done.stdout
    assert "fix: gcloud run services update botbalance-worker" in done.stdout
    assert done.stdout.strip().splitlines()[-1].endswith("not checked")


def test_without_gcloud_what_only_gcloud_reads_is_not_checked_and_says_why(cloud):
    found = findings(doctor(cloud, "--json"))
    assert found["APIs enabled"]["status"] == "not checked"
    assert "gcloud is not installed" in found["APIs enabled"]["detail"]


def test_the_reader_sees_a_worker_pool_and_a_service_that_does_not_exist_as_missing(cloud):
    from shared.adapters.project_google import GoogleProjectReader

    cloud.fake_run.seed_worker_pool("botbalance-pool", cloud.image_for("a" * 40), command=["celery", "worker"])
    reader = GoogleProjectReader(cloud.project, cloud.region)
    pool = reader.run_resource("pool", "botbalance-pool")
    assert pool is not None and (pool.kind, pool.containers, pool.cpu_throttled) == ("pool", ("",), False)
    assert reader.run_resource("service", "no-such-service") is None
    assert reader.bucket("no-such-bucket") is None
    assert reader.topic_exists("no-such-topic") is False
