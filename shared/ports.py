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
