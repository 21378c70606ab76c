"""The canary's decisions, as tables: a step's verdict at every edge and the window it is read over."""
import dataclasses

import pytest

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
    StepFigures,
    TooEarly,
    Window,
    judge_step,
    window,
)

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
