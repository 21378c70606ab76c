"""Is the live release healthy, and what should the watchdog do about it: pure decisions over plain data.

Free of I/O (the health_watchdog function probes, reads Monitoring, loads and saves the state, posts and
publishes; this module and `shared.core.watchdog` only decide):

- `diagnose(probes, metrics, config)` turns probe results and Monitoring figures into a `Diagnosis`, the way
  cloud-run-release-manager's `Diagnose(criteria, values)` does: a verdict plus the human reasons behind it.
- `shared.core.watchdog.decide_watchdog(state, diagnosis, ...)` is one watchdog tick: from the remembered `WatchdogState` and this
  tick's diagnosis, the next state, at most one Slack alert, and whether to ask for a rollback. It never acts; it
  returns what to do, so every rule below is a table test.

`now` is always an argument, never read from a clock, so the bake window and the reminder period are testable at
their exact edges.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from shared.config import WatchdogConfig
from shared.core.wording import duration

# Probe names the watchdog uses. The API's own health endpoints decide "unhealthy": users cannot use the product
# when they fail. The frontend and CORS only make it "degraded": they are usually a publishing or config slip
# that a rollback of the API would not fix.
API_HEALTH, API_DETAILED, FRONTEND, FRONTEND_ASSETS, CORS = (
    "api_health", "api_detailed", "frontend", "frontend_assets", "cors",
)
CRITICAL_PROBES = frozenset({API_HEALTH, API_DETAILED})
_PROBE_LABELS = {
    API_HEALTH: "API health check",
    API_DETAILED: "API detailed health",
    FRONTEND: "frontend",
    FRONTEND_ASSETS: "frontend assets",
    CORS: "CORS from the frontend origin",
}

HEALTHY_STATUS, DEGRADED_STATUS, UNHEALTHY_STATUS, UNKNOWN_STATUS = "healthy", "degraded", "unhealthy", "unknown"
STATUSES = (HEALTHY_STATUS, DEGRADED_STATUS, UNHEALTHY_STATUS, UNKNOWN_STATUS)

AlertKind = Literal["unhealthy", "still_unhealthy", "recovered", "degraded"]


class Verdict(Enum):
    """How the live release is doing. The value is the watchdog status it leads to (INCONCLUSIVE leads to none)."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    INCONCLUSIVE = "inconclusive"


# Which part wins when parts disagree: the worst judged one. INCONCLUSIVE is not on this scale on purpose: a part
# that could not be judged neither worsens nor improves the verdict of the parts that could.
_SEVERITY = {Verdict.HEALTHY: 0, Verdict.DEGRADED: 1, Verdict.UNHEALTHY: 2}


@dataclass(frozen=True)
class ProbeResult:
    """One HTTP probe of what users touch.

    `name` is one of api_health, api_detailed, frontend, frontend_assets, cors (others count as non-critical).
    `detail` says what went wrong in words a person reads in Slack; for api_detailed it names the failing
    component ("db: connection refused"). `latency_ms` is None when no answer came.
    """

    name: str
    ok: bool
    detail: str
    latency_ms: float | None


@dataclass(frozen=True)
class MetricsReading:
    """Cloud Monitoring figures over the watchdog window. `error_ratio` and `p95_latency_ms` are None when unknown."""

    requests: int
    error_ratio: float | None
    p95_latency_ms: float | None


@dataclass(frozen=True)
class Diagnosis:
    """A verdict and why.

    `reasons` say why the verdict is not HEALTHY: for UNHEALTHY and DEGRADED, one sentence per failure, the worst
    first (these go to Slack and into the rollback request); for INCONCLUSIVE, why nothing could be judged; for
    HEALTHY, nothing. `unjudged` names the parts that could not be judged and why (too few requests, Monitoring
    unreadable, no probes), whatever the verdict, so a log line can show that "healthy" rested on probes only.
    """

    verdict: Verdict
    reasons: tuple[str, ...]
    unjudged: tuple[str, ...] = ()


def diagnose(probes: Sequence[ProbeResult], metrics: MetricsReading | None, config: WatchdogConfig) -> Diagnosis:
    """Judges probes and Monitoring figures against the watchdog thresholds.

    Each part is judged on its own, then the worst judged part wins (UNHEALTHY > DEGRADED > HEALTHY):
    - probes: a failed api_health or api_detailed probe is UNHEALTHY; any other failed probe (frontend,
      frontend_assets, cors, or a name we do not know) is DEGRADED; all passing is HEALTHY. No probes at all: the
      probe part is not judged.
    - Monitoring: judged only with at least `config.min_requests` requests in the window. Fewer (zero included)
      is not judged: too few requests never make a release healthy, the anti-pattern of judging a revision that
      got no traffic. A 5xx ratio above `max_error_ratio` is UNHEALTHY; a p95 latency above
      `max_p95_latency_ms` is DEGRADED; exactly at a threshold is healthy. An unreadable figure (None, NaN) is not
      judged; Monitoring unreadable (`metrics` None) is not judged.
    - INCONCLUSIVE only when no part could be judged at all. Passing probes with too few requests is therefore
      HEALTHY, judged on the probes alone, and `unjudged` says the figures were not counted.
    """
    judged: list[Verdict] = []
    failures: list[tuple[Verdict, str]] = []
    unjudged: list[str] = []

    if probes:
        probe_verdict = Verdict.HEALTHY
        for probe in probes:
            if probe.ok:
                continue
            severity = Verdict.UNHEALTHY if probe.name in CRITICAL_PROBES else Verdict.DEGRADED
            failures.append((severity, _probe_failure(probe)))
            probe_verdict = _worst(probe_verdict, severity)
        judged.append(probe_verdict)
    else:
        unjudged.append("no probes ran")

    metrics_verdict, metric_failures, metric_notes = _judge_metrics(metrics, config)
    failures.extend(metric_failures)
    unjudged.extend(metric_notes)
    if metrics_verdict is not None:
        judged.append(metrics_verdict)

    if not judged:
        return Diagnosis(Verdict.INCONCLUSIVE, tuple(unjudged), tuple(unjudged))
    verdict = Verdict.HEALTHY
    for part in judged:
        verdict = _worst(verdict, part)
    # sorted() is stable: failures of the same severity keep the order the probes were given in.
    ordered = sorted(failures, key=lambda item: -_SEVERITY[item[0]])
    return Diagnosis(verdict, tuple(text for _, text in ordered), tuple(unjudged))


def _worst(a: Verdict, b: Verdict) -> Verdict:
    return a if _SEVERITY[a] >= _SEVERITY[b] else b


def _probe_failure(probe: ProbeResult) -> str:
    label = _PROBE_LABELS.get(probe.name, f"{probe.name} probe")
    detail = probe.detail.strip()
    return f"{label} failed: {detail}" if detail else f"{label} failed"


def _judge_metrics(
    metrics: MetricsReading | None, config: WatchdogConfig
) -> tuple[Verdict | None, list[tuple[Verdict, str]], list[str]]:
    """(verdict or None when not judged, failures, notes on what could not be judged)."""
    if metrics is None:
        return None, [], ["Monitoring figures could not be read"]
    window = duration(config.window_seconds)
    if metrics.requests < config.min_requests:
        count = "no requests" if metrics.requests <= 0 else f"only {metrics.requests} requests"
        return None, [], [
            f"Monitoring figures not judged: {count} in the last {window}, fewer than the {config.min_requests} needed"
        ]
    failures: list[tuple[Verdict, str]] = []
    notes: list[str] = []
    verdict: Verdict | None = None
    ratio = metrics.error_ratio
    if ratio is not None and not math.isnan(ratio):
        verdict = Verdict.HEALTHY
        if ratio > config.max_error_ratio:
            verdict = Verdict.UNHEALTHY
            failures.append((Verdict.UNHEALTHY, (
                f"5xx ratio {_percent(ratio)} of {metrics.requests} requests in the last {window} is above the "
                f"{_percent(config.max_error_ratio)} limit"
            )))
    else:
        notes.append("5xx ratio unavailable from Monitoring")
    p95 = metrics.p95_latency_ms
    if p95 is not None and not math.isnan(p95):
        verdict = verdict or Verdict.HEALTHY
        if p95 > config.max_p95_latency_ms:
            verdict = _worst(verdict, Verdict.DEGRADED)
            failures.append((Verdict.DEGRADED, (
                f"p95 latency {p95:.0f} ms in the last {window} is above the {config.max_p95_latency_ms:.0f} ms limit"
            )))
    else:
        notes.append("p95 latency unavailable from Monitoring")
    return verdict, failures, notes


def _percent(ratio: float) -> str:
    text = f"{ratio * 100:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


# ---- the watchdog's memory and its step -------------------------------------------------------------------------

# What the watchdog last said about rolling back, stored so that a change of plan is announced once (and an
# unchanged plan is not repeated every tick).
