"""A release's Slack thread: its root posted once, replies under it, the root kept showing the current state.

Used by every function that speaks about a release (the deploy, the rollback, the watchdog), so none of them
imports another's internals. Slack never blocks: the notifier logs and returns nothing when Slack fails. Where the
root is posted or refreshed, the release's GitHub deployment status follows it too (`shared.deployment_status`).
"""
from __future__ import annotations

import uuid
from typing import Any

from shared.adapters.slack import MessageRef
from shared.core import wording
from shared.core.slack_actions import buttons_for, root_blocks
from shared.errors import CorruptRecord, TagshipError
from shared.log import Logger
from shared.release import LIVE, Release
from shared.wiring import Services

PENDING = "pending:"  # a Slack thread being opened: the claim's token follows


def open_thread(services: Services, release: Release) -> Release:
    """Posts the release's root message once: a claim with a token of our own is written first, so of two
    concurrent status messages only the one whose claim landed posts."""
    services.deployment_status.follow(release)
    if release.slack_ts:
        return release
    token = f"{PENDING}{uuid.uuid4().hex}"
    claimed = services.store.update_release(release.tag, lambda r: None if r.slack_ts else r.but(slack_ts=token))
    if claimed is None or claimed.slack_ts != token:
        return claimed or release
    text, blocks = _root(services, claimed)
    ref = services.notifier.post(text, blocks=blocks)
    if ref is None:
        return claimed
    return services.store.update_release(
        release.tag, lambda r: r.but(slack_ts=ref.ts, slack_channel=ref.channel) if r.slack_ts == token else None
    ) or claimed


def _root(services: Services, release: Release) -> tuple[str, list[dict[str, Any]] | None]:
    """The root's text and, with the Slack app installed (`slack.actors` or `gates.approvers` names who may press),
    its blocks: the text, and the buttons the release's state calls for (`buttons_for`)."""
    text = wording.root(release, services.clock())
    actors, approvers = bool(services.config.slack.actors), bool(services.config.gates.approvers)
    if not actors and not approvers:
        return text, None
    approval, canary = release.approval, release.canary
    verbs = buttons_for(live=release.state == LIVE, approval_open=bool(approval) and approval.get("decided") is None
                        and not release.ended, canary_running=bool(canary) and not canary.get("ended")
                        and not release.ended and release.state != LIVE, canary_paused=bool(canary.get("paused")),
                        actors=actors, approvers=approvers)
    return text, root_blocks(text, release.tag, verbs)


def thread_of(release: Release) -> MessageRef | None:
    """The root to reply under, once it has been posted (not while it is only claimed)."""
    if release.slack_ts and not release.slack_ts.startswith(PENDING):
        return MessageRef(release.slack_channel, release.slack_ts)
    return None


def _current_thread(services: Services, release: Release) -> MessageRef | None:
    """The thread, reading the record again when the root was only claimed: another invocation may have posted it
    since (a reply then is never lost to the moment between the claim and the post)."""
    thread = thread_of(release)
    if thread is None and release.slack_ts.startswith(PENDING):
        found = services.store.release(release.tag)
        thread = thread_of(found[0]) if found else None
    return thread


def reply(services: Services, release: Release, text: str) -> None:
    thread = _current_thread(services, release)
    if thread is not None:
        services.notifier.post(text, thread=thread)


def refresh_root(services: Services, release: Release) -> None:
    """Shows the release's current state on its Slack root and on its GitHub deployment (github.deployments)."""
    services.deployment_status.follow(release)
    thread = _current_thread(services, release)
    if thread is not None:
        text, blocks = _root(services, release)
        services.notifier.update(thread, text, blocks)


def tell_corrupt(services: Services, error: CorruptRecord, log: Logger, tag: str | None = None) -> None:
    """A corrupt record is logged every time it is met, and told in the channel once per version of it."""
    log.error("corrupt record", record=error.name, detail=error.detail, tag=tag)
    key = f"{error.name}@{error.generation}"
    try:
        first = services.store.mark_once("corrupt-record", key, {"detail": error.detail[:500]})
    except TagshipError as failure:  # the channel may hear of it twice; never not at all
        log.warning("could not mark the corrupt record as told", error=str(failure)[:200])
        first = True
    if first:
        services.notifier.post(wording.corrupt_record(str(error), tag))
