"""Starting a release exactly once: record it, submit its build, answer. One path for a signed tag push (the
webhook), for `python main.py start TAG --commit SHA`, and for the scheduler's tick restarting a start that died
between its record and its build (`shared.core.start.start_lost`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared import webhook
from shared.core import wording
from shared.core.start import DUPLICATE, MOVED, REPAIR, RETRY, STARTING, decide_start
from shared.errors import CorruptRecord, PreconditionFailed, TagshipError
from shared.log import Logger
from shared.release import new_release
from shared.thread import tell_corrupt
from shared.wiring import Services


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


def _tell(services: Services, text: str) -> None:
    """A start that failed is told in the channel: GitHub never redelivers by itself, a person has to."""
    services.notifier.post(text)


def start_release(services: Services, start: webhook.Start, delivery: str, log: Logger) -> Answer:
    """Records the release of `start` exactly once and submits its build: for a signed tag push, and for
    `python main.py start` (GitHub sends no push event when more than three tags are pushed at once)."""
    from shared.adapters.cloudbuild import build_request

    config = services.config
    now = services.clock()
    release = new_release(start.tag, start.commit, start.pushed_by, delivery, now)
    repairing = False
    try:
        try:
            generation = services.store.create_release(release)
        except PreconditionFailed:
            found = services.store.release(start.tag)
            if found is None:
                return Answer(503, {"error": "release record vanished; redeliver"})
            existing, generation = found
            decision = decide_start(existing, ours=release, now=now)
            if decision.action == DUPLICATE:
                log.info("tag already has a release", build_id=existing.build_id)
                return Answer(200, {"status": "duplicate", "tag": start.tag, "build_id": existing.build_id})
            if decision.action == STARTING:
                log.info("tag's release is being started by another delivery")
                return Answer(202, {"status": "duplicate", "tag": start.tag, "reason": "already starting"})
            if decision.action == MOVED:
                log.warning("moved tag refused", reason=decision.reason, released_commit=existing.commit,
                            pushed_commit=start.commit)
                _tell(services, wording.tag_moved(start.tag, start.commit, existing.commit, existing.state))
                return Answer(409, {"error": "tag moved after its release; nothing was started", "tag": start.tag,
                                    "released_commit": existing.commit, "pushed_commit": start.commit})
            if decision.action in (REPAIR, RETRY):
                if decision.action == RETRY:
                    release = release.but(attempt=existing.attempt + 1)
                    services.store.archive_release(existing)
                try:  # a compare-and-swap on the record as read, so of two redeliveries only one goes on
                    services.store.save_release(existing.but(error="") if decision.action == REPAIR else release,
                                                generation)
                except PreconditionFailed:
                    log.info("tag's release is being restarted by another delivery")
                    return Answer(202, {"status": "duplicate", "tag": start.tag, "reason": "already starting"})
                log.warning(decision.reason, attempt=release.attempt)
                repairing = decision.action == REPAIR
            if decision.action == REPAIR:
                release = existing
        request = build_request(config, start.tag, start.commit, attempt=release.attempt)
        try:
            earlier = services.builds.find(start.tag, start.commit, release.attempt) if repairing else None
            if earlier is not None:  # the earlier attempt made it, then lost the answer: its own messages adopt it
                log.info("the build was submitted before", build_id=earlier[0])
                return Answer(202, {"status": "started", "tag": start.tag, "build_id": earlier[0]})
            build_id, log_url = services.builds.submit(request)
        except TagshipError as error:
            failure = f"build submission failed: {str(error)[:500]}"
            services.store.update_release(start.tag, lambda r: r.but(error=failure))
            log.error("build submission failed", error=str(error))
            _tell(services, wording.build_not_submitted(start.tag, str(error)))
            return Answer(503, {"error": "build submission failed; redeliver to retry", "tag": start.tag})
    except CorruptRecord as error:  # never acted on, never overwritten by a delivery: a person mends it
        tell_corrupt(services, error, log, start.tag)
        return Answer(409, {"error": "the release's record is corrupt; nothing was started", "tag": start.tag,
                            "record": error.name})
    except TagshipError as error:
        log.error("could not record the release", error=str(error))
        _tell(services, wording.release_not_recorded(start.tag, str(error)))
        return Answer(503, {"error": "state bucket unavailable; redeliver to retry"})
    log.info("release started", build_id=build_id, log_url=log_url, commit=start.commit, pushed_by=start.pushed_by,
             attempt=release.attempt)
    return Answer(202, {"status": "started", "tag": start.tag, "build_id": build_id})
