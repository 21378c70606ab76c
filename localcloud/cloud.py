"""LocalCloud: everything tagship talks to, on 127.0.0.1, started and stopped as one.

    with LocalCloud() as cloud:
        cloud.push_tag("v1.0.0")
        cloud.wait_for(lambda: cloud.live_tag() == "v1.0.0", 30)

Real parts where they exist (the Pub/Sub emulator, fake-gcs-server), fakes of our own over gRPC with the real
proto types where they do not (Cloud Run, Cloud Build, Monitoring), a fake Slack, and the four functions served by
functions-framework with push subscriptions from the emulator, as Eventarc delivers. The functions find all of it
through the production seams only: a config file (`TAGSHIP_CONFIG`) and the client factory's environment.
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import tempfile
import threading
import time
import uuid
from concurrent import futures
from pathlib import Path
from typing import Any, Callable, TypeVar

from localcloud.scenario import AppBehaviour, Scenario
from shared.deadline import TIMEOUT_ENV

T = TypeVar("T")
ACK_DEADLINE_SECONDS = 600  # what setup sets on each trigger's subscription: longer than any invocation
REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG = REPO_ROOT / "tagship.toml"
INITIAL_COMMIT = "0" * 39 + "1"  # what the team's first manual `gcloud run deploy` shipped

# Accelerated intervals: a whole scenario takes seconds, not minutes.
FAST = {
    "deploy": {"smoke_timeout_seconds": 3.0, "smoke_interval_seconds": 0.1, "bake_seconds": 0.6,
               "probe_interval_seconds": 0.2, "probe_timeout_seconds": 2.0, "lease_seconds": 120},
    "watchdog": {"consecutive_failures": 2, "min_requests": 20, "window_seconds": 60, "bake_window_seconds": 600.0,
                 "reminder_seconds": 30.0, "metrics_lag_seconds": 1.0,
                 "fast_probe_seconds": 0.0},  # one look per tick unless a test asks for the fast watch
    "slack": {"timeout_seconds": 2.0, "actors": ["U0RELEASER"]},  # the person the local Slack app lets press
    "canary": {"steps": []},  # the example's canary is on; the local cloud runs one only when a test asks for it
}
SLACK_SIGNING_SECRET = "local-slack-signing-secret-not-for-production"
GITHUB_TOKEN = "ghp_local-github-token-not-for-production"


SHARE_EMULATOR_ENV = "TAGSHIP_LOCALCLOUD_SHARE_EMULATOR"  # "1": one Pub/Sub emulator per process, emptied per cloud
_shared: dict[str, Any] = {}
_shared_lock = threading.Lock()


def _shared_emulator(project: str) -> Any:
    """The process's one Pub/Sub emulator (started on first use, stopped when the process exits): each cloud of a
    test run then skips the emulator's start, the slow part of its own, and clears what the last cloud left."""
    import atexit

    from localcloud.processes import PubSubEmulator

    with _shared_lock:
        emulator = _shared.get("emulator")
        if emulator is None or not emulator.running:
            emulator = PubSubEmulator(project).start()
            atexit.register(emulator.stop)
            _shared["emulator"] = emulator
        return emulator


def _clear_pubsub(project: str) -> None:
    """Every subscription and topic of `project` deleted from the emulator PUBSUB_EMULATOR_HOST names."""
    from google.cloud import pubsub_v1

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    try:
        for subscription in subscriber.list_subscriptions(request={"project": f"projects/{project}"}):
            subscriber.delete_subscription(request={"subscription": subscription.name})
        for topic in publisher.list_topics(request={"project": f"projects/{project}"}):
            publisher.delete_topic(request={"topic": topic.name})
    finally:
        subscriber.close()
        publisher.transport.close()


class LocalCloud:
    def __init__(
        self,
        *,
        latency: dict[str, float] | None = None,
        config: dict[str, dict[str, Any]] | None = None,
        slack: bool = True,
        webhook_secret: str = "local-webhook-secret-not-for-production",
        functions: bool = True,
        push_via: Callable[[str], str] | None = None,
        function_timeout: float = 60.0,
        github: bool = False,
    ) -> None:
        """`push_via` maps a function's URL to the URL its push subscriptions deliver to (a fault harness's proxy);
        `function_timeout` is the functions' timeout (the real 540 s, scaled like the intervals in FAST); `github`
        turns github.deployments on against the fake GitHub (`cloud.github`), which runs either way."""
        self._github_enabled = github
        self.function_timeout = function_timeout
        self.scenario = Scenario(latency=dict(latency or {}))
        self._push_via = push_via
        self._config_overrides = config or {}
        self._slack_enabled = slack
        self.webhook_secret = webhook_secret
        self._with_functions = functions
        self._stack = contextlib.ExitStack()
        self._saved_env: dict[str, str | None] = {}
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.started_in = 0.0

    # -- life cycle ---------------------------------------------------------------------------------------------
    def __enter__(self) -> "LocalCloud":
        started = time.monotonic()
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        self.started_in = time.monotonic() - started
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _setenv(self, name: str, value: str | None) -> None:
        if name not in self._saved_env:
            self._saved_env[name] = os.environ.get(name)
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value

    def _start(self) -> None:
        import grpc

        from localcloud.fake_alerting import FakeAlerting
        from localcloud.fake_build import FakeCloudBuild
        from localcloud.fake_monitoring import FakeMonitoring
        from localcloud.fake_run import FakeCloudRun
        from localcloud.fake_slack import FakeSlack
        from localcloud.operations import OperationStore
        from localcloud.processes import FakeGcsServer, PubSubEmulator
        from localcloud.router import Router
        from shared import clients, config as config_module

        base = config_module.load(EXAMPLE_CONFIG)
        self.project = base.project.id
        self.region = base.project.region
        self.repository = base.github.repository

        # the two real servers start in parallel: they are the slow part (the emulator's JVM most: 1-4 s)
        shared = os.environ.get(SHARE_EMULATOR_ENV) == "1"
        with futures.ThreadPoolExecutor(max_workers=2) as pool:
            emulator_future = pool.submit(lambda: _shared_emulator(self.project) if shared
                                          else PubSubEmulator(self.project).start())
            gcs_future = pool.submit(lambda: FakeGcsServer().start())
            self.emulator = emulator_future.result()
            if not shared:
                self._stack.callback(self.emulator.stop)
            self.gcs = gcs_future.result()
            self._stack.callback(self.gcs.stop)
        self._tmp = tempfile.TemporaryDirectory(prefix="tagship-localcloud-")
        self._stack.callback(self._tmp.cleanup)
        self._stack.callback(self._restore_env)
        self._stack.callback(clients.reset)
        self._setenv("PUBSUB_EMULATOR_HOST", self.emulator.host)
        self._setenv("STORAGE_EMULATOR_HOST", self.gcs.endpoint)
        clients.reset()
        if shared:  # an emulator another cloud used: its topics and subscriptions go, before and after this one
            _clear_pubsub(self.project)
            self._stack.callback(_clear_pubsub, self.project)

        self.operations = OperationStore(self.scenario)
        self.fake_run = FakeCloudRun(self.scenario, self.operations, project=self.project, region=self.region,
                                     router_base_url="")
        self.router = Router(self.fake_run, self.scenario, frontend_origin=base.frontend_origin,
                             frontend_source=self._serve_frontend)
        self._stack.callback(self.fake_run.close)
        self.router.start()
        self._stack.callback(self.router.stop)
        self.fake_run.router_base_url = self.router.base_url
        self.monitoring = FakeMonitoring(self.scenario, self.router, project=self.project,
                                         ingestion_lag=FAST["watchdog"]["metrics_lag_seconds"])
        self.fake_build = FakeCloudBuild(self.scenario, self.operations, project=self.project,
                                         publish=self._publish_build, on_success=self._upload_frontend_build)
        self.alerting = FakeAlerting(self.scenario, project=self.project)
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        for handler in (*self.fake_run.handlers(), *self.fake_build.handlers(), *self.monitoring.handlers(),
                        *self.alerting.handlers(), *self.operations.handlers()):
            self._grpc.add_generic_rpc_handlers((handler,))
        port = self._grpc.add_insecure_port("127.0.0.1:0")
        self._grpc.start()
        self._stack.callback(lambda: self._grpc.stop(grace=None))
        self.grpc_address = f"127.0.0.1:{port}"
        self._setenv("TAGSHIP_GRPC_ENDPOINT", self.grpc_address)

        self.slack = FakeSlack(self.scenario)
        self.slack.start()
        self._stack.callback(self.slack.stop)
        self._setenv("TAGSHIP_SLACK_API_URL", self.slack.base_url)
        self._setenv("SLACK_BOT_TOKEN", "xoxb-local-bot-token-not-for-production" if self._slack_enabled else None)
        self._setenv("SLACK_WEBHOOK_URL", None)
        self._setenv("GITHUB_WEBHOOK_SECRET", self.webhook_secret or None)
        self._setenv("SLACK_SIGNING_SECRET", SLACK_SIGNING_SECRET)

        from localcloud.fake_github import FakeGitHub

        self.github = FakeGitHub(self.scenario, repository=self.repository, tokens=[GITHUB_TOKEN]).start()
        self._stack.callback(self.github.stop)
        self._setenv("GITHUB_TOKEN", GITHUB_TOKEN)
        self._setenv("GITHUB_APP_PRIVATE_KEY", None)

        overrides = {section: dict(values) for section, values in FAST.items()}
        overrides["frontend"] = {"url": f"{self.router.base_url}/frontend/"}
        overrides["github"] = {"api_url": self.github.base_url, "deployments": self._github_enabled,
                               "timeout_seconds": 2.0}
        for section, values in self._config_overrides.items():
            overrides.setdefault(section, {}).update(values)
        self.config = base.replace(**overrides)
        self.router.frontend_origin = self.config.frontend_origin
        self._write_config()

        self._seed_world()
        self._create_topics()
        if self._with_functions:
            from localcloud.functions_host import FunctionsHost

            self._setenv(TIMEOUT_ENV, str(self.function_timeout))
            self.functions = FunctionsHost(timeout=self.function_timeout).start()
            self._stack.callback(self.functions.stop)
            self.webhook_url = self.functions.url("deploy_on_tag")
            self._create_push_subscriptions()
        else:
            self.functions = None
            self.webhook_url = ""

    def _write_config(self) -> None:
        from localcloud.config_file import to_toml

        assert self._tmp is not None
        path = Path(self._tmp.name) / "tagship.toml"
        path.write_text(to_toml(self.config))
        self.config_path = str(path)
        self._setenv("TAGSHIP_CONFIG", self.config_path)

    def reconfigure(self, **sections: dict[str, Any]) -> None:
        """Changes config keys for the functions from now on (they reload it on their next start)."""
        self.config = self.config.replace(**sections)
        self._write_config()

    def _restore_env(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()

    def close(self) -> None:
        self._stack.close()

    @property
    def storage_endpoint(self) -> str:
        return self.gcs.endpoint

    @property
    def pubsub_host(self) -> str:
        return self.emulator.host

    # -- the world as the team's manual deploy left it ------------------------------------------------------------
    def image_for(self, commit: str) -> str:
        from localcloud.scenario import digest_for_commit

        return f"{self.config.build.image}@{digest_for_commit(commit)}"

    def _seed_world(self) -> None:
        from google.cloud import storage

        from localcloud.sample_frontend import content_type, frontend_files

        image = self.image_for(INITIAL_COMMIT)
        self.fake_run.seed_service(self.config.api.service, image)
        if self.config.worker.kind == "pool":  # a Celery worker as a worker pool: no URL, instances split
            self.fake_run.seed_worker_pool(self.config.worker.service, image, command=list(self.config.worker.command))
        else:
            self.fake_run.seed_service(self.config.worker.service, image, command=list(self.config.worker.command))
        self.fake_run.seed_job(self.config.migrations.job, image)
        client = self.storage_client()
        for name in (self.config.state.bucket, self.config.frontend.bucket):
            client.create_bucket(name)
        bucket = client.bucket(self.config.frontend.bucket)
        for path, data in frontend_files("manual").items():
            blob = bucket.blob(path)
            blob.cache_control = "no-cache" if path.endswith(".html") else "public, max-age=300"
            blob.upload_from_string(data, content_type=content_type(path))
        del storage

    def storage_client(self) -> Any:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(project=self.project, credentials=AnonymousCredentials())

    def _serve_frontend(self, path: str) -> tuple[int, dict[str, str], bytes]:
        """The CDN in front of the live bucket: what a browser at the frontend URL gets."""
        blob = self.storage_client().bucket(self.config.frontend.bucket).get_blob(path or "index.html")
        if blob is None:
            return 404, {"Content-Type": "text/plain"}, b"not found"
        headers = {"Content-Type": blob.content_type or "application/octet-stream"}
        if blob.cache_control:
            headers["Cache-Control"] = blob.cache_control
        return 200, headers, blob.download_as_bytes()

    def _upload_frontend_build(self, build: Any) -> None:
        """The build's last step: upload the frontend built for this tag to its release prefix."""
        from localcloud.sample_frontend import content_type, frontend_files

        destination = build.substitutions.get("_FRONTEND_DEST", "")
        if not destination.startswith("gs://"):
            return
        bucket_name, _, prefix = destination[len("gs://"):].partition("/")
        bucket = self.storage_client().bucket(bucket_name)
        for path, data in frontend_files(build.substitutions.get("_TAG", "unknown")).items():
            bucket.blob(prefix + path).upload_from_string(data, content_type=content_type(path))

    # -- Pub/Sub ---------------------------------------------------------------------------------------------------
    def _publisher(self) -> Any:
        from google.cloud import pubsub_v1

        if not hasattr(self, "_publisher_client"):
            self._publisher_client = pubsub_v1.PublisherClient()
        return self._publisher_client

    def _topics(self) -> dict[str, str]:
        topics = self.config.topics
        return {"builds": topics.builds, "progress": topics.progress, "health": topics.health, "rollback": topics.rollback}

    def _create_topics(self) -> None:
        publisher = self._publisher()
        for topic in self._topics().values():
            publisher.create_topic(name=publisher.topic_path(self.project, topic))

    def _create_push_subscriptions(self) -> None:
        from google.cloud import pubsub_v1

        assert self.functions is not None
        subscriber = pubsub_v1.SubscriberClient()
        self._stack.callback(subscriber.close)
        routes = {"builds": "deploy_progress", "progress": "deploy_progress", "health": "health_watchdog",
                  "rollback": "rollback"}
        for key, target in routes.items():
            topic = self._topics()[key]
            subscriber.create_subscription(
                request={
                    "name": subscriber.subscription_path(self.project, f"{topic}-{target}"),
                    "topic": self._publisher().topic_path(self.project, topic),
                    "push_config": {"push_endpoint": (self._push_via or str)(self.functions.url(target))},
                    "ack_deadline_seconds": ACK_DEADLINE_SECONDS,
                }
            )

    def publish(self, topic_id: str, payload: Any, attributes: dict[str, str] | None = None) -> str:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        publisher = self._publisher()
        return publisher.publish(publisher.topic_path(self.project, topic_id), data, **(attributes or {})).result(timeout=10)

    def _publish_build(self, data: bytes, attributes: dict[str, str]) -> None:
        publisher = self._publisher()
        publisher.publish(publisher.topic_path(self.project, self.config.topics.builds), data, **attributes).result(timeout=10)

    def tick_watchdog(self) -> str:
        """What Cloud Scheduler does every minute in production."""
        return self.publish(self.config.topics.health, {"job": "tagship-health"})

    def break_app(self, tag: str, app: str = "unhealthy") -> None:
        """The release's app starts failing now, at a moment the caller chose (a bad release that passed its
        bake): its health check fails from the next request on."""
        self.scenario.set_commit(self.commit_for(tag), AppBehaviour(app))

    # -- GitHub ----------------------------------------------------------------------------------------------------
    def commit_for(self, tag: str) -> str:
        return hashlib.sha1(f"botbalance {tag}".encode()).hexdigest()

    def push_tag(
        self,
        tag: str,
        *,
        app: str = "healthy",
        degrade_after: float = 0.0,
        error_ratio: float = 0.0,
        build: str = "ok",
        migration: str = "ok",
        pusher: str = "alice",
        delivery_id: str | None = None,
    ) -> int:
        """Sends the signed tag-push webhook as GitHub would, for a commit whose app behaves as told."""
        commit = self.commit_for(tag)
        self.scenario.set_commit(commit, AppBehaviour(app, degrade_after, error_ratio, build, migration))
        self.github.add_ref(tag, commit)
        return self.deliver("push", self.tag_push_payload(tag, commit, pusher), delivery_id=delivery_id).status_code

    def tag_push_payload(self, tag: str, commit: str, pusher: str = "alice") -> dict[str, Any]:
        owner, name = self.repository.split("/")
        return {
            "ref": f"refs/tags/{tag}", "before": "0" * 40, "after": commit, "created": True, "deleted": False,
            "forced": False, "base_ref": "refs/heads/main", "compare": f"https://github.com/{self.repository}/compare/{tag}",
            "commits": [], "head_commit": {"id": commit, "message": f"Release {tag}", "author": {"name": pusher}},
            "repository": {"full_name": self.repository, "name": name, "owner": {"login": owner}},
            "pusher": {"name": pusher, "email": f"{pusher}@example.com"}, "sender": {"login": pusher},
        }

    def deliver(
        self,
        event: str,
        payload: Any,
        *,
        delivery_id: str | None = None,
        secret: str | None = None,
        content_type: str = "application/json",
        signature: str | None = None,
    ) -> Any:
        import requests

        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        key = (secret if secret is not None else self.webhook_secret).encode()
        headers = {
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
            "X-GitHub-Hook-ID": "480034045",
            "User-Agent": "GitHub-Hookshot/0b5d0b1",
            "Content-Type": content_type,
            "X-Hub-Signature-256": signature or "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest(),
        }
        return requests.post(self.webhook_url, data=body, headers=headers, timeout=10)

    def press(self, ts: str, *, user_id: str = "U0RELEASER", user_name: str = "rita", action_ts: str | None = None,
              secret: str = SLACK_SIGNING_SECRET, timestamp: int | None = None,
              button: dict[str, Any] | None = None) -> Any:
        """A person pressing the button of message `ts` in the fake Slack, as Slack sends it to the app's request
        URL: a signed `block_actions` form, the button's `action_id` and `value` taken from the message as it is
        now (or `button`, one it showed before: a client that has not seen the update yet)."""
        import requests

        from localcloud.slack_interaction import signed_click

        message = self.slack.message(ts)
        body, headers = signed_click(message, user_id=user_id, user_name=user_name, action_ts=action_ts,
                                     secret=secret, timestamp=timestamp, button=button)
        return requests.post(self.functions.url("slack_actions"), data=body, headers=headers, timeout=10)

    # -- what the cloud holds now ----------------------------------------------------------------------------------
    def store(self) -> Any:
        from shared.adapters.storage import GcsRecords
        from shared.state import StateStore

        return StateStore(GcsRecords(self.project, self.config.state.bucket))

    def release(self, tag: str) -> dict[str, Any] | None:
        found = self.store().release(tag)
        return found[0].to_dict() if found else None

    def thread(self, tag: str) -> list[dict[str, Any]]:
        """The release's Slack thread, root first, read afresh: the record names its root only once the post is
        back (before that the root is a claim, `pending:...`, and this raises KeyError)."""
        record = self.release(tag)
        if record is None:
            raise KeyError(f"no release {tag}")
        return self.slack.thread(str(record.get("slack_ts") or ""))

    def live_tag(self) -> str | None:
        return self.store().pointer().live

    def traffic(self, service: str) -> dict[str, int]:
        """What serves `service`: its traffic split, or a worker pool's instance split."""
        if service == self.config.worker.service and self.config.worker.kind == "pool":
            return self.fake_run.pool_split(service)
        return self.fake_run.traffic(service)

    @property
    def builds(self) -> list[Any]:
        return self.fake_build.builds()

    @property
    def job_executions(self) -> list[Any]:
        return self.fake_run.executions(self.config.migrations.job)

    @property
    def slack_messages(self) -> list[dict[str, Any]]:
        return self.slack.messages

    def live_frontend(self) -> dict[str, str]:
        """Path -> md5 of what the live bucket holds."""
        return {b.name: b.md5_hash for b in self.storage_client().list_blobs(self.config.frontend.bucket)}

    def wait_for(self, predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.05, what: str = "") -> T:
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            try:
                value = predicate()
                if value:
                    return value
            except Exception as error:  # noqa: BLE001 - retried until the deadline
                last_error = error
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout}s for {what or predicate}" + (f" (last error: {last_error})" if last_error else ""))
            time.sleep(interval)
