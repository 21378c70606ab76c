"""Doctor's reads of Cloud Run, Cloud Storage, Pub/Sub and Monitoring, through the real client libraries (gets and
lists only). A resource that does not exist is None; an API that will not answer (disabled, denied, unreachable)
is CannotRead naming what was asked and Google's answer."""
from __future__ import annotations

from typing import Any, Callable, TypeVar

from shared import clients
from shared.errors import CannotRead
from shared.ports import BucketFacts, ChannelFacts, PolicyFacts, RunResource

T = TypeVar("T")


def _asking(what: str, call: Callable[[], T], *, missing: T | None = None) -> T | None:
    from google.api_core import exceptions as gexc

    try:
        return call()
    except gexc.NotFound:
        return missing
    except Exception as error:  # noqa: BLE001 - every other answer means: not readable, say which
        raise CannotRead(f"{what}: {type(error).__name__}: {str(error)[:200]}") from error


class GoogleProjectReader:
    def __init__(self, project: str, region: str) -> None:
        self.project = project
        self.region = region

    def _parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    def run_resource(self, kind: str, name: str) -> RunResource | None:
        path = f"{self._parent()}/{ {'service': 'services', 'job': 'jobs', 'pool': 'workerPools'}[kind]}/{name}"
        if kind == "service":
            found = _asking(f"Cloud Run service {name}", lambda: clients.run_services().get_service(name=path))
        elif kind == "job":
            found = _asking(f"Cloud Run job {name}", lambda: clients.run_jobs().get_job(name=path))
        else:
            found = _asking(f"Cloud Run worker pool {name}", lambda: clients.run_worker_pools().get_worker_pool(name=path))
        if found is None:
            return None
        template: Any = found.template.template if kind == "job" else found.template
        containers = tuple(c.name for c in template.containers)
        scaling = getattr(found.template, "scaling", None) if kind != "job" else None
        min_instances = int(getattr(scaling, "min_instance_count", 0) or 0)
        service_scaling = getattr(found, "scaling", None)
        if kind == "service" and service_scaling is not None:
            min_instances = max(min_instances, int(getattr(service_scaling, "min_instance_count", 0) or 0))
        throttled = bool(template.containers and template.containers[0].resources.cpu_idle) if kind == "service" else False
        tag_urls = {t.tag: t.uri for t in getattr(found, "traffic_statuses", ()) if t.tag and t.uri}
        return RunResource(kind, name, containers, min_instances, throttled, getattr(found, "uri", "") or "", tag_urls)

    def bucket(self, name: str) -> BucketFacts | None:
        client = clients.storage(self.project)
        found = _asking(f"bucket gs://{name}", lambda: client.get_bucket(name))
        if found is None:
            return None
        website = found._properties.get("website") or {}  # the library sets it (configure_website) but has no getter
        return BucketFacts(name, str(website.get("mainPageSuffix") or ""), str(website.get("notFoundPage") or ""))

    def topic_exists(self, topic: str) -> bool:
        path = f"projects/{self.project}/topics/{topic}"
        return _asking(f"topic {topic}", lambda: clients.publisher().get_topic(topic=path) is not None, missing=False) or False

    def push_endpoints(self, topic: str) -> list[str]:
        path = f"projects/{self.project}/topics/{topic}"
        names: list[str] = _asking(f"subscriptions of {topic}", lambda: list(clients.publisher().list_topic_subscriptions(topic=path)),
                        missing=[]) or []
        endpoints = []
        for name in names:
            found: Any = _asking(f"subscription {name}", lambda n=name: clients.subscriber().get_subscription(  # type: ignore[misc]
                subscription=n))
            if found is not None:
                endpoints.append(found.push_config.push_endpoint or "")
        return endpoints

    def notification_channels(self) -> list[ChannelFacts]:
        found: Any = _asking("Monitoring notification channels", lambda: list(
            clients.notification_channels().list_notification_channels(name=f"projects/{self.project}")), missing=[])
        return [ChannelFacts(c.name, c.display_name, c.type_, c.labels.get("topic", ""),
                             bool(c.enabled) if "enabled" in c else True) for c in found or []]

    def alert_policies(self) -> list[PolicyFacts]:
        found: Any = _asking("Monitoring alert policies", lambda: list(
            clients.alert_policies().list_alert_policies(name=f"projects/{self.project}")), missing=[])
        return [PolicyFacts(p.name, p.display_name, bool(p.enabled) if "enabled" in p else True, dict(p.user_labels),
                            tuple(p.notification_channels)) for p in found or []]
