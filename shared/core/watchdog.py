"""One watchdog tick, decided (pure): from the remembered `WatchdogState` and this tick's `Diagnosis`
(`shared.health.diagnose`), the next state, at most one Slack alert, and whether to ask for a rollback. It never
acts; it returns what to do, so every rule below is a table test. `now` is always an argument.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.config import WatchdogConfig
from shared.core import watch_wording
from shared.errors import InputError
from shared.health import (
    DEGRADED_STATUS,
    HEALTHY_STATUS,
    STATUSES,
    UNHEALTHY_STATUS,
    UNKNOWN_STATUS,
    AlertKind,
    Diagnosis,
    Verdict,
)

PLAN_PENDING = "pending"  # counting unhealthy checks; will ask once the count is reached
PLAN_REQUESTED = "requested"  # asked (this tick or earlier) for the live tag
PLAN_ALREADY_ROLLED_BACK_TO = "already_rolled_back_to"
PLAN_NOTHING_LIVE = "nothing_live"
PLAN_AUTOMATIC_OFF = "automatic_off"
PLAN_NO_PREVIOUS = "no_previous"
PLAN_LIVE_SINCE_UNKNOWN = "live_since_unknown"
PLAN_OUTSIDE_WINDOW = "outside_window"
PLANS = (PLAN_PENDING, PLAN_REQUESTED, PLAN_ALREADY_ROLLED_BACK_TO, PLAN_NOTHING_LIVE, PLAN_AUTOMATIC_OFF,
         PLAN_NO_PREVIOUS, PLAN_LIVE_SINCE_UNKNOWN, PLAN_OUTSIDE_WINDOW)


@dataclass(frozen=True)
class WatchdogState:
    """What the watchdog remembers between ticks (stored as JSON; `from_dict({})` is the first tick's state).

    - `consecutive_unhealthy`: UNHEALTHY verdicts in a row for `live_tag` (reset by HEALTHY, DEGRADED, or a new
      live tag: failures of the release before say nothing about this one).
    - `status`: healthy | degraded | unhealthy | unknown (never judged yet); `since`: when it began.
    - `last_alert_at`, `alerted_status`: when the last alert went out and which status it told people about, so
      alerts go out on changes and reminders only, and "recovered" only follows an alert about trouble.
    - `rollback_requested_for`: the live tag the watchdog already asked to roll back from (never asked twice);
      `rollback_requested_to`: where it expected that rollback to land, so if the release rolled back to is
      unhealthy too, the watchdog does not walk further back through history (the cause is then not the release).
    - `live_tag`: the release the counter is about; `rollback_plan`: the last announced rollback plan (PLANS).
    """

    consecutive_unhealthy: int = 0
    status: str = UNKNOWN_STATUS
    since: float | None = None
    last_alert_at: float | None = None
    alerted_status: str | None = None
    rollback_requested_for: str | None = None
    rollback_requested_to: str | None = None
    live_tag: str | None = None
    rollback_plan: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WatchdogState:
        """Reads a stored state; missing keys take their defaults (older records), wrong types raise InputError."""
        if not isinstance(data, Mapping):
            raise InputError(f"watchdog state: expected an object, found {type(data).__name__}")
        default = cls()
        counter = data.get("consecutive_unhealthy", 0)
        if isinstance(counter, bool) or not isinstance(counter, int) or counter < 0:
            raise InputError(f"watchdog state consecutive_unhealthy: expected a count >= 0, found {counter!r}")
        status = data.get("status", default.status)
        if status not in STATUSES:
            raise InputError(f"watchdog state status: expected one of {', '.join(STATUSES)}, found {status!r}")
        alerted = data.get("alerted_status")
        if alerted is not None and alerted not in STATUSES:
            raise InputError(
                f"watchdog state alerted_status: expected one of {', '.join(STATUSES)} or null, found {alerted!r}"
            )
        plan = data.get("rollback_plan")
        if plan is not None and plan not in PLANS:
            raise InputError(f"watchdog state rollback_plan: expected one of {', '.join(PLANS)} or null, found {plan!r}")
        return cls(
            consecutive_unhealthy=counter,
            status=status,
            since=_optional_time(data, "since"),
            last_alert_at=_optional_time(data, "last_alert_at"),
            alerted_status=alerted,
            rollback_requested_for=_optional_text(data, "rollback_requested_for"),
            rollback_requested_to=_optional_text(data, "rollback_requested_to"),
            live_tag=_optional_text(data, "live_tag"),
            rollback_plan=plan,
        )


def _optional_time(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"watchdog state {key}: expected a timestamp or null, found {value!r}")
    return float(value)


def _optional_text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise InputError(f"watchdog state {key}: expected a tag or null, found {value!r}")
    return value


@dataclass(frozen=True)
class Alert:
    """One Slack message: what failed and since when, and whether a rollback is being requested or why not."""

    kind: AlertKind
    text: str


@dataclass(frozen=True)
class WatchdogDecision:
    """The outcome of one tick: the state to store, at most one alert, and the tag to ask a rollback from."""

    new_state: WatchdogState
    alert: Alert | None
    rollback_from: str | None


@dataclass(frozen=True)
class _Plan:
    """What the watchdog says about rolling back this tick; `request` is true only on the tick that asks."""

    key: str
    sentence: str
    request: bool = False


def decide_watchdog(
    state: WatchdogState,
    diagnosis: Diagnosis,
    *,
    live_tag: str | None,
    live_since: float | None,
    previous_good_tag: str | None,
    now: float,
    config: WatchdogConfig,
    automatic_rollback: bool,
) -> WatchdogDecision:
    """One watchdog tick: the next state, the alert to post (if any), the tag to ask a rollback from (if any).

    Alerts go out on changes, never one per tick:
    - became unhealthy ("unhealthy"); while still unhealthy ("still_unhealthy"): when a rollback is requested,
      when the rollback plan changes (e.g. the bake window closed while counting), when another release took
      over and is unhealthy too, and as a reminder once `config.reminder_seconds` have passed since the last alert
      (at exactly that age, it reminds);
    - became degraded ("degraded"), once per degraded spell;
    - healthy again after an alert about unhealthy or degraded ("recovered"), once.
    INCONCLUSIVE changes nothing: the state is returned as it was (the counter neither resets nor grows), since
    "cannot tell" is not evidence either way.

    A rollback is requested (from the live tag, to the previous good release) only when all hold:
    `consecutive_unhealthy >= config.consecutive_failures`; the live release is inside its bake window
    (`now - live_since <= config.bake_window_seconds`, the edge included); a previous good release exists;
    `automatic_rollback` is on; the watchdog has not already asked for this live tag; and the live release is not
    the one the watchdog itself rolled back to (if that one is unhealthy too, the release is probably not the
    cause, and walking further back would not help). Outside the bake window it alerts only, and says why: an
    old release that turns unhealthy is likelier a database or dependency outage, which a rollback does not fix.
    A new live tag restarts the count, so one release's failures never roll back the next.
    """
    if diagnosis.verdict is Verdict.INCONCLUSIVE:
        return WatchdogDecision(state, None, None)

    tag_changed = state.live_tag != live_tag
    status = diagnosis.verdict.value
    since = now if status != state.status or state.since is None else state.since
    base = dataclasses.replace(state, status=status, since=since, live_tag=live_tag)

    if diagnosis.verdict is Verdict.HEALTHY:
        new_state = dataclasses.replace(base, consecutive_unhealthy=0, rollback_plan=None)
        if state.alerted_status in (UNHEALTHY_STATUS, DEGRADED_STATUS):
            was = state.status if state.status in (UNHEALTHY_STATUS, DEGRADED_STATUS) else state.alerted_status
            text = watch_wording.recovered(live_tag, now, was, state.since)
            return _alerting(new_state, Alert("recovered", text), now, HEALTHY_STATUS, None)
        return WatchdogDecision(new_state, None, None)

    if diagnosis.verdict is Verdict.DEGRADED:
        new_state = dataclasses.replace(base, consecutive_unhealthy=0, rollback_plan=None)
        if state.status != DEGRADED_STATUS:
            text = watch_wording.degraded(live_tag, since, state.status == UNHEALTHY_STATUS, diagnosis.reasons)
            return _alerting(new_state, Alert("degraded", text), now, DEGRADED_STATUS, None)
        return WatchdogDecision(new_state, None, None)

    # UNHEALTHY
    counter = (0 if tag_changed else state.consecutive_unhealthy) + 1
    plan = _rollback_plan(
        state, counter, live_tag=live_tag, live_since=live_since, previous_good_tag=previous_good_tag, now=now,
        config=config, automatic_rollback=automatic_rollback,
    )
    requesting = plan.request
    new_state = dataclasses.replace(
        base,
        consecutive_unhealthy=counter,
        rollback_plan=plan.key,
        rollback_requested_for=live_tag if requesting else state.rollback_requested_for,
        rollback_requested_to=previous_good_tag if requesting else state.rollback_requested_to,
    )
    rollback_from = live_tag if requesting else None
    reasons = diagnosis.reasons
    if state.status != UNHEALTHY_STATUS:
        text = watch_wording.unhealthy(live_tag, since, reasons, plan.sentence)
        return _alerting(new_state, Alert("unhealthy", text), now, UNHEALTHY_STATUS, rollback_from)
    if tag_changed and state.live_tag is not None:
        text = watch_wording.unhealthy_too(live_tag, state.live_tag, since, now, reasons, plan.sentence)
        return _alerting(new_state, Alert("still_unhealthy", text), now, UNHEALTHY_STATUS, rollback_from)
    plan_changed = state.rollback_plan is not None and state.rollback_plan != plan.key
    reminder_due = state.last_alert_at is None or now - state.last_alert_at >= config.reminder_seconds
    if requesting or plan_changed or reminder_due:
        text = watch_wording.still_unhealthy(live_tag, since, now, reasons, plan.sentence)
        return _alerting(new_state, Alert("still_unhealthy", text), now, UNHEALTHY_STATUS, rollback_from)
    return WatchdogDecision(new_state, None, None)


def _alerting(
    new_state: WatchdogState, alert: Alert, now: float, alerted_status: str, rollback_from: str | None
) -> WatchdogDecision:
    state = dataclasses.replace(new_state, last_alert_at=now, alerted_status=alerted_status)
    return WatchdogDecision(state, alert, rollback_from)


def _rollback_plan(
    state: WatchdogState,
    counter: int,
    *,
    live_tag: str | None,
    live_since: float | None,
    previous_good_tag: str | None,
    now: float,
    config: WatchdogConfig,
    automatic_rollback: bool,
) -> _Plan:
    """Whether to ask for a rollback now, and the sentence that tells people so or why not.

    The checks that cannot change while this release stays live come first, so the first alert already says
    "not rolling back" when that is final, instead of promising a rollback that will never come.
    """
    if live_tag is None:
        return _Plan(PLAN_NOTHING_LIVE, watch_wording.nothing_live())
    if state.rollback_requested_for == live_tag:
        return _Plan(PLAN_REQUESTED, watch_wording.rollback_already_requested(live_tag))
    if state.rollback_requested_to is not None and state.rollback_requested_to == live_tag:
        return _Plan(PLAN_ALREADY_ROLLED_BACK_TO, watch_wording.not_rolling_back_again(live_tag))
    if not automatic_rollback:
        return _Plan(PLAN_AUTOMATIC_OFF, watch_wording.automatic_rollback_off())
    if previous_good_tag is None or previous_good_tag == live_tag:
        return _Plan(PLAN_NO_PREVIOUS, watch_wording.no_earlier_release(live_tag))
    window = config.bake_window_seconds
    if live_since is None:
        return _Plan(PLAN_LIVE_SINCE_UNKNOWN, watch_wording.live_since_unknown(live_tag, window))
    age = now - live_since
    if age > window:
        return _Plan(PLAN_OUTSIDE_WINDOW, watch_wording.outside_bake_window(live_tag, age, window))
    if counter < config.consecutive_failures:
        return _Plan(PLAN_PENDING, watch_wording.rollback_pending(live_tag, previous_good_tag, config.consecutive_failures,
                                                            counter))
    return _Plan(PLAN_REQUESTED, watch_wording.requesting_rollback(live_tag, previous_good_tag, counter, age, window),
                 request=True)
