"""The canary's decisions, as tables: a step's verdict at every edge, the window it is read over, what each verdict
and control leads to, and every control exactly once."""
import dataclasses

import pytest

from shared.config import CanaryConfig
from shared.core.canary import (
    ABORT,
    ABORTED,
    APPLIED,
    DUPLICATE,
    ERROR_LIMIT,
    ERROR_VS_STABLE,
    FAIL,
    INCONCLUSIVE,
    P95_LIMIT,
    P95_UNKNOWN,
    P95_VS_STABLE,
    PASS,
    PAUSE,
    PROBES,
    PROMOTE,
    PROMOTED,
    REFUSED,
    RESUME,
    ROLLBACK,
    TOO_FEW_REQUESTS,
    AbortToStable,
    Advance,
    CanaryState,
    Control,
    HoldAndTell,
    Promote,
    StepFigures,
    TooEarly,
    Wait,
    Window,
    apply_control,
    begin,
    judge_step,
    next_action,
    release_failed,
    window,
)
from shared.ports import TrafficTarget

POLICY = CanaryConfig(steps=(10, 50))  # the defaults: 300 s to 1800 s a step, 100 requests, 5 %, 2000 ms
T0 = 10_000.0


def policy(**changes):
    return dataclasses.replace(POLICY, **changes)


def figures(requests, errors=0, p95=120.0):
    return StepFigures(requests, errors, p95)


STABLE = figures(9000, 0, 120.0)


# ---- the verdict ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "candidate, stable, probes_ok, changes, outcome, rules",
    [
        (figures(0, 0, None), STABLE, True, {}, INCONCLUSIVE, (TOO_FEW_REQUESTS,)),
        (figures(99), STABLE, True, {}, INCONCLUSIVE, (TOO_FEW_REQUESTS,)),
        (figures(100), STABLE, True, {}, PASS, ()),
        (figures(10, 10), STABLE, True, {}, INCONCLUSIVE, (TOO_FEW_REQUESTS,)),
        (figures(30, 1), figures(270, 0), True, {}, INCONCLUSIVE, (TOO_FEW_REQUESTS,)),
        (figures(30, 1), figures(270, 0), True, {"min_requests_per_step": 30, "min_error_difference": 0.05},
         PASS, ()),
        (figures(100, 1), figures(900, 0), True, {}, PASS, ()),
        (figures(100, 2), figures(900, 0), True, {}, PASS, ()),
        (figures(100, 3), figures(900, 0), True, {}, FAIL, (ERROR_VS_STABLE,)),
        (figures(1000), STABLE, False, {}, FAIL, (PROBES,)),
        (figures(0, 0, None), STABLE, False, {}, FAIL, (PROBES,)),
        (figures(1000, 60), figures(9000, 540), True, {}, FAIL, (ERROR_LIMIT,)),
        (figures(1000, 50), figures(9000, 450), True, {}, PASS, ()),
        (figures(1000, 40), figures(9000, 90), True, {}, FAIL, (ERROR_VS_STABLE,)),
        (figures(1000, 20), figures(10000, 50), True, {}, PASS, ()),
        (figures(1000, 49), figures(10000, 250), True, {}, PASS, ()),
        (figures(1000, 40), figures(50, 0), True, {}, PASS, ()),
        (figures(1000, 0, 2100.0), figures(9000, 0, 2100.0), True, {}, FAIL, (P95_LIMIT,)),
        (figures(1000, 0, 2000.0), figures(9000, 0, 1900.0), True, {}, PASS, ()),
        (figures(1000, 0, 400.0), figures(9000, 0, 200.0), True, {}, FAIL, (P95_VS_STABLE,)),
        (figures(1000, 0, 180.0), figures(9000, 0, 100.0), True, {}, PASS, ()),
        (figures(1000, 0, 1400.0), figures(9000, 0, 1000.0), True, {}, PASS, ()),
        (figures(1000, 0, 300.0), figures(9000, 0, 200.0), True, {}, PASS, ()),
        (figures(1000, 0, None), STABLE, True, {}, INCONCLUSIVE, (P95_UNKNOWN,)),
        (figures(1000, 0, float("nan")), STABLE, True, {}, INCONCLUSIVE, (P95_UNKNOWN,)),
        (figures(1000, 100, None), STABLE, True, {}, FAIL, (ERROR_LIMIT, ERROR_VS_STABLE)),
        (figures(1000, 0, 500.0), figures(9000, 0, None), True, {}, PASS, ()),
        (figures(1000, 100, 3000.0), figures(9000, 0, 100.0), False, {}, FAIL,
         (PROBES, ERROR_LIMIT, ERROR_VS_STABLE, P95_LIMIT, P95_VS_STABLE)),
    ],
    ids=["a candidate that served no requests is inconclusive, never a pass",
         "one request short of the minimum is inconclusive",
         "exactly the minimum of requests is judged",
         "ten errors in ten requests is too few to judge, not a failure",
         "one error in 30 requests against none is too few to judge",
         "one error in 30 against none, judged, is not a failure: under the minimum difference",
         "one error in 100 against none is not a failure: infinitely worse but one point above",
         "two in 100 against none is exactly the minimum difference, not above it",
         "three in 100 against none is clearly worse than stable",
         "a failed probe fails the step whatever the figures",
         "a failed probe fails the step even with too few requests",
         "an absolute limit crossed with stable equally bad still fails",
         "exactly at the absolute limit passes",
         "more than twice stable's ratio and more than the difference fails",
         "more than twice stable's ratio but within the difference passes: the rule needs both",
         "more than the difference but not twice stable's ratio passes: the rule needs both",
         "stable with too few requests is not compared with: the limits alone judge",
         "a p95 above its absolute limit fails even when stable is as slow",
         "a p95 exactly at its limit passes",
         "a p95 more than 1.5x and more than 100 ms above stable's fails",
         "a p95 more than 1.5x stable's but within 100 ms passes",
         "a p95 more than 100 ms above stable's but within 1.5x passes",
         "a p95 exactly 1.5x stable's and exactly 100 ms above passes",
         "a candidate whose p95 is unknown is inconclusive",
         "a p95 of nan is unknown",
         "a failure wins over an unknown p95",
         "a stable p95 unknown: the candidate's latency judged on its limit alone",
         "every rule crossed is named"],
)
def test_a_steps_figures_mean(candidate, stable, probes_ok, changes, outcome, rules):
    verdict = judge_step(candidate, stable, probes_ok, policy(**changes))
    assert (verdict.outcome, verdict.rules) == (outcome, rules)


def test_a_failure_says_the_figures_that_decided_it():
    verdict = judge_step(figures(1000, 60, 2500.0), figures(9000, 540, 2400.0), True, POLICY)
    assert verdict.reasons == "5xx ratio 6 % (60 of 1000), above the limit of 5 %; p95 2500 ms, above the limit of 2000 ms"
    assert verdict.candidate == figures(1000, 60, 2500.0) and verdict.stable == figures(9000, 540, 2400.0)
    against = judge_step(figures(1000, 40), figures(9000, 90), True, POLICY)
    assert against.reasons == ("5xx ratio 4 % (40 of 1000) against stable's 1 % (90 of 9000): more than 2x and "
                               "more than 2 points above it")


def test_an_inconclusive_step_says_why_and_a_pass_says_what_it_left_out():
    assert judge_step(figures(12), STABLE, True, POLICY).reasons == (
        "the candidate served 12 requests in the window, 100 needed")
    alone = judge_step(figures(1000), figures(50), True, POLICY)
    assert alone.unjudged == ("stable served 50 requests, fewer than 100: judged on the limits alone",)
    probes = judge_step(figures(1000), STABLE, False, POLICY, probe_detail="503 on /api/health")
    assert probes.reasons == "the candidate's probes failed on its own URL: 503 on /api/health"


@pytest.mark.parametrize("requests, errors", [(10, 11), (-1, 0), (10, -1)],
                         ids=["more errors than requests", "negative requests", "negative errors"])
def test_figures_that_cannot_be_are_refused(requests, errors):
    with pytest.raises(ValueError):
        StepFigures(requests, errors)


# ---- the window -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "now, lag, expected",
    [
        (T0 + 479, 180.0, TooEarly),
        (T0 + 480, 180.0, Window(T0, T0 + 300)),
        (T0 + 2000, 180.0, Window(T0, T0 + 1820)),
        (T0 + 300, 0.0, Window(T0, T0 + 300)),
        (T0 + 100, 180.0, TooEarly),
        (T0 - 5, 180.0, TooEarly),
    ],
    ids=["one second short of the step minimum is too early", "exactly the step minimum long is judged",
         "the window ends the lag ago", "with no lag it ends now", "a window still ending before the step began",
         "a clock behind the step's start"],
)
def test_the_window_a_step_is_judged_over(now, lag, expected):
    seen = window(T0, now, lag, min_seconds=300.0)
    if expected is TooEarly:
        assert seen == TooEarly(T0 + 300 + lag, seen.why)
    else:
        assert seen == expected


def test_too_early_says_how_long_the_window_is_and_the_window_unpacks():
    early = window(T0, T0 + 230, 180.0, min_seconds=300.0)
    assert early == TooEarly(T0 + 480, "the step's window is 50 s long, 5 min needed (Monitoring's figures end 3 min ago)")
    start, end = window(T0, T0 + 600, 180.0, min_seconds=300.0)
    assert (start, end) == (T0, T0 + 420)


# ---- what to do next --------------------------------------------------------------------------------------------

PASSED = judge_step(figures(1000), STABLE, True, POLICY)
FAILED = judge_step(figures(1000, 100), STABLE, True, POLICY)
UNSURE = judge_step(figures(12), STABLE, True, POLICY)
EARLY = TooEarly(T0 + 480, "the step's window is 0 s long")


def at(step=0, **changes):
    return CanaryState(step, T0, **changes)


@pytest.mark.parametrize(
    "state, evidence, now, changes, expected",
    [
        (at(), EARLY, T0 + 100, {}, Wait(T0 + 480, "canary step 1 of 2 (10 %) inconclusive: the step's window is 0 s long")),
        (at(), TooEarly(T0 + 5000, "short"), T0 + 100, {}, Wait(T0 + 1800, "canary step 1 of 2 (10 %) inconclusive: short")),
        (at(), PASSED, T0 + 480, {}, Advance(1, 50)),
        (at(1), PASSED, T0 + 480, {}, Promote("canary step 2 of 2 (50 %) passed: all the traffic to the candidate")),
        (at(), UNSURE, T0 + 600, {}, Wait(T0 + 1800, "canary step 1 of 2 (10 %) inconclusive: the candidate served 12 "
                                                     "requests in the window, 100 needed")),
        (at(), UNSURE, T0 + 1799, {"inconclusive": "promote"}, Wait),
        (at(), UNSURE, T0 + 1800, {"inconclusive": "promote"}, Promote),
        (at(), UNSURE, T0 + 1800, {"inconclusive": "rollback"}, AbortToStable),
        (at(), UNSURE, T0 + 1800, {}, HoldAndTell),
        (at(), EARLY, T0 + 1800, {}, HoldAndTell),
        (at(hold_told=True), UNSURE, T0 + 2400, {}, Wait(None, "canary step 1 of 2 (10 %) held past its longest: the "
                                                              "candidate served 12 requests in the window, 100 needed")),
        (at(hold_told=True), PASSED, T0 + 2400, {}, Advance(1, 50)),
        (at(hold_told=True), FAILED, T0 + 2400, {}, AbortToStable),
        (at(paused=True, paused_by="dana"), PASSED, T0 + 600, {},
         Wait(None, "canary step 1 of 2 (10 %) paused by dana: resume, promote or abort")),
        (at(paused=True), UNSURE, T0 + 1800, {"inconclusive": "promote"}, Wait),
        (at(paused=True), UNSURE, T0 + 1800, {}, Wait),
        (at(paused=True), FAILED, T0 + 600, {}, AbortToStable),
        (at(ending=PROMOTE, ending_reason="promoted by dana"), UNSURE, T0 + 60, {}, Promote("promoted by dana")),
        (at(paused=True, ending=PROMOTE, ending_reason="promoted by dana"), EARLY, T0 + 60, {}, Promote),
        (at(ending=ABORT, ending_reason="aborted by dana"), PASSED, T0 + 600, {}, AbortToStable("aborted by dana")),
        (at(ended=PROMOTED, end_reason="done"), FAILED, T0 + 600, {}, Promote("done")),
        (at(ended=ABORTED, end_reason="gone"), PASSED, T0 + 600, {}, AbortToStable("gone")),
    ],
    ids=["the step minimum time not yet reached waits until the window is long enough",
         "too early is never waited on past the step's longest",
         "a passed first step advances to the next share",
         "a passed last step promotes",
         "an inconclusive step waits until its longest",
         "one second before its longest it still waits",
         "at its longest, inconclusive = promote gives the candidate all the traffic",
         "at its longest, inconclusive = rollback sends all the traffic back to stable",
         "at its longest, inconclusive = hold holds and tells",
         "a window still too short at the longest counts as inconclusive",
         "held and told once, it waits and tells no more",
         "held, a pass that comes later still advances",
         "held, a failure that comes later still sends all back",
         "paused, a passed step moves nothing forward",
         "paused at its longest, inconclusive = promote does not promote",
         "paused at its longest, nothing is held or told",
         "paused, a failure still sends all the traffic back to stable",
         "promote-now promotes an inconclusive step",
         "promote-now promotes a paused canary",
         "an abort ends the canary even on a passed step",
         "a canary that ended promoted answers its end again",
         "a canary that ended aborted answers its end again"],
)
def test_what_the_canary_does_next(state, evidence, now, changes, expected):
    _, action = next_action(state, evidence, now, policy(**changes))
    if isinstance(expected, type):
        assert type(action) is expected
    else:
        assert action == expected


@pytest.mark.parametrize(
    "state, ended, reason",
    [
        (at(), ABORTED, "the release failed: traffic: PERMISSION_DENIED"),
        (at(1, paused=True, paused_by="dana"), ABORTED, "the release failed: traffic: PERMISSION_DENIED"),
        (at(ending=PROMOTE, ending_reason="promoted by dana"), ABORTED, "the release failed: traffic: PERMISSION_DENIED"),
        (at(ended=PROMOTED, end_reason="step 2 passed"), ABORTED, "the release failed: traffic: PERMISSION_DENIED"),
        (at(ended=ABORTED, end_reason="step 1 failed: 5xx"), ABORTED, "step 1 failed: 5xx"),
    ],
    ids=["a canary at its step is aborted with the release's error",
         "a paused canary is aborted and no longer paused",
         "a promote asked but not applied is aborted",
         "a canary promoted whose release failed after (its traffic move, the worker) is aborted: stable serves",
         "a canary that ended aborted keeps its own reason"],
)
def test_a_failed_releases_canary_is_aborted(state, ended, reason):
    after = release_failed(state, "traffic: PERMISSION_DENIED")
    assert (after.ended, after.end_reason, after.paused, after.ending) == (ended, reason, False, None)


def test_a_failed_releases_canary_keeps_a_bounded_excerpt_of_the_error():
    after = release_failed(at(), "x" * 10_000)
    assert after.ended == ABORTED and len(after.end_reason) < 400 and after.end_reason.startswith("the release failed: x")


def test_a_failed_step_sends_all_the_traffic_back_and_ends_the_release_failed_with_its_reasons():
    state, action = next_action(at(), FAILED, T0 + 600, POLICY)
    assert action == AbortToStable("canary step 1 of 2 (10 %) failed: 5xx ratio 10 % (100 of 1000), above the limit "
                                   "of 5 %; 5xx ratio 10 % (100 of 1000) against stable's 0 % (0 of 9000): more than "
                                   "2x and more than 2 points above it")
    assert action.targets("api-v1-3-0-xyz") == [TrafficTarget("api-v1-3-0-xyz", 100, "")]
    assert (state.ended, state.end_reason) == (ABORTED, action.reason)
    assert [(j.step, j.at, j.verdict, j.led_to) for j in state.history] == [(0, T0 + 600, FAILED, ABORTED)]


def test_promote_now_never_gives_all_the_traffic_to_a_failing_step():
    state, action = next_action(at(ending=PROMOTE, ending_reason="promoted by dana"), FAILED, T0 + 60, POLICY)
    assert isinstance(action, AbortToStable) and action.reason.endswith("(not promoted by dana)")
    assert state.ended == ABORTED


def test_a_hold_is_told_once_per_step():
    held, told = next_action(at(), UNSURE, T0 + 1800, POLICY)
    assert isinstance(told, HoldAndTell) and told.text.startswith(
        "canary step 1 of 2 (10 %) still inconclusive at its longest (30 min)")
    assert held.hold_told and held.history[-1].led_to == "held"
    again, quiet = next_action(held, UNSURE, T0 + 1900, POLICY)
    assert again == held and isinstance(quiet, Wait) and quiet.until is None
    advanced, _ = next_action(held, PASSED, T0 + 2000, POLICY)
    assert (advanced.step, advanced.step_started_at, advanced.hold_told) == (1, T0 + 2000, False)


def test_steps_10_then_50_then_all_of_it():
    state, first = begin(T0, POLICY)
    assert first == Advance(0, 10) and (state.step, state.step_started_at) == (0, T0)
    assert first.targets("api-new", "api-old", candidate_tag="v1-4-0") == [
        TrafficTarget("api-new", 10, "v1-4-0"), TrafficTarget("api-old", 90, "")]
    state, second = next_action(state, PASSED, T0 + 480, POLICY)
    assert second == Advance(1, 50) and second.stable_percent == 50 and state.step_started_at == T0 + 480
    state, last = next_action(state, PASSED, T0 + 960, POLICY)
    assert isinstance(last, Promote) and last.targets("api-new", "v1-4-0") == [TrafficTarget("api-new", 100, "v1-4-0")]
    assert state.ended == PROMOTED
    assert [(j.step, j.led_to) for j in state.history] == [(0, "advanced"), (1, PROMOTED)]


def test_no_steps_is_all_the_traffic_at_once():
    state, action = begin(T0, policy(steps=()))
    assert action == Promote("no canary steps: all the traffic at once") and state.ended == PROMOTED


def test_a_state_whose_step_is_not_a_step_is_refused():
    with pytest.raises(ValueError):
        next_action(at(2), PASSED, T0 + 600, POLICY)


# ---- controls ---------------------------------------------------------------------------------------------------

ENDED = at(ended=PROMOTED, end_reason="canary step 2 of 2 (50 %) passed")


@pytest.mark.parametrize(
    "state, kind, outcome",
    [
        (at(), PAUSE, APPLIED), (at(paused=True), PAUSE, REFUSED),
        (at(paused=True), RESUME, APPLIED), (at(), RESUME, REFUSED),
        (at(), PROMOTE, APPLIED), (at(paused=True), PROMOTE, APPLIED),
        (at(), ABORT, APPLIED), (at(paused=True), ABORT, APPLIED),
        (at(), ROLLBACK, APPLIED),
        (at(ending=PROMOTE), ABORT, APPLIED), (at(ending=PROMOTE), ROLLBACK, APPLIED),
        (at(ending=PROMOTE), PROMOTE, REFUSED), (at(ending=PROMOTE), PAUSE, REFUSED),
        (at(ending=ABORT), PROMOTE, REFUSED), (at(ending=ABORT), ABORT, REFUSED),
        (at(ending=ABORT), ROLLBACK, REFUSED), (at(paused=True, ending=ABORT), RESUME, REFUSED),
        (ENDED, PAUSE, REFUSED), (ENDED, RESUME, REFUSED), (ENDED, PROMOTE, REFUSED), (ENDED, ABORT, REFUSED),
        (ENDED, ROLLBACK, REFUSED), (at(ended=ABORTED), PROMOTE, REFUSED),
    ],
    ids=["pause while running", "pause when already paused is refused", "resume when paused",
         "resume when not paused is refused", "promote now", "promote now while paused", "abort",
         "abort while paused", "a rollback request during the canary",
         "an abort overrides a promote not yet carried out", "so does a rollback request",
         "a second promote is refused", "a pause once promoting is refused", "a promote once aborting is refused",
         "a second abort is refused", "a rollback once aborting is refused", "a resume once aborting is refused",
         "a pause after the end is refused", "a resume after the end is refused",
         "a promote after the end is refused", "an abort after the end is refused",
         "a rollback request after the end is refused (the rollback function takes it)",
         "a promote after an abort ended it is refused"],
)
def test_a_control_applies_or_is_refused(state, kind, outcome):
    after, effect = apply_control(state, Control(kind, by="dana"), "m1", now=T0 + 60)
    assert effect.outcome == outcome
    assert after.controls[-1].applied is (outcome == APPLIED)
    if outcome == REFUSED:
        assert dataclasses.replace(after, controls=state.controls) == state


@pytest.mark.parametrize("state, kind", [(at(), PAUSE), (at(paused=True), RESUME), (at(), PROMOTE), (at(), ABORT),
                                         (at(), ROLLBACK)],
                         ids=["pause", "resume", "promote now", "abort", "a rollback request"])
def test_each_control_applies_exactly_once(state, kind):
    once, first = apply_control(state, Control(kind), "m1", now=T0 + 60)
    twice, second = apply_control(once, Control(kind), "m1", now=T0 + 90)
    assert (first.outcome, second.outcome) == (APPLIED, DUPLICATE)
    assert twice == once
    assert second.text == f"{kind} m1 was already applied: nothing changes"


def test_a_refused_control_redelivered_later_is_still_not_applied():
    state, refused = apply_control(at(), Control(RESUME), "m1", now=T0 + 60)
    state, _ = apply_control(state, Control(PAUSE), "m2", now=T0 + 70)
    again, effect = apply_control(state, Control(RESUME), "m1", now=T0 + 80)
    assert (refused.outcome, effect.outcome) == (REFUSED, DUPLICATE) and again.paused
    assert effect.text == "resume m1 was already refused: nothing changes"


def test_a_resume_starts_the_step_again():
    paused, _ = apply_control(at(hold_told=True), Control(PAUSE, by="dana"), "m1", now=T0 + 600)
    resumed, effect = apply_control(paused, Control(RESUME, by="dana"), "m2", now=T0 + 4000)
    assert (resumed.paused, resumed.step_started_at, resumed.hold_told) == (False, T0 + 4000, False)
    assert effect.text == "resumed by dana: the step starts again, judged on figures from now"
    _, action = next_action(resumed, UNSURE, T0 + 4100, POLICY)
    assert action == Wait(T0 + 4000 + 1800, action.why)


def test_a_rollback_request_during_the_canary_aborts_it():
    state, effect = apply_control(at(), Control(ROLLBACK, by="watchdog", reason="5xx on /api/orders"), "m1",
                                  now=T0 + 60)
    assert effect.text == ("a rollback was requested by watchdog: 5xx on /api/orders: all the traffic goes back to "
                           "stable and the release fails")
    state, action = next_action(state, PASSED, T0 + 90, POLICY)
    assert action == AbortToStable("a rollback was requested by watchdog: 5xx on /api/orders")
    assert state.ended == ABORTED
    _, late = apply_control(state, Control(PROMOTE), "m2", now=T0 + 100)
    assert late.text == "promote refused: the canary has ended (aborted)"


def test_an_unknown_control_is_refused_as_a_value():
    with pytest.raises(ValueError):
        Control("skip")


@pytest.mark.parametrize("candidate, stable, outcome", [
    (figures(1000, 0, 120.0), figures(0, 0, None), PASS),
    (figures(1000, 60, 120.0), figures(0, 0, None), FAIL),
    (figures(1000, 0, 100.0), figures(9000, 270, 800.0), PASS),
    (figures(1000, 10, 150.0), figures(9000, 900, 1500.0), PASS),
], ids=["stable that served no requests leaves the candidate judged on the limits alone",
        "stable that served no requests never excuses a candidate above a limit",
        "a candidate better than stable on both figures passes",
        "a candidate better than a failing stable passes: the canary judges the candidate, not stable"])
def test_the_other_side_of_the_comparison(candidate, stable, outcome):
    assert judge_step(candidate, stable, True, POLICY).outcome is outcome
