"""What the release report shows, from the records alone (pure): `python main.py report` renders it as HTML.

- one row per release, oldest first: its states as phases (building until migrating, ...), each recorded step with
  its duration (a step not finished has none), the canary's steps apart (a step named `canary...` in the record's
  `steps`), how long the release took, and whether it serves now;
- the rollbacks: which release was rolled back, when, why, and what served after it (from the pointer's timeline);
- the current unit: the live and previous tags and the live release's revisions and image;
- the four DORA figures now and as they stood at points before (`shared.dora.dora_series`).

Every string that comes from a record is cut here (`TEXT_LIMIT`, `TAG_LIMIT`); the renderer escapes it. `now` and
the pointer's fields are arguments: nothing here reads a clock or a store.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from shared.dora import Dora, DoraPoint, dora, dora_series
from shared.release import ROLLED_BACK, Release
from shared.text import cut

TAG_LIMIT = 80
TEXT_LIMIT = 200
CANARY_PREFIX = "canary"
STEP = "step"
CANARY = "canary"


@dataclass(frozen=True)
class StepBar:
    name: str
    kind: str  # STEP or CANARY
    started: float | None
    finished: float | None

    @property
    def seconds(self) -> float | None:
        """How long it took; None while it runs (or when the record lost an edge)."""
        if self.started is None or self.finished is None:
            return None
        return max(0.0, self.finished - self.started)


@dataclass(frozen=True)
class Phase:
    """A state the release was in, from when it entered it until it left (None: it is still there, or it ended)."""
    state: str
    began: float
    ended: float | None

    @property
    def seconds(self) -> float | None:
        return None if self.ended is None else max(0.0, self.ended - self.began)


@dataclass(frozen=True)
class ReleaseRow:
    tag: str
    attempt: int
    state: str
    commit: str
    pushed_by: str
    error: str
    began: float
    last_change: float
    phases: tuple[Phase, ...]
    steps: tuple[StepBar, ...]
    serving: bool

    @property
    def seconds(self) -> float:
        """From the push to its last recorded transition."""
        return max(0.0, self.last_change - self.began)

    @property
    def canary_steps(self) -> tuple[StepBar, ...]:
        return tuple(step for step in self.steps if step.kind == CANARY)


@dataclass(frozen=True)
class RollbackMark:
    tag: str  # the release rolled back
    at: float
    to: str | None  # what served after it, by the pointer's timeline (None: not recorded)
    reason: str


@dataclass(frozen=True)
class CurrentUnit:
    live: str | None
    previous: str | None
    since: float | None
    api: str
    worker: str
    image: str


@dataclass(frozen=True)
class ReportView:
    generated_at: float
    window_days: float
    rows: tuple[ReleaseRow, ...]
    rollbacks: tuple[RollbackMark, ...]
    unit: CurrentUnit
    figures: Dora
    series: tuple[DoraPoint, ...]
    left_out: int  # release records that could not be read (corrupt), told beside the page


def _text(value: str, limit: int = TEXT_LIMIT) -> str:
    return cut(str(value), limit)


def phases(release: Release) -> tuple[Phase, ...]:
    """The release's states in order, each ended by the next; the last has no end (it is where the release is)."""
    history = release.history
    return tuple(Phase(state, began, history[i + 1][1] if i + 1 < len(history) else None)
                 for i, (state, began) in enumerate(history))


def step_bars(release: Release) -> tuple[StepBar, ...]:
    """The recorded steps, in the order they started (a step with no start last, by name); canary steps marked."""
    bars = [StepBar(_text(name, TAG_LIMIT), CANARY if name.startswith(CANARY_PREFIX) else STEP,
                    edges.get("started"), edges.get("finished"))
            for name, edges in release.steps.items()]
    return tuple(sorted(bars, key=lambda b: (b.started is None, b.started or 0.0, b.name)))


def rollback_marks(releases: Sequence[Release], timeline: Sequence[tuple[str, float]]) -> tuple[RollbackMark, ...]:
    """Each rolled-back release, when and why, and what served after it: the entry of the pointer's timeline that
    followed the release's last entry before its rollback (None when the timeline does not say)."""
    marks = []
    for release in releases:
        rolled = release.at(ROLLED_BACK)
        if rolled is None:
            continue
        own = [i for i, (tag, since) in enumerate(timeline) if tag == release.tag and since <= rolled]
        after = timeline[own[-1] + 1][0] if own and own[-1] + 1 < len(timeline) else None
        reason = release.error.removeprefix("rolled back: ")
        marks.append(RollbackMark(_text(release.tag, TAG_LIMIT), rolled,
                                  _text(after, TAG_LIMIT) if after is not None else None, _text(reason)))
    return tuple(sorted(marks, key=lambda m: m.at))


def current_unit(releases: Sequence[Release], live: str | None, previous: str | None,
                 timeline: Sequence[tuple[str, float]]) -> CurrentUnit:
    """What the pointer says serves, with the live release's revisions and image from its record."""
    record = next((r for r in releases if r.tag == live), None) if live else None
    since = next((at for tag, at in reversed(timeline) if tag == live), None) if live else None
    return CurrentUnit(
        live=_text(live, TAG_LIMIT) if live else None,
        previous=_text(previous, TAG_LIMIT) if previous else None,
        since=since,
        api=_text(record.revisions.get("api", "")) if record else "",
        worker=_text(record.revisions.get("worker", "")) if record else "",
        image=_text(record.image) if record else "",
    )


def row(release: Release, live: str | None) -> ReleaseRow:
    history = release.history
    return ReleaseRow(
        tag=_text(release.tag, TAG_LIMIT), attempt=release.attempt, state=release.state,
        commit=_text(release.commit, 40), pushed_by=_text(release.pushed_by, TAG_LIMIT), error=_text(release.error),
        began=release.created_at, last_change=history[-1][1] if history else release.created_at,
        phases=phases(release), steps=step_bars(release), serving=live is not None and release.tag == live,
    )


def report_view(releases: Sequence[Release], *, live: str | None, previous: str | None,
                timeline: Sequence[tuple[str, float]], now: float, window_days: float = 30.0, points: int = 12,
                every_days: float = 7.0, left_out: int = 0) -> ReportView:
    """Everything the page shows. Releases are drawn oldest first; only those created in the window are rows (the
    DORA series looks back further, over what the records hold). ValueError for a window or series that is not
    positive."""
    if not window_days > 0:
        raise ValueError(f"report: expected a positive window in days, found {window_days}")
    ordered = sorted(releases, key=lambda r: r.created_at)
    shown = [r for r in ordered if r.created_at >= now - window_days * 86400.0]
    return ReportView(
        generated_at=now, window_days=window_days,
        rows=tuple(row(r, live) for r in shown),
        rollbacks=tuple(m for m in rollback_marks(ordered, timeline) if m.at >= now - window_days * 86400.0),
        unit=current_unit(ordered, live, previous, timeline),
        figures=dora(list(ordered), now=now, window_days=window_days),
        series=dora_series(list(ordered), now=now, window_days=window_days, points=points, every_days=every_days),
        left_out=left_out,
    )


__all__ = ["CANARY", "STEP", "CurrentUnit", "Phase", "ReleaseRow", "ReportView", "RollbackMark",
           "StepBar", "current_unit", "phases", "report_view", "rollback_marks", "row", "step_bars"]
