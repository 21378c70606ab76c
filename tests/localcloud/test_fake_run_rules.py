"""What the fake Cloud Run refuses as the real Admin API v2 does (names, limits, labels, sidecars), and its worker
pools, seen through the real `run_v2` clients over loopback gRPC."""
from __future__ import annotations

import grpc
import pytest
import requests
from google.api_core import exceptions
from google.cloud import run_v2
from google.cloud.run_v2.services.worker_pools.transports.grpc import WorkerPoolsGrpcTransport

from tests.localcloud.conftest import PARENT, LocalRun, fast_polling, image_for, revision_target, service_name

API = "botbalance-api"
POOL = "botbalance-worker"
SPLIT = run_v2.InstanceSplitAllocationType


def seeded(local: LocalRun, short: str = API) -> str:
    local.fake_run.seed_service(short, image_for("c0"))
    return local.fake_run.revisions(short)[0]


def pools(local: LocalRun) -> run_v2.WorkerPoolsClient:
    return run_v2.WorkerPoolsClient(transport=WorkerPoolsGrpcTransport(channel=grpc.insecure_channel(local.address)))


def pool_name(short: str = POOL) -> str:
    return f"{PARENT}/workerPools/{short}"


def split(revision: str, percent: int) -> run_v2.InstanceSplit:
    return run_v2.InstanceSplit(type_=SPLIT.INSTANCE_SPLIT_ALLOCATION_TYPE_REVISION, revision=revision, percent=percent)


# -- names and limits ----------------------------------------------------------------------------------------------
def test_a_traffic_tag_that_with_the_service_name_passes_46_characters_is_refused(local: LocalRun) -> None:
    first = seeded(local)
    tag = "t" + "x" * (46 - len(API))  # 47 together
    with pytest.raises(exceptions.InvalidArgument, match="Combined traffic tag and service name cannot exceed 46"):
        local.set_traffic(API, [(first, 100, tag)])
    local.set_traffic(API, [(first, 100, tag[:-1])])  # 46 together is accepted
    assert local.fake_run.tags(API) == {tag[:-1]: first}


@pytest.mark.parametrize(
    "revision",
    [API + "-" + "a" * (63 - len(API)), f"{API}-V1", f"{API}-v1-", f"{API}-v1.0"],
    ids=["64 characters", "an upper-case letter", "a trailing hyphen", "a dot"],
)
def test_a_revision_name_that_is_no_dns_label_of_at_most_63_is_refused(local: LocalRun, revision: str) -> None:
    seeded(local)
    with pytest.raises(exceptions.InvalidArgument, match="template.revision"):
        local.deploy(API, revision, image_for("c1"))
    assert len(local.fake_run.revisions(API)) == 1


@pytest.mark.parametrize(
    "labels",
    [{"Team": "a"}, {"team": "A"}, {"1team": "a"}, {"t" * 64: "a"}, {"team": "a" * 64},
     {"run.googleapis.com/x": "a"}, {f"k{i}": "v" for i in range(65)}],
    ids=["an upper-case key", "an upper-case value", "a key opening with a digit", "a 64-character key",
         "a 64-character value", "Cloud Run's own namespace", "65 labels"],
)
def test_labels_outside_google_clouds_charset_and_lengths_are_refused(local: LocalRun, labels: dict) -> None:
    seeded(local)
    service = local.services.get_service(name=service_name(API))
    service.template.labels = labels
    with pytest.raises(exceptions.InvalidArgument, match="label"):
        local.update(service)
    service = local.services.get_service(name=service_name(API))
    service.labels = labels
    with pytest.raises(exceptions.InvalidArgument, match="label"):
        local.update(service)


def test_annotations_in_cloud_runs_namespaces_are_refused_in_a_template(local: LocalRun) -> None:
    seeded(local)
    service = local.services.get_service(name=service_name(API))
    service.template.annotations = {"run.googleapis.com/cpu-throttling": "false"}
    with pytest.raises(exceptions.InvalidArgument, match="annotation"):
        local.update(service)
    service.template.annotations = {"example.com/release": "v1.0.0"}
    service.template.revision = f"{API}-annotated"  # a changed template needs a new revision name
    assert local.update(service).template.annotations["example.com/release"] == "v1.0.0"


# -- sidecars ------------------------------------------------------------------------------------------------------
def sidecar_service(local: LocalRun, short: str = "web") -> run_v2.Service:
    template = run_v2.RevisionTemplate(containers=[
        run_v2.Container(name="proxy", image=image_for("proxy")),
        run_v2.Container(name="app", image=image_for("c1"), ports=[run_v2.ContainerPort(container_port=8080)]),
    ])
    operation = local.services.create_service(parent=PARENT, service=run_v2.Service(template=template), service_id=short)
    return operation.result(timeout=5, polling=fast_polling(5))


def test_a_service_with_a_sidecar_serves_its_ingress_container(local: LocalRun) -> None:
    created = sidecar_service(local)
    assert [c.name for c in created.template.containers] == ["proxy", "app"]
    assert requests.get(local.url("web", "/api/health"), timeout=5).status_code == 200
    route = local.fake_run.revision_for_url("/s/web/")
    assert route is not None and route.image == image_for("c1")


@pytest.mark.parametrize(
    "containers, refusal",
    [
        ([run_v2.Container(name="a", image="x@sha256:1", ports=[run_v2.ContainerPort(container_port=8080)]),
          run_v2.Container(name="b", image="x@sha256:2", ports=[run_v2.ContainerPort(container_port=8081)])],
         "exactly one container with a port"),
        ([run_v2.Container(name="a", image="x@sha256:1"), run_v2.Container(name="b", image="x@sha256:2")],
         "exactly one container with a port"),
        ([run_v2.Container(image="x@sha256:1", ports=[run_v2.ContainerPort(container_port=8080)]),
          run_v2.Container(name="b", image="x@sha256:2")], "needs a DNS-1123 label name"),
        ([run_v2.Container(name="a", image="x@sha256:1", ports=[run_v2.ContainerPort(container_port=8080)]),
          run_v2.Container(name="a", image="x@sha256:2")], "used twice"),
    ],
    ids=["two ingress containers", "no ingress container", "an unnamed sidecar", "two containers named alike"],
)
def test_several_containers_need_names_and_one_ingress_container(local: LocalRun, containers, refusal) -> None:
    template = run_v2.RevisionTemplate(containers=containers)
    with pytest.raises(exceptions.InvalidArgument, match=refusal):
        local.services.create_service(parent=PARENT, service=run_v2.Service(template=template), service_id="web")
    with pytest.raises(exceptions.NotFound):
        local.services.get_service(name=service_name("web"))


# -- worker pools --------------------------------------------------------------------------------------------------
def test_a_worker_pool_deploys_a_named_revision_and_moves_its_instances_when_it_is_ready(local: LocalRun) -> None:
    local.fake_run.seed_worker_pool(POOL, image_for("c0"), command=["celery", "worker"])
    client = pools(local)
    pool = client.get_worker_pool(name=pool_name())
    first = pool.latest_ready_revision.rsplit("/", 1)[-1]
    assert local.fake_run.pool_split(POOL) == {first: 100}
    pool.template.revision = f"{POOL}-v1-0-0-abcdefgh"
    pool.template.containers[0].image = image_for("c1")
    pool.instance_splits = [split(f"{POOL}-v1-0-0-abcdefgh", 100)]
    local.scenario.latency["revision_ready"] = 0.2
    operation = client.update_worker_pool(request=run_v2.UpdateWorkerPoolRequest(worker_pool=pool))
    assert local.fake_run.pool_split(POOL) == {first: 100}, "instances move only once the revision is ready"
    done = operation.result(timeout=5, polling=fast_polling(5))
    assert done.latest_ready_revision.endswith(f"/{POOL}-v1-0-0-abcdefgh")
    assert local.fake_run.pool_split(POOL) == {f"{POOL}-v1-0-0-abcdefgh": 100}
    stored = local.revisions.get_revision(name=f"{pool_name()}/revisions/{POOL}-v1-0-0-abcdefgh")
    assert stored.containers[0].image == image_for("c1")


@pytest.mark.parametrize(
    "change, refusal, error",
    [
        (lambda p, first: p.instance_splits.extend([split(first, 90)]), "summing to 100, found 90", exceptions.InvalidArgument),
        (lambda p, first: p.instance_splits.extend([split(f"{POOL}-nowhere", 100)]), "does not exist", exceptions.InvalidArgument),
        (lambda p, first: p.instance_splits.extend([split(first, 50), split(first, 50)]), "named twice", exceptions.InvalidArgument),
        (lambda p, first: setattr(p.template, "revision", "other-v1"), "starting with", exceptions.InvalidArgument),
        (lambda p, first: (setattr(p.template, "revision", first), setattr(p.template.containers[0], "image", "x@sha256:9")),
         "already exists", exceptions.AlreadyExists),
        (lambda p, first: p.template.containers[0].ports.append(run_v2.ContainerPort(container_port=8080)),
         "listen on no port", exceptions.InvalidArgument),
        (lambda p, first: setattr(p, "etag", '"stale"'), "etag", exceptions.Aborted),
    ],
    ids=["splits not summing to 100", "a split naming no revision", "a revision split twice",
         "a revision name not opening with the pool's", "a reused revision name", "a container with a port",
         "a stale etag"],
)
def test_a_worker_pool_refuses_what_the_real_api_refuses(local: LocalRun, change, refusal, error) -> None:
    local.fake_run.seed_worker_pool(POOL, image_for("c0"))
    client = pools(local)
    pool = client.get_worker_pool(name=pool_name())
    first = pool.latest_ready_revision.rsplit("/", 1)[-1]
    del pool.instance_splits[:]
    change(pool, first)
    if not pool.instance_splits:
        pool.instance_splits.append(split(first, 100))
    with pytest.raises(error, match=refusal):
        client.update_worker_pool(request=run_v2.UpdateWorkerPoolRequest(worker_pool=pool))
    assert local.fake_run.pool_revisions(POOL) == [first] and local.fake_run.pool_split(POOL) == {first: 100}


def test_an_unknown_worker_pool_is_not_found(local: LocalRun) -> None:
    with pytest.raises(exceptions.NotFound):
        pools(local).get_worker_pool(name=pool_name("nope"))
    with pytest.raises(exceptions.NotFound):
        local.revisions.get_revision(name=f"{pool_name('nope')}/revisions/nope-1")


def test_tag_only_traffic_for_a_revision_that_does_not_exist_is_refused(local: LocalRun) -> None:
    first = seeded(local)
    service = local.services.get_service(name=service_name(API))
    service.traffic = [revision_target(first, 100), revision_target(f"{API}-nowhere", 0, "candidate")]
    with pytest.raises(exceptions.InvalidArgument, match="does not exist"):
        local.update(service)
