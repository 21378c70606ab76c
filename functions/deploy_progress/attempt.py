"""One attempt of a release, as the deploy's steps see it: its record, its budget, its lease, and the one way a
failure gives back what it moved (`move_unit`, shared with the rollback)."""
from __future__ import annotations

import uuid
from typing import Any

from shared import deadline
from shared.core import wording
from shared.core.deploy import (
    moved_roles,
    restores,
)
from shared.errors import CorruptRecord, PermanentError, TagshipError, TransientError
from shared.log import Logger
from shared.release import (
    FAILED,
    LIVE,
    Release,
    revision_name,
)
from shared.state import ROLLBACK_HOLDER, TAKE
from shared.thread import refresh_root, reply
from shared.unit_move import move_unit
from shared.wiring import Services


class _Abandoned(Exception):
    """The frontend copy stops before index.html: the worker beside it failed, and the release is being undone."""


class Stopped(Exception):
    """The deploy lost its lease to a rollback: stop before the next traffic change, touch nothing more."""


class HandOver(Exception):
    """This invocation's budget is spent: the next message goes on from what is recorded."""


class Attempt:
    def __init__(self, services: Services, tag: str, owner: str, log: Logger) -> None:
        self.s = services
        self.config = services.config
        self.store = services.store
        self.tag = tag
        # One owner per invocation, not per message: Pub/Sub delivers one message twice at once (a duplicate, or a
        # redelivery while the first attempt still runs), and two attempts must never run the same step together.
        self.owner = f"{owner or 'anonymous'}~{uuid.uuid4().hex[:8]}"
        self.log = log.bind(tag=tag)
        self.identity = tag  # the attempt's identity, once its record is read
        # this invocation's budget: past it, the next message goes on from the record (the platform ends a function
        # at its timeout whatever it is doing)
        self._until = self._now() + deadline.left(self.config.deploy.step_budget_seconds)

    # -- plumbing ---------------------------------------------------------------------------------------------
    def _now(self) -> float:
        return self.s.clock()

    def _load(self) -> Release:
        found = self.store.release(self.tag)
        if found is None:
            lease = self.store.lease()
            if lease is not None and lease.tag == self.tag:  # it was there when the lease was taken: broken state
                raise self._missing()
            raise PermanentError(f"release {self.tag}: no record")
        self.identity = found[0].identity  # what this attempt's names derive from
        return found[0]

    def _update(self, change: Any) -> Release:
        updated = self.store.update_release(self.tag, change)
        if updated is None:
            raise self._missing()
        return updated

    def _missing(self) -> CorruptRecord:
        """The release's record deleted under it: treated as a corrupt record (it holds nothing, it is told once)."""
        return CorruptRecord(f"releases/{self.tag}.json", "it is missing: deleted while its release was in flight")

    def _move(self, to: str, *, error: str = "") -> Release:
        now = self._now()
        release = self._update(lambda r: r.move(to, now, error=error) if r.state != to else None)
        self.log.info(f"release {to}", state=to, error=error or None)
        refresh_root(self.s, release)
        return release

    def _step(self, step: str, edge: str) -> Release:
        now = self._now()
        return self._update(lambda r: None if step in r.steps and edge in r.steps[step] else r.with_step(step, edge, now))

    def _guard_traffic(self) -> None:
        now = self._now()
        if self.store.hold_lease(self.tag, self.owner, now):
            return
        lease = self.store.lease()
        ours_expired = lease is not None and lease.tag == self.tag and lease.owner == self.owner  # nobody took it
        free = lease is None or (lease.expires <= now and lease.tag != ROLLBACK_HOLDER)  # nobody holds it now
        # another release's lease, unexpired, whose release is live or ended: it holds nothing (written back stale,
        # or its attempt died before giving it back), and stopping here would leave this release's unit half moved
        free = free or (lease is not None and lease.tag != self.tag and self.store.settled(lease))
        if ((ours_expired or (free and self._may_take_free()))
                and self.store.try_lease(self.tag, self.owner, now, self.config.deploy.lease_seconds) == TAKE):
            return
        raise Stopped(f"{self.tag} no longer holds the deploy lease")

    def _may_take_free(self) -> bool:
        """A lease found free mid-deploy (lost, expired, or written back as it was before): nobody else is moving the unit, so
        this release takes it again and goes on, unless it ended meanwhile (a rollback stopped it) or a newer
        release went live (it would deploy over it); otherwise its half-moved unit would be left so."""
        release = self._load()
        return not release.ended and release.state != LIVE and self._newer_live(release) is None

    def _newer_live(self, release: Release) -> str | None:
        return None  # the drive loop knows the pointer: see Pipeline._newer_live

    def _fail(self, error: str, *, restore: bool) -> None:
        release = self._load()
        if restore:
            self._restore(release)
        release = self._move(FAILED, error=error)
        self.log.error("release failed", error=error, restored=restore)
        reply(self.s, release, wording.failed(error, release.previous.get("tag"), restore or bool(release.previous)))

    def _moved(self, release: Release) -> set[str]:
        """Roles whose traffic this release holds, by its record or by what the cloud serves."""
        share = {}
        for role, service in (("api", self.config.api.service), ("worker", self.config.worker.service)):
            if role not in release.traffic_moved:
                share[role] = self.s.run.service(service).traffic.get(revision_name(service, self.identity), 0)
        return moved_roles(release.traffic_moved, share)

    def _restore(self, release: Release) -> None:
        """Puts the previous release unit back where this release had moved it (API, worker, frontend)."""
        previous = release.previous_unit
        if previous is None:
            return
        self._guard_traffic()  # a restore is a traffic change: a rollback that took the lease has set the unit already
        try:
            move_unit(self.s, previous, restores(moved=self._moved(release), frontend_published=release.frontend_published,
                                                 has_previous_frontend=bool(previous.frontend_prefix)))
        except TagshipError as error:
            self.log.error("restoring the previous release failed", error=str(error))
            raise TransientError(f"restoring {previous.tag}: {error}") from error
        self._update(lambda r: r.but(traffic_moved=()))
        self.log.warning("previous release restored", previous=previous.tag)
