"""The release record and its states: the one place that says which transitions exist.

A release only moves forward: building -> migrating -> deploying -> publishing -> verifying -> live, or to one of
the ends `failed`, `rolled_back`, `superseded`. Which release serves now is the live pointer's to say.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from shared.errors import PermanentError

BUILDING, MIGRATING, DEPLOYING, PUBLISHING, VERIFYING, LIVE = (
    "building", "migrating", "deploying", "publishing", "verifying", "live",
)
FAILED, ROLLED_BACK, SUPERSEDED = "failed", "rolled_back", "superseded"
PIPELINE = (BUILDING, MIGRATING, DEPLOYING, PUBLISHING, VERIFYING, LIVE)
ENDS = (FAILED, ROLLED_BACK, SUPERSEDED)
IN_FLIGHT = (BUILDING, MIGRATING, DEPLOYING, PUBLISHING, VERIFYING)


class InvalidTransition(PermanentError):
    pass


def sanitise(tag: str) -> str:
    """A tag as Cloud Run accepts it in a revision name and a traffic tag: lowercase, [a-z0-9-], no dots."""
    text = re.sub(r"[^a-z0-9-]+", "-", tag.lower()).strip("-")
    return text[:40] or "release"


def revision_name(service: str, tag: str) -> str:
    """Deterministic per release and service, so a retried deploy finds its own revision."""
    return f"{service}-{sanitise(tag)}"[:63].rstrip("-")


def can_move(current: str, to: str) -> bool:
    if current in ENDS:
        return False
    if to == ROLLED_BACK:
        return current in (LIVE, VERIFYING)
    if to == FAILED:
        return current in IN_FLIGHT
    if to == SUPERSEDED:
        return current == BUILDING
    if current in PIPELINE and to in PIPELINE:
        return PIPELINE.index(to) > PIPELINE.index(current)
    return False


@dataclass(frozen=True)
class Release:
    tag: str
    commit: str
    pushed_by: str
    delivery_id: str
    state: str = BUILDING
    history: tuple[tuple[str, float], ...] = ()
    build_id: str = ""
    log_url: str = ""
    image: str = ""
    waiting: bool = False
    migration_started_at: float | None = None
    migration_execution: str = ""
    previous: dict[str, Any] = field(default_factory=dict)  # the unit to restore: tag, api, worker revisions
    revisions: dict[str, str] = field(default_factory=dict)  # "api"/"worker" -> revision name once deployed
    traffic_moved: tuple[str, ...] = ()  # roles whose traffic points at this release
    frontend_objects: dict[str, str] = field(default_factory=dict)  # path -> md5 of what was published
    frontend_published: bool = False
    slack_channel: str = ""
    slack_ts: str = ""
    error: str = ""
    steps: dict[str, dict[str, float]] = field(default_factory=dict)  # step -> {"started": t, "finished": t}

    @property
    def ended(self) -> bool:
        return self.state in ENDS

    @property
    def created_at(self) -> float:
        return self.history[0][1] if self.history else 0.0

    def at(self, state: str) -> float | None:
        for name, when in self.history:
            if name == state:
                return when
        return None

    def move(self, to: str, now: float, *, error: str = "") -> "Release":
        if not can_move(self.state, to):
            raise InvalidTransition(f"release {self.tag}: cannot move from {self.state} to {to}")
        return dataclasses.replace(
            self, state=to, history=self.history + ((to, now),), error=error or self.error, waiting=False
        )

    def with_step(self, step: str, edge: str, now: float) -> "Release":
        steps = {k: dict(v) for k, v in self.steps.items()}
        steps.setdefault(step, {})[edge] = now
        return dataclasses.replace(self, steps=steps)

    def but(self, **changes: Any) -> "Release":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["history"] = [list(item) for item in self.history]
        data["traffic_moved"] = list(self.traffic_moved)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Release":
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["history"] = tuple((str(s), float(t)) for s, t in values.get("history", ()))
        values["traffic_moved"] = tuple(values.get("traffic_moved", ()))
        return cls(**values)


def new_release(tag: str, commit: str, pushed_by: str, delivery_id: str, now: float) -> Release:
    return Release(tag=tag, commit=commit, pushed_by=pushed_by, delivery_id=delivery_id, history=((BUILDING, now),))
