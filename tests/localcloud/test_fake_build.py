"""The fake Cloud Build, driven by the real CloudBuildClient over gRPC, notifying through the real Pub/Sub emulator.

Each test gets its own gRPC server and its own topic and pull subscription on one emulator per module, so what a
test pulls is exactly what its builds published.
"""
from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, Iterator

import grpc
import pytest
from google.api_core import exceptions
from google.api_core.future import polling
from google.cloud import pubsub_v1
from google.cloud.devtools import cloudbuild_v1
from google.cloud.devtools.cloudbuild_v1.services.cloud_build.transports.grpc import CloudBuildGrpcTransport
from google.protobuf import duration_pb2

from localcloud.fake_build import NOTIFY_FAULT, FakeCloudBuild
from localcloud.operations import OperationStore
from localcloud.processes import PubSubEmulator
from localcloud.sample_frontend import content_type, frontend_files
from localcloud.scenario import AppBehaviour, Scenario, digest_for_commit

PROJECT = "botbalance-prod"
IMAGE = "asia-southeast1-docker.pkg.dev/botbalance-prod/botbalance/app"
GOOD = "a" * 40
BAD = "b" * 40
Status = cloudbuild_v1.Build.Status
# Retry(initial=..., maximum=...) alone keeps the default predicate, which does not retry "not done yet":
# polling must start from the api_core polling default.
FAST_POLLING = polling.DEFAULT_POLLING.with_delay(initial=0.05, maximum=0.2).with_timeout(30)


def release_build(tag: str, commit: str, *, timeout_s: float = 1200, **request: Any) -> cloudbuild_v1.Build:
    """The build tagship submits (shared.build_definition), as the client library sends it."""
    from shared.build_definition import BuildRequest, release_build as definition

    built = definition(BuildRequest(tag, commit, "botbalance/botbalance", IMAGE, "frontend",
                                    f"gs://s/frontend/{tag}/", 1200, **request), PROJECT)
    build = cloudbuild_v1.Build.from_json(json.dumps(built))
    seconds = int(timeout_s)
    build.timeout = duration_pb2.Duration(seconds=seconds, nanos=int((timeout_s - seconds) * 1e9))
    return build


@dataclass
class Received:
    data: dict[str, Any]
    attributes: dict[str, str]


@dataclass
class LocalBuild:
    scenario: Scenario
    fake: FakeCloudBuild
    client: cloudbuild_v1.CloudBuildClient
    subscriber: pubsub_v1.SubscriberClient
    subscription: str
    on_success_calls: list[tuple[cloudbuild_v1.Build, list[str]]] = field(default_factory=list)

    def submit(self, tag: str, commit: str, **kwargs: Any) -> Any:
        return self.client.create_build(project_id=PROJECT, build=release_build(tag, commit, **kwargs))

    def pull(self, count: int, timeout: float = 15.0) -> list[Received]:
        """Exactly what Pub/Sub delivers to the subscription, until `count` messages or the timeout."""
        got: list[Received] = []
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            response = self.subscriber.pull(subscription=self.subscription, max_messages=10, timeout=5)
            if response.received_messages:
                self.subscriber.acknowledge(subscription=self.subscription,
                                            ack_ids=[m.ack_id for m in response.received_messages])
            got += [Received(json.loads(m.message.data), dict(m.message.attributes))
                    for m in response.received_messages]
        return got


@contextlib.contextmanager
def serving(fake: FakeCloudBuild) -> Iterator[cloudbuild_v1.CloudBuildClient]:
    """The fake (and its operations) on a gRPC server on 127.0.0.1:0, and a real client talking to it."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    for handler in (*fake.handlers(), *fake.operations.handlers()):
        server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield cloudbuild_v1.CloudBuildClient(transport=CloudBuildGrpcTransport(channel=channel))
    finally:
        fake.close()
        channel.close()
        server.stop(grace=None).wait(5)


@pytest.fixture(scope="module")
def emulator() -> Iterator[PubSubEmulator]:
    with PubSubEmulator(PROJECT) as running:
        yield running


@pytest.fixture
def local(emulator: PubSubEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalBuild]:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator.host)  # before any Pub/Sub client is built
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    suffix = uuid.uuid4().hex[:8]
    topic = publisher.topic_path(PROJECT, f"cloud-builds-{suffix}")
    subscription = subscriber.subscription_path(PROJECT, f"cloud-builds-{suffix}")
    publisher.create_topic(name=topic)
    subscriber.create_subscription(name=subscription, topic=topic)

    scenario = Scenario(latency={"build": 0.3})
    scenario.set_commit(BAD, AppBehaviour(build="fail"))
    operations = OperationStore(scenario)
    published: list[str] = []
    on_success_calls: list[tuple[cloudbuild_v1.Build, list[str]]] = []

    def publish(data: bytes, attributes: dict[str, str]) -> None:
        publisher.publish(topic, data, **attributes).result(timeout=10)
        published.append(attributes["status"])

    def on_success(build: cloudbuild_v1.Build) -> None:
        on_success_calls.append((build, list(published)))

    fake = FakeCloudBuild(scenario, operations, project=PROJECT, publish=publish, on_success=on_success)
    try:
        with serving(fake) as client:
            yield LocalBuild(scenario, fake, client, subscriber, subscription, on_success_calls)
    finally:
        subscriber.close()
        publisher.stop()


def test_create_build_answers_at_once_with_the_build_id_in_the_operation_metadata(local):
    started = time.monotonic()
    operation = local.submit("v1.0.0", GOOD)
    assert time.monotonic() - started < 0.3  # less than the build takes
    build = operation.metadata.build
    uuid.UUID(build.id)
    assert build.name == f"projects/{PROJECT}/locations/global/builds/{build.id}"
    assert build.status == Status.QUEUED
    assert build.log_url.startswith(f"https://console.cloud.google.com/cloud-build/builds/{build.id}?project=")
    assert operation.operation.name.startswith(f"projects/{PROJECT}/operations/build/")
    assert not operation.done()


def test_a_healthy_commit_builds_to_success_with_its_digest_under_its_repository_and_both_image_tags(local):
    operation = local.submit("v1.0.0", GOOD)
    build = operation.result(timeout=10, polling=FAST_POLLING)
    assert build.status == Status.SUCCESS
    assert [(image.name, image.digest) for image in build.results.images] == [
        (IMAGE, digest_for_commit(GOOD)), (f"{IMAGE}:v1.0.0", digest_for_commit(GOOD)),
        (f"{IMAGE}:latest", digest_for_commit(GOOD))]
    assert build.finish_time >= build.start_time >= build.create_time
    assert {"BUILD", "PUSH"} <= set(build.timing)
    assert all(step.status == Status.SUCCESS for step in build.steps)
    elapsed = (build.finish_time - build.create_time).total_seconds()
    assert 0.25 <= elapsed < 2.0  # scenario.delay("build") is 0.3 s


def test_every_status_change_reaches_pubsub_as_the_build_json_with_build_id_and_status(local):
    from shared.adapters.cloudbuild import parse_notification

    operation = local.submit("v1.0.0", GOOD)
    build_id = operation.metadata.build.id
    operation.result(timeout=10, polling=FAST_POLLING)
    messages = local.pull(3)
    assert [m.attributes for m in messages] == [{"buildId": build_id, "status": s}
                                               for s in ("QUEUED", "WORKING", "SUCCESS")]
    final = messages[-1].data
    # camelCase, enum names, defaults left out: as in the real notifications (payloads/cloudbuild/)
    assert final["id"] == build_id and final["status"] == "SUCCESS" and final["projectId"] == PROJECT
    assert final["logUrl"] == operation.metadata.build.log_url
    assert final["results"]["images"][1] == {
        "name": f"{IMAGE}:v1.0.0", "digest": digest_for_commit(GOOD),
        "pushTiming": final["results"]["images"][1]["pushTiming"]}
    assert final["substitutions"]["_COMMIT"] == GOOD and final["timeout"] == "1200s"
    assert "statusDetail" not in final and "status_detail" not in final
    status = parse_notification(final, messages[-1].attributes)  # what deploy_progress reads of it
    assert (status.tag, status.commit, status.image) == ("v1.0.0", GOOD, f"{IMAGE}@{digest_for_commit(GOOD)}")


def test_a_commit_whose_build_fails_ends_failure_and_the_operation_raises_what_the_real_api_says(local):
    operation = local.submit("v1.1.0", BAD)
    with pytest.raises(exceptions.GoogleAPICallError, match="Build failed; check build logs for details"):
        operation.result(timeout=10, polling=FAST_POLLING)
    build = operation.metadata.build
    assert build.status == Status.FAILURE
    assert [step.status for step in build.steps] == [Status.SUCCESS, Status.FAILURE] + [Status.STATUS_UNKNOWN] * 4
    assert build.status_detail == ('Build step failure: build step 1 "gcr.io/cloud-builders/docker" failed: '
                                   "step exited with non-zero status: 1")
    assert not build.results.images
    assert local.on_success_calls == []
    messages = local.pull(3)
    assert [m.attributes["status"] for m in messages] == ["QUEUED", "WORKING", "FAILURE"]
    assert messages[-1].data["statusDetail"] == build.status_detail


def test_on_success_runs_before_success_is_published(local):
    local.submit("v1.0.0", GOOD).result(timeout=10, polling=FAST_POLLING)
    [(build, published_before)] = local.on_success_calls
    assert build.substitutions["_TAG"] == "v1.0.0" and build.results.images
    assert published_before == ["QUEUED", "WORKING"]


def test_a_failing_upload_in_on_success_fails_the_build_at_its_last_step():
    def broken_upload(build: cloudbuild_v1.Build) -> None:
        raise OSError("bucket not found")

    sent: list[str] = []
    scenario = Scenario()
    fake = FakeCloudBuild(scenario, OperationStore(scenario), project=PROJECT,
                          publish=lambda data, attributes: sent.append(attributes["status"]), on_success=broken_upload)
    with serving(fake) as client:
        operation = client.create_build(project_id=PROJECT, build=release_build("v1.0.0", GOOD))
        with pytest.raises(exceptions.GoogleAPICallError):
            operation.result(timeout=10, polling=FAST_POLLING)
    build = operation.metadata.build
    assert build.status == Status.FAILURE
    assert build.steps[-1].status == Status.FAILURE and "bucket not found" in build.status_detail
    assert sent == ["QUEUED", "WORKING", "FAILURE"]


def test_get_and_list_builds_answer_newest_first_and_filter_by_status_and_tag(local):
    first = local.submit("v1.0.0", GOOD).result(timeout=10, polling=FAST_POLLING)
    second = local.submit("v1.1.0", BAD)
    with pytest.raises(exceptions.GoogleAPICallError):
        second.result(timeout=10, polling=FAST_POLLING)
    second_id = second.metadata.build.id
    assert local.client.get_build(project_id=PROJECT, id=first.id).status == Status.SUCCESS
    assert [b.id for b in local.client.list_builds(project_id=PROJECT)] == [second_id, first.id]
    assert [b.id for b in local.client.list_builds(project_id=PROJECT, filter='status="FAILURE"')] == [second_id]
    assert [b.id for b in local.client.list_builds(project_id=PROJECT, filter='tags="v1.0.0" AND status="SUCCESS"')] \
        == [first.id]
    paged = local.client.list_builds(request={"project_id": PROJECT, "page_size": 1})
    assert [b.id for b in paged] == [second_id, first.id]  # the pager follows next_page_token
    assert [b.id for b in local.fake.builds()] == [first.id, second_id]  # oldest first, for invariants
    with pytest.raises(exceptions.NotFound):
        local.client.get_build(project_id=PROJECT, id=str(uuid.uuid4()))
    with pytest.raises(exceptions.PermissionDenied):
        local.client.get_build(project_id="someone-elses-project", id=first.id)


def test_cancel_stops_a_running_build_and_is_refused_once_it_has_ended(local):
    local.scenario.latency["build"] = 5.0
    operation = local.submit("v1.0.0", GOOD)
    build_id = operation.metadata.build.id
    cancelled = local.client.cancel_build(project_id=PROJECT, id=build_id)
    assert cancelled.status == Status.CANCELLED
    with pytest.raises(exceptions.Cancelled):
        operation.result(timeout=5, polling=FAST_POLLING)
    assert [m.attributes["status"] for m in local.pull(2)][-1] == "CANCELLED"
    with pytest.raises(exceptions.FailedPrecondition):
        local.client.cancel_build(project_id=PROJECT, id=build_id)
    assert local.on_success_calls == []


def test_a_build_slower_than_its_own_timeout_ends_timeout(local):
    local.scenario.latency["build"] = 2.0
    operation = local.submit("v1.0.0", GOOD, timeout_s=0.4)
    with pytest.raises(exceptions.GoogleAPICallError):
        operation.result(timeout=5, polling=FAST_POLLING)
    assert operation.metadata.build.status == Status.TIMEOUT
    assert (operation.metadata.build.finish_time - operation.metadata.build.create_time).total_seconds() < 1.5


def test_an_injected_grpc_fault_reaches_the_client_as_its_exception_and_its_retry_recovers(local):
    build_id = local.submit("v1.0.0", GOOD).metadata.build.id
    local.scenario.inject_fault("google.devtools.cloudbuild.v1.CloudBuild/GetBuild", "UNAVAILABLE")
    with pytest.raises(exceptions.ServiceUnavailable):
        local.client.get_build(project_id=PROJECT, id=build_id, retry=None)
    local.scenario.inject_fault("google.devtools.cloudbuild.v1.CloudBuild/GetBuild", "UNAVAILABLE")
    assert local.client.get_build(project_id=PROJECT, id=build_id).id == build_id  # default retry covers it


def test_a_failing_publish_is_retried_and_a_lost_notification_does_not_stop_the_build():
    scenario = Scenario()
    failures = iter([True, True])  # the first two publish calls fail
    sent: list[str] = []
    lock = threading.Lock()

    def flaky_publish(data: bytes, attributes: dict[str, str]) -> None:
        with lock:
            if next(failures, False):
                raise ConnectionError("pubsub unreachable")
            sent.append(attributes["status"])

    fake = FakeCloudBuild(scenario, OperationStore(scenario), project=PROJECT, publish=flaky_publish)
    scenario.inject_fault(NOTIFY_FAULT, "LOST", times=1)  # QUEUED never reaches Pub/Sub
    with serving(fake) as client:
        operation = client.create_build(project_id=PROJECT, build=release_build("v1.0.0", GOOD))
        assert operation.result(timeout=10, polling=FAST_POLLING).status == Status.SUCCESS
    assert sent == ["WORKING", "SUCCESS"]


def test_the_sample_frontend_changes_its_app_assets_per_tag_but_keeps_its_vendor_chunk():
    from shared.frontend import is_hashed_asset

    v1, v2 = frontend_files("v1.0.0"), frontend_files("v1.1.0")
    assert v1 == frontend_files("v1.0.0")
    assert {"index.html", "favicon.ico", "robots.txt"} <= set(v1)
    vendor = [path for path in v1 if path.startswith("assets/vendor-")]
    assert vendor and vendor[0] in v2 and v1[vendor[0]] == v2[vendor[0]]
    app_js = [path for path in v1 if path.startswith("assets/index-") and path.endswith(".js")]
    assert app_js and app_js[0] not in v2
    assert all(is_hashed_asset(path) for path in v1 if path.startswith("assets/"))
    index = v1["index.html"].decode()
    assert all(f"./{path}" in index for path in v1 if path.startswith("assets/"))
    assert content_type("index.html").startswith("text/html")
    assert content_type(app_js[0]).startswith("text/javascript")
    assert content_type("favicon.ico") == "image/x-icon"
    assert v1["favicon.ico"][:4] == b"\x00\x00\x01\x00"


def _with(change: Any) -> Any:
    def build(tag: str, commit: str) -> cloudbuild_v1.Build:
        made = release_build(tag, commit, github_token_secret="gh-token",
                             service_account=f"tagship-build@{PROJECT}.iam.gserviceaccount.com")
        change(made)
        return made
    return build


def _arg(text: str) -> Any:
    return lambda b: b.steps[1].args.append(text)


REFUSED = {
    "a substitution no step references": (lambda b: b.substitutions.update({"_EXTRA": "x"}),
                                          'key "_EXTRA" in the substitution data is not matched in the template'),
    "a reference to an undefined user substitution": (_arg("${_NOPE}"), '"_NOPE" is not matched'),
    "a secret written $VAR instead of $$VAR": (_arg("$GITHUB_TOKEN"), '"GITHUB_TOKEN" is not a valid built-in'),
    "COMMIT_SHA in a build without a repo source": (_arg("$COMMIT_SHA"), '"COMMIT_SHA" is not a valid built-in'),
    "a stray $ that starts no substitution": (_arg("$(date)"), "write '$$' for a literal '$'"),
    "bash string operations without dynamic substitutions": (_arg("${_TAG:0:3}"), "dynamicSubstitutions"),
    "a lowercase substitution key": (lambda b: b.substitutions.update({"_tag": "x"}), 'does not respect format'),
    "a secretEnv no availableSecrets declares": (lambda b: b.steps[1].secret_env.append("NPM_TOKEN"),
                                                 '"NPM_TOKEN" is used but not defined'),
    "a declared secret no step uses": (lambda b: b.steps[0].secret_env.clear(), '"GITHUB_TOKEN" is defined but not'),
    "a waitFor naming a later step": (lambda b: b.steps[1].wait_for.append("push"), 'depends on "push"'),
    "a step waiting for itself": (lambda b: b.steps[1].wait_for.append("image"), 'depends on "image"'),
    "two steps with one id": (lambda b: setattr(b.steps[2], "id", "image"), 'duplicate or reserved id "image"'),
    "a service account with logs in the default bucket": (
        lambda b: setattr(b.options, "logging", cloudbuild_v1.BuildOptions.LoggingMode.LEGACY),
        "if 'build.service_account' is specified"),
    "a service account of another project": (
        lambda b: setattr(b, "service_account", "projects/other-proj/serviceAccounts/x-build@other-proj.iam."
                                                "gserviceaccount.com"), "is not in project"),
    "a build tag with a slash": (lambda b: b.tags.append("release/v1"), 'must match format'),
    "an image tag with a slash, once substituted": (lambda b: b.substitutions.update({"_IMAGE_TAG": "release/1.0"}),
                                                    "invalid image name"),
    "a named volume in one step only": (lambda b: b.steps[3].volumes.clear(), 'used by only one build step'),
}


@pytest.mark.parametrize("change, says", list(REFUSED.values()), ids=list(REFUSED))
def test_create_build_refuses_what_the_real_service_refuses_and_creates_nothing(local, change, says):
    with pytest.raises(exceptions.InvalidArgument) as refused:
        local.client.create_build(project_id=PROJECT, build=_with(change)("v1.0.0", GOOD))
    assert says in str(refused.value)
    assert local.fake.builds() == []


def test_tagships_own_build_is_accepted_with_substitutions_applied_and_dollar_dollar_left_as_one_dollar(local):
    operation = local.client.create_build(project_id=PROJECT, build=_with(lambda b: None)("v1.0.0", GOOD))
    stored = local.fake.build(operation.metadata.build.id)
    fetch, image = stored.steps[0], stored.steps[1]
    assert '"$GITHUB_TOKEN"' in fetch.args[1] and "$(printf" in fetch.args[1] and GOOD in fetch.args[1]
    assert f"{IMAGE}:v1.0.0" in image.args and f"org.opencontainers.image.revision={GOOD}" in image.args
    assert list(stored.images) == [f"{IMAGE}:v1.0.0", f"{IMAGE}:latest"]
    assert not stored.logs_bucket  # logs in Cloud Logging only, as the service account requires
    operation.result(timeout=10, polling=FAST_POLLING)


def test_a_connected_repository_build_runs_in_the_connections_region_only(local):
    connection = f"projects/{PROJECT}/locations/asia-southeast1/connections/github/repositories/botbalance"
    build = release_build("v1.0.0", GOOD, repository_connection=connection)
    assert build.source.connected_repository.revision == GOOD and build.steps[0].id == "image"
    with pytest.raises(exceptions.InvalidArgument, match="must run there, not in global"):
        local.client.create_build(project_id=PROJECT, build=build)
    regional = local.client.create_build(project_id=PROJECT, build=build,
                                         parent=f"projects/{PROJECT}/locations/asia-southeast1")
    assert ";region=asia-southeast1/" in regional.metadata.build.log_url


def test_list_builds_refuses_a_filter_field_the_documentation_does_not_list(local):
    with pytest.raises(exceptions.InvalidArgument, match="unsupported field"):
        list(local.client.list_builds(project_id=PROJECT, filter='substitutions._TAG="v1.0.0"'))
