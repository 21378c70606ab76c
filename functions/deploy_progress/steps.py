"""The deploy's steps, each finding its own earlier work: migrate, deploy the API (candidate, smoke test, traffic)
and the worker beside the frontend, publish, verify. What each observation means is `shared.core.deploy`'s to say."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from functions.deploy_progress.approval_step import ApprovalStep
from functions.deploy_progress.attempt import HandOver, _Abandoned
from shared.adapters.cloudrun import poll_delays
from shared.canary_record import from_record
from shared.core import wording
from shared.core.approval import BEFORE_PROMOTION, BEFORE_TRAFFIC
from shared.core.canary import PROMOTED
from shared.core.deploy import (
    Done,
    Fail,
    Verdict,
    Wait,
    bake_verdict,
    migration_verdict,
    smoke_verdict,
)
from shared.core.deploy import HandOver as CoreHandOver
from shared.core.traffic import all_to, serving
from shared.errors import PermanentError, PreconditionFailed, TransientError
from shared.release import (
    DEPLOYING,
    LIVE,
    PUBLISHING,
    VERIFYING,
    Release,
    revision_name,
    sanitise,
)
from shared.smoke import ProbeAnswer, judge_answer
from shared.state import Pointer
from shared.thread import reply
from shared.unit_move import copy_frontend, frontend_prefix, snapshot_baseline


class Steps(ApprovalStep):
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
            reply(self.s, release, wording.migrations_running(name))
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
        reply(self.s, release, wording.migrations_done_in(took.get("finished", 0) - took.get("started", 0)))
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
            if not release.canary and not release.approval:  # a canary under way, or an approval asked, has its
                # candidate deployed and smoke-tested already
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
                reply(self.s, release, wording.candidate_passed(api_revision))
            stable = str(release.previous.get("api") or "")
            point = self._approval_point()
            if point == BEFORE_TRAFFIC and not self._approved(point, api_revision, tag, stable):
                return
            canary = from_record(self._load().canary)
            promoted = canary is not None and canary.ended == PROMOTED
            if (self.config.canary.steps or release.canary) and not promoted and not self._canary(
                    self._load(), api_revision, tag):
                return
            if point == BEFORE_PROMOTION and not self._approved(point, api_revision, tag, stable):
                return
            self._guard_traffic()
            run.set_traffic(api, all_to(api_revision, tag))
            release = self._update(lambda r: r.but(traffic_moved=tuple(dict.fromkeys(r.traffic_moved + ("api",)))))
            self._step("deploy_api", "finished")
            reply(self.s, release, wording.api_traffic_moved(api_revision))
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
            reply(self.s, release, wording.worker_on(worker_revision))
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
        reply(self.s, release, wording.frontend_published(copied, len(objects)))

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
        reply(self.s, release, wording.live_in(total, previous_live))
