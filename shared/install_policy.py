"""What setup writes and says beside its commands (pure): the alert policy document and the notes on what the
team must do that no command can (bucket naming, the worker's shape, sidecars)."""
from __future__ import annotations

from shared.config import Config

UPTIME_CHECK = "tagship-api-health"
POLICY_FILE = "tagship-alert-policy.json"


def api_host(config: Config) -> str:
    return config.api.url.split("//", 1)[-1].split("/", 1)[0]


def frontend_host(config: Config) -> str:
    return config.frontend.url.split("//", 1)[-1].split("/", 1)[0].split(":", 1)[0].lower()


def notes(config: Config) -> list[str]:
    """What setup cannot do for the team but the install needs, said after the commands (pure)."""
    said = []
    host = frontend_host(config)
    if host and host != config.frontend.bucket.lower():
        said.append(
            f"frontend: the bucket {config.frontend.bucket} is not named for {host}. Behind Cloudflare with a CNAME to "
            f"c.storage.googleapis.com, Cloud Storage serves the bucket named exactly {host} and no other: name the "
            "bucket for the domain (frontend.bucket = \"" + host + "\"), or serve it through a load balancer.")
    if config.worker.kind == "service":
        said.append(
            f"worker: {config.worker.service} is a Cloud Run service. A Celery worker listens on no port and, with CPU "
            "throttled outside requests, processes nothing while idle: deploy it with --no-cpu-throttling and "
            "--min-instances 1, and have its container answer on $PORT (for example a small health server beside "
            "celery). A Cloud Run worker pool (worker.kind = \"pool\") needs neither.")
    else:
        said.append(
            f"worker: {config.worker.service} is a Cloud Run worker pool (gcloud beta run worker-pools deploy): no port, "
            "no request-driven CPU; tagship moves its instance split to each release's revision.")
    if not config.api.container or not config.worker.container:
        said.append("containers: when a service has sidecars, name the app's container (api.container, "
                    "worker.container): tagship never assumes it is the first.")
    return said


def alert_policy(config: Config) -> dict[str, object]:
    """The alert policy whose incidents the rollback function acts on (named in rollback.trigger_policies). Its
    filter names the uptime check's host, never the check's id: a created check's id carries a generated suffix."""
    name = config.rollback.trigger_policies[0] if config.rollback.trigger_policies else "tagship-api-health"
    return {
        "displayName": name,
        "userLabels": {"tagship_rollback": "true"},
        "combiner": "OR",
        "conditions": [{
            "displayName": "API health uptime check failing",
            "conditionThreshold": {
                "filter": 'metric.type="monitoring.googleapis.com/uptime_check/check_passed" AND '
                          f'resource.type="uptime_url" AND resource.label.host="{api_host(config)}"',
                "aggregations": [{"alignmentPeriod": "60s", "perSeriesAligner": "ALIGN_NEXT_OLDER",
                                  "crossSeriesReducer": "REDUCE_COUNT_FALSE", "groupByFields": ["resource.label.host"]}],
                "comparison": "COMPARISON_GT", "thresholdValue": 1, "duration": "120s",
            },
        }],
        "alertStrategy": {"autoClose": "1800s"},
    }
