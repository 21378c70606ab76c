"""A canary step judged (pure): the candidate revision's own figures against the limits and against the stable
revision's over the same window, plus probes of the candidate's own URL; and the window to read them over.
`shared.core.canary` decides what the verdict leads to.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from shared.config import CanaryConfig
from shared.core.wording import duration


class Outcome(Enum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


PASS, FAIL, INCONCLUSIVE = Outcome.PASS, Outcome.FAIL, Outcome.INCONCLUSIVE

# The rules a verdict names, so a log line, the thread and a test can tell which decided.
PROBES, ERROR_LIMIT, ERROR_VS_STABLE, P95_LIMIT, P95_VS_STABLE = (
    "probes", "error_limit", "error_vs_stable", "p95_limit", "p95_vs_stable")
TOO_FEW_REQUESTS, P95_UNKNOWN = "too_few_requests", "p95_unknown"


@dataclass(frozen=True)
class StepFigures:
    """One revision's figures over a step's window (Cloud Monitoring): requests served, how many answered 5xx,
    and the p95 latency (None, or NaN, when unknown)."""

    requests: int
    errors: int
    p95_ms: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.errors <= self.requests:
            raise ValueError(f"step figures: expected 0 <= errors <= requests, found {self.errors} errors in "
                             f"{self.requests} requests")

    @property
    def error_ratio(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def known_p95(self) -> float | None:
        return self.p95_ms if self.p95_ms is not None and math.isfinite(self.p95_ms) else None


@dataclass(frozen=True)
class Finding:
    rule: str
    text: str


@dataclass(frozen=True)
class Verdict:
    """A step judged. `findings`: for FAIL every rule crossed, with the figures that crossed it; for INCONCLUSIVE
    why it could not be judged; for PASS none. `unjudged` says what was left out whatever the outcome (stable's
    figures too few to compare with). The figures judged travel with it, for the history and the thread."""

    outcome: Outcome
    findings: tuple[Finding, ...]
    candidate: StepFigures
    stable: StepFigures
    unjudged: tuple[str, ...] = ()

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(finding.rule for finding in self.findings)

    @property
    def reasons(self) -> str:
        return "; ".join(finding.text for finding in self.findings)


def judge_step(candidate: StepFigures, stable: StepFigures, probes_ok: bool, policy: CanaryConfig, *,
               probe_detail: str = "") -> Verdict:
    """The candidate's figures against the limits and against stable's, over the same window.

    - A failed probe of the candidate's own URL fails the step, whatever the figures.
    - Fewer than `min_requests_per_step` candidate requests (none included) is INCONCLUSIVE: never a pass, never
      a failure. Exactly the minimum is judged.
    - FAIL when the candidate crosses an absolute limit (5xx ratio above `max_error_ratio`, p95 above
      `max_p95_ms`), however bad stable is; or when it is clearly worse than stable: more than `*_factor` times
      stable's figure AND more than the minimum difference above it (so one error in a few requests against none
      is no verdict). Exactly at a limit passes.
    - Stable with fewer than the minimum requests (or no p95) is not compared with: the limits alone judge, and
      `unjudged` says so. A candidate p95 unknown is INCONCLUSIVE unless something failed.
    """
    failures: list[Finding] = []
    if not probes_ok:
        failures.append(Finding(PROBES, "the candidate's probes failed on its own URL"
                                + (f": {probe_detail}" if probe_detail else "")))
    if candidate.requests < policy.min_requests_per_step:
        if failures:
            return Verdict(FAIL, tuple(failures), candidate, stable)
        few = Finding(TOO_FEW_REQUESTS, f"the candidate served {candidate.requests} requests in the window, "
                                        f"{policy.min_requests_per_step} needed")
        return Verdict(INCONCLUSIVE, (few,), candidate, stable)
    unjudged: list[str] = []
    compare = stable.requests >= policy.min_requests_per_step
    if not compare:
        unjudged.append(f"stable served {stable.requests} requests, fewer than {policy.min_requests_per_step}: "
                        "judged on the limits alone")

    ratio, stable_ratio = candidate.error_ratio, stable.error_ratio
    errors = f"5xx ratio {_percent(ratio)} ({candidate.errors} of {candidate.requests})"
    if ratio > policy.max_error_ratio:
        failures.append(Finding(ERROR_LIMIT, f"{errors}, above the limit of {_percent(policy.max_error_ratio)}"))
    if (compare and ratio > stable_ratio * policy.error_ratio_factor
            and ratio - stable_ratio > policy.min_error_difference):
        failures.append(Finding(ERROR_VS_STABLE, (
            f"{errors} against stable's {_percent(stable_ratio)} ({stable.errors} of {stable.requests}): more "
            f"than {policy.error_ratio_factor:g}x and more than {_points(policy.min_error_difference)} above it")))

    p95, stable_p95 = candidate.known_p95, stable.known_p95
    if p95 is not None:
        if p95 > policy.max_p95_ms:
            failures.append(Finding(P95_LIMIT, f"p95 {p95:.0f} ms, above the limit of {policy.max_p95_ms:.0f} ms"))
        if compare and stable_p95 is None:
            unjudged.append("stable's p95 latency is unknown: latency judged on its limit alone")
        elif (compare and stable_p95 is not None and p95 > stable_p95 * policy.p95_factor
              and p95 - stable_p95 > policy.min_p95_difference_ms):
            failures.append(Finding(P95_VS_STABLE, (
                f"p95 {p95:.0f} ms against stable's {stable_p95:.0f} ms: more than {policy.p95_factor:g}x and "
                f"more than {policy.min_p95_difference_ms:.0f} ms above it")))
    if failures:
        return Verdict(FAIL, tuple(failures), candidate, stable, tuple(unjudged))
    if p95 is None:
        unknown = Finding(P95_UNKNOWN, "the candidate's p95 latency is unknown")
        return Verdict(INCONCLUSIVE, (unknown,), candidate, stable, tuple(unjudged))
    return Verdict(PASS, (), candidate, stable, tuple(unjudged))


def _percent(ratio: float) -> str:
    return f"{ratio * 100:.2f}".rstrip("0").rstrip(".") + " %"


def _points(difference: float) -> str:
    return f"{difference * 100:.2f}".rstrip("0").rstrip(".") + " points"


class Window(NamedTuple):
    """The span to read both revisions' figures over: from the step's start to Monitoring's lag ago."""

    start: float
    end: float


@dataclass(frozen=True)
class TooEarly:
    """The step's window is shorter than its minimum: nothing to judge before `until`."""

    until: float
    why: str


def window(step_started_at: float, now: float, lag_seconds: float, *, min_seconds: float) -> Window | TooEarly:
    """The window a step is judged over. It ends `lag_seconds` ago, since Cloud Monitoring's request metrics
    arrive that late and a window reaching now would count the candidate's last minutes as no requests. Shorter
    than `min_seconds` (exactly it is long enough) is too early, until the moment it is long enough."""
    end = now - lag_seconds
    if end - step_started_at < min_seconds:
        length = duration(max(0.0, end - step_started_at))
        return TooEarly(step_started_at + min_seconds + lag_seconds,
                        f"the step's window is {length} long, {duration(min_seconds)} needed (Monitoring's "
                        f"figures end {duration(lag_seconds)} ago)")
    return Window(step_started_at, end)
