"""The config contract: one TOML file, loaded once into frozen dataclasses, validated key by key.

Every error names the key (`watchdog.min_requests`), says what was expected and what was found. Secrets never
live in the file: `Secrets.from_env()` reads them from the environment, which Cloud Functions fills from Secret
Manager. The dataclasses below are the schema: each field's `doc` is what the configuration reference shows.
"""
from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.config_fields import section as _section
from shared.errors import ConfigError

CONFIG_ENV = "TAGSHIP_CONFIG"
DEFAULT_PATH = "tagship.toml"
REQUIRED = dataclasses.MISSING


def _f(doc: str, default: Any = REQUIRED, **checks: Any) -> Any:
    metadata = {"doc": doc, **checks}
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata=metadata)
    if default is REQUIRED:
        return field(metadata=metadata)
    return field(default=default, metadata=metadata)


_ACCOUNT = (r"^([a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z][a-z0-9-]{4,28}[a-z0-9]\.iam\.gserviceaccount\.com"
            r"|[0-9]+-compute@developer\.gserviceaccount\.com)?$")


@dataclass(frozen=True)
class ProjectConfig:
    id: str = _f("Google Cloud project id", pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
    region: str = _f("Region of Cloud Run, the functions and the job", pattern=r"^[a-z]+-[a-z]+[0-9]{1,2}$")


@dataclass(frozen=True)
class GithubConfig:
    repository: str = _f("owner/name of the repository whose tag pushes deploy", pattern=r"^[\w.-]+/[\w.-]+$")
    tag_pattern: str = _f("Regular expression the whole tag must match (ASCII) to deploy", r"^v[0-9]+\.[0-9]+\.[0-9]+$", regex=True)
    deployments: bool = _f(
        "Whether each release is a GitHub deployment whose status follows it (needs GITHUB_TOKEN, or "
        "github.app_id and GITHUB_APP_PRIVATE_KEY)", False)
    environment: str = _f("GitHub environment the deployments are made to", "production",
                          pattern=r"^[A-Za-z0-9][A-Za-z0-9._/ -]{0,254}$")
    production_environment: bool = _f("Whether GitHub shows that environment as a production one", True)
    app_id: int = _f("GitHub App id to authenticate as (with GITHUB_APP_PRIVATE_KEY); 0: use GITHUB_TOKEN", 0,
                     minimum=0)
    installation_id: int = _f("The GitHub App's installation id on the repository's owner (with github.app_id)", 0,
                              minimum=0)
    api_url: str = _f("GitHub REST API base URL (GitHub Enterprise: https://HOST/api/v3)", "https://api.github.com",
                      pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
    timeout_seconds: float = _f("Longest a GitHub call may take before it is given up", 5.0, minimum=0.1, maximum=60)


@dataclass(frozen=True)
class BuildConfig:
    image: str = _f("Artifact Registry image path (no tag), e.g. REGION-docker.pkg.dev/PROJECT/REPO/app")
    timeout_seconds: int = _f("Cloud Build timeout", 1200, minimum=60)
    frontend_dir: str = _f("Directory of the frontend in the repository (built with pnpm)", "frontend")
    context: str = _f("Docker build context, a directory of the repository (botbalance: backend)", ".")
    dockerfile: str = _f("Dockerfile, relative to the build context", "Dockerfile")
    repository_connection: str = _f(
        "Cloud Build repository (2nd gen connection) the source comes from: "
        "projects/P/locations/R/connections/C/repositories/NAME; empty to clone with the token below",
        "",
        pattern=r"^(projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/locations/[a-z0-9-]+/connections/[A-Za-z0-9_-]+/repositories/[A-Za-z0-9_.-]+)?$",
    )
    github_token_secret: str = _f(
        "Secret Manager secret holding a GitHub token that can read the repository, for teams without a connection",
        "", pattern=r"^([A-Za-z0-9_-]{1,255})?$",
    )
    service_account: str = _f("Service account id the release build runs as", "tagship-build",
                              pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")


@dataclass(frozen=True)
class ApiConfig:
    service: str = _f("Cloud Run service of the Django API", pattern=r"^[a-z][a-z0-9-]{0,48}$")
    url: str = _f("Public URL of the API (the uptime check probes it); empty to skip the uptime check", "", pattern=r"^(https?://.+)?$")
    health_path: str = _f("Liveness endpoint, must answer 200", "/api/health", pattern=r"^/")
    detailed_health_path: str = _f(
        "Endpoint reporting db, redis and celery", "/api/health/detailed", pattern=r"^/"
    )
    container: str = _f("Name of the app's container when the service has sidecars; empty when it has one",
                        "", pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)?$")
    service_account: str = _f(
        "Service account (email) its revisions run as; empty for the Compute Engine default account", "",
        pattern=_ACCOUNT)


@dataclass(frozen=True)
class WorkerConfig:
    service: str = _f("Cloud Run service (or worker pool) of the Celery worker", pattern=r"^[a-z][a-z0-9-]{0,48}$")
    command: tuple[str, ...] = _f("Command the worker runs (same image as the API)", nonempty=True)
    kind: str = _f("What the worker runs on: a Cloud Run worker pool (pool) or a service (service)", "service",
                   pattern=r"^(service|pool)$")
    container: str = _f("Name of the worker's container when it has sidecars; empty when it has one",
                        "", pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)?$")
    service_account: str = _f(
        "Service account (email) its revisions run as; empty for the Compute Engine default account", "",
        pattern=_ACCOUNT)


@dataclass(frozen=True)
class MigrationsConfig:
    job: str = _f("Cloud Run job that runs the migrations", pattern=r"^[a-z][a-z0-9-]{0,48}$")
    command: tuple[str, ...] = _f("Migration command", ["python", "manage.py", "migrate", "--noinput"], nonempty=True)
    timeout_seconds: int = _f("Longest a migration may run", 600, minimum=10)
    service_account: str = _f(
        "Service account (email) the job's executions run as; empty for the Compute Engine default account", "",
        pattern=_ACCOUNT)


@dataclass(frozen=True)
class FrontendConfig:
    bucket: str = _f("GCS bucket the frontend is served from", pattern=r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")
    url: str = _f("Public URL of the frontend (its origin is allowed by the API's CORS)", pattern=r"^https?://")
    releases_prefix: str = _f("Prefix in the state bucket where each release's built frontend is uploaded", "frontend/")


@dataclass(frozen=True)
class StateConfig:
    bucket: str = _f("GCS bucket of tagship's own records", pattern=r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class SlackConfig:
    channel: str = _f("Channel the release threads and alerts go to", "#deploys")
    timeout_seconds: float = _f("Longest a Slack call may take before it is given up", 5.0, minimum=0.1)
    actors: tuple[str, ...] = _f("Slack user ids (U...) who may press the thread's Roll back button; none: nobody", [],
                                 item_pattern=r"^[UW][A-Z0-9]{2,20}$")


@dataclass(frozen=True)
class TopicsConfig:
    builds: str = _f("Cloud Build's notification topic", "cloud-builds")
    progress: str = _f("tagship's own deploy steps", "tagship-progress")
    health: str = _f("Cloud Scheduler's watchdog ticks", "tagship-health")
    rollback: str = _f("Rollback requests and Monitoring incidents", "tagship-rollback")


@dataclass(frozen=True)
class DeployConfig:
    lease_seconds: int = _f("Expiry of the one-release-at-a-time lease", 900, minimum=30)
    smoke_timeout_seconds: float = _f("Deadline for a candidate revision to pass its smoke test", 120.0, minimum=1)
    smoke_interval_seconds: float = _f("Pause between smoke-test attempts", 2.0, minimum=0.01)
    bake_seconds: float = _f("How long health is probed after traffic moved, before the release is live", 60.0, minimum=0)
    probe_interval_seconds: float = _f("Pause between probes during the bake", 5.0, minimum=0.01)
    probe_timeout_seconds: float = _f("Timeout of one HTTP probe", 5.0, minimum=0.1)
    step_budget_seconds: float = _f(
        "Longest one invocation waits on a migration before handing over to the next message", 480.0, minimum=0.01
    )


@dataclass(frozen=True)
class WatchdogConfig:
    bake_window_seconds: float = _f("After going live, how long an unhealthy release is rolled back automatically", 1800.0, minimum=0)
    consecutive_failures: int = _f("Unhealthy checks in a row before acting", 3, minimum=1)
    max_error_ratio: float = _f("Highest healthy 5xx ratio", 0.05, minimum=0, maximum=1)
    max_p95_latency_ms: float = _f("Highest healthy p95 latency", 2000.0, minimum=1)
    min_requests: int = _f("Fewest requests in the window for Monitoring figures to count", 50, minimum=1)
    window_seconds: int = _f("Monitoring window", 300, minimum=60)
    metrics_lag_seconds: float = _f(
        "How late Cloud Monitoring's Cloud Run request metrics may arrive; windows end this long ago", 180.0, minimum=0
    )
    reminder_seconds: float = _f("While still unhealthy, how often to remind", 3600.0, minimum=1)
    tick_seconds: float = _f(
        "How often Cloud Scheduler ticks the watchdog (setup schedules it every minute); a fast watch's last look "
        "ends a watchdog.fast_probe_seconds before the next tick, so at most 100 (setup gives the watchdog a 120 s "
        "timeout)", 60.0, minimum=1, maximum=100,
    )
    fast_probe_seconds: float = _f(
        "Inside the bake window, how often one tick's invocation looks again, until just before the next tick "
        "(3 failed looks 5 s apart: a rollback asked about 10 s after the first); 0: the per-minute tick only",
        5.0, minimum=0,
    )


@dataclass(frozen=True)
class RollbackConfig:
    automatic: bool = _f("Whether the watchdog may ask for a rollback by itself", True)
    trigger_policies: tuple[str, ...] = _f("Monitoring alert policies (display names) whose incidents roll back", [])


@dataclass(frozen=True)
class GatesConfig:
    freeze: tuple[str, ...] = _f(
        "Weekly freeze windows, each 'DAY HH:MM - DAY HH:MM TIME/ZONE: reason' (e.g. 'Fri 16:00 - Mon 08:00 "
        "Europe/Berlin: weekend'): a tag pushed in one is held and starts when it ends", [])
    pause_after_rollback: bool = _f(
        "Whether a rollback pauses deploys until `python main.py deploys resume` (a tag pushed meanwhile is held)", False)
    approval: str = _f(
        "Where a release waits for a person's approval: none; before_traffic (its candidate deployed and "
        "smoke-tested, before any of the API's traffic moves or the canary begins); before_promotion (the canary's "
        "last step passed, before the candidate takes all the traffic; needs canary.steps)", "none",
        pattern=r"^(none|before_traffic|before_promotion)$")
    approvers: tuple[str, ...] = _f(
        "Slack user ids (U...) and user group ids (S...) who may press Approve and Refuse; none: only the command "
        "line approves (`python main.py deploys approve TAG`, allowed by who may publish to topics.rollback)", [],
        item_pattern=r"^[UWS][A-Z0-9]{2,20}$")
    approval_max_wait_seconds: float = _f(
        "Longest a release waits for its approval; then it is refused: failed, the API's traffic back on the "
        "release before it", 14400.0, minimum=1, maximum=7 * 24 * 3600)


@dataclass(frozen=True)
class CanaryConfig:
    steps: tuple[int, ...] = _f(
        "Percent of the API's traffic the candidate serves at each canary step, strictly increasing, each 1..99 "
        "(the last step passed, it takes all of it); empty: no canary, all the traffic at once",
        [], item_minimum=1, item_maximum=99, increasing=True,
    )
    min_seconds_per_step: float = _f(
        "Shortest a step lasts before it is judged: its window (ending watchdog.metrics_lag_seconds ago) must be "
        "this long; Cloud Run's request metrics are sampled every 60 s", 300.0, minimum=1,
    )
    min_requests_per_step: int = _f(
        "Fewest requests the candidate must serve in a step's window for it to be judged; fewer is inconclusive, "
        "never a pass", 100, minimum=1,
    )
    max_seconds_per_step: float = _f(
        "Longest a step waits for a verdict (more than canary.min_seconds_per_step, and with steps at least it "
        "plus watchdog.metrics_lag_seconds); then an inconclusive step does what canary.inconclusive says",
        1800.0, minimum=1, above="min_seconds_per_step",
    )
    inconclusive: str = _f(
        "What a step still inconclusive at its longest does: hold (stay at its share and tell the channel), "
        "promote (the candidate takes all the traffic) or rollback (all the traffic back to stable, release failed)",
        "hold", pattern=r"^(hold|promote|rollback)$",
    )
    max_error_ratio: float = _f("Highest 5xx ratio the candidate may have in a step, whatever stable's", 0.05,
                                minimum=0, maximum=1)
    max_p95_ms: float = _f("Highest p95 latency the candidate may have in a step, whatever stable's", 2000.0,
                           minimum=1)
    error_ratio_factor: float = _f(
        "The candidate fails when its 5xx ratio is more than this many times stable's and more than "
        "canary.min_error_difference above it", 2.0, minimum=1,
    )
    min_error_difference: float = _f(
        "How far above stable's 5xx ratio the candidate's must be, as well, to fail against stable (0.02: two "
        "points)", 0.02, minimum=0, maximum=1,
    )
    p95_factor: float = _f(
        "The candidate fails when its p95 latency is more than this many times stable's and more than "
        "canary.min_p95_difference_ms above it", 1.5, minimum=1,
    )
    min_p95_difference_ms: float = _f(
        "How far above stable's p95 latency the candidate's must be, as well, to fail against stable", 100.0,
        minimum=0,
    )


@dataclass(frozen=True)
class Config:
    project: ProjectConfig
    github: GithubConfig
    build: BuildConfig
    api: ApiConfig
    worker: WorkerConfig
    migrations: MigrationsConfig
    frontend: FrontendConfig
    state: StateConfig
    slack: SlackConfig = field(default_factory=lambda: SlackConfig())
    topics: TopicsConfig = field(default_factory=lambda: TopicsConfig())
    deploy: DeployConfig = field(default_factory=lambda: DeployConfig())
    watchdog: WatchdogConfig = field(default_factory=lambda: WatchdogConfig())
    rollback: RollbackConfig = field(default_factory=lambda: RollbackConfig())
    canary: CanaryConfig = field(default_factory=lambda: CanaryConfig())
    gates: GatesConfig = field(default_factory=lambda: GatesConfig())

    @property
    def frontend_origin(self) -> str:
        match = re.match(r"^(https?://[^/]+)", self.frontend.url)
        return match.group(1) if match else self.frontend.url

    def replace(self, **sections: dict[str, Any]) -> Config:
        """A copy with some keys of some sections changed: `config.replace(deploy={"bake_seconds": 1})`."""
        changed = {name: dataclasses.replace(getattr(self, name), **values) for name, values in sections.items()}
        return dataclasses.replace(self, **changed)


@dataclass(frozen=True)
class Secrets:
    webhook_secret: str | None
    slack_bot_token: str | None
    slack_webhook_url: str | None
    slack_signing_secret: str | None = None
    github_token: str | None = None
    github_app_private_key: str | None = None

    @classmethod
    def from_env(cls, environ: typing.Mapping[str, str] | None = None) -> Secrets:
        env = os.environ if environ is None else environ
        return cls(
            webhook_secret=env.get("GITHUB_WEBHOOK_SECRET") or None,
            slack_bot_token=env.get("SLACK_BOT_TOKEN") or None,
            slack_webhook_url=env.get("SLACK_WEBHOOK_URL") or None,
            slack_signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
            github_token=env.get("GITHUB_TOKEN") or None,
            github_app_private_key=env.get("GITHUB_APP_PRIVATE_KEY") or None,
        )

    def __repr__(self) -> str:  # never print a secret by accident
        return "Secrets(<hidden>)"


def _check_across(config: Config) -> None:
    """Rules that join keys of two sections, and values read by the decision that uses them."""
    from shared.core.gates import parse_window

    for index, text in enumerate(config.gates.freeze):
        try:
            parse_window(text)
        except ValueError as error:
            raise ConfigError(f"gates.freeze[{index}]: {error}") from error
    if config.gates.approval == "before_promotion" and not config.canary.steps:
        raise ConfigError("gates.approval: before_promotion waits after the canary's last step, but canary.steps is "
                          "empty; expected before_traffic or none, or canary steps")
    github = config.github
    if bool(github.app_id) != bool(github.installation_id):
        raise ConfigError(
            "github.installation_id: expected github.app_id and github.installation_id both set (a GitHub App) or "
            f"both 0 (a token), found app_id {github.app_id} and installation_id {github.installation_id}")
    canary, lag = config.canary, config.watchdog.metrics_lag_seconds
    if canary.steps and canary.max_seconds_per_step < canary.min_seconds_per_step + lag:
        # a step's window ends the lag ago: a shorter longest reaches its end before it could ever be judged
        raise ConfigError(
            f"canary.max_seconds_per_step: expected at least canary.min_seconds_per_step + "
            f"watchdog.metrics_lag_seconds ({canary.min_seconds_per_step:g} + {lag:g} = "
            f"{canary.min_seconds_per_step + lag:g}), found {canary.max_seconds_per_step:g}"
        )


def parse(raw: dict[str, Any]) -> Config:
    hints = typing.get_type_hints(Config)
    known = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown section; expected one of {', '.join(sorted(known))}")
    sections = {}
    for f in dataclasses.fields(Config):
        if f.name not in raw:
            if f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{f.name}: required section [{f.name}] is missing")
            continue
        sections[f.name] = _section(f.name, hints[f.name], raw[f.name])
    config = Config(**sections)
    _check_across(config)
    return config


def load(path: str | os.PathLike[str] | None = None) -> Config:
    """Loads and validates the config at `path`, else `$TAGSHIP_CONFIG`, else `./tagship.toml`."""
    chosen = Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_PATH)
    try:
        text = chosen.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise ConfigError(f"{chosen}: config file not found (set {CONFIG_ENV} or create {DEFAULT_PATH})") from error
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{chosen}: not valid TOML ({error})") from error
    return parse(raw)


def schema() -> list[tuple[str, str, str, str]]:
    """(key, type, default, doc) rows for the configuration reference."""
    rows = []
    hints = typing.get_type_hints(Config)
    for section in dataclasses.fields(Config):
        cls = hints[section.name]
        field_hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                default = repr(f.default)
            elif f.default_factory is not dataclasses.MISSING:
                default = repr(list(f.default_factory()))
            else:
                default = "(required)"
            kind = getattr(field_hints[f.name], "__name__", "list of strings")
            rows.append((f"{section.name}.{f.name}", kind, default, f.metadata.get("doc", "")))
    return rows
