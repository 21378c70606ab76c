"""A fake Cloud Build v1 over gRPC: builds that queue, work and end, and notify as the real service does.

What the real service does and this fake keeps:
- `CreateBuild` answers at once with an operation whose metadata (`BuildOperationMetadata.build`) already carries
  the build's id, name and log URL; the operation completes with the Build as its response on SUCCESS, and with
  the error the real API gives (UNKNOWN, "Build failed; check build logs for details") on FAILURE / TIMEOUT, its
  metadata then holding the final Build.
- A build goes QUEUED -> WORKING -> SUCCESS | FAILURE | TIMEOUT (or CANCELLED by `CancelBuild`), in a background
  thread, taking `scenario.delay("build")` seconds; a build whose delay exceeds its own `timeout` ends TIMEOUT.
- Every status change is published as Cloud Build publishes to the `cloud-builds` topic: data is the Build as
  camelCase JSON (enum names, defaults left out, as in payloads/cloudbuild/), attributes `buildId` and `status`.
- On SUCCESS `results.images` lists `<_IMAGE>:<_IMAGE_TAG>` (and `<_IMAGE>:<_COMMIT>` when the build's `images` names
  it) with the digest `localcloud.scenario.digest_for_commit(_COMMIT)`, so the fake Cloud Run can tell which commit an image
  runs; on FAILURE the docker build step is marked FAILURE with exit code 1, later steps never run, and
  `status_detail` / `failure_info` say which step failed, in the real service's words.
- `GetBuild`, `ListBuilds` (newest first, `filter` with `AND`-joined `field="value"` terms, paging) and
  `CancelBuild` (FAILED_PRECONDITION once a build has ended). A build of another project is PERMISSION_DENIED,
  as for a project the caller cannot see.

What it does not: run any step, read `source`, resolve `$_VAR` substitutions in step arguments, regional worker
pools, triggers, approvals, RetryBuild (UNIMPLEMENTED, as gRPC answers for a method not served).

Knobs: `scenario.behaviour_for_commit(_COMMIT).build` ("ok" / "fail"); `scenario.delay("build")`; gRPC faults on
"google.devtools.cloudbuild.v1.CloudBuild/<Method>" through `grpc_kit`; and `scenario.inject_fault(NOTIFY_FAULT,
...)` drops the next notification(s) before they reach Pub/Sub, as a consumer would experience a lost message.

`on_success(build)` runs before SUCCESS is published, like the build's last step (LocalCloud uploads the frontend
there); if it raises, the build ends FAILURE at its last step, as a failing upload step would end a real build.
A failing `publish` is logged and retried (`PUBLISH_ATTEMPTS`), and never stops the build.
"""
from __future__ import annotations

import datetime
import hashlib
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import grpc
from google.cloud.devtools import cloudbuild_v1
from google.longrunning import operations_pb2
from google.protobuf import duration_pb2, json_format

from localcloud.build_checks import LOGS_ELSEWHERE, BuildRefused, check_build, substitute
from localcloud.grpc_kit import Abort, service_handler
from shared.build_message import image_repository
from localcloud.operations import OperationStore
from localcloud.scenario import Scenario, digest_for_commit

SERVICE = "google.devtools.cloudbuild.v1.CloudBuild"
NOTIFY_FAULT = "cloudbuild/notify"  # a scenario fault key: the next notification is lost
PUBLISH_ATTEMPTS = 4
PUBLISH_BACKOFF_SECONDS = (0.1, 0.3, 0.8)
DEFAULT_TIMEOUT_SECONDS = 600  # what Cloud Build sets when a build names none
FAILED_BUILD_MESSAGE = "Build failed; check build logs for details"  # the operation error the real API gives

Status = cloudbuild_v1.Build.Status
TERMINAL = frozenset({Status.SUCCESS, Status.FAILURE, Status.INTERNAL_ERROR, Status.TIMEOUT, Status.CANCELLED,
                      Status.EXPIRED})
Publish = Callable[[bytes, "dict[str, str]"], None]

log = logging.getLogger(__name__)

_SUBSTITUTION_KEY = re.compile(r"^_[A-Z0-9_]+$")
_FILTER_TERM = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(?:"([^"]*)"|(\S+))\s*$')


def notification(build: cloudbuild_v1.Build) -> tuple[bytes, dict[str, str]]:
    """The Pub/Sub message Cloud Build publishes for `build`: (data, attributes)."""
    data = json_format.MessageToJson(cloudbuild_v1.Build.pb(build), indent=None)
    return data.encode(), {"buildId": build.id, "status": build.status.name}


def project_number_for(project: str) -> str:
    """A stable 12-digit stand-in for the project number that log URLs and the logs bucket carry."""
    return str(int(hashlib.sha256(project.encode()).hexdigest(), 16) % 10**12).rjust(12, "1")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _copy(build: cloudbuild_v1.Build) -> cloudbuild_v1.Build:
    return cloudbuild_v1.Build.deserialize(cloudbuild_v1.Build.serialize(build))


class _Stopped(Exception):
    """The build was cancelled or the fake closed while the build thread was working."""


@dataclass
class _Running:
    """What the fake keeps about one build beside the Build itself."""

    build: cloudbuild_v1.Build
    operation: str
    interrupt: threading.Event = field(default_factory=threading.Event)  # cancel or close: wake the thread up
    thread: threading.Thread | None = None


class FakeCloudBuild:
    """Hosts `google.devtools.cloudbuild.v1.CloudBuild` for one project; serve `handlers()` on a grpc.server."""

    def __init__(
        self,
        scenario: Scenario,
        operations: OperationStore,
        *,
        project: str,
        publish: Publish,
        on_success: Callable[[cloudbuild_v1.Build], None] | None = None,
        project_number: str | None = None,
    ) -> None:
        self.scenario = scenario
        self.operations = operations
        self.project = project
        self.project_number = project_number or project_number_for(project)
        self._publish = publish
        self._on_success = on_success
        self._lock = threading.Lock()
        self._builds: dict[str, _Running] = {}  # insertion order is creation order
        self._closed = False

    # -- for tests and invariants -------------------------------------------------------------------------------
    def builds(self) -> list[cloudbuild_v1.Build]:
        """Copies of every build so far, oldest first."""
        with self._lock:
            return [_copy(running.build) for running in self._builds.values()]

    def build(self, build_id: str) -> cloudbuild_v1.Build:
        with self._lock:
            running = self._builds.get(build_id)
            if running is None:
                raise KeyError(build_id)
            return _copy(running.build)

    def wait(self, build_id: str, timeout: float = 10.0) -> cloudbuild_v1.Build:
        """Blocks until the build's thread has finished (its last notification sent); returns the final Build."""
        with self._lock:
            thread = self._builds[build_id].thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError(f"build {build_id} still running after {timeout}s")
        return self.build(build_id)

    def close(self) -> None:
        """Stops every running build where it is (no more notifications) and waits for the threads."""
        with self._lock:
            self._closed = True
            running = list(self._builds.values())
        for item in running:
            item.interrupt.set()
        for item in running:
            if item.thread is not None:
                item.thread.join(timeout=5)

    # -- gRPC --------------------------------------------------------------------------------------------------------
    def handlers(self) -> list[grpc.GenericRpcHandler]:
        return [
            service_handler(
                self.scenario,
                SERVICE,
                {
                    "CreateBuild": (self._create_build, cloudbuild_v1.CreateBuildRequest, operations_pb2.Operation),
                    "GetBuild": (self._get_build, cloudbuild_v1.GetBuildRequest, cloudbuild_v1.Build),
                    "ListBuilds": (self._list_builds, cloudbuild_v1.ListBuildsRequest, cloudbuild_v1.ListBuildsResponse),
                    "CancelBuild": (self._cancel_build, cloudbuild_v1.CancelBuildRequest, cloudbuild_v1.Build),
                },
            )
        ]

    def _check_project(self, project_id: str, parent: str = "", name: str = "") -> str:
        """The location the request addresses; PERMISSION_DENIED for another project, as the real API says."""
        project, location = project_id, "global"
        for resource in (parent, name):
            match = re.match(r"^projects/([^/]+)(?:/locations/([^/]+))?", resource)
            if match:
                project = project or match.group(1)
                location = match.group(2) or location
                if match.group(1) != project:
                    raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"project_id {project!r} and {resource!r} disagree")
        if not project:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "project_id: expected a project, found none")
        if project != self.project:
            raise Abort(grpc.StatusCode.PERMISSION_DENIED, "The caller does not have permission")
        return location

    def _create_build(self, request: cloudbuild_v1.CreateBuildRequest) -> operations_pb2.Operation:
        location = self._check_project(request.project_id, request.parent)
        build = _copy(request.build)
        build.id = str(uuid.uuid4())
        builtins = {"PROJECT_ID": self.project, "BUILD_ID": build.id, "PROJECT_NUMBER": self.project_number,
                    "LOCATION": location}
        if build.service_account:
            builtins["SERVICE_ACCOUNT"] = build.service_account
            builtins["SERVICE_ACCOUNT_EMAIL"] = build.service_account.rsplit("/", 1)[-1]
        try:
            check_build(build, project=self.project, location=location)
            substitute(build, builtins=builtins)
        except BuildRefused as refused:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, str(refused)) from refused
        build.name = f"projects/{self.project}/locations/{location}/builds/{build.id}"
        build.project_id = self.project
        build.status = Status.QUEUED
        build.create_time = _now()
        region = "" if location == "global" else f";region={location}"
        build.log_url = (f"https://console.cloud.google.com/cloud-build/builds{region}/{build.id}"
                         f"?project={self.project_number}")
        if not build.logs_bucket and build.options.logging not in LOGS_ELSEWHERE and not build.service_account:
            build.logs_bucket = f"gs://{self.project_number}.cloudbuild-logs.googleusercontent.com"
        if not build.timeout:
            build.timeout = duration_pb2.Duration(seconds=DEFAULT_TIMEOUT_SECONDS)
        if not build.queue_ttl:
            build.queue_ttl = duration_pb2.Duration(seconds=3600)
        if not build.options.logging:
            build.options.logging = cloudbuild_v1.BuildOptions.LoggingMode.LEGACY
        if build.images and not build.artifacts.images:  # every real notification shows them there too
            build.artifacts.images.extend(build.images)
        if "source" not in build:
            build.source = cloudbuild_v1.Source()  # present and empty, as in a build submitted without source
        if "source_provenance" not in build:
            build.source_provenance = cloudbuild_v1.SourceProvenance()
        if not build.service_account:
            build.service_account = (f"projects/{self.project}/serviceAccounts/"
                                     f"{self.project_number}-compute@developer.gserviceaccount.com")

        operation = self.operations.start(f"projects/{self.project}/operations/build/{self.project}",
                                          cloudbuild_v1.BuildOperationMetadata(build=build))
        running = _Running(build=build, operation=operation.name)
        running.thread = threading.Thread(target=self._run, args=(running,), name=f"fake-build-{build.id[:8]}",
                                          daemon=True)
        with self._lock:
            if self._closed:
                raise Abort(grpc.StatusCode.UNAVAILABLE, "the fake Cloud Build is shutting down")
            self._builds[build.id] = running
        running.thread.start()
        return operation

    def _find(self, build_id: str, name: str) -> _Running:
        if not build_id and name:
            build_id = name.rsplit("/", 1)[-1]
        with self._lock:
            running = self._builds.get(build_id)
        if running is None:
            raise Abort(grpc.StatusCode.NOT_FOUND, "Requested entity was not found.")
        return running

    def _get_build(self, request: cloudbuild_v1.GetBuildRequest) -> cloudbuild_v1.Build:
        self._check_project(request.project_id, name=request.name)
        running = self._find(request.id, request.name)
        with self._lock:
            return _copy(running.build)

    def _list_builds(self, request: cloudbuild_v1.ListBuildsRequest) -> cloudbuild_v1.ListBuildsResponse:
        self._check_project(request.project_id, request.parent)
        terms = _parse_filter(request.filter)
        with self._lock:
            newest_first = [_copy(running.build) for running in reversed(list(self._builds.values()))]
        matching = [build for build in newest_first if all(_matches(build, key, value) for key, value in terms)]
        try:
            offset = int(request.page_token or "0")
        except ValueError as error:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid page_token {request.page_token!r}") from error
        size = request.page_size if request.page_size > 0 else 50
        page = matching[offset:offset + size]
        next_token = str(offset + size) if offset + size < len(matching) else ""
        return cloudbuild_v1.ListBuildsResponse(builds=page, next_page_token=next_token)

    def _cancel_build(self, request: cloudbuild_v1.CancelBuildRequest) -> cloudbuild_v1.Build:
        self._check_project(request.project_id, name=request.name)
        running = self._find(request.id, request.name)
        with self._lock:
            if running.build.status in TERMINAL:
                raise Abort(grpc.StatusCode.FAILED_PRECONDITION,
                            f"build {running.build.id} is in a terminal state {running.build.status.name}")
            self._end(running.build, Status.CANCELLED, step_status=Status.CANCELLED)
            snapshot = _copy(running.build)
        running.interrupt.set()  # the thread sees CANCELLED and publishes it
        return snapshot

    # -- the build itself ----------------------------------------------------------------------------------------
    def _run(self, running: _Running) -> None:
        """QUEUED -> WORKING -> end, publishing each change. Never raises: a daemon thread's error is lost."""
        try:
            self._advance(running)
        except _Stopped:
            with self._lock:
                cancelled = running.build.status == Status.CANCELLED and not self._closed
            if cancelled:
                self._settle(running)
        except Exception:  # noqa: BLE001 - a bug here must not end the build without a word
            log.exception("fake Cloud Build: build %s crashed; marking it INTERNAL_ERROR", running.build.id)
            with self._lock:
                if running.build.status not in TERMINAL:
                    self._end(running.build, Status.INTERNAL_ERROR)
                    running.build.status_detail = "internal error in the fake Cloud Build"
            try:
                self._settle(running)
            except Exception:  # noqa: BLE001
                log.exception("fake Cloud Build: could not settle build %s", running.build.id)

    def _checkpoint(self, running: _Running) -> None:
        """Raises _Stopped once the build was cancelled or the fake closed (caller holds the lock)."""
        if self._closed or running.build.status in TERMINAL:
            raise _Stopped()

    def _pause(self, running: _Running, seconds: float) -> None:
        """`seconds` of simulated work, cut short by a cancel or close (then _Stopped)."""
        if seconds > 0:
            running.interrupt.wait(seconds)
        with self._lock:
            self._checkpoint(running)

    def _advance(self, running: _Running) -> None:
        build = running.build
        commit = build.substitutions.get("_COMMIT", "")
        outcome = self.scenario.behaviour_for_commit(commit).build if commit else "ok"
        total = self.scenario.delay("build")
        timeout = build.timeout.total_seconds() if build.timeout else float(DEFAULT_TIMEOUT_SECONDS)
        timed_out = total > timeout
        budget = min(total, timeout)
        queue_s, push_s = budget * 0.1, (0.0 if timed_out else budget * 0.1)
        step_s = (budget - queue_s - push_s) / len(build.steps)

        self._notify(running)  # QUEUED
        self._pause(running, queue_s)
        with self._lock:
            self._checkpoint(running)
            build.status = Status.WORKING
            build.start_time = _now()
            started = _now()
        self._notify(running)

        failing = _failing_step(build) if outcome == "fail" else None
        last = len(build.steps) - 1
        for index in range(len(build.steps)):
            with self._lock:
                self._checkpoint(running)
                step = build.steps[index]
                step.status = Status.WORKING
                step.pull_timing = cloudbuild_v1.TimeSpan(start_time=_now(), end_time=_now())
                step.timing = cloudbuild_v1.TimeSpan(start_time=_now())
            self._pause(running, step_s)
            with self._lock:
                self._checkpoint(running)
                step = build.steps[index]
                step.timing.end_time = _now()
                if timed_out and index == last:
                    step.status = Status.TIMEOUT
                    self._end(build, Status.TIMEOUT)
                    build.status_detail = f"Build timeout: the build exceeded its timeout of {int(timeout)}s"
                elif index == failing:
                    step.status = Status.FAILURE
                    step.exit_code = 1
                    self._fail(build, index, "step exited with non-zero status: 1")
                else:
                    step.status = Status.SUCCESS
            if build.status in TERMINAL:
                self._settle(running)
                return

        push_started = _now()
        self._pause(running, push_s)
        with self._lock:
            self._checkpoint(running)
            self._record_results(build, commit, push_started, started)
            snapshot = _copy(build)
        if self._on_success is not None:
            try:
                self._on_success(snapshot)
            except Exception as error:  # noqa: BLE001 - the upload step failed: so does the build
                log.warning("fake Cloud Build: on_success for build %s failed: %s", build.id, error)
                with self._lock:
                    self._checkpoint(running)
                    build.steps[last].status = Status.FAILURE
                    build.steps[last].exit_code = 1
                    del build.results.images[:]
                    self._fail(build, last, f"step exited with non-zero status: 1 ({error})")
                self._settle(running)
                return
        with self._lock:
            self._checkpoint(running)
            self._end(build, Status.SUCCESS)
        self._settle(running)

    def _record_results(self, build: cloudbuild_v1.Build, commit: str, push_started: datetime.datetime,
                        started: datetime.datetime) -> None:
        digest = digest_for_commit(commit or build.id)
        finished = _now()
        push = cloudbuild_v1.TimeSpan(start_time=push_started, end_time=finished)
        # as in payloads/cloudbuild/: each pushed image under its bare repository name and under the name it was
        # pushed as (steps and images are already substituted)
        names: list[str] = []
        for image in build.images:
            for name in (image_repository(image), image):
                if name not in names:
                    names.append(name)
        build.results.images.extend(cloudbuild_v1.BuiltImage(name=name, digest=digest, push_timing=push)
                                    for name in names)
        build.results.build_step_images.extend(
            "sha256:" + hashlib.sha256(step.name.encode()).hexdigest() for step in build.steps)
        build.results.build_step_outputs.extend(b"" for _ in build.steps)
        build.timing["BUILD"] = cloudbuild_v1.TimeSpan(start_time=started, end_time=push_started)
        build.timing["PUSH"] = push

    def _fail(self, build: cloudbuild_v1.Build, index: int, why: str) -> None:
        step = build.steps[index]
        detail = f'build step {index} "{step.name}" failed: {why}'
        build.status_detail = f"Build step failure: {detail}"
        build.failure_info = cloudbuild_v1.Build.FailureInfo(
            type_=cloudbuild_v1.Build.FailureInfo.FailureType.USER_BUILD_STEP, detail=detail)
        self._end(build, Status.FAILURE)

    @staticmethod
    def _end(build: cloudbuild_v1.Build, status: Any, step_status: Any = None) -> None:
        """Marks the build ended (caller holds the lock). Steps that were running get `step_status` if given."""
        build.status = status
        build.finish_time = _now()
        if step_status is not None:
            for step in build.steps:
                if step.status in (Status.WORKING, Status.STATUS_UNKNOWN, Status.QUEUED):
                    step.status = step_status

    def _settle(self, running: _Running) -> None:
        """Publishes the final status, then completes the operation: once `operation.result()` returns, the
        notification has been handed to Pub/Sub."""
        with self._lock:
            snapshot = _copy(running.build)
        self._update_operation(running, snapshot)
        self._notify(running, snapshot)
        try:
            if snapshot.status == Status.SUCCESS:
                self.operations.finish(running.operation, response=snapshot)
            elif snapshot.status == Status.CANCELLED:
                self.operations.finish(running.operation, error=(grpc.StatusCode.CANCELLED, "Build was cancelled"))
            else:
                self.operations.finish(running.operation, error=(grpc.StatusCode.UNKNOWN, FAILED_BUILD_MESSAGE))
        except KeyError:  # the client deleted the operation (DeleteOperation): nothing to complete
            pass

    def _update_operation(self, running: _Running, snapshot: cloudbuild_v1.Build) -> None:
        try:
            self.operations.update_metadata(running.operation, cloudbuild_v1.BuildOperationMetadata(build=snapshot))
        except KeyError:
            pass

    def _notify(self, running: _Running, snapshot: cloudbuild_v1.Build | None = None) -> None:
        """Publishes one status change; a failed publish is retried, then logged and dropped."""
        if snapshot is None:
            with self._lock:
                snapshot = _copy(running.build)
            self._update_operation(running, snapshot)
        if self.scenario.take_fault(NOTIFY_FAULT) is not None:
            log.info("fake Cloud Build: notification %s of build %s dropped (injected fault)",
                     snapshot.status.name, snapshot.id)
            return
        data, attributes = notification(snapshot)
        for attempt in range(1, PUBLISH_ATTEMPTS + 1):
            with self._lock:
                if self._closed:
                    return
            try:
                self._publish(data, attributes)
                return
            except Exception as error:  # noqa: BLE001 - logged and retried; the build goes on regardless
                log.warning("fake Cloud Build: publishing %s of build %s failed (attempt %d/%d): %s",
                            attributes["status"], snapshot.id, attempt, PUBLISH_ATTEMPTS, error)
                if attempt < PUBLISH_ATTEMPTS:
                    time.sleep(PUBLISH_BACKOFF_SECONDS[min(attempt - 1, len(PUBLISH_BACKOFF_SECONDS) - 1)])
        log.error("fake Cloud Build: gave up publishing %s of build %s", attributes["status"], snapshot.id)


def _failing_step(build: cloudbuild_v1.Build) -> int:
    """The step a failing release build fails at: its `docker build`, else the last step."""
    for index, step in enumerate(build.steps):
        if "docker" in step.name and step.args[:1] == ["build"]:
            return index
    return len(build.steps) - 1


def _parse_filter(text: str) -> list[tuple[str, str]]:
    """`status="SUCCESS" AND tags="tagship"` -> [("status", "SUCCESS"), ("tags", "tagship")]."""
    if not text.strip():
        return []
    terms = []
    for part in re.split(r"\s+AND\s+", text.strip()):
        match = _FILTER_TERM.match(part)
        if match is None:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                        f'invalid filter {text!r}: expected terms like status="SUCCESS" joined by AND')
        key = match.group(1)
        if key not in _FILTER_FIELDS:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid filter: unsupported field {key!r}")
        terms.append((key, match.group(2) if match.group(2) is not None else match.group(3)))
    return terms


_FILTER_FIELDS = {  # the fields the "Filtering build results using queries" table documents
    "status": lambda b: [b.status.name],
    "build_id": lambda b: [b.id],
    "trigger_id": lambda b: [b.build_trigger_id],
    "tags": lambda b: list(b.tags),
    "images": lambda b: list(b.images),
    "results.images.digest": lambda b: [i.digest for i in b.results.images],
    "results.images.name": lambda b: [i.name for i in b.results.images],
}


def _matches(build: cloudbuild_v1.Build, key: str, value: str) -> bool:
    return value in _FILTER_FIELDS[key](build)


__all__ = ["FakeCloudBuild", "NOTIFY_FAULT", "SERVICE", "notification", "project_number_for"]
