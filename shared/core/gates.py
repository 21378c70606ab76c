"""Whether a tag may start now, or is held (pure): freeze windows and a pause of deploys after a rollback.

- **Freeze windows** recur weekly in a time zone of their own, written `"Fri 16:00 - Mon 08:00 Europe/Berlin:
  weekend"` (days Mon..Sun, 24-hour times; the window may wrap past Sunday; the reason after the colon). A tag pushed
  inside one is held, never refused: it starts by itself at the first scheduler tick after the window ends, or at
  once when a person overrides (`python main.py deploys release --by NAME --reason WHY`).
- **A pause after a rollback** (`gates.pause_after_rollback`): a rollback pauses automatic deploys until a person
  resumes them (`python main.py deploys resume --by NAME`), so the next push never silently redeploys the bad code.
- **One held tag**, the newest: a newer tag pushed while one is held takes its place (the older is told superseded),
  as the deploy queue does.

`now` is passed in (epoch seconds); time zones come from the standard library's zoneinfo. Local times are compared
as the clock on the wall shows them, so a window holds from 16:00 to 08:00 local on both sides of a DST change.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_WINDOW = re.compile(
    r"\A(?P<d1>Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?P<t1>[0-2][0-9]:[0-5][0-9]) - "
    r"(?P<d2>Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?P<t2>[0-2][0-9]:[0-5][0-9]) (?P<tz>[A-Za-z0-9_+/-]{1,64})"
    r"(?:: (?P<reason>.{1,200}))?\Z")
WEEK = 7 * 24 * 60

GO, HOLD = "go", "hold"


@dataclass(frozen=True)
class FreezeWindow:
    start: int  # minute of the week, Monday 00:00 = 0, local to `zone`
    end: int
    zone: str
    reason: str
    text: str  # as written in the config

    def holds(self, now: float) -> bool:
        local = datetime.fromtimestamp(now, timezone.utc).astimezone(ZoneInfo(self.zone))
        minute = local.weekday() * 24 * 60 + local.hour * 60 + local.minute
        if self.start <= self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end  # wraps past Sunday midnight

    @property
    def until(self) -> str:
        """When it ends, as the config says it: `Mon 08:00 Europe/Berlin`."""
        day, rest = divmod(self.end, 24 * 60)
        return f"{DAYS[day]} {rest // 60:02d}:{rest % 60:02d} {self.zone}"


def parse_window(text: str) -> FreezeWindow:
    """The window `text` describes; ValueError saying what is wrong (the config check names the key)."""
    match = _WINDOW.match(text)
    if not match:
        raise ValueError(f"expected 'DAY HH:MM - DAY HH:MM TIME/ZONE[: reason]' (days Mon..Sun), found {text[:80]!r}")
    try:
        ZoneInfo(match["tz"])
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {match['tz']!r} (an IANA name such as Europe/Berlin)") from error
    start, end = _minute(match["d1"], match["t1"]), _minute(match["d2"], match["t2"])
    if start == end:
        raise ValueError(f"a window from {match['d1']} {match['t1']} to the same time holds never or always: {text[:80]!r}")
    return FreezeWindow(start, end, match["tz"], match["reason"] or "freeze window", text)


def freeze_windows(texts: tuple[str, ...]) -> tuple[FreezeWindow, ...]:
    """`gates.freeze` read (the config check has refused any that does not parse)."""
    return tuple(parse_window(text) for text in texts)


def _minute(day: str, time_text: str) -> int:
    hours, minutes = int(time_text[:2]), int(time_text[3:])
    if hours > 23:
        raise ValueError(f"hour {hours} is no hour of a day (00..23)")
    return DAYS.index(day) * 24 * 60 + hours * 60 + minutes


@dataclass(frozen=True)
class Paused:
    since: float
    by: str
    reason: str


@dataclass(frozen=True)
class Held:
    tag: str
    commit: str
    pushed_by: str
    delivery: str
    at: float


@dataclass(frozen=True)
class GateState:
    """`gates.json`: whether deploys are paused, and the tag held (if any)."""

    paused: Paused | None = None
    held: Held | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"paused": None if self.paused is None else vars(self.paused).copy(),
                "held": None if self.held is None else vars(self.held).copy()}

    @classmethod
    def from_dict(cls, data: Any) -> GateState:
        """The record read into its type; ValueError naming what is wrong."""
        if not isinstance(data, dict) or set(data) - {"paused", "held"}:
            raise ValueError("expected an object with 'paused' and 'held'")
        return cls(paused=_read(Paused, data.get("paused"), "paused"), held=_read(Held, data.get("held"), "held"))


def _read(kind: Any, value: Any, key: str) -> Any:
    if value is None:
        return None
    fields = kind.__dataclass_fields__
    if not isinstance(value, dict) or set(value) != set(fields):
        raise ValueError(f"'{key}': expected null or an object with {', '.join(fields)}")
    for name, spec in fields.items():
        wanted = float if spec.type == "float" else str
        item = value[name]
        if wanted is float and (isinstance(item, bool) or not isinstance(item, (int, float))):
            raise ValueError(f"'{key}.{name}': expected a number, found {type(item).__name__}")
        if wanted is str and not isinstance(item, str):
            raise ValueError(f"'{key}.{name}': expected a string, found {type(item).__name__}")
    return kind(**value)


@dataclass(frozen=True)
class Gate:
    action: str  # GO or HOLD
    reason: str = ""  # why it is held, in our words (the window's reason quoted)
    until: str = ""  # what ends it: a time, or the command that resumes


def decide_gate(now: float, windows: tuple[FreezeWindow, ...], paused: Paused | None, *, override: bool = False) -> Gate:
    """A tag may go unless deploys are paused or a window holds now; a person's override lets it go through both."""
    if override:
        return Gate(GO)
    if paused is not None:
        return Gate(HOLD, f"deploys are paused since {paused.reason}", "`python main.py deploys resume`")
    for window in windows:
        if window.holds(now):
            return Gate(HOLD, f"freeze window: {window.reason}", window.until)
    return Gate(GO)
