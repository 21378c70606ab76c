"""Cloud Run Admin API v2: services, worker pools, revisions, traffic, and the migrations job.

Revisions are deployed with explicit, deterministic names (`shared.release.revision_name`), so a retried deploy
finds its own work (ALREADY_EXISTS) instead of making a second revision; what it finds must run the image asked
for, or it is another release's and the deploy is refused. Traffic is always written as explicit revision names
resolved from `traffic_statuses`, so a new template never moves traffic by itself via LATEST.

The app's container is chosen by name when a template has several (sidecars), never assumed to be the first. A
worker pool (`worker_pools`) stands behind the same port: its instance splits play the traffic's part, and traffic
tags, which pools do not have, are ignored.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

from shared import clients
from shared.deadline import left as deadline_left
from shared.errors import (
    NotFound,
    PermanentError,
    PreconditionFailed,
    TransientError,
    from_google,
)
from shared.ports import CloudRun, ExecutionState, ServiceState, TrafficTarget

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
    """The result of a long-running operation polled with `poll_delays`; its error, or TimeoutError, raised. Never
    waits past the invocation's own deadline (`shared.deadline`): a retry finds the operation's work later."""
    timeout = deadline_left(timeout)
    deadline = time.monotonic() + timeout
    for delay in poll_delays():
        if operation.done():
            return operation.result()
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"operation {operation.operation.name} not done after {timeout:.0f}s")
        sleep(min(delay, left))
    raise AssertionError("poll_delays never ends")


def _short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


@dataclass
class GoogleCloudRun:
    project: str
    region: str
    operation_timeout: float = 300.0  # and never past the invocation's deadline
    worker_pools: frozenset[str] = frozenset()  # names that are worker pools, not services
    containers: Mapping[str, str] = field(default_factory=dict)  # service, pool or job -> the app's container
    _parent: str = field(init=False)

    def __post_init__(self) -> None:
        self._parent = f"projects/{self.project}/locations/{self.region}"

    def _service_name(self, service: str) -> str:
        collection = "workerPools" if service in self.worker_pools else "services"
        return f"{self._parent}/{collection}/{service}"

    def _get(self, service: str) -> Any:
        try:
            if service in self.worker_pools:
                return clients.run_worker_pools().get_worker_pool(name=self._service_name(service))
            return clients.run_services().get_service(name=self._service_name(service))
        except Exception as error:  # noqa: BLE001
            raise from_google(error, f"reading Cloud Run {self._kind(service)} {service}") from error

    def _kind(self, service: str) -> str:
        return "worker pool" if service in self.worker_pools else "service"

    def app_container(self, owner: str, containers: Any) -> Any:
        """The app's container among `containers` of `owner` (a service, pool or job): the one named in the config,
        or the only one. Several and no name, or a name none has, is a PermanentError naming what was found."""
        wanted = self.containers.get(owner, "")
        names = [c.name or "(unnamed)" for c in containers]
        if wanted:
            for container in containers:
                if container.name == wanted:
                    return container
            raise PermanentError(f"{owner}: expected a container named {wanted!r}, found {names}")
        if len(containers) == 1:
            return containers[0]
        if not containers:
            raise PermanentError(f"{owner}: expected a container in its template, found none")
        raise PermanentError(
            f"{owner}: expected one container or the app's named in the config (api.container, worker.container), "
            f"found {len(containers)}: {names}"
        )

    def _state(self, svc: Any) -> ServiceState:
        traffic: dict[str, int] = {}
        tags: dict[str, str] = {}
        tag_urls: dict[str, str] = {}
        short = _short(svc.name)
        statuses = svc.instance_split_statuses if short in self.worker_pools else svc.traffic_statuses
        for status in statuses:
            revision = status.revision or _short(svc.latest_ready_revision)
            if status.percent:
                traffic[revision] = traffic.get(revision, 0) + status.percent
            if getattr(status, "tag", ""):
                tags[status.tag] = revision
                tag_urls[status.tag] = status.uri
        image = self.app_container(short, svc.template.containers).image
        return ServiceState(
            name=short,
            uri=getattr(svc, "uri", ""),
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

        rev = self._revision(service, revision)
        if rev is None:
            return None
        return any(c.type_ == "Ready" and c.state.name == "CONDITION_SUCCEEDED" for c in rev.conditions)

    def _revision(self, service: str, revision: str) -> Any:
        from google.api_core import exceptions as gexc

        name = f"{self._service_name(service)}/revisions/{revision}"
        try:
            return clients.run_revisions().get_revision(name=name)
        except gexc.NotFound:
            return None
        except Exception as error:  # noqa: BLE001
            raise from_google(error, f"reading revision {revision}") from error

    def _check_own_revision(self, service: str, revision: str, image: str) -> bool:
        """Whether `revision` exists; if it does, it must run `image`: a revision of that name on another image
        is another release's (or a hand-made one), and going live on it would ship the wrong code."""
        found = self._revision(service, revision)
        if found is None:
            return False
        existing = self.app_container(service, found.containers).image
        if existing != image:
            raise PermanentError(
                f"revision {revision} of {service}: expected image {image}, found {existing}; "
                "it is not this release's revision"
            )
        return True

    def _update(self, svc: Any, doing: str) -> ServiceState:
        from google.cloud import run_v2

        try:
            if _short(svc.name) in self.worker_pools:
                request = run_v2.UpdateWorkerPoolRequest(worker_pool=svc)
                operation = clients.run_worker_pools().update_worker_pool(request=request)
            else:
                operation = clients.run_services().update_service(request=run_v2.UpdateServiceRequest(service=svc))
            result = wait_for(operation, self.operation_timeout)
        except Exception as error:  # noqa: BLE001
            raise from_google(error, doing) from error
        return self._state(result)

    def _write_traffic(self, svc: Any, targets: list[TrafficTarget]) -> None:
        from google.cloud import run_v2

        if _short(svc.name) in self.worker_pools:
            kind = run_v2.InstanceSplitAllocationType.INSTANCE_SPLIT_ALLOCATION_TYPE_REVISION
            shares: dict[str, int] = {}
            for t in targets:
                shares[t.revision] = shares.get(t.revision, 0) + t.percent
            del svc.instance_splits[:]
            svc.instance_splits.extend(
                run_v2.InstanceSplit(type_=kind, revision=r, percent=p) for r, p in shares.items() if p
            )
            return
        kind = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
        del svc.traffic[:]
        svc.traffic.extend(
            run_v2.TrafficTarget(type_=kind, revision=t.revision, percent=t.percent, tag=t.tag) for t in targets
        )

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

        if service in self.worker_pools:
            tag = ""  # worker pools have no URLs, so no tags
        svc = self._get(service)
        state = self._state(svc)
        targets = [t for t in self._current_targets(state) if t.tag != tag or not tag]
        if with_traffic:
            targets = [TrafficTarget(t.revision, 0, t.tag) for t in targets if t.tag]
            targets.append(TrafficTarget(revision, 100, tag))
        elif service in self.worker_pools:
            targets = [t for t in targets if t.percent]  # a pool's split names only what runs
        else:
            targets.append(TrafficTarget(revision, 0, tag))
        if not self._check_own_revision(service, revision, image):
            svc.template.revision = revision
            container = self.app_container(service, svc.template.containers)
            container.image = image
            if command:
                container.command = list(command[:1])
                container.args = list(command[1:])
        self._write_traffic(svc, targets)
        try:
            return self._update(svc, f"deploying revision {revision} of {service}")
        except PermanentError as error:
            cause = error.__cause__
            if isinstance(cause, gexc.AlreadyExists):
                self._check_own_revision(service, revision, image)  # made meanwhile: ours only if on our image
                return self.set_traffic(service, targets) if sum(t.percent for t in targets) == 100 else self.service(service)
            raise

    def set_traffic(self, service: str, targets: list[TrafficTarget]) -> ServiceState:
        """Sets the traffic to exactly `targets`. A concurrent writer (a stale etag) makes it read and write again:
        the traffic asked for is a desired state, not a change relative to what was read."""
        if sum(t.percent for t in targets) != 100:
            raise PermanentError(f"traffic for {service}: expected percents summing to 100, found {targets}")
        if service in self.worker_pools:
            targets = [TrafficTarget(t.revision, t.percent) for t in targets]
        for attempt in range(_TRAFFIC_ATTEMPTS):
            svc = self._get(service)
            self._write_traffic(svc, targets)
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
            container = self.app_container(job, current.template.template.containers)
            if container.image != image or list(container.command) + list(container.args) != list(command):
                container.image = image
                container.command = list(command[:1])
                container.args = list(command[1:])
                updated = wait_for(jobs.update_job(request=run_v2.UpdateJobRequest(job=current)), self.operation_timeout)
                current = updated if updated is not None and updated.etag else jobs.get_job(name=name)
            # RunJob's overrides can set args, env, task count and timeout, not the image: the image is the job's,
            # so the run is bound by etag to the job as just written; a change in between is refused (ABORTED)
            operation = jobs.run_job(request=run_v2.RunJobRequest(name=name, etag=current.etag))
        except PermanentError:
            raise
        except Exception as error:  # noqa: BLE001
            raise from_google(error, f"starting migration job {job}") from error
        execution = operation.metadata
        if not execution or not execution.name:
            raise TransientError(f"running job {job}: expected the execution in the operation metadata, found none")
        return execution.name

    def _execution_state(self, execution: Any) -> ExecutionState:
        done = execution.completion_time is not None and bool(execution.completion_time)
        failed = execution.failed_count > 0 or execution.cancelled_count > 0
        message = ""
        for condition in execution.conditions:
            if condition.message:
                message = condition.message
        image = ""
        if execution.template and execution.template.containers:
            try:
                image = self.app_container(execution.job or _short(execution.name), execution.template.containers).image
            except PermanentError:
                image = ""  # not ours to judge: an execution whose app container cannot be told never matches
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
