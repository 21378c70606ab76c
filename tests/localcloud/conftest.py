"""The local Cloud Run, its router and the fake Monitoring on loopback, driven through the real Google clients.

Each test gets its own servers (a gRPC server on 127.0.0.1:0 and the router), so tests stay independent.
"""
from __future__ import annotations

from concurrent import futures
from dataclasses import dataclass
from typing import Any, Iterator

import grpc
import pytest
from google.api_core import retry
from google.api_core.future import polling
from google.cloud import monitoring_v3, run_v2
from google.cloud.monitoring_v3.services.metric_service.transports.grpc import MetricServiceGrpcTransport
from google.cloud.run_v2.services.executions.transports.grpc import ExecutionsGrpcTransport
from google.cloud.run_v2.services.jobs.transports.grpc import JobsGrpcTransport
from google.cloud.run_v2.services.revisions.transports.grpc import RevisionsGrpcTransport
from google.cloud.run_v2.services.services.transports.grpc import ServicesGrpcTransport

from localcloud.fake_monitoring import FakeMonitoring
from localcloud.fake_run import FakeCloudRun
from localcloud.operations import OperationStore
from localcloud.router import Router
from localcloud.scenario import Scenario, digest_for_commit

PROJECT = "botbalance-prod"
REGION = "asia-southeast1"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
FRONTEND_ORIGIN = "https://app.botbalance.io"
REPOSITORY = "asia-southeast1-docker.pkg.dev/botbalance-prod/botbalance/app"


def image_for(commit: str) -> str:
    """An image reference as the fake build reports it, so `scenario.behaviour_for_image` finds the commit."""
    return f"{REPOSITORY}@{digest_for_commit(commit)}"


def fast_polling(timeout: float = 10.0) -> retry.Retry:
    """Polls an operation every 20-100 ms. The predicate matters: without `POLLING_PREDICATE` a Retry does not
    retry "not done yet", and `result()` fails at once on an operation still running."""
    return retry.Retry(predicate=polling.POLLING_PREDICATE, initial=0.02, maximum=0.1, multiplier=1.5, timeout=timeout)


def service_name(short: str) -> str:
    return f"{PARENT}/services/{short}"


def job_name(short: str) -> str:
    return f"{PARENT}/jobs/{short}"


@dataclass
class LocalRun:
    scenario: Scenario
    operations: OperationStore
    fake_run: FakeCloudRun
    router: Router
    monitoring: FakeMonitoring
    address: str
    services: run_v2.ServicesClient
    revisions: run_v2.RevisionsClient
    jobs: run_v2.JobsClient
    executions: run_v2.ExecutionsClient
    metrics: monitoring_v3.MetricServiceClient

    def update(self, service: run_v2.Service, timeout: float = 10.0) -> run_v2.Service:
        """UpdateService and wait for its operation, polling fast."""
        operation = self.services.update_service(request=run_v2.UpdateServiceRequest(service=service))
        return operation.result(timeout=timeout, polling=fast_polling(timeout))

    def deploy(self, short: str, revision: str, image: str, traffic: list[tuple[str, int, str]] | None = None) -> run_v2.Service:
        """A new revision named `revision` of `image`; `traffic` is (revision, percent, tag) or unchanged if None."""
        service = self.services.get_service(name=service_name(short))
        service.template.revision = revision
        service.template.containers[0].image = image
        if traffic is not None:
            service.traffic = [revision_target(*entry) for entry in traffic]
        return self.update(service)

    def set_traffic(self, short: str, traffic: list[tuple[str, int, str]]) -> run_v2.Service:
        service = self.services.get_service(name=service_name(short))
        service.traffic = [revision_target(*entry) for entry in traffic]
        return self.update(service)

    def url(self, short: str, path: str = "") -> str:
        return f"{self.router.base_url}/s/{short}{path}"


def revision_target(revision: str, percent: int, tag: str = "") -> run_v2.TrafficTarget:
    return run_v2.TrafficTarget(
        type_=run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION,
        revision=revision, percent=percent, tag=tag,
    )


@pytest.fixture
def scenario() -> Scenario:
    return Scenario()


@pytest.fixture
def local(scenario: Scenario) -> Iterator[LocalRun]:
    operations = OperationStore(scenario)
    fake_run = FakeCloudRun(scenario, operations, project=PROJECT, region=REGION, router_base_url="")
    router = Router(fake_run, scenario, frontend_origin=FRONTEND_ORIGIN).start()
    fake_run.router_base_url = router.base_url
    monitoring = FakeMonitoring(scenario, router, project=PROJECT)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    for handler in (*fake_run.handlers(), *monitoring.handlers(), *operations.handlers()):
        server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    address = f"127.0.0.1:{port}"
    channel = grpc.insecure_channel(address)
    clients: dict[str, Any] = {
        "services": run_v2.ServicesClient(transport=ServicesGrpcTransport(channel=channel)),
        "revisions": run_v2.RevisionsClient(transport=RevisionsGrpcTransport(channel=channel)),
        "jobs": run_v2.JobsClient(transport=JobsGrpcTransport(channel=channel)),
        "executions": run_v2.ExecutionsClient(transport=ExecutionsGrpcTransport(channel=channel)),
        "metrics": monitoring_v3.MetricServiceClient(transport=MetricServiceGrpcTransport(channel=channel)),
    }
    try:
        yield LocalRun(scenario, operations, fake_run, router, monitoring, address, **clients)
    finally:
        channel.close()
        server.stop(grace=None).wait(5)
        router.stop()
        fake_run.close()
