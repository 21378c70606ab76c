"""Freeze windows and the pause after a rollback (shared/core/gates.py), at their edges."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from shared.core.gates import GO, HOLD, GateState, Held, Paused, decide_gate, parse_window


def at(text: str, zone: str = "Europe/Berlin") -> float:
    """Epoch seconds of a wall-clock time in `zone`, e.g. '2026-12-04 15:59'."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=ZoneInfo(zone)).timestamp()


WEEKEND = parse_window("Fri 16:00 - Mon 08:00 Europe/Berlin: weekend")

HOLDS = [
    # (wall clock in Berlin, held?, why)
    ("2026-12-04 15:59", False, "a minute before the window opens (a Friday)"),
    ("2026-12-04 16:00", True, "the minute it opens"),
    ("2026-12-06 23:59", True, "Sunday night: the window wraps past the week's end"),
    ("2026-12-07 00:00", True, "Monday midnight, still inside"),
    ("2026-12-07 07:59", True, "the last minute inside"),
    ("2026-12-07 08:00", False, "the minute it ends"),
    ("2026-12-09 12:00", False, "mid-week"),
    ("2027-03-26 17:00", True, "the Friday before the spring DST change"),
    ("2027-03-29 07:30", True, "the Monday after it: wall-clock times, not a fixed number of hours"),
    ("2027-03-29 08:00", False, "and it ends at 08:00 on the wall then too"),
]


@pytest.mark.parametrize("wall, held, why", HOLDS, ids=[row[2] for row in HOLDS])
def test_a_weekly_window_holds_by_the_wall_clock_of_its_zone(wall, held, why):
    assert WEEKEND.holds(at(wall)) is held


def test_the_same_instant_is_judged_in_the_windows_own_zone():
    tokyo = parse_window("Mon 09:00 - Mon 10:00 Asia/Tokyo: standup")
    assert tokyo.holds(at("2026-12-07 09:30", "Asia/Tokyo")) and not tokyo.holds(at("2026-12-07 09:30"))


REFUSED = [
    ("Fri 16:00 - Mon 08:00", "expected 'DAY HH:MM", "no time zone"),
    ("Fri 16:00 - Mon 08:00 Mars/Olympus: dust", "unknown time zone", "a zone IANA does not know"),
    ("Fri 24:00 - Mon 08:00 UTC", "no hour of a day", "hour 24"),
    ("Fri 16:60 - Mon 08:00 UTC", "expected 'DAY HH:MM", "minute 60"),
    ("Friday 16:00 - Mon 08:00 UTC", "expected 'DAY HH:MM", "a day written out"),
    ("Fri 16:00 - Fri 16:00 UTC", "never or always", "a window of no length"),
    ("", "expected 'DAY HH:MM", "empty"),
]


@pytest.mark.parametrize("text, says, why", REFUSED, ids=[row[2] for row in REFUSED])
def test_a_window_that_means_nothing_clear_is_refused_saying_why(text, says, why):
    with pytest.raises(ValueError) as refused:
        parse_window(text)
    assert says in str(refused.value)


def test_a_window_says_when_it_ends_as_the_config_does():
    assert (WEEKEND.reason, WEEKEND.until) == ("weekend", "Mon 08:00 Europe/Berlin")


PAUSED = Paused(since=1.0, by="the rollback of v1.4.0", reason="the rollback of v1.4.0 to v1.3.0 (5xx)")
INSIDE, OUTSIDE = at("2026-12-05 12:00"), at("2026-12-09 12:00")
GATES = [
    (OUTSIDE, None, False, GO, "nothing holds mid-week"),
    (INSIDE, None, False, HOLD, "a freeze holds"),
    (OUTSIDE, PAUSED, False, HOLD, "a pause holds outside any window"),
    (INSIDE, PAUSED, True, GO, "an override goes through a pause and a freeze"),
]


@pytest.mark.parametrize("now, paused, override, action, why", GATES, ids=[row[4] for row in GATES])
def test_what_lets_a_tag_start(now, paused, override, action, why):
    assert decide_gate(now, (WEEKEND,), paused, override=override).action == action


def test_a_pause_names_its_cause_and_the_command_that_ends_it():
    gate = decide_gate(OUTSIDE, (), PAUSED)
    assert "since the rollback of v1.4.0" in gate.reason and "deploys resume" in gate.until


def test_the_gates_record_reads_back_what_was_written_and_refuses_another_shape():
    state = GateState(PAUSED, Held("v1.5.0", "c" * 40, "alice", "d1", 5.0))
    assert GateState.from_dict(state.to_dict()) == state
    for broken in ([], {"paused": "yes"}, {"held": {"tag": 5}}, {"paused": None, "extra": 1},
                   {"held": {**vars(state.held), "at": "soon"}}):
        with pytest.raises(ValueError):
            GateState.from_dict(broken)
