"""deploy_progress: Cloud Build's notifications and tagship's own progress messages drive the release forward.

Every message is safe to receive many times: a build message for a build we did not start, or for a release
already past that point, is acknowledged and logged; the steps themselves find their own earlier work.
"""
from __future__ import annotations

import json
from typing import Any

from shared.adapters.cloudbuild import TERMINAL_FAILURES, BuildStatus, parse_notification
from shared.errors import InputError
from shared.log import Logger, logger
from shared.release import BUILDING, FAILED, Release
from shared.wiring import Services

from functions.deploy_progress.pipeline import Pipeline, open_thread, refresh_root, reply

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


def adopt_build(services: Services, release: Release, status: BuildStatus, payload: dict[str, Any]) -> Release:
    """Records the build's id on its release from the build's own message (deploy_on_tag does not wait to).

    Only a tagship build of the release's commit is adopted, and only while the release has none: should a
    repaired submission ever make a second build for one release, the first to report is the release's, the other
    is not ours. Returns the release as recorded now."""
    if release.build_id or status.commit != release.commit or "tagship" not in (payload.get("tags") or ()):
        return release
    return services.store.update_release(
        release.tag,
        lambda r: None if r.build_id else r.but(build_id=status.build_id, log_url=status.log_url or r.log_url, error=""),
    ) or release


def _on_build(services: Services, payload: dict[str, Any], attributes: dict[str, str], message_id: str, log: Logger,
           published_at: float | None = None) -> str:
    status = parse_notification(payload, attributes)
    log = log.bind(tag=status.tag or None, build_id=status.build_id, trigger="cloud-build")
    if not status.tag:
        log.info("build is not a tagship release", status=status.status)
        return "not ours"
    found = services.store.release(status.tag)
    release = adopt_build(services, found[0], status, payload) if found is not None else None
    if release is None or release.build_id != status.build_id:
        log.info("build does not belong to a recorded release", status=status.status)
        return "not ours"
    release = open_thread(services, release)
    if status.status in TERMINAL_FAILURES:
        now = services.clock()
        reason = f"build {status.status.lower()}" + (f": {status.detail}" if status.detail else "")
        failed = services.store.update_release(
            status.tag, lambda r: r.move(FAILED, now, error=reason) if r.state == BUILDING else None
        )
        if failed is not None and failed.state == FAILED and failed.error == reason:
            log.error("build failed; nothing deployed", status=status.status)
            reply(services, failed, f":x: Build {status.status.lower()}; nothing was deployed. <{status.log_url}|build log>")
            refresh_root(services, failed)
        return "build failed"
    if status.status != "SUCCESS":
        log.info("build progressing", status=status.status)
        return f"build {status.status.lower()}"
    if not status.image:
        raise InputError("SUCCESS build message without an image digest in results.images")
    if not release.image:
        services.store.update_release(status.tag, lambda r: None if r.image else r.but(image=status.image))
        log.info("build succeeded", image=status.image)
        reply(services, release, f":package: Built `{status.digest[:19]}`")
    return Pipeline(services, status.tag, message_id, log).drive()
