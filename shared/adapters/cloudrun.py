"""Cloud Run Admin API v2: services, revisions, traffic, and the migrations job.

Revisions are deployed with explicit, deterministic names (`<service>-<tag>`), so a retried deploy finds its own
work (ALREADY_EXISTS) instead of making a second revision. Traffic is always written as explicit revision names
resolved from `traffic_statuses`, so a new template never moves traffic by itself via LATEST.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol

from shared import clients
from shared.errors import NotFound, PermanentError, PreconditionFailed, TransientError, from_google

POLL_INITIAL = 0.05
POLL_GROWTH = 1.1
POLL_MAX = 1.0
_TRAFFIC_ATTEMPTS = 4


def poll_delays(initial: float = POLL_INITIAL, growth: float = POLL_GROWTH, maximum: float = POLL_MAX) -> Iterator[float]:
    """Pauses between polls of work in progress: each a tenth longer than the one before, up to `maximum`.

    Without jitter, so work that ended is noticed at most a tenth of its duration later and never more than
    `maximum` later: a one-second rollout costs at most 0.1 s of polling, a thirty-second one at most 1 s, in
    about 50 polls. (The library's default is jittered exponential back-off from 1 s; jitter also made a
    one-second operation noticed up to half a second late with the 1.5 growth used before.)
    """
    delay = initial
    while True:
        yield delay
        delay = min(delay * growth, maximum)


def wait_for(operation: Any, timeout: float, sleep: Callable[[float], None] = time.sleep) -> Any:
    """The result of a long-running operation polled with `poll_delays`; its error, or TimeoutError, raised."""
    deadline = time.monotonic() + timeout
    for delay in poll_delays():
        if operation.done():
            return operation.result()
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"operation {operation.operation.name} not done after {timeout:.0f}s")
        sleep(min(delay, left))
    raise AssertionError("poll_delays never ends")


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
    def deploy_revision(self, service: str, revision: str, image: str, *, tag: str, command: tuple[str, ...] = (), with_traffic: bool = False) -> ServiceState: ...
    def set_traffic(self, service: str, targets: list[TrafficTarget]) -> ServiceState: ...
    def start_migration(self, job: str, image: str, command: tuple[str, ...]) -> str: ...
    def find_execution(self, job: str, image: str) -> ExecutionState | None: ...
    def execution(self, name: str) -> ExecutionState: ...


def _short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


@dataclass
class GoogleCloudRun:
    project: str
    region: str
    operation_timeout: float = 600.0
    _parent: str = field(init=False)

    def __post_init__(self) -> None:
        self._parent = f"projects/{self.project}/locations/{self.region}"

    def _service_name(self, service: str) -> str:
        return f"{self._parent}/services/{service}"

    def _get(self, service: str) -> Any:
        try:
            return clients.run_services().get_service(name=self._service_name(service))
        except Exception as error:  # noqa: BLE001
            raise from_google(error, f"reading Cloud Run service {service}") from error

    @staticmethod
    def _state(svc: Any) -> ServiceState:
        traffic: dict[str, int] = {}
        tags: dict[str, str] = {}
        tag_urls: dict[str, str] = {}
        for status in svc.traffic_statuses:
            revision = status.revision or _short(svc.latest_ready_revision)
            if status.percent:
                traffic[revision] = traffic.get(revision, 0) + status.percent
            if status.tag:
                tags[status.tag] = revision
                tag_urls[status.tag] = status.uri
        image = svc.template.containers[0].image if svc.template.containers else ""
        return ServiceState(
            name=_short(svc.name),
            uri=svc.uri,
            image=image,
            traffic=traffic,
            tags=tags,
            tag_urls=tag_urls,
            latest_ready_revision=_short(svc.latest_ready_revision),
        )

    def service(self, service: str) -> ServiceState:
        return self._state(self._get(service))

    def revision_ready(self, service: str, revision: str) -> bool | None:
        """True when ready, False when it exists but is not, None when it does not exist."""
        from google.api_core import exceptions as gexc

        name = f"{self._service_name(service)}/revisions/{revision}"
        try:
            rev = clients.run_revisions().get_revision(name=name)
        except gexc.NotFound:
            return None
        except Exception as error:  # noqa: BLE001
            raise from_google(error, f"reading revision {revision}") from error
        return any(c.type_ == "Ready" and c.state.name == "CONDITION_SUCCEEDED" for c in rev.conditions)

    def _update(self, svc: Any, doing: str) -> ServiceState:
        from google.cloud import run_v2

        try:
            operation = clients.run_services().update_service(request=run_v2.UpdateServiceRequest(service=svc))
            result = wait_for(operation, self.operation_timeout)
        except Exception as error:  # noqa: BLE001
            raise from_google(error, doing) from error
        return self._state(result)

    @staticmethod
    def _traffic_entries(targets: list[TrafficTarget]) -> list[Any]:
        from google.cloud import run_v2

        kind = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
        return [run_v2.TrafficTarget(type_=kind, revision=t.revision, percent=t.percent, tag=t.tag) for t in targets]

    @staticmethod
    def _current_targets(state: ServiceState) -> list[TrafficTarget]:
        by_revision = {revision: TrafficTarget(revision, percent) for revision, percent in state.traffic.items()}
        targets = list(by_revision.values())
        for tag, revision in state.tags.items():
            if revision in by_revision and not by_revision[revision].tag:
                index = targets.index(by_revision[revision])
                targets[index] = TrafficTarget(revision, by_revision[revision].percent, tag)
                by_revision[revision] = targets[index]
            else:
                targets.append(TrafficTarget(revision, 0, tag))
        return targets

    def deploy_revision(
        self,
        service: str,
        revision: str,
        image: str,
        *,
        tag: str,
        command: tuple[str, ...] = (),
        with_traffic: bool = False,
    ) -> ServiceState:
        """Creates revision `revision` of `image` tagged `tag`; with no traffic unless `with_traffic`.

        Finding the revision already there (a retry after a crash) is success: only the traffic is written.
        """
        from google.api_core import exceptions as gexc

        svc = self._get(service)
        state = self._state(svc)
        targets = [t for t in self._current_targets(state) if t.tag != tag]
        if with_traffic:
            targets = [TrafficTarget(t.revision, 0, t.tag) for t in targets if t.tag]
            targets.append(TrafficTarget(revision, 100, tag))
        else:
            targets.append(TrafficTarget(revision, 0, tag))
        exists = self.revision_ready(service, revision) is not None
        if not exists:
            svc.template.revision = revision
            svc.template.containers[0].image = image
            if command:
                svc.template.containers[0].command = list(command[:1])
                svc.template.containers[0].args = list(command[1:])
        del svc.traffic[:]
        svc.traffic.extend(self._traffic_entries(targets))
        try:
            return self._update(svc, f"deploying revision {revision} of {service}")
        except PermanentError as error:
            cause = error.__cause__
            if isinstance(cause, gexc.AlreadyExists):
                return self.set_traffic(service, targets)
            raise

    def set_traffic(self, service: str, targets: list[TrafficTarget]) -> ServiceState:
        """Sets the traffic to exactly `targets`. A concurrent writer (a stale etag) makes it read and write again:
        the traffic asked for is a desired state, not a change relative to what was read."""
        if sum(t.percent for t in targets) != 100:
            raise PermanentError(f"traffic for {service}: expected percents summing to 100, found {targets}")
        for attempt in range(_TRAFFIC_ATTEMPTS):
            svc = self._get(service)
            del svc.traffic[:]
            svc.traffic.extend(self._traffic_entries(targets))
            try:
                return self._update(svc, f"setting traffic of {service}")
            except PreconditionFailed:
                if attempt == _TRAFFIC_ATTEMPTS - 1:
                    raise TransientError(f"setting traffic of {service}: the service kept changing") from None
        raise AssertionError("unreachable")

    def start_migration(self, job: str, image: str, command: tuple[str, ...]) -> str:
        """Points the job at `image` and runs it; returns the execution's name at once (not waiting)."""
        from google.cloud import run_v2

        name = f"{self._parent}/jobs/{job}"
        jobs = clients.run_jobs()
        try:
            current = jobs.get_job(name=name)
            container = current.template.template.containers[0]
            if container.image != image or list(container.command) + list(container.args) != list(command):
                container.image = image
                container.command = list(command[:1])
                container.args = list(command[1:])
                wait_for(jobs.update_job(request=run_v2.UpdateJobRequest(job=current)), self.operation_timeout)
            operation = jobs.run_job(name=name)
        except Exception as error:  # noqa: BLE001
            raise from_google(error, f"starting migration job {job}") from error
        execution = operation.metadata
        if not execution or not execution.name:
            raise TransientError(f"running job {job}: expected the execution in the operation metadata, found none")
        return execution.name

    @staticmethod
    def _execution_state(execution: Any) -> ExecutionState:
        done = execution.completion_time is not None and bool(execution.completion_time)
        failed = execution.failed_count > 0 or execution.cancelled_count > 0
        message = ""
        for condition in execution.conditions:
            if condition.message:
                message = condition.message
        image = ""
        if execution.template and execution.template.containers:
            image = execution.template.containers[0].image
        return ExecutionState(
            name=execution.name,
            done=done or failed or execution.succeeded_count > 0,
            succeeded=execution.succeeded_count > 0 and not failed,
            message=message,
            image=image,
        )

    def execution(self, name: str) -> ExecutionState:
        try:
            return self._execution_state(clients.run_executions().get_execution(name=name))
        except Exception as error:  # noqa: BLE001
            raise from_google(error, f"reading execution {_short(name)}") from error

    def find_execution(self, job: str, image: str) -> ExecutionState | None:
        """The newest execution of `job` that ran `image`: how a crash between RunJob and its record is repaired."""
        try:
            for execution in clients.run_executions().list_executions(parent=f"{self._parent}/jobs/{job}"):
                state = self._execution_state(execution)
                if state.image == image:
                    return state
        except Exception as error:  # noqa: BLE001
            raise from_google(error, f"listing executions of {job}") from error
        return None


__all__ = ["CloudRun", "ExecutionState", "GoogleCloudRun", "NotFound", "ServiceState", "TrafficTarget"]
