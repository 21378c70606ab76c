"""The fast watch's decision, as a table: when one watchdog invocation looks again, at the edges."""
import pytest

from shared.core.fast_watch import LookAgain, Stop, next_look

BASE = {"now": 1000.0, "started": 1000.0, "live_since": 990.0, "acted": False, "interval": 5.0,
        "tick_seconds": 60.0, "probe_seconds": 5.0, "bake_window": 1800.0, "until": 1500.0}


@pytest.mark.parametrize("changes, expected", [
    ({}, LookAgain(5.0)),
    ({"interval": 0.0}, Stop("the fast watch is off")),
    ({"acted": True}, Stop("this look acted or stood down")),
    ({"live_since": None}, Stop("nothing is live")),
    ({"live_since": 1000.0 - 1800.0}, LookAgain(5.0)),
    ({"live_since": 1000.0 - 1800.1}, Stop("the live release is past its bake window: the per-minute tick watches it")),
    ({"now": 1045.0}, LookAgain(5.0)),
    ({"now": 1045.1}, Stop("the next tick is near: its invocation goes on")),
    ({"until": 1010.0}, LookAgain(5.0)),
    ({"until": 1009.9}, Stop("this invocation's deadline is near")),
], ids=["inside the bake window, far from the next tick: look again after the interval",
        "an interval of 0 turns it off",
        "a look that asked for a rollback or stood down ends the invocation",
        "nothing live: nothing to watch fast",
        "exactly at the end of the bake window is inside it",
        "past the bake window the per-minute tick stays",
        "a next look ending exactly an interval before the next tick is made",
        "a next look ending later than that is left to the next tick",
        "a next look ending exactly at the invocation's deadline is made",
        "a next look past the invocation's deadline is not"])
def test_whether_a_watchdog_invocation_looks_again(changes, expected):
    assert next_look(**{**BASE, **changes}) == expected


def test_with_the_production_defaults_one_tick_looks_eleven_times_and_leaves_the_next_tick_a_clear_start():
    now, looks = 0.0, 1
    while isinstance(step := next_look(**{**BASE, "now": now, "started": 0.0, "live_since": 0.0}), LookAgain):
        now += step.pause
        looks += 1
    # the last look begins at 50 s and ends by 55 s, an interval before the next tick; the longest gap between two
    # looks, across ticks, is 10 s: three failed looks in a row span at most 15 s
    assert looks == 11 and now == 50.0
