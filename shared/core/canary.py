"""The canary's decisions (pure): what to do next with a step's verdict, and what a person's control does; the
verdict and the window it is judged over come from `shared.core.canary_verdict` and are re-exported here, so the
shells import the canary from one place. `now` is always an argument.

The API's traffic moves in steps (`canary.steps`, e.g. 10 % then 50 %, then all of it). Each step is judged on the
candidate revision's own figures against the stable revision's over the same window, plus probes of the
candidate's own URL. The shell, at its own cadence:

    seen = window(state.step_started_at, now, lag, min_seconds=policy.min_seconds_per_step)
    evidence = seen if isinstance(seen, TooEarly) else judge_step(candidate, stable, probes_ok, policy)
    state, action = next_action(state, evidence, now, policy)    # apply the action, then store the state

and for a control (a Slack button, the command line, a rollback request), `apply_control` gives the state to
store and the effect to tell; the next `next_action` carries it out. The first step comes from `begin`.

Which wins, in this order: a canary that ended stays ended; an abort (a rollback request is one) ends it at once;
a failed step ends it, even paused or asked to promote (a person's promote never gives all the traffic to a
candidate failing now, a pause never keeps one serving); a promote-now; a pause (nothing moves forward); a passed
step; last, the step's longest.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from shared.config import CanaryConfig
from shared.core.canary_verdict import (
    ERROR_LIMIT,
    ERROR_VS_STABLE,
    FAIL,
    INCONCLUSIVE,
    P95_LIMIT,
    P95_UNKNOWN,
    P95_VS_STABLE,
    PASS,
    PROBES,
    TOO_FEW_REQUESTS,
    Finding,
    Outcome,
    StepFigures,
    TooEarly,
    Verdict,
    Window,
    judge_step,
    window,
)
from shared.core.traffic import all_to, split
from shared.core.wording import duration
from shared.ports import TrafficTarget
from shared.text import cut

__all__ = [
    "ABORT", "ABORTED", "APPLIED", "CONTROLS", "DUPLICATE", "ERROR_LIMIT", "ERROR_VS_STABLE", "FAIL",
    "INCONCLUSIVE", "P95_LIMIT", "P95_UNKNOWN", "P95_VS_STABLE", "PASS", "PAUSE", "PROBES", "PROMOTE", "PROMOTED",
    "REFUSED", "RESUME", "ROLLBACK", "TOO_FEW_REQUESTS", "AbortToStable", "Action", "Advance", "CanaryState",
    "Control", "ControlEffect", "Finding", "HoldAndTell", "JudgedStep", "Outcome", "Promote", "SeenControl",
    "StepFigures", "TooEarly", "Verdict", "Wait", "Window", "apply_control", "begin", "judge_step", "next_action",
    "window",
]

# ---- the canary's memory, and a person's controls ---------------------------------------------------------------

PAUSE, RESUME, PROMOTE, ABORT, ROLLBACK = "pause", "resume", "promote", "abort", "rollback"
CONTROLS = (PAUSE, RESUME, PROMOTE, ABORT, ROLLBACK)
PROMOTED, ABORTED = "promoted", "aborted"
FAILED_REASON_MAX = 300  # characters of a failed release's error kept as its canary's end reason
APPLIED, DUPLICATE, REFUSED = "applied", "duplicate", "refused"


@dataclass(frozen=True)
class Control:
    """A person's (or an alarm's) word about the canary: pause, resume, promote (now), abort, rollback (a
    rollback request that arrives while the canary runs: it aborts it)."""

    kind: str
    by: str = ""
    reason: str = ""

    def __post_init__(self) -> None:
        if self.kind not in CONTROLS:
            raise ValueError(f"canary control: expected one of {', '.join(CONTROLS)}, found {self.kind!r}")


@dataclass(frozen=True)
class SeenControl:
    id: str
    kind: str
    applied: bool  # False: refused; either way its id is answered once


@dataclass(frozen=True)
class JudgedStep:
    """A verdict that decided something: what the step led to (advanced, promoted, aborted, held)."""

    step: int
    at: float
    verdict: Verdict
    led_to: str


@dataclass(frozen=True)
class CanaryState:
    """What the canary remembers between invocations.

    - `step`: index in `canary.steps` of the share the candidate serves now, since `step_started_at`;
    - `paused` (by `paused_by`): nothing moves forward until resumed;
    - `ending` (PROMOTE or ABORT) and `ending_reason`: what a control asked, for `next_action` to carry out;
    - `hold_told`: the hold at this step's longest was told (once per step);
    - `ended` (PROMOTED or ABORTED) and `end_reason`: how it ended; no control applies after;
    - `controls`: every control id seen, applied or refused; `history`: the verdicts that decided something.
    """

    step: int
    step_started_at: float
    paused: bool = False
    paused_by: str = ""
    ending: str | None = None
    ending_reason: str = ""
    hold_told: bool = False
    ended: str | None = None
    end_reason: str = ""
    controls: tuple[SeenControl, ...] = ()
    history: tuple[JudgedStep, ...] = ()


@dataclass(frozen=True)
class ControlEffect:
    """What a control did (APPLIED, DUPLICATE or REFUSED) and the sentence that tells it."""

    outcome: str
    text: str


def apply_control(state: CanaryState, control: Control, control_id: str, *,
                  now: float) -> tuple[CanaryState, ControlEffect]:
    """A control, exactly once per `control_id`: an id seen before changes nothing and says so.

    Refused, with the reason (and its id remembered, so a late redelivery cannot apply it once things changed):
    anything after the canary ended; anything once an abort is asked; once a promote is asked, anything but an
    abort or a rollback (the safer word overrides a promote not yet carried out); a pause when paused; a resume
    when not paused. A resume starts the step again: its shortest, its longest and its window count from `now`,
    so the canary never moves forward on figures a person paused to look at.
    """
    seen = next((c for c in state.controls if c.id == control_id), None)
    if seen is not None:
        was = "applied" if seen.applied else "refused"
        return state, ControlEffect(DUPLICATE, f"{seen.kind} {control_id} was already {was}: nothing changes")
    refusal = _refusal(state, control)
    if refusal:
        refused = replace(state, controls=state.controls + (SeenControl(control_id, control.kind, False),))
        return refused, ControlEffect(REFUSED, f"{control.kind} refused: {refusal}")
    state = replace(state, controls=state.controls + (SeenControl(control_id, control.kind, True),))
    who = f" by {control.by}" if control.by else ""
    why = f": {control.reason}" if control.reason else ""
    if control.kind == PAUSE:
        return replace(state, paused=True, paused_by=control.by), ControlEffect(APPLIED, (
            f"paused{who}: the traffic stays as it is; a failing step still sends it all back to stable"))
    if control.kind == RESUME:
        resumed = replace(state, paused=False, paused_by="", step_started_at=now, hold_told=False)
        return resumed, ControlEffect(APPLIED, f"resumed{who}: the step starts again, judged on figures from now")
    if control.kind == PROMOTE:
        reason = f"promoted{who}{why}"
        return replace(state, ending=PROMOTE, ending_reason=reason), ControlEffect(APPLIED, (
            f"{reason}: all the traffic goes to the candidate unless its step fails first"))
    reason = f"aborted{who}{why}" if control.kind == ABORT else f"a rollback was requested{who}{why}"
    return replace(state, ending=ABORT, ending_reason=reason), ControlEffect(APPLIED, (
        f"{reason}: all the traffic goes back to stable and the release fails"))


def _refusal(state: CanaryState, control: Control) -> str:
    if state.ended is not None:
        return f"the canary has ended ({state.ended})"
    if state.ending == ABORT:
        return f"the canary is already being aborted ({state.ending_reason})"
    if state.ending == PROMOTE and control.kind not in (ABORT, ROLLBACK):
        return f"the canary is already being promoted ({state.ending_reason})"
    if control.kind == PAUSE and state.paused:
        return f"already paused{' by ' + state.paused_by if state.paused_by else ''}"
    if control.kind == RESUME and not state.paused:
        return "the canary is not paused"
    return ""


# ---- what to do next --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Wait:
    """Nothing to do now. `until`: when this answer changes if the figures stay as they are (None: only a
    control or new figures change it); the shell judges again at its own cadence meanwhile."""

    until: float | None
    why: str


@dataclass(frozen=True)
class Advance:
    """Move to step `step`: the candidate serves `candidate_percent`, stable the rest."""

    step: int
    candidate_percent: int

    @property
    def stable_percent(self) -> int:
        return 100 - self.candidate_percent

    def targets(self, candidate: str, stable: str, *, candidate_tag: str = "",
                stable_tag: str = "") -> list[TrafficTarget]:
        return split(candidate, stable, self.candidate_percent, candidate_tag=candidate_tag, stable_tag=stable_tag)


@dataclass(frozen=True)
class Promote:
    """All the API's traffic to the candidate; the deploy goes on (worker, frontend) as without a canary."""

    reason: str

    def targets(self, candidate: str, tag: str = "") -> list[TrafficTarget]:
        return all_to(candidate, tag)


@dataclass(frozen=True)
class AbortToStable:
    """All the API's traffic back to stable at once; the release ends failed, saying why."""

    reason: str

    def targets(self, stable: str, tag: str = "") -> list[TrafficTarget]:
        return all_to(stable, tag)


@dataclass(frozen=True)
class HoldAndTell:
    """Stay at this step past its longest and tell the channel (once): a person promotes or aborts."""

    text: str


Action = Wait | Advance | Promote | AbortToStable | HoldAndTell


def begin(now: float, policy: CanaryConfig) -> tuple[CanaryState, Advance | Promote]:
    """The canary's first move: its first step, or with no steps (the canary off) all the traffic at once."""
    if not policy.steps:
        reason = "no canary steps: all the traffic at once"
        return CanaryState(0, now, ended=PROMOTED, end_reason=reason), Promote(reason)
    return CanaryState(0, now), Advance(0, policy.steps[0])


def next_action(state: CanaryState, verdict: Verdict | TooEarly, now: float,
                policy: CanaryConfig) -> tuple[CanaryState, Action]:
    """What the canary does now, given the step's evidence (a verdict, or the window's `TooEarly`), and the state
    to store once the action is applied. The order of what wins is the module's. Asked again after it ended, it
    answers the same end (applying it again changes nothing).

    A passed step advances to the next (its clock starts at `now`), or, the last, promotes. An inconclusive step
    waits until its longest (`step_started_at + max_seconds_per_step`, the edge included), then does what
    `policy.inconclusive` says: `promote` (all the traffic, the remaining steps skipped), `rollback` (all back to
    stable, the release failed) or `hold` (told once; a later pass or failure still acts).
    """
    if state.ended == PROMOTED:
        return state, Promote(state.end_reason)
    if state.ended == ABORTED:
        return state, AbortToStable(state.end_reason)
    if state.ending == ABORT:
        return _end(state, ABORTED, state.ending_reason), AbortToStable(state.ending_reason)
    if not 0 <= state.step < len(policy.steps):
        raise ValueError(f"canary state: step {state.step} is not one of the {len(policy.steps)} canary steps")
    step = _step_text(state.step, policy)
    judged = verdict if isinstance(verdict, Verdict) else None

    if judged is not None and judged.outcome is FAIL:
        reason = f"{step} failed: {judged.reasons}"
        if state.ending == PROMOTE:
            reason += f" (not {state.ending_reason})"
        return _end(_judged(state, now, judged, ABORTED), ABORTED, reason), AbortToStable(reason)
    if state.ending == PROMOTE:
        return _end(state, PROMOTED, state.ending_reason), Promote(state.ending_reason)
    if state.paused:
        by = f" by {state.paused_by}" if state.paused_by else ""
        return state, Wait(None, f"{step} paused{by}: resume, promote or abort")
    if judged is not None and judged.outcome is PASS:
        if state.step + 1 == len(policy.steps):
            reason = f"{step} passed: all the traffic to the candidate"
            return _end(_judged(state, now, judged, PROMOTED), PROMOTED, reason), Promote(reason)
        following = state.step + 1
        advanced = replace(_judged(state, now, judged, "advanced"), step=following, step_started_at=now,
                           hold_told=False)
        return advanced, Advance(following, policy.steps[following])

    why = verdict.reasons if isinstance(verdict, Verdict) else verdict.why
    longest_at = state.step_started_at + policy.max_seconds_per_step
    if now < longest_at:
        until = longest_at if isinstance(verdict, Verdict) else min(verdict.until, longest_at)
        return state, Wait(until, f"{step} inconclusive: {why}")
    longest = duration(policy.max_seconds_per_step)
    if policy.inconclusive == "promote":
        reason = f"{step} still inconclusive at its longest ({longest}): {why}; promoted, as canary.inconclusive says"
        return _end(_judged(state, now, judged, PROMOTED), PROMOTED, reason), Promote(reason)
    if policy.inconclusive == "rollback":
        reason = (f"{step} still inconclusive at its longest ({longest}): {why}; back to stable, as "
                  "canary.inconclusive says")
        return _end(_judged(state, now, judged, ABORTED), ABORTED, reason), AbortToStable(reason)
    if state.hold_told:
        return state, Wait(None, f"{step} held past its longest: {why}")
    text = (f"{step} still inconclusive at its longest ({longest}): {why}. Holding it there: promote or abort, "
            "or it goes on once the figures decide")
    return replace(_judged(state, now, judged, "held"), hold_told=True), HoldAndTell(text)


def release_failed(state: CanaryState, why: str) -> CanaryState:
    """The canary of a release that failed, whatever failed it (a cloud call failing for good, a refused approval,
    a rollback stopping it): aborted, since the candidate no longer serves, even after a promotion whose traffic
    move or later steps failed. A canary that ended aborted keeps its own reason."""
    if state.ended == ABORTED:
        return state
    return _end(state, ABORTED, f"the release failed: {cut(why, FAILED_REASON_MAX)}")


def _step_text(step: int, policy: CanaryConfig) -> str:
    return f"canary step {step + 1} of {len(policy.steps)} ({policy.steps[step]} %)"


def _judged(state: CanaryState, now: float, verdict: Verdict | None, led_to: str) -> CanaryState:
    if verdict is None:
        return state
    return replace(state, history=state.history + (JudgedStep(state.step, now, verdict, led_to),))


def _end(state: CanaryState, how: str, reason: str) -> CanaryState:
    return replace(state, ended=how, end_reason=reason, ending=None, ending_reason="", paused=False)
