"""The ports: what tagship asks of each outside system, and the plain values that cross them.

The functions and the core speak only these types; `shared/adapters/` implements each port against a real client
library, and the tests' recording fakes implement the same Protocols (mypy checks both in `make test`). Nothing
here imports a client library.
"""
from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any, Protocol

from shared.build_definition import BuildRequest
from shared.build_message import BuildStatus

# --- Cloud Storage: records and objects ----------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    data: Any  # the object's JSON, or shared.record_shape.Unreadable when its bytes are not JSON
    generation: int


class RecordStore(Protocol):
    def read(self, name: str) -> Record | None: ...
    def create(self, name: str, data: dict[str, Any]) -> Record: ...
    def swap(self, name: str, data: dict[str, Any], generation: int) -> Record: ...
    def list(self, prefix: str) -> list[str]: ...
    def changed_since(self, prefix: str, since: float) -> builtins.list[str]:
        """The names under `prefix` last written at or after `since` (epoch seconds), from one listing."""
        ...


@dataclass(frozen=True)
class StoredObject:
    name: str
    md5_hash: str | None
    size: int
    content_type: str | None
    cache_control: str | None = None
    content_encoding: str | None = None
    content_disposition: str | None = None
    content_language: str | None = None
    metadata: dict[str, str] | None = None  # the object's custom metadata


class Objects(Protocol):
    def list(self, bucket: str, prefix: str = "") -> list[StoredObject]: ...
    def copy(self, source_bucket: str, source: str, bucket: str, name: str, *, cache_control: str,
             like: StoredObject | None = None) -> None: ...


# --- Cloud Run ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceState:
    name: str
    uri: str
    image: str
    traffic: dict[str, int]  # revision short name -> percent
    tags: dict[str, str]  # traffic tag -> revision short name
    tag_urls: dict[str, str]  # traffic tag -> its own URL
    latest_ready_revision: str


@dataclass(frozen=True)
class ExecutionState:
    name: str  # full resource name
    done: bool
    succeeded: bool
    message: str = ""
    image: str = ""


@dataclass(frozen=True)
class TrafficTarget:
    revision: str
    percent: int
    tag: str = ""


class CloudRun(Protocol):
    def service(self, service: str) -> ServiceState: ...
    def revision_ready(self, service: str, revision: str) -> bool | None: ...
    def deploy_revision(self, service: str, revision: str, image: str, *, tag: str, command: tuple[str, ...] = (),
                        with_traffic: bool = False) -> ServiceState: ...
    def set_traffic(self, service: str, targets: list[TrafficTarget]) -> ServiceState: ...
    def start_migration(self, job: str, image: str, command: tuple[str, ...]) -> str: ...
    def find_execution(self, job: str, image: str) -> ExecutionState | None: ...
    def execution(self, name: str) -> ExecutionState: ...


# --- Cloud Build, Pub/Sub, Monitoring, HTTP -----------------------------------------------------------------


class Builds(Protocol):
    def submit(self, request: BuildRequest) -> tuple[str, str]: ...
    def find(self, tag: str, commit: str, attempt: int = 1) -> tuple[str, str] | None: ...
    def status(self, build_id: str) -> BuildStatus: ...


class Publisher(Protocol):
    def publish(self, topic: str, payload: dict[str, Any], attributes: dict[str, str] | None = None) -> str: ...


@dataclass(frozen=True)
class TrafficFigures:
    requests: int
    by_class: dict[str, int]
    p95_latency_ms: float | None

    @property
    def error_ratio(self) -> float | None:
        if self.requests == 0:
            return None
        return self.by_class.get("5xx", 0) / self.requests


class Metrics(Protocol):
    def figures(self, service: str, window_seconds: int, revision: str | None = None,
                lag_seconds: float = 0.0) -> TrafficFigures: ...
    def window_figures(self, service: str, revision: str | None, start: float, end: float) -> TrafficFigures:
        """What `service` (one `revision` of it) served from `start` to `end`, epoch seconds."""
        ...


@dataclass(frozen=True)
class HttpAnswer:
    status: int  # 0 when no answer came
    body: bytes
    headers: dict[str, str]
    latency_ms: float
    error: str = ""


class Http(Protocol):
    def request(self, url: str, *, method: str = "GET", headers: dict[str, str] | None = None,
                timeout: float = 5.0) -> HttpAnswer: ...


# --- Slack ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageRef:
    channel: str
    ts: str


class Notifier(Protocol):
    def post(self, text: str, *, thread: MessageRef | None = None,
             blocks: list[dict[str, Any]] | None = None) -> MessageRef | None: ...
    def update(self, ref: MessageRef, text: str, blocks: list[dict[str, Any]] | None = None) -> bool: ...
    def group_members(self, group_id: str) -> tuple[str, ...] | None:
        """The user ids of a Slack user group (S...); None when they cannot be read (no Web API, a Slack error)."""
        ...


# --- What `python main.py doctor` reads of a project (read-only; CannotRead when an API cannot be read) --------


@dataclass(frozen=True)
class RunResource:
    """A Cloud Run service, job or worker pool as doctor sees it."""
    kind: str  # "service", "job" or "pool"
    name: str
    containers: tuple[str, ...]  # each container's name ("" when unnamed)
    min_instances: int
    cpu_throttled: bool  # a service's CPU only while it answers a request (cpu_idle)
    uri: str = ""
    tag_urls: dict[str, str] | None = None  # traffic tag -> its URL


@dataclass(frozen=True)
class BucketFacts:
    name: str
    main_page: str
    not_found_page: str


@dataclass(frozen=True)
class ChannelFacts:
    """A Monitoring notification channel."""
    name: str  # projects/P/notificationChannels/ID
    display_name: str
    kind: str  # "pubsub", "email", ...
    topic: str  # the pubsub channel's `topic` label
    enabled: bool


@dataclass(frozen=True)
class PolicyFacts:
    """A Monitoring alert policy."""
    name: str
    display_name: str
    enabled: bool
    user_labels: dict[str, str]
    channels: tuple[str, ...]


class ProjectReader(Protocol):
    """Cloud Run, Cloud Storage, Pub/Sub and Monitoring as doctor reads them (None: it does not exist)."""
    def run_resource(self, kind: str, name: str) -> RunResource | None: ...
    def bucket(self, name: str) -> BucketFacts | None: ...
    def topic_exists(self, topic: str) -> bool: ...
    def push_endpoints(self, topic: str) -> builtins.list[str]:
        """The push endpoint of each subscription on `topic` ("" for a pull subscription)."""
        ...
    def notification_channels(self) -> builtins.list[ChannelFacts]: ...
    def alert_policies(self) -> builtins.list[PolicyFacts]: ...


@dataclass(frozen=True)
class SchedulerJob:
    name: str
    schedule: str
    topic: str  # the Pub/Sub target's topic, projects/P/topics/T ("" for another target)
    state: str  # ENABLED, PAUSED, ...


class Inventory(Protocol):
    """What the local cloud has no fake of: the APIs enabled, IAM, Secret Manager, Cloud Scheduler."""
    def enabled_apis(self) -> frozenset[str]: ...
    def project_members(self, role: str) -> frozenset[str]: ...
    def service_accounts(self) -> frozenset[str]: ...
    def secret_versions(self, secret: str) -> int | None:
        """How many enabled versions the secret has (None: no such secret). Never reads a value."""
        ...
    def scheduler_job(self, location: str, name: str) -> SchedulerJob | None: ...


@dataclass(frozen=True)
class SlackIdentity:
    ok: bool
    error: str  # Slack's error code when not ok
    user_id: str
    scopes: frozenset[str]  # from the x-oauth-scopes header


@dataclass(frozen=True)
class SlackChannel:
    id: str
    name: str
    is_member: bool
    is_archived: bool


class SlackAccess(Protocol):
    def identity(self) -> SlackIdentity: ...
    def channel(self, channel: str) -> SlackChannel | None:
        """The channel by name or id (None: Slack has none the bot can see); CannotRead without channels:read."""
        ...

# --- GitHub deployments --------------------------------------------------------------------------------------


class Deployments(Protocol):
    """One repository's deployments (https://docs.github.com/en/rest/deployments). Every call is bounded by a
    timeout; a failure raises TransientError (GitHub down, 5xx, rate limited) or PermanentError (refused: 401,
    403, 404, 409, 422), whose message says what to fix and never holds a credential."""

    def find(self, ref: str, environment: str, marker: dict[str, str]) -> int | None:
        """The id of the deployment of `ref` to `environment` whose payload holds `marker`, if there is one."""
        ...

    def create(self, ref: str, environment: str, marker: dict[str, str], description: str, *,
               production: bool) -> int:
        """A new deployment of `ref` (a tag: never merged into, no commit status required) to `environment`."""
        ...

    def set_status(self, deployment_id: int, state: str, description: str, *, environment_url: str,
                   log_url: str) -> None: ...
