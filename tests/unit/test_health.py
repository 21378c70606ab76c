"""The health verdict and the watchdog's step, as named tables at their threshold edges."""
from __future__ import annotations

import dataclasses
import json
import math
from datetime import datetime, timezone
from typing import Any

import pytest

from shared.config import WatchdogConfig
from shared.errors import InputError
from shared.core.watchdog import WatchdogDecision, WatchdogState, decide_watchdog
from shared.health import Diagnosis, MetricsReading, ProbeResult, Verdict, diagnose

CONFIG = WatchdogConfig(
    bake_window_seconds=1800.0, consecutive_failures=3, max_error_ratio=0.05, max_p95_latency_ms=2000.0,
    min_requests=50, window_seconds=300, reminder_seconds=3600.0,
)


def ok(name: str) -> ProbeResult:
    return ProbeResult(name, True, "ok", 12.0)


def failed(name: str, detail: str) -> ProbeResult:
    return ProbeResult(name, False, detail, None)


ALL_OK = [ok("api_health"), ok("api_detailed"), ok("frontend"), ok("frontend_assets"), ok("cors")]
GOOD = MetricsReading(requests=400, error_ratio=0.01, p95_latency_ms=350.0)


def metrics(requests: int, error_ratio: float | None = 0.0, p95: float | None = 300.0) -> MetricsReading:
    return MetricsReading(requests, error_ratio, p95)


# ---- diagnose --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "probes, reading, verdict, mentions",
    [
        (ALL_OK, GOOD, Verdict.HEALTHY, []),
        (ALL_OK, metrics(400, 0.05), Verdict.HEALTHY, []),
        (ALL_OK, metrics(400, 0.0501), Verdict.UNHEALTHY, ["5xx ratio 5.01%", "above the 5% limit"]),
        (ALL_OK, metrics(400, 1.0), Verdict.UNHEALTHY, ["5xx ratio 100%"]),
        (ALL_OK, metrics(400, 0.0, 2000.0), Verdict.HEALTHY, []),
        (ALL_OK, metrics(400, 0.0, 2000.5), Verdict.DEGRADED, ["p95 latency", "above the 2000 ms limit"]),
        (ALL_OK, metrics(50, 0.5), Verdict.UNHEALTHY, ["of 50 requests"]),
        (ALL_OK, metrics(49, 0.5, 9000.0), Verdict.HEALTHY, []),
        ([], metrics(49, 0.0), Verdict.INCONCLUSIVE, ["only 49 requests", "fewer than the 50 needed"]),
        ([], metrics(0, None, None), Verdict.INCONCLUSIVE, ["no requests"]),
        ([], None, Verdict.INCONCLUSIVE, ["no probes ran", "could not be read"]),
        (ALL_OK, None, Verdict.HEALTHY, []),
        ([failed("api_health", "/api/health answered 503"), *ALL_OK[1:]], GOOD, Verdict.UNHEALTHY,
         ["API health check failed: /api/health answered 503"]),
        ([ok("api_health"), failed("api_detailed", "db: connection refused")], GOOD, Verdict.UNHEALTHY,
         ["db: connection refused"]),
        ([ok("api_health"), failed("api_detailed", "redis: timeout, celery: no workers")], None, Verdict.UNHEALTHY,
         ["redis: timeout, celery: no workers"]),
        ([ok("api_health"), failed("frontend", "frontend answered 404")], GOOD, Verdict.DEGRADED,
         ["frontend failed: frontend answered 404"]),
        ([ok("api_health"), failed("frontend_assets", "missing assets: app.js")], GOOD, Verdict.DEGRADED,
         ["frontend assets failed: missing assets: app.js"]),
        ([ok("api_health"), failed("cors", "CORS preflight from https://app.example not allowed")], GOOD,
         Verdict.DEGRADED, ["CORS preflight from https://app.example not allowed"]),
        ([ok("api_health"), failed("search_index", "stale")], GOOD, Verdict.DEGRADED, ["search_index probe failed: stale"]),
        ([ok("api_health"), failed("cors", "")], GOOD, Verdict.DEGRADED, ["CORS from the frontend origin failed"]),
        ([ok("api_health"), failed("cors", "not allowed")], metrics(400, 0.2), Verdict.UNHEALTHY,
         ["5xx ratio 20%", "CORS"]),
        ([failed("frontend", "down"), failed("api_health", "answered 500")], GOOD, Verdict.UNHEALTHY,
         ["API health check failed", "frontend failed"]),
        ([], metrics(200, 0.2), Verdict.UNHEALTHY, ["5xx ratio 20%"]),
        ([], metrics(200, 0.0, 100.0), Verdict.HEALTHY, []),
        ([], metrics(200, None, None), Verdict.INCONCLUSIVE, ["5xx ratio unavailable", "p95 latency unavailable"]),
        ([], metrics(200, math.nan, None), Verdict.INCONCLUSIVE, ["5xx ratio unavailable"]),
        ([], metrics(200, None, 2500.0), Verdict.DEGRADED, ["p95 latency 2500 ms"]),
        ([], metrics(200, 0.0, math.nan), Verdict.HEALTHY, []),
        ([failed("api_health", "down")], metrics(0, None, None), Verdict.UNHEALTHY, ["API health check failed"]),
    ],
    ids=[
        "all probes pass and enough healthy requests is healthy",
        "barely healthy at the exact error threshold",
        "just above the error threshold is unhealthy",
        "every request failing is unhealthy",
        "barely healthy at the exact latency threshold",
        "just above the latency threshold is degraded",
        "exactly the minimum number of requests is judged",
        "one request short of the minimum leaves bad figures unjudged and the probes decide",
        "not enough requests is inconclusive, never healthy",
        "zero requests is inconclusive, never healthy",
        "no probes and no metrics is inconclusive",
        "Monitoring unreadable judges on the probes alone",
        "a failed api health probe is unhealthy even with perfect figures",
        "a database down in detailed health is unhealthy and named",
        "redis and celery failures are named as reported",
        "a failed frontend probe is only degraded",
        "missing frontend assets are only degraded",
        "a CORS failure is only degraded",
        "an unknown probe failing counts as degraded, not unhealthy",
        "a failure without detail still names the probe",
        "a degraded probe and a high error ratio together are unhealthy, worst reason first",
        "api failures are listed before frontend failures whatever the probe order",
        "figures alone can judge unhealthy when no probe ran",
        "figures alone can judge healthy when no probe ran",
        "enough requests but no readable figures is inconclusive",
        "a NaN error ratio is never read as healthy",
        "latency alone can degrade when the ratio is unreadable",
        "an unreadable latency does not spoil a judged ratio",
        "a failed probe is unhealthy even when the service got no requests",
    ],
)
def test_diagnose(probes: list[ProbeResult], reading: MetricsReading | None, verdict: Verdict, mentions: list[str]) -> None:
    diagnosis = diagnose(probes, reading, CONFIG)
    assert diagnosis.verdict is verdict
    text = "; ".join(diagnosis.reasons)
    for phrase in mentions:
        assert phrase in text
    if verdict is Verdict.HEALTHY:
        assert diagnosis.reasons == ()


def test_passing_probes_with_too_few_requests_are_healthy_but_say_the_figures_were_not_judged() -> None:
    diagnosis = diagnose(ALL_OK, metrics(12, 0.0), CONFIG)
    assert diagnosis.verdict is Verdict.HEALTHY
    assert diagnosis.unjudged == (
        "Monitoring figures not judged: only 12 requests in the last 5 min, fewer than the 50 needed",
    )


def test_every_failure_is_named_not_only_the_first() -> None:
    probes = [failed("api_health", "answered 502"), failed("api_detailed", "db: connection refused"),
              failed("frontend", "answered 404"), failed("cors", "not allowed")]
    diagnosis = diagnose(probes, metrics(400, 0.5, 5000.0), CONFIG)
    assert diagnosis.verdict is Verdict.UNHEALTHY
    assert len(diagnosis.reasons) == 6
    assert [r.split(" ")[0] for r in diagnosis.reasons] == ["API", "API", "5xx", "frontend", "CORS", "p95"]


def test_a_fully_judged_healthy_diagnosis_has_nothing_unjudged() -> None:
    assert diagnose(ALL_OK, GOOD, CONFIG) == Diagnosis(Verdict.HEALTHY, (), ())


# ---- the watchdog state record ---------------------------------------------------------------------------------

def test_the_first_tick_starts_from_an_empty_record() -> None:
    state = WatchdogState.from_dict({})
    assert state == WatchdogState()
    assert (state.consecutive_unhealthy, state.status, state.since, state.rollback_requested_for) == (0, "unknown", None, None)


def test_the_state_survives_a_json_round_trip() -> None:
    state = WatchdogState(
        consecutive_unhealthy=4, status="unhealthy", since=1700000000.5, last_alert_at=1700000100.0,
        alerted_status="unhealthy", rollback_requested_for="v1.1.0", rollback_requested_to="v1.0.0",
        live_tag="v1.1.0", rollback_plan="requested",
    )
    assert WatchdogState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


def test_an_older_record_without_the_newer_keys_still_loads() -> None:
    state = WatchdogState.from_dict({"consecutive_unhealthy": 2, "status": "unhealthy", "since": 10, "extra": 1})
    assert state == WatchdogState(consecutive_unhealthy=2, status="unhealthy", since=10.0)


@pytest.mark.parametrize(
    "data, mentions",
    [
        ([], "expected an object"),
        ({"consecutive_unhealthy": "3"}, "consecutive_unhealthy"),
        ({"consecutive_unhealthy": -1}, "consecutive_unhealthy"),
        ({"consecutive_unhealthy": True}, "consecutive_unhealthy"),
        ({"status": "sick"}, "status"),
        ({"alerted_status": "sick"}, "alerted_status"),
        ({"since": "yesterday"}, "since"),
        ({"last_alert_at": False}, "last_alert_at"),
        ({"rollback_requested_for": 1.1}, "rollback_requested_for"),
        ({"rollback_plan": "maybe"}, "rollback_plan"),
    ],
    ids=["a list is not a state", "a counter as text is refused", "a negative counter is refused",
         "a boolean is not a counter", "an unknown status is refused", "an unknown alerted status is refused",
         "a time as text is refused", "a boolean is not a time", "a tag must be text",
         "an unknown rollback plan is refused"],
)
def test_a_corrupt_state_record_is_refused_naming_the_key(data: Any, mentions: str) -> None:
    with pytest.raises(InputError, match=mentions):
        WatchdogState.from_dict(data)


# ---- decide_watchdog -------------------------------------------------------------------------------------------

LIVE_SINCE = 1_700_000_000.0
NOW = LIVE_SINCE + 600.0  # ten minutes into the release: inside the 30 min bake window
SICK = diagnose([ok("api_health"), failed("api_detailed", "db: connection refused")], GOOD, CONFIG)
WELL = diagnose(ALL_OK, GOOD, CONFIG)
SLOW = diagnose([ok("api_health"), failed("cors", "CORS preflight not allowed")], GOOD, CONFIG)
UNSURE = diagnose([], metrics(3), CONFIG)


def clock(when: float) -> str:
    return datetime.fromtimestamp(when, tz=timezone.utc).strftime("%H:%M:%S UTC")


def fresh(**changes: Any) -> WatchdogState:
    """A watchdog that has seen v1.1.0 healthy and said nothing."""
    return dataclasses.replace(WatchdogState(status="healthy", since=LIVE_SINCE, live_tag="v1.1.0"), **changes)


def sick(count: int, **changes: Any) -> WatchdogState:
    """A watchdog in an unhealthy spell of v1.1.0 that began two minutes ago and was alerted then."""
    state = WatchdogState(
        consecutive_unhealthy=count, status="unhealthy", since=NOW - 120, last_alert_at=NOW - 120,
        alerted_status="unhealthy", live_tag="v1.1.0", rollback_plan="pending",
    )
    return dataclasses.replace(state, **changes)


def degraded(**changes: Any) -> WatchdogState:
    state = WatchdogState(status="degraded", since=NOW - 300, last_alert_at=NOW - 300, alerted_status="degraded",
                          live_tag="v1.1.0")
    return dataclasses.replace(state, **changes)


REQUESTED = {"rollback_requested_for": "v1.1.0", "rollback_requested_to": "v1.0.0", "rollback_plan": "requested"}


def tick(state: WatchdogState, diagnosis: Diagnosis, **overrides: Any) -> WatchdogDecision:
    arguments: dict[str, Any] = {
        "live_tag": "v1.1.0", "live_since": LIVE_SINCE, "previous_good_tag": "v1.0.0", "now": NOW,
        "config": CONFIG, "automatic_rollback": True,
    }
    arguments.update(overrides)
    return decide_watchdog(state, diagnosis, **arguments)


ONE_STRIKE = dataclasses.replace(CONFIG, consecutive_failures=1)


@pytest.mark.parametrize(
    "state, diagnosis, overrides, alert_kind, rollback_from, counter",
    [
        (fresh(), SICK, {}, "unhealthy", None, 1),
        (WatchdogState(), SICK, {}, "unhealthy", None, 1),
        (sick(1), SICK, {}, None, None, 2),
        (sick(2), SICK, {}, "still_unhealthy", "v1.1.0", 3),
        (fresh(), SICK, {"config": ONE_STRIKE}, "unhealthy", "v1.1.0", 1),
        (sick(3, **REQUESTED), SICK, {}, None, None, 4),
        (sick(9, **REQUESTED), SICK, {}, None, None, 10),
        (sick(2), SICK, {"now": LIVE_SINCE + 1800}, "still_unhealthy", "v1.1.0", 3),
        (fresh(), SICK, {"now": LIVE_SINCE + 1801, "config": ONE_STRIKE}, "unhealthy", None, 1),
        (sick(2, rollback_plan="outside_window", last_alert_at=LIVE_SINCE + 7080), SICK, {"now": LIVE_SINCE + 7200},
         None, None, 3),
        (sick(2), SICK, {"now": LIVE_SINCE + 1801}, "still_unhealthy", None, 3),
        (fresh(), SICK, {"config": ONE_STRIKE, "automatic_rollback": False}, "unhealthy", None, 1),
        (fresh(), SICK, {"config": ONE_STRIKE, "previous_good_tag": None}, "unhealthy", None, 1),
        (fresh(), SICK, {"config": ONE_STRIKE, "previous_good_tag": "v1.1.0"}, "unhealthy", None, 1),
        (fresh(live_tag=None), SICK, {"config": ONE_STRIKE, "live_tag": None, "live_since": None}, "unhealthy", None, 1),
        (fresh(), SICK, {"config": ONE_STRIKE, "live_since": None}, "unhealthy", None, 1),
        (sick(2, live_tag="v1.1.0"), SICK, {"live_tag": "v1.2.0", "live_since": NOW - 30}, "still_unhealthy", None, 1),
        (sick(3, **REQUESTED), SICK, {"live_tag": "v1.0.0", "live_since": NOW - 30, "previous_good_tag": "v0.9.0"},
         "still_unhealthy", None, 1),
        (sick(2, **{**REQUESTED, "live_tag": "v1.0.0", "rollback_plan": "already_rolled_back_to"}), SICK,
         {"live_tag": "v1.0.0", "live_since": NOW - 30, "previous_good_tag": "v0.9.0"}, None, None, 3),
        (sick(2, **{**REQUESTED, "live_tag": "v1.2.0"}), SICK,
         {"live_tag": "v1.2.0", "live_since": NOW - 30, "previous_good_tag": "v1.0.0"}, "still_unhealthy", "v1.2.0", 3),
        (sick(2), UNSURE, {}, None, None, 2),
        (sick(2), UNSURE, {"live_tag": "v1.2.0"}, None, None, 2),
        (sick(2), WELL, {}, "recovered", None, 0),
        (fresh(alerted_status="healthy"), WELL, {}, None, None, 0),
        (WatchdogState(), WELL, {}, None, None, 0),
        (fresh(), SLOW, {}, "degraded", None, 0),
        (degraded(), SLOW, {}, None, None, 0),
        (sick(2), SLOW, {}, "degraded", None, 0),
        (degraded(), WELL, {}, "recovered", None, 0),
        (degraded(), SICK, {}, "unhealthy", None, 1),
        (sick(40, **REQUESTED, last_alert_at=NOW - 3599), SICK, {}, None, None, 41),
        (sick(40, **REQUESTED, last_alert_at=NOW - 3600), SICK, {}, "still_unhealthy", None, 41),
        (sick(2, last_alert_at=None), SICK, {}, "still_unhealthy", "v1.1.0", 3),
    ],
    ids=[
        "the first unhealthy tick alerts once and counts one",
        "an unhealthy first tick ever alerts",
        "a second unhealthy tick sends no second message",
        "the third unhealthy tick in the bake window requests a rollback",
        "one unhealthy check is enough when the config says so",
        "a fourth unhealthy tick never asks twice",
        "a long unhealthy spell never asks twice",
        "exactly at the end of the bake window still rolls back",
        "outside the bake window alerts only",
        "outside the bake window the count reaching the threshold sends nothing new",
        "the bake window closing while counting is announced once",
        "automatic rollback off alerts only",
        "no previous good release alerts only",
        "a previous release equal to the live one is no previous release",
        "nothing live alerts only",
        "an unknown go-live time alerts only",
        "a live tag change restarts the count and says the new release is unhealthy too",
        "the release the watchdog rolled back to is not rolled back further",
        "the release rolled back to reaching the threshold is still not rolled back",
        "a later release is asked about even though an earlier one was",
        "inconclusive keeps the counter",
        "inconclusive ignores a live tag change until it can judge",
        "recovery after an unhealthy alert is announced and resets the count",
        "healthy again and again says nothing",
        "healthy on the first tick ever says nothing",
        "degraded alerts once",
        "still degraded sends nothing",
        "degraded after unhealthy says so and stops the count",
        "recovery from degraded is announced",
        "unhealthy after degraded alerts as unhealthy",
        "a reminder one second early is silent",
        "a reminder exactly at the reminder period",
        "an unhealthy spell never alerted is alerted now",
    ],
)
def test_decide_watchdog(
    state: WatchdogState, diagnosis: Diagnosis, overrides: dict[str, Any], alert_kind: str | None,
    rollback_from: str | None, counter: int,
) -> None:
    decision = tick(state, diagnosis, **overrides)
    assert (decision.alert.kind if decision.alert else None) == alert_kind
    assert decision.rollback_from == rollback_from
    assert decision.new_state.consecutive_unhealthy == counter


@pytest.mark.parametrize(
    "state, diagnosis, overrides, phrases",
    [
        (fresh(), SICK, {}, [f"v1.1.0 unhealthy since {clock(NOW)}", "API detailed health failed: db: connection refused",
                             "after 3 checks in a row (1 so far), a rollback from v1.1.0 to v1.0.0 will be requested"]),
        (sick(2), SICK, {}, ["still unhealthy since", "(2 min)",
                             "Requesting a rollback from v1.1.0 to v1.0.0: 3 unhealthy checks in a row",
                             "live for 10 min, inside the 30 min bake window"]),
        (fresh(), SICK, {"now": LIVE_SINCE + 7800, "config": ONE_STRIKE},
         ["has been live 2 h 10 min", "outside the 30 min bake window: not rolling back; "
          "a database outage is not fixed by a rollback"]),
        (fresh(), SICK, {"automatic_rollback": False}, ["Automatic rollback is off", "not rolling back"]),
        (fresh(), SICK, {"previous_good_tag": None}, ["No earlier good release to return to from v1.1.0"]),
        (fresh(live_tag=None), SICK, {"live_tag": None}, ["the live release unhealthy", "nothing to roll back"]),
        (fresh(), SICK, {"live_since": None}, ["When v1.1.0 went live is unknown"]),
        (sick(3, **REQUESTED), SICK, {"live_tag": "v1.0.0", "previous_good_tag": "v0.9.0"},
         ["still unhealthy now that v1.0.0 serves (was v1.1.0)", "Not rolling back again",
          "the cause is probably not the release"]),
        (sick(40, **REQUESTED, last_alert_at=NOW - 3600), SICK, {},
         ["still unhealthy", "A rollback from v1.1.0 was already requested and v1.1.0 still serves"]),
        (sick(2), SICK, {"now": LIVE_SINCE + 1801}, ["outside the 30 min bake window"]),
        (sick(2), WELL, {}, [f"v1.1.0 recovered at {clock(NOW)}", f"it had been unhealthy since {clock(NOW - 120)}"]),
        (fresh(), SLOW, {}, [f"v1.1.0 degraded since {clock(NOW)}", "CORS preflight not allowed", "alerting only"]),
        (sick(2), SLOW, {}, ["no longer failing its API health checks"]),
        (fresh(), Diagnosis(Verdict.UNHEALTHY, ()), {}, ["no detail given"]),
    ],
    ids=[
        "the first alert says what failed, since when, and the rollback to come",
        "the rollback request says why it is allowed",
        "outside the bake window the alert says why it does not roll back",
        "automatic rollback off is said",
        "no previous good release is said",
        "nothing live is said",
        "an unknown go-live time is said",
        "a release rolled back to that is unhealthy too is not rolled back further",
        "a reminder says a rollback was already asked for",
        "the bake window closing while counting is said",
        "recovery says when the trouble began",
        "degraded says what failed and that it does not roll back",
        "degraded after unhealthy says the API is back",
        "an unhealthy verdict without reasons still reads",
    ],
)
def test_alert_text(state: WatchdogState, diagnosis: Diagnosis, overrides: dict[str, Any], phrases: list[str]) -> None:
    decision = tick(state, diagnosis, **overrides)
    assert decision.alert is not None
    for phrase in phrases:
        assert phrase in decision.alert.text


def test_inconclusive_returns_the_state_unchanged() -> None:
    state = sick(2, **REQUESTED)
    assert tick(state, UNSURE, now=NOW + 99999) == WatchdogDecision(state, None, None)


def test_requesting_a_rollback_remembers_for_which_tag_and_to_which() -> None:
    state = tick(sick(2), SICK).new_state
    assert (state.rollback_requested_for, state.rollback_requested_to, state.rollback_plan) == ("v1.1.0", "v1.0.0", "requested")
    assert state.last_alert_at == NOW and state.alerted_status == "unhealthy"


def test_since_marks_the_start_of_the_status_not_the_last_tick() -> None:
    first = tick(fresh(), SICK, now=NOW).new_state
    second = tick(first, SICK, now=NOW + 60).new_state
    assert first.since == second.since == NOW
    assert second.last_alert_at == NOW  # no alert on the second tick
    assert tick(second, WELL, now=NOW + 120).new_state.since == NOW + 120


def test_a_quiet_tick_keeps_the_last_alert_time() -> None:
    state = sick(1)
    assert tick(state, SICK).new_state.last_alert_at == state.last_alert_at


def test_a_whole_unhealthy_spell_gives_few_messages_and_one_rollback_request() -> None:
    """A release that stays unhealthy for 100 minutes (its rollback refused), then recovers, stored as JSON between ticks."""
    stored: dict[str, Any] = {}
    alerts: list[str] = []
    rollbacks: list[str] = []
    for minute in range(101):
        diagnosis = SICK if minute < 100 else WELL
        decision = tick(WatchdogState.from_dict(stored), diagnosis, now=LIVE_SINCE + 60 + 60 * minute)
        stored = json.loads(json.dumps(decision.new_state.to_dict()))
        if decision.alert:
            alerts.append(f"{minute}:{decision.alert.kind}")
        if decision.rollback_from:
            rollbacks.append(decision.rollback_from)
    assert alerts == ["0:unhealthy", "2:still_unhealthy", "62:still_unhealthy", "100:recovered"]
    assert rollbacks == ["v1.1.0"]


def test_a_spell_that_straddles_inconclusive_ticks_counts_only_the_judged_ones() -> None:
    state = fresh()
    kinds = []
    rollback_at = None
    for minute, diagnosis in enumerate([SICK, UNSURE, SICK, UNSURE, UNSURE, SICK]):
        decision = tick(state, diagnosis, now=NOW + 60 * minute)
        state = decision.new_state
        kinds.append(decision.alert.kind if decision.alert else None)
        if decision.rollback_from:
            rollback_at = minute
    assert kinds == ["unhealthy", None, None, None, None, "still_unhealthy"]
    assert rollback_at == 5 and state.consecutive_unhealthy == 3
