"""What the watchdog says (pure): its health alerts, sent only on changes, and the sentence that ends an unhealthy
alert saying whether a rollback is asked for and why. Outside text (the app's answers, tags) is escaped and cut
here, as everywhere in `shared.core.wording`, whose duration formatter it uses."""
from __future__ import annotations

from collections.abc import Sequence

from shared.core.wording import clock_time, duration
from shared.text import outside


# -- the watchdog's alerts ---------------------------------------------------------------------------------------------
def _subject(tag: str | None) -> str:
    return outside(tag, 120) if tag else "the live release"


def _failures(reasons: Sequence[str]) -> str:
    """The diagnosis' reasons, which quote what the app answered (its health body, its asset names): outside text."""
    return "; ".join(outside(r, 300) for r in reasons[:8]) if reasons else "no detail given"


def unhealthy(tag: str | None, since: float, reasons: Sequence[str], plan: str) -> str:
    """The live release (`tag`, None when nothing is recorded live) became unhealthy at `since`; `plan` is one of
    the rollback sentences below."""
    return f":red_circle: {_subject(tag)} unhealthy since {clock_time(since)}: {_failures(reasons)}. {plan}"


def still_unhealthy(tag: str | None, since: float, now: float, reasons: Sequence[str], plan: str) -> str:
    """Unhealthy since `since`, said again at `now`: a rollback asked for, a plan changed, or a reminder."""
    return (f":red_circle: {_subject(tag)} still unhealthy since {clock_time(since)} ({duration(now - since)}): "
            f"{_failures(reasons)}. {plan}")


def unhealthy_too(tag: str | None, was: str, since: float, now: float, reasons: Sequence[str], plan: str) -> str:
    """Another release (`tag`) took over from `was` during an unhealthy spell, and is unhealthy too."""
    return (f":red_circle: still unhealthy now that {_subject(tag)} serves (was {outside(was, 120)}), since {clock_time(since)} "
            f"({duration(now - since)}): {_failures(reasons)}. {plan}")


def degraded(tag: str | None, since: float, after_unhealthy: bool, reasons: Sequence[str]) -> str:
    """Degraded since `since`; `after_unhealthy` when it was unhealthy until now (its API checks pass again)."""
    after = " (no longer failing its API health checks)" if after_unhealthy else ""
    return (f":large_yellow_circle: {_subject(tag)} degraded since {clock_time(since)}{after}: {_failures(reasons)}. "
            "Degraded is not a reason to roll back: alerting only.")


def recovered(tag: str | None, now: float, was: str, since: float | None) -> str:
    """Healthy again at `now` after an alert; `was` the status it had (unhealthy, degraded), since `since`."""
    began = f" since {clock_time(since)}" if since is not None else ""
    return f":white_check_mark: {_subject(tag)} recovered at {clock_time(now)}: healthy again (it had been {outside(was, 120)}{began})."


def about_release(alert: str, tag: str) -> str:
    """An alert, naming the release whose thread it is about."""
    return f"{alert} (release {outside(tag, 120)})"


# -- whether a rollback is asked for, the sentence that ends an unhealthy alert ----------------------------------------
def nothing_live() -> str:
    return "No release is recorded as live: nothing to roll back."


def rollback_already_requested(tag: str) -> str:
    return (f"A rollback from {outside(tag, 120)} was already requested and {outside(tag, 120)} still serves: "
            "see the rollback message, or roll back by hand.")


def not_rolling_back_again(tag: str) -> str:
    """`tag` is the release the watchdog itself rolled back to."""
    return (f"Not rolling back again: {outside(tag, 120)} is the release the watchdog rolled back to, and it is unhealthy "
            "too, so the cause is probably not the release (database, Redis, a dependency).")


def automatic_rollback_off() -> str:
    return ("Automatic rollback is off (rollback.automatic = false): not rolling back; "
            'publish {"to": "previous"} on the rollback topic to roll back by hand.')


def no_earlier_release(tag: str) -> str:
    return f"No earlier good release to return to from {outside(tag, 120)}: not rolling back."


def live_since_unknown(tag: str, window: float) -> str:
    """When `tag` went live is not recorded, so the bake window (`window` seconds) cannot be judged."""
    return (f"When {outside(tag, 120)} went live is unknown, so the {duration(window)} bake window cannot be judged: "
            "not rolling back.")


def outside_bake_window(tag: str, age: float, window: float) -> str:
    """`tag` has been live `age` seconds, longer than the bake window of `window` seconds."""
    return (f"{outside(tag, 120)} has been live {duration(age)}, outside the {duration(window)} bake window: not rolling back; "
            "a database outage is not fixed by a rollback. Roll back by hand if the release is to blame.")


def rollback_pending(tag: str, previous: str, needed: int, counted: int) -> str:
    """`counted` unhealthy checks in a row so far, of the `needed` that ask for a rollback to `previous`."""
    return (f"If it is still unhealthy after {needed} checks in a row ({counted} so far), "
            f"a rollback from {outside(tag, 120)} to {outside(previous, 120)} will be requested.")


def requesting_rollback(tag: str, previous: str, counted: int, age: float, window: float) -> str:
    return (f"Requesting a rollback from {outside(tag, 120)} to {outside(previous, 120)}: {counted} unhealthy checks in a row, "
            f"{outside(tag, 120)} live for {duration(age)}, inside the {duration(window)} bake window.")
