"""The gcloud commands that install tagship in a project, derived from the config so names never drift (pure).

Each step has the command that makes it so and, where gcloud can tell, a `check` command that exits 0 when it is
already so: `python main.py setup --apply` runs the check first and skips what is already right.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass

from shared.config import Config

APIS = (
    "run.googleapis.com", "cloudfunctions.googleapis.com", "cloudbuild.googleapis.com", "pubsub.googleapis.com",
    "eventarc.googleapis.com", "cloudscheduler.googleapis.com", "monitoring.googleapis.com",
    "secretmanager.googleapis.com", "artifactregistry.googleapis.com", "storage.googleapis.com",
)
WEBHOOK_SECRET = "tagship-github-webhook-secret"
SLACK_SECRET = "tagship-slack-bot-token"


@dataclass(frozen=True)
class Step:
    title: str
    command: tuple[str, ...]
    reason: str = ""
    check: tuple[str, ...] | None = None

    def shell(self) -> str:
        return shlex.join(self.command)


@dataclass(frozen=True)
class FunctionSpec:
    name: str  # deployed name
    entry_point: str
    account: str  # service account id
    memory: str
    timeout: str
    trigger_topic: str | None  # None: HTTP
    secrets: tuple[str, ...]


def functions(config: Config) -> tuple[FunctionSpec, ...]:
    topics = config.topics
    slack = (f"SLACK_BOT_TOKEN={SLACK_SECRET}:latest",)
    return (
        FunctionSpec("tagship-deploy-on-tag", "deploy_on_tag", "tagship-deploy-on-tag", "256Mi", "60s", None,
                     (f"GITHUB_WEBHOOK_SECRET={WEBHOOK_SECRET}:latest",)),
        FunctionSpec("tagship-deploy-progress", "deploy_progress", "tagship-deploy-progress", "512Mi", "540s",
                     topics.builds, slack),
        FunctionSpec("tagship-health-watchdog", "health_watchdog", "tagship-health-watchdog", "256Mi", "120s",
                     topics.health, slack),
        FunctionSpec("tagship-rollback", "rollback", "tagship-rollback", "512Mi", "540s", topics.rollback, slack),
    )


def _account_email(config: Config, account: str) -> str:
    return f"{account}@{config.project.id}.iam.gserviceaccount.com"


def _roles(config: Config) -> list[tuple[str, str, str, str]]:
    """(account, where, role, reason): where is "project", a gs:// bucket, a topic or a secret."""
    state = f"gs://{config.state.bucket}"
    frontend = f"gs://{config.frontend.bucket}"
    topics = config.topics
    return [
        ("tagship-deploy-on-tag", state, "roles/storage.objectUser", "create the release record (create-if-absent)"),
        ("tagship-deploy-on-tag", "project", "roles/cloudbuild.builds.editor", "submit the release's build"),
        ("tagship-deploy-on-tag", f"secret:{WEBHOOK_SECRET}", "roles/secretmanager.secretAccessor", "verify GitHub's signature"),
        ("tagship-deploy-progress", state, "roles/storage.objectUser", "release records, lease, frontend builds"),
        ("tagship-deploy-progress", frontend, "roles/storage.objectUser", "publish the frontend"),
        ("tagship-deploy-progress", "project", "roles/run.developer", "deploy revisions, move traffic, run the migrations job"),
        ("tagship-deploy-progress", "project", "roles/iam.serviceAccountUser", "deploy revisions that run as the app's account"),
        ("tagship-deploy-progress", "project", "roles/cloudbuild.builds.viewer", "read the build's result"),
        ("tagship-deploy-progress", f"topic:{topics.progress}", "roles/pubsub.publisher", "resume a long migration, start a waiting release"),
        ("tagship-deploy-progress", f"secret:{SLACK_SECRET}", "roles/secretmanager.secretAccessor", "post to Slack"),
        ("tagship-health-watchdog", state, "roles/storage.objectUser", "remember the verdict between ticks"),
        ("tagship-health-watchdog", "project", "roles/run.viewer", "find the API's URL"),
        ("tagship-health-watchdog", "project", "roles/monitoring.viewer", "read 5xx ratio and latency"),
        ("tagship-health-watchdog", f"topic:{topics.rollback}", "roles/pubsub.publisher", "ask for a rollback"),
        ("tagship-health-watchdog", f"secret:{SLACK_SECRET}", "roles/secretmanager.secretAccessor", "post to Slack"),
        ("tagship-rollback", state, "roles/storage.objectUser", "pointer, lease, markers, release records"),
        ("tagship-rollback", frontend, "roles/storage.objectUser", "re-publish the frontend"),
        ("tagship-rollback", "project", "roles/run.developer", "move traffic back"),
        ("tagship-rollback", "project", "roles/iam.serviceAccountUser", "update services that run as the app's account"),
        ("tagship-rollback", f"topic:{topics.progress}", "roles/pubsub.publisher", "start a release that waited"),
        ("tagship-rollback", f"secret:{SLACK_SECRET}", "roles/secretmanager.secretAccessor", "post to Slack"),
    ]


def plan(config: Config, source_dir: str = ".") -> list[Step]:
    project, region = config.project.id, config.project.region
    p = ("--project", project)
    steps: list[Step] = [
        Step("enable the APIs tagship uses", ("gcloud", "services", "enable", *APIS, *p)),
        Step(f"state bucket gs://{config.state.bucket}",
             ("gcloud", "storage", "buckets", "create", f"gs://{config.state.bucket}", "--location", region,
              "--uniform-bucket-level-access", *p),
             check=("gcloud", "storage", "buckets", "describe", f"gs://{config.state.bucket}", *p)),
    ]
    topics = config.topics
    for topic in (topics.builds, topics.progress, topics.health, topics.rollback):
        steps.append(Step(f"topic {topic}", ("gcloud", "pubsub", "topics", "create", topic, *p),
                          check=("gcloud", "pubsub", "topics", "describe", topic, *p)))
    for spec in functions(config):
        email = _account_email(config, spec.account)
        steps.append(Step(f"service account for {spec.entry_point}",
                          ("gcloud", "iam", "service-accounts", "create", spec.account, "--display-name",
                           f"tagship {spec.entry_point}", *p),
                          check=("gcloud", "iam", "service-accounts", "describe", email, *p)))
    for secret in (WEBHOOK_SECRET, SLACK_SECRET):
        steps.append(Step(f"secret {secret} (add its value with: gcloud secrets versions add {secret} --data-file=-)",
                          ("gcloud", "secrets", "create", secret, "--replication-policy", "automatic", *p),
                          check=("gcloud", "secrets", "describe", secret, *p)))
    for account, where, role, reason in _roles(config):
        member = f"serviceAccount:{_account_email(config, account)}"
        if where == "project":
            command = ("gcloud", "projects", "add-iam-policy-binding", project, "--member", member, "--role", role,
                       "--condition", "None")
        elif where.startswith("gs://"):
            command = ("gcloud", "storage", "buckets", "add-iam-policy-binding", where, "--member", member, "--role", role, *p)
        elif where.startswith("topic:"):
            command = ("gcloud", "pubsub", "topics", "add-iam-policy-binding", where[6:], "--member", member, "--role", role, *p)
        else:
            command = ("gcloud", "secrets", "add-iam-policy-binding", where[7:], "--member", member, "--role", role, *p)
        steps.append(Step(f"{account}: {role} on {where}", command, reason=reason))
    for spec in functions(config):
        command = ["gcloud", "functions", "deploy", spec.name, "--gen2", "--runtime", "python311", "--region", region,
                   "--source", source_dir, "--entry-point", spec.entry_point,
                   "--service-account", _account_email(config, spec.account), "--memory", spec.memory,
                   "--timeout", spec.timeout, "--set-env-vars", "TAGSHIP_CONFIG=tagship.toml",
                   "--set-secrets", ",".join(spec.secrets), *p]
        if spec.trigger_topic is None:
            command += ["--trigger-http", "--allow-unauthenticated"]
        else:
            command += ["--trigger-topic", spec.trigger_topic, "--retry"]
        steps.append(Step(f"function {spec.name}", tuple(command), reason="2nd gen, Python 3.11"))
    progress = next(s for s in functions(config) if s.entry_point == "deploy_progress")
    steps.append(Step(
        f"second trigger of {progress.name}: tagship's own progress topic",
        ("gcloud", "eventarc", "triggers", "create", "tagship-progress", "--location", region,
         "--destination-run-service", progress.name, "--destination-run-region", region,
         "--event-filters", "type=google.cloud.pubsub.topic.v1.messagePublished",
         "--transport-topic", f"projects/{project}/topics/{topics.progress}",
         "--service-account", _account_email(config, progress.account), *p),
        check=("gcloud", "eventarc", "triggers", "describe", "tagship-progress", "--location", region, *p)))
    steps.append(Step(
        "Cloud Scheduler: a watchdog tick every minute",
        ("gcloud", "scheduler", "jobs", "create", "pubsub", "tagship-health", "--location", region, "--schedule",
         "* * * * *", "--topic", topics.health, "--message-body", '{"job":"tagship-health"}', *p),
        check=("gcloud", "scheduler", "jobs", "describe", "tagship-health", "--location", region, *p)))
    if config.api.url:
        host = config.api.url.split("//", 1)[-1].split("/", 1)[0]
        steps.append(Step(
            "uptime check on the API's health",
            ("gcloud", "monitoring", "uptime", "create", "tagship-api-health", "--resource-type", "uptime-url",
             "--resource-labels", f"host={host},project_id={project}", "--path", config.api.health_path,
             "--protocol", "https", *p)))
    steps.append(Step(
        "notification channel: Pub/Sub to the rollback topic",
        ("gcloud", "beta", "monitoring", "channels", "create", "--display-name", "tagship rollback",
         "--type", "pubsub", "--channel-labels", f"topic=projects/{project}/topics/{topics.rollback}", *p)))
    steps.append(Step(
        "alert policy on the uptime check, labelled as a rollback trigger (add the channel above to it)",
        ("gcloud", "alpha", "monitoring", "policies", "create", "--policy-from-file", "tagship-alert-policy.json", *p),
        reason="written by `python main.py setup --write-policy`"))
    return steps


def alert_policy(config: Config) -> dict[str, object]:
    """The alert policy whose incidents the rollback function acts on (named in rollback.trigger_policies)."""
    name = config.rollback.trigger_policies[0] if config.rollback.trigger_policies else "tagship-api-health"
    return {
        "displayName": name,
        "userLabels": {"tagship_rollback": "true"},
        "combiner": "OR",
        "conditions": [{
            "displayName": "API health uptime check failing",
            "conditionThreshold": {
                "filter": 'metric.type="monitoring.googleapis.com/uptime_check/check_passed" AND '
                          'resource.type="uptime_url" AND metric.label.check_id="tagship-api-health"',
                "aggregations": [{"alignmentPeriod": "60s", "perSeriesAligner": "ALIGN_NEXT_OLDER",
                                  "crossSeriesReducer": "REDUCE_COUNT_FALSE", "groupByFields": ["resource.label.host"]}],
                "comparison": "COMPARISON_GT", "thresholdValue": 1, "duration": "120s",
            },
        }],
        "alertStrategy": {"autoClose": "1800s"},
    }
