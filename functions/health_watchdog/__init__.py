"""health_watchdog: every tick (Cloud Scheduler via Pub/Sub), probe what users touch, judge, remember, and act.

The probes and Monitoring figures are the only I/O; `shared.health.diagnose` and `decide_watchdog` decide. Slack
hears only of changes; a rollback is asked for (never done here) when the fresh release is the likely culprit.
"""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urljoin

from shared import deadline, gates
from shared.core import watch_wording
from shared.core.fast_watch import Stop, next_look
from shared.core.queue import LeaseView, holder_settled, nudges
from shared.core.watchdog import WatchdogState, decide_watchdog
from shared.errors import CorruptRecord, InputError, PreconditionFailed, TagshipError
from shared.health import MetricsReading, ProbeResult, diagnose
from shared.log import Logger
from shared.release import LIVE, ROLLED_BACK
from shared.starting import start_release
from shared.state import Pointer
from shared.text import cut
from shared.thread import tell_corrupt, thread_of
from shared.webhook import Start
from shared.wiring import Services

_ASSET = re.compile(r"""(?:src|href)=["']([^"']+\.(?:js|css))["']""")
STOOD_DOWN = "concurrent tick"
DETAIL_LIMIT = 300  # what a probe says it was answered: a health body, an error, asset names from the page


def handle(services: Services, data: bytes, attributes: dict[str, str], message_id: str, log: Logger,
           published_at: float | None = None) -> str:
    """One tick: a look, and inside the live release's bake window more looks, one a `fast_probe_seconds`, until
    just before the next tick (`shared.core.fast_watch`). A look that acts, or stands down for a concurrent one,
    ends the invocation."""
    config = services.config
    started = services.clock()
    until = started + deadline.left(deadline.usable(deadline.function_timeout()))
    verdict, acted, live_since = _look(services, log)
    if verdict != STOOD_DOWN:
        _nudge(services, log)
    while True:
        now = services.clock()
        step = next_look(now=now, started=started, live_since=live_since, acted=acted,
                         interval=config.watchdog.fast_probe_seconds, tick_seconds=config.watchdog.tick_seconds,
                         probe_seconds=config.deploy.probe_timeout_seconds,
                         bake_window=config.watchdog.bake_window_seconds, until=until)
        if isinstance(step, Stop):
            return verdict
        services.sleep(step.pause)
        verdict, acted, live_since = _look(services, log)


def _look(services: Services, log: Logger) -> tuple[str, bool, float | None]:
    """Probe, judge, remember, act: (the verdict, whether it acted or stood down, since when the live release is
    live)."""
    config = services.config
    revision = _live_revision(services, log)
    with ThreadPoolExecutor(max_workers=4) as pool:
        probes_future = pool.submit(probe_all, services)
        metrics_future = pool.submit(read_metrics, services, log, revision)
        probes, metrics = probes_future.result(), metrics_future.result()
    diagnosis = diagnose(probes, metrics, config.watchdog)
    store = services.store
    record = store.watchdog()
    try:
        state = WatchdogState.from_dict(record.data) if record else WatchdogState.from_dict({})
    except InputError as error:  # its memory is counters only: start afresh, and this tick's save replaces it
        tell_corrupt(services, CorruptRecord("watchdog.json", str(error), record.generation if record else 0), log)
        state = WatchdogState.from_dict({})
    try:
        pointer = store.pointer()
    except CorruptRecord as error:  # what serves is not known: the whole service is judged and alerted on, and
        tell_corrupt(services, error, log)  # nothing is rolled back (a rollback needs to know from what to what)
        pointer = Pointer()
    live = pointer.live
    live_since = None
    for tag, since in pointer.timeline:
        if tag == live:
            live_since = since
    previous_good = pointer.previous
    if previous_good:
        found = _release_or_none(services, previous_good, log)
        if found is None or found[0].state == ROLLED_BACK:
            previous_good = None
    now = services.clock()
    decision = decide_watchdog(
        state, diagnosis, live_tag=live, live_since=live_since, previous_good_tag=previous_good, now=now,
        config=config.watchdog, automatic_rollback=config.rollback.automatic,
    )
    try:
        store.save_watchdog(decision.new_state.to_dict(), record.generation if record else None)
    except PreconditionFailed:
        log.info("another tick judged at the same time; this one stands down")
        return STOOD_DOWN, True, live_since
    log = log.bind(tag=live)
    log.info("health judged", verdict=diagnosis.verdict.name.lower(), reasons=list(diagnosis.reasons))
    if decision.alert is not None:
        text = decision.alert.text
        found = _release_or_none(services, live, log) if live else None
        if live and found and thread_of(found[0]) is not None:
            text = watch_wording.about_release(text, live)
        services.notifier.post(text)
        log.warning("health alert", kind=decision.alert.kind)
    if decision.rollback_from:
        services.publisher.publish(
            config.topics.rollback,
            {"to": "previous", "from": decision.rollback_from, "reason": "; ".join(diagnosis.reasons) or "unhealthy",
             "requested_by": "health_watchdog", "trigger": "watchdog"},
        )
        log.warning("rollback requested", from_tag=decision.rollback_from)
    return diagnosis.verdict.name.lower(), bool(decision.rollback_from), live_since


def _nudge(services: Services, log: Logger) -> None:
    """Each tick notices a deploy lease that expired with work behind it (an attempt that died holding it) and
    drives that work: the holder resumes from its record, or the release waiting behind it starts."""
    store = services.store
    try:
        lease = store.lease()
        view = None
        if lease is not None:
            found = _release_or_none(services, lease.tag, log) if lease.tag != "rollback" else None
            in_flight = found is not None and not found[0].ended and found[0].state != LIVE
            settled = holder_settled(lease.tag, found[0].state if found else None)
            view = LeaseView(lease.tag, lease.expires, in_flight, settled)
        for tag in nudges(view, store.queued(), services.clock()):
            services.publisher.publish(services.config.topics.progress, {"kind": "drive", "tag": tag})
            log.warning("nudged a release an expired lease left waiting", nudged=tag,
                        expired_holder=lease.tag if lease else None)
    except TagshipError as error:  # the next tick tries again
        log.warning("could not check the deploy lease", error=str(error)[:200])
    try:  # a tag held by a freeze window starts at the first tick after the window ends
        gates.let_go(services, log)
    except CorruptRecord as error:
        tell_corrupt(services, error, log)
    except TagshipError as error:
        log.warning("could not check the held tag", error=str(error)[:200])
    try:
        for lost in store.lost_starts(services.clock()):
            tagged = log.bind(tag=lost.tag)
            tagged.warning("restarting a release whose start died between its record and its build",
                           delivery=lost.delivery_id)
            start_release(services, Start(lost.tag, lost.commit, lost.pushed_by), lost.delivery_id, tagged)
    except TagshipError as error:
        log.warning("could not look for releases whose start died", error=str(error)[:200])


def probe_all(services: Services) -> list[ProbeResult]:
    """Every probe, each saying what it was answered in at most `DETAIL_LIMIT` characters."""
    return [ProbeResult(probe.name, probe.ok, cut(probe.detail, DETAIL_LIMIT), probe.latency_ms)
            for probe in _probes(services)]


def _probes(services: Services) -> list[ProbeResult]:
    config = services.config
    http = services.http
    timeout = config.deploy.probe_timeout_seconds
    results: list[ProbeResult] = []
    try:
        api_url = services.run.service(config.api.service).uri.rstrip("/")
    except TagshipError as error:
        return [ProbeResult("api_health", False, f"Cloud Run service unreadable: {error}", None)]
    health = http.request(api_url + config.api.health_path, timeout=timeout)
    results.append(ProbeResult("api_health", health.status == 200,
                               "ok" if health.status == 200 else f"{config.api.health_path} answered {health.status or health.error}",
                               health.latency_ms))
    detailed = http.request(api_url + config.api.detailed_health_path, timeout=timeout)
    results.append(ProbeResult("api_detailed", detailed.status == 200, _components(detailed.status, detailed.body),
                               detailed.latency_ms))
    frontend = http.request(config.frontend.url, timeout=timeout)
    results.append(ProbeResult("frontend", frontend.status == 200,
                               "ok" if frontend.status == 200 else f"frontend answered {frontend.status or frontend.error}",
                               frontend.latency_ms))
    if frontend.status == 200:
        missing = []
        for asset in sorted(set(_ASSET.findall(frontend.body.decode("utf-8", "replace")))):
            answer = http.request(urljoin(config.frontend.url, asset), timeout=timeout)
            if answer.status != 200:
                missing.append(asset)
        results.append(ProbeResult("frontend_assets", not missing,
                                   "ok" if not missing else f"missing assets: {', '.join(missing)}", None))
    origin = config.frontend_origin
    preflight = http.request(
        api_url + config.api.health_path, method="OPTIONS", timeout=timeout,
        headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
    )
    allowed = preflight.headers.get("access-control-allow-origin") in (origin, "*")
    results.append(ProbeResult("cors", allowed, "ok" if allowed else f"CORS preflight from {origin} not allowed",
                               preflight.latency_ms))
    return results


def _components(status: int, body: bytes) -> str:
    import json

    if status == 200:
        return "ok"
    try:
        data = json.loads(body)
        components = data.get("components", data)
        failing = [f"{k}: {v}" for k, v in components.items() if v != "ok" and k != "status"]
        if failing:
            return ", ".join(failing)
    except (ValueError, AttributeError):
        pass
    return f"answered {status}"


def read_metrics(services: Services, log: Logger, revision: str | None = None) -> MetricsReading | None:
    """The live release's own figures (its API revision's, so a window that began before it went live counts only
    its requests, and too few of them is no verdict), in a window that ends Monitoring's ingestion lag ago."""
    config = services.config
    try:
        figures = services.metrics.figures(config.api.service, config.watchdog.window_seconds, revision,
                                           lag_seconds=config.watchdog.metrics_lag_seconds)
    except TagshipError as error:
        log.warning("Monitoring unreadable; judging on probes only", error=str(error))
        return None
    return MetricsReading(figures.requests, figures.error_ratio, figures.p95_latency_ms)


def _live_revision(services: Services, log: Logger) -> str | None:
    """The live release's API revision, or None (before tagship, or unreadable: the service's figures then)."""
    try:
        live = services.store.pointer().live
    except TagshipError as error:
        log.warning("pointer unreadable; judging the whole service", error=str(error)[:200])
        return None
    found = _release_or_none(services, live, log) if live else None
    return found[0].revisions.get("api") if found else None


def _release_or_none(services: Services, tag: str, log: Logger) -> Any:
    """The release's record, or None when it is absent or corrupt (told once): the watchdog never acts on it."""
    try:
        return services.store.release(tag)
    except CorruptRecord as error:
        tell_corrupt(services, error, log, tag)
        return None
