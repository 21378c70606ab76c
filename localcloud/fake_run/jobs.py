"""Jobs and their executions: UpdateJob, RunJob (an Execution that ends after the scenario's migration delay),
GetExecution, ListExecutions."""
from __future__ import annotations

import base64
import hashlib
import string
import uuid
from datetime import timedelta

import grpc
from google.cloud import run_v2
from google.longrunning import operations_pb2

from localcloud.fake_run.kit import (
    _FAILED, _FAILED_EXECUTION_CODE, _JOB_SPEC_FIELDS, _RECONCILING, _SUCCEEDED, _JobRecord, _check_name, _clone,
    _condition, _now, _page, _project_number, _random_suffix,
)
from localcloud.grpc_kit import Abort


class JobsMixin:
    """The Jobs and Executions of FakeCloudRun (its lock, records and operations)."""

    # -- Jobs ----------------------------------------------------------------------------------------------------------
    def _get_job(self, request: run_v2.GetJobRequest) -> run_v2.Job:
        short = self._parse(request.name, "jobs")
        with self._lock:
            return self._job_view(self._job_record(short))

    def _create_job(self, request: run_v2.CreateJobRequest) -> operations_pb2.Operation:
        self._check_parent(request.parent)
        _check_name(request.job_id, "job_id")
        with self._lock:
            if request.job_id in self._jobs:
                raise Abort(grpc.StatusCode.ALREADY_EXISTS, f"Resource '{request.job_id}' already exists.")
            if request.validate_only:
                return self._done_operation(request.job)
            return self._done_operation(self._job_view(self._new_job_record(request.job_id, request.job)))

    def _new_job_record(self, short: str, wanted: run_v2.Job) -> _JobRecord:
        job = run_v2.Job()
        for name in _JOB_SPEC_FIELDS:
            if name in wanted:
                setattr(job, name, getattr(wanted, name))
        job.template = self._normalized_execution_template(wanted.template)
        now = _now()
        job.name = f"{self._parent}/jobs/{short}"
        job.uid = str(uuid.uuid4())
        job.generation = job.observed_generation = 1
        job.create_time = job.update_time = now
        job.creator = job.last_modifier = f"tagship@{self.project}.iam.gserviceaccount.com"
        job.launch_stage = job.launch_stage or "GA"
        job.terminal_condition = _condition("Ready", _SUCCEEDED)
        record = _JobRecord(job)
        self._touch_job(record)
        self._jobs[short] = record
        return record

    def _update_job(self, request: run_v2.UpdateJobRequest) -> operations_pb2.Operation:
        wanted = request.job
        short = self._parse(wanted.name, "jobs")
        with self._lock:
            record = self._jobs.get(short)
            if record is None:
                if request.allow_missing:
                    return self._done_operation(self._job_view(self._new_job_record(short, wanted)))
                raise Abort(grpc.StatusCode.NOT_FOUND, f"Resource '{wanted.name}' was not found")
            job = record.job
            if wanted.etag and wanted.etag != job.etag:
                raise Abort(grpc.StatusCode.ABORTED, f"etag: the job changed since it was read (expected {job.etag}, found {wanted.etag})")
            template = self._normalized_execution_template(wanted.template)
            if request.validate_only:
                return self._done_operation(self._job_view(record))
            changed = template != job.template or any(
                getattr(wanted, name) != getattr(job, name) for name in _JOB_SPEC_FIELDS if name != "template" and name in wanted
            )
            if changed:
                for name in _JOB_SPEC_FIELDS:
                    if name != "template" and name in wanted:
                        setattr(job, name, getattr(wanted, name))
                job.template = template
                job.generation += 1
                job.observed_generation = job.generation
                self._touch_job(record)
            return self._done_operation(self._job_view(record))

    def _normalized_execution_template(self, template: run_v2.ExecutionTemplate) -> run_v2.ExecutionTemplate:
        template = _clone(template)
        task = template.template
        if not task.containers:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "template.template.containers: expected at least one container, found none")
        for index, container in enumerate(task.containers):
            if not container.image:
                raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"template.template.containers[{index}].image: must be specified")
            if "resources" not in container:
                container.resources = run_v2.ResourceRequirements(limits={"cpu": "1000m", "memory": "512Mi"})
        if not template.task_count:
            template.task_count = 1
        if "max_retries" not in task:
            task.max_retries = 3
        if "timeout" not in task:
            task.timeout = timedelta(seconds=600)
        if not task.service_account:
            task.service_account = f"{_project_number(self.project)}-compute@developer.gserviceaccount.com"
        return template

    def _touch_job(self, record: _JobRecord) -> None:
        record.version += 1
        job = record.job
        job.update_time = _now()
        digest = hashlib.sha256(f"{job.name}|{job.uid}|{record.version}".encode()).digest()
        job.etag = '"' + base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=") + '"'

    def _run_job(self, request: run_v2.RunJobRequest) -> operations_pb2.Operation:
        short = self._parse(request.name, "jobs")
        with self._lock:
            record = self._job_record(short)
            job = record.job
            if request.etag and request.etag != job.etag:
                raise Abort(grpc.StatusCode.ABORTED, f"etag: expected {job.etag}, found {request.etag}")
            task = _clone(job.template.template)
            overrides = request.overrides
            for override in overrides.container_overrides:
                container = next((c for c in task.containers if c.name == override.name), task.containers[0])
                if override.clear_args:
                    container.args = []
                elif override.args:
                    container.args = list(override.args)
                if override.env:
                    container.env = list(container.env) + list(override.env)
            if "timeout" in overrides:
                task.timeout = overrides.timeout
            if request.validate_only:
                return self._done_operation(run_v2.Execution(job=short, template=task))
            while True:
                execution_id = f"{short}-{_random_suffix(self._rng, 5, string.ascii_lowercase + string.digits)}"
                if execution_id not in record.executions:
                    break
            now = _now()
            name = f"{job.name}/executions/{execution_id}"
            execution = run_v2.Execution(
                name=name,
                uid=str(uuid.uuid4()),
                creator=job.last_modifier,
                generation=1,
                labels=dict(job.template.labels),
                annotations=dict(job.template.annotations),
                create_time=now,
                start_time=now,
                update_time=now,
                launch_stage=job.launch_stage,
                job=short,
                parallelism=job.template.parallelism,
                task_count=overrides.task_count or job.template.task_count,
                template=task,
                reconciling=True,
                conditions=[
                    _condition("ResourcesAvailable", _SUCCEEDED),
                    _condition("Started", _SUCCEEDED),
                    _condition("Completed", _RECONCILING, "Started"),
                ],
                observed_generation=1,
                running_count=1,
                log_uri=f"https://console.cloud.google.com/logs/viewer?project={self.project}&resource=cloud_run_job/job_name/{short}",
                etag=f'"{uuid.uuid4().hex}"',
            )
            record.executions[execution_id] = execution
            job.execution_count += 1
            job.latest_created_execution = run_v2.ExecutionReference(
                name=name, create_time=now,
                completion_status=run_v2.ExecutionReference.CompletionStatus.EXECUTION_RUNNING,
            )
            self._touch_job(record)
            operation = self.operations.start(f"{self._parent}/operations", _clone(execution))
            delay = self.scenario.delay("migration")
        if delay <= 0:
            self._execution_ends(record, execution_id, operation.name)
            return self.operations.get(operation.name)
        self._clock.after(delay, lambda: self._execution_ends(record, execution_id, operation.name))
        return operation

    def _execution_ends(self, record: _JobRecord, execution_id: str, operation: str) -> None:
        with self._lock:
            execution = record.executions.get(execution_id)
            if execution is None:
                return
            image = execution.template.containers[0].image
            succeeded = self.scenario.behaviour_for_image(image).migration == "ok"
            now = _now()
            took = (now - execution.start_time).total_seconds()
            execution.running_count = 0
            execution.reconciling = False
            execution.completion_time = now
            execution.update_time = now
            status = run_v2.ExecutionReference.CompletionStatus
            if succeeded:
                execution.succeeded_count = 1
                message = f"Execution completed successfully in {took:.2f}s."
                completed = _condition("Completed", _SUCCEEDED, message)
            else:
                execution.failed_count = 1
                execution.retried_count = execution.template.max_retries
                message = (
                    f"Task {execution_id}-task0 failed with message: The container exited with an error. "
                    f"1 task failed."
                )
                completed = _condition(
                    "Completed", _FAILED, message,
                    execution_reason=run_v2.Condition.ExecutionReason.NON_ZERO_EXIT_CODE,
                    severity=run_v2.Condition.Severity.ERROR,
                )
            execution.conditions = [c for c in execution.conditions if c.type_ != "Completed"] + [completed]
            execution.etag = f'"{uuid.uuid4().hex}"'
            latest = record.job.latest_created_execution
            if latest.name == execution.name:
                latest.completion_time = now
                latest.completion_status = status.EXECUTION_SUCCEEDED if succeeded else status.EXECUTION_FAILED
                self._touch_job(record)
            view = _clone(execution)
            self.operations.update_metadata(operation, view)
            if succeeded:
                self.operations.finish(operation, response=view)
            else:
                self.operations.finish(operation, error=(_FAILED_EXECUTION_CODE, message))

    def _job_view(self, record: _JobRecord) -> run_v2.Job:
        return _clone(record.job)

    # -- Executions ----------------------------------------------------------------------------------------------------
    def _get_execution(self, request: run_v2.GetExecutionRequest) -> run_v2.Execution:
        job, execution = self._parse_execution(request.name)
        with self._lock:
            record = self._job_record(job)
            if execution not in record.executions:
                raise Abort(grpc.StatusCode.NOT_FOUND, f"Resource '{request.name}' was not found")
            return _clone(record.executions[execution])

    def _list_executions(self, request: run_v2.ListExecutionsRequest) -> run_v2.ListExecutionsResponse:
        job = self._parse(request.parent, "jobs")
        with self._lock:
            records = list(self._jobs.values()) if job == "-" else [self._job_record(job)]
            found = [e for r in records for e in reversed(list(r.executions.values()))]
        if len(records) > 1:
            found.sort(key=lambda e: e.create_time, reverse=True)  # stable: ties keep newest first
        chunk, token = _page([_clone(e) for e in found], request.page_size, request.page_token, f"executions:{request.parent}")
        return run_v2.ListExecutionsResponse(executions=chunk, next_page_token=token)

