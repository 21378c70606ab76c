"""The release record and its states: the one place that says which transitions exist.

A release only moves forward: building -> migrating -> deploying -> publishing -> verifying -> live, or to one of
the ends `failed`, `rolled_back`, `superseded`. Which release serves now is the live pointer's to say.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from shared.errors import CorruptRecord, PermanentError
from shared.text import cut

BUILDING, MIGRATING, DEPLOYING, PUBLISHING, VERIFYING, LIVE = (
    "building", "migrating", "deploying", "publishing", "verifying", "live",
)
FAILED, ROLLED_BACK, SUPERSEDED = "failed", "rolled_back", "superseded"
PIPELINE = (BUILDING, MIGRATING, DEPLOYING, PUBLISHING, VERIFYING, LIVE)
ENDS = (FAILED, ROLLED_BACK, SUPERSEDED)
IN_FLIGHT = (BUILDING, MIGRATING, DEPLOYING, PUBLISHING, VERIFYING)


class InvalidTransition(PermanentError):
    pass


TAG_AND_SERVICE_MAX = 46  # Cloud Run: a tag's URL host label TAG---SERVICE-HASH must fit 63 characters
REVISION_NAME_MAX = 63
TRAFFIC_TAG_MAX = 24  # readable in a URL; within the 46 with services of up to 22 characters
FINGERPRINT_LENGTH = 8
ERROR_MAX = 2000  # characters of why a release ended kept in its record: the error often quotes a cloud's answer


def _fingerprint(tag: str) -> str:
    """Eight characters from a SHA-256 of the exact tag (40 bits), the first a letter so it can open a name."""
    digest = hashlib.sha256(tag.encode()).digest()
    tail = base64.b32encode(digest[1:]).decode().lower()
    return chr(ord("a") + digest[0] % 26) + tail[: FINGERPRINT_LENGTH - 1]


def _readable_within(tag: str, room: int, *, letter_first: bool = False) -> str:
    """The tag lowercased to [a-z0-9-], cut so that `-<fingerprint>` follows it within `room` characters."""
    fingerprint = _fingerprint(tag)
    text = re.sub(r"[^a-z0-9]+", "-", tag.lower()).strip("-")
    if letter_first and text and not text[0].isalpha():
        text = f"t{text}"  # a traffic tag opens a DNS label: "2024.1" reads "t2024-1-..."
    head = text[: room - FINGERPRINT_LENGTH - 1].rstrip("-") if room > FINGERPRINT_LENGTH + 1 else ""
    return f"{head}-{fingerprint}" if head else fingerprint


def sanitise(tag: str, service: str = "") -> str:
    """The traffic tag of a release: a readable part of the tag and a fingerprint of the exact tag, so two tags
    never share one (`v1.0.0`, `v1-0-0` and `V1.0.0` read alike and differ in the fingerprint). DNS-1035, at most
    24 characters; given its `service`, also within Cloud Run's 46 for tag and service name together."""
    room = TRAFFIC_TAG_MAX if not service else min(TRAFFIC_TAG_MAX, TAG_AND_SERVICE_MAX - len(service))
    if room < FINGERPRINT_LENGTH:
        raise PermanentError(
            f"traffic tag for service {service!r}: Cloud Run allows {TAG_AND_SERVICE_MAX} characters for a tag and "
            f"its service name together; expected a service name of at most {TAG_AND_SERVICE_MAX - FINGERPRINT_LENGTH} "
            f"characters, found {len(service)}"
        )
    return _readable_within(tag, room, letter_first=True)


def revision_name(service: str, tag: str) -> str:
    """`<service>-<readable tag>-<fingerprint>`: deterministic per release and service, so a retried deploy finds
    its own revision, and never another release's, whatever the cut; DNS-1035 and at most 63 characters for any
    service name of up to 49 (the readable part shrinks first, the fingerprint stays whole)."""
    return f"{service}-{_readable_within(tag, REVISION_NAME_MAX - len(service) - 1)}"


_ATTEMPT_SUFFIX = re.compile(r"\.attempt-[0-9]+\Z")


def release_identity(tag: str, attempt: int) -> str:
    """The tag for a first attempt, `TAG.attempt-N` after (see `Release.identity`). A tag that itself ends as a
    retried attempt's identity does (`v1.0.0.attempt-2`, pushed as a tag of its own) is `TAG.attempt-1` in its first
    attempt too, so it never takes the names of attempt 2 of `v1.0.0`."""
    if attempt == 1 and not _ATTEMPT_SUFFIX.search(tag):
        return tag
    return f"{tag}.attempt-{attempt}"


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
class Unit:
    """A release unit as it stands on the cloud: what one release moves together and a rollback moves back."""
    tag: str | None  # None: what served before tagship's first release
    api: str  # the API's revision
    worker: str  # the worker's revision
    frontend_prefix: str  # where its built frontend is kept in the state bucket
    image: str = ""  # the image digest both revisions run


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
    attempt: int = 1  # a tag retried after a failure before traffic moved runs as attempt 2, 3, ...
    canary: dict[str, Any] = field(default_factory=dict)  # the canary's state (shared.canary_record); {}: none
    approval: dict[str, Any] = field(default_factory=dict)  # its approval (shared.core.approval); {}: none asked
    github_deployment: int | None = None  # the GitHub deployment's id, once created (github.deployments)
    github_status: str = ""  # the last status posted on it

    @property
    def identity(self) -> str:
        """What every name of this release derives from (revisions, traffic tag, frontend prefix, build): the tag
        for a first attempt, the tag and its attempt after, so a retry never meets a failed attempt's names."""
        return release_identity(self.tag, self.attempt)

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
        canary = self.canary
        if to == FAILED and canary:  # a failed release's canary is aborted, however it failed
            from shared.canary_record import failed_with_release
            canary = failed_with_release(canary, error or self.error)
        return dataclasses.replace(
            self, state=to, history=self.history + ((to, now),), error=cut(error, ERROR_MAX) or self.error, waiting=False,
            canary=canary,
        )

    def with_step(self, step: str, edge: str, now: float) -> "Release":
        steps = {k: dict(v) for k, v in self.steps.items()}
        steps.setdefault(step, {})[edge] = now
        return dataclasses.replace(self, steps=steps)

    @property
    def previous_unit(self) -> Unit | None:
        """The unit this release replaced, as it was recorded before any traffic moved."""
        p = self.previous
        if not p or not p.get("api") or not p.get("worker"):
            return None
        return Unit(p.get("tag") or None, str(p["api"]), str(p["worker"]), str(p.get("frontend_prefix") or ""))

    def unit(self, frontend_prefix: str) -> Unit | None:
        """This release's own unit, once both its revisions are recorded."""
        api, worker = self.revisions.get("api"), self.revisions.get("worker")
        if not api or not worker:
            return None
        return Unit(self.tag, api, worker, frontend_prefix, self.image)

    def but(self, **changes: Any) -> "Release":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["history"] = [list(item) for item in self.history]
        data["traffic_moved"] = list(self.traffic_moved)
        return data

    @classmethod
    def from_dict(cls, data: Any, name: str = "release", generation: int = 0) -> "Release":
        """The release in `data`, or CorruptRecord naming `name` and what is wrong with it."""
        from shared.record_shape import RELEASE_FIELDS, RELEASE_REQUIRED, check_shape

        values = check_shape(name, data, RELEASE_FIELDS, RELEASE_REQUIRED, generation)
        if values["state"] not in PIPELINE + ENDS:
            raise CorruptRecord(name, f"unknown state {values['state'][:40]!r}", generation)
        if not values["history"] or not values["tag"]:
            raise CorruptRecord(name, "a release needs its tag and a history", generation)
        values["history"] = tuple((str(s), float(t)) for s, t in values["history"])
        values["traffic_moved"] = tuple(values.get("traffic_moved", ()))
        from shared.canary_record import from_record

        from_record(values.get("canary", {}), name, generation)  # a wrong-shaped canary is refused here
        approval_of(values.get("approval", {}), name, generation)  # and a wrong-shaped approval
        return cls(**values)


def approval_of(data: dict[str, Any], name: str = "release", generation: int = 0) -> Any:
    """The release's `Approval` (shared.core.approval), None when none was asked; CorruptRecord when unreadable."""
    if not data:
        return None
    from shared.core.approval import Approval

    try:
        return Approval.from_dict(data)
    except ValueError as error:
        raise CorruptRecord(name, str(error), generation) from error


def new_release(tag: str, commit: str, pushed_by: str, delivery_id: str, now: float) -> Release:
    return Release(tag=tag, commit=commit, pushed_by=pushed_by, delivery_id=delivery_id, history=((BUILDING, now),))
