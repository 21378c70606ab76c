"""deploy_progress: Cloud Build's notifications and tagship's own progress messages drive the release forward.

Every message is safe to receive many times: a build message for a build we did not start, or for a release
already past that point, is acknowledged and logged; the steps themselves find their own earlier work. A build
message is a hint, never a fact: only the release's own build moves it, as Cloud Build reports it on GetBuild
(`shared.build_message`).
"""
from __future__ import annotations

import json
from typing import Any

from functions.deploy_progress.pipeline import Pipeline
from shared.adapters.cloudbuild import parse_notification
from shared.build_message import FAILED, IGNORE, PROGRESS, judge_build, owns_build
from shared.core import wording
from shared.errors import CorruptRecord, InputError
from shared.log import Logger, logger
from shared.release import BUILDING, Release
from shared.release import FAILED as FAILED_STATE
from shared.thread import open_thread, refresh_root, reply, tell_corrupt
from shared.wiring import Services

DRIVE = "drive"


def handle(services: Services, data: bytes, attributes: dict[str, str], message_id: str, log: Logger = logger,
           published_at: float | None = None) -> str:
    """Returns what was done (for the log and tests); raises TransientError to have Pub/Sub redeliver."""
    try:
        payload = json.loads(data or b"{}")
    except ValueError as error:
        raise InputError(f"message data is not JSON: {str(error)[:80]}") from error
    if not isinstance(payload, dict):
        raise InputError(f"expected a JSON object, found {type(payload).__name__}")
    if "buildId" in attributes or "status" in attributes:
        return _on_build(services, payload, attributes, message_id, log)
    if payload.get("kind") == DRIVE:
        tag = payload.get("tag")
        if not isinstance(tag, str) or not tag:
            raise InputError("drive message: expected a tag, found none")
        return Pipeline(services, tag, message_id, log.bind(tag=tag, trigger="progress")).drive()
    raise InputError(f"not a Cloud Build notification nor a drive message: keys {sorted(payload)[:6]}")


def adopt_build(services: Services, release: Release, build_id: str, log_url: str) -> Release:
    """Records the build's id on its release (deploy_on_tag does not wait to), once `owns_build` has said the build
    is the release's. Only while the release has none: should a repaired submission ever make a second build for
    one release, the one `Builds.find` returns (the first submitted) is the release's, the other is not ours.
    Returns the release as recorded now."""
    if release.build_id:
        return release
    return services.store.update_release(
        release.tag, lambda r: None if r.build_id else r.but(build_id=build_id, log_url=log_url or r.log_url, error=""),
    ) or release


def _on_build(services: Services, payload: dict[str, Any], attributes: dict[str, str], message_id: str, log: Logger,
              published_at: float | None = None) -> str:
    claim = parse_notification(payload, attributes)  # a hint: its build id and tag, to look the build up by
    log = log.bind(tag=claim.tag or None, build_id=claim.build_id, trigger="cloud-build")
    try:
        found = services.store.release(claim.tag) if claim.tag else None
    except CorruptRecord as error:
        tell_corrupt(services, error, log, claim.tag)
        return "corrupt record"
    if found is None:
        log.info("build is not a tagship release", status=claim.status)
        return "not ours"
    release = found[0]
    earlier = services.builds.find(release.tag, release.commit, release.attempt) if not release.build_id else None
    if not owns_build(claim.build_id, release.build_id, earlier[0] if earlier else None):
        log.warning("build message for a build that is not the release's; ignored", claimed_status=claim.status)
        return "not ours"
    read = services.builds.status(claim.build_id)
    verdict = judge_build(read, tag=release.tag, commit=release.commit, image_root=services.config.build.image)
    if verdict.action == IGNORE:
        log.error("build message not believed; nothing changed", reason=verdict.reason, status=read.status)
        return "not believed"
    release = adopt_build(services, release, read.build_id, read.log_url)
    if release.build_id != read.build_id:
        log.info("release records another build", status=read.status)
        return "not ours"
    release = open_thread(services, release)
    if verdict.action == FAILED:
        now = services.clock()
        reason = verdict.reason
        failed = services.store.update_release(
            release.tag, lambda r: r.move(FAILED_STATE, now, error=reason) if r.state == BUILDING else None
        )
        if failed is not None and failed.state == FAILED_STATE and failed.error == reason:
            log.error("build failed; nothing deployed", status=read.status)
            reply(services, failed, wording.build_failed(read.status, read.log_url))
            refresh_root(services, failed)
        return "build failed"
    if verdict.action == PROGRESS:
        log.info("build progressing", status=read.status)
        return verdict.reason
    if not release.image:
        services.store.update_release(release.tag, lambda r: None if r.image else r.but(image=verdict.image))
        log.info("build succeeded", image=verdict.image)
        reply(services, release, wording.built(verdict.image.rsplit("@", 1)[1]))
    return Pipeline(services, release.tag, message_id, log).drive()
