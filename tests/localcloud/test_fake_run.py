"""The fake Cloud Run Admin API v2 keeps the behaviours the deploy pipeline relies on, seen through the real clients."""
from __future__ import annotations

import time

import grpc
import pytest
import requests
from google.api_core import exceptions
from google.cloud import run_v2

from localcloud.scenario import AppBehaviour
from tests.localcloud.conftest import (
    PARENT, LocalRun, fast_polling, image_for, job_name, revision_target, service_name,
)

API = "botbalance-api"
JOB = "botbalance-migrate"
CONDITION = run_v2.Condition.State


def seeded(local: LocalRun, short: str = API, commit: str = "c0") -> str:
    """Seeds a service as the manual deploy left it and returns its one revision's name."""
    local.fake_run.seed_service(short, image_for(commit))
    [revision] = local.fake_run.revisions(short)
    return revision


def ready(revision: run_v2.Revision) -> bool:
    return any(c.type_ == "Ready" and c.state == CONDITION.CONDITION_SUCCEEDED for c in revision.conditions)


# -- services and revisions --------------------------------------------------------------------------------------
def test_a_seeded_service_serves_one_auto_named_revision_with_all_its_traffic(local: LocalRun) -> None:
    revision = seeded(local)
    service = local.services.get_service(name=service_name(API))
    assert revision.startswith(f"{API}-00001-") and len(revision) == len(API) + 10
    assert service.template.revision == revision
    assert [(t.revision, t.percent) for t in service.traffic] == [(revision, 100)]
    assert [(s.revision, s.percent) for s in service.traffic_statuses] == [(revision, 100)]
    assert service.latest_ready_revision == service.latest_created_revision == f"{service_name(API)}/revisions/{revision}"
    assert service.uri == f"{local.router.base_url}/s/{API}"
    assert service.generation == service.observed_generation == 1
    assert service.terminal_condition.state == CONDITION.CONDITION_SUCCEEDED and not service.reconciling
    assert service.etag and service.create_time and service.update_time
    stored = local.revisions.get_revision(name=f"{service_name(API)}/revisions/{revision}")
    assert ready(stored) and stored.service == API and stored.containers[0].image == image_for("c0")
    assert local.fake_run.traffic(API) == {revision: 100}


def test_a_new_template_makes_a_revision_that_traffic_can_name_in_the_same_update(local: LocalRun) -> None:
    first = seeded(local)
    service = local.deploy(API, f"{API}-v1-1-0", image_for("c1"), [(first, 100, ""), (f"{API}-v1-1-0", 0, "v1-1-0")])
    assert local.fake_run.revisions(API) == [first, f"{API}-v1-1-0"]
    assert service.latest_created_revision.endswith(f"/revisions/{API}-v1-1-0")
    assert service.generation == service.observed_generation == 2
    assert local.fake_run.traffic(API) == {first: 100}
    assert local.fake_run.tags(API) == {"v1-1-0": f"{API}-v1-1-0"}


def test_a_revision_without_an_explicit_name_gets_the_next_generated_one(local: LocalRun) -> None:
    seeded(local)
    service = local.services.get_service(name=service_name(API))
    service.template.revision = ""
    service.template.containers[0].image = image_for("c1")
    local.update(service)
    assert local.fake_run.revisions(API)[-1].startswith(f"{API}-00002-")


def test_a_wrong_traffic_sum_is_refused(local: LocalRun) -> None:
    first = seeded(local)
    service = local.services.get_service(name=service_name(API))
    service.traffic = [revision_target(first, 90)]
    with pytest.raises(exceptions.InvalidArgument, match="summing to 100, found 90"):
        local.services.update_service(request=run_v2.UpdateServiceRequest(service=service))
    assert local.fake_run.traffic(API) == {first: 100}


def test_traffic_naming_an_unknown_revision_is_refused(local: LocalRun) -> None:
    seeded(local)
    service = local.services.get_service(name=service_name(API))
    service.traffic = [revision_target(f"{API}-nowhere", 100)]
    with pytest.raises(exceptions.InvalidArgument, match="does not exist"):
        local.services.update_service(request=run_v2.UpdateServiceRequest(service=service))


def test_traffic_without_a_type_is_refused(local: LocalRun) -> None:
    first = seeded(local)
    service = local.services.get_service(name=service_name(API))
    service.traffic = [run_v2.TrafficTarget(revision=first, percent=100)]
    with pytest.raises(exceptions.InvalidArgument, match="type"):
        local.services.update_service(request=run_v2.UpdateServiceRequest(service=service))


def test_a_reused_explicit_revision_name_is_refused(local: LocalRun) -> None:
    seeded(local)
    local.deploy(API, f"{API}-v1-0-0", image_for("c1"))
    with pytest.raises(exceptions.AlreadyExists, match=f"{API}-v1-0-0"):
        local.deploy(API, f"{API}-v1-0-0", image_for("c2"))
    assert len(local.fake_run.revisions(API)) == 2


def test_a_revision_name_must_start_with_the_service_name(local: LocalRun) -> None:
    seeded(local)
    with pytest.raises(exceptions.InvalidArgument, match=f"starting with '{API}-'"):
        local.deploy(API, "other-v1-0-0", image_for("c1"))


def test_an_unchanged_template_makes_no_revision(local: LocalRun) -> None:
    seeded(local)
    before = local.services.get_service(name=service_name(API))
    after = local.update(before)
    assert len(local.fake_run.revisions(API)) == 1
    assert after.generation == before.generation


def test_an_unchanged_template_sent_bare_makes_no_revision_either(local: LocalRun) -> None:
    first = seeded(local)
    bare = run_v2.Service(
        name=service_name(API),
        template=run_v2.RevisionTemplate(revision=first, containers=[run_v2.Container(image=image_for("c0"))]),
        traffic=[revision_target(first, 100)],
    )
    after = local.update(bare)
    assert local.fake_run.revisions(API) == [first] and after.generation == 1


def test_a_traffic_only_update_makes_no_revision(local: LocalRun) -> None:
    first = seeded(local)
    local.deploy(API, f"{API}-v1-0-0", image_for("c1"), [(first, 100, "")])
    service = local.set_traffic(API, [(first, 50, ""), (f"{API}-v1-0-0", 50, "")])
    assert local.fake_run.revisions(API) == [first, f"{API}-v1-0-0"]
    assert local.fake_run.traffic(API) == {first: 50, f"{API}-v1-0-0": 50}
    assert service.generation == 3 and service.observed_generation == 3


def test_a_stale_etag_is_refused_as_aborted(local: LocalRun) -> None:
    first = seeded(local)
    stale = local.services.get_service(name=service_name(API))
    local.deploy(API, f"{API}-v1-0-0", image_for("c1"), [(first, 100, "")])
    stale.traffic = [revision_target(first, 100, "old")]
    with pytest.raises(exceptions.Aborted, match="etag"):
        local.services.update_service(request=run_v2.UpdateServiceRequest(service=stale))


def test_revision_ready_latency_makes_the_operation_not_done_until_ready(local: LocalRun) -> None:
    first = seeded(local)
    local.scenario.latency["revision_ready"] = 0.4
    service = local.services.get_service(name=service_name(API))
    service.template.revision = f"{API}-v1-0-0"
    service.template.containers[0].image = image_for("c1")
    service.traffic = [revision_target(f"{API}-v1-0-0", 100)]
    started = time.monotonic()
    operation = local.services.update_service(request=run_v2.UpdateServiceRequest(service=service))
    assert time.monotonic() - started < 0.3, "the RPC must not block on the simulated work"
    assert operation.metadata.name == service_name(API)
    assert not operation.done()  # a real GetOperation round trip
    pending = local.revisions.get_revision(name=f"{service_name(API)}/revisions/{API}-v1-0-0")
    assert not ready(pending) and pending.reconciling
    reconciling = local.services.get_service(name=service_name(API))
    assert reconciling.reconciling and reconciling.observed_generation < reconciling.generation
    assert requests.get(local.url(API, "/api/health"), timeout=5).status_code == 200
    assert local.fake_run.traffic(API) == {first: 100}, "traffic moves only when the revision is ready"
    result = operation.result(timeout=5, polling=fast_polling(5))
    assert time.monotonic() - started >= 0.4
    assert result.latest_ready_revision.endswith(f"/{API}-v1-0-0") and not result.reconciling
    assert local.fake_run.traffic(API) == {f"{API}-v1-0-0": 100}
    assert ready(local.revisions.get_revision(name=f"{service_name(API)}/revisions/{API}-v1-0-0"))


def test_create_service_then_list_services(local: LocalRun) -> None:
    template = run_v2.RevisionTemplate(containers=[run_v2.Container(image=image_for("c1"))])
    operation = local.services.create_service(parent=PARENT, service=run_v2.Service(template=template), service_id="web")
    created = operation.result(timeout=5, polling=fast_polling(5))
    assert created.name == service_name("web") and created.latest_ready_revision.split("/")[-1].startswith("web-00001-")
    assert local.fake_run.traffic("web") == {created.latest_ready_revision.split("/")[-1]: 100}
    with pytest.raises(exceptions.AlreadyExists):
        local.services.create_service(parent=PARENT, service=run_v2.Service(template=template), service_id="web")
    seeded(local)
    assert [s.name for s in local.services.list_services(parent=PARENT)] == [service_name(API), service_name("web")]


def test_revisions_are_listed_newest_first_and_one_serving_traffic_cannot_be_deleted(local: LocalRun) -> None:
    first = seeded(local)
    local.deploy(API, f"{API}-v1-0-0", image_for("c1"), [(f"{API}-v1-0-0", 100, "")])
    local.deploy(API, f"{API}-v1-1-0", image_for("c2"))  # latest, no traffic
    listed = [r.name.split("/")[-1] for r in local.revisions.list_revisions(parent=service_name(API))]
    assert listed == [f"{API}-v1-1-0", f"{API}-v1-0-0", first]
    for serving_or_latest in (f"{API}-v1-0-0", f"{API}-v1-1-0"):
        with pytest.raises(exceptions.FailedPrecondition):
            local.revisions.delete_revision(name=f"{service_name(API)}/revisions/{serving_or_latest}")
    deleted = local.revisions.delete_revision(name=f"{service_name(API)}/revisions/{first}").result(timeout=5)
    assert deleted.name.endswith(first) and local.fake_run.revisions(API) == [f"{API}-v1-0-0", f"{API}-v1-1-0"]


def test_a_revision_made_gone_by_hand_takes_its_tag_with_it(local: LocalRun) -> None:
    first = seeded(local)
    local.deploy(API, f"{API}-v1-0-0", image_for("c1"), [(first, 100, ""), (f"{API}-v1-0-0", 0, "candidate")])
    with pytest.raises(ValueError, match="takes traffic"):
        local.fake_run.delete_revision(API, first)
    local.fake_run.delete_revision(API, f"{API}-v1-0-0")
    assert local.fake_run.tags(API) == {}
    with pytest.raises(exceptions.NotFound):
        local.revisions.get_revision(name=f"{service_name(API)}/revisions/{API}-v1-0-0")
    with pytest.raises(exceptions.InvalidArgument):
        local.set_traffic(API, [(f"{API}-v1-0-0", 100, "")])


@pytest.mark.parametrize(
    "call",
    [
        lambda l: l.services.get_service(name=service_name("nope")),
        lambda l: l.revisions.get_revision(name=f"{service_name('nope')}/revisions/nope-1"),
        lambda l: l.jobs.get_job(name=job_name("nope")),
        lambda l: l.executions.get_execution(name=f"{job_name('nope')}/executions/nope-abcde"),
        lambda l: l.jobs.run_job(name=job_name("nope")),
        lambda l: l.services.get_service(name=f"projects/other/locations/{PARENT.split('/')[-1]}/services/{API}"),
    ],
    ids=["service", "revision", "job", "execution", "run job", "other project"],
)
def test_unknown_names_are_not_found(local: LocalRun, call) -> None:
    seeded(local)
    with pytest.raises(exceptions.NotFound):
        call(local)


def test_an_injected_fault_surfaces_as_service_unavailable(local: LocalRun) -> None:
    seeded(local)
    local.scenario.inject_fault("google.cloud.run.v2.Services/GetService", "UNAVAILABLE")
    with pytest.raises(exceptions.ServiceUnavailable):
        local.services.get_service(name=service_name(API), retry=None)
    assert local.services.get_service(name=service_name(API)).name == service_name(API)  # the fault fired once


# -- jobs and executions ------------------------------------------------------------------------------------------
def test_update_job_changes_image_and_command(local: LocalRun) -> None:
    local.fake_run.seed_job(JOB, image_for("c0"))
    job = local.jobs.get_job(name=job_name(JOB))
    container = job.template.template.containers[0]
    container.image = image_for("c1")
    container.command = ["python"]
    container.args = ["manage.py", "migrate", "--noinput"]
    updated = local.jobs.update_job(request=run_v2.UpdateJobRequest(job=job)).result(timeout=5)
    assert updated.generation == 2
    stored = local.jobs.get_job(name=job_name(JOB)).template.template.containers[0]
    assert (stored.image, list(stored.command), list(stored.args)) == (image_for("c1"), ["python"], ["manage.py", "migrate", "--noinput"])
    job.etag = '"stale"'
    with pytest.raises(exceptions.Aborted):
        local.jobs.update_job(request=run_v2.UpdateJobRequest(job=job))


def test_a_job_execution_succeeds_when_the_migration_does(local: LocalRun) -> None:
    local.fake_run.seed_job(JOB, image_for("c0"))
    operation = local.jobs.run_job(name=job_name(JOB))
    name = operation.metadata.name
    assert name.startswith(f"{job_name(JOB)}/executions/{JOB}-") and len(name.split("/")[-1]) == len(JOB) + 6
    execution = operation.result(timeout=5, polling=fast_polling(5))
    assert execution.name == name and execution.succeeded_count == 1 and execution.failed_count == 0
    assert execution.completion_time is not None and execution.job == JOB
    completed = next(c for c in execution.conditions if c.type_ == "Completed")
    assert completed.state == CONDITION.CONDITION_SUCCEEDED
    job = local.jobs.get_job(name=job_name(JOB))
    assert job.execution_count == 1 and job.latest_created_execution.name == name


def test_a_failed_job_execution_reports_failure(local: LocalRun) -> None:
    local.scenario.set_commit("bad", AppBehaviour(migration="fail"))
    local.fake_run.seed_job(JOB, image_for("bad"))
    operation = local.jobs.run_job(name=job_name(JOB))
    with pytest.raises(exceptions.GoogleAPICallError, match="failed"):
        operation.result(timeout=5, polling=fast_polling(5))
    assert operation.exception().grpc_status_code == grpc.StatusCode.FAILED_PRECONDITION
    execution = local.executions.get_execution(name=operation.metadata.name)
    assert execution.failed_count == 1 and execution.succeeded_count == 0 and execution.completion_time is not None
    completed = next(c for c in execution.conditions if c.type_ == "Completed")
    assert completed.state == CONDITION.CONDITION_FAILED and "failed" in completed.message


def test_get_execution_reflects_a_running_execution_until_it_ends(local: LocalRun) -> None:
    local.scenario.latency["migration"] = 0.3
    local.fake_run.seed_job(JOB, image_for("c0"))
    operation = local.jobs.run_job(name=job_name(JOB))
    running = local.executions.get_execution(name=operation.metadata.name)
    assert running.running_count == 1 and running.completion_time is None and running.reconciling
    assert not operation.done()
    operation.result(timeout=5, polling=fast_polling(5))
    finished = local.executions.get_execution(name=operation.metadata.name)
    assert finished.running_count == 0 and finished.succeeded_count == 1 and not finished.reconciling


def test_executions_are_listed_newest_first_across_pages(local: LocalRun) -> None:
    local.fake_run.seed_job(JOB, image_for("c0"))
    names = [local.jobs.run_job(name=job_name(JOB)).metadata.name for _ in range(5)]
    pager = local.executions.list_executions(request=run_v2.ListExecutionsRequest(parent=job_name(JOB), page_size=2))
    pages = list(pager.pages)
    assert [len(p.executions) for p in pages] == [2, 2, 1]
    assert [e.name for p in pages for e in p.executions] == list(reversed(names))
    assert [e.name for e in local.fake_run.executions(JOB)] == list(reversed(names))
