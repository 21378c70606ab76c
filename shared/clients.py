"""The one client factory: the only place that builds Google and Slack clients.

In production every client is the library's default (credentials from the function's service account). For the
local cloud, the environment points the same code at loopback servers, and nothing else changes:
`TAGSHIP_GRPC_ENDPOINT` (an insecure gRPC channel for Cloud Run, Cloud Build and Monitoring),
`STORAGE_EMULATOR_HOST`, `PUBSUB_EMULATOR_HOST` (read by the libraries themselves) and `TAGSHIP_SLACK_API_URL`.
Clients are built on first use and kept, so a target imports only the libraries it touches.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Callable

GRPC_ENDPOINT_ENV = "TAGSHIP_GRPC_ENDPOINT"
SLACK_API_URL_ENV = "TAGSHIP_SLACK_API_URL"
# Connections kept open to Cloud Storage: at least the frontend publish's parallel copies, so none of them opens a
# new connection (a TCP and TLS handshake, two or three round trips) per object. requests keeps 10 by default.
STORAGE_CONNECTIONS = 48

_lock = threading.Lock()
_cache: dict[str, Any] = {}
_channel: Any = None


def _memo(key: str, build: Callable[[], Any]) -> Any:
    with _lock:
        if key not in _cache:
            _cache[key] = build()
        return _cache[key]


def reset() -> None:
    """Forgets every built client (tests that move the local cloud call this)."""
    global _channel
    with _lock:
        _cache.clear()
        _channel = None


def _grpc_channel() -> Any:
    global _channel
    endpoint = os.environ.get(GRPC_ENDPOINT_ENV)
    if not endpoint:
        return None
    if _channel is None:
        import grpc

        _channel = grpc.insecure_channel(endpoint)
    return _channel


def _grpc_client(key: str, client_class: Any, transport_class: Any) -> Any:
    def build() -> Any:
        channel = _grpc_channel()
        if channel is None:
            return client_class()
        return client_class(transport=transport_class(channel=channel))

    return _memo(key, build)


def run_services() -> Any:
    from google.cloud import run_v2
    from google.cloud.run_v2.services.services.transports.grpc import (
        ServicesGrpcTransport,
    )

    return _grpc_client("run.services", run_v2.ServicesClient, ServicesGrpcTransport)


def run_worker_pools() -> Any:
    from google.cloud import run_v2
    from google.cloud.run_v2.services.worker_pools.transports.grpc import (
        WorkerPoolsGrpcTransport,
    )

    return _grpc_client("run.worker_pools", run_v2.WorkerPoolsClient, WorkerPoolsGrpcTransport)


def run_revisions() -> Any:
    from google.cloud import run_v2
    from google.cloud.run_v2.services.revisions.transports.grpc import (
        RevisionsGrpcTransport,
    )

    return _grpc_client("run.revisions", run_v2.RevisionsClient, RevisionsGrpcTransport)


def run_jobs() -> Any:
    from google.cloud import run_v2
    from google.cloud.run_v2.services.jobs.transports.grpc import JobsGrpcTransport

    return _grpc_client("run.jobs", run_v2.JobsClient, JobsGrpcTransport)


def run_executions() -> Any:
    from google.cloud import run_v2
    from google.cloud.run_v2.services.executions.transports.grpc import (
        ExecutionsGrpcTransport,
    )

    return _grpc_client("run.executions", run_v2.ExecutionsClient, ExecutionsGrpcTransport)


def cloud_build() -> Any:
    from google.cloud.devtools import cloudbuild_v1
    from google.cloud.devtools.cloudbuild_v1.services.cloud_build.transports.grpc import (
        CloudBuildGrpcTransport,
    )

    return _grpc_client("build", cloudbuild_v1.CloudBuildClient, CloudBuildGrpcTransport)


def metrics() -> Any:
    from google.cloud import monitoring_v3
    from google.cloud.monitoring_v3.services.metric_service.transports.grpc import (
        MetricServiceGrpcTransport,
    )

    return _grpc_client("monitoring", monitoring_v3.MetricServiceClient, MetricServiceGrpcTransport)


def storage(project: str) -> Any:
    def build() -> Any:
        from google.cloud import storage as gcs  # type: ignore[attr-defined]
        from requests.adapters import HTTPAdapter

        if os.environ.get("STORAGE_EMULATOR_HOST"):
            from google.auth.credentials import AnonymousCredentials

            client = gcs.Client(project=project, credentials=AnonymousCredentials())
        else:
            client = gcs.Client(project=project)
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=STORAGE_CONNECTIONS)
        for scheme in ("https://", "http://"):
            client._http.mount(scheme, adapter)  # the client's own authorized session, with a bigger pool
        return client

    return _memo(f"storage:{project}", build)


def publisher() -> Any:
    def build() -> Any:
        from google.cloud import pubsub_v1  # type: ignore[attr-defined]

        # One message at a time, sent at once: every publish of ours waits for its id, so the default batching
        # (up to 10 ms for more messages to come) would only add latency.
        return pubsub_v1.PublisherClient(batch_settings=pubsub_v1.types.BatchSettings(max_messages=1))

    return _memo("publisher", build)


def slack_web(token: str, timeout: float) -> Any:
    """The Web API client for `token`, one per token (kept by digest, never by value), timeout and API URL: each
    attempt's socket waits at most `timeout` seconds (at least 1), a dropped connection is retried once (slack_sdk's
    default), and a 429 is retried only when its `Retry-After` fits in what is left of `timeout`
    (`budgeted_rate_limit_handler`)."""

    def build() -> Any:
        from slack_sdk import WebClient

        from shared.adapters.slack_rate_limits import budgeted_rate_limit_handler

        client = WebClient(token=token, base_url=base_url or WebClient.BASE_URL, timeout=int(max(1, timeout)))
        client.retry_handlers.append(budgeted_rate_limit_handler(timeout))
        return client

    import hashlib

    base_url = os.environ.get(SLACK_API_URL_ENV) or ""
    return _memo(f"slack.web:{hashlib.sha256(token.encode()).hexdigest()[:16]}:{timeout}:{base_url}", build)


def slack_webhook(url: str, timeout: float) -> Any:
    """The incoming-webhook client for `url`, one per URL and timeout, with the same bounds as `slack_web`."""

    def build() -> Any:
        from slack_sdk.webhook import WebhookClient

        from shared.adapters.slack_rate_limits import budgeted_rate_limit_handler

        client = WebhookClient(url, timeout=int(max(1, timeout)))
        client.retry_handlers.append(budgeted_rate_limit_handler(timeout))
        return client

    import hashlib

    return _memo(f"slack.webhook:{hashlib.sha256(url.encode()).hexdigest()[:16]}:{timeout}", build)


def subscriber() -> Any:
    def build() -> Any:
        from google.cloud import pubsub_v1  # type: ignore[attr-defined]

        return pubsub_v1.SubscriberClient()

    return _memo("subscriber", build)


def alert_policies() -> Any:
    from google.cloud import monitoring_v3
    from google.cloud.monitoring_v3.services.alert_policy_service.transports.grpc import (
        AlertPolicyServiceGrpcTransport,
    )

    return _grpc_client("monitoring.alerts", monitoring_v3.AlertPolicyServiceClient, AlertPolicyServiceGrpcTransport)


def notification_channels() -> Any:
    from google.cloud import monitoring_v3
    from google.cloud.monitoring_v3.services.notification_channel_service.transports.grpc import (
        NotificationChannelServiceGrpcTransport,
    )

    return _grpc_client("monitoring.channels", monitoring_v3.NotificationChannelServiceClient,
                        NotificationChannelServiceGrpcTransport)

def github(base_url: str, timeout: float, *, token: str | None = None, app_id: int = 0, installation_id: int = 0,
           private_key: str | None = None) -> Any:
    """A PyGithub client on `base_url`, as a GitHub App installation (app id, private key, installation id: the
    installation token is fetched and renewed by the library) or with `token`; one per credential (kept by digest,
    never by value). Each request waits at most `timeout` seconds (at least 1), is never retried and never paced:
    GitHub being slow must not hold a deploy, and a status missed is logged, not waited for."""
    import hashlib

    secret = private_key if app_id else token
    digest = hashlib.sha256((secret or "").encode()).hexdigest()[:16]

    def build() -> Any:
        from github import Auth, Github

        auth: Any = (Auth.AppAuth(app_id, private_key or "").get_installation_auth(installation_id) if app_id
                     else Auth.Token(token or ""))
        return Github(auth=auth, base_url=base_url.rstrip("/"), timeout=int(max(1, timeout)), retry=None,
                      seconds_between_requests=None, seconds_between_writes=None, lazy=True)

    return _memo(f"github:{base_url}:{app_id}:{installation_id}:{digest}:{timeout}", build)
