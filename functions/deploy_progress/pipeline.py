"""The deploy, one recorded step at a time: migrate, deploy the API (candidate, smoke test, traffic), deploy the
worker, publish the frontend, verify, live.

Each step finds its own earlier work (a deterministic revision name, the execution that ran this image, the
frontend objects already equal) so a crash anywhere and a redelivery end with the release live exactly once.
A failure after traffic moved restores the previous release unit: API, worker and frontend alike.
"""
from __future__ import annotations

from typing import Any

from functions.deploy_progress.attempt import HandOver, Stopped
from functions.deploy_progress.steps import Steps
from shared.core import wording
from shared.core.deploy import (
    next_step,
)
from shared.core.queue import superseded_by_live
from shared.errors import (
    CorruptRecord,
    LeaseHeld,
    PermanentError,
    PreconditionFailed,
    TagshipError,
    TransientError,
)
from shared.frontend import BASELINE
from shared.release import (
    BUILDING,
    FAILED,
    LIVE,
    MIGRATING,
    SUPERSEDED,
    Release,
)
from shared.state import BUSY, OTHER_RELEASE, ROLLBACK_HOLDER
from shared.thread import open_thread, refresh_root, reply, tell_corrupt

__all__ = ["BASELINE", "HandOver", "Pipeline", "Stopped", "open_thread", "refresh_root", "reply"]


def _newer(store: Any) -> Any:
    def is_newer(a: str, b: str) -> bool:
        found_a, found_b = store.release(a), store.release(b)
        created_a = found_a[0].created_at if found_a else 0.0
        created_b = found_b[0].created_at if found_b else 0.0
        return created_a >= created_b

    return is_newer


class Pipeline(Steps):
    """The drive loop: take the lease, run the next step, hand over, wait in the queue, finish."""

    # -- the drive loop ---------------------------------------------------------------------------------------
    def drive(self) -> str:
        try:
            release = self._load()
        except CorruptRecord as error:
            return self._corrupt(error)
        if release.ended or release.state == LIVE:
            lease = self.store.lease()
            if lease is not None and lease.tag == self.tag:  # it ended, but the attempt died before giving the lease
                self._finish(release)  # back and starting whatever waits: do that now
            return f"nothing to do: {release.state}"
        if not release.image:
            return "not built yet"
        answer = self.store.try_lease(self.tag, self.owner, self._now(), self.config.deploy.lease_seconds)
        if answer == BUSY:
            raise LeaseHeld(f"{self.tag}: another invocation is running a step")
        if answer == OTHER_RELEASE:
            return self._wait()
        try:
            try:
                return self._run()
            except PreconditionFailed as conflict:  # the service changed under us (its etag): who changed it?
                if not self.store.hold_lease(self.tag, self.owner, self._now()):
                    raise Stopped(f"{self.tag} lost the deploy lease: {conflict}") from conflict
                raise TransientError(f"{self.tag}: a concurrent change, retrying: {conflict}") from conflict
            except CorruptRecord as error:
                if error.name == f"releases/{self.tag}.json":  # its own record broke: nothing to go on from; let go
                    return self._corrupt(error)
                # another record it needs (the pointer) broke: never guessed at, so this release cannot finish;
                # the unit is restored from this release's own record, and the record is told once
                tell_corrupt(self.s, error, self.log, self.tag)
                self._fail(f"Deploy could not finish: {error}", restore=True)
                return self._finish(self._load())
            except PermanentError as error:  # retrying will not help: restore what moved, say so, free the lease
                if self._load().state == LIVE:  # only the bookkeeping after going live failed: never restore a live
                    raise TransientError(f"{self.tag} is live; giving the lease back failed: {error}") from error
                self._fail(f"Deploy could not finish: {error}", restore=True)
                return self._finish(self._load())
        except Stopped as stop:
            return self._stopped(stop)
        except BaseException:
            self._give_step_back()
            raise

    def _corrupt(self, error: CorruptRecord) -> str:
        """A release whose record is corrupt goes no further and holds nothing: a lease it held is ended and the
        release waiting behind it starts. Told once; `python main.py state repair` mends the record."""
        tell_corrupt(self.s, error, self.log, self.tag)
        lease = self.store.lease()
        if lease is not None and lease.tag == self.tag:
            self._finish_lease()
        return "corrupt record"

    def _give_step_back(self) -> None:
        """An attempt that fails mid-step lets the redelivery of its message (another owner) resume at once."""
        try:
            self.store.pause_lease(self.tag, self.owner, self._now(), self.config.deploy.lease_seconds)
        except TagshipError as error:  # the lease then expires on its own
            self.log.warning("could not give the step back", error=str(error))

    def _stopped(self, stop: Stopped) -> str:
        lease = self.store.lease()
        if lease is not None and lease.tag == self.tag and lease.owner != self.owner:  # ours expired mid-step and
            # another attempt of this release took it on: that attempt goes on from the record
            self.log.warning("deploy handed over: another attempt of this release holds the lease now", reason=str(stop))
            return "handed over"
        why = "a rollback took over" if lease is not None and lease.tag == ROLLBACK_HOLDER else "its deploy lease expired"
        self.log.warning(f"deploy stopped: {why}", reason=str(stop))
        now = self._now()
        released = self._update(lambda r: r.move(FAILED, now, error=f"stopped: {why}") if not r.ended and r.state != LIVE else None)
        reply(self.s, released, wording.stopped_before_traffic(why))
        refresh_root(self.s, released)
        return "stopped"

    def _wait(self) -> str:
        superseded = self.store.wait_in_queue(self.tag, _newer(self.store))
        release = self._update(lambda r: None if r.waiting else r.but(waiting=True))
        lease = self.store.lease()
        holder = lease.tag if lease else "another release"
        if superseded and superseded != self.tag:
            self._supersede(superseded, by=self.tag)
        if superseded == self.tag:
            self._supersede(self.tag, by=self.store.queued() or "a newer tag")
            return "superseded"
        self.log.info("waiting for the release in flight", holder=holder)
        reply(self.s, release, wording.waiting_for(holder))
        refresh_root(self.s, release)
        # the holder finished while we queued: take our turn now
        if self.store.lease() is None and self.store.take_from_queue() == self.tag:
            return self.drive()
        return "waiting"

    def _supersede(self, tag: str, *, by: str) -> None:
        now = self._now()
        release = self.store.update_release(tag, lambda r: r.move(SUPERSEDED, now, error=f"superseded by {by}") if r.state == BUILDING else None)
        if release is not None and release.state == SUPERSEDED:
            self.log.info("release superseded", superseded=tag, by=by)
            reply(self.s, release, wording.superseded_by(by))
            refresh_root(self.s, release)

    def _run(self) -> str:
        while True:
            release = self._load()
            step = next_step(release.state)
            newer = self._newer_live(release) if step != "finish" else None
            if newer is not None:  # an older release never deploys over a newer one that went live
                self._give_way(release, newer)
                return self._finish(self._load())
            if step == "start":
                self._move(MIGRATING)
                continue
            if step == "finish":
                return self._finish(release)
            try:
                if step == "migrate" and not self._migrate(release):
                    self._pause()
                    return "migration still running"
                if step == "deploy":
                    self._deploy_services(release)
                elif step == "publish":
                    self._publish(release)
                elif step == "verify":
                    self._verify(release)
            except HandOver as over:
                self.log.info("handing over to the next invocation", reason=str(over))
                self._pause()
                return f"handed over: {over}"

    def _give_way(self, release: Release, newer: str) -> None:
        """Ends this release without touching the cloud: the newer live release owns what serves now."""
        if release.state == BUILDING:
            self._supersede(self.tag, by=newer)
            return
        now = self._now()
        why = f"stopped: the newer release {newer} went live while this one waited"
        stopped = self._update(lambda r: r.move(FAILED, now, error=why) if not r.ended and r.state != LIVE else None)
        self.log.warning("deploy stopped: a newer release is live", newer=newer)
        reply(self.s, stopped, wording.stopped_for_newer(why))
        refresh_root(self.s, stopped)

    def _newer_live(self, release: Release) -> str | None:
        live = self.store.pointer().live
        if live is None or live == self.tag:
            return None
        found = self.store.release(live)
        return live if found and superseded_by_live(release.created_at, found[0].created_at) else None

    def _pause(self) -> None:
        """Gives the lease back between invocations (keeping it for this release) and asks to be resumed."""
        self.store.pause_lease(self.tag, self.owner, self._now(), self.config.deploy.lease_seconds)
        self.s.publisher.publish(self.config.topics.progress, {"kind": "drive", "tag": self.tag})

    def _finish(self, release: Release) -> str:
        self._finish_lease()
        return release.state

    def _finish_lease(self) -> None:
        self.store.end_lease(self.tag)
        waiting = self.store.take_from_queue()
        if waiting and waiting != self.tag:
            self.log.info("starting the waiting release", next=waiting)
            self.s.publisher.publish(self.config.topics.progress, {"kind": "drive", "tag": waiting})
