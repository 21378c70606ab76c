"""The deploy, one recorded step at a time: migrate, deploy the API (candidate, smoke test, traffic), deploy the
worker, publish the frontend, verify, live.

Each step finds its own earlier work (a deterministic revision name, the execution that ran this image, the
frontend objects already equal) so a crash anywhere and a redelivery end with the release live exactly once.
A failure after traffic moved restores the previous release unit: API, worker and frontend alike.
"""
from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shared import deadline
from shared.adapters.cloudrun import poll_delays
from shared.core.deploy import HandOver as CoreHandOver
from shared.core.deploy import (
    Done, Fail, Verdict, Wait, bake_verdict, migration_verdict, moved_roles, next_step, restores, smoke_verdict,
)
from shared.core.queue import superseded_by_live
from shared.core.traffic import all_to, serving
from shared.errors import CorruptRecord, LeaseHeld, PermanentError, PreconditionFailed, TagshipError, TransientError
from shared.log import Logger
from shared.messages import duration
from shared.smoke import ProbeAnswer, judge_answer
from shared.release import (
    BUILDING, DEPLOYING, FAILED, LIVE, MIGRATING, PUBLISHING, SUPERSEDED, VERIFYING, Release, revision_name, sanitise,
)
from shared.state import BUSY, OTHER_RELEASE, ROLLBACK_HOLDER, TAKE, Pointer
from shared.thread import open_thread, refresh_root, reply, tell_corrupt
from shared.unit_move import BASELINE, copy_frontend, frontend_prefix, move_unit, snapshot_baseline
from shared.wiring import Services

__all__ = ["BASELINE", "HandOver", "Pipeline", "Stopped", "open_thread", "refresh_root", "reply"]

class _Abandoned(Exception):
    """The frontend copy stops before index.html: the worker beside it failed, and the release is being undone."""


class Stopped(Exception):
    """The deploy lost its lease to a rollback: stop before the next traffic change, touch nothing more."""


def _newer(store: Any) -> Any:
    def is_newer(a: str, b: str) -> bool:
        found_a, found_b = store.release(a), store.release(b)
        created_a = found_a[0].created_at if found_a else 0.0
        created_b = found_b[0].created_at if found_b else 0.0
        return created_a >= created_b

    return is_newer


class HandOver(Exception):
    """This invocation's budget is spent: the next message goes on from what is recorded."""


class Pipeline:
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
            raise PermanentError(f"release {self.tag}: no record")
        self.identity = found[0].identity  # what this attempt's names derive from
        return found[0]

    def _update(self, change: Any) -> Release:
        updated = self.store.update_release(self.tag, change)
        if updated is None:
            raise PermanentError(f"release {self.tag}: record vanished")
        return updated

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
        if lease is not None and lease.tag == self.tag and lease.owner == self.owner:  # expired, and nobody took it
            if self.store.try_lease(self.tag, self.owner, now, self.config.deploy.lease_seconds) == TAKE:
                return
        raise Stopped(f"{self.tag} no longer holds the deploy lease")

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
            except CorruptRecord as error:  # its own record broke mid-deploy: nothing to restore from; let go
                return self._corrupt(error)
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
        reply(self.s, released, f":octagonal_sign: Stopped before the next traffic change: {why}.")
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
        reply(self.s, release, f":hourglass: Waiting: {holder} is deploying.")
        refresh_root(self.s, release)
        if self.store.lease() is None:  # the holder finished while we queued: take our turn now
            if self.store.take_from_queue() == self.tag:
                return self.drive()
        return "waiting"

    def _supersede(self, tag: str, *, by: str) -> None:
        now = self._now()
        release = self.store.update_release(tag, lambda r: r.move(SUPERSEDED, now, error=f"superseded by {by}") if r.state == BUILDING else None)
        if release is not None and release.state == SUPERSEDED:
            self.log.info("release superseded", superseded=tag, by=by)
            reply(self.s, release, f":fast_forward: Superseded by {by}: not deployed.")
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
        reply(self.s, stopped, f":octagonal_sign: {why}; nothing more is deployed for it.")
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

    def _fail(self, error: str, *, restore: bool) -> None:
        release = self._load()
        if restore:
            self._restore(release)
        release = self._move(FAILED, error=error)
        self.log.error("release failed", error=error, restored=restore)
        restored = f" The previous release ({release.previous.get('tag') or 'the one before tagship'}) serves." if restore or release.previous else ""
        reply(self.s, release, f":x: {error}.{restored}")

    # -- steps ------------------------------------------------------------------------------------------------
    def _migrate(self, release: Release) -> bool:
        """True when the migration ended (either way); False when it outlasts this invocation."""
        job = self.config.migrations.job
        run = self.s.run
        if not release.migration_execution:
            execution = None
            if release.migration_started_at is not None:
                execution = run.find_execution(job, release.image)
            if execution is None:
                now = self._now()
                self._update(lambda r: r.but(migration_started_at=now).with_step("migrate", "started", now))
                name = run.start_migration(job, release.image, self.config.migrations.command)
            else:
                name = execution.name
            release = self._update(lambda r: r.but(migration_execution=name))
            self.log.info("migration started", execution=name)
            reply(self.s, release, f":card_file_box: Migrations running (`{name.rsplit('/', 1)[-1]}`)")
        started_at = release.migration_started_at or self._now()
        delays = poll_delays(maximum=2.0)  # noticed done within a tenth of its run time, at most 2 s late
        while True:
            state = run.execution(release.migration_execution)
            verdict = migration_verdict(done=state.done, succeeded=state.succeeded, message=state.message,
                                        started_at=started_at, now=self._now(),
                                        timeout=self.config.migrations.timeout_seconds, until=self._until,
                                        pause=next(delays))
            if isinstance(verdict, Wait):
                self.s.sleep(verdict.pause)
                continue
            if isinstance(verdict, CoreHandOver):
                return False  # resumed by the next message: the execution is recorded, never run twice
            break
        if state.done:
            self._step("migrate", "finished")
        if isinstance(verdict, Fail):
            self._fail(verdict.reason, restore=verdict.restore)
            return True
        release = self._move(DEPLOYING)
        took = release.steps.get("migrate", {})
        reply(self.s, release, f":card_file_box: Migrations done in {duration(took.get('finished', 0) - took.get('started', 0))}")
        return True

    def _capture_previous(self, release: Release) -> Release:
        if release.previous:
            return release
        pointer: Pointer = self.store.pointer()
        api = self.s.run.service(self.config.api.service)
        worker = self.s.run.service(self.config.worker.service)
        previous = {
            "tag": pointer.live,
            "api": serving(api.traffic, api.latest_ready_revision),
            "worker": serving(worker.traffic, worker.latest_ready_revision),
            "frontend_prefix": frontend_prefix(self.config, self._identity_of(pointer.live)),
        }
        if pointer.live is None:
            snapshot_baseline(self.s, frontend_prefix(self.config, None))
        return self._update(lambda r: None if r.previous else r.but(previous=previous))

    def _identity_of(self, tag: str | None) -> str | None:
        """The identity of the release `tag` (its frontend prefix is named by it); None before tagship."""
        if tag is None:
            return None
        found = self.store.release(tag)
        return found[0].identity if found else tag

    def _deploy_services(self, release: Release) -> None:
        release = self._capture_previous(release)
        api = self.config.api.service
        tag = sanitise(self.identity, api)
        run = self.s.run
        # API: a tagged candidate with no traffic, smoke-tested on its own URL, then all the traffic.
        api_revision = revision_name(api, self.identity)
        if "api" not in release.traffic_moved and run.service(api).traffic.get(api_revision) == 100:
            # the traffic moved, then the attempt died before recording it: the cloud says so, record it now
            release = self._update(lambda r: r.but(revisions={**r.revisions, "api": api_revision},
                                                   traffic_moved=tuple(dict.fromkeys(r.traffic_moved + ("api",)))))
        if "api" not in release.traffic_moved:
            self._step("deploy_api", "started")
            state = run.deploy_revision(api, api_revision, release.image, tag=tag)
            release = self._update(lambda r: r.but(revisions={**r.revisions, "api": api_revision}))
            url = state.tag_urls.get(tag)
            if not url:
                raise TransientError(f"{api}: tag {tag} has no URL yet")
            smoke = self._smoke(url, api_revision)
            if isinstance(smoke, Fail):
                self._fail(smoke.reason, restore=smoke.restore)
                return
            reply(self.s, release, f":white_check_mark: Candidate `{api_revision}` passed its smoke test")
            self._guard_traffic()
            run.set_traffic(api, all_to(api_revision, tag))
            release = self._update(lambda r: r.but(traffic_moved=tuple(dict.fromkeys(r.traffic_moved + ("api",)))))
            self._step("deploy_api", "finished")
            reply(self.s, release, f":rocket: API traffic moved to `{api_revision}`")
        # The API serves this release: the worker's revision and the frontend no longer wait for each other. The
        # frontend is copied on a second thread while the worker deploys here. index.html, which makes the new
        # frontend visible, goes last, only if the worker has not failed and the lease is still ours; the thread
        # is joined before anything else happens, so a restore never races a copy.
        worker_failed = threading.Event()

        def before_index() -> None:
            if worker_failed.is_set():
                raise _Abandoned("the worker's deploy failed: index.html stays as it was")
            self._guard_traffic()

        with ThreadPoolExecutor(max_workers=1) as side:
            frontend = None if release.frontend_published else side.submit(self._publish_frontend, before_index)
            try:
                failure = self._deploy_worker(release)
            except BaseException:
                worker_failed.set()
                raise
            if failure is not None:
                worker_failed.set()
        if failure is not None:
            self._fail(failure, restore=True)
            return
        if frontend is not None:
            frontend.result()  # its error, if any, now that the worker's outcome is recorded
        self._move(PUBLISHING)

    def _deploy_worker(self, release: Release) -> str | None:
        """The worker on this release's image with all its traffic; what went wrong when that cannot be done."""
        worker = self.config.worker.service
        tag = sanitise(self.identity, worker)
        run = self.s.run
        if "worker" not in release.traffic_moved:
            worker_revision = revision_name(worker, self.identity)
            self._step("deploy_worker", "started")
            try:
                self._guard_traffic()
                run.deploy_revision(worker, worker_revision, release.image, tag=tag,
                                    command=self.config.worker.command, with_traffic=True)
            except PreconditionFailed:
                raise  # a concurrent change, judged by drive(): a rollback's, or a retry
            except PermanentError as error:
                return f"Worker deploy failed: {error}"
            release = self._update(lambda r: r.but(revisions={**r.revisions, "worker": worker_revision},
                                                   traffic_moved=tuple(dict.fromkeys(r.traffic_moved + ("worker",)))))
            self._step("deploy_worker", "finished")
            reply(self.s, release, f":gear: Worker on `{worker_revision}`")
        return None

    def _smoke(self, base_url: str, candidate: str) -> Verdict:
        """DONE or a Fail; raises HandOver when the test outlasts this invocation (no traffic has moved yet: the
        next invocation smoke-tests the candidate again)."""
        deploy = self.config.deploy
        deadline = self._now() + deploy.smoke_timeout_seconds
        while True:
            answer = self._answer(base_url)
            verdict = smoke_verdict(ok=answer.ok, final=answer.final, detail=answer.detail, candidate=candidate,
                                    now=self._now(), deadline=deadline, until=self._until,
                                    interval=deploy.smoke_interval_seconds)
            if isinstance(verdict, CoreHandOver):
                raise HandOver(verdict.why)
            if not isinstance(verdict, Wait):
                return verdict
            self.s.sleep(verdict.pause)

    def _probe(self, base_url: str) -> tuple[bool, str]:
        answer = self._answer(base_url)
        return answer.ok, answer.detail

    def _answer(self, base_url: str) -> ProbeAnswer:
        timeout = self.config.deploy.probe_timeout_seconds
        for path in (self.config.api.health_path, self.config.api.detailed_health_path):
            url = base_url.rstrip("/") + path
            got = self.s.http.request(url, timeout=timeout)
            answer = judge_answer(path, got.status, got.body, url, got.error or "")
            if not answer.ok:
                return answer
        return ProbeAnswer(True, "ok")

    def _publish(self, release: Release) -> None:
        if not release.frontend_published:  # published alongside the worker, unless that attempt was cut short
            self._publish_frontend(self._guard_traffic)
        self._move(VERIFYING)

    def _publish_frontend(self, before_index: Any) -> None:
        self._step("publish", "started")
        copied, objects = copy_frontend(self.s, frontend_prefix(self.config, self.identity), before_index=before_index)
        release = self._update(lambda r: r.but(frontend_objects=objects, frontend_published=True))
        self._step("publish", "finished")
        reply(self.s, release, f":globe_with_meridians: Frontend published ({copied} of {len(objects)} files changed)")

    def _verify(self, release: Release) -> None:
        deploy = self.config.deploy
        started = release.steps.get("verify", {}).get("started")
        if started is None:  # a bake longer than one invocation goes on in the next, from when it began
            started = self._step("verify", "started").steps["verify"]["started"]
        uri = self.s.run.service(self.config.api.service).uri
        deadline = started + deploy.bake_seconds
        while True:
            self._guard_traffic()
            ok, detail = self._probe(uri)
            verdict = bake_verdict(ok=ok, detail=detail, now=self._now(), deadline=deadline, until=self._until,
                                   interval=deploy.probe_interval_seconds)
            if isinstance(verdict, Fail):
                self._fail(verdict.reason, restore=verdict.restore)
                return
            if isinstance(verdict, CoreHandOver):
                raise HandOver(verdict.why)
            if isinstance(verdict, Done):
                break
            self.s.sleep(verdict.pause)
        self._step("verify", "finished")
        self._guard_traffic()
        now = self._now()
        previous_live = release.previous.get("tag")

        def point(pointer: Pointer) -> Pointer | None:
            if pointer.live == self.tag:
                return None
            return pointer.moved_to(self.tag, pointer.live, now)

        self.store.move_pointer(point)
        release = self._move(LIVE)
        went_live = release.at(LIVE)
        total = went_live - release.created_at if went_live is not None else 0.0
        reply(self.s, release, f":white_check_mark: Live in {duration(total)}. Rollback target: {previous_live or 'the pre-tagship revisions'}.")

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
