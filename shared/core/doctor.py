"""`python main.py doctor`'s verdicts (pure): what was read of a project, judged against the config.

Each check gives one `Finding`: pass, warn, fail, or not checked, and for a warn or a fail the command that fixes it
(the gcloud command `python main.py setup` would run, taken from `shared.install_plan.plan`, or the one to run on
what tagship does not create). What could not be read arrives as `Unread(reason)` and is "not checked" with that
reason: a check never passes on what it did not see. Nothing here reads anything; `shared/doctor.py` does.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Sequence, TypeAlias, TypeVar

from shared.config import Config
from shared.install_plan import (
    APIS,
    CHANNEL_NAME,
    SLACK_SECRET,
    WEBHOOK_SECRET,
    Step,
    functions,
)
from shared.install_policy import frontend_host
from shared.ports import (
    BucketFacts,
    ChannelFacts,
    HttpAnswer,
    PolicyFacts,
    RunResource,
    SchedulerJob,
    SlackChannel,
    SlackIdentity,
)
from shared.smoke import refused_host

PASS, WARN, FAIL, NOT_CHECKED = "pass", "warn", "fail", "not checked"
ROLLBACK_LABEL = "tagship_rollback"
T = TypeVar("T")


@dataclass(frozen=True)
class Unread:
    """An API doctor could not read, and why (not enabled, denied, no gcloud)."""
    reason: str


@dataclass(frozen=True)
class Finding:
    check: str
    status: str
    detail: str
    fix: str = ""  # a command, or what to do, for a warn or a fail


Seen: TypeAlias = "T | Unread"


def _fix_from(steps: Sequence[Step], title: str) -> str:
    """The shell line of the setup step titled `title` (or starting so)."""
    for step in steps:
        if step.title == title or step.title.startswith(title):
            return step.shell()
    return "python main.py setup  (and run the step it prints for this)"


def _not_checked(check: str, seen: Unread) -> Finding:
    return Finding(check, NOT_CHECKED, seen.reason)


def apis(config: Config, enabled: Seen[frozenset[str]]) -> list[Finding]:
    if isinstance(enabled, Unread):
        return [_not_checked("APIs enabled", enabled)]
    missing = [api for api in APIS if api not in enabled]
    if not missing:
        return [Finding("APIs enabled", PASS, f"all {len(APIS)} APIs tagship uses are enabled")]
    return [Finding("APIs enabled", FAIL, f"not enabled: {', '.join(missing)}",
                    shlex.join(["gcloud", "services", "enable", *missing, "--project", config.project.id]))]


def _containers(check: str, resource: RunResource, named: str, key: str) -> Finding | None:
    if len(resource.containers) > 1 and not named:
        return Finding(check, FAIL, f"{len(resource.containers)} containers ({', '.join(resource.containers)}) and "
                       f"{key} is empty: tagship never guesses which one is the app", f"set {key} in the config")
    if named and named not in resource.containers:
        return Finding(check, FAIL, f"{key} names {named!r}, which is none of its containers "
                       f"({', '.join(c or '(unnamed)' for c in resource.containers)})", f"set {key} in the config")
    return None


def run_resource(config: Config, role: str, seen: Seen[RunResource | None]) -> list[Finding]:
    """The API service, the worker (service or pool) or the migrations job: it exists, its app container is
    known, and a worker service keeps a CPU (min instances 1, CPU always allocated) for Celery."""
    c, region, project = config, config.project.region, config.project.id
    name, kind, key = {
        "api": (c.api.service, "service", "api.container"),
        "worker": (c.worker.service, "pool" if c.worker.kind == "pool" else "service", "worker.container"),
        "migrations": (c.migrations.job, "job", "api.container"),
    }[role]
    check = f"{role} {kind} {name}"
    if isinstance(seen, Unread):
        return [_not_checked(check, seen)]
    if seen is None:
        verb = {"service": ["run", "deploy"], "job": ["run", "jobs", "create"],
                "pool": ["beta", "run", "worker-pools", "deploy"]}[kind]  # worker pools: gcloud's beta track
        return [Finding(check, FAIL, f"no Cloud Run {kind} {name} in {region}: tagship deploys onto it but does not "
                        "create it", shlex.join(["gcloud", *verb, name, "--image", c.build.image, "--region",
                                                 region, "--project", project]))]
    named = c.worker.container if role == "worker" else c.api.container
    wrong = _containers(check, seen, named, key)
    if wrong:
        return [wrong]
    if role == "worker" and kind == "service" and (seen.min_instances < 1 or seen.cpu_throttled):
        return [Finding(check, FAIL, f"min instances {seen.min_instances}, CPU "
                        f"{'only during requests' if seen.cpu_throttled else 'always allocated'}: a Celery worker "
                        "serves no requests, so it needs both min instances 1 and CPU always allocated (or "
                        "worker.kind = \"pool\")",
                        shlex.join(["gcloud", "run", "services", "update", name, "--region", region,
                                    "--no-cpu-throttling", "--min-instances", "1", "--project", project]))]
    return [Finding(check, PASS, f"exists, {len(seen.containers)} container(s)"
                    + (f", min instances {seen.min_instances}, CPU always allocated" if role == "worker"
                       and kind == "service" else ""))]


def tag_health(config: Config, service: Seen[RunResource | None],
               answers: dict[str, HttpAnswer]) -> list[Finding]:
    """The API's own URL and each tagged revision's URL answer the health path with 200; a Django refusing the
    tag URL's host (DisallowedHost, 400) is said as such. `answers` maps each URL probed to its answer."""
    check = "API answers its health path"
    if isinstance(service, Unread):
        return [_not_checked(check, service)]
    if service is None or not service.uri:
        return [Finding(check, NOT_CHECKED, f"the service {config.api.service} has no URL to probe")]
    findings = []
    for url, answer in answers.items():
        where = "the service URL" if url.startswith(service.uri) else "a tag URL"
        if answer.status == 200:
            findings.append(Finding(check, PASS, f"{where} {url} answered 200"))
        elif answer.status == 400 and refused_host(answer.body):
            findings.append(Finding(check, FAIL, f"{where} {url} answered 400: Django refuses the host "
                                    "(DisallowedHost), so every smoke test would fail",
                                    "add '.a.run.app' to ALLOWED_HOSTS in the Django settings and deploy"))
        else:
            said = f"answered {answer.status}" if answer.status else f"did not answer ({answer.error[:200]})"
            findings.append(Finding(check, FAIL, f"{where} {url} {said}",
                                    f"make {config.api.health_path} answer 200 on the API"))
    if not any(not url.startswith(service.uri) for url in answers):
        findings.append(Finding("API tag URLs", WARN, "no tagged revision to probe yet: the first release's smoke "
                                "test is the first to reach a tag URL", ""))
    return findings


def buckets(config: Config, steps: Sequence[Step], state: Seen[BucketFacts | None],
            frontend: Seen[BucketFacts | None]) -> list[Finding]:
    out = []
    check = f"state bucket gs://{config.state.bucket}"
    if isinstance(state, Unread):
        out.append(_not_checked(check, state))
    elif state is None:
        out.append(Finding(check, FAIL, "does not exist", _fix_from(steps, f"state bucket gs://{config.state.bucket}")))
    else:
        out.append(Finding(check, PASS, "exists"))
    check = f"frontend bucket gs://{config.frontend.bucket}"
    if isinstance(frontend, Unread):
        out.append(_not_checked(check, frontend))
    elif frontend is None:
        out.append(Finding(check, FAIL, "does not exist: tagship publishes into it but does not create it",
                           shlex.join(["gcloud", "storage", "buckets", "create", f"gs://{config.frontend.bucket}",
                                       "--location", config.project.region, "--project", config.project.id])))
    elif (frontend.main_page, frontend.not_found_page) != ("index.html", "index.html"):
        out.append(Finding(check, WARN, f"website main page {frontend.main_page or '(none)'!r}, error page "
                           f"{frontend.not_found_page or '(none)'!r}: served by a CNAME, the single-page app "
                           "needs index.html for both", _fix_from(steps, f"frontend bucket gs://{config.frontend.bucket}")))
    else:
        out.append(Finding(check, PASS, "exists, index.html as its main and error page"))
    host = frontend_host(config)
    if host and not host.replace(".", "").isdigit() and host != "localhost":
        check = f"frontend bucket named for {host}"
        if host == config.frontend.bucket.lower():
            out.append(Finding(check, PASS, "a CNAME to c.storage.googleapis.com serves it"))
        else:
            out.append(Finding(check, WARN, f"a CNAME to c.storage.googleapis.com serves only a bucket named {host}, "
                               f"not {config.frontend.bucket}; fine behind a load balancer",
                               f'set frontend.bucket = "{host}" (a bucket of that name), or serve it through a load '
                               "balancer"))
    return out


def topics(config: Config, steps: Sequence[Step], exists: dict[str, Seen[bool]],
           pushes: dict[str, Seen[list[str]]]) -> list[Finding]:
    """Each topic exists and is delivered to a function by a push subscription (an Eventarc trigger makes one)."""
    progress = next(s for s in functions(config) if s.entry_point == "deploy_progress")
    consumer = {spec.trigger_topic: spec.name for spec in functions(config) if spec.trigger_topic}
    consumer[config.topics.progress] = progress.name
    out = []
    for topic in (config.topics.builds, config.topics.progress, config.topics.health, config.topics.rollback):
        seen = exists[topic]
        if isinstance(seen, Unread):
            out.append(_not_checked(f"topic {topic}", seen))
            continue
        if not seen:
            out.append(Finding(f"topic {topic}", FAIL, "does not exist", _fix_from(steps, f"topic {topic}")))
            continue
        out.append(Finding(f"topic {topic}", PASS, "exists"))
        endpoints = pushes[topic]
        check = f"trigger of {consumer[topic]} on {topic}"
        if isinstance(endpoints, Unread):
            out.append(_not_checked(check, endpoints))
        elif not any(endpoints):
            fix = _fix_from(steps, "second trigger of" if topic == config.topics.progress else f"function {consumer[topic]}")
            out.append(Finding(check, FAIL, "no push subscription delivers this topic to a function", fix))
        else:
            out.append(Finding(check, PASS, f"{sum(1 for e in endpoints if e)} push subscription(s)"))
    return out


def scheduler(config: Config, steps: Sequence[Step], job: Seen[SchedulerJob | None]) -> list[Finding]:
    check = "Cloud Scheduler job tagship-health"
    fix = _fix_from(steps, "Cloud Scheduler")
    if isinstance(job, Unread):
        return [_not_checked(check, job)]
    if job is None:
        return [Finding(check, FAIL, "does not exist: the watchdog never ticks", fix)]
    wanted = f"projects/{config.project.id}/topics/{config.topics.health}"
    if job.topic != wanted:
        return [Finding(check, FAIL, f"publishes to {job.topic or '(no Pub/Sub target)'}, not {wanted}", fix)]
    if job.state != "ENABLED":
        return [Finding(check, FAIL, f"is {job.state}", shlex.join(["gcloud", "scheduler", "jobs", "resume",
                        "tagship-health", "--location", config.project.region, "--project", config.project.id]))]
    return [Finding(check, PASS, f"enabled, {job.schedule!r}, to {config.topics.health}")]


def secrets(config: Config, steps: Sequence[Step], versions: dict[str, Seen[int | None]]) -> list[Finding]:
    """Each secret exists with an enabled version; only counts are ever read, never a value."""
    out = []
    for secret in (WEBHOOK_SECRET, SLACK_SECRET):
        seen = versions[secret]
        check = f"secret {secret}"
        if isinstance(seen, Unread):
            out.append(_not_checked(check, seen))
        elif seen is None:
            out.append(Finding(check, FAIL, "does not exist", _fix_from(steps, f"secret {secret}")))
        elif seen < 1:
            out.append(Finding(check, FAIL, "has no enabled version: the functions cannot start",
                               f"printf '%s' \"$VALUE\" | gcloud secrets versions add {secret} --data-file=- "
                               f"--project {config.project.id}"))
        else:
            out.append(Finding(check, PASS, f"{seen} enabled version(s) (the value is not read)"))
    return out


def project_grants(steps: Sequence[Step]) -> list[tuple[str, str, str]]:
    """(member, role, the command) of every project-wide grant setup makes to tagship's own accounts."""
    grants = []
    for step in steps:
        command = step.command
        if command[:3] == ("gcloud", "projects", "add-iam-policy-binding") and not step.needs:
            member, role = command[command.index("--member") + 1], command[command.index("--role") + 1]
            grants.append((member, role, step.shell()))
    return grants


def identities(steps: Sequence[Step], accounts: Seen[frozenset[str]],
               members: dict[str, Seen[frozenset[str]]]) -> list[Finding]:
    out = []
    for step in steps:
        if step.title.startswith("service account "):
            email = step.check[step.check.index("describe") + 1] if step.check else ""
            check = step.title
            if isinstance(accounts, Unread):
                out.append(_not_checked(check, accounts))
            elif email not in accounts:
                out.append(Finding(check, FAIL, f"{email} does not exist", step.shell()))
            else:
                out.append(Finding(check, PASS, "exists"))
    for member, role, command in project_grants(steps):
        check = f"{member.removeprefix('serviceAccount:')} has {role}"
        seen = members[role]
        if isinstance(seen, Unread):
            out.append(_not_checked(check, seen))
        elif member not in seen:
            out.append(Finding(check, FAIL, "not granted on the project", command))
        else:
            out.append(Finding(check, PASS, "granted on the project"))
    return out


def slack(config: Config, token_set: bool, identity: Seen[SlackIdentity],
          channel: Seen[SlackChannel | None]) -> list[Finding]:
    """The bot token works, may post (chat:write), may read the members of the approver groups it is given
    (usergroups:read), and the bot is in the channel (None: Slack has no such channel the bot can see)."""
    label = config.slack.channel
    if not token_set:
        return [Finding("Slack bot", NOT_CHECKED, "SLACK_BOT_TOKEN is not set here: doctor reads it from the "
                        "environment, as the functions do (set it to the app's bot token to check)")]
    if isinstance(identity, Unread):
        return [_not_checked("Slack bot", identity)]
    if not identity.ok:
        return [Finding("Slack bot", FAIL, f"auth.test answered {identity.error}",
                        "set SLACK_BOT_TOKEN (and the secret tagship-slack-bot-token) to the app's Bot User OAuth "
                        "Token (xoxb-...)")]
    out = [Finding("Slack bot", PASS, f"the token is the bot {identity.user_id}")]
    if "chat:write" not in identity.scopes:
        out.append(Finding("Slack bot may post", FAIL, f"the token lacks chat:write (has: "
                           f"{', '.join(sorted(identity.scopes)) or 'none'})",
                           "add chat:write under OAuth & Permissions and reinstall the app"))
    else:
        out.append(Finding("Slack bot may post", PASS, "the token has chat:write"))
    groups = sorted(a for a in config.gates.approvers if a.startswith("S"))
    if groups and "usergroups:read" not in identity.scopes:
        out.append(Finding("Slack approver groups", FAIL, f"gates.approvers names {', '.join(groups)} but the token "
                           "lacks usergroups:read: Slack will not say who is in them, so a click allows no one",
                           "add usergroups:read under OAuth & Permissions and reinstall the app"))
    elif groups:
        out.append(Finding("Slack approver groups", PASS, "the token has usergroups:read for the groups in "
                           "gates.approvers"))
    check = f"Slack bot in {label}"
    if isinstance(channel, Unread):
        out.append(_not_checked(check, channel))
    elif channel is None:
        out.append(Finding(check, FAIL, f"Slack has no channel {label} the bot can see",
                           "check slack.channel; for a private channel, /invite @your-bot in it"))
    elif channel.is_archived:
        out.append(Finding(check, FAIL, f"{label} is archived", "set slack.channel to a live channel"))
    elif not channel.is_member and "chat:write.public" not in identity.scopes:
        out.append(Finding(check, FAIL, f"the bot is not a member of {label}: posts get not_in_channel",
                           f"/invite @your-bot in {label}"))
    else:
        out.append(Finding(check, PASS, f"{label} ({channel.id}) found, the bot "
                           + ("is a member" if channel.is_member else "may post to it as a public channel")))
    return out


def alerting(config: Config, steps: Sequence[Step], channels: Seen[list[ChannelFacts]],
             policies: Seen[list[PolicyFacts]]) -> list[Finding]:
    """The Pub/Sub notification channel to the rollback topic, and a rollback alert policy notifying it."""
    if not config.api.url:
        return [Finding("alert policy", NOT_CHECKED, "api.url is empty: setup installs no uptime check or alert")]
    if isinstance(channels, Unread):
        return [_not_checked("notification channel", channels)]
    topic = f"projects/{config.project.id}/topics/{config.topics.rollback}"
    ours = [c for c in channels if c.kind == "pubsub" and c.topic == topic and c.enabled]
    out = []
    if not ours:
        out.append(Finding("notification channel", FAIL, f"no enabled Pub/Sub channel to {topic}",
                           _fix_from(steps, "notification channel")))
    else:
        out.append(Finding("notification channel", PASS, f"{ours[0].display_name or CHANNEL_NAME} publishes to {topic}"))
    if isinstance(policies, Unread):
        return [*out, _not_checked("alert policy", policies)]
    rollback = [p for p in policies if p.user_labels.get(ROLLBACK_LABEL) == "true"
                or p.display_name in config.rollback.trigger_policies]
    names = {c.name for c in ours}
    wired = [p for p in rollback if p.enabled and names & set(p.channels)]
    fix = _fix_from(steps, "alert policy")
    if wired:
        out.append(Finding("alert policy", PASS, f"{wired[0].display_name} notifies the rollback channel"))
    elif rollback:
        out.append(Finding("alert policy", FAIL, f"{rollback[0].display_name} is "
                           + ("disabled" if not rollback[0].enabled else "not wired to the rollback channel"), fix))
    else:
        out.append(Finding("alert policy", FAIL, f"no policy labelled {ROLLBACK_LABEL}: \"true\" or named in "
                           "rollback.trigger_policies", fix))
    return out


def worst(findings: Sequence[Finding]) -> str:
    """The doctor's exit status: 1 when anything fails, else 0 (a warn or a not checked is said, not failed)."""
    return FAIL if any(f.status == FAIL for f in findings) else PASS
