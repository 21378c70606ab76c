"""What a signed tag push means given the release already recorded under its tag (pure).

A release is a tag at a commit, in one attempt. A tag seen again:
- at the same commit while its release is in flight or went live: a duplicate (GitHub's redelivery, a retry of
  ours); a record whose build was never recorded, seen again by the same delivery after a while: a repair;
- at any commit, when the earlier attempt failed before any traffic moved: a retry, a fresh attempt with names of
  its own (its revisions, traffic tag, frontend and build never meet the failed attempt's);
- at another commit otherwise (the tag was force-moved, or deleted and pushed again, after traffic moved): refused
  loudly, naming both commits; nothing is built.
"""
from __future__ import annotations

from dataclasses import dataclass

from shared.release import BUILDING, FAILED, LIVE, PUBLISHING, VERIFYING, Release

REPAIR_AFTER_SECONDS = 30.0  # a record whose build no status message has claimed by then: its submission was lost

CREATE, GO_ON, DUPLICATE, STARTING, REPAIR, RETRY, MOVED = (
    "create", "go on", "duplicate", "starting", "repair", "retry", "moved")


@dataclass(frozen=True)
class StartDecision:
    action: str
    reason: str = ""


def traffic_ever_moved(release: Release) -> bool:
    """Whether any of the release's traffic ever moved (a restore since does not undo that it did)."""
    return bool(release.traffic_moved or release.steps.get("deploy_api", {}).get("finished") is not None
                or release.steps.get("deploy_worker", {}).get("finished") is not None
                or any(release.at(state) is not None for state in (PUBLISHING, VERIFYING, LIVE)))


def decide_start(existing: Release | None, *, ours: Release, now: float) -> StartDecision:
    """`ours` is the release this delivery would record; `existing` what the tag's record holds."""
    if existing is None:
        return StartDecision(CREATE)
    if existing == ours:  # our own create landed, its answer was lost and the client retried
        return StartDecision(GO_ON)
    if existing.state == FAILED and not traffic_ever_moved(existing):
        return StartDecision(RETRY, f"attempt {existing.attempt} failed before any traffic moved "
                                    f"({existing.error[:200] or 'failed'}): attempt {existing.attempt + 1} starts")
    if existing.commit != ours.commit:
        return StartDecision(MOVED, f"tag {existing.tag} was released at {existing.commit[:12]} "
                                    f"({existing.state}) and now points at {ours.commit[:12]}: refused")
    if existing.build_id:
        return StartDecision(DUPLICATE, "tag already has a release")
    stale = now - existing.created_at > REPAIR_AFTER_SECONDS or bool(existing.error)
    if existing.delivery_id != ours.delivery_id or not stale:
        return StartDecision(STARTING, "already starting")
    return StartDecision(REPAIR, "the release's build was never recorded")


def start_lost(release: Release, now: float) -> bool:
    """Whether the release's start died between its record and its build (the webhook's process killed, say):
    still building, no build ever seen for it, no failure told, and older than `REPAIR_AFTER_SECONDS`. The
    scheduler's tick starts it again through the same path as a redelivery of its push."""
    return (release.state == BUILDING and not release.build_id and not release.image and not release.error
            and now - release.created_at > REPAIR_AFTER_SECONDS)
