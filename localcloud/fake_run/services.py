"""Services, their revisions and traffic, and the routing of URLs to revisions: the heart of the fake."""
from __future__ import annotations

import base64
import hashlib
import random
import re
import string
import threading
import uuid
from datetime import timedelta
from typing import Any, Callable, Iterable, Sequence

import grpc
from google.cloud import run_v2
from google.longrunning import operations_pb2

from localcloud.fake_run.jobs import JobsMixin
from localcloud.fake_run.kit import (
    _LATEST, _REVISION, _RECONCILING, _SERVICE_SPEC_FIELDS, _SUCCEEDED, SERVICE_URL_PREFIX, TAG_SEPARATOR,
    TAG_URL_PREFIX, Route, _Clockwork, _JobRecord, _Reconciliation, _ServiceRecord, _check_name, _clone,
    _condition, _now, _page, _project_number, _random_suffix, _short,
)
from localcloud.fake_run.worker_pools import WorkerPoolsMixin
from localcloud.grpc_kit import Abort, service_handler
from localcloud.operations import OperationStore
from localcloud.scenario import Scenario


_TAG_AND_SERVICE_MAX = 46  # the tag URL's host label TAG---SERVICE-HASH must fit 63
_CONTAINER_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_ANNOTATION_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_RESERVED_NAMESPACES = ("run.googleapis.com", "cloud.googleapis.com", "serving.knative.dev", "autoscaling.knative.dev")


class FakeCloudRun(JobsMixin, WorkerPoolsMixin):
    """The Cloud Run Admin API v2 of one project and region, in memory. Thread-safe (one lock)."""

    def __init__(
        self,
        scenario: Scenario,
        operations: OperationStore,
        *,
        project: str,
        region: str,
        router_base_url: str,
    ) -> None:
        self.scenario = scenario
        self.operations = operations
        self.project = project
        self.region = region
        self.router_base_url = router_base_url
        self._parent = f"projects/{project}/locations/{region}"
        self._lock = threading.RLock()
        self._services: dict[str, _ServiceRecord] = {}
        self._jobs: dict[str, _JobRecord] = {}
        self._pools: dict[str, Any] = {}  # worker pool short name -> its record (worker_pools.py)
        self._rng = random.Random()
        self._clock = _Clockwork()

    # -- gRPC --------------------------------------------------------------------------------------------------------
    def handlers(self) -> list[grpc.GenericRpcHandler]:
        s, op = self.scenario, operations_pb2.Operation
        return [
            service_handler(s, "google.cloud.run.v2.Services", {
                "GetService": (self._get_service, run_v2.GetServiceRequest, run_v2.Service),
                "ListServices": (self._list_services, run_v2.ListServicesRequest, run_v2.ListServicesResponse),
                "CreateService": (self._create_service, run_v2.CreateServiceRequest, op),
                "UpdateService": (self._update_service, run_v2.UpdateServiceRequest, op),
            }),
            service_handler(s, "google.cloud.run.v2.Revisions", {
                "GetRevision": (self._get_revision, run_v2.GetRevisionRequest, run_v2.Revision),
                "ListRevisions": (self._list_revisions, run_v2.ListRevisionsRequest, run_v2.ListRevisionsResponse),
                "DeleteRevision": (self._delete_revision_rpc, run_v2.DeleteRevisionRequest, op),
            }),
            service_handler(s, "google.cloud.run.v2.WorkerPools", {
                "GetWorkerPool": (self._get_worker_pool, run_v2.GetWorkerPoolRequest, run_v2.WorkerPool),
                "ListWorkerPools": (self._list_worker_pools, run_v2.ListWorkerPoolsRequest, run_v2.ListWorkerPoolsResponse),
                "UpdateWorkerPool": (self._update_worker_pool, run_v2.UpdateWorkerPoolRequest, op),
            }),
            service_handler(s, "google.cloud.run.v2.Jobs", {
                "GetJob": (self._get_job, run_v2.GetJobRequest, run_v2.Job),
                "CreateJob": (self._create_job, run_v2.CreateJobRequest, op),
                "UpdateJob": (self._update_job, run_v2.UpdateJobRequest, op),
                "RunJob": (self._run_job, run_v2.RunJobRequest, op),
            }),
            service_handler(s, "google.cloud.run.v2.Executions", {
                "GetExecution": (self._get_execution, run_v2.GetExecutionRequest, run_v2.Execution),
                "ListExecutions": (self._list_executions, run_v2.ListExecutionsRequest, run_v2.ListExecutionsResponse),
            }),
        ]

    def close(self) -> None:
        """Stops the background work; operations still running never finish."""
        self._clock.close()

    # -- seeding and reading (for LocalCloud, the router and tests) --------------------------------------------------
    def seed_service(self, name: str, image: str, *, command: Sequence[str] | None = None) -> run_v2.Service:
        """The service as the team's first manual `gcloud run deploy` left it: one ready revision
        `<service>-00001-xyz` (named by gcloud, so `template.revision` holds it) with 100% of the traffic."""
        short = _short(name)
        _check_name(short, "service")
        with self._lock:
            if short in self._services:
                raise ValueError(f"service {short} already exists")
            revision = f"{short}-00001-{_random_suffix(self._rng, 3, string.ascii_lowercase)}"
            container = run_v2.Container(image=image)
            if command:
                container.command = list(command[:1])
                container.args = list(command[1:])
            template = self._normalized_template(run_v2.RevisionTemplate(revision=revision, containers=[container]))
            traffic = [run_v2.TrafficTarget(type_=_REVISION, revision=revision, percent=100)]
            record = self._new_service_record(short, template, traffic)
            self._add_revision(record, revision, template)
            record.ready.add(revision)
            self._mark_revision_ready(record, revision)
            self._apply_traffic(record)
            self._touch(record)
            self._refresh_conditions(record)
            return self._service_view(record)

    def seed_job(self, name: str, image: str, *, command: Sequence[str] | None = None) -> run_v2.Job:
        """A job as a manual `gcloud run jobs deploy` leaves it: a template, no executions yet."""
        short = _short(name)
        _check_name(short, "job")
        container = run_v2.Container(image=image)
        if command:
            container.command = list(command[:1])
            container.args = list(command[1:])
        with self._lock:
            if short in self._jobs:
                raise ValueError(f"job {short} already exists")
            job = run_v2.Job(template=run_v2.ExecutionTemplate(template=run_v2.TaskTemplate(containers=[container])))
            return self._job_view(self._new_job_record(short, job))

    def traffic(self, service: str) -> dict[str, int]:
        """Revision short name -> percent of what the service serves now (LATEST resolved), zero entries left out."""
        with self._lock:
            record = self._known_service(service)
            split: dict[str, int] = {}
            for revision, percent in self._serving_split(record):
                split[revision] = split.get(revision, 0) + percent
            return {revision: percent for revision, percent in split.items() if percent}

    def tags(self, service: str) -> dict[str, str]:
        """Traffic tag -> revision short name, as served now."""
        with self._lock:
            record = self._known_service(service)
            return {t.tag: t.revision or self._latest_ready(record) for t in record.service.traffic_statuses if t.tag}

    def revisions(self, service: str) -> list[str]:
        """Short names of the service's revisions, oldest first."""
        with self._lock:
            return list(self._known_service(service).revisions)

    def revision_is_ready(self, service: str, revision: str) -> bool:
        with self._lock:
            return _short(revision) in self._known_service(service).ready

    def executions(self, job: str) -> list[run_v2.Execution]:
        """The job's executions, newest first (as ListExecutions answers)."""
        with self._lock:
            record = self._jobs.get(_short(job))
            if record is None:
                raise KeyError(f"job {_short(job)} does not exist (known: {sorted(self._jobs)})")
            return [_clone(e) for e in reversed(list(record.executions.values()))]

    def service_uri(self, name: str) -> str:
        return f"{self.router_base_url}{SERVICE_URL_PREFIX}{_short(name)}"

    def tag_uri(self, tag: str, service: str) -> str:
        return f"{self.router_base_url}{TAG_URL_PREFIX}{tag}{TAG_SEPARATOR}{_short(service)}"

    def revision_for_url(self, path: str, pick: Callable[[], float] = random.random) -> Route | None:
        """Resolves a router path (`/s/<service>/...` or `/t/<tag>---<service>/...`) to the revision that serves
        it; None when no such service or tag is served (404). `pick()` in [0, 1) chooses within a traffic split."""
        if path.startswith(SERVICE_URL_PREFIX):
            head, rest = self._split_path(path[len(SERVICE_URL_PREFIX):])
            with self._lock:
                record = self._services.get(head)
                if record is None:
                    return None
                split = [(r, p) for r, p in self._serving_split(record) if p > 0]
                revision = self._choose(split, pick())
                return Route(head, revision, self._image_of(record, revision), False, rest)
        if path.startswith(TAG_URL_PREFIX):
            head, rest = self._split_path(path[len(TAG_URL_PREFIX):])
            with self._lock:
                for tag, service in self._tag_and_service(head):
                    record = self._services.get(service)
                    if record is None:
                        continue
                    for status in record.service.traffic_statuses:
                        if status.tag == tag:
                            revision = status.revision or self._latest_ready(record)
                            return Route(service, revision, self._image_of(record, revision), True, rest)
        return None

    def delete_revision(self, service: str, revision: str) -> None:
        """Makes a revision gone, as if someone deleted it by hand or Cloud Run collected it: no checks but one,
        a revision taking a share of the traffic cannot go. Tag-only traffic entries naming it go with it."""
        short, revision = _short(service), _short(revision)
        with self._lock:
            record = self._known_service(short)
            if revision not in record.revisions:
                raise KeyError(f"revision {revision} of {short} does not exist")
            if any(r == revision and p for r, p in self._serving_split(record)) or any(
                t.revision == revision and t.percent for t in record.service.traffic
            ):
                raise ValueError(f"revision {revision} takes traffic of {short}: move the traffic first")
            self._forget_revision(record, revision)

    # -- Services --------------------------------------------------------------------------------------------------
    def _get_service(self, request: run_v2.GetServiceRequest) -> run_v2.Service:
        short = self._parse(request.name, "services")
        with self._lock:
            return self._service_view(self._service_record(short))

    def _list_services(self, request: run_v2.ListServicesRequest) -> run_v2.ListServicesResponse:
        self._check_parent(request.parent)
        with self._lock:
            views = [self._service_view(self._services[name]) for name in sorted(self._services)]
        chunk, token = _page(views, request.page_size, request.page_token, f"services:{request.parent}")
        return run_v2.ListServicesResponse(services=chunk, next_page_token=token)

    def _create_service(self, request: run_v2.CreateServiceRequest) -> operations_pb2.Operation:
        self._check_parent(request.parent)
        _check_name(request.service_id, "service_id")
        with self._lock:
            if request.service_id in self._services:
                raise Abort(grpc.StatusCode.ALREADY_EXISTS, f"Resource '{request.service_id}' already exists.")
            return self._create_service_locked(request.service_id, request.service, request.validate_only)

    def _create_service_locked(self, short: str, wanted: run_v2.Service, validate_only: bool) -> operations_pb2.Operation:
        template = self._normalized_template(wanted.template)
        self._check_labels(wanted.labels, "service.labels")
        self._check_annotations(wanted.annotations, "service.annotations")
        revision = template.revision or f"{short}-00001-{_random_suffix(self._rng, 3, string.ascii_lowercase)}"
        self._check_revision_name(short, revision)
        traffic = self._validated_traffic(short, wanted.traffic, set(), revision)
        if validate_only:
            return self._done_operation(self._preview(short, wanted, template, traffic))
        record = self._new_service_record(short, template, traffic, spec_from=wanted)
        record.service.observed_generation = 0
        self._add_revision(record, revision, template)
        return self._reconcile(record, revision, self.scenario.delay("revision_ready"))

    def _update_service(self, request: run_v2.UpdateServiceRequest) -> operations_pb2.Operation:
        wanted = request.service
        short = self._parse(wanted.name, "services")
        with self._lock:
            record = self._services.get(short)
            if record is None:
                if request.allow_missing:
                    return self._create_service_locked(short, wanted, request.validate_only)
                raise Abort(grpc.StatusCode.NOT_FOUND, f"Resource '{wanted.name}' was not found")
            current = record.service
            if wanted.etag and wanted.etag != current.etag:
                raise Abort(
                    grpc.StatusCode.ABORTED,
                    f"etag: the service changed since it was read (expected {current.etag}, found {wanted.etag})",
                )
            template = self._normalized_template(wanted.template)
            self._check_labels(wanted.labels, "service.labels")
            new_revision: str | None = None
            if template != current.template:
                new_revision = template.revision or self._generated_revision_name(record)
                self._check_revision_name(short, new_revision)
                if new_revision in record.revisions:
                    raise Abort(
                        grpc.StatusCode.ALREADY_EXISTS,
                        f"Revision named '{new_revision}' with different configuration already exists.",
                    )
            traffic = self._validated_traffic(short, wanted.traffic, set(record.revisions), new_revision)
            candidate = self._spec_of(wanted, template, traffic)
            if request.validate_only:
                return self._done_operation(self._preview(short, wanted, template, traffic))
            if candidate == self._spec_of(current, current.template, list(current.traffic)):
                return self._done_operation(self._service_view(record))  # nothing asked changed: no new generation
            for name in _SERVICE_SPEC_FIELDS:
                if name in candidate:
                    setattr(current, name, getattr(candidate, name))
                else:
                    delattr(current, name)  # absent stays absent, so the next comparison is like for like
            current.generation += 1
            if new_revision is not None:
                self._add_revision(record, new_revision, template)
                delay = self.scenario.delay("revision_ready")
            else:
                delay = self.scenario.delay("traffic")
            return self._reconcile(record, new_revision, delay)

    def _new_service_record(
        self,
        short: str,
        template: run_v2.RevisionTemplate,
        traffic: list[run_v2.TrafficTarget],
        spec_from: run_v2.Service | None = None,
    ) -> _ServiceRecord:
        service = self._spec_of(spec_from or run_v2.Service(), template, traffic)
        now = _now()
        service.name = f"{self._parent}/services/{short}"
        service.uid = str(uuid.uuid4())
        service.generation = 1
        service.observed_generation = 1
        service.create_time = now
        service.update_time = now
        service.creator = service.last_modifier = f"tagship@{self.project}.iam.gserviceaccount.com"
        record = _ServiceRecord(service)
        self._services[short] = record
        return record

    @staticmethod
    def _spec_of(source: run_v2.Service, template: run_v2.RevisionTemplate, traffic: Iterable[run_v2.TrafficTarget]) -> run_v2.Service:
        """Only the fields a caller sets: what decides whether an update changes anything."""
        spec = run_v2.Service()
        for name in _SERVICE_SPEC_FIELDS:
            if name in ("template", "traffic"):
                continue
            if name in source:
                setattr(spec, name, getattr(source, name))
        spec.template = template
        spec.traffic = list(traffic)
        if not spec.launch_stage:
            spec.launch_stage = "GA"  # the defaults the real API fills in
        if not spec.ingress:
            spec.ingress = run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL
        return spec

    def _preview(self, short: str, wanted: run_v2.Service, template: run_v2.RevisionTemplate, traffic: list[run_v2.TrafficTarget]) -> run_v2.Service:
        preview = self._spec_of(wanted, template, traffic)
        preview.name = f"{self._parent}/services/{short}"
        return preview

    def _normalized_template(self, template: run_v2.RevisionTemplate) -> run_v2.RevisionTemplate:
        """The template with the defaults the real API fills in, so a template read back and sent again compares
        equal to one sent bare (neither makes a revision)."""
        template = _clone(template)
        if not template.containers:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "template.containers: expected at least one container, found none")
        self._check_containers(template.containers, "template.containers", needs_port=True)
        self._check_labels(template.labels, "template.labels")
        self._check_annotations(template.annotations, "template.annotations")
        for index, container in enumerate(template.containers):
            if not container.ports and len(template.containers) == 1:
                container.ports = [run_v2.ContainerPort(name="http1", container_port=8080)]
            if "resources" not in container:
                container.resources = run_v2.ResourceRequirements(limits={"cpu": "1000m", "memory": "512Mi"}, cpu_idle=True)
        if "timeout" not in template:
            template.timeout = timedelta(seconds=300)
        if not template.max_instance_request_concurrency:
            template.max_instance_request_concurrency = 80
        if not template.service_account:
            template.service_account = f"{_project_number(self.project)}-compute@developer.gserviceaccount.com"
        if "scaling" not in template:
            template.scaling = run_v2.RevisionScaling(max_instance_count=100)
        return template

    @staticmethod
    def _check_containers(containers: Sequence[run_v2.Container], where: str, *, needs_port: bool) -> None:
        """Sidecars: several containers each carry a unique DNS-1123 name, and a service's has exactly one
        ingress container (the one with a port); a worker pool's listen on none."""
        if not containers:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"{where}: expected at least one container, found none")
        names: set[str] = set()
        for index, container in enumerate(containers):
            if not container.image:
                raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"{where}[{index}].image: must be specified")
            if len(containers) > 1:
                if not container.name or not _CONTAINER_NAME.match(container.name):
                    raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"{where}[{index}].name: with several containers each needs a DNS-1123 label name, "
                                f"found {container.name!r}")
                if container.name in names:
                    raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"{where}[{index}].name: '{container.name}' is used twice")
                names.add(container.name)
        with_port = [c for c in containers if c.ports]
        if needs_port and len(containers) > 1 and len(with_port) != 1:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                        f"{where}: expected exactly one container with a port (the ingress container), found {len(with_port)}")
        if not needs_port and with_port:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"{where}: a worker pool's containers listen on no port")

    @staticmethod
    def _check_labels(labels: Any, where: str) -> None:
        """Google Cloud labels: at most 64; keys open with a lowercase letter; keys and values at most 63 of
        [a-z0-9_-]; none in the namespaces Cloud Run v2 keeps for itself."""
        if len(labels) > 64:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"{where}: expected at most 64 labels, found {len(labels)}")
        for key, value in labels.items():
            if key.split("/", 1)[0] in _RESERVED_NAMESPACES or not _LABEL_KEY.match(key):
                raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                            f"{where}: label key {key[:80]!r} must start with a lowercase letter and hold at most 63 "
                            "lowercase letters, digits, '_' and '-', outside the Cloud Run namespaces")
            if not _LABEL_VALUE.match(value):
                raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                            f"{where}: label value {value[:80]!r} of {key!r} must hold at most 63 lowercase letters, "
                            "digits, '_' and '-'")

    @staticmethod
    def _check_annotations(annotations: Any, where: str) -> None:
        """Kubernetes annotation keys ([prefix/]name, name at most 63), none in Cloud Run's own namespaces."""
        for key in annotations:
            prefix, _, name = key.rpartition("/")
            if prefix in _RESERVED_NAMESPACES or not _ANNOTATION_NAME.match(name) or len(prefix) > 253:
                raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                            f"{where}: annotation key {key[:80]!r} must be [prefix/]name with a name of at most 63 "
                            "alphanumerics, '-', '_' and '.', outside the Cloud Run namespaces")

    def _generated_revision_name(self, record: _ServiceRecord) -> str:
        short = _short(record.service.name)
        while True:
            name = f"{short}-{record.created_count + 1:05d}-{_random_suffix(self._rng, 3, string.ascii_lowercase)}"
            if name not in record.revisions:
                return name

    @staticmethod
    def _check_revision_name(service: str, revision: str) -> None:
        _check_name(revision, "template.revision")
        if not revision.startswith(f"{service}-"):
            raise Abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"template.revision: expected a name starting with '{service}-', found '{revision}'",
            )

    @staticmethod
    def _validated_traffic(
        service: str, entries: Sequence[run_v2.TrafficTarget], existing: set[str], creating: str | None
    ) -> list[run_v2.TrafficTarget]:
        """Traffic as the real API accepts it; empty means 100% to the latest ready revision."""
        if not entries:
            return [run_v2.TrafficTarget(type_=_LATEST, percent=100)]
        total = 0
        tags: set[str] = set()
        kept: list[run_v2.TrafficTarget] = []
        for index, entry in enumerate(entries):
            where = f"traffic[{index}]"
            if entry.type_ == _REVISION:
                if not entry.revision:
                    raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"{where}.revision: expected a revision name for type REVISION, found none")
                if entry.revision not in existing and entry.revision != creating:
                    raise Abort(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"{where}.revision: Revision named '{entry.revision}' does not exist in service '{service}'",
                    )
            elif entry.type_ == _LATEST:
                if entry.revision:
                    raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"{where}.revision: must be empty for type LATEST, found '{entry.revision}'")
            else:
                raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"{where}.type: expected LATEST or REVISION, found it unspecified")
            if not 0 <= entry.percent <= 100:
                raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"{where}.percent: expected 0..100, found {entry.percent}")
            if entry.tag:
                _check_name(entry.tag, f"{where}.tag")
                if len(entry.tag) + len(service) > _TAG_AND_SERVICE_MAX:
                    raise Abort(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"{where}.tag: traffic tag '{entry.tag}' and service name '{service}' together are too long. "
                        f"Combined traffic tag and service name cannot exceed {_TAG_AND_SERVICE_MAX} characters.",
                    )
                if entry.tag in tags:
                    raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"{where}.tag: '{entry.tag}' is used twice")
                tags.add(entry.tag)
            total += entry.percent
            kept.append(run_v2.TrafficTarget(type_=entry.type_, revision=entry.revision, percent=entry.percent, tag=entry.tag))
        if total != 100:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"traffic: expected percents summing to 100, found {total}")
        return kept

    # -- reconciliation (the simulated cloud work) ------------------------------------------------------------------
    def _reconcile(self, record: _ServiceRecord, revision: str | None, delay: float) -> operations_pb2.Operation:
        """Starts the operation of a change; it finishes when the work (a revision getting ready) is done."""
        self._touch(record)
        self._refresh_conditions(record)
        operation = self.operations.start(f"{self._parent}/operations", self._service_view(record))
        item = _Reconciliation(operation.name, record.service.generation, revision)
        record.pending.append(item)
        if delay <= 0:
            self._work_done(record, item)
            return self.operations.get(operation.name)
        self._clock.after(delay, lambda: self._work_done(record, item))
        return operation

    def _work_done(self, record: _ServiceRecord, item: _Reconciliation) -> None:
        with self._lock:
            item.due = True
            if item.revision is not None and item.revision in record.revisions:
                record.ready.add(item.revision)
                self._mark_revision_ready(record, item.revision)
            self._settle(record)

    def _settle(self, record: _ServiceRecord) -> None:
        """Serves what was asked once its work is done and everything it routes to is ready, then finishes the
        operations whose work is done and whose generation is now served."""
        service = record.service
        waiting = any(p.generation == service.generation and not p.due for p in record.pending)
        if not waiting and self._routable(record, service.traffic):
            self._apply_traffic(record)
        finished = [p for p in record.pending if p.due and p.generation <= service.observed_generation]
        record.pending = [p for p in record.pending if p not in finished]
        self._touch(record)
        self._refresh_conditions(record)
        view = self._service_view(record)
        for item in finished:
            self.operations.update_metadata(item.operation, view)
            self.operations.finish(item.operation, response=view)

    def _routable(self, record: _ServiceRecord, traffic: Iterable[run_v2.TrafficTarget]) -> bool:
        for target in traffic:
            if target.type_ == _LATEST and not self._latest_ready(record):
                return False
            if target.type_ == _REVISION and target.revision not in record.ready:
                return False
        return True

    def _apply_traffic(self, record: _ServiceRecord) -> None:
        service = record.service
        service.traffic_statuses = [
            run_v2.TrafficTargetStatus(type_=t.type_, revision=t.revision, percent=t.percent, tag=t.tag)
            for t in service.traffic
        ]
        service.observed_generation = service.generation

    def _add_revision(self, record: _ServiceRecord, revision: str, template: run_v2.RevisionTemplate) -> None:
        now = _now()
        service = record.service
        record.created_count += 1
        record.revisions[revision] = run_v2.Revision(
            name=f"{service.name}/revisions/{revision}",
            uid=str(uuid.uuid4()),
            generation=1,
            labels=dict(template.labels),
            annotations=dict(template.annotations),
            create_time=now,
            update_time=now,
            launch_stage=service.launch_stage or "GA",
            service=_short(service.name),
            scaling=template.scaling,
            vpc_access=template.vpc_access,
            max_instance_request_concurrency=template.max_instance_request_concurrency,
            timeout=template.timeout,
            service_account=template.service_account,
            containers=list(template.containers),
            volumes=list(template.volumes),
            execution_environment=template.execution_environment,
            reconciling=True,
            conditions=[
                _condition("Ready", _RECONCILING, "Deploying revision."),
                _condition("ContainerHealthy", _RECONCILING),
                _condition("ResourcesAvailable", _RECONCILING),
            ],
            observed_generation=1,
            log_uri=f"https://console.cloud.google.com/logs/viewer?project={self.project}&resource=cloud_run_revision/service_name/{_short(service.name)}/revision_name/{revision}",
            etag=f'"{uuid.uuid4().hex}"',
        )
        service.latest_created_revision = f"{service.name}/revisions/{revision}"

    def _mark_revision_ready(self, record: _ServiceRecord, revision: str) -> None:
        stored = record.revisions[revision]
        stored.reconciling = False
        stored.update_time = _now()
        stored.conditions = [
            _condition("Ready", _SUCCEEDED),
            _condition("ContainerHealthy", _SUCCEEDED),
            _condition("ResourcesAvailable", _SUCCEEDED),
        ]
        stored.etag = f'"{uuid.uuid4().hex}"'

    def _forget_revision(self, record: _ServiceRecord, revision: str) -> None:
        del record.revisions[revision]
        record.ready.discard(revision)
        service = record.service
        service.traffic = [t for t in service.traffic if t.revision != revision]
        service.traffic_statuses = [t for t in service.traffic_statuses if t.revision != revision]
        if _short(service.latest_created_revision) == revision:
            service.latest_created_revision = next(
                (r.name for r in reversed(list(record.revisions.values()))), ""
            )
        self._touch(record)
        self._refresh_conditions(record)

    def _latest_ready(self, record: _ServiceRecord) -> str:
        for name in reversed(list(record.revisions)):
            if name in record.ready:
                return name
        return ""

    def _serving_split(self, record: _ServiceRecord) -> list[tuple[str, int]]:
        latest = self._latest_ready(record)
        split = []
        for status in record.service.traffic_statuses:
            revision = status.revision if status.type_ == _REVISION else latest
            if revision:
                split.append((revision, status.percent))
        return split

    @staticmethod
    def _choose(split: list[tuple[str, int]], value: float) -> str:
        total = sum(percent for _, percent in split)
        if total <= 0:
            return ""
        point = value * total
        for revision, percent in split:
            if point < percent:
                return revision
            point -= percent
        return split[-1][0]

    def _image_of(self, record: _ServiceRecord, revision: str) -> str:
        stored = record.revisions.get(revision)
        if stored is None or not stored.containers:
            return ""
        ingress = [c for c in stored.containers if c.ports]  # what the URL reaches; sidecars have no port
        return (ingress or list(stored.containers))[0].image

    def _touch(self, record: _ServiceRecord) -> None:
        record.version += 1
        service = record.service
        service.update_time = _now()
        digest = hashlib.sha256(f"{service.name}|{service.uid}|{record.version}".encode()).digest()
        service.etag = '"' + base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=") + '"'

    def _refresh_conditions(self, record: _ServiceRecord) -> None:
        service = record.service
        latest_ready = self._latest_ready(record)
        service.latest_ready_revision = f"{service.name}/revisions/{latest_ready}" if latest_ready else ""
        routes_ready = service.observed_generation == service.generation
        config_ready = _short(service.latest_created_revision) in record.ready
        settled = routes_ready and config_ready and not record.pending
        service.reconciling = not settled
        service.terminal_condition = _condition("Ready", _SUCCEEDED if settled else _RECONCILING)
        service.conditions = [
            _condition("RoutesReady", _SUCCEEDED if routes_ready else _RECONCILING),
            _condition("ConfigurationsReady", _SUCCEEDED if config_ready else _RECONCILING),
        ]

    def _service_view(self, record: _ServiceRecord) -> run_v2.Service:
        view = _clone(record.service)
        short = _short(view.name)
        view.uri = self.service_uri(short)
        view.urls = [view.uri]
        for status in view.traffic_statuses:
            if status.tag:
                status.uri = self.tag_uri(status.tag, short)
        return view

    @staticmethod
    def _split_path(text: str) -> tuple[str, str]:
        head, slash, rest = text.partition("/")
        return head, "/" + rest if slash else "/"

    @staticmethod
    def _tag_and_service(head: str) -> list[tuple[str, str]]:
        found = []
        start = 0
        while (index := head.find(TAG_SEPARATOR, start)) > 0:
            found.append((head[:index], head[index + len(TAG_SEPARATOR):]))
            start = index + 1
        return found

    # -- Revisions ---------------------------------------------------------------------------------------------------
    def _get_revision(self, request: run_v2.GetRevisionRequest) -> run_v2.Revision:
        pool = re.fullmatch(r"(.+/workerPools/[^/]+)/revisions/([^/]+)", request.name)
        if pool:  # a worker pool's revisions are served by the same Revisions service
            short = self._parse(pool.group(1), "workerPools")
            with self._lock:
                stored = self._pool_record(short).revisions.get(pool.group(2))
                if stored is None:
                    raise Abort(grpc.StatusCode.NOT_FOUND, f"Resource '{request.name}' was not found")
                return _clone(stored)
        service, revision = self._parse_revision(request.name)
        with self._lock:
            record = self._service_record(service)
            if revision not in record.revisions:
                raise Abort(grpc.StatusCode.NOT_FOUND, f"Resource '{request.name}' was not found")
            return _clone(record.revisions[revision])

    def _list_revisions(self, request: run_v2.ListRevisionsRequest) -> run_v2.ListRevisionsResponse:
        service = self._parse(request.parent, "services")
        with self._lock:
            found = [_clone(r) for r in reversed(list(self._service_record(service).revisions.values()))]
        chunk, token = _page(found, request.page_size, request.page_token, f"revisions:{request.parent}")
        return run_v2.ListRevisionsResponse(revisions=chunk, next_page_token=token)

    def _delete_revision_rpc(self, request: run_v2.DeleteRevisionRequest) -> operations_pb2.Operation:
        """As the real API: a revision that can receive traffic, or the latest one, cannot be deleted."""
        service, revision = self._parse_revision(request.name)
        with self._lock:
            record = self._service_record(service)
            stored = record.revisions.get(revision)
            if stored is None:
                raise Abort(grpc.StatusCode.NOT_FOUND, f"Resource '{request.name}' was not found")
            if request.etag and request.etag != stored.etag:
                raise Abort(grpc.StatusCode.ABORTED, f"etag: expected {stored.etag}, found {request.etag}")
            routed = {r for r, _ in self._serving_split(record)} | {t.revision for t in record.service.traffic if t.revision}
            if revision in routed:
                raise Abort(grpc.StatusCode.FAILED_PRECONDITION, f"Revision '{revision}' is referenced by traffic and cannot be deleted.")
            if _short(record.service.latest_created_revision) == revision:
                raise Abort(grpc.StatusCode.FAILED_PRECONDITION, f"Revision '{revision}' is the latest revision of '{service}' and cannot be deleted.")
            deleted = _clone(stored)
            deleted.delete_time = _now()
            if not request.validate_only:
                self._forget_revision(record, revision)
            return self._done_operation(deleted)

    # -- names and lookups -----------------------------------------------------------------------------------------
    def _check_parent(self, parent: str) -> None:
        if not re.fullmatch(r"projects/[^/]+/locations/[^/]+", parent):
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"parent: expected projects/PROJECT/locations/LOCATION, found '{parent}'")
        if parent != self._parent:
            raise Abort(grpc.StatusCode.NOT_FOUND, f"Location '{parent}' is not served here (this fake serves {self._parent})")

    def _parse(self, name: str, collection: str) -> str:
        match = re.fullmatch(rf"(projects/[^/]+/locations/[^/]+)/{collection}/([^/]+)", name)
        if not match:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"name: expected projects/P/locations/L/{collection}/NAME, found '{name}'")
        if match.group(1) != self._parent:
            raise Abort(grpc.StatusCode.NOT_FOUND, f"Resource '{name}' was not found")
        return match.group(2)

    def _parse_revision(self, name: str) -> tuple[str, str]:
        match = re.fullmatch(r"(.+/services/[^/]+)/revisions/([^/]+)", name)
        if not match:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"name: expected .../services/S/revisions/R, found '{name}'")
        return self._parse(match.group(1), "services"), match.group(2)

    def _parse_execution(self, name: str) -> tuple[str, str]:
        match = re.fullmatch(r"(.+/jobs/[^/]+)/executions/([^/]+)", name)
        if not match:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"name: expected .../jobs/J/executions/E, found '{name}'")
        return self._parse(match.group(1), "jobs"), match.group(2)

    def _known_service(self, name: str) -> _ServiceRecord:
        record = self._services.get(_short(name))
        if record is None:
            raise KeyError(f"service {_short(name)} does not exist (known: {sorted(self._services)})")
        return record

    def _service_record(self, short: str) -> _ServiceRecord:
        record = self._services.get(short)
        if record is None:
            raise Abort(grpc.StatusCode.NOT_FOUND, f"Resource '{self._parent}/services/{short}' was not found")
        return record

    def _job_record(self, short: str) -> _JobRecord:
        record = self._jobs.get(short)
        if record is None:
            raise Abort(grpc.StatusCode.NOT_FOUND, f"Resource '{self._parent}/jobs/{short}' was not found")
        return record

    def _done_operation(self, resource: Any) -> operations_pb2.Operation:
        operation = self.operations.start(f"{self._parent}/operations", resource)
        self.operations.finish(operation.name, response=resource)
        return self.operations.get(operation.name)
