"""The doctor's verdicts (pure), as tables: what was read, what it means, and the fix."""
from __future__ import annotations

import pytest

from shared.config import load
from shared.core import doctor
from shared.core.doctor import FAIL, NOT_CHECKED, PASS, WARN, Unread
from shared.install_plan import plan
from shared.ports import (
    ChannelFacts,
    HttpAnswer,
    PolicyFacts,
    RunResource,
    SchedulerJob,
    SlackChannel,
    SlackIdentity,
)

CONFIG = load()
STEPS = plan(CONFIG)
WORKER = CONFIG.worker.service


@pytest.mark.parametrize("seen, status, in_fix", [
    pytest.param(RunResource("service", WORKER, ("",), 1, False), PASS, "", id="min instances 1 and CPU always passes"),
    pytest.param(RunResource("service", WORKER, ("",), 0, False), FAIL, "--min-instances 1",
                 id="no min instance fails: an idle worker is scaled to zero"),
    pytest.param(RunResource("service", WORKER, ("",), 3, True), FAIL, "--no-cpu-throttling",
                 id="a throttled CPU fails: Celery does nothing between requests"),
    pytest.param(None, FAIL, "gcloud run deploy botbalance-worker", id="a missing worker fails: tagship does not create it"),
    pytest.param(RunResource("service", WORKER, ("app", "proxy"), 1, False), FAIL, "worker.container",
                 id="two containers and no worker.container fails: tagship never guesses"),
    pytest.param(Unread("denied"), NOT_CHECKED, "", id="a worker that cannot be read is not checked"),
])
def test_the_worker_service(seen, status, in_fix):
    (finding,) = doctor.run_resource(CONFIG, "worker", seen)
    assert finding.status == status and in_fix in finding.fix


def test_a_named_container_that_is_none_of_the_services_fails():
    config = CONFIG.replace(api={"container": "django"})
    (finding,) = doctor.run_resource(config, "api", RunResource("service", config.api.service, ("app", "proxy"), 0, True))
    assert finding.status == FAIL and "'django'" in finding.detail


API = RunResource("service", CONFIG.api.service, ("",), 0, True, "https://api.run.test", {})


@pytest.mark.parametrize("answers, statuses", [
    pytest.param({"https://api.run.test/api/health": HttpAnswer(200, b"", {}, 1)}, [PASS, WARN],
                 id="the service answering with no tag yet passes and warns that no tag URL was probed"),
    pytest.param({"https://api.run.test/api/health": HttpAnswer(200, b"", {}, 1),
                  "https://t---api.run.test/api/health": HttpAnswer(400, b"DisallowedHost at /", {}, 1)},
                 [PASS, FAIL], id="a tag URL refused by host fails"),
    pytest.param({"https://api.run.test/api/health": HttpAnswer(0, b"", {}, 1, "timed out")}, [FAIL, WARN],
                 id="no answer fails"),
    pytest.param({"https://api.run.test/api/health": HttpAnswer(503, b"", {}, 1),
                  "https://t---api.run.test/api/health": HttpAnswer(200, b"", {}, 1)},
                 [FAIL, PASS], id="a 503 on the service fails whatever the tag says"),
])
def test_the_health_path(answers, statuses):
    assert [f.status for f in doctor.tag_health(CONFIG, API, answers)] == statuses


TOPIC = f"projects/{CONFIG.project.id}/topics/{CONFIG.topics.health}"


@pytest.mark.parametrize("job, status", [
    pytest.param(SchedulerJob("tagship-health", "* * * * *", TOPIC, "ENABLED"), PASS, id="enabled to the health topic passes"),
    pytest.param(SchedulerJob("tagship-health", "* * * * *", TOPIC, "PAUSED"), FAIL, id="paused fails"),
    pytest.param(SchedulerJob("tagship-health", "* * * * *", "projects/x/topics/other", "ENABLED"), FAIL,
                 id="to another topic fails"),
    pytest.param(None, FAIL, id="missing fails"),
    pytest.param(Unread("gcloud is not installed here"), NOT_CHECKED, id="unreadable is not checked"),
])
def test_the_scheduler_job(job, status):
    (finding,) = doctor.scheduler(CONFIG, STEPS, job)
    assert finding.status == status


CHANNEL = ChannelFacts("projects/p/notificationChannels/7", "tagship rollback", "pubsub",
                       f"projects/{CONFIG.project.id}/topics/{CONFIG.topics.rollback}", True)
LABELS = {"tagship_rollback": "true"}


@pytest.mark.parametrize("channels, policies, statuses", [
    pytest.param([CHANNEL], [PolicyFacts("a", "api", True, LABELS, (CHANNEL.name,))], [PASS, PASS],
                 id="a labelled policy notifying the rollback channel passes"),
    pytest.param([CHANNEL], [PolicyFacts("a", "api", True, LABELS, ())], [PASS, FAIL],
                 id="a labelled policy notifying nobody fails"),
    pytest.param([CHANNEL], [PolicyFacts("a", "api", False, LABELS, (CHANNEL.name,))], [PASS, FAIL],
                 id="a disabled policy fails"),
    pytest.param([CHANNEL], [PolicyFacts("a", "api", True, {}, (CHANNEL.name,))], [PASS, FAIL],
                 id="a policy that is no rollback trigger fails"),
    pytest.param([], [PolicyFacts("a", "api", True, LABELS, (CHANNEL.name,))], [FAIL, FAIL],
                 id="no channel to the rollback topic fails both"),
    pytest.param([CHANNEL], Unread("denied"), [PASS, NOT_CHECKED], id="unreadable policies are not checked"),
])
def test_the_alert_wiring(channels, policies, statuses):
    assert [f.status for f in doctor.alerting(CONFIG, STEPS, channels, policies)] == statuses


def test_without_an_api_url_there_is_no_alert_to_check():
    (finding,) = doctor.alerting(CONFIG.replace(api={"url": ""}), STEPS, [], [])
    assert finding.status == NOT_CHECKED


ME = SlackIdentity(True, "", "U1", frozenset({"chat:write", "channels:read"}))


@pytest.mark.parametrize("identity, channel, statuses", [
    pytest.param(ME, SlackChannel("C1", "deploys", True, False), [PASS, PASS, PASS], id="a member with chat:write passes"),
    pytest.param(ME, SlackChannel("C1", "deploys", False, False), [PASS, PASS, FAIL],
                 id="a bot outside the channel fails"),
    pytest.param(SlackIdentity(True, "", "U1", frozenset({"chat:write", "chat:write.public"})),
                 SlackChannel("C1", "deploys", False, False), [PASS, PASS, PASS],
                 id="outside the channel with chat:write.public passes"),
    pytest.param(ME, SlackChannel("C1", "deploys", True, True), [PASS, PASS, FAIL], id="an archived channel fails"),
    pytest.param(ME, None, [PASS, PASS, FAIL], id="no such channel fails"),
    pytest.param(SlackIdentity(True, "", "U1", frozenset({"channels:read"})), SlackChannel("C1", "deploys", True, False),
                 [PASS, FAIL, PASS], id="a token without chat:write fails to post"),
    pytest.param(ME, Unread("the token lacks channels:read"), [PASS, PASS, NOT_CHECKED],
                 id="a channel it may not read is not checked"),
    pytest.param(SlackIdentity(False, "invalid_auth", "", frozenset()), Unread("-"), [FAIL],
                 id="a token Slack refuses fails"),
])
def test_the_slack_bot(identity, channel, statuses):
    assert [f.status for f in doctor.slack(CONFIG, True, identity, channel)] == statuses


MEMBER = SlackChannel("C1", "deploys", True, False)


@pytest.mark.parametrize("approvers, scopes, statuses", [
    pytest.param((), {"chat:write"}, [PASS, PASS, PASS], id="no approvers: nothing more to check"),
    pytest.param(("U0DANA",), {"chat:write"}, [PASS, PASS, PASS], id="only users: no group scope needed"),
    pytest.param(("U0DANA", "S0RELEASE"), {"chat:write"}, [PASS, PASS, FAIL, PASS],
                 id="a group without usergroups:read fails"),
    pytest.param(("S0RELEASE",), {"chat:write", "usergroups:read"}, [PASS, PASS, PASS, PASS],
                 id="a group with usergroups:read passes"),
])
def test_approver_groups_need_usergroups_read(approvers, scopes, statuses):
    config = CONFIG.replace(gates={"approvers": list(approvers)})
    findings = doctor.slack(config, True, SlackIdentity(True, "", "U1", frozenset(scopes)), MEMBER)
    assert [f.status for f in findings] == statuses
    assert all("S0RELEASE" in f.detail for f in findings if f.status == FAIL)


@pytest.mark.parametrize("enabled, status", [
    pytest.param(frozenset(doctor.APIS), PASS, id="every API enabled passes"),
    pytest.param(frozenset(doctor.APIS) - {"run.googleapis.com"}, FAIL, id="one missing fails"),
    pytest.param(Unread("no gcloud"), NOT_CHECKED, id="unreadable is not checked"),
])
def test_the_apis(enabled, status):
    (finding,) = doctor.apis(CONFIG, enabled)
    assert finding.status == status
    if status == FAIL:
        assert finding.fix == "gcloud services enable run.googleapis.com --project botbalance-prod"


def test_a_missing_topic_fails_with_the_setup_command_that_creates_it():
    names = (CONFIG.topics.builds, CONFIG.topics.progress, CONFIG.topics.health, CONFIG.topics.rollback)
    exists = {t: t != CONFIG.topics.health for t in names}
    pushes = {t: ["https://push"] for t in names}
    found = {f.check: f for f in doctor.topics(CONFIG, STEPS, exists, pushes)}
    assert found["topic tagship-health"].status == FAIL
    assert found["topic tagship-health"].fix == "gcloud pubsub topics create tagship-health --project botbalance-prod"


def test_a_topic_no_push_subscription_delivers_fails_with_the_trigger():
    names = (CONFIG.topics.builds, CONFIG.topics.progress, CONFIG.topics.health, CONFIG.topics.rollback)
    pushes = {t: ([""] if t == CONFIG.topics.progress else ["https://push"]) for t in names}
    found = {f.check: f for f in doctor.topics(CONFIG, STEPS, {t: True for t in names}, pushes)}
    finding = found["trigger of tagship-deploy-progress on tagship-progress"]
    assert finding.status == FAIL and "gcloud eventarc triggers create tagship-progress" in finding.fix
