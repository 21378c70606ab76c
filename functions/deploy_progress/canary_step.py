"""The canary, run by the deploy between the candidate's smoke test and all the API's traffic.

Each step gives the candidate its share of the API's requests (`canary.steps`), waits at least the step's
shortest, and is judged by `shared.core.canary` on the candidate revision's own figures against the stable
revision's over the same window (Cloud Monitoring, by revision), plus a probe of the candidate's tag URL at each
look. The state lives in the release record (`Release.canary`): it is written before the traffic it asks for is
set, and every invocation first sets the traffic the recorded step asks for, so a crash between the two is
mended by the next message. A step longer than one invocation is handed over like a bake: the next invocation
goes on from the record, judged from when the step began.

The worker and the frontend stay on the stable release through every step: a Celery worker served as a Cloud Run
service takes no requests to split (it pulls its tasks from the broker), and one frontend is served to everyone.
They move, as without a canary, once the API takes all the traffic.
"""
from __future__ import annotations

from functions.deploy_progress.attempt import Attempt, HandOver
from shared.canary_record import from_record, to_record
from shared.core import wording
from shared.core.canary import (
    ABORT,
    ABORTED,
    AbortToStable,
    Action,
    Advance,
    CanaryState,
    HoldAndTell,
    Promote,
    StepFigures,
    TooEarly,
    Verdict,
    Wait,
    Window,
    begin,
    judge_step,
    next_action,
    window,
)
from shared.core.deploy import HandOver as CoreHandOver
from shared.core.deploy import canary_pause
from shared.ports import ServiceState
from shared.release import Release
from shared.thread import reply

NO_FIGURES = StepFigures(0, 0)


class CanaryStep(Attempt):
    _judged_over: Window | None = None  # the window the latest figures were read over, for the thread
    def _probe(self, base_url: str) -> tuple[bool, str]:
        raise NotImplementedError  # the deploy's steps probe (shared.smoke's rules), the same as the bake

    def _canary(self, release: Release, candidate: str, tag: str) -> bool:
        """True once the candidate is to take all the API's traffic; False when the canary ended the release
        failed (all the API's traffic back on stable, told). Raises HandOver when a step outlasts this
        invocation."""
        api, policy = self.config.api.service, self.config.canary
        stable = str(release.previous.get("api") or "")
        if not stable or stable == candidate:  # nothing serves beside it to compare with
            self.log.warning("no stable revision to compare the canary with: all the traffic at once")
            return True
        state = from_record(release.canary, f"releases/{self.tag}.json")
        if state is None:
            now = self._now()
            state, _first = begin(now, policy)
            self._update(lambda r: None if r.canary else r.but(canary=to_record(state)).with_step("canary", "started", now))
            state = from_record(self._load().canary) or state
        url = ""
        while True:
            self._guard_traffic()
            service = self.s.run.service(api)
            url = url or service.tag_urls.get(tag, "")
            if state.ended is None and state.step < len(policy.steps):
                self._set_step(state, service, candidate, stable)
            evidence = self._evidence(state, candidate, stable, url)
            now = self._now()
            try:
                state, action = self._decide(state, evidence, now)
            except _Stale as stale:  # a control changed the step while it was judged: judge it again
                state = stale.state
                continue
            if isinstance(action, Promote):
                self.log.info("canary promoted", reason=action.reason)
                self._step("canary", "finished")
                self._tell(wording.canary_promoted(action.reason))
                return True
            if isinstance(action, AbortToStable):
                return self._abort(action, evidence, service, stable)
            if isinstance(action, Advance):
                passed = evidence if isinstance(evidence, Verdict) else None
                self._tell(wording.canary_passed(action.step - 1, len(policy.steps), self._figures_text(passed)))
                continue  # the next look sets the traffic of the step now recorded
            if isinstance(action, HoldAndTell):
                self.log.warning("canary held past its longest", text=action.text)
                self._tell(wording.canary_held(action.text))
                continue
            pause = canary_pause(now=now, changes_at=action.until, interval=self.config.deploy.probe_interval_seconds,
                                 until=self._until)
            if isinstance(pause, CoreHandOver):
                raise HandOver(pause.why)
            self.s.sleep(pause.pause)
            state = from_record(self._load().canary) or state

    def _set_step(self, state: CanaryState, service: ServiceState, candidate: str, stable: str) -> None:
        """The traffic the recorded step asks for, set when the cloud serves anything else (a step just begun,
        or an attempt that died between recording a step and setting it)."""
        policy = self.config.canary
        percent = policy.steps[min(state.step, len(policy.steps) - 1)]
        if service.traffic.get(candidate) == percent and service.traffic.get(stable) == 100 - percent:
            return
        tags = {revision: name for name, revision in service.tags.items()}
        targets = Advance(state.step, percent).targets(candidate, stable, candidate_tag=tags.get(candidate, ""),
                                                       stable_tag=tags.get(stable, ""))
        self._guard_traffic()
        self.s.run.set_traffic(self.config.api.service, targets)
        self.log.info("canary step", step=state.step + 1, percent=percent)
        self._tell(wording.canary_step(state.step, len(policy.steps), percent, candidate,
                                        policy.min_seconds_per_step, policy.max_seconds_per_step))

    def _evidence(self, state: CanaryState, candidate: str, stable: str, url: str) -> Verdict | TooEarly:
        """A probe of the candidate's own URL, and once the step's window is long enough both revisions'
        figures over it. A failed probe is a verdict at once, whatever the window."""
        policy, now = self.config.canary, self._now()
        if state.ended is not None or state.ending == ABORT:  # decided already: nothing left to look at
            return TooEarly(now, "the canary has ended")
        ok, detail = self._probe(url) if url else (False, "the candidate has no tag URL")
        seen = window(state.step_started_at, now, self.config.watchdog.metrics_lag_seconds,
                      min_seconds=policy.min_seconds_per_step)
        if isinstance(seen, TooEarly):
            if ok:
                return seen
            return judge_step(NO_FIGURES, NO_FIGURES, False, policy, probe_detail=detail)
        api = self.config.api.service
        figures = [self.s.metrics.window_figures(api, revision, seen.start, seen.end) for revision in (candidate, stable)]
        judged = [StepFigures(f.requests, min(f.by_class.get("5xx", 0), f.requests), f.p95_latency_ms) for f in figures]
        verdict = judge_step(judged[0], judged[1], ok, policy, probe_detail=detail)
        self._judged_over = seen
        self.log.info("canary step judged", outcome=verdict.outcome.value, window_start=seen.start,
                      window_end=seen.end, candidate_requests=judged[0].requests, stable_requests=judged[1].requests)
        return verdict

    def _decide(self, seen: CanaryState, evidence: Verdict | TooEarly, now: float) -> tuple[CanaryState, Action]:
        """`next_action` on the record as it is now (a control may have arrived), stored with one
        compare-and-swap. Evidence gathered for another step (a resume restarted it) is not used: `_Stale`."""
        decided: list[tuple[CanaryState, Action | None]] = []

        def change(release: Release) -> Release | None:
            decided.clear()
            current = from_record(release.canary) or seen
            if (current.step, current.step_started_at) != (seen.step, seen.step_started_at):
                decided.append((current, None))
                return None
            try:
                state, action = next_action(current, evidence, now, self.config.canary)
            except ValueError as error:  # the config's steps changed under a running canary
                reason = f"the canary's steps changed while it ran ({error})"
                state, action = _ended(current, reason), AbortToStable(reason)
            decided.append((state, action))
            return None if state == current else release.but(canary=to_record(state))

        self._update(change)
        state, maybe = decided[0]
        if maybe is None:
            raise _Stale(state)
        return state, maybe

    def _abort(self, action: AbortToStable, evidence: Verdict | TooEarly, service: ServiceState,
               stable: str) -> bool:
        tags = {revision: name for name, revision in service.tags.items()}
        self._guard_traffic()
        self.s.run.set_traffic(self.config.api.service, action.targets(stable, tags.get(stable, "")))
        figures = self._figures_text(evidence if isinstance(evidence, Verdict) else None)
        self.log.warning("canary ended: all the API's traffic back on stable", reason=action.reason,
                         stable=stable)
        self._step("canary", "finished")
        self._fail(wording.canary_failure(action.reason, figures, stable), restore=True)
        return False

    def _figures_text(self, verdict: Verdict | None) -> str:
        """Both revisions' figures, and the window they were read over and how late Monitoring's data was."""
        if verdict is None or (verdict.candidate.requests == 0 and verdict.stable.requests == 0):
            return ""
        c, s = verdict.candidate, verdict.stable
        figures = wording.canary_figures((c.requests, c.errors, c.known_p95), (s.requests, s.errors, s.known_p95))
        judged = self._judged_over
        if judged is None:
            return figures
        return f"{figures}; {wording.canary_window(judged.start, judged.end, self.config.watchdog.metrics_lag_seconds)}"

    def _tell(self, text: str) -> None:
        reply(self.s, self._load(), text)


class _Stale(Exception):
    def __init__(self, state: CanaryState) -> None:
        super().__init__("the canary's step changed while it was judged")
        self.state = state


def _ended(state: CanaryState, reason: str) -> CanaryState:
    from dataclasses import replace

    return replace(state, ended=ABORTED, end_reason=reason, ending=None, ending_reason="", paused=False)


__all__ = ["CanaryStep", "Wait"]
