"""The deploy waiting for a person's approval (`gates.approval`), at its point: before any of the API's traffic
moves, or before the canary's promotion.

The ask is recorded once (`Release.approval`) and told in the thread, whose root then carries Approve and Refuse
buttons. The decision arrives on the rollback topic (a button, or `python main.py deploys approve|refuse TAG`) and
is applied to the record by the rollback function; the deploy looks at the record every probe interval and hands
over to the next invocation as a long bake does, keeping the deploy lease, so nothing else deploys meanwhile. While
it waits, the candidate's own URL is probed: `watchdog.consecutive_failures` failed probes in a row end the
release as a failed step does. Refused, or not decided within `gates.approval_max_wait_seconds`, the release ends
failed and the API's traffic is back on the release before it (all of it: a canary's share too).
"""
from __future__ import annotations

from functions.deploy_progress.attempt import HandOver
from functions.deploy_progress.canary_step import CanaryStep
from shared.core import wording
from shared.core.approval import Approval, Go, Stop, ask, verdict
from shared.core.deploy import HandOver as CoreHandOver
from shared.core.deploy import canary_pause
from shared.core.traffic import all_to
from shared.release import Release, approval_of
from shared.thread import refresh_root, reply


class ApprovalStep(CanaryStep):
    def _approval_point(self) -> str:
        return self.config.gates.approval

    def _approved(self, point: str, candidate: str, tag: str, stable: str) -> bool:
        """True once approved; False when the release ended (refused, expired, or its candidate failing)."""
        gates = self.config.gates
        name = f"releases/{self.tag}.json"
        state = approval_of(self._load().approval, name)
        if state is None:
            state = self._ask(point, name)
        failures = 0
        while True:
            self._guard_traffic()
            now = self._now()
            decided, answer = verdict(state, now, gates.approval_max_wait_seconds)
            if decided != state:
                state = self._record_expiry(decided, name)
                continue
            if isinstance(answer, Go):
                self._step("approval", "finished")
                self.log.info("approved", by=answer.by, point=point)
                refresh_root(self.s, self._load())
                return True
            if isinstance(answer, Stop):
                self._step("approval", "finished")
                self._stop_waiting(point, stable, answer.reason)
                return False
            url = self.s.run.service(self.config.api.service).tag_urls.get(tag, "")
            ok, detail = self._probe(url) if url else (False, "the candidate has no tag URL")
            failures = 0 if ok else failures + 1
            if failures >= self.config.watchdog.consecutive_failures:
                self._stop_waiting(point, stable, f"the candidate {candidate} failed {failures} probes in a row "
                                                  f"while it waited for approval: {detail}")
                return False
            pause = canary_pause(now=now, changes_at=answer.until, interval=self.config.deploy.probe_interval_seconds,
                                 until=self._until)
            if isinstance(pause, CoreHandOver):
                raise HandOver("the wait for approval outlasts this invocation")
            self.s.sleep(pause.pause)
            state = approval_of(self._load().approval, name) or state

    def _ask(self, point: str, name: str) -> Approval:
        now = self._now()
        asked = ask(point, now)
        release = self._update(lambda r: None if r.approval else
                               r.but(approval=asked.to_dict()).with_step("approval", "started", now))
        state = approval_of(release.approval, name) or asked
        if state == asked:  # this invocation asked: it tells (a concurrent one found it asked and says nothing)
            self.log.info("waiting for approval", point=point)
            reply(self.s, release, wording.approval_asked(point, self.config.gates.approval_max_wait_seconds,
                                                          bool(self.config.gates.approvers), self.tag))
            refresh_root(self.s, release)
        return state

    def _record_expiry(self, expired: Approval, name: str) -> Approval:
        """The expiry stored unless a decision landed first (that decision then wins)."""
        def change(release: Release) -> Release | None:
            current = approval_of(release.approval, name)
            if current is None or current.decided is not None:
                return None
            return release.but(approval=expired.to_dict())

        return approval_of(self._update(change).approval, name) or expired

    def _stop_waiting(self, point: str, stable: str, reason: str) -> None:
        """Ends the release failed: the API's traffic all back on `stable` (a canary's share included), the rest of
        the unit as a failed step leaves it."""
        self.log.warning("release stopped at its approval", point=point, reason=reason)
        if stable and self.s.run.service(self.config.api.service).traffic.get(stable, 0) != 100:
            service = self.s.run.service(self.config.api.service)
            tags = {revision: name for name, revision in service.tags.items()}
            self._guard_traffic()
            self.s.run.set_traffic(self.config.api.service, all_to(stable, tags.get(stable, "")))
        self._fail(f"Not approved: {reason}", restore=True)


__all__ = ["ApprovalStep"]
