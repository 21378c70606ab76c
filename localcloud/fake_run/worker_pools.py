"""Worker pools: GetWorkerPool, ListWorkerPools, UpdateWorkerPool, and their revisions (served by Revisions).

A worker pool is what a Celery worker runs on: no port, no URL, no traffic tags; its instances are shared among
revisions by `instance_splits` (percents summing to 100, naming existing revisions or LATEST). As with services, a
new revision is made only when the template changes, an explicit `template.revision` must be new and start with
`<pool>-`, and UpdateWorkerPool is long-running: done once the new revision is ready (`scenario.delay
("revision_ready")`), the split applied to `instance_split_statuses` then.
"""
from __future__ import annotations

import base64
import hashlib
import string
import uuid
from dataclasses import dataclass, field
from typing import Sequence

import grpc
from google.cloud import run_v2
from google.longrunning import operations_pb2

from localcloud.fake_run.kit import (
    _RECONCILING, _SUCCEEDED, _check_name, _clone, _condition, _now, _page, _project_number, _random_suffix, _short,
)
from localcloud.grpc_kit import Abort

_SPLIT_LATEST = run_v2.InstanceSplitAllocationType.INSTANCE_SPLIT_ALLOCATION_TYPE_LATEST
_SPLIT_REVISION = run_v2.InstanceSplitAllocationType.INSTANCE_SPLIT_ALLOCATION_TYPE_REVISION
_POOL_SPEC_FIELDS = ("description", "labels", "annotations", "client", "client_version", "launch_stage",
                     "binary_authorization", "template", "instance_splits", "scaling")


@dataclass
class _PoolRecord:
    pool: run_v2.WorkerPool
    revisions: dict[str, run_v2.Revision] = field(default_factory=dict)  # creation order
    ready: set[str] = field(default_factory=set)
    created_count: int = 0
    version: int = 0


class WorkerPoolsMixin:
    """The WorkerPools of FakeCloudRun (its lock, clock, operations and checks)."""

    def seed_worker_pool(self, name: str, image: str, *, command: Sequence[str] | None = None) -> run_v2.WorkerPool:
        """A pool as a manual `gcloud run worker-pools deploy` leaves it: one ready revision with every instance."""
        short = _short(name)
        _check_name(short, "worker pool")
        container = run_v2.Container(image=image)
        if command:
            container.command = list(command[:1])
            container.args = list(command[1:])
        with self._lock:
            if short in self._pools:
                raise ValueError(f"worker pool {short} already exists")
            pool = run_v2.WorkerPool(template=run_v2.WorkerPoolRevisionTemplate(containers=[container]))
            record = self._new_pool_record(short, pool)
            revision = f"{short}-00001-{_random_suffix(self._rng, 3, string.ascii_lowercase)}"
            record.pool.template.revision = revision
            self._add_pool_revision(record, revision)
            self._pool_revision_ready(record, revision)
            return _clone(record.pool)

    def pool_split(self, name: str) -> dict[str, int]:
        """Revision short name -> percent of the pool's instances, as running now (LATEST resolved)."""
        with self._lock:
            record = self._pools[_short(name)]
            latest = _short(record.pool.latest_ready_revision)
            split: dict[str, int] = {}
            for status in record.pool.instance_split_statuses:
                revision = status.revision or latest
                split[revision] = split.get(revision, 0) + status.percent
            return {r: p for r, p in split.items() if p}

    def pool_revisions(self, name: str) -> list[str]:
        with self._lock:
            return list(self._pools[_short(name)].revisions)

    # -- gRPC --------------------------------------------------------------------------------------------------------
    def _get_worker_pool(self, request: run_v2.GetWorkerPoolRequest) -> run_v2.WorkerPool:
        short = self._parse(request.name, "workerPools")
        with self._lock:
            return _clone(self._pool_record(short).pool)

    def _list_worker_pools(self, request: run_v2.ListWorkerPoolsRequest) -> run_v2.ListWorkerPoolsResponse:
        self._check_parent(request.parent)
        with self._lock:
            views = [_clone(self._pools[name].pool) for name in sorted(self._pools)]
        chunk, token = _page(views, request.page_size, request.page_token, f"workerPools:{request.parent}")
        return run_v2.ListWorkerPoolsResponse(worker_pools=chunk, next_page_token=token)

    def _update_worker_pool(self, request: run_v2.UpdateWorkerPoolRequest) -> operations_pb2.Operation:
        wanted = request.worker_pool
        short = self._parse(wanted.name, "workerPools")
        with self._lock:
            record = self._pools.get(short)
            if record is None:
                raise Abort(grpc.StatusCode.NOT_FOUND, f"Resource '{wanted.name}' was not found")
            current = record.pool
            if wanted.etag and wanted.etag != current.etag:
                raise Abort(grpc.StatusCode.ABORTED,
                            f"etag: the worker pool changed since it was read (expected {current.etag}, found {wanted.etag})")
            template = self._normalized_pool_template(wanted.template)
            self._check_labels(wanted.labels, "worker_pool.labels")
            self._check_labels(template.labels, "worker_pool.template.labels")
            current_template = _clone(current.template)
            new_revision = None
            if template != current_template or request.force_new_revision:
                new_revision = template.revision or self._generated_pool_revision(record)
                self._check_revision_name(short, new_revision)
                if new_revision in record.revisions:
                    raise Abort(grpc.StatusCode.ALREADY_EXISTS,
                                f"Revision named '{new_revision}' with different configuration already exists.")
            splits = self._validated_splits(short, wanted.instance_splits, set(record.revisions), new_revision)
            if request.validate_only:
                return self._done_operation(_clone(wanted))
            if new_revision is None and list(splits) == list(current.instance_splits):
                return self._done_operation(_clone(current))
            current.template = template
            del current.instance_splits[:]
            current.instance_splits.extend(splits)
            current.generation += 1
            current.reconciling = True
            if new_revision is not None:
                self._add_pool_revision(record, new_revision)
            self._touch_pool(record)
            operation = self.operations.start(f"{self._parent}/operations", _clone(current))
            delay = self.scenario.delay("revision_ready" if new_revision else "traffic")
            generation = current.generation

        def done() -> None:
            with self._lock:
                if new_revision is not None and new_revision in record.revisions:
                    self._pool_revision_ready(record, new_revision)
                if record.pool.generation == generation:
                    self._apply_splits(record)
                view = _clone(record.pool)
            self.operations.update_metadata(operation.name, view)
            self.operations.finish(operation.name, response=view)

        if delay <= 0:
            done()
            return self.operations.get(operation.name)
        self._clock.after(delay, done)
        return operation

    # -- rules and state ---------------------------------------------------------------------------------------------
    def _normalized_pool_template(self, template: run_v2.WorkerPoolRevisionTemplate) -> run_v2.WorkerPoolRevisionTemplate:
        template = _clone(template)
        self._check_containers(template.containers, "worker_pool.template.containers", needs_port=False)
        for container in template.containers:
            if "resources" not in container:
                container.resources = run_v2.ResourceRequirements(limits={"cpu": "1000m", "memory": "512Mi"})
        if not template.service_account:
            template.service_account = f"{_project_number(self.project)}-compute@developer.gserviceaccount.com"
        return template

    @staticmethod
    def _validated_splits(pool: str, entries: Sequence[run_v2.InstanceSplit], existing: set[str],
                          creating: str | None) -> list[run_v2.InstanceSplit]:
        if not entries:
            return [run_v2.InstanceSplit(type_=_SPLIT_LATEST, percent=100)]
        total, named, kept = 0, set(), []
        for index, entry in enumerate(entries):
            where = f"instance_splits[{index}]"
            if entry.type_ == _SPLIT_REVISION:
                if entry.revision not in existing and entry.revision != creating:
                    raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"{where}.revision: Revision named '{entry.revision}' does not exist in worker pool '{pool}'")
                if entry.revision in named:
                    raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"{where}.revision: '{entry.revision}' is named twice")
                named.add(entry.revision)
            elif entry.type_ == _SPLIT_LATEST:
                if entry.revision:
                    raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"{where}.revision: must be empty for type LATEST")
            else:
                raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"{where}.type: expected LATEST or REVISION, found it unspecified")
            if not 0 <= entry.percent <= 100:
                raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"{where}.percent: expected 0..100, found {entry.percent}")
            total += entry.percent
            kept.append(run_v2.InstanceSplit(type_=entry.type_, revision=entry.revision, percent=entry.percent))
        if total != 100:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"instance_splits: expected percents summing to 100, found {total}")
        return kept

    def _new_pool_record(self, short: str, wanted: run_v2.WorkerPool) -> _PoolRecord:
        pool = run_v2.WorkerPool()
        for name in _POOL_SPEC_FIELDS:
            if name in wanted:
                setattr(pool, name, getattr(wanted, name))
        pool.template = self._normalized_pool_template(wanted.template)
        pool.instance_splits = [run_v2.InstanceSplit(type_=_SPLIT_LATEST, percent=100)]
        now = _now()
        pool.name = f"{self._parent}/workerPools/{short}"
        pool.uid = str(uuid.uuid4())
        pool.generation = pool.observed_generation = 1
        pool.create_time = pool.update_time = now
        pool.creator = pool.last_modifier = f"tagship@{self.project}.iam.gserviceaccount.com"
        record = _PoolRecord(pool)
        self._pools[short] = record
        return record

    def _generated_pool_revision(self, record: _PoolRecord) -> str:
        short = _short(record.pool.name)
        while True:
            name = f"{short}-{record.created_count + 1:05d}-{_random_suffix(self._rng, 3, string.ascii_lowercase)}"
            if name not in record.revisions:
                return name

    def _add_pool_revision(self, record: _PoolRecord, revision: str) -> None:
        pool, template = record.pool, record.pool.template
        record.created_count += 1
        record.revisions[revision] = run_v2.Revision(
            name=f"{pool.name}/revisions/{revision}", uid=str(uuid.uuid4()), generation=1,
            labels=dict(template.labels), annotations=dict(template.annotations), create_time=_now(),
            update_time=_now(), service_account=template.service_account, containers=list(template.containers),
            volumes=list(template.volumes), reconciling=True, etag=f'"{uuid.uuid4().hex}"',
            conditions=[_condition("Ready", _RECONCILING, "Deploying revision.")],
        )
        pool.latest_created_revision = f"{pool.name}/revisions/{revision}"

    def _pool_revision_ready(self, record: _PoolRecord, revision: str) -> None:
        stored = record.revisions[revision]
        stored.reconciling = False
        stored.conditions = [_condition("Ready", _SUCCEEDED)]
        record.ready.add(revision)
        record.pool.latest_ready_revision = stored.name
        self._apply_splits(record)

    def _apply_splits(self, record: _PoolRecord) -> None:
        pool = record.pool
        if any(s.type_ == _SPLIT_REVISION and s.revision not in record.ready for s in pool.instance_splits):
            return
        pool.instance_split_statuses = [
            run_v2.InstanceSplitStatus(type_=s.type_, revision=s.revision, percent=s.percent) for s in pool.instance_splits
        ]
        pool.observed_generation = pool.generation
        pool.reconciling = False
        pool.terminal_condition = _condition("Ready", _SUCCEEDED)
        self._touch_pool(record)

    def _touch_pool(self, record: _PoolRecord) -> None:
        record.version += 1
        pool = record.pool
        pool.update_time = _now()
        digest = hashlib.sha256(f"{pool.name}|{pool.uid}|{record.version}".encode()).digest()
        pool.etag = '"' + base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=") + '"'

    def _pool_record(self, short: str) -> _PoolRecord:
        record = self._pools.get(short)
        if record is None:
            raise Abort(grpc.StatusCode.NOT_FOUND, f"Resource '{self._parent}/workerPools/{short}' was not found")
        return record
