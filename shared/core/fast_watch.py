"""The fast watch (pure): whether one watchdog invocation looks again, and after how long.

Cloud Scheduler ticks once a minute, and three failed checks a minute apart caught a release that broke after going
live in about three minutes. While the live release is inside its bake window, the tick's invocation instead keeps
looking every `watchdog.fast_probe_seconds` until just before the next tick, so with the defaults (a look every
5 s, 3 failed checks to act) a release failing its probes is asked to roll back about 10 s after the first failed
probe. Outside the bake window the per-minute tick stays. Each look is judged and saved exactly as a tick is (a
compare-and-swap on the watchdog's memory), so two invocations that overlap never both act: the one whose save
loses stands down. `now` and every moment are passed in.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LookAgain:
    pause: float


@dataclass(frozen=True)
class Stop:
    why: str


def next_look(*, now: float, started: float, live_since: float | None, acted: bool, interval: float,
              tick_seconds: float, probe_seconds: float, bake_window: float, until: float) -> LookAgain | Stop:
    """After a look at `now`, in an invocation that began at `started`:

    - stop when the fast watch is off (`interval` 0), when this look asked for a rollback or stood down (`acted`),
      when nothing is live or the live release is past its bake window (the edge is inside, as the watchdog's);
    - stop when the next look (`interval` from now, lasting up to `probe_seconds`) would not end an interval before
      the next tick (`started + tick_seconds`): that tick's invocation goes on, and two never look at once by design;
    - stop when it would not end before this invocation's own deadline (`until`);
    - otherwise look again after `interval`.
    """
    if interval <= 0:
        return Stop("the fast watch is off")
    if acted:
        return Stop("this look acted or stood down")
    if live_since is None:
        return Stop("nothing is live")
    if now - live_since > bake_window:
        return Stop("the live release is past its bake window: the per-minute tick watches it")
    ends = now + interval + probe_seconds
    if ends > started + tick_seconds - interval:
        return Stop("the next tick is near: its invocation goes on")
    if ends > until:
        return Stop("this invocation's deadline is near")
    return LookAgain(interval)
