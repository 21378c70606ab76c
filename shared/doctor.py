"""`python main.py doctor`: read a real project through the ports, judge it (`shared.core.doctor`), print the
findings. Read-only: every call it makes is a get or a list (Cloud Run, Storage, Pub/Sub, Monitoring), a
`gcloud ... describe/list` (APIs, IAM, secrets' version counts, the scheduler), Slack's auth.test and
conversations.info/list, and a GET of the health path. It never writes, never publishes and never reads a secret's
value.

What an API will not answer (disabled, denied, gcloud missing or signed out) is "not checked" with the reason.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable, TypeVar

from shared.config import Config
from shared.core import doctor as judge
from shared.core.doctor import Finding, Unread
from shared.errors import CannotRead, TagshipError
from shared.install_plan import SLACK_SECRET, WEBHOOK_SECRET, plan
from shared.ports import Http, Inventory, ProjectReader, RunResource, SlackAccess

T = TypeVar("T")
MAX_TAG_PROBES = 3  # a service keeps a tag per release; the newest few say whether tag URLs are let in
SYMBOLS = {judge.PASS: "ok  ", judge.WARN: "warn", judge.FAIL: "FAIL", judge.NOT_CHECKED: "--  "}


def _read(call: Callable[[], T]) -> T | Unread:
    try:
        return call()
    except CannotRead as error:
        return Unread(str(error)[:300])
    except TagshipError as error:  # an adapter's mapped error: said, never a crash half way through the checks
        return Unread(f"could not read: {str(error)[:300]}")


def _probes(config: Config, service: Any, http: Http) -> dict[str, Any]:
    if not isinstance(service, RunResource) or not service.uri:
        return {}
    urls = [service.uri.rstrip("/") + config.api.health_path]
    tags = sorted((service.tag_urls or {}).items())[-MAX_TAG_PROBES:]
    urls += [url.rstrip("/") + config.api.health_path for _, url in tags]
    return {url: http.request(url, timeout=config.deploy.probe_timeout_seconds) for url in urls}


def examine(config: Config, reader: ProjectReader, inventory: Inventory, slack: SlackAccess | None,
            http: Http) -> list[Finding]:
    """Every finding, in the order a person fixes them: APIs, what tagship deploys onto, buckets, topics and
    triggers, the scheduler, secrets, identities, Slack, alerting. `slack` None: no bot token to check with."""
    steps = plan(config)
    c = config
    findings = judge.apis(config, _read(inventory.enabled_apis))
    api = _read(lambda: reader.run_resource("service", c.api.service))
    findings += judge.run_resource(config, "api", api)
    findings += judge.tag_health(config, api, _probes(config, api, http))
    worker_kind = "pool" if c.worker.kind == "pool" else "service"
    findings += judge.run_resource(config, "worker", _read(lambda: reader.run_resource(worker_kind, c.worker.service)))
    findings += judge.run_resource(config, "migrations", _read(lambda: reader.run_resource("job", c.migrations.job)))
    findings += judge.buckets(config, steps, _read(lambda: reader.bucket(c.state.bucket)),
                              _read(lambda: reader.bucket(c.frontend.bucket)))
    names = (c.topics.builds, c.topics.progress, c.topics.health, c.topics.rollback)
    exists = {t: _read(lambda t=t: reader.topic_exists(t)) for t in names}  # type: ignore[misc]
    pushes = {t: _read(lambda t=t: reader.push_endpoints(t)) if exists[t] is True else Unread("no topic")  # type: ignore[misc]
              for t in names}
    findings += judge.topics(config, steps, exists, pushes)
    findings += judge.scheduler(config, steps, _read(lambda: inventory.scheduler_job(c.project.region, "tagship-health")))
    findings += judge.secrets(config, steps, {s: _read(lambda s=s: inventory.secret_versions(s))  # type: ignore[misc]
                                              for s in (WEBHOOK_SECRET, SLACK_SECRET)})
    roles = {role for _, role, _ in judge.project_grants(steps)}
    findings += judge.identities(steps, _read(inventory.service_accounts),
                                 {r: _read(lambda r=r: inventory.project_members(r)) for r in roles})  # type: ignore[misc]
    if slack is None:
        findings += judge.slack(config, False, Unread("no token"), Unread("no token"))
    else:
        identity = _read(slack.identity)
        channel = _read(lambda: slack.channel(c.slack.channel)) if not isinstance(identity, Unread) and identity.ok \
            else Unread("the token does not work")
        findings += judge.slack(config, True, identity, channel)
    findings += judge.alerting(config, steps, _read(reader.notification_channels), _read(reader.alert_policies))
    return findings


def as_text(findings: list[Finding]) -> str:
    lines = []
    for finding in findings:
        lines.append(f"{SYMBOLS.get(finding.status, finding.status)}  {finding.check}: {finding.detail}")
        if finding.fix and finding.status in (judge.WARN, judge.FAIL):
            lines.append(f"      fix: {finding.fix}")
    counts = {status: sum(1 for f in findings if f.status == status) for status in SYMBOLS}
    lines.append(", ".join(f"{n} {status}" for status, n in counts.items()))
    return "\n".join(lines)


def as_json(findings: list[Finding]) -> str:
    return json.dumps({"findings": [dataclasses.asdict(f) for f in findings],
                       "failed": judge.worst(findings) == judge.FAIL}, indent=2)
