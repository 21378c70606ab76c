"""A release's approval (pure): asked once at its point, decided once, or refused when nobody decides in time.

`gates.approval` says where a release stops to ask: `before_traffic` (its candidate deployed and smoke-tested,
none of the API's traffic moved, before the canary if there is one) or `before_promotion` (the canary's last step
passed, the candidate still at its share). The release waits there, watched, until a person approves (the thread's
Approve button, or `python main.py deploys approve TAG`), a person refuses, or `gates.approval_max_wait_seconds`
pass; then it goes on, or it ends failed with the API's traffic back on the release before it.

The state lives in the release record (`Release.approval`). Every decision arrives as a message with an id and is
applied at most once per id (a redelivery changes nothing); the first decision wins, any later one is refused
saying what was decided. `now` is always an argument.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from shared.core.wording import duration as _duration

NONE, BEFORE_TRAFFIC, BEFORE_PROMOTION = "none", "before_traffic", "before_promotion"
POINTS = (BEFORE_TRAFFIC, BEFORE_PROMOTION)
APPROVE, REFUSE = "approve", "refuse"
VERBS = (APPROVE, REFUSE)
APPROVED, REFUSED, EXPIRED = "approved", "refused", "expired"
OUTCOMES = (APPROVED, REFUSED, EXPIRED)
APPLIED, DUPLICATE, NOT_APPLIED = "applied", "duplicate", "not applied"
SEEN_MAX = 50  # ids remembered: far more decisions than one release meets; the oldest are let go first


@dataclass(frozen=True)
class Approval:
    """What a release's approval remembers: where and when it was asked, how and by whom it was decided."""

    point: str
    asked_at: float
    decided: str | None = None  # APPROVED, REFUSED, EXPIRED
    by: str = ""
    reason: str = ""
    at: float | None = None
    seen: tuple[str, ...] = ()  # the message ids already answered, applied or not

    def to_dict(self) -> dict[str, Any]:
        return {"point": self.point, "asked_at": self.asked_at, "decided": self.decided, "by": self.by,
                "reason": self.reason, "at": self.at, "seen": list(self.seen)}

    @classmethod
    def from_dict(cls, data: Any) -> Approval:
        """The record's `approval` read into its type; ValueError naming what is wrong."""
        if not isinstance(data, dict) or set(data) != {"point", "asked_at", "decided", "by", "reason", "at", "seen"}:
            raise ValueError("'approval': expected an object with point, asked_at, decided, by, reason, at, seen")
        if data["point"] not in POINTS:
            raise ValueError(f"'approval.point': expected one of {', '.join(POINTS)}, found {str(data['point'])[:40]!r}")
        if data["decided"] is not None and data["decided"] not in OUTCOMES:
            raise ValueError(f"'approval.decided': expected null or one of {', '.join(OUTCOMES)}")
        for key in ("asked_at", "at"):
            value = data[key]
            if (value is not None or key == "asked_at") and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ValueError(f"'approval.{key}': expected a number, found {type(value).__name__}")
        for key in ("by", "reason"):
            if not isinstance(data[key], str):
                raise ValueError(f"'approval.{key}': expected a string, found {type(data[key]).__name__}")
        seen = data["seen"]
        if not isinstance(seen, list) or not all(isinstance(item, str) for item in seen):
            raise ValueError("'approval.seen': expected a list of message ids")
        if (data["decided"] is None) != (data["at"] is None):
            raise ValueError("'approval': 'decided' and 'at' are set together")
        return cls(data["point"], float(data["asked_at"]), data["decided"], data["by"], data["reason"],
                   None if data["at"] is None else float(data["at"]), tuple(seen))


def ask(point: str, now: float) -> Approval:
    if point not in POINTS:
        raise ValueError(f"approval point: expected one of {', '.join(POINTS)}, found {point!r}")
    return Approval(point, now)


@dataclass(frozen=True)
class Go:
    """Approved: the release goes on."""

    by: str


@dataclass(frozen=True)
class Stop:
    """Refused, or nobody decided in time: the release ends failed, its traffic back on the release before."""

    reason: str


@dataclass(frozen=True)
class Wait:
    """Undecided: look again, at the latest at `until` (when the wait ends)."""

    until: float


def verdict(state: Approval, now: float, max_wait: float) -> tuple[Approval, Go | Stop | Wait]:
    """What the waiting release does now, and the state to store (an expiry is recorded, once)."""
    if state.decided == APPROVED:
        return state, Go(state.by)
    if state.decided == REFUSED:
        why = f": {state.reason}" if state.reason else ""
        return state, Stop(f"approval refused by {state.by}{why}")
    until = state.asked_at + max_wait
    if state.decided == EXPIRED or now >= until:
        expired = state if state.decided == EXPIRED else replace(state, decided=EXPIRED, at=now)
        return expired, Stop(f"not approved within {_duration(max_wait)} of being asked")
    return state, Wait(until)


@dataclass(frozen=True)
class Effect:
    outcome: str  # APPLIED, DUPLICATE, NOT_APPLIED
    text: str


def decide(state: Approval, verb: str, *, by: str, reason: str, message_id: str, now: float,
           max_wait: float) -> tuple[Approval, Effect]:
    """A person's approve or refuse, once per `message_id`. Not applied (saying why, the id remembered so a late
    redelivery cannot apply it once things changed): after a decision, or once the wait has ended (an approval
    never arrives late)."""
    if verb not in VERBS:
        raise ValueError(f"approval: expected one of {', '.join(VERBS)}, found {verb!r}")
    if message_id and message_id in state.seen:
        return state, Effect(DUPLICATE, f"{verb} {message_id} was already answered: nothing changes")
    seen = (state.seen + ((message_id,) if message_id else ()))[-SEEN_MAX:]
    if state.decided is not None:
        return replace(state, seen=seen), Effect(NOT_APPLIED, f"{verb} not applied: already {_told(state)}")
    if now >= state.asked_at + max_wait:
        expired = replace(state, decided=EXPIRED, at=now, seen=seen)
        return expired, Effect(NOT_APPLIED, f"{verb} not applied: the wait of {_duration(max_wait)} had ended")
    outcome = APPROVED if verb == APPROVE else REFUSED
    decided = replace(state, decided=outcome, by=by, reason=reason, at=now, seen=seen)
    why = f" ({reason})" if reason else ""
    return decided, Effect(APPLIED, f"{outcome} by {by}{why}")


def may_approve(user_id: str, groups_of_user: tuple[str, ...], approvers: tuple[str, ...]) -> bool:
    """A Slack user may press Approve or Refuse when `gates.approvers` names them or a user group (S...) they are
    in; with none named, nobody may in Slack (fail closed: the command line still can)."""
    return user_id in approvers or any(group in approvers for group in groups_of_user)


def _told(state: Approval) -> str:
    if state.decided == EXPIRED:
        return "expired"
    return f"{state.decided} by {state.by}"
