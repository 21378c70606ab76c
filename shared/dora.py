"""The four DORA figures over a window, from the release records alone (pure).

- deployment frequency: releases that went live per day;
- lead time: from the tag push to all the API's traffic on the release (the push stands in for the commit: GitHub's
  push event is what tagship sees), counted for the releases that went live; a canary's steps are in it, the bake
  after them is not; a record without that step's end counts to live;
- change failure rate: of the releases that reached users (went live, moved traffic and then failed, or served a
  canary's share), the share rolled back or failed after traffic moved (a canary that failed included);
- time to restore: for rolled-back releases, from the first failure seen (the watchdog's or the rollback request's
  time, when recorded) to the traffic restored.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass

from shared.release import FAILED, LIVE, ROLLED_BACK, Release

DAY = 86400.0


@dataclass(frozen=True)
class Dora:
    window_days: float
    deployments: int
    deployment_frequency_per_day: float
    lead_time_median_seconds: float | None
    change_failure_rate: float | None
    time_to_restore_median_seconds: float | None


def _reached_users(release: Release) -> bool:
    return release.at(LIVE) is not None or (release.state == FAILED and (
        "rolled back" in release.error or "canary" in release.steps))


def _all_traffic_at(release: Release) -> float | None:
    """When all the API's traffic went to the release (the end of its API step), else when it went live."""
    return release.steps.get("deploy_api", {}).get("finished") or release.at(LIVE)


def dora(releases: list[Release], *, now: float, window_days: float = 30.0) -> Dora:
    since = now - window_days * DAY
    recent = [r for r in releases if r.created_at >= since]
    went_live = [r for r in recent if r.at(LIVE) is not None]
    lead_times = [_all_traffic_at(r) - r.created_at for r in went_live]  # type: ignore[operator]
    reached = [r for r in recent if _reached_users(r)]
    failures = [r for r in reached if r.state == ROLLED_BACK or r.state == FAILED]
    restores = []
    for release in recent:
        rolled = release.at(ROLLED_BACK)
        if rolled is None:
            continue
        began = release.steps.get("incident", {}).get("started") or release.at(LIVE)
        if began is not None:
            restores.append(rolled - began)
    return Dora(
        window_days=window_days,
        deployments=len(went_live),
        deployment_frequency_per_day=len(went_live) / window_days if window_days else 0.0,
        lead_time_median_seconds=statistics.median(lead_times) if lead_times else None,
        change_failure_rate=len(failures) / len(reached) if reached else None,
        time_to_restore_median_seconds=statistics.median(restores) if restores else None,
    )


@dataclass(frozen=True)
class DoraPoint:
    """The four figures over the `window_days` that end at `at`."""
    at: float
    figures: Dora


def dora_series(releases: list[Release], *, now: float, window_days: float = 30.0, points: int = 12,
                every_days: float = 7.0) -> tuple[DoraPoint, ...]:
    """The figures as they stood at `points` moments `every_days` apart, the last one `now`, each over the window
    that ends there (pure): how the team's figures moved, one chart point each. ValueError for fewer than one
    point, or a window or a spacing that is not positive."""
    if points < 1 or not window_days > 0 or not every_days > 0:
        raise ValueError(f"DORA series: expected points >= 1 and a positive window and spacing, found points={points}, "
                         f"window_days={window_days}, every_days={every_days}")
    series = []
    for index in range(points):
        at = now - (points - 1 - index) * every_days * DAY
        known = [r for r in releases if r.created_at <= at]
        series.append(DoraPoint(at, dora([_as_of(r, at) for r in known], now=at, window_days=window_days)))
    return tuple(series)


def _as_of(release: Release, at: float) -> Release:
    """The release as its record stood at `at`: later transitions and steps not yet made."""
    history = tuple((state, when) for state, when in release.history if when <= at)
    if history == release.history:
        return release
    steps = {name: {edge: t for edge, t in edges.items() if t <= at} for name, edges in release.steps.items()}
    return release.but(history=history, state=history[-1][0], steps={k: v for k, v in steps.items() if v})
