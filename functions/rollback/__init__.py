"""rollback: bring the previous release unit back (API, worker, frontend), exactly once, whatever asked.

Requests arrive from people (`gcloud pubsub topics publish tagship-rollback ...` or `main.py rollback`), from the
watchdog, and from Cloud Monitoring incidents. One rollback runs at a time (the lease, which it takes from a deploy
in flight); a request is planned against the pointer under that lease, so a duplicate or a second alarm about the
same release finds its `from` no longer live and only says so.
"""
from __future__ import annotations

import time
import uuid
from typing import Any

from functions.rollback.approval import decide_approval
from functions.rollback.canary_control import apply, control_canary, running_canary
from shared import gates
from shared.canary_control import ApprovalRequest, CanaryControlRequest
from shared.core import wording
from shared.core.canary import ROLLBACK, Control
from shared.errors import LeaseHeld, PermanentError, TagshipError, TransientError
from shared.log import Logger
from shared.release import FAILED, LIVE, ROLLED_BACK, VERIFYING, Release
from shared.rollback_request import (
    NOT_LIVE,
    PREVIOUS,
    IncidentNotice,
    ReleaseFacts,
    RollbackPlan,
    RollbackRequest,
    TestNotice,
    is_rollback_trigger,
    parse_rollback_message,
    plan_rollback,
)
from shared.state import BUSY, ROLLBACK_HOLDER, Pointer
from shared.thread import refresh_root, reply
from shared.unit_move import frontend_prefix, move_unit
from shared.wiring import Services

LEASE_SECONDS = 300.0
LEASE_WAIT_SECONDS = 10.0  # a rollback takes well under this; waiting here beats Pub/Sub's redelivery backoff


def handle(services: Services, data: bytes, attributes: dict[str, str], message_id: str, log: Logger,
           published_at: float | None = None) -> str:
    """`published_at` settles a request without `from`: it rolls back from what was live when it was sent, so two
    such requests never walk back two releases."""
    message = parse_rollback_message(data, attributes)
    if isinstance(message, CanaryControlRequest):
        return control_canary(services, message, message_id, log)
    if isinstance(message, ApprovalRequest):
        return decide_approval(services, message, message_id, log)
    if isinstance(message, TestNotice):
        services.notifier.post(wording.monitoring_test_notice())
        return "test notification"
    if isinstance(message, IncidentNotice):
        request = _from_incident(services, message, log)
        if request is None:
            return "incident reported"
    else:
        request = message
    # Pub/Sub names no publisher: who may ask is IAM on the topic, and what a request says of itself is a claim,
    # logged as one and never consulted to decide what is allowed.
    claims = log.bind(claimed_trigger=request.trigger, claimed_by=request.requested_by)
    canary = running_canary(services)
    if canary is not None:  # a rollback asked during a canary aborts it: the stable release serves on
        return apply(services, canary, Control(ROLLBACK, by=request.requested_by, reason=request.reason),
                     message_id, claims)
    return Rollback(services, request, message_id, claims, published_at).run()


def _from_incident(services: Services, notice: IncidentNotice, log: Logger) -> RollbackRequest | None:
    log = log.bind(incident=notice.incident_id, policy=notice.policy_name, claimed_trigger="alert")
    if not services.store.mark_once("incident", f"{notice.incident_id}-{notice.state}", {"policy": notice.policy_name}):
        log.info("incident already handled", state=notice.state)
        return None
    trigger = is_rollback_trigger(notice, services.config.rollback)
    if notice.state != "open" or not trigger:
        services.notifier.post(wording.incident(notice.state, notice.policy_name, notice.summary, notice.url, trigger))
        log.info("incident reported", state=notice.state, rollback_trigger=trigger)
        return None
    pointer = services.store.pointer()
    return RollbackRequest(
        to="previous",
        from_tag=pointer.live,
        reason=f"alert {notice.policy_name}: {notice.summary}",
        requested_by=notice.policy_name,
        trigger="alert",
    )


class Rollback:
    def __init__(self, services: Services, request: RollbackRequest, message_id: str, log: Logger,
                 published_at: float | None = None) -> None:
        self.published_at = published_at
        self.s = services
        self.store = services.store
        self.config = services.config
        self.request = request
        # one owner per invocation: two copies of one request delivered at once must not both act
        self.owner = f"rollback-{message_id or time.time()}~{uuid.uuid4().hex[:8]}"
        self.message_id = message_id
        self.log = log
        self._applying = False  # whether this attempt has begun moving the unit (a failure from then on is retried)

    def run(self) -> str:
        if self.message_id and self.store.marker("rollback-message", self.message_id):
            self.log.info("rollback request already handled (redelivery)")
            return "duplicate delivery"
        started = self.s.clock()
        waited_until = time.monotonic() + LEASE_WAIT_SECONDS
        while True:
            try:
                answer, displaced = self.store.take_rollback_lease(self.owner, self.s.clock(), LEASE_SECONDS)
            except TagshipError as error:
                if not error.transient:  # acknowledged, so said: nothing else would ever tell of this request
                    self._say_failed(error, "nothing was changed")
                raise
            if answer != BUSY:
                break
            if time.monotonic() > waited_until:  # a long rollback in flight: let Pub/Sub bring this one back later
                raise LeaseHeld("another rollback is running; this request waits its turn")
            self.s.sleep(0.1)
        if self.message_id and self.store.marker("rollback-message", self.message_id):  # done while we waited
            self._end(displaced)
            self.log.info("rollback request already handled (a copy delivered at the same time)")
            return "duplicate delivery"
        try:
            outcome = self._plan_and_apply(started, displaced)
        except TagshipError as error:
            if not error.transient and self._applying:  # a unit half moved back is never left so: retried until whole
                self._say_failed(error, "part of the unit may have moved back already; retrying until all of it has")
                error = TransientError(f"rollback half applied: {error}")
            if error.transient:  # keep the lease for rollbacks; the redelivery (or the next request) finishes the job
                self.store.pause_lease(ROLLBACK_HOLDER, self.owner, self.s.clock(), LEASE_SECONDS)
                raise error  # noqa: TRY201 (the half-applied TransientError when it was made, not the caught one)
            self._say_failed(error, "nothing was changed")
            self._end(displaced)
            raise
        self._end(displaced if outcome.startswith("refused") else None)
        self.store.mark_once("rollback-message", self.message_id or self.owner, {"outcome": outcome})
        return outcome

    def _say_failed(self, error: Exception, what: str) -> None:
        """Once per request: a failed rollback is the one thing the channel must hear of."""
        if self.store.mark_once("rollback-failure", self.message_id or self.owner, {"error": str(error)[:500]}):
            self.log.error("rollback failed", error=str(error), what=what)
            self.s.notifier.post(wording.rollback_failed(self.request.trigger, self.request.requested_by, str(error), what))

    def _end(self, hand_back: Any = None) -> None:
        if hand_back is not None:
            self.store.hand_back_lease(self.owner, hand_back)
            return
        self.store.end_lease("rollback")
        waiting = self.store.take_from_queue()
        if waiting:
            self.s.publisher.publish(self.config.topics.progress, {"kind": "drive", "tag": waiting})

    def _facts(self, tags: set[str]) -> dict[str, ReleaseFacts]:
        """What the plan needs to know of `tags`: only the release it may return to is ever looked at, so a long
        history costs nothing (reading every record made a rollback slower with each release ever made)."""
        facts = {}
        api, worker = self.config.api.service, self.config.worker.service
        for tag in sorted(tags):
            found = self.store.release(tag)
            if found is None:
                continue
            release = found[0]
            went_live = release.at(LIVE) is not None
            present = False
            if went_live and release.revisions.get("api") and release.revisions.get("worker"):
                present = bool(self.s.run.revision_ready(api, release.revisions["api"])) and bool(
                    self.s.run.revision_ready(worker, release.revisions["worker"]))
            facts[release.tag] = ReleaseFacts(release.tag, release.state, went_live, present)
        return facts

    def _plan_and_apply(self, started: float, displaced: Any) -> str:
        pointer = self.store.pointer()
        request = self.request
        if request.from_tag is None and pointer.live is not None:
            sent_from = pointer.live_at(self.published_at) if self.published_at is not None else None
            request = RollbackRequest(request.to, sent_from or pointer.live, request.reason, request.requested_by,
                                      request.trigger)
        wanted = pointer.previous if request.to == PREVIOUS else request.to
        plan = plan_rollback(request, live=pointer.live, previous=pointer.previous,
                             releases=self._facts({wanted} if wanted else set()))
        if not isinstance(plan, RollbackPlan):
            self.log.warning("rollback refused", reason=plan.reason, to=request.to, from_tag=request.from_tag,
                             kind=plan.kind)
            if plan.kind != NOT_LIVE:  # about a release no longer live: the rollback it asks for happened; log only
                self.s.notifier.post(wording.rollback_refused(request.trigger, request.requested_by, plan.reason))
            return f"refused: {plan.reason}"
        log = self.log.bind(tag=plan.from_tag)
        if displaced is not None:
            log.warning("rollback takes over from the deploy in flight", deploy=displaced.tag)
            self._stop_deploy(displaced.tag, plan)
        target_found = self.store.release(plan.to_tag)
        if target_found is None:  # its record went between the plan and now: nothing tells where its unit is
            raise PermanentError(f"rollback {plan.from_tag} -> {plan.to_tag}: the record of {plan.to_tag} is missing")
        target = target_found[0]
        bad_found = self.store.release(plan.from_tag)
        if bad_found is None:  # what serves is still known (the pointer) and is moved back; only its record is gone
            log.warning("the release rolled back from has no record; it is not marked rolled back",
                        record=f"releases/{plan.from_tag}.json")
        reported = self.published_at if self.published_at is not None else started  # DORA's restore starts here
        self._apply(target)
        now = self.s.clock()
        bad = bad_found[0] if bad_found else None
        if bad is not None and _went_live_before(target, bad):  # back to an older release: the one left is the bad one
            bad = self.store.update_release(
                plan.from_tag,
                lambda r: r.move(ROLLED_BACK, now, error=f"rolled back: {plan.reason}").with_step(
                    "incident", "started", min(reported, now)) if r.state in (LIVE, VERIFYING) else None,
            ) or bad
        took = self.s.clock() - started
        log.warning("rolled back", to=plan.to_tag, reason=plan.reason, seconds=round(took, 3))
        # Told before the pointer moves, once per pointer version: a process that dies after either is retried
        # (the pointer unmoved, the retry plans the same rollback), and the retry tells only if nobody did.
        if self.store.mark_once("rollback-told", f"{plan.from_tag}-{plan.to_tag}-{pointer.changed_at}", {}):
            self._tell(plan, target, bad, took)
        # The pointer moves last: until it does, a retry of this request plans the same rollback and finishes it.
        self.store.move_pointer(lambda p: None if p.live == plan.to_tag else p.moved_to(plan.to_tag, _before(p, plan.to_tag, self.store), now))
        self.s.deployment_status.follow(target)  # serving again: its GitHub deployment a success once more
        if self.config.gates.pause_after_rollback:
            self._pause(plan)
        return f"rolled back {plan.from_tag} -> {plan.to_tag}"

    def _pause(self, plan: RollbackPlan) -> None:
        """Deploys paused until a person resumes them, so the next push never silently redeploys the bad code."""
        try:
            gates.pause(self.s, f"the rollback of {plan.from_tag}",
                        f"the rollback of {plan.from_tag} to {plan.to_tag} ({plan.reason})", self.log)
        except TagshipError as error:  # the rollback stands; the channel already heard of it
            self.log.error("could not pause deploys after the rollback", error=str(error)[:200])

    def _tell(self, plan: RollbackPlan, target: Release, bad: Release | None, took: float) -> None:
        """In the thread of the release left (when its record still says where that is) and in the channel."""
        forward = bad is not None and not _went_live_before(target, bad)
        text = wording.rolled_back(plan.from_tag, plan.to_tag, forward=forward, seconds=took,
                                   reason=plan.reason, requested_by=plan.requested_by, trigger=plan.trigger,
                                   ran_migrations=bad is None or bool(bad.steps.get("migrate")))
        if bad is not None:
            reply(self.s, bad, text)
            refresh_root(self.s, bad)
        self.s.notifier.post(text)

    def _stop_deploy(self, tag: str, plan: RollbackPlan) -> None:
        """The deploy in flight ends here: whatever it moved, the rollback now sets the whole unit."""
        now = self.s.clock()
        reason = f"stopped: a rollback took over ({plan.from_tag} -> {plan.to_tag})"
        stopped = self.store.update_release(tag, lambda r: None if r.ended or r.state == LIVE else r.move(FAILED, now, error=reason))
        if stopped is not None and stopped.state == FAILED and stopped.error == reason:
            self.log.bind(tag=tag).warning("deploy stopped: a rollback took over", reason=reason)
            reply(self.s, stopped, wording.stopped_by_rollback(reason))
            refresh_root(self.s, stopped)

    def _apply(self, target: Release) -> None:
        """API traffic to the target's revision (the plan found both revisions ready), then the worker's traffic
        and the target's frontend side by side: neither waits for the other, as in a deploy."""
        unit = target.unit(frontend_prefix(self.config, target.identity))
        if unit is None:
            raise TransientError(f"{target.tag} records no api and worker revisions")
        self._applying = True  # from here on a failure may leave part of the unit moved: it is retried, never left
        move_unit(self.s, unit)


def _went_live_before(a: Release, b: Release) -> bool:
    """Whether `a` first went live before `b` did: moving from `b` to `a` is a rollback, not a roll forward."""
    a_live, b_live = a.at(LIVE), b.at(LIVE)
    if a_live is None or b_live is None:
        return a.created_at < b.created_at
    return a_live < b_live


def _before(pointer: Pointer, tag: str, store: Any) -> str | None:
    """The release that served before `tag` last started serving, skipping rolled-back ones: the next 'previous'."""
    tags = [t for t, _ in pointer.timeline]
    if tag in tags:
        index = len(tags) - 1 - tags[::-1].index(tag)
        for candidate in reversed(tags[:index]):
            if candidate == tag:
                continue
            found = store.release(candidate)
            if found and found[0].state != ROLLED_BACK:
                return candidate
    return None
