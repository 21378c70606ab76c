"""The gcloud commands that install tagship in a project, derived from the config so names never drift (pure).

Each step has the command that makes it so and, where gcloud can tell, a `check` command that exits 0 when it is
already so: `python main.py setup --apply` runs the check first and skips what is already right.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from shared.config import Config
from shared.errors import ConfigError
from shared.install_policy import (
    POLICY_FILE,
    UPTIME_CHECK,
    alert_policy,
    api_host,
    notes,
)

__all__ = ["CHANNEL", "POLICY_FILE", "PROJECT_NUMBER", "Step", "alert_policy", "config_in_source", "lookups", "notes", "plan",
           "runtime_accounts"]

APIS = (
    "run.googleapis.com", "cloudfunctions.googleapis.com", "cloudbuild.googleapis.com", "pubsub.googleapis.com",
    "eventarc.googleapis.com", "cloudscheduler.googleapis.com", "monitoring.googleapis.com",
    "secretmanager.googleapis.com", "artifactregistry.googleapis.com", "storage.googleapis.com",
)
WEBHOOK_SECRET = "tagship-github-webhook-secret"
SLACK_SECRET = "tagship-slack-bot-token"
SIGNING_SECRET = "tagship-slack-signing-secret"  # the Slack app's, for its buttons (installed with slack.actors)
GITHUB_APP_KEY_SECRET = "tagship-github-app-key"  # the GitHub App's private key (github.deployments, github.app_id)
GITHUB_TOKEN_SECRET = "tagship-github-token"  # a token instead (github.deployments without an App)
STATUS_FUNCTIONS = ("tagship-deploy-progress", "tagship-rollback")  # the ones that move a release's state


def github_secret(config: Config) -> tuple[str, str] | None:
    """(env var, secret) the deployment statuses authenticate with, when github.deployments is on."""
    if not config.github.deployments:
        return None
    if config.github.app_id:
        return "GITHUB_APP_PRIVATE_KEY", GITHUB_APP_KEY_SECRET
    return "GITHUB_TOKEN", GITHUB_TOKEN_SECRET


@dataclass(frozen=True)
class Lookup:
    """A value only the project knows (its number, a created channel's name), read by a command that prints it."""
    name: str  # shell variable, and `{name}` where a step's command uses it
    command: tuple[str, ...]
    what: str

    def shell(self) -> str:
        return f'{self.name}="$({shlex.join(self.command)})"'


@dataclass(frozen=True)
class Step:
    title: str
    command: tuple[str, ...]
    reason: str = ""
    check: tuple[str, ...] | None = None
    needs: tuple[Lookup, ...] = ()

    def shell(self) -> str:
        """The command as a shell line; a looked-up value appears as its shell variable."""
        return " ".join(_quote(arg, self.needs) for arg in self.command)

    def resolved(self, values: dict[str, str]) -> "Step":
        """The step with each looked-up value in place (`setup --apply`)."""
        def fill(args: tuple[str, ...] | None) -> tuple[str, ...] | None:
            if args is None:
                return None
            out = []
            for arg in args:
                for lookup in self.needs:
                    arg = arg.replace("{" + lookup.name + "}", values[lookup.name])
                out.append(arg)
            return tuple(out)
        return Step(self.title, fill(self.command) or (), self.reason, fill(self.check), ())


def _quote(arg: str, needs: tuple[Lookup, ...]) -> str:
    used = [lookup.name for lookup in needs if "{" + lookup.name + "}" in arg]
    if not used:
        return shlex.quote(arg)
    text = arg
    for char in ("\\", '"', "`", "$"):
        text = text.replace(char, "\\" + char)
    for name in used:
        text = text.replace("{" + name + "}", "${" + name + "}")
    return f'"{text}"'


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
    github = github_secret(config)
    statuses = slack + ((f"{github[0]}={github[1]}:latest",) if github else ())
    return (
        FunctionSpec("tagship-deploy-on-tag", "deploy_on_tag", "tagship-deploy-on-tag", "256Mi", "60s", None,
                     (f"GITHUB_WEBHOOK_SECRET={WEBHOOK_SECRET}:latest", *slack)),
        FunctionSpec("tagship-deploy-progress", "deploy_progress", "tagship-deploy-progress", "512Mi", "540s",
                     topics.builds, statuses),
        FunctionSpec("tagship-health-watchdog", "health_watchdog", "tagship-health-watchdog", "256Mi", "120s",
                     topics.health, slack),
        FunctionSpec("tagship-rollback", "rollback", "tagship-rollback", "512Mi", "540s", topics.rollback, statuses),
    ) + ((FunctionSpec("tagship-slack-actions", "slack_actions", "tagship-slack-actions", "256Mi", "10s", None,
                       (f"SLACK_SIGNING_SECRET={SIGNING_SECRET}:latest", *slack)),) if config.slack.actors else ())


PROJECT_NUMBER = "PROJECT_NUMBER"
CHANNEL = "CHANNEL"
CHANNEL_NAME = "tagship rollback"


def _project_number(config: Config) -> Lookup:
    return Lookup(PROJECT_NUMBER, ("gcloud", "projects", "describe", config.project.id, "--format", "value(projectNumber)"),
                  "the project's number (its service agents and default account are named by it)")


def _channel(config: Config) -> Lookup:
    return Lookup(CHANNEL, ("gcloud", "beta", "monitoring", "channels", "list", "--filter", f'displayName="{CHANNEL_NAME}"',
                            "--format", "value(name)", "--limit", "1", "--project", config.project.id),
                  "the notification channel created above")


def _account_email(config: Config, account: str) -> str:
    return f"{account}@{config.project.id}.iam.gserviceaccount.com"


def runtime_accounts(config: Config) -> list[tuple[str, str]]:
    """(what, email) of the accounts the API, the worker and the migrations job run as: the deploy and the
    rollback act as these (and only these), to deploy revisions that run as them."""
    default = "{" + PROJECT_NUMBER + "}-compute@developer.gserviceaccount.com"
    found = [("the API", config.api.service_account or default), ("the worker", config.worker.service_account or default),
             ("the migrations job", config.migrations.service_account or default)]
    seen: dict[str, list[str]] = {}
    for what, email in found:
        seen.setdefault(email, []).append(what)
    return [(" and ".join(whats), email) for email, whats in seen.items()]


def config_in_source(config_path: str, source_dir: str) -> str:
    """The config's path as the deployed functions see it: relative to the deployed source, which is their working
    directory. ConfigError when the config is not inside the source (the functions could never read it)."""
    source = Path(source_dir).resolve()
    path = Path(config_path).resolve()
    try:
        relative = path.relative_to(source)
    except ValueError as error:
        raise ConfigError(f"{config_path}: the config must be inside the deployed source {source_dir} "
                          "(the functions read it from there); move it there or pass --source") from error
    return relative.as_posix()


def _image_repository(config: Config) -> tuple[str, str] | None:
    """(location, repository) of the Artifact Registry repository the image is pushed to."""
    match = re.match(r"^([a-z0-9-]+)-docker\.pkg\.dev/[^/]+/([^/]+)/", config.build.image)
    return (match.group(1), match.group(2)) if match else None


def _roles(config: Config) -> list[tuple[str, str, str, str]]:
    """(member, where, role, reason): member is an account id, `agent:` + an email, or an email; where is
    "project", a gs:// bucket (with `?prefix` for a condition), a topic:, a secret:, a run: function, an account:
    or a registry: repository."""
    state = f"gs://{config.state.bucket}"
    frontend = f"gs://{config.frontend.bucket}"
    topics = config.topics
    build = config.build.service_account
    build_email = _account_email(config, build)
    rows: list[tuple[str, str, str, str]] = [
        ("tagship-deploy-on-tag", state, "roles/storage.objectUser", "create the release record (create-if-absent)"),
        ("tagship-deploy-on-tag", "project", "roles/cloudbuild.builds.editor", "submit the release's build"),
        ("tagship-deploy-on-tag", f"account:{build_email}", "roles/iam.serviceAccountUser",
         "submit builds that run as the build's account (and no other)"),
        ("tagship-deploy-on-tag", f"secret:{WEBHOOK_SECRET}", "roles/secretmanager.secretAccessor", "verify GitHub's signature"),
        ("tagship-deploy-on-tag", f"secret:{SLACK_SECRET}", "roles/secretmanager.secretAccessor",
         "tell the channel when a build could not be submitted"),
        ("tagship-deploy-progress", state, "roles/storage.objectUser", "release records, lease, frontend builds"),
        ("tagship-deploy-progress", frontend, "roles/storage.objectUser", "publish the frontend"),
        ("tagship-deploy-progress", "project", "roles/run.developer", "deploy revisions, move traffic, run the migrations job"),
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
        ("tagship-rollback", f"topic:{topics.progress}", "roles/pubsub.publisher", "start a release that waited"),
        ("tagship-rollback", f"secret:{SLACK_SECRET}", "roles/secretmanager.secretAccessor", "post to Slack"),
    ]
    if config.slack.actors:
        rows += [
            ("tagship-slack-actions", state, "roles/storage.objectUser", "read what serves; mark each click once"),
            ("tagship-slack-actions", f"topic:{topics.rollback}", "roles/pubsub.publisher", "ask for the rollback"),
            ("tagship-slack-actions", f"secret:{SIGNING_SECRET}", "roles/secretmanager.secretAccessor",
             "verify Slack's signature"),
            ("tagship-slack-actions", f"secret:{SLACK_SECRET}", "roles/secretmanager.secretAccessor",
             "say in the thread who pressed"),
        ]
    for what, email in runtime_accounts(config):
        for account in ("tagship-deploy-progress", "tagship-rollback"):
            rows.append((account, f"account:{email}", "roles/iam.serviceAccountUser",
                         f"deploy revisions that run as {what}'s account (this account only, not project-wide)"))
    repository = _image_repository(config)
    rows.append((build, f"registry:{repository[0]}/{repository[1]}" if repository else "project",
                 "roles/artifactregistry.writer", "push the release's image"))
    rows += [
        (build, "project", "roles/logging.logWriter", "write the build's log (it logs to Cloud Logging only)"),
        (build, f"{state}?{config.frontend.releases_prefix}", "roles/storage.objectUser",
         f"upload the built frontend under {config.frontend.releases_prefix} (a condition keeps it there)"),
    ]
    github = github_secret(config)
    if github:
        rows += [(account, f"secret:{github[1]}", "roles/secretmanager.secretAccessor",
                  "set the release's GitHub deployment status") for account in STATUS_FUNCTIONS]
    if config.build.github_token_secret:
        rows.append((build, f"secret:{config.build.github_token_secret}", "roles/secretmanager.secretAccessor",
                     "fetch the private repository with the GitHub token"))
    for spec in functions(config):
        if spec.trigger_topic is not None:
            rows.append((spec.account, f"run:{spec.name}", "roles/run.invoker",
                         "its Eventarc trigger runs as this account and must be let in"))
    rows += [
        ("agent:service-{PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com", "project",
         "roles/iam.serviceAccountTokenCreator",
         "Pub/Sub signs the triggers' pushes (granted by itself in projects made after 8 April 2021)"),
    ]
    return rows


def _monitoring_agent_grant(config: Config) -> tuple[str, str, str, str]:
    return ("agent:service-{PROJECT_NUMBER}@gcp-sa-monitoring-notification.iam.gserviceaccount.com",
            f"topic:{config.topics.rollback}", "roles/pubsub.publisher",
            "Monitoring's notification agent publishes the alert's incidents to the rollback topic")


def _member(config: Config, member: str) -> str:
    if member.startswith("agent:"):
        return f"serviceAccount:{member[6:]}"
    return f"serviceAccount:{member if '@' in member else _account_email(config, member)}"


def _grant(config: Config, row: tuple[str, str, str, str]) -> Step:
    account, where, role, reason = row
    project, region = config.project.id, config.project.region
    p = ("--project", project)
    member = _member(config, account)
    if where == "project":
        command: tuple[str, ...] = ("gcloud", "projects", "add-iam-policy-binding", project, "--member", member,
                                    "--role", role, "--condition", "None")
    elif where.startswith("gs://") and "?" in where:
        bucket, prefix = where[5:].split("?", 1)
        condition = (f'expression=resource.type == "storage.googleapis.com/Bucket" || '
                     f'resource.name.startsWith("projects/_/buckets/{bucket}/objects/{prefix}"),'
                     f"title=tagship-{prefix.strip('/') or 'objects'}")
        command = ("gcloud", "storage", "buckets", "add-iam-policy-binding", f"gs://{bucket}", "--member", member,
                   "--role", role, "--condition", condition, *p)
    elif where.startswith("gs://"):
        command = ("gcloud", "storage", "buckets", "add-iam-policy-binding", where, "--member", member, "--role", role, *p)
    elif where.startswith("topic:"):
        command = ("gcloud", "pubsub", "topics", "add-iam-policy-binding", where[6:], "--member", member, "--role", role, *p)
    elif where.startswith("secret:"):
        command = ("gcloud", "secrets", "add-iam-policy-binding", where[7:], "--member", member, "--role", role, *p)
    elif where.startswith("run:"):
        command = ("gcloud", "functions", "add-invoker-policy-binding", where[4:], "--region", region, "--member",
                   member, *p)
    elif where.startswith("account:"):
        command = ("gcloud", "iam", "service-accounts", "add-iam-policy-binding", where[8:], "--member", member,
                   "--role", role, *p)
    elif where.startswith("registry:"):
        location, repository = where[9:].split("/", 1)
        command = ("gcloud", "artifacts", "repositories", "add-iam-policy-binding", repository, "--location", location,
                   "--member", member, "--role", role, *p)
    else:
        raise ValueError(f"no grant for {where}")
    who = account[6:] if account.startswith("agent:") else account
    needs = (_project_number(config),) if "{" + PROJECT_NUMBER + "}" in " ".join(command) else ()
    return Step(f"{who}: {role} on {where.replace('?', ' under ')}", command, reason=reason, needs=needs)


def plan(config: Config, source_dir: str = ".", config_path: str = "tagship.toml") -> list[Step]:
    """Every command, in order. `config_path` is the config the functions will run with, relative to `source_dir`
    (see `config_in_source`)."""
    project, region = config.project.id, config.project.region
    p = ("--project", project)
    steps: list[Step] = [
        Step("enable the APIs tagship uses", ("gcloud", "services", "enable", *APIS, *p)),
        Step(f"state bucket gs://{config.state.bucket}",
             ("gcloud", "storage", "buckets", "create", f"gs://{config.state.bucket}", "--location", region,
              "--uniform-bucket-level-access", *p),
             check=("gcloud", "storage", "buckets", "describe", f"gs://{config.state.bucket}", *p)),
    ]
    steps.append(Step(
        f"frontend bucket gs://{config.frontend.bucket}: index.html as its main page and for every unknown path",
        ("gcloud", "storage", "buckets", "update", f"gs://{config.frontend.bucket}", "--web-main-page-suffix",
         "index.html", "--web-error-page", "index.html", *p),
        reason="a bucket served by a CNAME answers its website configuration; the single-page app routes the rest"))
    topics = config.topics
    for topic in (topics.builds, topics.progress, topics.health, topics.rollback):
        steps.append(Step(f"topic {topic}", ("gcloud", "pubsub", "topics", "create", topic, *p),
                          check=("gcloud", "pubsub", "topics", "describe", topic, *p)))
    accounts = [(spec.account, f"tagship {spec.entry_point}") for spec in functions(config)]
    accounts.append((config.build.service_account, "tagship release build"))
    for account, display in accounts:
        email = _account_email(config, account)
        steps.append(Step(f"service account {account}",
                          ("gcloud", "iam", "service-accounts", "create", account, "--display-name", display, *p),
                          check=("gcloud", "iam", "service-accounts", "describe", email, *p)))
    github = github_secret(config)
    secrets = ([WEBHOOK_SECRET, SLACK_SECRET] + ([SIGNING_SECRET] if config.slack.actors else [])
               + ([github[1]] if github else []))
    for secret in secrets:
        steps.append(Step(f"secret {secret} (add its value with: gcloud secrets versions add {secret} --data-file=-)",
                          ("gcloud", "secrets", "create", secret, "--replication-policy", "automatic", *p),
                          check=("gcloud", "secrets", "describe", secret, *p)))
    rows = _roles(config)
    steps += [_grant(config, row) for row in rows if not row[1].startswith("run:")]
    for spec in functions(config):
        email = _account_email(config, spec.account)
        command = ["gcloud", "functions", "deploy", spec.name, "--gen2", "--runtime", "python311", "--region", region,
                   "--source", source_dir, "--entry-point", spec.entry_point,
                   "--service-account", email, "--memory", spec.memory,
                   "--timeout", spec.timeout, "--set-env-vars", f"TAGSHIP_CONFIG={config_path}",
                   "--set-secrets", ",".join(spec.secrets), *p]
        if spec.trigger_topic is None:
            command += ["--trigger-http", "--allow-unauthenticated"]
        else:
            command += ["--trigger-topic", spec.trigger_topic, "--trigger-service-account", email, "--retry"]
        steps.append(Step(f"function {spec.name}", tuple(command),
                          reason=f"2nd gen, Python 3.11, reading the config {config_path}"))
    steps += [_grant(config, row) for row in rows if row[1].startswith("run:")]
    progress = next(s for s in functions(config) if s.entry_point == "deploy_progress")
    steps.append(Step(
        f"second trigger of {progress.name}: tagship's own progress topic",
        ("gcloud", "eventarc", "triggers", "create", "tagship-progress", "--location", region,
         "--destination-run-service", progress.name, "--destination-run-region", region,
         "--event-filters", "type=google.cloud.pubsub.topic.v1.messagePublished",
         "--transport-topic", f"projects/{project}/topics/{topics.progress}",
         "--service-account", _account_email(config, progress.account), *p),
        reason=f"runs as {progress.account}, which may invoke {progress.name} (granted above)",
        check=("gcloud", "eventarc", "triggers", "describe", "tagship-progress", "--location", region, *p)))
    steps.append(Step(
        "Cloud Scheduler: a watchdog tick every minute",
        ("gcloud", "scheduler", "jobs", "create", "pubsub", "tagship-health", "--location", region, "--schedule",
         "* * * * *", "--topic", topics.health, "--message-body", '{"job":"tagship-health"}', *p),
        check=("gcloud", "scheduler", "jobs", "describe", "tagship-health", "--location", region, *p)))
    if config.api.url:
        steps.append(Step(
            "uptime check on the API's health",
            ("gcloud", "monitoring", "uptime", "create", UPTIME_CHECK, "--resource-type", "uptime-url",
             "--resource-labels", f"host={api_host(config)},project_id={project}", "--path", config.api.health_path,
             "--protocol", "https", *p)))
        steps.append(Step(
            "notification channel: Pub/Sub to the rollback topic",
            ("gcloud", "beta", "monitoring", "channels", "create", "--display-name", CHANNEL_NAME,
             "--type", "pubsub", "--channel-labels", f"topic=projects/{project}/topics/{topics.rollback}", *p),
            check=("gcloud", "beta", "monitoring", "channels", "list", "--filter", f'displayName="{CHANNEL_NAME}"',
                   "--format", "value(name)", "--limit", "1", *p)))
        steps.append(_grant(config, _monitoring_agent_grant(config)))
        steps.append(Step(
            "alert policy on the uptime check, notifying the channel above",
            ("gcloud", "alpha", "monitoring", "policies", "create", "--policy-from-file", POLICY_FILE,
             "--notification-channels", "{" + CHANNEL + "}", *p),
            reason=f"{POLICY_FILE} is written by `python main.py setup`", needs=(_channel(config),)))
    return steps


def lookups(steps: list[Step]) -> list[Lookup]:
    """Every value the steps need looked up, once each, in the order first needed."""
    seen: dict[str, Lookup] = {}
    for step in steps:
        for lookup in step.needs:
            seen.setdefault(lookup.name, lookup)
    return list(seen.values())
