"""The deploy's decisions (pure): what a migration's, a smoke test's or a bake's latest observation means, and
which parts of the live system a failed release must give back.

Each verdict answers one question the deploy asks in a loop: go on waiting (`WAIT`, after `pause` seconds), hand
over to the next invocation (`HAND_OVER`: this one's budget is spent, the record lets the next go on), stop with a
failure (`Fail`, saying why), or go on to the next step (`DONE`). `now` and every deadline are passed in.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from shared.core.wording import duration
from shared.release import BUILDING, DEPLOYING, MIGRATING, PUBLISHING, VERIFYING


@dataclass(frozen=True)
class Wait:
    pause: float


@dataclass(frozen=True)
class Fail:
    reason: str
    restore: bool  # whether anything moved that must be given back


@dataclass(frozen=True)
class Done:
    pass


@dataclass(frozen=True)
class HandOver:
    why: str


DONE = Done()
Verdict = Wait | Fail | Done | HandOver

STEP_OF_STATE = {BUILDING: "start", MIGRATING: "migrate", DEPLOYING: "deploy", PUBLISHING: "publish",
                 VERIFYING: "verify"}


def next_step(state: str) -> str:
    """The step a release in `state` runs next; "finish" once it has ended or gone live."""
    return STEP_OF_STATE.get(state, "finish")


def migration_verdict(*, done: bool, succeeded: bool, message: str, started_at: float, now: float,
                      timeout: float, until: float, pause: float) -> Verdict:
    """A migration job's execution, seen at `now`. No traffic has moved yet, so a failure restores nothing."""
    if done:
        if succeeded:
            return DONE
        return Fail(f"Migrations failed: {message or 'the job execution failed'}; no traffic moved", restore=False)
    if now - started_at > timeout:
        return Fail(f"Migrations ran longer than {duration(timeout)}; no traffic moved", restore=False)
    if now > until:
        return HandOver("the migration outlasts this invocation")
    return Wait(pause)


def smoke_verdict(*, ok: bool, final: bool, detail: str, candidate: str, now: float, deadline: float, until: float,
                  interval: float) -> Verdict:
    """The candidate's latest answer on its own URL. It has no traffic: a failure leaves the old revision serving."""
    if ok:
        return DONE
    next_try = now + interval
    if final or next_try > deadline:
        return Fail(f"Smoke test failed on the candidate {candidate}: {detail}; the old revision keeps all traffic",
                    restore=False)
    if next_try > until:
        return HandOver("the smoke test outlasts this invocation")
    return Wait(interval)


def bake_verdict(*, ok: bool, detail: str, now: float, deadline: float, until: float, interval: float) -> Verdict:
    """The live URL's latest probe while the release bakes with all the traffic: a failure gives the unit back."""
    if not ok:
        return Fail(f"Health failed while verifying: {detail}; rolled back", restore=True)
    next_probe = now + interval
    if next_probe > deadline:
        return DONE
    if next_probe > until:
        return HandOver("the bake outlasts this invocation")
    return Wait(interval)


def moved_roles(recorded: Collection[str], serving_share: Mapping[str, int]) -> set[str]:
    """Roles whose traffic a release holds: as recorded, or as the cloud serves it (`serving_share`: role -> the
    percent the release's own revision serves). An attempt that died between a traffic change and its record
    leaves only the cloud knowing."""
    return set(recorded) | {role for role, share in serving_share.items() if share > 0}


def restores(*, moved: Collection[str], frontend_published: bool, has_previous_frontend: bool) -> set[str]:
    """What a failed release gives back to the unit before it: the roles it moved, and the frontend if it was
    published and the previous one is kept."""
    roles = set(moved) & {"api", "worker"}
    if frontend_published and has_previous_frontend:
        roles.add("frontend")
    return roles


def canary_pause(*, now: float, changes_at: float | None, interval: float, until: float) -> Wait | HandOver:
    """How long a canary step waits before it is judged again: the probe interval, or less when its answer changes
    sooner (`changes_at`: its window long enough, its longest reached; None: only new figures or a control change
    it). Handed over when that is past this invocation's budget (`until`), so no invocation sleeps past it."""
    pause = interval if changes_at is None else max(0.0, min(interval, changes_at - now))
    if now + pause > until:
        return HandOver("the canary step outlasts this invocation")
    return Wait(pause)
