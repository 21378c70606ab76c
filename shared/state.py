"""tagship's own records in the state bucket, every write guarded by a generation precondition.

    releases/<tag>.json     one per release (shared.release.Release)
    pointer.json            what is live, what was live before, and the order they went live in
    lease.json              one release deploys at a time: {tag, owner, expires}
    queue.json              the newest tag waiting for the lease
    attempts/<tag>/<n>.json a failed attempt of a tag that was retried (kept as it ended)
    markers/<kind>/<key>    dedupe markers: created once, never rewritten
    watchdog.json           the watchdog's memory between ticks
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from shared.core.queue import holder_settled
from shared.core.start import start_lost
from shared.errors import CorruptRecord, PreconditionFailed, TransientError
from shared.log import logger
from shared.ports import Record, RecordStore
from shared.record_shape import LEASE_FIELDS, POINTER_FIELDS, QUEUE_FIELDS, check_shape
from shared.release import LIVE, Release

POINTER, LEASE, QUEUE = "pointer.json", "lease.json", "queue.json"

_CAS_ATTEMPTS = 8
LOST_START_WINDOW = 3600.0  # a start lost longer ago than this is left to a person (`python main.py start`)


@dataclass(frozen=True)
class Pointer:
    """What serves now, what served before it, and when each release started serving (rollbacks included)."""

    live: str | None = None
    previous: str | None = None
    timeline: tuple[tuple[str, float], ...] = ()
    changed_at: float = 0.0

    def live_at(self, when: float) -> str | None:
        """The release that was serving at `when` (None before the first release)."""
        serving = None
        for tag, since in self.timeline:
            if since <= when:
                serving = tag
        return serving

    def moved_to(self, tag: str, previous: str | None, now: float) -> "Pointer":
        return Pointer(live=tag, previous=previous, timeline=self.timeline + ((tag, now),), changed_at=now)

    def to_dict(self) -> dict[str, Any]:
        return {"live": self.live, "previous": self.previous, "timeline": [list(item) for item in self.timeline],
                "changed_at": self.changed_at}

    @classmethod
    def from_dict(cls, data: Any, generation: int = 0) -> "Pointer":
        """The pointer in `data`, or CorruptRecord saying what is wrong with it."""
        values = check_shape(POINTER, data, POINTER_FIELDS, generation=generation)
        timeline = tuple((str(tag), float(at)) for tag, at in values.get("timeline", ()))
        return cls(values.get("live"), values.get("previous"), timeline, float(values.get("changed_at", 0)))


@dataclass(frozen=True)
class Lease:
    tag: str
    owner: str  # who runs a step now ("" between steps): one invocation, its message id and a token of its own
    expires: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def parse(cls, data: Any, generation: int = 0) -> "Lease | None":
        """The lease in `data` (None when free), or CorruptRecord."""
        if data is None:
            return None
        values = check_shape(LEASE, data, LEASE_FIELDS, generation=generation)
        if not values.get("tag"):
            return None
        return cls(values["tag"], values.get("owner", ""), float(values.get("expires", 0)))


def _lease_or_free(data: dict[str, Any] | None) -> Lease | None:
    """A lease record as the lease decisions see it: a corrupt one holds nothing (it is logged, and the next
    compare-and-swap on its generation replaces it)."""
    try:
        return Lease.parse(data)
    except CorruptRecord as error:
        logger.error("corrupt lease record: treated as free", record=LEASE, detail=error.detail)
        return None


TAKE, OTHER_RELEASE, BUSY = "take", "other_release", "busy"


def decide_lease(current: Lease | None, tag: str, owner: str, now: float, settled: bool = False) -> str:
    """Whether `owner` (working on `tag`) may take the lease now (pure).

    Free or expired: take. Held for another release that has settled (`settled`: live or ended, see
    `shared.core.queue.holder_settled`): take, it holds nothing. Held for another release: that release goes first. Held for this release by another
    owner mid-step: busy (retry later). Held by the same owner: take. An owner is one invocation (the message id and
    a token of its own), so two copies of one message delivered at once never run a step together; an invocation
    that fails gives its step back (`pause_lease`), and one that dies holds it until the lease expires.
    """
    if current is None or current.expires <= now:
        return TAKE
    if current.tag != tag:
        return TAKE if settled else OTHER_RELEASE
    if current.owner and current.owner != owner:
        return BUSY
    return TAKE


class StateStore:
    def __init__(self, records: RecordStore) -> None:
        self.records = records

    # releases
    def release(self, tag: str) -> tuple[Release, int] | None:
        name = f"releases/{tag}.json"
        record = self.records.read(name)
        if record is None:
            return None
        release = Release.from_dict(record.data, name, record.generation)
        if release.tag != tag:
            raise CorruptRecord(name, f"it holds the release {release.tag[:80]!r}", record.generation)
        return release, record.generation

    def create_release(self, release: Release) -> int:
        return self.records.create(f"releases/{release.tag}.json", release.to_dict()).generation

    def save_release(self, release: Release, generation: int) -> int:
        return self.records.swap(f"releases/{release.tag}.json", release.to_dict(), generation).generation

    def update_release(self, tag: str, change: Callable[[Release], Release | None]) -> Release | None:
        """Read, change, compare-and-swap; retried on a lost race. `change` returning None writes nothing."""
        for _ in range(_CAS_ATTEMPTS):
            found = self.release(tag)
            if found is None:
                return None
            current, generation = found
            updated = change(current)
            if updated is None or updated == current:
                return current
            try:
                self.save_release(updated, generation)
                return updated
            except PreconditionFailed:
                continue
        raise TransientError(f"release {tag}: record kept changing under {_CAS_ATTEMPTS} attempts")

    def archive_release(self, release: Release) -> None:
        """Keeps a failed attempt's record beside the tag's (create-if-absent: archiving twice is a no-op)."""
        try:
            self.records.create(f"attempts/{release.tag}/{release.attempt}.json", release.to_dict())
        except PreconditionFailed:
            pass

    def releases(self) -> list[Release]:
        """Every readable release, oldest first; a corrupt record is logged and left out (see `corrupt()`)."""
        return self.releases_and_corrupt()[0]

    def lost_starts(self, now: float, within: float = LOST_START_WINDOW) -> list[Release]:
        """Releases whose start died between record and build (`start_lost`), among those written in the last
        `within` seconds: one listing, and a read of only the recent records."""
        found = []
        for name in self.records.changed_since("releases/", now - within):
            record = self.records.read(name)
            if record is None:
                continue
            try:
                release = Release.from_dict(record.data, name, record.generation)
            except CorruptRecord:  # told where it is acted on; never restarted from
                continue
            if start_lost(release, now):
                found.append(release)
        return found

    def releases_and_corrupt(self) -> tuple[list[Release], list[CorruptRecord]]:
        found, corrupt = [], []
        for name in self.records.list("releases/"):
            record = self.records.read(name)
            if record is None:
                continue
            try:
                found.append(Release.from_dict(record.data, name, record.generation))
            except CorruptRecord as error:
                logger.error("corrupt release record left out", record=name, detail=error.detail)
                corrupt.append(error)
        return sorted(found, key=lambda r: r.created_at), corrupt

    # generic compare-and-swap on a small record
    def _swap(self, name: str, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]) -> dict[str, Any] | None:
        for _ in range(_CAS_ATTEMPTS):
            record = self.records.read(name)
            updated = change(record.data if record else None)
            if updated is None:
                return record.data if record else None
            try:
                if record is None:
                    self.records.create(name, updated)
                else:
                    self.records.swap(name, updated, record.generation)
                return updated
            except PreconditionFailed:
                continue
        raise TransientError(f"{name}: kept changing under {_CAS_ATTEMPTS} attempts")

    # pointer
    def pointer(self) -> Pointer:
        record = self.records.read(POINTER)
        return Pointer.from_dict(record.data, record.generation) if record else Pointer()

    def move_pointer(self, change: Callable[[Pointer], Pointer | None]) -> Pointer:
        """A corrupt pointer is never guessed at: CorruptRecord, until `state repair pointer.json` mends it."""
        def apply(data: dict[str, Any] | None) -> dict[str, Any] | None:
            moved = change(Pointer.from_dict(data or {}))
            return moved.to_dict() if moved is not None else None

        return Pointer.from_dict(self._swap(POINTER, apply) or {})

    # lease
    def lease(self) -> Lease | None:
        record = self.records.read(LEASE)
        return _lease_or_free(record.data if record else None)

    def try_lease(self, tag: str, owner: str, now: float, ttl: float) -> str:
        """Takes the lease for `tag` by `owner` when `decide_lease` allows; returns its answer."""
        outcome = {"answer": TAKE}

        def apply(data: dict[str, Any] | None) -> dict[str, Any] | None:
            current = _lease_or_free(data)
            settled = current is not None and current.tag != tag and current.expires > now and self.settled(current)
            outcome["answer"] = decide_lease(current, tag, owner, now, settled)
            if outcome["answer"] != TAKE:
                return None
            return Lease(tag, owner, now + ttl).to_dict()

        self._swap(LEASE, apply)
        return outcome["answer"]

    def settled(self, lease: Lease) -> bool:
        """Whether `lease` names a release that is live or ended (`holder_settled`): it holds nothing."""
        if not holder_settled(lease.tag, LIVE):  # a rollback's lease: no release record to ask
            return False
        try:
            found = self.release(lease.tag)
        except CorruptRecord:  # told where it is acted on; nothing says it is done
            return False
        return holder_settled(lease.tag, found[0].state if found else None)

    def hold_lease(self, tag: str, owner: str, now: float) -> bool:
        """Whether `owner` still holds the lease for `tag` (checked before every traffic change)."""
        lease = self.lease()
        return lease is not None and lease.tag == tag and lease.owner == owner and lease.expires > now

    def pause_lease(self, tag: str, owner: str, now: float, ttl: float) -> None:
        """Between invocations: the release keeps the lease, and any message for it may take the next step."""

        def apply(data: dict[str, Any] | None) -> dict[str, Any] | None:
            current = _lease_or_free(data)
            if current is None or current.tag != tag or current.owner != owner:
                return None
            return Lease(tag, "", now + ttl).to_dict()

        self._swap(LEASE, apply)

    def end_lease(self, tag: str) -> None:
        def apply(data: dict[str, Any] | None) -> dict[str, Any] | None:
            current = _lease_or_free(data)
            if current is None and data is not None and _corrupt(data, LEASE_FIELDS):
                return {"tag": "", "owner": "", "expires": 0}  # a corrupt lease is mended when anyone ends one
            if current is None or current.tag != tag:
                return None
            return {"tag": "", "owner": "", "expires": 0}

        self._swap(LEASE, apply)

    def take_rollback_lease(self, owner: str, now: float, ttl: float) -> tuple[str, Lease | None]:
        """Takes the lease for a rollback; returns the answer and the deploy's lease it displaced, if any."""
        seen: dict[str, Any] = {"answer": TAKE, "displaced": None}

        def apply(data: dict[str, Any] | None) -> dict[str, Any] | None:
            current = _lease_or_free(data)
            seen["answer"] = decide_rollback_lease(current, owner, now)
            if seen["answer"] != TAKE:
                return None
            live_deploy = current is not None and current.tag != ROLLBACK_HOLDER and current.expires > now
            seen["displaced"] = current if live_deploy else None
            return Lease(ROLLBACK_HOLDER, owner, now + ttl).to_dict()

        self._swap(LEASE, apply)
        return seen["answer"], seen["displaced"]

    def hand_back_lease(self, owner: str, lease: Lease) -> None:
        """A refused rollback gives the deploy it displaced its lease back, untouched."""

        def apply(data: dict[str, Any] | None) -> dict[str, Any] | None:
            current = _lease_or_free(data)
            if current is None or current.tag != ROLLBACK_HOLDER or current.owner != owner:
                return None
            return lease.to_dict()

        self._swap(LEASE, apply)

    # queue: the newest waiting tag
    def wait_in_queue(self, tag: str, is_newer: Callable[[str, str], bool]) -> str | None:
        """Puts `tag` in the queue; returns the tag it superseded, if any."""
        replaced: dict[str, str | None] = {"tag": None}

        def apply(data: dict[str, Any] | None) -> dict[str, Any] | None:
            waiting = _waiting(data)
            if waiting == tag:
                return None
            if waiting and not is_newer(tag, waiting):
                replaced["tag"] = tag  # the arriving tag is the older one: it is the one superseded
                return None
            replaced["tag"] = waiting
            return {"waiting": tag}

        self._swap(QUEUE, apply)
        return replaced["tag"]

    def take_from_queue(self) -> str | None:
        taken: dict[str, str | None] = {"tag": None}

        def apply(data: dict[str, Any] | None) -> dict[str, Any] | None:
            taken["tag"] = _waiting(data)
            return {"waiting": None} if taken["tag"] or (data is not None and _corrupt(data, QUEUE_FIELDS)) else None

        self._swap(QUEUE, apply)
        return taken["tag"]

    def queued(self) -> str | None:
        record = self.records.read(QUEUE)
        return _waiting(record.data if record else None)

    # markers
    def mark_once(self, kind: str, key: str, data: dict[str, Any]) -> bool:
        """True the first time `kind/key` is marked, False ever after (create-if-absent)."""
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in key[:200])
        try:
            self.records.create(f"markers/{kind}/{safe}.json", data)
            return True
        except PreconditionFailed:
            return False

    def marker(self, kind: str, key: str) -> dict[str, Any] | None:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in key[:200])
        record = self.records.read(f"markers/{kind}/{safe}.json")
        return record.data if record else None

    # watchdog
    def watchdog(self) -> Record | None:
        return self.records.read("watchdog.json")

    def save_watchdog(self, data: dict[str, Any], generation: int | None) -> None:
        if generation is None:
            self.records.create("watchdog.json", data)
        else:
            self.records.swap("watchdog.json", data, generation)


def _corrupt(data: Any, fields: dict[str, Any]) -> bool:
    try:
        check_shape("record", data, fields)
        return False
    except CorruptRecord:
        return True


def _waiting(data: dict[str, Any] | None) -> str | None:
    """The queue's waiting tag; a corrupt queue waits for nobody (logged, and replaced by the next write)."""
    if data is None:
        return None
    try:
        return check_shape(QUEUE, data, QUEUE_FIELDS).get("waiting") or None
    except CorruptRecord as error:
        logger.error("corrupt queue record: treated as empty", record=QUEUE, detail=error.detail)
        return None


ROLLBACK_HOLDER = "rollback"


def decide_rollback_lease(current: Lease | None, owner: str, now: float) -> str:
    """A rollback takes precedence over a deploy in flight (which stops before its next traffic change), but two
    rollbacks never run at once: the second waits and then finds its `from` no longer live (pure). A rollback lease
    given back mid-way (owner "", its holder failed and let go) is taken by the next rollback, which finishes the job."""
    if current is None or current.expires <= now or current.tag != ROLLBACK_HOLDER:
        return TAKE
    return TAKE if current.owner in (owner, "") else BUSY

